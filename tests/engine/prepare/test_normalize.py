"""engine.prepare (text, names, references): expressions (table-driven, one case per row)."""

from __future__ import annotations

import polars as pl
import pytest

from engine.prepare.names import name_key
from engine.prepare.references import (
    REFERENCE_STRENGTH_LEVELS,
    bank_reference_profile,
    reference_digits,
    reference_serial,
    reference_strength,
    reference_strength_from_profile,
    text_digits,
    text_reference_keys,
)
from engine.prepare.text import alnum_text, normalize_text, split_channel


def _one(function, value):
    """Apply an expression builder to a one-row String column and return the value."""
    frame = pl.DataFrame({"value": [value]}, schema={"value": pl.String})
    return frame.select(function(pl.col("value"))).item()


# --------------------------------------------------------------------------------------------
# normalize_text
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Kam Wing Trading", "kam wing trading"),
        ("ＣＨＡＮ　ＴＡＩ　ＭＡＮ", "chan tai man"),  # full-width letters, ideographic space
        ("ＩＮＶ－２０２６－００１２３", "inv-2026-00123"),  # full-width digits and hyphen
        ("  chan\t\ttai\u00a0man \n", "chan tai man"),  # tabs, NBSP, newline, edges
        ("chan\u3000\u3000tai", "chan tai"),
        ("zero\u200bwidth\ufeff", "zerowidth"),  # format characters removed
        ("Straße", "strasse"),  # case folding, not just lower-casing
        ("ﬁnance", "finance"),  # compatibility ligature
        ("金港貿易有限公司", "金港貿易有限公司"),  # Traditional Chinese unchanged
        ("陳大文", "陳大文"),
        ("臺灣 銀行", "臺灣 銀行"),  # never converted to Simplified
        ("ﾃｽﾄ", "テスト"),  # half-width katakana
        ("", ""),
        ("   ", ""),
        (None, None),
    ],
)
def test_normalize_text(text, expected):
    assert _one(normalize_text, text) == expected


def test_normalize_text_keeps_column_name():
    frame = pl.DataFrame({"description": ["ＡＢＣ", "abc"]})
    assert frame.select(normalize_text(pl.col("description"))).columns == ["description"]


# --------------------------------------------------------------------------------------------
# split_channel
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "channel", "rest"),
    [
        ("fps cr kam wing trading", "FPS CR", "kam wing trading"),
        ("fps kam wing", "FPS", "kam wing"),
        ("fps-cr: kam wing", "FPS CR", "kam wing"),
        ("fpscr kam wing", "FPS CR", "kam wing"),
        ("fps dr/rent", "FPS DR", "rent"),
        ("tt in acme ltd", "TT IN", "acme ltd"),
        ("t/t in: acme ltd", "TT IN", "acme ltd"),
        ("tt out acme", "TT OUT", "acme"),
        ("tt international ltd", "TT", "international ltd"),  # "tt in" needs a separator
        ("ibt dr 12345", "IBT DR", "12345"),
        ("chq dep 000123", "CHQ DEP", "000123"),
        ("cheque deposit abc", "CHEQUE DEPOSIT", "abc"),
        ("chq 000123", "CHQ", "000123"),
        ("autopay dr clp", "AUTOPAY DR", "clp"),
        ("autopay clp", "AUTOPAY", "clp"),
        ("cr trf abc", "CR TRF", "abc"),
        ("dr trf abc", "DR TRF", "abc"),
        ("trf abc", "TRF", "abc"),
        ("transfer abc", "TRANSFER", "abc"),
        ("tfr abc", "TFR", "abc"),
        ("cash dep", "CASH DEP", ""),
        ("cash deposit branch 12", "CASH DEP", "branch 12"),
        ("atm 1234", "ATM", "1234"),
        ("eps 7-eleven", "EPS", "7-eleven"),
        ("pos*park n shop", "POS", "park n shop"),
        ("dd clp power", "DD", "clp power"),
        ("so: rent", "SO", "rent"),
        ("so-88812", "SO", "88812"),
        ("so 12345", "SO", "12345"),
        ("so tai man", None, "so tai man"),  # So is a Hong Kong surname
        ("giro abc", "GIRO", "abc"),
        ("inward remittance abc", "INWARD REMITTANCE", "abc"),
        ("outward remittance abc", "OUTWARD REMITTANCE", "abc"),
        ("remittance abc", "REMITTANCE", "abc"),
        ("salary oct", "SALARY", "oct"),
        ("payroll oct", "PAYROLL", "oct"),
        ("bank charges", "BANK CHARGES", ""),
        ("bank charge: tt", "BANK CHARGES", "tt"),
        ("service fee", "SERVICE FEE", ""),
        ("int 0.52", "INT", "0.52"),
        ("FPS CR ABC", "FPS CR", "ABC"),  # case-insensitive
        ("posh ltd", None, "posh ltd"),  # a prefix must end at a separator
        ("international ltd", None, "international ltd"),
        ("atmosphere ltd", None, "atmosphere ltd"),
        ("kam wing fps", None, "kam wing fps"),  # only a leading prefix
        ("金港貿易", None, "金港貿易"),
        ("", None, ""),
        (None, None, None),
    ],
)
def test_split_channel(text, channel, rest):
    frame = pl.DataFrame({"value": [text]}, schema={"value": pl.String})
    got_channel, got_rest = split_channel(pl.col("value"))
    assert frame.select(got_channel.alias("c"), got_rest.alias("r")).row(0) == (channel, rest)


