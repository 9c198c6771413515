"""Adapters stage: write accepted matches back to a SQL ledger (PostgreSQL or DuckDB).

Targets
-------
``postgresql://USER@HOST:PORT/DB?table=T&id=COL[&status=COL][&match_id=COL][&journal=T2]...``
(also ``postgres://``) and ``duckdb:///PATH.duckdb?table=T&id=COL...`` (``duckdb:rel.duckdb?...``
for a relative path). recon's own query parameters:

``table`` (required)
    The ledger table (``schema.table`` allowed).
``id`` (required)
    Its id column: the ledger item ids recon read (a text column, or any type compared as text).
``status`` (default ``recon_status``), ``match_id`` (default ``recon_match_id``)
    The columns recon sets: ``reconciled`` and the match id on a write, ``open`` and NULL on a
    reversal. Added as text columns when missing.
``journal`` (default ``recon_journal``)
    The table recon appends journal lines to. Created when missing with the columns ``date,
    account, debit, credit, currency, match_id, memo, write_key, line_no`` (debit and credit
    ``numeric`` in PostgreSQL, ``DECIMAL(18,4)`` in DuckDB; primary key ``write_key, line_no``);
    an existing table gets the missing ones of these columns added.
``writes`` (default ``recon_writes`` in the journal's schema)
    One row per key written: ``key, match_id, seq, action, written_at, ledger_rows, bank_rows,
    journal_lines, memo``; created when missing. It makes writes idempotent and keeps the history.
``amount`` or ``amount_minor`` (optional)
    The ledger's amount column, to refuse a row re-priced since recon read it: ``amount`` a
    NUMERIC/DECIMAL (or whole-unit integer) column compared exactly in the line's currency,
    ``amount_minor`` an integer column of minor units. The amount as recon reads it (money in
    positive, as in the canonical tables).
``bank_table``, ``bank_id`` (optional, together)
    A table of bank lines to mark as well; ``bank_status``, ``bank_match_id`` (default: the
    ledger's names), ``bank_amount``, ``bank_amount_minor`` as above. Without them the bank
    lines of a match are not written anywhere (a ledger seldom holds the statement).

Every other query parameter (``host=/socket/dir``, ``port``, ``sslmode``, ``application_name``,
``connect_timeout``, ...) goes to libpq unchanged. The password is not needed in the URL:
libpq reads ``PGPASSWORD`` or ``~/.pgpass``; a password given in the URL is accepted but never
shown (``***`` in every message and in :attr:`SqlLedgerAdapter.name`).

What a write does
-----------------
Each call writes its whole batch in one transaction: the batch's rows go to temporary tables
(``COPY`` in PostgreSQL, an Arrow table in DuckDB) and set-based statements do the rest.

- ``write``: on each ledger item of a match (and each bank line, when ``bank_table`` is given;
  otherwise bank lines are not written anywhere), status ``reconciled`` and match id set; the
  match's journal lines appended to the journal table with the item's key and a line number;
  the key recorded in the writes table.
- ``reverse``: status back to ``open``, the match id cleared (the history stays in the writes
  and journal tables: nothing is deleted), the mirrored journal lines appended.

Idempotent on :attr:`WriteItem.key`: a key found in the writes table is ``already`` and writes
nothing; so is a write of a match whose latest recorded write is still in force (a second
accept of it), a reversal of a match already reversed, and a reversal of a match never written
to this target (nothing to undo: the target already is as the undo wants it).

Optimistic concurrency: a row recon would set is a **conflict** (reported, not overwritten, the
item written not at all, the rest of the batch written) when it is missing, when its id matches
several rows, when it carries another match id (or is ``reconciled`` with none), or, with an
``amount`` column, when its amount is no longer the amount recon matched (a decimal column is
compared as an exact decimal in the line's currency, an integer ``amount_minor`` column in minor
units; floats are refused). A row changed by another session between the check and the update
(PostgreSQL) makes the batch start again from the check, so it too ends as a conflict. Writers
of one target take turns (a PostgreSQL advisory lock on the writes table's name).

A batch the database refuses as a whole (a constraint, a trigger, a permission) is rolled back,
nothing of it written, and raises :class:`~models.errors.TerminalAdapterError`; a lost
connection, a deadlock or a serialization failure raises
:class:`~models.errors.TransientAdapterError` (run write-back again).

Examples
--------
``recon writeback --workspace books.recon --to 'postgresql://clerk@db.internal:5432/books?table=ar.invoices&id=invoice_no&amount=amount&journal=ar.recon_journal'``
``recon writeback --workspace books.recon --to 'duckdb:///srv/books.duckdb?table=ledger&id=id'``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from engine.adapters.base import LINE_STATE_OPEN, LINE_STATE_RECONCILED, WriteItem, WriteResult
from engine.adapters.sql_backends import (
    Backend,
    DuckdbBackend,
    PostgresBackend,
    literal,
    quote_name,
)
from models.errors import InputError, PrecisionError, TransientAdapterError
from models.money import currency_exponent, format_minor
from models.urls import masked_url as masked

__all__ = [
    "CAPABILITIES", "OWN_PARAMETERS", "LineTable", "SqlTarget", "SqlLedgerAdapter", "open_adapter",
    "parse_target", "masked",
]

CAPABILITIES = frozenset({"status", "journals", "reversal"})

_DEFAULTS = {
    "status": "recon_status", "match_id": "recon_match_id", "journal": "recon_journal",
    "writes": "recon_writes",
}
_LEDGER_KEYS = ("table", "id", "status", "match_id", "amount", "amount_minor")
_BANK_KEYS = tuple(f"bank_{key}" for key in _LEDGER_KEYS)
OWN_PARAMETERS = (*_LEDGER_KEYS, *_BANK_KEYS, "journal", "writes")

_JOURNAL_COLUMNS = (  # name, kind (a numeric kind is the backend's journal amount type)
    ("date", "date"), ("account", "text"), ("debit", "amount"), ("credit", "amount"),
    ("currency", "text"), ("match_id", "text"), ("memo", "text"), ("write_key", "text"),
    ("line_no", "int"),
)
_WRITES_COLUMNS = (
    ("key", "text"), ("match_id", "text"), ("seq", "int"), ("action", "text"),
    ("written_at", "timestamp"), ("ledger_rows", "int"), ("bank_rows", "int"),
    ("journal_lines", "int"), ("memo", "text"),
)
_INTEGER_TYPES = ("smallint", "integer", "bigint", "int", "int2", "int4", "int8", "tinyint", "hugeint",
                  "utinyint", "usmallint", "uinteger", "ubigint")
_TEXT_TYPES = ("text", "varchar", "character varying", "string", "character", "char", "bpchar", "name")
_ATTEMPTS = 3


# --- the target URL ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineTable:
    """Where one side's lines live and which columns recon reads and sets."""

    side: str
    table: str
    id: str
    status: str
    match_id: str
    amount: str | None = None
    amount_minor: str | None = None


