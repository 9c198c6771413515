"""Workspace store, the analyst's loop: the learned scorer trained from reviewers' decisions,
opt-in per workspace, and saved as the workspace's scorer.

**Opt-in.** Training is off until someone enables it for the workspace, naming where its data
comes from (:func:`enable_training`; ``recon training --workspace W --enable --source TEXT``).
Some platforms' API terms forbid training models on data pulled through their API (Xero's
developer terms do): a workspace fed from such an API must not enable it. Disabling it again
also stops using a model trained from it.

**Labels from decisions** (:func:`decision_labels`, rows of
:data:`engine.scoring.learned.LABEL_SCHEMA`):

- an accepted match (accepted, written or failed; manual ones too) of one bank line and one
  ledger item: that pair is a match; every other candidate pair of its two lines is not (a line
  is in one match);
- an accepted match with more lines on a side: every candidate pair of its lines is not a
  one-to-one match (as ``recon train --compound-pairs negative`` treats compound truth groups);
- a rejected (or undone) match of one bank line and one ledger item: that pair is not a match;
  a rejected compound group says nothing about its pairs;
- every other pair (lines no decision speaks to, proposals awaiting a decision) is left out.

:func:`train_from_decisions` fits :class:`engine.scoring.learned.CalibratedPairClassifier` on the
workspace's candidate pairs with those labels, a quarter of the bank lines held out, and compares
the learned and the rule-set scorer on the held-out decided pairs (Brier score, reliability
table, precision and recall at the review and auto thresholds). :func:`save_scorer` writes the
model beside the workspace (``books.duckdb`` -> ``books.scorer.json``) and records it in the
workspace's ``settings``; :func:`scorer_rules` is how an incremental match (and a what-if) picks
it up: a rule set that uses the rule-set scorer scores with the workspace's model instead (a rule
file naming another scorer keeps its own; :func:`use_rules_scorer` goes back).

The ``settings`` table is append-only like ``decisions``: ``seq``, ``at``, ``by``, ``key``,
``value``, ``comment``; a key's current value is its latest row.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from engine.pipeline import prepare_bank_frame, prepare_ledger_frame
from engine.scoring.learned import LABEL_SCHEMA, TrainingReport, train_scorer
from engine.workspace.review import reviewer
from engine.workspace.store import Workspace
from engine.workspace.whatif import DecidedHistory, decided_history, replay_inputs
from models.errors import InputError, ModelFileError
from rules.model import RuleSet, load_rules

__all__ = [
    "SETTINGS_DDL", "TrainingSetting", "DecisionTraining", "settings", "training_setting", "enable_training",
    "disable_training", "require_training", "decision_labels", "train_from_decisions", "save_scorer",
    "scorer_path", "scorer_rules", "use_rules_scorer", "train_workspace",
]

SETTINGS_DDL = """CREATE TABLE IF NOT EXISTS settings (
    seq BIGINT, "at" TIMESTAMP, "by" VARCHAR, "key" VARCHAR, value VARCHAR, comment VARCHAR)"""

_TRAINING = "training"
_SCORER = "scorer"

API_TERMS_NOTE = (
    "some platforms' API terms forbid training models on data pulled through their API (Xero's "
    "developer terms do): do not enable training for a workspace fed from such an API"
)


def _ensure(ws: Workspace) -> None:
    ws.con.execute(SETTINGS_DDL)


def settings(ws: Workspace) -> dict[str, dict]:
    """The current value of every setting of ``ws``: key -> ``{"value", "comment", "by", "at"}``
    (nothing is written: a workspace that never had a setting has no ``settings`` table)."""
    [(exists,)] = ws.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'settings' AND schema_name = 'main' "
        "AND database_name = current_database()").fetchall()
    if not exists:
        return {}
    rows = ws.con.execute(
        'SELECT "key", value, comment, "by", "at" FROM settings '
        'QUALIFY row_number() OVER (PARTITION BY "key" ORDER BY seq DESC) = 1').fetchall()
    return {key: {"value": value, "comment": comment, "by": by, "at": at} for key, value, comment, by, at in rows}


def _set(ws: Workspace, key: str, value: str, comment: str | None, by: str | None) -> None:
    _ensure(ws)
    con = ws.con
    con.execute("BEGIN TRANSACTION")
    try:
        [(last,)] = con.execute("SELECT coalesce(max(seq), 0) FROM settings").fetchall()
        con.execute('INSERT INTO settings (seq, "at", "by", "key", value, comment) VALUES (?, ?, ?, ?, ?, ?)',
                    [last + 1, datetime.now(UTC).replace(tzinfo=None), reviewer(by), key, value, comment])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


@dataclass
class TrainingSetting:
    """Whether a workspace may train on its decisions, and the scorer it matches with.

    Attributes
    ----------
    enabled
        Training on the workspace's decisions is allowed.
    source
        Where the workspace's data comes from, as given when training was enabled.
    by, at
        Who changed the setting last, and when (UTC).
    model
        The model file of the workspace's learned scorer (None: the rule set's scorer).
    model_sha256
        The checksum of that model when it was saved.
    """

    enabled: bool
    source: str | None
    by: str | None
    at: datetime | None
    model: Path | None
    model_sha256: str | None

    def to_dict(self) -> dict:
        return {"training_enabled": self.enabled, "source": self.source, "by": self.by,
                "at": None if self.at is None else self.at.isoformat(),
                "scorer": "learned" if self.model else "rules",
                "model": None if self.model is None else str(self.model), "model_sha256": self.model_sha256}

    def summary(self) -> str:
        if self.enabled:
            lines = [f"training on decisions: enabled by {self.by} at {self.at:%Y-%m-%d %H:%M} UTC "
                     f"(data source: {self.source})"]
        elif self.by:
            lines = [f"training on decisions: disabled by {self.by} at {self.at:%Y-%m-%d %H:%M} UTC"]
        else:
            lines = ["training on decisions: not enabled (opt-in: `recon training --workspace W --enable "
                     "--source TEXT`)"]
        lines.append(f"scorer: learned, model {self.model}" if self.model else "scorer: the rule set's")
        return "\n".join(lines)


def training_setting(ws: Workspace) -> TrainingSetting:
    """The training and scorer settings of ``ws``."""
    current = settings(ws)
    training = current.get(_TRAINING) or {}
    scorer = current.get(_SCORER) or {}
    model = sha = None
    if scorer.get("value"):
        stored = json.loads(scorer["value"])
        model, sha = ws.path.parent / stored["model"], stored.get("sha256")
    return TrainingSetting(enabled=training.get("value") == "enabled", source=training.get("comment"),
                           by=training.get("by"), at=training.get("at"), model=model, model_sha256=sha)


def enable_training(ws: Workspace, source: str, by: str | None = None) -> TrainingSetting:
    """Allow training on the decisions of ``ws``.

    Parameters
    ----------
    source
        Where the workspace's lines come from (bank statement files, an own ledger database...):
        kept with the setting, as the record that the data may be used to train a model.

    Raises
    ------
    InputError
        No source given.
    """
    if not source or not source.strip():
        raise InputError("enabling training needs --source TEXT: where this workspace's data comes from (e.g. "
                         f"'bank CSV exports and our own ledger'); {API_TERMS_NOTE}")
    _set(ws, _TRAINING, "enabled", source.strip(), by)
    return training_setting(ws)


def disable_training(ws: Workspace, by: str | None = None) -> TrainingSetting:
    """Forbid training on the decisions of ``ws``; a learned scorer saved from them is no longer
    used (its file stays where it is)."""
    _set(ws, _TRAINING, "disabled", None, by)
    if training_setting(ws).model is not None:
        _set(ws, _SCORER, "", "training disabled", by)
    return training_setting(ws)


def require_training(ws: Workspace) -> TrainingSetting:
    """The setting of ``ws`` when training is enabled.

    Raises
    ------
    InputError
        Training is not enabled for the workspace.
    """
    setting = training_setting(ws)
    if not setting.enabled:
        raise InputError(
            f"training on the decisions of {ws.path} is not enabled; if its data may be used to train a model, "
            f"enable it with `recon training --workspace {ws.path} --enable --source TEXT` ({API_TERMS_NOTE})")
    return setting


def use_rules_scorer(ws: Workspace, by: str | None = None) -> TrainingSetting:
    """Match ``ws`` with the rule set's scorer again (the model file stays where it is)."""
    _set(ws, _SCORER, "", "back to the rule set's scorer", by)
    return training_setting(ws)


