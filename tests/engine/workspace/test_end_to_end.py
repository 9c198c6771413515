"""The bundled sample month from ingest to the books, as the README's workspace walk-through runs
it: ingest -> match -> accept all auto -> write back to files and to PostgreSQL -> write back
again (nothing new) -> unmatch one written-back match (a reversal in both) -> a late ledger file
ingested and matched incrementally without touching the accepted matches. And ``kill -9`` in the
middle of ``recon writeback`` to files: the rerun completes, nothing lost or doubled."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine import cli
from engine.workspace.crash import CRASH_ENV
from engine.workspace.decisions import current_proposals
from engine.workspace.store import Workspace

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "benchmarks" / "sample"
#: invoices booked late: their receipts (B000000098, B000000099, B000000103) stay open until then
LATE = {"INV-2026-00002": "B000000098", "INV-2026-00301": "B000000099", "INV-2026-00330": "B000000103"}


def recon(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0 or "recon" in out + err
    return code, out


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def month(tmp_path_factory) -> Path:
    """The sample month without the late invoices, ingested, matched and every auto proposal
    accepted (made once; tests copy it)."""
    from engine import api

    folder = tmp_path_factory.mktemp("month")
    ledger = pl.read_csv(SAMPLE / "ledger.csv", infer_schema=False)
    ledger.filter(~pl.col("id").is_in(list(LATE))).write_csv(folder / "ledger.csv")
    ledger.filter(pl.col("id").is_in(list(LATE))).write_csv(folder / "late_ledger.csv")
    ws = folder / "books.duckdb"
    api.ingest(ws, bank=SAMPLE / "bank.csv", ledger=folder / "ledger.csv", processor=SAMPLE / "stripe_payouts.csv",
               fx=SAMPLE / "fx.csv")
    api.match_workspace(ws)
    api.accept(ws, all_auto=True, by="陳大文")
    return ws


@pytest.fixture
def books(tmp_path, month) -> Path:
    ws = tmp_path / "books.duckdb"
    shutil.copyfile(month, ws)
    for name in ("ledger.csv", "late_ledger.csv"):
        shutil.copyfile(month.parent / name, tmp_path / name)
    return ws


def _postgres_books(url: str) -> None:
    """The company's ledger in PostgreSQL: every ledger item and bank line of the sample month."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE TABLE ledger (id text PRIMARY KEY, date date, amount numeric(18, 2), currency text, "
                    "counterparty text)")
        con.execute("CREATE TABLE bank (id text PRIMARY KEY, date date, amount numeric(18, 2), currency text)")
        for table, columns, path in (("ledger", ("id", "date", "amount", "currency", "counterparty"), "ledger.csv"),
                                     ("bank", ("id", "date", "amount", "currency"), "bank.csv")):
            frame = pl.read_csv(SAMPLE / path, infer_schema=False).unique("id", keep="first", maintain_order=True)
            with con.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for record in frame.select(columns).iter_rows():
                    copy.write_row(record)


