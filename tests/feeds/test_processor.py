"""Tests of the payment processor payout report feed (feeds stage)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from feeds import read_processor_file
from feeds.processor import PAYOUT_LINE_SCHEMA, identify
from models import schema
from models.errors import FeedFormatError
from models.schema import REJECTS_SCHEMA
from tests.feeds import helpers

STRIPE_SAMPLE = str(Path(__file__).parent / "data" / "stripe_payout_sample.csv")
REAL_STRIPE_CSV = helpers.REALDATA / "stripe" / "hledger_stripe_balance_change_from_activity.csv"


def test_payout_line_schema_lives_in_models_and_is_re_exported():
    assert PAYOUT_LINE_SCHEMA is schema.PAYOUT_LINE_SCHEMA
    assert {"created", "order_id", "available_on", "net_minor"} <= set(PAYOUT_LINE_SCHEMA)


def test_stripe_sample_payout_lines():
    lines, rejects = read_processor_file(STRIPE_SAMPLE)
    assert lines.schema == pl.Schema(PAYOUT_LINE_SCHEMA)
    assert rejects.schema == pl.Schema(REJECTS_SCHEMA)
    assert lines.select(
        "payout_id", "line_id", "category", "currency", "gross_minor", "fee_minor", "net_minor"
    ).rows() == [
        ("po_1OaHk2", "txn_3OaA01", "charge", "HKD", 10000, 320, 9680),
        ("po_1OaHk2", "txn_3OaA02", "refund", "HKD", -2500, 0, -2500),
        ("po_1OaHk2", "txn_3OaA03", "dispute", "HKD", -1000, 1500, -2500),
        ("po_2JpYen", "txn_3OaB01", "charge", "JPY", 1000, 36, 964),
    ]
    assert lines["source_line"].to_list() == [2, 3, 4, 7]
    assert lines["available_on"].to_list() == [
        dt.date(2026, 1, 8),
        dt.date(2026, 1, 8),
        dt.date(2026, 1, 8),
        dt.date(2026, 1, 10),
    ]
    assert set(lines["processor"]) == {"stripe"}
    first = lines.row(0, named=True)
    assert first["source_id"] == "ch_3OaA01"
    assert lines["description"][1] == "Refund for order 1001, partial"
    attributes = json.loads(first["attributes"])
    assert attributes["payment_metadata[order_id]"] == "1001"
    assert attributes["payment_metadata[客戶]"] == "陳大文"
    assert first["created"] == dt.date(2026, 1, 5)  # from created_utc
    assert first["order_id"] == "1001"  # from payment_metadata[order_id]
    assert attributes["created"] == "2026-01-05 16:00:00"  # local-time columns kept aside
    assert attributes["available_on"] == "2026-01-08 08:00:00"
    assert attributes["reporting_category"] == "charge"  # Stripe's own category, as written
    assert "gross" not in attributes and "balance_transaction_id" not in attributes
    assert "created_utc" not in attributes


def test_stripe_rows_that_do_not_add_up_are_rejected():
    _lines, rejects = read_processor_file(STRIPE_SAMPLE)
    rows = {row["line"]: row for row in rejects.iter_rows(named=True)}
    assert sorted(rows) == [5, 6]
    assert rows[5]["column"] == "net"
    assert rows[5]["reason"].startswith("gross - fee != net (50.00 - 1.80 != 48.00)")
    assert rows[6]["column"] == "gross"
    assert rows[6]["reason"].startswith("gross '10.005' has 3 decimals; HKD allows 2")
    raw_lines = Path(STRIPE_SAMPLE).read_text(encoding="utf-8").split("\n")
    assert rows[5]["raw"] == raw_lines[4]


def test_stripe_without_payout_column_and_epoch_dates(tmp_path):
    path = tmp_path / "activity.csv"
    path.write_text(
        "balance_transaction_id,available_on,currency,gross,fee,net,reporting_category\n"
        "txn_1,1558569600,usd,20.00,0.88,19.12,charge\n"
        "txn_2,1558569600,usd,-10.00,15.00,-25.00,dispute\n"
        "txn_1,1558569600,usd,20.00,0.88,19.12,charge\n",
        encoding="utf-8",
    )
    lines, rejects = read_processor_file(str(path))
    assert lines["payout_id"].to_list() == [None, None]
    assert lines["net_minor"].to_list() == [1912, -2500]
    assert lines["available_on"].to_list() == [dt.date(2019, 5, 23)] * 2
    assert lines["description"].to_list() == ["", ""]
    assert rejects.select("line", "column").rows() == [(4, "balance_transaction_id")]
    assert "already appears on line 2" in rejects["reason"][0]


def test_unknown_format_names_expected_columns(tmp_path):
    path = tmp_path / "paypal.csv"
    path.write_text("Date,Name,Gross,Fee,Net,Currency\n2026-01-05,x,1,0,1,USD\n", encoding="utf-8")
    with pytest.raises(FeedFormatError) as error:
        read_processor_file(str(path))
    message = str(error.value)
    assert "balance_transaction_id" in message and "reporting_category" in message
    assert "Stripe" in message
    assert not identify(str(path))
    assert identify(STRIPE_SAMPLE)


@pytest.mark.skipif(
    not REAL_STRIPE_CSV.is_file(), reason=f"real Stripe sample not found at {REAL_STRIPE_CSV}"
)
def test_real_stripe_balance_change_report():
    # expected.json: txn_14G11HjubSIHf9IKrvJdwN charge gross 12.00 fee 0.00 net 12.00 usd, empty
    # description; txn_14G11HjHgubIH9ZvbPgYO7 refund -0.77 'REFUND FOR PAYMENT'; available 2020-01-27
    lines, rejects = read_processor_file(str(REAL_STRIPE_CSV))
    assert rejects.height == 0
    assert lines.select(
        "payout_id",
        "line_id",
        "category",
        "currency",
        "gross_minor",
        "fee_minor",
        "net_minor",
        "available_on",
        "description",
    ).rows() == [
        (
            None,
            "txn_14G11HjubSIHf9IKrvJdwN",
            "charge",
            "USD",
            1200,
            0,
            1200,
            dt.date(2020, 1, 27),
            "",
        ),
        (
            None,
            "txn_14G11HjHgubIH9ZvbPgYO7",
            "refund",
            "USD",
            -77,
            0,
            -77,
            dt.date(2020, 1, 27),
            "REFUND FOR PAYMENT",
        ),
    ]
    assert json.loads(lines["attributes"][0]) == {"reporting_category": "charge"}
    assert lines["created"].to_list() == [dt.date(2020, 1, 23)] * 2


def test_bad_available_on_is_rejected_naming_the_column(tmp_path):
    path = tmp_path / "bad_date.csv"
    path.write_text(
        "balance_transaction_id,available_on_utc,currency,gross,fee,net,reporting_category\n"
        "txn_1,27/01/2020,usd,1.00,0.00,1.00,charge\n",
        encoding="utf-8",
    )
    lines, rejects = read_processor_file(str(path))
    assert lines.height == 0
    assert rejects.select("line", "column", "reason").row(0) == (
        2,
        "available_on_utc",
        "available_on_utc '27/01/2020' is not a date (YYYY-MM-DD[ HH:MM:SS])",
    )
