"""Write-back benchmark: accepted matches written to a SQL ledger by :mod:`engine.adapters.sql`.

Stage: benchmarks (issue 12: "write-back of 100k accepted matches to PostgreSQL in under 60 s").
The ledger is generated in the database itself: a ledger table of N items (text ids, NUMERIC
amounts in HKD) and a bank table of N lines; N :class:`~engine.adapters.base.WriteItem` s are
built in Python, one bank line paying one ledger item, every tenth with a two-line bank-charge
journal whose memo names the payer in Chinese. Then, each timed on its own:

1. ``open``: connect and check the tables;
2. ``write``: all N items in calls of ``--batch`` items (default: one call), the status and
   match id columns created, the amounts checked (``amount=``), the journal and writes tables
   created;
3. ``write again``: the same N items, all ``already``, nothing written;
4. ``reverse 1%``: an undo of every hundredth match.

The counts in the tables are checked after each step (N reconciled rows on each side, the
journal lines exactly once). PostgreSQL is a throwaway server started by
:func:`tests.pg_server.throwaway_postgres` (``fsync=off``, as the tests run it) unless ``--url``
names one; ``--kind duckdb`` writes to a DuckDB file instead.

Examples
--------
``python -m benchmarks.writeback --n 100000``
``python -m benchmarks.writeback --n 100000 --kind duckdb``
``python -m benchmarks.writeback --n 100000 --batch 0 500 --record`` (all in one call, then the
workspace's default batches of 500)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.run import RESULTS, append_results, machine_info  # noqa: E402
from engine.adapters import open_target  # noqa: E402
from engine.adapters.base import JournalLine, MatchLine, WriteItem  # noqa: E402

_DAY = dt.date(2026, 3, 1)
_PAYERS = ("陳大文", "金港貿易有限公司", "Müller GmbH", "Société Générale")


def make_items(n: int, *, action: str = "write", seq_offset: int = 0, every: int = 1) -> list[WriteItem]:
    """``n`` one-to-one matches (``M{i}``: bank ``B{i}`` pays ledger ``L{i}``), every tenth with
    a bank charge journal; for ``action="reverse"`` every ``every``-th match, journal mirrored."""
    items = []
    for i in range(0, n, every):
        match_id = f"M{i}"
        amount = 10_000 + i % 50_000
        lines = (
            MatchLine("bank", f"B{i}", _DAY, amount - (1500 if i % 10 == 0 else 0), "HKD"),
            MatchLine("ledger", f"L{i}", _DAY, amount, "HKD", _PAYERS[i % 4]),
        )
        journal: tuple[JournalLine, ...] = ()
        if i % 10 == 0:
            debit, credit = (1500, 0) if action == "write" else (0, 1500)
            journal = (
                JournalLine(_DAY, "6100 Bank charges", debit, credit, "HKD", match_id, f"bank charge {_PAYERS[i % 4]}"),
                JournalLine(_DAY, "1100 Receivables", credit, debit, "HKD", match_id, f"bank charge {_PAYERS[i % 4]}"),
            )
        items.append(WriteItem(match_id, seq_offset + i + 1, action, "one_to_one", lines, journal, "bench"))
    return items


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.pg_server import throwaway_postgres

    with throwaway_postgres(("shared_buffers=256MB", "max_wal_size=4GB")) as started:
        yield started


def _setup_postgres(url: str, n: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS bench CASCADE")
        connection.execute("CREATE SCHEMA bench")
        for table, prefix in (("ledger", "L"), ("bank", "B")):
            connection.execute(
                f"CREATE TABLE bench.{table} (id text PRIMARY KEY, date date NOT NULL, amount numeric(18,2) NOT NULL, "
                "currency text NOT NULL, counterparty text)"
            )
            charge = "- CASE WHEN i % 10 = 0 THEN 15 ELSE 0 END" if table == "bank" else ""
            connection.execute(
                f"INSERT INTO bench.{table} SELECT '{prefix}' || i, DATE '2026-03-01', "
                f"(10000 + i % 50000) / 100.0 {charge}, 'HKD', NULL FROM generate_series(0, {n - 1}) i"
            )
            connection.execute(f"ANALYZE bench.{table}")


def _setup_duckdb(path: Path, n: int) -> None:
    import duckdb

    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE SCHEMA bench")
        for table, prefix in (("ledger", "L"), ("bank", "B")):
            charge = "- CASE WHEN i % 10 = 0 THEN 15 ELSE 0 END" if table == "bank" else ""
            connection.execute(
                f"CREATE TABLE bench.{table} AS SELECT '{prefix}' || i AS id, DATE '2026-03-01' AS date, "
                f"CAST((10000 + i % 50000) / 100.0 {charge} AS DECIMAL(18,2)) AS amount, 'HKD' AS currency, "
                f"CAST(NULL AS VARCHAR) AS counterparty FROM range({n}) t(i)"
            )


def _count(kind: str, database: str, sql: str) -> int:
    """One number from the database (a DuckDB file's path or the server's URL)."""
    if kind == "duckdb":
        import duckdb

        with duckdb.connect(database, read_only=True) as connection:
            return connection.execute(sql).fetchone()[0]
    import psycopg

    with psycopg.connect(database) as connection:
        return connection.execute(sql).fetchone()[0]


def run(n: int, kind: str, url: str | None, batch: int | None) -> tuple[list[tuple[str, float, str]], str]:
    """Run the four steps; (step, seconds, what it did) rows and the target URL (masked)."""
    parameters = ("table=bench.ledger&id=id&amount=amount&bank_table=bench.bank&bank_id=id&bank_amount=amount"
                  "&journal=bench.journal")
    with contextlib.ExitStack() as stack:
        if kind == "duckdb":
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="recon-wb-")))
            database = folder / "books.duckdb"
            _setup_duckdb(database, n)
            target = f"duckdb://{database}?{parameters}"
            where = str(database)
        else:
            server = stack.enter_context(_postgres(url))
            _setup_postgres(server, n)
            where = server
            target = server.replace("?", f"?{parameters}&", 1) if "?" in server else f"{server}?{parameters}"
        items = make_items(n)
        reversals = make_items(n, action="reverse", seq_offset=n, every=100)
        size = batch or n
        rows: list[tuple[str, float, str]] = []

        started = time.perf_counter()
        adapter = open_target(target, tempfile.gettempdir())
        rows.append(("open", time.perf_counter() - started, "connect, check the tables"))
        name = adapter.name
        try:
            for step, batch_items, method in (("write", items, adapter.write), ("write again", items, adapter.write),
                                              ("reverse 1%", reversals, adapter.reverse)):
                started = time.perf_counter()
                states: dict[str, int] = {}
                for start in range(0, len(batch_items), size):
                    for result in method(batch_items[start:start + size]):
                        states[result.state] = states.get(result.state, 0) + 1
                seconds = time.perf_counter() - started
                shown = ", ".join(f"{count:,} {state}" for state, count in sorted(states.items()))
                rows.append((step, seconds, f"{len(batch_items):,} items: {shown}"))
        finally:
            adapter.close()
        reconciled = _count(kind, where, "SELECT count(*) FROM bench.ledger WHERE recon_status = 'reconciled'")
        journal = _count(kind, where, "SELECT count(*) FROM bench.journal")
        expected_journal = sum(len(item.journal) for item in items) + sum(len(item.journal) for item in reversals)
        if reconciled != n - len(reversals) or journal != expected_journal:
            raise SystemExit(f"wrong counts: {reconciled} reconciled (expected {n - len(reversals)}), "
                             f"{journal} journal lines (expected {expected_journal})")
        rows.append(("check", 0.0, f"{reconciled:,} ledger rows reconciled, {journal:,} journal lines (each once)"))
    return rows, name


def section(runs: list[tuple[int | None, list[tuple[str, float, str]]]], argv: list[str], n: int, kind: str,
            target: str) -> str:
    """A RESULTS.md section: machine, command, one row per batch size and step."""
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {when}: write-back to {'DuckDB' if kind == 'duckdb' else 'PostgreSQL'}, {n:,} accepted matches",
        "",
        *machine_info(),
        "",
        f"Command: `python -m benchmarks.writeback {' '.join(argv)}`",
        f"Target: `{target}` (bank lines and ledger items marked, amounts checked, a fresh ledger for "
        "each batch size); every tenth match has a two-line journal.",
        "",
        "| items a write() | step | seconds | what |",
        "|---|---|---:|---|",
        *(f"| {'all' if not batch or batch >= n else f'{batch:,}'} | {step} | {seconds:.2f} | {what} |"
          for batch, rows in runs for step, seconds, what in rows),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="accepted matches (and ledger rows)")
    parser.add_argument("--kind", choices=("postgresql", "duckdb"), default="postgresql")
    parser.add_argument("--url", help="an existing PostgreSQL server's URL (its schema bench is replaced)")
    parser.add_argument("--batch", type=int, nargs="+", default=[0],
                        help="items per write() call, one run each (0: all in one call; default)")
    parser.add_argument("--record", action="store_true", help=f"append the section to {RESULTS}")
    options = parser.parse_args(argv)
    runs, target = [], ""
    for batch in options.batch:
        rows, target = run(options.n, options.kind, options.url, batch or None)
        runs.append((batch, rows))
    text = section(runs, argv, options.n, options.kind, target)
    print(text)
    if options.record:
        append_results(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
