"""Assignment (engine stage 4): choose a globally consistent set of one-to-one matches.

Candidate pairs above the review threshold form a bipartite graph (an edge weaker than the best
edge of both its ends by more than ``PRUNE_BELOW_BEST`` is dropped first). Each connected component is
solved exactly for the maximum total weight; the pipeline weighs a pair by its evidence in bits
(log2 odds above the review threshold), which adds up like a joint likelihood and, unlike a sum of
confidences, does not flatten out near 1:

- a component with a single bank line or a single ledger item (the vast majority) is solved
  vectorized: its best edge wins, the second best is the runner-up;
- a component with several lines on both sides and at most ``_ENUMERATE_EDGES`` edges has every
  matching enumerated (all such components of one size at once, vectorized); the best wins, and
  the best without each chosen pair gives its ambiguity margin and runner-up;
- up to ``_RESOLVE_LIMIT`` lines a side it is solved with the Hungarian method
  (``scipy.optimize.linear_sum_assignment``) and, for each chosen pair, re-solved without it to
  measure how much worse the best alternative is (the ambiguity margin) and who the runner-up is;
- larger components (up to ``_DENSE_LIMIT`` lines per side) are solved exactly one by one; their
  margins come from the nearest alternative edges (vectorized), and those below the ambiguity
  margin are computed exactly by re-solving without the pair (components up to
  ``EXACT_MARGIN_LIMIT`` lines a side);
- a component larger still falls back to the mutual-best heuristic (:func:`_mutual_best`), and
  ``method`` says so (it ends up in the proposal's explanation).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

EXACT_METHOD = "exact"
LARGE_METHOD = "exact (margin against the nearest alternatives)"
HEURISTIC_METHOD = "mutual-best heuristic (component too large for the exact method)"

ASSIGNED_SCHEMA = {
    "bank_idx": pl.UInt32,
    "ledger_idx": pl.UInt32,
    "margin": pl.Float64,
    "runner_up_bank_idx": pl.UInt32,
    "runner_up_ledger_idx": pl.UInt32,
    "method": pl.Utf8,
}

#: an edge (or, with groups, a candidate) weaker than the best at each of its lines by more
#: than this many weight units (bits when weighing by evidence) is dropped before solving
PRUNE_BELOW_BEST = 4.0
_RESOLVE_LIMIT = 12  # components up to this many lines per side: re-solved per choice
_ENUMERATE_EDGES = 10  # ... and up to this many edges: every matching enumerated, in batches
_DENSE_LIMIT = 1500  # up to this many per side: exact Hungarian method on the dense matrix
#: components up to this many lines per side have their close margins re-solved exactly
EXACT_MARGIN_LIMIT = 300


def max_weight_matching(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Maximum-weight matching of a dense weight matrix (Hungarian method), keeping only the
    matched cells of positive weight.

    Parameters
    ----------
    weights
        ``rows x cols`` float array; 0 (or less) where a row and a column may not be matched.

    Returns
    -------
    (rows, cols, total)
        Row and column positions of the chosen cells (int arrays of equal length) and the
        sum of their weights.
    """
    rows, cols = linear_sum_assignment(weights, maximize=True)
    keep = weights[rows, cols] > 0
    rows, cols = rows[keep], cols[keep]
    return rows, cols, float(weights[rows, cols].sum())


