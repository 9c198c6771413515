"""Workspace store: ingest adds lines to a workspace, each once.

Bank lines and ledger items are keyed by ``id``, processor payout lines by ``(processor,
line_id)``, FX rates by ``(date, base, quote)``. Ingesting a file again, or a statement that
overlaps one already ingested, adds only what the workspace does not hold yet.

The conflict rule: **the workspace keeps the version it already holds.** A line whose key the
workspace already holds with *different* content (another amount, date, currency, description,
payer, reference, account, type or due date; for a payout line its payout, category, amounts or
dates; for a rate its value) is not loaded: it is recorded in the ``conflicts`` table with both
versions named (file and line of each, and what differs) and reported by ``recon ingest``. To
change a line the workspace holds, give the corrected line a new id (as an accounting system
issues a credit note) and unmatch any match it is in.

One exception, the rule the feeds apply within a load: a version that differs only by filling in
fields the held one left empty (a processor line exported again once its payout is known) is no
conflict: the empty fields of the held line are filled in (``completed``), nothing it holds is
changed. Within the files of one ingest the feeds' own rule applies (an id given twice with
different content: neither version is used, both are rejected).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from engine.workspace.store import Workspace
from models.money import format_minor
from models.schema import REJECTS_SCHEMA, FileStats, LoadResult, empty_frame

__all__ = ["IngestReport", "CONFLICT_SCHEMA", "KEYS", "CONTENT", "ingest_loaded"]

#: the table each input kind goes to, its key and the columns that are its content
TABLES = {"bank": "bank_lines", "ledger": "ledger_items", "processor": "payout_lines", "fx": "fx_rates"}
KEYS = {"bank": ("id",), "ledger": ("id",), "processor": ("processor", "line_id"), "fx": ("date", "base", "quote")}
CONTENT = {
    "bank": ("date", "amount_minor", "currency", "description", "counterparty", "reference", "account"),
    "ledger": ("date", "amount_minor", "currency", "description", "counterparty", "reference", "account",
               "type", "due_date"),
    "processor": ("payout_id", "category", "currency", "gross_minor", "fee_minor", "net_minor", "available_on",
                  "created", "source_id", "order_id", "description"),
    "fx": ("rate",),
}

CONFLICT_SCHEMA = {
    "side": pl.Utf8, "id": pl.Utf8, "held_source_file": pl.Utf8, "held_line": pl.Int64,
    "new_source_file": pl.Utf8, "new_line": pl.Int64, "differences": pl.Utf8,
}

_MONEY = ("amount_minor", "gross_minor", "fee_minor", "net_minor")


@dataclass
class IngestReport:
    """What one ingest added to a workspace.

    Attributes
    ----------
    ingest_id
        ``I-`` + the UTC time it started; the ``first_run_id`` of the lines it added.
    added, already, completed
        Per kind (``bank``, ``ledger``, ``processor``, ``fx``): lines added, lines the
        workspace already held with the same content (not added again), and held lines whose
        empty fields a new version filled in.
    conflicts
        Lines not loaded because their key is held with different content (``CONFLICT_SCHEMA``).
    rejects
        Rows the files could not load (bad amount, date, ...), as in a match run.
    stats
        One :class:`~models.schema.FileStats` a file.
    """

    ingest_id: str
    workspace: str
    added: dict[str, int] = field(default_factory=dict)
    already: dict[str, int] = field(default_factory=dict)
    completed: dict[str, int] = field(default_factory=dict)
    conflicts: pl.DataFrame = field(default_factory=lambda: empty_frame(CONFLICT_SCHEMA))
    rejects: pl.DataFrame = field(default_factory=lambda: empty_frame(REJECTS_SCHEMA))
    stats: list[FileStats] = field(default_factory=list)

    def conflict_lines(self, limit: int | None = 20) -> list[str]:
        """One readable line a conflict (the first ``limit``)."""
        rows = self.conflicts.rows(named=True)
        shown = rows if limit is None else rows[:limit]
        lines = [
            f"conflict: {r['side']} {r['id']} is held from {r['held_source_file']} line {r['held_line']}; "
            f"{r['new_source_file']} line {r['new_line']} has different content ({r['differences']}): "
            "kept the held version, the new line is not loaded"
            for r in shown
        ]
        if len(rows) > len(shown):
            lines.append(f"... and {len(rows) - len(shown)} more conflicts (table `conflicts`, "
                         f"ingest_id = '{self.ingest_id}')")
        return lines

    def summary(self) -> str:
        """What ``recon ingest`` prints."""
        out = [f"recon ingest: {self.ingest_id} into {self.workspace}"]
        for s in self.stats:
            out.append(f"  read {s.side:<9} {s.summary()}")
        for kind in ("bank", "ledger", "processor", "fx"):
            if kind in self.added:
                done = self.completed.get(kind, 0)
                out.append(f"  {kind + ':':<10} {self.added[kind]} added, {self.already.get(kind, 0)} already held"
                           + (f", {done} completed (empty fields filled in)" if done else ""))
        if self.added.get("balances"):
            out.append(f"  balances:  {self.added['balances']} statement balance(s) added (opening, closing, ...)")
        out.append(f"  rejected rows: {self.rejects.height}    conflicts: {self.conflicts.height}")
        out += [f"  {line}" for line in self.conflict_lines()]
        return "\n".join(out)


def _differences(side: str, held: dict, new: dict) -> str:
    parts = []
    for column in CONTENT[side]:
        a, b = held.get(column), new.get(column)
        if a == b:
            continue
        name = column.removesuffix("_minor")
        if column in _MONEY:
            cur_a, cur_b = held.get("currency"), new.get("currency")
            a = format_minor(a, cur_a) if a is not None and cur_a else a
            b = format_minor(b, cur_b) if b is not None and cur_b else b
        parts.append(f"{name} {a} held, {b} new")
    return "; ".join(parts) or "content differs"


def _key_text(side: str, row: dict) -> str:
    return "/".join(str(row[k]) for k in KEYS[side])


def _within_file_conflicts(side: str, loaded: LoadResult) -> pl.DataFrame:
    """Repeats of one key with different content inside the files of this ingest (the feeds
    keep the first occurrence): conflicts like those with the workspace."""
    dupes = loaded.duplicates.filter(~pl.col("same_content"))
    if dupes.height == 0:
        return empty_frame(CONFLICT_SCHEMA)
    return dupes.select(
        side=pl.lit(side), id=pl.col("id"), held_source_file="first_source_file", held_line="first_line",
        new_source_file="source_file", new_line="line",
        differences=pl.lit("another line of this ingest with the same id and different content"),
    ).cast(CONFLICT_SCHEMA)


def _add(ws: Workspace, side: str, frame: pl.DataFrame, ingest_id: str) -> tuple[int, int, int, pl.DataFrame]:
    """Insert the rows of ``frame`` whose key ``ws`` does not hold and fill in the empty fields
    of held lines a row completes; returns (added, already held with the same content,
    completed, conflicts)."""
    table, keys, content = TABLES[side], KEYS[side], CONTENT[side]
    con = ws.con
    con.register("_incoming", frame.drop("first_run_id", strict=False).to_arrow())
    try:
        on = " AND ".join(f"s.{k} = t.{k}" for k in keys)
        # the two versions differ only where one of them is empty (null or blank text): the
        # same line, one more complete than the other
        types = frame.schema
        compatible = " AND ".join(
            f"(s.{c} IS NOT DISTINCT FROM t.{c} OR {_empty(f't.{c}', types[c])} OR {_empty(f's.{c}', types[c])})"
            for c in content)
        fills = " OR ".join(f"({_empty(f't.{c}', types[c])} AND NOT {_empty(f's.{c}', types[c])})" for c in content)
        # most held lines come again as they are: count those in the database, fetch the others
        [(already,)] = con.execute(
            f"SELECT count(*) FROM _incoming s JOIN {table} t ON {on} WHERE ({compatible}) AND NOT ({fills})"
        ).fetchall()
        held = con.sql(
            f"SELECT s.*, ({compatible}) AS _compatible, "
            "t.source_file AS _held_file, t.source_line AS _held_line, "
            + ", ".join(f"t.{c} AS _held_{c}" for c in content)
            + f" FROM _incoming s JOIN {table} t ON {on} WHERE NOT (({compatible}) AND NOT ({fills}))"
        ).pl()
        completing = held.filter(pl.col("_compatible"))
        if completing.height:
            con.register("_completing", completing.select(*keys, *content).to_arrow())
            try:
                con.execute(
                    f"UPDATE {table} t SET "
                    + ", ".join(f"{c} = CASE WHEN {_empty(f't.{c}', types[c])} THEN s.{c} ELSE t.{c} END"
                                for c in content)
                    + f" FROM _completing s WHERE {on}"
                ).fetchall()
            finally:
                con.unregister("_completing")
        before = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        con.execute(
            f"INSERT INTO {table} BY NAME SELECT s.*, $ingest_id AS first_run_id FROM _incoming s "
            f"ANTI JOIN {table} t ON {on}",
            {"ingest_id": ingest_id},
        ).fetchall()
        added = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] - before
    finally:
        con.unregister("_incoming")
    clashing = held.filter(~pl.col("_compatible"))
    rows = []
    for row in clashing.rows(named=True):
        held_row = {c: row[f"_held_{c}"] for c in content} | {"currency": row.get("_held_currency", row.get("currency"))}
        rows.append({
            "side": side, "id": _key_text(side, row), "held_source_file": row["_held_file"],
            "held_line": row["_held_line"], "new_source_file": row["source_file"], "new_line": row["source_line"],
            "differences": _differences(side, held_row, row),
        })
    conflicts = pl.DataFrame(rows, schema=CONFLICT_SCHEMA) if rows else empty_frame(CONFLICT_SCHEMA)
    return added, already, completing.height, conflicts


def _add_balances(ws: Workspace, balances: pl.DataFrame, ingest_id: str) -> int:
    """Keep the statement balances the bank files state, each (account, currency, type, date,
    statement, amount) once; returns how many were new."""
    key = ("account", "currency", "type", "date", "statement_id", "amount_minor")
    fresh = balances.unique(subset=list(key), keep="first", maintain_order=True)
    ws.con.register("_balances", fresh.to_arrow())
    try:
        before = ws.con.execute("SELECT count(*) FROM statement_balances").fetchall()[0][0]
        ws.con.execute(
            "INSERT INTO statement_balances BY NAME SELECT s.*, $ingest_id AS first_run_id FROM _balances s "
            "WHERE NOT EXISTS (SELECT 1 FROM statement_balances t WHERE "
            + " AND ".join(f"s.{k} IS NOT DISTINCT FROM t.{k}" for k in key) + ")",
            {"ingest_id": ingest_id}).fetchall()
        return ws.con.execute("SELECT count(*) FROM statement_balances").fetchall()[0][0] - before
    finally:
        ws.con.unregister("_balances")


def _empty(column: str, dtype: pl.DataType) -> str:
    """SQL: the held ``column`` is empty (null, or blank text)."""
    if dtype == pl.Utf8:
        return f"({column} IS NULL OR trim({column}) = '')"
    return f"({column} IS NULL)"


def ingest_loaded(
    ws: Workspace,
    *,
    bank: LoadResult | None = None,
    ledger: LoadResult | None = None,
    processor: LoadResult | None = None,
    fx: tuple[pl.DataFrame, pl.DataFrame, FileStats] | None = None,
    started: datetime | None = None,
) -> IngestReport:
    """Add loaded inputs to the open workspace ``ws`` in one transaction.

    Parameters
    ----------
    ws
        The open workspace (its lock held).
    bank, ledger, processor
        What :func:`feeds.load_bank` / ``load_ledger`` / ``load_processor`` read.
    fx
        ``(rates, rejects, stats)`` of :func:`feeds.read_fx_csv`.
    started
        When the ingest began (its id); default now.

    Returns
    -------
    IngestReport
    """
    started = started or datetime.now(UTC)
    ingest_id = f"I-{started.strftime('%Y%m%dT%H%M%S%f')}"
    report = IngestReport(ingest_id=ingest_id, workspace=str(ws.path))
    conflicts = []
    rejects = []
    inputs: dict[str, list] = {}
    con = ws.con
    con.execute("BEGIN TRANSACTION")
    try:
        for side, loaded in (("bank", bank), ("ledger", ledger), ("processor", processor)):
            if loaded is None:
                continue
            added, already, completed, clashes = _add(ws, side, loaded.frame, ingest_id)
            report.added[side], report.already[side], report.completed[side] = added, already, completed
            conflicts += [_within_file_conflicts(side, loaded), clashes]
            rejects.append(loaded.rejects)
            report.stats += loaded.stats
            inputs[side] = [s.__dict__ for s in loaded.stats]
        if fx is not None:
            rates, fx_rejects, fx_stats = fx
            added, already, completed, clashes = _add(ws, "fx", rates, ingest_id)
            report.added["fx"], report.already["fx"], report.completed["fx"] = added, already, completed
            conflicts.append(clashes)
            rejects.append(fx_rejects)
            report.stats.append(fx_stats)
            inputs["fx"] = [fx_stats.__dict__]
        report.conflicts = pl.concat(conflicts) if conflicts else empty_frame(CONFLICT_SCHEMA)
        # the same file given twice is read twice (its lines load once); report its bad rows once
        report.rejects = (
            pl.concat([r.select(list(REJECTS_SCHEMA)).cast(REJECTS_SCHEMA) for r in rejects])
            .unique(subset=["source_file", "line", "column"], keep="first", maintain_order=True)
            if rejects else empty_frame(REJECTS_SCHEMA)
        )
        ws.append_rows("rejects", report.rejects.with_columns(run_id=pl.lit(ingest_id)))
        ws.append_rows("conflicts", report.conflicts.with_columns(ingest_id=pl.lit(ingest_id)))
        if bank is not None and bank.balances.height:
            report.added["balances"] = _add_balances(ws, bank.balances, ingest_id)
        counts = {"added": report.added, "already": report.already, "completed": report.completed,
                  "conflicts": report.conflicts.height,
                  "rejects": report.rejects.height}
        con.execute(
            "INSERT INTO ingests (ingest_id, ingested_at, inputs_json, counts_json) VALUES (?, ?, ?, ?)",
            [ingest_id, started.replace(tzinfo=None), json.dumps(inputs, ensure_ascii=False), json.dumps(counts)],
        ).fetchall()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return report
