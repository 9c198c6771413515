"""Tests of the FX rates feed (feeds stage)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from feeds import read_fx_csv
from feeds.fx import FX_SCHEMA, rate_on
from models.errors import FeedFormatError
from models.schema import REJECTS_SCHEMA

FX_SAMPLE = str(Path(__file__).parent / "data" / "fx_sample.csv")


def test_fx_sample_rates_kept_as_exact_text():
    rates, rejects = read_fx_csv(FX_SAMPLE)
    assert rates.schema == pl.Schema(FX_SCHEMA)
    assert rejects.schema == pl.Schema(REJECTS_SCHEMA)
    assert rates.select("date", "base", "quote", "rate_text", "source_line").rows() == [
        (dt.date(2026, 1, 5), "USD", "HKD", "7.8125", 2),
        (dt.date(2026, 1, 5), "EUR", "HKD", "8.4710", 3),
        (dt.date(2026, 1, 6), "USD", "HKD", "7.81250", 4),  # codes upper-cased, blanks stripped
        (dt.date(2026, 1, 7), "KWD", "HKD", "25.412", 10),
    ]
    assert rates["rate"].to_list() == [7.8125, 8.471, 7.8125, 25.412]
    assert set(rates["source_file"]) == {FX_SAMPLE}


def test_fx_bad_rows_rejected_with_reasons():
    _rates, rejects = read_fx_csv(FX_SAMPLE)
    rows = {row["line"]: row for row in rejects.iter_rows(named=True)}
    # line 5 repeats line 2 with the same rate (7.81250 == 7.8125): dropped, not rejected
    assert sorted(rows) == [6, 7, 8, 9]
    assert rows[6]["column"] == "rate"
    assert "contradicts rate '7.8125' given on line 2" in rows[6]["reason"]
    assert rows[6]["raw"] == "2026-01-05,USD,HKD,7.9000,other"
    assert (
        rows[7]["reason"]
        == "rate '-7.8' is not a positive decimal number ('.' separator, e.g. 7.8125)"
    )
    assert rows[8]["reason"].startswith("base and quote are both 'USD'")
    assert rows[9]["column"] == "quote"
    assert rows[9]["reason"].startswith("quote 'XYZ' is not an ISO 4217 code")


@pytest.mark.parametrize("rate", ["0", "0.000", "1,5", "7.8e0", ".5", "abc", ""])
def test_fx_rate_must_be_positive_decimal(tmp_path, rate):
    path = tmp_path / "fx.csv"
    path.write_text(f"date,base,quote,rate\n2026-01-05,USD,HKD,{rate}\n", encoding="utf-8")
    rates, rejects = read_fx_csv(str(path))
    assert rates.height == 0
    assert rejects.height == 1 and rejects["line"][0] == 2


def test_fx_any_column_order_and_case(tmp_path):
    path = tmp_path / "fx.csv"
    path.write_text("Rate,QUOTE,Base,Date\n7.8125,HKD,USD,2026-01-05\n", encoding="utf-8")
    rates, _ = read_fx_csv(str(path))
    assert rates.select("date", "base", "quote", "rate_text").row(0) == (
        dt.date(2026, 1, 5),
        "USD",
        "HKD",
        "7.8125",
    )


def test_fx_missing_column(tmp_path):
    path = tmp_path / "fx.csv"
    path.write_text("date,from,to,rate\n2026-01-05,USD,HKD,7.8\n", encoding="utf-8")
    with pytest.raises(FeedFormatError, match="missing required columns 'base', 'quote'"):
        read_fx_csv(str(path))


def test_rate_on_takes_latest_rate_on_or_before():
    rates, _ = read_fx_csv(FX_SAMPLE)
    assert rate_on(rates, dt.date(2026, 1, 5), "USD", "HKD") == "7.8125"
    assert rate_on(rates, dt.date(2026, 1, 9), "USD", "HKD") == "7.81250"
    assert rate_on(rates, dt.date(2026, 1, 4), "USD", "HKD") is None
    assert rate_on(rates, dt.date(2026, 1, 9), "HKD", "USD") is None  # no inverse