def _pg(url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        return con.execute(sql).fetchall()


def test_sample_month_from_ingest_to_the_books_and_back(books, tmp_path, capsys, postgres_database):
    files = tmp_path / "writeback"
    _postgres_books(postgres_database)
    pg = postgres_database.replace("?", "?table=ledger&id=id&amount=amount&bank_table=bank&bank_id=id"
                                        "&bank_amount=amount&journal=recon_journal&", 1)

    def status() -> dict:
        code, out = recon(capsys, "status", "--workspace", books, "--json")
        assert code == 0
        import json

        return json.loads(out)

    cli_json = status()
    accepted = cli_json["accepted"]
    assert accepted > 1700 and cli_json["written"] == 0
    assert set(cli_json) >= {"proposed", "accepted", "rejected", "written", "reversed", "failed"}

    # write back to files and to PostgreSQL
    code, out = recon(capsys, "writeback", "--workspace", books, "--to", f"dir:{files}")
    assert code == 0 and f"wrote {accepted} of {accepted} pending item(s)" in out
    code, out = recon(capsys, "writeback", "--workspace", books, "--to", pg)
    assert code == 0 and f"wrote {accepted} of {accepted} pending item(s)" in out
    states = status()
    assert (states["accepted"], states["written"]) == (0, accepted)

    status_rows = rows(files / "status.csv")
    journal = rows(files / "journal.csv")
    ledger_reconciled = {r["line_id"] for r in status_rows if r["side"] == "ledger"}
    assert {r["state"] for r in status_rows} == {"reconciled"}
    assert {i for (i,) in _pg(postgres_database, "SELECT id FROM ledger WHERE recon_status = 'reconciled'")} \
        == ledger_reconciled
    debits = sum(Decimal(r["debit"]) for r in journal)
    assert debits == sum(Decimal(r["credit"]) for r in journal) > 0
    assert _pg(postgres_database, "SELECT sum(debit), sum(credit), count(*) FROM recon_journal") == [
        (debits, debits, len(journal))]
    # payouts' processor fees leave the processor clearing account
    fees = [r for r in journal if r["memo"].startswith("processor_fee")]
    assert fees and {r["account"] for r in fees} == {"6810", "1190"}

    # again: nothing new for either target
    for target in (f"dir:{files}", pg):
        code, out = recon(capsys, "writeback", "--workspace", books, "--to", target)
        assert code == 0 and "wrote 0 items" in out and "nothing pending" in out
    assert len(rows(files / "journal.csv")) == len(journal)

    # undo one written-back match that had a bank charge: a reversal in both
    charged = next(r for r in journal if r["account"] == "6800" and r["memo"].startswith("bank_charge"))
    match_id = charged["match_id"]
    code, _ = recon(capsys, "unmatch", match_id, "--workspace", books, "--reason", "wrong customer", "--by", "陳大文")
    assert code == 0
    for target in (f"dir:{files}", pg):
        code, out = recon(capsys, "writeback", "--workspace", books, "--to", target)
        assert code == 0 and "wrote 1 of 1 pending item(s)" in out and "reverse  written         1" in out
    undone = [r for r in rows(files / "journal.csv") if r["match_id"] == match_id]
    assert len(undone) == 4
    assert [(r["account"], r["debit"], r["credit"]) for r in undone[2:]] == [
        (r["account"], r["credit"], r["debit"]) for r in undone[:2]]
    assert {r["state"] for r in rows(files / "status.csv") if r["match_id"] == match_id} == {"open"}
    pg_journal = _pg(postgres_database, f"SELECT account, debit, credit FROM recon_journal WHERE match_id = '{match_id}' "
                                        "ORDER BY write_key, line_no")
    assert len(pg_journal) == 4 and sum(d for _a, d, _c in pg_journal) == sum(c for _a, _d, c in pg_journal)
    assert _pg(postgres_database, f"SELECT DISTINCT recon_status FROM ledger WHERE id IN "
                                  f"(SELECT id FROM ledger WHERE id = ANY(string_to_array("
                                  f"'{';'.join(r['line_id'] for r in rows(files / 'status.csv') if r['match_id'] == match_id and r['side'] == 'ledger')}', ';')))"
               ) == [("open",)]
    states = status()
    assert (states["written"], states["reversed"]) == (accepted - 1, 1)

    # a late ledger file: matched incrementally, the written matches left alone
    with Workspace(books) as ws:
        before = current_proposals(ws.con).filter(pl.col("state") == "written").select("match_id", "run_id", "state")
    code, _ = recon(capsys, "ingest", "--workspace", books, "--ledger", tmp_path / "late_ledger.csv")
    assert code == 0
    code, _ = recon(capsys, "match", "--workspace", books)
    assert code == 0
    with Workspace(books) as ws:
        after = current_proposals(ws.con)
    assert after.filter(pl.col("state") == "written").select("match_id", "run_id", "state").sort("match_id").equals(
        before.sort("match_id"))
    late = after.filter(pl.col("ledger_ids").is_in(list(LATE)))
    assert sorted(zip(late["ledger_ids"], late["bank_ids"], late["state"], strict=True)) == sorted(
        (item, bank, "proposed") for item, bank in LATE.items())
    code, _ = recon(capsys, "accept", *late["match_id"].to_list(), "--workspace", books)
    assert code == 0
    code, out = recon(capsys, "writeback", "--workspace", books, "--to", f"dir:{files}")
    assert code == 0 and "wrote 3 of 3 pending item(s)" in out
    reconciled = {r["line_id"]: r["state"] for r in rows(files / "status.csv")}
    assert all(reconciled[item] == reconciled[bank] == "reconciled" for item, bank in LATE.items())


def _writeback(ws: Path, folder: Path, crash_at: str | None = None, batch_size: int = 200) -> subprocess.Popen:
    env = {**os.environ, "RECON_LOCK_WAIT": "30"}
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "writeback", "--workspace", str(ws), "--to", f"dir:{folder}",
         "--batch-size", str(batch_size), "--progress", "log"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_9_in_the_middle_of_writeback_loses_and_doubles_nothing(books, tmp_path):
    from engine import api

    reference = tmp_path / "reference"
    untouched = tmp_path / "untouched.duckdb"
    shutil.copyfile(books, untouched)
    assert api.writeback(untouched, f"dir:{reference}", batch_size=200).ok
    expected = {name: (reference / name).read_bytes() for name in ("status.csv", "journal.csv")}

    target = tmp_path / "killed"
    # 1. the folder wrote batch 2 and the workspace never heard of it
    # 2. the rerun finds the folder's files behind its keys and dies half-way through replacing them
    for crash_at in ("writeback:after-send:2", "files:between-outputs"):
        writer = _writeback(books, target, crash_at)
        assert writer.wait(timeout=120) == -signal.SIGKILL, writer.stderr.read()
    # 3. killed from outside while batch 4 is being written
    writer = _writeback(books, target)
    for line in writer.stderr:
        if ": batch 3, " in line:
            writer.send_signal(signal.SIGKILL)
            break
    assert writer.wait(timeout=120) == -signal.SIGKILL
    final = _writeback(books, target)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert "write    written" in out
    for name, content in expected.items():
        assert (target / name).read_bytes() == content, name
    report = api.writeback(books, f"dir:{target}")
    assert report.pending == 0 and report.ok
    with Workspace(books) as ws:
        written = ws.con.execute("SELECT count(DISTINCT match_id) FROM decisions WHERE action = 'written'").fetchall()
        accepted = ws.con.execute("SELECT count(*) FROM decisions WHERE action = 'accept'").fetchall()
        # the batch the first run's target wrote unrecorded was sent again and answered 'already'
        resent = ws.con.execute("SELECT count(*) FROM writes WHERE state = 'already'").fetchall()
    assert written == accepted
    assert resent == [(200,)]
