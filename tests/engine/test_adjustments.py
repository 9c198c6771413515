"""A proposal whose amounts differ balances with one adjustment line naming its cause."""

from datetime import date

import polars as pl
import pytest

from engine.evaluate import parse_adjustments
from engine.pipeline import match_frames
from models.schema import BANK_SCHEMA, LEDGER_SCHEMA
from rules import default_rules


def _frame(schema, rows):
    base = {c: "" for c in schema if schema[c] == pl.Utf8}
    data = [{**base, "attributes": "{}", "source_file": "t.csv", "source_line": i + 2, **r} for i, r in enumerate(rows)]
    return pl.DataFrame(data, schema=schema)


@pytest.mark.parametrize(
    "bank_amount, ledger_amount, expected",
    [
        # money in
        (776500, 780000, "bank_charge -35.00 (6800)"),  # remitting bank took HKD 35
        (750000, 780000, "short_payment -300.00 (6900)"),  # paid less than the charge limit allows
        (781000, 780000, "overpayment 10.00 (2190)"),
        (780000, 780000, ""),
        # money out
        (-781500, -780000, "bank_charge -15.00 (6800)"),  # our bank's fee on the transfer
        (-777000, -780000, "short_payment 30.00 (6900)"),  # discount taken
    ],
)
def test_difference_becomes_one_balancing_adjustment(bank_amount, ledger_amount, expected):
    rules = default_rules().with_changes(amount={"tolerance_max": "400.00", "tolerance_pct": "5"})
    bank = _frame(BANK_SCHEMA, [{"id": "B1", "date": date(2026, 10, 5), "amount_minor": bank_amount,
                                 "currency": "HKD", "description": "FPS CR KAM WING TRADING LTD INV-2026-00123"}])
    ledger = _frame(LEDGER_SCHEMA, [{"id": "INV-2026-00123", "date": date(2026, 9, 20), "amount_minor": ledger_amount,
                                     "currency": "HKD", "counterparty": "Kam Wing Trading Limited",
                                     "reference": "INV-2026-00123", "type": "invoice", "due_date": None}])
    proposal = match_frames(bank, ledger, rules).proposals.row(0, named=True)
    assert proposal["adjustments"] == expected
    # bank = ledger + adjustments, exactly, and the evaluator reads the line back
    adjustments = parse_adjustments(proposal["adjustments"])
    assert ledger_amount + sum(amount for _, amount in adjustments) == bank_amount
    if expected:
        assert "balanced by " + expected in proposal["explanation"]
