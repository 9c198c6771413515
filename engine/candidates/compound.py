"""Compound candidate groups (engine stage 2b): one bank line settling several ledger items and
several bank lines settling one item.

Generators, all vectorized (joins, ``group_by``, ``explode``; no Python loop per line):

- **listed**: the bank text quotes the numbers of several items (``INV 00163/00275``,
  ``SI-70058 SI-97556 459599``); the quoted items of the same currency and sign make a group when
  they total the payment (exactly, or within the amount tolerance with one adjustment), or a
  combination of them does.
- **batch**: a reference in the bank text (``PAYROLL BATCH PB2610001``) that several ledger items
  share in their description (``Wages Oct 2026 - batch PB2610-001``): all of them.
- **day block**: items of one day with the same type sharing a reference the bank need not quote
  (``PAYROLL-2026-10``) or a description once numbers and each item's own payee are removed (a
  payroll run ``Wages Oct 2026``), whose total equals a bank line paid that day or shortly after.
- **subset**: no reference at all: the payer's open items (the payer found as the pair scorer
  finds it: another word order, initials; same currency and sign, up to
  ``compound.block_window_days`` before the bank date, nearest ``compound.max_block_items``)
  combined 2..``compound.max_subset_size`` at a time (meet in the middle: combinations of half the
  size joined on the remaining amount) whose total equals the payment exactly. Every fitting
  combination is proposed, so the assignment sees the ambiguity.
- **instalments** (``many_to_one``): bank lines quoting one invoice's number (graded: in full,
  cut short, transposed, the number only) or of its payer quoting nothing, each less than it,
  together paying it in full (the last one the exact remainder) or in part (``open_minor`` =
  what is still open).

Bounded by construction: every generator partitions its work by (currency, sign, payer or
reference or type, date window) and caps it per partition (its docstring states how its time and
memory grow); a cap that bites is recorded in the run's :class:`~engine.candidates.caps.CapLog`,
naming the partitions (``payer 'CHAN TAI MAN' HKD``). The numbers are the rule set's
(``[compound]``, ``[weights.groups]``); the name cut-offs follow ``weights.name``.

Scores are bits (log2 odds) on the pair scale: ``weights.prior``, the reference level, an exact
total (worth the more bits the less round the amount is: a coincidental exact total of several
items is about as likely as one in ``amount / roundness``), the payer name level, and for a
combination search ``compound.subset_penalty`` bits per doubling of the combinations tried.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import polars as pl

from engine.candidates.caps import CapLog
from engine.candidates.groups import ADJUSTMENT_DTYPE, conform, empty_groups
from engine.candidates.pairs import block_ids, window_pairs
from engine.candidates.tolerance import tolerance_expr
from engine.prepare.names import name_initials
from engine.prepare.references import (
    REFERENCE_GRADES,
    ledger_reference_profile,
    reference_digits,
    reference_grade_from_profiles,
    text_reference_keys,
    two_digit_year_tails,
)
from engine.scoring.names import compare_names
from models.money import format_minor_expr
from rules.model import RuleSet


class _NameBounds(NamedTuple):
    """How alike two names must be, read from the rule set's name levels (``weights.name``, the
    same levels that score a pair), so the generators never shadow them."""

    #: one item of a payer this similar pays a line exactly: a one-to-one, no combination search;
    #: instalments of a payer this similar need no reference (the highest level's minimum)
    same_payer: float
    #: a reference-less combination uses ledger names at least this similar (the lowest level
    #: that still counts for a match)
    min_payer: float
    #: a quoted item whose payer name is at most this similar (same script) is another payer's
    #: (the minimum of the highest level that counts against a match)
    unrelated: float
    #: a combination search uses the ledger names at most this much less similar than the best
    spread: float


def _name_bounds(rules: RuleSet) -> _NameBounds:
    levels = rules.weights.name  # strictly decreasing min_similarity, the last one 0
    positive = [lv.min_similarity for lv in levels if lv.weight > 0]
    negative = [lv.min_similarity for lv in levels if lv.weight < 0]
    same = levels[0].min_similarity
    return _NameBounds(
        same_payer=same,
        min_payer=min(positive) if positive else same,
        unrelated=max(negative) if negative else 0.0,
        spread=rules.compound.payer_similarity_spread,
    )


_BATCH_TOKEN = r"[a-z]{1,6}[0-9][0-9/\-]*[0-9]"
#: what lower-cases to a letter of _BATCH_TOKEN just before a digit: A-Z, a-z and the Kelvin sign
#: (the one other character whose lower case is a single a-z; İ lower-cases to i + a dot)
_LETTER_DIGIT = r"[A-Za-z\x{212A}][0-9]"
_YEAR_PREFIX = r"(^|[^0-9])(?:19|20)[0-9]{2}([ /\-][0-9]{3,})"
_MEMBER = pl.List(pl.UInt32)


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _exact_total_bits(total_abs: pl.Expr, floor: float, ceiling: float) -> pl.Expr:
    """Bits of an exact total: log2(amount / its roundness), between ``floor`` and ``ceiling``
    (``weights.groups.max_exact_total_bits``). 1508944 (HKD 15,089.44) -> ~20.5 -> 20; 2000000 -> log2(2)."""
    grain = pl.lit(1, dtype=pl.Int64)
    for power in range(1, 7):
        step = 10**power
        grain = pl.when((total_abs % step) == 0).then(pl.lit(step, dtype=pl.Int64)).otherwise(grain)
    ratio = (total_abs // grain).cast(pl.Float64).clip(lower_bound=1.0)
    return ratio.log(2).clip(floor, max(floor, ceiling))


def _bank_charge_max(currency: pl.Expr, rules: RuleSet, currencies: list[str]) -> pl.Expr:
    from models.money import currency_exponent

    expr = pl.lit(0, dtype=pl.Int64)
    for code in currencies:
        limit = int(rules.adjustments.bank_charge_max * (10 ** currency_exponent(code)))
        expr = pl.when(currency == code).then(pl.lit(limit, dtype=pl.Int64)).otherwise(expr)
    return expr


def _two_words(name: pl.Expr, last: bool = False) -> pl.Expr:
    """The first (last) two words of a name, split on single spaces; null for one word."""
    return name.str.extract(r"([^ ]* [^ ]*)$" if last else r"^([^ ]* [^ ]*)")


def _few_codes(*columns: pl.Series) -> tuple[list[pl.Series], pl.Series]:
    """:func:`_codes` for columns of a few distinct strings (currencies, scripts, types)."""
    values = pl.concat([c.unique() for c in columns]).unique().drop_nulls().sort()
    enum = pl.Enum(values)
    return [c.cast(enum).to_physical().cast(pl.UInt32) for c in columns], values


def _codes(*columns: pl.Series) -> tuple[list[pl.Series], pl.Series]:
    """Dense ``UInt32`` codes of string ``columns``, equal strings equal codes across all of them
    (null stays null), and the strings in code order. Generators join and compare codes.

    A string's code is found by its 64-bit hash (one integer join); every string is then checked
    against the string of its code, and should two strings share a hash they are coded by text.
    """
    text = pl.concat([c.cast(pl.Utf8) for c in columns]).rename("s")
    hashes = text.hash()
    firsts = hashes.arg_unique()
    firsts = firsts.filter(text.gather(firsts).is_not_null())
    values = text.gather(firsts)
    table = pl.DataFrame({"h": hashes.gather(firsts), "code": pl.arange(0, firsts.len(), dtype=pl.UInt32, eager=True)})
    codes = (
        pl.DataFrame({"h": hashes, "known": text.is_not_null()})
        .join(table, on="h", how="left", maintain_order="left")
        .select(pl.when("known").then(pl.col("code")))
        .to_series()
    )
    if not (values.gather(codes) == text).all():
        values = text.unique().drop_nulls().sort()
        codes = text.cast(pl.Enum(values)).to_physical().cast(pl.UInt32)
    out, start = [], 0
    for c in columns:
        out.append(codes.slice(start, c.len()))
        start += c.len()
    return out, values


class _Vocab(NamedTuple):
    """The strings of the codes (:func:`_codes`), in code order."""

    names: pl.Series
    currencies: pl.Series
    types: pl.Series


def _high_low(high: str | pl.Expr, low: str | pl.Expr) -> pl.Expr:
    """Two ``UInt32`` columns packed in one ``UInt64`` (a group key of one integer)."""
    high, low = (pl.col(c) if isinstance(c, str) else c for c in (high, low))
    return high.cast(pl.UInt64) * (1 << 32) + low.cast(pl.UInt64)


def _not_in(rows: pl.Series, height: int) -> pl.Series:
    """A mask of ``height`` rows, false at ``rows`` (row numbers)."""
    mask = np.ones(height, dtype=bool)
    mask[rows.drop_nulls().to_numpy()] = False
    return pl.Series(mask)


def _side(frame: pl.DataFrame, rows: pl.Series, **columns: str) -> pl.DataFrame:
    """``frame``'s ``columns`` (new name = old name) at ``rows`` (row numbers), in that order."""
    return frame.select(**columns)[rows]


