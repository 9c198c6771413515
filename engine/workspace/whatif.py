"""Workspace store, the analyst's loop: a rule set replayed against the decided history (what-if).

A reviewer's decisions are labels: an accepted match (or a manual one) is a group the books
agree with, a rejected one (or one undone) a group they do not. :func:`what_if` runs the matcher
in memory on every line the workspace holds (bank lines, ledger items, payout lines, FX rates;
accepted matches' lines included, rejected groups *not* left out) twice, with the rule set that
proposed the decided matches (*before*) and with a new one (*after*), and says for each decided
match what each run would do with it. Nothing is written to the workspace: no run, no decision.

How a replay's proposals are judged by the decisions:

- **accepted** (a true positive): the proposal is a group a reviewer accepted (or built by hand);
- **rejected** (a false positive): the proposal is a group a reviewer rejected or undid, or it
  **conflicts** with an accepted match (it holds one of its lines in another group: each line is
  in one match);
- **not judged**: any other proposal: a group still awaiting a decision, or lines no decision
  speaks to. Undecided proposals are not counted in precision or recall; they are reported.

``precision = accepted / (accepted + rejected + conflicting)`` over the replay's proposals (and
over its ``auto`` ones), ``recall = accepted matches proposed / accepted matches`` (and as
``auto``). Each decided match's outcome in a replay is one of ``auto`` / ``review`` (the same
group proposed with that status), ``changed`` (not proposed as such, its lines in other
groups), or ``lost`` (an accepted match whose lines all stay unmatched) / ``not proposed`` (a
rejected group).

The *before* rule set is the one recorded by the runs that proposed most of the decided
matches (:func:`history_rules`); replaying it too, on the same lines, keeps the comparison
fair: a replay over the whole history can group lines another way than the incremental runs
did, and that part of the difference is not the new rule's.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from engine.pipeline import match_prepared, prepare_bank_frame, prepare_ledger_frame
from engine.progress import Progress
from engine.workspace.decisions import TAKEN_STATES, current_proposals
from engine.workspace.store import Workspace, rules_version
from feeds.fx import FX_SCHEMA
from models.errors import InputError
from models.schema import BANK_SCHEMA, LEDGER_SCHEMA, PAYOUT_LINE_SCHEMA
from rules.model import RuleSet, default_rules, from_mapping, load_rules

__all__ = [
    "ACCEPTED_STATES", "OUTCOMES", "DecidedHistory", "ReplayInputs", "Replay", "WhatIfReport",
    "decided_history", "history_rules", "replay_inputs", "replay", "judge", "what_if", "what_if_many",
]

#: a match in one of these states counts as accepted (a positive); rejected and reversed as not
ACCEPTED_STATES = TAKEN_STATES
#: what a replay does with a decided match
OUTCOMES = ("auto", "review", "changed", "lost", "not proposed")

_HISTORY_SCHEMA = {
    "match_id": pl.Utf8, "verdict": pl.Utf8, "state": pl.Utf8, "manual": pl.Boolean, "match_type": pl.Utf8,
    "status": pl.Utf8, "confidence": pl.Float64, "bank_ids": pl.Utf8, "ledger_ids": pl.Utf8,
    "bank_amount": pl.Utf8, "difference": pl.Utf8, "currency": pl.Utf8, "run_id": pl.Utf8,
    "rules_version": pl.Utf8,
}


@dataclass
class DecidedHistory:
    """The workspace's decided matches and their lines.

    Attributes
    ----------
    matches
        One row a decided match: ``match_id``, ``verdict`` (``accepted``: state accepted,
        written or failed; ``rejected``: rejected or reversed), ``state``, ``manual`` (a
        reviewer's own group), and its proposal: ``match_type``, ``status``, ``confidence``,
        ``bank_ids``, ``ledger_ids`` (';'-joined), ``bank_amount`` and ``difference`` (bank less
        ledger; exact decimal text), ``currency``, ``run_id``, ``rules_version``.
    lines
        ``match_id``, ``side`` (``bank`` / ``ledger``), ``id`` of every decided match.
    undecided
        Proposals of the current run awaiting a decision (not counted as labels).
    """

    matches: pl.DataFrame
    lines: pl.DataFrame
    undecided: int

    @property
    def accepted(self) -> int:
        return self.matches.filter(pl.col("verdict") == "accepted").height

    @property
    def rejected(self) -> int:
        return self.matches.filter(pl.col("verdict") == "rejected").height


def decided_history(ws: Workspace) -> DecidedHistory:
    """The decided matches of ``ws`` (see :class:`DecidedHistory`)."""
    current = current_proposals(ws.con)
    undecided = current.filter(pl.col("state") == "proposed").height
    decided = current.filter(pl.col("state") != "proposed")
    matches = decided.select(
        "match_id",
        verdict=pl.when(pl.col("state").is_in(list(ACCEPTED_STATES))).then(pl.lit("accepted"))
        .otherwise(pl.lit("rejected")),
        state="state",
        manual=(pl.col("status") == "manual") | (pl.col("match_type") == "manual"),
        match_type="match_type", status="status", confidence="confidence", bank_ids="bank_ids",
        ledger_ids="ledger_ids", bank_amount="bank_amount", difference="difference", currency="currency",
        run_id="run_id",
        rules_version="rules_version",
    ).cast(_HISTORY_SCHEMA).sort("match_id")
    ws.con.register("_decided_ids", matches.select("match_id").to_arrow())
    try:
        lines = ws.con.sql(
            "SELECT DISTINCT match_id, side, id FROM match_lines "
            "WHERE match_id IN (SELECT match_id FROM _decided_ids) ORDER BY match_id, side, id"
        ).pl().cast({"match_id": pl.Utf8, "side": pl.Utf8, "id": pl.Utf8})
    finally:
        ws.con.unregister("_decided_ids")
    return DecidedHistory(matches=matches, lines=lines, undecided=undecided)


def history_rules(ws: Workspace, history: DecidedHistory) -> tuple[RuleSet, str]:
    """The rule set that proposed most of the decided matches (manual ones aside), as its run
    recorded it, and a note saying which and how many other rule versions proposed the rest;
    the built-in rule set when no run proposed any."""
    proposed = history.matches.filter(~pl.col("manual") & pl.col("rules_version").is_not_null())
    if proposed.height == 0:
        return default_rules(), "the built-in rule set (no decided match was proposed by a run)"
    versions = Counter(proposed["rules_version"].to_list())
    version, count = versions.most_common(1)[0]
    run_id = proposed.filter(pl.col("rules_version") == version)["run_id"][0]
    row = ws.con.execute("SELECT rules_name, rules_json FROM runs WHERE run_id = ?", [run_id]).fetchone()
    rules = from_mapping(json.loads(row[1]), source=f"rule set {row[0]!r} of run {run_id}")
    note = f"proposed {count:,} of the {proposed.height:,} decided matches runs proposed"
    others = len(versions) - 1
    if others:
        note += f" ({others} other rule version(s) proposed the rest)"
    return rules, note


@dataclass
class ReplayInputs:
    """Every line a workspace holds: ``bank``, ``ledger`` (canonical schemas), ``payout_lines``
    and ``fx_rates`` (None when it holds none)."""

    bank: pl.DataFrame
    ledger: pl.DataFrame
    payout_lines: pl.DataFrame | None
    fx_rates: pl.DataFrame | None


def replay_inputs(ws: Workspace) -> ReplayInputs:
    """All the lines of ``ws``, those of accepted matches included (a replay matches them all)."""
    def read(table: str, schema: dict, order: str) -> pl.DataFrame:
        return ws.con.sql(f"SELECT {', '.join(schema)} FROM {table} ORDER BY {order}").pl().cast(schema)

    payouts = read("payout_lines", PAYOUT_LINE_SCHEMA, "processor, line_id")
    fx = read("fx_rates", FX_SCHEMA, "date, base, quote")
    return ReplayInputs(
        bank=read("bank_lines", BANK_SCHEMA, "id"), ledger=read("ledger_items", LEDGER_SCHEMA, "id"),
        payout_lines=payouts if payouts.height else None, fx_rates=fx if fx.height else None,
    )


@dataclass
class Replay:
    """One in-memory run of a rule set over the workspace's lines, judged by the decisions.

    Attributes
    ----------
    rules
        The rule set replayed.
    scorer
        The scorer it used (``rules``, ``estimated``, ``learned``).
    proposals
        The run's proposals with ``judged``: ``accepted``, ``rejected``, ``conflicting`` or
        ``not judged`` (see the module docstring).
    outcomes
        One row a decided match: ``match_id`` and its ``outcome`` (:data:`OUTCOMES`).
    seconds
        How long the match took.
    """

    rules: RuleSet
    scorer: str
    proposals: pl.DataFrame
    outcomes: pl.DataFrame
    seconds: float = 0.0

    def metrics(self, history: DecidedHistory) -> dict[str, int | float | None]:
        """Counts, precision and recall against the decisions (see the module docstring)."""
        p = self.proposals
        judged = p.filter(pl.col("judged") != "not judged")
        auto = p.filter(pl.col("status") == "auto")
        auto_judged = auto.filter(pl.col("judged") != "not judged")
        outcome = self.outcomes.join(history.matches.select("match_id", "verdict"), on="match_id")
        accepted = outcome.filter(pl.col("verdict") == "accepted")
        rejected = outcome.filter(pl.col("verdict") == "rejected")

        def count(frame: pl.DataFrame, column: str, *values: str) -> int:
            return frame.filter(pl.col(column).is_in(list(values))).height

        def ratio(part: int, whole: int) -> float | None:
            return part / whole if whole else None

        return {
            "proposals": p.height,
            "auto": auto.height,
            "review": p.height - auto.height,
            "proposals_accepted": count(p, "judged", "accepted"),
            "proposals_rejected": count(p, "judged", "rejected"),
            "proposals_conflicting": count(p, "judged", "conflicting"),
            "proposals_not_judged": count(p, "judged", "not judged"),
            "accepted_auto": count(accepted, "outcome", "auto"),
            "accepted_review": count(accepted, "outcome", "review"),
            "accepted_changed": count(accepted, "outcome", "changed"),
            "accepted_lost": count(accepted, "outcome", "lost"),
            "rejected_auto": count(rejected, "outcome", "auto"),
            "rejected_review": count(rejected, "outcome", "review"),
            "rejected_not_proposed": count(rejected, "outcome", "changed", "not proposed"),
            "precision": ratio(count(judged, "judged", "accepted"), judged.height),
            "auto_precision": ratio(count(auto_judged, "judged", "accepted"), auto_judged.height),
            "recall": ratio(count(accepted, "outcome", "auto", "review"), accepted.height),
            "auto_recall": ratio(count(accepted, "outcome", "auto"), accepted.height),
        }


def replay(inputs: ReplayInputs, rules: RuleSet, history: DecidedHistory,
           progress: Progress | None = None, memory_limit: int | None = None) -> Replay:
    """Match ``inputs`` with ``rules`` in memory and judge the proposals by ``history``."""
    t0 = time.perf_counter()
    progress = progress if progress is not None else Progress(bars=False)
    bank = prepare_bank_frame(inputs.bank)
    ledger = prepare_ledger_frame(inputs.ledger, rules)
    outcome = match_prepared(bank, ledger, rules, fx_rates=inputs.fx_rates, payout_lines=inputs.payout_lines,
                             progress=progress, memory_limit=memory_limit)
    proposals, outcomes = judge(outcome.proposals, outcome.match_lines, history)
    return Replay(rules=rules, scorer=outcome.scorer_kind, proposals=proposals, outcomes=outcomes,
                  seconds=time.perf_counter() - t0)


def judge(proposals: pl.DataFrame, match_lines: pl.DataFrame,
          history: DecidedHistory) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Judge a run's proposals by the decisions, and say what the run does with each decided
    match.

    Parameters
    ----------
    proposals
        The run's proposals (``match_id``, ``status``, ...).
    match_lines
        Their lines (``match_id``, ``side``, ``id``).
    history
        :func:`decided_history`.

    Returns
    -------
    tuple of polars.DataFrame
        ``proposals`` with ``judged`` (``accepted``, ``rejected``, ``conflicting``, ``not
        judged``), and one row a decided match: ``match_id``, ``outcome`` (:data:`OUTCOMES`).
    """
    verdicts = history.matches.select("match_id", "verdict")
    accepted_lines = history.lines.join(verdicts.filter(pl.col("verdict") == "accepted"), on="match_id",
                                        how="semi").select("side", "id", accepted_match="match_id")
    # a proposal holding a line of an accepted match it is not
    conflicting = (match_lines.select("match_id", "side", "id")
                   .join(accepted_lines, on=["side", "id"])
                   .filter(pl.col("match_id") != pl.col("accepted_match"))["match_id"].unique())
    judged = proposals.join(verdicts, on="match_id", how="left").with_columns(
        judged=pl.when(pl.col("verdict").is_not_null()).then(pl.col("verdict"))
        .when(pl.col("match_id").is_in(conflicting.implode())).then(pl.lit("conflicting"))
        .otherwise(pl.lit("not judged"))
    ).drop("verdict")
    proposed_lines = match_lines.select("side", "id").unique()
    in_other_groups = (history.lines.join(proposed_lines, on=["side", "id"], how="semi")["match_id"].unique())
    outcomes = (
        history.matches.select("match_id", "verdict")
        .join(proposals.select("match_id", "status"), on="match_id", how="left")
        .with_columns(outcome=pl.when(pl.col("status").is_not_null()).then(pl.col("status"))
                      .when(pl.col("match_id").is_in(in_other_groups.implode())).then(pl.lit("changed"))
                      .when(pl.col("verdict") == "accepted").then(pl.lit("lost"))
                      .otherwise(pl.lit("not proposed")))
        .select("match_id", "outcome")
    )
    return judged, outcomes


# the rows of the comparison table: (metric key, label, kind)
_TABLE_ROWS = (
    ("proposals", "proposals", "count"),
    ("auto", "  auto", "count"),
    ("review", "  review", "count"),
    ("proposals_not_judged", "  not judged (undecided or new lines)", "count"),
    ("accepted_auto", "accepted matches proposed again, auto", "count"),
    ("accepted_review", "accepted matches proposed again, review", "count"),
    ("accepted_changed", "accepted matches changed (lines in other groups)", "count"),
    ("accepted_lost", "accepted matches lost (lines left unmatched)", "count"),
    ("rejected_auto", "rejected matches back, auto", "count"),
    ("rejected_review", "rejected matches back, review", "count"),
    ("rejected_not_proposed", "rejected matches not proposed", "count"),
    ("proposals_conflicting", "proposals conflicting with an accepted match", "count"),
    ("precision", "precision (judged proposals)", "ratio"),
    ("auto_precision", "auto precision", "ratio"),
    ("recall", "recall of accepted matches", "ratio"),
    ("auto_recall", "auto recall of accepted matches", "ratio"),
)


def _largest_first(matches: pl.DataFrame) -> pl.DataFrame:
    """Accepted matches first, then by the size of the bank amount (exact), then by id."""
    size = pl.col("bank_amount").str.strip_chars_start("-").cast(pl.Decimal(38, 6), strict=False)
    return (matches.with_columns(_size=size)
            .sort(["verdict", "_size", "match_id"], descending=[False, True, False], nulls_last=True)
            .drop("_size"))


def _version(rules: RuleSet) -> str:
    return rules_version(rules.name, rules.model_dump_json())


def _few(ids: str | None, shown: int = 3) -> str:
    """A ';'-joined id list cut to its first ``shown`` ids and how many more."""
    parts = [part for part in (ids or "").split(";") if part]
    if not parts:
        return "-"
    more = f" (+{len(parts) - shown} more)" if len(parts) > shown else ""
    return ";".join(parts[:shown]) + more


def _ratio_text(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.2f}%"


@dataclass
class WhatIfReport:
    """What a new rule set would do to the decided history, beside the rule set that made it.

    Attributes
    ----------
    workspace
        The workspace file.
    history
        The decided matches (:class:`DecidedHistory`).
    before, after
        The two replays (:class:`Replay`).
    before_note
        Which rule set *before* is and why.
    bank_lines, ledger_items
        Lines replayed.
    seconds
        Reading the workspace and the two replays.
    """

    workspace: Path
    history: DecidedHistory
    before: Replay
    after: Replay
    before_note: str
    bank_lines: int
    ledger_items: int
    seconds: float = 0.0
    _metrics: tuple[dict, dict] | None = field(default=None, init=False, repr=False)

    def metrics(self) -> tuple[dict, dict]:
        """The metrics of *before* and *after* (:meth:`Replay.metrics`)."""
        if self._metrics is None:
            self._metrics = (self.before.metrics(self.history), self.after.metrics(self.history))
        return self._metrics

    def table(self) -> pl.DataFrame:
        """One row a measure: ``metric`` (key), ``label``, ``before``, ``after`` and ``change``
        (counts as integers, precision and recall as fractions)."""
        before, after = self.metrics()
        rows = []
        for key, label, kind in _TABLE_ROWS:
            b, a = before[key], after[key]
            change = None if b is None or a is None else a - b
            rows.append({"metric": key, "label": label,
                         "before": None if b is None else float(b), "after": None if a is None else float(a),
                         "change": None if change is None else float(change), "kind": kind})
        return pl.DataFrame(rows, schema={"metric": pl.Utf8, "label": pl.Utf8, "before": pl.Float64,
                                          "after": pl.Float64, "change": pl.Float64, "kind": pl.Utf8})

    def matches(self) -> pl.DataFrame:
        """Every decided match with what each replay does with it: ``match_id``, ``verdict``,
        ``manual``, ``before``, ``after`` (:data:`OUTCOMES`), and the match's ``match_type``,
        ``bank_ids``, ``ledger_ids``, ``bank_amount``, ``difference``, ``currency``,
        ``confidence`` as proposed."""
        return (
            self.history.matches
            .join(self.before.outcomes.rename({"outcome": "before"}), on="match_id", how="left")
            .join(self.after.outcomes.rename({"outcome": "after"}), on="match_id", how="left")
            .select("match_id", "verdict", "manual", "before", "after", "match_type", "bank_ids", "ledger_ids",
                    "bank_amount", "difference", "currency", "confidence")
        )

    def changes(self) -> pl.DataFrame:
        """The decided matches whose outcome differs between *before* and *after* (rows of
        :meth:`matches`): accepted matches lost, changed or moved between auto and review,
        rejected ones coming back or going away; accepted ones first, largest amounts first."""
        return _largest_first(self.matches().filter(pl.col("before") != pl.col("after")))

    def lost_or_changed(self) -> pl.DataFrame:
        """Accepted matches *after* no longer proposes as they are (``changed`` or ``lost``),
        largest amounts first."""
        return _largest_first(self.matches().filter(
            (pl.col("verdict") == "accepted") & pl.col("after").is_in(["changed", "lost"])))

    def coming_back(self) -> pl.DataFrame:
        """Rejected matches *after* proposes again (``auto`` or ``review``), largest amounts first."""
        return _largest_first(self.matches().filter(
            (pl.col("verdict") == "rejected") & pl.col("after").is_in(["auto", "review"])))

    def to_dict(self, limit: int | None = None) -> dict:
        """The report as JSON-ready data (what ``recon what-if --json`` prints): rules, history,
        the table (counts as integers, ratios as numbers or null) and the changed matches (the
        first ``limit``, amounts as exact decimal text)."""
        before, after = self.metrics()
        changes = self.changes()
        shown = changes if limit is None else changes.head(limit)
        return {
            "workspace": str(self.workspace),
            "replayed": {"bank_lines": self.bank_lines, "ledger_items": self.ledger_items},
            "before": {"rules": self.before.rules.name, "rules_version": _version(self.before.rules),
                       "scorer": self.before.scorer, "note": self.before_note, "metrics": before},
            "after": {"rules": self.after.rules.name, "rules_version": _version(self.after.rules),
                      "scorer": self.after.scorer, "metrics": after},
            "history": {"accepted": self.history.accepted, "rejected": self.history.rejected,
                        "manual": self.history.matches.filter(pl.col("manual")).height,
                        "undecided_not_counted": self.history.undecided},
            "changes": {"total": changes.height, "rows": shown.to_dicts()},
        }

    def summary(self, limit: int = 20) -> str:
        """What ``recon what-if`` prints: the table, then the first ``limit`` changed matches."""
        h = self.history
        manual = h.matches.filter(pl.col("manual")).height
        lines = [
            f"recon what-if: {self.workspace}, {self.bank_lines:,} bank lines and {self.ledger_items:,} ledger "
            f"items replayed in memory (nothing written) in {self.seconds:.1f} s",
            f"  decided history: {h.accepted:,} accepted ({manual:,} manual), {h.rejected:,} rejected or undone; "
            f"{h.undecided:,} proposals awaiting a decision are not counted",
            f"  before: rule set {_version(self.before.rules)} ({self.before.scorer} scorer): {self.before_note}",
            f"  after:  rule set {_version(self.after.rules)} ({self.after.scorer} scorer)",
            "",
        ]
        table = self.table()
        width = max(len(label) for label in table["label"])
        lines.append(f"  {'':<{width}} {'before':>10} {'after':>10} {'change':>10}")
        for row in table.iter_rows(named=True):
            if row["kind"] == "ratio":
                b, a = _ratio_text(row["before"]), _ratio_text(row["after"])
                c = "-" if row["change"] is None else f"{100.0 * row['change']:+.2f} pp"
            else:
                b, a = f"{int(row['before']):,}", f"{int(row['after']):,}"
                c = f"{int(row['change']):+,}" if row["change"] else "0"
            lines.append(f"  {row['label']:<{width}} {b:>10} {a:>10} {c:>10}")
        changes = self.changes()
        lines.append("")
        if changes.height == 0:
            lines.append("  no decided match changes outcome")
        else:
            lines.append(f"  decided matches whose outcome changes: {changes.height:,}"
                         + (f" (the first {limit})" if changes.height > limit else ""))
            for row in changes.head(limit).iter_rows(named=True):
                lines.append(f"    {row['match_id']}  {row['verdict']:<8} {row['before']:>12} -> {row['after']:<12} "
                             f"{row['bank_amount']:>14} {row['currency']}  bank {_few(row['bank_ids'])}  "
                             f"ledger {_few(row['ledger_ids'])}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def what_if(workspace: str | Path, rules: RuleSet | str | Path | None, before: RuleSet | str | Path | None = None,
            progress: Progress | None = None, memory_limit: int | None = None) -> WhatIfReport:
    """Replay ``rules`` against the decided history of ``workspace`` beside the rule set that made it.

    The workspace is read (under its lock, briefly) and then released: both replays run in
    memory and nothing is written.

    Parameters
    ----------
    workspace
        The workspace file.
    rules
        The new rule set (a :class:`RuleSet` or a rule file; None: the built-in one). As in an
        incremental match, the workspace's saved learned scorer applies when the rule set uses
        the rule-set scorer (:func:`engine.workspace.training.scorer_rules`).
    before
        The rule set to compare with (default: :func:`history_rules`).
    progress
        Where the stages report (default: log lines only).
    memory_limit
        Bytes each replay may use (default: a share of the machine).

    Returns
    -------
    WhatIfReport

    Raises
    ------
    InputError
        The workspace has no decided match to compare with.

    Examples
    --------
    >>> stricter = recon.default_rules().with_changes(thresholds={"auto": 0.999})  # doctest: +SKIP
    >>> report = what_if("books.duckdb", stricter)                                    # doctest: +SKIP
    >>> report.table()                                                                # doctest: +SKIP
    """
    return what_if_many(workspace, {"after": rules}, before=before, progress=progress,
                        memory_limit=memory_limit)["after"]


def what_if_many(workspace: str | Path, rule_sets: dict[str, RuleSet | str | Path | None],
                 before: RuleSet | str | Path | None = None, progress: Progress | None = None,
                 memory_limit: int | None = None) -> dict[str, WhatIfReport]:
    """:func:`what_if` of several rule sets at once (a sweep): the workspace is read once and
    *before* replayed once, so N rule sets cost N + 1 replays.

    Parameters
    ----------
    rule_sets
        Name -> rule set (or rule file); the reports come back under the same names.

    Returns
    -------
    dict[str, WhatIfReport]

    Examples
    --------
    >>> rules = recon.default_rules()                                                      # doctest: +SKIP
    >>> sweep = what_if_many("books.duckdb", {auto: rules.with_changes(thresholds={"auto": auto})
    ...                                       for auto in (0.9, 0.99, 0.999)})             # doctest: +SKIP
    """
    from engine.workspace.training import scorer_rules

    t0 = time.perf_counter()
    loaded = {name: rules if isinstance(rules, RuleSet) else load_rules(rules) for name, rules in rule_sets.items()}
    given_before = before if before is None or isinstance(before, RuleSet) else load_rules(before)
    with Workspace(workspace, create=False) as ws:
        history = decided_history(ws)
        if history.matches.height == 0:
            raise InputError(f"workspace {ws.path} has no decided match yet: accept or reject proposals "
                             "(`recon accept` / `recon reject`) before replaying rules against the decisions")
        if given_before is None:
            before_rules, note = history_rules(ws, history)
        else:
            before_rules, note = scorer_rules(ws, given_before), "as given"
        loaded = {name: scorer_rules(ws, rules) for name, rules in loaded.items()}
        inputs = replay_inputs(ws)
        path = ws.path
    before_run = replay(inputs, before_rules, history, progress, memory_limit)
    read = time.perf_counter() - t0 - before_run.seconds
    reports = {}
    for name, rules in loaded.items():
        after_run = replay(inputs, rules, history, progress, memory_limit)
        reports[name] = WhatIfReport(
            workspace=path, history=history, before=before_run, after=after_run, before_note=note,
            bank_lines=inputs.bank.height, ledger_items=inputs.ledger.height,
            seconds=read + before_run.seconds + after_run.seconds)
    return reports
