"""Instalments end to end: several credits of one payer paying one invoice, however well each
quotes it, and the credit that pays exactly what the others left open.

What an accountant checks: the right bank lines are grouped with the right invoice, the invoice
is paid in full with no write-off, and what stays open is the right amount.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

import engine.api as recon
from engine.candidates.compound import compound_groups
from engine.prepare.features import prepare_bank, prepare_ledger
from models.schema import BANK_SCHEMA, LEDGER_SCHEMA
from rules import default_rules
from tests.engine.csv_month import by_bank as _by_bank
from tests.engine.csv_month import match_csv


def _run(tmp_path: Path, bank: str, ledger: str, rules=None) -> recon.MatchResult:
    return match_csv(tmp_path, bank, ledger, rules=rules)


def test_remainder_completes_the_group_no_write_off(tmp_path):
    # three credits of one payer: the reference in full, cut short, and none at all; the third
    # is exactly what the first two left open
    bank = (
        "B1,2026-10-05,4000.00,HKD,FPS CR CHAN TAI MAN INV-2026-01069,,,001\n"
        "B2,2026-10-12,3500.00,HKD,FPS CR CHAN TAI MAN INV-2026-0106,,,001\n"
        "B3,2026-10-20,2845.50,HKD,FPS CR CHAN TAI MAN,,,001\n"
    )
    ledger = (
        "INV-2026-01069,2026-09-20,10345.50,HKD,Goods,Chan Tai Man,INV-2026-01069,1100,invoice,\n"
        "INV-2026-01070,2026-09-21,8800.00,HKD,Goods,Lee Siu Fung,INV-2026-01070,1100,invoice,\n"
    )
    result = _run(tmp_path, bank, ledger)
    rows = _by_bank(result)
    group = rows["B1;B2;B3"]
    assert (group["match_type"], group["ledger_ids"]) == ("many_to_one", "INV-2026-01069")
    assert (group["bank_amount"], group["ledger_amount"], group["difference"]) == ("10345.50", "10345.50", "0.00")
    assert group["adjustments"] == "" and not group["open_amount"]
    # no other proposal uses these lines, and none is left unmatched
    assert len(rows) == 1
    assert set(result.outcome.unmatched_bank["id"]) == set()


def test_degraded_references_number_only_and_transposed(tmp_path):
    # the number only (1163), with an honorific; two digits swapped (01136 for 01163)
    bank = (
        "B1,2026-10-06,6000.00,HKD,FPS CR MS WONG MEI LING 1163,,,001\n"
        "B2,2026-10-15,4120.25,HKD,FPS CR WONG MEI LING INV-2026-01136,,,001\n"
    )
    ledger = "INV-2026-01163,2026-09-22,10120.25,HKD,Design,Wong Mei Ling,INV-2026-01163,1100,invoice,\n"
    rows = _by_bank(_run(tmp_path, bank, ledger))
    group = rows["B1;B2"]
    assert (group["match_type"], group["ledger_ids"], group["difference"]) == ("many_to_one", "INV-2026-01163", "0.00")


def test_part_payment_keeps_what_is_open(tmp_path):
    # both quote the invoice, together less than it: paid in part, the rest still open
    bank = (
        "B1,2026-10-06,3000.00,HKD,FPS CR HO HO LING INV-2026-02001,,,001\n"
        "B2,2026-10-16,2500.00,HKD,FPS CR HO H L INV-2026-02001,,,001\n"
    )
    ledger = "INV-2026-02001,2026-09-22,9000.00,HKD,Design,Ho Ho Ling,INV-2026-02001,1100,invoice,\n"
    group = _by_bank(_run(tmp_path, bank, ledger))["B1;B2"]
    assert (group["match_type"], group["ledger_amount"], group["open_amount"]) == ("many_to_one", "5500.00", "3500.00")


def test_a_credit_of_another_payer_is_no_instalment(tmp_path):
    bank = (
        "B1,2026-10-05,4000.00,HKD,FPS CR CHAN TAI MAN INV-2026-01069,,,001\n"
        "B2,2026-10-20,6345.50,HKD,FPS CR LAU KA FAI,,,001\n"
    )
    ledger = "INV-2026-01069,2026-09-20,10345.50,HKD,Goods,Chan Tai Man,INV-2026-01069,1100,invoice,\n"
    result = _run(tmp_path, bank, ledger)
    assert "B1;B2" not in _by_bank(result)
    assert "B2" in set(result.outcome.unmatched_bank["id"])


def _instalment_score(rules) -> float:
    """The score of the group: a credit quoting the invoice and one of the payer quoting
    nothing, paying it exactly."""
    bank = pl.DataFrame([
        {"id": "B1", "date": date(2026, 10, 5), "amount_minor": 400000, "currency": "HKD",
         "description": "FPS CR CHAN TAI MAN INV-2026-01069"},
        {"id": "B2", "date": date(2026, 10, 20), "amount_minor": 634550, "currency": "HKD",
         "description": "FPS CR CHAN TAI MAN"},
    ]).pipe(lambda f: _conform(f, BANK_SCHEMA))
    ledger = pl.DataFrame([
        {"id": "INV-2026-01069", "date": date(2026, 9, 20), "amount_minor": 1034550, "currency": "HKD",
         "counterparty": "Chan Tai Man", "reference": "INV-2026-01069", "type": "invoice"},
    ]).pipe(lambda f: _conform(f, LEDGER_SCHEMA))
    groups = compound_groups(prepare_bank(bank), prepare_ledger(ledger, rules), rules)
    return groups.filter(kind="many_to_one")["score"][0]


def _conform(frame, schema):
    rows = frame.to_dicts()
    base = {c: "" for c in schema if schema[c] == pl.Utf8}
    data = [{**base, "attributes": "{}", "source_file": "t.csv", "source_line": i + 2, "due_date": None, **r}
            for i, r in enumerate(rows)]
    return pl.DataFrame(data, schema=schema)


def test_group_weights_are_read_from_the_rule_set():
    rules = default_rules()
    base = _instalment_score(rules)
    harsher = rules.with_changes(weights={"groups": {"unreferenced_instalment": -3.0}})
    assert _instalment_score(harsher) == base - 2.0
    capped = rules.with_changes(weights={"groups": {"instalment_max_total_bits": 1.0}})
    assert _instalment_score(capped) == base - 3.0


def test_instalments_quoting_a_two_digit_year_reference_run_together(tmp_path):
    # the books number invoices INV/26/6631; the bank prints it as written, run together with
    # its year (INV266631) and spaced (inv 26 6631): all three are instalments of one invoice.
    # The books name the customer in Chinese, the bank in English: only the references link them
    bank = (
        "B1,2026-10-01,6800.00,HKD,FPS CR DEPOSIT INV/26/6631 HOP CHEUNG PLASTICS CO LTD,,,001\n"
        "B2,2026-10-12,7300.00,HKD,AUTOPAY CR INV266631 HOP CHEUNG PLASTICS CO LTD,,,001\n"
        "B3,2026-10-15,4900.00,HKD,IBT CR inv 26 6631 HOP CHEUNG PLASTICS CO LIMITED,,,001\n"
    )
    ledger = "INV/26/6631,2026-09-15,25900.00,HKD,Printing job,合祥塑膠有限公司,INV/26/6631,1100,invoice,\n"
    group = _by_bank(_run(tmp_path, bank, ledger))["B1;B2;B3"]
    assert (group["match_type"], group["ledger_amount"], group["open_amount"]) == ("many_to_one", "19000.00", "6900.00")


def test_instalments_from_plainly_different_payers_are_never_automatic(tmp_path):
    # one credit quotes the invoice (a typo of another customer's number), the item's own payer
    # pays exactly the rest: the total fits, but two customers paid; a reviewer decides
    bank = (
        "B1,2026-10-05,2000.00,HKD,FPS CR WAH LUNG CONSULTING (HK) LTD INV-2026-03821,,,001\n"
        "B2,2026-10-22,500.00,HKD,AUTOPAY CR ORIENT LUCKY CONSULTING LIMITED,,,001\n"
    )
    ledger = ("INV-2026-03821,2026-10-03,2500.00,HKD,Consulting,Orient Lucky Consulting Limited,INV-2026-03821,"
              "1100,invoice,\n")
    rows = _by_bank(_run(tmp_path, bank, ledger))
    assert all(r["status"] == "review" for r in rows.values()), rows
    group = rows["B1;B2"]
    assert group["match_type"] == "many_to_one"
    assert "a payer name in the group differs from the others" in group["explanation"]


def test_a_line_naming_another_document_is_not_an_instalment_through_its_cheque_number(tmp_path):
    # B3's cheque number 032800 reads like INV-2026-32800's serial, but B3 names its own
    # invoice in full (INV-2026-57050, two digits swapped from 57500): it is that invoice's
    # payment, not a third instalment of 潘雅龍's
    bank = (
        "B1,2026-10-01,11700.00,HKD,CHQ DEP 332898 INV-2026-32800 潘雅龍,,,001\n"
        "B2,2026-10-08,12000.00,HKD,FPS CR INV-2026-32800 潘雅龍,,,001\n"
        "B3,2026-10-21,1000.00,HKD,CHQ DEP 032800 HOI TAI TAK INDUSTRIAL CO LTD INV-2026-57050,,,001\n"
    )
    ledger = (
        "INV-2026-32800,2026-09-12,44997.00,HKD,Office supplies,潘雅龍,INV-2026-32800,1100,invoice,\n"
        "INV-2026-57500,2026-09-28,1000.00,HKD,Electronic components,\"Hoi Tai Tak Industrial Co., Ltd.\","
        "INV-2026-57500,1100,invoice,\n"
    )
    rows = _by_bank(_run(tmp_path, bank, ledger))
    assert rows["B1;B2"]["ledger_ids"] == "INV-2026-32800"
    assert rows["B1;B2"]["open_amount"] == "21297.00"
    assert rows["B3"]["ledger_ids"] == "INV-2026-57500"


def test_a_confidence_just_below_the_threshold_is_shown_with_the_digits_that_tell_them_apart(tmp_path):
    # two part payments quoting the invoice, the payer in Chinese, the books in English: the
    # references alone are 0.9697, which two decimals would print as the threshold 0.97 itself
    bank = (
        "B1,2026-10-02,30000.00,HKD,FPS CR INV-2026-07215 信寶傢俬 有限公司,,,001\n"
        "B2,2026-10-16,20300.00,HKD,FPS CR INV-2026-07215 信寶傢俬 有限公司,,,001\n"
    )
    ledger = "INV-2026-07215,2026-09-20,68680.00,HKD,Furniture,Shun Po Furniture Ltd,INV-2026-07215,1100,invoice,\n"
    group = _by_bank(_run(tmp_path, bank, ledger))["B1;B2"]
    assert group["status"] == "review"
    assert "confidence 0.9697 below auto threshold 0.97" in group["explanation"]
