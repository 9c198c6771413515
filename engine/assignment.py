"""Assignment (engine stage 4): choose a globally consistent set of one-to-one matches.

Candidate pairs above the review threshold form a bipartite graph. Each connected component is
solved exactly for the maximum total weight; the pipeline weighs a pair by its evidence in bits
(log2 odds above the review threshold), which adds up like a joint likelihood and, unlike a sum of
confidences, does not flatten out near 1:

- a component with a single bank line or a single ledger item (the vast majority) is solved
  vectorized: its best edge wins, the second best is the runner-up;
- a component with several lines on both sides is solved with the Hungarian method
  (``scipy.optimize.linear_sum_assignment``) and, for each chosen pair, re-solved without it to
  measure how much worse the best alternative is (the ambiguity margin) and who the runner-up is;
- a component larger than ``max_exact_nodes`` per side falls back to a documented greedy
  heuristic (highest confidence first, each line used once) and says so in ``method``.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

EXACT_METHOD = "exact"
GREEDY_METHOD = "greedy (component too large for exact assignment)"

ASSIGNED_SCHEMA = {
    "bank_idx": pl.UInt32,
    "ledger_idx": pl.UInt32,
    "margin": pl.Float64,
    "runner_up_bank_idx": pl.UInt32,
    "runner_up_ledger_idx": pl.UInt32,
    "method": pl.Utf8,
}

_RESOLVE_LIMIT = 40  # re-solve per chosen pair for components up to this many nodes per side


def _solve(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    rows, cols = linear_sum_assignment(weights, maximize=True)
    keep = weights[rows, cols] > 0
    rows, cols = rows[keep], cols[keep]
    return rows, cols, float(weights[rows, cols].sum())


def _solve_component(b: np.ndarray, l_: np.ndarray, c: np.ndarray, max_exact_nodes: int) -> list[tuple]:
    """Solve one component given edge arrays (global bank/ledger idx, confidence)."""
    ub, bi = np.unique(b, return_inverse=True)
    ul, li = np.unique(l_, return_inverse=True)
    out = []
    if max(len(ub), len(ul)) > max_exact_nodes:
        order = np.argsort(-c, kind="stable")
        used_b, used_l = set(), set()
        for k in order:
            if bi[k] in used_b or li[k] in used_l:
                continue
            used_b.add(bi[k])
            used_l.add(li[k])
            # local runner-up: best other edge touching either end
            others = ((bi == bi[k]) | (li == li[k])) & (np.arange(len(c)) != k)
            if others.any():
                j = np.flatnonzero(others)[np.argmax(c[others])]
                rb, rl = ub[bi[j]], ul[li[j]]
                margin = c[k] - c[j]
            else:
                rb, rl, margin = None, None, c[k]
            out.append((ub[bi[k]], ul[li[k]], margin, rb if rb != ub[bi[k]] else None,
                        rl if rl != ul[li[k]] else None, GREEDY_METHOD))
        return out
    weights = np.zeros((len(ub), len(ul)))
    weights[bi, li] = c
    rows, cols, total = _solve(weights)
    chosen = dict(zip(rows.tolist(), cols.tolist(), strict=True))
    chosen_by_col = {v: k for k, v in chosen.items()}
    small = max(len(ub), len(ul)) <= _RESOLVE_LIMIT
    for r, col in zip(rows.tolist(), cols.tolist(), strict=True):
        w = weights[r, col]
        rb = rl = None
        if small:
            alt = weights.copy()
            alt[r, col] = 0.0
            ar, ac, alt_total = _solve(alt)
            margin = total - alt_total
            alt_map = dict(zip(ar.tolist(), ac.tolist(), strict=True))
            alt_col_map = {v: k for k, v in alt_map.items()}
            if r in alt_map:  # the bank line would take another item
                rl = ul[alt_map[r]]
            elif col in alt_col_map:  # the item would go to another bank line
                rb = ub[alt_col_map[col]]
        else:
            row_alt = weights[r].copy()
            row_alt[col] = 0
            col_alt = weights[:, col].copy()
            col_alt[r] = 0
            best_row, best_col = row_alt.max(initial=0), col_alt.max(initial=0)
            # an alternative only counts if its other end is not better used elsewhere
            margin = w - max(best_row, best_col)
            if best_row >= best_col and best_row > 0:
                j = int(row_alt.argmax())
                rl = ul[j]
                if j in chosen_by_col and weights[chosen_by_col[j], j] > best_row:
                    margin = max(margin, w - best_col)
            elif best_col > 0:
                j = int(col_alt.argmax())
                rb = ub[j]
                if j in chosen and weights[j, chosen[j]] > best_col:
                    margin = max(margin, w - best_row)
        out.append((ub[r], ul[col], float(margin), rb, rl, EXACT_METHOD))
    return out


def assign_one_to_one(
    scored: pl.DataFrame, min_confidence: float, weight: str = "confidence", max_exact_nodes: int = 2000
) -> pl.DataFrame:
    """Globally consistent one-to-one assignment maximising the total weight per component.

    Parameters
    ----------
    scored
        ``bank_idx``, ``ledger_idx``, ``confidence`` and the ``weight`` column (> 0) for
        candidate pairs.
    min_confidence
        Pairs below this confidence are not considered (the review threshold).
    weight
        The column to maximise.
    max_exact_nodes
        Components with more lines than this on one side use the greedy fallback.

    Returns
    -------
    pl.DataFrame
        One row per chosen pair (``ASSIGNED_SCHEMA``): ``margin`` = how much total weight the
        best assignment without this pair loses (small = ambiguous); the runner-up is the bank
        line or ledger item the alternative would use instead.
    """
    edges = scored.filter(pl.col("confidence") >= min_confidence).select(
        "bank_idx", "ledger_idx", pl.col(weight).alias("confidence")
    )
    if edges.height == 0:
        return pl.DataFrame(schema=ASSIGNED_SCHEMA)
    b = edges["bank_idx"].to_numpy().astype(np.int64)
    l_ = edges["ledger_idx"].to_numpy().astype(np.int64)
    ub, bi = np.unique(b, return_inverse=True)
    ul, li = np.unique(l_, return_inverse=True)
    n = len(ub) + len(ul)
    graph = coo_matrix((np.ones(len(b)), (bi, li + len(ub))), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    edges = edges.with_columns(component=pl.Series(labels[bi], dtype=pl.Int64))
    edges = edges.with_columns(
        n_bank=pl.col("bank_idx").n_unique().over("component"),
        n_ledger=pl.col("ledger_idx").n_unique().over("component"),
    )

    # stars: one bank line (or one ledger item) in the component -> best edge wins
    star = edges.filter((pl.col("n_bank") == 1) | (pl.col("n_ledger") == 1)).sort(
        ["component", "confidence", "bank_idx", "ledger_idx"], descending=[False, True, False, False]
    )
    ranked = star.with_columns(rank=pl.int_range(pl.len()).over("component"))
    best = ranked.filter(pl.col("rank") == 0)
    second = ranked.filter(pl.col("rank") == 1).select(
        "component",
        pl.col("bank_idx").alias("_rb"),
        pl.col("ledger_idx").alias("_rl"),
        pl.col("confidence").alias("_rc"),
    )
    star_out = best.join(second, on="component", how="left").select(
        "bank_idx",
        "ledger_idx",
        (pl.col("confidence") - pl.col("_rc").fill_null(0.0)).alias("margin"),
        pl.when(pl.col("_rb") != pl.col("bank_idx")).then(pl.col("_rb")).alias("runner_up_bank_idx"),
        pl.when(pl.col("_rl") != pl.col("ledger_idx")).then(pl.col("_rl")).alias("runner_up_ledger_idx"),
        pl.lit(EXACT_METHOD).alias("method"),
    )

    # general components: Hungarian method per component
    general = edges.filter((pl.col("n_bank") > 1) & (pl.col("n_ledger") > 1)).sort("component")
    rows: list[tuple] = []
    if general.height:
        comp = general["component"].to_numpy()
        gb = general["bank_idx"].to_numpy().astype(np.int64)
        gl = general["ledger_idx"].to_numpy().astype(np.int64)
        gc = general["confidence"].to_numpy().astype(np.float64)
        bounds = np.flatnonzero(np.diff(comp)) + 1
        for s, e in zip(np.r_[0, bounds], np.r_[bounds, len(comp)], strict=True):
            rows.extend(_solve_component(gb[s:e], gl[s:e], gc[s:e], max_exact_nodes))
    general_out = pl.DataFrame(rows, schema=list(ASSIGNED_SCHEMA), orient="row") if rows else None
    frames = [star_out.cast(ASSIGNED_SCHEMA)]
    if general_out is not None:
        frames.append(general_out.cast(ASSIGNED_SCHEMA))
    return pl.concat(frames).sort("bank_idx")
