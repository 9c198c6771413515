"""Tests of format detection, the generic multi-file loader and ``inspect_file`` (feeds stage)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

import feeds
from feeds import registry
from feeds.canonical_csv import identify as canonical_identify
from feeds.inspect import format_inspection, inspect_file
from models.errors import FeedFormatError
from tests.feeds import helpers

DATA = Path(__file__).parent / "data"
SHARED = helpers.REALDATA
needs_shared = helpers.needs_shared()


def test_canonical_csv_follows_the_protocol():
    from feeds import canonical_csv

    assert canonical_csv.FORMAT == "canonical_csv" and canonical_csv.SIDES == ("bank", "ledger")
    assert canonical_identify(b'\xef\xbb\xbf"ID","Date","Amount","Currency"\r\n', "x.csv")
    assert canonical_identify(b"\n\ndate,amount,currency\n", "x")
    assert not canonical_identify(b"Date,Description,Amount\n", "x")
    result = canonical_csv.read(str(DATA / "bank_sample.csv"), side="bank")
    assert result.format == "canonical_csv" and result.rows_read == result.frame.height + result.rejects.height


def test_detect_by_content_not_extension(tmp_path):
    disguised = tmp_path / "statement.txt"
    disguised.write_bytes((DATA / "bank_sample.csv").read_bytes())
    assert registry.detect(str(disguised), "bank").FORMAT == "canonical_csv"
    stripe_as_txt = tmp_path / "report.txt"
    stripe_as_txt.write_bytes((DATA / "stripe_payout_sample.csv").read_bytes())
    assert registry.detect(str(stripe_as_txt), "processor").FORMAT == "stripe"


def test_not_recognised_lists_formats_and_next_step(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(FeedFormatError) as error:
        registry.detect(str(path), "bank")
    message = str(error.value)
    for name in ("canonical CSV", "OFX", "MT940", "camt", "bank CSV profile"):
        assert name in message
    assert "--format" in message and f"recon profile {path}" in message
    with pytest.raises(FeedFormatError, match="file not found"):
        registry.detect(str(tmp_path / "missing.csv"), "bank")
    with pytest.raises(FeedFormatError, match="is empty"):
        (tmp_path / "empty.csv").write_bytes(b"")
        registry.detect(str(tmp_path / "empty.csv"), "bank")


def test_format_names_and_side_checks(tmp_path):
    assert "bank_csv:hsbc_hk_savings" in registry.format_names()
    with pytest.raises(FeedFormatError, match="unknown format 'nope'"):
        registry.read_any(str(DATA / "bank_sample.csv"), "bank", format="nope")
    with pytest.raises(FeedFormatError, match="cannot be read as the processor side"):
        registry.read_any(str(DATA / "bank_sample.csv"), "processor", format="canonical_csv")
    with pytest.raises(FeedFormatError, match="unknown side"):
        registry.read_any(str(DATA / "bank_sample.csv"), "banks")


def test_missing_module_only_matters_when_its_format_is_needed(monkeypatch):
    monkeypatch.setitem(registry.FORMAT_MODULES, "ghost", "feeds.ghost_format_that_does_not_exist")
    # detection of other formats goes on
    assert registry.detect(str(DATA / "bank_sample.csv"), "bank").FORMAT == "canonical_csv"
    with pytest.raises(FeedFormatError, match=r"feeds\.ghost_format_that_does_not_exist\) is not available"):
        registry.read_any(str(DATA / "bank_sample.csv"), "bank", format="ghost")


def test_tie_between_two_modules_is_broken_by_extension(monkeypatch, tmp_path):
    fake = types.ModuleType("feeds.fake_twin")
    fake.FORMAT, fake.SIDES = "fake_twin", ("bank",)
    fake.identify = lambda head, path: head.startswith(b"TWIN")
    canon = types.ModuleType("feeds.fake_other")
    canon.FORMAT, canon.SIDES = "fake_other", ("bank",)
    canon.identify = lambda head, path: head.startswith(b"TWIN")
    monkeypatch.setitem(sys.modules, "feeds.fake_twin", fake)
    monkeypatch.setitem(sys.modules, "feeds.fake_other", canon)
    monkeypatch.setattr(registry, "FORMAT_MODULES", {"fake_other": "feeds.fake_other", "fake_twin": "feeds.fake_twin"})
    monkeypatch.setitem(registry._EXTENSIONS, "fake_twin", (".twin",))
    path = tmp_path / "a.twin"
    path.write_bytes(b"TWIN data")
    assert registry.detect(str(path), "bank").FORMAT == "fake_twin"
    other = tmp_path / "a.dat"
    other.write_bytes(b"TWIN data")
    assert registry.detect(str(other), "bank").FORMAT == "fake_other"  # priority order


def test_load_bank_mixes_formats_and_keeps_each_line_once(tmp_path):
    profile_csv = tmp_path / "hsbc.csv"
    profile_csv.write_text(
        "Date,Description,Billing amount,Billing currency,Balance,Balance currency\n"
        '05/01/2026,陳大文 payment,"1,000.00"\t,HKD,"2,000.00"\t,HKD\n'
        "06/01/2026,Fee,-5.00,HKD,1995.00,HKD\n",
        encoding="utf-8",
    )
    canonical = str(DATA / "bank_sample.csv")
    loaded = feeds.load_bank([canonical, str(profile_csv), str(profile_csv)])
    first = feeds.load_bank([canonical])
    assert loaded.frame.height == first.frame.height + 2
    assert [s.duplicates for s in loaded.stats] == [0, 0, 2]
    assert loaded.duplicates["same_content"].all()
    assert "陳大文 payment" in loaded.frame["description"].to_list()
    # the old call shape still works
    assert feeds.load_ledger([str(DATA / "ledger_sample.csv")]).frame.height > 0
    assert feeds.load_bank([canonical], format="canonical_csv").frame.height == first.frame.height


def test_inspect_own_bank_csv_with_balances(tmp_path):
    path = tmp_path / "csb.csv"
    path.write_text(
        "bank_code,branch_code,account_key,account_number,currency,initial_date,final_date,"
        "initial_balance,final_balance,item1,item2,reference1,reference2,transaction_date,value_date,amount\n"
        "1,2,3,4,EUR,2026-01-01,2026-01-31,100.00,150.00,Café,,,,2026-01-05,2026-01-05,70.00\n"
        "1,2,3,4,EUR,2026-01-01,2026-01-31,100.00,150.00,Müller,,,,2026-01-06,2026-01-06,-10.00\n",
        encoding="utf-8",
    )
    summary = inspect_file(str(path))
    assert summary["format"] == "bank_csv" and summary["transactions"] == 2
    assert summary["totals_in"] == {"EUR": "70.00"} and summary["totals_out"] == {"EUR": "10.00"}
    assert summary["date_range"] == ["2026-01-05", "2026-01-06"]
    check = summary["balance_checks"][0]
    assert (check["status"], check["expected_closing"], check["closing"], check["difference"]) == (
        "mismatch", "160.00", "150.00", "-10.00"
    )
    text = format_inspection(summary)
    assert "MISMATCH" in text and "difference -10.00" in text
    json.dumps(summary)  # JSON-ready


def test_inspect_rejects_and_processor_side():
    summary = inspect_file(str(DATA / "bank_bad_rows.csv"))
    assert summary["rejects"] and {"line", "reason"} <= set(summary["rejects"][0])
    assert summary["transactions"] + len(summary["rejects"]) == summary["rows_read"]
    stripe = inspect_file(str(DATA / "stripe_payout_sample.csv"), side="processor")
    assert stripe["format"] == "stripe" and stripe["currencies"] == ["HKD", "JPY"]
    assert stripe["totals_in"]["JPY"] == "964"


@needs_shared
@pytest.mark.parametrize(
    ("name", "side", "statuses"),
    [
        ("mt940/rabobank_nl_iban.sta", "bank", {"ok"}),
        ("mt940/abnamro_nl_two_statements.sta", "bank", {"mismatch"}),
        ("mt940/knab_nl.sta", "bank", {"ok", "mismatch"}),
        ("camt/genkgo_camt053_001_02_two_statements.xml", "bank", {"ok"}),
        ("camt/oca_camt053_001_02_abnamro_nl.xml", "bank", {"mismatch"}),
        ("bank_csv/hledger_csb43_spain_flattened.csv", "bank", {"ok"}),
        ("paypal/ledgerautosync_venmo_statement.csv", "processor", {"ok"}),
    ],
)
def test_inspect_real_statement_balance_checks(name, side, statuses):
    summary = inspect_file(str(SHARED / name), side=side)
    assert {c["status"] for c in summary["balance_checks"]} == statuses
    assert "balance check" in format_inspection(summary)
