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
from pathlib import Path

import polars as pl

import feeds
from engine.memory import default_limit, parse_size
from engine.outputs import canonical_csv_view, write_outputs
from engine.pipeline import MatchOutcome, match_prepared, prepare_bank_frame, prepare_ledger_frame
from engine.prepare.names import checked_aliases
from engine.progress import Progress
from engine.store import Workspace
from feeds.aliases import read_aliases
from models.errors import InputError
from models.schema import REJECTS_SCHEMA, FileStats, LoadResult
from rules.model import RuleSet, default_rules, load_rules

__all__ = [
    "MatchResult", "match", "load_bank", "load_ledger", "evaluate", "train", "default_rules", "load_rules",
    "RuleSet",
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
            "matches": self.proposals,
            "unmatched_bank": canonical_csv_view(self.unmatched_bank),
            "unmatched_ledger": canonical_csv_view(self.unmatched_ledger),
            "rejects": self.rejects,
            "duplicates": self.duplicates,
        }

    def write(self, out_dir: str | Path, workspace: str | Path | None = None,
              progress: Progress | None = None) -> dict[str, Path]:
        """Write the CSV outputs to ``out_dir`` and record the run in the DuckDB workspace
        (default ``out_dir/recon.duckdb``)."""
        progress = progress if progress is not None else Progress(bars=False)
        with progress.stage("writing outputs and workspace"):
            return self._write(out_dir, workspace)

    def _write(self, out_dir: str | Path, workspace: str | Path | None) -> dict[str, Path]:
        ws_path = Path(workspace) if workspace else Path(out_dir) / "recon.duckdb"
        # the CSV files and the workspace are independent: write them side by side (polars and
        # DuckDB both release the GIL while they work); the counts, stored last in the workspace,
        # are worked out meanwhile
        with ThreadPoolExecutor(max_workers=2) as pool:
            csv_files = pool.submit(write_outputs, out_dir, self.output_frames())
            counts = pool.submit(self.counts)
            new = self._record(ws_path, out_dir, counts=counts.result)
            written = csv_files.result()
        written["workspace"] = ws_path
        self.workspace_new_lines = new
        return written

    def _record(self, ws_path: Path, out_dir: str | Path, counts=None) -> dict[str, int]:
        with Workspace(ws_path, memory_limit=self.memory_limit) as ws:
            new = ws.record_run(
                run_id=self.run_id,
                started_at=self.started_at,
                bank=self.bank.frame,
                ledger=self.ledger.frame,
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
                out_dir=str(out_dir),
                warnings=list(self.outcome.warnings),
                weights=self.outcome.weights,
                scorer=self.outcome.scorer_kind,
            )
        return new


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
    limit = default_limit() if memory_limit is None else (
        parse_size(memory_limit) if isinstance(memory_limit, str) else int(memory_limit))
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
