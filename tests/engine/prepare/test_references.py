"""engine.prepare.references: reference keys and grade (table-driven, one case per row).

The serial, digits and keys cases; text pairs graded directly (:func:`reference_grade`) and
from per-line profiles (:func:`reference_grade_from_profiles`), the grade's table of cases, a
digit-by-digit oracle on generated degraded references, and generated references written in
full or as their serial.
"""

from __future__ import annotations

import random

import polars as pl
import pytest

from engine.prepare.references import (
    REFERENCE_GRADES,
    bank_reference_profile,
    ledger_reference_profile,
    reference_digits,
    reference_grade,
    reference_grade_from_profiles,
    reference_serial,
    text_digits,
    text_reference_keys,
)
from tests.engine.prepare.helpers import one

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
    assert one(reference_serial, reference) == serial


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
    assert one(reference_digits, reference) == digits


# --------------------------------------------------------------------------------------------
# text_reference_keys, text_digits
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
    got = one(text_reference_keys, text)
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
    assert one(text_digits, text) == expected


# --------------------------------------------------------------------------------------------
# reference_grade: text pairs graded directly
# --------------------------------------------------------------------------------------------


TEXT_PAIR_CASES = [
    # the same key written the ways banks write it
    ("FPS CR KAM WING INV-2026-00123", "INV-2026-00123", "full"),
    ("FPS CR KAM WING INV202600123", "INV-2026-00123", "full"),
    ("kam wing inv 2026 00123", "INV-2026-00123", "full"),
    ("kam wing inv/2026/00123", "INV-2026-00123", "full"),
    ("kam wing 00123", "INV-2026-00123", "serial"),
    ("ＩＮＶ－２０２６－００１２３", "INV-2026-00123", "full"),
    ("inv-2026-00123", "INV202600123", "full"),  # ledger written glued
    ("ref 2026/00123", "INV-2026-00123", "reformatted"),  # year and serial, no prefix
    ("ref 2026 123", "INV-2026-00123", "reformatted"),  # year and the serial's value
    ("ref 202600123", "INV-2026-00123", "reformatted"),  # year and serial glued
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
    ("INV-2026-00132", "INV-2026-00123", "near"),  # two adjacent digits swapped
    ("kam wing 00213", "INV-2026-00123", "near"),
    ("INV-2026-00124", "INV-2026-00123", "near"),  # one digit wrong
    ("INV-2026-001", "INV-2026-00123", "truncated"),  # trailing digits cut off
    ("INV2026001", "INV-2026-00123", "truncated"),  # truncated, glued after the year
    ("INV-2026-0012", "INV-2026-00123", "truncated"),
    ("INV-2026-0012", "INV-2026-00123456", "truncated"),  # 4 digits cut off
    ("INV-2026-0023", "INV-2026-00123", "near"),  # one digit left out
    ("TT IN 000041993", "00004193", "near"),  # one digit written twice
    ("INV-2026-010235", "INV-2026-01023", "none"),  # a digit more at the end: another number
    ("INV-2026-103", "INV-2026-1023", "none"),  # a 4-digit serial less a digit: too short to tell
    ("INV-2026-001", "INV-2026-00123456", "none"),  # 5 cut off: too little left to tell
    # no evidence
    ("INV-2026-001234", "INV-2026-00123", "none"),  # a longer number is another one
    ("HKD 1,123.50", "123", "none"),  # an amount
    ("value 2026-01-23", "INV-2026-00123", "none"),
    ("kam wing trading", "INV-2026-00123", "none"),
    ("kam wing trading", None, "none"),
    ("kam wing trading", "", "none"),
    (None, "INV-2026-00123", "none"),
    (None, None, "none"),
]


