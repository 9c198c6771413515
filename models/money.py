"""Exact money: Decimal at the edges, integer minor units inside.

Amounts are parsed from their original text, converted to integer minor units with the
currency's ISO 4217 exponent, and anything that would need rounding is refused. Floats never
touch an amount; they are only used for derived features (ratios, scores).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import polars as pl

from models.errors import PrecisionError

# ISO 4217 minor-unit exponents. Every active code not listed in the exceptions has exponent 2.
_EXPONENT_EXCEPTIONS: dict[str, int] = {
    # no minor unit
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    # three decimals
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # four decimals (units of account)
    "CLF": 4, "UYW": 4,
}
_TWO_DECIMAL_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL
GHS GIP GMD GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR
LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB
PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP
SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL
"""
CURRENCY_EXPONENTS: dict[str, int] = {code: 2 for code in _TWO_DECIMAL_CODES.split()}
CURRENCY_EXPONENTS.update(_EXPONENT_EXCEPTIONS)

_MAX_INTEGER_DIGITS = 15  # keeps every minor amount well inside Int64


def currency_exponent(currency: str) -> int:
    """Return the ISO 4217 minor-unit exponent of ``currency``.

    Raises
    ------
    PrecisionError
        If the code is not an ISO 4217 currency.

    Examples
    --------
    >>> currency_exponent("HKD"), currency_exponent("JPY"), currency_exponent("KWD")
    (2, 0, 3)
    """
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise PrecisionError(f"unknown currency code {currency!r} (expected ISO 4217, e.g. HKD)") from None


def to_minor(amount: str | Decimal | int, currency: str) -> int:
    """Convert an exact amount to integer minor units, refusing anything that would round.

    Parameters
    ----------
    amount
        Decimal, int or decimal text ("1234.50", "-0.05").
    currency
        ISO 4217 code; its exponent fixes the minor unit.

    Raises
    ------
    PrecisionError
        Not a number, or more decimals than the currency allows.

    Examples
    --------
    >>> to_minor("1234.50", "HKD")
    123450
    >>> to_minor("-7", "JPY")
    -7
    """
    exponent = currency_exponent(currency)
    if isinstance(amount, float):
        raise PrecisionError("amounts must be Decimal or text, never float")
    try:
        value = Decimal(amount) if not isinstance(amount, Decimal) else amount
    except InvalidOperation:
        raise PrecisionError(f"not a decimal amount: {amount!r}") from None
    if not value.is_finite():
        raise PrecisionError(f"not a finite amount: {amount!r}")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise PrecisionError(
            f"amount {amount} has more decimals than {currency} allows ({exponent})"
        )
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    """Return the exact Decimal for ``minor`` units of ``currency``.

    Examples
    --------
    >>> from_minor(123450, "HKD")
    Decimal('1234.50')
    """
    exponent = currency_exponent(currency)
    return Decimal(int(minor)).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def format_minor(minor: int, currency: str) -> str:
    """Format minor units as plain decimal text with exactly the currency's decimals."""
    return str(from_minor(minor, currency))


def exponent_expr(currency: pl.Expr) -> pl.Expr:
    """The ISO 4217 exponent of each row's currency code (null for an unknown code)."""
    return currency.replace_strict(CURRENCY_EXPONENTS, default=None, return_dtype=pl.Int64)


def parse_amount_expr(text: pl.Expr, currency: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Vectorized amount parsing for canonical text ("-1234.50").

    Returns
    -------
    (minor, reason)
        ``minor`` is Int64 minor units (null where the row is bad); ``reason`` is null for a good
        row and a human-readable reason for a bad one.
    """
    s = text.str.strip_chars()
    exponent = exponent_expr(currency)
    well_formed = s.str.contains(r"^[+-]?[0-9]+(\.[0-9]+)?$")
    int_digits = s.str.extract(r"^[+-]?([0-9]+)", 1)
    raw_frac = s.str.extract(r"\.([0-9]+)$", 1).fill_null("")
    # trailing zeros beyond the currency's decimals change nothing ("12.340" HKD is exact)
    frac_digits = raw_frac.str.strip_chars_end("0")
    frac_len = frac_digits.str.len_chars().cast(pl.Int64)
    negative = s.str.starts_with("-")
    too_long = int_digits.str.strip_chars_start("0").str.len_chars() > _MAX_INTEGER_DIGITS
    reason = (
        pl.when(s.is_null() | (s == ""))
        .then(pl.lit("amount is empty"))
        .when(exponent.is_null())
        .then(pl.lit("unknown currency code '") + currency.fill_null("") + pl.lit("' (expected ISO 4217)"))
        .when(~well_formed)
        .then(pl.lit("amount '") + s + pl.lit("' is not a decimal number ('.' separator, optional leading sign, no thousands separators or symbols)"))
        .when(too_long)
        .then(pl.lit("amount '") + s + pl.lit("' is too large"))
        .when(frac_len > exponent)
        .then(
            pl.lit("amount '") + s + pl.lit("' has ") + raw_frac.str.len_chars().cast(pl.Utf8)
            + pl.lit(" decimals; ") + currency + pl.lit(" allows ") + exponent.cast(pl.Utf8)
            + pl.lit(" (recon never rounds)")
        )
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    scale_int = pl.lit(10, dtype=pl.Int64).pow(exponent.clip(0, 6)).cast(pl.Int64)
    scale_frac = pl.lit(10, dtype=pl.Int64).pow((exponent - frac_len).clip(0, 6)).cast(pl.Int64)
    frac_value = pl.when(frac_len > 0).then(frac_digits.cast(pl.Int64, strict=False)).otherwise(0)
    magnitude = int_digits.cast(pl.Int64, strict=False) * scale_int + frac_value * scale_frac
    minor = pl.when(reason.is_null()).then(
        pl.when(negative).then(-magnitude).otherwise(magnitude)
    )
    return minor.cast(pl.Int64), reason


def format_minor_expr(minor: pl.Expr, currency: pl.Expr) -> pl.Expr:
    """Vectorized inverse of :func:`parse_amount_expr`: minor units -> exact decimal text."""
    exponent = exponent_expr(currency)
    scale = pl.lit(10, dtype=pl.Int64).pow(exponent.clip(0, 6)).cast(pl.Int64)
    magnitude = minor.abs()
    whole = (magnitude // scale).cast(pl.Utf8)
    frac = (magnitude % scale).cast(pl.Utf8).str.zfill(exponent.clip(1, 6))
    sign = pl.when(minor < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    body = pl.when(exponent == 0).then(whole).otherwise(whole + pl.lit(".") + frac)
    return pl.when(minor.is_null()).then(pl.lit(None, dtype=pl.Utf8)).otherwise(sign + body)
