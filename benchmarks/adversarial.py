"""Adversarial months: inputs built to trap a matcher, with a known truth (often empty).

Stage: benchmarks, beside :mod:`benchmarks.generate` (same frames and files, so
:func:`benchmarks.generate.save` writes them and ``recon match`` / ``recon evaluate`` run on them
unchanged).

``no_true_pair``
    Every amount is HKD 100.00; the bank has credits ``FPS CR CUSTOMER <n>``, the ledger open
    invoices of ``Customer <m> Limited`` dated before every bank line, and no customer number
    ``m`` is ever a bank number ``n``: nothing pairs, ``truth.csv`` is empty and every proposal
    is wrong. With ``with_serials`` the invoices are numbered ``INV-<serial>`` (five digits,
    ``INV-00123``) and each bank number ``n`` is the serial of one invoice, whose customer is
    someone else (``CUSTOMER 123`` against ``INV-00123`` of ``Customer 4711 Limited``): a matcher
    that takes any number in the text for an invoice reference finds a "match" on every line.
    Without it no serial equals a bank number. Vectorized: 5,000 x 20,000 takes well under a
    second.
"""

from __future__ import annotations

import calendar
from datetime import date

import numpy as np
import polars as pl

from benchmarks import generate as gen
from models.money import currency_exponent, format_minor_expr

ADVERSARIAL_KINDS = ("no_true_pair",)
_INVOICES_PER_CUSTOMER = 4
_SERIAL_WIDTH = 5


def no_true_pair(n_bank: int = 300, n_ledger: int = 1_200, seed: int = 0, start: date = gen.DEFAULT_START, *,
                 with_serials: bool = False, currency: str = "HKD",
                 bank_account: str = gen.DEFAULT_BANK_ACCOUNT) -> dict[str, pl.DataFrame]:
    """A month where no bank line has a ledger item (see the module docstring).

    Parameters
    ----------
    n_bank, n_ledger
        Rows of ``bank.csv`` and ``ledger.csv``.
    seed
        Seed of the random stream (same arguments, same month).
    start
        First day of the month; bank lines fall inside it, invoices in the 60 days before.
    with_serials
        Number the invoices so that every bank number is some other customer's invoice serial.

    Returns
    -------
    dict
        ``bank``, ``ledger`` and ``truth`` frames as :func:`benchmarks.generate.generate`
        returns them (``truth`` has no rows).

    Examples
    --------
    >>> month = no_true_pair(30, 120, seed=1, with_serials=True)
    >>> month["truth"].height, month["bank"]["amount"].unique().to_list()
    (0, ['100.00'])
    """
    if n_bank < 1 or n_ledger < 1:
        raise ValueError("n_bank and n_ledger must be at least 1")
    rng = np.random.default_rng(seed)
    minor = 100 * 10 ** currency_exponent(currency)
    n_customers = max(1, -(-n_ledger // _INVOICES_PER_CUSTOMER))
    # bank numbers and customer numbers: disjoint draws from one shuffled range
    numbers = rng.permutation(n_bank + n_customers) + 1
    bank_number, customer_number = numbers[:n_bank], numbers[n_bank:]
    customer = customer_number[rng.integers(0, n_customers, n_ledger)]
    if with_serials:
        k = min(n_bank, n_ledger)
        clash = np.sort(rng.choice(bank_number, size=k, replace=False))
        rest = n_bank + n_customers + 1 + np.arange(n_ledger - k)
        serial = np.concatenate([clash, rest])
    else:
        serial = n_bank + n_customers + 1 + np.arange(n_ledger)
    start64 = np.datetime64(start, "D")
    month_days = _days_in_month(start)
    bank_day = np.sort(rng.integers(0, month_days, n_bank))
    invoice_day = rng.integers(-gen.MAX_PAYMENT_LAG_DAYS, 0, n_ledger)
    order = np.lexsort((serial, invoice_day))
    serial, customer, invoice_day = serial[order], customer[order], invoice_day[order]
    id_width = max(9, len(str(n_bank)))
    bank = pl.DataFrame({
        "id": np.char.add("B", np.char.zfill((np.arange(n_bank) + 1).astype(str), id_width)),
        "date": start64 + bank_day.astype("timedelta64[D]"),
        "amount_minor": np.full(n_bank, minor, dtype=np.int64),
        "description": np.char.add("FPS CR CUSTOMER ", bank_number.astype(str)),
    }).select(
        "id", "date", amount=format_minor_expr(pl.col("amount_minor"), pl.lit(currency)), currency=pl.lit(currency),
        description="description", counterparty=pl.lit(None, dtype=pl.Utf8), reference=pl.lit(None, dtype=pl.Utf8),
        account=pl.lit(bank_account), amount_minor="amount_minor", case=pl.lit("adversarial_no_true_pair"),
        variant=pl.lit("serials_equal_bank_numbers" if with_serials else "no_shared_numbers"),
    )
    invoice_id = np.char.add("INV-", np.char.zfill(serial.astype(str), _SERIAL_WIDTH))
    ledger = pl.DataFrame({
        "id": invoice_id,
        "date": start64 + invoice_day.astype("timedelta64[D]"),
        "amount_minor": np.full(n_ledger, minor, dtype=np.int64),
        "counterparty": np.char.add(np.char.add("Customer ", customer.astype(str)), " Limited"),
    }).select(
        "id", "date", amount=format_minor_expr(pl.col("amount_minor"), pl.lit(currency)), currency=pl.lit(currency),
        description=pl.lit("Services"), counterparty="counterparty", reference="id", account=pl.lit("1100"),
        type=pl.lit("invoice"), due_date=pl.col("date") + pl.duration(days=30), amount_minor="amount_minor",
        case=pl.lit("adversarial_no_true_pair"),
    )
    truth = pl.DataFrame(schema={c: pl.Utf8 for c in [*gen.TRUTH_COLUMNS, "case", *gen.TRUTH_EXTRA_COLUMNS]})
    return {"bank": bank, "ledger": ledger, "truth": truth}


def _days_in_month(start: date) -> int:
    year, month_no = start.year + (start.month // 12), start.month % 12 + 1
    end = date(year, month_no, min(start.day, calendar.monthrange(year, month_no)[1]))
    return (end - start).days


def adversarial(kind: str, n_bank: int, n_ledger: int, seed: int = 0, start: date = gen.DEFAULT_START,
                **options) -> dict[str, pl.DataFrame]:
    """An adversarial month by name (:data:`ADVERSARIAL_KINDS`)."""
    if kind != "no_true_pair":
        raise ValueError(f"unknown adversarial month {kind!r}; known: {', '.join(ADVERSARIAL_KINDS)}")
    return no_true_pair(n_bank, n_ledger, seed, start, **options)