class _NameSimilarity:
    """Name evidence of (bank name, ledger name) pairs, each distinct pair worked out once per
    run whichever generator asks first (:func:`engine.scoring.names.compare_names`, the pair
    scorer's comparison: word order ignored, initials of given names recognised); equal names
    are 100 without a comparison.

    Names are integer ids into ``vocab`` (:func:`_codes` of both sides' ``name_key``); a pair is
    one ``UInt64`` (bank id high, ledger id low). Generators on two threads may ask at once.
    ``bounds`` are the rule set's name cut-offs (:func:`_name_bounds`).
    """

    def __init__(self, vocab: pl.Series, bounds: _NameBounds) -> None:
        self.vocab = vocab
        self.bounds = bounds
        self.lock = threading.Lock()
        self._words_lock = threading.Lock()
        # the pairs worked out so far, sorted, their similarities and whether one writes the
        # other's given names as initials
        self.pairs = np.empty(0, dtype=np.uint64)
        self.similarity = np.empty(0, dtype=np.float64)
        self.initials = np.empty(0, dtype=bool)
        self._words: pl.DataFrame | None = None

    def words(self) -> pl.DataFrame:
        """Per name id (``name``): the codes of its first two (``k1``) and last two (``k2``)
        words (null for a name of one word), of its words in sorted order (``k0``: the same
        name in any order) and of its initials signature when it has a one-letter word (``ki``:
        ``HO H L`` and ``Ho Ho Ling``; null otherwise)."""
        with self._words_lock:
            return self._word_codes()

    def _word_codes(self) -> pl.DataFrame:
        if self._words is None:
            vocab = pl.DataFrame({"v": self.vocab})
            keys = vocab.select(
                k1=_two_words(pl.col("v")), k2=_two_words(pl.col("v"), last=True),
                k0=pl.col("v").str.split(" ").list.sort().list.join(" "),
                ki=pl.when(pl.col("v").str.contains(r"(^| )[a-z]( |$)")).then(name_initials(pl.col("v")))
                .replace("", None),
            )
            (k1, k2, k0, ki), _ = _codes(keys["k1"], keys["k2"], keys["k0"], keys["ki"])
            self._words = pl.DataFrame({
                "name": pl.arange(0, self.vocab.len(), dtype=pl.UInt32, eager=True),
                "k1": k1, "k2": k2, "k0": k0, "ki": ki,
            })
        return self._words

    def of(self, bank: pl.Series, ledger: pl.Series) -> pl.Series:
        """Similarity of each (``bank``, ``ledger``) name id pair (ids of non-empty names, no
        nulls)."""
        with self.lock:
            at = self._slots(bank, ledger)
            out = np.full(len(at), 100.0)
            known = at >= 0
            out[known] = self.similarity[at[known]]
        return pl.Series("similarity", out)

    def payer(self, bank: pl.Series, ledger: pl.Series) -> pl.Series:
        """How surely each pair of names is one payer, as a similarity: the similarity, raised
        to ``bounds.same_payer`` where one name gives the other's given names as initials."""
        with self.lock:
            at = self._slots(bank, ledger)
            out = np.full(len(at), 100.0)
            known = at >= 0
            out[known] = np.where(self.initials[at[known]],
                                  np.maximum(self.similarity[at[known]], self.bounds.same_payer),
                                  self.similarity[at[known]])
        return pl.Series("similarity", out)

    def initials_of(self, bank: pl.Series, ledger: pl.Series) -> pl.Series:
        """Whether one name of each pair gives the other's given names as initials."""
        with self.lock:
            at = self._slots(bank, ledger)
            out = np.zeros(len(at), dtype=bool)
            known = at >= 0
            out[known] = self.initials[at[known]]
        return pl.Series("initials", out)

    def _slots(self, bank: pl.Series, ledger: pl.Series) -> np.ndarray:
        """Each pair's position in the cache (-1 for equal names), comparing the new ones."""
        b = bank.cast(pl.UInt64).to_numpy()
        led = ledger.cast(pl.UInt64).to_numpy()
        differ = np.flatnonzero(b != led)
        pair = (b[differ] << np.uint64(32)) | led[differ]
        # in pair order (look-ups in order stay in cache)
        order = np.argsort(pair)
        pair = pair[order]
        asked = pair[np.r_[True, pair[1:] != pair[:-1]]] if len(pair) else pair
        new = asked
        if len(self.pairs):
            at = np.minimum(np.searchsorted(self.pairs, asked), len(self.pairs) - 1)
            new = asked[self.pairs[at] != asked]
        if len(new):
            names = pl.DataFrame({"name_key": self.vocab})
            rows_b = (new >> np.uint64(32)).astype(np.int64)
            rows_l = (new & np.uint64(0xFFFFFFFF)).astype(np.int64)
            found = compare_names(rows_b, rows_l, names, names)
            slots = np.searchsorted(self.pairs, new)
            self.pairs = np.insert(self.pairs, slots, new)
            self.similarity = np.insert(self.similarity, slots, found.similarity)
            self.initials = np.insert(self.initials, slots, found.initials)
        out = np.full(len(b), -1, dtype=np.int64)
        out[differ[order]] = np.searchsorted(self.pairs, pair)
        return out


def _plainly_other(df: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame,
                   sims: _NameSimilarity) -> pl.DataFrame:
    """``df`` (``bank_idx``, ``ledger_idx``) without the rows whose names are in one script and
    plainly different (similarity at most ``sims.bounds.unrelated``)."""
    b = _side(bank, df["bank_idx"], named="named", name="name", script="script")
    led = _side(ledger, df["ledger_idx"], named="named", name="name", script="script")
    check = (b["named"] & led["named"] & (b["script"] == led["script"]) & (b["name"] != led["name"])).fill_null(False)
    rows = check.arg_true()
    if rows.len() == 0:
        return df
    similarity = sims.of(b["name"].gather(rows), led["name"].gather(rows))
    keep = np.ones(df.height, dtype=bool)
    keep[rows.filter(similarity <= sims.bounds.unrelated).to_numpy()] = False
    return df.filter(pl.Series(keep))


def _payer_names(lines: pl.DataFrame, ledger_names: pl.DataFrame, sims: _NameSimilarity) -> pl.DataFrame:
    """Ledger names that may be the same payer as a bank name: equal, the same words in another
    order (``KIN YEE CHEUNG`` / ``Cheung Kin Yee``), the same initials signature (``HO H L`` /
    ``Ho Ho Ling``), or sharing the first or last two words (a name cut short, an English first
    name added), and as sure a payer (:meth:`_NameSimilarity.payer`) as ``sims.bounds.min_payer``.
    ``lines`` has ``name`` (a non-empty name's id) and ``exact`` (the name is also a ledger name:
    then that name only); ``ledger_names`` has ``name`` and its ``k0`` / ``k1`` / ``k2`` / ``ki``
    (:meth:`_NameSimilarity.words`). Columns name_bank, name_ledger, similarity.

    Joins on a handful of keys per name: time and memory grow with the distinct names times the
    names sharing a key (a key shared by many names, ``chan tai``, is bounded by the spread)."""
    b = lines.select(name_bank="name", exact="exact").unique()
    equal = b.filter("exact").select("name_bank", name_ledger="name_bank", similarity=pl.lit(100.0))
    fuzzy = b.filter(~pl.col("exact")).join(sims.words(), left_on="name_bank", right_on="name")
    parts = [
        fuzzy.select("name_bank", k=pl.col(k)).drop_nulls("k").join(
            ledger_names.select(name_ledger="name", k=pl.col(k)).drop_nulls("k"), on="k"
        ).select("name_bank", "name_ledger")
        for k in ("k0", "k1", "k2", "ki")
    ]
    pairs = pl.concat(parts).unique()
    if pairs.height == 0:
        return equal
    # the nearest names only: another company sharing two words of the name is someone else;
    # a ledger name equal to the bank's is the payer (above), and names merely as similar
    # (siu man kwan and siu man siu) are others
    near = pairs.with_columns(similarity=sims.payer(pairs["name_bank"], pairs["name_ledger"])).filter(
        (pl.col("similarity") >= sims.bounds.min_payer)
        & (pl.col("similarity") >= pl.col("similarity").max().over("name_bank") - sims.bounds.spread)
    )
    return pl.concat([equal, near.select("name_bank", "name_ledger", "similarity")])


def _year_prefix(lines: pl.DataFrame) -> str | None:
    """The pattern of a year prefixing a reference (``INV-2026-00123``, ``inv 2026 00123``): a
    year within one of the bank dates' years only, so a serial that merely looks like a year
    (the 2094 of ``2526-2094 2544-2813``, the 1973 of ``2581-1973``) stays a number."""
    if lines.height == 0:
        return None
    years = lines.select(lo=pl.col("date").dt.year().min(), hi=pl.col("date").dt.year().max()).row(0)
    if years[0] is None:
        return None
    alternatives = "|".join(str(y) for y in range(years[0] - 1, years[1] + 2))
    return _YEAR_PREFIX.replace("(?:19|20)[0-9]{2}", f"(?:{alternatives})")


def _bank_keys(bank: pl.DataFrame) -> pl.DataFrame:
    """One row per (bank line, number quoted in its text), with ``nkeys`` (how many numbers the
    line's ``ref_keys`` has); a year that only prefixes a reference (the 2026 of
    INV-2026-00123, inv 2026 00123) is no number of its own. A line's keys are distinct
    (:func:`engine.prepare.references.text_reference_keys`)."""
    lines = bank.select("bank_idx", "date", "bank_text", "ref_keys").filter(
        pl.col("ref_keys").list.len() >= 1).with_columns(nkeys=pl.col("ref_keys").list.len())
    prefix = _year_prefix(lines)
    if prefix is not None:
        # the text is read again only where a year prefixes a number
        lines = lines.with_columns(_prefixed=pl.col("bank_text").str.contains(prefix))
        lines = pl.concat([
            lines.filter(~pl.col("_prefixed")),
            lines.filter(pl.col("_prefixed")).with_columns(
                ref_keys=text_reference_keys(pl.col("bank_text").str.replace_all(prefix, "${1}${2}"))),
        ])
    keys = lines.select("bank_idx", "date", "nkeys", key="ref_keys").explode("key").drop_nulls("key")
    # INV266631 for INV/26/6631: the serial after the year's two digits is a key too (the same
    # number read another way, so the line's count of numbers stays)
    return pl.concat([keys, two_digit_year_tails(keys, "key")]).unique(["bank_idx", "key"]).drop("date")


