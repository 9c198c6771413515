"""Comparison levels (engine stage 3, scoring): which level of each comparison a pair lands in.

A *comparison* (reference, amount, name, date, window, uniqueness) is an ordered list of
:class:`ComparisonLevel` objects, as Splink's comparisons are: the first level whose condition a
pair meets is the pair's level. A level keeps together

- its **condition** over the pair's measurements (:class:`engine.scoring.evidence.PairEvidence`),
- its **weight** in bits (log2 odds) from the rule set, which the ``rules`` scorer uses as
  written and the ``estimated`` scorer as its prior,
- the **words** that explain it (a Polars expression over the scored frame's columns), and, for
  an amount level, the **cause** of the balancing adjustment it books.

Levels round-trip to the rule file (:meth:`Comparison.weights_section` gives the ``[weights]``
entries they were built from). Adding a level is one object in the builder of its comparison and
one field in :class:`rules.model.Weights`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from engine.scoring.differences import AMOUNT_KINDS
from models.money import format_minor_expr
from rules.model import RuleSet

if TYPE_CHECKING:
    from engine.scoring.evidence import PairEvidence

__all__ = [
    "COMPARISONS", "Comparison", "ComparisonLevel", "REFERENCE_LEVELS", "comparisons_for",
    "level_index", "level_weights",
]

#: reference levels, strongest first: the codes ``ref_code`` holds
REFERENCE_LEVELS = ("full", "cheque", "reformatted", "serial", "number", "near", "truncated", "conflict", "none")
#: the comparisons every pair is scored on, in the order their phrases are explained
COMPARISONS = ("reference", "amount", "commonness", "uniqueness", "name", "date", "window")

Condition = Callable[["PairEvidence"], np.ndarray]
Phrase = Callable[[], pl.Expr]


def _no_phrase() -> pl.Expr:
    return pl.lit(None, dtype=pl.Utf8)


@dataclass(frozen=True)
class ComparisonLevel:
    """One level of a comparison.

    Attributes
    ----------
    key
        The level's name in the rule file (``full``, ``exact``, ``same name``...).
    label
        Its name for charts and the analysts' candidate view.
    weight
        Bits of evidence (log2 odds) from the rule set.
    condition
        Pair measurements -> whether each pair meets the level (the first level met wins).
    phrase
        The words that explain the level, a Polars expression over the scored frame (null:
        nothing to say).
    cause
        For amount levels: the adjustment cause a difference at this level is booked to.
    fixed
        Never estimated from the data (the ``estimated`` scorer keeps the rule set's weight).
    """

    key: str
    label: str
    weight: float
    condition: Condition
    phrase: Phrase = _no_phrase
    cause: str | None = None
    fixed: bool = False


@dataclass(frozen=True)
class Comparison:
    """An ordered list of levels; a pair's level is the first whose condition it meets (the
    last level is the catch-all)."""

    name: str
    levels: tuple[ComparisonLevel, ...]
    #: builds the rule file's entries back from the levels (see :meth:`weights_section`)
    to_rules: Callable[[tuple[ComparisonLevel, ...]], dict] = field(repr=False, default=lambda levels: {})

    def codes(self, evidence: PairEvidence) -> np.ndarray:
        """The level of each pair, as its position in :attr:`levels` (``uint8``)."""
        codes = np.full(evidence.size, len(self.levels) - 1, dtype=np.uint8)
        undecided = np.ones(evidence.size, dtype=bool)
        for i, level in enumerate(self.levels[:-1]):
            met = undecided & level.condition(evidence)
            codes[met] = i
            undecided &= ~met
        return codes

    @property
    def weights(self) -> np.ndarray:
        """The rule set's weight of each level, by code."""
        return np.array([level.weight for level in self.levels], dtype=np.float64)

    @property
    def labels(self) -> list[str]:
        return [level.label for level in self.levels]

    def phrase(self, code: pl.Expr) -> pl.Expr:
        """The explaining words of each pair's level (``code`` holds the level positions)."""
        expr = pl.lit(None, dtype=pl.Utf8)
        for i in reversed(range(len(self.levels))):
            expr = pl.when(code == i).then(self.levels[i].phrase()).otherwise(expr)
        return expr

    def label_of(self, code: pl.Expr) -> pl.Expr:
        """The label of each pair's level."""
        return code.replace_strict(dict(enumerate(self.labels)), return_dtype=pl.Utf8)

    def index(self, key: str) -> int:
        """Position of the level called ``key``."""
        for i, level in enumerate(self.levels):
            if level.key == key:
                return i
        raise KeyError(f"{self.name} has no level {key!r}")

    def weights_section(self) -> dict:
        """The rule file's ``[weights]`` entries of this comparison, from the levels."""
        return self.to_rules(self.levels)


