"""engine.prepare (text, names): expressions (table-driven, one case per row).

The reference expressions are tested in ``test_references.py``; the last test here runs the
expressions of all three modules together."""

from __future__ import annotations

import polars as pl
import pytest

from engine.prepare.names import name_key
from engine.prepare.references import (
    reference_digits,
    reference_grade,
    reference_serial,
    text_digits,
    text_reference_keys,
)
from engine.prepare.text import alnum_text, normalize_text, split_channel
from tests.engine.prepare.helpers import one

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
    assert one(normalize_text, text) == expected


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
        ("REMITTANCE HKD31,424.33", None),  # the currency glued to the amount is no name
        ("TT CR USD1200 KAM WING", "kam wing"),
        ("HKDESIGN 500 LTD", "hkdesign"),  # a name that starts like a currency stays
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
    assert one(name_key, name) == expected


def test_name_key_traditional_chinese_is_byte_exact():
    name = "臺灣銀行香港分行"
    key = one(name_key, name)
    assert key == name
    assert key.encode("utf-8") == name.encode("utf-8")


# --------------------------------------------------------------------------------------------
# alnum_text
# --------------------------------------------------------------------------------------------


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
    assert one(alnum_text, text) == expected


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
        reference_grade(pl.col("text"), pl.col("ref")),
    ).collect()
    assert out.height == 3
    assert out.row(0) == (
        "fps cr kam wing inv-2026-00123", "kam wing", [2026, 123], "2026 00123",
        "fpscrkamwinginv202600123", 123, "202600123", "full",
    )
    assert out.row(1) == (None, None, None, None, None, None, None, "none")
