"""The learned scorer (engine stage 3, scoring): the estimator's scikit-learn conformance, the
labels, the model file's round trip and every refusal, and the calibration on a month it was not
trained on.

The months are generated (``benchmarks.generate``, 1,500 bank lines) so the module runs in a few
seconds.
"""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from sklearn.utils.estimator_checks import check_estimator

from benchmarks.generate import generate, save
from engine import api
from engine.candidates.pairs import generate_candidates
from engine.evaluate import load_truth
from engine.pipeline import prepare_bank_frame, prepare_ledger_frame
from engine.scoring.evidence import measure_pairs
from engine.scoring.learned import (
    FORMAT,
    LABEL_SCHEMA,
    NUMERIC_FEATURES,
    VERSION,
    CalibratedPairClassifier,
    LearnedScorer,
    feature_names,
    label_pairs,
    pair_features,
    train_scorer,
    truth_labels,
)
from engine.scoring.levels import COMPARISONS, comparisons_for
from engine.scoring.score import confidence_of, level_codes
from engine.scoring.scorers import RulesScorer
from models.errors import InputError, ModelFileError, ReconError

# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_estimator_follows_scikit_learn(calibration):
    """scikit-learn's conformance checks, every one that applies here; the two that need
    pandas or the array API (not dependencies of recon) report themselves as not run."""
    outcomes = []
    check_estimator(CalibratedPairClassifier(calibration=calibration), on_skip=None, on_fail=None,
                    callback=lambda **kw: outcomes.append((kw["status"], kw["check_name"])))
    failed = [check for status, check in outcomes if status == "failed"]
    not_run = {check for status, check in outcomes if status == "skipped"}
    assert len(outcomes) > 40 and failed == []
    assert not_run <= {"check_dataframe_column_names_consistency", "check_array_api_input",
                       "check_classifier_data_not_an_array"}


