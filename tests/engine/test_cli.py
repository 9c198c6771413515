"""The ``recon match`` command (engine CLI): the files it writes, what it prints, how it fails.

Runs the real command in a subprocess, as a user would, on the hand-written Hong Kong month in
``tests/engine/data`` (see ``test_pipeline.py`` for what each line is).
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine import cli

DATA = Path(__file__).parent / "data"
BANK = DATA / "hk_bank.csv"
BANK_OVERLAP = DATA / "hk_bank_overlap.csv"
LEDGER = DATA / "hk_ledger.csv"
ROOT = Path(__file__).resolve().parents[2]

MATCH_COLUMNS = [
    "match_id", "match_type", "status", "confidence", "bank_ids", "ledger_ids", "bank_amount",
    "ledger_amount", "difference", "currency", "explanation",
]
BANK_COLUMNS = ["id", "date", "amount", "currency", "description", "counterparty", "reference", "account"]
LEDGER_COLUMNS = [*BANK_COLUMNS, "type", "due_date"]
REJECT_COLUMNS = ["source_file", "line", "column", "reason", "raw"]

RECON_SCRIPT = shutil.which("recon", path=str(Path(sys.executable).parent))


def _command(args: list, script: str | None = None) -> list[str]:
    """``python -m engine.cli ARGS`` (or the installed ``recon`` script)."""
    return [*([script] if script else [sys.executable, "-m", "engine.cli"]), *map(str, args)]


def run_recon(*args: str | Path, script: str | None = None) -> subprocess.CompletedProcess:
    """Run the command as a user would, output captured as text."""
    return subprocess.run(
        _command(list(args), script), capture_output=True, text=True, encoding="utf-8", cwd=ROOT,
        timeout=120,
    )


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV, every value as the text in the file."""
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def by_id(rows: list[dict[str, str]], key: str = "id") -> dict[str, dict[str, str]]:
    return {row[key]: row for row in rows}


STAGE_LINE = re.compile(r"^[0-9]{2}:[0-9]{2}:[0-9]{2} recon: stage .*: (started|done in|failed after|running for) ")


def error_lines(stderr: str) -> list[str]:
    """stderr without the stage log lines a run off a terminal writes (the progress)."""
    return [line for line in stderr.strip().splitlines() if not STAGE_LINE.match(line)]


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    """Exit status 2, one line on stderr (beside the stage log) containing every word, no traceback."""
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == lines[0], "the error is the last thing said"
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _bad_files(folder: Path) -> dict[str, Path]:
    """One broken input per way a user's file can be wrong."""
    folder.mkdir()
    gbk = folder / "bank_gbk.csv"
    gbk.write_bytes("id,date,amount,currency,description\nX1,2026-03-01,10.00,HKD,陳大文\n".encode("gbk"))
    return {
        "missing-file": folder / "no_such_bank.csv",
        "directory": folder,
        "gbk-encoded": gbk,
        "ledger-missing-id": _write(folder, "ledger_no_id.csv", "date,amount,currency\n2026-03-01,10.00,HKD\n"),
        "ledger-missing-amount": _write(
            folder, "ledger_no_amount.csv", "id,date,value,currency\nL1,2026-03-01,10.00,HKD\n"
        ),
        "bank-missing-amount": _write(
            folder, "bank_no_amount.csv", "id,date,value,currency,description\nX1,2026-03-01,10.00,HKD,x\n"
        ),
        "fx-missing-rate": _write(folder, "fx_no_rate.csv", "date,base,quote\n2026-03-02,USD,HKD\n"),
        "processor-missing-net": _write(
            folder, "stripe_no_net.csv",
            "balance_transaction_id,currency,gross,fee,reporting_category\ntxn_1,hkd,10.00,1.00,charge\n",
        ),
    }


