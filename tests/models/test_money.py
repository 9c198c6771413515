from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.errors import PrecisionError
from models.money import (
    currency_exponent,
    format_minor,
    format_minor_expr,
    from_minor,
    parse_amount_expr,
    to_minor,
)


@pytest.mark.parametrize(
    "text, currency, minor",
    [
        ("1234.50", "HKD", 123450),
        ("-0.05", "HKD", -5),
        ("12.340", "HKD", 1234),  # trailing zero beyond the exponent is still exact
        ("7", "JPY", 7),
        ("-1.234", "KWD", -1234),
        ("0", "USD", 0),
        ("+250.00", "HKD", 25000),  # an explicit plus sign is accepted
    ],
)
def test_parse_exact_amounts(text, currency, minor):
    assert to_minor(text, currency) == minor
    df = pl.DataFrame({"a": [text], "c": [currency]})
    m, reason = parse_amount_expr(pl.col("a"), pl.col("c"))
    row = df.select(m=m, r=reason).row(0)
    assert row == (minor, None)


@pytest.mark.parametrize(
    "text, currency, fragment",
    [
        ("12.345", "HKD", "has 3 decimals; HKD allows 2"),
        ("1.5", "JPY", "JPY allows 0"),
        ("1,000.00", "HKD", "not a decimal number"),
        ("$12", "USD", "not a decimal number"),
        ("", "HKD", "empty"),
        ("10.00", "XXX", "unknown currency"),
    ],
)
def test_parse_rejects_with_reason(text, currency, fragment):
    df = pl.DataFrame({"a": [text], "c": [currency]})
    m, reason = parse_amount_expr(pl.col("a"), pl.col("c"))
    got_minor, got_reason = df.select(m=m, r=reason).row(0)
    assert got_minor is None
    assert fragment in got_reason


def test_scalar_rejects_rounding_and_floats():
    with pytest.raises(PrecisionError):
        to_minor("12.345", "HKD")
    with pytest.raises(PrecisionError):
        to_minor(12.5, "HKD")  # floats are refused outright
    with pytest.raises(PrecisionError):
        currency_exponent("HKX")


@given(
    st.sampled_from(["HKD", "USD", "JPY", "KWD", "CNY"]),
    st.integers(min_value=-(10**14), max_value=10**14),
)
def test_round_trip_minor_text_minor(currency, minor):
    text = format_minor(minor, currency)
    assert to_minor(text, currency) == minor
    assert from_minor(minor, currency) == Decimal(text)
    df = pl.DataFrame({"m": [minor], "c": [currency]})
    assert df.select(format_minor_expr(pl.col("m"), pl.col("c"))).item() == text
    m, _ = parse_amount_expr(pl.lit(text), pl.lit(currency))
    assert pl.select(m).item() == minor