@dataclass(frozen=True, slots=True)
class SqlTarget:
    """A parsed SQL target (see the module docstring).

    ``connection`` is the libpq URI without recon's parameters (PostgreSQL) or the database
    file's path (DuckDB); ``where`` the target as shown to people (password masked).
    """

    kind: str
    connection: str
    where: str
    ledger: LineTable
    bank: LineTable | None
    journal: str
    writes: str
    secrets: tuple[str, ...] = ()

    @property
    def tables(self) -> tuple[LineTable, ...]:
        return (self.ledger,) if self.bank is None else (self.ledger, self.bank)


def parse_target(target: str) -> SqlTarget:
    """Parse a ``postgresql://`` or ``duckdb://`` write-back target.

    Raises
    ------
    InputError
        Not a SQL target, ``table``/``id`` missing, a parameter given twice or empty, a bad
        table or column name, ``bank_table`` without ``bank_id``, ``amount`` with
        ``amount_minor``, or (DuckDB) a parameter DuckDB does not take.
    """
    where = masked(target)
    scheme = target.split(":", 1)[0].lower()
    if scheme not in ("postgresql", "postgres", "duckdb"):
        raise InputError(f"{where}: not a SQL target (postgresql://... or duckdb:///PATH.duckdb?...)")
    if scheme == "duckdb":
        rest = target.split(":", 1)[1]
        rest = rest[2:] if rest.startswith("//") else rest
        location, _, query = rest.partition("?")
    else:
        parts = urlsplit(target)
        query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise InputError(f"{where}: parameter {name}= is given twice")
        params[name] = value
    own = {name: params.pop(name) for name in OWN_PARAMETERS if name in params}
    for name, value in own.items():
        if not value.strip():
            raise InputError(f"{where}: parameter {name}= is empty")
    for required in ("table", "id"):
        if required not in own:
            raise InputError(
                f"{where}: name the ledger table and its id column: ?table=SCHEMA.TABLE&id=COLUMN"
                f" (missing {required}=)"
            )
    if ("bank_table" in own) != ("bank_id" in own):
        raise InputError(f"{where}: give bank_table= and bank_id= together (the bank lines' table and id column)")
    for prefix in ("", "bank_"):
        if f"{prefix}amount" in own and f"{prefix}amount_minor" in own:
            raise InputError(f"{where}: give one of {prefix}amount= (decimal) or {prefix}amount_minor= (integer minor units)")
    status = own.get("status", _DEFAULTS["status"])
    match_id = own.get("match_id", _DEFAULTS["match_id"])
    ledger = LineTable("ledger", own["table"], own["id"], status, match_id, own.get("amount"), own.get("amount_minor"))
    bank = None
    if "bank_table" in own:
        bank = LineTable(
            "bank", own["bank_table"], own["bank_id"], own.get("bank_status", status),
            own.get("bank_match_id", match_id), own.get("bank_amount"), own.get("bank_amount_minor"),
        )
    elif any(name in own for name in _BANK_KEYS):
        raise InputError(f"{where}: bank_... columns need bank_table= and bank_id=")
    journal = own.get("journal", _DEFAULTS["journal"])
    writes = own.get("writes") or (journal.rsplit(".", 1)[0] + "." if "." in journal else "") + _DEFAULTS["writes"]
    names = [journal, writes]
    for line in (ledger, bank):
        if line is not None:
            names += [line.table, line.id, line.status, line.match_id, line.amount or "", line.amount_minor or ""]
    for name in filter(None, names):
        try:
            quote_name(name)
        except ValueError as error:
            raise InputError(f"{where}: bad table or column name: {error}") from None
    secrets = tuple(s for s in (urlsplit(target).password if scheme != "duckdb" else None,
                                params.get("password")) if s)
    if scheme == "duckdb":
        if params:
            raise InputError(
                f"{where}: DuckDB takes no parameter {', '.join(sorted(params))}= "
                f"(known: {', '.join(OWN_PARAMETERS)})"
            )
        if not location:
            raise InputError(f"{where}: name the database file: duckdb:///PATH.duckdb?table=...&id=...")
        connection = location
    else:
        parts = urlsplit(target)
        connection = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(params, quote_via=quote)))
    return SqlTarget(scheme if scheme == "duckdb" else "postgresql", connection, where, ledger, bank, journal,
                     writes, secrets)