# --------------------------------------------------------------------------------------------
# name_key
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("FPS CR KAM WING TRADING CO LTD INV-2026-00123", "kam wing trading"),
        ("Kam Wing Trading Company Limited", "kam wing trading"),
        ("KAM WING TRADING CO., LTD.", "kam wing trading"),
        ("Kam Wing Trading Co Ltd", "kam wing trading"),
        ("Kam Wing Trading Corp", "kam wing trading"),
        ("Kam Wing Trading Corporation", "kam wing trading"),
        ("Kam Wing Inc.", "kam wing"),
        ("Kam Wing LLC", "kam wing"),
        ("Kam Wing PLC", "kam wing"),
        ("ABC (HK) Limited", "abc"),
        ("ABC HK LTD", "abc"),
        ("ABC Hong Kong Limited", "abc"),
        ("HK Ltd", "hk"),  # "hk" kept when it is the whole name
        ("Company Limited", "company"),  # never reduced to nothing
        ("HK Electric Investments Ltd", "hk electric investments"),
        ("Kam Wing & Co.", "kam wing"),
        ("A&B Trading", "a and b trading"),
        ("O'Brien Ltd", "obrien"),
        ("金港貿易有限公司", "金港貿易"),
        ("金港貿易(香港)有限公司", "金港貿易"),
        ("金港貿易股份有限公司", "金港貿易"),
        ("金港貿易公司", "金港貿易"),
        ("香港電燈有限公司", "香港電燈"),
        ("有限公司", "有限公司"),
        ("株式会社ソニー", "ソニー"),
        ("陳大文", "陳大文"),
        ("ＣＨＡＮ　ＴＡＩ　ＭＡＮ", "chan tai man"),
        ("Mr. Chan Tai Man", "chan tai man"),
        ("CHAN TAI MAN MR", "chan tai man"),
        ("Mrs Wong", "wong"),
        ("Ms Li Mei", "li mei"),
        ("Miss Ho", "ho"),
        ("Dr. Lam", "lam"),
        ("MR", "mr"),
        ("SO TAI MAN", "so tai man"),
        ("TT IN ACME LTD REF NO 12", "acme"),
        ("FPS CR KAM WING TRADING HKD 1,234.50", "kam wing trading"),
        ("FPS KAM WING INV202600123", "kam wing"),
        ("FPS KAM WING #12", "kam wing"),
        ("CHQ DEP 000123", None),  # nothing of a name left
        ("7-Eleven", "7 eleven"),
        ("ATM 12/10 99", None),  # digits alone are no name
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_name_key(name, expected):
    assert _one(name_key, name) == expected