# --------------------------------------------------------------------------------------------
# the comparisons
# --------------------------------------------------------------------------------------------


def reference_comparison(rules: RuleSet) -> Comparison:
    """How the bank text quotes the ledger item's reference, strongest first."""
    w = rules.weights.reference
    doc_ref = pl.col("doc_ref")

    def grade(key: str) -> Condition:
        code = REFERENCE_LEVELS.index(key)
        return lambda ev: ev.reference == code

    levels = (
        ComparisonLevel("full", "reference in full", w.full, grade("full"),
                        lambda: pl.lit("reference ") + doc_ref + pl.lit(" found in bank text")),
        ComparisonLevel("cheque", "cheque number", w.cheque, grade("cheque"),
                        lambda: pl.lit("cheque ") + pl.col("shared_number").cast(pl.Utf8)
                        + pl.lit(" on the bank line and in the ledger item")),
        ComparisonLevel("reformatted", "reference reformatted", w.reformatted, grade("reformatted"),
                        lambda: pl.lit("reference ") + doc_ref
                        + pl.lit(" found in bank text with another prefix or separators")),
        ComparisonLevel("serial", "reference number", w.serial, grade("serial"),
                        lambda: pl.lit("number of ") + doc_ref + pl.lit(" found in bank text")),
        ComparisonLevel("number", "another number of the item", w.number, grade("number"),
                        lambda: pl.lit("number ") + pl.col("shared_number").cast(pl.Utf8)
                        + pl.lit(" in the ledger item's text found in bank text")),
        ComparisonLevel("near", "reference one digit off", w.near, grade("near"),
                        lambda: pl.lit("bank text shows a reference one digit or one transposition away from ")
                        + doc_ref + pl.lit(" (weak)")),
        ComparisonLevel("truncated", "reference cut short", w.truncated, grade("truncated"),
                        lambda: pl.lit("bank text shows a reference close to ") + doc_ref
                        + pl.lit(" (truncated digits; weak)")),
        ComparisonLevel("conflict", "another reference", w.conflict, grade("conflict"),
                        lambda: pl.lit("bank text quotes a reference other than ") + doc_ref),
        ComparisonLevel("none", "no reference", w.none, lambda ev: np.ones(ev.size, dtype=bool)),
    )
    return Comparison("reference", levels, lambda levels: {"reference": {lv.key: lv.weight for lv in levels}})


def amount_comparison(rules: RuleSet) -> Comparison:
    """Equal amounts, a difference with a recognisable cause, or any difference within the
    tolerance band (the candidate generator never pairs amounts outside it)."""
    w = rules.weights.amount
    currency = pl.col("currency")
    diff = pl.col("amount_diff")

    def kind(name: str) -> Condition:
        code = AMOUNT_KINDS.index(name)
        return lambda ev: ev.amount_kind == code

    def differs(reason: str) -> Phrase:
        return lambda: (
            pl.lit("bank amount ") + format_minor_expr(diff.abs(), currency)
            + pl.when(diff < 0).then(pl.lit(" less")).otherwise(pl.lit(" more"))
            + pl.lit(f" than ledger ({reason})")
        )

    levels = (
        ComparisonLevel("exact", "amount equal", w.exact, kind("exact"),
                        lambda: pl.lit("amount equal (") + currency + pl.lit(" ")
                        + format_minor_expr(pl.col("amount_bank"), currency) + pl.lit(")")),
        ComparisonLevel("bank_charge", "round bank charge", w.explained, kind("bank_charge"),
                        differs("a round bank charge"), cause="bank_charge"),
        ComparisonLevel("discount", "whole-percent discount", w.explained, kind("discount"),
                        differs("a whole-percent discount"), cause="short_payment"),
        ComparisonLevel("rounding", "paid down to whole tens", w.explained, kind("rounding"),
                        differs("paid down to whole tens"), cause="short_payment"),
        ComparisonLevel("within_tolerance", "amount within tolerance", w.within_tolerance,
                        lambda ev: np.ones(ev.size, dtype=bool), differs("within tolerance")),
    )

    def to_rules(levels: tuple[ComparisonLevel, ...]) -> dict:
        return {"amount": {"exact": levels[0].weight, "explained": levels[1].weight,
                           "within_tolerance": levels[-1].weight}}

    return Comparison("amount", levels, to_rules)


