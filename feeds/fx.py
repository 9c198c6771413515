"""Feeds stage: read an FX rates CSV into the canonical rates table.

The file has a header and the columns ``date, base, quote, rate`` (any order, case-insensitive;
other columns are ignored): on ``date``, one ``base`` buys ``rate`` units of ``quote``.
The rate is kept as its exact text (``rate_text``); ``rate`` (Float64) is derived for scoring
features only and must never be used to convert money.
"""

from __future__ import annotations

import datetime as dt
from os import PathLike

import polars as pl

from feeds.canonical_csv import (
    as_schema,
    currency_exprs,
    date_exprs,
    read_raw_table,
    reject_frame,
    resolve_columns,
)
from models.schema import REJECTS_SCHEMA

__all__ = ["FX_SCHEMA", "rate_on", "read_fx_csv"]

#: columns of the canonical FX rates frame, in order
FX_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date,
    "base": pl.Utf8,
    "quote": pl.Utf8,
    "rate_text": pl.Utf8,  # the rate exactly as written (surrounding blanks removed)
    "rate": pl.Float64,  # derived from rate_text, for features only
    "source_file": pl.Utf8,
    "source_line": pl.Int64,
}

_FX_COLUMNS = ("date", "base", "quote", "rate")
_RATE_PATTERN = r"^[0-9]+(\.[0-9]+)?$"


def _normalised_rate(text: pl.Expr) -> pl.Expr:
    """Canonical decimal text of a well-formed rate, so that "0.1280" and "0.128" compare equal."""
    whole = text.str.extract(r"^([0-9]+)", 1).str.strip_chars_start("0")
    fraction = text.str.extract(r"\.([0-9]+)$", 1).fill_null("").str.strip_chars_end("0")
    whole = pl.when(whole == "").then(pl.lit("0")).otherwise(whole)
    return pl.when(fraction == "").then(whole).otherwise(whole + pl.lit(".") + fraction)


def read_fx_csv(path: str | PathLike[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read FX rates (``date, base, quote, rate``).

    Parameters
    ----------
    path
        The CSV file (UTF-8, header row); kept as given in ``source_file``.

    Returns
    -------
    (rates, rejects)
        ``rates`` in :data:`FX_SCHEMA`, one row per (date, base, quote), in file order;
        ``rejects`` in ``REJECTS_SCHEMA``. A row is rejected when its date is not YYYY-MM-DD,
        a code is not ISO 4217, base equals quote, the rate is not a positive decimal number,
        or the same (date, base, quote) was already given with a *different* rate (the later
        row is rejected; a repeat with the same rate is dropped silently).

    Raises
    ------
    FeedFormatError
        The file cannot be read at all or lacks one of the four columns.

    Examples
    --------
    >>> rates, rejects = read_fx_csv("tests/feeds/data/fx_sample.csv")  # doctest: +SKIP
    >>> rates.select("date", "base", "quote", "rate_text").row(0)  # doctest: +SKIP
    (datetime.date(2026, 1, 5), 'USD', 'HKD', '7.8125')
    """
    table = read_raw_table(path, what="FX rates CSV")
    columns, _extras = resolve_columns(
        table,
        _FX_COLUMNS,
        _FX_COLUMNS,
        what="FX rates CSV",
        hint="the header must be date,base,quote,rate (rate = units of quote per one base)",
    )
    date, date_reason = date_exprs(pl.col(columns["date"]), "date", required=True)
    base, base_reason = currency_exprs(pl.col(columns["base"]), "base")
    quote, quote_reason = currency_exprs(pl.col(columns["quote"]), "quote")
    rate = pl.col(columns["rate"]).str.strip_chars()
    rate_reason = (
        pl.when(rate.is_null() | (rate == ""))
        .then(pl.lit("rate is empty"))
        .when(~rate.str.contains(_RATE_PATTERN) | ~rate.str.contains("[1-9]"))
        .then(
            pl.lit("rate '")
            + rate
            + pl.lit("' is not a positive decimal number ('.' separator, e.g. 7.8125)")
        )
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    checked = table.rows.with_columns(
        _date=date,
        _base=base,
        _quote=quote,
        _rate=rate,
        _r_date=date_reason,
        _r_base=base_reason,
        _r_rate=rate_reason,
        _r_quote=pl.when(quote_reason.is_not_null())
        .then(quote_reason)
        .when(base_reason.is_null() & (base == quote))
        .then(
            pl.lit("base and quote are both '") + quote + pl.lit("'; a rate needs two currencies")
        ),
    )
    checks = sorted(
        ((name, f"_r_{name}") for name in _FX_COLUMNS),
        key=lambda item: int(columns[item[0]][1:]),
    )
    rejects = reject_frame(checked, table.path, checks)
    good = checked.filter(
        pl.all_horizontal([pl.col(f"_r_{name}").is_null() for name in _FX_COLUMNS])
    ).with_columns(_normal=_normalised_rate(pl.col("_rate")))

    # the same (date, base, quote) again: identical rate -> drop, different rate -> reject
    pair = ["_date", "_base", "_quote"]
    good = good.with_columns(
        _first_rate=pl.col("_rate").first().over(pair),
        _first_normal=pl.col("_normal").first().over(pair),
        _first_line=pl.col("source_line").first().over(pair),
        _is_first=pl.struct(pair).is_first_distinct(),
    )
    conflict = ~pl.col("_is_first") & (pl.col("_normal") != pl.col("_first_normal"))
    conflicts = good.filter(conflict).select(
        source_file=pl.lit(table.path),
        line=pl.col("source_line"),
        column=pl.lit("rate"),
        reason=pl.lit("rate '")
        + pl.col("_rate")
        + pl.lit("' for ")
        + pl.col("_base")
        + pl.lit("/")
        + pl.col("_quote")
        + pl.lit(" on ")
        + pl.col("_date").cast(pl.Utf8)
        + pl.lit(" contradicts rate '")
        + pl.col("_first_rate")
        + pl.lit("' given on line ")
        + pl.col("_first_line").cast(pl.Utf8)
        + pl.lit("; keep one rate per date and pair"),
        raw=pl.col("raw"),
    )
    rates = good.filter(pl.col("_is_first")).select(
        date="_date",
        base="_base",
        quote="_quote",
        rate_text="_rate",
        rate=pl.col("_rate").cast(pl.Float64),
        source_file=pl.lit(table.path),
        source_line="source_line",
    )
    all_rejects = pl.concat([table.rejects, rejects, as_schema(conflicts, REJECTS_SCHEMA)]).sort(
        "line", maintain_order=True
    )
    return as_schema(rates, FX_SCHEMA), as_schema(all_rejects, REJECTS_SCHEMA)


def rate_on(fx: pl.DataFrame, on: dt.date, base: str, quote: str) -> str | None:
    """The exact rate text in force on ``on``: the latest rate dated on or before it.

    Parameters
    ----------
    fx
        A frame from :func:`read_fx_csv`.
    on
        The date of the amount to convert.
    base, quote
        ISO 4217 codes; the rate is units of ``quote`` per one ``base``. The inverse pair is
        not derived (dividing would need rounding).

    Returns
    -------
    str or None
        ``rate_text`` of the rate in force, or None when no rate is dated on or before ``on``.

    Examples
    --------
    >>> rate_on(rates, dt.date(2026, 1, 6), "USD", "HKD")  # doctest: +SKIP
    '7.8125'
    """
    found = (
        fx.filter((pl.col("base") == base) & (pl.col("quote") == quote) & (pl.col("date") <= on))
        .sort("date")
        .tail(1)
    )
    return found.item(0, "rate_text") if found.height else None