def test_name_key_traditional_chinese_is_byte_exact():
    name = "臺灣銀行香港分行"
    key = _one(name_key, name)
    assert key == name
    assert key.encode("utf-8") == name.encode("utf-8")


# --------------------------------------------------------------------------------------------
# reference_serial, reference_digits
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "serial"),
    [
        ("INV-2026-00123", 123),
        ("INV202600123", 123),
        ("inv 2026 00123", 123),
        ("inv/2026/00123", 123),
        ("BILL-2026-0042", 42),
        ("RCPT-000123", 123),
        ("PO 4411", 4411),
        ("SO-88812", 88812),
        ("00123", 123),
        ("123", 123),
        ("12345678", 12345678),  # 8+ digits not starting with a year: the whole number
        ("20261234", 1234),  # starts with a year: the part after it
        ("ＩＮＶ－２０２６－００１２３", 123),
        ("INV-2026-00123-A", 123),
        ("INV-0000", None),  # a serial of 0 is no serial
        ("N/A", None),
        ("", None),
        (None, None),
    ],
)
def test_reference_serial(reference, serial):
    assert _one(reference_serial, reference) == serial


@pytest.mark.parametrize(
    ("reference", "digits"),
    [
        ("INV-2026-00123", "202600123"),
        ("INV202600123", "202600123"),
        ("PO 4411", "4411"),
        ("ＰＯ　４４１１", "4411"),
        ("N/A", None),
        ("", None),
        (None, None),
    ],
)
def test_reference_digits(reference, digits):
    assert _one(reference_digits, reference) == digits


# --------------------------------------------------------------------------------------------
# text_reference_keys, text_digits, alnum_text
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("FPS CR KAM WING INV-2026-00123", {2026, 123}),
        ("INV202600123", {202600123, 123}),
        ("inv 2026 00123", {2026, 123}),
        ("inv/2026/00123", {2026, 123}),
        ("paid 00123", {123}),
        ("#123", {123}),
        ("INV-2026-00132", {2026, 132}),
        ("INV-2026-001", {2026, 1}),
        ("HKD 1,234.50", set()),  # an amount is not a reference
        ("paid 1234.50 for inv 00123", {123}),
        ("1.234,50", set()),
        ("1,234", set()),
        ("value date 2026-10-03", set()),  # a separated date is not a reference
        ("03/10/2026 inv 00123", {123}),
        ("20261003", {20261003, 1003}),  # a compact date looks like INV20261003: kept
        ("ref 12", set()),  # fewer than 3 digits
        ("1234567890123", set()),  # more than 12 digits
        ("202600123 202600124", {202600123, 123, 202600124, 124}),
        ("00123 and 123 again", {123}),  # deduplicated
        ("000", set()),  # zero is no key
        ("ＩＮＶ－２０２６－００１２３", {2026, 123}),
        ("no digits here", set()),
        ("", set()),
    ],
)
def test_text_reference_keys(text, keys):
    got = _one(text_reference_keys, text)
    assert got is not None
    assert len(got) == len(set(got))
    assert set(got) == keys


def test_text_reference_keys_null_and_type():
    frame = pl.DataFrame({"value": [None, "inv 00123"]}, schema={"value": pl.String})
    out = frame.select(text_reference_keys(pl.col("value")))
    assert out.schema["value"] == pl.List(pl.Int64)
    assert out["value"].to_list() == [None, [123]]


