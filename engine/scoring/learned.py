"""Learned scorer (engine stage 3, scoring; ``scorer = "learned"``): a calibrated classifier
trained on labelled candidate pairs, saved by ``recon train`` as a checked JSON file.

The classifier sees the same comparisons the rule set weighs:

- every comparison's level as a one-hot feature (``reference:full``, ``name:same name``, ... :
  the level keys of :func:`engine.scoring.levels.comparisons_for` name them), and
- a few numbers the levels summarise coarsely (:data:`NUMERIC_FEATURES`): how many exact-amount
  candidates the bank line and the ledger item have, the name similarity, the days apart, the
  relative amount difference, and how far the pair leads the best other candidate of its bank
  line and of its ledger item by the rule set's weights at training time (kept in the model as
  its ``base_weights``). Without the last two, a pair's probability cannot tell the one good
  candidate of a line from one of several alike.

:class:`CalibratedPairClassifier` (a scikit-learn estimator) fits a logistic regression on one
part of the training pairs and calibrates it on the other (Platt's sigmoid by default; isotonic
on request, though its flat steps give competing candidates equal scores); :class:`LearnedScorer`
turns the calibrated probability into bits like every scorer (``score = log2(p / (1 - p))``,
p kept within :data:`MAX_BITS` bits of 0 and 1) with a gather per comparison and a few numpy
products and maxima, never a feature matrix, so a few million pairs score in about a second.

Labels come from a truth file (:func:`truth_labels`) or, later, from reviewers' decisions: both
are ``(bank_id, ledger_id, label)`` rows that :func:`label_pairs` applies to the candidates.

The model file is JSON, never pickle (:meth:`LearnedScorer.save`): format name and version,
features, levels, coefficients, calibration, base weights, what it was trained on and a SHA-256
of the rest. :meth:`LearnedScorer.load` refuses, with a :class:`models.errors.ModelFileError`
saying what to do, a missing, unreadable, non-JSON, foreign, newer, edited or corrupt file,
non-finite numbers, and a model whose levels are not the rule set's; nothing in the file is ever
executed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from engine.scoring.evidence import PairEvidence
from engine.scoring.levels import COMPARISONS, Comparison, comparisons_for
from engine.scoring.scorers import RulesScorer, weights_frame
from models.errors import InputError, ModelFileError
from rules.model import RuleSet

__all__ = [
    "FORMAT", "LABEL_SCHEMA", "MAX_BITS", "NUMERIC_FEATURES", "VERSION", "CalibratedPairClassifier",
    "LearnedScorer", "TrainingReport", "feature_names", "label_pairs", "level_features", "pair_features",
    "train_scorer", "truth_labels",
]

#: the model file's format name and the newest version this code reads and writes
FORMAT = "recon-learned-scorer"
VERSION = 1
#: no learned score goes beyond this many bits either way (p kept off 0 and 1)
MAX_BITS = 30.0
_MAX_NATS = MAX_BITS * math.log(2.0)
#: a model file is a few kilobytes; anything this large is something else
_MAX_FILE_BYTES = 20_000_000

#: the numeric features, in the model's order, and what each one is
NUMERIC_FEATURES: dict[str, str] = {
    "exact_amount_candidates_bank": "log2 of how many candidate items share the bank line's exact amount",
    "exact_amount_candidates_ledger": "log2 of how many candidate bank lines share the item's exact amount",
    "name_similarity": "name similarity / 100 (0 where a name is missing)",
    "days_apart": "days between the dates / 30, capped at 2 (60 days)",
    "amount_difference": "amount difference / ledger amount x 10, capped at 1 (10%)",
    "margin_bank": "bits / 8 the pair leads the bank line's best other candidate by (base weights), within +-2",
    "margin_ledger": "bits / 8 the pair leads the ledger item's best other candidate by (base weights), within +-2",
}

#: labelled pairs: a row with both ids names one pair; a row with one id null stands for every
#: pair of that line; ``label`` true (a match), false (not a match) or null (leave out)
LABEL_SCHEMA: dict[str, pl.DataType] = {"bank_id": pl.Utf8, "ledger_id": pl.Utf8, "label": pl.Boolean}


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------


def level_features(comparisons: dict[str, Comparison]) -> list[str]:
    """The one-hot features: ``comparison:level key`` for every level of every comparison."""
    return [f"{name}:{level.key}" for name in COMPARISONS for level in comparisons[name].levels]


def feature_names(comparisons: dict[str, Comparison]) -> list[str]:
    """Every feature of the model, in column order: the levels, then :data:`NUMERIC_FEATURES`."""
    return [*level_features(comparisons), *NUMERIC_FEATURES]


def _margin_over_others(rows: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Per pair: its ``score`` less the best score of the other pairs of its line (``rows``
    number the line); infinite when the line has no other pair."""
    size = int(rows.max()) + 1 if len(rows) else 0
    best = np.full(size, -np.inf)
    np.maximum.at(best, rows, score)
    best_of_line = best[rows]
    below = score < best_of_line
    # the best of the others: for a pair below its line's best, that best; for the best pair,
    # the line's second score, or the best again when another pair ties with it
    second = np.full(size, -np.inf)
    np.maximum.at(second, rows, np.where(below, score, -np.inf))
    tied = np.bincount(rows[~below], minlength=size) > 1
    second[tied] = best[tied]
    return score - np.where(below, best_of_line, second[rows])


