"""Adapters (the last stage): the files target ``dir:PATH``.

Write-back to a folder an accountant can open or load elsewhere:

- ``PATH/status.csv`` (``side,line_id,match_id,state``): the current reconciliation status of
  every bank line and ledger item write-back has touched: ``reconciled`` while its match stands,
  ``open`` once the match was undone (the ``match_id`` then names the match that was reversed);
- ``PATH/journal.csv`` (``date,account,debit,credit,currency,match_id,memo``): the balanced
  adjustment journal, append-only: an undo appends the mirrored lines (debit and credit
  swapped), it never removes the lines it reverses. Amounts are exact decimal text with the
  currency's decimals (``120.00``, ``5`` for JPY, ``0.125`` for KWD), the side a line does not
  use is zero;
- ``status.parquet`` and ``journal.parquet``: the same rows, typed (``date`` a date, amounts
  exact decimals).

What the folder holds is kept in an SQLite file beside them (``PATH/.recon-writeback.sqlite``),
one transaction per batch: the keys written (``match_id:seq``), the status of every line and the
journal lines. It is the commit point. The CSV and Parquet files are made from it and replaced
atomically (a temporary file renamed over the old one) when the adapter closes, or when it opens
and finds them older than the keys (a ``kill -9`` after a batch was committed). So a key is
either written with all its rows or not at all, a re-run answers ``already`` for the keys it
holds and writes nothing twice (nor a second write of a match it holds in force under another
key), and the files never show half a batch.

One process writes a folder at a time (an exclusive lock on ``PATH/.recon-writeback.lock``).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from engine.adapters.base import LINE_STATE_OPEN, LINE_STATE_RECONCILED, WriteItem, WriteResult
from engine.workspace.crash import crash_point
from models.errors import InputError, TerminalAdapterError, TransientAdapterError
from models.money import currency_exponent, format_minor_expr

__all__ = [
    "FilesAdapter", "open_adapter", "CAPABILITIES", "STATUS_COLUMNS", "JOURNAL_COLUMNS",
    "STATE_FILE",
]

CAPABILITIES = frozenset({"status", "journals", "reversal"})
STATUS_COLUMNS = ("side", "line_id", "match_id", "state")
JOURNAL_COLUMNS = ("date", "account", "debit", "credit", "currency", "match_id", "memo")
#: the commit point of the folder: keys, line status and journal lines
STATE_FILE = ".recon-writeback.sqlite"
_LOCK_FILE = ".recon-writeback.lock"
#: the generation of the keys the CSV/Parquet files were last made from
_OUTPUTS_MARK = ".recon-writeback.outputs"
_LOCK_WAIT_SECONDS = 5.0

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS items (
        key TEXT PRIMARY KEY, match_id TEXT NOT NULL, seq INTEGER NOT NULL, action TEXT NOT NULL,
        written_at TEXT NOT NULL, generation INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS items_match ON items (match_id, action)",
    """CREATE TABLE IF NOT EXISTS status (
        side TEXT NOT NULL, line_id TEXT NOT NULL, match_id TEXT NOT NULL, state TEXT NOT NULL,
        key TEXT NOT NULL, PRIMARY KEY (side, line_id))""",
    """CREATE TABLE IF NOT EXISTS journal (
        n INTEGER PRIMARY KEY, date TEXT NOT NULL, account TEXT NOT NULL,
        debit_minor INTEGER NOT NULL, credit_minor INTEGER NOT NULL, currency TEXT NOT NULL,
        match_id TEXT NOT NULL, memo TEXT NOT NULL, key TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
]


def _folder(target: str) -> Path:
    if not target.lower().startswith("dir:"):
        raise InputError(f"write-back target {target!r}: the files target is dir:PATH")
    path = target[4:]
    if not path.strip():
        raise InputError("write-back target 'dir:': name the folder, e.g. dir:writeback/")
    return Path(path).expanduser()


def _journal_problem(item: WriteItem) -> str | None:
    """Why ``item``'s journal cannot be posted (None when it balances)."""
    totals: dict[str, int] = {}
    for line in item.journal:
        if line.debit_minor < 0 or line.credit_minor < 0 or (line.debit_minor > 0) == (line.credit_minor > 0):
            return (f"journal line {line.account} {line.currency} has debit {line.debit_minor} and credit "
                    f"{line.credit_minor} (minor units): one of them must be positive, the other zero")
        totals[line.currency] = totals.get(line.currency, 0) + line.debit_minor - line.credit_minor
    unbalanced = {cur: total for cur, total in totals.items() if total}
    if unbalanced:
        shown = ", ".join(f"{cur} {total:+d}" for cur, total in sorted(unbalanced.items()))
        return f"journal does not balance (debits - credits in minor units: {shown})"
    return None


