"""Compound matching end to end on a generated month (all case types) and on hand-made lines.

What an accountant checks first: every proposal balances to the cent (bank total = ledger total
in the bank currency + adjustment lines), no bank line or ledger item is used twice, each match
type is found, and nothing auto-accepted is wrong.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

import engine.api as recon
from benchmarks.generate import write
from engine.evaluate import load_truth, parse_adjustments
from models.schema import ID_SEPARATOR


@pytest.fixture(scope="module")
def month(tmp_path_factory) -> tuple[Path, recon.MatchResult]:
    out = tmp_path_factory.mktemp("month")
    write(out, 3000, seed=11)
    result = recon.match(out / "bank.csv", out / "ledger.csv", fx=out / "fx.csv", processor=out / "stripe_payouts.csv")
    return out, result


def _minor(text: str) -> int:
    return int(Decimal(text).scaleb(2))


def test_every_proposal_balances_exactly(month):
    _, result = month
    rows = result.proposals.select("bank_amount", "ledger_amount", "difference", "adjustments", "match_id")
    for bank, ledger, difference, adjustments, match_id in rows.iter_rows():
        parsed = parse_adjustments(adjustments)
        assert parsed is not None, (match_id, adjustments)
        assert _minor(bank) - _minor(ledger) == _minor(difference) == sum(a for _, a in parsed), match_id


def test_no_line_or_item_is_used_twice(month):
    _, result = month
    for column in ("bank_ids", "ledger_ids"):
        ids = result.proposals[column].str.split(ID_SEPARATOR).explode()
        assert ids.is_duplicated().sum() == 0, column


def test_every_match_type_is_found_and_auto_matches_are_right(month):
    out, result = month
    report = recon.evaluate(result, load_truth(out / "truth.csv"))
    for match_type in ("one_to_one", "one_to_many", "many_to_one", "payout"):
        assert report.recall_by_type[match_type] >= 0.95, (match_type, report.recall_by_type)
    assert report.auto_error_rate <= 0.002
    assert report.adjustment_total_accuracy >= 0.98


def test_match_lines_carry_each_member_once(month):
    _, result = month
    lines = result.outcome.match_lines
    grouped = result.proposals.filter(pl.col("match_type") != "one_to_one").head(20)
    for match_id, bank_ids, ledger_ids in grouped.select("match_id", "bank_ids", "ledger_ids").iter_rows():
        mine = lines.filter(pl.col("match_id") == match_id)
        assert sorted(mine.filter(pl.col("side") == "bank")["id"]) == sorted(bank_ids.split(ID_SEPARATOR))
        assert sorted(mine.filter(pl.col("side") == "ledger")["id"]) == sorted(ledger_ids.split(ID_SEPARATOR))


BANK = """id,date,amount,currency,description,counterparty,reference,account
B1,2026-10-05,9925.00,HKD,CR TRF KAM TAK ENGINEERING CO LTD INV-2026-01109 INV-2026-01473,,,001
B2,2026-10-06,5000.00,HKD,FPS CR PART PYT INV-2026-02000 陳大文,,,001
B3,2026-10-20,3000.00,HKD,FPS CR PART PYT INV-2026-02000 陳大文,,,001
B4,2026-10-08,7749.32,HKD,TT IN USD1000.00 GRANITE NORTHWIND RETAIL INC INV-2026-03000,,,001
"""
LEDGER = """id,date,amount,currency,description,counterparty,reference,account,type,due_date
INV-2026-01109,2026-09-01,1925.00,HKD,Packaging,Kam Tak Engineering Co Ltd,INV-2026-01109,1100,invoice,
INV-2026-01473,2026-09-03,8000.00,HKD,Installation,Kam Tak Engineering Co Ltd,INV-2026-01473,1100,invoice,
INV-2026-02000,2026-09-20,10000.00,HKD,Goods,陳大文,INV-2026-02000,1100,invoice,
INV-2026-03000,2026-09-25,1000.00,USD,Consulting,Granite Northwind Retail Inc.,INV-2026-03000,1100,invoice,
"""
FX = """date,base,quote,rate
2026-10-07,USD,HKD,7.8000
"""


def test_hand_made_compound_lines(tmp_path):
    (tmp_path / "bank.csv").write_text(BANK, encoding="utf-8")
    (tmp_path / "ledger.csv").write_text(LEDGER, encoding="utf-8")
    (tmp_path / "fx.csv").write_text(FX, encoding="utf-8")
    result = recon.match(tmp_path / "bank.csv", tmp_path / "ledger.csv", fx=tmp_path / "fx.csv")
    rows = {r["bank_ids"]: r for r in result.proposals.iter_rows(named=True)}

    listed = rows["B1"]
    assert (listed["match_type"], listed["ledger_ids"]) == ("one_to_many", "INV-2026-01109;INV-2026-01473")
    assert (listed["bank_amount"], listed["ledger_amount"], listed["adjustments"]) == ("9925.00", "9925.00", "")

    instalments = rows["B2;B3"]
    assert (instalments["match_type"], instalments["ledger_ids"]) == ("many_to_one", "INV-2026-02000")
    assert instalments["open_amount"] == "2000.00"  # 10,000 invoiced, 8,000 paid so far
    assert "陳大文" in instalments["bank_descriptions"]

    fx = rows["B4"]
    # USD 1,000.00 at 7.8000 (nearest earlier rate, 2026-10-07) = HKD 7,800.00; credited 7,749.32
    assert (fx["ledger_ids"], fx["ledger_amount"], fx["difference"]) == ("INV-2026-03000", "7800.00", "-50.68")
    assert sum(a for _, a in parse_adjustments(fx["adjustments"])) == -5068
    assert "fx_difference" in fx["adjustments"]
