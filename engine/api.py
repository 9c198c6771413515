"""Python API for notebooks and scripts: load, match, evaluate in a few lines.

The ``recon`` CLI is a thin layer over these functions.

Examples
--------
>>> import engine.api as recon                                   # doctest: +SKIP
>>> result = recon.match(bank="bank.csv", ledger="ledger.csv")    # doctest: +SKIP
>>> result.proposals.filter(pl.col("status") == "review")         # doctest: +SKIP
>>> recon.evaluate(result, "truth.csv")                           # doctest: +SKIP
>>> stricter = recon.default_rules().with_changes(thresholds={"auto": 0.99})  # doctest: +SKIP
>>> recon.match(bank=..., ledger=..., rules=stricter)             # doctest: +SKIP
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

import feeds
from engine.memory import default_limit, parse_size
from engine.outputs import StagedOutputs, canonical_csv_view, check_out_dir
from engine.pipeline import MatchOutcome, match_prepared, prepare_bank_frame, prepare_ledger_frame
from engine.prepare.names import checked_aliases
from engine.progress import Progress
from engine.workspace.crash import crash_point
from engine.workspace.ingest import IngestReport
from engine.workspace.store import Workspace
from feeds.aliases import read_aliases
from models.errors import InputError
from models.schema import REJECTS_SCHEMA, WORKSPACE_ONLY_COLUMNS, FileStats, LoadResult
from rules.model import RuleSet, default_rules, load_rules

__all__ = [
    "MatchResult", "match", "load_bank", "load_ledger", "evaluate", "train", "default_rules", "load_rules",
    "RuleSet", "ingest", "match_workspace", "review", "accept", "reject", "match_manual", "unmatch",
]

Paths = str | Path | list[str | Path] | tuple[str | Path, ...]


def _paths(value: Paths | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [str(value)]
    return [str(v) for v in value]


def load_bank(paths: Paths, format: str | None = None) -> LoadResult:
    """Read bank files (any supported format, detected by content unless ``format`` is given)
    into a canonical frame; duplicates removed and reported."""
    return feeds.load_bank(_paths(paths), format=format)


def load_ledger(paths: Paths, format: str | None = None) -> LoadResult:
    """Read ledger files (canonical CSV, Parquet, database URL) into a canonical frame;
    duplicates removed and reported."""
    return feeds.load_ledger(_paths(paths), format=format)


def load_processor(paths: Paths, format: str | None = None) -> LoadResult:
    """Read processor payout files (Stripe, Shopify Payments, PayPal) into canonical payout
    lines; the same balance transaction in overlapping exports is kept once."""
    return feeds.load_processor(_paths(paths), format=format)


@dataclass
class MatchResult:
    """A finished run: proposals, unmatched lines, rejects, duplicates and statistics."""

    outcome: MatchOutcome
    bank: LoadResult
    ledger: LoadResult
    rules: RuleSet
    rejects: pl.DataFrame
    stats: list[FileStats]
    run_id: str
    started_at: datetime
    extra_inputs: dict = field(default_factory=dict)
    seconds: float = 0.0
    memory_limit: int | None = None
    #: ``one-shot`` (files in, files out) or ``incremental`` (a workspace's open lines)
    mode: str = "one-shot"
    #: the files :meth:`write` wrote (``matches``, ..., ``manifest``, ``workspace``)
    written: dict[str, Path] = field(default_factory=dict)
    _counts: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def proposals(self) -> pl.DataFrame:
        return self.outcome.proposals

    @property
    def unmatched_bank(self) -> pl.DataFrame:
        return self.outcome.unmatched_bank

    @property
    def unmatched_ledger(self) -> pl.DataFrame:
        return self.outcome.unmatched_ledger

    @property
    def candidates(self) -> pl.DataFrame:
        return self.outcome.candidates

    def explain_candidates(self, bank_id: str | None = None, ledger_id: str | None = None) -> pl.DataFrame:
        """Scored candidates of one bank line and/or ledger item, best first, with evidence."""
        cands = self.candidates
        if bank_id is not None:
            cands = cands.filter(pl.col("bank_id") == bank_id)
        if ledger_id is not None:
            cands = cands.filter(pl.col("ledger_id") == ledger_id)
        cands = cands.sort("confidence", descending=True)
        return self.outcome.explain_candidates(cands, self.rules).select(
            "bank_id", "ledger_id", "confidence", "evidence"
        )

    @property
    def duplicates(self) -> pl.DataFrame:
        return pl.concat([self.bank.duplicates, self.ledger.duplicates])

    def counts(self) -> dict[str, int]:
        # worked out once (the run's frames do not change): write() and the summary both ask
        if self._counts is None:
            counts = self.outcome.counts()
            counts.update(
                bank_lines=self.bank.frame.height,
                ledger_items=self.ledger.frame.height,
                rejects=self.rejects.height,
                duplicates=self.duplicates.height,
            )
            self._counts = counts
        return dict(self._counts)

    def output_frames(self) -> dict[str, pl.DataFrame]:
        return {
            # the comparison levels stay in the workspace (the review page reads them)
            "matches": self.proposals.drop(WORKSPACE_ONLY_COLUMNS, strict=False),
            "unmatched_bank": canonical_csv_view(self.unmatched_bank),
            "unmatched_ledger": canonical_csv_view(self.unmatched_ledger),
            "rejects": self.rejects,
            "duplicates": self.duplicates,
        }

    def write(self, out_dir: str | Path | None, workspace: str | Path | Workspace | None = None,
              progress: Progress | None = None) -> dict[str, Path]:
        """Record the run in the DuckDB workspace (default ``out_dir/recon.duckdb``), then
        publish the CSV outputs and ``manifest.json`` in ``out_dir`` (see :mod:`engine.outputs`).

        The files are written aside while the workspace records the run and take their place
        only once it has committed: a run the workspace refuses (in use, not a DuckDB file)
        leaves ``out_dir`` as it was. ``out_dir`` None: the workspace only. ``workspace`` may
        be an open :class:`~engine.workspace.store.Workspace`.

        Raises
        ------
        InputError
            ``out_dir`` names a file.
        WorkspaceBusyError
            Another process holds the workspace.
        """
        if out_dir is None and workspace is None:
            raise InputError("nowhere to write the run: give an output folder or a workspace")
        if out_dir is not None:
            check_out_dir(out_dir)
        progress = progress if progress is not None else Progress(bars=False)
        with progress.stage("writing outputs and workspace"):
            return self._write(out_dir, workspace)

    def _write(self, out_dir: str | Path | None, workspace: str | Path | Workspace | None) -> dict[str, Path]:
        if isinstance(workspace, Workspace):
            ws_path = workspace.path
        else:
            ws_path = Path(workspace) if workspace else Path(out_dir) / "recon.duckdb"
        staged = StagedOutputs(out_dir, self.run_id) if out_dir is not None else None
        # the CSV files are staged while the workspace records the run (polars and DuckDB both
        # release the GIL while they work); the counts, stored last in the workspace, are worked
        # out meanwhile; the files take their place once the workspace has committed the run
        with ThreadPoolExecutor(max_workers=2) as pool:
            csv_files = pool.submit(staged.write, self.output_frames()) if staged is not None else None
            counts = pool.submit(self.counts)
            try:
                crash_point("match:before-record")
                if isinstance(workspace, Workspace):
                    new = self._record(workspace, out_dir, counts=counts.result)
                else:
                    with Workspace(ws_path, memory_limit=self.memory_limit) as ws:
                        new = self._record(ws, out_dir, counts=counts.result)
                if csv_files is not None:
                    csv_files.result()
            except BaseException:
                if csv_files is not None:
                    csv_files.exception()  # wait for the staged files before removing them
                    staged.discard()
                raise
        crash_point("match:after-commit")
        written = {}
        if staged is not None:
            written = staged.publish({"workspace": str(ws_path), "mode": self.mode})
        written["workspace"] = ws_path
        self.workspace_new_lines = new
        self.written = written
        return written

    def _record(self, ws: Workspace, out_dir: str | Path | None, counts=None) -> dict[str, int]:
        incremental = self.mode == "incremental"
        return ws.record_run(
            run_id=self.run_id,
            started_at=self.started_at,
            bank=None if incremental else self.bank.frame,
            ledger=None if incremental else self.ledger.frame,
            proposals=self.proposals,
            match_lines=self.outcome.match_lines,
            rejects=self.rejects,
            rules_name=self.rules.name,
            rules_json=self.rules.model_dump_json(),
            inputs={
                "bank": [s.__dict__ for s in self.stats if s.side == "bank"],
                "ledger": [s.__dict__ for s in self.stats if s.side == "ledger"],
                **self.extra_inputs,
            },
            counts=counts or self.counts,
            out_dir=str(out_dir) if out_dir is not None else None,
            warnings=list(self.outcome.warnings),
            weights=self.outcome.weights,
            scorer=self.outcome.scorer_kind,
            mode=self.mode,
            before_commit=lambda: crash_point("match:before-commit"),
        )


def _checked_inputs(bank, ledger, rules: RuleSet | str | Path | None) -> RuleSet:
    """The rule set (loaded when a path or None is given), once both sides have something to read."""
    if not isinstance(bank, LoadResult) and not _paths(bank):
        raise InputError("no bank file given (use --bank FILE)")
    if not isinstance(ledger, LoadResult) and not _paths(ledger):
        raise InputError("no ledger file given (use --ledger FILE)")
    return rules if isinstance(rules, RuleSet) else load_rules(rules)


def _run_id(started: datetime) -> str:
    return f"R-{started.strftime('%Y%m%dT%H%M%S%f')}"


def match(
    bank: Paths | LoadResult,
    ledger: Paths | LoadResult,
    rules: RuleSet | str | Path | None = None,
    fx: str | Path | None = None,
    processor: Paths | None = None,
    bank_format: str | None = None,
    ledger_format: str | None = None,
    processor_format: str | None = None,
    aliases: str | Path | None = None,
    progress: Progress | None = None,
    memory_limit: int | str | None = None,
) -> MatchResult:
    """Load inputs (paths or already-loaded results) and run the match.

    Parameters
    ----------
    bank, ledger
        File path(s) or :class:`LoadResult` from :func:`load_bank` / :func:`load_ledger`.
    rules
        A :class:`RuleSet`, a rule-set file, or ``None`` for the built-in default.
    fx
        FX rates CSV (``date, base, quote, rate``): converts ledger items in another currency.
    processor
        Processor payout report(s) (e.g. Stripe itemized payout reconciliation): link payouts
        to the orders and refunds they settle, with the processor fee.
    bank_format, ledger_format, processor_format
        Force a format (``recon inspect`` lists them); default: detected from each file's content.
    aliases
        An alias table (CSV ``name,alias``: ``陳大文,CHAN TAI MAN``): names in different scripts
        or forms it links count as the same payer (without it, names in different scripts give
        no evidence either way).
    progress
        Where the stages report (:class:`engine.progress.Progress`); default: log lines only.
    memory_limit
        The run's memory budget, bytes or a size such as ``"6GB"`` (:mod:`engine.memory`);
        default: a share of the machine's memory.

    Returns
    -------
    MatchResult
    """
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    rules = _checked_inputs(bank, ledger, rules)
    alias_table = checked_aliases(read_aliases(aliases)) if aliases is not None else None
    limit = _memory_limit(memory_limit)
    progress = progress if progress is not None else Progress(bars=False)
    progress.memory_limit = limit

    # the two sides are independent: read and prepare them side by side (the readers and the
    # preparation are polars-bound), each side prepared as soon as it is read
    def ledger_side() -> tuple[LoadResult, pl.DataFrame]:
        with progress.stage("ledger: read and prepare"):
            res = ledger if isinstance(ledger, LoadResult) else load_ledger(ledger, ledger_format)
            return res, prepare_ledger_frame(res.frame, rules, alias_table)

    t_read = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:
        ledger_job = pool.submit(ledger_side)
        with progress.stage("bank: read and prepare"):
            bank_res = bank if isinstance(bank, LoadResult) else load_bank(bank, bank_format)
            # the bank side is usually the quicker one: the processor report follows it
            payouts = load_processor(processor, processor_format) if _paths(processor) else None
            prepared_bank = prepare_bank_frame(bank_res.frame, alias_table)
        ledger_res, prepared_ledger = ledger_job.result()
    read_and_prepare = time.perf_counter() - t_read
    rejects = [bank_res.rejects, ledger_res.rejects]
    stats = [*bank_res.stats, *ledger_res.stats]
    extra: dict = {}
    if alias_table is not None:
        extra["aliases"] = {"file": str(aliases), "entries": alias_table.height}
    fx_frame = payout_lines = None
    if fx is not None:
        fx_frame, fx_rejects = feeds.read_fx_csv(str(fx))
        rejects.append(fx_rejects)
        extra["fx"] = {"file": str(fx), "rates": fx_frame.height, "rejected": fx_rejects.height}
        stats.append(FileStats(str(fx), "fx", fx_frame.height + fx_rejects.height, fx_frame.height, fx_rejects.height))
    if payouts is not None:
        payout_lines = payouts.frame
        rejects.append(payouts.rejects)
        stats.extend(payouts.stats)
        extra["processor"] = {"files": _paths(processor), "payout_lines": payouts.frame.height,
                              "rejected": payouts.rejects.height}
    # the same file given twice is read twice (its lines load once); report its bad rows once
    all_rejects = pl.concat(
        [r.select(list(REJECTS_SCHEMA)).cast(REJECTS_SCHEMA) for r in rejects]
    ).unique(subset=["source_file", "line", "column"], keep="first", maintain_order=True)
    outcome = match_prepared(prepared_bank, prepared_ledger, rules, fx_rates=fx_frame, payout_lines=payout_lines,
                             timings={"read and prepare": read_and_prepare}, progress=progress,
                             memory_limit=limit)
    over = progress.over_limit_warning()
    if over:
        outcome.warnings.append(over)
    return MatchResult(
        outcome=outcome,
        bank=bank_res,
        ledger=ledger_res,
        rules=rules,
        rejects=all_rejects,
        stats=stats,
        run_id=_run_id(started),
        started_at=started,
        extra_inputs=extra,
        seconds=time.perf_counter() - t0,
        memory_limit=limit,
    )


def _memory_limit(memory_limit: int | str | None) -> int:
    if memory_limit is None:
        return default_limit()
    return parse_size(memory_limit) if isinstance(memory_limit, str) else int(memory_limit)


def _read_fx(fx: str | Path) -> tuple[pl.DataFrame, pl.DataFrame, FileStats]:
    rates, rejects = feeds.read_fx_csv(str(fx))
    return rates, rejects, FileStats(str(fx), "fx", rates.height + rejects.height, rates.height, rejects.height)


def ingest(
    workspace: str | Path,
    bank: Paths | None = None,
    ledger: Paths | None = None,
    processor: Paths | None = None,
    fx: str | Path | None = None,
    bank_format: str | None = None,
    ledger_format: str | None = None,
    processor_format: str | None = None,
) -> IngestReport:
    """Add bank lines, ledger items, processor payout lines and FX rates to a workspace.

    Idempotent: a file ingested again, or a statement overlapping one already ingested, adds
    only the lines the workspace does not hold. A line whose id the workspace holds with
    different content is a conflict: not loaded, reported with both versions named (the rule:
    :mod:`engine.workspace.ingest`). The files are read before the workspace is locked; the
    lines are added in one transaction.

    Parameters
    ----------
    workspace
        The workspace file (created when missing).
    bank, ledger, processor
        File path(s), read as :func:`match` reads them (any may be omitted, not all).
    fx
        FX rates CSV (``date, base, quote, rate``).
    bank_format, ledger_format, processor_format
        Force a format (default: detected from each file's content).

    Returns
    -------
    engine.workspace.ingest.IngestReport
        What was added, already held, in conflict or rejected; ``summary()`` is what
        ``recon ingest`` prints.

    Raises
    ------
    InputError
        No file given.
    FeedFormatError
        A file cannot be read at all (nothing is added).
    WorkspaceBusyError
        Another process holds the workspace.

    Examples
    --------
    >>> report = recon.ingest("books.duckdb", bank="bank.csv", ledger="ledger.csv")  # doctest: +SKIP
    >>> report.added                                                                 # doctest: +SKIP
    {'bank': 2000, 'ledger': 2859}
    """
    from engine.workspace.ingest import ingest_loaded

    if not (_paths(bank) or _paths(ledger) or _paths(processor) or fx is not None):
        raise InputError("nothing to ingest: give --bank, --ledger, --processor or --fx files")
    started = datetime.now(UTC)
    loaded_bank = load_bank(bank, bank_format) if _paths(bank) else None
    loaded_ledger = load_ledger(ledger, ledger_format) if _paths(ledger) else None
    loaded_processor = load_processor(processor, processor_format) if _paths(processor) else None
    rates = _read_fx(fx) if fx is not None else None
    with Workspace(workspace) as ws:
        return ingest_loaded(ws, bank=loaded_bank, ledger=loaded_ledger, processor=loaded_processor, fx=rates,
                             started=started)


def match_workspace(
    workspace: str | Path,
    rules: RuleSet | str | Path | None = None,
    progress: Progress | None = None,
    memory_limit: int | str | None = None,
    aliases: str | Path | None = None,
    out: str | Path | None = None,
) -> MatchResult:
    """Match the open lines of a workspace (incremental run) and record the run.

    The run matches every bank line and ledger item that no accepted or written match holds,
    with the workspace's processor payout lines and FX rates; a group a reviewer rejected or
    undid is not proposed again. Its proposals replace the undecided proposals of earlier runs
    (which stay in the ``proposals`` table as history). See :mod:`engine.workspace.incremental`.

    The workspace is held (locked) for the whole run, so no decision can change the open lines
    under it.

    Parameters
    ----------
    workspace
        The workspace file (``recon ingest`` filled it).
    rules
        A :class:`RuleSet`, a rule-set file, or ``None`` for the built-in default; its version
        is recorded with the run and with every decision on its proposals. A rule set using the
        rule-set scorer scores with the workspace's learned scorer when one is saved
        (:func:`engine.workspace.training.scorer_rules`).
    progress
        Where the stages report; default: log lines only.
    memory_limit
        The run's memory budget (bytes or a size such as ``"6GB"``).
    aliases
        An alias table (see :func:`match`).
    out
        Also write the run's files (``matches.csv`` with this run's proposals,
        ``unmatched_*.csv`` of the open lines left, ``manifest.json``) to this folder, after
        the workspace has committed the run.

    Returns
    -------
    MatchResult
        ``mode == "incremental"``; ``bank`` / ``ledger`` hold the open lines the run matched.

    Raises
    ------
    InputError
        ``out`` names a file.
    WorkspaceBusyError
        Another process holds the workspace.

    Examples
    --------
    >>> recon.ingest("books.duckdb", ledger="late_invoices.csv")   # doctest: +SKIP
    >>> run = recon.match_workspace("books.duckdb")                 # doctest: +SKIP
    >>> run.proposals.filter(pl.col("status") == "auto").height     # doctest: +SKIP
    """
    from engine.workspace.incremental import open_inputs
    from engine.workspace.training import scorer_rules

    started = datetime.now(UTC)
    t0 = time.perf_counter()
    rules = rules if isinstance(rules, RuleSet) else load_rules(rules)
    alias_table = checked_aliases(read_aliases(aliases)) if aliases is not None else None
    limit = _memory_limit(memory_limit)
    progress = progress if progress is not None else Progress(bars=False)
    progress.memory_limit = limit
    if out is not None:
        check_out_dir(out)
    with Workspace(workspace, memory_limit=limit, create=False) as ws:
        rules = scorer_rules(ws, rules)  # the workspace's learned scorer, when one is saved
        with progress.stage("workspace: open lines"):
            inputs = open_inputs(ws)
        t_read = time.perf_counter()
        with ThreadPoolExecutor(max_workers=1) as pool, progress.stage("prepare"):
            ledger_job = pool.submit(prepare_ledger_frame, inputs.ledger, rules, alias_table)
            prepared_bank = prepare_bank_frame(inputs.bank, alias_table)
            prepared_ledger = ledger_job.result()
        outcome = match_prepared(
            prepared_bank, prepared_ledger, rules, fx_rates=inputs.fx_rates, payout_lines=inputs.payout_lines,
            timings={"read and prepare": time.perf_counter() - t_read}, progress=progress, memory_limit=limit,
            excluded=inputs.excluded,
        )
        over = progress.over_limit_warning()
        if over:
            outcome.warnings.append(over)
        extra = {
            "workspace": str(ws.path),
            "open_bank_lines": inputs.bank.height,
            "open_ledger_items": inputs.ledger.height,
            "taken_bank_lines": inputs.taken_bank,
            "taken_ledger_items": inputs.taken_ledger,
            "payout_lines": 0 if inputs.payout_lines is None else inputs.payout_lines.height,
            "fx_rates": 0 if inputs.fx_rates is None else inputs.fx_rates.height,
            "not_proposed_again": inputs.excluded["match_id"].n_unique(),
        }
        if alias_table is not None:
            extra["aliases"] = {"file": str(aliases), "entries": alias_table.height}
        result = MatchResult(
            outcome=outcome,
            bank=LoadResult(frame=inputs.bank),
            ledger=LoadResult(frame=inputs.ledger),
            rules=rules,
            rejects=pl.DataFrame(schema=REJECTS_SCHEMA),
            stats=[],
            run_id=_run_id(started),
            started_at=started,
            extra_inputs=extra,
            seconds=time.perf_counter() - t0,
            memory_limit=limit,
            mode="incremental",
        )
        result.write(out, workspace=ws, progress=progress)
    result.seconds = time.perf_counter() - t0
    return result


def _filters(status=None, state=None, match_type=None, min_amount=None, max_amount=None, match_ids=None):
    from engine.workspace.review import Filters

    states = (state,) if isinstance(state, str) else tuple(state or ())
    return Filters(status=status, states=states, match_type=match_type, min_amount=min_amount,
                   max_amount=max_amount, match_ids=tuple(match_ids or ()))


def review(
    workspace: str | Path,
    status: str | None = None,
    state: str | list[str] | None = "proposed",
    match_type: str | None = None,
    min_amount: str | Decimal | None = None,
    max_amount: str | Decimal | None = None,
    match_ids: list[str] | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """The workspace's current matches, filtered, for a reviewer.

    Parameters
    ----------
    workspace
        The workspace file.
    status
        ``auto``, ``review`` or ``manual``.
    state
        One state or several (``proposed``, ``accepted``, ``rejected``, ``written``, ``reversed``,
        ``failed``); default ``proposed`` (what awaits a decision); None: any.
    match_type
        ``one_to_one``, ``one_to_many``, ``many_to_one``, ``many_to_many``, ``payout``, ``manual``.
    min_amount, max_amount
        Bounds on the bank side's absolute amount (decimal text or Decimal; compared exactly).
    match_ids
        Only these matches.
    limit
        At most this many rows (by match id).

    Returns
    -------
    polars.DataFrame
        One row a match (see :func:`engine.workspace.review.list_matches`): amounts as exact
        decimal text with their ``currency``, ``payers`` byte-exact.

    Examples
    --------
    >>> recon.review("books.duckdb", status="review", min_amount="1000")  # doctest: +SKIP
    """
    from engine.workspace.review import list_matches

    filters = _filters(status, state, match_type, min_amount, max_amount, match_ids)
    if limit is not None and limit < 0:
        raise InputError(f"--limit {limit}: give a number of rows, 0 or more")
    with Workspace(workspace, create=False) as ws:
        return list_matches(ws, filters, limit=limit)


def _decide(action, workspace, match_ids, status, state, match_type, min_amount, max_amount, all_auto, comment, by):
    from engine.workspace.review import decide

    filters = _filters(status, state, match_type, min_amount, max_amount)
    with Workspace(workspace, create=False) as ws:
        return decide(ws, action, match_ids=tuple(match_ids or ()), filters=filters, all_auto=all_auto,
                      comment=comment, by=by)


def accept(
    workspace: str | Path,
    match_ids: list[str] | None = None,
    *,
    status: str | None = None,
    state: str | list[str] | None = None,
    match_type: str | None = None,
    min_amount: str | Decimal | None = None,
    max_amount: str | Decimal | None = None,
    all_auto: bool = False,
    comment: str | None = None,
    by: str | None = None,
):
    """Accept matches: by id, by the filters of :func:`review`, or every proposed ``auto``
    proposal (``all_auto``). All or nothing.

    A match can be accepted when it is ``proposed`` (or ``failed``: a write-back that failed,
    accepted again under a new decision). Each acceptance is a decision recording who
    (``by``, default the environment's user), when, why (``comment``) and the proposal's run,
    rule-set version, scorer, confidence and evidence.

    Parameters
    ----------
    workspace
        The workspace file.
    match_ids
        The matches to accept (each must be current and acceptable); with filters, only those
        of them the filters keep.
    status, state, match_type, min_amount, max_amount
        Accept every acceptable match these keep (as :func:`review` filters; no default state).
    all_auto
        Accept every ``proposed`` proposal whose status is ``auto``.
    comment
        Why (kept with each decision).
    by
        Who (default: the environment's user).

    Returns
    -------
    engine.workspace.review.DecisionReport
        ``match_ids`` accepted and their decision ``seqs``.

    Raises
    ------
    InputError
        Nothing named, an unknown match id, a match in another state, or a line already in an
        accepted or written match: nothing is accepted.

    Examples
    --------
    >>> recon.accept("books.duckdb", all_auto=True, comment="month end", by="陳大文")  # doctest: +SKIP
    """
    return _decide("accept", workspace, match_ids, status, state, match_type, min_amount, max_amount,
                   all_auto, comment, by)


def reject(
    workspace: str | Path,
    match_ids: list[str] | None = None,
    *,
    status: str | None = None,
    state: str | list[str] | None = None,
    match_type: str | None = None,
    min_amount: str | Decimal | None = None,
    max_amount: str | Decimal | None = None,
    all_auto: bool = False,
    comment: str | None = None,
    by: str | None = None,
):
    """Reject proposed matches (see :func:`accept` for how they are picked); a rejected group is
    never proposed again, its lines stay open for other groups. All or nothing.

    Returns
    -------
    engine.workspace.review.DecisionReport

    Raises
    ------
    InputError
        Nothing named, an unknown match id or a match that is not ``proposed``.
    """
    return _decide("reject", workspace, match_ids, status, state, match_type, min_amount, max_amount,
                   all_auto, comment, by)


def match_manual(
    workspace: str | Path,
    bank: list[str],
    ledger: list[str],
    adjust: str | None = None,
    comment: str | None = None,
    by: str | None = None,
    rules: RuleSet | str | Path | None = None,
):
    """Record a reviewer's own match of bank lines (ids) and ledger items (ids), accepted.

    Parameters
    ----------
    workspace
        The workspace file.
    bank, ledger
        Line ids (the ledger side may be empty when ``adjust`` books the whole amount).
    adjust
        The cause the difference is booked to (a key of ``[adjustments.accounts]`` in the rule
        set: ``bank_charge``, ``short_payment``, ``overpayment``, ``fx_difference``, ...);
        required when the amounts differ.
    comment, by
        Why and who (default: the environment's user).
    rules
        The rule set whose adjustment accounts apply (default: built-in).

    Returns
    -------
    engine.workspace.review.DecisionReport
        ``match_ids[0]``: the match's id (the one a run gives the same lines).

    Raises
    ------
    InputError
        Unknown ids, a line in an accepted or written match, several currencies, or a
        difference without an adjustment cause: nothing is recorded.
    """
    from engine.workspace.review import manual_match

    rules = rules if isinstance(rules, RuleSet) else load_rules(rules)
    with Workspace(workspace, create=False) as ws:
        return manual_match(ws, list(bank), list(ledger), rules, adjust=adjust, comment=comment, by=by)


def unmatch(workspace: str | Path, match_id: str, reason: str, by: str | None = None):
    """Undo an accepted or written match (state ``reversed``); its lines open again, nothing is
    deleted, and write-back reverses it where it had been written.

    Returns
    -------
    engine.workspace.review.DecisionReport

    Raises
    ------
    InputError
        No reason, an unknown match id, or a match that is not accepted, written or failed.
    """
    from engine.workspace.review import unmatch as _unmatch

    with Workspace(workspace, create=False) as ws:
        return _unmatch(ws, match_id, reason, by=by)


def evaluate(result: MatchResult | pl.DataFrame, truth: str | Path | pl.DataFrame):
    """Score proposals against ground truth (group precision/recall, auto error rate, coverage).

    Returns an :class:`engine.evaluate.EvaluationReport`.
    """
    from engine.evaluate import evaluate as _evaluate
    from engine.evaluate import load_truth

    proposals = result.proposals if isinstance(result, MatchResult) else result
    truth_frame = truth if isinstance(truth, pl.DataFrame) else load_truth(truth)
    bank_ids = None
    if isinstance(result, MatchResult):
        bank_ids = result.bank.frame["id"]
    return _evaluate(proposals, truth_frame, bank_ids=bank_ids)


def train(
    bank: Paths | LoadResult,
    ledger: Paths | LoadResult,
    truth: str | Path | pl.DataFrame,
    out: str | Path | None = None,
    rules: RuleSet | str | Path | None = None,
    fx: str | Path | None = None,
    processor: Paths | None = None,
    seed: int = 0,
    bank_format: str | None = None,
    ledger_format: str | None = None,
    processor_format: str | None = None,
    compound_pairs: str = "negative",
):
    """Train a learned scorer on a month with ground truth, and save it.

    The inputs are read and prepared as :func:`match` reads them; the candidate pairs are
    labelled from the truth (:func:`engine.scoring.learned.truth_labels`: a one-to-one truth
    group is a match, a pair touching a compound group is left out, every other pair is not a
    match) and a :class:`engine.scoring.learned.CalibratedPairClassifier` is fitted on them,
    a quarter of the bank lines held out to measure its calibration beside the rule set's.

    Parameters
    ----------
    bank, ledger
        File path(s) or :class:`LoadResult`.
    truth
        ``truth.csv`` (``group_id, match_type, bank_ids, ledger_ids``) or its frame.
    out
        Where to write the model file (JSON); ``None``: not written.
    rules
        The rule set whose candidates and levels the model learns (a model scores only with a
        rule set of the same levels).
    fx, processor
        Read and checked as :func:`match` reads them; the learned scorer weighs one-to-one
        pairs of the same currency, which neither changes.
    seed
        Seed of the held-out and calibration splits (same inputs and seed, same model).
    bank_format, ledger_format, processor_format
        Force a format (default: detected from each file's content).
    compound_pairs
        ``"negative"`` (default): pairs touching a compound truth group are trained on as
        non-matches (a part of an instalment group is not a one-to-one match: left out, the
        model scored such pairs as confident matches); ``"leave_out"``: not trained on (see
        :func:`engine.scoring.learned.truth_labels`).

    Returns
    -------
    engine.scoring.learned.TrainingReport
        The scorer, the pairs and labels used and the held-out calibration; ``str()`` is the
        summary ``recon train`` prints.

    Raises
    ------
    InputError
        No input file, a truth file that does not fit the inputs, nothing to train on.
    """
    from engine.evaluate import load_truth
    from engine.scoring.learned import train_scorer, truth_labels

    t0 = time.perf_counter()
    rules = _checked_inputs(bank, ledger, rules)
    truth_frame = truth if isinstance(truth, pl.DataFrame) else load_truth(truth)
    bank_res = bank if isinstance(bank, LoadResult) else load_bank(bank, bank_format)
    ledger_res = ledger if isinstance(ledger, LoadResult) else load_ledger(ledger, ledger_format)
    notes = []
    if fx is not None:
        feeds.read_fx_csv(str(fx))
        notes.append("--fx read; FX receipts are compound groups, not pairs the learned scorer weighs")
    if _paths(processor):
        load_processor(processor, processor_format)
        notes.append("--processor read; payouts are compound groups, not pairs the learned scorer weighs")
    with ThreadPoolExecutor(max_workers=1) as pool:
        ledger_job = pool.submit(prepare_ledger_frame, ledger_res.frame, rules)
        prepared_bank = prepare_bank_frame(bank_res.frame)
        prepared_ledger = ledger_job.result()
    truth_name = Path(truth).name if not isinstance(truth, pl.DataFrame) else None
    labels = truth_labels(truth_frame, compound=compound_pairs)
    report = train_scorer(prepared_bank, prepared_ledger, labels, rules, seed=seed, truth_name=truth_name)
    report.scorer.training["compound_pairs"] = compound_pairs
    report.notes.extend(notes)
    if out is not None:
        report.path = report.scorer.save(out)
    report.seconds = time.perf_counter() - t0
    return report


# -- write-back (engine.workspace.writeback) ----------------------------------------------
__all__ += ["writeback", "status"]


def writeback(
    workspace: str | Path,
    to: str,
    *,
    dry_run: bool = False,
    batch_size: int | None = None,
    rules: RuleSet | str | Path | None = None,
    progress: Progress | None = None,
):
    """Write what the target ``to`` is owed: every accepted match it has not written yet (the
    status of its lines and its adjustment journal) and reversing entries for matches undone
    after it wrote them. Each item is written once per target; a second call writes nothing.

    Parameters
    ----------
    workspace
        The workspace file.
    to
        ``dir:PATH``, ``postgresql://...``, ``duckdb:///PATH.duckdb?...`` or ``xero+https://HOST``.
    dry_run
        List what would be written; write nothing.
    batch_size
        Items a batch (default: ``[writeback] batch_size`` of the rule set).
    rules
        The rule set whose accounts the journals use (default: the workspace's latest run's).
    progress
        Where the stage reports (default: log lines only).

    Returns
    -------
    engine.workspace.writeback.WritebackReport
        Counts by action and state, the items not written with their reasons, and for a dry
        run the items planned (``report.summary()`` is what ``recon writeback`` prints).

    Examples
    --------
    >>> report = recon.writeback("books.duckdb", "dir:writeback")  # doctest: +SKIP
    >>> report.written, report.failures                             # doctest: +SKIP
    (1802, [])
    """
    from engine.workspace.writeback import writeback as run_writeback

    return run_writeback(workspace, to, dry_run=dry_run, batch_size=batch_size, rules=rules, progress=progress)


def status(workspace: str | Path) -> dict:
    """Where a workspace stands: ``states`` (matches by state: ``proposed``, ``accepted``,
    ``rejected``, ``written``, ``reversed``, ``failed``, all six always present), ``pending``
    (per target written to: items to write and to reverse) and ``last_errors`` (the latest
    results that left an item unwritten).

    Examples
    --------
    >>> recon.status("books.duckdb")["states"]["written"]  # doctest: +SKIP
    1802
    """
    from engine.workspace.writeback import workspace_status

    return workspace_status(workspace)
