"""The review floor (engine stage 3, scoring, after the scorer): a pair with nothing against it
but nothing of a payer or a reference for it, which the amount alone singles out, is at least
proposed for review.

A bank line without a name (``CHEQUE DEPOSIT 28,808.15``, ``TT IN 31,424.33``), or with one in
another script than the books', and no reference rests on its amount and date. Its score can
fall below the review threshold when the date is well outside the item type's usual window
(a cheque deposited a month after the receipt was booked) or when the amount differs by an
explained charge: left there it would be unmatched with no proposal, although a person would
look at the one open item of that amount first. So such a pair is lifted to the review
threshold (never above: it is never automatic on that ground) when

- its name comparison says nothing (no name, or names in different scripts with no alias) and
  its reference level is ``none`` (no reference, not a conflicting one);
- and either the amounts are equal, at most ``thresholds.review_floor_max_items`` ledger items
  (same currency and sign; 3 by default, 0 turns the floor off) have that amount, and the pair is the only exact-amount candidate of both its bank line and
  its ledger item; or the amounts differ by an explained difference (a round bank charge, a
  whole-percent discount, rounding), the bank line has no exact-amount candidate, and either
  the item is the only one within tolerance of the bank amount or the pair is the only one at
  an explained difference of both its bank line and its ledger item (in a big ledger many
  items lie within tolerance of 31,424.33, but one is 31,474.33: the amount less a 50.00
  charge).

Everything else about the pair (its date, a rival line of the same amount through the
assignment's ambiguity margin) still counts: the floor only decides that it is proposed.
"""

from __future__ import annotations

import math

import polars as pl

from engine.scoring.levels import REFERENCE_LEVELS, comparisons_for
from rules.model import RuleSet

__all__ = ["FLOORED", "FLOOR_REASON", "lift_to_review", "review_floor"]

#: why a floored pair is proposed, for the explanation
FLOOR_REASON = ("no payer name to compare and no reference, but no other open item has this amount "
                "(or this amount with an explained difference): proposed for a person to check")
#: the column :func:`lift_to_review` adds: whether the floor applies to the pair
FLOORED = "floored"


def _explained_kind(rules: RuleSet) -> pl.Expr:
    amount = comparisons_for(rules)["amount"]
    return pl.col("amount_code").is_in([amount.index(k) for k in ("bank_charge", "discount", "rounding")])


def review_floor(rules: RuleSet) -> pl.Expr:
    """``Boolean``: the pairs of a compact scored frame
    (:data:`engine.scoring.score.COMPACT_SCHEMA`) holding *every* candidate pair the floor
    applies to (see the module): it counts each line's pairs at an explained difference."""
    comparisons = comparisons_for(rules)
    name, amount, commonness = comparisons["name"], comparisons["amount"], comparisons["commonness"]
    silent_name = pl.col("name_code").is_in([name.index("missing"), name.index("different script")])
    no_reference = pl.col("ref_code") == REFERENCE_LEVELS.index("none")
    exact = (
        (pl.col("amount_code") == amount.index("exact"))
        & (pl.col("amount_count") <= rules.thresholds.review_floor_max_items)
        & (pl.col("n_exact_bank") == 1)
        & (pl.col("n_exact_ledger") == 1)
    )
    kind = _explained_kind(rules)
    singled_out = (pl.col("common_code") == commonness.index("only item near")) | (
        (kind.sum().over("bank_idx") == 1) & (kind.sum().over("ledger_idx") == 1)
    )
    explained = kind & singled_out & (pl.col("n_exact_bank") == 0)
    if rules.thresholds.review_floor_max_items == 0:
        return pl.repeat(False, pl.len())
    return (silent_name & no_reference & (exact | explained)).fill_null(False)


def lift_to_review(scored: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """``scored`` (every candidate pair) with the column :data:`FLOORED` and the floored
    pairs' score and confidence raised to the review threshold where they were below it (see
    the module). Two window counts over the pairs: O(pairs)."""
    scored = scored.with_columns(review_floor(rules).alias(FLOORED))
    review = rules.thresholds.review
    if not 0.0 < review < 1.0 or scored.height == 0:
        return scored
    floor_bits = math.log2(review / (1.0 - review))
    lift = pl.col(FLOORED) & (pl.col("score") < floor_bits)
    return scored.with_columns(
        score=pl.when(lift).then(pl.lit(floor_bits)).otherwise(pl.col("score")),
        confidence=pl.when(lift).then(pl.lit(round(review, 4))).otherwise(pl.col("confidence")),
    )