def context_margins(evidence: PairEvidence, codes: dict[str, np.ndarray],
                    base_weights: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """How far each pair's score by ``base_weights`` (bits per level: the rule set's when the
    model was trained) leads the best other candidate of its bank line and of its ledger item,
    in bits (infinite without another candidate)."""
    base = np.zeros(evidence.size)
    for name in COMPARISONS:
        base += base_weights[name][codes[name]]
    return _margin_over_others(evidence.bank_rows, base), _margin_over_others(evidence.ledger_rows, base)


def _numeric_columns(evidence: PairEvidence, codes: dict[str, np.ndarray], base_weights: dict[str, np.ndarray],
                     rows: np.ndarray | slice) -> list[np.ndarray]:
    """:data:`NUMERIC_FEATURES` of the pairs at ``rows``, one float64 array each (the margins
    are taken among all the pairs, then selected)."""
    exact = evidence.exact[rows]
    amount_ledger = evidence.amount_ledger[rows]
    difference = np.abs(evidence.amount_bank[rows] - amount_ledger).astype(np.float64)
    difference /= np.maximum(np.abs(amount_ledger), 1)
    margin_bank, margin_ledger = context_margins(evidence, codes, base_weights)
    days = np.abs(evidence.days[rows]).astype(np.float64)
    return [
        np.where(exact, np.log2(np.maximum(evidence.n_exact_bank[rows], 1)), 0.0),
        np.where(exact, np.log2(np.maximum(evidence.n_exact_ledger[rows], 1)), 0.0),
        np.asarray(evidence.similarity[rows], dtype=np.float64) / 100.0,
        np.minimum(days, 60.0, out=days) / 30.0,
        np.minimum(difference, 0.1, out=difference) * 10.0,
        np.clip(margin_bank[rows], -16.0, 16.0) / 8.0,
        np.clip(margin_ledger[rows], -16.0, 16.0) / 8.0,
    ]


def pair_features(evidence: PairEvidence, codes: dict[str, np.ndarray], comparisons: dict[str, Comparison],
                  rows: np.ndarray | None = None, base_weights: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The feature matrix (float64, one row per pair, columns :func:`feature_names`) of the pairs
    at ``rows`` (default: all), from their measurements with the candidate context and their
    level codes (:func:`engine.scoring.score.level_codes`). For training and notebooks; the
    scorer itself never builds the matrix."""
    selected = np.arange(evidence.size) if rows is None else np.asarray(rows)
    n = len(selected)
    width = sum(len(comparisons[name].levels) for name in COMPARISONS)
    matrix = np.zeros((n, width + len(NUMERIC_FEATURES)), dtype=np.float64)
    offset = 0
    for name in COMPARISONS:
        matrix[np.arange(n), offset + codes[name][selected].astype(np.int64)] = 1.0
        offset += len(comparisons[name].levels)
    if base_weights is None:
        base_weights = {name: comparisons[name].weights for name in COMPARISONS}
    for j, column in enumerate(_numeric_columns(evidence, codes, base_weights, selected)):
        matrix[:, width + j] = column
    return matrix


# --------------------------------------------------------------------------------------------
# calibration (shared by the estimator and the scorer, so both give the same probabilities)
# --------------------------------------------------------------------------------------------


def _calibrated_log_odds(decision: np.ndarray, calibration: dict) -> np.ndarray:
    """Natural log odds of a match from the logistic regression's raw ``decision``, through the
    calibration map, within ``MAX_BITS`` bits of certainty either way."""
    if calibration["method"] == "sigmoid":
        z = calibration["slope"] * decision + calibration["offset"]
    else:
        p = np.interp(decision, calibration["x"], calibration["y"])
        p_min = 1.0 / (1.0 + 2.0 ** MAX_BITS)
        p = np.clip(p, p_min, 1.0 - p_min)
        z = np.log(p) - np.log1p(-p)
    return np.clip(z, -_MAX_NATS, _MAX_NATS)


def _platt(decision: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Platt's sigmoid ``p = 1 / (1 + exp(-(slope * decision + offset)))`` fitted by maximum
    likelihood to Platt's smoothed targets (which keep the slope finite on separable data)."""
    n_pos = float(positive.sum())
    n_neg = float(len(positive) - n_pos)
    target = np.where(positive, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = params[0] * decision + params[1]
        residual = expit(z) - target
        return float(np.sum(np.logaddexp(0.0, z) - target * z)), np.array([residual @ decision, residual.sum()])

    found = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(found.x[0]), float(found.x[1])


# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------


class CalibratedPairClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression calibrated on a held-out part of its training pairs.

    Binary only: is a candidate pair a true match (``classes_[1]``) or not.

    Parameters
    ----------
    C
        Inverse strength of the logistic regression's L2 penalty.
    calibration
        ``"sigmoid"`` (Platt: keeps the regression's order of the pairs, so competing candidates
        stay apart) or ``"isotonic"`` (a monotone step map: can give competing candidates the
        same probability).
    calibration_share
        Share of each class held out of the regression to fit the calibration on. When a class
        has too few pairs to split, the calibration is fitted on the training pairs.
    max_iter
        Iterations of the regression's solver.
    random_state
        Seed of the split (an int gives the same model for the same data).

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_ : ndarray of shape (n_features_in_,)
        The regression's coefficients (natural log odds per unit, before calibration).
    intercept_ : float
    calibration_ : dict
        ``{"method": "sigmoid", "slope", "offset"}`` or ``{"method": "isotonic", "x", "y"}``.
    n_calibration_ : int
        Pairs the calibration was fitted on (0: it used the training pairs).
    n_iter_ : int
        Iterations the regression's solver ran.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [0.2], [0.8], [0.9], [1.0]] * 5)
    >>> y = np.array([0, 0, 0, 1, 1, 1] * 5)
    >>> model = CalibratedPairClassifier(random_state=0).fit(X, y)
    >>> model.predict(np.array([[0.05], [0.95]])).tolist()
    [0, 1]
    """

    def __init__(self, C: float = 1.0, calibration: str = "sigmoid", calibration_share: float = 0.25,
                 max_iter: int = 1000, random_state: int | None = 0):
        self.C = C
        self.calibration = calibration
        self.calibration_share = calibration_share
        self.max_iter = max_iter
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _check_params(self) -> None:
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        if self.calibration not in ("sigmoid", "isotonic"):
            raise ValueError(f"calibration must be 'sigmoid' or 'isotonic', got {self.calibration!r}")
        if not (isinstance(self.calibration_share, (int, float)) and 0 < self.calibration_share < 1):
            raise ValueError(f"calibration_share must be between 0 and 1, got {self.calibration_share!r}")
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")

    def _split(self, positive: np.ndarray) -> np.ndarray:
        """Which pairs calibrate (the same share of each class, drawn with the seed); none when
        a class is too small to give some to both parts."""
        rng = check_random_state(self.random_state)
        calibrating = np.zeros(len(positive), dtype=bool)
        for value in (False, True):
            members = np.flatnonzero(positive == value)
            n_calibrating = int(math.floor(self.calibration_share * len(members)))
            if n_calibrating < 1 or n_calibrating >= len(members):
                return np.zeros(len(positive), dtype=bool)
            calibrating[rng.permutation(members)[:n_calibrating]] = True
        return calibrating

    def fit(self, X, y) -> CalibratedPairClassifier:
        """Fit the regression on part of ``X`` and the calibration on the rest.

        Parameters
        ----------
        X : array-like of shape (n_pairs, n_features)
        y : array-like of shape (n_pairs,)
            Two classes; the second in sorted order (``True``, ``1``) is the match.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            ``y`` is not binary, or holds one class only.
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target is {y_type}.")
        self.classes_, index = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(f"{type(self).__name__} needs pairs of both classes; y holds 1 class "
                             f"({self.classes_[0]!r})")
        positive = index == 1
        calibrating = self._split(positive)
        fitting = ~calibrating if calibrating.any() else np.ones(len(positive), dtype=bool)
        if not calibrating.any():
            calibrating = fitting
        regression = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(X[fitting], positive[fitting])
        self.coef_ = regression.coef_[0].astype(np.float64)
        self.intercept_ = float(regression.intercept_[0])
        self.n_iter_ = int(np.max(regression.n_iter_))
        decision = X[calibrating] @ self.coef_ + self.intercept_
        if self.calibration == "sigmoid":
            slope, offset = _platt(decision, positive[calibrating])
            self.calibration_ = {"method": "sigmoid", "slope": slope, "offset": offset}
        else:
            isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                decision, positive[calibrating].astype(np.float64))
            self.calibration_ = {"method": "isotonic", "x": isotonic.X_thresholds_.astype(np.float64),
                                 "y": isotonic.y_thresholds_.astype(np.float64)}
        self.n_calibration_ = int(calibrating.sum()) if calibrating is not fitting else 0
        return self

    def decision_function(self, X) -> np.ndarray:
        """Calibrated log odds (natural logarithm) that each pair is ``classes_[1]``, within
        ``MAX_BITS`` bits of certainty."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return _calibrated_log_odds(X @ self.coef_ + self.intercept_, self.calibration_)

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities, columns in the order of ``classes_``."""
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """``classes_[1]`` where the calibrated probability is above one half."""
        check_is_fitted(self)
        return self.classes_[(self.decision_function(X) > 0).astype(np.int64)]


# --------------------------------------------------------------------------------------------
# the scorer and its file
# --------------------------------------------------------------------------------------------


def _canonical(document: dict) -> bytes:
    """The bytes the checksum covers: the document without ``sha256``, keys sorted, compact."""
    rest = {key: value for key, value in document.items() if key != "sha256"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _levels_of(comparisons: dict[str, Comparison]) -> dict[str, list[str]]:
    return {name: [level.key for level in comparisons[name].levels] for name in COMPARISONS}


class LearnedScorer:
    """A fitted :class:`CalibratedPairClassifier` over a rule set's comparison levels.

    Parameters
    ----------
    classifier
        Fitted on :func:`pair_features` of this rule set, ``classes_`` ``[False, True]``.
    rules
        The rule set whose comparisons give the levels (and the prior weights
        :meth:`weights` shows beside the learned ones).
    training
        What the model was trained on (stored in the file): pairs, positives, truth file, rule
        set, held-out Brier score...
    created
        When it was trained (ISO 8601, UTC); default now.
    """

    kind = "learned"

    def __init__(self, classifier: CalibratedPairClassifier, rules: RuleSet, training: dict | None = None,
                 created: str | None = None, source: str | None = None,
                 base_weights: dict[str, np.ndarray] | None = None):
        check_is_fitted(classifier)
        self.classifier = classifier
        self.rules = rules
        self.comparisons = comparisons_for(rules)
        self.base_weights = {name: np.asarray(base_weights[name], dtype=np.float64) if base_weights
                             else self.comparisons[name].weights for name in COMPARISONS}
        self.features = feature_names(self.comparisons)
        if classifier.n_features_in_ != len(self.features):
            raise ValueError(f"the classifier has {classifier.n_features_in_} features; rule set "
                             f"'{rules.name}' gives {len(self.features)}")
        self.training = dict(training or {})
        self.created = created or datetime.now(UTC).isoformat(timespec="seconds")
        self.source = source
        coef = classifier.coef_
        self._level_coef: dict[str, np.ndarray] = {}
        offset = 0
        for name in COMPARISONS:
            size = len(self.comparisons[name].levels)
            self._level_coef[name] = np.ascontiguousarray(coef[offset:offset + size])
            offset += size
        self._numeric_coef = coef[offset:].tolist()

    def score(self, evidence: PairEvidence, codes: dict[str, np.ndarray]) -> np.ndarray:
        """``log2(p / (1 - p))`` of each pair's calibrated probability of a match (within
        :data:`MAX_BITS`): the regression as one gather per comparison and a product per
        numeric feature, then the calibration map."""
        decision = np.full(evidence.size, self.classifier.intercept_)
        for name in COMPARISONS:
            decision += self._level_coef[name][codes[name]]
        columns = _numeric_columns(evidence, codes, self.base_weights, slice(None))
        for weight, column in zip(self._numeric_coef, columns, strict=True):
            decision += weight * column
        bits = _calibrated_log_odds(decision, self.classifier.calibration_) / math.log(2.0)
        # a level no training pair had: the model knows nothing of it, so it counts what the rule
        # set says (names that differ in their numbers stay evidence against a match even when
        # the training month had none)
        unseen = set(self.training.get("unseen_levels", []))
        for name in COMPARISONS:
            keys = [f"{name}:{level.key}" in unseen for level in self.comparisons[name].levels]
            if any(keys):
                bits += np.where(keys, self.comparisons[name].weights, 0.0)[codes[name]]
        return bits

    def weights(self) -> pl.DataFrame:
        """The learned weight of every level in bits beside the rule set's, the intercept as the
        prior, and one row per numeric feature (comparison ``numeric``, bits per unit, no rule-set
        weight). With the sigmoid calibration these are the bits each level adds to the score;
        with the isotonic one, the regression's bits before the (non-linear) calibration.

        A level also moves the pair's lead over the other candidates of its lines
        (``margin_bank``, ``margin_ledger``, reckoned with the base weights), so its own weight is
        what it adds beyond that: a reference in full weighs little here and much through the
        margins."""
        calibration = self.classifier.calibration_
        slope, offset = ((calibration["slope"], calibration["offset"]) if calibration["method"] == "sigmoid"
                         else (1.0, 0.0))
        bits = slope / math.log(2.0)
        prior = (self.classifier.intercept_ * slope + offset) / math.log(2.0)
        frame = weights_frame(self.comparisons, {name: coef * bits for name, coef in self._level_coef.items()},
                              prior, self.rules.weights.prior)
        numeric = pl.DataFrame(
            {"comparison": "numeric", "level": list(NUMERIC_FEATURES), "label": list(NUMERIC_FEATURES.values()),
             "prior_weight": None, "weight": [w * bits for w in self._numeric_coef]},
            schema=frame.schema,
        )
        return pl.concat([frame, numeric])

    def unseen_levels(self, X: np.ndarray) -> list[str]:
        """The level features no row of ``X`` has (their weight is the regression's 0: the model
        knows nothing about them)."""
        n_levels = len(level_features(self.comparisons))
        seen = X[:, :n_levels].any(axis=0)
        return [name for name, hit in zip(self.features[:n_levels], seen, strict=True) if not hit]

    # -- the file ------------------------------------------------------------------------------

    def to_document(self) -> dict:
        """The model as the JSON document :meth:`save` writes (with its ``sha256``)."""
        c = self.classifier
        calibration = {key: (value.tolist() if isinstance(value, np.ndarray) else value)
                       for key, value in c.calibration_.items()}
        document = {
            "format": FORMAT,
            "version": VERSION,
            "created": self.created,
            "estimator": {"class": type(c).__name__, "C": float(c.C), "calibration": c.calibration,
                          "calibration_share": float(c.calibration_share), "max_iter": int(c.max_iter),
                          "random_state": c.random_state if isinstance(c.random_state, int) else None},
            "features": list(self.features),
            "levels": _levels_of(self.comparisons),
            "coefficients": [float(v) for v in c.coef_],
            "intercept": float(c.intercept_),
            "base_weights": {name: [float(w) for w in self.base_weights[name]] for name in COMPARISONS},
            "calibration": calibration,
            "n_calibration": int(c.n_calibration_),
            "training": self.training,
        }
        document["sha256"] = hashlib.sha256(_canonical(document)).hexdigest()
        return document

    def save(self, path: str | Path) -> Path:
        """Write the model to ``path`` as JSON (through a temporary file, so a reader never sees
        half a model)."""
        path = Path(path)
        text = json.dumps(self.to_document(), indent=1, ensure_ascii=False, allow_nan=False)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path, rules: RuleSet) -> LearnedScorer:
        """Read a model file written by :meth:`save` for ``rules``.

        Raises
        ------
        ModelFileError
            The file is missing or unreadable, not JSON, another format or a newer version, its
            checksum does not match (corrupt or edited), it holds a non-finite number, or its
            features are not the rule set's levels.
        """
        if path is None:
            raise ModelFileError("(none)", "no model file given",
                                 'set scoring.model = "FILE" in the rule file (a file made by `recon train`)')
        return _read_model(Path(path), rules)


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str):
    raise _NonFinite(name)


def _finite_numbers(value, where: str = "") -> str | None:
    """The place of the first non-finite number (or boolean where a number belongs) in a
    parsed document, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "(top level)"
    if isinstance(value, dict):
        for key, item in value.items():
            found = _finite_numbers(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _finite_numbers(item, f"{where}[{i}]")
            if found:
                return found
    return None


def _numbers(value, length: int | None = None) -> np.ndarray | None:
    """A JSON list of numbers (not booleans) as float64, or None when it is anything else."""
    if not isinstance(value, list) or (length is not None and len(value) != length):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    return np.array(value, dtype=np.float64)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_model(path: Path, rules: RuleSet) -> LearnedScorer:
    retrain = f"make it again with `recon train --bank ... --ledger ... --truth ... --out {path}`"
    try:
        size = path.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise ModelFileError(str(path), f"is {size:,} bytes, too large to be a model file", retrain)
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(str(path), "not found",
                             "train one with `recon train --bank ... --ledger ... --truth truth.csv "
                             f"--out {path}`, or point scoring.model in the rule file at the right file") from None
    except IsADirectoryError:
        raise ModelFileError(str(path), "is a folder, not a model file",
                             "point scoring.model in the rule file at the JSON file `recon train` wrote") from None
    except OSError as exc:
        raise ModelFileError(str(path), f"cannot be read ({exc.strerror or exc})",
                             "check the file's permissions") from None
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except _NonFinite as exc:
        raise ModelFileError(str(path), f"holds a non-finite number ({exc})", retrain) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(str(path), f"is not JSON (truncated or not a model file: {exc})", retrain) from None
    except RecursionError:
        raise ModelFileError(str(path), "is not a model file (JSON nested too deeply)", retrain) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ModelFileError(str(path), f"is not a recon learned-scorer model (format {found!r}, "
                                        f"expected {FORMAT!r})",
                             "give scoring.model the file `recon train` wrote")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(str(path), f"has an unknown version {version!r}", retrain)
    if version > VERSION:
        raise ModelFileError(str(path), f"was made by a newer recon (model file version {version}; this "
                                        f"recon reads version {VERSION})",
                             f"upgrade recon, or {retrain} with this one")
    checksum = document.get("sha256")
    try:
        actual = hashlib.sha256(_canonical(document)).hexdigest()
    except ValueError:  # a number json turned into inf (1e999)
        actual = None
    if actual is None or not isinstance(checksum, str) or checksum != actual:
        where = _finite_numbers(document)
        if where:
            raise ModelFileError(str(path), f"holds a non-finite number at {where}", retrain)
        raise ModelFileError(str(path), "its sha256 checksum does not match its content: the file is "
                                        "corrupt or was edited", retrain)
    where = _finite_numbers(document)
    if where:
        raise ModelFileError(str(path), f"holds a non-finite number at {where}", retrain)
    classifier = _classifier_of(document, path, retrain)
    _check_levels(document, path, rules)
    base_weights = document.get("base_weights") if isinstance(document.get("base_weights"), dict) else {}
    levels = _levels_of(comparisons_for(rules))
    for name in COMPARISONS:
        if _numbers(base_weights.get(name), len(levels[name])) is None:
            raise ModelFileError(str(path), f"is not a valid model: 'base_weights' needs {len(levels[name])} "
                                            f"numbers for {name}, one per level", retrain)
    training = document.get("training") if isinstance(document.get("training"), dict) else {}
    return LearnedScorer(classifier, rules, training=training, created=str(document.get("created", "")),
                         source=str(path), base_weights={name: base_weights[name] for name in COMPARISONS})


def _classifier_of(document: dict, path: Path, retrain: str) -> CalibratedPairClassifier:
    """The fitted classifier a checked document describes (its fields validated one by one)."""
    def broken(what: str) -> ModelFileError:
        return ModelFileError(str(path), f"is not a valid model: {what}", retrain)

    features = document.get("features")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise broken("'features' must be a list of names")
    coefficients = _numbers(document.get("coefficients"), len(features))
    if coefficients is None:
        raise broken(f"'coefficients' must be {len(features)} numbers, one per feature")
    intercept = document.get("intercept")
    if not _is_number(intercept):
        raise broken("'intercept' must be a number")
    estimator = document.get("estimator") if isinstance(document.get("estimator"), dict) else {}
    params = {}
    for key, check in (("C", _is_number), ("calibration_share", _is_number),
                       ("max_iter", lambda v: isinstance(v, int) and not isinstance(v, bool)),
                       ("random_state", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)))):
        if key in estimator and check(estimator[key]):
            params[key] = estimator[key]
    calibration = document.get("calibration")
    method = calibration.get("method") if isinstance(calibration, dict) else None
    if method == "sigmoid":
        if not (_is_number(calibration.get("slope")) and _is_number(calibration.get("offset"))):
            raise broken("a sigmoid calibration needs a numeric 'slope' and 'offset'")
        calibration_ = {"method": "sigmoid", "slope": float(calibration["slope"]),
                        "offset": float(calibration["offset"])}
    elif method == "isotonic":
        x = _numbers(calibration.get("x"))
        y = _numbers(calibration.get("y"), None if x is None else len(x))
        if x is None or y is None or len(x) == 0 or np.any(np.diff(x) < 0) or np.any((y < 0) | (y > 1)):
            raise broken("an isotonic calibration needs 'x' in increasing order and 'y' in [0, 1], "
                         "as many of each")
        calibration_ = {"method": "isotonic", "x": x, "y": y}
    else:
        raise broken(f"unknown calibration method {method!r} (expected 'sigmoid' or 'isotonic')")
    classifier = CalibratedPairClassifier(calibration=method, **params)
    classifier.classes_ = np.array([False, True])
    classifier.coef_ = coefficients
    classifier.intercept_ = float(intercept)
    classifier.calibration_ = calibration_
    n_calibration = document.get("n_calibration")
    classifier.n_calibration_ = n_calibration if isinstance(n_calibration, int) else 0
    classifier.n_features_in_ = len(features)
    classifier.n_iter_ = 0  # not recorded: the file holds the fitted numbers, not the fit
    return classifier


def _check_levels(document: dict, path: Path, rules: RuleSet) -> None:
    """Refuse a model whose features are not the rule set's levels and this code's numbers."""
    comparisons = comparisons_for(rules)
    expected = _levels_of(comparisons)
    stored = document.get("levels") if isinstance(document.get("levels"), dict) else {}
    problems = []
    for name in COMPARISONS:
        theirs = stored.get(name) if isinstance(stored.get(name), list) else []
        ours = expected[name]
        if theirs == ours:
            continue
        only_rules = [key for key in ours if key not in theirs]
        only_model = [key for key in theirs if key not in ours]
        if only_rules or only_model:
            parts = []
            if only_rules:
                parts.append(f"{only_rules} only in the rule set")
            if only_model:
                parts.append(f"{only_model} only in the model")
            problems.append(f"{name} levels {' and '.join(parts)}")
        else:
            problems.append(f"{name} levels in another order")
    unknown = [name for name in stored if name not in COMPARISONS]
    if unknown:
        problems.append(f"comparisons {unknown} unknown to this recon")
    if not problems and document.get("features") != feature_names(comparisons):
        problems.append("its feature list is not this recon's (levels, then "
                        + ", ".join(NUMERIC_FEATURES) + ")")
    if problems:
        raise ModelFileError(
            str(path),
            f"its features do not match the levels of rule set '{rules.name}': " + "; ".join(problems),
            "the model must be retrained with `recon train --rules RULES ...` on the rule set it "
            "will score with",
        )


# --------------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------------


def _ids(column: pl.Expr) -> pl.Expr:
    """A ';'-joined id list as a list of ids (empty entries dropped)."""
    return column.fill_null("").str.split(";").list.eval(
        pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != ""))


def truth_labels(truth: pl.DataFrame, compound: str = "leave_out") -> pl.DataFrame:
    """Labels (:data:`LABEL_SCHEMA`) from a truth table (``bank_ids``, ``ledger_ids``,
    ';'-joined).

    A group of exactly one bank line and one ledger item labels that pair a match. Every line of a
    group with more than one line on a side is a row with the other id null and a null label:
    its pairs are left out (a pair inside such a group is neither a one-to-one match nor plainly
    not one), or, with ``compound="negative"``, labelled not a match (a pair of a compound group
    is not a one-to-one match; trained so, the scorer learns that such a pair alone is wrong).
    Pairs the labels do not name are not matches (:func:`label_pairs` with ``unlisted=False``):
    a truth file lists every true match.
    """
    if compound not in ("leave_out", "negative"):
        raise InputError(f"compound pairs are either 'leave_out' or 'negative', not {compound!r}")
    line_label = None if compound == "leave_out" else False
    groups = truth.select(bank=_ids(pl.col("bank_ids")), ledger=_ids(pl.col("ledger_ids")))
    one_to_one = groups.filter((pl.col("bank").list.len() == 1) & (pl.col("ledger").list.len() == 1)).select(
        bank_id=pl.col("bank").list.first(), ledger_id=pl.col("ledger").list.first(), label=pl.lit(True))
    compound = groups.filter((pl.col("bank").list.len() > 1) | (pl.col("ledger").list.len() > 1))
    left_out = pl.concat([
        compound.select(bank_id=pl.col("bank")).explode("bank_id").select(
            "bank_id", ledger_id=pl.lit(None, dtype=pl.Utf8), label=pl.lit(line_label, dtype=pl.Boolean)),
        compound.select(ledger_id=pl.col("ledger")).explode("ledger_id").select(
            bank_id=pl.lit(None, dtype=pl.Utf8), ledger_id="ledger_id", label=pl.lit(line_label, dtype=pl.Boolean)),
    ])
    left_out = left_out.filter(pl.col("bank_id").is_not_null() | pl.col("ledger_id").is_not_null())
    return pl.concat([one_to_one.cast(LABEL_SCHEMA), left_out.cast(LABEL_SCHEMA)])


def label_pairs(pairs: pl.DataFrame, labels: pl.DataFrame, unlisted: bool | None = False) -> pl.DataFrame:
    """Label candidate pairs from ``(bank_id, ledger_id, label)`` rows.

    Parameters
    ----------
    pairs
        Candidate pairs: ``bank_id``, ``ledger_id`` (other columns kept).
    labels
        :data:`LABEL_SCHEMA` rows from a truth file (:func:`truth_labels`) or reviewers'
        decisions (accepted: true, rejected: false). A row with both ids labels that pair (the
        last row of a pair wins: a later decision replaces an earlier one). A row with one id
        null labels every pair of that line that no pair row names: null leaves them out, false
        makes them non-matches (null wins over false); true needs both ids.
    unlisted
        The label of pairs no row speaks to: ``False`` when the labels are complete (a truth
        file), ``None`` when they are not (reviewers' decisions).

    Returns
    -------
    pl.DataFrame
        ``pairs`` in their order with a Boolean ``label`` (null: not for training).

    Raises
    ------
    InputError
        A row labels a whole line a match, or has neither id.

    Examples
    --------
    >>> pairs = pl.DataFrame({"bank_id": ["B1", "B1", "B2"], "ledger_id": ["L1", "L2", "L3"]})
    >>> labels = pl.DataFrame({"bank_id": ["B1", "B2"], "ledger_id": ["L1", None],
    ...                        "label": [True, None]}, schema=LABEL_SCHEMA)
    >>> label_pairs(pairs, labels)["label"].to_list()
    [True, False, None]
    """
    labels = labels.select(list(LABEL_SCHEMA)).cast(LABEL_SCHEMA)
    bank_only = pl.col("ledger_id").is_null()
    ledger_only = pl.col("bank_id").is_null()
    if labels.filter(bank_only & ledger_only).height:
        raise InputError("a label row names neither a bank id nor a ledger id")
    if labels.filter((bank_only | ledger_only) & pl.col("label").fill_null(False)).height:
        raise InputError("a label row marks a whole line as a match; a match label needs both ids")
    exact = (labels.filter(~bank_only & ~ledger_only).with_row_index("_order")
             .unique(subset=["bank_id", "ledger_id"], keep="last").select("bank_id", "ledger_id", _pair="label",
                                                                          _pair_listed=pl.lit(True)))

    def per_line(side: str, rows: pl.Expr) -> pl.DataFrame:
        # null (leave out) wins over false: the line's label is false only if every row says so
        return labels.filter(rows).group_by(f"{side}_id").agg(
            **{f"_{side}": pl.col("label").is_not_null().all().replace_strict({True: False, False: None},
                                                                             return_dtype=pl.Boolean),
               f"_{side}_listed": pl.lit(True)})

    labelled = (
        pairs.with_row_index("_row")
        .join(exact, on=["bank_id", "ledger_id"], how="left")
        .join(per_line("bank", bank_only), on="bank_id", how="left")
        .join(per_line("ledger", ledger_only), on="ledger_id", how="left")
        .sort("_row")
    )
    line_listed = pl.col("_bank_listed").fill_null(False) | pl.col("_ledger_listed").fill_null(False)
    line_null = ((pl.col("_bank_listed").fill_null(False) & pl.col("_bank").is_null())
                 | (pl.col("_ledger_listed").fill_null(False) & pl.col("_ledger").is_null()))
    label = (
        pl.when(pl.col("_pair_listed").fill_null(False)).then(pl.col("_pair"))
        .when(line_listed & line_null).then(pl.lit(None, dtype=pl.Boolean))
        .when(line_listed).then(pl.lit(False))
        .otherwise(pl.lit(unlisted, dtype=pl.Boolean))
    )
    return labelled.with_columns(label=label).drop(
        "_row", "_pair", "_pair_listed", "_bank", "_bank_listed", "_ledger", "_ledger_listed")


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """How well confidences predict the labels of some pairs: Brier score and reliability bins."""

    pairs: int
    brier: float | None
    bins: tuple  # of engine.evaluate.ReliabilityBin


def calibration_of(confidence: np.ndarray, positive: np.ndarray) -> Calibration:
    """Brier score and the reliability table (:data:`engine.evaluate.CALIBRATION_BINS`) of
    ``confidence`` against the labels."""
    from engine.evaluate import CALIBRATION_BINS, ReliabilityBin

    y = positive.astype(np.float64)
    if not len(y):
        return Calibration(0, None, ())
    edges = CALIBRATION_BINS
    bins = []
    for i, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        inside = (confidence >= low) & ((confidence <= high) if i == len(edges) - 2 else (confidence < high))
        bins.append(ReliabilityBin(low=low, high=high, proposals=int(inside.sum()), correct=int(y[inside].sum()),
                                   confidence_sum=float(confidence[inside].sum())))
    return Calibration(len(y), float(np.mean((confidence - y) ** 2)), tuple(bins))


@dataclass
class TrainingReport:
    """What ``recon train`` did: the pairs, the labels, the fitted scorer and its calibration on
    the held-out pairs beside the rule set's."""

    scorer: LearnedScorer
    candidates: int
    bank_lines: int
    ledger_items: int
    labelled: int
    positives: int
    left_out: int
    truth_pairs: int
    truth_pairs_found: int
    fitted: int
    held_out: int
    learned: Calibration
    rules_scorer: Calibration
    unseen_levels: list[str] = field(default_factory=list)
    seconds: float = 0.0
    path: Path | None = None
    notes: list[str] = field(default_factory=list)
    #: the held-out pairs: ``bank_id``, ``ledger_id``, ``label`` and the confidence each scorer
    #: gives them (``learned``, ``rules``), for precision and recall at a threshold
    held_out_pairs: pl.DataFrame | None = None

    def summary(self) -> str:
        """The few lines ``recon train`` prints."""
        c = self.scorer.classifier
        calibrated_on = (f"{c.calibration} calibration on {c.n_calibration_:,} of them" if c.n_calibration_
                         else f"{c.calibration} calibration on the same pairs (too few to hold some out)")
        lines = [
            f"recon train: rule set '{self.scorer.rules.name}', {self.candidates:,} candidate pairs of "
            f"{self.bank_lines:,} bank lines and {self.ledger_items:,} ledger items in {self.seconds:.1f} s",
            f"  pairs used:  {self.labelled:,} ({self.positives:,} positive), {self.left_out:,} left out "
            f"(no label: touching a compound truth group)",
            f"  one-to-one truth pairs among the candidates: {self.truth_pairs_found:,} of {self.truth_pairs:,}",
            f"  fitted on {self.fitted:,} pairs ({calibrated_on}); held out {self.held_out:,} pairs "
            f"(their bank lines' pairs, none seen in fitting)",
        ]
        if self.learned.brier is not None:
            lines.append(f"  held-out Brier score: learned {self.learned.brier:.4f}, "
                         f"rule set {self.rules_scorer.brier:.4f} (lower is better)")
            lines.append("  reliability on the held-out pairs:")
            lines.append(f"    {'confidence':<10} | {'learned: pairs':>14} {'mean':>7} {'positive':>8} "
                         f"| {'rule set: pairs':>15} {'mean':>7} {'positive':>8}")

            def cells(b) -> str:
                mean = f"{b.mean_confidence:.4f}" if b.proposals else "-"
                share = f"{b.share_correct:.4f}" if b.proposals else "-"
                return f"{b.proposals:>{6},} {mean:>7} {share:>8}"

            for ours, theirs in zip(self.learned.bins, self.rules_scorer.bins, strict=True):
                lines.append(f"    {ours.label:<10} | {'':>8}{cells(ours)} | {'':>9}{cells(theirs)}")
        if self.unseen_levels:
            lines.append(f"  levels no training pair has (the rule set's weight is used): {', '.join(self.unseen_levels)}")
        lines += [f"  note: {note}" for note in self.notes]
        if self.path is not None:
            lines.append(f"  model written to {self.path}; use it with [scoring] scorer = \"learned\", "
                         f"model = \"{self.path.name}\" in a rule file beside it")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _held_out_lines(n_bank: int, share: float, seed: int) -> np.ndarray:
    """Which bank lines are held out of fitting (a ``share`` of them, drawn with the seed): all
    pairs of a line go to one side, so the held-out pairs' lines were never seen."""
    rng = np.random.default_rng(seed)
    return rng.random(n_bank) < share


def train_scorer(bank: pl.DataFrame, ledger: pl.DataFrame, labels: pl.DataFrame, rules: RuleSet, *,
                 seed: int = 0, held_out: float = 0.25, classifier: CalibratedPairClassifier | None = None,
                 truth_name: str | None = None, unlisted: bool | None = False) -> TrainingReport:
    """Fit a learned scorer on the candidate pairs of prepared frames.

    Parameters
    ----------
    bank, ledger
        Prepared frames (:func:`engine.pipeline.prepare_bank_frame`, ``prepare_ledger_frame``).
    labels
        :data:`LABEL_SCHEMA` rows (:func:`truth_labels`, reviewers' decisions).
    rules
        The rule set whose candidates and levels the model learns from (and scores with).
    seed
        Seed of the held-out split and of the classifier's calibration split.
    held_out
        Share of bank lines whose pairs are kept out of fitting to measure calibration on.
    classifier
        Default :class:`CalibratedPairClassifier` with ``random_state=seed``.
    truth_name
        The labels' file name, recorded in the model.
    unlisted
        Label of pairs ``labels`` does not name (see :func:`label_pairs`).

    Raises
    ------
    InputError
        No candidate pairs, or no labelled match or non-match among them.
    """
    from engine.candidates.pairs import generate_candidates
    from engine.scoring.evidence import measure_pairs
    from engine.scoring.score import confidence_of, level_codes

    t0 = time.perf_counter()
    pairs = generate_candidates(bank, ledger, rules)
    if pairs.height == 0:
        raise InputError("no candidate pairs between the bank lines and ledger items: nothing to train on")
    evidence = measure_pairs(pairs, bank, ledger, rules)
    codes = level_codes(evidence, bank, ledger, rules)
    ids = pl.DataFrame({"bank_id": bank["id"].gather(pairs["bank_idx"]),
                        "ledger_id": ledger["id"].gather(pairs["ledger_idx"])})
    label = label_pairs(ids, labels, unlisted=unlisted)["label"]
    used = label.is_not_null().to_numpy()
    positive = label.fill_null(False).to_numpy()
    n_positive = int(positive[used].sum())
    if n_positive == 0 or n_positive == int(used.sum()):
        what = "match" if n_positive == 0 else "non-match"
        raise InputError(f"the labels give no {what} among the {pairs.height:,} candidate pairs: "
                         "check that the truth file belongs to these bank and ledger files")
    held_lines = _held_out_lines(bank.height, held_out, seed)
    held = used & held_lines[evidence.bank_rows]
    fit_rows = np.flatnonzero(used & ~held)
    comparisons = comparisons_for(rules)
    base_weights = {name: comparisons[name].weights for name in COMPARISONS}
    X = pair_features(evidence, codes, comparisons, fit_rows, base_weights)
    y = positive[fit_rows]
    if y.all() or not y.any():
        raise InputError("too few labelled pairs to train on once some are held out: give a larger month")
    model = (classifier or CalibratedPairClassifier(random_state=seed)).fit(X, y)
    scorer = LearnedScorer(model, rules, base_weights=base_weights)
    unseen = scorer.unseen_levels(X)
    scorer.training = {"unseen_levels": unseen}

    learned_confidence = confidence_of(scorer.score(evidence, codes))
    rules_confidence = confidence_of(RulesScorer(rules).score(evidence, codes))
    held_rows = np.flatnonzero(held)
    learned = calibration_of(learned_confidence[held_rows], positive[held_rows])
    by_rules = calibration_of(rules_confidence[held_rows], positive[held_rows])

    truth = labels.filter(pl.col("label").fill_null(False) & pl.col("bank_id").is_not_null()
                          & pl.col("ledger_id").is_not_null()).unique(["bank_id", "ledger_id"])
    found = ids.join(truth.select("bank_id", "ledger_id"), on=["bank_id", "ledger_id"], how="semi").height
    scorer.training = {
        "pairs": int(used.sum()), "positives": n_positive, "fitted_pairs": len(fit_rows),
        "held_out_pairs": len(held_rows), "truth": truth_name, "rules": rules.name, "seed": seed,
        "brier": learned.brier, "brier_rule_set": by_rules.brier,
        "bank_lines": bank.height, "ledger_items": ledger.height, "unseen_levels": unseen,
    }
    return TrainingReport(
        scorer=scorer, candidates=pairs.height, bank_lines=bank.height, ledger_items=ledger.height,
        labelled=int(used.sum()), positives=n_positive, left_out=int((~used).sum()),
        truth_pairs=truth.height, truth_pairs_found=found, fitted=len(fit_rows), held_out=len(held_rows),
        learned=learned, rules_scorer=by_rules, unseen_levels=unseen, seconds=time.perf_counter() - t0,
        held_out_pairs=ids[held_rows].with_columns(
            label=pl.Series(positive[held_rows]), learned=pl.Series(learned_confidence[held_rows]),
            rules=pl.Series(rules_confidence[held_rows])),
    )
