"""One payer, same-amount invoices and payments without references: applied oldest first."""

from __future__ import annotations

import engine.api as recon

BANK = """id,date,amount,currency,description,counterparty,reference,account
B1,2026-10-03,4500.00,HKD,FPS CR ORIENT SUMMIT HARDWARE,,,001
B2,2026-10-20,4500.00,HKD,FPS CR ORIENT SUMMIT HARDWARE,,,001
"""
LEDGER = """id,date,amount,currency,description,counterparty,reference,account,type,due_date
INV-1,2026-09-05,4500.00,HKD,Monthly retainer,Orient Summit Hardware Ltd,,1100,invoice,
INV-2,2026-09-28,4500.00,HKD,Monthly retainer,Orient Summit Hardware Ltd,,1100,invoice,
"""


def _run(tmp_path, bank=BANK, ledger=LEDGER):
    (tmp_path / "bank.csv").write_text(bank, encoding="utf-8")
    (tmp_path / "ledger.csv").write_text(ledger, encoding="utf-8")
    result = recon.match(tmp_path / "bank.csv", tmp_path / "ledger.csv")
    return {r["bank_ids"]: r for r in result.proposals.iter_rows(named=True)}


def test_earlier_payment_pays_the_older_invoice(tmp_path):
    rows = _run(tmp_path)
    assert rows["B1"]["ledger_ids"] == "INV-1"
    assert rows["B2"]["ledger_ids"] == "INV-2"
    assert "oldest item first" in rows["B1"]["explanation"]


def test_no_oldest_first_when_counts_differ(tmp_path):
    # two invoices, one payment: which invoice it pays is a real question
    rows = _run(tmp_path, bank=BANK.splitlines(keepends=True)[0] + BANK.splitlines(keepends=True)[1])
    assert "oldest item first" not in rows["B1"]["explanation"]
    assert rows["B1"]["status"] == "review"
