"""engine.prepare.names and the name columns of prepare_bank / prepare_ledger (table-driven)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.prepare.features import prepare_bank, prepare_ledger
from engine.prepare.names import (
    ALIAS_GROUPS_SCHEMA,
    alias_groups,
    alias_key,
    counterparty_numbers,
    name_codes,
    name_initials,
    name_key,
    text_numbers,
)
from models.schema import BANK_SCHEMA, LEDGER_SCHEMA
from rules.model import default_rules


def _apply(function, values: list[str | None]) -> list:
    frame = pl.DataFrame({"value": values}, schema={"value": pl.String})
    return frame.select(function(pl.col("value")))["value"].to_list()


def _one(function, value):
    return _apply(function, [value])[0]


# --------------------------------------------------------------------------------------------
# name_key: what Hong Kong bank narratives and ledgers write
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a space inside Chinese is layout; the company form is still removed
        ("明珠物流 有限公司", "明珠物流"),
        ("明珠 物流有限公司", "明珠物流"),
        ("明珠 物流 有限公司", "明珠物流"),
        ("明珠物流有限公司", "明珠物流"),
        ("FPS CR 明珠 物流有限公司 INV-2026-00123", "明珠物流"),
        ("陳 大 文", "陳大文"),
        ("金港貿易 (香港) 有限公司", "金港貿易"),
        ("金港貿易香港有限公司", "金港貿易"),
        ("ABC 香港 有限公司", "abc"),
        ("香港有限公司", "香港"),  # never reduced to nothing
        ("陳大文先生", "陳大文"),
        ("陳先生", "陳先生"),  # "Mr Chan" is all the name there is
        ("ソニー 株式会社", "ソニー"),
        ("陳大文 CHAN TAI MAN", "陳大文 chan tai man"),  # a space between scripts stays
        # honorifics, with or without a dot, before or after
        ("MS KWOK HOI SIU", "kwok hoi siu"),
        ("MS. KWOK HOI SIU", "kwok hoi siu"),
        ("KWOK HOI SIU MS", "kwok hoi siu"),
        ("KWOK HOI SIU MS.", "kwok hoi siu"),
        ("KWOK HOI SIU (MS)", "kwok hoi siu"),
        ("FPS CR MS KWOK HOI SIU", "kwok hoi siu"),
        ("MR.CHAN TAI MAN", "chan tai man"),
        ("MDM WONG", "wong"),
        ("MISS HO H L", "ho h l"),
        ("MADAM LEE MEI", "lee mei"),
        ("DR. LAM", "lam"),
        ("MR & MRS CHAN", "chan"),
        ("MESSRS KAM WING", "kam wing"),
        # initials keep their letters, dots or not
        ("HO H L", "ho h l"),
        ("CHAN T.M.", "chan t m"),
        ("T.M. CHAN", "t m chan"),
        ("KWAN MING CHOW", "kwan ming chow"),  # word order is the comparison's business
        # account numbers and FPS ids are not the name
        ("FPS CR 9255227770 LO FUNG MAN", "lo fung man"),
        ("FPS CR 9255227770 MS. LO FUNG MAN", "lo fung man"),
        ("IBT CR 012-345678-001 CHAN TAI MAN", "chan tai man"),
        # numbers of three or more digits are references to the key (name_numbers keeps them)
        ("FPS CR CUSTOMER 4842", "customer"),
        ("Customer 3609 Limited", "customer"),
        ("7-Eleven", "7 eleven"),
        # a legal form cut short by the bank's field width
        ("KAM WING TRADING CO LIMI", "kam wing trading"),
        ("KAM WING TRADING CO L", "kam wing trading"),
        ("EVER PEARL INDUSTRIAL LIMITE", "ever pearl industrial"),
        ("CHEONG FOOK KWONG TRADING LT", "cheong fook kwong trading"),
        ("YEUNG KIT LI", "yeung kit li"),  # Li is a surname, not a cut "limited"
        ("CHAN C L", "chan c l"),  # an initial, not a cut "limited"
        # a payer number's label is not the name
        ("AUTOPAY CR PAYER 64801859 萬寶海產有限公司", "萬寶海產"),
        ("AUTOPAY CR PAYER 87413590 FUNG S P", "fung s p"),
        # a reference cut short by the field width after the name
        ("IBT CR 004-741359-028 FUNG S P INV2", "fung s p"),
        ("IBT CR 012-124395-116 豐寶龍塑膠 有限公司 IN", "豐寶龍塑膠"),
        ("TT IN 024-110398-246 恒泰工程有限公司 INV26", "恒泰工程"),
        ("CR TRF 009-172819-101 海洋吉祥設計 有限公司 I", "海洋吉祥設計"),
        ("WONG KA YI", "wong ka yi"),  # a Latin name's last syllable is no stub
    ],
)
def test_name_key_hong_kong_forms(text, expected):
    assert _one(name_key, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "KAM WING TRADING",
        "KAM WING TRADING CO LTD",
        "KAM WING TRADING CO., LIMITED",
        "KAM WING TRADING CO.,LTD.",
        "KAM WING TRADING (HK) LTD",
        "KAM WING TRADING (H.K.) LIMITED",
        "KAM WING TRADING (HONG KONG) CO., LTD.",
        "KAM WING TRADING COMPANY LIMITED",
        "KAM WING TRADING LTD.",
        "Kam Wing Trading Limited",
        "FPS CR KAM WING TRADING CO LTD INV-2026-00123",
    ],
)
def test_legal_suffix_variants_give_one_key(text):
    assert _one(name_key, text) == "kam wing trading"


def test_name_key_cjk_is_byte_exact():
    key = _one(name_key, "明珠 物流有限公司")
    assert key.encode("utf-8") == "明珠物流".encode()


def test_name_key_words_are_separated_by_single_spaces():
    keys = _apply(name_key, ["T.M. CHAN", "A( B", "KAM WING .  INV 12 . LTD", "陳 大 文 X"])
    assert all("  " not in key and key == key.strip() for key in keys)


# --------------------------------------------------------------------------------------------
# numbers, initials, codes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("FPS CR CUSTOMER 4842", [4842]),
        ("FPS CR 9255227770 LO FUNG MAN", [9255227770]),
        ("FPS CR CUSTOMER 3609 INV-2026-00123", [3609, 2026, 123]),
        ("CHQ DEP 007", [7]),
        ("ＣＵＳＴＯＭＥＲ　３６０９", [3609]),  # full-width digits
        ("1234567890123456789012", [123456789012345678, 9012]),  # longer than Int64: cut
        ("KAM WING", []),
        (None, []),
    ],
)
def test_text_numbers(text, numbers):
    assert _one(text_numbers, text) == numbers


@pytest.mark.parametrize(
    ("counterparty", "numbers"),
    [
        ("Customer 3609 Limited", [3609]),
        ("7-Eleven", [7]),
        ("Kam Wing Trading Ltd", []),
        ("Kam Wing Ltd (ref 12)", []),  # a quoted reference is not the name's
        ("Kam Wing INV-2026-00123", []),
        ("Kam Wing HKD 1,200.00", []),  # nor an amount
        ("Club 8 Limited", [8]),
        (None, []),
    ],
)
def test_counterparty_numbers(counterparty, numbers):
    assert _one(counterparty_numbers, counterparty) == numbers


@pytest.mark.parametrize(
    ("key", "signature"),
    [
        ("chan tai man", "cmt"),
        ("chan t m", "cmt"),
        ("t m chan", "cmt"),
        ("ho h l", "hhl"),
        ("ho ho ling", "hhl"),
        ("ng mei pui", "mnp"),
        ("陳大文", ""),
        ("陳大文 chan tai man", ""),
        ("7 eleven", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_name_initials(key, signature):
    assert _one(name_initials, key) == signature


def test_name_codes_number_equal_names_alike():
    names = pl.Series(["kam wing", "陳大文", None, "kam wing", "", "chan tai man", "陳大文"])
    codes, first = name_codes(names)
    assert sorted(set(codes.tolist())) == list(range(4))  # null and "" are one (no name)
    assert codes[0] == codes[3] and codes[1] == codes[6] and codes[2] == codes[4]
    assert names.fill_null("").gather(first).gather(codes).to_list() == names.fill_null("").to_list()
    assert (first == np.array([np.flatnonzero(codes == c)[0] for c in range(4)])).all()
    empty_codes, empty_first = name_codes(pl.Series([], dtype=pl.String))
    assert len(empty_codes) == len(empty_first) == 0


@pytest.mark.parametrize("seen_before", [0, 200_000])
def test_name_codes_whatever_the_process_has_seen(seen_before):
    """The categorical dictionary is one per process: its ids for these names are dense or far
    apart depending on what else is held as categorical; the codes are the same either way."""
    held = pl.Series([f"other name {seen_before} {i}" for i in range(seen_before)]).cast(pl.Categorical)
    rng = np.random.default_rng(seen_before)
    values = [f"payer {seen_before} {i}" for i in rng.integers(0, 5000, 20_000)]
    codes, first = name_codes(pl.Series(values))
    first_row: dict[str, int] = {}
    for row, value in enumerate(values):
        first_row.setdefault(value, row)
    assert len(first) == len(first_row) and sorted(set(codes.tolist())) == list(range(len(first_row)))
    assert [values[i] for i in first[codes]] == values
    assert sorted(first.tolist()) == sorted(first_row.values())
    assert held.len() == seen_before  # held until now: its ids stay taken


# --------------------------------------------------------------------------------------------
# alias table
# --------------------------------------------------------------------------------------------


def _table(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"name": pl.String, "alias": pl.String}, orient="row")


def test_alias_groups_link_directly_and_through_chains():
    groups = alias_groups(_table([
        ("陳大文", "CHAN TAI MAN"),
        ("金港貿易有限公司", "GOLDEN HARBOUR TRADING CO LTD"),
        ("GOLDEN HARBOUR TRADING LIMITED", "GH TRADING"),  # same key as the row above: a chain
        ("GH TRADING", "金港貿易 (香港) 有限公司"),
    ]))
    assert groups.schema == pl.Schema(ALIAS_GROUPS_SCHEMA)
    by_key = dict(groups.iter_rows())
    assert by_key["陳大文"] == by_key["chan tai man"]
    assert by_key["金港貿易"] == by_key["golden harbour trading"] == by_key["gh trading"]
    assert by_key["陳大文"] != by_key["金港貿易"]
    # the canonical key is the group's smallest key, whatever the row order
    assert by_key["金港貿易"] == "gh trading"
    shuffled = alias_groups(_table([
        ("GH TRADING", "金港貿易 (香港) 有限公司"),
        ("金港貿易有限公司", "GOLDEN HARBOUR TRADING CO LTD"),
        ("GOLDEN HARBOUR TRADING LIMITED", "GH TRADING"),
        ("CHAN TAI MAN", "陳大文"),
    ]))
    assert shuffled.equals(groups)


def test_alias_key_looks_names_up_in_any_word_order():
    groups = alias_groups(_table([("陳大文", "CHAN TAI MAN")]))
    keys = ["陳大文", "chan tai man", "tai man chan", "chan tai ming", "", None]
    got = pl.DataFrame({"k": keys}).select(alias_key(pl.col("k"), groups))["k"].to_list()
    assert got == ["chan tai man", "chan tai man", "chan tai man", None, None, None]


def test_alias_groups_of_an_empty_table():
    assert alias_groups(_table([])).is_empty()


def test_alias_groups_need_name_and_alias_columns():
    with pytest.raises(ValueError, match="name and alias"):
        alias_groups(pl.DataFrame({"name": ["陳大文"], "other": ["CHAN TAI MAN"]}))


# --------------------------------------------------------------------------------------------
# prepare_bank / prepare_ledger name columns
# --------------------------------------------------------------------------------------------


def _bank(rows: list[dict]) -> pl.DataFrame:
    base = {"date": dt.date(2026, 3, 2), "amount_minor": 100_00, "currency": "HKD"}
    return pl.DataFrame(
        [{**base, "id": f"B{i}", **row} for i, row in enumerate(rows)], schema=BANK_SCHEMA
    )


def _ledger(rows: list[dict]) -> pl.DataFrame:
    base = {"date": dt.date(2026, 3, 1), "amount_minor": 100_00, "currency": "HKD", "type": "invoice"}
    return pl.DataFrame(
        [{**base, "id": f"L{i}", **row} for i, row in enumerate(rows)], schema=LEDGER_SCHEMA
    )


NAME_COLUMNS = {
    "name_key": pl.String, "name_script": pl.String, "name_initials": pl.String,
    "alias_key": pl.String, "name_numbers": pl.List(pl.Int64),
}


def test_prepare_bank_name_columns():
    bank = _bank([
        {"description": "FPS CR 9255227770 LO FUNG MAN", "reference": "INV-2026-00123"},
        {"description": "FPS CR CUSTOMER 4842"},
        {"description": "TT IN 陳 大文 REF 88", "counterparty": "CHAN TAI MAN"},
        {"description": "CHQ DEP 000456"},
    ])
    prepared = prepare_bank(bank)
    assert {c: prepared.schema[c] for c in NAME_COLUMNS} == NAME_COLUMNS
    assert prepared.select(list(NAME_COLUMNS)).rows() == [
        ("lo fung man", "latin", "flm", None, [9255227770, 2026, 123]),
        ("customer", "latin", "c", None, [4842]),
        ("chan tai man", "latin", "cmt", None, [88]),  # the counterparty names the payer
        ("", "", "", None, [456]),
    ]


def test_prepare_ledger_name_columns():
    ledger = _ledger([
        {"counterparty": "Customer 3609 Limited", "description": "Invoice 12345"},
        {"counterparty": "7-Eleven"},
        {"counterparty": "Customer 3609 Limited"},
        {"counterparty": "明珠物流有限公司"},
        {"description": "Customer 5555 deposit"},  # no counterparty: no name numbers
    ])
    prepared = prepare_ledger(ledger, default_rules())
    assert {c: prepared.schema[c] for c in NAME_COLUMNS} == NAME_COLUMNS
    assert prepared.select(list(NAME_COLUMNS)).rows() == [
        ("customer", "latin", "c", None, [3609]),
        ("7 eleven", "latin", "", None, [7]),
        ("customer", "latin", "c", None, [3609]),
        ("明珠物流", "cjk", "", None, []),
        ("customer deposit", "latin", "cd", None, []),
    ]


def test_prepare_sets_alias_key_from_the_table():
    aliases = _table([("陳大文", "CHAN TAI MAN"), ("金港貿易有限公司", "GOLDEN HARBOUR TRADING CO LTD")])
    bank = _bank([{"description": "FPS CR CHAN TAI MAN"}, {"description": "FPS CR WONG SIU MING"},
                  {"description": "TT IN GOLDEN HARBOUR TRADING LIMITED"}])
    ledger = _ledger([{"counterparty": "陳大文"}, {"counterparty": "金港貿易(香港)有限公司"},
                      {"counterparty": "Wong Siu Ming"}])
    assert prepare_bank(bank, aliases=aliases)["alias_key"].to_list() == [
        "chan tai man", None, "golden harbour trading"]
    assert prepare_ledger(ledger, default_rules(), aliases=aliases)["alias_key"].to_list() == [
        "chan tai man", "golden harbour trading", None]
    assert prepare_bank(bank)["alias_key"].to_list() == [None, None, None]


def test_prepare_keeps_existing_columns_in_order():
    bank = _bank([{"description": "FPS CR KAM WING"}])
    columns = prepare_bank(bank).columns
    assert columns[: 1 + len(BANK_SCHEMA)] == ["bank_idx", *BANK_SCHEMA]
    assert columns[-5:] == ["name_script", "name_initials", "alias_key", "name_numbers", "cheque_no"]
    ledger_columns = prepare_ledger(_ledger([{"counterparty": "Kam Wing"}]), default_rules()).columns
    assert ledger_columns[-6:] == ["name_script", "name_initials", "alias_key", "name_numbers", "invoiced",
                                   "cheque_no"]
