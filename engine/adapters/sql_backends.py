"""Adapters stage: the two databases the SQL ledger adapter (:mod:`engine.adapters.sql`) writes to.

A backend owns one connection and hides what differs between PostgreSQL (psycopg 3) and DuckDB:
how to connect, how a batch's rows reach a temporary table (``COPY ... FROM STDIN`` in
PostgreSQL, an Arrow table in DuckDB), how a table's columns are looked up, the column types of
the tables recon creates, and which driver errors are worth retrying. The SQL of the write
itself is shared and lives in :mod:`engine.adapters.sql`.
"""

from __future__ import annotations

import contextlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from models.errors import AdapterError, TerminalAdapterError, TransientAdapterError

__all__ = ["Backend", "PostgresBackend", "DuckdbBackend", "quote_name", "literal"]

#: the kinds of column a temporary table holds, by backend
_PG_TYPES = {"text": "text", "int": "bigint", "decimal": "numeric", "date": "date"}
#: temporary tables get this prefix: a name of the user's (an unqualified ``recon_journal``) must
#: never resolve to one of them, as PostgreSQL looks in ``pg_temp`` first
_TEMP_PREFIX = "recon_batch_"
_DUCKDB_TYPES = {"text": "VARCHAR", "int": "BIGINT", "decimal": "DECIMAL(38,4)", "date": "DATE"}


def quote_name(name: str) -> str:
    """``schema.table`` (or ``table``, or a column) quoted as SQL identifiers.

    Raises
    ------
    ValueError
        An empty name or an empty part (``books.``).
    """
    parts = name.split(".")
    if not all(part.strip() for part in parts):
        raise ValueError(f"{name!r} is empty or has an empty part")
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(error).__name__


