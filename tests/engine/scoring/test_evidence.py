"""Scoring internals that replace a per-pair Polars expression with flat arrays: they must give
exactly what the expression gives."""

import numpy as np
import polars as pl

from engine.scoring.evidence import shared_number


def testshared_number_is_the_first_bank_key_the_item_also_has():
    rng = np.random.default_rng(7)
    n_bank, n_ledger, n_pairs = 300, 200, 5000

    def lists(n, longest):
        # small numbers so that keys are often shared; some empty and some null lists
        out = [rng.integers(0, 12, rng.integers(0, longest + 1)).tolist() for _ in range(n)]
        return pl.Series([None if i % 17 == 0 else v for i, v in enumerate(out)], dtype=pl.List(pl.Int64))

    ref_keys, other_keys = lists(n_bank, 6), lists(n_ledger, 3)
    b = rng.integers(0, n_bank, n_pairs)
    l_ = rng.integers(0, n_ledger, n_pairs)
    expected = pl.DataFrame({"r": ref_keys.gather(b), "o": other_keys.gather(l_)}).select(
        pl.col("r").list.set_intersection(pl.col("o")).list.first()
    ).to_series()
    got = shared_number(b, l_, ref_keys, other_keys)
    assert expected.null_count() < n_pairs  # the case is not trivially empty
    assert got.to_list() == expected.to_list()


def testshared_number_of_pairs_without_keys_is_null():
    ref_keys = pl.Series([[], [4]], dtype=pl.List(pl.Int64))
    other_keys = pl.Series([[4], []], dtype=pl.List(pl.Int64))
    got = shared_number(np.array([0, 1, 1]), np.array([0, 1, 0]), ref_keys, other_keys)
    assert got.to_list() == [None, None, 4]
