"""Compound candidate groups (engine stage 2b): one bank line settling several ledger items and
several bank lines settling one item.

Generators, all vectorized (joins, ``group_by``, ``explode``; no Python loop per line):

- **listed**: the bank text quotes the numbers of several items (``INV 00163/00275``,
  ``SI-70058 SI-97556 459599``); the quoted items of the same currency and sign make a group when
  they total the payment (exactly, or within the amount tolerance with one adjustment), or a
  combination of them does.
- **batch**: a reference in the bank text (``PAYROLL BATCH PB2610001``) that several ledger items
  share in their description (``Wages Oct 2026 - batch PB2610-001``): all of them.
- **day block**: items of one day with the same type and the same description once references are
  removed (a payroll run ``Wages Oct 2026``), whose total equals a bank line paid that day or
  shortly after.
- **subset**: no reference at all: the payer's open items (same currency and sign, up to
  ``compound.block_window_days`` before the bank date, nearest ``compound.max_block_items``)
  combined 2..``compound.max_subset_size`` at a time (meet in the middle: combinations of half the
  size joined on the remaining amount) whose total equals the payment exactly. Every fitting
  combination is proposed, so the assignment sees the ambiguity.
- **instalments** (``many_to_one``): bank lines quoting one invoice's number, each less than it,
  together paying it in full or in part (``open_minor`` = what is still open).

Scores are bits (log2 odds) on the pair scale: ``weights.prior``, the reference level, an exact
total (worth the more bits the less round the amount is: a coincidental exact total of several
items is about as likely as one in ``amount / roundness``), the payer name level, and for a
combination search ``compound.subset_penalty`` bits per doubling of the combinations tried.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from engine import normalize as nz
from engine.candidates import _block_ids, window_pairs
from engine.groups import ADJUSTMENT_DTYPE, conform, empty_groups
from engine.scoring import _name_similarity
from models.money import format_minor_expr
from rules.model import RuleSet

#: ledger items dated up to this many days after the bank line may still be in a listed / batch
#: group (an invoice booked a few days after the customer paid it)
GROUP_DAYS_AFTER = 14
#: a day block (a payroll run) is paid on its day or up to this many days later
DAY_BLOCK_LAG_DAYS = 3
#: a day block of at least this many items is strong evidence; smaller ones are weak
DAY_BLOCK_STRONG_ITEMS = 5
#: at most this many bits for a day block's exact total (below a referenced batch)
DAY_BLOCK_MAX_BITS = 11.0
#: bits off a day block of fewer than DAY_BLOCK_STRONG_ITEMS items
DAY_BLOCK_SMALL_PENALTY = 4.0
#: the most bits an exact total of several items can give
MAX_EXACT_TOTAL_BITS = 20.0
#: a reference-less combination uses the items of ledger names at least this similar
MIN_PAYER_SIMILARITY = 70.0
#: a combination search uses the ledger names at most this much less similar than the best one
PAYER_SIMILARITY_SPREAD = 5.0
#: a line one item of a payer this similar pays exactly is a one-to-one: no combination search
SAME_PAYER_SIMILARITY = 95.0
#: a quoted item whose payer name is at most this similar (same script) is not the payer's
UNRELATED_SIMILARITY = 50.0
#: a ledger reference quoted in full in the bank text has at least this many letters and digits
FULL_REF_MIN_CHARS = 6
#: a batch reference: letters then digits (separators allowed), at least this many characters
BATCH_KEY_MIN_CHARS = 6

_BATCH_TOKEN = r"[a-z]{1,6}[0-9][0-9/\-]*[0-9]"
_YEAR_PREFIX = r"(^|[^0-9])(?:19|20)[0-9]{2}([ /\-][0-9]{3,})"
_MEMBER = pl.List(pl.UInt32)


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _exact_total_bits(total_abs: pl.Expr, floor: float) -> pl.Expr:
    """Bits of an exact total: log2(amount / its roundness), between ``floor`` and
    :data:`MAX_EXACT_TOTAL_BITS`. 1508944 (HKD 15,089.44) -> ~20.5 -> 20; 2000000 -> log2(2)."""
    grain = pl.lit(1, dtype=pl.Int64)
    for power in range(1, 7):
        step = 10**power
        grain = pl.when((total_abs % step) == 0).then(pl.lit(step, dtype=pl.Int64)).otherwise(grain)
    ratio = (total_abs // grain).cast(pl.Float64).clip(lower_bound=1.0)
    return ratio.log(2).clip(floor, MAX_EXACT_TOTAL_BITS)


def _tolerance(amount_abs: pl.Expr, currency: pl.Expr, rules: RuleSet, currencies: list[str]) -> pl.Expr:
    expr = pl.lit(0, dtype=pl.Int64)
    for code in currencies:
        abs_minor, num, den, max_minor = rules.amount.minor(code)
        band = pl.min_horizontal(
            pl.max_horizontal(amount_abs * num // den, pl.lit(abs_minor, dtype=pl.Int64)),
            pl.lit(max_minor, dtype=pl.Int64),
        )
        expr = pl.when(currency == code).then(band).otherwise(expr)
    return expr


def _bank_charge_max(currency: pl.Expr, rules: RuleSet, currencies: list[str]) -> pl.Expr:
    from models.money import currency_exponent

    expr = pl.lit(0, dtype=pl.Int64)
    for code in currencies:
        limit = int(rules.adjustments.bank_charge_max * (10 ** currency_exponent(code)))
        expr = pl.when(currency == code).then(pl.lit(limit, dtype=pl.Int64)).otherwise(expr)
    return expr


def _first_words(name: pl.Expr, n: int, last: bool = False) -> pl.Expr:
    words = name.str.split(" ")
    part = words.list.tail(n) if last else words.list.head(n)
    return pl.when(words.list.len() >= n).then(part.list.join(" "))


class _NameSimilarity:
    """Similarity (0-100) of (bank name, ledger name) pairs, each distinct pair worked out once
    per run whichever generator asks first; equal names are 100 without a comparison.

    Pairs are keyed by one 64-bit hash of the two names (joins on one integer, not two strings).
    """

    def __init__(self) -> None:
        self.known = pl.DataFrame(schema={"pair": pl.UInt64, "similarity": pl.Float64})

    @staticmethod
    def _pair(bank: str, ledger: str) -> pl.Expr:
        return pl.struct(b=pl.col(bank).fill_null(""), l=pl.col(ledger).fill_null("")).hash(seed=7)

    def of(self, df: pl.DataFrame, bank: str = "name_key", ledger: str = "name_l") -> pl.DataFrame:
        """``df`` with a ``similarity`` column for its ``bank`` and ``ledger`` name columns."""
        df = df.with_columns(_pair=self._pair(bank, ledger))
        new = (
            df.filter(pl.col(bank) != pl.col(ledger))
            .select("_pair", name_bank=bank, name_ledger=ledger)
            .unique("_pair")
            .join(self.known, left_on="_pair", right_on="pair", how="anti")
        )
        if new.height:
            sim = _name_similarity(new["name_bank"], new["name_ledger"])
            self.known = pl.concat([
                self.known, pl.DataFrame({"pair": new["_pair"], "similarity": pl.Series(sim, dtype=pl.Float64)}),
            ])
        return (
            df.join(self.known, left_on="_pair", right_on="pair", how="left")
            .with_columns(similarity=pl.when(pl.col(bank) == pl.col(ledger)).then(pl.lit(100.0))
                          .otherwise(pl.col("similarity")))
            .drop("_pair")
        )


def _plainly_other(df: pl.DataFrame, sims: _NameSimilarity) -> pl.DataFrame:
    """``df`` (name_key, name_script, name_l, script_l) without the rows whose names are in one
    script and plainly different (similarity at most :data:`UNRELATED_SIMILARITY`)."""
    both_named = (pl.col("name_key").fill_null("") != "") & (pl.col("name_l").fill_null("") != "")
    check = both_named & (pl.col("name_script") == pl.col("script_l")) & (pl.col("name_key") != pl.col("name_l"))
    df = df.with_row_index("_row")
    mask = df.select(check.fill_null(False)).to_series()
    checked = sims.of(df.filter(mask).select("_row", "name_key", "name_l"))
    other = checked.filter(pl.col("similarity") <= UNRELATED_SIMILARITY).select("_row")
    return df.join(other, on="_row", how="anti").drop("_row")


def _payer_names(lines: pl.DataFrame, ledger_names: pl.Series, sims: _NameSimilarity) -> pl.DataFrame:
    """Ledger name keys that may be the same payer as a bank name key: equal, or sharing the
    first or last two words (a name cut short, an English first name added), similarity at least
    :data:`MIN_PAYER_SIMILARITY`. ``lines`` has ``name_key`` and ``exact`` (the name is also a
    ledger name: then that name only). Columns name_bank, name_ledger, similarity."""
    b = lines.select(name_bank="name_key", exact="exact").filter(pl.col("name_bank").fill_null("") != "").unique()
    led = pl.DataFrame({"name_ledger": ledger_names}).filter(pl.col("name_ledger").fill_null("") != "").unique()
    equal = b.filter("exact").select("name_bank", name_ledger="name_bank", similarity=pl.lit(100.0))
    fuzzy = b.filter(~pl.col("exact"))
    keyed_b = fuzzy.with_columns(k1=_first_words(pl.col("name_bank"), 2),
                                 k2=_first_words(pl.col("name_bank"), 2, last=True))
    keyed_l = led.with_columns(k1=_first_words(pl.col("name_ledger"), 2),
                               k2=_first_words(pl.col("name_ledger"), 2, last=True))
    parts = [
        keyed_b.select("name_bank", k=pl.col(k)).drop_nulls("k").join(
            keyed_l.select("name_ledger", k=pl.col(k)).drop_nulls("k"), on="k"
        ).select("name_bank", "name_ledger")
        for k in ("k1", "k2")
    ]
    pairs = pl.concat(parts).unique()
    if pairs.height == 0:
        return equal
    # the nearest names only: another company sharing two words of the name is someone else;
    # a ledger name equal to the bank's is the payer (above), and names merely as similar
    # (siu man kwan and siu man siu) are others
    near = sims.of(pairs, "name_bank", "name_ledger").filter(
        (pl.col("similarity") >= MIN_PAYER_SIMILARITY)
        & (pl.col("similarity") >= pl.col("similarity").max().over("name_bank") - PAYER_SIMILARITY_SPREAD)
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


def _bank_keys(pb: pl.DataFrame, min_keys: int, *cols: str) -> pl.DataFrame:
    """One row per (bank line, number quoted in its text) for lines quoting at least
    ``min_keys`` numbers; a year that only prefixes a reference (the 2026 of INV-2026-00123,
    inv 2026 00123) is no number of its own."""
    lines = pb.filter(pl.col("ref_keys").list.len() >= min_keys)
    prefix = _year_prefix(lines)
    if prefix is not None:
        # the text is read again only where a year prefixes a number
        prefixed = pl.col("bank_text").str.contains(prefix)
        lines = pl.concat([
            lines.filter(~prefixed),
            lines.filter(prefixed).with_columns(
                ref_keys=nz.text_reference_keys(pl.col("bank_text").str.replace_all(prefix, "${1}${2}"))),
        ])
    return (
        lines.select("bank_idx", *cols, key="ref_keys")
        .explode("key").drop_nulls("key")
    )


def _key_hits(pb: pl.DataFrame, pl_: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """One row per (bank line, number quoted in its text, ledger item with that serial) of the
    same currency and sign, the item dated within the widest window a generator uses (listed,
    instalments and the quoting check each narrow it). Joined on the number alone (one Int64)."""
    cmp = rules.compound
    before = max(rules.candidates.reference_window_days, cmp.instalment_window_days)
    after = max(GROUP_DAYS_AFTER, rules.candidates.reference_window_days, rules.window_for("invoice").before)
    keys = _bank_keys(pb.with_columns(nkeys=pl.col("ref_keys").list.len()), 1,
                      "currency", "day", "amount_minor", "name_key", "name_script", "nkeys")
    led = pl_.filter(pl.col("ref_serial").is_not_null() & (pl.col("amount_minor") != 0)).select(
        "ledger_idx", "type_norm", key="ref_serial", currency_l="currency", a_l="amount_minor", day_l="day",
        name_l="name_key", script_l="name_script", doc_ref="doc_ref",
    )
    return (
        keys.join(led, on="key")
        .filter(
            (pl.col("currency") == pl.col("currency_l"))
            & (pl.col("a_l").sign() == pl.col("amount_minor").sign())
            & pl.col("day_l").is_between(pl.col("day") - before, pl.col("day") + after)
        )
        .drop("currency_l")
    )


def _quotes_in_full(hits: pl.DataFrame, pb: pl.DataFrame) -> pl.DataFrame:
    """``hits`` + ``full_text`` (the item's whole reference, letters and digits only, is in the
    bank text) and ``ref_alnum``."""
    text = pb.filter(pl.col("bank_idx").is_in(hits["bank_idx"].unique().implode())).select(
        "bank_idx", _text=_alnum(pl.col("bank_text")))
    return (
        hits.with_columns(ref_alnum=_alnum(pl.col("doc_ref")))
        .join(text, on="bank_idx", how="left")
        .with_columns(full_text=pl.col("_text").str.contains(pl.col("ref_alnum"), literal=True))
        .drop("_text")
    )


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

    ``block`` has ``bank_idx``, ``target`` (> 0), ``ledger_idx``, ``a`` (the item's amount,
    > 0, same sign as the target) and ``pos`` (0.. within the bank line). Combinations of half
    the size are built by joins on the bank line (positions increasing, so each set once) and a
    left half is joined with a right half on the remaining amount. Returns ``bank_idx``,
    ``members`` (list of ledger_idx in position order).
    """
    out_schema = {"bank_idx": pl.UInt32, "members": _MEMBER}
    if block.height == 0 or max_size < min_size:
        return pl.DataFrame(schema=out_schema)
    items = block.select("bank_idx", "target", "ledger_idx", "a", "pos")
    combos = {
        1: items.select(
            "bank_idx", "target", first="pos", last="pos", s="a",
            m=pl.concat_list(pl.col("ledger_idx").cast(pl.UInt32)),
        )
    }
    half = max_size - max_size // 2
    right = items.select("bank_idx", p2="pos", a2="a", l2=pl.col("ledger_idx").cast(pl.UInt32))
    for k in range(2, half + 1):
        combos[k] = (
            combos[k - 1].join(right, on="bank_idx")
            .filter((pl.col("p2") > pl.col("last")) & (pl.col("s") + pl.col("a2") < pl.col("target")))
            .select("bank_idx", "target", "first", last="p2", s=pl.col("s") + pl.col("a2"),
                    m=pl.concat_list("m", "l2"))
        )
    found = []
    for size in range(max(min_size, 2), max_size + 1):
        a, b = size - size // 2, size // 2
        left = combos[a].with_columns(need=pl.col("target") - pl.col("s"))
        rhs = combos[b].select("bank_idx", need="s", first_r="first", m_r="m")
        hit = left.join(rhs, on=["bank_idx", "need"]).filter(pl.col("last") < pl.col("first_r"))
        found.append(hit.select("bank_idx", members=pl.concat_list("m", "m_r")))
    return pl.concat(found).with_columns(pl.col("bank_idx").cast(pl.UInt32), pl.col("members").cast(_MEMBER))