@pytest.mark.parametrize(("bank_text", "ledger_reference", "expected"), TEXT_PAIR_CASES)
def test_reference_grade_of_text_pairs(bank_text, ledger_reference, expected):
    frame = pl.DataFrame(
        {"text_bank": [bank_text], "reference_ledger": [ledger_reference]},
        schema={"text_bank": pl.String, "reference_ledger": pl.String},
    )
    out = frame.select(reference_grade(pl.col("text_bank"), pl.col("reference_ledger")))
    assert out.schema == pl.Schema({"reference_grade": pl.String})
    assert out.item() == expected


def test_reference_grade_from_a_precomputed_bank_profile():
    """Profile per bank line, joined onto the pairs, then graded from both profiles: the
    same grades as reference_grade on the texts."""
    pairs = pl.DataFrame(
        {"text_bank": [c[0] for c in TEXT_PAIR_CASES], "reference_ledger": [c[1] for c in TEXT_PAIR_CASES]},
        schema={"text_bank": pl.String, "reference_ledger": pl.String},
    ).with_row_index("pair")
    bank = pairs.select("pair", bank_reference_profile(pl.col("text_bank")))
    joined = pairs.join(bank, on="pair")
    out = joined.select(
        direct=reference_grade(pl.col("text_bank"), pl.col("reference_ledger")),
        profiled=reference_grade_from_profiles(
            pl.col("reference_profile"), ledger_reference_profile(pl.col("reference_ledger"))
        ),
    )
    assert out["profiled"].to_list() == [c[2] for c in TEXT_PAIR_CASES]
    assert out["direct"].to_list() == out["profiled"].to_list()


def test_bank_reference_profile_keys_are_text_reference_keys():
    texts = ["FPS INV-2026-00123", "inv202600123 HKD 1,234.50", "03/10/2026 #456", "", None]
    frame = pl.DataFrame({"text": texts}, schema={"text": pl.String})
    out = frame.select(
        profile=bank_reference_profile(pl.col("text")).struct.field("keys"),
        keys=text_reference_keys(pl.col("text")),
    )
    assert out["profile"].to_list() == out["keys"].to_list()


def test_reference_grade_is_row_wise_and_grades_are_ordered():
    frame = pl.DataFrame(
        {
            "text_bank": ["inv 2026 00123", "inv 2026 00123", "paid 00123", "INV-2026-00132"],
            "reference_ledger": ["INV-2026-00123", "INV-2026-00999", "INV-2026-00123",
                                 "INV-2026-00123"],
        }
    )
    out = frame.select(reference_grade(pl.col("text_bank"), pl.col("reference_ledger")))
    assert out["reference_grade"].to_list() == ["full", "none", "serial", "near"]
    ordered = out["reference_grade"].cast(pl.Enum(REFERENCE_GRADES)).sort()
    assert ordered.to_list() == ["full", "serial", "near", "none"]


# --------------------------------------------------------------------------------------------
# reference_grade_from_profiles
# --------------------------------------------------------------------------------------------


def _graded(bank_texts, ledger_references):
    """Candidate pairs graded the way scoring does it: each side's profile computed once per
    line, joined onto the pairs, then graded. Returns the pairs frame with the profiles and
    ``reference_grade``."""
    pairs = pl.DataFrame(
        {"text_bank": bank_texts, "reference_ledger": ledger_references},
        schema={"text_bank": pl.String, "reference_ledger": pl.String},
    )
    bank = pairs.select("text_bank").unique().with_columns(
        bank_reference_profile(pl.col("text_bank"))
    )
    ledger = pairs.select("reference_ledger").unique().with_columns(
        ledger_reference_profile(pl.col("reference_ledger"))
    )
    pairs = (
        pairs.with_row_index("pair")
        .join(bank, on="text_bank", how="left", nulls_equal=True)
        .join(ledger, on="reference_ledger", how="left", nulls_equal=True)
        .sort("pair")
    )
    return pairs.with_columns(
        reference_grade_from_profiles(pl.col("reference_profile"), pl.col("ledger_reference_profile"))
    )