#: which flag each broken file is given to (the other inputs are the good month)
BAD_FLAG = {
    "missing-file": "--bank", "directory": "--bank", "gbk-encoded": "--bank",
    "ledger-missing-id": "--ledger", "ledger-missing-amount": "--ledger", "bank-missing-amount": "--bank",
    "fx-missing-rate": "--fx", "processor-missing-net": "--processor",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every command this module checks, run once each, a few at a time (start-up dominates).

    Returns ``name -> (finished process, its --out folder)``.
    """
    base = tmp_path_factory.mktemp("cli")
    good = ["--bank", BANK, "--ledger", LEDGER]
    commands: dict[str, tuple[list, str | None]] = {
        "default": (["match", *good], None),
        "bank-listed": (["match", "--bank", BANK, BANK_OVERLAP, "--ledger", LEDGER], RECON_SCRIPT),
        "bank-repeated": (["match", "--bank", BANK, "--bank", BANK_OVERLAP, "--ledger", LEDGER], None),
        "fx-processor": (["match", *good, "--fx", DATA / "fx.csv", "--processor", DATA / "stripe_payout.csv"], None),
        "rules-strict": (["match", *good, "--rules", DATA / "rules_strict.toml"], None),
        "rules-invalid": (["match", *good, "--rules", DATA / "rules_invalid.toml"], None),
        "debug": (["--debug", "match", "--bank", base / "no_such_bank.csv", "--ledger", LEDGER], None),
    }
    for name, bad in _bad_files(base / "bad").items():
        files = {"--bank": [BANK], "--ledger": [LEDGER], BAD_FLAG[name]: [bad]}
        commands[name] = (["match", *[a for flag, paths in files.items() for a in (flag, *paths)]], None)

    def start(name: str) -> tuple[subprocess.CompletedProcess, Path]:
        args, script = commands[name]
        out = base / "out" / name
        return run_recon(*args, "--out", out, script=script), out

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(commands, pool.map(start, commands), strict=True))


@pytest.fixture(scope="module")
def run(runs) -> tuple[subprocess.CompletedProcess, Path]:
    proc, out = runs["default"]
    assert proc.returncode == 0, proc.stderr
    return proc, out


# --------------------------------------------------------------------------------------------
# outputs of a good run
# --------------------------------------------------------------------------------------------


def test_summary_says_what_happened_and_where_the_outputs_are(run):
    proc, out = run
    assert "matched automatically: 6 of 10 bank lines" in proc.stdout
    assert "needs review:          2 bank lines in 2 proposals" in proc.stdout
    assert "left unmatched:        2 bank lines, 3 ledger items" in proc.stdout
    assert "12 rows read, 11 loaded, 1 rejected" in proc.stdout
    assert str(out / "matches.csv") in proc.stdout
    # stderr holds nothing but the stage log lines (no warning, no error)
    assert proc.stderr, "a run off a terminal logs its stages"
    assert all(" recon: stage " in line for line in proc.stderr.splitlines()), proc.stderr


def test_writes_every_output_file(run):
    _, out = run
    for name in ("matches.csv", "unmatched_bank.csv", "unmatched_ledger.csv", "rejects.csv",
                 "duplicates.csv", "recon.duckdb"):
        assert (out / name).is_file(), name


def test_matches_csv_has_the_contract_columns_and_exact_values(run):
    _, out = run
    header, rows = read_csv(out / "matches.csv")
    assert header[: len(MATCH_COLUMNS)] == MATCH_COLUMNS
    matches = by_id(rows, key="bank_ids")
    assert {b: m["ledger_ids"] for b, m in matches.items() if b != "B05"} == {
        "B01": "L01", "B02": "L02", "B03": "L03", "B04": "L04", "B06": "L07", "B07": "L08", "B11": "L11",
    }
    b01 = matches["B01"]
    assert (b01["status"], b01["match_type"], b01["currency"]) == ("auto", "one_to_one", "HKD")
    assert (b01["bank_amount"], b01["ledger_amount"], b01["difference"]) == ("12500.00", "12500.00", "0.00")
    assert "INV-2026-00101" in b01["explanation"] and "45 days" in b01["explanation"]
    b11 = matches["B11"]
    assert (b11["bank_amount"], b11["ledger_amount"], b11["difference"]) == ("7765.00", "7800.00", "-35.00")
    b05 = matches["B05"]
    assert b05["status"] == "review"
    assert ({"L05", "L06"} - {b05["ledger_ids"]}).pop() in b05["explanation"]
    for row in rows:
        assert 0.0 <= float(row["confidence"]) <= 1.0
        assert row["match_id"].startswith("M-")


def test_unmatched_files_are_canonical_rows_with_a_reason(run):
    _, out = run
    header, rows = read_csv(out / "unmatched_bank.csv")
    assert set(BANK_COLUMNS) | {"reason"} <= set(header)
    bank = by_id(rows)
    assert sorted(bank) == ["B09", "B10"]
    assert (bank["B09"]["date"], bank["B09"]["amount"], bank["B09"]["currency"]) == ("2026-03-21", "-2000.00", "HKD")
    # B06 quotes INV-2026-00170 for INV-2026-00107 and is 30.00 short: a transposed reference
    # is weak evidence, not a contradiction, so the pair is proposed for review
    _, matches = read_csv(out / "matches.csv")
    b06 = by_id(matches, "bank_ids")["B06"]
    assert (b06["ledger_ids"], b06["status"]) == ("L07", "review")
    assert "one transposition away from INV-2026-00107" in b06["explanation"]

    header, rows = read_csv(out / "unmatched_ledger.csv")
    assert set(LEDGER_COLUMNS) | {"reason"} <= set(header)
    ledger = by_id(rows)
    assert sorted(ledger) == ["L06", "L09", "L10"]
    assert (ledger["L09"]["amount"], ledger["L09"]["type"], ledger["L09"]["due_date"]) == ("-15000.00", "bill", "2026-03-31")
    assert all(len(row["reason"]) > 20 for row in rows)


def test_rejects_csv_names_file_line_column_reason_and_raw_text(run):
    _, out = run
    header, rows = read_csv(out / "rejects.csv")
    assert header[: len(REJECT_COLUMNS)] == REJECT_COLUMNS
    assert len(rows) == 1
    reject = rows[0]
    raw_line = BANK.read_text(encoding="utf-8").splitlines()[9]  # line 10 of the file
    assert Path(reject["source_file"]).resolve() == BANK
    assert (reject["line"], reject["column"], reject["raw"]) == ("10", "amount", raw_line)
    assert "100.125" in reject["raw"] and "3 decimals" in reject["reason"]


def test_duplicates_csv_lists_the_line_delivered_twice(run):
    _, out = run
    _, rows = read_csv(out / "duplicates.csv")
    assert [(r["side"], r["id"], r["line"], r["first_line"]) for r in rows] == [("bank", "B07", "9", "8")]


# --------------------------------------------------------------------------------------------
# byte-exact names
# --------------------------------------------------------------------------------------------


def _field_bytes(path: Path, line_id: str, column: str) -> bytes:
    """One unquoted field of a hand-written input row, as raw bytes."""
    data = path.read_bytes().splitlines()
    header = data[0].split(b",")
    row = next(line for line in data[1:] if line.startswith(line_id.encode() + b","))
    return row.split(b",")[header.index(column.encode())]


def _output_row_bytes(path: Path, line_id: str) -> bytes:
    return next(line for line in path.read_bytes().splitlines() if line.startswith(line_id.encode() + b","))


@pytest.mark.parametrize(
    ("source", "output", "line_id", "column", "text"),
    [
        (BANK, "unmatched_bank.csv", "B09", "counterparty", "Müller GmbH"),
        (BANK, "unmatched_bank.csv", "B10", "counterparty", "金港貿易有限公司"),
        (BANK, "unmatched_bank.csv", "B10", "description", "CHQ DEP 金港貿易有限公司"),
        (LEDGER, "unmatched_ledger.csv", "L09", "counterparty", "Société Générale"),
        (LEDGER, "unmatched_ledger.csv", "L10", "counterparty", "陳大文"),
    ],
)
def test_names_survive_byte_for_byte(run, source, output, line_id, column, text):
    _, out = run
    original = _field_bytes(source, line_id, column)
    assert original == text.encode("utf-8")
    assert b"," + original + b"," in _output_row_bytes(out / output, line_id)
    _, rows = read_csv(out / output)
    assert by_id(rows)[line_id][column].encode("utf-8") == original


def test_decomposed_accents_are_not_normalised_in_the_output(tmp_path):
    """Matching folds Unicode (NFKC) internally; the outputs keep the user's bytes (here NFD)."""
    nfd = unicodedata.normalize("NFD", "Société Générale")
    assert nfd != "Société Générale"
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(
        LEDGER.read_text(encoding="utf-8").replace("Société Générale", nfd), encoding="utf-8"
    )
    out = tmp_path / "out"
    # the CLI entry point in-process: the same code path as the subprocess runs, without the start-up
    assert cli.main(["match", "--bank", str(BANK), "--ledger", str(ledger), "--out", str(out), "--quiet"]) == 0
    row = _output_row_bytes(out / "unmatched_ledger.csv", "L09")
    assert nfd.encode("utf-8") in row
    assert "Société Générale".encode() not in row


# --------------------------------------------------------------------------------------------
# argument forms, extra inputs, rule files
# --------------------------------------------------------------------------------------------


def test_bank_files_as_one_list_or_repeated_flags_give_the_same_run(runs):
    """``recon match --bank a b`` (the installed script) and ``--bank a --bank b``."""
    assert RECON_SCRIPT, "the recon console script is not installed beside the interpreter"
    (listed, listed_out), (repeated, repeated_out) = runs["bank-listed"], runs["bank-repeated"]
    assert listed.returncode == 0, listed.stderr
    assert repeated.returncode == 0, repeated.stderr
    for proc in (listed, repeated):
        assert "hk_bank.csv: 12 rows read" in proc.stdout
        assert "hk_bank_overlap.csv: 3 rows read, 3 loaded, 0 rejected, 2 duplicate(s)" in proc.stdout
    for name in ("matches.csv", "unmatched_bank.csv", "unmatched_ledger.csv"):
        assert (listed_out / name).read_bytes() == (repeated_out / name).read_bytes()
    # the overlap's new line B12 pays the open invoice L10 (reference INV-2026-00110)
    _, rows = read_csv(listed_out / "matches.csv")
    assert by_id(rows, key="bank_ids")["B12"]["ledger_ids"] == "L10"


def test_fx_and_processor_files_are_accepted_and_validated(runs):
    proc, out = runs["fx-processor"]
    assert proc.returncode == 0, proc.stderr
    assert "fx.csv: 3 rows read, 2 loaded, 1 rejected" in proc.stdout
    assert "stripe_payout.csv: 2 rows read, 2 loaded, 0 rejected" in proc.stdout
    _, rejects = read_csv(out / "rejects.csv")
    fx_reject = next(r for r in rejects if r["source_file"].endswith("fx.csv"))
    assert (fx_reject["line"], fx_reject["column"], fx_reject["raw"]) == ("4", "rate", "2026-03-03,USD,HKD,seven")


def test_rules_file_changes_behaviour(runs):
    """rules_strict.toml sets only thresholds.auto = 0.999: same pairs; only B01 (reference, exact
    amount), B07 (the only ledger item of HKD 980.00, same name, same day) and B11 (reference,
    short by a round HKD 35 bank charge) stay auto."""
    proc, out = runs["rules-strict"]
    assert proc.returncode == 0, proc.stderr
    assert "rule set 'strict'" in proc.stdout
    _, rows = read_csv(out / "matches.csv")
    status = {row["bank_ids"]: row["status"] for row in rows}
    assert status == {"B01": "auto", "B02": "review", "B03": "review", "B04": "review",
                      "B05": "review", "B06": "review", "B07": "auto", "B11": "auto"}


def test_invalid_rules_file_lists_every_problem_on_one_line(runs):
    proc, out = runs["rules-invalid"]
    assert_one_line_error(proc, "rules_invalid.toml", "thresholds.auto", "thresholds.review",
                          "amount.tolerance_abs", "weights.refrence")
    assert not (out / "matches.csv").exists()


# --------------------------------------------------------------------------------------------
# bad input: exit 2, one line naming the file and the problem, no traceback
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "words"),
    [
        pytest.param("missing-file", ["no_such_bank.csv", "not found"], id="missing-file"),
        pytest.param("directory", ["is a directory"], id="directory"),
        pytest.param("gbk-encoded", ["bank_gbk.csv", "not UTF-8"], id="gbk-encoded"),
        pytest.param("ledger-missing-id", ["ledger_no_id.csv", "missing required column 'id'"],
                     id="ledger-missing-id"),
        pytest.param("ledger-missing-amount", ["ledger_no_amount.csv", "'amount'"],
                     id="ledger-missing-amount"),
        pytest.param("bank-missing-amount", ["bank_no_amount.csv", "'amount'"],
                     id="bank-missing-amount"),
        pytest.param("fx-missing-rate", ["fx_no_rate.csv", "missing required column 'rate'"],
                     id="fx-missing-rate"),
        pytest.param("processor-missing-net", ["stripe_no_net.csv", "net"], id="processor-missing-net"),
    ],
)
def test_bad_input_fails_with_one_line_and_status_2(runs, case, words):
    proc, out = runs[case]
    line = assert_one_line_error(proc, *words)
    assert line.startswith("recon: error: ")
    assert not (out / "matches.csv").exists()


def test_debug_shows_the_traceback(runs):
    proc, _ = runs["debug"]
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr
    assert "FeedFormatError" in proc.stderr and "no_such_bank.csv" in proc.stderr
