"""Feeds stage: read a payment processor's payout report into canonical payout lines.

Supported today: Stripe's itemized report CSVs (payout reconciliation, balance change from
activity), one row per balance transaction with decimal ``gross``, ``fee`` and ``net`` in major
units and a lower-case currency. Stripe's ``fee`` is positive and ``gross - fee == net`` (a
charge of 20.00 with a 0.88 fee nets 19.12; a dispute of -10.00 with a 15.00 fee nets -25.00);
rows where that does not hold are rejected.

Each payout line keeps gross, fee and net as integer minor units; columns the canonical frame
has no place for (``created_utc``, ``customer_facing_amount``, ``payment_metadata[...]``, ...)
are kept, byte-exact, in the JSON ``attributes`` column.
"""

from __future__ import annotations

from os import PathLike

import polars as pl

from feeds.canonical_csv import (
    amount_exprs,
    as_schema,
    attributes_expr,
    currency_exprs,
    read_raw_table,
    reject_frame,
    resolve_columns,
)
from models.errors import FeedFormatError
from models.schema import REJECTS_SCHEMA

__all__ = ["PAYOUT_LINE_SCHEMA", "STRIPE_REQUIRED", "identify", "read_processor_file"]

#: columns of a canonical payout-lines frame, in order
PAYOUT_LINE_SCHEMA: dict[str, pl.DataType] = {
    "processor": pl.Utf8,  # "stripe"
    "payout_id": pl.Utf8,  # null when the report is not itemized by payout
    "line_id": pl.Utf8,  # the processor's id of the balance movement
    "category": pl.Utf8,  # e.g. charge, refund, dispute, fee
    "currency": pl.Utf8,
    "gross_minor": pl.Int64,
    "fee_minor": pl.Int64,  # positive when the processor charged a fee
    "net_minor": pl.Int64,  # gross_minor - fee_minor
    "available_on": pl.Date,
    "source_id": pl.Utf8,
    "description": pl.Utf8,
    "attributes": pl.Utf8,
    "source_file": pl.Utf8,
    "source_line": pl.Int64,
}

#: columns a Stripe report must have (header names, case-insensitive)
STRIPE_REQUIRED: tuple[str, ...] = (
    "balance_transaction_id",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
)
_STRIPE_KNOWN: tuple[str, ...] = STRIPE_REQUIRED + (
    "automatic_payout_id",
    "available_on_utc",
    "available_on",
    "source_id",
    "description",
)
_WHAT = "Stripe itemized report CSV"
_HINT = (
    "expected a Stripe itemized report (payout reconciliation or balance change from activity) "
    "downloaded as CSV, with columns "
    + ", ".join(STRIPE_REQUIRED)
    + " (plus optional automatic_payout_id, available_on_utc, source_id, description)"
)
# "2020-01-27", "2020-01-27 00:00:00", "2020-01-27T00:00:00Z": the date is the first 10 chars
_TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9:.]+(Z|[+-][0-9:]+)?)?$"


def identify(path: str | PathLike[str]) -> bool:
    """Whether ``path`` looks like a Stripe itemized report CSV (sniffs the header only).

    Returns
    -------
    bool
        True when the file is readable UTF-8 CSV with every column of :data:`STRIPE_REQUIRED`.
    """
    try:
        table = read_raw_table(path, what=_WHAT)
        resolve_columns(table, _STRIPE_KNOWN, STRIPE_REQUIRED, what=_WHAT)
    except FeedFormatError:
        return False
    return True


