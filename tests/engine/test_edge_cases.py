"""Runs that have nothing to propose still finish and say why each line is unmatched."""

from datetime import date

import polars as pl

from engine.pipeline import match_frames
from models.schema import BANK_SCHEMA, LEDGER_SCHEMA
from rules import default_rules


def _frame(schema, rows):
    base = {c: "" for c in schema if schema[c] == pl.Utf8}
    data = [{**base, "attributes": "{}", "source_file": "t.csv", "source_line": i + 2, **r} for i, r in enumerate(rows)]
    return pl.DataFrame(data, schema=schema)


BANK = _frame(BANK_SCHEMA, [{"id": "B1", "date": date(2026, 10, 5), "amount_minor": 100000, "currency": "HKD",
                             "description": "FPS CR CHAN TAI MAN"}])
LEDGER = _frame(LEDGER_SCHEMA, [{"id": "RCPT-1", "date": date(2026, 10, 5), "amount_minor": 99000, "currency": "HKD",
                                 "counterparty": "Wong Siu Ming", "type": "receipt", "due_date": None}])


def test_empty_bank_side():
    out = match_frames(BANK.clear(), LEDGER, default_rules())
    assert out.proposals.height == 0
    assert out.unmatched_ledger["id"].to_list() == ["RCPT-1"]
    assert out.unmatched_ledger["reason"].item().startswith("no bank line")


def test_empty_ledger_side():
    out = match_frames(BANK, LEDGER.clear(), default_rules())
    assert out.proposals.height == 0 and out.unmatched_bank["id"].to_list() == ["B1"]


def test_only_weak_candidates_are_reported_not_proposed():
    # HKD 10 apart, different payer: a candidate, but far below the review threshold
    out = match_frames(BANK, LEDGER, default_rules())
    assert out.proposals.height == 0
    reason = out.unmatched_bank["reason"].item()
    assert "RCPT-1" in reason and "below the review threshold" in reason
