"""engine.scoring.names: name evidence of candidate pairs (table-driven: bank text, ledger name,
expected evidence), on lines prepared as a run prepares them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import opencc
import polars as pl
import pytest
from rapidfuzz import fuzz

from engine.prepare.features import prepare_bank, prepare_ledger
from engine.scoring.names import (
    NameComparison,
    compare_names,
    name_similarity,
    pair_name_similarity,
)
from feeds.aliases import read_aliases
from models.schema import BANK_SCHEMA, LEDGER_SCHEMA
from rules.model import default_rules

#: the workspace's alias table in these cases
ALIASES = pl.DataFrame(
    [
        ("陳大文", "CHAN TAI MAN"),
        ("金港貿易有限公司", "GOLDEN HARBOUR TRADING CO LTD"),
        ("GOLDEN HARBOUR TRADING LIMITED", "GH TRADING"),  # a chain: GH TRADING is 金港貿易 too
    ],
    schema={"name": pl.String, "alias": pl.String},
    orient="row",
)

# bank description, ledger counterparty, expected evidence (similarity as (at least, at most))
CASES = [
    # names in another order
    ("FPS CR KWAN MING CHOW", "Chow Kwan Ming", {"similarity": (95, 100), "initials": False}),
    ("FPS CR TAI MAN CHAN", "CHAN Tai Man", {"similarity": (95, 100)}),
    # given names as initials, either side, any order
    ("FPS CR HO H L", "Ho Ho Ling", {"initials": True}),
    ("FPS CR NG M P", "Ng Mei Pui", {"initials": True}),
    ("FPS CR CHAN T M", "Chan Tai Man", {"initials": True}),
    ("FPS CR T M CHAN", "Chan Tai Man", {"initials": True}),
    ("FPS CR CHAN T.M.", "Chan Tai Man", {"initials": True}),
    ("FPS CR MR CHAN M T", "Chan Tai Man", {"initials": True}),
    ("FPS CR CHAN TAI MAN", "Chan T M", {"initials": True}),
    ("FPS CR HO H L", "Ho Hoi Ling", {"initials": True}),
    ("FPS CR HO H L", "Ho Ho Man", {"initials": False}),  # L is not Man
    ("FPS CR HO HO L", "Ho Hung Ling", {"initials": False}),  # two Ho written, one there
    ("FPS CR H L", "Ho Ho Ling", {"initials": False}),  # no full word in common
    ("FPS CR CHAN T M", "Cheung Tai Man", {"initials": False}),  # the surname differs
    ("FPS CR CHAN T M", "Chan Tai Man Peter", {"initials": False}),  # a word left over
    ("FPS CR CHAN TAI MAN", "Chan Tai Man", {"similarity": (100, 100), "initials": False}),
    # honorifics
    ("FPS CR MS KWOK HOI SIU", "Kwok Hoi Siu", {"similarity": (100, 100)}),
    ("FPS CR MS. KWOK HOI SIU", "Kwok Hoi Siu", {"similarity": (100, 100)}),
    ("FPS CR KWOK HOI SIU MS", "Ms Kwok Hoi Siu", {"similarity": (100, 100)}),
    # Chinese written with spaces, legal form variants
    ("FPS CR 明珠物流 有限公司", "明珠物流有限公司", {"similarity": (100, 100)}),
    ("FPS CR 明珠 物流有限公司", "明珠物流有限公司", {"similarity": (100, 100)}),
    ("TT IN KAM WING TRADING CO., LIMITED", "Kam Wing Trading Company Limited", {"similarity": (100, 100)}),
    ("TT IN KAM WING TRADING (HK) LTD", "KAM WING TRADING CO LTD", {"similarity": (100, 100)}),
    # numbers in names
    ("FPS CR CUSTOMER 4842", "Customer 3609 Limited", {"similarity": (100, 100), "digits_differ": True}),
    ("FPS CR CUSTOMER 3609", "Customer 3609 Limited", {"digits_differ": False}),
    ("FPS CR CUSTOMER 3609 INV-2026-00123", "Customer 3609 Limited", {"digits_differ": False}),
    ("FPS CR CUSTOMER", "Customer 3609 Limited", {"digits_differ": True}),
    ("FPS CR 9255227770 LO FUNG MAN", "Lo Fung Man", {"similarity": (100, 100), "digits_differ": False}),
    ("FPS CR 7-ELEVEN 0042", "7-Eleven", {"digits_differ": False}),
    ("FPS CR 8-ELEVEN", "7-Eleven", {"digits_differ": True}),
    # scripts and aliases
    ("FPS CR CHAN TAI MAN", "陳大文", {"alias": True, "different_script": False}),
    ("FPS CR TAI MAN CHAN", "陳大文", {"alias": True, "different_script": False}),
    ("TT IN GH TRADING", "金港貿易(香港)有限公司", {"alias": True, "different_script": False}),
    ("TT IN GOLDEN HARBOUR TRADING CO LTD", "GH Trading Limited", {"alias": True}),
    ("FPS CR WONG SIU MING", "黃小明", {"alias": False, "different_script": True, "similarity": (0, 0)}),
    ("FPS CR CHAN TAI MAN", "黃小明", {"alias": False, "different_script": True}),
    ("FPS CR 陳大文", "陳大文", {"alias": True, "different_script": False, "similarity": (100, 100)}),
    # Simplified and Traditional characters are one script (a mainland bank prints 陈大文)
    ("FPS CR 陈大文", "陳大文", {"different_script": False, "similarity": (100, 100)}),
    ("TT IN 金港贸易有限公司", "金港貿易有限公司", {"similarity": (100, 100)}),
    ("FPS CR 陈小文", "陳大文", {"similarity": (50, 80)}),  # another name stays another name
    # missing names
    ("CHQ DEP 000456", "Kam Wing Trading Ltd", {"missing": True, "similarity": (0, 0), "digits_differ": False,
                                                "different_script": False}),
    ("CHQ DEP 000456", "Customer 3609 Limited", {"missing": True, "digits_differ": False}),
    ("FPS CR KAM WING", None, {"missing": True, "similarity": (0, 0), "initials": False}),
    # names sharing words, each with a word of its own, are different parties
    ("TT IN TSANG SHAN KWAN", "Tsang Shan Po", {"similarity": (0, 60)}),  # siblings
    ("TT IN KAM WING TRADING", "Kam Wing Engineering Ltd", {"similarity": (0, 60)}),
    ("FPS CR CHEONG KIN SANG", "Cheung Kin Sang", {"similarity": (85, 100)}),  # one word misspelt
    ("TT IN GOLDEN HARBOUR TECH", "Golden Harbour Technology Ltd", {"similarity": (85, 100)}),  # cut short
    ("IBT DR INLAND REVENUE DEPT", "Inland Revenue Department", {"similarity": (85, 100)}),  # abbreviated
    ("TT IN CHEONG TAI FUN", "Cheong Tai Fung Food Ltd", {"similarity": (70, 100)}),  # cut at the field width
    ("FPS CR KAM WING", "Kam Wing Trading Ltd", {"similarity": (95, 100)}),  # a word only one side has
    # a biller by its acronym
    ("AUTOPAY DR HKBN LTD", "Hong Kong Broadband Network Limited", {"acronym": True}),
    ("AUTOPAY DR CLP", "China Light & Power Company Limited", {"acronym": True}),
    ("AUTOPAY DR HONG KONG BROADBAND NETWORK", "HKBN Ltd", {"acronym": True}),
    ("FPS CR HKBN", "Ho Kin Bun", {"acronym": False}),
    ("AUTOPAY DR TOWNGAS", "The Hong Kong and China Gas Company Limited", {"acronym": False, "purpose": False}),
    # the bank prints the item's purpose where the payee would stand
    ("AUTOPAY DR OFFICE RENT", "Harbour View Properties Limited",
     {"purpose": True, "acronym": False, "description": "Office rent Sep 2026"}),
    ("AUTOPAY DR RENT", "Harbour View Properties Limited", {"purpose": True, "description": "Office rent Sep 2026"}),
    ("AUTOPAY DR OFFICE RENT", "Harbour View Properties Limited", {"purpose": False, "description": "Rent"}),
    ("FPS CR KAM WING TRADING", "Harbour View Properties Limited",
     {"purpose": False, "description": "Office rent Sep 2026"}),
    # alike names are names: nothing else is looked for
    ("FPS CR KAM WING TRADING", "Kam Wing Trading Ltd", {"purpose": False, "description": "Kam Wing trading goods"}),
]
FLAGS = ("initials", "digits_differ", "alias", "missing", "different_script", "acronym", "purpose")
DEFAULTS = {flag: False for flag in FLAGS}


def _sides(cases) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Bank line i and ledger item i of every case, prepared with the alias table."""
    day = dt.date(2026, 3, 2)
    bank = pl.DataFrame(
        [{"id": f"B{i:03}", "date": day, "amount_minor": 100_00, "currency": "HKD", "description": text}
         for i, (text, _, _) in enumerate(cases)],
        schema=BANK_SCHEMA,
    )
    ledger = pl.DataFrame(
        [{"id": f"L{i:03}", "date": day, "amount_minor": 100_00, "currency": "HKD", "counterparty": name,
          "type": "invoice", "description": expected.get("description")}
         for i, (_, name, expected) in enumerate(cases)],
        schema=LEDGER_SCHEMA,
    )
    return prepare_bank(bank, aliases=ALIASES), prepare_ledger(ledger, default_rules(), aliases=ALIASES)


