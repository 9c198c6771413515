"""The bundled sample month written back to the fake Xero through the orchestration
(``recon writeback --workspace W --to xero+http://127.0.0.1:PORT``): every payment and manual
journal arrives exactly once, a second write-back writes 0, an undo of a written match sends
its reversal once, and ``kill -9`` in the middle of ``recon writeback`` (a named crash point
after a batch reached Xero, then an outside SIGKILL while Xero holds an answer to work it has
done) loses and doubles nothing once the rerun completes; ``recon status --json`` agrees.

The fake and the client share a scaled clock (a platform minute lasts 60-120 ms), so Xero's
60 calls a minute and ``Retry-After`` cost little wall time.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine import api, cli
from engine.adapters.outbox import OUTBOX_FILE
from engine.workspace.crash import CRASH_ENV
from tests.engine.adapters.fake_xero import FakeXero

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "benchmarks" / "sample"
_NARRATION = re.compile(r"^(?:reversal of )?recon (M-[0-9a-f]+)(?::|$)")


@pytest.fixture(scope="module")
def month(tmp_path_factory) -> tuple[Path, int]:
    """The sample month ingested, matched and every auto proposal accepted (made once; tests
    copy it), with the number of accepted matches."""
    ws = tmp_path_factory.mktemp("month") / "books.duckdb"
    api.ingest(ws, bank=SAMPLE / "bank.csv", ledger=SAMPLE / "ledger.csv",
               processor=SAMPLE / "stripe_payouts.csv", fx=SAMPLE / "fx.csv")
    api.match_workspace(ws)
    report = api.accept(ws, all_auto=True, by="陳大文")
    accepted = api.status(ws)["states"]["accepted"]
    assert accepted > 1700, report
    return ws, accepted


@pytest.fixture
def books(tmp_path, month) -> Path:
    ws = tmp_path / "books.duckdb"
    shutil.copyfile(month[0], ws)
    return ws


@pytest.fixture
def xero_env(monkeypatch):
    """Point ``recon`` in this process at a fake (its RECON_XERO_* variables, nothing else)."""
    for name in list(os.environ):
        if name.startswith("RECON_XERO_") or name == CRASH_ENV:
            monkeypatch.delenv(name)

    def apply(fake: FakeXero, **overrides: str) -> None:
        for name, value in fake.environment(**overrides).items():
            monkeypatch.setenv(name, value)

    return apply


def recon(capsys, *args) -> tuple[int, str]:
    """``recon ARGS`` in-process: exit status and stdout."""
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out + err


def _document(payment: dict) -> str:
    return next(iter((payment["Invoice"] or payment["CreditNote"]).values()))


def books_record(fake: FakeXero) -> tuple[Counter, Counter, Counter]:
    """What Xero holds, without the ids it made up: live payments (document, amount, date,
    reference, paid in a batch), live batch payments (reference, date, payments) and manual
    journals (narration, lines)."""
    payments = Counter((_document(p), p["Amount"], p["Date"], p["Reference"], p["BatchPaymentID"] is not None)
                       for p in fake.live_payments())
    batches = Counter((b["Reference"], b["Date"], len(b["PaymentIDs"]))
                      for b in fake.batch_payments.values() if b["Status"] == "AUTHORISED")
    journals = Counter((j["Narration"], tuple((line["AccountCode"], line["LineAmount"]) for line in j["JournalLines"]))
                       for j in fake.journals.values())
    return payments, batches, journals


def _written_matches(ws: Path) -> pl.DataFrame:
    return api.review(ws, state=None).filter(pl.col("state") == "written")


def _files_journal(folder: Path) -> dict[str, Counter]:
    """The files target's journal per match: account -> debit - credit."""
    by_match: dict[str, Counter] = {}
    with open(folder / "journal.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_match.setdefault(row["match_id"], Counter())[row["account"]] += Decimal(row["debit"]) - Decimal(row["credit"])
    return by_match


def assert_each_match_on_xero_once(fake: FakeXero, ws: Path, files: Path) -> None:
    """Every written match's documents paid on Xero, none beyond its amount nor outside the
    written matches, and its adjustments one manual journal equal to the files target's."""
    written = _written_matches(ws)
    ledger = pl.read_csv(SAMPLE / "ledger.csv", infer_schema=False).unique("id", keep="first", maintain_order=True)
    due = {i: abs(Decimal(a)) for i, a in zip(ledger["id"], ledger["amount"], strict=True)}
    documents = {i for ids in written["ledger_ids"] for i in ids.split(";")}
    paid: Counter = Counter()
    for payment in fake.live_payments():
        paid[_document(payment)] += payment["Amount"]
    assert set(paid) == documents
    assert all(paid[d] <= due[d] for d in documents), {d: (paid[d], due[d]) for d in documents if paid[d] > due[d]}
    # a document short of its amount is an instalment (two bank lines, one invoice) left open
    short = {d for d in documents if paid[d] < due[d]}
    instalments = {ids for ids, kind in zip(written["ledger_ids"], written["match_type"], strict=True)
                   if kind == "many_to_one"}
    assert short <= instalments

    journals = Counter(_NARRATION.match(j["Narration"]).group(1) for j in fake.journals.values())
    expected = _files_journal(files)
    assert journals == Counter(set(expected))  # one manual journal a match with adjustments
    for journal in fake.journals.values():
        lines: Counter = Counter()
        for line in journal["JournalLines"]:
            lines[line["AccountCode"]] += line["LineAmount"]
        assert lines == expected[_NARRATION.match(journal["Narration"]).group(1)]


def test_the_sample_month_reaches_xero_once_writes_0_again_and_an_undo_is_reversed_once(
        books, month, tmp_path, capsys, xero_env):
    accepted = month[1]
    files = tmp_path / "files"
    with FakeXero(time_scale=0.001, token_lifetime=1800) as fake:
        xero_env(fake)
        code, out = recon(capsys, "writeback", "--workspace", books, "--to", fake.target)
        assert code == 0, out
        assert f"wrote {accepted} of {accepted} pending item(s) to {fake.target}" in out
        assert f"write    written   {accepted:>7}" in out
        assert api.writeback(books, f"dir:{files}").ok  # the same matches to files: the journal to compare
        assert_each_match_on_xero_once(fake, books, files)
        assert fake.batch_payments and fake.journals
        calls = fake.api_calls

        # nothing new: 0 written, exit 0, not a single call to Xero
        code, out = recon(capsys, "writeback", "--workspace", books, "--to", fake.target)
        assert code == 0 and f"wrote 0 items to {fake.target}: nothing pending" in out
        assert fake.api_calls == calls

        # undo a written payout (one bank line paying several orders: a batch payment, and its
        # processor fees a journal): its reversal, once
        journaled = {_NARRATION.match(j["Narration"]).group(1) for j in fake.journals.values()}
        payouts = _written_matches(books).filter(pl.col("match_type") == "payout")
        undone = next(row for row in payouts.iter_rows(named=True) if row["match_id"] in journaled)
        assert ";" in undone["ledger_ids"] and ";" not in undone["bank_ids"]
        api.unmatch(books, undone["match_id"], "paid by 金港貿易有限公司, not this customer", by="陳大文")
        before = books_record(fake)
        code, out = recon(capsys, "writeback", "--workspace", books, "--to", fake.target)
        assert code == 0 and "wrote 1 of 1 pending item(s)" in out and "reverse  written         1" in out
        code, out = recon(capsys, "writeback", "--workspace", books, "--to", fake.target)
        assert code == 0 and "wrote 0 items" in out

    documents = set(undone["ledger_ids"].split(";"))
    payments, batches, journals = books_record(fake)
    # its payments deleted (the invoices open again), everything else untouched
    assert not any(key[0] in documents for key in payments)
    assert payments == Counter({k: n for k, n in before[0].items() if k[0] not in documents})
    deleted = [p for p in fake.payments.values() if p["Status"] == "DELETED"]
    assert {_document(p) for p in deleted} == documents
    assert [b["Status"] for b in fake.batch_payments.values() if b["Status"] != "AUTHORISED"] == ["DELETED"]
    # one reversing journal, the mirror of the one posted, with the reason byte-exact
    reversal = [j for j in journals if j[0].startswith(f"reversal of recon {undone['match_id']}")]
    assert len(reversal) == 1 and journals[reversal[0]] == 1
    assert reversal[0][0] == f"reversal of recon {undone['match_id']}: paid by 金港貿易有限公司, not this customer"
    (posted,) = [j for j in journals if j[0].startswith(f"recon {undone['match_id']}:")]
    assert reversal[0][1] == tuple((account, -amount) for account, amount in posted[1])
    assert sum(journals.values()) == sum(before[2].values()) + 1
    states = api.status(books)["states"]
    assert (states["written"], states["reversed"], states["accepted"]) == (accepted - 1, 1, 0)


def _writeback(ws: Path, fake: FakeXero, crash_at: str | None = None, **overrides: str) -> subprocess.Popen:
    env = {name: value for name, value in os.environ.items() if not name.startswith("RECON_XERO_")}
    env.pop(CRASH_ENV, None)
    env.update(fake.environment(**overrides), RECON_LOCK_WAIT="30")
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "writeback", "--workspace", str(ws), "--to", fake.target,
         "--batch-size", "500", "--progress", "log"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_9_in_the_middle_of_writeback_to_xero_loses_and_doubles_nothing(books, month, tmp_path, xero_env,
                                                                           capsys):
    accepted = month[1]
    # what Xero holds after one clean write-back of the same month
    clean = tmp_path / "clean" / "books.duckdb"
    clean.parent.mkdir()
    shutil.copyfile(books, clean)
    with FakeXero(time_scale=0.001) as reference:
        xero_env(reference)
        assert api.writeback(clean, reference.target).ok
    expected = books_record(reference)

    # 10 elements a request (some 200 calls), 5% 500s (half after the work), a 429 every 40 calls
    fake = FakeXero(time_scale=0.002, error_rate=0.05, throttle_every=40, seed=3)
    with fake:
        # 1. batch 2 of 4 reached Xero; the workspace never heard of it
        killed = _writeback(books, fake, "writeback:after-send:2", RECON_XERO_BATCH_SIZE="10")
        _out, err = killed.communicate(timeout=120)
        assert killed.returncode == -signal.SIGKILL, err[-2000:]
        assert 0 < len(fake.live_payments()) < sum(expected[0].values())
        # 2. killed from outside while Xero holds the answer to work it has done
        fake.hold_after = fake.api_calls + 30
        killed = _writeback(books, fake, RECON_XERO_BATCH_SIZE="10")
        assert fake.held.wait(120), "the write-back never reached the held request"
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=60)
        assert killed.returncode == -signal.SIGKILL
        fake.release.set()
        assert books_record(fake) != expected  # the kill left work undone
        # 3. the rerun completes
        final = _writeback(books, fake, RECON_XERO_BATCH_SIZE="10")
        out, err = final.communicate(timeout=120)
        assert final.returncode == 0, err[-3000:]
        assert "write    written" in out, out

        # nothing lost, nothing doubled: Xero holds what one clean write-back gives
        assert books_record(fake) == expected
        assert not [p for p in fake.payments.values() if p["Status"] != "AUTHORISED"]
        assert fake.injected_500 and fake.injected_429
        assert any(r.replayed and r.idempotency_key == fake.held_key for r in fake.received), \
            "the held request was not sent again with its idempotency key"
        xero_env(fake)
        code, out = recon(capsys, "writeback", "--workspace", books, "--to", fake.target)
        assert code == 0 and "wrote 0 items" in out

    code, out = recon(capsys, "status", "--workspace", books, "--json")
    assert code == 0
    status = json.loads(out)
    assert {state: status[state] for state in ("accepted", "written", "failed", "reversed")} == {
        "accepted": 0, "written": accepted, "failed": 0, "reversed": 0}
    assert status["pending_writeback"] == {fake.target: {"write": 0, "reverse": 0}}
    assert status["last_errors"] == []
    with sqlite3.connect(books.parent / OUTBOX_FILE) as con:  # every request recorded was answered
        unanswered = con.execute("""SELECT count(*) FROM elements e LEFT JOIN answers a USING (request_id, position)
                                    WHERE a.request_id IS NULL""").fetchone()[0]
    assert unanswered == 0
