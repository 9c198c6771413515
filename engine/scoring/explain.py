"""Explanations (engine stage 3, scoring): the evidence of a scored pair in words.

The sentence is made of the phrases of the levels the pair landed in
(:class:`engine.scoring.levels.ComparisonLevel`), so what a finance person reads is exactly the
evidence that produced the score. Text columns are gathered only for the pairs that need them
(:func:`with_evidence`): the chosen pairs, or the candidates an analyst looks at.
"""

from __future__ import annotations

import polars as pl

from engine.scoring.levels import REFERENCE_LEVELS, comparisons_for
from rules.model import RuleSet

__all__ = ["CODE_COLUMNS", "LEVEL_SEPARATOR", "SCORED_SCHEMA", "explain", "level_keys", "with_evidence"]

#: the level code column of each comparison
CODE_COLUMNS = {
    "reference": "ref_code", "amount": "amount_code", "commonness": "common_code", "uniqueness": "uniq_code",
    "name": "name_code",
    "date": "date_code", "window": "window_code",
}
#: the scored frame with its evidence columns (:func:`with_evidence`): the compact columns plus
#: the level labels and the text the phrases read
SCORED_SCHEMA: dict[str, pl.DataType] = {
    "bank_idx": pl.UInt32, "ledger_idx": pl.UInt32, "via": pl.UInt8, "score": pl.Float64,
    "confidence": pl.Float64, "amount_diff": pl.Int64, "ref_level": pl.Utf8,
    "name_similarity": pl.Float64, "name_level": pl.Utf8, "amount_level": pl.Utf8, "days": pl.Int32,
    "ref_code": pl.UInt8, "amount_code": pl.UInt8, "common_code": pl.UInt8, "uniq_code": pl.UInt8,
    "name_code": pl.UInt8,
    "date_code": pl.UInt8, "window_code": pl.UInt8,
    "amount_bank": pl.Int64, "amount_ledger": pl.Int64, "currency": pl.Utf8, "doc_ref": pl.Utf8,
    "shared_number": pl.Int64, "amount_count": pl.Int32, "n_exact_bank": pl.Int32, "n_exact_ledger": pl.Int32,
    "clear_bank": pl.Boolean, "clear_ledger": pl.Boolean, "name_bank": pl.Utf8,
    "name_ledger": pl.Utf8, "in_window": pl.Boolean, "type_norm": pl.Utf8, "fifo": pl.Boolean,
}


def with_evidence(scored: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """Compact scored pairs (``score_candidates(..., evidence=False)``) with the level labels
    and the text columns :func:`explain` reads (``SCORED_SCHEMA``, in its column order)."""
    comparisons = comparisons_for(rules)
    b, l_ = scored["bank_idx"], scored["ledger_idx"]
    return scored.with_columns(
        ref_level=pl.col("ref_code").replace_strict(dict(enumerate(REFERENCE_LEVELS)), return_dtype=pl.Utf8),
        name_level=comparisons["name"].label_of(pl.col("name_code")),
        amount_level=comparisons["amount"].label_of(pl.col("amount_code")),
        amount_bank=bank["amount_minor"].gather(b),
        amount_ledger=ledger["amount_minor"].gather(l_),
        currency=bank["currency"].gather(b),
        doc_ref=ledger["doc_ref"].gather(l_),
        name_bank=bank["name_key"].gather(b),
        name_ledger=ledger["name_key"].gather(l_),
        type_norm=ledger["type_norm"].gather(l_),
    ).select(list(SCORED_SCHEMA)).cast(SCORED_SCHEMA)


#: between the ``comparison=level`` entries of :func:`level_keys`
LEVEL_SEPARATOR = "; "


def level_keys(rules: RuleSet) -> pl.Expr:
    """``String``: the level each comparison put a scored pair in, as ``comparison=level``
    entries (``reference=full; amount=exact; ...; window=inside``), from the code columns of a
    compact scored frame. With the run's ``weights`` table (comparison, level, weight) it says
    what each piece of evidence was worth, as the review page shows."""
    comparisons = comparisons_for(rules)
    return pl.concat_str(
        [
            pl.lit(f"{name}=")
            + pl.col(column).replace_strict(
                {i: level.key for i, level in enumerate(comparisons[name].levels)}, return_dtype=pl.Utf8
            )
            for name, column in CODE_COLUMNS.items()
        ],
        separator=LEVEL_SEPARATOR,
    )


def explain(scored: pl.DataFrame, rules: RuleSet) -> pl.Series:
    """The readable evidence sentence of each scored pair (rows of :func:`with_evidence`: the
    pairs you need, proposals or candidates an analyst looks at), e.g. "reference
    INV-2026-00123 found in bank text; amount equal (HKD 1000.00); same name 'kam wing trading'
    ~ 'kam wing trading' (100%); 3 days after the ledger date"."""
    return scored.select(_sentence(rules).alias("evidence")).to_series()


def _sentence(rules: RuleSet) -> pl.Expr:
    comparisons = comparisons_for(rules)

    def phrase(name: str) -> pl.Expr:
        return comparisons[name].phrase(pl.col(CODE_COLUMNS[name]))

    window = phrase("window")
    date = phrase("date") + pl.when(window.is_null()).then(pl.lit("")).otherwise(pl.lit(" (") + window + pl.lit(")"))
    return pl.concat_str(
        [phrase("reference"), phrase("amount"), phrase("commonness"), phrase("uniqueness"), phrase("name"), date],
        separator="; ", ignore_nulls=True,
    )
