import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment

import engine.assignment.pairs as assignment
from engine.assignment.pairs import EXACT_METHOD, HEURISTIC_METHOD, LARGE_METHOD, assign_one_to_one


def _edges(rows):
    return pl.DataFrame(rows, schema={"bank_idx": pl.UInt32, "ledger_idx": pl.UInt32, "confidence": pl.Float64},
                        orient="row")


def _pairs(out):
    return sorted(zip(out["bank_idx"].to_list(), out["ledger_idx"].to_list(), strict=True))


def test_global_optimum_beats_greedy():
    # greedy would take (0,0)=0.95 first and leave bank 1 with nothing
    out = assign_one_to_one(_edges([(0, 0, 0.95), (0, 1, 0.90), (1, 0, 0.93)]), 0.5)
    assert _pairs(out) == [(0, 1), (1, 0)]


def test_each_line_used_once_and_low_edges_ignored():
    out = assign_one_to_one(_edges([(0, 0, 0.9), (1, 0, 0.8), (2, 1, 0.3)]), 0.5)
    assert _pairs(out) == [(0, 0)]
    row = out.row(0, named=True)
    assert row["runner_up_bank_idx"] == 1 and abs(row["margin"] - 0.1) < 1e-9


def test_runner_up_that_belongs_elsewhere_is_not_ambiguous():
    # bank 0 could take item 1, but item 1 clearly belongs to bank 1
    out = assign_one_to_one(_edges([(0, 0, 0.95), (0, 1, 0.93), (1, 1, 0.99)]), 0.5)
    assert _pairs(out) == [(0, 0), (1, 1)]
    margins = dict(zip(out["bank_idx"].to_list(), out["margin"].to_list(), strict=True))
    assert margins[0] > 0.5  # without (0,0) the best total loses ~0.95


def test_interchangeable_pairs_are_ambiguous_and_name_runner_up():
    out = assign_one_to_one(_edges([(0, 0, 0.9), (0, 1, 0.9), (1, 0, 0.9), (1, 1, 0.9)]), 0.5)
    assert len(out) == 2
    assert (out["margin"] < 1e-9).all()
    assert out["runner_up_ledger_idx"].is_not_null().all() | out["runner_up_bank_idx"].is_not_null().all()


def test_single_candidate_margin_is_its_confidence():
    out = assign_one_to_one(_edges([(3, 7, 0.8)]), 0.5)
    assert _pairs(out) == [(3, 7)]
    assert out["margin"].item() == 0.8 and out["runner_up_ledger_idx"].item() is None


def test_large_component_is_solved_exactly_and_says_how():
    # 20 x 20: each bank line b fits item b best; a greedy pass on the cross edges would not
    rows = [(b, led, 0.9 - 0.01 * abs(b - led)) for b in range(20) for led in range(20) if abs(b - led) <= 2]
    rows += [(0, 1, 0.95)]  # tempting for bank 0, but item 1 then leaves bank 1 worse off
    edges = _edges(rows).unique(subset=["bank_idx", "ledger_idx"], keep="last")
    out = assign_one_to_one(edges, 0.5, exact_below=-1.0)  # estimated margins only
    assert len(out) == 20
    assert (out["method"] == LARGE_METHOD).all()
    assert out["bank_idx"].n_unique() == 20 and out["ledger_idx"].n_unique() == 20
    total = edges.join(out.select("bank_idx", "ledger_idx"), on=["bank_idx", "ledger_idx"])["confidence"].sum()
    dense = np.zeros((20, 20))
    dense[edges["bank_idx"].to_numpy(), edges["ledger_idx"].to_numpy()] = edges["confidence"].to_numpy()
    r, c = linear_sum_assignment(dense, maximize=True)
    assert abs(total - dense[r, c].sum()) < 1e-9  # the same optimum as the dense Hungarian method


def test_close_margins_in_a_large_component_are_exact():
    rows = [(b, led, 0.9 - 0.01 * abs(b - led)) for b in range(20) for led in range(20) if abs(b - led) <= 2]
    edges = _edges(rows)
    out = assign_one_to_one(edges, 0.5, exact_below=1.0)  # every estimate is below 1: all re-solved
    assert (out["method"] == EXACT_METHOD).all()
    dense = np.zeros((20, 20))
    dense[edges["bank_idx"].to_numpy(), edges["ledger_idx"].to_numpy()] = edges["confidence"].to_numpy()
    r, c = linear_sum_assignment(dense, maximize=True)
    best = dense[r, c].sum()
    for b, led, margin in out.select("bank_idx", "ledger_idx", "margin").iter_rows():
        alt = dense.copy()
        alt[b, led] = 0.0
        ar, ac = linear_sum_assignment(alt, maximize=True)
        assert abs(margin - (best - alt[ar, ac].sum())) < 1e-9


def test_component_beyond_the_exact_limit_uses_the_heuristic_and_says_so(monkeypatch):
    monkeypatch.setattr(assignment, "_DENSE_LIMIT", 15)
    rows = [(b, led, 0.9 - 0.01 * abs(b - led)) for b in range(20) for led in range(20) if abs(b - led) <= 2]
    out = assign_one_to_one(_edges(rows), 0.5)
    assert (out["method"] == HEURISTIC_METHOD).all()
    assert sorted(zip(out["bank_idx"].to_list(), out["ledger_idx"].to_list(), strict=True)) == [(i, i) for i in range(20)]


def test_enumerated_small_components_agree_with_the_hungarian_method(monkeypatch):
    # many small components (2-4 lines a side, up to 10 edges) with distinct random weights: the
    # batched enumeration must pick the same pairs with the same margins and runner-ups as
    # solving each component alone with the Hungarian method and re-solving without each pair
    rng = np.random.default_rng(11)
    rows = []
    for comp in range(300):
        nb, nl = int(rng.integers(2, 5)), int(rng.integers(2, 5))
        cells = rng.permutation(nb * nl)[: int(rng.integers(3, min(nb * nl, 10) + 1))]
        for cell in cells.tolist():
            rows.append((100 * comp + cell // nl, 100 * comp + 50 + cell % nl, float(rng.uniform(0.5, 1.0))))
    edges = _edges(rows)
    enumerated = assign_one_to_one(edges, 0.5)
    monkeypatch.setattr(assignment, "_ENUMERATE_EDGES", 0)
    hungarian = assign_one_to_one(edges, 0.5)
    assert (enumerated["method"] == EXACT_METHOD).all()
    assert _pairs(enumerated) == _pairs(hungarian)
    a = enumerated.sort("bank_idx", "ledger_idx")
    b = hungarian.sort("bank_idx", "ledger_idx")
    assert np.allclose(a["margin"].to_numpy(), b["margin"].to_numpy())
    assert a["runner_up_bank_idx"].to_list() == b["runner_up_bank_idx"].to_list()
    assert a["runner_up_ledger_idx"].to_list() == b["runner_up_ledger_idx"].to_list()


def test_clashes_flag_every_selection_holding_two_overlapping_candidates():
    rng = np.random.default_rng(5)
    for n in (1, 3, 7):
        conflict = rng.integers(0, 1 << n, size=(6, n))  # not symmetric, may name itself
        expected = [
            [any(m >> i & 1 and m & int(conflict[k, i]) for i in range(n)) for m in range(1 << n)]
            for k in range(6)
        ]
        assert assignment._clashes(conflict).tolist() == expected
