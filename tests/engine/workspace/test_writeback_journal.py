"""The adjustment journal of a written-back match: each adjustment between its cause's account and
the match's control account, debits = credits per currency, exact minor units."""

from __future__ import annotations

import re
from datetime import date

import pytest

from engine.adapters import MatchLine
from engine.workspace.writeback import _ItemProblem, journal_lines
from rules.model import default_rules, from_mapping

RULES = default_rules()


def _lines(bank_minor: int, ledger_minor: int, currency: str = "HKD", bank_dates=(date(2026, 10, 5),)):
    bank = [MatchLine("bank", f"B{i}", d, bank_minor // len(bank_dates), currency, "陳大文")
            for i, d in enumerate(bank_dates, 1)]
    return [*bank, MatchLine("ledger", "INV-1", date(2026, 9, 1), ledger_minor, currency, "陳大文")]


# match type, adjustments, difference, bank, ledger, ledger types -> (account, debit, credit) lines
CASES = [
    ("money in short by a bank charge", "one_to_one", "bank_charge -120.00 (6800)", "-120.00", 294633, 306633,
     ["invoice"], [("6800", 12000, 0), ("1100", 0, 12000)]),
    ("money in short-paid, written off", "one_to_one", "short_payment -7.00 (6900)", "-7.00", 678000, 678700,
     ["invoice"], [("6900", 700, 0), ("1100", 0, 700)]),
    ("money in overpaid, held for the customer", "one_to_one", "overpayment 10.00 (2190)", "10.00", 101000, 100000,
     ["invoice"], [("1100", 1000, 0), ("2190", 0, 1000)]),
    ("money out costing more", "one_to_one", "bank_charge -5.00 (6800)", "-5.00", -10500, -10000,
     ["bill"], [("6800", 500, 0), ("2100", 0, 500)]),
    ("money out with a discount taken", "one_to_one", "short_payment 2.00 (6900)", "2.00", -9800, -10000,
     ["bill"], [("2100", 200, 0), ("6900", 0, 200)]),
    ("fx difference and a bank charge", "one_to_one", "fx_difference -72.12 (7100); bank_charge -100.00 (6800)",
     "-172.12", 1728266, 1745478, ["invoice"],
     [("7100", 7212, 0), ("1100", 0, 7212), ("6800", 10000, 0), ("1100", 0, 10000)]),
    ("payout fee against processor clearing", "payout", "processor_fee -727.78 (6810)", "-727.78", 1623632,
     1696410, ["order", "order"], [("6810", 72778, 0), ("1190", 0, 72778)]),
    ("report lines left in clearing stay there", "payout",
     "processor_fee -10.00 (6810); unlinked_report_lines 50.00 (1190)", "40.00", 104000, 100000, ["order"],
     [("6810", 1000, 0), ("1190", 0, 1000)]),
    ("cash-book lines book against the bank", "one_to_one", "bank_charge -1.00 (6800)", "-1.00", -5100, -5000,
     ["payment"], [("6800", 100, 0), ("1010", 0, 100)]),
    ("no account in the cell: the rule set's", "one_to_one", "bank_charge -50.00", "-50.00", 95000, 100000,
     ["invoice"], [("6800", 5000, 0), ("1100", 0, 5000)]),
    ("amounts agree: no journal", "one_to_one", "", "0.00", 50000, 50000, ["invoice"], []),
]


@pytest.mark.parametrize(("case", "match_type", "adjustments", "difference", "bank", "ledger", "types", "expected"),
                         CASES, ids=[c[0] for c in CASES])
def test_journal_lines(case, match_type, adjustments, difference, bank, ledger, types, expected):
    journal = journal_lines("M-1", match_type, "HKD", adjustments, difference, _lines(bank, ledger), types, RULES)
    assert [(j.account, j.debit_minor, j.credit_minor) for j in journal] == expected
    assert sum(j.debit_minor for j in journal) == sum(j.credit_minor for j in journal)
    assert all(j.date == date(2026, 10, 5) and j.currency == "HKD" and j.match_id == "M-1" for j in journal)


def test_dated_on_the_latest_bank_line_and_memo_names_the_lines():
    lines = _lines(200000, 201000, bank_dates=(date(2026, 10, 3), date(2026, 10, 9)))
    [debit, _credit] = journal_lines("M-1", "many_to_one", "HKD", "short_payment -10.00 (6900)", "-10.00", lines,
                                     ["invoice"], RULES)
    assert debit.date == date(2026, 10, 9)
    assert debit.memo == "short_payment: bank B1, B2 / ledger INV-1 (陳大文)"


def test_currency_without_decimals():
    [debit, credit] = journal_lines("M-1", "one_to_one", "JPY", "bank_charge -500 (6800)", "-500",
                                    _lines(99500, 100000, "JPY"), ["invoice"], RULES)
    assert (debit.debit_minor, credit.credit_minor, debit.currency) == (500, 500, "JPY")


def test_control_accounts_come_from_the_rule_set():
    rules = from_mapping({"writeback": {"receivables": "1200", "cash_book_types": ["Receipt"]}})
    journal = journal_lines("M-1", "one_to_one", "HKD", "bank_charge -1.00 (6800)", "-1.00", _lines(9900, 10000),
                            ["invoice"], rules)
    assert [j.account for j in journal] == ["6800", "1200"]
    assert rules.writeback.cash_book_types == ("receipt",)


@pytest.mark.parametrize(("adjustments", "difference", "message"), [
    ("goodwill -1.00", "-1.00", "adjustment cause 'goodwill' has no account"),
    ("bank charge of one dollar", "-1.00", "is not 'cause amount (account)'"),
    ("bank_charge -1.001 (6800)", "-1.001", "more decimals than HKD allows"),
    ("bank_charge -1.00 (6800)", "-2.00", "add up to -1.00 HKD, not the difference -2.00 HKD"),
])
def test_adjustments_that_cannot_be_booked_say_why(adjustments, difference, message):
    with pytest.raises(_ItemProblem, match=re.escape(message)):
        journal_lines("M-1", "one_to_one", "HKD", adjustments, difference, _lines(9900, 10000), ["invoice"], RULES)


def test_invalid_writeback_settings_are_all_reported():
    from models.errors import RuleConfigError

    with pytest.raises(RuleConfigError) as caught:
        from_mapping({"writeback": {"receivables": "", "batch_size": 0, "clearing": "1190"}})
    text = str(caught.value)
    assert "3 problem(s)" in text and "writeback.receivables" in text and "writeback.batch_size" in text
    assert "writeback.clearing: unknown setting" in text