def name_comparison(rules: RuleSet) -> Comparison:
    """The payer's name: missing on a side, differing in its numbers, linked by the alias table,
    in another script, given as initials, graded by similarity; names less alike than the
    levels that count for a pair may still be an acronym of each other or the bank's text may
    be the item's purpose (``AUTOPAY DR OFFICE RENT``), before they count against it."""
    w = rules.weights
    name_bank, name_ledger = pl.col("name_bank"), pl.col("name_ledger")

    def similar(label: str) -> Phrase:
        return lambda: (
            pl.lit(f"{label} '") + name_bank + pl.lit("' ~ '") + name_ledger + pl.lit("' (")
            + pl.col("name_similarity").round(0).cast(pl.Int64).cast(pl.Utf8) + pl.lit("%)")
        )

    def quoted(text: str) -> Phrase:
        return lambda: pl.lit("payer '") + name_bank + pl.lit("' vs '") + name_ledger + pl.lit(f"' {text}")

    by_similarity = list(w.name)
    top = by_similarity[0]
    levels = [
        ComparisonLevel("missing", "missing", w.name_missing, lambda ev: ev.name_missing,
                        lambda: pl.lit("no payer name to compare")),
        ComparisonLevel("digits_differ", "names differ in their numbers", w.name_digits_differ,
                        lambda ev: ev.digits_differ, quoted("differ in their numbers")),
        ComparisonLevel(top.label, top.label, top.weight,
                        lambda ev, bound=top.min_similarity: ev.similarity >= bound, similar(top.label)),
        ComparisonLevel("alias", "alias", w.name_alias, lambda ev: ev.alias,
                        quoted("linked by the alias table")),
        ComparisonLevel("different script", "different script", w.name_different_script,
                        lambda ev: ev.different_script, quoted("in different scripts, not compared")),
        ComparisonLevel("initials", "initials", w.name_initials, lambda ev: ev.initials,
                        quoted("match with initials")),
    ]
    def similarity_level(level) -> ComparisonLevel:
        return ComparisonLevel(level.label, level.label, level.weight,
                               lambda ev, bound=level.min_similarity: ev.similarity >= bound, similar(level.label))

    # names alike enough to count for the pair, then the readings of names that are not (an
    # acronym, a purpose printed where the payee would be), then the names that count against
    levels += [similarity_level(level) for level in by_similarity[1:] if level.weight >= 0]
    levels += [
        ComparisonLevel("acronym", "acronym", w.name_acronym, lambda ev: ev.acronym,
                        quoted("one the acronym of the other")),
        ComparisonLevel("purpose", "purpose", w.name_purpose, lambda ev: ev.purpose,
                        lambda: pl.lit("bank text '") + name_bank
                        + pl.lit("' is the item's purpose, not a payee")),
    ]
    levels += [similarity_level(level) for level in by_similarity[1:] if level.weight < 0]
    # the last similarity level is the catch-all (min_similarity 0)

    def to_rules(levels: tuple[ComparisonLevel, ...]) -> dict:
        by_key = {lv.key: lv for lv in levels}
        return {
            "name": [{"min_similarity": lv.min_similarity, "weight": by_key[lv.label].weight, "label": lv.label}
                     for lv in w.name],
            "name_missing": by_key["missing"].weight,
            "name_different_script": by_key["different script"].weight,
            "name_initials": by_key["initials"].weight,
            "name_alias": by_key["alias"].weight,
            "name_digits_differ": by_key["digits_differ"].weight,
            "name_acronym": by_key["acronym"].weight,
            "name_purpose": by_key["purpose"].weight,
        }

    return Comparison("name", tuple(levels), to_rules)


