"""Candidate groups: the common currency of compound matching.

Every generator beyond the plain same-currency pair (one bank line settling several items,
instalments, FX receipts, processor payouts) proposes *groups* in one frame shape,
:data:`GROUP_SCHEMA`; the assignment (:mod:`engine.assignment.groups`) chooses a consistent set
of groups and pairs, and the pipeline renders the chosen ones as proposals.

Columns
-------
kind
    The match type the group would be: ``one_to_one`` (e.g. an FX receipt), ``one_to_many``,
    ``many_to_one``, ``many_to_many`` or ``payout``.
bank_idx, ledger_idx
    Row numbers of the prepared bank frame / ledger frame (``bank_idx`` / ``ledger_idx``
    columns of :func:`engine.prepare.features.prepare_bank` / ``prepare_ledger``), sorted ascending,
    no repeats.
score
    Evidence in bits (log2 odds), on the same scale as a scored pair's ``score`` (the rule set's
    ``weights.prior`` included), so groups and pairs compete fairly.
ledger_total
    The ledger items' total in the bank line's currency, minor units (converted for FX).
adjustments
    Balancing lines ``{cause, amount_minor}`` in the bank currency, such that
    ``bank total == ledger_total + sum(adjustments)`` exactly. ``open_minor`` is not one of them.
evidence
    Why, in words a finance person reads ("listed invoices INV-2026-00163, INV-2026-00275; total
    equals the payment exactly; same payer").
open_minor
    For a ledger item paid in part (instalments so far): what is still open, in the item's
    currency; null otherwise.
review_reason
    When set, the group can never be auto-accepted, and this says why (e.g. "fee inferred
    without a processor report").
"""

from __future__ import annotations

import polars as pl

from models.schema import MATCH_TYPES  # noqa: F401  (the kinds a group may have)

ADJUSTMENT_DTYPE = pl.Struct({"cause": pl.Utf8, "amount_minor": pl.Int64})

GROUP_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.Utf8,
    "bank_idx": pl.List(pl.UInt32),
    "ledger_idx": pl.List(pl.UInt32),
    "score": pl.Float64,
    "ledger_total": pl.Int64,
    "adjustments": pl.List(ADJUSTMENT_DTYPE),
    "evidence": pl.Utf8,
    "open_minor": pl.Int64,
    "review_reason": pl.Utf8,
}


def empty_groups() -> pl.DataFrame:
    """A group frame with no rows."""
    return pl.DataFrame(schema=GROUP_SCHEMA)


def conform(groups: pl.DataFrame) -> pl.DataFrame:
    """``groups`` with exactly the :data:`GROUP_SCHEMA` columns and types (missing optional
    columns ``open_minor`` / ``review_reason`` / ``adjustments`` filled with nulls / empty)."""
    out = groups
    if "adjustments" not in out.columns:
        out = out.with_columns(pl.lit([], dtype=pl.List(ADJUSTMENT_DTYPE)).alias("adjustments"))
    for col in ("open_minor", "review_reason"):
        if col not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=GROUP_SCHEMA[col]).alias(col))
    return out.select([pl.col(c).cast(t) for c, t in GROUP_SCHEMA.items()])


def adjustment_total(adjustments: pl.Expr) -> pl.Expr:
    """Sum of a list-of-adjustments column in minor units (0 for an empty list)."""
    return adjustments.list.eval(pl.element().struct.field("amount_minor")).list.sum().fill_null(0)
