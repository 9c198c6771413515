"""Payer name comparison (engine stage 3, scoring): how alike a bank payer and a ledger party are.

:func:`compare_names` gives, per candidate pair, everything the name levels need: the
similarity of the two name keys (:func:`engine.prepare.names.name_key`), whether one side
writes given names as initials of the other's (``HO H L`` / ``Ho Ho Ling``), whether the
ledger name's numbers are missing from the bank text (``CUSTOMER 4842`` / ``Customer 3609
Limited``), whether an alias table links the two names (``陳大文`` / ``CHAN TAI MAN``), and
whether a name is missing or the two are in different scripts.

Names repeat (a customer's every invoice and payment), so the text work (rapidfuzz's batch
``cpdist``, the initials check) is done once per distinct pair of names and spread back to the
pairs; everything else is a gather of per-line columns prepared once per line
(:func:`engine.prepare.features.prepare_bank` / ``prepare_ledger``). No Python loop per pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from engine.prepare.names import name_codes, name_initials

__all__ = ["NameComparison", "compare_names", "name_similarity", "pair_name_similarity", "script_code"]


@dataclass(frozen=True)
class NameComparison:
    """Name evidence of candidate pairs: pair-aligned numpy arrays, one element a pair.

    Attributes
    ----------
    similarity
        ``float64`` 0-100: rapidfuzz ``token_set_ratio`` of the name keys, word order
        ignored (``kwan ming chow`` / ``chow kwan ming`` score 100); a bank name cut short is
        also compared with the same-length start of the ledger name and the better score
        kept (:func:`pair_name_similarity`). 0 where a name is missing.
    initials
        ``bool``: one name writes given names as initials of the other's full names, in any
        order (``ho h l`` / ``ho ho ling``, ``t m chan`` / ``chan tai man``): it has at
        least one initial and at least one full word, its every full word is a word of the
        other name, and its initials are exactly the first letters of the other name's
        remaining words (so ``ho h l`` is not ``ho ho man``).
    digits_differ
        ``bool``: the ledger name carries numbers and none of them is among the bank line's
        numbers (``CUSTOMER 4842`` / ``Customer 3609 Limited``): a name differing only in its
        digits is another party. False where a name is missing.
    alias
        ``bool``: both names belong to the same group of the alias table.
    missing
        ``bool``: either side has no name.
    different_script
        ``bool``: both are named, one all Chinese/Japanese/Korean and the other all Latin,
        and no alias links them: the names say nothing either way.
    acronym
        ``bool``: one name is a single word, the initials of the other's words (a word of
        one or two letters counted whole, ``and`` / ``of`` / ``the`` left out): ``hkbn`` /
        ``hk broadband network``, ``clp`` / ``china light and power``.
    purpose
        ``bool``: what the bank prints where a payee would stand is the item's purpose, not
        its party: every word of the bank name is a word of the ledger item's description
        (``AUTOPAY DR OFFICE RENT`` / ``Office rent Sep 2026``), and one of them has three
        letters or more.

    ``acronym`` and ``purpose`` are only worked out for named pairs in one script whose names
    are less alike than ``unlike_below`` (:func:`compare_names`); elsewhere they are False.
    """

    similarity: np.ndarray
    initials: np.ndarray
    digits_differ: np.ndarray
    alias: np.ndarray
    missing: np.ndarray
    different_script: np.ndarray
    acronym: np.ndarray
    purpose: np.ndarray


def compare_names(bank_rows: np.ndarray, ledger_rows: np.ndarray, bank: pl.DataFrame,
                  ledger: pl.DataFrame, unlike_below: float = 70.0) -> NameComparison:
    """Compare the payer names of candidate pairs.

    Parameters
    ----------
    bank_rows, ledger_rows
        Pair-aligned row numbers into ``bank`` / ``ledger``.
    bank, ledger
        Prepared bank lines / ledger items (:func:`engine.prepare.features.prepare_bank` /
        ``prepare_ledger``): ``name_key`` is required; ``name_initials``, ``name_script``,
        ``name_numbers`` and ``alias_key`` are used when present (without them: initials
        worked out from the key, and no script, digits or alias evidence).

    Returns
    -------
    NameComparison

    Examples
    --------
    >>> bank = pl.DataFrame({"name_key": ["ho h l", "customer"], "name_numbers": [[], [4842]]})
    >>> ledger = pl.DataFrame({"name_key": ["ho ho ling", "customer"], "name_numbers": [[], [3609]]})
    >>> found = compare_names(np.array([0, 1]), np.array([0, 1]), bank, ledger)
    >>> found.initials.tolist(), found.digits_differ.tolist(), found.similarity.round().tolist()
    ([True, False], [False, True], [62.0, 100.0])
    """
    b = np.asarray(bank_rows, dtype=np.int64)
    l_ = np.asarray(ledger_rows, dtype=np.int64)
    bank_names = bank["name_key"]
    ledger_names = ledger["name_key"]
    named_bank = (bank_names.fill_null("") != "").to_numpy()
    named_ledger = (ledger_names.fill_null("") != "").to_numpy()
    missing = ~(named_bank[b] & named_ledger[l_])

    # the text work, once per distinct pair of names
    distinct = _DistinctPairs.of(b, l_, bank_names, ledger_names)
    b_distinct, l_distinct = b[distinct.representative], l_[distinct.representative]
    similarity = _similarity(b_distinct, l_distinct, bank_names, ledger_names, distinct)[distinct.spread]
    # only a pair with an initial on one side can be initials of the other
    with_initial = np.flatnonzero(
        distinct.bank_has(b_distinct, bank_names, _has_initial) | distinct.ledger_has(l_distinct, ledger_names, _has_initial)
    )
    initials_distinct = np.zeros(len(b_distinct), dtype=bool)
    initials_distinct[with_initial] = _initials(b_distinct[with_initial], l_distinct[with_initial], bank, ledger)
    initials = initials_distinct[distinct.spread]

    alias = _same_alias(b, l_, bank, ledger)
    if "name_script" in bank.columns and "name_script" in ledger.columns:
        script_bank = bank.select(script_code(pl.col("name_script"))).to_series().to_numpy()[b]
        script_ledger = ledger.select(script_code(pl.col("name_script"))).to_series().to_numpy()[l_]
        different_script = (script_bank > 0) & (script_ledger > 0) & (script_bank != script_ledger) & ~alias
    else:
        different_script = np.zeros(len(b), dtype=bool)
    digits_differ = _digits_differ(b, l_, bank, ledger) & ~missing
    unlike = np.flatnonzero(~missing & ~different_script & ~alias & ~initials & ~digits_differ
                            & (similarity < unlike_below))
    # only a pair with a name of one short word can be an acronym pair, and only a bank name of
    # a few words a purpose (per-line tests, so the text work runs on those pairs alone)
    one_word_bank, one_word_ledger = (_matches(names, _ONE_SHORT_WORD) for names in (bank_names, ledger_names))
    rows = unlike[one_word_bank[b[unlike]] | one_word_ledger[l_[unlike]]]
    acronym = np.zeros(len(b), dtype=bool)
    acronym[rows] = _acronyms(b[rows], l_[rows], bank_names, ledger_names)
    purpose = np.zeros(len(b), dtype=bool)
    if "description" in ledger.columns:
        described = (ledger["description"].fill_null("") != "").to_numpy()
        rows = unlike[_matches(bank_names, _FEW_WORDS)[b[unlike]] & described[l_[unlike]]]
        purpose[rows] = _names_the_purpose(b[rows], l_[rows], bank_names, ledger["description"])
    return NameComparison(similarity, initials, digits_differ, alias, missing, different_script, acronym, purpose)


#: a name that may be an acronym: one word of 2-6 Latin letters
_ONE_SHORT_WORD = r"^[a-z]{2,6}$"
#: a bank name that may be a purpose: at most three words
_FEW_WORDS = r"^\S+(?: \S+){0,2}$"


def _matches(names: pl.Series, pattern: str) -> np.ndarray:
    """Per line: whether its name matches ``pattern``."""
    return names.fill_null("").str.contains(pattern).to_numpy()


def _per_distinct(b: np.ndarray, l_: np.ndarray, bank_values: pl.Series, ledger_values: pl.Series,
                  test: Callable[[pl.Series, pl.Series], pl.Series]) -> np.ndarray:
    """``test`` (pair-aligned bank values, ledger values -> Boolean) of the pairs (``b``,
    ``l_``), run once per distinct pair of values and spread back."""
    if not len(b):
        return np.zeros(0, dtype=bool)
    distinct = _DistinctPairs.of(b, l_, bank_values, ledger_values)
    rows = distinct.representative
    found = test(bank_values.gather(b[rows]).fill_null(""), ledger_values.gather(l_[rows]).fill_null(""))
    return found.fill_null(False).to_numpy()[distinct.spread]


#: words an acronym leaves out (China Light and Power: CLP)
_ACRONYM_SKIPS = ["and", "of", "the"]


def _acronym_of(names: pl.Expr) -> pl.Expr:
    """The initials of a name of two or more words, a word of one or two letters whole and
    ``and`` / ``of`` / ``the`` left out (``hk broadband network`` -> ``hkbn``,
    ``china light and power`` -> ``clp``); null for a single word."""
    words = names.str.split(" ").list.eval(pl.element().filter(~pl.element().is_in(_ACRONYM_SKIPS)))
    initials = words.list.eval(
        pl.when(pl.element().str.len_chars() <= 2).then(pl.element()).otherwise(pl.element().str.slice(0, 1))
    ).list.join("")
    return pl.when(words.list.len() >= 2).then(initials)


def _single_word(names: pl.Expr) -> pl.Expr:
    """A name that is one word of 2-6 Latin letters (an acronym it may be), else null."""
    return pl.when(names.str.contains(_ONE_SHORT_WORD)).then(names)


def _acronyms(b: np.ndarray, l_: np.ndarray, bank_names: pl.Series, ledger_names: pl.Series) -> np.ndarray:
    """:attr:`NameComparison.acronym` of the pairs, either way round."""
    def test(bank: pl.Series, ledger: pl.Series) -> pl.Series:
        frame = pl.DataFrame({"bank": bank, "ledger": ledger})
        return frame.select(
            (_single_word(pl.col("bank")) == _acronym_of(pl.col("ledger")))
            | (_single_word(pl.col("ledger")) == _acronym_of(pl.col("bank")))
        ).to_series()

    return _per_distinct(b, l_, bank_names, ledger_names, test)


def _words(text: pl.Expr) -> pl.Expr:
    """Lower-case words of letters and digits."""
    return text.str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]+", " ").str.strip_chars(" ").str.split(" ")


def _names_the_purpose(b: np.ndarray, l_: np.ndarray, bank_names: pl.Series, descriptions: pl.Series) -> np.ndarray:
    """:attr:`NameComparison.purpose` of the pairs: each distinct name and description split
    into words once, each distinct pair of them compared once."""
    if not len(b):
        return np.zeros(0, dtype=bool)
    distinct = _DistinctPairs.of(b, l_, bank_names, descriptions)
    rows = distinct.representative
    said = bank_names.gather(distinct.bank_first).fill_null("").to_frame("name").select(
        words=_words(pl.col("name")),
        long=_words(pl.col("name")).list.eval(pl.element().str.len_chars() >= 3).list.any(),
    )
    written = descriptions.gather(distinct.ledger_first).fill_null("").to_frame("text").select(
        words=_words(pl.col("text")), empty=pl.col("text") == "",
    )
    bank_code = pl.Series(distinct.bank_code[b[rows]])
    ledger_code = pl.Series(distinct.ledger_code[l_[rows]])
    pairs = pl.DataFrame({
        "said": said["words"].gather(bank_code), "long": said["long"].gather(bank_code),
        "written": written["words"].gather(ledger_code), "empty": written["empty"].gather(ledger_code),
    })
    found = pairs.select(
        ~pl.col("empty") & pl.col("long") & (pl.col("said").list.set_difference("written").list.len() == 0)
    ).to_series()
    return found.fill_null(False).to_numpy()[distinct.spread]


def name_similarity(bank_names: pl.Series, ledger_names: pl.Series) -> np.ndarray:
    """Similarity 0-100 of pair-aligned normalised names (see :func:`pair_name_similarity`)."""
    rows = np.arange(len(bank_names))
    return pair_name_similarity(rows, rows, bank_names, ledger_names)


def pair_name_similarity(bank_rows: np.ndarray, ledger_rows: np.ndarray, bank_names: pl.Series,
                          ledger_names: pl.Series) -> np.ndarray:
    """Similarity 0-100 of the names at ``bank_rows`` / ``ledger_rows`` (pair-aligned row
    numbers into the per-line ``bank_names`` / ``ledger_names``): rapidfuzz's
    ``token_set_ratio`` (word order ignored), 100 for equal names and 0 where either is
    missing; a bank name cut short (bank descriptions are often truncated at a fixed width) is
    also compared with the same-length prefix of the ledger name. Each distinct pair of names
    is compared once."""
    if not len(bank_rows):
        return np.empty(0, dtype=np.float64)
    b = np.asarray(bank_rows, dtype=np.int64)
    l_ = np.asarray(ledger_rows, dtype=np.int64)
    distinct = _DistinctPairs.of(b, l_, bank_names, ledger_names)
    representative = distinct.representative
    return _similarity(b[representative], l_[representative], bank_names, ledger_names, distinct)[distinct.spread]


@dataclass(frozen=True)
class _DistinctPairs:
    """The distinct pairs of names among candidate pairs.

    ``representative``: one pair number per distinct pair of names; ``spread``: per pair, the
    number of its distinct pair (``x[spread]`` spreads a per-distinct-pair value back to the
    pairs). ``bank_code`` / ``ledger_code`` number each side's distinct names per line, and
    ``bank_first`` / ``ledger_first`` give each name's first line
    (:func:`engine.prepare.names.name_codes`), so a per-name test runs once per name."""

    representative: np.ndarray
    spread: np.ndarray
    bank_code: np.ndarray
    bank_first: np.ndarray
    ledger_code: np.ndarray
    ledger_first: np.ndarray

    @classmethod
    def of(cls, b: np.ndarray, l_: np.ndarray, bank_names: pl.Series, ledger_names: pl.Series) -> _DistinctPairs:
        bank_code, bank_first = name_codes(bank_names)
        ledger_code, ledger_first = name_codes(ledger_names)
        if not len(b):
            return cls(b, b, bank_code, bank_first, ledger_code, ledger_first)
        key = bank_code[b] * (len(ledger_first) + 1) + ledger_code[l_]
        order = np.argsort(key)
        ordered = key[order]
        new = np.concatenate([[True], ordered[1:] != ordered[:-1]])
        spread = np.empty(len(key), dtype=np.int64)
        spread[order] = np.cumsum(new) - 1
        return cls(order[new], spread, bank_code, bank_first, ledger_code, ledger_first)

    def bank_has(self, rows: np.ndarray, names: pl.Series, test: Callable[[pl.Series], np.ndarray]) -> np.ndarray:
        """``test`` (names -> bool array) of the bank names at ``rows``, run once per name."""
        return test(names.gather(self.bank_first))[self.bank_code[rows]]

    def ledger_has(self, rows: np.ndarray, names: pl.Series, test: Callable[[pl.Series], np.ndarray]) -> np.ndarray:
        """``test`` of the ledger names at ``rows``, run once per name."""
        return test(names.gather(self.ledger_first))[self.ledger_code[rows]]


def _similarity(b: np.ndarray, l_: np.ndarray, bank_names: pl.Series, ledger_names: pl.Series,
                distinct: _DistinctPairs) -> np.ndarray:
    """:func:`pair_name_similarity` of the pairs (``b``, ``l_``), pair by pair. Names are
    looked up as Python strings (numpy object arrays), which is what rapidfuzz takes, only for
    the pairs it compares: each distinct name converted once and picked by its code."""
    if not len(b):
        return np.empty(0, dtype=np.float64)
    bank_names = bank_names.fill_null("")
    ledger_names = ledger_names.fill_null("")
    bank_pair = bank_names.gather(b)
    ledger_pair = ledger_names.gather(l_)
    # equal names score 100 and a missing one 0 (as the scorer would say): only the rest is compared
    both = ((bank_pair != "") & (ledger_pair != "")).to_numpy()
    equal = both & (bank_pair == ledger_pair).to_numpy()
    similarity = np.where(equal, 100.0, 0.0)
    compare = np.flatnonzero(both & ~equal)
    if not len(compare):
        return similarity
    bank_text = _texts(bank_names, distinct.bank_first)[distinct.bank_code[b[compare]]]
    ledger_text = _texts(ledger_names, distinct.ledger_first)[distinct.ledger_code[l_[compare]]]
    similarity[compare] = process.cpdist(bank_text, ledger_text, scorer=fuzz.token_set_ratio, workers=-1)
    prefix_len = bank_names.str.len_chars().to_numpy()[b[compare]]
    # a bank name cut short still shares most of its words: only long names that match partly
    # (not already well, not hardly at all) are worth the second look
    again = np.flatnonzero((prefix_len >= 10) & (similarity[compare] < 95) & (similarity[compare] >= 50))
    if len(again):
        ledger_prefix = pl.Series(ledger_text[again].tolist(), dtype=pl.Utf8).str.slice(0, pl.Series(prefix_len[again]))
        prefix = process.cpdist(bank_text[again], ledger_prefix.to_list(), scorer=fuzz.ratio, workers=-1)
        similarity[compare[again]] = np.maximum(similarity[compare[again]], prefix)
    alike = np.flatnonzero((similarity[compare] > OWN_WORDS_CONFLICT_SIMILARITY) & (similarity[compare] < 100.0))
    # a bounded number of pairs at a time: the word lists are the memory
    for start in range(0, len(alike), _CONFLICT_CHUNK):
        part = alike[start:start + _CONFLICT_CHUNK]
        rows = compare[part[_own_words_conflict(bank_text[part], ledger_text[part])]]
        similarity[rows] = np.minimum(similarity[rows], OWN_WORDS_CONFLICT_SIMILARITY)
    return similarity


#: name pairs checked for conflicting own words at once (:func:`_own_words_conflict`)
_CONFLICT_CHUNK = 100_000


#: how alike two names are at most when each has a word of its own the other lacks (see
#: :func:`_own_words_conflict`): in the default rule set's "different name" band
OWN_WORDS_CONFLICT_SIMILARITY = 60.0
#: two words this alike (rapidfuzz ratio) are one word misspelt, not two
_SAME_WORD_SPELLING = 80.0


def _own_words_conflict(bank_text: np.ndarray, ledger_text: np.ndarray) -> np.ndarray:
    """Whether two names of several words each have words of two or more letters the other
    lacks, and neither side's own words are all the other's written another way: ``tsang
    shan kwan`` / ``tsang shan po`` (siblings share the surname and the generation name),
    ``kam wing trading`` / ``kam wing engineering``. Such names share most of their words, so
    a set ratio calls them similar; they are different parties. A word is the other's written
    another way when one is the start of the other (a name cut short: ``fun`` / ``fung``), one
    is misspelt (``cheong`` / ``cheung``), or its letters come in order in the other with the
    same first letter (an abbreviation: ``dept`` / ``department``). Initials and a word only
    one side has (``kam wing`` / ``kam wing trading``) are no conflict. Each distinct pair of
    own words is judged once, the cheap tests first: O(pairs x own words ** 2) in joins."""
    conflict = np.zeros(len(bank_text), dtype=bool)
    frame = pl.DataFrame({"bank": bank_text.tolist(), "ledger": ledger_text.tolist()},
                         schema={"bank": pl.Utf8, "ledger": pl.Utf8}).with_row_index("pair")
    frame = frame.filter(pl.col("bank").str.contains(" ") & pl.col("ledger").str.contains(" "))
    words = {side: pl.col(side).str.split(" ").list.eval(pl.element().filter(pl.element().str.len_chars() >= 2))
             for side in ("bank", "ledger")}
    own = frame.select(
        "pair", a=words["bank"].list.set_difference(words["ledger"]),
        b=words["ledger"].list.set_difference(words["bank"]),
    ).filter((pl.col("a").list.len() > 0) & (pl.col("b").list.len() > 0))
    if own.height == 0:
        return conflict
    cross = own.explode("a").explode("b")
    distinct = cross.select("a", "b").unique().with_columns(
        same=pl.col("a").str.starts_with(pl.col("b")) | pl.col("b").str.starts_with(pl.col("a"))
    )
    todo = distinct.filter(~pl.col("same"))
    spelling = process.cpdist(todo["a"].to_list(), todo["b"].to_list(), scorer=fuzz.ratio, workers=-1)
    todo = todo.with_columns(same=pl.Series(spelling >= _SAME_WORD_SPELLING))
    a_shorter = pl.col("a").str.len_chars() <= pl.col("b").str.len_chars()
    short = pl.when(a_shorter).then(pl.col("a")).otherwise(pl.col("b"))
    long = pl.when(a_shorter).then(pl.col("b")).otherwise(pl.col("a"))
    # "dept" -> "^d.*e.*p.*t": the abbreviation's letters in order, its first letter first (a
    # pattern per row, so only for the few word pairs left that start alike)
    abbreviated = todo.filter(
        ~pl.col("same") & (pl.col("a").str.slice(0, 1) == pl.col("b").str.slice(0, 1))
    ).select("a", "b", same=long.str.contains(pl.lit("^") + short.str.replace_all(r"(.)", "${1}.*")))
    judged = pl.concat([distinct.filter("same"), todo.filter("same"), abbreviated])
    same = cross.join(judged.filter("same"), on=["a", "b"], how="left").with_columns(pl.col("same").fill_null(False))
    # a side is written another way when each of its own words is one of the other side's
    a_told = same.group_by("pair", "a").agg(pl.col("same").any()).group_by("pair").agg(a=pl.col("same").all())
    b_told = same.group_by("pair", "b").agg(pl.col("same").any()).group_by("pair").agg(b=pl.col("same").all())
    rows = a_told.join(b_told, on="pair").filter(~pl.col("a") & ~pl.col("b"))["pair"].to_numpy()
    conflict[rows] = True
    return conflict


def _texts(names: pl.Series, rows: np.ndarray) -> np.ndarray:
    """``names`` at ``rows`` as a numpy object array of Python strings, Chinese characters
    folded to one script (:func:`_fold_chinese_script`)."""
    picked = names.gather(rows)
    return np.array(_fold_chinese_script(picked).to_list(), dtype=object)


@cache
def _to_simplified():
    import opencc

    return opencc.OpenCC("t2s")


def _fold_chinese_script(names: pl.Series) -> pl.Series:
    """Names with Chinese characters written in Simplified characters, for comparison only
    (``陳大文`` and ``陈大文`` are the same name, printed by a bank in Hong Kong and one in
    the mainland): OpenCC's Traditional-to-Simplified character conversion, one call for all
    the names that have a character outside ASCII. The names shown to users are never
    converted."""
    wide = (names.str.len_bytes() != names.str.len_chars()).fill_null(False)
    if not wide.any():
        return names
    rows = wide.arg_true()
    # one conversion call: the names joined by newlines (a name key has none)
    folded = _to_simplified().convert("\n".join(names.gather(rows).to_list())).split("\n")
    return names.scatter(rows, pl.Series(folded, dtype=pl.Utf8))


#: a word of one letter: an initial
_INITIAL = r"(?:^| )[a-z](?: |$)"


def _has_initial(names: pl.Series) -> np.ndarray:
    """Whether each name has a word of one letter."""
    return names.fill_null("").str.contains(_INITIAL).to_numpy()


def _initials(b: np.ndarray, l_: np.ndarray, bank: pl.DataFrame, ledger: pl.DataFrame) -> np.ndarray:
    """Whether one name of each pair (``b``, ``l_``) writes the other's given names as
    initials (see :class:`NameComparison`).

    Two names can only be so if their initials signatures (first letters of all words,
    sorted) are equal and one of them has an initial; given that, the initials side's full
    words being words of the other name (as a multiset: ``ho ho l`` needs two ``ho``) leaves
    exactly the other name's remaining words to the initials, first letter for first letter.
    The signatures filter the pairs with one string comparison; the word check runs on the
    few that are left, as joins on (pair, word, occurrence)."""
    result = np.zeros(len(b), dtype=bool)
    if not len(b):
        return result
    pairs = pl.DataFrame({
        "bank": bank["name_key"].gather(b).fill_null(""),
        "ledger": ledger["name_key"].gather(l_).fill_null(""),
    })
    sig_bank = _signatures(bank, b, pairs["bank"])
    sig_ledger = _signatures(ledger, l_, pairs["ledger"])
    maybe = (sig_bank == sig_ledger) & (sig_bank != "") & (pairs["bank"] != pairs["ledger"])
    candidates = pairs.with_row_index("pair").filter(
        maybe & (pl.col("bank").str.contains(_INITIAL) | pl.col("ledger").str.contains(_INITIAL))
    )
    if not candidates.height:
        return result
    words = pl.concat([
        candidates.select("pair", side=pl.lit(side, dtype=pl.UInt8), word=pl.col(column).str.split(" "))
        for side, column in enumerate(("bank", "ledger"))
    ]).explode("word").with_columns(
        occurrence=pl.int_range(pl.len()).over("pair", "side", "word"),
        initial=pl.col("word").str.len_chars() == 1,
    )
    for side in (0, 1):
        own = words.filter(pl.col("side") == side)
        other = words.filter(pl.col("side") != side).select("pair", "word", "occurrence")
        unmatched = own.filter(~pl.col("initial")).join(other, on=["pair", "word", "occurrence"], how="anti")
        shape = own.group_by("pair").agg(
            initials=pl.col("initial").any(), full=(~pl.col("initial")).any()
        ).filter("initials", "full")
        found = shape.join(unmatched.select("pair").unique(), on="pair", how="anti")["pair"].to_numpy()
        result[found] = True
    return result


def _signatures(frame: pl.DataFrame, rows: np.ndarray, names: pl.Series) -> pl.Series:
    """The initials signatures of the names at ``rows``: the prepared ``name_initials`` column,
    or worked out from the names when the frame has none."""
    if "name_initials" in frame.columns:
        return frame["name_initials"].gather(rows).fill_null("")
    return names.to_frame("name").select(name_initials(pl.col("name")))["name"]


def _same_alias(b: np.ndarray, l_: np.ndarray, bank: pl.DataFrame, ledger: pl.DataFrame) -> np.ndarray:
    """Whether both lines' names are in the same alias group (equal non-null ``alias_key``)."""
    same = np.zeros(len(b), dtype=bool)
    if "alias_key" not in bank.columns or "alias_key" not in ledger.columns:
        return same
    listed = np.flatnonzero(bank["alias_key"].is_not_null().to_numpy()[b]
                            & ledger["alias_key"].is_not_null().to_numpy()[l_])
    if len(listed):
        same[listed] = (bank["alias_key"].gather(b[listed]) == ledger["alias_key"].gather(l_[listed])).to_numpy()
    return same