def date_comparison(rules: RuleSet) -> Comparison:
    """Days between the ledger date and the bank date, either direction."""
    days = pl.col("days")
    phrase = lambda: (  # noqa: E731 - one expression shared by every level
        pl.when(days == 0).then(pl.lit("same day"))
        .when(days == 1).then(pl.lit("1 day after the ledger date"))
        .when(days == -1).then(pl.lit("1 day before the ledger date"))
        .when(days > 0).then(days.cast(pl.Utf8) + pl.lit(" days after the ledger date"))
        .otherwise((-days).cast(pl.Utf8) + pl.lit(" days before the ledger date"))
    )
    levels = tuple(
        ComparisonLevel(f"{lv.max_days} days", "same day" if lv.max_days == 0 else f"within {lv.max_days} days",
                        lv.weight, lambda ev, bound=lv.max_days: np.abs(ev.days) <= bound, phrase)
        for lv in rules.weights.date
    )
    # past the last bound: the last level (its bound is the widest)
    last = levels[-1]
    levels = (*levels[:-1], ComparisonLevel(last.key, last.label, last.weight,
                                            lambda ev: np.ones(ev.size, dtype=bool), phrase))

    def to_rules(levels: tuple[ComparisonLevel, ...]) -> dict:
        return {"date": [{"max_days": lv.max_days, "weight": level.weight}
                         for lv, level in zip(rules.weights.date, levels, strict=True)]}

    return Comparison("date", levels, to_rules)


def window_comparison(rules: RuleSet) -> Comparison:
    """Whether the bank date falls in the ledger type's date window, just outside it (by no
    more than the window's own length again), or further out."""
    type_norm = pl.col("type_norm")

    def outside() -> pl.Expr:
        return pl.lit("outside the window for ") + pl.when(type_norm == "").then(pl.lit("untyped items")).otherwise(type_norm)

    w = rules.weights
    levels = (
        ComparisonLevel("inside", "inside the window", 0.0, lambda ev: ev.in_window),
        ComparisonLevel("near", "just outside the window", w.near_window, lambda ev: ev.near_window, outside),
        ComparisonLevel("outside", "outside the window", w.outside_window,
                        lambda ev: np.ones(ev.size, dtype=bool), outside),
    )
    return Comparison("window", levels,
                      lambda levels: {"near_window": levels[1].weight, "outside_window": levels[2].weight})


def commonness_comparison(rules: RuleSet) -> Comparison:
    """How many ledger items (same currency and sign) have the pair's exact amount, or, for
    different amounts, whether the item is the only one within the bank amount's tolerance:
    the rarer the amount, the more an agreement on it says."""
    w = rules.weights
    count = pl.col("amount_count")
    # a common amount counts against a pair only when nothing else singles the pair out: the
    # only exact-amount candidate with as good a name is not weakened by others sharing the amount
    levels = [
        ComparisonLevel(lv.label, lv.label, lv.weight,
                        lambda ev, bound=lv.max_items, weight=lv.weight: ev.exact & (ev.amount_count <= bound)
                        & ((weight >= 0) | ~ev.clear),
                        lambda label=lv.label: pl.lit(label) + pl.when(count > 1)
                        .then(pl.lit(" (") + count.cast(pl.Utf8) + pl.lit(" ledger items have it)"))
                        .otherwise(pl.lit("")))
        for lv in w.commonness
    ]
    levels.append(ComparisonLevel("singled out", "common, but singled out by the name", 0.0, lambda ev: ev.exact))
    levels.append(ComparisonLevel("only item near", "the only item near this amount", w.only_item_near,
                                  lambda ev: ~ev.exact & (ev.band_count == 1),
                                  lambda: pl.lit("the only ledger item within tolerance of this amount")))
    levels.append(ComparisonLevel("other", "other amounts near", 0.0, lambda ev: np.ones(ev.size, dtype=bool)))

    def to_rules(levels: tuple[ComparisonLevel, ...]) -> dict:
        return {"commonness": [{"max_items": lv.max_items, "weight": level.weight, "label": lv.label}
                               for lv, level in zip(w.commonness, levels, strict=False)],
                "only_item_near": levels[-2].weight}


    return Comparison("commonness", tuple(levels), to_rules)


