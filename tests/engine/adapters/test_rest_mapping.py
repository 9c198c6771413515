"""How a write item becomes Xero's JSON: the cash allocation rule, the payloads, exact amounts."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.adapters.base import JournalLine, MatchLine, WriteItem
from engine.adapters.rest_mapping import (
    MappingError,
    XeroMapping,
    allocate,
    dumps_exact,
    loads_exact,
)

ON = date(2026, 3, 2)


def _item(lines, journal=(), match_type="one_to_one") -> WriteItem:
    return WriteItem("M1", 1, "write", match_type, tuple(lines), tuple(journal))


def bank(line_id, minor, currency="HKD", day=2):
    return MatchLine("bank", line_id, date(2026, 3, day), minor, currency)


def ledger(line_id, minor, currency="HKD"):
    return MatchLine("ledger", line_id, ON, minor, currency)


CHARGE = (JournalLine(ON, "6800", 50_00, 0, "HKD", "M1", "bank charge"),
          JournalLine(ON, "090", 0, 50_00, "HKD", "M1", "bank charge"))


@pytest.mark.parametrize(("lines", "journal", "expected"), [
    # bank line, items -> (bank id, item id, amount applied, credit note)
    ([bank("B", 1000_00), ledger("I", 1000_00)], (), [("B", "I", 1000_00, False)]),
    # a bank charge: the invoice is settled in full, the journal explains the 50
    ([bank("B", 950_00), ledger("I", 1000_00)], CHARGE, [("B", "I", 1000_00, False)]),
    # instalments without a journal: each bank line applies its own cash, the rest stays open
    ([bank("B1", 300_00), bank("B2", 400_00, day=5), ledger("I", 1000_00)], (),
     [("B1", "I", 300_00, False), ("B2", "I", 400_00, False)]),
    # one bank line, two invoices
    ([bank("B", 350_00), ledger("I1", 100_00), ledger("I2", 250_00)], (),
     [("B", "I1", 100_00, False), ("B", "I2", 250_00, False)]),
    # a payout: orders less a refund (a credit note, its cash added back)
    ([bank("B", 900_00), ledger("O1", 600_00), ledger("O2", 400_00), ledger("R1", -100_00)], (),
     [("B", "R1", 100_00, True), ("B", "O1", 600_00, False), ("B", "O2", 400_00, False)]),
    # money out: a supplier bill paid
    ([bank("B", -500_00), ledger("BILL", -500_00)], (), [("B", "BILL", 500_00, False)]),
    # a foreign-currency invoice: paid in full in its own currency
    ([bank("B", 7800_00), ledger("I", 1000_00, "USD")], (), [("B", "I", 1000_00, False)]),
])
def test_allocation(lines, journal, expected):
    got = [(a.bank.line_id, a.ledger.line_id, a.amount_minor, a.credit_note) for a in allocate(_item(lines, journal))]
    assert got == expected


def test_bank_lines_of_two_currencies_are_refused_with_the_reason():
    with pytest.raises(MappingError, match="several currencies"):
        allocate(_item([bank("B1", 100_00), bank("B2", 100_00, "USD"), ledger("I", 200_00)]))


def test_payloads_in_xero_shape():
    mapping = XeroMapping("090")
    lines = [MatchLine("bank", "B", ON, 1000_00, "HKD", "陳大文", "金港貿易有限公司"),
             ledger("a3c6f2a0-1b2c-4d5e-8f90-123456789abc", 1000_00), ledger("R-1", -50_00)]
    payment, credit = mapping.plan_write(_item(lines[:2]))[0], mapping.plan_write(_item(lines))[0]
    assert payment.part == "payment:B>a3c6f2a0-1b2c-4d5e-8f90-123456789abc"
    assert payment.payload == {"Invoice": {"InvoiceID": "a3c6f2a0-1b2c-4d5e-8f90-123456789abc"},
                               "Account": {"Code": "090"}, "Date": "2026-03-02",
                               "Amount": Decimal("1000.00"), "Reference": "金港貿易有限公司"}
    assert credit.payload["CreditNote"] == {"CreditNoteNumber": "R-1"}
    spec = mapping.request("payments", [payment.payload])
    assert (spec.method, spec.path, spec.params) == ("PUT", "/Payments", {"summarizeErrors": "false"})
    assert mapping.request("delete_payment", [{"PaymentID": "p-1", "Status": "DELETED"}]).path == "/Payments/p-1"
    assert mapping.idempotency("recon-abc") == ({"Idempotency-Key": "recon-abc"}, {})


def test_an_unbalanced_journal_is_refused():
    journal = (JournalLine(ON, "6800", 50_00, 0, "HKD", "M1", "x"), JournalLine(ON, "090", 0, 40_00, "HKD", "M1", "x"))
    with pytest.raises(MappingError, match="does not balance"):
        XeroMapping("090").plan_write(_item([bank("B", 950_00), ledger("I", 1000_00)], journal))


def test_element_answers_are_read_one_by_one():
    outcomes = XeroMapping("090").outcomes("payments", 2, 200, {"Payments": [
        {"PaymentID": "p-1", "StatusAttributeString": "OK"},
        {"StatusAttributeString": "ERROR", "ValidationErrors": [{"Message": "Invoice not found"}]}]})
    assert [(o.state, o.external_ids, o.reason) for o in outcomes] == [
        ("done", {"PaymentID": "p-1"}, ""), ("failed", {}, "Xero refused it: Invoice not found")]
    refused = XeroMapping("090").outcomes("manual_journals", 1, 403, {"Detail": "AuthenticationUnsuccessful"})
    assert refused[0].reason == "Xero answered 403: AuthenticationUnsuccessful"


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from([0, 2, 3]))
def test_amounts_are_written_as_exact_json_numbers(minor, exponent):
    amount = Decimal(minor).scaleb(-exponent)
    text = dumps_exact({"Amount": amount, "Reference": "陳大文"})
    assert loads_exact(text)["Amount"] == amount
    assert json.loads(text)["Reference"] == "陳大文"
    assert "e" not in text.lower().replace("reference", "")
