"""Tests of the PayPal Settlement Report (STL) reader (feeds stage, :mod:`feeds.paypal`).

The sample ``data/paypal_settlement_stl.csv`` is hand-written after PayPal's Settlement Report
specification: RH / FH / SH / CH / SB / SC / RF / RC / FF records, amounts as unsigned digits with
two implied decimals in every currency, signs in the Debit or Credit columns.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import polars as pl
import pytest

from feeds import registry
from feeds.inspect import inspect_file
from models.errors import FeedFormatError
from models.schema import PAYOUT_LINE_SCHEMA, REJECTS_SCHEMA

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "paypal_settlement_stl.csv"

#: the reviewed canonical rows of the sample, in file order:
#: (source_line, line_id, category, payout_id, currency, gross, fee, net, order_id, source_id)
EXPECTED = [
    (5, "7JP12345AB1234567", "charge", None, "USD", 10000, 320, 9680, "#1001", None),
    (6, "8KQ23456BC2345678", "charge", None, "USD", 4550, 162, 4388, "SO-2026-00114", None),
    # a refund: PayPal gives part of its fee back (Fee CR)
    (7, "9LR34567CD3456789", "refund", None, "USD", -2500, -80, -2420, "#1001", "7JP12345AB1234567"),
    # a chargeback with its fee
    (8, "1MS45678DE4567890", "dispute", None, "USD", -3000, 2000, -5000, "#0998", "5AB98765ZY9876543"),
    (9, "2NT56789EF5678901", "payout", "2NT56789EF5678901", "USD", -500000, 0, -500000, None, None),
    # 1500000 = 15000.00 JPY: two implied decimals in JPY too
    (10, "3PU67890FG6789012", "charge", None, "JPY", 15000, 550, 14450, "JP-5022", None),
    # line 11: 1000050 = 10000.50 JPY, not a whole number of yen: rejected
]


def _rows(frame: pl.DataFrame) -> list[tuple]:
    return [
        (r["source_line"], r["line_id"], r["category"], r["payout_id"], r["currency"],
         r["gross_minor"], r["fee_minor"], r["net_minor"], r["order_id"], r["source_id"])
        for r in frame.iter_rows(named=True)
    ]


def test_sample_reads_to_its_reviewed_canonical_rows():
    result = registry.read_any(str(SAMPLE), "processor")
    assert (result.format, result.side) == ("paypal", "processor")
    assert result.frame.schema == pl.Schema(PAYOUT_LINE_SCHEMA)
    assert _rows(result.frame) == EXPECTED
    assert set(result.frame["processor"]) == {"paypal"}
    assert set(result.frame["created"]) == {dt.date(2026, 3, 2)}
    assert result.frame["description"].to_list()[:3] == [
        "T0006 payment (CR)", "T0006 payment (CR)", "T1107 reversal (DR)",
    ]
    assert result.accounts == ["paypal:JPY", "paypal:USD"]
    assert result.rows_read == 7 and result.notes == []


def test_order_id_comes_from_invoice_id_else_custom_field_and_chinese_is_kept():
    frame = registry.read_any(str(SAMPLE), "processor").frame
    first, second = (json.loads(a) for a in frame["attributes"].to_list()[:2])
    assert first["order_id_from"] == "Invoice ID"
    assert second["order_id_from"] == "Custom Field"
    assert second["Custom Field"] == '{"order_id":"SO-2026-00114","customer":"陳大文"}'
    assert "陳大文" in frame["attributes"][1]  # written as is, not \u-escaped
    assert second["Account ID"] == "MERCHANTHK01"


def test_bad_row_is_rejected_with_its_reason_and_the_rest_loads():
    result = registry.read_any(str(SAMPLE), "processor")
    assert result.rejects.schema == pl.Schema(REJECTS_SCHEMA)
    (reject,) = result.rejects.to_dicts()
    assert reject["line"] == 11
    assert reject["reason"] == (
        "Gross Transaction Amount 10000.50 has more decimals than JPY allows (0) (the STL writes "
        "1000050 for 10000.50: two implied decimals in every currency)"
    )
    assert reject["raw"].startswith('"SB","4QV78901GH7890123",')
    assert result.frame.height == 6


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ('"CR","10000","USD"', '"XX","10000","USD"', "Transaction Debit or Credit 'XX' is neither CR nor DR"),
        ('"CR","10000","USD"', '"CR","100.00","USD"', "Gross Transaction Amount '100.00' is not an STL amount"),
        ('"T0006","2026/03/02 09:15:11', '"6","2026/03/02 09:15:11', "Transaction Event Code '6' is not a T-code"),
    ],
)
def test_other_bad_rows_are_rejected(tmp_path, old, new, reason):
    path = tmp_path / "STL-20260302.01.005.CSV"
    path.write_text(SAMPLE.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    result = registry.read_any(str(path), "processor")
    assert [r["line"] for r in result.rejects.to_dicts()] == [5, 11]
    assert result.rejects["reason"][0].startswith(reason)
    assert result.frame.height == 5


def test_section_count_that_does_not_match_is_reported(tmp_path):
    path = tmp_path / "stl.csv"
    path.write_text(SAMPLE.read_text(encoding="utf-8").replace('"SC","7"', '"SC","8"'), encoding="utf-8")
    result = registry.read_any(str(path), "processor")
    assert result.notes == [
        "line 12: the section says it holds 8 transaction rows (SC) but 7 SB rows were read; "
        "the report may be cut short or altered"
    ]
    assert result.frame.height == 6


def test_columns_are_taken_from_the_ch_row(tmp_path):
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for fields in csv.reader(lines):
        if fields[0] in ("CH", "SB"):
            fields = [fields[0], *reversed(fields[1:])]
        writer.writerow(fields)
    path = tmp_path / "reordered.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    result = registry.read_any(str(path), "processor")
    assert _rows(result.frame) == EXPECTED
    assert result.rejects["line"].to_list() == [11]


def test_detected_by_its_rh_and_ch_rows_without_side():
    module, side = registry.detect_side(str(SAMPLE))
    assert (module.FORMAT, side) == ("paypal", "processor")
    summary = inspect_file(str(SAMPLE))
    assert (summary["format"], summary["side"]) == ("paypal", "processor")
    assert (summary["transactions"], len(summary["rejects"])) == (6, 1)


def test_utf16_report_reads_the_same(tmp_path):
    path = tmp_path / "old_stl.csv"
    path.write_bytes(SAMPLE.read_text(encoding="utf-8").encode("utf-16"))
    assert registry.detect_side(str(path))[0].FORMAT == "paypal"
    assert _rows(registry.read_any(str(path), "processor").frame) == EXPECTED


def test_report_without_ch_row_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_text('"RH","2026/03/03 03:12:45 -0800","A","MERCHANTHK01","005"\n"FH","01"\n', encoding="utf-8")
    with pytest.raises(FeedFormatError, match="Settlement Report without a CH row"):
        registry.read_any(str(path), "processor", format="paypal")
