"""Why a bank amount differs from its ledger amount (engine, shared by scoring and proposals).

Expressions over the columns ``amount_bank``, ``amount_ledger`` (minor units, same currency) and
``currency``. A difference is *explained* when it has a recognisable cause:

- a bank charge: the bank side worse off by a flat fee, a whole multiple of
  ``adjustments.bank_charge_step`` up to ``adjustments.bank_charge_max`` (banks charge round fees);
- a discount: short by a whole percentage of the item (1% .. ``adjustments.discount_max_pct``,
  to the minor unit);
- rounding: money in paid down to whole tens, short by less than ten units.

Any other difference within tolerance is still a short payment or an overpayment, just not one
the amounts themselves explain.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from models.money import CURRENCY_EXPONENTS
from rules.model import RuleSet

#: how a bank amount relates to its ledger amount: the amount levels' conditions
#: (:func:`engine.scoring.levels.amount_comparison`), in their order
AMOUNT_KINDS = ("exact", "bank_charge", "discount", "rounding", "within_tolerance")


def per_currency(value: Decimal) -> pl.Expr:
    """``value`` (major units) in minor units of each row's ``currency`` (0 for unknown codes)."""
    return pl.col("currency").replace_strict(
        {code: int(value.scaleb(exp)) for code, exp in CURRENCY_EXPONENTS.items()},
        default=0,
        return_dtype=pl.Int64,
    )


def _short() -> pl.Expr:
    return pl.col("amount_ledger") - pl.col("amount_bank")  # > 0: the bank side is worse off


def is_bank_charge(rules: RuleSet) -> pl.Expr:
    adj = rules.adjustments
    step = per_currency(adj.bank_charge_step)
    short = _short()
    return (short > 0) & (short <= per_currency(adj.bank_charge_max)) & (step > 0) & (short % step == 0) & ~is_discount(rules)


def is_discount(rules: RuleSet) -> pl.Expr:
    short = _short() * pl.col("amount_ledger").sign()  # money out: paying less is the discount
    ledger_abs = pl.col("amount_ledger").abs()
    # the nearest whole percentage, in integers (no float near an amount)
    pct = (short * 100 + ledger_abs // 2) // pl.when(ledger_abs > 0).then(ledger_abs).otherwise(1)
    max_pct = int(rules.adjustments.discount_max_pct)
    return (pct >= 1) & (pct <= max_pct) & ((short * 100 - pct * ledger_abs).abs() < 100)


def is_rounding() -> pl.Expr:
    ten = per_currency(Decimal(10))
    short = _short()
    return (pl.col("amount_ledger") > 0) & (short > 0) & (short < ten) & (pl.col("amount_bank") % ten == 0)


def explained(rules: RuleSet) -> pl.Expr:
    """The difference has a recognisable cause (see the module docstring)."""
    return (_short() != 0) & (is_bank_charge(rules) | is_discount(rules) | is_rounding())


def cause(rules: RuleSet) -> pl.Expr:
    """``bank_charge``, ``short_payment`` or ``overpayment`` for a non-zero difference."""
    diff = pl.col("amount_bank") - pl.col("amount_ledger")
    money_in = pl.col("amount_ledger") > 0
    return (
        pl.when(is_bank_charge(rules))
        .then(pl.lit("bank_charge"))
        .when(money_in == (diff < 0))
        .then(pl.lit("short_payment"))
        .otherwise(pl.lit("overpayment"))
    )


def kind(rules: RuleSet) -> pl.Expr:
    """The position in :data:`AMOUNT_KINDS` of each pair's amount relation (``UInt8``)."""
    return (
        pl.when(_short() == 0).then(0)
        .when(is_bank_charge(rules)).then(1)
        .when(is_discount(rules)).then(2)
        .when(is_rounding()).then(3)
        .otherwise(4)
        .cast(pl.UInt8)
    )