def test_text_reference_keys_join_ledger_serials():
    """The join the candidate generator does: exploded bank keys = ledger serial."""
    bank = pl.DataFrame(
        {"id": ["b1", "b2", "b3", "b4"],
         "text": ["FPS INV-2026-00123", "inv202600456", "HKD 1,234.50", "PO 4411 thanks"]}
    )
    ledger = pl.DataFrame(
        {"id": ["l1", "l2", "l3", "l4"],
         "reference": ["INV-2026-00123", "INV-2026-00456", "INV-2026-01234", "PO 4411"]}
    )
    keys = bank.select("id", key=text_reference_keys(pl.col("text"))).explode("key").drop_nulls()
    serials = ledger.select("id", key=reference_serial(pl.col("reference")))
    pairs = keys.join(serials, on="key", suffix="_ledger").select("id", "id_ledger").sort("id")
    assert pairs.rows() == [("b1", "l1"), ("b2", "l2"), ("b4", "l4")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("inv/2026/00123 paid 1,234.50", "2026 00123 1 234 50"),
        ("ＩＮＶ２０２６", "2026"),
        ("no digits", ""),
        ("", ""),
        (None, None),
    ],
)
def test_text_digits(text, expected):
    assert _one(text_digits, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("INV-2026-00123", "inv202600123"),
        ("inv / 2026 / 00123", "inv202600123"),
        ("ＩＮＶ－２０２６－００１２３", "inv202600123"),
        ("金港 貿易(香港)", "金港貿易香港"),
        ("", ""),
        (None, None),
    ],
)
def test_alnum_text(text, expected):
    assert _one(alnum_text, text) == expected


# --------------------------------------------------------------------------------------------
# reference_strength
# --------------------------------------------------------------------------------------------


STRENGTH_CASES = [
        # the same key written the ways banks write it
        ("FPS CR KAM WING INV-2026-00123", "INV-2026-00123", "full"),
        ("FPS CR KAM WING INV202600123", "INV-2026-00123", "full"),
        ("kam wing inv 2026 00123", "INV-2026-00123", "full"),
        ("kam wing inv/2026/00123", "INV-2026-00123", "full"),
        ("kam wing 00123", "INV-2026-00123", "serial"),
        ("ＩＮＶ－２０２６－００１２３", "INV-2026-00123", "full"),
        ("inv-2026-00123", "INV202600123", "full"),  # ledger written glued
        ("ref 2026/00123", "INV-2026-00123", "full"),  # year and serial in sequence
        ("ref 2026 123", "INV-2026-00123", "full"),
        ("ref 202600123", "INV-2026-00123", "full"),
        ("inv-2026-00123 4567", "INV-2026-00123", "full"),  # another number after it
        ("inv 2026-00123/00124", "INV-2026-00123", "full"),  # two invoices paid together:
        ("inv 2026-00123/00124", "INV-2026-00124", "serial"),  # the second is only a serial
        ("#123", "INV-2026-00123", "serial"),
        ("rcpt 123", "RCPT-000123", "serial"),
        ("inv-2025-00123", "INV-2026-00123", "serial"),  # another year
        ("po4411", "PO 4411", "full"),
        ("payment 4411", "PO 4411", "serial"),
        ("so 88812", "SO-88812", "full"),
        ("paid 00123 thanks", "00123", "full"),  # bare-number ledger reference
        # damaged references
        ("INV-2026-00132", "INV-2026-00123", "partial"),  # transposed
        ("kam wing 00213", "INV-2026-00123", "partial"),
        ("INV-2026-001", "INV-2026-00123", "partial"),  # truncated
        ("INV2026001", "INV-2026-00123", "partial"),  # truncated, glued
        ("INV-2026-0012", "INV-2026-00123", "partial"),
        ("INV-2026-0012", "INV-2026-00123456", "partial"),  # 4 digits cut off
        ("INV-2026-001", "INV-2026-00123456", "none"),  # 5 cut off: too little left to tell
        # no evidence
        ("INV-2026-00124", "INV-2026-00123", "none"),
        ("INV-2026-001234", "INV-2026-00123", "none"),  # a longer number is another one
        ("HKD 1,123.50", "123", "none"),  # an amount
        ("value 2026-01-23", "INV-2026-00123", "none"),
        ("kam wing trading", "INV-2026-00123", "none"),
        ("kam wing trading", None, "none"),
        ("kam wing trading", "", "none"),
        (None, "INV-2026-00123", "none"),
        (None, None, "none"),
    ]


