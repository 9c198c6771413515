import polars as pl

from engine.assignment import GREEDY_METHOD, assign_one_to_one


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


def test_large_component_falls_back_to_greedy_and_says_so():
    rows = [(b, led, 0.9 - 0.001 * abs(b - led)) for b in range(6) for led in range(6)]
    out = assign_one_to_one(_edges(rows), 0.5, max_exact_nodes=3)
    assert len(out) == 6
    assert (out["method"] == GREEDY_METHOD).all()
    assert out["bank_idx"].n_unique() == 6 and out["ledger_idx"].n_unique() == 6