GRADE_CASES = [
    # full: the letter prefix and the digit groups, as written or run together
    ("INV-2026-01069", "INV-2026-01069", "full"),
    ("INV202601069", "INV-2026-01069", "full"),
    ("inv 2026 01069", "INV-2026-01069", "full"),
    ("INV/2026/01069", "INV-2026-01069", "full"),
    ("Inv-2026-01069", "INV-2026-01069", "full"),  # case
    ("inv-2026-01069", "inv-2026-01069", "full"),
    ("ＩＮＶ－２０２６－０１０６９", "INV-2026-01069", "full"),  # full-width
    ("INV-2026-01069", "ＩＮＶ－２０２６－０１０６９", "full"),
    ("FPS CR KAM WING TRADING INV-2026-01069", "INV-2026-01069", "full"),  # in a narrative
    ("FPS CR KAM WING INV-2026-01069 HKD 1,069.00", "INV-2026-01069", "full"),
    ("inv-2026-01069", "INV202601069", "full"),  # ledger written glued
    ("paid 01069 thanks", "01069", "full"),  # bare-number ledger reference
    ("po4411", "PO 4411", "full"),
    ("INV-123", "INV-123", "full"),  # a 3-digit serial
    # reformatted: the prefix or the separators changed or missing
    ("2026-01069", "INV-2026-01069", "reformatted"),
    ("2026 01069", "INV-2026-01069", "reformatted"),
    ("202601069", "INV-2026-01069", "reformatted"),
    ("IN2026-01069", "INV-2026-01069", "reformatted"),
    ("IV-2026-01069", "INV-2026-01069", "reformatted"),
    ("INV26-01069", "INV-2026-01069", "reformatted"),  # a two-digit year
    ("INV 01069", "INV-2026-01069", "reformatted"),  # prefix and serial, no year
    ("INV01069", "INV-2026-01069", "reformatted"),
    ("ref 2026/1069", "INV-2026-01069", "reformatted"),  # the year and the serial's value
    ("TT IN 31,424.33 REF 2026-01069", "INV-2026-01069", "reformatted"),
    ("ｒｅｆ　２０２６－０１０６９", "INV-2026-01069", "reformatted"),
    # serial: the serial's value among the bank text's keys
    ("1163", "INV-2026-01163", "serial"),
    ("#1163", "INV-2026-01163", "serial"),
    ("01163", "INV-2026-01163", "serial"),
    ("no.1163", "INV-2026-01163", "serial"),
    ("FPS CR KAM WING 1163 HKD 3,000.00", "INV-2026-01163", "serial"),
    ("INV-2025-01163", "INV-2026-01163", "serial"),  # another year
    ("INV 123", "INV-2026-00123", "serial"),  # prefix and the value, not as written
    ("inv 2026-01069/01070", "INV-2026-01070", "serial"),  # the second of two invoices
    ("123", "INV-123", "serial"),
    # near: one digit wrong, or two adjacent digits swapped
    ("INV-2026-10069", "INV-2026-01069", "near"),  # the leading zero swapped away
    ("INV-2026-01096", "INV-2026-01069", "near"),
    ("INV-2026-01068", "INV-2026-01069", "near"),
    ("INV-2026-11069", "INV-2026-01069", "near"),
    ("01648", "INV-2026-01468", "near"),
    ("2026-01648", "INV-2026-01468", "near"),
    ("INV-2026-01648", "INV-2026-01468", "near"),
    ("INV202601648", "INV-2026-01468", "near"),  # glued after the reference's year
    ("inv 2026 01648", "INV-2026-01468", "near"),
    ("ＩＮＶ－２０２６－１００６９", "INV-2026-01069", "near"),
    ("FPS CR KAM WING TRADING INV-2026-01648 HKD 31,424.33", "INV-2026-01468", "near"),
    ("INV-2026-01069 INV-2026-01070", "INV-2026-01071", "near"),  # the closer of two
    ("paid 01096", "01069", "near"),  # bare-number ledger reference
    ("po 4412", "PO 4411", "near"),  # a 4-digit serial
    ("INV-2025-10069", "INV-2026-01069", "near"),  # another year, separated
    # truncated: 1 to 4 trailing digits cut off, at least 3 left
    ("INV-2026-0106", "INV-2026-01069", "truncated"),
    ("0106", "INV-2026-01069", "truncated"),
    ("20260106", "INV-2026-01069", "truncated"),  # glued to the year
    ("INV2026010", "INV-2026-01069", "truncated"),
    ("INV-2026-010", "INV-2026-01069", "truncated"),
    ("106", "INV-2026-01069", "truncated"),  # the value cut, without the leading zero
    ("INV-2026-0012", "INV-2026-00123456", "truncated"),  # 4 digits cut off
    ("INV-2026-0023", "INV-2026-00123", "near"),  # one digit left out
    ("TT IN 000041993", "00004193", "near"),  # one digit written twice
    ("INV-2026-010235", "INV-2026-01023", "none"),  # a digit more at the end: another number
    ("INV-2026-103", "INV-2026-1023", "none"),  # a 4-digit serial less a digit: too short to tell
    ("po 441", "PO 4411", "truncated"),
    # none
    ("INV-2026-001", "INV-2026-00123456", "none"),  # 5 cut off: too little left to tell
    ("INV-2026-01", "INV-2026-01069", "none"),  # 2 digits left
    ("00106", "INV-2026-01069", "none"),  # leading zeros matter: not a prefix as written
    ("HKD 1,069.00", "INV-2026-01069", "none"),  # an amount holding the digits
    ("01069.00", "INV-2026-01069", "none"),
    ("paid 1069.00", "INV-2026-01069", "none"),
    ("2026-10-06", "INV-2026-01069", "none"),  # a date
    ("value date 2026-01-06", "INV-2026-01069", "none"),
    ("FPS 9255227770", "INV-2026-01069", "none"),  # an FPS id
    ("FPS 2026010690", "INV-2026-01069", "none"),  # 10 digits starting with the year
    ("FPS 9255227770", "FPS-9255227771", "near"),  # ... but a 10-digit serial is compared
    ("01960", "INV-2026-01069", "none"),  # two digits swapped, not adjacent
    ("INV-2026-01960", "INV-2026-01069", "none"),
    ("INV-2026-01178", "INV-2026-01069", "none"),  # two digits wrong
    ("INV-2026-01058", "INV-2026-01069", "none"),  # two adjacent digits wrong, not swapped
    ("INV202510069", "INV-2026-01069", "none"),  # glued after another year
    ("INV-2026-01069", "INV-2026-01070", "none"),  # the next invoice
    ("INV-2026-010690", "INV-2026-01069", "none"),  # a longer number is another one
    ("ref 00000", "INV-2026-00009", "none"),  # zero is no number: neither near ...
    ("ref 0000", "INV-2026-00009", "none"),  # ... nor truncated
    ("INV-2026-0001", "INV-2026-0000", "none"),  # a serial of 0 is no serial
    ("INV-2026-00123", "PO 2016", "none"),  # a reference's year is not near a serial
    ("INV-132", "INV-123", "none"),  # 3-digit serials are never near ...
    ("132", "INV-123", "none"),
    ("INV-124", "INV-123", "none"),
    ("INV-12", "INV-123", "none"),  # ... nor truncated
    ("INV-2026-42", "INV-2026-42", "none"),  # a serial of fewer than 3 digits
    ("PO 42", "PO 42", "none"),
    ("N/A", "N/A", "none"),  # letters only
    ("INV-2026-01069", "N/A", "none"),
    ("kam wing trading", "INV-2026-01069", "none"),
    ("", "INV-2026-01069", "none"),
    ("INV-2026-01069", "", "none"),
    ("INV-2026-01069", None, "none"),  # null sides
    (None, "INV-2026-01069", "none"),
    (None, None, "none"),
]


