"""Feeds stage: canonical bank or ledger lines from a database table or query.

Sources are URLs:

* ``duckdb:///abs/path/ledger.duckdb?table=NAME`` (or ``duckdb:relative.duckdb?...``), opened
  read-only;
* ``postgresql://user:password@host:5432/dbname?table=NAME`` (also ``postgres://``; a unix
  socket directory goes in ``?host=/path``), through psycopg 3 (``pip install
  'recon[postgres]'``), in a read-only session.

Instead of ``table=`` (``schema.table`` allowed; quoted as an identifier) a ``query=SELECT ...``
(URL-encoded) may be given. The result must carry recon's canonical column names (see
:mod:`feeds.parquet`); it is validated by the same code as a canonical CSV. Amounts must be
exact: NUMERIC/DECIMAL, text or integers; a float column (REAL, DOUBLE) is refused.
``source_line`` is the 1-based row number of the result; ``source_file`` is the URL with any
password masked.
"""

from __future__ import annotations

import re
from decimal import Decimal
from os import PathLike
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow as pa

from feeds.parquet import read_arrow
from models.errors import FeedFormatError
from models.schema import FeedResult
from models.urls import masked_url as masked

__all__ = ["FORMAT", "SIDES", "identify", "masked", "read"]

FORMAT = "database"
SIDES: tuple[str, ...] = ("bank", "ledger")

_SCHEMES = ("duckdb", "postgresql", "postgres")


def identify(head: bytes, path: str = "") -> bool:
    """Database sources are URLs, recognised by scheme in :func:`feeds.registry.detect`."""
    return bool(re.match(r"^(duckdb|postgres(ql)?):", path, re.IGNORECASE))


def _identifier(name: str) -> str:
    parts = name.split(".")
    if not all(parts):
        raise ValueError(f"table name {name!r} is empty or has an empty part")
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def _statement(source: str, params: dict[str, str]) -> str:
    table, query = params.pop("table", None), params.pop("query", None)
    if (table is None) == (query is None):
        raise FeedFormatError(
            source, "give exactly one of ?table=NAME or ?query=SELECT... in the database URL"
        )
    if query is not None:
        return query
    try:
        return f"SELECT * FROM {_identifier(table)}"
    except ValueError as error:
        raise FeedFormatError(source, str(error)) from None


def _duckdb(url: str, source: str) -> pa.Table:
    import duckdb

    rest = url.split(":", 1)[1]
    if rest.startswith("//"):
        rest = rest[2:]
    path, _, query_string = rest.partition("?")
    params = dict(parse_qsl(query_string, keep_blank_values=True))
    sql = _statement(source, params)
    if not path:
        raise FeedFormatError(source, "the duckdb URL names no database file (duckdb:///path/file.duckdb?table=...)")
    try:
        with duckdb.connect(path, read_only=True) as connection:
            relation = connection.sql(sql)
            if relation is None:
                raise FeedFormatError(source, f"{sql!r} returns no rows (not a SELECT)")
            # DuckDB 2 names it to_arrow_table; 1.x fetch_arrow_table / arrow
            fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
            table = fetch()
            if isinstance(table, pa.RecordBatchReader):
                table = table.read_all()
    except duckdb.Error as error:
        raise FeedFormatError(source, f"DuckDB could not run {sql!r}: {error}") from None
    return table


def _postgres(url: str, source: str) -> pa.Table:
    try:
        import psycopg
    except ImportError:
        raise FeedFormatError(
            source, "reading PostgreSQL needs psycopg 3: pip install 'recon[postgres]'"
        ) from None
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    sql = _statement(source, params)
    conninfo = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(params)))
    try:
        with psycopg.connect(conninfo, connect_timeout=10) as connection:
            connection.read_only = True
            with connection.cursor() as cursor:
                cursor.execute(sql)
                if cursor.description is None:
                    raise FeedFormatError(source, "the query returned no rows/columns (not a SELECT)")
                names = [column.name for column in cursor.description]
                types = [column.type_code for column in cursor.description]
                rows = cursor.fetchall()
    except psycopg.Error as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FeedFormatError(source, f"PostgreSQL: {message}") from None
    float_oids = {700, 701}  # real, double precision
    arrays = []
    for index, name in enumerate(names):
        values = [row[index] for row in rows]
        if types[index] in float_oids or any(isinstance(v, float) for v in values):
            if name.strip().lower() in ("amount", "amount_minor"):
                raise FeedFormatError(
                    source,
                    f"column '{name}' is a floating-point type; a float cannot hold money "
                    "exactly, so recon refuses it: store amounts as NUMERIC or text",
                )
        arrays.append(pa.array([_text(v) for v in values], type=pa.string()))
    return pa.table(arrays, names=names) if names else pa.table({})


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def read(path: str | PathLike[str], side: str = "ledger", **options) -> FeedResult:
    """Read canonical bank or ledger lines from a DuckDB or PostgreSQL table or query.

    Raises
    ------
    FeedFormatError
        Unknown URL scheme, missing ``table``/``query``, connection or SQL error (message from
        the database, password masked), a float amount column, or a missing required column.
    """
    url = str(path)
    source = masked(url)
    if options:
        raise FeedFormatError(source, f"the database reader takes no options ({', '.join(options)})")
    scheme = url.split(":", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise FeedFormatError(
            source, "unknown database URL; use duckdb:///file.duckdb?table=NAME or postgresql://...?table=NAME"
        )
    table = _duckdb(url, source) if scheme == "duckdb" else _postgres(url, source)
    result = read_arrow(table, source, side, f"{side} table")
    result.format = FORMAT
    return result