@pytest.fixture(scope="module")
def compared() -> NameComparison:
    bank, ledger = _sides(CASES)
    rows = np.arange(len(CASES))
    return compare_names(rows, rows, bank, ledger)


@pytest.mark.parametrize(("case", "bank_text", "ledger_name", "expected"),
                         [(i, *case) for i, case in enumerate(CASES)],
                         ids=[f"{b} / {l_}" for b, l_, _ in CASES])
def test_compare_names(compared, case, bank_text, ledger_name, expected):
    got = {flag: bool(getattr(compared, flag)[case]) for flag in FLAGS}
    want = {**DEFAULTS, **{k: v for k, v in expected.items() if k in FLAGS}}
    if "missing" not in expected:
        assert not got["missing"], "both sides are named in this case"
    assert {k: got[k] for k in expected if k in FLAGS} == {k: want[k] for k in expected if k in FLAGS}
    if "similarity" in expected:
        low, high = expected["similarity"]
        assert low <= compared.similarity[case] <= high


def test_flags_are_bool_arrays_aligned_with_the_pairs(compared):
    for flag in FLAGS:
        assert getattr(compared, flag).dtype == np.bool_
        assert len(getattr(compared, flag)) == len(CASES)
    assert compared.similarity.dtype == np.float64


def test_repeated_and_shuffled_pairs_give_each_pair_its_own_evidence():
    """Names are compared once per distinct pair and spread back: every pair of a cross product
    (names repeated many times, in shuffled order) gets what it gets alone."""
    bank, ledger = _sides(CASES)
    rng = np.random.default_rng(3)
    b = rng.integers(0, len(CASES), 3000)
    l_ = rng.integers(0, len(CASES), 3000)
    together = compare_names(b, l_, bank, ledger)
    for i in rng.choice(3000, 40, replace=False):
        alone = compare_names(b[i:i + 1], l_[i:i + 1], bank, ledger)
        for field in ("similarity", *FLAGS):
            assert getattr(together, field)[i] == getattr(alone, field)[0], (field, b[i], l_[i])