@pytest.mark.parametrize(("bank_text", "ledger_reference", "expected"), GRADE_CASES)
def test_reference_grade(bank_text, ledger_reference, expected):
    out = _graded([bank_text], [ledger_reference])
    assert out["reference_grade"].to_list() == [expected]


def test_reference_grade_is_row_wise_typed_and_never_null():
    """All the cases in one frame (rows of different grades side by side) give the grades
    they give alone; a String column named reference_grade with no null."""
    out = _graded([c[0] for c in GRADE_CASES], [c[1] for c in GRADE_CASES])
    assert out.schema["reference_grade"] == pl.String
    assert out["reference_grade"].to_list() == [c[2] for c in GRADE_CASES]
    assert set(out["reference_grade"]) == set(REFERENCE_GRADES)


def test_reference_grade_on_chunked_pairs():
    """Pairs arriving in several chunks (as gathered or concatenated frames do) are graded
    as in one chunk, eagerly and in the streaming engine."""
    graded = _graded(*_generated_pairs(random.Random(5), 1000))
    profiles = graded.select("reference_profile", "ledger_reference_profile")
    chunked = pl.concat([profiles.slice(start, 300) for start in range(0, 1000, 300)],
                        rechunk=False)
    assert chunked["reference_profile"].n_chunks() == 4
    grade = reference_grade_from_profiles(
        pl.col("reference_profile"), pl.col("ledger_reference_profile")
    )
    assert chunked.select(grade)["reference_grade"].equals(graded["reference_grade"])
    streamed = chunked.lazy().select(grade).collect(engine="streaming")
    assert streamed["reference_grade"].equals(graded["reference_grade"])


