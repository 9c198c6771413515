"""Scorers (engine stage 3, scoring): a pair's comparison levels -> its score in bits.

Every scorer gives the same thing, the pair's log2 odds of being a true match (``confidence =
1 / (1 + 2 ** -score)``), so thresholds, the assignment and the group generators read any of
them alike:

- :class:`RulesScorer`: the rule set's weights as written (``scorer = "rules"``);
- :class:`engine.scoring.estimate.EstimatedScorer`: weights estimated from the run's own data,
  the rule set's as priors (``scorer = "estimated"``);
- :class:`engine.scoring.learned.LearnedScorer`: a calibrated classifier trained on labelled
  pairs (``scorer = "learned"``).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import polars as pl

from engine.scoring.evidence import PairEvidence
from engine.scoring.levels import COMPARISONS, Comparison, comparisons_for
from rules.model import RuleSet

__all__ = ["RulesScorer", "Scorer", "competing_penalty", "weights_frame"]


class Scorer(Protocol):
    """What the pipeline asks of a scorer."""

    kind: str

    def score(self, evidence: PairEvidence, codes: dict[str, np.ndarray]) -> np.ndarray:
        """Score in bits of each pair, from its measurements and level codes."""

    def weights(self) -> pl.DataFrame:
        """The weight of every level (``comparison``, ``level``, ``label``, ``prior_weight``,
        ``weight``), for the workspace and notebooks."""


def competing_penalty(evidence: PairEvidence, rules: RuleSet) -> np.ndarray:
    """``weights.competing_amount`` bits per other exact-amount candidate of the bank line or
    ledger item (at most 6), for an exact pair that is not the clear choice."""
    penalty = rules.weights.competing_amount
    if penalty == 0:
        return np.zeros(evidence.size)
    competing = np.clip(evidence.n_exact_bank - 1 + evidence.n_exact_ledger - 1, 0, 6)
    return np.where(evidence.exact & ~evidence.clear, competing * penalty, 0.0)


def weights_frame(comparisons: dict[str, Comparison], weights: dict[str, np.ndarray], prior: float,
                  prior_weight: float) -> pl.DataFrame:
    """One row per level: its comparison, key, label, the rule set's weight and the weight in
    use; the prior (log2 odds before any evidence) as comparison ``prior``."""
    rows = [{"comparison": "prior", "level": "prior", "label": "prior", "prior_weight": prior_weight,
             "weight": prior}]
    for name in COMPARISONS:
        for level, weight in zip(comparisons[name].levels, weights[name], strict=True):
            rows.append({"comparison": name, "level": level.key, "label": level.label,
                         "prior_weight": level.weight, "weight": float(weight)})
    return pl.DataFrame(rows, schema={"comparison": pl.Utf8, "level": pl.Utf8, "label": pl.Utf8,
                                      "prior_weight": pl.Float64, "weight": pl.Float64})


class RulesScorer:
    """``prior + the weight of each level`` as the rule set writes them."""

    kind = "rules"

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.comparisons = comparisons_for(rules)

    def score(self, evidence: PairEvidence, codes: dict[str, np.ndarray]) -> np.ndarray:
        total = np.full(evidence.size, self.rules.weights.prior)
        for name in COMPARISONS:
            total += self.comparisons[name].weights[codes[name]]
        return total + competing_penalty(evidence, self.rules)

    def weights(self) -> pl.DataFrame:
        prior = self.rules.weights.prior
        return weights_frame(self.comparisons, {n: c.weights for n, c in self.comparisons.items()}, prior, prior)
