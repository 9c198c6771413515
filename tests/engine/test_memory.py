"""The memory budget (--memory-limit): sizes, thinning candidate pairs to the budget, warnings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from engine.candidates.pairs import EXACT, NAME, REFERENCE
from engine.memory import BYTES_PER_PAIR, PAIR_SHARE, fit_pairs, parse_size
from models.errors import InputError

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, expected", [
    ("6GB", 6 * 10**9), ("6g", 6 * 10**9), ("512MB", 512 * 10**6), ("1.5GiB", int(1.5 * 2**30)),
    ("4000000000", 4 * 10**9), (" 2 gb ", 2 * 10**9),
])
def test_sizes_a_user_writes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "six GB", "6 parsecs", "0GB", "-1GB"])
def test_a_size_that_is_not_one_is_refused_with_examples(text):
    with pytest.raises(InputError, match="give a size such as 6GB"):
        parse_size(text)


def _sides():
    bank = pl.DataFrame({"amount_minor": [10_000, 20_000], "day": [100, 100]})
    ledger = pl.DataFrame({"amount_minor": [10_000, 10_050, 9_000, 10_000, 20_000, 20_000],
                           "day": [100, 99, 100, 80, 100, 101]})
    # bank line 0: five candidates, of which item 3 is quoted by reference (far in date) and
    # item 0 is the exact amount the same day; bank line 1: two candidates
    pairs = pl.DataFrame({
        "bank_idx": [0, 0, 0, 0, 1, 1], "ledger_idx": [0, 1, 2, 3, 4, 5],
        "via": [EXACT, 2, 2, EXACT | REFERENCE, EXACT, EXACT | NAME],
    }, schema={"bank_idx": pl.UInt32, "ledger_idx": pl.UInt32, "via": pl.UInt8})
    return pairs, bank, ledger


def test_pairs_that_fit_are_all_kept():
    pairs, bank, ledger = _sides()
    kept, warning = fit_pairs(pairs, bank, ledger, 10**9)
    assert kept.equals(pairs) and warning is None


def test_over_budget_each_line_keeps_its_best_candidates_and_the_run_is_told():
    pairs, bank, ledger = _sides()
    room_for_four = int(4 * BYTES_PER_PAIR / PAIR_SHARE) + 1
    kept, warning = fit_pairs(pairs, bank, ledger, room_for_four)
    # two a line: the quoted reference and the exact same-day amount for line 0; both of line 1,
    # the same payer first
    assert kept.select("bank_idx", "ledger_idx").rows() == [(0, 0), (0, 3), (1, 4), (1, 5)]
    assert "6 candidate pairs" in warning and "keeps its 2 best" in warning
    assert "2 pairs of 1 bank lines left out" in warning and "--memory-limit" in warning


def _match(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "match", "--bank", str(DATA / "hk_bank.csv"),
         "--ledger", str(DATA / "hk_ledger.csv"), "--out", str(tmp_path / "out"), "--progress", "none", *extra],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=300,
    )


def test_a_run_over_its_memory_limit_warns_in_the_summary_and_the_workspace(tmp_path):
    run = _match(tmp_path, "--memory-limit", "50MB")
    assert run.returncode == 0, run.stderr
    assert "warning: memory limit 0.05 GB exceeded in stage " in run.stdout
    with duckdb.connect(str(tmp_path / "out" / "recon.duckdb"), read_only=True) as con:
        stored = [m for (m,) in con.execute("SELECT message FROM run_warnings").fetchall()]
    assert any(m.startswith("memory limit 0.05 GB exceeded") for m in stored), stored


def test_a_run_within_its_limit_has_no_memory_warning(tmp_path):
    run = _match(tmp_path, "--memory-limit", "8GB")
    assert run.returncode == 0, run.stderr
    assert "memory limit" not in run.stdout


def test_a_bad_memory_limit_fails_in_one_line(tmp_path):
    run = _match(tmp_path, "--memory-limit", "lots")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "recon: error: memory limit 'lots': give a size such as 6GB, 512MB or 1.5GiB"]