def test_reference_grades_strongest_first():
    assert REFERENCE_GRADES == ("full", "reformatted", "serial", "near", "truncated", "none")


def test_reference_grade_lazily_and_with_null_profiles():
    """In a lazy query, and with whole profiles null (a pair whose side was never profiled)."""
    frame = pl.LazyFrame(
        {"text": ["INV-2026-10069", None, "INV-2026-10069"],
         "ref": ["INV-2026-01069", "INV-2026-01069", None]}
    ).with_columns(
        bank_reference_profile(pl.col("text")), ledger_reference_profile(pl.col("ref"))
    ).with_columns(
        reference_profile=pl.when(pl.col("text").is_not_null()).then(pl.col("reference_profile"))
    )
    out = frame.select(
        reference_grade_from_profiles(pl.col("reference_profile"), pl.col("ledger_reference_profile"))
    ).collect()
    assert out["reference_grade"].to_list() == ["near", "none", "none"]


@pytest.mark.parametrize(
    ("text", "runs"),
    [
        ("FPS CR INV-2026-01069 FPS 9255227770", ["01069", "9255227770"]),
        ("INV202601069", ["202601069"]),
        ("inv 2026 01069", ["01069"]),  # a year before another run is left out
        ("paid in 2026", ["2026"]),  # a year alone is kept
        ("HKD 1,069.00 on 2026-10-06 ref 0106", ["0106"]),  # amounts and dates are not runs
        ("#12 and 007", ["007"]),  # 3 digits or more
        ("ＩＮＶ－２０２６－０１０６９", ["01069"]),
        ("no digits", []),
        (None, None),
    ],
)
def test_bank_reference_profile_runs(text, runs):
    frame = pl.DataFrame({"text": [text]}, schema={"text": pl.String})
    profile = frame.select(bank_reference_profile(pl.col("text")).struct.field("runs"))
    assert profile["runs"].to_list() == [runs]


# ---- generated references ------------------------------------------------------------------


