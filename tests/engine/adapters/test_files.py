"""The files target ``dir:PATH``: status.csv and journal.csv (and Parquet copies), re-runnable
without duplicates, reversals appended, files replaced whole."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine.adapters import JournalLine, MatchLine, WriteItem, open_target
from engine.adapters.files import FilesAdapter
from models.errors import TransientAdapterError

D = date(2026, 10, 2)


def _item(match_id="M-1", seq=7, action="write", charge=12000, currency="HKD", payer="陳大文", n=1):
    lines = (
        MatchLine("bank", f"B{n}", D, 294633, currency, payer),
        MatchLine("ledger", f"INV-{n}", date(2026, 9, 1), 306633, currency, payer),
    )
    memo = f"bank_charge: bank B{n} / ledger INV-{n} ({payer})"
    journal = (
        JournalLine(D, "6800", charge, 0, currency, match_id, memo),
        JournalLine(D, "1100", 0, charge, currency, match_id, memo),
    ) if charge else ()
    if action == "reverse":
        journal = tuple(JournalLine(D, j.account, j.credit_minor, j.debit_minor, j.currency, j.match_id,
                                    "reversal: " + j.memo) for j in journal)
    return WriteItem(match_id, seq, action, "one_to_one", lines, journal, "")


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _header(path: Path) -> str:
    return path.read_text(encoding="utf-8").splitlines()[0]


def test_write_gives_status_and_balanced_journal_with_exact_headers(tmp_path):
    adapter = open_target(f"dir:{tmp_path / 'wb'}", tmp_path)
    assert adapter.capabilities == frozenset({"status", "journals", "reversal"})
    results = adapter.write([_item()])
    adapter.close()
    assert [(r.key, r.state) for r in results] == [("M-1:7", "written")]
    folder = tmp_path / "wb"
    assert _header(folder / "status.csv") == "side,line_id,match_id,state"
    assert _header(folder / "journal.csv") == "date,account,debit,credit,currency,match_id,memo"
    assert [(r["side"], r["line_id"], r["match_id"], r["state"]) for r in _rows(folder / "status.csv")] == [
        ("bank", "B1", "M-1", "reconciled"), ("ledger", "INV-1", "M-1", "reconciled")]
    journal = _rows(folder / "journal.csv")
    assert [(r["date"], r["account"], r["debit"], r["credit"], r["currency"]) for r in journal] == [
        ("2026-10-02", "6800", "120.00", "0.00", "HKD"), ("2026-10-02", "1100", "0.00", "120.00", "HKD")]
    # names round-trip byte-exact
    assert journal[0]["memo"] == "bank_charge: bank B1 / ledger INV-1 (陳大文)"
    assert "陳大文".encode() in (folder / "journal.csv").read_bytes()


def test_second_run_answers_already_and_writes_nothing(tmp_path):
    target = f"dir:{tmp_path}"
    first = open_target(target, tmp_path)
    first.write([_item()])
    first.close()
    before = {name: (tmp_path / name).read_bytes() for name in ("status.csv", "journal.csv")}
    again = open_target(target, tmp_path)
    results = again.write([_item(), _item(match_id="M-2", seq=8, charge=0, n=2)])
    again.close()
    assert [(r.key, r.state) for r in results] == [("M-1:7", "already"), ("M-2:8", "written")]
    assert (tmp_path / "journal.csv").read_bytes() == before["journal.csv"]  # M-2 has no journal
    assert len(_rows(tmp_path / "status.csv")) == 4
    # the same key twice in one batch is written once
    third = open_target(target, tmp_path)
    twice = third.write([_item(match_id="M-3", seq=9, n=3), _item(match_id="M-3", seq=9, n=3)])
    third.close()
    assert [r.state for r in twice] == ["written", "already"]
    assert len(_rows(tmp_path / "journal.csv")) == 4


def test_reverse_reopens_lines_and_appends_mirrored_journal(tmp_path):
    adapter = FilesAdapter(tmp_path)
    adapter.write([_item()])
    results = adapter.reverse([_item(seq=12, action="reverse")])
    again = adapter.reverse([_item(seq=12, action="reverse")])
    adapter.close()
    assert [r.state for r in results] == ["written"] and [r.state for r in again] == ["already"]
    assert {(r["line_id"], r["match_id"], r["state"]) for r in _rows(tmp_path / "status.csv")} == {
        ("B1", "M-1", "open"), ("INV-1", "M-1", "open")}
    journal = _rows(tmp_path / "journal.csv")
    assert [(r["account"], r["debit"], r["credit"]) for r in journal] == [
        ("6800", "120.00", "0.00"), ("1100", "0.00", "120.00"),     # the write, kept
        ("6800", "0.00", "120.00"), ("1100", "120.00", "0.00")]     # its mirror, appended
    assert sum(Decimal(r["debit"]) for r in journal) == sum(Decimal(r["credit"]) for r in journal)


def test_a_match_in_force_is_not_written_twice_under_another_key(tmp_path):
    adapter = FilesAdapter(tmp_path)
    adapter.write([_item(seq=7)])
    [again] = adapter.write([_item(seq=9)])
    adapter.reverse([_item(seq=12, action="reverse")])
    [after_undo] = adapter.write([_item(seq=15)])
    adapter.close()
    assert (again.state, again.reason) == ("already", "M-1 is written here already")
    assert after_undo.state == "written"
    assert [r["debit"] for r in _rows(tmp_path / "journal.csv")] == ["120.00", "0.00", "0.00", "120.00",
                                                                      "120.00", "0.00"]


def test_reverse_leaves_a_line_reconciled_by_a_later_match(tmp_path):
    adapter = FilesAdapter(tmp_path)
    adapter.write([_item()])
    later = WriteItem("M-9", 20, "write", "one_to_one", (MatchLine("bank", "B1", D, 294633, "HKD"),
                                                         MatchLine("ledger", "INV-7", D, 294633, "HKD")))
    adapter.write([later])
    adapter.reverse([_item(seq=12, action="reverse")])
    adapter.close()
    status = {(r["side"], r["line_id"]): (r["match_id"], r["state"]) for r in _rows(tmp_path / "status.csv")}
    assert status[("bank", "B1")] == ("M-9", "reconciled")
    assert status[("ledger", "INV-1")] == ("M-1", "open")


def test_reverse_of_a_match_never_written_here_changes_nothing(tmp_path):
    adapter = FilesAdapter(tmp_path)
    [result] = adapter.reverse([_item(seq=12, action="reverse")])
    adapter.close()
    assert result.state == "written" and "nothing to reverse" in result.reason
    assert _rows(tmp_path / "journal.csv") == [] and _rows(tmp_path / "status.csv") == []


@pytest.mark.parametrize(("currency", "minor", "text", "zero"), [
    ("JPY", 500, "500", "0"), ("KWD", 1250, "1.250", "0.000"), ("HKD", 5, "0.05", "0.00")])
def test_amounts_are_exact_text_in_the_currency_decimals(tmp_path, currency, minor, text, zero):
    adapter = FilesAdapter(tmp_path)
    adapter.write([_item(charge=minor, currency=currency)])
    adapter.close()
    journal = _rows(tmp_path / "journal.csv")
    assert [(r["debit"], r["credit"], r["currency"]) for r in journal] == [
        (text, zero, currency), (zero, text, currency)]
    typed = pl.read_parquet(tmp_path / "journal.parquet")
    assert typed["debit"].to_list()[0] == Decimal(text)
    assert typed["date"].dtype == pl.Date


def test_parquet_copies_hold_the_same_rows(tmp_path):
    adapter = FilesAdapter(tmp_path)
    adapter.write([_item(), _item(match_id="M-2", seq=8, payer="金港貿易有限公司", n=2)])
    adapter.close()
    assert pl.read_parquet(tmp_path / "status.parquet").equals(pl.read_csv(tmp_path / "status.csv"))
    journal = pl.read_csv(tmp_path / "journal.csv", infer_schema=False)
    typed = pl.read_parquet(tmp_path / "journal.parquet")
    assert typed["memo"].to_list() == journal["memo"].to_list()
    assert "金港貿易有限公司" in typed["memo"].to_list()[-1]


def test_unbalanced_journal_is_refused_and_the_rest_written(tmp_path):
    adapter = FilesAdapter(tmp_path)
    bad = WriteItem("M-2", 8, "write", "one_to_one", _item().lines,
                    (JournalLine(D, "6800", 100, 0, "HKD", "M-2", "x"),))
    results = adapter.write([bad, _item()])
    adapter.close()
    assert results[0].state == "failed" and "does not balance" in results[0].reason
    assert results[1].state == "written"
    assert {r["match_id"] for r in _rows(tmp_path / "status.csv")} == {"M-1"}


def test_files_out_of_date_after_a_crash_are_made_again_on_open(tmp_path):
    adapter = FilesAdapter(tmp_path)
    adapter.write([_item()])
    # a kill -9 before close(): the keys are committed, the CSV files not yet made
    adapter._db.close()
    adapter._db = None
    adapter._release()
    assert _rows(tmp_path / "journal.csv") == []  # made empty when the folder was opened
    reopened = FilesAdapter(tmp_path)
    assert len(_rows(tmp_path / "journal.csv")) == 2
    assert [r.state for r in reopened.write([_item()])] == ["already"]
    reopened.close()


def test_one_writer_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr("engine.adapters.files._LOCK_WAIT_SECONDS", 0.2)
    first = FilesAdapter(tmp_path)
    with pytest.raises(TransientAdapterError, match="another process is writing this folder"):
        FilesAdapter(tmp_path)
    first.close()
    FilesAdapter(tmp_path).close()
