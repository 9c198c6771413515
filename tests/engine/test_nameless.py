"""Nameless bank lines: a rare exact amount makes a proposal, but never an automatic match
unless a reference confirms it (the amount and the date alone prove nothing)."""

from __future__ import annotations

import engine.api as recon
from tests.engine.csv_month import match_csv, proposals_by_bank

LEDGER = (
    "RCPT-1,2026-09-14,28808.15,HKD,Cheque received,Golden Harbour Ltd,,1010,receipt,\n"
    "INV-2026-01069,2026-10-06,31474.33,HKD,Design fee,Pearl Logistics Ltd,,1100,invoice,\n"
    "RCPT-2,2026-10-20,39300.00,HKD,Cheque received,Kowloon Lotus Ltd,,1010,receipt,\n"
    "INV-2026-01070,2026-10-01,5000.00,HKD,Design fee,Kam Wing Ltd,,1100,invoice,\n"
)


def _run(tmp_path, bank_rows: str):
    return proposals_by_bank(tmp_path, bank_rows, LEDGER)


def test_a_cheque_deposited_late_with_the_only_item_of_its_amount_is_proposed_for_review(tmp_path):
    # the only open receipt of 28,808.15, booked 16 days before the deposit (just outside a
    # receipt's window)
    rows = _run(tmp_path, "B1,2026-09-30,28808.15,HKD,\"CHEQUE DEPOSIT 28,808.15\",,,001\n")
    assert (rows["B1"]["ledger_ids"], rows["B1"]["status"]) == ("RCPT-1", "review")


def test_a_nameless_transfer_less_a_bank_charge_is_proposed_for_review(tmp_path):
    rows = _run(tmp_path, "B1,2026-10-06,31424.33,HKD,\"TT IN 31,424.33\",,,001\n")
    assert (rows["B1"]["ledger_ids"], rows["B1"]["status"]) == ("INV-2026-01069", "review")
    assert rows["B1"]["adjustments"].startswith("bank_charge -50.00")


def test_a_unique_amount_on_the_same_day_is_still_not_proof(tmp_path):
    rows = _run(tmp_path, "B1,2026-10-20,39300.00,HKD,CHEQUE DEPOSIT,,,001\n")
    assert (rows["B1"]["ledger_ids"], rows["B1"]["status"]) == ("RCPT-2", "review")
    assert "no payer name to compare and no reference" in rows["B1"]["explanation"]


def test_a_reference_makes_a_nameless_line_automatic(tmp_path):
    rows = _run(tmp_path, "B1,2026-10-02,5000.00,HKD,TT IN INV-2026-01070,,,001\n")
    assert (rows["B1"]["ledger_ids"], rows["B1"]["status"]) == ("INV-2026-01070", "auto")


def test_the_rule_set_may_let_a_unique_amount_decide_alone(tmp_path):
    rules = recon.default_rules().with_changes(thresholds={"auto_needs_name_or_reference": False})
    result = match_csv(tmp_path, "B1,2026-10-20,39300.00,HKD,CHEQUE DEPOSIT,,,001\n", LEDGER, rules=rules)
    assert result.proposals.row(0, named=True)["status"] == "auto"


def test_a_cheque_deposited_a_month_after_the_receipt_is_still_proposed_for_review(tmp_path):
    # 30 days: far outside a receipt's window, so the date counts against the pair, but no
    # other open item has 28,808.15 and nothing else speaks against it
    rows = _run(tmp_path, "B1,2026-10-14,28808.15,HKD,CHQ DEP,,,001\n")
    assert (rows["B1"]["ledger_ids"], rows["B1"]["status"]) == ("RCPT-1", "review")
    assert "no other open item has this amount" in rows["B1"]["explanation"]


def test_a_remittance_with_its_amount_glued_to_the_currency_less_a_charge_is_proposed(tmp_path):
    # "HKD31,424.33" is the amount, not a payer called "hkd"; 65.00 less, a week later
    rows = _run(tmp_path, "B1,2026-10-13,31409.33,HKD,\"REMITTANCE HKD31,409.33\",,,001\n")
    assert (rows["B1"]["ledger_ids"], rows["B1"]["status"]) == ("INV-2026-01069", "review")
    assert rows["B1"]["adjustments"].startswith("bank_charge -65.00")
    assert "no payer name to compare" in rows["B1"]["explanation"]


def test_a_nameless_line_whose_amount_many_items_share_is_not_lifted(tmp_path):
    shared = "".join(
        f"RCPT-S{i},2026-09-14,4200.00,HKD,Cheque received,Party {i} Ltd,,1010,receipt,\n" for i in range(5)
    )
    result = match_csv(tmp_path, "B1,2026-10-20,4200.00,HKD,CHQ DEP,,,001\n", LEDGER + shared)
    assert result.proposals.height == 0
    assert result.unmatched_bank["id"].to_list() == ["B1"]


def test_a_payer_who_is_plainly_someone_else_is_not_lifted(tmp_path):
    # the only item of the amount, a month late, but the bank names another payer
    rows = _run(tmp_path, "B1,2026-10-14,28808.15,HKD,FPS CR WONG SIU MING,,,001\n")
    assert "B1" not in rows


def test_the_rule_set_may_turn_the_review_floor_off(tmp_path):
    rules = recon.default_rules().with_changes(thresholds={"review_floor_max_items": 0})
    result = match_csv(tmp_path, "B1,2026-10-14,28808.15,HKD,CHQ DEP,,,001\n", LEDGER, rules=rules)
    assert result.proposals.height == 0 and result.unmatched_bank["id"].to_list() == ["B1"]


def _busy_month(tmp_path, rules=None):
    # many items nearer in amount than 31,474.33, but booked months before (outside an
    # invoice's window)
    busy = "".join(
        f"INV-2026-00{100 + i},2026-03-{1 + i:02d},{31425 + i}.00,HKD,Design fee,Customer {i} Ltd,,1100,invoice,\n"
        for i in range(12)
    )
    bank = "B1,2026-10-06,31424.33,HKD,\"TT IN 31,424.33\",,,001\n"
    return proposals_by_bank(tmp_path, bank, LEDGER + busy, rules=rules)


def test_a_nameless_transfer_less_a_charge_is_found_in_a_busy_ledger(tmp_path):
    # the invoice booked the same day, 50.00 more, is still proposed
    row = _busy_month(tmp_path)["B1"]
    assert (row["ledger_ids"], row["status"]) == ("INV-2026-01069", "review")
    assert row["adjustments"].startswith("bank_charge -50.00")


def test_the_rule_set_may_turn_the_near_date_search_off(tmp_path):
    rules = recon.default_rules().with_changes(candidates={"nameless_near_days": 0})
    assert "B1" not in _busy_month(tmp_path, rules)