# --------------------------------------------------------------------------------------------
# generators: each returns rows kind, bank_idx, ledger_idx, base (bits without the name),
# how (words), exact_only (bool)
# --------------------------------------------------------------------------------------------

_RAW = {
    "kind": pl.Utf8, "bank_idx": _MEMBER, "ledger_idx": _MEMBER, "base": pl.Float64,
    "how": pl.Utf8, "exact_only": pl.Boolean, "cap": pl.Float64, "own_name": pl.Boolean,
}


def _raw(df: pl.DataFrame, cap: float = MAX_EXACT_TOTAL_BITS) -> pl.DataFrame:
    """Raw group rows; ``cap`` = the most bits an exact total gives this kind of group."""
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


def _one_bank(bank_idx: pl.Expr) -> pl.Expr:
    return pl.concat_list(bank_idx.cast(pl.UInt32))


def _listed(pb: pl.DataFrame, hits: pl.DataFrame, rules: RuleSet, sims: _NameSimilarity) -> pl.DataFrame:
    """Items quoted by number in the bank text (two or more): all of them, or combinations.

    ``hits`` are the (line, number, item) rows of :func:`_key_hits`: the document's own number
    only, as other numbers in its text (a yymm prefix shared by many supplier references) would
    make quoted numbers ambiguous."""
    cmp = rules.compound
    quoted = hits.filter(
        (pl.col("nkeys") >= 2)
        & pl.col("day_l").is_between(pl.col("day") - rules.candidates.reference_window_days,
                                     pl.col("day") + GROUP_DAYS_AFTER)
    )
    if quoted.height == 0:
        return _raw(pl.DataFrame())
    # one row per (line, item) with the numbers that named it; grouped on one packed integer
    pair = pl.col("bank_idx").cast(pl.UInt64) * (1 << 32) + pl.col("ledger_idx").cast(pl.UInt64)
    first = (
        quoted.with_row_index("_row").group_by(pair.alias("_pair"))
        .agg(pl.col("_row").first(), keys=pl.col("key").unique()).sort("_row")
    )
    quoted = _quotes_in_full(
        quoted.drop("key").gather(first["_row"]).with_columns(keys=first["keys"]), pb
    ).with_columns(
        # the whole reference in the text (2534-1625, not only a 1625 many bills share)
        full=(pl.col("ref_alnum").str.len_chars() >= FULL_REF_MIN_CHARS) & pl.col("full_text"),
    )
    # not another payer's item: a same-script name that is plainly different rules it out
    quoted = _plainly_other(quoted, sims)
    # A short number may also be the serial of documents of other types (#BK1164 beside
    # INV-2026-01164): one search per (line, item type). A type whose items are named by every
    # number that named anything is a complete reading of the text.
    typed = ["bank_idx", "type_norm"]
    per_key = quoted.select("bank_idx", "type_norm", key="keys").explode("key")
    line_keys = per_key.group_by("bank_idx").agg(line_keys=pl.col("key").n_unique())
    coverage = (
        per_key.group_by("bank_idx", "type_norm", "key").agg(named=pl.len())
        # a number naming two items of one type (INV-2026-00681 and INV-2025-00681) is ambiguous
        .group_by(typed).agg(ambiguous=pl.col("named").max() > 1, type_keys=pl.len())
        .join(line_keys, on="bank_idx")
        .with_columns(complete=pl.col("type_keys") == pl.col("line_keys"))
        .with_columns(sole=pl.col("complete").sum().over("bank_idx") == 1)
        .drop("type_keys", "line_keys")
    )
    quoted = (
        quoted.join(coverage, on=typed)
        .with_columns(n=pl.len().over(typed), n_line=pl.len().over("bank_idx"))
        .filter((pl.col("n") >= 2) & (pl.col("n") <= cmp.max_group_items))
    )
    if quoted.height == 0:
        return _raw(pl.DataFrame())
    w = rules.weights
    whole = (
        quoted.filter(~pl.col("ambiguous"))
        .group_by(typed)
        .agg(pl.col("ledger_idx").sort().cast(pl.UInt32), exact=~(pl.col("complete") & pl.col("sole")).first())
        .select(
            kind=pl.lit("one_to_many"), bank_idx=_one_bank(pl.col("bank_idx")), ledger_idx="ledger_idx",
            base=pl.lit(w.prior + w.reference.full),
            how=pl.lit("pays the ") + pl.col("ledger_idx").list.len().cast(pl.Utf8) + pl.lit(" items quoted in the bank text"),
            exact_only="exact",
        )
    )
    # the items of one type whose whole references the text quotes, when a number alone is
    # ambiguous or shared with other payers' documents
    fully = (
        quoted.filter(pl.col("full"))
        .with_columns(nf=pl.len().over(typed))
        .filter((pl.col("nf") >= 2) & (pl.col("nf") < pl.col("n")) | (pl.col("nf") >= 2) & pl.col("ambiguous"))
        .group_by(typed).agg(pl.col("ledger_idx").sort().cast(pl.UInt32))
        .with_columns(sole=pl.len().over("bank_idx") == 1)
        .select(
            kind=pl.lit("one_to_many"), bank_idx=_one_bank(pl.col("bank_idx")), ledger_idx="ledger_idx",
            base=pl.lit(w.prior + w.reference.full),
            how=pl.lit("pays the ") + pl.col("ledger_idx").list.len().cast(pl.Utf8)
            + pl.lit(" items whose references the bank text quotes in full"),
            exact_only=~pl.col("sole"),
        )
    )
    # a quoted number may also be another document's (a year, a cheque number): combinations of
    # the quoted items of one type that total the payment exactly, and of all the line's items
    # when they are few
    target = dict(target=pl.col("amount_minor").abs(), a=pl.col("a_l").abs())
    searches = pl.concat([
        quoted.filter(pl.col("n") <= cmp.max_block_items).with_columns(search=pl.col("type_norm")),
        quoted.filter((pl.col("n_line") <= cmp.max_block_items) & (pl.col("n_line") > pl.col("n")))
        .unique(["bank_idx", "ledger_idx"]).with_columns(search=pl.lit("*")),
    ]).with_columns(**target).filter(pl.col("a") < pl.col("target"))
    searches = searches.with_columns(
        sid=pl.struct("bank_idx", "search").rank("dense").cast(pl.Int64),
    ).with_columns(
        pos=pl.col("ledger_idx").rank("ordinal").over("sid") - 1, k=pl.len().over("sid"),
    ).filter(pl.col("k") >= 2)
    max_k = int(searches["k"].max() or 2)
    subsets = _exact_subsets(searches.drop("bank_idx").rename({"sid": "bank_idx"}), 2,
                             min(cmp.max_subset_size, max(2, max_k)))
    tried = searches.group_by("sid").agg(pl.col("bank_idx", "k").first())
    part = (
        subsets.rename({"bank_idx": "sid"}).with_columns(pl.col("sid").cast(pl.Int64), pl.col("members").list.sort())
        .join(tried, on="sid")
        # the same combination from a type's search and the line's: once, from the smaller search
        .sort("k").unique(["bank_idx", "members"], keep="first")
        .with_columns(fits=pl.len().over("bank_idx"))
        .select(
            kind=pl.lit("one_to_many"), bank_idx=_one_bank(pl.col("bank_idx")),
            ledger_idx=pl.col("members").list.sort(),
            base=w.prior + w.reference.full
            - cmp.subset_penalty * _combinations_tried(pl.col("k"), cmp.max_subset_size).log(2)
            + pl.when(pl.col("fits") == 1).then(pl.lit(w.unique_amount)).otherwise(pl.lit(w.competing_amount)),
            how=pl.lit("pays ") + pl.col("members").list.len().cast(pl.Utf8)
            + pl.lit(" of the items quoted in the bank text (a combination of ")
            + pl.col("k").cast(pl.Utf8) + pl.lit(")"),
            exact_only=pl.lit(True),
        )
    )
    return pl.concat([_raw(whole), _raw(fully), _raw(part)])