# --- the adapter ---------------------------------------------------------------------------


class _RowsChanged(Exception):
    """Another session changed a row between the check and the update: start the batch again."""


class SqlLedgerAdapter:
    """The write-back adapter of a SQL ledger (see the module docstring).

    Parameters
    ----------
    target
        The parsed target.

    Raises
    ------
    TransientAdapterError
        The server cannot be reached, or the DuckDB file is in use.
    TerminalAdapterError
        Bad connection parameters or credentials, psycopg missing, the table or a named column
        missing, an amount column of a type that cannot hold money exactly.
    """

    capabilities = CAPABILITIES

    def __init__(self, target: SqlTarget):
        self.target = target
        self.name = target.where
        if target.kind == "duckdb":
            self.backend: Backend = DuckdbBackend(Path(target.connection), target.where)
        else:
            self.backend = PostgresBackend(target.connection, target.where, target.secrets)
        try:
            self._id_is_text = {line.side: self._check_table(line) for line in target.tables}
        except Exception as error:
            driver_error = self.backend.classify(error) is not None
            self.backend.close()
            if not driver_error:
                raise
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise self.backend.error(f"cannot read the tables' definitions: {first}") from None
        self._prepared = False

    # --- opening -----------------------------------------------------------------------------

    def _check_table(self, line: LineTable) -> bool:
        """Check that ``line``'s table and named columns exist; whether its id is text."""
        columns = self.backend.columns(line.table)
        where = "bank_table" if line.side == "bank" else "table"
        if columns is None:
            raise self.backend.error(f"there is no table {line.table} ({where}=)")
        listing = ", ".join(columns)
        for role, column in (("id", line.id), ("amount", line.amount), ("amount_minor", line.amount_minor)):
            if column is not None and column not in columns:
                key = f"bank_{role}" if line.side == "bank" else role
                raise self.backend.error(f"table {line.table} has no column {column!r} ({key}=); its columns: {listing}")
        if line.amount is not None and not (_is_decimal(columns[line.amount]) or _is_integer(columns[line.amount])):
            raise self.backend.error(
                f"column {line.table}.{line.amount} is {columns[line.amount]}: the amount column must be "
                "NUMERIC/DECIMAL (or an integer of whole units); a float cannot hold money exactly"
            )
        if line.amount_minor is not None and not _is_integer(columns[line.amount_minor]):
            raise self.backend.error(
                f"column {line.table}.{line.amount_minor} is {columns[line.amount_minor]}: amount_minor must be an integer column"
            )
        return _base_type(columns[line.id]) in _TEXT_TYPES

    def _prepare(self) -> None:
        """Add the status and match id columns, create the journal and writes tables, where
        missing (inside the batch's transaction)."""
        backend = self.backend
        text = backend.types["text"]
        for line in self.target.tables:
            columns = backend.columns(line.table) or {}
            for column in dict.fromkeys((line.status, line.match_id)):
                if column not in columns:
                    backend.execute(f"ALTER TABLE {quote_name(line.table)} ADD COLUMN {quote_name(column)} {text}")
        kinds = {**backend.types, "amount": backend.journal_amount_type, "timestamp": backend.timestamp_type}
        for table, spec, key in ((self.target.journal, _JOURNAL_COLUMNS, "write_key, line_no"),
                                 (self.target.writes, _WRITES_COLUMNS, "key")):
            columns = backend.columns(table)
            if columns is None:
                body = ", ".join(f"{quote_name(name)} {kinds[kind]}" for name, kind in spec)
                backend.execute(f"CREATE TABLE {quote_name(table)} ({body}, PRIMARY KEY ({key}))")
                if table == self.target.writes:  # each batch looks up the history of its matches
                    index = quote_name(table.rsplit(".", 1)[-1] + "_match_id")
                    backend.execute(f"CREATE INDEX {index} ON {quote_name(table)} (match_id)")
            else:
                for name, kind in spec:
                    if name not in columns:
                        backend.execute(f"ALTER TABLE {quote_name(table)} ADD COLUMN {quote_name(name)} {kinds[kind]}")
        self._prepared = True

    # --- writing -----------------------------------------------------------------------------

    def write(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Set the lines of each item reconciled and append its journal (one transaction).

        Returns
        -------
        list of WriteResult
            One per item, in order: ``written``, ``already``, ``conflict`` (with the rows and
            why) or ``failed``.

        Raises
        ------
        TransientAdapterError, TerminalAdapterError
            The batch as a whole could not be written; nothing of it was.
        """
        return self._apply(items, "write")

    def reverse(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Set the lines of each item back to open, clear their match id and append the
        mirrored journal (one transaction); see :meth:`write`."""
        return self._apply(items, "reverse")

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> SqlLedgerAdapter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _apply(self, items: Sequence[WriteItem], action: str) -> list[WriteResult]:
        wrong = [item.key for item in items if item.action != action]
        if wrong:
            raise InputError(f"{self.name}: {action}() was given {len(wrong)} item(s) of another action, e.g. {wrong[0]}")
        if not items:
            return []
        keys = [item.key for item in items]
        keyed = dict(zip(keys, items, strict=True))  # one item a key (a repeated key is written once)
        for attempt in range(_ATTEMPTS):
            prepared = self._prepared
            try:
                with self.backend.transaction():
                    decided = self._batch(keyed, action)
                return [decided[key] for key in keys]
            except _RowsChanged:
                self._prepared = prepared
                if attempt == _ATTEMPTS - 1:
                    raise TransientAdapterError(
                        f"{self.name}: rows kept changing while writing the batch; nothing of it was written, run write-back again"
                    ) from None
            except Exception as error:
                self._prepared = prepared
                adapter_error = self.backend.classify(error)
                if adapter_error is None:
                    raise
                raise adapter_error from None
        raise AssertionError("unreachable")

    def _batch(self, keyed: dict[str, WriteItem], action: str) -> dict[str, WriteResult]:
        backend, target = self.backend, self.target
        backend.lock_target(target.writes)
        if not self._prepared:
            self._prepare()
        decided = self._already(keyed, action)
        pending = [(key, item) for key, item in keyed.items() if key not in decided]

        # the rows to set, checked in Python first: currencies, a line claimed twice in the batch
        side_tables = {line.side: line for line in target.tables}
        lines_rows: list[tuple] = []
        claimed: dict[tuple[str, str], str] = {}
        todo: list[tuple[str, WriteItem]] = []
        for key, item in pending:
            rows, failures, claims = [], [], []
            for side, line_id, amount_minor, currency in dict.fromkeys(
                (line.side, line.line_id, line.amount_minor, line.currency) for line in item.lines
            ):
                table = side_tables.get(side)
                if table is None:  # no table of this side in the target (bank lines without bank_table)
                    continue
                expected = None
                if table.amount is not None and action == "write":
                    try:
                        expected = _major(amount_minor, currency)
                    except PrecisionError as error:
                        failures.append(f"{side} {line_id}: {error}")
                        continue
                other = claimed.get((side, line_id))
                if other is not None:
                    claims.append(f"{side} {line_id}: also in match {other} of this batch; not written twice")
                rows.append((key, item.match_id, side, line_id, expected, amount_minor, currency))
            if failures or claims:
                state = "failed" if failures else "conflict"
                decided[key] = WriteResult(key, state, "; ".join(failures + claims))
                continue
            for row in rows:
                claimed[(row[2], row[3])] = item.match_id
            lines_rows.extend(rows)
            todo.append((key, item))
        if not todo:
            return decided

        backend.load("lines", (("key", "text"), ("match_id", "text"), ("side", "text"), ("line_id", "text"),
                                     ("amount", "decimal"), ("amount_minor", "int"), ("currency", "text")), lines_rows)
        conflicts = self._conflicts(action)
        for key, reasons in conflicts.items():
            decided[key] = WriteResult(key, "conflict", "; ".join(reasons))
        ok = [(key, item) for key, item in todo if key not in conflicts]
        if conflicts:
            backend.load("drop", (("key", "text"),), [(key,) for key in conflicts])
            backend.execute(f"DELETE FROM {backend.temp('lines')} WHERE key IN (SELECT key FROM {backend.temp('drop')})")
        if not ok:
            return decided

        counts = {side: {} for side in side_tables}
        for key, _, side, *_ in lines_rows:
            if key not in conflicts:
                counts[side][key] = counts[side].get(key, 0) + 1
        for side, table in side_tables.items():
            expected_rows = sum(counts[side].values())
            if expected_rows and backend.execute_count(self._update_sql(table, action)) != expected_rows:
                raise _RowsChanged

        journal_rows = [
            (key, number, line.date, line.account, _major(line.debit_minor, line.currency),
             _major(line.credit_minor, line.currency), line.currency, line.match_id, line.memo)
            for key, item in ok for number, line in enumerate(item.journal, start=1)
        ]
        if journal_rows:
            backend.load("journal", (("key", "text"), ("line_no", "int"), ("date", "date"), ("account", "text"),
                                           ("debit", "decimal"), ("credit", "decimal"), ("currency", "text"),
                                           ("match_id", "text"), ("memo", "text")), journal_rows)
            backend.execute(
                f"INSERT INTO {quote_name(target.journal)} (date, account, debit, credit, currency, match_id, memo, "
                "write_key, line_no) SELECT date, account, debit, credit, currency, match_id, memo, key, line_no "
                f"FROM {backend.temp('journal')}"
            )
        backend.load("items", (("key", "text"), ("match_id", "text"), ("seq", "int"), ("action", "text"),
                                     ("ledger_rows", "int"), ("bank_rows", "int"), ("journal_lines", "int"),
                                     ("memo", "text")),
                     [(key, item.match_id, item.seq, action, counts["ledger"].get(key, 0),
                       counts.get("bank", {}).get(key, 0), len(item.journal), item.memo) for key, item in ok])
        backend.execute(
            f"INSERT INTO {quote_name(target.writes)} (key, match_id, seq, action, written_at, ledger_rows, bank_rows, "
            f"journal_lines, memo) SELECT key, match_id, seq, action, {backend.now}, ledger_rows, bank_rows, "
            f"journal_lines, memo FROM {backend.temp('items')}"
        )
        for key, _ in ok:
            decided[key] = WriteResult(key, "written")
        return decided

    def _already(self, keyed: dict[str, WriteItem], action: str) -> dict[str, WriteResult]:
        """The items the writes table (or an earlier item of the batch) already settles."""
        self.backend.load("batch", (("key", "text"), ("match_id", "text")),
                          [(key, item.match_id) for key, item in keyed.items()])
        history: dict[str, list[tuple[int, str, str]]] = {}
        recorded_keys: set[str] = set()
        for match_id, key, recorded, seq in self.backend.execute(
            f"SELECT w.match_id, w.key, w.action, w.seq FROM {quote_name(self.target.writes)} w "
            f"WHERE w.match_id IN (SELECT match_id FROM {self.backend.temp('batch')})"
        ):
            history.setdefault(match_id, []).append((seq, key, recorded))
            recorded_keys.add(key)
        decided: dict[str, WriteResult] = {}
        seen: dict[str, str] = {}
        for key, item in keyed.items():
            match_id = item.match_id
            latest = max(history[match_id]) if match_id in history else None
            if key in recorded_keys:
                decided[key] = WriteResult(key, "already")
            elif match_id in seen:
                decided[key] = WriteResult(key, "already", f"{seen[match_id]} of this batch does it")
            elif latest is not None and latest[2] == action:
                done = "written" if action == "write" else "reversed"
                decided[key] = WriteResult(key, "already", f"match {done} before as {latest[1]}")
            elif action == "reverse" and latest is None:
                # (a crash after a batch was marked sent but before it reached the target, then
                # an undo: the target holds nothing of the match, which is what the undo wants)
                decided[key] = WriteResult(
                    key, "already", f"match {match_id} was never written to this target: nothing to reverse"
                )
            else:
                seen[match_id] = key
        return decided

    def _row_ok(self, table: LineTable, action: str, status: str, match: str, amount: str | None) -> str:
        """The SQL condition of a row recon may set (``status``/``match``/``amount``: the row's
        values as SQL expressions; ``l``: its line in the batch's ``lines``)."""
        free = f"(coalesce({match}, '') = '' AND coalesce({status}, '') <> {literal(LINE_STATE_RECONCILED)})"
        condition = f"({free} OR coalesce({match}, '') = l.match_id)"
        if action == "write" and amount is not None:
            expected = "l.amount" if table.amount is not None else "l.amount_minor"
            condition += f" AND {amount} IS NOT DISTINCT FROM {expected}"
        return condition

    def _join(self, table: LineTable) -> str:
        column = f"t.{quote_name(table.id)}"
        return f"{column} = l.line_id" if self._id_is_text[table.side] else f"CAST({column} AS VARCHAR) = l.line_id"

    def _conflicts(self, action: str) -> dict[str, list[str]]:
        """Check the rows of the batch's ``lines`` against the tables; the reasons, by item key."""
        reasons: dict[str, list[str]] = {}
        for table in self.target.tables:
            amount_column = table.amount or table.amount_minor
            amount = f"min(t.{quote_name(amount_column)})" if amount_column else "NULL"
            condition = self._row_ok(
                table, action, "status_now", "match_now", "amount_now" if amount_column else None
            )
            rows = self.backend.execute(
                "SELECT key, line_id, match_id, n, status_now, match_now, amount_now, amount_minor, currency "
                "FROM (SELECT l.key, l.line_id, l.match_id, l.amount, l.amount_minor, l.currency, "
                f"count(t.{quote_name(table.id)}) AS n, "
                f"min(CAST(t.{quote_name(table.status)} AS VARCHAR)) AS status_now, "
                f"min(CAST(t.{quote_name(table.match_id)} AS VARCHAR)) AS match_now, {amount} AS amount_now "
                f"FROM {self.backend.temp('lines')} l LEFT JOIN {quote_name(table.table)} t ON {self._join(table)} "
                f"WHERE l.side = {literal(table.side)} "
                "GROUP BY l.key, l.line_id, l.match_id, l.amount, l.amount_minor, l.currency) l "
                f"WHERE n <> 1 OR NOT ({condition})"
            )
            for key, line_id, match_id, n, status_now, match_now, amount_now, amount_minor, currency in rows:
                where = f"{table.side} {line_id}"
                if n == 0:
                    reason = f"{where}: not found in {table.table}"
                elif n > 1:
                    reason = f"{where}: {n} rows of {table.table} have this id"
                elif match_now and match_now != match_id:
                    reason = f"{where}: carries match {match_now} in {table.table}, not {match_id}; left as it is"
                elif not match_now and status_now == LINE_STATE_RECONCILED:
                    reason = f"{where}: already {LINE_STATE_RECONCILED} in {table.table} (no match id); left as it is"
                else:
                    now = amount_now if table.amount or amount_now is None else format_minor(amount_now, currency)
                    reason = (f"{where}: amount changed in {table.table} since recon read it: {now} there, "
                              f"{format_minor(amount_minor, currency)} matched; left as it is")
                reasons.setdefault(key, []).append(reason)
        return reasons

    def _update_sql(self, table: LineTable, action: str) -> str:
        amount_column = table.amount or table.amount_minor
        condition = self._row_ok(
            table, action, f"CAST(t.{quote_name(table.status)} AS VARCHAR)",
            f"CAST(t.{quote_name(table.match_id)} AS VARCHAR)",
            f"t.{quote_name(amount_column)}" if amount_column else None,
        )
        if action == "write":
            values = f"{quote_name(table.status)} = {literal(LINE_STATE_RECONCILED)}, {quote_name(table.match_id)} = l.match_id"
        else:
            values = f"{quote_name(table.status)} = {literal(LINE_STATE_OPEN)}, {quote_name(table.match_id)} = NULL"
        return (
            f"UPDATE {quote_name(table.table)} AS t SET {values} FROM {self.backend.temp('lines')} AS l "
            f"WHERE l.side = {literal(table.side)} AND {self._join(table)} AND {condition}"
        )


@cache
def _exponent(currency: str) -> int:
    return currency_exponent(currency)


def _major(minor: int, currency: str) -> Decimal:
    """``minor`` units of ``currency`` as an exact Decimal with the currency's decimals (as
    :func:`models.money.from_minor`, with the exponent looked up once a currency)."""
    return Decimal(int(minor)).scaleb(-_exponent(currency))


def _base_type(type_name: str) -> str:
    return type_name.split("(", 1)[0].strip().lower()


def _is_integer(type_name: str) -> bool:
    return _base_type(type_name) in _INTEGER_TYPES


def _is_decimal(type_name: str) -> bool:
    return _base_type(type_name) in ("numeric", "decimal")


def open_adapter(target: str, *, workspace_dir: Path) -> SqlLedgerAdapter:
    """Open the SQL ledger named by ``target`` (see the module docstring). ``workspace_dir`` is
    not used: the target keeps its own record of what was written (the writes table), so two
    workspaces writing to one ledger cannot write a match twice.

    Raises
    ------
    InputError
        A malformed target (see :func:`parse_target`).
    TransientAdapterError, TerminalAdapterError
        See :class:`SqlLedgerAdapter`.
    """
    return SqlLedgerAdapter(parse_target(target))