def _written_another_way(word: str, other: str) -> bool:
    """One word the other's cut short, abbreviated (its letters in order, first letter first)
    or misspelt."""
    def in_order(short: str, long: str) -> bool:
        rest = iter(long[1:])
        return short[0] == long[0] and all(ch in rest for ch in short[1:])

    return (word.startswith(other) or other.startswith(word) or in_order(word, other) or in_order(other, word)
            or fuzz.ratio(word, other) >= 80)


def _own_words_conflict(x: str, y: str) -> bool:
    own_x = {w for w in x.split() if len(w) >= 2} - set(y.split())
    own_y = {w for w in y.split() if len(w) >= 2} - set(x.split())
    if not own_x or not own_y:
        return False
    x_told = all(any(_written_another_way(w, v) for v in own_y) for w in own_x)
    y_told = all(any(_written_another_way(w, v) for v in own_x) for w in own_y)
    return not x_told and not y_told


def test_similarity_is_token_set_ratio_of_the_keys():
    bank, ledger = _sides(CASES)
    rng = np.random.default_rng(5)
    b = rng.integers(0, len(CASES), 500)
    l_ = rng.integers(0, len(CASES), 500)
    # Chinese characters compared in Simplified form (OpenCC's t2s), Traditional or not
    to_simplified = opencc.OpenCC("t2s").convert
    keys_bank = [k and to_simplified(k) for k in bank["name_key"].to_list()]
    keys_ledger = [k and to_simplified(k) for k in ledger["name_key"].to_list()]
    expected = []
    for i, j in zip(b, l_, strict=True):
        x, y = keys_bank[i], keys_ledger[j]
        score = 0.0 if not x or not y else 100.0 if x == y else fuzz.token_set_ratio(x, y)
        if len(x) >= 10 and 50 <= score < 95:  # a bank name cut short: the ledger name's start
            score = max(score, fuzz.ratio(x, y[: len(x)]))
        if x and y and x != y and " " in x and " " in y and _own_words_conflict(x, y):
            score = min(score, 60.0)
        expected.append(score)
    assert np.allclose(pair_name_similarity(b, l_, bank["name_key"], ledger["name_key"]), expected)
    assert np.allclose(compare_names(b, l_, bank, ledger).similarity, expected)
    assert np.allclose(name_similarity(bank["name_key"].gather(b), ledger["name_key"].gather(l_)), expected)


