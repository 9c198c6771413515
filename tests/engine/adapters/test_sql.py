"""The SQL ledger write-back adapter against a real throwaway PostgreSQL server and DuckDB files.

What a bookkeeper checks after a write-back: the status and match id on each ledger item and
bank line, the journal lines to the cent (and the payer's name in Chinese exactly as given),
nothing written twice, an undo that reverses, a row someone else changed left alone and
reported, a batch the database refuses leaving nothing behind, and no password on the screen.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from engine.adapters import open_target
from engine.adapters.base import JournalLine, MatchLine, WriteItem
from engine.adapters.sql import masked, parse_target
from models.errors import InputError, TerminalAdapterError, TransientAdapterError

ROOT = Path(__file__).resolve().parents[3]
DAY = dt.date(2026, 1, 5)
MEMO = "陳大文 金港貿易有限公司 bank charge"

LEDGER = [  # id, amount, counterparty
    ("L1", "1234.50", "陳大文"),
    ("L2", "800.00", "金港貿易有限公司"),
    ("L3", "99.99", "Müller GmbH"),
    ("L4", "50.00", "Société Générale"),
]
BANK = [("B1", "1219.50"), ("B2", "800.00"), ("B3", "99.99"), ("B4", "50.00")]
PARAMS = "table=books.ledger&id=id&amount=amount&journal=books.journal"


def match(match_id: str, seq: int, bank: list[tuple[str, int]], ledger: list[tuple[str, int]],
          journal: tuple[JournalLine, ...] = (), action: str = "write") -> WriteItem:
    lines = tuple(MatchLine("bank", i, DAY, a, "HKD") for i, a in bank) + tuple(
        MatchLine("ledger", i, DAY, a, "HKD") for i, a in ledger
    )
    return WriteItem(match_id, seq, action, "one_to_one", lines, journal, f"memo of {match_id}")


def fee_journal(match_id: str, minor: int = 1500, currency: str = "HKD") -> tuple[JournalLine, ...]:
    return (
        JournalLine(DAY, "6100 Bank charges", minor, 0, currency, match_id, MEMO),
        JournalLine(DAY, "1100 Receivables", 0, minor, currency, match_id, MEMO),
    )


def mirrored(item: WriteItem, seq: int) -> WriteItem:
    journal = tuple(
        JournalLine(j.date, j.account, j.credit_minor, j.debit_minor, j.currency, j.match_id, j.memo) for j in item.journal
    )
    return WriteItem(item.match_id, seq, "reverse", item.match_type, item.lines, journal, "undo: wrong payer")


def m1() -> WriteItem:
    return match("M1", 11, [("B1", 121950)], [("L1", 123450)], fee_journal("M1"))


def m2() -> WriteItem:
    return match("M2", 12, [("B2", 80000)], [("L2", 80000)])


def m3() -> WriteItem:  # a KWD adjustment: three decimals
    return match("M3", 13, [("B3", 9999)], [("L3", 9999)], fee_journal("M3", 1234, "KWD"))


class Books:
    """A ledger database (PostgreSQL or DuckDB) with books.ledger and books.bank."""

    def __init__(self, kind: str, where: str):
        self.kind, self.where = kind, where

    def target(self, params: str = PARAMS) -> str:
        if self.kind == "duckdb":
            return f"duckdb://{self.where}?{params}"
        return self.where.replace("?", f"?{params}&", 1)

    def open(self, params: str = PARAMS):
        return open_target(self.target(params), workspace_dir=Path("."))

    def rows(self, sql: str) -> list[tuple]:
        if self.kind == "duckdb":
            with duckdb.connect(self.where) as connection:
                return connection.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.where, autocommit=True) as connection:
            return connection.execute(sql).fetchall()

    def execute(self, sql: str) -> None:
        if self.kind == "duckdb":
            with duckdb.connect(self.where) as connection:
                connection.execute(sql)
            return
        import psycopg

        with psycopg.connect(self.where, autocommit=True) as connection:
            connection.execute(sql)

    def utf8(self, column: str) -> str:
        return f"encode({column})" if self.kind == "duckdb" else f"convert_to({column}, 'UTF8')"

    def status(self, table: str = "books.ledger", status: str = "recon_status",
               match_id: str = "recon_match_id") -> dict[str, tuple]:
        return {row[0]: row[1:] for row in self.rows(f"SELECT id, {status}, {match_id} FROM {table} ORDER BY id")}

    def journal(self) -> list[tuple]:
        return self.rows(
            "SELECT write_key, line_no, date, account, debit, credit, currency, match_id, memo "
            "FROM books.journal ORDER BY write_key, line_no"
        )


def _create(books: Books) -> Books:
    ledger = ", ".join(f"('{i}', DATE '2026-01-05', {a}, 'HKD', '{c}')" for i, a, c in LEDGER)
    bank = ", ".join(f"('{i}', DATE '2026-01-05', {a}, 'HKD')" for i, a in BANK)
    for statement in (
        "CREATE SCHEMA books",
        "CREATE TABLE books.ledger (id VARCHAR PRIMARY KEY, date DATE, amount DECIMAL(18,2), currency VARCHAR, "
        "counterparty VARCHAR)",
        f"INSERT INTO books.ledger VALUES {ledger}",
        "CREATE TABLE books.bank (id VARCHAR PRIMARY KEY, date DATE, amount DECIMAL(18,2), currency VARCHAR)",
        f"INSERT INTO books.bank VALUES {bank}",
    ):
        books.execute(statement)
    return books


@pytest.fixture
def duckdb_books(tmp_path) -> Books:
    return _create(Books("duckdb", str(tmp_path / "ledger.duckdb")))


@pytest.fixture
def postgres_books(postgres_database) -> Books:
    return _create(Books("postgresql", postgres_database))


@pytest.fixture(params=["postgres", "duckdb"])
def books(request) -> Books:
    return request.getfixturevalue(f"{request.param}_books")


# --- the target URL ----------------------------------------------------------------------------


def test_target_defaults_and_libpq_parameters_pass_through():
    target = parse_target(
        "postgresql://clerk@db.internal:5432/books?table=ar.invoices&id=invoice_no&sslmode=require"
        "&journal=ar.recon_journal&application_name=recon&host=/var/run/postgresql"
    )
    assert (target.ledger.table, target.ledger.id, target.ledger.status, target.ledger.match_id) == (
        "ar.invoices", "invoice_no", "recon_status", "recon_match_id")
    assert (target.journal, target.writes, target.bank) == ("ar.recon_journal", "ar.recon_writes", None)
    assert target.connection == (
        "postgresql://clerk@db.internal:5432/books?sslmode=require&application_name=recon&host=%2Fvar%2Frun%2Fpostgresql"
    )
    duck = parse_target("duckdb:///srv/books.duckdb?table=ledger&id=id&status=state&match_id=recon_ref&journal=j"
                        "&bank_table=bank&bank_id=line_id&bank_amount_minor=cents")
    assert (duck.kind, duck.connection, duck.ledger.status, duck.ledger.match_id, duck.writes) == (
        "duckdb", "/srv/books.duckdb", "state", "recon_ref", "recon_writes")
    assert (duck.bank.table, duck.bank.id, duck.bank.status, duck.bank.amount_minor) == ("bank", "line_id", "state", "cents")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("postgresql://u@h/db?id=id", r"name the ledger table and its id column: \?table=SCHEMA.TABLE&id=COLUMN \(missing table=\)"),
        ("postgresql://u@h/db?table=t", r"\(missing id=\)"),
        ("postgresql://u@h/db?table=t&id=id&table=u", r"parameter table= is given twice"),
        ("postgresql://u@h/db?table=t&id=", r"parameter id= is empty"),
        ("postgresql://u@h/db?table=t.&id=id", r"bad table or column name"),
        ("postgresql://u@h/db?table=t&id=id&bank_table=b", r"give bank_table= and bank_id= together"),
        ("postgresql://u@h/db?table=t&id=id&amount=a&amount_minor=b", r"give one of amount= .* or amount_minor="),
        ("duckdb:///x.duckdb?table=t&id=id&sslmode=require", r"DuckDB takes no parameter sslmode="),
        ("duckdb://?table=t&id=id", r"name the database file"),
    ],
)
def test_bad_targets_are_one_clear_line(target, message):
    with pytest.raises(InputError, match=message) as raised:
        parse_target(target)
    assert "\n" not in str(raised.value)


def test_password_is_masked():
    assert masked("postgresql://clerk:s3cr3t-pw@db/books?table=t&password=s3cr3t-pw&id=id") == (
        "postgresql://clerk:***@db/books?table=t&password=***&id=id")
    with pytest.raises(InputError) as raised:
        parse_target("postgresql://clerk:s3cr3t-pw@db/books?table=t&password=s3cr3t-pw")
    assert "s3cr3t-pw" not in str(raised.value) and "clerk:***@db" in str(raised.value)


# --- writing -------------------------------------------------------------------------------------


def test_write_sets_status_and_match_id_and_appends_the_journal(books):
    adapter = books.open(PARAMS + "&bank_table=books.bank&bank_id=id&bank_amount=amount")
    assert adapter.capabilities == frozenset({"status", "journals", "reversal"})
    results = adapter.write([m1(), m2(), m3()])
    adapter.close()
    assert [(r.key, r.state) for r in results] == [("M1:11", "written"), ("M2:12", "written"), ("M3:13", "written")]
    # the status and match id columns were created and set, on both sides; L4/B4 untouched
    assert books.status() == {"L1": ("reconciled", "M1"), "L2": ("reconciled", "M2"), "L3": ("reconciled", "M3"),
                              "L4": (None, None)}
    assert books.status("books.bank") == {"B1": ("reconciled", "M1"), "B2": ("reconciled", "M2"),
                                          "B3": ("reconciled", "M3"), "B4": (None, None)}
    assert books.journal() == [
        ("M1:11", 1, DAY, "6100 Bank charges", Decimal("15.00"), Decimal("0"), "HKD", "M1", MEMO),
        ("M1:11", 2, DAY, "1100 Receivables", Decimal("0"), Decimal("15.00"), "HKD", "M1", MEMO),
        ("M3:13", 1, DAY, "6100 Bank charges", Decimal("1.234"), Decimal("0"), "KWD", "M3", MEMO),
        ("M3:13", 2, DAY, "1100 Receivables", Decimal("0"), Decimal("1.234"), "KWD", "M3", MEMO),
    ]
    # the memo is byte-exact in the database itself, not only after a round trip
    stored = books.rows(f"SELECT {books.utf8('memo')} FROM books.journal")
    assert {bytes(row[0]) for row in stored} == {MEMO.encode("utf-8")}
    assert books.rows("SELECT key, match_id, seq, action, ledger_rows, bank_rows, journal_lines, memo "
                      "FROM books.recon_writes ORDER BY key") == [
        ("M1:11", "M1", 11, "write", 1, 1, 2, "memo of M1"),
        ("M2:12", "M2", 12, "write", 1, 1, 0, "memo of M2"),
        ("M3:13", "M3", 13, "write", 1, 1, 2, "memo of M3"),
    ]


def test_second_write_writes_nothing(books):
    with books.open() as adapter:
        adapter.write([m1(), m2()])
    journal, writes = books.journal(), books.rows("SELECT key, written_at FROM books.recon_writes ORDER BY key")
    with books.open() as adapter:  # a new session, as the next `recon writeback` would be
        again = adapter.write([m1(), m2()])
        # the same match accepted again under a later decision: still written once
        later = adapter.write([match("M1", 40, [("B1", 121950)], [("L1", 123450)], fee_journal("M1"))])
    assert [r.state for r in again] == ["already", "already"]
    assert (later[0].state, later[0].reason) == ("already", "match written before as M1:11")
    assert books.journal() == journal
    assert books.rows("SELECT key, written_at FROM books.recon_writes ORDER BY key") == writes


def test_reversal_reopens_the_lines_and_mirrors_the_journal(books):
    with books.open() as adapter:
        adapter.write([m1(), m2()])
        undo = adapter.reverse([mirrored(m1(), 21)])
        again = adapter.reverse([mirrored(m1(), 21)])
        never = adapter.reverse([mirrored(m3(), 22)])
    assert [r.state for r in undo] == ["written"] and [r.state for r in again] == ["already"]
    assert (never[0].state, never[0].reason) == ("already", "match M3 was never written to this target: nothing to reverse")
    assert books.status()["L1"] == ("open", None) and books.status()["L2"] == ("reconciled", "M2")
    rows = [row for row in books.journal() if row[7] == "M1"]
    assert [(key, account, debit, credit) for key, _, _, account, debit, credit, *_ in rows] == [
        ("M1:11", "6100 Bank charges", Decimal("15.00"), Decimal("0")),
        ("M1:11", "1100 Receivables", Decimal("0"), Decimal("15.00")),
        ("M1:21", "6100 Bank charges", Decimal("0"), Decimal("15.00")),
        ("M1:21", "1100 Receivables", Decimal("15.00"), Decimal("0")),
    ]
    assert books.rows("SELECT key, action, memo FROM books.recon_writes WHERE match_id = 'M1' ORDER BY seq") == [
        ("M1:11", "write", "memo of M1"), ("M1:21", "reverse", "undo: wrong payer")]
    # reopened, the item can be matched and written again
    with books.open() as adapter:
        rematched = adapter.write([match("M5", 30, [], [("L1", 123450)])])
    assert rematched[0].state == "written" and books.status()["L1"] == ("reconciled", "M5")


def test_changed_rows_are_conflicts_and_the_rest_of_the_batch_is_written(books):
    books.execute("UPDATE books.ledger SET amount = 1300.00 WHERE id = 'L1'")  # re-priced by a clerk
    books.execute("ALTER TABLE books.ledger ADD COLUMN recon_status VARCHAR")
    books.execute("ALTER TABLE books.ledger ADD COLUMN recon_match_id VARCHAR")
    books.execute("UPDATE books.ledger SET recon_status = 'reconciled', recon_match_id = 'X9' WHERE id = 'L3'")
    books.execute("UPDATE books.ledger SET recon_status = 'reconciled' WHERE id = 'L4'")
    items = [m1(), m2(), m3(), match("M4", 14, [], [("L4", 5000)]), match("M6", 16, [], [("L404", 100)]),
             match("M7", 17, [], [("L2", 80000)])]  # M7 claims L2, already claimed by M2 in this batch
    with books.open() as adapter:
        results = adapter.write(items)
    assert [(r.key, r.state, r.reason) for r in results] == [
        ("M1:11", "conflict", "ledger L1: amount changed in books.ledger since recon read it: 1300.00 there, "
                              "1234.50 matched; left as it is"),
        ("M2:12", "written", ""),
        ("M3:13", "conflict", "ledger L3: carries match X9 in books.ledger, not M3; left as it is"),
        ("M4:14", "conflict", "ledger L4: already reconciled in books.ledger (no match id); left as it is"),
        ("M6:16", "conflict", "ledger L404: not found in books.ledger"),
        ("M7:17", "conflict", "ledger L2: also in match M2 of this batch; not written twice"),
    ]
    assert books.status() == {"L1": (None, None), "L2": ("reconciled", "M2"), "L3": ("reconciled", "X9"),
                              "L4": ("reconciled", None)}
    assert books.journal() == []  # M1's and M3's journals were not posted
    assert books.rows("SELECT key FROM books.recon_writes") == [("M2:12",)]
    # fixed in the books, the conflict goes through on the next write-back
    books.execute("UPDATE books.ledger SET amount = 1234.50 WHERE id = 'L1'")
    with books.open() as adapter:
        assert [r.state for r in adapter.write([m1(), m2()])] == ["written", "already"]


def test_a_row_changed_between_the_check_and_the_update_is_a_conflict(postgres_books, monkeypatch):
    """Another session re-prices L1 after the batch checked it and before it updates it: the
    update misses the row, the batch starts again from the check, and L1 is a conflict."""
    from engine.adapters.sql import SqlLedgerAdapter

    with postgres_books.open() as adapter:
        adapter.write([m2()])  # the status columns exist: the batch below locks no table
    check = SqlLedgerAdapter._conflicts
    checks = []

    def check_then_a_clerk_reprices(self, action):
        found = check(self, action)
        if not checks:
            postgres_books.execute("UPDATE books.ledger SET amount = 1300.00 WHERE id = 'L1'")
        checks.append(found)
        return found

    monkeypatch.setattr(SqlLedgerAdapter, "_conflicts", check_then_a_clerk_reprices)
    with postgres_books.open() as adapter:
        results = adapter.write([m1(), m3()])
    assert len(checks) == 2
    assert [(r.key, r.state) for r in results] == [("M1:11", "conflict"), ("M3:13", "written")]
    assert "1300.00 there, 1234.50 matched" in results[0].reason
    assert postgres_books.status()["L1"] == (None, None)
    assert [row[0] for row in postgres_books.journal()] == ["M3:13", "M3:13"]


def test_integer_ids_and_minor_unit_amounts(tmp_path):
    database = tmp_path / "books.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("CREATE TABLE invoices (no INTEGER, cents BIGINT, state VARCHAR)")
        connection.execute("INSERT INTO invoices VALUES (101, 123450, 'open'), (102, 500, 'open')")
    with open_target(f"duckdb://{database}?table=invoices&id=no&amount_minor=cents&status=state",
                     workspace_dir=tmp_path) as adapter:
        results = adapter.write([match("M1", 1, [], [("101", 123450)]), match("M2", 2, [], [("102", 600)])])
    assert [(r.state, r.reason) for r in results] == [
        ("written", ""),
        ("conflict", "ledger 102: amount changed in invoices since recon read it: 5.00 there, 6.00 matched; left as it is"),
    ]
    with duckdb.connect(str(database)) as connection:
        assert connection.execute("SELECT no, state, recon_match_id FROM invoices ORDER BY no").fetchall() == [
            (101, "reconciled", "M1"), (102, "open", None)]
        assert connection.execute("SELECT count(*) FROM recon_journal").fetchone() == (0,)


def test_a_batch_the_database_refuses_leaves_nothing_written(books):
    # the books' own rule, met by the journal insert, after the ledger rows were already updated
    books.execute(
        "CREATE TABLE books.journal (date DATE, account VARCHAR CHECK (account <> '9999 Suspense'), debit DECIMAL(18,2), "
        "credit DECIMAL(18,2), currency VARCHAR, match_id VARCHAR, memo VARCHAR)"
    )
    suspense = (JournalLine(DAY, "9999 Suspense", 100, 0, "HKD", "M4", "?"),
                JournalLine(DAY, "1100 Receivables", 0, 100, "HKD", "M4", "?"))
    bad = match("M4", 14, [], [("L4", 5000)], suspense)
    with books.open() as adapter:
        with pytest.raises(TerminalAdapterError, match=r"the database refused the batch, nothing of it was written: .*") as raised:
            adapter.write([m1(), m2(), bad])
        assert "\n" not in str(raised.value)
        assert books.rows("SELECT count(*) FROM books.journal") == [(0,)]
        # the columns recon added inside the batch went with it: the books are as they were
        assert "recon_status" not in _columns(books, "books.ledger")
        assert "books.recon_writes" not in _tables(books)
        # the same adapter goes on once the offending item is out
        assert [r.state for r in adapter.write([m1(), m2()])] == ["written", "written"]
    assert [row[0] for row in books.journal()] == ["M1:11", "M1:11"]


def _columns(books: Books, table: str) -> list[str]:
    schema, name = table.split(".")
    return [row[0] for row in books.rows(
        f"SELECT column_name FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name = '{name}'")]


def _tables(books: Books) -> set[str]:
    return {f"{schema}.{name}" for schema, name in books.rows(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = 'books'")}


# --- errors when opening -----------------------------------------------------------------------


def test_open_errors_name_the_problem(books):
    with pytest.raises(TerminalAdapterError, match=r"there is no table books\.nope \(table=\)$"):
        books.open("table=books.nope&id=id")
    with pytest.raises(TerminalAdapterError, match=r"table books\.ledger has no column 'ID' \(id=\); its columns: id, date, amount"):
        books.open("table=books.ledger&id=ID")
    with pytest.raises(TerminalAdapterError, match=r"no column 'total' \(bank_amount=\)"):
        books.open("table=books.ledger&id=id&bank_table=books.bank&bank_id=id&bank_amount=total")
    books.execute("CREATE TABLE books.floats (id VARCHAR, amount DOUBLE PRECISION)")
    with pytest.raises(TerminalAdapterError, match=r"books\.floats\.amount is double.*a float cannot hold money exactly"):
        books.open("table=books.floats&id=id&amount=amount")


def test_duckdb_file_must_exist(tmp_path):
    with pytest.raises(TerminalAdapterError, match=r"no DuckDB database file at .*missing\.duckdb"):
        open_target(f"duckdb://{tmp_path}/missing.duckdb?table=t&id=id", workspace_dir=tmp_path)
    assert not (tmp_path / "missing.duckdb").exists()


def test_duckdb_file_in_use_by_another_process_is_transient(duckdb_books):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
         "time.sleep(60)", duckdb_books.where], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(TransientAdapterError, match=r"cannot open the database file: .*lock"):
            duckdb_books.open()
    finally:
        holder.kill()
        holder.wait()


def test_postgres_errors_mask_the_password(postgres_books):
    pytest.importorskip("psycopg")
    secret = "s3cr3t-pw"
    unreachable = f"postgresql://clerk:{secret}@127.0.0.1:1/books?table=t&id=id&connect_timeout=3"
    with pytest.raises(TransientAdapterError, match=r"^postgresql://clerk:\*\*\*@127\.0\.0\.1:1/books\?.*cannot connect: ") as raised:
        open_target(unreachable, workspace_dir=Path("."))
    assert secret not in str(raised.value)
    # a password in a parameter, on the real server: the libpq message and ours both masked
    target = postgres_books.target(f"table=books.nope&id=id&password={secret}")
    with pytest.raises(TerminalAdapterError, match=r"password=\*\*\*.*there is no table books\.nope") as raised:
        open_target(target, workspace_dir=Path("."))
    assert secret not in str(raised.value)
    with pytest.raises(TerminalAdapterError, match=r"bad connection parameters: invalid URI query parameter: \"bogus\""):
        open_target(postgres_books.target(f"{PARAMS}&bogus=1&password={secret}"), workspace_dir=Path("."))


def test_missing_psycopg_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(TerminalAdapterError, match=r"writing to PostgreSQL needs psycopg 3: pip install 'recon\[postgres\]'"):
        open_target("postgresql://clerk@db/books?table=t&id=id", workspace_dir=Path("."))


# --- kill -9 in the middle of a large batch -------------------------------------------------------


def bulk_items(start: int, stop: int) -> list[WriteItem]:
    """``M{i}`` pays ``L{i}`` (HKD 100.00); every tenth with a bank charge journal."""
    return [
        match(f"M{i}", i + 1, [], [(f"L{i}", 10000)], fee_journal(f"M{i}", 150) if i % 10 == 0 else ())
        for i in range(start, stop)
    ]


KILLED_WRITER = """
import sys
from tests.engine.adapters.test_sql import bulk_items
from engine.adapters import open_target
adapter = open_target(sys.argv[1], workspace_dir=".")
adapter.write(bulk_items(0, 2000))
print("first batch written", flush=True)
adapter.write(bulk_items(2000, int(sys.argv[2])))
print("second batch written", flush=True)
"""


def test_kill_9_mid_batch_then_rerun_loses_and_doubles_nothing(postgres_database):
    import psycopg

    n = 12_000
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute("CREATE TABLE ledger (id text PRIMARY KEY, amount numeric(18,2))")
        connection.execute(f"INSERT INTO ledger SELECT 'L' || i, 100.00 FROM generate_series(0, {n - 1}) i")
    target = postgres_database.replace("?", "?table=ledger&id=id&amount=amount&application_name=recon-killed&", 1)
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, target, str(n)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "first batch written"
        with psycopg.connect(postgres_database, autocommit=True) as watcher:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the second batch's transaction is open
                open_transactions = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'recon-killed' "
                    "AND xact_start IS NOT NULL").fetchone()[0]
                if open_transactions:
                    break
                time.sleep(0.01)
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(timeout=30)
            while watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'recon-killed'"
                                  ).fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.05)
            # the killed batch left nothing: only the first batch is in the books
            assert watcher.execute("SELECT count(*) FROM recon_writes").fetchone()[0] == 2000
            assert watcher.execute("SELECT count(*) FROM ledger WHERE recon_status = 'reconciled'").fetchone()[0] == 2000
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == -signal.SIGKILL

    with open_target(target, workspace_dir=Path(".")) as adapter:  # the rerun: everything again
        results = adapter.write(bulk_items(0, n))
    states = [r.state for r in results]
    assert (states.count("already"), states.count("written")) == (2000, n - 2000)
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        assert connection.execute(
            "SELECT count(*), count(DISTINCT recon_match_id) FROM ledger WHERE recon_status = 'reconciled' "
            "AND recon_match_id = 'M' || substr(id, 2)").fetchone() == (n, n)
        assert connection.execute("SELECT count(*), count(DISTINCT (write_key, line_no)), sum(debit) FROM recon_journal"
                                  ).fetchone() == (n // 10 * 2, n // 10 * 2, Decimal("1.50") * (n // 10))