class FilesAdapter:
    """The ``dir:PATH`` target (see the module docstring).

    Parameters
    ----------
    folder
        The folder written to; created when missing.

    Raises
    ------
    TransientAdapterError
        Another process is writing the folder.
    TerminalAdapterError
        The folder cannot be created or written.
    """

    capabilities = CAPABILITIES

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.name = f"dir:{self.folder}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.folder / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TerminalAdapterError(f"{self.name}: cannot write the folder: {exc}") from None
        self._hold_lock()
        try:
            self._db = sqlite3.connect(self.folder / STATE_FILE, isolation_level=None)
            self._db.execute("PRAGMA synchronous = FULL")
            for ddl in _SCHEMA:
                self._db.execute(ddl)
            if self._outputs_stale():
                self._make_outputs()
        except BaseException:
            self._release()
            raise
        self._closed = False

    # -- locking -------------------------------------------------------------------------
    def _hold_lock(self) -> None:
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self._lock_fd)
                    raise TransientAdapterError(
                        f"{self.name}: another process is writing this folder; try again when it has finished"
                    ) from None
                time.sleep(0.05)

    def _release(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- the keys ------------------------------------------------------------------------
    def _generation(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'generation'").fetchone()
        return row[0] if row else 0

    def written_keys(self) -> set[str]:
        """Every key this folder holds (written or reversed)."""
        return {key for (key,) in self._db.execute("SELECT key FROM items")}

    def _commit(self, body) -> list[WriteResult]:
        """Run ``body(generation)`` inside one SQLite transaction that bumps the generation."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                generation = self._generation() + 1
                results = body(generation)
                if any(r.state == "written" for r in results):
                    self._db.execute(
                        "INSERT INTO meta (name, value) VALUES ('generation', ?) "
                        "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (generation,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise TransientAdapterError(f"{self.name}: cannot record the batch: {exc}") from None
        return results

    def _known(self, keys: Sequence[str]) -> set[str]:
        known: set[str] = set()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            known.update(k for (k,) in self._db.execute(f"SELECT key FROM items WHERE key IN ({marks})", chunk))
        return known

    def _in_force(self, match_ids: Sequence[str]) -> set[str]:
        """The matches whose latest item here is a write (not reversed since)."""
        standing: set[str] = set()
        unique = list(dict.fromkeys(match_ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            standing.update(m for m, action in self._db.execute(
                f"""SELECT match_id, action FROM items WHERE rowid IN (
                        SELECT max(rowid) FROM items WHERE match_id IN ({marks}) GROUP BY match_id)""", chunk)
                if action == "write")
        return standing

    def _apply(self, items: Sequence[WriteItem], action: str) -> list[WriteResult]:
        known = self._known([item.key for item in items])
        # a second write of a match this folder holds in force (under another key) is no new
        # write: its journal is posted once
        standing = self._in_force([item.match_id for item in items]) if action == "write" else set()
        at = datetime.now(UTC).isoformat(timespec="seconds")

        def body(generation: int) -> list[WriteResult]:
            results: list[WriteResult] = []
            done: set[str] = set()
            item_rows, journal_rows, status_rows, reopen_rows = [], [], [], []
            for item in items:
                if item.key in known or item.key in done:
                    results.append(WriteResult(item.key, "already"))
                    continue
                if item.match_id in standing:
                    results.append(WriteResult(item.key, "already", f"{item.match_id} is written here already"))
                    continue
                if item.action != action:
                    results.append(WriteResult(
                        item.key, "failed", f"{action}() was given an item whose action is {item.action!r}"))
                    continue
                problem = _journal_problem(item)
                if problem:
                    results.append(WriteResult(item.key, "failed", problem))
                    continue
                journal, reason = item.journal, ""
                if action == "write":
                    status_rows += [(line.side, line.line_id, item.match_id, LINE_STATE_RECONCILED, item.key)
                                    for line in item.lines]
                elif not self._db.execute("SELECT count(*) FROM items WHERE match_id = ? AND action = 'write'",
                                          (item.match_id,)).fetchone()[0]:
                    # the workspace sent the match here but the folder never recorded it (a
                    # crash before the folder's commit): there is nothing to undo
                    journal, reason = (), "nothing of this match was written here: nothing to reverse"
                else:
                    # only the lines still showing this match go back to open (a line may
                    # since have been reconciled by another match)
                    reopen_rows += [(LINE_STATE_OPEN, item.key, line.side, line.line_id, item.match_id)
                                    for line in item.lines]
                item_rows.append((item.key, item.match_id, item.seq, item.action, at, generation))
                if action == "write":
                    standing.add(item.match_id)
                journal_rows += [(line.date.isoformat(), line.account, line.debit_minor, line.credit_minor,
                                  line.currency, line.match_id, line.memo, item.key) for line in journal]
                done.add(item.key)
                results.append(WriteResult(item.key, "written", reason))
            self._db.executemany(
                "INSERT INTO items (key, match_id, seq, action, written_at, generation) VALUES (?, ?, ?, ?, ?, ?)",
                item_rows)
            self._db.executemany(
                "INSERT INTO status (side, line_id, match_id, state, key) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (side, line_id) DO UPDATE SET match_id = excluded.match_id, "
                "state = excluded.state, key = excluded.key", status_rows)
            self._db.executemany(
                "UPDATE status SET state = ?, key = ? WHERE side = ? AND line_id = ? AND match_id = ?", reopen_rows)
            self._db.executemany(
                "INSERT INTO journal (date, account, debit_minor, credit_minor, currency, match_id, memo, key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", journal_rows)
            return results

        return self._commit(body)

    def write(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Set the items' lines ``reconciled`` and append their journals; one result per item."""
        return self._apply(items, "write")

    def reverse(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Set the items' lines back to ``open`` and append their (mirrored) journals."""
        return self._apply(items, "reverse")

    # -- the files -----------------------------------------------------------------------
    def _outputs_stale(self) -> bool:
        mark = self.folder / _OUTPUTS_MARK
        try:
            made_from = int(mark.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            made_from = -1
        return made_from != self._generation() or not all(
            (self.folder / name).exists()
            for name in ("status.csv", "journal.csv", "status.parquet", "journal.parquet"))

    def _frames(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        status = pl.DataFrame(
            self._db.execute("SELECT side, line_id, match_id, state FROM status ORDER BY side, line_id").fetchall(),
            schema={name: pl.Utf8 for name in STATUS_COLUMNS}, orient="row")
        journal = pl.DataFrame(
            self._db.execute(
                "SELECT date, account, debit_minor, credit_minor, currency, match_id, memo FROM journal ORDER BY n"
            ).fetchall(),
            schema={"date": pl.Utf8, "account": pl.Utf8, "debit_minor": pl.Int64, "credit_minor": pl.Int64,
                    "currency": pl.Utf8, "match_id": pl.Utf8, "memo": pl.Utf8}, orient="row")
        return status, journal

    def _make_outputs(self) -> None:
        """Make the CSV and Parquet files from the keys, each replaced atomically."""
        generation = self._generation()
        status, journal = self._frames()
        journal_text = journal.select(
            "date", "account",
            format_minor_expr(pl.col("debit_minor"), pl.col("currency")).alias("debit"),
            format_minor_expr(pl.col("credit_minor"), pl.col("currency")).alias("credit"),
            "currency", "match_id", "memo",
        )
        # Parquet: amounts as exact decimals at the largest scale of the currencies present
        scale = max((currency_exponent(c) for c in journal["currency"].unique().to_list()), default=2)

        def as_decimal(column: str) -> pl.Series:
            return pl.Series(column, [
                Decimal(minor).scaleb(-currency_exponent(cur)) for minor, cur in
                zip(journal[column + "_minor"].to_list(), journal["currency"].to_list(), strict=True)
            ], dtype=pl.Decimal(38, scale))

        journal_typed = journal_text.with_columns(
            pl.col("date").str.to_date("%Y-%m-%d"), as_decimal("debit"), as_decimal("credit"))
        self._replace("status.csv", lambda path: status.write_csv(path))
        crash_point("files:between-outputs")  # status.csv replaced, journal.csv not yet
        self._replace("journal.csv", lambda path: journal_text.write_csv(path))
        self._replace("status.parquet", lambda path: status.write_parquet(path))
        self._replace("journal.parquet", lambda path: journal_typed.write_parquet(path))
        self._replace(_OUTPUTS_MARK, lambda path: Path(path).write_text(f"{generation}\n", encoding="ascii"))

    def _replace(self, name: str, write) -> None:
        # a fresh name in the same folder (a rename is atomic only within one file system),
        # created by the writer with the usual permissions
        tmp = self.folder / f".{name}.{uuid.uuid4().hex}.tmp"
        try:
            write(tmp)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, self.folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def close(self) -> None:
        """Bring the CSV and Parquet files up to date with the keys and release the folder."""
        if self._closed:
            return
        try:
            if self._outputs_stale():
                self._make_outputs()
        finally:
            self._closed = True
            self._release()


def open_adapter(target: str, *, workspace_dir: Path) -> FilesAdapter:
    """Open the ``dir:PATH`` target; a relative ``PATH`` is relative to the current folder.

    Examples
    --------
    >>> adapter = open_adapter("dir:writeback", workspace_dir=Path("."))  # doctest: +SKIP
    >>> adapter.capabilities == frozenset({"status", "journals", "reversal"})  # doctest: +SKIP
    True
    """
    return FilesAdapter(_folder(target))