def _available_on(text: pl.Expr, label: str) -> tuple[pl.Expr, pl.Expr]:
    """(Date, reason) from Stripe's ``available_on_utc`` text, or epoch seconds."""
    s = text.str.strip_chars()
    epoch = s.str.contains(r"^[0-9]{9,11}$")
    from_text = pl.when(s.str.contains(_TIMESTAMP_PATTERN)).then(
        s.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    )
    from_epoch = pl.from_epoch(s.cast(pl.Int64, strict=False), time_unit="s").dt.date()
    parsed = pl.when(epoch).then(from_epoch).otherwise(from_text)
    reason = (
        pl.when(s.is_null() | (s == ""))
        .then(pl.lit(None, dtype=pl.Utf8))
        .when(parsed.is_null())
        .then(pl.lit(f"{label} '") + s + pl.lit("' is not a date (YYYY-MM-DD[ HH:MM:SS])"))
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    return parsed, reason


def read_processor_file(path: str | PathLike[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read a Stripe itemized payout reconciliation (or balance change) report CSV.

    Parameters
    ----------
    path
        The CSV as downloaded from Stripe; kept as given in ``source_file``.

    Returns
    -------
    (lines, rejects)
        ``lines`` in :data:`PAYOUT_LINE_SCHEMA`, in file order; ``rejects`` in
        ``REJECTS_SCHEMA``. A row is rejected when its currency is unknown, an amount is not
        exact for the currency, ``gross - fee != net``, the balance transaction id is empty or
        already seen earlier in the file, or ``available_on`` is not a date.

    Raises
    ------
    FeedFormatError
        Not a readable UTF-8 CSV, or not a Stripe report (the message lists the expected
        columns).

    Examples
    --------
    >>> lines, rejects = read_processor_file("tests/feeds/data/stripe_payout_sample.csv")  # doctest: +SKIP
    >>> lines.select("payout_id", "line_id", "gross_minor", "fee_minor", "net_minor").row(0)  # doctest: +SKIP
    ('po_1OaHk2', 'txn_3OaA01', 10000, 320, 9680)
    """
    table = read_raw_table(path, what=_WHAT)
    columns, extras = resolve_columns(table, _STRIPE_KNOWN, STRIPE_REQUIRED, what=_WHAT, hint=_HINT)
    if "available_on_utc" in columns and "available_on" in columns:
        # keep the UTC column; the local-time one stays available as an attribute
        local = columns.pop("available_on")
        extras.append((table.header[int(local[1:])], local))
        extras.sort(key=lambda item: int(item[1][1:]))
    available_label = "available_on_utc" if "available_on_utc" in columns else "available_on"
    available_column = columns.get(available_label)

    def text(name: str) -> pl.Expr:
        return pl.col(columns[name]) if name in columns else pl.lit("")

    currency, currency_reason = currency_exprs(pl.col(columns["currency"]))
    line_id = pl.col(columns["balance_transaction_id"]).str.strip_chars()
    checked = table.rows.with_columns(
        _currency=currency, _r_currency=currency_reason, _line_id=line_id
    )
    for name in ("gross", "fee", "net"):
        amount, reason = amount_exprs(
            pl.col(columns[name]), pl.col("_currency"), pl.col("_r_currency"), label=name
        )
        checked = checked.with_columns(amount.alias(f"_{name}"), reason.alias(f"_r_{name}"))
    if available_column is not None:
        available, available_reason = _available_on(pl.col(available_column), available_label)
    else:
        available, available_reason = pl.lit(None, dtype=pl.Date), pl.lit(None, dtype=pl.Utf8)
    checked = checked.with_columns(_available=available, _r_available=available_reason)
    amounts_ok = pl.all_horizontal(
        [pl.col(f"_r_{n}").is_null() for n in ("currency", "gross", "fee", "net")]
    )
    first_line = pl.col("source_line").first().over("_line_id")
    checked = checked.with_columns(
        _r_line_id=pl.when(pl.col("_line_id") == "")
        .then(pl.lit("balance_transaction_id is empty"))
        .when(first_line != pl.col("source_line"))
        .then(
            pl.lit("balance_transaction_id '")
            + pl.col("_line_id")
            + pl.lit("' already appears on line ")
            + first_line.cast(pl.Utf8)
        ),
        _r_sum=pl.when(amounts_ok & (pl.col("_gross") - pl.col("_fee") != pl.col("_net"))).then(
            pl.lit("gross - fee != net (")
            + pl.col(columns["gross"]).str.strip_chars()
            + pl.lit(" - ")
            + pl.col(columns["fee"]).str.strip_chars()
            + pl.lit(" != ")
            + pl.col(columns["net"]).str.strip_chars()
            + pl.lit("); Stripe reports a positive fee with net = gross - fee")
        ),
    )
    checks_by_column = {
        "balance_transaction_id": "_r_line_id",
        "currency": "_r_currency",
        "gross": "_r_gross",
        "fee": "_r_fee",
        "net": "_r_net",
    }
    checks = sorted(checks_by_column.items(), key=lambda item: int(columns[item[0]][1:]))
    checks.append(("net", "_r_sum"))  # only meaningful once the amounts themselves are fine
    if available_column is not None:
        checks.append((available_label, "_r_available"))
    rejects = reject_frame(checked, table.path, checks)
    good = checked.filter(pl.all_horizontal([pl.col(reason).is_null() for _, reason in checks]))
    payout = text("automatic_payout_id").str.strip_chars()
    lines = good.select(
        processor=pl.lit("stripe"),
        payout_id=pl.when(payout != "").then(payout),
        line_id="_line_id",
        category=pl.col(columns["reporting_category"]).str.strip_chars(),
        currency="_currency",
        gross_minor="_gross",
        fee_minor="_fee",
        net_minor="_net",
        available_on="_available",
        source_id=text("source_id").str.strip_chars(),
        description=text("description"),
        attributes=attributes_expr(extras),
        source_file=pl.lit(table.path),
        source_line="source_line",
    )
    all_rejects = pl.concat([table.rejects, rejects]).sort("line", maintain_order=True)
    return as_schema(lines, PAYOUT_LINE_SCHEMA), as_schema(all_rejects, REJECTS_SCHEMA)
