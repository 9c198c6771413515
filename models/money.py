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


def display_minor(minor: int, currency: str) -> str:
    """Minor units as a person reads them: thousands grouped, exactly the currency's decimals
    (for pages and reports; files keep :func:`format_minor`'s plain text).

    Examples
    --------
    >>> display_minor(-123456789, "HKD"), display_minor(1234567, "JPY"), display_minor(12345, "KWD")
    ('-1,234,567.89', '1,234,567', '12.345')
    """
    return f"{from_minor(minor, currency):,}"


def exponent_expr(currency: pl.Expr) -> pl.Expr:
    """The ISO 4217 exponent of each row's currency code (null for an unknown code)."""
    return currency.replace_strict(CURRENCY_EXPONENTS, default=None, return_dtype=pl.Int64)


_AMOUNT_PATTERN = r"^[+-]?[0-9]+(\.[0-9]+)?$"
_NULL_TEXT = pl.lit(None, dtype=pl.Utf8)
#: the intermediate fields of :func:`parse_amount_struct`, dropped from its result
_AMOUNT_STAGES = [
    "s", "currency", "exponent", "well_formed", "parts", "whole", "raw_frac", "frac_digits",
    "negative", "integer_length", "frac_len", "problem", "bad_s", "bad_currency", "bad_exponent", "bad_frac",
]


def parse_amount_struct(text: pl.Expr, currency: pl.Expr) -> pl.Expr:
    """:func:`parse_amount_expr` as one ``Struct`` expression with fields ``minor`` and ``reason``.

    Every intermediate (the stripped text, the exponent, the digit parts) is materialised once
    as a struct field and read by the next stage (an eager ``select`` does not eliminate
    common subexpressions), and the reason text is only built for the bad rows. Evaluate it
    once into a column and read both fields from there when both are needed.
    """
    f = pl.field
    stage = pl.struct(s=text.str.strip_chars(), currency=currency).struct.with_fields(
        exponent=exponent_expr(f("currency")),
        well_formed=f("s").str.contains(_AMOUNT_PATTERN),
    )
    # the digit parts of the well-formed amounts ("-12.340" -> "-12", "340"; null otherwise)
    stage = stage.struct.with_fields(
        parts=pl.when(f("well_formed")).then(f("s")).str.split_exact(".", 1)
    ).struct.with_fields(
        whole=f("parts").struct.field("field_0"),
        raw_frac=f("parts").struct.field("field_1").fill_null(""),
    )
    # trailing zeros beyond the currency's decimals change nothing ("12.340" HKD is exact)
    stage = stage.struct.with_fields(
        frac_digits=f("raw_frac").str.strip_chars_end("0"),
        negative=f("whole").str.starts_with("-"),
        integer_length=f("whole").str.strip_chars_start("+-0").str.len_chars(),
    ).struct.with_fields(frac_len=f("frac_digits").str.len_chars().cast(pl.Int64))
    # which reason applies, in the order they are checked (null: the amount is fine)
    stage = stage.struct.with_fields(
        problem=pl.when(f("s").is_null() | (f("s") == ""))
        .then(1)
        .when(f("exponent").is_null())
        .then(2)
        .when(~f("well_formed"))
        .then(3)
        .when(f("integer_length") > _MAX_INTEGER_DIGITS)
        .then(4)
        .when(f("frac_len") > f("exponent"))
        .then(5)
    )
    # the texts quoted in a reason, kept for the bad rows only (null elsewhere, so building
    # the reason costs nothing on good rows)
    bad = f("problem").is_not_null()
    stage = stage.struct.with_fields(
        bad_s=pl.when(bad).then(f("s")),
        bad_currency=pl.when(bad).then(f("currency")),
        bad_exponent=pl.when(bad).then(f("exponent")),
        bad_frac=pl.when(bad).then(f("raw_frac")),
    )
    problem, s = f("problem"), f("bad_s")
    reason = (
        pl.when(problem == 1)
        .then(pl.lit("amount is empty"))
        .when(problem == 2)
        .then(pl.lit("unknown currency code '") + f("bad_currency").fill_null("") + pl.lit("' (expected ISO 4217)"))
        .when(problem == 3)
        .then(pl.lit("amount '") + s + pl.lit("' is not a decimal number ('.' separator, optional leading sign, no thousands separators or symbols)"))
        .when(problem == 4)
        .then(pl.lit("amount '") + s + pl.lit("' is too large"))
        .when(problem == 5)
        .then(
            pl.lit("amount '") + s + pl.lit("' has ") + f("bad_frac").str.len_chars().cast(pl.Utf8)
            + pl.lit(" decimals; ") + f("bad_currency") + pl.lit(" allows ") + f("bad_exponent").cast(pl.Utf8)
            + pl.lit(" (recon never rounds)")
        )
        .otherwise(_NULL_TEXT)
    )
    exponent, frac_len = f("exponent"), f("frac_len")
    scale_int = pl.lit(10, dtype=pl.Int64).pow(exponent.clip(0, 6)).cast(pl.Int64)
    scale_frac = pl.lit(10, dtype=pl.Int64).pow((exponent - frac_len).clip(0, 6)).cast(pl.Int64)
    frac_value = pl.when(frac_len > 0).then(f("frac_digits").cast(pl.Int64, strict=False)).otherwise(0)
    whole = f("whole").cast(pl.Int64, strict=False)
    magnitude = whole.abs() * scale_int + frac_value * scale_frac
    minor = pl.when(problem.is_null()).then(
        pl.when(f("negative")).then(-magnitude).otherwise(magnitude)
    )
    done = stage.struct.with_fields(minor=minor.cast(pl.Int64), reason=reason)
    return done.struct.drop(_AMOUNT_STAGES)


def parse_amount_expr(text: pl.Expr, currency: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Vectorized amount parsing for canonical text ("-1234.50").

    Returns
    -------
    (minor, reason)
        ``minor`` is Int64 minor units (null where the row is bad); ``reason`` is null for a good
        row and a human-readable reason for a bad one. Both read :func:`parse_amount_struct`;
        use that directly to parse once when both are needed.
    """
    parsed = parse_amount_struct(text, currency)
    # named as before the struct: the minor units after the text, the reason "literal"
    name = text.meta.output_name(raise_if_undetermined=False) or "literal"
    return parsed.struct.field("minor").alias(name), parsed.struct.field("reason").alias("literal")


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
