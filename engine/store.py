"""Workspace store (engine): an embedded DuckDB file that keeps lines, runs and proposals.

- Lines are keyed by id: ingesting the same file again, or an overlapping one, adds only lines
  the workspace has not seen (never a duplicate row).
- Every run is recorded with its inputs, rule set, counts, proposals and rejects, inside one
  transaction: a crash leaves the previous state intact, never half a run.
- Nothing is ever deleted; a later correction is a new run (reversals come with write-back).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

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
    """CREATE TABLE IF NOT EXISTS proposals (
        run_id VARCHAR, match_id VARCHAR, match_type VARCHAR, status VARCHAR, confidence DOUBLE,
        bank_ids VARCHAR, ledger_ids VARCHAR, bank_amount VARCHAR, ledger_amount VARCHAR,
        difference VARCHAR, currency VARCHAR, explanation VARCHAR{zstd}, adjustments VARCHAR)""",
    # added with compound matches; a workspace from an earlier version gains the column
    "ALTER TABLE proposals ADD COLUMN IF NOT EXISTS open_amount VARCHAR",
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
]


class Workspace:
    """A DuckDB workspace file.

    Parameters
    ----------
    path
        The ``.duckdb`` file; created when missing.
    memory_limit
        Bytes DuckDB may hold before it spills to disk (the run's ``--memory-limit``).

    Examples
    --------
    >>> ws = Workspace("recon.duckdb")  # doctest: +SKIP
    >>> ws.query("SELECT status, count(*) FROM proposals GROUP BY ALL")  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, memory_limit: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            raise ReconError(f"{self.path}: cannot open the DuckDB workspace: {exc}") from None
        if memory_limit is not None:  # DuckDB spills to disk beyond it
            self.con.execute(f"SET memory_limit = '{max(int(memory_limit) // 2**20, 64)}MiB'")
        for ddl in _DDL:
            try:
                self.con.execute(ddl.format(zstd=_ZSTD)).fetchall()
            except duckdb.BinderException:
                self.con.execute(ddl.format(zstd="")).fetchall()

    def close(self) -> None:
        self.con.close()

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
        bank: pl.DataFrame,
        ledger: pl.DataFrame,
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
    ) -> dict[str, int]:
        """Record one run atomically; returns how many bank/ledger lines were new.

        ``counts`` may be a function giving them: it is called once the lines and proposals
        are stored, so that the caller can work them out meanwhile."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            new_bank = self._insert_new("bank_lines", bank, run_id)
            new_ledger = self._insert_new("ledger_items", ledger, run_id)
            self._append("proposals", proposals.select(
                "match_id", "match_type", "status", "confidence", "bank_ids", "ledger_ids",
                "bank_amount", "ledger_amount", "difference", "currency", "explanation",
                "adjustments", "open_amount"), run_id)
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
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, started_at.replace(tzinfo=None), datetime.now(UTC).replace(tzinfo=None),
                 rules_name, rules_json, json.dumps(inputs, ensure_ascii=False),
                 json.dumps({**counts, "new_bank_lines": new_bank, "new_ledger_items": new_ledger}),
                 out_dir],
            ).fetchall()
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        return {"new_bank_lines": new_bank, "new_ledger_items": new_ledger}
