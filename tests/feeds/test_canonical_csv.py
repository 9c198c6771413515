"""Tests of the canonical bank / ledger CSV feed (feeds stage)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import tempfile
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import load_bank, load_ledger, read_bank_csv, read_ledger_csv
from models.errors import FeedFormatError
from models.schema import BANK_SCHEMA, DUPLICATES_SCHEMA, LEDGER_SCHEMA, REJECTS_SCHEMA

DATA = Path(__file__).parent / "data"
BANK_SAMPLE = str(DATA / "bank_sample.csv")
BANK_OVERLAP = str(DATA / "bank_overlap.csv")
BANK_BAD = str(DATA / "bank_bad_rows.csv")
LEDGER_SAMPLE = str(DATA / "ledger_sample.csv")
LEDGER_MORE = str(DATA / "ledger_more.csv")


def write(path: Path, text: str, encoding: str = "utf-8") -> str:
    path.write_bytes(text.encode(encoding))
    return str(path)


def expected_fingerprint(
    account, date, minor, currency, description, counterparty, reference, occurrence
):
    """The documented fingerprint key, computed independently of the feed."""
    key = "\x1f".join(
        [account, date, str(minor), currency, description, counterparty, reference, str(occurrence)]
    )
    return "fp-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def by_id(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["id"]: row for row in frame.iter_rows(named=True)}


# --- the reviewed sample: every value a user would check -------------------------------------


def test_bank_sample_loads_exact_values():
    result = read_bank_csv(BANK_SAMPLE)
    frame = result.frame
    assert frame.schema == pl.Schema(BANK_SCHEMA)
    assert result.rejects.height == 0
    rows = by_id(frame)
    cash_1 = expected_fingerprint(
        "HSBC-HKD-001", "2026-01-08", 10000, "HKD", "Cash deposit", "", "", 0
    )
    cash_2 = expected_fingerprint(
        "HSBC-HKD-001", "2026-01-08", 10000, "HKD", "Cash deposit", "", "", 1
    )
    assert frame["id"].to_list() == ["B001", "B002", "B003", "B004", cash_1, cash_2]
    assert frame["source_line"].to_list() == [2, 3, 4, 5, 7, 8]
    assert frame["amount_minor"].to_list() == [125000, -38850, 1500, 12345, 10000, 10000]
    assert frame["currency"].to_list() == ["HKD", "HKD", "JPY", "KWD", "HKD", "HKD"]
    assert rows["B001"]["date"] == dt.date(2026, 1, 5)
    assert rows["B001"]["counterparty"] == "陳大文"
    assert rows["B002"]["counterparty"] == "金港貿易有限公司"
    assert rows["B002"]["description"] == "Transfer to 金港貿易有限公司, Kowloon"
    assert rows["B003"]["counterparty"] == "ヤマダ タロウ"
    assert rows["B004"]["counterparty"] == "Müller GmbH"
    assert rows["B004"]["reference"] == 'REF "A"'
    assert rows["B003"]["reference"] == ""
    assert rows["B001"]["account"] == "HSBC-HKD-001"
    assert set(frame["source_file"]) == {BANK_SAMPLE}
    # extra columns: original header names, original text, multi-line value kept
    assert json.loads(rows["B001"]["attributes"]) == {"Value Date": "2026-01-05", "備註": "首期"}
    assert json.loads(rows["B004"]["attributes"]) == {
        "Value Date": "2026-01-07",
        "備註": "two\nlines",
    }
    assert "首期" in rows["B001"]["attributes"]  # not \u-escaped
    assert result.stats[0].rows_read == 6 and result.stats[0].loaded == 6


def test_chinese_names_round_trip_byte_exact():
    frame = read_bank_csv(BANK_SAMPLE).frame
    names = frame["counterparty"].to_list()
    assert "陳大文".encode() in [n.encode("utf-8") for n in names]
    assert "金港貿易有限公司".encode() in [n.encode("utf-8") for n in names]


def test_bom_is_not_part_of_first_header_name():
    assert Path(BANK_SAMPLE).read_bytes().startswith(b"\xef\xbb\xbf")
    frame = read_bank_csv(BANK_SAMPLE).frame
    assert frame["id"][0] == "B001"  # "\ufeffID" would not have been recognised as the id column


def test_ledger_sample_values_types_due_dates():
    result = read_ledger_csv(LEDGER_SAMPLE)
    assert result.frame.schema == pl.Schema(LEDGER_SCHEMA)
    rows = by_id(result.frame)
    assert list(rows) == ["L001", "L002", "L003"]
    assert rows["L001"]["type"] == "invoice"
    assert rows["L002"]["type"] == "bill"
    assert rows["L003"]["type"] == "order"
    assert rows["L001"]["due_date"] == dt.date(2026, 1, 31)
    assert rows["L002"]["due_date"] is None
    assert rows["L003"]["amount_minor"] == 1500 and rows["L003"]["currency"] == "JPY"
    assert rows["L001"]["account"] == ""
    assert json.loads(rows["L002"]["attributes"]) == {"Cost Centre": "HK-02"}
    rejects = result.rejects.select("line", "column").rows()
    assert rejects == [(5, "due_date"), (6, "amount")]
    reason = result.rejects.filter(pl.col("line") == 5)["reason"][0]
    assert reason == "due_date '2026-02-30' is not a valid YYYY-MM-DD date"
    # L001 appears again on line 7 with the same content: loaded once, reported once
    assert result.duplicates.rows() == [
        ("ledger", "L001", LEDGER_SAMPLE, 7, LEDGER_SAMPLE, 2, True)
    ]
    stats = result.stats[0]
    assert (stats.rows_read, stats.loaded, stats.rejected, stats.duplicates) == (6, 4, 2, 1)


# --- bad rows ---------------------------------------------------------------------------------


def test_bad_rows_are_rejected_with_line_column_reason_raw():
    result = read_bank_csv(BANK_BAD)
    assert result.rejects.schema == pl.Schema(REJECTS_SCHEMA)
    assert result.frame["id"].to_list() == ["B101", "B109"]
    raw_lines = Path(BANK_BAD).read_text(encoding="utf-8").split("\n")
    rejects = {row["line"]: row for row in result.rejects.iter_rows(named=True)}
    assert sorted(rejects) == [3, 4, 5, 6, 7, 9, 11, 12]  # line 8 is blank: not a row
    for line, row in rejects.items():
        assert row["raw"] == raw_lines[line - 1]
        assert row["source_file"] == BANK_BAD
    assert rejects[3]["column"] == "date"
    assert rejects[3]["reason"] == "date '2026-02-30' is not a valid YYYY-MM-DD date"
    assert rejects[4]["column"] == "amount"
    assert rejects[4]["reason"].startswith("amount '12.345' has 3 decimals; HKD allows 2")
    assert rejects[5]["reason"] == "row has 5 fields; the header has 6"
    assert rejects[6]["reason"].startswith("row has 7 fields; the header has 6")
    assert rejects[7]["column"] == "date"  # first bad column in file order, the other mentioned
    assert "also bad: currency" in rejects[7]["reason"]
    assert rejects[9]["reason"] == "amount is empty"
    assert "not a decimal number" in rejects[11]["reason"]
    assert "quote" in rejects[12]["reason"]
    stats = result.stats[0]
    assert stats.rows_read == stats.loaded + stats.rejected == 10


def test_blanks_around_amount_currency_are_stripped_text_is_not(tmp_path):
    path = write(
        tmp_path / "b.csv",
        "id,date,amount,currency,description,counterparty\n"
        " B1 , 2026-01-06 , 7.50 , usd ,  two spaces  , 陳大文 \n",
    )
    row = read_bank_csv(path).frame.row(0, named=True)
    assert (row["id"], row["date"], row["amount_minor"], row["currency"]) == (
        "B1",
        dt.date(2026, 1, 6),
        750,
        "USD",
    )
    assert row["description"] == "  two spaces  "
    assert row["counterparty"] == " 陳大文 "


def test_ragged_rows_too_many_and_too_few_fields(tmp_path):
    path = write(
        tmp_path / "ragged.csv",
        "id,date,amount,currency\n"
        "B1,2026-01-05,1.00,HKD\n"
        "B2,2026-01-05,2.00\n"
        "B3,2026-01-05,3.00,HKD,extra,more\n"
        "B4,2026-01-05,4.00,HKD\n",
    )
    result = read_bank_csv(path)
    assert result.frame["id"].to_list() == ["B1", "B4"]
    assert result.rejects.select("line", "reason").rows() == [
        (3, "row has 3 fields; the header has 4"),
        (4, "row has 6 fields; the header has 4 (a value containing ',' must be quoted)"),
    ]


def test_quoted_commas_and_newlines_keep_line_numbers(tmp_path):
    path = write(
        tmp_path / "q.csv",
        "id,date,amount,currency,description\r\n"
        'B1,2026-01-05,1.00,HKD,"first, with comma"\r\n'
        'B2,2026-01-05,2.00,HKD,"spans\r\nthree\r\nlines"\r\n'
        'B3,2026-01-05,x,HKD,"bad amount\r\non two lines"\r\n'
        "B4,2026-01-05,4.00,HKD,plain\r\n",
    )
    result = read_bank_csv(path)
    rows = by_id(result.frame)
    assert rows["B1"]["description"] == "first, with comma"
    assert rows["B2"]["description"] == "spans\r\nthree\r\nlines"
    assert rows["B2"]["source_line"] == 3
    assert rows["B4"]["source_line"] == 8
    reject = result.rejects.row(0, named=True)
    assert (reject["line"], reject["column"]) == (6, "amount")
    assert reject["raw"] == 'B3,2026-01-05,x,HKD,"bad amount\r\non two lines"'


def test_quoted_and_plain_rows_keep_file_order_and_line_numbers(tmp_path):
    # records with quotes and records without are split apart and merged back: the lines, the
    # rejects and their line numbers must come out in file order
    path = write(
        tmp_path / "mixed.csv",
        "id,date,amount,currency,description\n"
        'B1,2026-01-05,1.00,HKD,"quoted, one"\n'
        "B2,2026-01-05,2.00,HKD,plain\n"
        "B3,2026-01-05,3.00,HKD\n"
        'B4,2026-01-05,4.00,HKD,"quoted",extra\n'
        'B5,2026-01-05,5.00,HKD,"陳大文\n金港貿易有限公司"\n'
        "B6,2026-01-05,6.00,HKD,plain again\n",
    )
    result = read_bank_csv(path)
    assert result.frame.select("id", "source_line").rows() == [("B1", 2), ("B2", 3), ("B5", 6), ("B6", 8)]
    assert by_id(result.frame)["B5"]["description"] == "陳大文\n金港貿易有限公司"
    assert by_id(result.frame)["B5"]["amount_minor"] == 500
    assert result.rejects.select("line", "reason").rows() == [
        (4, "row has 4 fields; the header has 5"),
        (5, "row has 6 fields; the header has 5 (a value containing ',' must be quoted)"),
    ]


def test_unterminated_quote_rejects_that_line_only(tmp_path):
    path = write(
        tmp_path / "open.csv",
        "id,date,amount,currency,description\n"
        'B1,2026-01-05,1.00,HKD,"never closed\n'
        "B2,2026-01-05,2.00,HKD,fine\n",
    )
    result = read_bank_csv(path)
    assert result.frame["id"].to_list() == ["B2"]
    assert result.rejects.select("line", "raw").rows() == [
        (2, 'B1,2026-01-05,1.00,HKD,"never closed')
    ]
    assert "never closed" in result.rejects["reason"][0]


def test_header_only_file_gives_empty_frames(tmp_path):
    result = read_ledger_csv(write(tmp_path / "h.csv", "id,date,amount,currency\n"))
    assert result.frame.height == 0 and result.frame.schema == pl.Schema(LEDGER_SCHEMA)
    assert result.duplicates.schema == pl.Schema(DUPLICATES_SCHEMA)
    assert result.stats[0].rows_read == 0


def test_last_line_without_newline(tmp_path):
    path = write(tmp_path / "n.csv", "id,date,amount,currency\nB1,2026-01-05,1.00,HKD")
    assert read_bank_csv(path).frame["amount_minor"].to_list() == [100]


# --- currencies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.345", "KWD", 12345),
        ("-0.001", "KWD", -1),
        ("12.3", "KWD", 12300),
        ("1500", "JPY", 1500),
        ("1500.00", "JPY", 1500),  # trailing zeros change nothing
        ("-7", "JPY", -7),
        ("0.05", "HKD", 5),
    ],
)
def test_currency_exponents(tmp_path, amount, currency, minor):
    path = write(
        tmp_path / "c.csv", f"id,date,amount,currency\nB1,2026-01-05,{amount},{currency}\n"
    )
    assert read_bank_csv(path).frame["amount_minor"].to_list() == [minor]


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [
        ("1500.5", "JPY", "amount '1500.5' has 1 decimals; JPY allows 0"),
        ("1.2345", "KWD", "amount '1.2345' has 4 decimals; KWD allows 3"),
        ("1.00", "ABC", "currency 'ABC' is not an ISO 4217 code"),
        ("1.00", "", "currency is empty"),
    ],
)
def test_currency_rejects(tmp_path, amount, currency, reason):
    path = write(
        tmp_path / "c.csv", f"id,date,amount,currency\nB1,2026-01-05,{amount},{currency}\n"
    )
    rejects = read_bank_csv(path).rejects
    assert rejects["reason"][0].startswith(reason)


# --- whole-file errors ------------------------------------------------------------------------


def test_missing_column_error_names_it_and_lists_found(tmp_path):
    path = write(tmp_path / "m.csv", "id,date,value,currency\nB1,2026-01-05,1.00,HKD\n")
    with pytest.raises(FeedFormatError) as error:
        read_bank_csv(path)
    message = str(error.value)
    assert "missing required column 'amount'" in message
    assert "columns found: id, date, value, currency" in message
    assert "\n" not in message


def test_ledger_requires_id_column(tmp_path):
    path = write(tmp_path / "m.csv", "date,amount,currency\n2026-01-05,1.00,HKD\n")
    with pytest.raises(FeedFormatError, match="missing required column 'id'"):
        read_ledger_csv(path)


def test_not_utf8_big5_and_gbk(tmp_path):
    text = "id,date,amount,currency,counterparty\nB1,2026-01-05,1.00,HKD,陳大文\n"
    for encoding in ("big5", "gbk"):
        path = write(tmp_path / f"{encoding}.csv", text, encoding=encoding)
        with pytest.raises(FeedFormatError) as error:
            read_bank_csv(path)
        message = str(error.value)
        with pytest.raises(UnicodeDecodeError) as decode_error:
            text.encode(encoding).decode("utf-8")
        offset = decode_error.value.start
        assert offset >= len(text.split("陳")[0].encode())  # inside the Chinese name
        assert "is not UTF-8" in message
        assert f"byte offset {offset}" in message
        assert "re-save it as UTF-8" in message
        assert error.value.line == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"\xef\xbb\xbf\n\n", "is empty"),
        (b'<?xml version="1.0"?>\n<Document/>\n', "looks like XML"),
        (b"OFXHEADER:100\nDATA:OFXSGML\n", "looks like XML or OFX"),
        (b"Date;Amount;Currency\n2026-01-01;1,00;EUR\n", "';' as separator"),
        (b"PK\x03\x04binary", "Excel"),
        (b"\x00\x01\x02", "NUL byte"),
    ],
)
def test_not_a_csv(tmp_path, content, expected):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(FeedFormatError, match=expected):
        read_bank_csv(str(path))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FeedFormatError, match="file not found"):
        read_bank_csv(str(tmp_path / "nope.csv"))
    with pytest.raises(FeedFormatError, match="is a directory"):
        read_bank_csv(str(tmp_path))


def test_same_column_twice_is_a_file_error(tmp_path):
    path = write(tmp_path / "d.csv", "id,date,Amount,amount,currency\nB1,2026-01-05,1,1,HKD\n")
    with pytest.raises(FeedFormatError, match="appears twice"):
        read_bank_csv(path)


# --- fingerprints and duplicates --------------------------------------------------------------


def test_fingerprint_stable_across_two_reads():
    first = read_bank_csv(BANK_SAMPLE).frame["id"].to_list()
    second = read_bank_csv(BANK_SAMPLE).frame["id"].to_list()
    assert first == second


def test_two_identical_lines_in_one_file_stay_two_lines():
    frame = read_bank_csv(BANK_SAMPLE).frame.filter(pl.col("description") == "Cash deposit")
    assert frame.height == 2
    assert frame["id"].n_unique() == 2


def test_reimporting_same_file_yields_each_line_once():
    result = load_bank([BANK_SAMPLE, BANK_SAMPLE])
    assert result.frame.equals(read_bank_csv(BANK_SAMPLE).frame)
    assert result.duplicates.height == 6
    assert result.duplicates["same_content"].all()
    assert [s.duplicates for s in result.stats] == [0, 6]
    assert all(s.rows_read == s.loaded + s.rejected for s in result.stats)


def test_overlapping_file_recognises_lines_by_fingerprint_and_id():
    result = load_bank([BANK_SAMPLE, BANK_OVERLAP])
    sample_ids = read_bank_csv(BANK_SAMPLE).frame["id"].to_list()
    # the overlap repeats B004 and the two cash deposits, and adds a third deposit and an ATM line
    assert result.frame.height == 8
    assert result.frame["id"].to_list()[:6] == sample_ids
    new = result.frame.filter(pl.col("source_file") == BANK_OVERLAP)
    assert new["source_line"].to_list() == [5, 6]
    assert new["amount_minor"].to_list() == [10000, -4000]
    duplicates = result.duplicates.select("id", "line", "first_line", "same_content").rows()
    assert duplicates == [
        ("B004", 2, 5, True),
        (sample_ids[4], 3, 7, True),
        (sample_ids[5], 4, 8, True),
    ]
    assert [s.duplicates for s in result.stats] == [0, 3]


def test_duplicate_id_across_ledger_files_same_content_once_different_content_rejected():
    result = load_ledger([LEDGER_SAMPLE, LEDGER_MORE])
    rows = by_id(result.frame)
    # L001 twice with the same content: loaded once; L002 at -388.50 and at -400.00: neither
    assert "L002" not in rows and rows["L001"]["source_line"] == 2
    assert result.duplicates.rows() == [("ledger", "L001", LEDGER_SAMPLE, 7, LEDGER_SAMPLE, 2, True)]
    l002 = result.rejects.filter(pl.col("reason").str.starts_with("id 'L002'"))
    assert l002.select("source_file", "line").rows() == [(LEDGER_SAMPLE, 3), (LEDGER_MORE, 2)]
    assert l002["reason"][0] == (
        f"id 'L002' occurs with different content at {LEDGER_SAMPLE}:3 and {LEDGER_MORE}:2 "
        "(differs in: amount, description); none of them is used: correct the source, or give "
        "each line its own id"
    )
    assert [(s.rows_read, s.loaded, s.rejected, s.duplicates, s.conflicts) for s in result.stats] == [
        (6, 3, 3, 1, 1),
        (3, 1, 2, 0, 1),
    ]
    assert result.frame.height == sum(s.loaded - s.duplicates for s in result.stats)
    assert result.rejects.filter(pl.col("source_file") == LEDGER_MORE)["line"].to_list() == [4, 2]


# --- property: amounts written as text come back exact ----------------------------------------

_EXPONENTS = {"HKD": 2, "JPY": 0, "KWD": 3}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(_EXPONENTS)),
            st.integers(min_value=-(10**14), max_value=10**14),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_amount_text_round_trip_is_exact(lines):
    buffer = io.StringIO()
    buffer.write("id,date,amount,currency\n")
    expected = []
    for number, (currency, minor) in enumerate(lines):
        amount = Decimal(minor).scaleb(-_EXPONENTS[currency])
        buffer.write(f"B{number},2026-01-05,{amount:f},{currency}\n")
        expected.append(minor)
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / "amounts.csv", buffer.getvalue())
        frame = read_bank_csv(path).frame
    assert frame["amount_minor"].to_list() == expected


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=20,
)


# Python's writer leaves a lone "\r" unquoted when the line terminator is "\n" (an ambiguous
# file), so it is given "\r\n" (Excel's choice) with minimal quoting, or "\n" with all quoted.
_DIALECTS = st.sampled_from([("\r\n", csv.QUOTE_MINIMAL), ("\n", csv.QUOTE_ALL)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=10), _DIALECTS)
def test_text_round_trip_is_byte_exact(values, dialect):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=dialect[0], quoting=dialect[1])
    writer.writerow(["id", "date", "amount", "currency", "description", "memo"])
    for number, (description, memo) in enumerate(values):
        writer.writerow([f"B{number}", "2026-01-05", "1.00", "HKD", description, memo])
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / "texts.csv", buffer.getvalue())
        result = read_bank_csv(path)
    assert result.rejects.height == 0
    assert result.frame["description"].to_list() == [d for d, _ in values]
    assert [json.loads(a)["memo"] for a in result.frame["attributes"]] == [m for _, m in values]
