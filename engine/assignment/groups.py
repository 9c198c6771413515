"""Assignment with groups (engine stage 4b): choose a consistent set of pairs and groups.

Candidate groups (:mod:`engine.candidates.groups`) and candidate pairs compete for the same bank lines and
ledger items. Every line and item may be used by at most one chosen candidate (a group uses its
members in full), and the chosen set maximises the total weight (evidence in bits above the
review threshold) of each connected component. That is a weighted set-packing problem, solved
exactly per component, after dropping candidates more than ``PRUNE_BELOW_BEST`` bits weaker than
the best candidate at every one of their lines (as the one-to-one assignment does):

- a component without any group is left to :func:`engine.assignment.pairs.assign_one_to_one`
  (the Hungarian method and its tiers);
- a component whose candidates all overlap each other (alternatives for one line) takes the
  best; the second best is the runner-up (vectorized);
- up to ``_ENUMERATE_LIMIT`` candidates: every feasible selection is enumerated (bit masks,
  vectorized), which also gives each chosen candidate's exact margin (the best selection
  without it) and the alternative that selection uses (the runner-up);
- up to ``_MILP_LIMIT`` candidates: an integer program solved by HiGHS
  (``scipy.optimize.milp``); a chosen candidate's margin is at least its weight less its
  rivals' weights (see :func:`_solve_milp`); where that bound is below the ambiguity margin the
  program is re-solved without it (exact), up to ``_RESOLVE_LIMIT`` times per component of at
  most ``_RESOLVE_MAX_CANDIDATES`` candidates; otherwise the bound stands (conservative: it can
  only send more to review);
- larger components fall back to a greedy choice by weight (:data:`GREEDY_METHOD`), which the
  proposal's explanation states.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pyarrow as pa
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from engine.assignment.pairs import (
    ASSIGNED_SCHEMA,
    EXACT_MARGIN_LIMIT,
    EXACT_METHOD,
    PRUNE_BELOW_BEST,
    assign_one_to_one,
    enumerate_set_packings,
    max_weight_matching,
)

ILP_METHOD = "exact (integer program over the component)"
ILP_LOCAL_METHOD = "exact (integer program; margin against the overlapping alternatives)"
ILP_PAIRS_METHOD = "exact (integer program; margin against the other pairings and single groups)"
GREEDY_METHOD = "greedy by confidence (component too large for the exact method)"

_ENUMERATE_LIMIT = 14
_MILP_LIMIT = 20_000
_RESOLVE_LIMIT = 1
_RESOLVE_MAX_CANDIDATES = 60  # larger components keep the proven lower bound as margin
_MILP_SECONDS = 20.0
_BATCH_CANDIDATES = 5_000  # mid-size components solved together, up to this many candidates
_GREEDY_ROUNDS = 64  # vectorized rounds of the greedy choice before it goes one by one

#: one row per chosen candidate of a mixed component
CHOSEN_SCHEMA = {
    "cand": pl.Int64,
    "margin": pl.Float64,
    "runner_up": pl.List(pl.Int64),
    "method": pl.Utf8,
}


def _milp(weights: np.ndarray, matrix: csr_matrix, excluded: int | None = None) -> tuple[np.ndarray, float] | None:
    upper = np.ones(len(weights))
    if excluded is not None:
        upper[excluded] = 0.0
    res = milp(
        -weights,
        constraints=LinearConstraint(matrix, -np.inf, 1.0),
        integrality=np.ones(len(weights)),
        bounds=Bounds(0.0, upper),
        options={"time_limit": _MILP_SECONDS},
    )
    if res.x is None:
        return None
    x = res.x > 0.5
    return x, float(weights[x].sum())


def _milp_batch(weights: np.ndarray, incidence: csr_matrix, spans: list[tuple[int, int]]) -> list | None:
    """Solve several independent components (row ranges ``spans`` of ``incidence``, which share
    no line) as one integer program: its optimum restricted to each component is that
    component's optimum, and one call to HiGHS instead of hundreds saves most of its set-up
    cost. Returns one (selection, total) per span, or ``None`` unless proven optimal."""
    lo, hi = spans[0][0], spans[-1][1]
    sub = incidence[lo:hi]
    used = np.zeros(sub.shape[1], dtype=bool)
    used[sub.indices] = True
    sub = sub[:, np.flatnonzero(used)]  # the lines in use, in order
    w = weights[lo:hi]
    res = milp(
        -w,
        constraints=LinearConstraint(sub.T.tocsr(), -np.inf, 1.0),
        integrality=np.ones(len(w)),
        bounds=Bounds(0.0, 1.0),
        options={"time_limit": _MILP_SECONDS},
    )
    if res.x is None or res.status != 0:
        return None
    x = res.x > 0.5
    return [(x[s - lo:e - lo], float(w[s - lo:e - lo][x[s - lo:e - lo]].sum())) for s, e in spans]


def _pair_margins(weights: np.ndarray, incidence: csr_matrix, is_pair: np.ndarray, chosen: np.ndarray,
                  wanted: list[int]) -> dict[int, tuple[float, list[int]]]:
    """Margins of chosen pairs against the other pairings, the chosen groups held fixed: the
    pairs clear of the chosen groups form a bipartite matching, re-solved (Hungarian method)
    without each wanted pair. Returns {candidate: (margin, runner-up candidates)}; empty when
    too large. (:func:`_solve_milp` then also weighs each overlapping group taking its place.)"""
    incidence.sort_indices()
    blocked = np.zeros(incidence.shape[1], dtype=bool)
    for g in np.flatnonzero(chosen & ~is_pair).tolist():
        blocked[incidence.indices[incidence.indptr[g]:incidence.indptr[g + 1]]] = True
    starts = incidence.indptr[:-1]
    free = is_pair & (incidence.indptr[1:] - starts == 2)
    first = np.where(free, incidence.indices[np.minimum(starts, len(incidence.indices) - 1)], 0)
    second = np.where(free, incidence.indices[np.minimum(starts + 1, len(incidence.indices) - 1)], 0)
    free &= ~blocked[first] & ~blocked[second]
    cands = np.flatnonzero(free)
    if len(cands) == 0:
        return {}
    ub, r = np.unique(first[cands], return_inverse=True)
    ul, c = np.unique(second[cands], return_inverse=True)
    # without the chosen groups the pairs fall apart into small matchings: solve each alone
    graph = coo_matrix((np.ones(len(cands)), (r, c + len(ub))), shape=(len(ub) + len(ul),) * 2)
    _, part = connected_components(graph, directed=False)
    part_of = part[r]
    wanted_set = {int(i) for i in wanted if free[i]}
    out = {}
    is_wanted = np.zeros(len(free), dtype=bool)
    is_wanted[list(wanted_set)] = True
    by_part = np.argsort(part_of, kind="stable")
    part_start = np.searchsorted(part_of[by_part], np.arange(part_of.max() + 2))
    for q in np.unique(part_of[is_wanted[cands]]).tolist():
        members = by_part[part_start[q]:part_start[q + 1]]
        qr, rr = np.unique(r[members], return_inverse=True)
        qc, cc = np.unique(c[members], return_inverse=True)
        if max(len(qr), len(qc)) > EXACT_MARGIN_LIMIT:
            continue
        matrix = np.zeros((len(qr), len(qc)))
        matrix[rr, cc] = weights[cands[members]]
        cand_at = np.zeros((len(qr), len(qc)), dtype=np.int64)
        cand_at[rr, cc] = cands[members]
        _, _, total = max_weight_matching(matrix)
        for a, b, i in zip(rr.tolist(), cc.tolist(), cands[members].tolist(), strict=True):
            if i not in wanted_set:
                continue
            saved = matrix[a, b]
            matrix[a, b] = 0.0
            ar, ac, alt_total = max_weight_matching(matrix)
            matrix[a, b] = saved
            # the pairs of the alternative that take this pair's line or item
            swap = (ar == a) != (ac == b)
            out[i] = (total - alt_total, cand_at[ar[swap], ac[swap]].tolist())
    return out


def _solve_milp(weights: np.ndarray, incidence: csr_matrix, conflict_lists: _Rivals,
                exact_below: float, is_pair: np.ndarray | None = None,
                solved: tuple[np.ndarray, float] | None = None) -> list[tuple] | None:
    """Integer program; margins re-solved exactly where they could matter.

    Without a chosen candidate ``i``, the best selection can only gain what ``i``'s rivals (the
    candidates overlapping it) add: everything else in it was compatible with ``i``; and it holds
    at most one rival per line of ``i``. So ``w_i`` less the sum, over ``i``'s lines, of the best
    rival at that line is a lower bound of the margin; when that bound already
    reaches ``exact_below`` (the ambiguity margin) the status cannot change and the bound is
    reported; otherwise the program is re-solved without ``i`` (up to ``_RESOLVE_LIMIT`` times).
    ``solved``: the optimum when already known (:func:`_milp_batch`).
    """
    incidence = incidence.tocsr()
    incidence.sort_indices()
    matrix = None  # the constraints (lines x candidates), when a program is solved here
    if solved is None:
        matrix = incidence.T.tocsr()
        solved = _milp(weights, matrix)
    if solved is None:
        return None
    x, total = solved
    chosen = np.flatnonzero(x).tolist()
    dense = None
    if incidence.shape[0] * incidence.shape[1] <= 4_000_000:
        dense = incidence.toarray() > 0
    # the lower bound of each chosen candidate's margin, and its heaviest rival
    bounds = {}
    for i in chosen:
        rivals_all = conflict_lists[i]
        if not len(rivals_all):
            continue
        best_rival = int(rivals_all[np.argmax(weights[rivals_all])])
        if len(rivals_all) == 1:
            bound = float(weights[i] - weights[best_rival])
        else:
            gain = weights[rivals_all].sum()
            if dense is not None:
                own_lines = incidence.indices[incidence.indptr[i]:incidence.indptr[i + 1]]
                at_line = dense[np.ix_(rivals_all, own_lines)] * weights[rivals_all][:, None]
                gain = min(gain, at_line.max(axis=0).sum())
            bound = float(weights[i] - gain)
        bounds[i] = (bound, best_rival)
    # chosen pairs with only pairs as rivals: exact margins by the Hungarian method, the chosen
    # groups held fixed (cheap, so every close one gets it)
    contested_pairs = []
    if is_pair is not None:
        contested_pairs = [i for i in chosen if is_pair[i] and i in bounds and bounds[i][0] < exact_below]
    by_hungarian = _pair_margins(weights, incidence, is_pair, x, contested_pairs) if contested_pairs else {}
    out = []
    resolves = 0
    for i in chosen:
        if i not in bounds:  # nothing overlaps it: without it, the rest stays as it is
            out.append((i, float(weights[i]), [], ILP_METHOD))
            continue
        rivals_all = conflict_lists[i]
        bound, best_rival = bounds[i]
        if bound >= exact_below:
            out.append((i, bound, [best_rival], ILP_METHOD))
            continue
        if i in by_hungarian:
            margin, rivals = by_hungarian[i]
            # and against each group that could take its place with what it overlaps
            for g in rivals_all[~is_pair[rivals_all]].tolist():
                displaced = conflict_lists[g][x[conflict_lists[g]]]
                loss = float(weights[displaced].sum() - weights[g])
                if loss < margin:
                    margin, rivals = loss, [g]
            out.append((i, margin, rivals, ILP_PAIRS_METHOD))
            continue
        if resolves < _RESOLVE_LIMIT and len(weights) <= _RESOLVE_MAX_CANDIDATES:
            resolves += 1
            if matrix is None:
                matrix = incidence.T.tocsr()
            alt = _milp(weights, matrix, excluded=i)
            if alt is not None:
                ax, atotal = alt
                rivals = [int(j) for j in rivals_all if ax[j]]
                out.append((i, total - atotal, rivals, ILP_METHOD))
                continue
        # the lower bound (conservative: more review, never a false auto)
        out.append((i, max(bound, 0.0), [best_rival], ILP_LOCAL_METHOD))
    return out


class _Rivals:
    """The candidates overlapping candidate ``i`` (sharing a line), worked out when asked for
    from a component's candidates x lines incidence (never the quadratic full list). For a pair
    a rival sharing both its lines is listed twice (only a group can): sums over rivals then
    understate margins, never overstate them."""

    def __init__(self, incidence: csr_matrix):
        self.rows = incidence.tocsr()
        self.cols = incidence.tocsc()
        self._cache: dict[int, np.ndarray] = {}

    def __getitem__(self, i: int) -> np.ndarray:
        got = self._cache.get(i)
        if got is None:
            lines = self.rows.indices[self.rows.indptr[i]:self.rows.indptr[i + 1]]
            touching = np.concatenate([self.cols.indices[self.cols.indptr[k]:self.cols.indptr[k + 1]] for k in lines])
            got = touching[touching != i].astype(np.int64)
            if len(lines) > 2:  # a group: a rival may share several of its lines
                got = np.unique(got)
            self._cache[i] = got
        return got


def _greedy(weights: np.ndarray, incidence: csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy choice by weight (ties: the lower candidate number first): each candidate is
    taken unless a heavier one overlapping it already was. The margin is the candidate's weight
    less its heaviest rival's, that rival the runner-up.

    Vectorized in rounds: a candidate that comes first at every one of its lines (among those
    still open) is taken, as the one-by-one greedy would; the lines it uses close, and so do
    the candidates on them. A long chain of ever-lighter overlaps would take a round per link,
    so after ``_GREEDY_ROUNDS`` rounds the rest is done one by one.

    Returns ``(chosen, margin, runner_up)``: the chosen candidates (ascending), their margins
    and their runner-ups (-1: none).
    """
    n = len(weights)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-weights, kind="stable")] = np.arange(n)
    entry_cand = np.repeat(np.arange(n), np.diff(incidence.indptr))
    entry_line = incidence.indices.astype(np.int64)
    taken = np.zeros(n, dtype=bool)
    used = np.zeros(incidence.shape[1], dtype=bool)  # lines of taken candidates
    for _ in range(_GREEDY_ROUNDS):
        if not len(entry_cand):
            break
        first_at_line = np.full(incidence.shape[1], n, dtype=np.int64)
        np.minimum.at(first_at_line, entry_line, rank[entry_cand])
        beaten = np.zeros(n, dtype=bool)
        beaten[entry_cand[first_at_line[entry_line] != rank[entry_cand]]] = True
        new = np.zeros(n, dtype=bool)
        new[entry_cand] = True
        new &= ~beaten
        taken |= new
        used[entry_line[new[entry_cand]]] = True
        closed = np.zeros(n, dtype=bool)
        closed[entry_cand[used[entry_line]]] = True
        entry_cand, entry_line = entry_cand[~closed[entry_cand]], entry_line[~closed[entry_cand]]
    if len(entry_cand):  # what is still open, one by one
        open_ = np.zeros(n, dtype=bool)
        open_[entry_cand] = True
        for i in np.flatnonzero(open_)[np.argsort(rank[open_], kind="stable")].tolist():
            lines = incidence.indices[incidence.indptr[i]:incidence.indptr[i + 1]]
            if not used[lines].any():
                taken[i] = True
                used[lines] = True
    chosen = np.flatnonzero(taken)
    runner_up = _heaviest_rivals(weights, incidence, chosen)
    margin = weights[chosen] - np.where(runner_up >= 0, weights[np.maximum(runner_up, 0)], 0.0)
    return chosen, margin, runner_up


