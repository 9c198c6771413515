"""`recon match` and `recon inspect` on what banks produce (MT940 here), through the CLI."""

import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MT940 = ROOT / "tests" / "feeds" / "data" / "mt940" / "sepa_cp1252_crlf.sta"
LEDGER = ROOT / "tests" / "engine" / "data" / "ledger_for_mt940.csv"


def _recon(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_match_reads_mt940_and_keeps_names_byte_exact(tmp_path: Path):
    run = _recon("match", "--bank", str(MT940), "--ledger", str(LEDGER), "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    with open(tmp_path / "matches.csv", encoding="utf-8", newline="") as fh:
        rows = {r["ledger_ids"]: r for r in csv.DictReader(fh)}
    invoice = rows["INV-2024-001"]
    assert invoice["bank_ids"] == "10020030/0123456789/BANKREF0001"
    assert invoice["bank_amount"] == "250.00" and invoice["difference"] == "0.00"
    assert invoice["currency"] == "EUR"
    assert "INV-2024-001" in invoice["explanation"]
    # the statement is cp1252; the text arrives in matches.csv as the same characters, UTF-8
    raw = (tmp_path / "matches.csv").read_bytes()
    assert "Rechnung 2024-001 Müller".encode() in raw
    assert "Müller & Söhne GmbH".encode() in raw
    assert rows["ABO-77"]["bank_amount"] == "-19.99"
    assert "Straßenbahn Köln".encode() in raw
    # the bad :61: lines of the statement are reported, not dropped
    with open(tmp_path / "rejects.csv", encoding="utf-8", newline="") as fh:
        rejects = list(csv.DictReader(fh))
    assert {int(r["line"]) for r in rejects} == {13, 15}


def test_inspect_json_has_the_contract_keys():
    run = _recon("inspect", str(MT940), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["format"] == "mt940"
    assert report["transactions"] == 4
    assert {r["line"] for r in report["rejects"]} == {13, 15}
    assert all("reason" in r for r in report["rejects"])
    assert report["balances"], "stated balances are listed"


def test_inspect_text_and_unknown_format_error(tmp_path: Path):
    run = _recon("inspect", str(MT940))
    assert run.returncode == 0 and "mt940" in run.stdout
    junk = tmp_path / "statement.bin"
    junk.write_bytes(b"\x00\x01\x02 not a statement")
    run = _recon("inspect", str(junk))
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert str(junk) in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_inspect_recognises_a_processor_export_without_side():
    stripe = ROOT / "tests" / "feeds" / "data" / "stripe_payout_sample.csv"
    run = _recon("inspect", str(stripe))
    assert run.returncode == 0, run.stderr
    assert "format:        stripe (processor side)" in run.stdout
    assert "could not recognise" not in run.stdout + run.stderr
