"""The estimated scorer: weights estimated from the month itself (u from random pairs, m by EM),
deterministic for a seed, falling back to the rule set's weights with a warning when the
estimate does not converge."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from benchmarks.generate import generate, save
from engine import api
from engine.candidates.pairs import generate_candidates
from engine.pipeline import prepare_bank_frame, prepare_ledger_frame
from engine.scoring.estimate import EstimatedScorer, estimate, estimate_scorer, random_pairs
from engine.scoring.evidence import measure_pairs
from engine.scoring.levels import REFERENCE_LEVELS
from engine.scoring.score import level_codes
from engine.scoring.scorers import RulesScorer
from rules.model import default_rules

RULES = default_rules().with_changes(scoring={"scorer": "estimated"})


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    out = tmp_path_factory.mktemp("estimate")
    save(generate(1500, seed=21), out)
    bank = prepare_bank_frame(api.load_bank(out / "bank.csv").frame)
    ledger = prepare_ledger_frame(api.load_ledger(out / "ledger.csv").frame, RULES)
    pairs = generate_candidates(bank, ledger, RULES)
    evidence = measure_pairs(pairs, bank, ledger, RULES)
    codes = level_codes(evidence, bank, ledger, RULES)
    return {"out": out, "bank": bank, "ledger": ledger, "evidence": evidence, "codes": codes}


def test_em_converges_to_weights_that_read_like_evidence(month):
    scorer = estimate_scorer(month["evidence"], month["codes"], month["bank"], month["ledger"], RULES)
    result = scorer.estimate
    assert result.converged and 1 < result.iterations < RULES.scoring.estimation.max_iterations
    assert scorer.warnings == []
    # a share of matches no larger than a line each, and a prior far below zero: two random
    # lines are rarely a match
    assert 0 < result.expected_matches <= month["bank"].height
    assert result.prior < -8
    w = result.weights
    ref = {key: i for i, key in enumerate(REFERENCE_LEVELS)}
    assert w["reference"][ref["full"]] > w["reference"][ref["serial"]] > 0  # full beats the number alone
    assert w["amount"][0] > 0 and w["name"][2] > 0  # exact amount, same name
    assert w["reference"][ref["conflict"]] < 0 and w["name"][-1] < 0  # another reference, an unrelated name
    # m is a distribution over each comparison's levels
    for m in result.m.values():
        assert np.isclose(m.sum(), 1.0, atol=1e-6)


def test_estimation_is_deterministic_for_a_seed(month):
    args = (month["evidence"], month["codes"], month["bank"], month["ledger"])
    first, second = estimate(*args, RULES), estimate(*args, RULES)
    assert first.prior == second.prior
    for name in first.weights:
        assert np.array_equal(first.weights[name], second.weights[name])
    other_seed = RULES.with_changes(scoring={"scorer": "estimated", "estimation": {"seed": 7}})
    assert not np.array_equal(estimate(*args, other_seed).u["name"], first.u["name"])


def test_random_pairs_stay_within_currency_and_sign(month):
    pairs, population = random_pairs(month["bank"], month["ledger"], 5000, seed=1)
    bank = month["bank"][pairs["bank_idx"]]
    ledger = month["ledger"][pairs["ledger_idx"]]
    assert (bank["currency"] == ledger["currency"]).all()
    assert (bank["amount_minor"].sign() == ledger["amount_minor"].sign()).all()
    assert population > pairs.height


def test_no_convergence_falls_back_to_the_rule_set_with_a_warning(month):
    rules = RULES.with_changes(scoring={"scorer": "estimated", "estimation": {"max_iterations": 1, "tolerance": 1e-9}})
    scorer = estimate_scorer(month["evidence"], month["codes"], month["bank"], month["ledger"], rules)
    assert not scorer.converged
    assert any("did not converge" in warning for warning in scorer.warnings)
    fallback = scorer.score(month["evidence"], month["codes"])
    assert np.array_equal(fallback, RulesScorer(rules).score(month["evidence"], month["codes"]))


def test_a_common_exact_amount_weighs_less_than_a_unique_one(month):
    scorer = estimate_scorer(month["evidence"], month["codes"], month["bank"], month["ledger"], RULES)
    evidence, codes = month["evidence"], month["codes"]
    # the amount's own bits: the name's term frequency left out (every pair at "missing")
    amount_only = {**codes, "name": np.zeros_like(codes["name"])}
    bits = scorer.term_frequency_bits(evidence, amount_only) + scorer.estimate.weights["amount"][codes["amount"]]
    count = month["ledger"].select(pl.len().over("currency", "amount_minor")).to_series().to_numpy()
    count = count[evidence.ledger_rows]
    credit = evidence.amount_ledger > 0  # one currency-and-sign group: the same denominator
    exact = (codes["amount"] == 0) & credit
    unique = exact & (count == 1)
    common = exact & (count == count[exact].max())
    assert unique.any() and common.any()
    assert bits[unique].min() > bits[common].max()


def test_a_run_with_the_estimated_scorer_records_its_weights(month, tmp_path):
    out = month["out"]
    result = api.match(out / "bank.csv", out / "ledger.csv", rules=RULES)
    assert result.outcome.scorer_kind == "estimated"
    weights = result.outcome.weights
    assert {"comparison", "level", "prior_weight", "weight", "m", "u_random"} <= set(weights.columns)
    written = result.write(tmp_path / "run")
    from engine.workspace.store import Workspace

    with Workspace(written["workspace"]) as ws:
        stored = ws.query("SELECT scorer, count(*) AS n FROM weights GROUP BY scorer")
    assert stored.rows() == [("estimated", weights.height)]
    assert isinstance(EstimatedScorer, type)


def test_em_on_a_sample_of_lines_finds_about_the_same_weights(month):
    """A month with more candidates than scoring.estimation.em_pairs is estimated on the
    candidates of a sample of bank lines: the weights that decide most pairs barely move."""
    args = (month["evidence"], month["codes"], month["bank"], month["ledger"])
    full = estimate(*args, RULES)
    sampled_rules = RULES.with_changes(scoring={"scorer": "estimated", "estimation": {"em_pairs": 1_500}})
    sampled = estimate(*args, sampled_rules)
    assert month["evidence"].size > 2 * 1_500 and sampled.converged
    assert abs(sampled.prior - full.prior) < 1.0
    for name, level in (("reference", 0), ("amount", 0), ("name", 2)):
        assert abs(sampled.weights[name][level] - full.weights[name][level]) < 1.5