def _serial_near_or_truncated(runs, serial, year):
    """The digit-by-digit grades written out per run, for a pair graded neither full,
    reformatted nor serial: "near", "truncated" or "none"."""
    length = len(serial)
    if not 4 <= length <= 15 or int(serial) == 0:
        return "none"
    stripped = serial.lstrip("0")

    def near(candidate):
        differ = [i for i, (a, b) in enumerate(zip(candidate, serial, strict=True)) if a != b]
        return int(candidate) != 0 and (
            len(differ) == 1
            or (
                len(differ) == 2
                and differ[1] == differ[0] + 1
                and candidate[differ[0]] == serial[differ[1]]
                and candidate[differ[1]] == serial[differ[0]]
            )
        )

    def cut(prefix, whole):
        return (
            len(prefix) >= 3
            and int(prefix) != 0
            and 1 <= len(whole) - len(prefix) <= 4
            and whole.startswith(prefix)
        )

    def one_off(run):
        # one digit left out or written twice, not at the very end (5 to 14 digit serials)
        if not 5 <= length <= 14 or abs(len(run) - length) != 1 or int(run) == 0:
            return False
        big, small = (run, serial) if len(run) > length else (serial, run)
        return (
            big[-1] == small[-1]
            and int(big) != int(small)
            and any(big[:k] + big[k + 1:] == small for k in range(len(big)))
        )

    # glued after the reference's year: the part after it
    glued = year is not None and length <= 12
    grade = "none"
    for run in runs:
        after_year = run[4:] if glued and run.startswith(year) and len(run) > 4 else None
        if (len(run) == length and near(run)) or one_off(run) or (
            after_year is not None and len(after_year) == length and near(after_year)
        ):
            return "near"
        if (
            cut(run, serial)
            or (not run.startswith("0") and cut(run, stripped))
            or (after_year is not None and cut(after_year, serial))
        ):
            grade = "truncated"
    return grade


def _degraded(rng, serial):
    """The serial damaged the ways people and banks damage it (or not at all)."""
    digits = list(serial)
    i = rng.randrange(len(digits))
    kind = rng.choice(["swap", "swap", "substitute", "substitute", "swap far", "two wrong",
                       "cut", "cut", "strip and cut", "same", "random", "longer", "dropped", "doubled"])
    if kind == "swap" and len(digits) > 1:
        i = min(i, len(digits) - 2)
        digits[i], digits[i + 1] = digits[i + 1], digits[i]
    elif kind == "swap far" and len(digits) > 2:
        j = (i + rng.randrange(2, len(digits))) % len(digits)
        digits[i], digits[j] = digits[j], digits[i]
    elif kind == "substitute":
        digits[i] = rng.choice("0123456789")
    elif kind == "two wrong":
        for k in rng.sample(range(len(digits)), min(2, len(digits))):
            digits[k] = rng.choice("0123456789")
    elif kind == "cut":
        digits = digits[: max(1, len(digits) - rng.randrange(1, 7))]
    elif kind == "strip and cut":
        digits = list("".join(digits).lstrip("0") or "0")
        digits = digits[: max(1, len(digits) - rng.randrange(0, 5))]
    elif kind == "random":
        digits = [rng.choice("0123456789") for _ in digits]
    elif kind == "longer":
        digits.append(rng.choice("0123456789"))
    elif kind == "dropped" and len(digits) > 1:
        del digits[i]
    elif kind == "doubled":
        digits.insert(i, digits[i])
    return "".join(digits)