def _heaviest_rivals(weights: np.ndarray, incidence: csr_matrix, who: np.ndarray) -> np.ndarray:
    """For each candidate in ``who``, its heaviest rival (-1: none), ties broken as
    ``rivals[np.argmax(weights[rivals])]`` over :class:`_Rivals` lists: the first in line order
    for a candidate of at most two lines, the lowest number for one of more (its list is
    sorted)."""
    columns = incidence.tocsc()
    starts, n_lines = incidence.indptr[who], np.diff(incidence.indptr)[who]
    owner = np.repeat(np.arange(len(who)), n_lines)
    lines = incidence.indices[_ranges(starts, n_lines)]
    on_line = np.diff(columns.indptr)[lines]
    owner = np.repeat(owner, on_line)
    rival = columns.indices[_ranges(columns.indptr[lines], on_line)].astype(np.int64)
    listed = np.arange(len(rival))  # the order of the rival lists
    keep = rival != who[owner]
    owner, rival, listed = owner[keep], rival[keep], listed[keep]
    tie_break = np.where(n_lines[owner] > 2, rival, listed)
    order = np.lexsort((tie_break, -weights[rival], owner))
    first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]] if len(order) else order
    out = np.full(len(who), -1, dtype=np.int64)
    out[owner[first]] = rival[first]
    return out


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])``, vectorized."""
    ends = np.cumsum(lengths)
    return np.repeat(np.asarray(starts, dtype=np.int64) - ends + lengths, lengths) + np.arange(ends[-1] if len(ends) else 0)


def _solve_mixed(component: np.ndarray, weights: np.ndarray, nodes: np.ndarray, node_start: np.ndarray,
                 exact_below: float, n_groups: int = 0) -> pl.DataFrame:
    """Solve every mixed component. Candidate ``k`` is in ``component[k]``, weighs
    ``weights[k]`` and uses the lines ``nodes[node_start[k]:node_start[k + 1]]``; candidates
    numbered ``n_groups`` and above are pairs."""
    cand_ids = np.argsort(component, kind="stable")  # by component, then candidate number
    n_all = len(cand_ids)
    comp = component[cand_ids]
    weight = weights[cand_ids].astype(np.float64)
    is_pair = cand_ids >= n_groups
    n_lines = np.diff(node_start)[cand_ids]
    member_row = np.repeat(np.arange(n_all), n_lines)
    member_node = nodes[_ranges(node_start[cand_ids], n_lines)].astype(np.int64)
    node_used = np.zeros(int(member_node.max()) + 1, dtype=bool)
    node_used[member_node] = True
    member_col = (np.cumsum(node_used) - 1)[member_node]  # the node's rank among those in use
    incidence = csr_matrix((np.ones(len(member_row)), (member_row, member_col)), shape=(n_all, int(member_col.max()) + 1))

    frames: list[pl.DataFrame] = []
    bounds = np.flatnonzero(np.diff(comp)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, n_all]
    size = ends - starts
    comp_index = np.repeat(np.arange(len(starts)), size)
    # cliques (one line that every candidate of the component uses: that line's alternatives)
    # -> the best wins, the second best is the runner-up; vectorized
    node_degree = np.bincount(member_col)
    comp_best_degree = np.zeros(len(starts), dtype=np.int64)
    np.maximum.at(comp_best_degree, comp_index[member_row], node_degree[member_col])
    clique = comp_best_degree == size
    # overlapping pairs, only where needed (small components): a line used by many candidates
    # would make the full list quadratic
    small = ~clique & (size <= _ENUMERATE_LIMIT)
    small_rows = np.flatnonzero(small[comp_index])
    if len(small_rows):
        part = incidence[small_rows]
        overlap = (part @ part.T).tocoo()
        off = overlap.row != overlap.col
        pair_i, pair_j = small_rows[overlap.row[off]], small_rows[overlap.col[off]]
    else:
        pair_i = pair_j = np.zeros(0, dtype=np.int64)
    comp_of_pair = comp_index[pair_i]
    clique_rows = np.flatnonzero(clique[comp_index])
    if len(clique_rows):
        # by component, the heaviest first (ties: the lower row): a component's first row wins,
        # the next one (if in the same component) is the runner-up
        ranked = clique_rows[np.lexsort((clique_rows, -weight[clique_rows], comp_index[clique_rows]))]
        ranked_comp = comp_index[ranked]
        first = np.flatnonzero(np.r_[True, ranked_comp[1:] != ranked_comp[:-1]])
        has_next = np.r_[ranked_comp[1:] == ranked_comp[:-1], False][first]
        runner_up = ranked[first[has_next] + 1]
        frames.append(pl.DataFrame({
            "cand": cand_ids[ranked[first]],
            "margin": weight[ranked[first]] - np.where(has_next, weight[ranked[np.minimum(first + 1, len(ranked) - 1)]], 0.0),
            "runner_up": _list_column(cand_ids[runner_up], has_next.astype(np.int64)),
            "method": EXACT_METHOD,
        }))
    # small components: every feasible selection enumerated, all components of a size at once
    for n in np.unique(size[small]).tolist():
        comps = np.flatnonzero(small & (size == n))
        rows_of = starts[comps][:, None] + np.arange(n)[None, :]  # k x n candidate rows
        selected = np.zeros(len(starts), dtype=bool)
        selected[comps] = True
        in_pair = selected[comp_of_pair]
        local_i = pair_i[in_pair] - starts[comp_of_pair[in_pair]]
        local_j = pair_j[in_pair] - starts[comp_index[pair_j[in_pair]]]
        slot = np.searchsorted(comps, comp_of_pair[in_pair])
        conflict = np.zeros((len(comps), n), dtype=np.int64)
        np.bitwise_or.at(conflict, (slot, local_i), np.left_shift(1, local_j))
        chosen, margin, rivals = enumerate_set_packings(weight[rows_of], conflict)
        kk, ii = np.nonzero(chosen)
        rival_bits = (rivals[kk, ii][:, None] >> np.arange(n)[None, :]) & 1  # chosen x n
        which, jj = np.nonzero(rival_bits)
        runner = (
            pl.DataFrame({"k": which, "r": cand_ids[rows_of[kk[which], jj]]})
            .group_by("k").agg(pl.col("r"))
        )
        frames.append(
            pl.DataFrame({"k": np.arange(len(kk)), "cand": cand_ids[rows_of[kk, ii]], "margin": margin[kk, ii]})
            .join(runner, on="k", how="left")
            .select("cand", "margin", pl.col("r").fill_null(pl.lit([], dtype=pl.List(pl.Int64))).alias("runner_up"),
                    pl.lit(EXACT_METHOD).alias("method"))
        )
    # mid-size components: their integer programs solved together in batches
    mid = np.flatnonzero(~clique & ~small & (size <= _MILP_LIMIT)).tolist()
    optimum: dict[int, tuple[np.ndarray, float]] = {}
    batch: list[int] = []
    for at, c in enumerate(mid):
        batch.append(c)
        if at == len(mid) - 1 or sum(int(size[b]) for b in batch) + int(size[mid[at + 1]]) > _BATCH_CANDIDATES:
            spans = [(int(starts[b]), int(ends[b])) for b in batch]
            found = _milp_batch(weight, incidence, spans) if len(batch) > 1 else None
            if found is not None:
                optimum.update(zip(batch, found, strict=True))
            batch = []
    # the rest one component at a time; lines renumbered component by component (in their
    # order), so that a component's lines are one block and its sub-matrix a plain slice
    line_comp = np.zeros(incidence.shape[1], dtype=np.int64)
    line_comp[member_col] = comp_index[member_row]
    line_order = np.argsort(line_comp, kind="stable")
    renumbered = np.empty(len(line_order), dtype=incidence.indices.dtype)
    renumbered[line_order] = np.arange(len(line_order))
    block_indices = renumbered[incidence.indices]
    line_start = np.searchsorted(line_comp[line_order], np.arange(len(starts) + 1))
    chosen_cand: list[np.ndarray] = []
    chosen_margin: list[np.ndarray] = []
    chosen_method: list[str] = []
    runner_ids: list[np.ndarray] = []
    runner_counts: list[np.ndarray] = []
    for c in np.flatnonzero(~clique & ~small).tolist():
        s, e = int(starts[c]), int(ends[c])
        w = weight[s:e]
        lo, hi = incidence.indptr[s], incidence.indptr[e]
        sub = csr_matrix(
            (incidence.data[lo:hi], block_indices[lo:hi] - line_start[c], incidence.indptr[s:e + 1] - lo),
            shape=(e - s, int(line_start[c + 1] - line_start[c])),
        )
        solved = None
        if e - s <= _MILP_LIMIT:
            solved = _solve_milp(w, sub, _Rivals(sub), exact_below, is_pair[s:e], optimum.get(c))
        if solved is None:
            picked, margin, runner_up = _greedy(w, sub)
            chosen_cand.append(cand_ids[s + picked])
            chosen_margin.append(margin)
            chosen_method.extend([GREEDY_METHOD] * len(picked))
            has_runner_up = runner_up >= 0
            runner_ids.append(cand_ids[s + runner_up[has_runner_up]])
            runner_counts.append(has_runner_up.astype(np.int64))
            continue
        runner_lists = [list(dict.fromkeys(int(cand_ids[s + j]) for j in rv)) for _, _, rv, _ in solved]
        chosen_cand.append(cand_ids[s + np.array([i for i, _, _, _ in solved], dtype=np.int64)])
        chosen_margin.append(np.array([m for _, m, _, _ in solved], dtype=np.float64))
        chosen_method.extend(method for _, _, _, method in solved)
        runner_ids.append(np.array([j for rv in runner_lists for j in rv], dtype=np.int64))
        runner_counts.append(np.array([len(rv) for rv in runner_lists], dtype=np.int64))
    if chosen_cand:
        frames.append(pl.DataFrame({
            "cand": np.concatenate(chosen_cand),
            "margin": np.concatenate(chosen_margin),
            "runner_up": _list_column(np.concatenate(runner_ids), np.concatenate(runner_counts)),
            "method": pl.Series(chosen_method, dtype=pl.Utf8),
        }, schema=CHOSEN_SCHEMA))
    if not frames:
        return pl.DataFrame(schema=CHOSEN_SCHEMA)
    return pl.concat([f.cast(CHOSEN_SCHEMA) for f in frames])


def _flat_lists(column: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """A list column's values and, for each value, its row number."""
    lengths = column.list.len().fill_null(0).to_numpy()
    values = column.explode().drop_nulls().to_numpy().astype(np.int64)
    return values, np.repeat(np.arange(len(lengths)), lengths)


