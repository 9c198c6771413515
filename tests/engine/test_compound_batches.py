"""One bank line paying several items without quoting them, through the whole pipeline: a
payroll run whose items share a reference the bank does not quote, a run told by its
description alone, and a customer paying several invoices under a name in another order.
Also the bounds: a cap that bites leaves a warning naming the payer, and the run completes.
"""

from __future__ import annotations

from pathlib import Path

import engine.api as recon
from rules import default_rules
from tests.engine.csv_month import match_csv

STAFF = [("Chan Siu Ming", 2_315_000), ("Lee Ka Wai", 1_980_050), ("Ho Wing Yan", 2_640_000),
         ("Tam Chi Keung", 1_775_525), ("Yip Lok Man", 2_101_000), ("Ng Hoi Ting", 1_688_800)]


def _run(tmp_path: Path, bank: str, ledger: str, rules=None) -> recon.MatchResult:
    return match_csv(tmp_path, bank, ledger, rules=rules)


def _money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def _payroll(reference: str) -> tuple[str, list[str]]:
    rows = [f"PAY-{i},2026-10-28,{_money(-amount)},HKD,October salary {name},{name},{reference},2200,payroll,\n"
            for i, (name, amount) in enumerate(STAFF)]
    return "".join(rows), [f"PAY-{i}" for i in range(len(STAFF))]


def test_payroll_total_without_a_quoted_reference(tmp_path):
    ledger, ids = _payroll("PAYROLL-2026-10")
    total = -sum(a for _, a in STAFF)
    bank = f"B1,2026-10-31,{_money(total)},HKD,AUTOPAY PAYROLL BATCH 202610,,,001\n"
    match = {r["bank_ids"]: r for r in _run(tmp_path, bank, ledger).proposals.iter_rows(named=True)}["B1"]
    assert match["match_type"] == "one_to_many"
    assert sorted(match["ledger_ids"].split(";")) == ids
    assert (match["difference"], match["adjustments"]) == ("0.00", "")
    assert "PAYROLL-2026-10" in match["explanation"]


def test_payroll_told_by_its_description_alone(tmp_path):
    ledger, ids = _payroll("")
    total = -sum(a for _, a in STAFF)
    bank = f"B1,2026-10-29,{_money(total)},HKD,AUTOPAY 7731,,,001\n"
    match = {r["bank_ids"]: r for r in _run(tmp_path, bank, ledger).proposals.iter_rows(named=True)}["B1"]
    assert sorted(match["ledger_ids"].split(";")) == ids
    assert "october salary" in match["explanation"]


def test_payer_subset_with_the_name_in_another_order(tmp_path):
    bank = "B1,2026-10-18,22970.26,HKD,TT IN KIN YEE CHEUNG,,,001\n"
    ledger = (
        "INV-2026-01201,2026-09-10,12000.00,HKD,Goods,Cheung Kin Yee,INV-2026-01201,1100,invoice,\n"
        "INV-2026-01202,2026-09-18,6970.26,HKD,Goods,Cheung Kin Yee,INV-2026-01202,1100,invoice,\n"
        "INV-2026-01203,2026-09-25,4000.00,HKD,Goods,Cheung Kin Yee,INV-2026-01203,1100,invoice,\n"
        "INV-2026-01204,2026-10-01,3333.00,HKD,Goods,Cheung Kin Yee,INV-2026-01204,1100,invoice,\n"
        "INV-2026-01205,2026-10-02,6970.26,HKD,Goods,Wong Tai Sin,INV-2026-01205,1100,invoice,\n"
    )
    match = {r["bank_ids"]: r for r in _run(tmp_path, bank, ledger).proposals.iter_rows(named=True)}["B1"]
    assert (match["match_type"], match["ledger_ids"]) == ("one_to_many", "INV-2026-01201;INV-2026-01202;INV-2026-01203")
    assert match["difference"] == "0.00"


def test_a_cap_that_bites_is_a_warning_and_the_run_completes(tmp_path):
    # one payer, 60 open invoices and 3 credits: each credit may be an instalment of at most
    # max_instalment_items invoices (5 here), the nearest in date
    ledger = "".join(
        f"INV-2026-{3000 + i:05d},2026-09-{1 + i % 28:02d},{1000 + i}.00,HKD,Goods,Chan Tai Man,"
        f"INV-2026-{3000 + i:05d},1100,invoice,\n" for i in range(60)
    )
    bank = (
        "B1,2026-10-05,400.00,HKD,FPS CR CHAN TAI MAN,,,001\n"
        "B2,2026-10-06,650.00,HKD,FPS CR CHAN TAI MAN,,,001\n"
        "B3,2026-10-07,1010.00,HKD,FPS CR CHAN TAI MAN INV-2026-03010,,,001\n"
    )
    rules = default_rules().with_changes(compound={"max_instalment_items": 5})
    result = _run(tmp_path, bank, ledger, rules=rules)
    warnings = [w for w in result.outcome.warnings if "compound.max_instalment_items" in w]
    assert len(warnings) == 1, result.outcome.warnings
    assert "payer 'CHAN TAI MAN' HKD" in warnings[0]
    # the run still matches what it can: the credit quoting its invoice
    rows = {r["bank_ids"]: r for r in result.proposals.iter_rows(named=True)}
    assert rows["B3"]["ledger_ids"] == "INV-2026-03010"
