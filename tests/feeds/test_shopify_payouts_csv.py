"""Tests of the Shopify Payments transactions CSV export reader (feeds stage, :mod:`feeds.shopify`).

The sample ``data/shopify_payments_transactions.csv`` is hand-written in the layout of the
Shopify admin's export (Finance > Payouts > Export), with one column the real export does not
have (``Customer``) to check that extra columns are kept byte-exact in the attributes.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from feeds import registry
from feeds.inspect import inspect_file
from models.errors import FeedFormatError
from models.schema import PAYOUT_LINE_SCHEMA, REJECTS_SCHEMA

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "shopify_payments_transactions.csv"

#: the reviewed canonical rows of the sample, in file order:
#: (source_line, category, payout_id, currency, gross, fee, net, order_id, created, available_on)
EXPECTED = [
    (2, "charge", "90581876773", "HKD", 50000, 1600, 48400, "#1001", "2026-03-02", "2026-03-05"),
    (3, "charge", "90581876773", "HKD", 128050, 4098, 123952, "#1002", "2026-03-02", "2026-03-05"),
    (4, "refund", "90581876773", "HKD", -12000, 0, -12000, "#1001", "2026-03-03", "2026-03-05"),
    # line 5 breaks Net = Amount - Fee (200.00 - 6.40 = 193.60, not 193.00): rejected
    (6, "dispute", "90581876773", "HKD", -30000, 13000, -43000, "#0998", "2026-03-03", "2026-03-05"),
    (7, "adjustment", "90581876773", "HKD", -1500, 0, -1500, None, "2026-03-04", "2026-03-05"),
    # not paid out yet: no payout id, available on its own date
    (8, "charge", None, "HKD", 78000, 2496, 75504, "#1003", "2026-03-04", "2026-03-07"),
]


def _rows(frame: pl.DataFrame) -> list[tuple]:
    return [
        (r["source_line"], r["category"], r["payout_id"], r["currency"], r["gross_minor"],
         r["fee_minor"], r["net_minor"], r["order_id"], r["created"].isoformat(),
         r["available_on"].isoformat())
        for r in frame.iter_rows(named=True)
    ]


def test_sample_reads_to_its_reviewed_canonical_rows():
    result = registry.read_any(str(SAMPLE), "processor")
    assert (result.format, result.side) == ("shopify", "processor")
    assert result.frame.schema == pl.Schema(PAYOUT_LINE_SCHEMA)
    assert _rows(result.frame) == EXPECTED
    assert set(result.frame["processor"]) == {"shopify"}
    assert result.rows_read == 7 and result.accounts == ["shopify:HKD"]
    first = result.frame.row(0, named=True)
    assert first["description"] == "charge - #1001 - visa"
    assert first["created"] == dt.date(2026, 3, 2)


def test_bad_row_is_rejected_with_its_reason_and_the_rest_loads():
    result = registry.read_any(str(SAMPLE), "processor")
    assert result.rejects.schema == pl.Schema(REJECTS_SCHEMA)
    (reject,) = result.rejects.to_dicts()
    assert reject["line"] == 5
    assert reject["reason"] == (
        "Amount - Fee != Net (200.00 - 6.40 != 193.00 HKD); Shopify reports Net = Amount - Fee"
    )
    assert reject["raw"].startswith("2026-03-03 11:30:00 +0800,charge,#1004,")
    assert result.frame.height == 6


def test_extra_columns_and_chinese_text_are_kept_byte_exact():
    result = registry.read_any(str(SAMPLE), "processor")
    attributes = result.frame["attributes"].to_list()
    assert '"Customer":"陳大文"' in attributes[0]
    first = json.loads(attributes[0])
    assert first == {
        "Card Brand": "visa", "Card Source": "online", "Payout Status": "paid",
        "Checkout": "7f3a91c2e4", "Payment Method Name": "card", "Presentment Amount": "500.00",
        "Presentment Currency": "HKD", "Customer": "陳大文", "order_id_from": "Order",
    }
    assert json.loads(attributes[5])["Presentment Currency"] == "USD"


def test_line_ids_are_stable_distinct_and_survive_the_payout(tmp_path):
    ids = registry.read_any(str(SAMPLE), "processor").frame["line_id"].to_list()
    assert len(set(ids)) == len(ids)
    assert registry.read_any(str(SAMPLE), "processor").frame["line_id"].to_list() == ids
    # the pending charge exported again once paid out keeps its id
    text = SAMPLE.read_text(encoding="utf-8").replace(",pending,,,2026-03-07,", ",paid,2026-03-07,90600000001,2026-03-07,")
    later = tmp_path / "later.csv"
    later.write_text(text, encoding="utf-8")
    again = registry.read_any(str(later), "processor").frame
    assert again["line_id"].to_list() == ids
    assert again.row(5, named=True)["payout_id"] == "90600000001"


def test_columns_in_any_order_read_the_same(tmp_path):
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    table = [line.split(",") for line in lines]
    order = list(reversed(range(len(table[0]))))
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join(",".join(row[i] for i in order) for row in table) + "\n", encoding="utf-8")
    result = registry.read_any(str(shuffled), "processor")
    assert _rows(result.frame) == EXPECTED
    assert result.rejects["line"].to_list() == [5]


def test_detected_by_its_header_without_side():
    module, side = registry.detect_side(str(SAMPLE))
    assert (module.FORMAT, side) == ("shopify", "processor")
    module, side = registry.detect_side(str(SAMPLE), prefer="bank")
    assert (module.FORMAT, side) == ("shopify", "processor")
    summary = inspect_file(str(SAMPLE))
    assert (summary["format"], summary["side"]) == ("shopify", "processor")
    assert (summary["transactions"], len(summary["rejects"])) == (6, 1)


def test_minimal_export_without_payout_id_column(tmp_path):
    path = tmp_path / "payment_transactions_export.csv"
    path.write_text(
        "Transaction Date,Type,Order,Payout Status,Payout Date,Amount,Fee,Net,Currency\n"
        "2026-01-05 08:00:00 -0500,Charge,#2001,paid,2026-01-07,41.90,1.52,40.38,USD\n",
        encoding="utf-8",
    )
    (row,) = registry.read_any(str(path), "processor").frame.iter_rows(named=True)
    assert (row["category"], row["payout_id"], row["order_id"]) == ("charge", None, "#2001")
    assert (row["gross_minor"], row["fee_minor"], row["net_minor"]) == (4190, 152, 4038)
    assert row["available_on"] == dt.date(2026, 1, 7)


def test_csv_of_another_kind_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "orders_export.csv"
    path.write_text("Transaction Date,Type,Order,Amount,Fee,Net,Currency\n", encoding="utf-8")
    with pytest.raises(FeedFormatError, match="not a Shopify Payments transactions export.*Payouts > Export"):
        registry.read_any(str(path), "processor", format="shopify")
