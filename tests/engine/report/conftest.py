"""Fixtures of the month-end report tests: the bundled sample month matched and its auto
proposals accepted (once a session), and a small hand-written month whose statement is worked
out by hand in the tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import api

SAMPLE = Path(__file__).resolve().parents[3] / "benchmarks" / "sample"

#: a small HKD month: an invoice paid (陳大文), a cheque cleared, a bank fee nobody booked (its
#: text a script tag), a receipt booked on 31 October and banked on 2 November, a payment not yet
#: presented, an invoice paid less a bank charge
SMALL_BANK = """id,date,amount,currency,description,counterparty,reference,account
B1,2026-10-05,1000.00,HKD,FPS CR 陳大文 INV-1,陳大文,INV-1,ACC-1
B2,2026-10-10,-500.00,HKD,CHQ 000123,,000123,ACC-1
B3,2026-10-20,-25.00,HKD,<script>alert(1)</script> FEE,,,ACC-1
B4,2026-11-02,800.00,HKD,CASH DEPOSIT RCPT-1,,RCPT-1,ACC-1
B5,2026-10-15,1950.00,HKD,TT INV-2 金港貿易有限公司,金港貿易有限公司,INV-2,ACC-1
"""
SMALL_LEDGER = """id,date,amount,currency,description,counterparty,reference,account,type,due_date
INV-1,2026-09-20,1000.00,HKD,Seafood supply,陳大文,INV-1,1100,invoice,2026-10-20
PAY-1,2026-10-08,-500.00,HKD,Cheque 000123,金港貿易有限公司,000123,1010,payment,
RCPT-1,2026-10-31,800.00,HKD,Cash sales 31 Oct,,RCPT-1,1010,receipt,
PAY-2,2026-10-29,-300.00,HKD,Cheque 000124 rent,Harbour View Properties Limited,000124,1010,payment,
INV-2,2026-09-25,2000.00,HKD,Freight,金港貿易有限公司,INV-2,1100,invoice,2026-10-25
"""


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory) -> Path:
    """The sample month ingested, matched, and every auto proposal accepted through engine.api."""
    ws = tmp_path_factory.mktemp("sample") / "books.duckdb"
    api.ingest(ws, bank=SAMPLE / "bank.csv", ledger=SAMPLE / "ledger.csv",
               processor=SAMPLE / "stripe_payouts.csv", fx=SAMPLE / "fx.csv")
    api.match_workspace(ws)
    api.accept(ws, all_auto=True, by="controller")
    return ws


@pytest.fixture
def sample_ws(tmp_path, sample_template) -> Path:
    ws = tmp_path / "books.duckdb"
    shutil.copyfile(sample_template, ws)
    return ws


@pytest.fixture
def small_files(tmp_path) -> tuple[Path, Path]:
    bank, ledger = tmp_path / "bank.csv", tmp_path / "ledger.csv"
    bank.write_text(SMALL_BANK, encoding="utf-8")
    ledger.write_text(SMALL_LEDGER, encoding="utf-8")
    return bank, ledger


@pytest.fixture(scope="session")
def small_template(tmp_path_factory) -> Path:
    """The small month ingested and matched by hand (four manual matches, one with a bank
    charge), made once a session."""
    folder = tmp_path_factory.mktemp("small")
    bank, ledger = folder / "bank.csv", folder / "ledger.csv"
    bank.write_text(SMALL_BANK, encoding="utf-8")
    ledger.write_text(SMALL_LEDGER, encoding="utf-8")
    ws = folder / "small.duckdb"
    api.ingest(ws, bank=bank, ledger=ledger)
    api.match_manual(ws, bank=["B1"], ledger=["INV-1"], by="reviewer")
    api.match_manual(ws, bank=["B2"], ledger=["PAY-1"], by="reviewer")
    api.match_manual(ws, bank=["B4"], ledger=["RCPT-1"], by="reviewer")
    api.match_manual(ws, bank=["B5"], ledger=["INV-2"], adjust="bank_charge", by="reviewer")
    return ws


@pytest.fixture
def small_ws(tmp_path, small_template) -> Path:
    """A copy of its own of the small month."""
    ws = tmp_path / "small.duckdb"
    shutil.copyfile(small_template, ws)
    return ws