def _blobs(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    X = rng.normal(size=(n, 3)) + y[:, None] * np.array([2.0, 0.0, -1.0])
    return X, y


def test_same_seed_same_model_and_hyperparameters_kept():
    X, y = _blobs()
    first = CalibratedPairClassifier(C=0.5, random_state=7).fit(X, y)
    second = CalibratedPairClassifier(C=0.5, random_state=7).fit(X, y)
    assert first.get_params()["C"] == 0.5
    assert np.array_equal(first.coef_, second.coef_)
    assert first.calibration_ == second.calibration_
    # a quarter of each class calibrates
    assert first.n_calibration_ == math.floor(0.25 * y.sum()) + math.floor(0.25 * (~y).sum())
    assert list(first.classes_) == [False, True]


def test_decision_is_the_calibrated_log_odds():
    X, y = _blobs()
    model = CalibratedPairClassifier().fit(X, y)
    p = model.predict_proba(X)[:, 1]
    assert np.allclose(np.log(p / (1 - p)), model.decision_function(X))
    assert np.array_equal(model.predict(X), model.classes_[(p > 0.5).astype(int)])


@pytest.mark.parametrize("params, message", [
    ({"C": 0}, "C must be a positive number"),
    ({"calibration": "beta"}, "calibration must be 'sigmoid' or 'isotonic'"),
    ({"calibration_share": 1.0}, "calibration_share must be between 0 and 1"),
])
def test_bad_hyperparameters_are_refused_at_fit(params, message):
    X, y = _blobs()
    with pytest.raises(ValueError, match=message):
        CalibratedPairClassifier(**params).fit(X, y)


def test_multiclass_and_one_class_are_refused():
    X, _ = _blobs(n=30)
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        CalibratedPairClassifier().fit(X, np.arange(30) % 3)
    with pytest.raises(ValueError, match="1 class"):
        CalibratedPairClassifier().fit(X, np.ones(30, dtype=bool))


# --------------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------------


def test_truth_labels_one_to_one_positive_compound_left_out_others_negative():
    truth = pl.DataFrame({
        "group_id": ["T1", "T2", "T3"],
        "match_type": ["one_to_one", "one_to_many", "many_to_one"],
        "bank_ids": ["B1", "B2", "B3;B4"],
        "ledger_ids": ["L1", "L2;L3", "L4"],
    })
    pairs = pl.DataFrame({
        "bank_id": ["B1", "B1", "B2", "B5", "B5", "B3", "B6", "B1"],
        "ledger_id": ["L1", "L9", "L2", "L1", "L3", "L8", "L9", "L4"],
    })
    labelled = label_pairs(pairs, truth_labels(truth))
    assert labelled.columns == ["bank_id", "ledger_id", "label"]
    assert labelled["label"].to_list() == [
        True,   # B1-L1: exactly a one-to-one truth group
        False,  # B1-L9: B1's match is L1, L9 is in no group
        None,   # B2-L2: part of a one-to-many group
        False,  # B5-L1: L1 belongs to B1
        None,   # B5-L3: L3 is in a compound group
        None,   # B3-L8: B3 is in a compound group
        False,  # B6-L9: neither line is in any group
        None,   # B1-L4: L4 is in a compound group
    ]
    negative = label_pairs(pairs, truth_labels(truth, compound="negative"))
    assert negative["label"].to_list() == [True, False, False, False, False, False, False, False]


def test_decisions_label_only_what_they_name():
    pairs = pl.DataFrame({"bank_id": ["B1", "B1", "B2", "B3", "B3"], "ledger_id": ["L1", "L2", "L3", "L4", "L5"]})
    decisions = pl.DataFrame({
        "bank_id": ["B1", "B2", "B2", "B3"],
        "ledger_id": ["L1", "L3", "L3", None],
        # B1-L1 accepted; B2-L3 accepted, then rejected (the later decision wins); B3 has no
        # match in these books
        "label": [True, True, False, False],
    }, schema=LABEL_SCHEMA)
    labelled = label_pairs(pairs, decisions, unlisted=None)
    assert labelled["label"].to_list() == [True, None, False, False, False]


def test_a_whole_line_cannot_be_labelled_a_match():
    pairs = pl.DataFrame({"bank_id": ["B1"], "ledger_id": ["L1"]})
    with pytest.raises(InputError, match="needs both ids"):
        label_pairs(pairs, pl.DataFrame({"bank_id": ["B1"], "ledger_id": [None], "label": [True]},
                                        schema=LABEL_SCHEMA))


# --------------------------------------------------------------------------------------------
# a trained scorer (one generated month) and its file
# --------------------------------------------------------------------------------------------


def _prepared(paths: dict, rules):
    bank = prepare_bank_frame(api.load_bank(paths["bank"]).frame)
    ledger = prepare_ledger_frame(api.load_ledger(paths["ledger"]).frame, rules)
    return bank, ledger


def _scored_pairs(bank, ledger, rules):
    pairs = generate_candidates(bank, ledger, rules)
    evidence = measure_pairs(pairs, bank, ledger, rules)
    return pairs, evidence, level_codes(evidence, bank, ledger, rules)


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """A trained scorer, its month's candidates and a second month (another seed)."""
    root = tmp_path_factory.mktemp("learned")
    rules = api.default_rules()
    train_paths = save(generate(1500, seed=5), root / "train")
    test_paths = save(generate(1500, seed=6), root / "test")
    bank, ledger = _prepared(train_paths, rules)
    report = train_scorer(bank, ledger, truth_labels(load_truth(train_paths["truth"])), rules, seed=0,
                          truth_name="truth.csv")
    pairs, evidence, codes = _scored_pairs(bank, ledger, rules)
    return {"root": root, "rules": rules, "report": report, "scorer": report.scorer, "pairs": pairs,
            "evidence": evidence, "codes": codes, "test": test_paths}


@pytest.fixture
def model_file(month, tmp_path):
    return month["scorer"].save(tmp_path / "model.json")


def test_training_report_counts_the_pairs(month):
    report = month["report"]
    assert report.labelled + report.left_out == report.candidates == month["pairs"].height
    assert 0 < report.positives < report.labelled
    assert report.fitted + report.held_out == report.labelled
    assert report.truth_pairs_found <= report.truth_pairs
    text = report.summary()
    assert "pairs used" in text and "held-out Brier score" in text and "0.99-1" in text


def test_scores_are_log2_odds_within_bounds(month):
    scorer, evidence, codes = month["scorer"], month["evidence"], month["codes"]
    score = scorer.score(evidence, codes)
    assert score.shape == (evidence.size,) and np.isfinite(score).all()
    assert np.abs(score).max() <= 30.0
    # the scorer's gathers give the estimator's probabilities on the feature matrix
    # (pairs at a level no training pair had also get the rule set's weight: see below)
    X = pair_features(evidence, codes, scorer.comparisons, base_weights=scorer.base_weights)
    p = scorer.classifier.predict_proba(X)[:, 1]
    seen = np.ones(evidence.size, dtype=bool)
    unseen = set(scorer.training.get("unseen_levels", []))
    for name, comparison in scorer.comparisons.items():
        at_unseen = np.array([f"{name}:{level.key}" in unseen for level in comparison.levels])
        seen &= ~at_unseen[codes[name]]
    assert seen.sum() > 0.9 * evidence.size
    assert np.allclose(confidence_of(score[seen]), p[seen], rtol=0, atol=1e-9)


def test_a_level_no_training_pair_had_counts_what_the_rule_set_says(month):
    """The model knows nothing of a level it never saw (here: names that differ in their
    numbers); such a pair gets the rule set's weight for it on top, never a free pass."""
    scorer, evidence, codes = month["scorer"], month["evidence"], month["codes"]
    name = scorer.comparisons["name"]
    level = name.index("digits_differ")
    assert "name:digits_differ" in scorer.training["unseen_levels"]
    moved = {**codes, "name": np.full(evidence.size, level, dtype=codes["name"].dtype)}
    plain = LearnedScorer(scorer.classifier, scorer.rules, base_weights=scorer.base_weights)
    difference = scorer.score(evidence, moved) - plain.score(evidence, moved)
    others_seen = np.ones(evidence.size, dtype=bool)
    for other, comparison in scorer.comparisons.items():
        if other != "name":
            at_unseen = np.array([f"{other}:{lv.key}" in scorer.training["unseen_levels"] for lv in comparison.levels])
            others_seen &= ~at_unseen[codes[other]]
    assert others_seen.sum() > 0.9 * evidence.size
    assert np.allclose(difference[others_seen], name.weights[level])
    assert name.weights[level] < 0


def test_weights_frame(month):
    scorer = month["scorer"]
    weights = scorer.weights()
    assert weights.columns == ["comparison", "level", "label", "prior_weight", "weight"]
    n_levels = sum(len(c.levels) for c in comparisons_for(month["rules"]).values())
    assert weights.height == 1 + n_levels + len(NUMERIC_FEATURES)
    prior = weights.filter(pl.col("comparison") == "prior").row(0, named=True)
    assert prior["prior_weight"] == month["rules"].weights.prior
    full = weights.filter((pl.col("comparison") == "reference") & (pl.col("level") == "full")).row(0, named=True)
    assert full["prior_weight"] == month["rules"].weights.reference.full
    # each weight is the coefficient of its feature in calibrated bits
    bits = scorer.classifier.calibration_["slope"] / math.log(2)
    column = scorer.features.index("reference:full")
    assert full["weight"] == pytest.approx(scorer.classifier.coef_[column] * bits)
    numeric = weights.filter(pl.col("comparison") == "numeric")
    assert numeric["level"].to_list() == list(NUMERIC_FEATURES)
    assert numeric["prior_weight"].null_count() == numeric.height
    # leading the line's other candidates is evidence of a match
    margins = numeric.filter(pl.col("level").str.starts_with("margin_"))["weight"]
    assert (margins > 0).all()


def test_round_trip_gives_the_same_scores_to_the_last_bit(month, model_file):
    loaded = LearnedScorer.load(model_file, month["rules"])
    before = month["scorer"].score(month["evidence"], month["codes"])
    after = loaded.score(month["evidence"], month["codes"])
    assert np.array_equal(before, after)
    assert loaded.weights().equals(month["scorer"].weights())
    assert loaded.training["truth"] == "truth.csv" and loaded.training["rules"] == "default"
    document = json.loads(model_file.read_text(encoding="utf-8"))
    assert document["format"] == FORMAT and document["version"] == VERSION
    assert document["features"] == feature_names(comparisons_for(month["rules"]))
    assert set(document["levels"]) == set(COMPARISONS)
    assert len(document["sha256"]) == 64


def _refused(path, rules) -> str:
    with pytest.raises(ModelFileError) as caught:
        LearnedScorer.load(path, rules)
    message = str(caught.value)
    assert isinstance(caught.value, ReconError)
    assert str(path) in message and "\n" not in message
    return message


def test_one_changed_byte_fails_the_checksum(month, model_file):
    text = model_file.read_text(encoding="utf-8")
    at = text.index('"coefficients": [') + len('"coefficients": [')
    digit = next(i for i in range(at, len(text)) if text[i].isdigit() and text[i] != "7")
    model_file.write_text(text[:digit] + "7" + text[digit + 1:], encoding="utf-8")
    message = _refused(model_file, month["rules"])
    assert "checksum does not match" in message and "corrupt or was edited" in message
    assert "recon train" in message


def test_reformatting_keeps_the_checksum(month, model_file):
    document = json.loads(model_file.read_text(encoding="utf-8"))
    model_file.write_text(json.dumps(document, indent=4, sort_keys=True), encoding="utf-8")
    LearnedScorer.load(model_file, month["rules"])


@pytest.mark.parametrize("damage", ["truncated", "binary", "empty"])
def test_not_json_is_refused(month, model_file, damage):
    raw = model_file.read_bytes()
    model_file.write_bytes({"truncated": raw[: len(raw) // 2], "binary": b"\x80\x03}q\x00(X\x06\x00",
                            "empty": b""}[damage])
    assert "is not JSON" in _refused(model_file, month["rules"])


def test_deeply_nested_json_is_refused(month, model_file):
    model_file.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert "nested too deeply" in _refused(model_file, month["rules"])


def test_missing_file_is_refused(month, tmp_path):
    message = _refused(tmp_path / "nowhere.json", month["rules"])
    assert "not found" in message and "recon train" in message


def test_another_format_is_refused(month, model_file):
    document = json.loads(model_file.read_text(encoding="utf-8"))
    document["format"] = "some-other-model"
    model_file.write_text(json.dumps(document), encoding="utf-8")
    assert "is not a recon learned-scorer model" in _refused(model_file, month["rules"])
    model_file.write_text("[1, 2, 3]", encoding="utf-8")
    assert "is not a recon learned-scorer model" in _refused(model_file, month["rules"])


def test_a_newer_version_is_refused(month, model_file):
    document = json.loads(model_file.read_text(encoding="utf-8"))
    document["version"] = VERSION + 1
    model_file.write_text(json.dumps(document), encoding="utf-8")
    message = _refused(model_file, month["rules"])
    assert "newer recon" in message and f"version {VERSION + 1}" in message and "upgrade recon" in message


def test_non_finite_numbers_are_refused(month, model_file):
    text = model_file.read_text(encoding="utf-8")
    at = text.index('"intercept": ') + len('"intercept": ')
    end = text.index(",", at)
    model_file.write_text(text[:at] + "NaN" + text[end:], encoding="utf-8")
    assert "non-finite number (NaN)" in _refused(model_file, month["rules"])
    model_file.write_text(text[:at] + "1e999" + text[end:], encoding="utf-8")
    assert "non-finite number at intercept" in _refused(model_file, month["rules"])


def test_levels_of_another_rule_set_are_refused(month, model_file):
    rules = month["rules"]
    other = rules.with_changes(weights={"date": [{"max_days": 0, "weight": 1.0}, {"max_days": 5, "weight": 0.0},
                                                 {"max_days": 100000, "weight": -1.0}]})
    message = _refused(model_file, other)
    assert "do not match the levels of rule set" in message
    assert "date levels" in message and "'5 days'" in message
    assert "must be retrained with `recon train" in message
    # weights alone may change: the levels are the same
    LearnedScorer.load(model_file, rules.with_changes(thresholds={"auto": 0.99}))


def test_load_never_unpickles(month, tmp_path):
    import pickle

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(month["scorer"].classifier))
    assert "is not JSON" in _refused(path, month["rules"])


# --------------------------------------------------------------------------------------------
# calibration on a month it has not seen
# --------------------------------------------------------------------------------------------


def test_calibrated_on_another_month_better_than_the_rule_set(month):
    """Brier score of pair confidences against the truth labels of a second month (another
    seed). Seen when written: learned ~0.003, rule set ~0.05."""
    rules = month["rules"]
    bank, ledger = _prepared(month["test"], rules)
    pairs, evidence, codes = _scored_pairs(bank, ledger, rules)
    ids = pl.DataFrame({"bank_id": bank["id"].gather(pairs["bank_idx"]),
                        "ledger_id": ledger["id"].gather(pairs["ledger_idx"])})
    label = label_pairs(ids, truth_labels(load_truth(month["test"]["truth"])))["label"]
    used = label.is_not_null().to_numpy()
    y = label.fill_null(False).to_numpy()[used].astype(float)
    learned = confidence_of(month["scorer"].score(evidence, codes))[used]
    by_rules = confidence_of(RulesScorer(rules).score(evidence, codes))[used]
    brier_learned = float(np.mean((learned - y) ** 2))
    brier_rules = float(np.mean((by_rules - y) ** 2))
    assert brier_learned < 0.01
    assert brier_learned < brier_rules / 3
    # confident pairs are right: above 0.97, at least 97% are matches
    confident = learned > 0.97
    assert confident.sum() > 0.2 * used.sum() and y[confident].mean() >= 0.97
    assert math.isfinite(month["report"].learned.brier) and month["report"].learned.brier < 0.01


def test_no_labelled_match_is_refused(month):
    rules = month["rules"]
    bank, ledger = _prepared(month["test"], rules)
    nobody = pl.DataFrame({"bank_id": ["X"], "ledger_id": ["Y"], "label": [True]}, schema=LABEL_SCHEMA)
    with pytest.raises(InputError, match="no match among"):
        train_scorer(bank, ledger, nobody, rules)