@pytest.mark.parametrize(("bank_text", "ledger_reference", "expected"), STRENGTH_CASES)
def test_reference_strength(bank_text, ledger_reference, expected):
    frame = pl.DataFrame(
        {"text_bank": [bank_text], "reference_ledger": [ledger_reference]},
        schema={"text_bank": pl.String, "reference_ledger": pl.String},
    )
    out = frame.select(reference_strength(pl.col("text_bank"), pl.col("reference_ledger")))
    assert out.schema == pl.Schema({"reference_strength": pl.String})
    assert out.item() == expected


def test_reference_strength_from_a_precomputed_bank_profile():
    """Profile per bank line, joined onto the pairs: the same levels as reference_strength."""
    pairs = pl.DataFrame(
        {"text_bank": [c[0] for c in STRENGTH_CASES], "reference_ledger": [c[1] for c in STRENGTH_CASES]},
        schema={"text_bank": pl.String, "reference_ledger": pl.String},
    ).with_row_index("pair")
    bank = pairs.select("pair", bank_reference_profile(pl.col("text_bank")))
    joined = pairs.join(bank, on="pair")
    out = joined.select(
        direct=reference_strength(pl.col("text_bank"), pl.col("reference_ledger")),
        profiled=reference_strength_from_profile(
            pl.col("reference_profile"), pl.col("reference_ledger")
        ),
    )
    assert out["profiled"].to_list() == [c[2] for c in STRENGTH_CASES]
    assert out["direct"].to_list() == out["profiled"].to_list()


def test_bank_reference_profile_keys_are_text_reference_keys():
    texts = ["FPS INV-2026-00123", "inv202600123 HKD 1,234.50", "03/10/2026 #456", "", None]
    frame = pl.DataFrame({"text": texts}, schema={"text": pl.String})
    out = frame.select(
        profile=bank_reference_profile(pl.col("text")).struct.field("keys"),
        keys=text_reference_keys(pl.col("text")),
    )
    assert out["profile"].to_list() == out["keys"].to_list()


def test_reference_strength_is_row_wise_and_levels_are_ordered():
    frame = pl.DataFrame(
        {
            "text_bank": ["inv 2026 00123", "inv 2026 00123", "paid 00123", "INV-2026-00132"],
            "reference_ledger": ["INV-2026-00123", "INV-2026-00999", "INV-2026-00123",
                                 "INV-2026-00123"],
        }
    )
    out = frame.select(reference_strength(pl.col("text_bank"), pl.col("reference_ledger")))
    assert out["reference_strength"].to_list() == ["full", "none", "serial", "partial"]
    assert REFERENCE_STRENGTH_LEVELS == ("none", "partial", "serial", "full")
    ordered = out["reference_strength"].cast(pl.Enum(REFERENCE_STRENGTH_LEVELS)).sort()
    assert ordered.to_list() == ["none", "partial", "serial", "full"]


def test_expressions_run_lazily_and_keep_row_count():
    frame = pl.LazyFrame(
        {"text": ["FPS CR KAM WING INV-2026-00123", None, ""], "ref": ["INV-2026-00123", None, ""]}
    )
    out = frame.select(
        normalize_text(pl.col("text")).alias("normalized"),
        name_key(pl.col("text")).alias("name"),
        text_reference_keys(pl.col("text")).alias("keys"),
        text_digits(pl.col("text")).alias("digits"),
        alnum_text(pl.col("text")).alias("alnum"),
        reference_serial(pl.col("ref")).alias("serial"),
        reference_digits(pl.col("ref")).alias("ref_digits"),
        reference_strength(pl.col("text"), pl.col("ref")),
    ).collect()
    assert out.height == 3
    assert out.row(0) == (
        "fps cr kam wing inv-2026-00123", "kam wing", [2026, 123], "2026 00123",
        "fpscrkamwinginv202600123", 123, "202600123", "full",
    )
    assert out.row(1) == (None, None, None, None, None, None, None, "none")
