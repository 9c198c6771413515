"""Comparison levels (engine stage 3, scoring): which level of each comparison a pair lands in."""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["REF_LEVELS", "level_index", "level_weights"]

#: reference levels, strongest first; scored pairs hold their position (``ref_code``)
REF_LEVELS = ["full", "serial", "number", "partial", "conflict", "none"]


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