def _digits_differ(b: np.ndarray, l_: np.ndarray, bank: pl.DataFrame, ledger: pl.DataFrame) -> np.ndarray:
    """Whether the ledger name has numbers and the bank line none of them (``name_numbers``).

    Most ledger names have no number, so only the pairs whose ledger name has one are looked
    at: their numbers against the bank line's, as a semi-join on (pair, number)."""
    differ = np.zeros(len(b), dtype=bool)
    if "name_numbers" not in bank.columns or "name_numbers" not in ledger.columns:
        return differ
    numbered = np.flatnonzero(ledger["name_numbers"].list.len().fill_null(0).to_numpy()[l_] > 0)
    if not len(numbered):
        return differ
    pair = pl.Series("pair", numbered)
    ledger_numbers = pl.DataFrame([pair, ledger["name_numbers"].gather(l_[numbered]).alias("number")]).explode("number")
    bank_numbers = pl.DataFrame([pair, bank["name_numbers"].gather(b[numbered]).alias("number")]).explode("number")
    shared = ledger_numbers.join(bank_numbers.drop_nulls(), on=["pair", "number"], how="semi")["pair"].to_numpy()
    differ[numbered] = True
    differ[shared] = False
    return differ


def script_code(script: pl.Expr) -> pl.Expr:
    """A name's script as a small code, 0 for mixed or none: two names in different scripts
    (``cjk`` vs ``latin``) are not compared."""
    return script.replace_strict({"cjk": 1, "latin": 2}, default=0, return_dtype=pl.UInt8)
