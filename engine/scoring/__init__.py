"""Scoring (engine stage 3): evidence per candidate pair -> score in bits, confidence, explanation.

- :mod:`engine.scoring.evidence`: the pair measurements the levels look at;
- :mod:`engine.scoring.levels`: the comparisons and their levels (condition, weight, words);
- :mod:`engine.scoring.scorers`: levels -> score (the rule set's weights as written);
- :mod:`engine.scoring.score`: :func:`score_candidates`, the stages above in order;
- :mod:`engine.scoring.floor`: the review floor (a nameless pair the amount alone singles out is proposed);
- :mod:`engine.scoring.explain`: the evidence in words;
- :mod:`engine.scoring.names`: payer name comparison;
- :mod:`engine.scoring.differences`: why a bank amount differs from its ledger amount.
"""

from engine.scoring.explain import SCORED_SCHEMA, explain, with_evidence
from engine.scoring.score import COMPACT_SCHEMA, score_candidates

__all__ = ["COMPACT_SCHEMA", "SCORED_SCHEMA", "explain", "score_candidates", "with_evidence"]