def uniqueness_comparison(rules: RuleSet) -> Comparison:
    """Context among the candidates (not a property of the pair alone, so never estimated): the
    only exact-amount candidate both ways with as good a name, or the payer's same-amount
    payments applied oldest item first."""
    w = rules.weights
    others = (pl.col("n_exact_bank") + pl.col("n_exact_ledger") - 2).cast(pl.Utf8) + pl.lit(
        " other candidate(s) with this amount"
    )
    levels = (
        ComparisonLevel("unique", "only candidate", w.unique_amount, lambda ev: ev.clear,
                        lambda: pl.lit("no other candidate with this amount and as good a name"), fixed=True),
        ComparisonLevel("oldest_first", "oldest item first", w.oldest_first, lambda ev: ev.fifo,
                        lambda: others + pl.lit(" (the payer's payments applied oldest item first)"), fixed=True),
        ComparisonLevel("competing", "other candidates", 0.0, lambda ev: ev.amount_kind == 0,
                        lambda: others, fixed=True),
        ComparisonLevel("none", "amounts differ", 0.0, lambda ev: np.ones(ev.size, dtype=bool), fixed=True),
    )

    def to_rules(levels: tuple[ComparisonLevel, ...]) -> dict:
        return {"unique_amount": levels[0].weight, "oldest_first": levels[1].weight,
                "competing_amount": w.competing_amount}

    return Comparison("uniqueness", levels, to_rules)


_BUILDERS = {
    "reference": reference_comparison, "amount": amount_comparison, "commonness": commonness_comparison,
    "uniqueness": uniqueness_comparison,
    "name": name_comparison, "date": date_comparison, "window": window_comparison,
}


def comparisons_for(rules: RuleSet) -> dict[str, Comparison]:
    """Every comparison of :data:`COMPARISONS`, built from the rule set's weights."""
    return {name: _BUILDERS[name](rules) for name in COMPARISONS}


# --------------------------------------------------------------------------------------------
# numeric levels on Polars expressions (the group generators weigh names and dates this way)
# --------------------------------------------------------------------------------------------


def level_weights(value: pl.Expr, levels: list, attr: str, ascending: bool) -> tuple[pl.Expr, pl.Expr]:
    """Map a numeric value onto ordered levels -> (weight, level index)."""
    weight = pl.lit(levels[-1].weight)
    index = pl.lit(len(levels) - 1)
    for i in reversed(range(len(levels))):
        bound = getattr(levels[i], attr)
        cond = value <= bound if ascending else value >= bound
        weight = pl.when(cond).then(pl.lit(levels[i].weight)).otherwise(weight)
        index = pl.when(cond).then(pl.lit(i)).otherwise(index)
    return weight, index


def level_index(value: np.ndarray, bounds: list[float], ascending: bool) -> np.ndarray:
    """:func:`level_weights` in numpy: the index of the first level whose bound ``value`` meets
    (``value <= bound`` for ascending bounds, ``>=`` for descending ones), else the last. The
    rule set keeps the bounds in that order, so it is a sorted search."""
    edges = np.asarray(bounds, dtype=np.float64)
    if ascending:  # the first bound >= value
        index = np.searchsorted(edges, value, side="left")
    else:  # how many bounds are > value: the first of the others is met
        index = len(edges) - np.searchsorted(edges[::-1], value, side="right")
    return np.minimum(index, len(edges) - 1)
