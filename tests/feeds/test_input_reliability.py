"""Inputs an adversarial user gives ``recon match`` / ``recon inspect``, through the command line.

Found when probing the one-shot command (issue 12, "Reliability"): an id loaded twice with
different content was silently dropped as a duplicate; a bank date of 9999-12-31 crashed the
candidate search and a file dated 0000-01-01 crashed ``recon inspect``. Each case runs the real
command (``python -m engine.cli``) and checks what the user reads: the summary's counts, the
rows of ``rejects.csv`` and the one-line reasons.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np

from engine.candidates.pairs import window_pairs

ROOT = Path(__file__).resolve().parents[2]
RANGE = "outside the dates recon accepts (1900-01-01 to 2199-12-31); correct it in the source"


def recon(*args: str | Path) -> subprocess.CompletedProcess:
    """``python -m engine.cli ARGS`` as a user runs it, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *map(str, args)],
        capture_output=True, text=True, encoding="utf-8", cwd=ROOT, timeout=180,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def month(tmp_path: Path, far_bank_date: str = "2026-01-20") -> tuple[Path, Path]:
    """A small month: 30 receipts paying 30 invoices one to one, and one more bank line dated
    ``far_bank_date`` with the amount of an invoice; the ledger repeats INV-1 with another
    amount (a conflict) and INV-2 exactly (a duplicate)."""
    bank = ["id,date,amount,currency,description,counterparty"]
    ledger = ["id,date,amount,currency,description,counterparty,type"]
    for n in range(1, 31):
        bank.append(f"B{n},2026-01-{n % 28 + 1:02d},{1000 + n}.00,HKD,FPS CR INV-{n},Customer {n}")
        ledger.append(f"INV-{n},2026-01-{n % 28 + 1:02d},{1000 + n}.00,HKD,Invoice {n},Customer {n},invoice")
    bank.append(f"BFAR,{far_bank_date},1020.00,HKD,FPS CR,陳大文")
    ledger.append("INV-1,2026-01-05,2000.00,HKD,Invoice 1 (amended),金港貿易有限公司,invoice")
    ledger.append("INV-2,2026-01-03,1002.00,HKD,Invoice 2,Customer 2,invoice")
    return (write(tmp_path / "bank.csv", "\n".join(bank) + "\n"),
            write(tmp_path / "ledger.csv", "\n".join(ledger) + "\n"))


def test_same_id_different_content_is_rejected_naming_both_lines(tmp_path):
    bank, ledger = month(tmp_path)
    done = recon("match", "--bank", bank, "--ledger", ledger, "--out", tmp_path / "out", "--progress", "none")
    assert done.returncode == 0, done.stderr
    # 32 ledger rows: INV-1 twice with different amounts (both rejected), INV-2 twice the same
    assert (f"{ledger}: 32 rows read, 30 loaded, 2 rejected (2 with an id that occurs again with "
            "different content), 1 duplicate(s) of lines already loaded") in done.stdout
    assert "rejected rows:         2    duplicate lines: 1" in done.stdout
    rejects = rows(tmp_path / "out" / "rejects.csv")
    reason = (f"id 'INV-1' occurs with different content at {ledger}:2 and {ledger}:32 (differs in: "
              "date, amount, description, counterparty); none of them is used: correct the source, or "
              "give each line its own id")
    assert [(r["line"], r["column"], r["reason"]) for r in rejects] == [("2", "id", reason), ("32", "id", reason)]
    assert rejects[1]["raw"] == "INV-1,2026-01-05,2000.00,HKD,Invoice 1 (amended),金港貿易有限公司,,,invoice,"
    # neither version of INV-1 is matched: its bank line stays open; INV-2 is matched once
    matches = rows(tmp_path / "out" / "matches.csv")
    assert not [m for m in matches if "INV-1" in m["ledger_ids"].split(";")]
    assert [m["bank_ids"] for m in matches if m["ledger_ids"] == "INV-2"] == ["B2"]
    duplicates = rows(tmp_path / "out" / "duplicates.csv")
    assert [(d["id"], d["line"], d["first_line"], d["same_content"]) for d in duplicates] == [
        ("INV-2", "33", "3", "true")
    ]


def test_bank_date_in_year_9999_is_a_rejected_row_not_a_crash(tmp_path):
    bank, ledger = month(tmp_path, far_bank_date="9999-12-31")
    done = recon("match", "--bank", bank, "--ledger", ledger, "--out", tmp_path / "out", "--progress", "none")
    assert done.returncode == 0, done.stderr
    assert f"{bank}: 31 rows read, 30 loaded, 1 rejected" in done.stdout
    far = [r for r in rows(tmp_path / "out" / "rejects.csv") if r["source_file"] == str(bank)]
    assert [(r["line"], r["column"], r["reason"]) for r in far] == [("32", "date", f"date '9999-12-31' is {RANGE}")]
    # the other 29 receipts still find their invoices (INV-1 is the conflict of the month)
    matched = {m["bank_ids"] for m in rows(tmp_path / "out" / "matches.csv")}
    assert {f"B{n}" for n in range(2, 31)} <= matched


def test_inspect_a_file_dated_year_0_lists_the_row_as_rejected(tmp_path):
    statement = write(tmp_path / "statement.csv",
                      "id,date,amount,currency,description\nB1,0000-01-01,100.00,HKD,陳大文\n"
                      "B2,2026-01-02,50.00,HKD,金港貿易有限公司\n")
    done = recon("inspect", statement)
    assert done.returncode == 0, done.stderr
    assert "transactions:  1 read, 1 rejected (2 rows)" in done.stdout
    assert f"line 2: date '0000-01-01' is {RANGE}" in done.stdout
    assert "dates:         2026-01-02 to 2026-01-02" in done.stdout


def test_inspect_an_ofx_statement_dated_year_9999(tmp_path):
    """A reader that parses dates itself (OFX) is held to the same range."""
    source = (ROOT / "tests/feeds/data/ofx/two_accounts_v2_utf8.ofx").read_text(encoding="utf-8")
    statement = write(tmp_path / "far.ofx", source.replace("<DTPOSTED>2024", "<DTPOSTED>9999", 1))
    done = recon("inspect", statement)
    assert done.returncode == 0, done.stderr
    assert f": date '9999-02-10' is {RANGE}" in done.stdout


def test_stripe_line_created_in_year_9999_is_rejected(tmp_path):
    source = (ROOT / "tests/feeds/data/stripe_payout_sample.csv").read_text(encoding="utf-8")
    report = write(tmp_path / "stripe.csv", source.replace("2026-01-06 09:30:00", "9999-12-31 09:30:00"))
    done = recon("inspect", report)
    assert done.returncode == 0, done.stderr
    assert f"line 3: created '9999-12-31' is {RANGE}" in done.stdout


def test_window_search_ignores_keys_beyond_its_span():
    """A key past the span (a far date given through the Python API, bypassing the readers)
    is never paired and cannot reach into the next block's keys."""
    span = 1 << 21
    bank_key = np.array([100, span + 5_000_000], dtype=np.int64)  # the second: year ~9999
    ledger_key = np.array([101, 50, 120], dtype=np.int64)
    bank_rows, ledger_rows = window_pairs(
        np.array([0, 0]), bank_key, np.array([0, 1, 1]), ledger_key, 10, 10, 5, span
    )
    assert (bank_rows.tolist(), ledger_rows.tolist()) == ([0], [0])
