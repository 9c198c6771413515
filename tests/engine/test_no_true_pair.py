"""A month with no true pair at all must give no automatic match (every amount 100.00, bank
payers ``CUSTOMER <n>``, ledger payers ``Customer <m> Limited`` with m never n), whatever the
scorer, with and without invoice serials equal to the bank's numbers."""

from __future__ import annotations

import polars as pl
import pytest

import engine.api as recon
from benchmarks.adversarial import no_true_pair
from benchmarks.generate import save

SCORERS = {"rules": {}, "estimated": {"scoring": {"scorer": "estimated"}}}


@pytest.fixture(scope="module", params=[False, True], ids=["no serials", "serials equal the bank numbers"])
def month(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("no_true_pair")
    save(no_true_pair(400, 1_600, seed=3, with_serials=request.param), out)
    return out, request.param


@pytest.mark.parametrize("scorer", sorted(SCORERS))
def test_no_automatic_match_and_at_most_review(month, scorer):
    out, with_serials = month
    rules = recon.default_rules().with_changes(**SCORERS[scorer]) if SCORERS[scorer] else None
    result = recon.match(out / "bank.csv", out / "ledger.csv", rules=rules)
    assert result.outcome.scorer_kind == scorer
    proposals = result.proposals
    assert proposals.filter(pl.col("status") == "auto").height == 0
    assert proposals.filter(pl.col("status") == "review").height <= result.bank.frame.height
    if with_serials:
        # the bank's number is some invoice's serial: a candidate, but the names differ in
        # their numbers, so never a confident one
        quoted = result.candidates.filter(pl.col("ref_level") == "serial")
        assert quoted.height > 300
        assert (quoted["name_level"] == "names differ in their numbers").all()
        assert quoted["confidence"].max() < recon.default_rules().thresholds.auto