def _generated_pairs(rng, count):
    texts, references = [], []
    for _ in range(count):
        length = rng.choice([3, 4, 4, 5, 5, 5, 6, 7, 8, 10, 12, 13])
        serial = f"{rng.randrange(10 ** rng.randrange(1, length + 1)):0{length}d}"
        year = rng.choice(["2025", "2026", None])
        prefix = rng.choice(["INV", "BILL", "SO", "CN", ""])
        reference = "-".join(part for part in (prefix, year, serial) if part)
        damaged = _degraded(rng, serial)
        bank_year = rng.choice([year, year, "2025", None]) if year else rng.choice([None, "2026"])
        written = rng.choice([
            damaged,
            f"{prefix}-{bank_year}-{damaged}" if bank_year else f"{prefix} {damaged}",
            f"{prefix}{bank_year or ''}{damaged}",
            f"{bank_year or ''}{damaged}",
        ])
        noise = rng.choice(["", "FPS CR KAM WING ", "TT IN 31,424.33 REF ", "FPS 9255227770 "])
        texts.append(f"{noise}{written}")
        references.append(reference)
    return texts, references


def test_reference_grade_digit_by_digit_matches_its_definition():
    """Near and truncated, computed with bitwise operations on nibbles, agree with the
    definition written out digit by digit, on thousands of generated damaged references."""
    rng = random.Random(20261069)
    out = _graded(*_generated_pairs(rng, 4000))
    profiles = out.select(
        "reference_grade",
        runs=pl.col("reference_profile").struct.field("runs"),
        serial=pl.col("ledger_reference_profile").struct.field("serial"),
        year=pl.col("ledger_reference_profile").struct.field("year"),
    )
    fuzzy = profiles.filter(pl.col("reference_grade").is_in(["near", "truncated", "none"]))
    wrong = [
        (row, expected)
        for row in fuzzy.iter_rows(named=True)
        if row["serial"] is not None
        and len(row["serial"]) >= 3
        and (expected := _serial_near_or_truncated(row["runs"], row["serial"], row["year"]))
        != row["reference_grade"]
    ]
    assert wrong == []
    counts = profiles["reference_grade"].value_counts()
    seen = dict(zip(counts["reference_grade"], counts["count"], strict=True))
    assert all(seen.get(grade, 0) >= 50 for grade in REFERENCE_GRADES), seen  # no vacuous pass


def _rewritten(rng, prefix, year, serial):
    """The reference as banks write it in full, or only its serial."""
    value = str(int(serial))
    full = [
        f"{prefix}-{year}-{serial}", f"{prefix}{year}{serial}", f"{prefix} {year} {serial}",
        f"{prefix}/{year}/{serial}", f"{prefix.lower()}-{year}-{serial}",
        f"{prefix}-{year}-{serial}".translate(_FULL_WIDTH),
    ]
    serial_only = [f"#{value}", f"no.{value}", serial, value, f"{value} thanks"]
    kind = rng.choice(["full", "serial"])
    written = rng.choice(full if kind == "full" else serial_only)
    noise = rng.choice(["", "FPS CR KAM WING TRADING ", "TT IN HKD 31,424.33 "])
    return kind, f"{noise}{written}"


_FULL_WIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}


def test_reference_grade_of_references_written_in_full_or_as_their_serial():
    """On a few hundred generated references written in full (with the letter prefix, in the
    ways banks write it) or as their serial, the grade is "full" or "serial" accordingly."""
    rng = random.Random(1163)
    texts, references, kinds = [], [], []
    for _ in range(400):
        prefix = rng.choice(["INV", "BILL", "SO", "RCPT", "CN"])
        year = rng.choice(["2024", "2025", "2026"])
        length = rng.randrange(3, 9)
        serial = f"{rng.randrange(100, 10 ** rng.randrange(3, length + 1)):0{length}d}"
        kind, text = _rewritten(rng, prefix, year, serial)
        texts.append(text)
        references.append(f"{prefix}-{year}-{serial}")
        kinds.append(kind)
    out = _graded(texts, references).with_columns(kind=pl.Series(kinds))
    rows = out.select("text_bank", "reference_ledger", "kind", "reference_grade").rows()
    assert sum(r[2] == "full" for r in rows) >= 150
    assert sum(r[2] == "serial" for r in rows) >= 150
    for text, reference, kind, grade in rows:
        assert grade == kind, (text, reference, grade)
