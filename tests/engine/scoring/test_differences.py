"""Why a bank amount differs from the ledger: the cause a reviewer sees on the adjustment line."""

import polars as pl
import pytest

from engine.scoring.differences import cause, explained
from rules.model import default_rules

RULES = default_rules()


@pytest.mark.parametrize(
    ("bank", "ledger", "expected_cause", "is_explained"),
    [
        (1136417, 1137417, "bank_charge", True),  # HKD 10.00 short: a round remitting-bank fee
        (792000, 800000, "short_payment", True),  # exactly 1% short: a prompt-payment discount
        (2011011, 2031324, "short_payment", True),  # 1% of 20,313.24 to the cent
        (224000, 224181, "short_payment", True),  # paid down to whole tens
        (999913, 1000000, "short_payment", False),  # 0.87 short, no recognisable cause
        (1010000, 1000000, "overpayment", False),  # paid 100.00 more
        (-1010000, -1000000, "bank_charge", True),  # money out: paid a 100.00 fee on top
        (-990000, -1000000, "short_payment", True),  # money out: took a 1% discount
    ],
)
def test_difference_cause(bank, ledger, expected_cause, is_explained):
    frame = pl.DataFrame({"amount_bank": [bank], "amount_ledger": [ledger], "currency": ["HKD"]})
    got = frame.select(cause(RULES).alias("c"), explained(RULES).alias("e")).row(0)
    assert got == (expected_cause, is_explained)
