"""Tests of ledger/bank lines from Parquet, DuckDB and PostgreSQL (feeds stage)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import feeds
from feeds.registry import detect, read_any
from models.errors import FeedFormatError
from models.schema import LEDGER_SCHEMA


def ledger_table(amount: pa.Array) -> pa.Table:
    return pa.table(
        {
            "id": ["L1", "L2", "L3"],
            "date": pa.array([dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)]),
            "amount": amount,
            "currency": ["HKD", "JPY", "KWD"],
            "counterparty": ["陳大文", "Müller GmbH", "Société Générale"],
            "type": ["invoice", "bill", "invoice"],
            "project": ["a", "b", None],
        }
    )


EXPECTED = [("L1", 123450, "HKD", "陳大文"), ("L2", -1500, "JPY", "Müller GmbH"), ("L3", 12345, "KWD", "Société Générale")]


def rows(frame: pl.DataFrame):
    return frame.select("id", "amount_minor", "currency", "counterparty").rows()


@pytest.mark.parametrize(
    "amount",
    [
        pa.array(["1234.50", "-1500", "12.345"]),
        pa.array([Decimal("1234.50"), Decimal("-1500"), Decimal("12.345")], type=pa.decimal128(18, 3)),
    ],
    ids=["decimal-text", "decimal-type"],
)
def test_parquet_ledger_exact_amounts(tmp_path, amount):
    path = tmp_path / "ledger.parquet"
    pq.write_table(ledger_table(amount), path)
    assert detect(str(path), "ledger").FORMAT == "parquet"
    result = read_any(str(path), "ledger")
    assert result.frame.schema == pl.Schema(LEDGER_SCHEMA)
    assert rows(result.frame) == EXPECTED
    assert result.frame["source_line"].to_list() == [1, 2, 3]
    assert result.frame["attributes"][0] == '{"project":"a"}'


def test_parquet_float_amount_is_refused(tmp_path):
    path = tmp_path / "float.parquet"
    pq.write_table(ledger_table(pa.array([1234.5, -1500.0, 12.345])), path)
    with pytest.raises(FeedFormatError, match="floating-point.*amount_minor"):
        read_any(str(path), "ledger")


def test_parquet_amount_minor_and_bad_rows(tmp_path):
    table = pa.table(
        {
            "id": ["L1", "L2", ""],
            "date": ["2026-01-05", "not a date", "2026-01-07"],
            "amount_minor": pa.array([123450, 5, 7], type=pa.int64()),
            "currency": ["HKD", "HKD", "HKD"],
        }
    )
    path = tmp_path / "minor.parquet"
    pq.write_table(table, path)
    result = read_any(str(path), "ledger")
    assert result.frame.select("id", "amount_minor").rows() == [("L1", 123450)]
    assert result.rejects.select("line", "column").rows() == [(2, "date"), (3, "id")]


def test_parquet_missing_column_and_not_parquet(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": ["a"], "date": ["2026-01-01"]}), path)
    with pytest.raises(FeedFormatError, match="missing required column"):
        read_any(str(path), "ledger", format="parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(FeedFormatError, match="not a readable Parquet"):
        read_any(str(bad), "ledger")


def test_duckdb_table_and_query(tmp_path):
    db = tmp_path / "books.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(
            "CREATE TABLE ledger (id TEXT, date DATE, amount DECIMAL(18,3), currency TEXT, "
            "counterparty TEXT, type TEXT, project TEXT)"
        )
        con.execute(
            "INSERT INTO ledger VALUES ('L1','2026-01-05',1234.50,'HKD','陳大文','invoice','a'),"
            "('L2','2026-01-06',-1500,'JPY','Müller GmbH','bill','b'),"
            "('L3','2026-01-07',12.345,'KWD','Société Générale','invoice',NULL)"
        )
        con.execute("CREATE TABLE floats (id TEXT, date DATE, amount DOUBLE, currency TEXT)")
        con.execute("INSERT INTO floats VALUES ('F1', '2026-01-05', 0.1, 'HKD')")
    url = f"duckdb:///{db}?table=ledger"
    assert detect(url, "ledger").FORMAT == "database"
    loaded = feeds.load_ledger([url])
    assert rows(loaded.frame) == EXPECTED
    query = f"duckdb:///{db}?query=SELECT%20*%20FROM%20ledger%20WHERE%20currency%3D%27HKD%27"
    assert read_any(query, "ledger").frame["id"].to_list() == ["L1"]
    with pytest.raises(FeedFormatError, match="floating-point"):
        read_any(f"duckdb:///{db}?table=floats", "ledger")
    with pytest.raises(FeedFormatError, match="DuckDB could not run"):
        read_any(f"duckdb:///{db}?table=nope", "ledger")
    with pytest.raises(FeedFormatError, match="exactly one of"):
        read_any(f"duckdb:///{db}", "ledger")
    with pytest.raises(FeedFormatError, match=r"DuckDB database file; name the table or query: duckdb:///"):
        read_any(str(db), "ledger")


# --- PostgreSQL: a throwaway server (the postgres_url fixture of tests/pg_server.py) ----------


def test_postgresql_table_query_and_errors(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS books.ledger; DROP SCHEMA IF EXISTS books CASCADE")
        con.execute("CREATE SCHEMA books")
        con.execute(
            "CREATE TABLE books.ledger (id text, date date, amount numeric(18,3), currency text, "
            "counterparty text, type text, project text)"
        )
        con.execute(
            "INSERT INTO books.ledger VALUES ('L1','2026-01-05',1234.50,'HKD','陳大文','invoice','a'),"
            "('L2','2026-01-06',-1500,'JPY','Müller GmbH','bill','b'),"
            "('L3','2026-01-07',12.345,'KWD','Société Générale','invoice',NULL)"
        )
        con.execute("CREATE TABLE books.floats (id text, date date, amount double precision, currency text)")
        con.execute("INSERT INTO books.floats VALUES ('F1','2026-01-05',0.1,'HKD')")
    url = postgres_url.replace("?", "?table=books.ledger&")
    result = read_any(url, "ledger")
    assert rows(result.frame) == EXPECTED
    assert result.frame["date"].to_list()[0] == dt.date(2026, 1, 5)
    query = postgres_url.replace("?", "?query=SELECT%20*%20FROM%20books.ledger%20WHERE%20id%3D%27L2%27&")
    assert read_any(query, "ledger").frame["amount_minor"].to_list() == [-1500]
    with pytest.raises(FeedFormatError, match="floating-point"):
        read_any(postgres_url.replace("?", "?table=books.floats&"), "ledger")
    with pytest.raises(FeedFormatError, match="PostgreSQL: .*does not exist"):
        read_any(postgres_url.replace("?", "?table=books.nope&"), "ledger")


def test_password_is_masked_in_source_file():
    from feeds.database import masked

    assert masked("postgresql://me:s3cret@db:5432/books?table=t") == "postgresql://me:***@db:5432/books?table=t"


def test_a_password_given_as_a_query_parameter_is_masked_too():
    from feeds.database import masked

    assert masked("postgresql://me@db/books?table=t&password=s3cret&sslmode=require") == (
        "postgresql://me@db/books?table=t&password=***&sslmode=require"
    )
