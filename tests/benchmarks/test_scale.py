"""The scale benchmark: its shapes are valid canonical input with an exact truth, and its runner
measures a run, counts the shop's payouts and reports a table (tiny sizes only)."""

from __future__ import annotations

import json
import sys
from datetime import date

import polars as pl
import pytest

import benchmarks.scale as scale
from benchmarks import shapes
from engine import api

TINY = {
    "busy_shop": lambda: shapes.busy_shop(30, base_bank_lines=300, order_days=14, seed=1),
    "busy_shop_report": lambda: shapes.busy_shop(30, with_report=True, base_bank_lines=0, seed=2),
    "one_party": lambda: shapes.one_party(60, 300, base_bank_lines=200, seed=3),
    "common_amount": lambda: shapes.common_amount(400, seed=4),
    "independent_month": lambda: shapes.independent_month(600, seed=5),
}


def _minor(text: pl.Series) -> pl.Series:
    return (text.cast(pl.Decimal(18, 2)) * 100).cast(pl.Int64)


@pytest.fixture(scope="module", params=sorted(TINY))
def written(request, tmp_path_factory):
    month = TINY[request.param]()
    return request.param, month, shapes.save(month, tmp_path_factory.mktemp(request.param))


def test_every_shape_loads_as_canonical_input_without_a_rejected_row(written):
    _, month, paths = written
    bank, ledger = api.load_bank(str(paths["bank"])), api.load_ledger(str(paths["ledger"]))
    assert bank.rejects.height == 0 and ledger.rejects.height == 0
    assert ledger.frame.height == month["ledger"].height
    assert ledger.frame["id"].n_unique() == ledger.frame.height
    if "stripe" in paths:
        report = api.load_processor(str(paths["stripe"]))
        assert report.rejects.height == 0
        assert report.frame.height == month["stripe"].height


def test_every_truth_group_names_real_lines_and_balances(written):
    _, month, _ = written
    bank = month["bank"].unique("id").select("id", bank_minor=_minor(pl.col("amount")))
    ledger = month["ledger"].select("id", ledger_minor=_minor(pl.col("amount")))
    truth = month["truth"].filter(pl.col("case").is_in(["busy_shop_payout", "one_party", "common_amount"]))
    assert truth.height
    links = truth.select("group_id", "adjustments", bank_id=pl.col("bank_ids").str.split(";"),
                         ledger_id=pl.col("ledger_ids").str.split(";"))
    bank_total = links.explode("bank_id").join(bank, left_on="bank_id", right_on="id", how="left")
    ledger_total = links.explode("ledger_id").join(ledger, left_on="ledger_id", right_on="id", how="left")
    assert bank_total["bank_minor"].null_count() == 0 and ledger_total["ledger_minor"].null_count() == 0
    totals = (bank_total.group_by("group_id").agg(pl.col("bank_minor").sum(), pl.col("adjustments").first())
              .join(ledger_total.group_by("group_id").agg(pl.col("ledger_minor").sum()), on="group_id"))
    for row in totals.iter_rows(named=True):
        adjustment = sum(round(float(a["amount"]) * 100) for a in json.loads(row["adjustments"]))
        assert row["bank_minor"] == row["ledger_minor"] + adjustment, row["group_id"]


