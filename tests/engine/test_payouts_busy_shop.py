"""Processor payouts without a report, a busy shop: card orders every day, one Stripe credit
per business day for the net of that day's orders (weekends rolled into Monday) and refunds,
less 2.9% + HKD 2.35 per order, two business days later.

The acceptance month of issue 11 is this shop at 2,000 orders a day for a month (run by hand:
``python -m tests.engine.test_payouts_busy_shop OUT_DIR`` writes its canonical CSVs and truth);
the test runs it at 200 orders a day for two weeks through the whole pipeline.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

import engine.api as recon

START = date(2026, 10, 1)  # a Thursday
FEE_PER_MILLE = 29  # 2.9 %
FEE_FIXED_MINOR = 235  # HKD 2.35 per order
REFUNDS_PER_DAY = 3


def _business_days_after(day: date, n: int) -> date:
    while n:
        day += timedelta(days=1)
        n -= day.weekday() < 5
    return day


def busy_shop(out: Path, orders_per_day: int, days: int, seed: int = 7) -> pl.DataFrame:
    """Write ``bank.csv`` and ``ledger.csv`` of the busy shop into ``out``; return the truth:
    one row per payout (``bank_id``, ``ledger_ids`` sorted, ``fee_minor``)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    n = orders_per_day * days
    day_no = np.repeat(np.arange(days), orders_per_day)
    amount = np.round(np.exp(rng.normal(np.log(280.0), 0.8, n)) * 100).astype(np.int64) + 1_000
    order_no = 5_000 + np.arange(n)
    dates = [START + timedelta(days=int(d)) for d in range(days)]
    customers = [f"Customer {i} {chr(65 + i % 26)}" for i in rng.integers(0, 10**6, n)]
    ledger = pl.DataFrame(
        {
            "id": [f"#{k}" for k in order_no],
            "date": [dates[d] for d in day_no],
            "amount_minor": amount,
            "description": [f"Web order #{k} (Stripe)" for k in order_no],
            "counterparty": customers,
            "type": "order",
        }
    )
    # a few refunds a day of earlier orders, netted into the payout of their own day
    r_day = np.repeat(np.arange(1, days), REFUNDS_PER_DAY)
    r_order = rng.integers(0, (r_day) * orders_per_day)
    r_amount = -np.minimum(amount[r_order], 5_000 + rng.integers(0, 20_000, len(r_order)))
    refunds = pl.DataFrame(
        {
            "id": [f"#{order_no[o]}-R{i}" for i, o in enumerate(r_order)],
            "date": [dates[d] for d in r_day],
            "amount_minor": r_amount,
            "description": [f"Refund #{order_no[o]} (Stripe)" for o in r_order],
            "counterparty": [customers[o] for o in r_order],
            "type": "credit_note",
        }
    )
    ledger = pl.concat([ledger, refunds])
    fee = (amount * FEE_PER_MILLE + 500) // 1_000 + FEE_FIXED_MINOR
    # the payout of business day B settles the days after the business day before B, up to B
    settle = []
    for d in dates:
        b = d
        while b.weekday() >= 5:
            b += timedelta(days=1)
        settle.append(b)
    ledger = ledger.with_columns(
        payout=pl.col("date").replace_strict(dict(zip(dates, settle, strict=True)), return_dtype=pl.Date),
        fee=pl.concat([pl.Series(fee), pl.Series(np.zeros(len(r_order), dtype=np.int64))]),
    )
    last_paid = _business_days_after(dates[-1], 0)
    truth = (
        ledger.filter(pl.col("payout") <= dates[-1] if last_paid == dates[-1] else pl.col("payout") < last_paid)
        .group_by("payout")
        .agg(
            ledger_ids=pl.col("id").sort(),
            gross=pl.col("amount_minor").sum(),
            fee_minor=-pl.col("fee").sum(),
        )
        .sort("payout")
        .with_columns(
            bank_date=pl.col("payout").map_elements(
                lambda b: _business_days_after(b, 2), return_dtype=pl.Date
            ),
            bank_id=pl.format("B{}", pl.int_range(pl.len()) + 1),
        )
    )
    bank = truth.select(
        "bank_id",
        "bank_date",
        amount_minor=pl.col("gross") + pl.col("fee_minor"),
        description=pl.lit("CR TRF STRIPE PAYMENTS UK LTD"),
    )

    def money(col: str) -> pl.Expr:
        sign = pl.when(pl.col(col) < 0).then(pl.lit("-")).otherwise(pl.lit(""))
        a = pl.col(col).abs()
        return sign + (a // 100).cast(pl.Utf8) + "." + (a % 100).cast(pl.Utf8).str.zfill(2)

    bank.select(
        id="bank_id", date="bank_date", amount=money("amount_minor"), currency=pl.lit("HKD"),
        description="description", account=pl.lit("004-512345-001"),
    ).write_csv(out / "bank.csv")
    ledger.select(
        "id", "date", amount=money("amount_minor"), currency=pl.lit("HKD"), description="description",
        counterparty="counterparty", account=pl.lit("1150"), type="type",
    ).write_csv(out / "ledger.csv")
    return truth.select("bank_id", "ledger_ids", "fee_minor")


def payouts_found(result, truth: pl.DataFrame) -> int:
    """How many true payouts were proposed exactly: the credit with exactly its orders and
    refunds, and the fee booked as ``processor_fee``."""
    proposed = result.proposals.filter(pl.col("match_type") == "payout")
    found = 0
    for row in truth.iter_rows(named=True):
        hit = proposed.filter(pl.col("bank_ids") == row["bank_id"])
        if hit.height == 1 and sorted(hit["ledger_ids"][0].split(";")) == sorted(row["ledger_ids"]):
            found += 1
    return found


def test_busy_shop_two_weeks(tmp_path):
    # 200 orders a day for two weeks, Thu 1 to Wed 14 October: 10 payouts, one per business
    # day's orders, Monday's with the weekend's (Sat + Sun + Mon)
    truth = busy_shop(tmp_path, orders_per_day=200, days=14)
    result = recon.match(bank=tmp_path / "bank.csv", ledger=tmp_path / "ledger.csv")
    assert truth.height == 10
    assert payouts_found(result, truth) == truth.height
    proposed = result.proposals.filter(pl.col("match_type") == "payout")
    assert (proposed["status"] == "review").all()  # a fee inferred without a report
    monday = proposed.filter(pl.col("explanation").str.contains("with the weekend before it"))
    assert monday.height == 2  # 2026-10-05 and 2026-10-12 settle Sat + Sun + Mon
    # every day but the first has 3 refunds, netted into its payout (Mondays: three days')
    netted = proposed["explanation"].str.extract(r"(\d+) refunds netted").cast(pl.Int64).fill_null(0)
    assert sorted(netted.to_list()) == [0] + [3] * 7 + [9] * 2
    assert proposed["adjustments"].str.starts_with("processor_fee -").all()


if __name__ == "__main__":  # the acceptance month, by hand
    target = Path(sys.argv[1])
    per_day = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    days = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    busy_shop(target, per_day, days).with_columns(pl.col("ledger_ids").list.join(";")).write_csv(
        target / "truth_payouts.csv"
    )