def _list_column(values: np.ndarray, lengths: np.ndarray) -> pl.Series:
    """A list column of Int64 from its values laid end to end and each list's length (building
    it from Python lists costs about ten microseconds a row)."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pl.Series(pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.int64())))


def _prune(pairs: pl.DataFrame, groups: pl.DataFrame, n_bank: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Drop candidates far weaker (``PRUNE_BELOW_BEST``) than the best candidate at every one of
    their lines: such a candidate only matters if all those better ones are taken elsewhere,
    and keeping it would chain unrelated components together."""
    if groups.height == 0:
        return pairs, groups
    pair_bank = pairs["bank_idx"].to_numpy().astype(np.int64)
    pair_ledger = pairs["ledger_idx"].to_numpy().astype(np.int64) + n_bank
    pair_weight = pairs["weight"].to_numpy().astype(np.float64)
    group_bank, bank_row = _flat_lists(groups["bank_idx"])
    group_ledger, ledger_row = _flat_lists(groups["ledger_idx"])
    member_node = np.concatenate([group_bank, group_ledger + n_bank])
    member_row = np.concatenate([bank_row, ledger_row])
    group_weight = groups["weight"].to_numpy().astype(np.float64)
    # best weight at each line (node numbering as in assign_with_groups)
    best = np.full(int(max(pair_ledger.max(initial=0), member_node.max(initial=0))) + 1, -np.inf)
    np.maximum.at(best, pair_bank, pair_weight)
    np.maximum.at(best, pair_ledger, pair_weight)
    np.maximum.at(best, member_node, group_weight[member_row])
    keep_pair = (pair_weight >= best[pair_bank] - PRUNE_BELOW_BEST) | (pair_weight >= best[pair_ledger] - PRUNE_BELOW_BEST)
    member_ok = group_weight[member_row] >= best[member_node] - PRUNE_BELOW_BEST
    keep_group = np.bincount(member_row[member_ok], minlength=groups.height) > 0
    return pairs.filter(pl.Series(keep_pair)), groups.filter(pl.Series(keep_group))