def scorer_path(workspace: str | Path) -> Path:
    """Where the learned scorer of a workspace is saved: beside it, ``NAME.scorer.json``."""
    workspace = Path(workspace)
    return workspace.with_name(f"{workspace.stem}.scorer.json")


def scorer_rules(ws: Workspace, rules: RuleSet) -> RuleSet:
    """The rule set a match of ``ws`` scores with: ``rules`` with the workspace's learned scorer
    when one is saved and ``rules`` uses the rule-set scorer; ``rules`` as given otherwise.

    Raises
    ------
    ModelFileError
        The saved model file is missing or is not the model that was saved (another checksum).
    """
    setting = training_setting(ws)
    if setting.model is None or rules.scoring.scorer != "rules":
        return rules
    fix = (f"save it again with `recon train --workspace {ws.path} --save`, or match with the rule set's scorer: "
           f"`recon training --workspace {ws.path} --use-rules`")
    try:
        document = json.loads(setting.model.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(str(setting.model), "the workspace's learned scorer is missing", fix) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(str(setting.model), f"the workspace's learned scorer cannot be read ({exc})", fix) from None
    if not isinstance(document, dict) or document.get("sha256") != setting.model_sha256:
        raise ModelFileError(str(setting.model), "is not the model saved as the workspace's scorer (its checksum "
                                                 "differs)", fix)
    return rules.with_changes(scoring={"scorer": "learned", "model": str(setting.model)})


def decision_labels(history: DecidedHistory) -> pl.DataFrame:
    """Labelled pairs (:data:`~engine.scoring.learned.LABEL_SCHEMA`) from the decided matches
    (the rules are in the module docstring)."""
    lines = history.lines.join(history.matches.select("match_id", "verdict"), on="match_id")
    sizes = lines.group_by("match_id").agg(
        n_bank=(pl.col("side") == "bank").sum(), n_ledger=(pl.col("side") == "ledger").sum())
    lines = lines.join(sizes, on="match_id")
    pairs = (lines.filter((pl.col("n_bank") == 1) & (pl.col("n_ledger") == 1))
             .group_by("match_id", "verdict")
             .agg(bank_id=pl.col("id").filter(pl.col("side") == "bank").first(),
                  ledger_id=pl.col("id").filter(pl.col("side") == "ledger").first())
             .select("bank_id", "ledger_id", label=pl.col("verdict") == "accepted"))
    accepted_lines = lines.filter(pl.col("verdict") == "accepted")
    line_rows = pl.concat([
        accepted_lines.filter(pl.col("side") == "bank").select(
            bank_id="id", ledger_id=pl.lit(None, dtype=pl.Utf8), label=pl.lit(False)),
        accepted_lines.filter(pl.col("side") == "ledger").select(
            bank_id=pl.lit(None, dtype=pl.Utf8), ledger_id="id", label=pl.lit(False)),
    ])
    return pl.concat([line_rows.cast(LABEL_SCHEMA), pairs.cast(LABEL_SCHEMA)]).sort(
        "bank_id", "ledger_id", nulls_last=True)


def _at_threshold(confidence: np.ndarray, positive: np.ndarray, threshold: float) -> tuple[float | None, float | None]:
    """Precision and recall of "a match when the confidence reaches ``threshold``"."""
    predicted = confidence >= threshold
    hits = int((predicted & positive).sum())
    precision = hits / int(predicted.sum()) if predicted.any() else None
    recall = hits / int(positive.sum()) if positive.any() else None
    return precision, recall


@dataclass
class DecisionTraining:
    """A learned scorer trained on a workspace's decisions, compared with the rule-set scorer on
    the held-out decided pairs.

    Attributes
    ----------
    report
        The training (:class:`engine.scoring.learned.TrainingReport`: the model, pairs, the
        held-out calibration of both scorers and the held-out pairs).
    workspace
        The workspace file.
    accepted, rejected, undecided
        Decided matches that gave labels, and proposals awaiting a decision (no label).
    thresholds
        ``{"review": ..., "auto": ...}`` of the rule set.
    path
        The model file, once saved (:func:`save_scorer`).
    """

    report: TrainingReport
    workspace: Path
    accepted: int
    rejected: int
    undecided: int
    thresholds: dict[str, float]
    path: Path | None = None

    @property
    def scorer(self):
        return self.report.scorer

    def comparison(self) -> pl.DataFrame:
        """One row a scorer (``learned``, ``rules``) on the held-out decided pairs: ``pairs``,
        ``positives``, ``brier`` and precision / recall at the review and auto thresholds."""
        held = self.report.held_out_pairs
        positive = held["label"].to_numpy()
        rows = []
        for name, calibration in (("learned", self.report.learned), ("rules", self.report.rules_scorer)):
            confidence = held[name].to_numpy()
            row = {"scorer": name, "pairs": held.height, "positives": int(positive.sum()),
                   "brier": calibration.brier}
            for level, threshold in self.thresholds.items():
                precision, recall = _at_threshold(confidence, positive, threshold)
                row[f"precision_at_{level}"], row[f"recall_at_{level}"] = precision, recall
            rows.append(row)
        return pl.DataFrame(rows, schema={"scorer": pl.Utf8, "pairs": pl.Int64, "positives": pl.Int64,
                                          "brier": pl.Float64, "precision_at_review": pl.Float64,
                                          "recall_at_review": pl.Float64, "precision_at_auto": pl.Float64,
                                          "recall_at_auto": pl.Float64})

    def reliability(self) -> pl.DataFrame:
        """The reliability table of both scorers on the held-out pairs: per confidence bin, the
        pairs each scorer puts there, their mean confidence and the share that are matches."""
        rows = []
        for ours, theirs in zip(self.report.learned.bins, self.report.rules_scorer.bins, strict=True):
            rows.append({
                "confidence": ours.label,
                "learned_pairs": ours.proposals,
                "learned_mean": ours.mean_confidence if ours.proposals else None,
                "learned_positive": ours.share_correct if ours.proposals else None,
                "rules_pairs": theirs.proposals,
                "rules_mean": theirs.mean_confidence if theirs.proposals else None,
                "rules_positive": theirs.share_correct if theirs.proposals else None,
            })
        return pl.DataFrame(rows)

    def to_dict(self) -> dict:
        """JSON-ready: the workspace, the decisions used, the pairs, both scorers on the held-out
        pairs, the reliability table and the model file."""
        r = self.report
        return {
            "workspace": str(self.workspace), "rules": r.scorer.rules.name,
            "decisions": {"accepted": self.accepted, "rejected": self.rejected,
                          "undecided_not_used": self.undecided},
            "pairs": {"candidates": r.candidates, "labelled": r.labelled, "positives": r.positives,
                      "left_out": r.left_out, "fitted": r.fitted, "held_out": r.held_out},
            "thresholds": self.thresholds,
            "held_out": self.comparison().to_dicts(),
            "reliability": self.reliability().to_dicts(),
            "model": None if self.path is None else str(self.path),
        }

    def summary(self) -> str:
        """What ``recon train --workspace`` prints."""
        r = self.report
        lines = [
            f"recon train: {self.workspace}: learned scorer for rule set '{r.scorer.rules.name}' from "
            f"{self.accepted:,} accepted and {self.rejected:,} rejected or undone matches "
            f"({self.undecided:,} proposals awaiting a decision not used) in {r.seconds:.1f} s",
            f"  {r.candidates:,} candidate pairs of {r.bank_lines:,} bank lines and {r.ledger_items:,} ledger items: "
            f"{r.labelled:,} labelled by decisions ({r.positives:,} matches), {r.left_out:,} left out (no decision "
            f"speaks to them)",
            f"  fitted on {r.fitted:,} pairs; held out {r.held_out:,} decided pairs (a quarter of the bank lines, "
            "none seen in fitting)",
            "",
            f"  on the held-out decided pairs   {'Brier':>7}   {'at review ' + format(self.thresholds['review'], 'g'):>19}"
            f"   {'at auto ' + format(self.thresholds['auto'], 'g'):>19}",
            f"  {'':<30} {'':>7}   {'precision':>10} {'recall':>8}   {'precision':>10} {'recall':>8}",
        ]

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{100.0 * value:.2f}%"

        for row in self.comparison().iter_rows(named=True):
            brier = "-" if row["brier"] is None else f"{row['brier']:.4f}"
            name = "learned scorer" if row["scorer"] == "learned" else "rule-set scorer"
            lines.append(f"  {name:<30} {brier:>7}   {pct(row['precision_at_review']):>10} "
                         f"{pct(row['recall_at_review']):>8}   {pct(row['precision_at_auto']):>10} "
                         f"{pct(row['recall_at_auto']):>8}")

        def cell(row: dict, prefix: str) -> str:
            if not row[f"{prefix}_pairs"]:
                return f"{0:>7} {'-':>7} {'-':>7}"
            return f"{row[f'{prefix}_pairs']:>7,} {row[f'{prefix}_mean']:>7.4f} {row[f'{prefix}_positive']:>7.4f}"

        lines += ["", "  reliability on the held-out pairs (confidence bin: pairs, mean confidence, share matches):"]
        for row in self.reliability().iter_rows(named=True):
            lines.append(f"    {row['confidence']:<10}  learned {cell(row, 'learned')}   rule set {cell(row, 'rules')}")
        if r.unseen_levels:
            lines.append(f"  levels no decided pair has (the rule set's weight is used): {', '.join(r.unseen_levels)}")
        if self.path is not None:
            lines.append(f"  saved as the workspace's scorer: {self.path} (the next `recon match --workspace "
                         f"{self.workspace}` scores with it)")
        else:
            lines.append(f"  not saved; `recon train --workspace {self.workspace} --save` makes it the workspace's "
                         "scorer")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def train_from_decisions(ws: Workspace, rules: RuleSet | str | Path | None = None, seed: int = 0,
                         held_out: float = 0.25) -> DecisionTraining:
    """Train a learned scorer on the decisions of the open workspace ``ws`` (training must be
    enabled for it).

    Parameters
    ----------
    ws
        The open workspace.
    rules
        The rule set whose candidates and levels the model learns (and will score with);
        default: the built-in one, as ``recon match --workspace`` uses.
    seed
        Seed of the held-out split and of the calibration split.
    held_out
        Share of bank lines whose decided pairs are kept out of fitting.

    Returns
    -------
    DecisionTraining

    Raises
    ------
    InputError
        Training is not enabled, or the decisions give no match or no non-match to learn from.
    """
    require_training(ws)
    rules = rules if isinstance(rules, RuleSet) else load_rules(rules)
    t0 = time.perf_counter()
    history = decided_history(ws)
    if history.accepted == 0:
        raise InputError(f"workspace {ws.path} has no accepted match: a learned scorer needs reviewers' "
                         "decisions to learn from (`recon accept` ...)")
    inputs = replay_inputs(ws)
    labels = decision_labels(history)
    bank = prepare_bank_frame(inputs.bank)
    ledger = prepare_ledger_frame(inputs.ledger, rules)
    report = train_scorer(bank, ledger, labels, rules, seed=seed, held_out=held_out, unlisted=None)
    report.scorer.training.update(source="decisions", workspace=ws.path.name, accepted=history.accepted,
                                  rejected=history.rejected, truth=None)
    report.seconds = time.perf_counter() - t0
    return DecisionTraining(report=report, workspace=ws.path, accepted=history.accepted, rejected=history.rejected,
                            undecided=history.undecided,
                            thresholds={"review": rules.thresholds.review, "auto": rules.thresholds.auto})


def save_scorer(ws: Workspace, training: DecisionTraining, by: str | None = None) -> Path:
    """Write the trained model beside the workspace (:func:`scorer_path`) and make it the
    workspace's scorer; returns the file.

    Raises
    ------
    InputError
        Training was disabled meanwhile.
    """
    require_training(ws)
    path = training.report.scorer.save(scorer_path(ws.path))
    sha = json.loads(path.read_text(encoding="utf-8"))["sha256"]
    value = json.dumps({"model": path.name, "sha256": sha, "rules": training.report.scorer.rules.name})
    _set(ws, _SCORER, value, f"trained on {training.accepted} accepted and {training.rejected} rejected matches", by)
    training.path = training.report.path = path
    return path


def train_workspace(workspace: str | Path, rules: RuleSet | str | Path | None = None, seed: int = 0,
                    save: bool = False, by: str | None = None) -> DecisionTraining:
    """Train a learned scorer on the decisions of ``workspace`` and, with ``save``, make it the
    workspace's scorer.

    The workspace is held (locked) from reading the decisions to saving the model, so no
    decision changes under the training.

    Examples
    --------
    >>> training = train_workspace("books.duckdb", save=True)   # doctest: +SKIP
    >>> training.comparison()                                   # doctest: +SKIP
    """
    with Workspace(workspace, create=False) as ws:
        training = train_from_decisions(ws, rules=rules, seed=seed)
        if save:
            save_scorer(ws, training, by=by)
    return training
