"""Scoring (engine stage 3): evidence per candidate pair -> score, confidence, level codes.

Each comparison (reference, amount, uniqueness among the candidates, payer name, date, date
window) puts a pair in one level (:mod:`engine.scoring.levels`); the scorer turns the levels
into a score in bits (log2 odds, as in Fellegi-Sunter / Splink); ``confidence = 1 / (1 + 2 **
-score)``. The levels are kept as codes; :func:`engine.scoring.explain.with_evidence` adds the
text the explanation reads for the pairs that need it.

Stages, each callable on its own (the pipeline estimates a scorer between the second and the
third):

1. :func:`engine.scoring.evidence.measure_pairs`: the pair measurements;
2. :func:`level_codes`: the level of each comparison, with the candidate context;
3. :func:`scored_frame`: the scorer's score and the compact frame.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.scoring.evidence import PairEvidence, add_context, measure_pairs
from engine.scoring.explain import CODE_COLUMNS, with_evidence
from engine.scoring.levels import COMPARISONS, comparisons_for
from engine.scoring.scorers import RulesScorer, Scorer
from rules.model import RuleSet

__all__ = ["COMPACT_SCHEMA", "confidence_of", "level_codes", "score_candidates", "scored_frame", "scorer_for"]

#: what :func:`score_candidates` gives without the evidence text (``evidence=False``): the
#: levels as codes (positions in their comparison's levels, see ``CODE_COLUMNS``)
COMPACT_SCHEMA: dict[str, pl.DataType] = {
    "bank_idx": pl.UInt32, "ledger_idx": pl.UInt32, "via": pl.UInt8, "score": pl.Float64,
    "confidence": pl.Float64, "amount_diff": pl.Int64, "ref_code": pl.UInt8, "amount_code": pl.UInt8,
    "common_code": pl.UInt8, "uniq_code": pl.UInt8, "name_code": pl.UInt8, "date_code": pl.UInt8, "window_code": pl.UInt8,
    "name_similarity": pl.Float64, "days": pl.Int32, "shared_number": pl.Int64, "amount_count": pl.Int32,
    "n_exact_bank": pl.Int32, "n_exact_ledger": pl.Int32, "clear_bank": pl.Boolean,
    "clear_ledger": pl.Boolean, "in_window": pl.Boolean, "fifo": pl.Boolean,
}


def confidence_of(score: np.ndarray) -> np.ndarray:
    """``1 / (1 + 2 ** -score)``: the probability a score in bits stands for."""
    return 1.0 / (1.0 + np.exp2(-np.asarray(score, dtype=np.float64)))


def level_codes(evidence: PairEvidence, bank: pl.DataFrame, ledger: pl.DataFrame,
                rules: RuleSet) -> dict[str, np.ndarray]:
    """The level code of every comparison per pair (``uint8``), the candidate context (which
    needs the name levels) filled into ``evidence`` on the way."""
    comparisons = comparisons_for(rules)
    # the context comparisons read the candidate context, which needs the name levels
    in_context = ("commonness", "uniqueness")
    codes = {name: comparisons[name].codes(evidence) for name in COMPARISONS if name not in in_context}
    name_weight = comparisons["name"].weights[codes["name"]]
    add_context(evidence, name_weight, max(level.weight for level in rules.weights.name), bank, ledger)
    for name in in_context:
        codes[name] = comparisons[name].codes(evidence)
    return {name: codes[name] for name in COMPARISONS}


def scorer_for(rules: RuleSet, evidence: PairEvidence, codes: dict[str, np.ndarray], bank: pl.DataFrame,
               ledger: pl.DataFrame) -> Scorer:
    """The scorer the rule set asks for (``scoring.scorer``): the rule set's weights, weights
    estimated from these candidates and the prepared lines, or the learned model's file."""
    kind = rules.scoring.scorer
    if kind == "estimated":
        from engine.scoring.estimate import estimate_scorer

        return estimate_scorer(evidence, codes, bank, ledger, rules)
    if kind == "learned":
        from engine.scoring.learned import LearnedScorer

        return LearnedScorer.load(rules.scoring.model, rules)
    return RulesScorer(rules)


def scored_frame(pairs: pl.DataFrame, evidence: PairEvidence, codes: dict[str, np.ndarray],
                 scorer: Scorer) -> pl.DataFrame:
    """The compact scored frame (``COMPACT_SCHEMA``) of ``pairs`` with ``scorer``'s scores."""
    score = scorer.score(evidence, codes)
    return pairs.select("bank_idx", "ledger_idx", "via").with_columns(
        score=pl.Series(score, dtype=pl.Float64),
        confidence=pl.Series(confidence_of(score)).round(4),
        amount_diff=pl.Series(evidence.amount_diff, dtype=pl.Int64),
        **{CODE_COLUMNS[name]: pl.Series(codes[name], dtype=pl.UInt8) for name in COMPARISONS},
        name_similarity=pl.Series(evidence.similarity, dtype=pl.Float64),
        days=pl.Series(evidence.days, dtype=pl.Int32),
        shared_number=evidence.shared_number,
        amount_count=pl.Series(evidence.amount_count, dtype=pl.Int32),
        n_exact_bank=pl.Series(evidence.n_exact_bank, dtype=pl.Int32),
        n_exact_ledger=pl.Series(evidence.n_exact_ledger, dtype=pl.Int32),
        clear_bank=pl.Series(evidence.clear_bank),
        clear_ledger=pl.Series(evidence.clear_ledger),
        in_window=pl.Series(evidence.in_window),
        fifo=pl.Series(evidence.fifo),
    ).select(list(COMPACT_SCHEMA))


def score_candidates(
    pairs: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet, evidence: bool = True,
    scorer: Scorer | None = None,
) -> pl.DataFrame:
    """Score candidate pairs.

    Parameters
    ----------
    pairs
        ``bank_idx``, ``ledger_idx``, ``via`` from :func:`engine.candidates.generate_candidates`.
    bank, ledger
        Prepared frames from :mod:`engine.prepare.features`.
    rules
        Levels and their weights.
    evidence
        With the text columns :func:`engine.scoring.explain.explain` reads (``SCORED_SCHEMA``);
        without them (``COMPACT_SCHEMA``: levels as codes), which is all the assignment needs.
    scorer
        What turns levels into scores; default :class:`engine.scoring.scorers.RulesScorer`.

    Returns
    -------
    pl.DataFrame
        One row per pair with ``score``, ``confidence`` and the level codes that produced them.
    """
    if pairs.height == 0:
        compact = pl.DataFrame(schema=COMPACT_SCHEMA)
    else:
        measured = measure_pairs(pairs, bank, ledger, rules)
        codes = level_codes(measured, bank, ledger, rules)
        compact = scored_frame(pairs, measured, codes, scorer or RulesScorer(rules))
    return with_evidence(compact, bank, ledger, rules) if evidence else compact