class Backend(ABC):
    """One connection to the target database (see the module docstring).

    Parameters
    ----------
    where
        The target as shown to people (password masked); starts every error message.
    secrets
        Strings never to show (the password), scrubbed from the driver's messages.
    """

    #: ``{"text", "int", "decimal", "date"}`` -> the backend's column type
    types: dict[str, str]
    #: the type of a timestamp column and the expression for "now"
    timestamp_type: str
    now: str
    #: the type of the debit and credit columns of a journal table recon creates
    journal_amount_type: str

    def __init__(self, where: str, secrets: Sequence[str] = ()):
        self.where = where
        self.secrets = [secret for secret in secrets if secret]

    # --- messages -------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def error(self, problem: str, *, transient: bool = False) -> AdapterError:
        """An adapter error naming the target, secrets scrubbed."""
        kind = TransientAdapterError if transient else TerminalAdapterError
        return kind(self.scrub(f"{self.where}: {problem}"))

    # --- what each backend provides --------------------------------------------------------

    @abstractmethod
    def columns(self, table: str) -> dict[str, str] | None:
        """The columns of ``table`` (name -> lower-case type), or None when there is no such
        table."""

    @abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """One transaction: committed when the block ends, rolled back when it raises."""

    @abstractmethod
    def execute(self, sql: str) -> list[tuple]:
        """Run one statement; its rows (empty for a statement without a result)."""

    @abstractmethod
    def execute_count(self, sql: str) -> int:
        """Run an UPDATE/INSERT; the number of rows it changed."""

    @abstractmethod
    def temp(self, name: str) -> str:
        """The qualified name of the temporary table ``name`` (never a table of the user's)."""

    @abstractmethod
    def load(self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple]) -> None:
        """Create the temporary table :meth:`temp` ``(name)`` (``columns``: name and kind) holding
        ``rows``, inside the open transaction, replacing one of the same name."""

    @abstractmethod
    def lock_target(self, key: str) -> None:
        """Serialise writers of one target for the rest of the transaction."""

    @abstractmethod
    def classify(self, error: BaseException) -> AdapterError | None:
        """The adapter error for a driver error raised during a batch, or None when ``error`` is
        not the driver's."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""


class PostgresBackend(Backend):
    """PostgreSQL through psycopg 3; ``conninfo`` is a libpq URI (recon's own parameters
    removed)."""

    types = _PG_TYPES
    timestamp_type = "timestamptz"
    now = "now()"
    journal_amount_type = "numeric"  # keeps each amount's own scale: 120.00 HKD, 500 JPY, 1.250 KWD

    def __init__(self, conninfo: str, where: str, secrets: Sequence[str] = ()):
        super().__init__(where, [*secrets, os.environ.get("PGPASSWORD", "")])
        try:
            import psycopg
        except ImportError:
            raise TerminalAdapterError(
                f"{where}: writing to PostgreSQL needs psycopg 3: pip install 'recon[postgres]'"
            ) from None
        self._psycopg = psycopg
        options: dict[str, Any] = {}
        if "connect_timeout" not in conninfo:
            options["connect_timeout"] = 10
        try:
            self.connection = psycopg.connect(conninfo, autocommit=True, **options)
            self._temp_tables: dict[str, str] = {}  # the batch tables this session has: name -> columns
        except psycopg.ProgrammingError as error:  # libpq refused the URL's parameters
            raise self.error(f"bad connection parameters: {_first_line(error)}") from None
        except psycopg.OperationalError as error:
            message = _first_line(error)
            for_good = any(
                words in message
                for words in ("authentication failed", "does not exist", "no password supplied",
                              "no pg_hba.conf entry", "permission denied")
            )
            raise self.error(f"cannot connect: {message}", transient=not for_good) from None

    def columns(self, table: str) -> dict[str, str] | None:
        rows = self.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            f"WHERE a.attrelid = to_regclass({literal(quote_name(table))}) "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        )
        if not rows:
            exists = self.execute(f"SELECT to_regclass({literal(quote_name(table))}) IS NOT NULL")
            if not exists[0][0]:
                return None
        return {name: type_name.lower() for name, type_name in rows}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self.connection.transaction():
                # a batch of a few hundred rows should find them through the ledger's id index:
                # with the default random_page_cost (4, for spinning disks) the planner scans a
                # 100k-row ledger four times a batch instead. Lowered for this transaction only,
                # never raised above the server's setting.
                self.execute(
                    "SELECT set_config('random_page_cost', "
                    "least(current_setting('random_page_cost')::float8, 1.1)::text, true)"
                )
                yield
        except BaseException:
            self._temp_tables.clear()  # those created in the rolled-back transaction went with it
            raise

    def execute(self, sql: str) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description is not None else []

    def execute_count(self, sql: str) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.rowcount

    def temp(self, name: str) -> str:
        return f"pg_temp.{quote_name(_TEMP_PREFIX + name)}"

    def load(self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple]) -> None:
        table = self.temp(name)
        spec = ", ".join(f"{quote_name(column)} {self.types[kind]}" for column, kind in columns)
        names = ", ".join(quote_name(column) for column, _ in columns)
        with self.connection.cursor() as cursor:
            # created once a session (emptied by each commit): creating a table a batch costs
            # catalog writes that a batch of a few hundred rows notices
            if self._temp_tables.get(name) != spec:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
                cursor.execute(f"CREATE TEMPORARY TABLE {quote_name(_TEMP_PREFIX + name)} ({spec}) ON COMMIT DELETE ROWS")
                self._temp_tables[name] = spec
            else:
                cursor.execute(f"DELETE FROM {table}")
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            # no ANALYZE: the planner sizes a never-analysed table by its pages at plan time,
            # which is enough to choose between the index and a hash join (ANALYZE cost a fifth
            # of a 500-item batch)

    def lock_target(self, key: str) -> None:
        self.execute(f"SELECT pg_advisory_xact_lock(hashtext({literal(key)}))")

    def classify(self, error: BaseException) -> AdapterError | None:
        psycopg = self._psycopg
        if not isinstance(error, psycopg.Error):
            return None
        message = _first_line(error)
        errors = psycopg.errors
        retry = (errors.SerializationFailure, errors.DeadlockDetected, errors.LockNotAvailable,
                 errors.QueryCanceled, errors.AdminShutdown, errors.CannotConnectNow)
        if isinstance(error, retry) or (isinstance(error, psycopg.OperationalError) and self.connection.closed):
            return self.error(f"the batch was not written ({message}); run write-back again", transient=True)
        return self.error(f"the database refused the batch, nothing of it was written: {message}")

    def close(self) -> None:
        self.connection.close()


class DuckdbBackend(Backend):
    """A DuckDB database file, opened read-write (it must exist: it holds the ledger table)."""

    types = _DUCKDB_TYPES
    timestamp_type = "TIMESTAMP WITH TIME ZONE"
    now = "current_timestamp"
    journal_amount_type = "DECIMAL(18,4)"  # one scale for every currency (ISO 4217 goes to 4)

    def __init__(self, path: Path, where: str):
        super().__init__(where)
        import duckdb

        self._duckdb = duckdb
        if not path.is_file():
            raise self.error(f"no DuckDB database file at {path}")
        try:
            self.connection = duckdb.connect(str(path))
        except duckdb.IOException as error:  # another process holds the file
            raise self.error(f"cannot open the database file: {_first_line(error)}", transient=True) from None
        except duckdb.Error as error:
            raise self.error(f"cannot open the database file: {_first_line(error)}") from None
        self._registered = 0

    def columns(self, table: str) -> dict[str, str] | None:
        parts = table.split(".")
        schema, name = (parts[-2], parts[-1]) if len(parts) > 1 else (None, parts[-1])
        catalog = parts[-3] if len(parts) > 2 else None
        where = [f"table_name = {literal(name)}"]
        if schema is not None:
            where.append(f"table_schema = {literal(schema)}")
        else:
            where.append("table_schema = current_schema()")
        if catalog is not None:
            where.append(f"table_catalog = {literal(catalog)}")
        else:
            where.append("table_catalog = current_database()")
        rows = self.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE "
            + " AND ".join(where) + " ORDER BY ordinal_position"
        )
        return {column: type_name.lower() for column, type_name in rows} if rows else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.connection.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def execute(self, sql: str) -> list[tuple]:
        cursor = self.connection.execute(sql)
        return cursor.fetchall() if cursor.description is not None else []

    def execute_count(self, sql: str) -> int:
        rows = self.connection.execute(sql).fetchall()
        return int(rows[0][0]) if rows else 0

    def temp(self, name: str) -> str:
        return f"temp.main.{quote_name(_TEMP_PREFIX + name)}"

    def load(self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple]) -> None:
        import pyarrow as pa

        arrow_types = {"text": pa.string(), "int": pa.int64(), "decimal": pa.decimal128(38, 4), "date": pa.date32()}
        values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
        table = pa.table(
            {column: pa.array(list(data), type=arrow_types[kind]) for (column, kind), data in zip(columns, values, strict=True)}
        )
        self._registered += 1
        view = f"recon_arrow_{self._registered}"
        self.connection.register(view, table)
        try:
            spec = ", ".join(f"CAST({quote_name(column)} AS {self.types[kind]}) AS {quote_name(column)}" for column, kind in columns)
            self.connection.execute(f"CREATE OR REPLACE TEMPORARY TABLE {self.temp(name)} AS SELECT {spec} FROM {view}")
        finally:
            self.connection.unregister(view)

    def lock_target(self, key: str) -> None:
        """Nothing to do: a DuckDB file admits one writing process at a time."""

    def classify(self, error: BaseException) -> AdapterError | None:
        duckdb = self._duckdb
        if not isinstance(error, duckdb.Error):
            return None
        message = _first_line(error)
        if isinstance(error, duckdb.TransactionException) or re.search(r"conflict", message, re.IGNORECASE):
            return self.error(f"the batch was not written ({message}); run write-back again", transient=True)
        return self.error(f"the database refused the batch, nothing of it was written: {message}")

    def close(self) -> None:
        self.connection.close()
