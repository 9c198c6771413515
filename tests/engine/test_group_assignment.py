"""Choosing pairs and groups together: exact set packing per component."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest

from engine.assignment import groups as ga
from engine.candidates.groups import conform


def _pairs(rows):
    return pl.DataFrame(
        {"bank_idx": [r[0] for r in rows], "ledger_idx": [r[1] for r in rows], "weight": [r[2] for r in rows]},
        schema={"bank_idx": pl.UInt32, "ledger_idx": pl.UInt32, "weight": pl.Float64},
    ).with_columns(confidence=pl.lit(0.9))


def _groups(rows):
    frame = conform(pl.DataFrame({
        "kind": ["one_to_many"] * len(rows),
        "bank_idx": [r[0] for r in rows],
        "ledger_idx": [r[1] for r in rows],
        "score": [r[2] for r in rows],
        "ledger_total": [0] * len(rows),
        "evidence": [""] * len(rows),
    }, schema_overrides={"bank_idx": pl.List(pl.UInt32), "ledger_idx": pl.List(pl.UInt32)}))
    return frame.with_columns(weight=pl.col("score"), confidence=pl.lit(0.9))


def _run(pairs, groups, n_bank=10):
    return ga.assign_with_groups(_pairs(pairs), _groups(groups), 0.5, n_bank)


def test_a_heavier_group_beats_the_pair_it_overlaps_and_names_it_as_runner_up():
    chosen_pairs, chosen_groups, _ = _run([(0, 0, 6.0), (1, 5, 6.0)], [([0], [0, 1], 9.0)])
    assert chosen_groups["group"].to_list() == [0]
    assert chosen_groups["margin"][0] == pytest.approx(3.0)
    assert chosen_groups["runner_up_pairs"][0].to_list() == [{"bank_idx": 0, "ledger_idx": 0}]
    # the unrelated pair is still chosen, by the plain one-to-one path
    assert chosen_pairs.select("bank_idx", "ledger_idx").rows() == [(1, 5)]


def test_two_groupings_within_a_bit_are_both_visible():
    _, chosen_groups, _ = _run([], [([0], [0, 1], 8.0), ([0], [2, 3], 7.5)])
    assert chosen_groups["group"].to_list() == [0]
    assert chosen_groups["margin"][0] == pytest.approx(0.5)
    assert chosen_groups["runner_up_groups"][0].to_list() == [1]


def test_the_best_total_wins_over_the_single_best_candidate():
    # group B alone (7) vs group A + a pair (6 + 5.5): the combination is better
    chosen_pairs, chosen_groups, _ = _run([(1, 3, 5.5)], [([0], [0, 1], 6.0), ([1], [1, 2], 7.0)])
    assert chosen_groups["group"].to_list() == [0]
    assert chosen_pairs.select("bank_idx", "ledger_idx").rows() == [(1, 3)]


def _best_by_brute_force(weights, members):
    best = 0.0
    for k in range(len(weights) + 1):
        for combo in itertools.combinations(range(len(weights)), k):
            used = [m for i in combo for m in members[i]]
            if len(used) == len(set(used)):
                best = max(best, sum(weights[i] for i in combo))
    return best


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_integer_program_is_optimal_and_uses_no_line_twice(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    groups = []
    for _ in range(16):
        bank = sorted(rng.choice(6, size=int(rng.integers(1, 3)), replace=False).tolist())
        ledger = sorted(rng.choice(8, size=int(rng.integers(1, 4)), replace=False).tolist())
        groups.append((bank, ledger, float(rng.uniform(6, 9.9))))  # within the pruning distance
    members = [[f"b{b}" for b in g[0]] + [f"l{x}" for x in g[1]] for g in groups]
    expected = _best_by_brute_force([g[2] for g in groups], members)
    for limit in (ga._ENUMERATE_LIMIT, 2):  # enumeration, then forced through HiGHS
        monkeypatch.setattr(ga, "_ENUMERATE_LIMIT", limit)
        _, chosen, _ = _run([], groups)
        picked = chosen["group"].to_list()
        used = [m for i in picked for m in members[i]]
        assert len(used) == len(set(used))
        assert math.isclose(sum(groups[i][2] for i in picked), expected)


def test_a_candidate_far_weaker_than_the_best_at_all_its_lines_is_pruned():
    # the pair (0, 0) is 5 bits below the group at bank line 0 and at ledger item 0
    _, chosen_groups, _ = _run([(0, 0, 4.0)], [([0], [0, 1], 9.0)])
    assert chosen_groups["runner_up_pairs"][0].to_list() == []


def test_pair_margins_in_a_component_with_groups_count_the_whole_swap(monkeypatch):
    # b0-l0 and b1-l1 (6 each) against the swap b0-l1 + b1-l0 (5.5 each): the swap loses 1 bit;
    # a weak group over l0 and l1 would lose 9. Forced through the integer program.
    monkeypatch.setattr(ga, "_ENUMERATE_LIMIT", 2)
    pairs = [(0, 0, 6.0), (0, 1, 5.5), (1, 1, 6.0), (1, 0, 5.5)]
    chosen_pairs, chosen_groups, _ = _run(pairs, [([2], [0, 1], 3.0)])
    assert chosen_groups.height == 0
    got = {(b, l_): (m, method) for b, l_, m, method in chosen_pairs.select("bank_idx", "ledger_idx", "margin", "method").iter_rows()}
    assert set(got) == {(0, 0), (1, 1)}
    for margin, method in got.values():
        assert margin == pytest.approx(1.0)
        assert method == ga.ILP_PAIRS_METHOD


def test_components_solved_together_each_get_their_own_optimum(monkeypatch):
    # three independent components (disjoint lines), forced through one batched integer program
    monkeypatch.setattr(ga, "_ENUMERATE_LIMIT", 2)
    rng = np.random.default_rng(7)
    groups, members, parts = [], [], []
    for comp in range(3):
        start = len(groups)
        for _ in range(9):
            bank = sorted((10 * comp + rng.choice(4, size=int(rng.integers(1, 3)), replace=False)).tolist())
            ledger = sorted((10 * comp + rng.choice(6, size=int(rng.integers(1, 4)), replace=False)).tolist())
            groups.append((bank, ledger, float(rng.uniform(6, 9.9))))
            members.append([f"b{b}" for b in bank] + [f"l{x}" for x in ledger])
        parts.append(range(start, len(groups)))
    calls = []
    batch = ga._milp_batch
    monkeypatch.setattr(ga, "_milp_batch", lambda *a: calls.append(len(a[2])) or batch(*a))
    _, chosen, _ = _run([], groups, n_bank=40)
    assert calls and max(calls) > 1  # several components went to HiGHS in one call
    picked = set(chosen["group"].to_list())
    for part in parts:
        expected = _best_by_brute_force([groups[i][2] for i in part], [members[i] for i in part])
        assert math.isclose(sum(groups[i][2] for i in part if i in picked), expected)


def _greedy_one_by_one(weights, incidence):
    rivals = ga._Rivals(incidence)
    blocked = np.zeros(len(weights), dtype=bool)
    out = []
    for i in np.argsort(-weights, kind="stable").tolist():
        if not blocked[i]:
            out.append(i)
            blocked[rivals[i]] = True
    chosen = sorted(out)
    runner_up = [int(rivals[i][np.argmax(weights[rivals[i]])]) if len(rivals[i]) else -1 for i in chosen]
    return chosen, runner_up


@pytest.mark.parametrize(("seed", "rounds"), [(1, 64), (2, 64), (3, 1), (4, 0)])
def test_vectorized_greedy_takes_and_ranks_as_one_by_one(seed, rounds, monkeypatch):
    # pairs (two lines) and groups (two to five), weights from a few values: many ties
    monkeypatch.setattr(ga, "_GREEDY_ROUNDS", rounds)
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for cand in range(300):
        lines = rng.choice(120, size=2 if cand % 3 else int(rng.integers(2, 6)), replace=False)
        rows += [cand] * len(lines)
        cols += lines.tolist()
    incidence = ga.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(300, 120))
    weights = rng.choice([3.0, 5.0, 5.5, 8.0], size=300)
    chosen, margin, runner_up = ga._greedy(weights, incidence)
    expected_chosen, expected_runner_up = _greedy_one_by_one(weights, incidence)
    assert chosen.tolist() == expected_chosen
    assert runner_up.tolist() == expected_runner_up
    assert margin.tolist() == [weights[i] - (weights[j] if j >= 0 else 0.0) for i, j in zip(expected_chosen, expected_runner_up, strict=True)]