def _batch_tokens(text: pl.Expr) -> pl.Expr:
    """Letter+digit references in normalised text, separators removed (``pb2610-001`` ->
    ``pb2610001``)."""
    return text.str.to_lowercase().str.extract_all(_BATCH_TOKEN).list.eval(
        pl.element().str.replace_all(r"[/\-]", "").filter(pl.element().str.len_chars() >= BATCH_KEY_MIN_CHARS)
    ).list.unique()


def _batches(pb: pl.DataFrame, pl_: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """All items sharing a reference the bank text quotes (a payroll or supplier batch)."""
    cmp = rules.compound
    text = pl.concat_str([pl.col("description").fill_null(""), pl.col("reference").fill_null("")], separator=" ")
    ledger_tokens = (
        pl_.select("ledger_idx", "currency", "amount_minor", "day", key=_batch_tokens(text))
        .explode("key").drop_nulls("key").unique(["ledger_idx", "key"])
        .with_columns(sign=pl.col("amount_minor").sign())
    )
    blocks = (
        ledger_tokens.group_by("currency", "sign", "key")
        .agg(pl.col("ledger_idx").sort().cast(pl.UInt32), total=pl.col("amount_minor").sum(),
             first_day=pl.col("day").min(), last_day=pl.col("day").max(), n=pl.len())
        .filter((pl.col("n") >= 2) & (pl.col("n") <= cmp.max_group_items))
    )
    if blocks.height == 0:
        return _raw(pl.DataFrame())
    bank_tokens = (
        pb.select("bank_idx", "currency", "day", "amount_minor", key=_batch_tokens(pl.col("bank_text")))
        .explode("key").drop_nulls("key").with_columns(sign=pl.col("amount_minor").sign())
    )
    w = rules.weights
    hits = bank_tokens.join(blocks, on=["currency", "sign", "key"]).filter(
        (pl.col("first_day") >= pl.col("day") - cmp.block_window_days)
        & (pl.col("last_day") <= pl.col("day") + GROUP_DAYS_AFTER)
    )
    return _raw(hits.select(
        kind=pl.lit("one_to_many"), bank_idx=_one_bank(pl.col("bank_idx")), ledger_idx="ledger_idx",
        base=pl.lit(w.prior + w.reference.full),
        how=pl.lit("pays the ") + pl.col("n").cast(pl.Utf8) + pl.lit(" items of batch ")
        + pl.col("key").str.to_uppercase() + pl.lit(" quoted in the bank text"),
        exact_only=pl.lit(False),
    ))


def _day_blocks(pb: pl.DataFrame, pl_: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """A day's items of one type and description (references removed) whose total equals a
    bank line paid that day or up to DAY_BLOCK_LAG_DAYS later (a payroll run)."""
    cmp = rules.compound
    desc = (
        pl.col("description").fill_null("").str.to_lowercase()
        .str.replace_all(r"\S*[0-9]\S*", " ").str.replace_all(r"[^\p{L}]+", " ").str.strip_chars()
    )
    blocks = (
        pl_.with_columns(sign=pl.col("amount_minor").sign(), desc=desc)
        .filter(pl.col("sign") != 0)
        .group_by("currency", "sign", "type_norm", "desc", "day")
        .agg(pl.col("ledger_idx").sort().cast(pl.UInt32), total=pl.col("amount_minor").sum(), n=pl.len(),
             payees=pl.col("name_key").n_unique())
        .filter((pl.col("n") >= 2) & (pl.col("n") <= cmp.max_group_items))
    )
    if blocks.height == 0:
        return _raw(pl.DataFrame())
    w = rules.weights
    hits = (
        pb.select("bank_idx", "currency", day_b="day", total="amount_minor",
                  # a name the books know (a supplier's) is a payer name; a leftover word is not
                  named=pl.col("name_key").is_in(pl_["name_key"].drop_nulls().unique().implode()))
        .join(blocks, on=["currency", "total"])
        .filter(pl.col("day_b").is_between(pl.col("day"), pl.col("day") + DAY_BLOCK_LAG_DAYS))
    )
    return _raw(hits.select(
        kind=pl.lit("one_to_many"), bank_idx=_one_bank(pl.col("bank_idx")), ledger_idx="ledger_idx",
        base=w.prior
        - pl.when(pl.col("n") < DAY_BLOCK_STRONG_ITEMS).then(pl.lit(DAY_BLOCK_SMALL_PENALTY)).otherwise(pl.lit(0.0)),
        how=pl.lit("pays all ") + pl.col("n").cast(pl.Utf8) + pl.lit(" '")
        + pl.when(pl.col("desc") != "").then(pl.col("desc")).otherwise(pl.col("type_norm"))
        + pl.lit("' items booked on one day"),
        exact_only=pl.lit(True),
        # one payment out to several people (a payroll run) whose text names no one the books
        # know: the people's names are not the payer's
        own_name=(pl.col("payees") <= 1) | (pl.col("sign") > 0) | pl.col("named"),
    ), cap=DAY_BLOCK_MAX_BITS)


def _quoting(hits: pl.DataFrame, rules: RuleSet, sims: _NameSimilarity) -> tuple[pl.Series, pl.Series]:
    """Bank lines quoting the number of an item of the same currency and sign (``hits``,
    :func:`_key_hits`; theirs is a reference match, not a combination search), and the items
    such a line pays exactly on its own (settled: no combination needs them; elimination)."""
    hits = hits.filter((pl.col("day_l") - pl.col("day")).abs() <= rules.candidates.reference_window_days)
    # a number that is another payer's serial (a cheque number equal to someone's invoice
    # number) quotes nothing: the line still needs its combination search. Names are compared
    # only where that decides something: lines with no hit that is plainly theirs, and items
    # paid exactly.
    checkable = (
        (pl.col("name_key").fill_null("") != "") & (pl.col("name_l").fill_null("") != "")
        & (pl.col("name_script") == pl.col("script_l")) & (pl.col("name_key") != pl.col("name_l"))
    ).fill_null(False)
    paid = pl.col("a_l") == pl.col("amount_minor")
    unchecked = hits.filter(~checkable)
    sure = unchecked["bank_idx"].unique().implode()
    kept = _plainly_other(hits.filter(checkable & (~pl.col("bank_idx").is_in(sure) | paid)), sims)
    lines = pl.concat([unchecked["bank_idx"], kept["bank_idx"]]).unique().cast(pl.UInt32)
    settled = pl.concat([unchecked.filter(paid)["ledger_idx"], kept.filter(paid)["ledger_idx"]])
    return lines, settled.unique().cast(pl.UInt32)


def _pays_one(lines: pl.DataFrame, pl_: pl.DataFrame, names: pl.DataFrame, rules: RuleSet,
              sims: _NameSimilarity) -> pl.DataFrame:
    """(bank_idx, ledger_idx) where one item of the payer (an equal name when ``exact``, else a
    ledger name in ``names`` sharing the first or last two words and at least
    :data:`SAME_PAYER_SIMILARITY` similar) pays the line exactly, dated within the block window.
    Joined on one 64-bit hash of (name or two words, currency, amount)."""
    cmp = rules.compound
    led = pl_.select("ledger_idx", "currency", "amount_minor", day_l="day", name_l="name_key").join(
        names, left_on="name_l", right_on="name_ledger")

    def key(word: str) -> pl.Expr:
        return pl.struct(k=pl.col(word), c=pl.col("currency"), a=pl.col("amount_minor")).hash(seed=11)

    exact = lines.filter("exact").select("bank_idx", "day", "name_key", _k=key("name_key"))
    parts = [exact.join(led.select("ledger_idx", "day_l", "name_l", _k=key("name_l")), on="_k")]
    fuzzy = lines.filter(~pl.col("exact"))
    for k in ("k1", "k2"):
        left = fuzzy.with_columns(_w=_first_words(pl.col("name_key"), 2, last=k == "k2")).drop_nulls("_w")
        right = led.drop_nulls(k)
        parts.append(left.select("bank_idx", "day", "name_key", _k=key("_w")).join(
            right.select("ledger_idx", "day_l", "name_l", _k=key(k)), on="_k"))
    pairs = (
        pl.concat(parts)
        .filter(pl.col("day_l").is_between(pl.col("day") - cmp.block_window_days, pl.col("day") + GROUP_DAYS_AFTER))
        .unique(["bank_idx", "ledger_idx"])
    )
    return sims.of(pairs).filter(
        (pl.col("name_key") == pl.col("name_l")) | (pl.col("similarity") >= SAME_PAYER_SIMILARITY)
    ).select("bank_idx", "ledger_idx")


def _subsets(pb: pl.DataFrame, pl_: pl.DataFrame, rules: RuleSet, skip: pl.Series,
             claimed: pl.Series, sims: _NameSimilarity) -> pl.DataFrame:
    """Combinations of one payer's open items of one type totalling a bank line that quotes
    none of them; items ``claimed`` elsewhere are left out."""
    cmp = rules.compound
    w = rules.weights
    lines = pb.filter(
        (pl.col("name_key").fill_null("") != "") & (pl.col("amount_minor") != 0)
        & ~pl.col("bank_idx").is_in(skip.implode())
    ).select("bank_idx", "currency", "day", "amount_minor", "name_key")
    ledger = pl_.filter(
        (pl.col("name_key").fill_null("") != "") & (pl.col("amount_minor") != 0)
        & ~pl.col("ledger_idx").is_in(claimed.implode())
    ).select("ledger_idx", "currency", "day", "amount_minor", "name_key", "type_norm")
    if lines.height == 0 or ledger.height == 0:
        return _raw(pl.DataFrame())
    ledger_names = ledger.select(name_ledger="name_key").unique().with_columns(
        k1=_first_words(pl.col("name_ledger"), 2), k2=_first_words(pl.col("name_ledger"), 2, last=True))
    lines = lines.with_columns(exact=pl.col("name_key").is_in(ledger_names["name_ledger"].implode()))
    # a line one item of the payer pays exactly (any date in the window) is a one-to-one
    pairs = _pays_one(lines, pl_, ledger_names, rules, sims)
    lines = lines.filter(~pl.col("bank_idx").is_in(pairs["bank_idx"].implode()))
    names = _payer_names(lines, ledger_names["name_ledger"], sims)
    # elimination: an item that one such line, and only it, pays exactly (and that line no other
    # item) is that line's; the payer's combinations need it no more
    settled = pairs.filter((pl.len().over("bank_idx") == 1) & (pl.len().over("ledger_idx") == 1))["ledger_idx"]
    ledger = ledger.filter(~pl.col("ledger_idx").is_in(settled.implode()))
    kinds = ledger.select("name_key", "currency", "type_norm", sign=pl.col("amount_minor").sign()).unique()
    # one row per (line, payer name, item type)
    links = (
        lines.with_columns(sign=pl.col("amount_minor").sign())
        .join(names, left_on="name_key", right_on="name_bank")
        .join(kinds, left_on=["name_ledger", "currency", "sign"], right_on=["name_key", "currency", "sign"])
    )
    if links.height == 0:
        return _raw(pl.DataFrame())
    bb, lb = _block_ids(
        links.select("name_ledger", "currency", "type_norm", sign=pl.col("amount_minor").sign()),
        ledger.select(name_ledger="name_key", currency="currency", type_norm="type_norm",
                      sign=pl.col("amount_minor").sign()),
    )
    offset = 1 << 20
    li, ri = window_pairs(
        bb, links["day"].cast(pl.Int64).to_numpy() + offset, lb, ledger["day"].cast(pl.Int64).to_numpy() + offset,
        cmp.block_window_days, 0, cmp.max_block_items, 1 << 21,
    )
    block = pl.DataFrame({
        "bank_idx": links["bank_idx"].to_numpy()[li],
        "type_norm": links["type_norm"].gather(li),
        "ledger_idx": ledger["ledger_idx"].to_numpy()[ri],
        "amount_minor": links["amount_minor"].to_numpy()[li],
        "a_l": ledger["amount_minor"].to_numpy()[ri],
        "gap": links["day"].to_numpy()[li] - ledger["day"].to_numpy()[ri],
    }).unique(["bank_idx", "ledger_idx"])
    block = block.with_columns(target=pl.col("amount_minor").abs(), a=pl.col("a_l").abs())
    # a line an item of the payer pays exactly is a one-to-one; others need at least two items
    # smaller than the payment, together reaching it. One search per (line, item type).
    search = ["bank_idx", "type_norm"]
    block = (
        block.filter(pl.col("a") < pl.col("target"))
        .with_columns(near=pl.col("gap").rank("ordinal").over(search))
        .filter(pl.col("near") <= cmp.max_block_items)
        .with_columns(k=pl.len().over(search), reach=pl.col("a").sum().over(search))
        .filter((pl.col("k") >= 2) & (pl.col("reach") >= pl.col("target")))
        .with_columns(pos=pl.col("near") - 1, sid=pl.struct(search).rank("dense").cast(pl.Int64))
    )
    if block.height == 0:
        return _raw(pl.DataFrame())
    searches = (
        block.group_by("sid").agg(pl.col("bank_idx", "k").first())
        .with_columns(combos=_combinations_tried(pl.col("k"), cmp.max_subset_size))
        .with_columns(combos=pl.col("combos").sum().over("bank_idx"))
    )
    found = _exact_subsets(block.drop("bank_idx").rename({"sid": "bank_idx"}), 2, cmp.max_subset_size)
    found = found.rename({"bank_idx": "sid"}).with_columns(pl.col("sid").cast(pl.Int64)).join(searches, on="sid")
    return _raw(
        found.with_columns(fits=pl.len().over("bank_idx"))
        .select(
            kind=pl.lit("one_to_many"), bank_idx=_one_bank(pl.col("bank_idx")),
            ledger_idx=pl.col("members").list.sort(),
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


def _instalments(pb: pl.DataFrame, hits: pl.DataFrame, rules: RuleSet, sims: _NameSimilarity) -> pl.DataFrame:
    """Two or more bank lines quoting one item's number (``hits``, :func:`_key_hits`), each less
    than it, paying it in full or in part (never more)."""
    cmp = rules.compound
    w = rules.weights
    pairs = hits.filter(
        (pl.col("amount_minor").abs() < pl.col("a_l").abs())
        & pl.col("day").is_between(pl.col("day_l") - rules.window_for("invoice").before,
                                   pl.col("day_l") + cmp.instalment_window_days)
    ).unique(["bank_idx", "ledger_idx"], keep="first", maintain_order=True)
    if pairs.height == 0:
        return _raw(pl.DataFrame())
    # an item only one line quotes needs no name check: it makes no group either way
    pairs = _plainly_other(pairs.filter(pl.len().over("ledger_idx") >= 2), sims)
    pairs = pairs.with_columns(
        near=(pl.col("day") - pl.col("day_l")).abs().rank("ordinal").over("ledger_idx"),
    ).filter(pl.col("near") <= cmp.max_instalments)
    pairs = pairs.with_columns(n=pl.len().over("ledger_idx")).filter(pl.col("n") >= 2).with_columns(
        pos=(pl.col("near") - 1).cast(pl.Int64)
    )
    pairs = _quotes_in_full(pairs, pb).rename({"full_text": "full"})
    if pairs.height == 0:
        return _raw(pl.DataFrame())
    # every subset of at most max_instalments lines, by bit mask
    n_max = int(pairs["n"].max())
    mask = np.arange(1, 1 << n_max, dtype=np.int64)
    bits = sum((mask >> i) & 1 for i in range(n_max))
    masks = pl.DataFrame({"mask": mask[bits >= 2]})
    items = pairs.group_by("ledger_idx").agg(
        n=pl.len(), a_l=pl.col("a_l").first(),
        members=pl.struct("pos", "bank_idx", "amount_minor", "full"),
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
            pl.col("ledger_idx", "a_l", "n", "mask").first(), pl.col("bank_idx"),
            paid=pl.col("amount_minor").sum(), all_full=pl.col("full").all(),
        )
        .filter(pl.col("paid").abs() <= pl.col("a_l").abs())
        .with_columns(whole=pl.col("mask") == pl.lit(2, dtype=pl.Int64).pow(pl.col("n")) - 1,
                      in_full=pl.col("paid") == pl.col("a_l"))
        .filter(pl.col("in_full") | pl.col("whole"))
    )
    ref_bits = pl.when(pl.col("all_full")).then(pl.lit(w.reference.full)).otherwise(pl.lit(w.reference.serial))
    return _raw(subsets.select(
        kind=pl.lit("many_to_one"),
        bank_idx=pl.col("bank_idx").list.sort(),
        ledger_idx=pl.concat_list(pl.col("ledger_idx").cast(pl.UInt32)),
        base=w.prior + ref_bits,
        how=pl.col("bank_idx").list.len().cast(pl.Utf8) + pl.lit(" payments quoting the item's number"),
        exact_only=pl.lit(False),
    ), cap=w.amount.exact)


# --------------------------------------------------------------------------------------------
# assembly
# --------------------------------------------------------------------------------------------


def _finish(raw: pl.DataFrame, pb: pl.DataFrame, pl_: pl.DataFrame, rules: RuleSet,
            sims: _NameSimilarity) -> pl.DataFrame:
    """Totals, adjustment, name evidence, score and evidence text for raw groups."""
    if raw.height == 0:
        return empty_groups()
    w = rules.weights
    raw = (
        raw.with_columns(pl.col("bank_idx").list.sort(), pl.col("ledger_idx").list.sort())
        .sort("base", descending=True)
        .unique(["kind", "bank_idx", "ledger_idx"], keep="first", maintain_order=True)
        .with_row_index("gid")
    )
    bank_side = raw.select("gid", b="bank_idx").explode("b").join(
        pb.select(b="bank_idx", amount_b="amount_minor", currency="currency", name_bank="name_key",
                  script_b="name_script"), on="b")
    ledger_side = raw.select("gid", l="ledger_idx").explode("l").join(
        pl_.select(l="ledger_idx", amount_l="amount_minor", currency_l="currency", doc_ref="doc_ref",
                   name_ledger="name_key", script_l="name_script"), on="l")
    totals_b = bank_side.group_by("gid").agg(
        bank_total=pl.col("amount_b").sum(), currency=pl.col("currency").first(),
        n_currency=pl.col("currency").n_unique(),
    )
    totals_l = ledger_side.sort("doc_ref").group_by("gid").agg(
        item_total=pl.col("amount_l").sum(), currency_l=pl.col("currency_l").first(),
        n_currency_l=pl.col("currency_l").n_unique(),
        refs=pl.col("doc_ref").fill_null("?").head(8).str.join(", ")
        + pl.when(pl.len() > 8).then(pl.lit(", ...")).otherwise(pl.lit("")),
    )
    # payer name: the weakest similarity between a bank line and an item of the group
    names = bank_side.select("gid", "name_bank", "script_b").join(
        ledger_side.select("gid", "name_ledger", "script_l"), on="gid"
    ).filter((pl.col("name_bank").fill_null("") != "") & (pl.col("name_ledger").fill_null("") != ""))
    comparable = names.filter(pl.col("script_b") == pl.col("script_l"))
    if comparable.height:
        comparable = sims.of(comparable, "name_bank", "name_ledger")
    else:
        comparable = comparable.with_columns(similarity=pl.lit(None, dtype=pl.Float64))
    name_sim = comparable.group_by("gid").agg(similarity=pl.col("similarity").min())
    scripts = names.group_by("gid").agg(other_script=(pl.col("script_b") != pl.col("script_l")).any())
    several = raw.filter(~pl.col("own_name")).select("gid")
    name_sim = name_sim.join(several, on="gid", how="anti")
    scripts = scripts.join(several, on="gid", how="anti")
    df = (
        raw.join(totals_b, on="gid").join(totals_l, on="gid")
        .join(name_sim, on="gid", how="left").join(scripts, on="gid", how="left")
        .filter((pl.col("n_currency") == 1) & (pl.col("n_currency_l") == 1) & (pl.col("currency") == pl.col("currency_l")))
    )
    if df.height == 0:
        return empty_groups()
    currencies = df["currency"].unique().drop_nulls().to_list()
    diff = pl.col("bank_total") - pl.col("item_total")
    tol = _tolerance(pl.col("item_total").abs(), pl.col("currency"), rules, currencies)
    many_to_one = pl.col("kind") == "many_to_one"
    df = df.with_columns(diff=diff).filter(
        many_to_one | (pl.col("diff") == 0) | (~pl.col("exact_only") & (pl.col("diff").abs() <= tol))
    )
    if df.height == 0:
        return empty_groups()
    # name level
    sim = pl.col("similarity")
    weight = pl.lit(w.name[-1].weight)
    label = pl.lit(w.name[-1].label)
    for level in reversed(w.name):
        weight = pl.when(sim >= level.min_similarity).then(pl.lit(level.weight)).otherwise(weight)
        label = pl.when(sim >= level.min_similarity).then(pl.lit(level.label)).otherwise(label)
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
    fmt = lambda e: cur + pl.lit(" ") + format_minor_expr(e, cur)  # noqa: E731
    exact_bits = _exact_total_bits(pl.col("bank_total").abs(), w.amount.exact)
    amount_bits = (
        pl.when(pl.col("diff") == 0).then(pl.min_horizontal(exact_bits, pl.col("cap")))
        .when(many_to_one).then(pl.lit(0.0))  # paid in part: the open amount is no evidence
        .otherwise(pl.lit(w.amount.within_tolerance))
    )
    open_minor = pl.when(many_to_one & (pl.col("diff") != 0)).then(-pl.col("diff"))
    total_words = (
        pl.when(many_to_one & (pl.col("diff") == 0))
        .then(pl.lit("; total ") + fmt(pl.col("bank_total")) + pl.lit(" pays ") + pl.col("refs") + pl.lit(" in full"))
        .when(many_to_one)
        .then(pl.lit("; ") + fmt(pl.col("bank_total")) + pl.lit(" paid so far of ") + fmt(pl.col("item_total"))
              + pl.lit(" (") + pl.col("refs") + pl.lit("); ") + fmt(-pl.col("diff")) + pl.lit(" still open"))
        .when(pl.col("diff") == 0)
        .then(pl.lit(" (") + pl.col("refs") + pl.lit("); total ") + fmt(pl.col("item_total"))
              + pl.lit(" equals the payment exactly"))
        .otherwise(pl.lit(" (") + pl.col("refs") + pl.lit("); total ") + fmt(pl.col("item_total"))
                   + pl.lit(", payment differs by ") + fmt(pl.col("diff")) + pl.lit(" (") + cause + pl.lit(")"))
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
        review_reason=pl.lit(None, dtype=pl.Utf8),
    )
    return conform(out)


def compound_groups(pb: pl.DataFrame, pl_: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """Candidate groups (:data:`engine.groups.GROUP_SCHEMA`) for one bank line settling several
    ledger items (kind ``one_to_many``) and several bank lines settling one ledger item (kind
    ``many_to_one``).

    Parameters
    ----------
    pb, pl_
        Prepared bank lines and ledger items (:func:`engine.features.prepare_bank` /
        :func:`~engine.features.prepare_ledger`).
    rules
        The rule set (``compound``, ``amount``, ``adjustments`` and ``weights`` sections).

    Returns
    -------
    pl.DataFrame
        One row per candidate group, every fitting alternative included (two combinations with
        the same total are two rows); same currency and sign on both sides; ``bank total ==
        ledger_total + sum(adjustments)`` exactly. A partly paid item (instalments) has
        ``ledger_total`` = the bank total and ``open_minor`` = what is still open.

    Examples
    --------
    >>> groups = compound_groups(prepare_bank(bank), prepare_ledger(ledger, rules), rules)  # doctest: +SKIP
    """
    if pb.height == 0 or pl_.height == 0:
        return empty_groups()
    sims = _NameSimilarity()
    hits = _key_hits(pb, pl_, rules)
    explained = pl.concat([_listed(pb, hits, rules, sims), _batches(pb, pl_, rules), _day_blocks(pb, pl_, rules)])
    instalments = _instalments(pb, hits, rules, sims)
    found = _finish(pl.concat([explained, instalments]), pb, pl_, rules, sims)
    # lines a quoted list or batch explains exactly need no combination search, and the items of
    # an exact group or a line quoting and paying one exactly are no one else's
    exact = found.filter((pl.col("adjustments").list.len() == 0) & pl.col("open_minor").is_null())
    quoting, settled = _quoting(hits, rules, sims)
    skip = pl.concat([exact.filter(pl.col("kind") == "one_to_many")["bank_idx"].explode(), quoting]).unique()
    taken = pl.concat([exact["ledger_idx"].explode(), settled]).unique()
    combos = _finish(_subsets(pb, pl_, rules, skip, taken, sims), pb, pl_, rules, sims)
    groups = pl.concat([found, combos])
    # a line with an exact one-to-many group gets no approximate one
    exact_lines = groups.filter(
        (pl.col("kind") == "one_to_many") & (pl.col("adjustments").list.len() == 0)
    )["bank_idx"].explode().unique()
    approximate = (pl.col("kind") == "one_to_many") & (pl.col("adjustments").list.len() > 0)
    groups = groups.filter(~(approximate & pl.col("bank_idx").list.first().is_in(exact_lines.implode())))
    return (
        groups.sort("score", descending=True)
        .unique(["kind", "bank_idx", "ledger_idx"], keep="first", maintain_order=True)
    )