def test_the_busy_shop_pays_a_day_less_its_card_fees_two_business_days_later_weekends_on_monday():
    month = shapes.busy_shop(40, base_bank_lines=0, order_days=14, seed=6)
    bank, ledger, truth = month["bank"], month["ledger"], month["truth"]
    assert bank.height == 10 and truth.height == 10  # 2026-10-01 is a Thursday: 10 payouts
    assert set(bank["description"]) <= set(shapes.STRIPE_BANK_TEXTS)
    orders = ledger.filter(pl.col("type") == "order")
    assert orders["id"].str.starts_with("#").all()
    assert (orders["description"] == "Web order " + orders["id"] + " (Stripe)").all()
    assert orders["counterparty"].n_unique() == orders.height
    # Wednesday 7 October carries the orders of Saturday 3, Sunday 4 and Monday 5 October
    wednesday = truth.filter(pl.col("bank_ids") == bank.filter(pl.col("date") == "2026-10-07")["id"].item())
    days = ledger.filter(pl.col("id").is_in(wednesday["ledger_ids"].item().split(";")) & (pl.col("type") == "order"))
    assert sorted(days["date"].unique()) == ["2026-10-03", "2026-10-04", "2026-10-05"]
    fee = json.loads(wednesday["adjustments"].item())[0]
    expected = sum((m * 34 + 500) // 1000 + 235 for m in _minor(days["amount"]).to_list())
    assert fee["cause"] == "processor_fee" and round(float(fee["amount"]) * 100) == -expected


def test_the_report_names_orders_without_the_hash_and_adds_up_to_each_bank_credit():
    month = shapes.busy_shop(30, with_report=True, base_bank_lines=0, seed=7)
    report, bank = month["stripe"], month["bank"]
    assert not report["payment_metadata[order_id]"].str.contains("#").any()
    assert ("#" + report["payment_metadata[order_id]"]).is_in(month["ledger"]["id"].implode()).all()
    per_payout = report.group_by("automatic_payout_effective_at").agg(_minor(pl.col("net")).sum().alias("net"))
    credits = bank.select(automatic_payout_effective_at=pl.col("date") + " 00:00:00", net=_minor(pl.col("amount")))
    assert per_payout.sort("automatic_payout_effective_at").equals(credits.sort("automatic_payout_effective_at"))


def test_one_amount_is_on_half_of_all_lines_and_one_name_on_all_of_them():
    month = shapes.common_amount(600, seed=8)
    assert 0.45 < (month["bank"]["amount"] == "100.00").mean() < 0.55
    assert 0.45 < (month["ledger"]["amount"] == "100.00").mean() < 0.55
    one = shapes.one_party(50, 70, seed=9)
    assert one["ledger"]["counterparty"].unique().to_list() == [shapes.PAYER_LEDGER]
    assert one["bank"]["description"].str.contains(shapes.PAYER_BANK).all()


def test_shapes_are_the_same_for_the_same_seed():
    first, second = shapes.busy_shop(20, with_report=True, base_bank_lines=100, seed=3), \
        shapes.busy_shop(20, with_report=True, base_bank_lines=100, seed=3)
    assert all(first[k].equals(second[k]) for k in ("bank", "ledger", "truth", "stripe"))
    assert shapes.person_names([0, 1, 27_000])[2].startswith("Peter ")
    assert shapes._Calendar.of(date(2026, 10, 1)).n_days == 31


def test_payouts_found_counts_exact_groups_whatever_the_id_order():
    truth = pl.DataFrame({"group_id": ["P1", "P2"], "match_type": ["payout"] * 2, "bank_ids": ["S1", "S2"],
                          "ledger_ids": ["#1;#2", "#3"], "case": ["busy_shop_payout"] * 2})
    matches = pl.DataFrame({"status": ["review", "auto", "auto"], "bank_ids": ["S1", "S2", "B9"],
                            "ledger_ids": ["#2; #1", "#3;#4", "INV-1"]})
    assert scale.payouts_found(matches, truth) == (1, 0, 2)


def test_measure_reports_wall_and_peak_memory_and_kills_a_run_past_the_limit(tmp_path):
    grow = [sys.executable, "-c", "x = bytearray(300 * 2**20); import time; time.sleep(0.5)"]
    ok = scale.measure(grow, tmp_path / "ok.log", timeout=60, rss_limit=8 * 2**30)
    assert ok.status == "ok" and ok.peak_rss_bytes > 300 * 2**20 and ok.wall_seconds > 0.4
    killed = scale.measure([sys.executable, "-c", "x = bytearray(600 * 2**20); import time; time.sleep(30)"],
                           tmp_path / "big.log", timeout=60, rss_limit=200 * 2**20)
    assert killed.status.startswith("killed") and killed.wall_seconds < 30
    slow = scale.measure([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "slow.log", timeout=1,
                         rss_limit=8 * 2**30)
    assert slow.status.startswith("timeout")


def test_the_runner_runs_recon_and_the_duckdb_join_and_reports_a_table(tmp_path):
    case = scale.Case("tiny_shop", "tiny", (8, 16),
                      lambda n: shapes.busy_shop(n, with_report=True, base_bank_lines=150, order_days=7, seed=1),
                      duckdb=True)
    results = [scale.run_case(case, n, timeout=300, rss_limit=8 * 2**30, keep=False, stages=False, data_dir=tmp_path)
               for n in case.sizes]
    for r in results:
        assert r.recon.status == "ok", r.recon.status
        assert r.recon.peak_rss_bytes > 50 * 2**20 and r.bank_lines > 150 and r.processor_lines > 0
        assert r.payouts_truth >= 3 and 0 <= r.payouts_exact <= r.payouts_truth
        assert r.join.status == "ok" and r.join_pairs >= 0
    text = scale.table(results)
    assert text.count("`tiny_shop`") == 2 and " of " in text and "x |" in text.splitlines()[-1] + " |"
    assert not any(tmp_path.iterdir())  # months are deleted unless kept


def test_the_stage_probe_names_every_stage(tmp_path):
    paths = shapes.save(shapes.busy_shop(10, base_bank_lines=150, order_days=7, seed=2), tmp_path)
    rows = scale.probe_stages(paths, tmp_path, timeout=300, rss_limit=8 * 2**30)
    stages = [r["stage"] for r in rows]
    assert {"candidate pairs", "groups: compound", "groups: inferred payouts", "whole match_prepared"} <= set(stages)
    assert all(r["status"] == "ok" for r in rows if r["stage"] != "  caps that bit")
    assert "| groups: inferred payouts |" in scale.stage_tables([scale.RunResult("x", 1, stages=rows)])