def _key_hits(keys: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """One row per (bank line, ledger item with the serial of a number quoted in its text) of the
    same currency and sign, the item dated within the widest window a generator uses (listed,
    instalments and the quoting check each narrow it): ``bank_idx``, ``ledger_idx``, ``key``,
    ``nkeys``, ``day``, ``amount_minor``, ``day_l``, ``a_l``. An item has one serial, so a (line,
    item) pair is one row. Integers only: names and texts are gathered where they are needed.
    ``keys`` are the lines' numbers (:func:`_bank_keys`)."""
    cmp = rules.compound
    before = max(rules.candidates.reference_window_days, cmp.instalment_window_days)
    after = max(cmp.group_days_after, rules.candidates.reference_window_days, rules.window_for("invoice").before)
    keys = pl.concat([keys, _side(bank, keys["bank_idx"], cur="cur", day="day", amount_minor="amount_minor")],
                     how="horizontal").filter(pl.col("amount_minor") != 0)
    led = ledger.filter(pl.col("ref_serial").is_not_null() & (pl.col("amount_minor") != 0)).select(
        "ledger_idx", "cur", key="ref_serial", a_l="amount_minor", day_l="day",
    )
    # (number, currency, sign) as one Int64 when the numbers allow (a serial outside the bank's
    # numbers' range matches nothing)
    lo, hi = keys["key"].min(), keys["key"].max()
    scale = 2 * (int(bank["cur"].max() or 0) + int(ledger["cur"].max() or 0) + 2)
    on: str | list[str] = ["key", "cur", "_pos"]
    keys = keys.with_columns(_pos=pl.col("amount_minor") > 0)
    led = led.with_columns(_pos=pl.col("a_l") > 0)
    if lo is not None and lo >= 0 and (hi + 1) * scale < 1 << 62:
        packed = pl.col("key") * scale + pl.col("cur").cast(pl.Int64) * 2 + pl.col("_pos").cast(pl.Int64)
        keys = keys.with_columns(_on=packed)
        led = led.filter(pl.col("key").is_between(lo, hi)).with_columns(_on=packed).drop("key", "cur", "_pos")
        on = "_on"
    return (
        keys.join(led, on=on)
        .filter(pl.col("day_l").is_between(pl.col("day") - before, pl.col("day") + after))
        .select("bank_idx", "ledger_idx", "key", "nkeys", "day", "amount_minor", "day_l", "a_l")
    )


def _quotes_in_full(df: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, min_chars: int = 0) -> pl.DataFrame:
    """``df`` (``bank_idx``, ``ledger_idx``) + ``full``: the item's whole reference, letters and
    digits only and at least ``min_chars`` of them, is in the bank text."""
    df = df.with_columns(_ref=_alnum(ledger["doc_ref"].gather(df["ledger_idx"])))
    long_enough = df["_ref"].str.len_chars() >= min_chars
    rows = long_enough.arg_true()
    full = np.zeros(df.height, dtype=bool)
    if rows.len():
        check = df.select(pl.col("bank_idx", "_ref").gather(rows))
        lines = check["bank_idx"].unique()
        text = pl.DataFrame({"bank_idx": lines, "_text": bank["bank_text"].gather(lines)}).with_columns(
            _text=_alnum(pl.col("_text")))
        found = (
            check.join(text, on="bank_idx", how="left", maintain_order="left")
            .select(pl.col("_text").str.contains(pl.col("_ref"), literal=True))
            .to_series().fill_null(False).to_numpy()
        )
        full[rows.to_numpy()] = found
    return df.drop("_ref").with_columns(full=pl.Series(full))


def _combinations_tried(n: pl.Expr, max_size: int) -> pl.Expr:
    """Number of combinations of 2..max_size items out of ``n`` (as Float64)."""
    table = [float(sum(math.comb(k, s) for s in range(2, max_size + 1))) for k in range(0, 257)]
    return n.clip(0, 256).cast(pl.Int64).replace_strict(
        list(range(257)), table, default=None, return_dtype=pl.Float64
    )


# --------------------------------------------------------------------------------------------
# exact subset sums (meet in the middle)
# --------------------------------------------------------------------------------------------


def _exact_subsets(block: pl.DataFrame, min_size: int, max_size: int) -> pl.DataFrame:
    """Combinations of ``min_size..max_size`` block items whose amounts total the target.

    ``block`` has ``sid`` (one search), ``target`` (> 0, one per search), ``ledger_idx``, ``a``
    (the item's amount, > 0, same sign as the target) and ``pos`` (0, 1, ... within the search).
    Pairs of a search's items are listed directly (positions increasing, so each set once), larger
    halves by joins on the search; a left half is joined with a right half on the remaining
    amount (search and amount in one integer when they fit). Members are columns until the end.
    Returns ``sid`` and ``members`` (list of ledger_idx in position order).
    """
    out_schema = {"sid": block.schema["sid"], "members": _MEMBER}
    if block.height == 0 or max_size < min_size or max_size < 2:
        return pl.DataFrame(schema=out_schema)
    # a search's items together in position order; g numbers the searches 0, 1, ...
    items = block.select("sid", "target", "a", "pos", m0=pl.col("ledger_idx").cast(pl.UInt32)).sort("sid", "pos")
    sid = items["sid"].to_numpy()
    new_search = np.r_[True, sid[1:] != sid[:-1]]
    g = np.cumsum(new_search) - 1
    starts = np.flatnonzero(new_search)
    ends = np.r_[starts[1:], len(sid)]
    searches = items["sid"].gather(starts)
    items = items.drop("sid").with_columns(g=pl.Series(g, dtype=pl.UInt32))
    # every pair of a search's items: each row with each later row of its search
    row = np.arange(len(sid))
    later = ends[g] - row - 1
    first_row = np.repeat(row, later)
    second_row = first_row + 1 + np.arange(len(first_row)) - np.repeat(np.cumsum(later) - later, later)
    a, pos, m0 = items["a"].to_numpy(), items["pos"].to_numpy(), items["m0"].to_numpy()
    pairs = pl.DataFrame({
        "g": g[first_row].astype(np.uint32), "target": items["target"].to_numpy()[first_row],
        "first": pos[first_row], "last": pos[second_row], "s": a[first_row] + a[second_row],
        "m0": m0[first_row], "m1": m0[second_row],
    })
    combos = {1: items.select("g", "target", "m0", first="pos", last="pos", s="a"),
              2: pairs.filter(pl.col("s") < pl.col("target"))}
    half = max_size - max_size // 2
    right = items.select("g", p2="pos", a2="a", l2="m0")
    for k in range(3, half + 1):
        members = [f"m{i}" for i in range(k - 1)]
        combos[k] = (
            combos[k - 1].join(right, on="g")
            .filter((pl.col("p2") > pl.col("last")) & (pl.col("s") + pl.col("a2") < pl.col("target")))
            .select("g", "target", "first", *members, last="p2", s=pl.col("s") + pl.col("a2"),
                    **{f"m{k - 1}": pl.col("l2")})
        )
    packed = int(items["target"].max()) < 1 << 32
    found = []
    for size in range(max(min_size, 2), max_size + 1):
        if size == 2:
            hit = pairs.filter(pl.col("s") == pl.col("target")).select("g", "m0", r0="m1")
            found.append(hit.select("g", members=pl.concat_list("m0", "r0")))
            continue
        a, b = size - size // 2, size // 2
        left = combos[a].select("g", "last", *[f"m{i}" for i in range(a)], need=pl.col("target") - pl.col("s"))
        rhs = combos[b].select("g", need="s", first_r="first", **{f"r{i}": f"m{i}" for i in range(b)})
        if packed:
            key = pl.col("g").cast(pl.Int64) * (1 << 32) + pl.col("need")
            left = left.with_columns(_k=key).drop("g", "need")
            rhs = rhs.filter(pl.col("need") < 1 << 32).with_columns(_k=key).drop("need")
            hit = left.join(rhs, on="_k")
        else:
            hit = left.join(rhs, on=["g", "need"])
        hit = hit.filter(pl.col("last") < pl.col("first_r"))
        found.append(hit.select(
            "g", members=pl.concat_list(*[f"m{i}" for i in range(a)], *[f"r{i}" for i in range(b)])))
    found = pl.concat(found)
    return found.select(sid=searches.gather(found["g"]), members=pl.col("members").cast(_MEMBER))


# --------------------------------------------------------------------------------------------
# generators: each returns rows kind, bank_idx, ledger_idx, base (bits without the name),
# how (words), exact_only (bool)
# --------------------------------------------------------------------------------------------

_RAW = {
    "kind": pl.Utf8, "bank_idx": _MEMBER, "ledger_idx": _MEMBER, "base": pl.Float64,
    "how": pl.Utf8, "exact_only": pl.Boolean, "cap": pl.Float64, "own_name": pl.Boolean,
}


def _raw(df: pl.DataFrame, cap: float = math.inf) -> pl.DataFrame:
    """Raw group rows; ``cap`` = the most bits an exact total gives this kind of group (beyond
    ``weights.groups.max_exact_total_bits``, which caps every kind)."""
    if df.height == 0:
        return pl.DataFrame(schema=_RAW)
    if "cap" not in df.columns:
        df = df.with_columns(cap=pl.lit(cap))
    if "own_name" not in df.columns:
        # the items' names are the payer's, to compare with the bank's
        df = df.with_columns(own_name=pl.lit(True))
    return df.select([pl.col(c).cast(t) for c, t in _RAW.items()])


def _alnum(text: pl.Expr) -> pl.Expr:
    return text.fill_null("").str.to_lowercase().str.replace_all(r"[^a-z0-9]", "")


def _sorted(lists: pl.Expr) -> pl.Expr:
    """Each list sorted (as ``list.sort``, which is many times slower on an eager frame)."""
    return lists.list.eval(pl.element().sort())


def _one_bank(bank_idx: pl.Expr) -> pl.Expr:
    return pl.concat_list(bank_idx.cast(pl.UInt32))


def _listed(bank: pl.DataFrame, ledger: pl.DataFrame, hits: pl.DataFrame, types: pl.Series, rules: RuleSet,
            sims: _NameSimilarity, beside: Executor) -> pl.DataFrame:
    """Items quoted by number in the bank text (two or more): all of them, or combinations.

    ``hits`` are the (line, item) rows of :func:`_key_hits`: the document's own number only, as
    other numbers in its text (a yymm prefix shared by many supplier references) would make
    quoted numbers ambiguous. A (line, item type) is one ``UInt64`` (``bt``). The references
    quoted in full are read on ``beside`` meanwhile.

    Partitioned by (line, item type); a partition of more than ``compound.max_group_items`` items
    makes no whole group, and combinations are searched only in partitions of at most
    ``compound.max_block_items``: time and memory O(quoted pairs + partitions x
    max_block_items ** (max_subset_size / 2))."""
    cmp = rules.compound
    quoted = hits.filter(
        (pl.col("nkeys") >= 2)
        & pl.col("day_l").is_between(pl.col("day") - rules.candidates.reference_window_days,
                                     pl.col("day") + cmp.group_days_after)
    ).select("bank_idx", "ledger_idx", "key", "amount_minor", "a_l")
    if quoted.height == 0:
        return _raw(pl.DataFrame())
    # item types by code (an item of no type: a code of its own for the reading of the text,
    # and no search); search ``types.len()``: any type
    quoted = quoted.with_columns(type=ledger["type"].gather(quoted["ledger_idx"])).with_columns(
        bt=_high_low("bank_idx", pl.col("type").fill_null(types.len() + 1)))
    # a line quoting no two items of one type makes no group, whatever the names say
    quoted = quoted.filter(pl.col("bank_idx").is_in(quoted.filter(pl.col("bt").is_duplicated())["bank_idx"].implode()))
    # not another payer's item: a same-script name that is plainly different rules it out
    quoted = _plainly_other(quoted, bank, ledger, sims)
    # A short number may also be the serial of documents of other types (#BK1164 beside
    # INV-2026-01164): one search per (line, item type). A type whose items are named by every
    # number that named anything is a complete reading of the text.
    line_keys = quoted.group_by("bank_idx").agg(line_keys=pl.col("key").n_unique())
    coverage = (
        quoted.group_by("bt", "key").agg(named=pl.len(), bank_idx=pl.col("bank_idx").first())
        # a number naming two items of one type (INV-2026-00681 and INV-2025-00681) is ambiguous
        .group_by("bt").agg(ambiguous=pl.col("named").max() > 1, type_keys=pl.len(),
                            bank_idx=pl.col("bank_idx").first())
        .join(line_keys, on="bank_idx")
        .with_columns(complete=pl.col("type_keys") == pl.col("line_keys"))
        .with_columns(sole=pl.col("complete").sum().over("bank_idx") == 1)
        .select("bt", "ambiguous", "complete", "sole")
    )
    quoted = (
        quoted.drop_nulls("type")
        .with_columns(n=pl.len().over("bt"), n_line=pl.len().over("bank_idx"))
        .filter((pl.col("n") >= 2) & (pl.col("n") <= cmp.max_group_items))
        .join(coverage, on="bt")
    )
    if quoted.height == 0:
        return _raw(pl.DataFrame())
    w = rules.weights
    whole = (
        quoted.filter(~pl.col("ambiguous"))
        .group_by("bt")
        .agg(pl.col("bank_idx").first(), pl.col("ledger_idx").sort().cast(pl.UInt32),
             exact=~(pl.col("complete") & pl.col("sole")).first())
        .select(
            kind=pl.lit("one_to_many"), bank_idx=_one_bank(pl.col("bank_idx")), ledger_idx="ledger_idx",
            base=pl.lit(w.prior + w.reference.full),
            how=pl.lit("pays the ") + pl.col("ledger_idx").list.len().cast(pl.Utf8) + pl.lit(" items quoted in the bank text"),
            exact_only="exact",
        )
    )
    fully = beside.submit(_quoted_in_full, quoted, bank, ledger, rules)
    # a quoted number may also be another document's (a year, a cheque number): combinations of
    # the quoted items of one type that total the payment exactly, and of all the line's items
    # when they are few
    target = dict(target=pl.col("amount_minor").abs(), a=pl.col("a_l").abs())
    searches = pl.concat([
        quoted.filter(pl.col("n") <= cmp.max_block_items).with_columns(search=pl.col("type")),
        quoted.filter((pl.col("n_line") <= cmp.max_block_items) & (pl.col("n_line") > pl.col("n")))
        .with_columns(search=pl.lit(types.len(), dtype=pl.UInt32)),
    ]).with_columns(**target).filter(pl.col("a") < pl.col("target"))
    searches = searches.with_columns(sid=_high_low("bank_idx", "search")).with_columns(
        pos=pl.col("ledger_idx").rank("ordinal").over("sid") - 1, k=pl.len().over("sid"),
    ).filter(pl.col("k") >= 2)
    max_k = int(searches["k"].max() or 2)
    subsets = _exact_subsets(searches, 2, min(cmp.max_subset_size, max(2, max_k)))
    tried = searches.group_by("sid").agg(pl.col("bank_idx", "k").first())
    part = (
        subsets.with_columns(_sorted(pl.col("members")))
        .join(tried, on="sid")
        # the same combination from a type's search and the line's: once, from the smaller search
        .sort("k").unique(["bank_idx", "members"], keep="first")
        .with_columns(fits=pl.len().over("bank_idx"))
        .select(
            kind=pl.lit("one_to_many"), bank_idx=_one_bank(pl.col("bank_idx")),
            ledger_idx="members",
            base=w.prior + w.reference.full
            - cmp.subset_penalty * _combinations_tried(pl.col("k"), cmp.max_subset_size).log(2)
            + pl.when(pl.col("fits") == 1).then(pl.lit(w.unique_amount)).otherwise(pl.lit(w.competing_amount)),
            how=pl.lit("pays ") + pl.col("members").list.len().cast(pl.Utf8)
            + pl.lit(" of the items quoted in the bank text (a combination of ")
            + pl.col("k").cast(pl.Utf8) + pl.lit(")"),
            exact_only=pl.lit(True),
        )
    )
    return pl.concat([_raw(whole), fully.result(), _raw(part)])


def _quoted_in_full(quoted: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """The items of one type whose whole references the text quotes (2534-1625, not only a 1625
    many bills share), when a number alone is ambiguous or shared with other payers' documents
    (``quoted``: the listed items of :func:`_listed`)."""
    w = rules.weights
    quoted = _quotes_in_full(quoted, bank, ledger, rules.compound.full_ref_min_chars)
    return _raw(
        quoted.filter(pl.col("full"))
        .with_columns(nf=pl.len().over("bt"))
        .filter((pl.col("nf") >= 2) & (pl.col("nf") < pl.col("n")) | (pl.col("nf") >= 2) & pl.col("ambiguous"))
        .group_by("bt").agg(pl.col("bank_idx").first(), pl.col("ledger_idx").sort().cast(pl.UInt32))
        .with_columns(sole=pl.len().over("bank_idx") == 1)
        .select(
            kind=pl.lit("one_to_many"), bank_idx=_one_bank(pl.col("bank_idx")), ledger_idx="ledger_idx",
            base=pl.lit(w.prior + w.reference.full),
            how=pl.lit("pays the ") + pl.col("ledger_idx").list.len().cast(pl.Utf8)
            + pl.lit(" items whose references the bank text quotes in full"),
            exact_only=~pl.col("sole"),
        )
    )


def _batch_tokens(frame: pl.DataFrame, idx: str, text: pl.Expr, min_chars: int) -> pl.DataFrame:
    """(``idx``, ``key``) for the letter+digit references in ``text``, separators removed
    (``pb2610-001`` -> ``pb2610001``), at least ``min_chars`` long; one row per distinct pair. Only a text with a letter
    before a digit (:data:`_LETTER_DIGIT`) is read."""
    return (
        frame.select(idx, text=text).filter(pl.col("text").str.contains(_LETTER_DIGIT))
        .select(idx, key=pl.col("text").str.to_lowercase().str.extract_all(_BATCH_TOKEN))
        .explode("key").drop_nulls("key")
        .with_columns(pl.col("key").str.replace_all(r"[/\-]", ""))
        .filter(pl.col("key").str.len_chars() >= min_chars)
        .unique([idx, "key"])
    )


def _batches(bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """All items sharing a reference the bank text quotes (a payroll or supplier batch).

    Partitioned by (currency, sign, reference); a reference shared by more than
    ``compound.max_group_items`` items makes no group. Joins on the reference: time and memory
    O(items + bank lines + hits)."""
    cmp = rules.compound
    # an item's references are those of its description and of its reference (a token has no
    # space, so none spans the two); descriptions repeat, so each is read once
    descriptions = ledger.select(d=pl.col("description").fill_null("")).unique()
    described = _batch_tokens(descriptions, "d", pl.col("d"), cmp.batch_key_min_chars)
    ledger_tokens = (
        pl.concat([
            ledger.select("ledger_idx", d=pl.col("description").fill_null("")).join(described, on="d").drop("d"),
            _batch_tokens(ledger, "ledger_idx", pl.col("reference").fill_null(""), cmp.batch_key_min_chars),
        ])
        .unique(["ledger_idx", "key"])
    )
    ledger_tokens = pl.concat(
        [ledger_tokens, _side(ledger, ledger_tokens["ledger_idx"], cur="cur", amount_minor="amount_minor", day="day")],
        how="horizontal",
    ).with_columns(sign=pl.col("amount_minor").sign())
    blocks = (
        ledger_tokens.group_by("cur", "sign", "key")
        .agg(pl.col("ledger_idx").sort().cast(pl.UInt32), total=pl.col("amount_minor").sum(),
             first_day=pl.col("day").min(), last_day=pl.col("day").max(), n=pl.len())
        .filter((pl.col("n") >= 2) & (pl.col("n") <= cmp.max_group_items))
    )
    if blocks.height == 0:
        return _raw(pl.DataFrame())
    bank_tokens = _batch_tokens(bank, "bank_idx", pl.col("bank_text"), cmp.batch_key_min_chars)
    bank_tokens = pl.concat(
        [bank_tokens, _side(bank, bank_tokens["bank_idx"], cur="cur", day="day", amount_minor="amount_minor")],
        how="horizontal",
    ).with_columns(sign=pl.col("amount_minor").sign())
    w = rules.weights
    hits = bank_tokens.join(blocks, on=["cur", "sign", "key"]).filter(
        (pl.col("first_day") >= pl.col("day") - cmp.block_window_days)
        & (pl.col("last_day") <= pl.col("day") + cmp.group_days_after)
    )
    return _raw(hits.select(
        kind=pl.lit("one_to_many"), bank_idx=_one_bank(pl.col("bank_idx")), ledger_idx="ledger_idx",
        base=pl.lit(w.prior + w.reference.full),
        how=pl.lit("pays the ") + pl.col("n").cast(pl.Utf8) + pl.lit(" items of batch ")
        + pl.col("key").str.to_uppercase() + pl.lit(" quoted in the bank text"),
        exact_only=pl.lit(False),
    ))


def _day_blocks(bank: pl.DataFrame, ledger: pl.DataFrame, vocab: _Vocab, rules: RuleSet) -> pl.DataFrame:
    """A day's items of one type sharing a reference (``PAYROLL-2026-10``, which the bank does
    not quote) or a description (numbers and the item's own payee name removed: ``October
    salary Chan Siu Ming`` -> ``october salary``) whose total equals a bank line paid that day or
    up to ``compound.day_block_lag_days`` later (a payroll or supplier run).

    Partitioned by (currency, sign, type, reference or description, day) in one ``group_by``;
    a block of more than ``compound.max_group_items`` items is no group. Joined to the bank
    lines on (currency, total): time and memory O(items + bank lines + fits)."""
    cmp = rules.compound
    # each distinct (description, payee) is cleaned once; items are grouped on the cleaned text's code
    (described,), raw = _codes(ledger["description"].fill_null(""))
    pairs = pl.DataFrame({"d": described, "name": ledger["name"]}).unique()
    cleaned = pairs.with_columns(
        text=raw.gather(pairs["d"]).str.to_lowercase(),
        payee=vocab.names.gather(pairs["name"]).fill_null(""),
    ).with_columns(
        text=pl.when(pl.col("payee") != "").then(pl.col("text").str.replace_all(pl.col("payee"), " ", literal=True))
        .otherwise(pl.col("text"))
        .str.replace_all(r"\S*[0-9]\S*", " ").str.replace_all(r"[^\p{L}]+", " ").str.strip_chars()
    )
    # the description with its numbers removed (one payee's items of a day), and also without
    # the payee's name (a run of items each its own payee's)
    whole = raw.to_frame("text").select(
        pl.col("text").str.to_lowercase()
        .str.replace_all(r"\S*[0-9]\S*", " ").str.replace_all(r"[^\p{L}]+", " ").str.strip_chars()
    ).to_series()
    (whole_code, clean_code), descs = _codes(whole, cleaned["text"])
    desc = (
        pl.DataFrame({"d": described, "name": ledger["name"]})
        .join(cleaned.select("d", "name", desc=clean_code), on=["d", "name"], how="left", maintain_order="left",
              nulls_equal=True)["desc"]
    )
    # a shared reference, letters and digits only (PAYROLL-2026-10 -> payroll202610)
    (ref_code,), _ = _codes(ledger.select(_alnum(pl.col("reference")).replace("", None)).to_series())
    items = ledger.select(
        "ledger_idx", "cur", "type", "day", "amount_minor", "name", sign=pl.col("amount_minor").sign(),
    ).with_columns(desc=whole_code.gather(described), unnamed=desc, ref=ref_code).filter(pl.col("sign") != 0)

    def by(key: str) -> pl.DataFrame:
        return (
            items.drop_nulls(key).group_by("cur", "sign", "type", key, "day")
            .agg(pl.col("ledger_idx").sort().cast(pl.UInt32), total=pl.col("amount_minor").sum(), n=pl.len(),
                 payees=pl.col("name").n_unique())
            .filter((pl.col("n") >= 2) & (pl.col("n") <= cmp.max_group_items))
            .rename({key: "what"}).with_columns(by_ref=pl.lit(key == "ref"))
        )

    blocks = pl.concat([by("desc"), by("unnamed"), by("ref")])
    # the same items by their description and by their reference: one block
    blocks = blocks.sort("by_ref", descending=True).unique(["ledger_idx"], keep="first", maintain_order=True)
    if blocks.height == 0:
        return _raw(pl.DataFrame())
    w = rules.weights
    hits = (
        bank.select("bank_idx", "cur", day_b="day", total="amount_minor",
                    # a name the books know (a supplier's) is a payer name; a leftover word is not
                    named=pl.col("name").is_in(ledger["name"].drop_nulls().unique().implode()))
        .join(blocks, on=["cur", "total"])
        .filter(pl.col("day_b").is_between(pl.col("day"), pl.col("day") + cmp.day_block_lag_days))
    )
    by_ref = hits["by_ref"]
    words = pl.Series("desc", [None] * hits.height, dtype=pl.Utf8)
    words = words.scatter(by_ref.arg_true(),
                          ledger["reference"].gather(hits["ledger_idx"].filter(by_ref).list.first()))
    words = words.scatter((~by_ref).arg_true(), descs.gather(hits["what"].filter(~by_ref)))
    hits = hits.with_columns(desc=words, type_norm=vocab.types.gather(hits["type"]))
    return _raw(hits.select(
        kind=pl.lit("one_to_many"), bank_idx=_one_bank(pl.col("bank_idx")), ledger_idx="ledger_idx",
        base=w.prior
        - pl.when(pl.col("n") < cmp.day_block_strong_items).then(pl.lit(w.groups.day_block_small_penalty)).otherwise(pl.lit(0.0)),
        how=pl.lit("pays all ") + pl.col("n").cast(pl.Utf8) + pl.lit(" '")
        + pl.when(pl.col("desc") != "").then(pl.col("desc")).otherwise(pl.col("type_norm"))
        + pl.lit("' items booked on one day"),
        exact_only=pl.lit(True),
        # one payment out to several people (a payroll run) whose text names no one the books
        # know: the people's names are not the payer's
        own_name=(pl.col("payees") <= 1) | (pl.col("sign") > 0) | pl.col("named"),
    ), cap=w.groups.day_block_max_bits)


def _quoting(hits: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet,
             sims: _NameSimilarity) -> tuple[pl.Series, pl.Series]:
    """Bank lines quoting the number of an item of the same currency and sign (``hits``,
    :func:`_key_hits`; theirs is a reference match, not a combination search), and the items
    such a line pays exactly on its own (settled: no combination needs them; elimination)."""
    hits = hits.filter((pl.col("day_l") - pl.col("day")).abs() <= rules.candidates.reference_window_days)
    # a number that is another payer's serial (a cheque number equal to someone's invoice
    # number) quotes nothing: the line still needs its combination search. Names are compared
    # only where that decides something: lines with no hit that is plainly theirs, and items
    # paid exactly.
    b = _side(bank, hits["bank_idx"], named="named", name="name", script="script")
    led = _side(ledger, hits["ledger_idx"], named="named", name="name", script="script")
    checkable = (b["named"] & led["named"] & (b["script"] == led["script"]) & (b["name"] != led["name"])).fill_null(False)
    hits = hits.select("bank_idx", "ledger_idx", paid=pl.col("a_l") == pl.col("amount_minor")).with_columns(
        checkable=checkable)
    unchecked = hits.filter(~pl.col("checkable"))
    sure = unchecked["bank_idx"].unique().implode()
    kept = _plainly_other(hits.filter(pl.col("checkable") & (~pl.col("bank_idx").is_in(sure) | pl.col("paid"))),
                          bank, ledger, sims)
    lines = pl.concat([unchecked["bank_idx"], kept["bank_idx"]]).unique().cast(pl.UInt32)
    settled = pl.concat([unchecked.filter("paid")["ledger_idx"], kept.filter("paid")["ledger_idx"]])
    return lines, settled.unique().cast(pl.UInt32)


def _pays_one(lines: pl.DataFrame, ledger: pl.DataFrame, names: pl.DataFrame, rules: RuleSet,
              sims: _NameSimilarity) -> pl.DataFrame:
    """(bank_idx, ledger_idx) where one item of the payer (an equal name when ``exact``, else a
    ledger name in ``names`` sharing the first or last two words and at least
    ``sims.bounds.same_payer`` similar) pays the line exactly, dated within the block window.
    Joined on (name or two words, currency) packed in one integer, and the amount."""
    cmp = rules.compound
    words = sims.words()
    # the payer's items of a line's amount only
    led = ledger.filter(
        pl.col("amount_minor").is_in(lines["amount_minor"].unique().implode())
        & pl.col("name").is_in(names["name"].implode())
    ).select("ledger_idx", "cur", "amount_minor", day_l="day", name_l="name")
    led = led.with_columns(**{k: words[k].gather(led["name_l"]) for k in ("k0", "k1", "k2", "ki")})
    # a null currency is a currency here (as one hash of name, currency and amount would have it)
    on = ["_k", "amount_minor"]

    def key(word: str) -> pl.Expr:
        return _high_low(word, "cur").fill_null(pl.col(word).cast(pl.UInt64) * (1 << 32) + 0xFFFFFFFF)

    exact = lines.filter("exact")
    parts = [exact.select("bank_idx", "day", "name", "amount_minor", _k=key("name")).join(
        led.select("ledger_idx", "day_l", "name_l", "amount_minor", _k=key("name_l")), on=on)]
    fuzzy = lines.filter(~pl.col("exact"))
    fuzzy = fuzzy.with_columns(**{k: words[k].gather(fuzzy["name"]) for k in ("k0", "k1", "k2", "ki")})
    for k in ("k0", "k1", "k2", "ki"):
        left = fuzzy.drop_nulls(k).select("bank_idx", "day", "name", "amount_minor", _k=key(k))
        right = led.drop_nulls(k).select("ledger_idx", "day_l", "name_l", "amount_minor", _k=key(k))
        parts.append(left.join(right, on=on))
    pairs = (
        pl.concat(parts)
        .filter(pl.col("day_l").is_between(pl.col("day") - cmp.block_window_days, pl.col("day") + cmp.group_days_after))
        .unique(_high_low("bank_idx", "ledger_idx"))
    )
    return pairs.filter(
        (pl.col("name") == pl.col("name_l"))
        | (sims.payer(pairs["name"], pairs["name_l"]) >= sims.bounds.same_payer)
    ).select("bank_idx", "ledger_idx")


def _subsets(bank: pl.DataFrame, ledger: pl.DataFrame, vocab: _Vocab, rules: RuleSet, skip: pl.Series,
             claimed: pl.Series, sims: _NameSimilarity, caps: CapLog) -> pl.DataFrame:
    """Combinations of one payer's open items of one type totalling a bank line that quotes
    none of them; items ``claimed`` elsewhere are left out.

    Partitioned by (line, payer, item type); a line keeps the ``compound.max_block_items`` nearest
    items of its payer (:func:`engine.candidates.pairs.window_pairs`), combined meet in the
    middle: time and memory O(lines x max_block_items ** (max_subset_size / 2)), whatever the
    size of one payer's ledger."""
    cmp = rules.compound
    w = rules.weights
    lines = bank.filter(
        pl.col("named") & (pl.col("amount_minor") != 0) & _not_in(skip, bank.height)
    ).select("bank_idx", "cur", "day", "amount_minor", "name")
    items = ledger.filter(
        pl.col("named") & (pl.col("amount_minor") != 0) & _not_in(claimed, ledger.height)
    ).select("ledger_idx", "cur", "day", "amount_minor", "name", "type")
    if lines.height == 0 or items.height == 0:
        return _raw(pl.DataFrame())
    ledger_names = items.select("name").unique().join(sims.words(), on="name")
    lines = lines.with_columns(exact=pl.col("name").is_in(ledger_names["name"].implode()))
    # a line one item of the payer pays exactly (any date in the window) is a one-to-one
    pairs = _pays_one(lines, ledger, ledger_names, rules, sims)
    lines = lines.filter(~pl.col("bank_idx").is_in(pairs["bank_idx"].implode()))
    names = _payer_names(lines, ledger_names, sims)
    # elimination: an item that one such line, and only it, pays exactly (and that line no other
    # item) is that line's; the payer's combinations need it no more
    settled = pairs.filter((pl.len().over("bank_idx") == 1) & (pl.len().over("ledger_idx") == 1))["ledger_idx"]
    items = items.filter(~pl.col("ledger_idx").is_in(settled.implode()))
    items = items.with_columns(sign=pl.col("amount_minor").sign())
    kinds = items.select("name", "cur", "type", "sign").unique()
    # block ids as engine.candidates.block_ids gives them for the names, currencies and types as
    # text (their order decides which of a crowded day's items a window keeps), once per kind
    as_text = pl.DataFrame({
        "name_ledger": vocab.names.gather(kinds["name"]), "currency": vocab.currencies.gather(kinds["cur"]),
        "type_norm": vocab.types.gather(kinds["type"]), "sign": kinds["sign"],
    })
    kinds = kinds.with_columns(block=block_ids(as_text, as_text.clear())[0])
    items = items.join(kinds, on=["name", "cur", "type", "sign"], how="left", nulls_equal=True, maintain_order="left")
    # one row per (line, payer name, item type)
    links = (
        lines.with_columns(sign=pl.col("amount_minor").sign())
        .join(names, left_on="name", right_on="name_bank")
        .join(kinds, left_on=["name_ledger", "cur", "sign"], right_on=["name", "cur", "sign"])
    )
    if links.height == 0:
        return _raw(pl.DataFrame())
    offset, span = 1 << 20, 1 << 21
    link_block, item_block = links["block"].cast(pl.Int64).to_numpy(), items["block"].cast(pl.Int64).to_numpy()
    link_day = links["day"].cast(pl.Int64).to_numpy() + offset
    item_day = items["day"].cast(pl.Int64).to_numpy() + offset
    li, ri = window_pairs(link_block, link_day, item_block, item_day, cmp.block_window_days, 0,
                          cmp.max_block_items, span)
    # how many of its payer's items each line's window held: the cap's bite
    keys = np.sort(item_block[item_block >= 0] * span + item_day[item_block >= 0])
    held = (np.searchsorted(keys, link_block * span + link_day, side="right")
            - np.searchsorted(keys, link_block * span + link_day - cmp.block_window_days, side="left"))
    over = (held > cmp.max_block_items) & (link_block >= 0)
    if over.any():
        bit = links.filter(pl.Series(over)).select("name_ledger", "cur").unique().sort("name_ledger", "cur")
        caps.bit("subset", "compound.max_block_items", cmp.max_block_items,
                 _partition_names(bit["name_ledger"], bit["cur"], vocab),
                 int((held[over] - cmp.max_block_items).sum()), "items of the payer")
    block = pl.DataFrame({
        "bank_idx": links["bank_idx"].to_numpy()[li],
        "type": links["type"].to_numpy()[li],
        "ledger_idx": items["ledger_idx"].to_numpy()[ri],
        "amount_minor": links["amount_minor"].to_numpy()[li],
        "a_l": items["amount_minor"].to_numpy()[ri],
        "gap": links["day"].cast(pl.Int64).to_numpy()[li] - items["day"].cast(pl.Int64).to_numpy()[ri],
    }).unique(["bank_idx", "ledger_idx"])
    block = block.with_columns(target=pl.col("amount_minor").abs(), a=pl.col("a_l").abs())
    # a line an item of the payer pays exactly is a one-to-one; others need at least two items
    # smaller than the payment, together reaching it. One search per (line, item type): the
    # nearest items, the lower row first among items of one day.
    block = block.filter(pl.col("a") < pl.col("target")).with_columns(bt=_high_low("bank_idx", "type"))
    nearness = (pl.col("gap") - pl.col("gap").min()) * (1 << 32) + pl.col("ledger_idx").cast(pl.Int64)
    block = (
        block.with_columns(near=nearness.rank("ordinal").over("bt"))
        .filter(pl.col("near") <= cmp.max_block_items)
        .with_columns(k=pl.len().over("bt"), reach=pl.col("a").sum().over("bt"))
        .filter((pl.col("k") >= 2) & (pl.col("reach") >= pl.col("target")))
        .with_columns(pos=pl.col("near") - 1, sid=pl.col("bt"))
    )
    if block.height == 0:
        return _raw(pl.DataFrame())
    searches = (
        block.group_by("sid").agg(pl.col("bank_idx", "k").first())
        .with_columns(combos=_combinations_tried(pl.col("k"), cmp.max_subset_size))
        .with_columns(combos=pl.col("combos").sum().over("bank_idx"))
    )
    found = _exact_subsets(block, 2, cmp.max_subset_size).join(searches, on="sid")
    return _raw(
        found.with_columns(fits=pl.len().over("bank_idx"))
        .select(
            kind=pl.lit("one_to_many"), bank_idx=_one_bank(pl.col("bank_idx")),
            ledger_idx=_sorted(pl.col("members")),
            base=w.prior - cmp.subset_penalty * pl.col("combos").log(2)
            + pl.when(pl.col("fits") == 1).then(pl.lit(w.unique_amount)).otherwise(pl.lit(w.competing_amount)),
            how=pl.lit("pays ") + pl.col("members").list.len().cast(pl.Utf8)
            + pl.lit(" of the payer's open items, none quoted (")
            + pl.when(pl.col("fits") == 1).then(pl.lit("the only combination"))
            .otherwise(pl.col("fits").cast(pl.Utf8) + pl.lit(" combinations"))
            + pl.lit(" of ") + pl.col("combos").cast(pl.Int64).cast(pl.Utf8) + pl.lit(" tried that fits)"),
            exact_only=pl.lit(True),
        )
    )


def _payer_instalment_pairs(bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet, sims: _NameSimilarity,
                            vocab: _Vocab, caps: CapLog) -> pl.DataFrame:
    """(``bank_idx``, ``ledger_idx``) of bank lines that may be instalments of an item of their
    own payer, whatever their text quotes: the bank name is the item's payer
    (:func:`_payer_names` at least ``sims.bounds.same_payer``: equal, another word order,
    initials), same currency and sign, the line less than the item and dated from
    ``dates.by_type.invoice.before`` days before it to ``compound.instalment_window_days`` after.

    Partitioned by (payer, currency, sign); each line keeps the ``compound.max_instalment_items``
    items of its partition nearest in date (a cap that bites is recorded in ``caps``). Time and
    memory O(lines x max_instalment_items + items), whatever the size of one payer's partition.
    """
    cmp = rules.compound
    lines = bank.filter(pl.col("named") & (pl.col("amount_minor") != 0)).select(
        "bank_idx", "cur", "day", "amount_minor", "name", sign=pl.col("amount_minor").sign())
    items = ledger.filter(pl.col("named") & (pl.col("amount_minor") != 0)).select(
        "ledger_idx", "cur", "day", "amount_minor", "name", sign=pl.col("amount_minor").sign())
    empty = pl.DataFrame(schema={"bank_idx": pl.UInt32, "ledger_idx": pl.UInt32})
    if lines.height == 0 or items.height == 0:
        return empty
    ledger_names = items.select("name").unique().join(sims.words(), on="name")
    lines = lines.with_columns(exact=pl.col("name").is_in(ledger_names["name"].implode()))
    names = _payer_names(lines, ledger_names, sims).filter(pl.col("similarity") >= sims.bounds.same_payer)
    partitions = items.select("name", "cur", "sign").unique(maintain_order=True).with_row_index("block")
    items = items.join(partitions, on=["name", "cur", "sign"], maintain_order="left").sort("block", "day")
    links = (
        lines.join(names.select("name_bank", "name_ledger"), left_on="name", right_on="name_bank")
        .join(partitions, left_on=["name_ledger", "cur", "sign"], right_on=["name", "cur", "sign"])
        # a line paying exactly the amount of an open item of its payer is that item's payment
        # (the pair scorer proposes it); it is no instalment of another item unless it quotes
        # one, which the quoting generator sees. Most payments are exact, so this keeps the
        # generator's work to the lines that can be instalments
        .join(items.select(name_ledger="name", cur="cur", amount_minor="amount_minor").unique(),
              on=["name_ledger", "cur", "amount_minor"], how="anti")
    )
    if links.height == 0:
        return empty
    before, after = cmp.instalment_window_days, rules.window_for("invoice").before
    offset, span = 1 << 20, 1 << 21
    link_block = links["block"].cast(pl.Int64).to_numpy()
    link_day = links["day"].cast(pl.Int64).to_numpy() + offset
    item_block = items["block"].cast(pl.Int64).to_numpy()
    item_day = items["day"].cast(pl.Int64).to_numpy() + offset
    li, ri = window_pairs(link_block, link_day, item_block, item_day, before, after,
                          cmp.max_instalment_items, span)
    # how many items each line's window held: the cap's bite
    keys = item_block * span + item_day  # sorted: items are by (block, day)
    held = (np.searchsorted(keys, link_block * span + link_day + after, side="right")
            - np.searchsorted(keys, link_block * span + link_day - before, side="left"))
    over = held > cmp.max_instalment_items
    if over.any():
        bit = links.filter(pl.Series(over)).select("name_ledger", "cur").unique().sort("name_ledger", "cur")
        caps.bit("instalments", "compound.max_instalment_items", cmp.max_instalment_items,
                 _partition_names(bit["name_ledger"], bit["cur"], vocab),
                 int((held[over] - cmp.max_instalment_items).sum()), "(bank line, item) pairs")
    pairs = pl.DataFrame({
        "bank_idx": links["bank_idx"].to_numpy()[li], "ledger_idx": items["ledger_idx"].to_numpy()[ri],
        "amount_minor": links["amount_minor"].to_numpy()[li], "a_l": items["amount_minor"].to_numpy()[ri],
    })
    return (
        pairs.filter(pl.col("amount_minor").abs() < pl.col("a_l").abs())
        .select(pl.col("bank_idx", "ledger_idx").cast(pl.UInt32))
        .unique()
    )


def _partition_names(names: pl.Series, currencies: pl.Series, vocab: _Vocab) -> list[str]:
    """Readable partition names, ``payer 'CHAN TAI MAN' HKD``, from name and currency codes."""
    text = vocab.names.gather(names).str.to_uppercase()
    cur = currencies.cast(pl.UInt32)
    codes = vocab.currencies.gather(cur.fill_null(0)) if vocab.currencies.len() else pl.repeat("", cur.len(), eager=True)
    return [f"payer '{n}' {c}" for n, c in zip(text.to_list(), codes.to_list(), strict=True)]


def _graded_references(pairs: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> pl.Series:
    """The reference weight (``weights.reference``) of each (``bank_idx``, ``ledger_idx``) pair:
    how the bank text quotes the item's reference, graded as the pair scorer grades it (full,
    reformatted, serial, near, truncated, none: :func:`engine.prepare.references
    .reference_grade_from_profiles`). Only pairs whose line has a number and whose item has a
    serial are graded; each item's profile is built once."""
    weights = {g: float(getattr(rules.weights.reference, g)) for g in REFERENCE_GRADES}
    out = np.full(pairs.height, weights["none"])
    has_keys = (bank["ref_keys"].list.len() > 0).fill_null(False).gather(pairs["bank_idx"])
    has_ref = ledger["ref_serial"].is_not_null().gather(pairs["ledger_idx"])
    rows = (has_keys & has_ref).arg_true()
    if rows.len() == 0:
        return pl.Series("ref_w", out)
    todo = pairs.select(pl.col("bank_idx", "ledger_idx").gather(rows))
    wanted = todo["ledger_idx"].unique()
    profiles = pl.DataFrame({"ledger_idx": wanted, "doc_ref": ledger["doc_ref"].gather(wanted)}).select(
        "ledger_idx", ledger_profile=ledger_reference_profile(pl.col("doc_ref")))
    graded = (
        todo.with_columns(bank_profile=bank["reference_profile"].gather(todo["bank_idx"]))
        .join(profiles, on="ledger_idx", how="left", maintain_order="left")
        .select(reference_grade_from_profiles(pl.col("bank_profile"), pl.col("ledger_profile"))
                .replace_strict(weights, default=weights["none"], return_dtype=pl.Float64))
        .to_series()
    )
    out[rows.to_numpy()] = graded.to_numpy()
    return pl.Series("ref_w", out)


def _instalments(bank: pl.DataFrame, ledger: pl.DataFrame, hits: pl.DataFrame, rules: RuleSet,
                 sims: _NameSimilarity, vocab: _Vocab, caps: CapLog) -> pl.DataFrame:
    """Two or more bank lines paying one item, each less than it (``many_to_one``): in full, or
    in part (``open_minor`` = what is still open) when every line quotes the item.

    A line is an instalment candidate of an item when it quotes the item's number (``hits``,
    :func:`_key_hits`, not another payer's item) or when its payer is the item's
    (:func:`_payer_instalment_pairs`) and it quotes no other item's number. Each line's
    reference evidence is graded as the pair scorer grades it (:func:`_graded_references`):
    a reference cut short, with two digits swapped, the number only, or none at all. An item
    keeps at most ``compound.max_instalments`` lines (those quoting it best, then nearest in
    date; a cap that bites is recorded), and every subset of them is tried (at most
    2 ** max_instalments per item): those totalling the item exactly, and the whole set of lines
    quoting the item when it pays less. A line whose amount is exactly what the others left open
    completes the group; such a group outscores the others paying in part (plus a write-off),
    by the exact total's bits (``weights.groups.instalment_max_total_bits``). A line quoting no
    usable reference costs ``weights.groups.unreferenced_instalment`` bits, and the choice among
    the item's unquoting lines ``compound.subset_penalty`` bits per doubling.

    Time and memory O(items x 2 ** max_instalments + lines x max_instalment_items).
    """
    cmp = rules.compound
    w = rules.weights
    before = rules.window_for("invoice").before
    quoted = hits.filter(
        (pl.col("amount_minor").abs() < pl.col("a_l").abs())
        & pl.col("day").is_between(pl.col("day_l") - before, pl.col("day_l") + cmp.instalment_window_days)
    ).select("bank_idx", "ledger_idx")
    quoted = _plainly_other(quoted, bank, ledger, sims).select(pl.col("bank_idx", "ledger_idx").cast(pl.UInt32))
    payer = _payer_instalment_pairs(bank, ledger, rules, sims, vocab, caps)
    # a line quoting another item's number is that item's, not an unquoted instalment of this one
    quoting = hits["bank_idx"].unique().cast(pl.UInt32).implode()
    payer = payer.filter(~pl.col("bank_idx").is_in(quoting)).join(quoted, on=["bank_idx", "ledger_idx"], how="anti")
    pairs = pl.concat([quoted.with_columns(quotes=pl.lit(True)), payer.with_columns(quotes=pl.lit(False))])
    pairs = pairs.filter(pl.len().over("ledger_idx") >= 2)
    if pairs.height == 0:
        return _raw(pl.DataFrame())
    pairs = pairs.with_columns(
        amount_minor=bank["amount_minor"].gather(pairs["bank_idx"]),
        day=bank["day"].gather(pairs["bank_idx"]),
        a_l=ledger["amount_minor"].gather(pairs["ledger_idx"]),
        day_l=ledger["day"].gather(pairs["ledger_idx"]),
        ref_w=_graded_references(pairs, bank, ledger, rules),
    )
    # a line that names another document in full (INV-2026-57050) is that document's, whatever
    # other number of this item's its text holds (a cheque number 032800 for INV-2026-32800)
    explicit = bank["explicit_ref"].gather(pairs["bank_idx"])
    item_digits = ledger.select(reference_digits(pl.col("doc_ref").gather(pairs["ledger_idx"]))).to_series()
    names_another = (
        pairs["quotes"] & explicit.is_not_null() & (item_digits.str.len_chars() >= 3)
        & (explicit.str.len_chars() >= item_digits.str.len_chars()) & (explicit != item_digits)
    ).fill_null(False)
    pairs = pairs.filter(~names_another)
    # a quoted number is at least the serial's evidence; a grade of "none" without one is no reference
    pairs = pairs.with_columns(
        ref_w=pl.when("quotes").then(pl.max_horizontal("ref_w", pl.lit(w.reference.serial))).otherwise("ref_w"),
    ).with_columns(referenced=pl.col("quotes") | (pl.col("ref_w") > w.reference.none))
    # the lines quoting the item best, then the nearest, the lower row first among equals
    nearness = (
        (~pl.col("referenced")).cast(pl.Int64) * (1 << 50)
        + (pl.col("day") - pl.col("day_l")).abs().cast(pl.Int64) * (1 << 32) + pl.col("bank_idx").cast(pl.Int64)
    )
    pairs = pairs.with_columns(near=nearness.rank("ordinal").over("ledger_idx"), held=pl.len().over("ledger_idx"))
    capped = pairs.filter((pl.col("held") > cmp.max_instalments) & (pl.col("near") == 1))
    if capped.height:
        where = capped.select(name=ledger["name"].gather(capped["ledger_idx"]),
                              cur=ledger["cur"].gather(capped["ledger_idx"])).unique().sort("name", "cur")
        caps.bit("instalments", "compound.max_instalments", cmp.max_instalments,
                 _partition_names(where["name"], where["cur"], vocab),
                 int((capped["held"] - cmp.max_instalments).sum()), "bank lines as instalments of an item")
    pairs = pairs.filter(pl.col("near") <= cmp.max_instalments)
    pairs = pairs.with_columns(
        n=pl.len().over("ledger_idx"), pos=(pl.col("near") - 1).cast(pl.Int64),
        n_referenced=pl.col("referenced").sum().over("ledger_idx"),
        n_unreferenced=(~pl.col("referenced")).sum().over("ledger_idx"),
    ).filter(
        (pl.col("n") >= 2)
        # an item no two quoting lines pay in part needs lines reaching its amount together
        & ((pl.col("n_referenced") >= 2) | (pl.col("amount_minor").abs().sum().over("ledger_idx") >= pl.col("a_l").abs()))
    )
    if pairs.height == 0:
        return _raw(pl.DataFrame())
    # every subset of an item's lines, by bit mask
    n_max = int(pairs["n"].max())
    mask = np.arange(1, 1 << n_max, dtype=np.int64)
    bits = sum((mask >> i) & 1 for i in range(n_max))
    masks = pl.DataFrame({"mask": mask[bits >= 2]})
    items = pairs.group_by("ledger_idx").agg(
        pl.col("n", "a_l", "n_referenced", "n_unreferenced").first(),
        members=pl.struct("pos", "bank_idx", "amount_minor", "ref_w", "referenced"),
    )
    chosen = (
        items.join(masks, how="cross").filter(pl.col("mask") < pl.lit(2, dtype=pl.Int64).pow(pl.col("n")))
        .with_row_index("sid")
        .explode("members").unnest("members")
        .filter(((pl.col("mask") // pl.lit(2, dtype=pl.Int64).pow(pl.col("pos"))) % 2) == 1)
    )
    subsets = (
        chosen.group_by("sid")
        .agg(
            pl.col("ledger_idx", "a_l", "n_referenced", "n_unreferenced").first(), pl.col("bank_idx"),
            paid=pl.col("amount_minor").sum(), best_ref=pl.col("ref_w").max(),
            referenced=pl.col("referenced").sum(), unreferenced=(~pl.col("referenced")).sum(),
        )
        .filter(pl.col("paid").abs() <= pl.col("a_l").abs())
        .with_columns(in_full=pl.col("paid") == pl.col("a_l"))
        # in part: only the whole set of lines quoting the item (an unquoting line proves nothing
        # towards a part payment)
        .filter(pl.col("in_full") | ((pl.col("unreferenced") == 0) & (pl.col("referenced") == pl.col("n_referenced"))))
    )
    choice = pl.when(pl.col("unreferenced") > 0).then(
        pl.col("n_unreferenced").cast(pl.Float64).clip(lower_bound=1.0).log(2) * cmp.subset_penalty
    ).otherwise(pl.lit(0.0))
    count = pl.col("bank_idx").list.len().cast(pl.Utf8)
    how = (
        pl.when(pl.col("unreferenced") == 0).then(count + pl.lit(" payments quoting the item's reference"))
        .otherwise(
            count + pl.lit(" payments of the payer, ") + pl.col("referenced").cast(pl.Utf8)
            + pl.lit(" quoting the item's reference, ") + pl.col("unreferenced").cast(pl.Utf8)
            + pl.lit(" none (paying exactly what the others left open)")
        )
    )
    return _raw(subsets.select(
        kind=pl.lit("many_to_one"),
        bank_idx=_sorted(pl.col("bank_idx").cast(_MEMBER)),
        ledger_idx=pl.concat_list(pl.col("ledger_idx").cast(pl.UInt32)),
        base=w.prior + pl.col("best_ref") + w.groups.unreferenced_instalment * pl.col("unreferenced") - choice
        + pl.when(pl.col("in_full") & (pl.col("referenced") > 0) & (pl.col("unreferenced") > 0))
        .then(pl.lit(w.groups.remainder)).otherwise(pl.lit(0.0)),
        how=how,
        exact_only=pl.lit(False),
    ), cap=w.groups.instalment_max_total_bits)


# --------------------------------------------------------------------------------------------
# assembly
# --------------------------------------------------------------------------------------------


def _totals(raw: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> pl.DataFrame | None:
    """Raw groups (lists of bank_idx and ledger_idx sorted, as every generator gives them), one
    row per group, with their totals (``bank_total``, ``item_total``, ``diff``, ``currency``):
    those of one currency whose totals fit (exactly, within the tolerance, or paid in part).
    None when no group fits."""
    if raw.height == 0:
        return None
    # one row per group: the most bits, then a fixed order of the rest (the same every run)
    group = ["kind", "bank_idx", "ledger_idx"]
    repeated = raw.select(pl.struct(group).is_duplicated()).to_series()
    raw = pl.concat([
        raw.filter(~repeated),
        raw.filter(repeated)
        .sort(["base", *group, "how", "exact_only", "cap", "own_name"], descending=[True] + [False] * 7)
        .unique(group, keep="first", maintain_order=True),
    ]).with_row_index("gid")
    b_rows = raw.select("gid", b="bank_idx").explode("b")
    bank_side = pl.concat([b_rows, _side(bank, b_rows["b"], amount_b="amount_minor", cur="cur")], how="horizontal")
    l_rows = raw.select("gid", l="ledger_idx").explode("l")
    ledger_side = pl.concat([l_rows, _side(ledger, l_rows["l"], amount_l="amount_minor", cur_l="cur")],
                            how="horizontal")
    totals_b = bank_side.group_by("gid").agg(
        bank_total=pl.col("amount_b").sum(), cur=pl.col("cur").first(), n_currency=pl.col("cur").n_unique(),
    )
    totals_l = ledger_side.group_by("gid").agg(
        item_total=pl.col("amount_l").sum(), cur_l=pl.col("cur_l").first(), n_currency_l=pl.col("cur_l").n_unique(),
    )
    df = (
        raw.join(totals_b, on="gid").join(totals_l, on="gid")
        .filter((pl.col("n_currency") == 1) & (pl.col("n_currency_l") == 1) & (pl.col("cur") == pl.col("cur_l")))
    )
    if df.height == 0:
        return None
    df = df.with_columns(currency=bank["currency"].gather(df["bank_idx"].list.first()))
    currencies = df["currency"].unique().drop_nulls().to_list()
    diff = pl.col("bank_total") - pl.col("item_total")
    tol = tolerance_expr(pl.col("item_total"), pl.col("currency"), rules, currencies)
    many_to_one = pl.col("kind") == "many_to_one"
    df = df.with_columns(diff=diff).filter(
        many_to_one | (pl.col("diff") == 0) | (~pl.col("exact_only") & (pl.col("diff").abs() <= tol))
    )
    return df.drop("gid", "cur", "cur_l", "n_currency", "n_currency_l") if df.height else None


def _describe(df: pl.DataFrame | None, bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet,
              sims: _NameSimilarity) -> pl.DataFrame:
    """Adjustment, name evidence, score and evidence text for the groups of :func:`_totals`."""
    if df is None:
        return empty_groups()
    w = rules.weights
    currencies = df["currency"].unique().drop_nulls().to_list()
    many_to_one = pl.col("kind") == "many_to_one"
    df = df.with_row_index("gid")
    # the items' references and the names
    b_rows = df.select("gid", b="bank_idx").explode("b")
    bank_side = pl.concat([b_rows, _side(bank, b_rows["b"], name_bank="name", named_b="named", script_b="script")],
                          how="horizontal")
    l_rows = df.select("gid", l="ledger_idx").explode("l")
    ledger_side = pl.concat([l_rows, _side(ledger, l_rows["l"], doc_ref="doc_ref", name_ledger="name",
                                           named_l="named", script_l="script")], how="horizontal")
    refs = ledger_side.group_by("gid").agg(
        refs=pl.col("doc_ref").sort().head(8).fill_null("?").str.join(", ")
        + pl.when(pl.len() > 8).then(pl.lit(", ...")).otherwise(pl.lit("")),
    )
    # payer name: the weakest similarity between a bank line and an item of the group
    names = bank_side.filter("named_b").select("gid", "name_bank", "script_b").join(
        ledger_side.filter("named_l").select("gid", "name_ledger", "script_l"), on="gid"
    )
    comparable = names.filter(pl.col("script_b") == pl.col("script_l"))
    comparable = comparable.with_columns(similarity=sims.of(comparable["name_bank"], comparable["name_ledger"]),
                                         initials=sims.initials_of(comparable["name_bank"], comparable["name_ledger"]))
    # each (line, item) name pair at its level, as the pair scorer places it (given names as
    # initials below the top level); the group has its weakest pair's
    sim = pl.col("similarity")
    weight = pl.lit(w.name[-1].weight)
    label = pl.lit(w.name[-1].label)
    for level in reversed(w.name):
        weight = pl.when(sim >= level.min_similarity).then(pl.lit(level.weight)).otherwise(weight)
        label = pl.when(sim >= level.min_similarity).then(pl.lit(level.label)).otherwise(label)
    initials = pl.col("initials") & (sim < w.name[0].min_similarity)
    comparable = comparable.with_columns(
        level_weight=pl.when(initials).then(pl.lit(w.name_initials)).otherwise(weight),
        level_label=pl.when(initials).then(pl.lit("payer's given names as initials")).otherwise(label),
    )
    name_sim = comparable.group_by("gid").agg(
        similarity=sim.min(),
        level_weight=pl.col("level_weight").min(),
        level_label=pl.col("level_label").sort_by("level_weight", "level_label").first(),
    )
    scripts = names.group_by("gid").agg(other_script=(pl.col("script_b") != pl.col("script_l")).any())
    several = df.filter(~pl.col("own_name")).select("gid")
    name_sim = name_sim.join(several, on="gid", how="anti")
    scripts = scripts.join(several, on="gid", how="anti")
    df = df.join(refs, on="gid").join(name_sim, on="gid", how="left").join(scripts, on="gid", how="left")
    # name level
    weight, label = pl.col("level_weight"), pl.col("level_label")
    name_weight = (
        pl.when(sim.is_not_null()).then(weight)
        .when(pl.col("other_script").fill_null(False)).then(pl.lit(w.name_different_script))
        .otherwise(pl.lit(w.name_missing))
    )
    name_label = (
        pl.when(sim.is_not_null()).then(label)
        .when(pl.col("other_script").fill_null(False)).then(pl.lit("name in another script"))
        .when(~pl.col("own_name")).then(pl.lit("several payees: no payer name to compare"))
        .otherwise(pl.lit("no payer name to compare"))
    )
    money_in = pl.col("bank_total") > 0
    worse = pl.col("diff") < 0
    small = pl.col("diff").abs() <= _bank_charge_max(pl.col("currency"), rules, currencies)
    cause = (
        pl.when(worse & small).then(pl.lit("bank_charge"))
        .when(worse & money_in).then(pl.lit("short_payment"))
        .when(worse).then(pl.lit("overpayment"))
        .when(money_in).then(pl.lit("overpayment"))
        .otherwise(pl.lit("short_payment"))
    )
    adjusted = ~many_to_one & (pl.col("diff") != 0)
    cur = pl.col("currency")
    df = df.with_columns(**{  # each amount's words once
        f"_{c}": cur + pl.lit(" ") + format_minor_expr(e, cur)
        for c, e in (("bank_total", pl.col("bank_total")), ("item_total", pl.col("item_total")),
                     ("diff", pl.col("diff")), ("open", -pl.col("diff")))
    }, _cause=cause)
    cause = pl.col("_cause")
    fmt = {"bank_total": pl.col("_bank_total"), "item_total": pl.col("_item_total"), "diff": pl.col("_diff"),
           "open": pl.col("_open")}
    exact_bits = _exact_total_bits(pl.col("bank_total").abs(), w.amount.exact, w.groups.max_exact_total_bits)
    amount_bits = (
        pl.when(pl.col("diff") == 0).then(pl.min_horizontal(exact_bits, pl.col("cap")))
        .when(many_to_one).then(pl.lit(0.0))  # paid in part: the open amount is no evidence
        .otherwise(pl.lit(w.amount.within_tolerance))
    )
    open_minor = pl.when(many_to_one & (pl.col("diff") != 0)).then(-pl.col("diff"))
    total_words = (
        pl.when(many_to_one & (pl.col("diff") == 0))
        .then(pl.lit("; total ") + fmt["bank_total"] + pl.lit(" pays ") + pl.col("refs") + pl.lit(" in full"))
        .when(many_to_one)
        .then(pl.lit("; ") + fmt["bank_total"] + pl.lit(" paid so far of ") + fmt["item_total"]
              + pl.lit(" (") + pl.col("refs") + pl.lit("); ") + fmt["open"] + pl.lit(" still open"))
        .when(pl.col("diff") == 0)
        .then(pl.lit(" (") + pl.col("refs") + pl.lit("); total ") + fmt["item_total"]
              + pl.lit(" equals the payment exactly"))
        .otherwise(pl.lit(" (") + pl.col("refs") + pl.lit("); total ") + fmt["item_total"]
                   + pl.lit(", payment differs by ") + fmt["diff"] + pl.lit(" (") + cause + pl.lit(")"))
    )
    out = df.select(
        "kind", "bank_idx", "ledger_idx",
        score=pl.col("base") + amount_bits + name_weight,
        ledger_total=pl.when(many_to_one).then(pl.col("bank_total")).otherwise(pl.col("item_total")),
        adjustments=pl.when(adjusted)
        .then(pl.concat_list(pl.struct(cause=cause, amount_minor=pl.col("diff"))))
        .otherwise(pl.lit([], dtype=pl.List(ADJUSTMENT_DTYPE))),
        evidence=pl.col("how") + total_words + pl.lit("; ") + name_label,
        open_minor=open_minor,
        # instalments whose lines name plainly different payers are never settled
        # automatically, however well their amounts add up: the total may be a coincidence of
        # two customers' payments
        review_reason=pl.when(many_to_one & sim.is_not_null() & (weight < 0))
        .then(pl.lit("a payer name in the group differs from the others (") + label + pl.lit(")")),
    )
    return conform(out)


def _coded_sides(bank_prepared: pl.DataFrame,
                 ledger_prepared: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, _Vocab]:
    """The columns the generators read, with ``UInt32`` codes (:func:`_codes`) for the name
    (``name``; ``named``: non-empty), currency (``cur``), name script (``script``) and item type
    (``type``). Returns bank, ledger and the codes' strings."""
    for frame, idx in ((bank_prepared, "bank_idx"), (ledger_prepared, "ledger_idx")):
        if not np.array_equal(frame[idx].to_numpy(), np.arange(frame.height)):
            raise ValueError(f"{idx} must be the row number (0, 1, ...): pass the frames of prepare_bank / "
                             "prepare_ledger unfiltered")
    (name_b, name_l), vocab = _codes(bank_prepared["name_key"], ledger_prepared["name_key"])
    (cur_b, cur_l), currencies = _few_codes(bank_prepared["currency"], ledger_prepared["currency"])
    (script_b, script_l), _ = _few_codes(bank_prepared["name_script"], ledger_prepared["name_script"])
    (type_l,), types = _few_codes(ledger_prepared["type_norm"])
    named = pl.col("name_key").fill_null("") != ""
    # one chunk per column: the generators gather rows from these many times, and a gather from a
    # column in many chunks is several times slower
    bank = bank_prepared.select(
        "bank_idx", "date", "day", "amount_minor", "currency", "bank_text", "ref_keys", "reference_profile",
        pl.col("explicit_ref") if "explicit_ref" in bank_prepared.columns else pl.lit(None, dtype=pl.Utf8).alias("explicit_ref"),
        named=named
    ).with_columns(name=name_b, cur=cur_b, script=script_b).rechunk()
    ledger = ledger_prepared.select(
        "ledger_idx", "day", "amount_minor", "currency", "doc_ref", "ref_serial", "description", "reference",
        named=named,
    ).with_columns(name=name_l, cur=cur_l, script=script_l, type=type_l).rechunk()
    return bank, ledger, _Vocab(vocab, currencies, types)


def compound_groups(bank_prepared: pl.DataFrame, ledger_prepared: pl.DataFrame, rules: RuleSet,
                    caps: CapLog | None = None) -> pl.DataFrame:
    """Candidate groups (:data:`engine.candidates.groups.GROUP_SCHEMA`) for one bank line settling several
    ledger items (kind ``one_to_many``) and several bank lines settling one ledger item (kind
    ``many_to_one``).

    Parameters
    ----------
    bank_prepared, ledger_prepared
        Prepared bank lines and ledger items (:func:`engine.prepare.features.prepare_bank` /
        :func:`~engine.prepare.features.prepare_ledger`); ``bank_idx`` / ``ledger_idx`` are row numbers.
    rules
        The rule set (``compound``, ``amount``, ``adjustments`` and ``weights`` sections).

    Returns
    -------
    pl.DataFrame
        One row per candidate group, every fitting alternative included (two combinations with
        the same total are two rows); same currency and sign on both sides; ``bank total ==
        ledger_total + sum(adjustments)`` exactly. A partly paid item (instalments) has
        ``ledger_total`` = the bank total and ``open_minor`` = what is still open. Rows are by
        score, highest first, ties in a fixed order (kind, bank_idx, ledger_idx, evidence), so
        the same input gives the same frame every run.

    Raises
    ------
    ValueError
        ``bank_idx`` / ``ledger_idx`` are not the row numbers.

    Examples
    --------
    >>> groups = compound_groups(prepare_bank(bank), prepare_ledger(ledger, rules), rules)  # doctest: +SKIP
    """
    if bank_prepared.height == 0 or ledger_prepared.height == 0:
        return empty_groups()
    caps = caps if caps is not None else CapLog()
    # Much of the work is text (regular expressions) on one core, so independent steps run on a
    # second thread: the numbers in the bank text, batches, instalments, the quoting check, the
    # references quoted in full and the words of the explained groups, beside coding the names,
    # day blocks, the listed items and the combination search. All steps only read the frames;
    # the name similarities are shared under a lock. The result does not depend on the timing.
    with ThreadPoolExecutor(max_workers=1) as beside:
        keys = beside.submit(_bank_keys, bank_prepared)
        bank, ledger, vocab = _coded_sides(bank_prepared, ledger_prepared)
        batches = beside.submit(_batches, bank, ledger, rules)
        sims = _NameSimilarity(vocab.names, _name_bounds(rules))
        day_blocks = _day_blocks(bank, ledger, vocab, rules)
        hits = _key_hits(keys.result(), bank, ledger, rules)
        instalments = beside.submit(_instalments, bank, ledger, hits, rules, sims, vocab, caps)
        quoting = beside.submit(_quoting, hits, bank, ledger, rules, sims)
        listed = _listed(bank, ledger, hits, vocab.types, rules, sims, beside)
        explained = _totals(pl.concat([listed, batches.result(), day_blocks, instalments.result()]), bank, ledger,
                            rules)
        beside.submit(sims.words)  # for the combination search, while the thread is free
        found = beside.submit(_describe, explained, bank, ledger, rules, sims)
        quoting, settled = quoting.result()
        # lines a quoted list or batch explains exactly need no combination search, and the items
        # of an exact group (no adjustment, nothing left open) or a line quoting and paying one
        # exactly are no one else's
        exact = explained.filter(pl.col("diff") == 0) if explained is not None else pl.DataFrame(
            schema={"kind": pl.Utf8, "bank_idx": _MEMBER, "ledger_idx": _MEMBER})
        skip = pl.concat([exact.filter(pl.col("kind") == "one_to_many")["bank_idx"].explode(), quoting]).unique()
        taken = pl.concat([exact["ledger_idx"].explode(), settled]).unique()
        combos = _describe(_totals(_subsets(bank, ledger, vocab, rules, skip, taken, sims, caps), bank, ledger, rules),
                           bank, ledger, rules, sims)
        groups = pl.concat([found.result(), combos])
    # a line with an exact one-to-many group gets no approximate one
    exact_lines = groups.filter(
        (pl.col("kind") == "one_to_many") & (pl.col("adjustments").list.len() == 0)
    )["bank_idx"].explode().unique()
    approximate = (pl.col("kind") == "one_to_many") & (pl.col("adjustments").list.len() > 0)
    groups = groups.filter(~(approximate & pl.col("bank_idx").list.first().is_in(exact_lines.implode())))
    return (
        groups.sort(["score", "kind", "bank_idx", "ledger_idx", "evidence", "ledger_total", "open_minor"],
                    descending=[True] + [False] * 6)
        .unique(["kind", "bank_idx", "ledger_idx"], keep="first", maintain_order=True)
    )