def assign_with_groups(
    pairs: pl.DataFrame, groups: pl.DataFrame, min_confidence: float, n_bank: int, ambiguity_margin: float = 1.0
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Choose pairs and groups consistently.

    Parameters
    ----------
    pairs
        Scored pairs: ``bank_idx``, ``ledger_idx``, ``confidence``, ``weight``.
    groups
        Candidate groups with ``confidence`` and ``weight`` added; row order = group number.
    min_confidence
        Candidates below this are not considered (the review threshold).
    n_bank
        Rows of the bank frame (node numbering: ledger item ``i`` is node ``n_bank + i``).
    ambiguity_margin
        Margins below this are computed exactly (they decide ``review``); above it a proven lower
        bound may be reported instead.

    Returns
    -------
    (chosen_pairs, chosen_groups, pair_runner_ups)
        ``chosen_pairs`` in ``ASSIGNED_SCHEMA``; ``chosen_groups``: ``group`` (row number in
        ``groups``), ``margin``, ``method``, ``runner_up_pairs`` (list of (bank_idx, ledger_idx)
        structs) and ``runner_up_groups`` (list of group numbers); ``pair_runner_ups``: for
        pairs chosen in a component with groups, ``bank_idx``, ``ledger_idx`` and the same two
        runner-up columns.
    """
    pairs = pairs.filter(pl.col("confidence") >= min_confidence)
    groups = groups.with_row_index("group").filter(pl.col("confidence") >= min_confidence)
    pairs, groups = _prune(pairs, groups, n_bank)
    pair_struct = pl.Struct({"bank_idx": pl.UInt32, "ledger_idx": pl.UInt32})
    empty_ru = pl.DataFrame(schema={"bank_idx": pl.UInt32, "ledger_idx": pl.UInt32,
                                    "runner_up_pairs": pl.List(pair_struct), "runner_up_groups": pl.List(pl.UInt32)})
    chosen_groups_schema = {"group": pl.UInt32, "margin": pl.Float64, "method": pl.Utf8,
                            "runner_up_pairs": pl.List(pair_struct), "runner_up_groups": pl.List(pl.UInt32)}
    if groups.height == 0:
        return assign_one_to_one(pairs, min_confidence, weight="weight", exact_below=ambiguity_margin), pl.DataFrame(schema=chosen_groups_schema), empty_ru

    # each group's nodes: its bank lines, then its ledger items (node n_bank + i)
    group_bank, bank_row = _flat_lists(groups["bank_idx"])
    group_ledger, ledger_row = _flat_lists(groups["ledger_idx"])
    n_groups = groups.height
    banks_in = np.bincount(bank_row, minlength=n_groups)
    items_in = np.bincount(ledger_row, minlength=n_groups)
    group_start = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(banks_in + items_in, out=group_start[1:])
    group_nodes = np.empty(group_start[-1], dtype=np.int64)
    group_nodes[group_start[bank_row] + np.arange(len(bank_row)) - (np.cumsum(banks_in) - banks_in)[bank_row]] = group_bank
    group_nodes[group_start[ledger_row] + banks_in[ledger_row] + np.arange(len(ledger_row))
                - (np.cumsum(items_in) - items_in)[ledger_row]] = group_ledger + n_bank
    pb_nodes = pairs["bank_idx"].to_numpy().astype(np.int64)
    pl_nodes = pairs["ledger_idx"].to_numpy().astype(np.int64) + n_bank
    g_first = group_nodes[group_start[:-1]]
    # a graph over all node numbers (the unused ones stay alone); a group links its members to
    # its first one. Components are numbered in the order of their lowest node.
    src = np.concatenate([pb_nodes, np.repeat(g_first, np.diff(group_start))])
    dst = np.concatenate([pl_nodes, group_nodes])
    n_nodes = int(max(src.max(initial=0), dst.max(initial=0))) + 1
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n_nodes, n_nodes))
    _, labels = connected_components(graph, directed=False)
    comp_of_pair = labels[pb_nodes]
    comp_of_group = labels[g_first]
    mixed = np.zeros(labels.max() + 1 if len(labels) else 0, dtype=bool)
    mixed[comp_of_group] = True
    pair_mixed = mixed[comp_of_pair] if len(comp_of_pair) else np.zeros(0, dtype=bool)

    plain = pairs.filter(pl.Series(~pair_mixed))
    # components of pairs only and mixed components are independent: solve them side by side
    # (much of each is numpy, scipy and polars work that releases the GIL)
    with ThreadPoolExecutor(max_workers=1) as pool:
        plain_job = pool.submit(assign_one_to_one, plain, min_confidence, weight="weight", exact_below=ambiguity_margin)
        mixed_pairs = pairs.filter(pl.Series(pair_mixed))
        pair_nodes = np.column_stack([pb_nodes[pair_mixed], pl_nodes[pair_mixed]]).ravel()
        solved = _solve_mixed(
            np.concatenate([comp_of_group, comp_of_pair[pair_mixed]]),
            np.concatenate([groups["weight"].to_numpy(), mixed_pairs["weight"].to_numpy()]),
            np.concatenate([group_nodes, pair_nodes]),
            np.concatenate([group_start, group_start[-1] + 2 * np.arange(1, mixed_pairs.height + 1)]),
            ambiguity_margin, n_groups,
        )
        chosen_plain = plain_job.result()

    group_no = groups["group"]
    mp_b, mp_l = mixed_pairs["bank_idx"], mixed_pairs["ledger_idx"]

    def split_runner_ups(frame: pl.DataFrame) -> pl.DataFrame:
        ru = frame.select("cand", "runner_up").explode("runner_up").drop_nulls("runner_up")
        is_group = pl.col("runner_up") < n_groups
        ru_g = ru.filter(is_group)
        ru_groups = ru_g.select("cand", g=group_no.gather(ru_g["runner_up"])).group_by("cand").agg(
            pl.col("g").alias("runner_up_groups")
        )
        ru_p = ru.filter(~is_group)
        idx = (ru_p["runner_up"] - n_groups).cast(pl.UInt32)
        ru_pairs = ru_p.select("cand").with_columns(
            p=pl.struct(bank_idx=mp_b.gather(idx), ledger_idx=mp_l.gather(idx))
        ).group_by("cand").agg(pl.col("p").alias("runner_up_pairs"))
        return (
            frame.join(ru_groups, on="cand", how="left").join(ru_pairs, on="cand", how="left")
            .with_columns(
                pl.col("runner_up_groups").fill_null(pl.lit([], dtype=pl.List(pl.UInt32))),
                pl.col("runner_up_pairs").fill_null(pl.lit([], dtype=pl.List(pair_struct))),
            )
        )

    solved = split_runner_ups(solved)
    chosen_g = solved.filter(pl.col("cand") < n_groups)
    chosen_groups = chosen_g.select(
        pl.Series("group", group_no.gather(chosen_g["cand"]), dtype=pl.UInt32),
        "margin", "method", "runner_up_pairs", "runner_up_groups",
    ).cast(chosen_groups_schema)
    chosen_p = solved.filter(pl.col("cand") >= n_groups)
    idx = (chosen_p["cand"] - n_groups).cast(pl.UInt32)
    pair_ru = chosen_p.select(
        pl.Series("bank_idx", mp_b.gather(idx), dtype=pl.UInt32),
        pl.Series("ledger_idx", mp_l.gather(idx), dtype=pl.UInt32),
        "margin", "method", "runner_up_pairs", "runner_up_groups",
    )
    first_pair = pl.col("runner_up_pairs").list.first()
    mixed_assigned = pair_ru.select(
        "bank_idx", "ledger_idx", "margin",
        pl.when(first_pair.struct.field("bank_idx") != pl.col("bank_idx")).then(first_pair.struct.field("bank_idx")).alias("runner_up_bank_idx"),
        pl.when(first_pair.struct.field("ledger_idx") != pl.col("ledger_idx")).then(first_pair.struct.field("ledger_idx")).alias("runner_up_ledger_idx"),
        "method",
    ).cast(ASSIGNED_SCHEMA)
    chosen_pairs = pl.concat([chosen_plain.cast(ASSIGNED_SCHEMA), mixed_assigned]).sort("bank_idx")
    pair_runner_ups = pair_ru.select("bank_idx", "ledger_idx", "runner_up_pairs", "runner_up_groups").filter(
        pl.col("runner_up_groups").list.len() > 0
    )
    return chosen_pairs, chosen_groups, pair_runner_ups
