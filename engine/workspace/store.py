"""Workspace store: an embedded DuckDB file that keeps lines, runs, proposals and decisions.

- Lines are keyed by id: ingesting the same file again, or an overlapping one, adds only lines
  the workspace has not seen (never a duplicate row); processor payout lines are keyed by
  ``(processor, line_id)`` and FX rates by ``(date, base, quote)``.
- Every run is recorded with its inputs, rule set, counts, proposals and rejects, inside one
  transaction: a crash leaves the previous state intact, never half a run.
- Reviewers' decisions and write-back results are rows of the append-only ``decisions`` table
  (:mod:`engine.workspace.decisions`).
- Nothing is ever deleted; a later correction is a new run or a new decision.
- One process at a time: opening a :class:`Workspace` takes its lock
  (:mod:`engine.workspace.lock`), held until it is closed.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from engine.workspace.decisions import DECISIONS_DDL
from engine.workspace.lock import WorkspaceBusyError, default_wait, workspace_lock
from models.errors import ReconError

# {zstd}: columns of longer free text, which ZSTD stores smaller and faster than DuckDB's own
# choice (at 1M proposals the explanations take 34 MB instead of 87 MB, and half the time); a
# workspace whose storage version predates ZSTD gets the default
_ZSTD = " USING COMPRESSION zstd"
_DDL = [
    """CREATE TABLE IF NOT EXISTS bank_lines (
        id VARCHAR, date DATE, amount_minor BIGINT, currency VARCHAR, description VARCHAR{zstd},
        counterparty VARCHAR, reference VARCHAR, account VARCHAR, attributes VARCHAR,
        source_file VARCHAR, source_line BIGINT, first_run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ledger_items (
        id VARCHAR, date DATE, amount_minor BIGINT, currency VARCHAR, description VARCHAR,
        counterparty VARCHAR, reference VARCHAR{zstd}, account VARCHAR, type VARCHAR, due_date DATE,
        attributes VARCHAR, source_file VARCHAR, source_line BIGINT, first_run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, rules_name VARCHAR,
        rules_json VARCHAR, inputs_json VARCHAR, counts_json VARCHAR, out_dir VARCHAR)""",
    # added with the workspace lifecycle: how the run was made (one-shot, incremental, manual),
    # the rule-set version (name + hash of its JSON) and the scorer, which decisions record
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS mode VARCHAR",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS rules_version VARCHAR",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS scorer VARCHAR",
    """CREATE TABLE IF NOT EXISTS proposals (
        run_id VARCHAR, match_id VARCHAR, match_type VARCHAR, status VARCHAR, confidence DOUBLE,
        bank_ids VARCHAR, ledger_ids VARCHAR, bank_amount VARCHAR, ledger_amount VARCHAR,
        difference VARCHAR, currency VARCHAR, explanation VARCHAR{zstd}, adjustments VARCHAR)""",
    # added with compound matches; a workspace from an earlier version gains the column
    "ALTER TABLE proposals ADD COLUMN IF NOT EXISTS open_amount VARCHAR",
    # added with the review page, which shows a proposal's runner-up and its margin (bits)
    "ALTER TABLE proposals ADD COLUMN IF NOT EXISTS margin DOUBLE",
    "ALTER TABLE proposals ADD COLUMN IF NOT EXISTS runner_up VARCHAR",
    # the level of each comparison of a pair proposal (``reference=full; amount=exact; ...``),
    # which with the run's weights says what each piece of evidence was worth
    "ALTER TABLE proposals ADD COLUMN IF NOT EXISTS levels VARCHAR",
    """CREATE TABLE IF NOT EXISTS match_lines (
        run_id VARCHAR, match_id VARCHAR, side VARCHAR, id VARCHAR, amount_minor BIGINT,
        currency VARCHAR)""",
    # the weight of every comparison level a run's scorer used, beside the rule set's (its
    # prior) and, for an estimated scorer, the m and u probabilities it estimated
    """CREATE TABLE IF NOT EXISTS weights (
        run_id VARCHAR, scorer VARCHAR, comparison VARCHAR, level VARCHAR, label VARCHAR,
        prior_weight DOUBLE, weight DOUBLE, m DOUBLE, u_candidates DOUBLE, u_random DOUBLE)""",
    # what a run warned about (an estimation that fell back, a generator cap that bit, ...)
    "CREATE TABLE IF NOT EXISTS run_warnings (run_id VARCHAR, seq INTEGER, message VARCHAR)",
    """CREATE TABLE IF NOT EXISTS rejects (
        run_id VARCHAR, source_file VARCHAR, line BIGINT, "column" VARCHAR, reason VARCHAR,
        raw VARCHAR)""",
    # processor payout lines (models.schema.PAYOUT_LINE_SCHEMA) and FX rates (feeds.fx.FX_SCHEMA)
    # ingested into the workspace, which later incremental runs use
    """CREATE TABLE IF NOT EXISTS payout_lines (
        processor VARCHAR, payout_id VARCHAR, line_id VARCHAR, category VARCHAR, currency VARCHAR,
        gross_minor BIGINT, fee_minor BIGINT, net_minor BIGINT, available_on DATE, created DATE,
        source_id VARCHAR, order_id VARCHAR, description VARCHAR, attributes VARCHAR,
        source_file VARCHAR, source_line BIGINT, first_run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS fx_rates (
        date DATE, base VARCHAR, quote VARCHAR, rate_text VARCHAR, rate DOUBLE, source_file VARCHAR,
        source_line BIGINT, first_run_id VARCHAR)""",
    # every `recon ingest`: its files and what each added
    """CREATE TABLE IF NOT EXISTS ingests (
        ingest_id VARCHAR, ingested_at TIMESTAMP, inputs_json VARCHAR, counts_json VARCHAR)""",
    # a line whose id the workspace already holds with different content: not loaded, kept here
    # with both versions (engine.workspace.ingest)
    """CREATE TABLE IF NOT EXISTS conflicts (
        ingest_id VARCHAR, side VARCHAR, id VARCHAR, held_source_file VARCHAR, held_line BIGINT,
        new_source_file VARCHAR, new_line BIGINT, differences VARCHAR)""",
    # the balances bank statements state (opening, closing, available; models.schema.BALANCE_SCHEMA),
    # each once, which the month-end report takes the statement balance from (engine.report)
    """CREATE TABLE IF NOT EXISTS statement_balances (
        account VARCHAR, currency VARCHAR, type VARCHAR, date DATE, amount_minor BIGINT,
        statement_id VARCHAR, source_file VARCHAR, first_run_id VARCHAR)""",
    DECISIONS_DDL,
]

_DUCKDB_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")


def rules_version(name: str, rules_json: str) -> str:
    """The version of a rule set decisions record: its name and the first 12 hex digits of the
    SHA-256 of its JSON (the same rules, the same version)."""
    return f"{name}@{hashlib.sha256(rules_json.encode('utf-8')).hexdigest()[:12]}"


class Workspace:
    """A DuckDB workspace file.

    Parameters
    ----------
    path
        The ``.duckdb`` file; created when missing.
    memory_limit
        Bytes DuckDB may hold before it spills to disk (the run's ``--memory-limit``).
    wait
        Seconds to wait for another process holding the workspace (default: see
        :mod:`engine.workspace.lock`).
    create
        Create the file when missing (False: a missing file is an error).

    Raises
    ------
    WorkspaceBusyError
        Another process holds the workspace.
    ReconError
        The file is not a DuckDB workspace.

    Examples
    --------
    >>> ws = Workspace("recon.duckdb")  # doctest: +SKIP
    >>> ws.query("SELECT status, count(*) FROM proposals GROUP BY ALL")  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, memory_limit: int | None = None, wait: float | None = None,
                 create: bool = True):
        self.path = Path(path)
        if self.path.is_dir():
            raise ReconError(f"{self.path}: is a folder, not a workspace file (name a .duckdb file)")
        if not create and not self.path.exists():
            raise ReconError(f"workspace {self.path} does not exist; create it with "
                             f"`recon ingest --workspace {self.path} --bank FILE --ledger FILE`")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._held = ExitStack()
        wait = default_wait() if wait is None else wait
        self._held.enter_context(workspace_lock(self.path, wait=wait))
        try:
            self.con = self._connect(wait)
            # a long query would draw DuckDB's own progress bar on the terminal, between recon's lines
            self.con.execute("SET enable_progress_bar = false")
            if memory_limit is not None:  # DuckDB spills to disk beyond it
                self.con.execute(f"SET memory_limit = '{max(int(memory_limit) // 2**20, 64)}MiB'")
            for ddl in _DDL:
                try:
                    self.con.execute(ddl.format(zstd=_ZSTD)).fetchall()
                except duckdb.BinderException:
                    self.con.execute(ddl.format(zstd="")).fetchall()
        except BaseException:
            self._held.close()
            raise

    def _connect(self, wait: float) -> duckdb.DuckDBPyConnection:
        # a process that is not recon (the DuckDB shell, a notebook) may hold DuckDB's own lock
        deadline = time.monotonic() + wait
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.Error as exc:
                holder = _DUCKDB_LOCK_HOLDER.search(str(exc))
                if "lock" not in str(exc).lower() or holder is None:
                    raise ReconError(f"{self.path}: cannot open the DuckDB workspace: {exc}") from None
                if time.monotonic() >= deadline:
                    raise WorkspaceBusyError(self.path, int(holder.group(1)), wait) from None
                time.sleep(0.1)

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            self._held.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def query(self, sql: str, params: list | None = None) -> pl.DataFrame:
        """Run SQL against the workspace and return a Polars frame."""
        return self.con.sql(sql, params=params or None).pl()

    def _stage(self, frame: pl.DataFrame) -> None:
        # as Arrow string views, which DuckDB reads without a copy (the default, large strings,
        # copies every string once more)
        self.con.register("_staged", frame.to_arrow(compat_level=pl.CompatLevel.newest()))

    def _insert_new(self, table: str, frame: pl.DataFrame, run_id: str) -> int:
        self._stage(frame.drop("first_run_id", strict=False))
        try:
            before = self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            self.con.execute(
                f"INSERT INTO {table} BY NAME SELECT s.*, $run_id AS first_run_id FROM _staged s "
                f"ANTI JOIN {table} t ON s.id = t.id",
                {"run_id": run_id},
            ).fetchall()
            after = self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        finally:
            self.con.unregister("_staged")
        return after - before

    def append_rows(self, table: str, frame: pl.DataFrame) -> None:
        """Append the rows of ``frame`` to ``table`` by column name (inside the caller's
        transaction when one is open)."""
        if frame.height == 0:
            return
        self._stage(frame)
        try:
            self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _staged").fetchall()
        finally:
            self.con.unregister("_staged")

    def _append(self, table: str, frame: pl.DataFrame, run_id: str) -> None:
        self._stage(frame.drop("run_id", strict=False))
        try:
            self.con.execute(
                f"INSERT INTO {table} BY NAME SELECT *, $run_id AS run_id FROM _staged", {"run_id": run_id}
            ).fetchall()
        finally:
            self.con.unregister("_staged")

    def record_run(
        self,
        run_id: str,
        started_at: datetime,
        bank: pl.DataFrame | None,
        ledger: pl.DataFrame | None,
        proposals: pl.DataFrame,
        match_lines: pl.DataFrame,
        rejects: pl.DataFrame,
        rules_name: str,
        rules_json: str,
        inputs: dict,
        counts: dict | Callable[[], dict],
        out_dir: str,
        weights: pl.DataFrame | None = None,
        scorer: str = "rules",
        warnings: list[str] | None = None,
        mode: str = "one-shot",
        before_commit: Callable[[], None] | None = None,
    ) -> dict[str, int]:
        """Record one run atomically; returns how many bank/ledger lines were new.

        ``counts`` may be a function giving them: it is called once the lines and proposals
        are stored, so that the caller can work them out meanwhile. ``bank`` / ``ledger`` are
        the run's lines (stored when new) or None when the run matched lines the workspace
        already holds (``mode="incremental"``). ``before_commit`` is called last inside the
        transaction (a caller's own rows that must commit with the run)."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            new_bank = self._insert_new("bank_lines", bank, run_id) if bank is not None else 0
            new_ledger = self._insert_new("ledger_items", ledger, run_id) if ledger is not None else 0
            self._append("proposals", proposals.select(
                "match_id", "match_type", "status", "confidence", "bank_ids", "ledger_ids",
                "bank_amount", "ledger_amount", "difference", "currency", "explanation",
                "adjustments", "open_amount", *(c for c in ("margin", "runner_up", "levels") if c in proposals.columns)),
                run_id)
            self._append("match_lines", match_lines, run_id)
            self._append("rejects", rejects, run_id)
            if weights is not None and weights.height:
                self._append("weights", weights.with_columns(pl.lit(scorer).alias("scorer")), run_id)
            if warnings:
                self._append("run_warnings", pl.DataFrame(
                    {"seq": list(range(len(warnings))), "message": list(warnings)},
                    schema={"seq": pl.Int32, "message": pl.Utf8}), run_id)
            if callable(counts):
                counts = counts()
            self.con.execute(
                "INSERT INTO runs (run_id, started_at, finished_at, rules_name, rules_json, inputs_json, "
                "counts_json, out_dir, mode, rules_version, scorer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, started_at.replace(tzinfo=None), datetime.now(UTC).replace(tzinfo=None),
                 rules_name, rules_json, json.dumps(inputs, ensure_ascii=False),
                 json.dumps({**counts, "new_bank_lines": new_bank, "new_ledger_items": new_ledger}),
                 out_dir, mode, rules_version(rules_name, rules_json), scorer],
            ).fetchall()
            if before_commit is not None:
                before_commit()
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        return {"new_bank_lines": new_bank, "new_ledger_items": new_ledger}