def enumerate_set_packings(weights: np.ndarray, conflict: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact weighted set packing by enumeration, for ``k`` components of the same size ``n``
    (a few candidates each) at once: every selection of non-overlapping candidates is scored.

    Parameters
    ----------
    weights
        ``k x n`` float array: each component's candidates' weights.
    conflict
        ``k x n`` int64 array: for each candidate, a bit mask of the candidates of its
        component it overlaps (bit ``j`` for candidate ``j``).

    Returns
    -------
    (chosen, margin, rival_mask)
        Each ``k x n``: whether a candidate is chosen, its margin (the best total without it
        is that much lower) and, as a bit mask, the candidates that best selection uses in its
        place.
    """
    k, n = weights.shape
    masks = np.arange(1 << n, dtype=np.int64)
    bits = ((masks[:, None] >> np.arange(n)) & 1).astype(bool)  # 2^n x n
    out_chosen = np.zeros((k, n), dtype=bool)
    out_margin = np.zeros((k, n))
    out_rivals = np.zeros((k, n), dtype=np.int64)
    step = max(1, (1 << 22) // ((1 << n) * n))  # components per chunk: bounded memory
    for lo in range(0, k, step):
        w, c = weights[lo:lo + step], conflict[lo:lo + step]
        clash = _clashes(c)  # kk x 2^n
        totals = np.where(clash, -np.inf, w @ bits.T)  # kk x 2^n
        best = np.argmax(totals, axis=1)
        best_total = totals[np.arange(len(w)), best]
        chosen = bits[best]  # kk x n
        for i in range(n):
            without = np.where(bits[None, :, i], -np.inf, totals)
            alt = np.argmax(without, axis=1)
            out_margin[lo:lo + step, i] = best_total - without[np.arange(len(w)), alt]
            out_rivals[lo:lo + step, i] = masks[alt] & c[:, i]
        out_chosen[lo:lo + step] = chosen
    return out_chosen, out_margin, out_rivals


def _clashes(conflict: np.ndarray) -> np.ndarray:
    """Whether each selection (bit mask) holds two overlapping candidates (``conflict``: ``k x n``
    bit masks), for ``k`` components at once: ``k x 2^n``. Built up by the highest candidate of
    a selection: the selection without it, that candidate's conflicts within the selection, and
    the candidates whose conflicts name it."""
    k, n = conflict.shape
    named_by = ((((conflict[:, :, None] >> np.arange(n)) & 1)) << np.arange(n)[None, :, None]).sum(axis=1)  # k x n
    clash = np.zeros((k, 1 << n), dtype=bool)
    for top in range(n):
        below = np.arange(1 << top, dtype=np.int64)[None, :]
        clash[:, 1 << top:2 << top] = (
            clash[:, :1 << top]
            | (((below | (1 << top)) & conflict[:, top, None]) != 0)
            | ((below & named_by[:, top, None]) != 0)
        )
    return clash


def _solve_component(b: np.ndarray, l_: np.ndarray, c: np.ndarray) -> list[tuple]:
    """Solve one small component exactly and measure each choice's margin by re-solving
    without it (edge arrays: global bank idx, ledger idx, weight)."""
    ub, bi = np.unique(b, return_inverse=True)
    ul, li = np.unique(l_, return_inverse=True)
    weights = np.zeros((len(ub), len(ul)))
    weights[bi, li] = c
    rows, cols, total = max_weight_matching(weights)
    out = []
    for r, col in zip(rows.tolist(), cols.tolist(), strict=True):
        rb = rl = None
        alt = weights.copy()
        alt[r, col] = 0.0
        ar, ac, alt_total = max_weight_matching(alt)
        alt_map = dict(zip(ar.tolist(), ac.tolist(), strict=True))
        alt_col_map = {v: k for k, v in alt_map.items()}
        if r in alt_map:  # the bank line would take another item
            rl = ul[alt_map[r]]
        elif col in alt_col_map:  # the item would go to another bank line
            rb = ub[alt_col_map[col]]
        out.append((ub[r], ul[col], total - alt_total, rb, rl, EXACT_METHOD))
    return out


def _enumerate_components(edges: pl.DataFrame) -> pl.DataFrame:
    """Exact matching with exact margins for components of at most ``_ENUMERATE_EDGES`` edges,
    all components with the same number of edges at once (:func:`enumerate_set_packings`; edges
    conflict when they share a bank line or a ledger item). The runner-up is what the best
    matching without the chosen pair gives the bank line instead, else the ledger item."""
    edges = edges.sort("n_edges", "component", "bank_idx", "ledger_idx")
    sizes = edges["n_edges"].to_numpy()
    comp = edges["component"].to_numpy()
    gb = edges["bank_idx"].to_numpy().astype(np.int64)
    gl = edges["ledger_idx"].to_numpy().astype(np.int64)
    gc = edges["confidence"].to_numpy().astype(np.float64)
    starts = np.flatnonzero(np.r_[True, comp[1:] != comp[:-1]])
    out = []
    for n in np.unique(sizes[starts]).tolist():
        rows_of = starts[sizes[starts] == n][:, None] + np.arange(n)[None, :]  # k x n edges
        b, l_ = gb[rows_of], gl[rows_of]
        shares_bank = b[:, :, None] == b[:, None, :]  # k x n x n
        overlap = (shares_bank | (l_[:, :, None] == l_[:, None, :])) & ~np.eye(n, dtype=bool)
        conflict = (overlap.astype(np.int64) << np.arange(n)).sum(axis=2)
        chosen, margin, rivals = enumerate_set_packings(gc[rows_of], conflict)
        kk, ii = np.nonzero(chosen)
        rival = ((rivals[kk, ii][:, None] >> np.arange(n)) & 1).astype(bool)  # chosen x n
        via_bank = rival & shares_bank[kk, ii]  # the bank line takes another item
        via_item = rival & ~shares_bank[kk, ii]  # the item goes to another bank line
        has_bank, has_item = via_bank.any(axis=1), via_item.any(axis=1)
        alt_item = l_[kk, np.argmax(via_bank, axis=1)]
        alt_bank = b[kk, np.argmax(via_item, axis=1)]
        out.append(pl.DataFrame({
            "bank_idx": b[kk, ii], "ledger_idx": l_[kk, ii], "margin": margin[kk, ii],
            "runner_up_bank_idx": pl.Series(np.where(~has_bank & has_item, alt_bank, -1)),
            "runner_up_ledger_idx": pl.Series(np.where(has_bank, alt_item, -1)),
        }).with_columns(
            pl.col("runner_up_bank_idx", "runner_up_ledger_idx").replace(-1, None),
            method=pl.lit(EXACT_METHOD),
        ))
    return pl.concat(out)


def _solve_dense(b: np.ndarray, l_: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact maximum-weight matching of one component (Hungarian method on its dense matrix)."""
    ub, bi = np.unique(b, return_inverse=True)
    ul, li = np.unique(l_, return_inverse=True)
    weights = np.zeros((len(ub), len(ul)))
    weights[bi, li] = c
    rows, cols, _ = max_weight_matching(weights)
    return ub[rows], ul[cols]


def _mutual_best(edges: pl.DataFrame) -> pl.DataFrame:
    """Heuristic for components too large for the exact method: repeatedly accept every edge
    that is the best edge of both its ends (ties broken by index), remove those lines and items,
    and repeat until no edge is left. Vectorized; every round accepts at least the overall best
    edge, and an accepted edge is never worse than any remaining edge at its two ends."""
    remaining = edges.select("bank_idx", "ledger_idx", "confidence")
    chosen: list[pl.DataFrame] = []
    while remaining.height:
        ranked = remaining.sort(["confidence", "bank_idx", "ledger_idx"], descending=[True, False, False])
        best_b = ranked.group_by("bank_idx", maintain_order=True).first()
        best_l = ranked.group_by("ledger_idx", maintain_order=True).first()
        mutual = best_b.join(best_l, on=["bank_idx", "ledger_idx"], how="inner").select("bank_idx", "ledger_idx")
        chosen.append(mutual)
        remaining = remaining.join(mutual.select("bank_idx"), on="bank_idx", how="anti").join(
            mutual.select("ledger_idx"), on="ledger_idx", how="anti"
        )
    return pl.concat(chosen)


def _local_margins(edges: pl.DataFrame, chosen: pl.DataFrame, method: str) -> pl.DataFrame:
    """Margin of each chosen pair against its nearest alternatives (vectorized, conservative).

    For a chosen pair (b, l) of weight w the alternatives are: leaving both unmatched (loses w);
    b taking another item l' (w - w(b, l')); l going to another line b' (w - w(b', l)). What the
    displaced line or item would do instead is not followed up, so the margin can only be
    understated (more review, never a false ``auto``). The runner-up is that alternative's line
    or item.
    """
    pair_w = edges.select("bank_idx", "ledger_idx", pl.col("confidence").alias("w"))
    chosen = chosen.join(pair_w, on=["bank_idx", "ledger_idx"], how="left")
    via_item = (
        chosen.select("bank_idx", pl.col("ledger_idx").alias("l0"), pl.col("w").alias("w0"))
        .join(pair_w, on="bank_idx")
        .filter(pl.col("ledger_idx") != pl.col("l0"))
        .select(
            "bank_idx",
            (pl.col("w0") - pl.col("w")).alias("loss"),
            pl.col("ledger_idx").alias("alt_ledger"),
            pl.lit(None, dtype=pl.UInt32).alias("alt_bank"),
        )
    )
    via_line = (
        chosen.select(pl.col("bank_idx").alias("b0"), "ledger_idx", pl.col("w").alias("w0"))
        .join(pair_w, on="ledger_idx")
        .filter(pl.col("bank_idx") != pl.col("b0"))
        .select(
            pl.col("b0").alias("bank_idx"),
            (pl.col("w0") - pl.col("w")).alias("loss"),
            pl.lit(None, dtype=pl.UInt32).alias("alt_ledger"),
            pl.col("bank_idx").alias("alt_bank"),
        )
    )
    alternatives = pl.concat([via_item, via_line]).sort("loss").group_by("bank_idx", maintain_order=True).first()
    return (
        chosen.join(alternatives, on="bank_idx", how="left")
        .select(
            "bank_idx",
            "ledger_idx",
            pl.min_horizontal("w", pl.col("loss").fill_null(float("inf"))).alias("margin"),
            pl.when(pl.col("loss") < pl.col("w")).then(pl.col("alt_bank")).alias("runner_up_bank_idx"),
            pl.when(pl.col("loss") < pl.col("w")).then(pl.col("alt_ledger")).alias("runner_up_ledger_idx"),
            pl.lit(method).alias("method"),
        )
    )


def _exact_close_margins(edges: pl.DataFrame, chosen: pl.DataFrame, exact_below: float) -> pl.DataFrame:
    """Exact margins for the chosen pairs whose local estimate is below ``exact_below``, in
    components of at most ``EXACT_MARGIN_LIMIT`` lines a side: the component is solved again
    without the pair (the estimate ignores that the alternative's line or item is itself taken,
    which can make two equally good-looking days a clear call)."""
    close = chosen.filter(pl.col("margin") < exact_below).join(
        edges.select("bank_idx", "component", "n_bank", "n_ledger").unique("bank_idx"), on="bank_idx"
    ).filter(pl.max_horizontal("n_bank", "n_ledger") <= EXACT_MARGIN_LIMIT)
    if close.height == 0:
        return chosen
    comps = close["component"].unique().sort()
    sub = edges.join(pl.DataFrame({"component": comps}), on="component").sort("component")
    comp = sub["component"].to_numpy()
    gb = sub["bank_idx"].to_numpy().astype(np.int64)
    gl = sub["ledger_idx"].to_numpy().astype(np.int64)
    gc = sub["confidence"].to_numpy().astype(np.float64)
    bounds = np.flatnonzero(np.diff(comp)) + 1
    wanted = close.group_by("component").agg("bank_idx", "ledger_idx")
    wanted_map = {c: (b, l_) for c, b, l_ in wanted.iter_rows()}
    rows = []
    for s, e in zip(np.r_[0, bounds], np.r_[bounds, len(comp)], strict=True):
        ub, bi = np.unique(gb[s:e], return_inverse=True)
        ul, li = np.unique(gl[s:e], return_inverse=True)
        weights = np.zeros((len(ub), len(ul)))
        weights[bi, li] = gc[s:e]
        _, _, total = max_weight_matching(weights)
        for b, l_ in zip(*wanted_map[int(comp[s])], strict=True):
            r, c = int(np.searchsorted(ub, b)), int(np.searchsorted(ul, l_))
            saved = weights[r, c]
            weights[r, c] = 0.0
            ar, ac, alt_total = max_weight_matching(weights)
            weights[r, c] = saved
            alt = dict(zip(ar.tolist(), ac.tolist(), strict=True))
            alt_col = {v: k for k, v in alt.items()}
            rows.append((b, l_, total - alt_total,
                         int(ub[alt_col[c]]) if c in alt_col and r not in alt else None,
                         int(ul[alt[r]]) if r in alt else None))
    exact = pl.DataFrame(rows, schema={"bank_idx": pl.UInt32, "ledger_idx": pl.UInt32, "_m": pl.Float64,
                                       "_rb": pl.UInt32, "_rl": pl.UInt32}, orient="row")
    return chosen.join(exact, on=["bank_idx", "ledger_idx"], how="left").with_columns(
        margin=pl.coalesce("_m", "margin"),
        runner_up_bank_idx=pl.when(pl.col("_m").is_not_null()).then(pl.col("_rb")).otherwise(pl.col("runner_up_bank_idx")),
        runner_up_ledger_idx=pl.when(pl.col("_m").is_not_null()).then(pl.col("_rl")).otherwise(pl.col("runner_up_ledger_idx")),
        method=pl.when(pl.col("_m").is_not_null()).then(pl.lit(EXACT_METHOD)).otherwise(pl.col("method")),
    ).drop("_m", "_rb", "_rl")


def assign_one_to_one(scored: pl.DataFrame, min_confidence: float, weight: str = "confidence",
                      exact_below: float = 1.0) -> pl.DataFrame:
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
    exact_below
        In components solved with estimated margins, a chosen pair whose estimate is below this
        (the ambiguity margin) gets its exact margin (the component re-solved without it).

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
    w = edges["confidence"].to_numpy().astype(np.float64)
    # an edge far weaker than the best edge of BOTH its ends cannot matter unless both of those
    # are taken; dropping such edges keeps components small without changing real outcomes
    n_b, n_l = int(b.max()) + 1, int(l_.max()) + 1
    best_b, best_l = np.full(n_b, -np.inf), np.full(n_l, -np.inf)
    np.maximum.at(best_b, b, w)
    np.maximum.at(best_l, l_, w)
    keep = (w >= best_b[b] - PRUNE_BELOW_BEST) | (w >= best_l[l_] - PRUNE_BELOW_BEST)
    edges, b, l_ = edges.filter(pl.Series(keep)), b[keep], l_[keep]
    # components over all line numbers (bank lines, then ledger items; the unused ones stay
    # alone), numbered in the order of their lowest line
    graph = coo_matrix((np.ones(len(b)), (b, l_ + n_b)), shape=(n_b + n_l,) * 2)
    _, labels = connected_components(graph, directed=False)
    used_b, used_l = np.zeros(n_b, dtype=bool), np.zeros(n_l, dtype=bool)
    used_b[b] = True
    used_l[l_] = True
    banks_in = np.bincount(labels[:n_b][used_b], minlength=len(labels))
    items_in = np.bincount(labels[n_b:][used_l], minlength=len(labels))
    component = labels[b]
    edges = edges.with_columns(
        component=pl.Series(component, dtype=pl.Int64),
        n_bank=pl.Series(banks_in[component], dtype=pl.UInt32),
        n_ledger=pl.Series(items_in[component], dtype=pl.UInt32),
    )

    # stars: one bank line (or one ledger item) in the component -> best edge wins
    star = edges.filter((pl.col("n_bank") == 1) | (pl.col("n_ledger") == 1)).sort(
        ["component", "confidence", "bank_idx", "ledger_idx"], descending=[False, True, False, False]
    )
    # sorted by component: a component's best edge is its first row, the runner-up the next
    next_in_component = pl.col("component").shift(-1) == pl.col("component")
    star_out = star.select(
        "bank_idx",
        "ledger_idx",
        (pl.col("confidence") - pl.when(next_in_component).then(pl.col("confidence").shift(-1)).otherwise(0.0)).alias("margin"),
        pl.when(next_in_component & (pl.col("bank_idx").shift(-1) != pl.col("bank_idx")))
        .then(pl.col("bank_idx").shift(-1)).alias("runner_up_bank_idx"),
        pl.when(next_in_component & (pl.col("ledger_idx").shift(-1) != pl.col("ledger_idx")))
        .then(pl.col("ledger_idx").shift(-1)).alias("runner_up_ledger_idx"),
        pl.lit(EXACT_METHOD).alias("method"),
    ).filter(star["component"].shift(1, fill_value=-1) != star["component"])

    # general components: small ones exactly one by one (with exact margins), the rest at once
    general = edges.filter((pl.col("n_bank") > 1) & (pl.col("n_ledger") > 1)).sort("component")
    frames = [star_out.cast(ASSIGNED_SCHEMA)]
    small = general.filter(pl.max_horizontal("n_bank", "n_ledger") <= _RESOLVE_LIMIT)
    if small.height:
        small = small.with_columns(n_edges=pl.len().over("component"))
        few = small.filter(pl.col("n_edges") <= _ENUMERATE_EDGES)
        if few.height:
            frames.append(_enumerate_components(few).cast(ASSIGNED_SCHEMA))
        small = small.filter(pl.col("n_edges") > _ENUMERATE_EDGES)
    if small.height:
        rows: list[tuple] = []
        comp = small["component"].to_numpy()
        gb = small["bank_idx"].to_numpy().astype(np.int64)
        gl = small["ledger_idx"].to_numpy().astype(np.int64)
        gc = small["confidence"].to_numpy().astype(np.float64)
        bounds = np.flatnonzero(np.diff(comp)) + 1
        for s, e in zip(np.r_[0, bounds], np.r_[bounds, len(comp)], strict=True):
            rows.extend(_solve_component(gb[s:e], gl[s:e], gc[s:e]))
        if rows:
            frames.append(pl.DataFrame(rows, schema=list(ASSIGNED_SCHEMA), orient="row", infer_schema_length=None).cast(ASSIGNED_SCHEMA))
    middle = general.filter(
        pl.max_horizontal("n_bank", "n_ledger").is_between(_RESOLVE_LIMIT + 1, _DENSE_LIMIT)
    )
    if middle.height:
        comp = middle["component"].to_numpy()
        gb = middle["bank_idx"].to_numpy().astype(np.int64)
        gl = middle["ledger_idx"].to_numpy().astype(np.int64)
        gc = middle["confidence"].to_numpy().astype(np.float64)
        bounds = np.flatnonzero(np.diff(comp)) + 1
        picked_b, picked_l = [], []
        for s, e in zip(np.r_[0, bounds], np.r_[bounds, len(comp)], strict=True):
            cb, cl = _solve_dense(gb[s:e], gl[s:e], gc[s:e])
            picked_b.append(cb)
            picked_l.append(cl)
        chosen = pl.DataFrame(
            {"bank_idx": np.concatenate(picked_b).astype(np.uint32),
             "ledger_idx": np.concatenate(picked_l).astype(np.uint32)}
        )
        local = _local_margins(middle, chosen, LARGE_METHOD)
        frames.append(_exact_close_margins(middle, local, exact_below).cast(ASSIGNED_SCHEMA))
    huge = general.filter(pl.max_horizontal("n_bank", "n_ledger") > _DENSE_LIMIT)
    if huge.height:
        frames.append(_local_margins(huge, _mutual_best(huge), HEURISTIC_METHOD).cast(ASSIGNED_SCHEMA))
    return pl.concat(frames).sort("bank_idx")
