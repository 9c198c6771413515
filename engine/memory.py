"""The memory budget of a run (``recon match --memory-limit``).

A month's shape, not only its size, decides how much memory matching needs: a payer with ten
thousand open items, thousands of orders a day, one amount everywhere. Every generator is capped
per partition (:mod:`engine.candidates.caps`); the budget bounds what the caps leave:

- **candidate pairs**: measuring a pair's evidence and scoring it holds about
  :data:`BYTES_PER_PAIR` bytes per pair at its peak. When the pairs a month yields would need
  more than :data:`PAIR_SHARE` of the budget, each bank line keeps only its best candidates
  (quoted reference, same payer, exact amount, then the nearest), the same number for every
  line, until they fit; the run warns, naming how many pairs were left out;
- **the workspace**: DuckDB gets the same limit (``SET memory_limit``) and spills beyond it;
- **the whole run**: the progress watcher samples the process's memory every second; a run
  that goes over the budget anyway says so in its warnings (with the stage and the peak), so a
  user learns it before the machine does.

The default budget is :data:`DEFAULT_SHARE` of the machine's memory.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import psutil

from engine.candidates.pairs import EXACT, NAME, REFERENCE
from models.errors import InputError

#: peak bytes per candidate pair while its evidence is measured and scored (measured: 330 at
#: 100k bank lines, 5 pairs a line)
BYTES_PER_PAIR = 400
#: share of the budget the candidate pairs may take (the groups, the assignment and the outputs
#: need the rest)
PAIR_SHARE = 0.35
#: default budget: this share of the machine's memory
DEFAULT_SHARE = 0.6
#: fewest candidates a bank line keeps, whatever the budget
MIN_PAIRS_PER_LINE = 2

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> int:
    """Bytes in a size such as ``6GB``, ``6g``, ``512MB``, ``1.5 GiB`` or ``4000000000``.

    Raises
    ------
    InputError
        The text is not a positive size.
    """
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS or float(match.group(1)) <= 0:
        raise InputError(f"memory limit {text!r}: give a size such as 6GB, 512MB or 1.5GiB")
    return int(float(match.group(1)) * _UNITS[unit])


def default_limit() -> int:
    """:data:`DEFAULT_SHARE` of this machine's memory, in bytes."""
    return int(psutil.virtual_memory().total * DEFAULT_SHARE)


def gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def fit_pairs(pairs: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, limit: int
              ) -> tuple[pl.DataFrame, str | None]:
    """The candidate pairs that fit the budget, and a warning when some had to go.

    Parameters
    ----------
    pairs
        Candidate pairs (``bank_idx``, ``ledger_idx``, ``via``: the generators' flags), as
        :func:`engine.candidates.pairs.generate_candidates` returns them.
    bank, ledger
        The prepared sides (``amount_minor``, ``day`` by row number).
    limit
        The run's memory budget in bytes.

    Returns
    -------
    (pairs, warning)
        All pairs and ``None`` when they fit in :data:`PAIR_SHARE` of ``limit``. Otherwise each
        bank line keeps its ``k`` best candidates, ``k`` the largest number that fits (at least
        :data:`MIN_PAIRS_PER_LINE`): quoted reference first, then same payer, then exact
        amount, then the nearest amount and date; and a sentence saying what was left out.
        O(pairs log pairs).
    """
    allowed = int(limit * PAIR_SHARE) // BYTES_PER_PAIR
    if pairs.height <= allowed:
        return pairs, None
    per_line = np.bincount(pairs["bank_idx"].to_numpy().astype(np.int64))
    # the largest k with sum(min(count, k)) <= allowed: binary search over k
    lo, hi = MIN_PAIRS_PER_LINE, int(per_line.max())
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if np.minimum(per_line, mid).sum() <= allowed:
            lo = mid
        else:
            hi = mid - 1
    b, l_ = pairs["bank_idx"], pairs["ledger_idx"]
    via = pl.col("via")
    ranked = pairs.with_columns(
        _amount=(bank["amount_minor"].gather(b) - ledger["amount_minor"].gather(l_)).abs(),
        _days=(bank["day"].gather(b).cast(pl.Int64) - ledger["day"].gather(l_).cast(pl.Int64)).abs(),
    ).sort(
        "bank_idx", (via & REFERENCE) == 0, (via & NAME) == 0, (via & EXACT) == 0, "_amount", "_days",
        "ledger_idx",
    )
    kept = (ranked.filter(pl.int_range(pl.len()).over("bank_idx") < lo)
            .drop("_amount", "_days").sort("bank_idx", "ledger_idx"))
    left = pairs.height - kept.height
    return kept, (f"memory limit {gb(limit)}: the month yields {pairs.height:,} candidate pairs; each bank line "
                  f"keeps its {lo} best ({left:,} pairs of {int((per_line > lo).sum()):,} bank lines left "
                  f"out); raise --memory-limit to score them all")
