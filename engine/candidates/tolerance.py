"""The amount tolerance band, computed in one place for every generator.

A ledger amount ``a`` and a bank amount may differ by at most
``min(max(|a| * tolerance_pct / 100, tolerance_abs), tolerance_max)`` in the line's currency
(:class:`rules.model.Amount`), in integer minor units with the percentage rounded down: exact
arithmetic, no float near money. The pair generator, the compound groups and the estimator all
read the band from :func:`tolerance_expr`.
"""

from __future__ import annotations

import polars as pl

from rules.model import RuleSet


def tolerance_expr(amount: pl.Expr, currency: pl.Expr, rules: RuleSet, currencies: list[str]) -> pl.Expr:
    """Polars expression: the tolerance band (minor units) of ``amount`` in ``currency``.

    ``currencies`` are the codes that occur (one ``when`` branch each); any other currency gets a
    band of zero, so an unknown currency only ever matches exactly.
    """
    expr = pl.lit(0, dtype=pl.Int64)
    for code in currencies:
        abs_minor, num, den, max_minor = rules.amount.minor(code)
        band = pl.min_horizontal(
            pl.max_horizontal(amount.abs() * num // den, pl.lit(abs_minor, dtype=pl.Int64)),
            pl.lit(max_minor, dtype=pl.Int64),
        )
        expr = pl.when(currency == code).then(band).otherwise(expr)
    return expr
