"""Scoring (engine stage 3): evidence per candidate pair -> score in bits, confidence, explanation.

- :mod:`engine.scoring.score`: :func:`score_candidates`, the levels each pair lands in and its score;
- :mod:`engine.scoring.levels`: comparison levels;
- :mod:`engine.scoring.names`: payer name similarity;
- :mod:`engine.scoring.differences`: why a bank amount differs from its ledger amount.
"""

from engine.scoring.score import (
    COMPACT_SCHEMA,
    SCORED_SCHEMA,
    explain,
    score_candidates,
    with_evidence,
)

__all__ = ["COMPACT_SCHEMA", "SCORED_SCHEMA", "explain", "score_candidates", "with_evidence"]