def test_no_pairs():
    bank, ledger = _sides(CASES[:2])
    empty = np.array([], dtype=np.int64)
    got = compare_names(empty, empty, bank, ledger)
    assert all(len(getattr(got, field)) == 0 for field in ("similarity", *FLAGS))
    assert len(pair_name_similarity(empty, empty, bank["name_key"], ledger["name_key"])) == 0


def test_frames_with_only_name_keys():
    """Without the prepared name columns: initials from the keys, no script, digit or alias evidence."""
    bank = pl.DataFrame({"name_key": ["ho h l", "customer", "chan tai man"]})
    ledger = pl.DataFrame({"name_key": ["ho ho ling", "customer", "陳大文"]})
    rows = np.arange(3)
    got = compare_names(rows, rows, bank, ledger)
    assert got.initials.tolist() == [True, False, False]
    assert not got.digits_differ.any() and not got.alias.any() and not got.different_script.any()


def test_different_scripts_without_an_alias_table_are_no_evidence():
    cases = [("FPS CR CHAN TAI MAN", "陳大文", {}), ("TT IN GOLDEN HARBOUR TRADING CO LTD", "金港貿易有限公司", {})]
    day = dt.date(2026, 3, 2)
    bank = pl.DataFrame([{"id": f"B{i}", "date": day, "amount_minor": 1, "currency": "HKD", "description": text}
                         for i, (text, _, _) in enumerate(cases)], schema=BANK_SCHEMA)
    ledger = pl.DataFrame([{"id": f"L{i}", "date": day, "amount_minor": 1, "currency": "HKD", "counterparty": name}
                           for i, (_, name, _) in enumerate(cases)], schema=LEDGER_SCHEMA)
    rows = np.arange(len(cases))
    got = compare_names(rows, rows, prepare_bank(bank), prepare_ledger(ledger, default_rules()))
    assert got.different_script.tolist() == [True, True]
    assert got.alias.tolist() == [False, False]
    assert got.similarity.tolist() == [0.0, 0.0]


def test_alias_file_links_names_end_to_end(tmp_path):
    path = tmp_path / "aliases.csv"
    path.write_text("name,alias\n陳大文,CHAN TAI MAN\n", encoding="utf-8")
    aliases = read_aliases(path)
    day = dt.date(2026, 3, 2)
    bank = pl.DataFrame([{"id": "B1", "date": day, "amount_minor": 1, "currency": "HKD",
                          "description": "FPS CR MR CHAN TAI MAN"}], schema=BANK_SCHEMA)
    ledger = pl.DataFrame([{"id": "L1", "date": day, "amount_minor": 1, "currency": "HKD",
                            "counterparty": "陳大文"}], schema=LEDGER_SCHEMA)
    rows = np.arange(1)
    got = compare_names(rows, rows, prepare_bank(bank, aliases=aliases),
                        prepare_ledger(ledger, default_rules(), aliases=aliases))
    assert got.alias.tolist() == [True] and got.different_script.tolist() == [False]
