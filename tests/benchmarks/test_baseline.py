"""The exact-amount, +-7 days, first-come greedy baseline on small hand-written statements."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from benchmarks.baseline import BASELINE_COLUMNS, baseline_match, greedy_pointers, main
from engine.evaluate import evaluate_files


def _frame(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["id", "date", "amount", "currency"], orient="row")


BANK = _frame([
    ("B1", "2026-10-05", "100.00", "HKD"),   # two items in reach: takes the earliest (I1)
    ("B2", "2026-10-06", "100.00", "HKD"),   # next one: I2
    ("B3", "2026-10-07", "100.00", "HKD"),   # nothing left in reach (I3 is 8 days later)
    ("B4", "2026-10-10", "250.50", "HKD"),   # the USD item of the same amount is not a match
    ("B5", "2026-10-12", "-80.00", "HKD"),   # payment: ledger dated after the bank line
    ("B5", "2026-10-12", "-80.00", "HKD"),   # the same line delivered twice: matched once
    ("B6", "2026-10-20", "99.99", "HKD"),    # no equal amount
    ("B7", "bad date", "10.00", "HKD"),      # unreadable rows are skipped
])
LEDGER = _frame([
    ("I2", "2026-09-30", "100.00", "HKD"),
    ("I1", "2026-09-28", "100.00", "HKD"),
    ("I3", "2026-10-15", "100.00", "HKD"),
    ("I4", "2026-10-09", "250.50", "USD"),
    ("P1", "2026-10-14", "-80.00", "HKD"),
    ("I6", "2026-10-20", "99.98", "HKD"),
    ("I7", "2026-08-01", "100.00", "HKD"),   # too old for anyone
])


def test_first_come_exact_amount_within_seven_days():
    matches = baseline_match(BANK, LEDGER)
    assert matches.columns == BASELINE_COLUMNS
    assert matches.select("bank_ids", "ledger_ids").rows() == [("B1", "I1"), ("B2", "I2"), ("B5", "P1")]
    assert set(matches["match_type"]) == {"one_to_one"} and set(matches["status"]) == {"auto"}
    assert (matches["confidence"] == 1.0).all()
    row = matches.row(2, named=True)
    assert (row["bank_amount"], row["ledger_amount"], row["difference"], row["currency"]) == ("-80.00", "-80.00", "0.00", "HKD")
    assert row["explanation"].startswith("exact amount, 2 days apart")
    assert matches["match_id"].is_unique().all()


def test_the_window_is_inclusive_and_configurable():
    bank = _frame([("B1", "2026-10-08", "100.00", "HKD")])
    ledger = _frame([("I1", "2026-10-01", "100.00", "HKD")])
    assert baseline_match(bank, ledger).height == 1  # exactly 7 days
    assert baseline_match(bank, ledger, window_days=6).height == 0


def test_amount_minor_and_date_columns_work_too():
    bank = pl.DataFrame({"id": ["B1"], "date": [date(2026, 10, 1)], "amount_minor": [500], "currency": ["JPY"]})
    ledger = pl.DataFrame({"id": ["I1"], "date": ["2026-10-02"], "amount": ["500"], "currency": ["jpy"]})
    assert baseline_match(bank, ledger)["ledger_ids"].to_list() == ["I1"]
    with pytest.raises(ValueError, match="amount"):
        baseline_match(bank.drop("amount_minor"), ledger)


def _loop(lo, hi):
    pointers, pointer = [], None
    for i in range(len(lo)):
        pointer = lo[i] if pointer is None else max(pointer, lo[i])
        pointers.append(pointer)
        pointer += pointer < hi[i]
    return pointers


@pytest.mark.parametrize("seed", range(5))
def test_the_prefix_scan_equals_the_sequential_greedy(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        lo = np.sort(rng.integers(0, 30, n))
        hi = np.maximum.accumulate(lo + rng.integers(0, 6, n))
        assert greedy_pointers(lo, hi).tolist() == _loop(lo.tolist(), hi.tolist())


def test_command_line_writes_matches_that_the_scorer_reads(tmp_path, capsys):
    BANK.write_csv(tmp_path / "bank.csv")
    LEDGER.write_csv(tmp_path / "ledger.csv")
    pl.DataFrame({"group_id": ["T1", "T2", "T3"], "match_type": ["one_to_one"] * 3,
                  "bank_ids": ["B1", "B2", "B3"], "ledger_ids": ["I1", "I3", "I2"]}).write_csv(tmp_path / "truth.csv")
    out = tmp_path / "out"
    assert main(["--bank", str(tmp_path / "bank.csv"), "--ledger", str(tmp_path / "ledger.csv"), "--out", str(out)]) == 0
    assert "3 matches" in capsys.readouterr().err
    report = evaluate_files(out, tmp_path / "truth.csv", bank_path=tmp_path / "bank.csv")
    assert (report.proposed, report.correct, report.found) == (3, 1, 1)
