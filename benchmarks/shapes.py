"""Adversarial month shapes for the scale benchmark: months whose *shape*, not size, is hard.

Stage: benchmarks, beside :mod:`benchmarks.generate` (whose plain month several shapes build on)
and :mod:`benchmarks.adversarial`. Every shape returns the frames ``recon match`` reads as
canonical CSV (``bank``, ``ledger``, and ``stripe`` for ``--processor`` when it has a report)
and the ``truth`` that :mod:`engine.evaluate` scores against; :func:`save` writes them.

Shapes (issue 11, item 6 and the acceptance's busy shop)
--------------------------------------------------------
:func:`busy_shop`
    A web shop taking ``orders_per_day`` card orders every day (ledger ``#5022``, description
    ``Web order #5022 (Stripe)``, each order its own customer) and one Stripe credit per
    settlement: the day's orders plus that day's refunds, less a card fee of 3.4% + HKD 2.35 per
    order, paid 2 business days after the order day, Saturday's and Sunday's orders rolled into
    Monday's payout. The bank reads ``STRIPE PAYMENTS UK LTD`` or ``STRIPE 8812345`` (no store
    name, no payout id). With ``with_report`` the month has Stripe's itemized payout
    reconciliation CSV whose ``payment_metadata[order_id]`` is ``5022`` (no ``#``). Ordinary
    invoice receipts, bills and payroll (a plain :func:`benchmarks.generate.generate` month of
    ``base_bank_lines``, without its own processor payouts) make it a real month. The truth
    lists which orders and refunds each payout settles (``match_type`` ``payout``).
:func:`one_party`
    One payer on many lines: ``n_ledger`` open invoices of ``Golden Harbour Trading Limited``,
    ``n_bank`` credits ``FPS CR GOLDEN HARBOUR TRADING LTD`` paying one invoice (half quoting its
    number) or 2-4 of them at once. ``one payer`` puts it beside a plain month; ``one name`` is
    the whole month.
:func:`common_amount`
    One amount on half of all lines: a plain month plus as many HKD 100.00 receipts from
    distinct customers (half quoting their invoice) and 100.00 invoices, open ones included,
    until half the ledger is 100.00.
:func:`independent_month`
    The shape of the issue's independent month (169k bank x 498k ledger): a plain month with
    ~2.9 ledger items per bank line, FX table and a busy shop with ~20x the web orders per day
    of ``benchmarks/sample`` per 8.5k bank lines, with its Stripe report.

Everything is vectorized (numpy + polars) and deterministic for a seed.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks import generate as gen
from models.money import format_minor_expr

CURRENCY = "HKD"
#: Stripe's card fee of the busy shop: 3.4% + HKD 2.35 per order (per mille, cents)
CARD_FEE_PER_MILLE, CARD_FEE_FIXED_CENTS = 34, 235
PAYOUT_DELAY_BUSINESS_DAYS = 2
STRIPE_BANK_TEXTS = ("STRIPE PAYMENTS UK LTD", "STRIPE 8812345")
REFUND_SHARE = 0.02
FIRST_ORDER_NUMBER = 1001
PAYER_LEDGER, PAYER_BANK = "Golden Harbour Trading Limited", "GOLDEN HARBOUR TRADING LTD"
#: web orders per day per 8,500 bank lines in the independent month (~20x benchmarks/sample's 11)
INDEPENDENT_ORDERS_PER_DAY_PER_8500 = 230
INDEPENDENT_LEDGER_PER_BANK = 498 / 169

_SURNAMES = ("Chan Cheung Chow Ho Kwan Lam Lau Lee Leung Li Lo Ma Mak Ng Poon Tam Tang Tsang Wong Wu "
             "Yeung Yip Yu Fung Kwok Chu Hui Siu Choi Law").split()
_GIVEN = ("Tai Man Ka Wai Siu Ming Kin Yee Hoi Ling Chi Keung Wing Fai Shan Yan Kit Hung Mei Sze Pui "
          "Lok Hei Tsz Ho On Yuk Kwan Nga Bo").split()
_ENGLISH = ("Peter Mary John Karen Eric Grace Kelvin Joyce Alan Winnie Jason Cindy Ivan Fiona Derek "
            "Helen Calvin Queenie Raymond Stephanie").split()
#: no processor payouts in the plain month under a shape: the shape's own payouts are the ones counted
_BASE_MIX = {case: share for case, share in gen.FULL_MIX.items() if case not in ("stripe_payout", "processor_payout")}
_TRUTH = [*gen.TRUTH_COLUMNS, *gen.TRUTH_EXTRA_COLUMNS, "case"]
_STRIPE_COLUMNS = gen.STRIPE_COLUMNS


@dataclass(frozen=True)
class _Calendar:
    """Day numbers of one statement month (0 = its first day)."""

    start: date
    n_days: int

    @classmethod
    def of(cls, start: date) -> _Calendar:
        year, month_no = start.year + (start.month // 12), start.month % 12 + 1
        end = date(year, month_no, min(start.day, calendar.monthrange(year, month_no)[1]))
        return cls(start, (end - start).days)

    def weekday(self, day: np.ndarray) -> np.ndarray:
        return (np.asarray(day) + self.start.weekday()) % 7

    def business_days_after(self, day: np.ndarray, k: int) -> np.ndarray:
        day = np.asarray(day, dtype=np.int64).copy()
        for _ in range(k):
            day += 1
            weekday = self.weekday(day)
            day += np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))
        return day

    def settlement_day(self, day: np.ndarray) -> np.ndarray:
        """The business day whose payout carries ``day``'s orders: weekends roll into Monday."""
        weekday = self.weekday(day)
        return np.asarray(day) + np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))

    def dates(self, day: np.ndarray) -> np.ndarray:
        return np.datetime64(self.start, "D") + np.asarray(day).astype("timedelta64[D]")


def person_names(index: np.ndarray) -> np.ndarray:
    """Distinct Hong Kong personal names for distinct indexes (``Chan Tai Man``, then
    ``Peter Chan Tai Man``...): no digits, so nothing in a name reads as a reference."""
    index = np.asarray(index, dtype=np.int64)
    s, g = len(_SURNAMES), len(_GIVEN)
    base = s * g * g
    core = np.char.add(np.char.add(np.asarray(_SURNAMES)[index % s], " "),
                       np.char.add(np.char.add(np.asarray(_GIVEN)[index // s % g], " "),
                                   np.asarray(_GIVEN)[index // (s * g) % g]))
    english = index // base
    prefix = np.where(english > 0, np.char.add(np.asarray(["", *_ENGLISH])[english % (len(_ENGLISH) + 1)], " "), "")
    return np.char.add(prefix.astype(str), core)


def _money(minor: pl.Expr) -> pl.Expr:
    return format_minor_expr(minor, pl.lit(CURRENCY))


def _amounts(rng: np.random.Generator, n: int, median: float, sigma: float, low: float, high: float) -> np.ndarray:
    """Log-normal amounts in cents, a third of them whole dollars."""
    cents = np.rint(np.exp(rng.normal(np.log(median), sigma, n)).clip(low, high) * 100).astype(np.int64)
    return np.where(rng.random(n) < 1 / 3, np.maximum(cents // 100 * 100, 100), np.maximum(cents, 1))


def _fee_json(fee_minor: np.ndarray) -> pl.Series:
    return pl.Series([json.dumps([{"cause": "processor_fee", "amount": f"{-f / 100:.2f}"}], separators=(",", ":"))
                      if f else "[]" for f in fee_minor], dtype=pl.Utf8)


def _base_month(n_bank: int, seed: int, start: date, open_items_ratio: float | None = None) -> dict[str, pl.DataFrame]:
    """A plain month of the project's generator (no processor payouts of its own)."""
    if n_bank <= 0:
        return {"bank": pl.DataFrame(schema=dict.fromkeys(gen.BANK_COLUMNS, pl.Utf8)),
                "ledger": pl.DataFrame(schema=dict.fromkeys(gen.LEDGER_COLUMNS, pl.Utf8)),
                "truth": pl.DataFrame(schema=dict.fromkeys(_TRUTH, pl.Utf8))}
    month = gen.generate(n_bank, seed=seed, start=start, mix=_BASE_MIX, open_items_ratio=open_items_ratio)
    out = {"bank": _text(month["bank"], gen.BANK_COLUMNS), "ledger": _text(month["ledger"], gen.LEDGER_COLUMNS),
           "truth": _text(month["truth"], _TRUTH)}
    if "fx" in month:
        out["fx"] = month["fx"]
    return out


def _text(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    return frame.select([pl.col(c).cast(pl.Utf8) if c in frame.columns else pl.lit(None, dtype=pl.Utf8).alias(c)
                         for c in columns])


def _combine(*months: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    out: dict[str, pl.DataFrame] = {}
    for key, columns in (("bank", gen.BANK_COLUMNS), ("ledger", gen.LEDGER_COLUMNS), ("truth", _TRUTH)):
        out[key] = pl.concat([_text(m[key], columns) for m in months if key in m])
    for key in ("fx", "stripe"):
        frames = [m[key] for m in months if key in m and m[key].height]
        if frames:
            out[key] = pl.concat(frames)
    out["bank"] = out["bank"].sort(["date", "id"])
    out["ledger"] = out["ledger"].sort(["date", "id"])
    return out


def busy_shop(orders_per_day: int, *, with_report: bool = False, base_bank_lines: int = 2_000, seed: int = 0,
              start: date = gen.DEFAULT_START, order_days: int | None = None) -> dict[str, pl.DataFrame]:
    """A month of a busy web shop paid out by Stripe (see the module docstring).

    Parameters
    ----------
    orders_per_day
        Card orders a day (each within +-10% of it).
    with_report
        Also return ``stripe``: the itemized payout reconciliation report of the payouts.
    base_bank_lines
        Bank lines of the plain month the shop sits in (0: the shop alone).
    seed
        Seed of the random stream.
    start
        First day of the statement month.
    order_days
        Days with orders from ``start`` (default: the whole month); payouts after the month end
        are not in the bank and their orders stay open.

    Returns
    -------
    dict
        ``bank``, ``ledger``, ``truth`` (canonical text frames) and, with a report, ``stripe``.
        Payout truth groups have ``case`` ``busy_shop_payout``.

    Examples
    --------
    >>> month = busy_shop(50, base_bank_lines=0, order_days=14, seed=1)
    >>> month["truth"]["match_type"].unique().to_list()
    ['payout']
    >>> month["bank"]["description"].is_in(list(STRIPE_BANK_TEXTS)).all()
    True
    """
    rng = np.random.default_rng(seed + 7_919)
    cal = _Calendar.of(start)
    days = cal.n_days if order_days is None else min(order_days, cal.n_days)
    per_day = np.maximum(1, np.rint(orders_per_day * rng.uniform(0.9, 1.1, days))).astype(np.int64)
    order_day = np.repeat(np.arange(days), per_day)
    n = len(order_day)
    number = FIRST_ORDER_NUMBER + np.arange(n)
    amount = _amounts(rng, n, median=480, sigma=0.8, low=30, high=30_000)
    fee = (amount * CARD_FEE_PER_MILLE + 500) // 1000 + CARD_FEE_FIXED_CENTS
    customer = person_names(rng.permutation(max(n, 1))[:n] + seed * 7)
    # refunds: in full, 1-10 days after the order, paid back out of that day's payout
    refunded = np.flatnonzero(rng.random(n) < REFUND_SHARE)
    refund_day = order_day[refunded] + rng.integers(1, 11, len(refunded))
    refunded, refund_day = refunded[refund_day < days], refund_day[refund_day < days]
    # settlement: a day's activity (weekends rolled into Monday) is paid out 2 business days later
    order_payout_day = cal.business_days_after(cal.settlement_day(order_day), PAYOUT_DELAY_BUSINESS_DAYS)
    refund_payout_day = cal.business_days_after(cal.settlement_day(refund_day), PAYOUT_DELAY_BUSINESS_DAYS)
    payout_days = np.unique(order_payout_day[order_payout_day < cal.n_days])
    k = len(payout_days)
    order_in = np.searchsorted(payout_days, order_payout_day)
    order_paid = (order_payout_day < cal.n_days)
    refund_in = np.searchsorted(payout_days, refund_payout_day)
    refund_paid = (refund_payout_day < cal.n_days) & np.isin(refund_payout_day, payout_days)
    refund_amount = amount[refunded]
    gross = np.bincount(order_in[order_paid], amount[order_paid], minlength=k).astype(np.int64)
    fees = np.bincount(order_in[order_paid], fee[order_paid], minlength=k).astype(np.int64)
    refunds = np.bincount(refund_in[refund_paid], refund_amount[refund_paid], minlength=k).astype(np.int64)
    net = gross - fees - refunds
    if (net <= 0).any():
        raise ValueError("a payout would not be positive: raise orders_per_day")

    order_id = np.char.add("#", number.astype(str))
    ledger = pl.DataFrame({
        "id": np.concatenate([order_id, np.char.add(order_id[refunded], "-R")]),
        "date": cal.dates(np.concatenate([order_day, refund_day])),
        "amount_minor": np.concatenate([amount, -refund_amount]),
        "description": np.concatenate([np.char.add(np.char.add("Web order ", order_id), " (Stripe)"),
                                       np.char.add(np.char.add("Refund web order ", order_id[refunded]), " (Stripe)")]),
        "counterparty": np.concatenate([customer, customer[refunded]]),
        "reference": np.concatenate([order_id, order_id[refunded]]),
        "type": np.concatenate([np.full(n, "order"), np.full(len(refunded), "credit_note")]),
    }).select("id", "date", amount=_money(pl.col("amount_minor")), currency=pl.lit(CURRENCY),
              description="description", counterparty="counterparty", reference="reference",
              account=pl.lit("1210"), type="type", due_date=pl.lit(None, dtype=pl.Utf8))
    bank_id = np.char.add("S", np.char.zfill((np.arange(k) + 1).astype(str), 8))
    bank = pl.DataFrame({
        "id": bank_id, "date": cal.dates(payout_days), "amount_minor": net,
        "description": np.asarray(STRIPE_BANK_TEXTS)[rng.integers(0, len(STRIPE_BANK_TEXTS), k)],
    }).select("id", "date", amount=_money(pl.col("amount_minor")), currency=pl.lit(CURRENCY),
              description="description", counterparty=pl.lit(None, dtype=pl.Utf8),
              reference=pl.lit(None, dtype=pl.Utf8), account=pl.lit(gen.DEFAULT_BANK_ACCOUNT))
    members = pl.DataFrame({
        "payout": np.concatenate([order_in[order_paid], refund_in[refund_paid]]),
        "id": np.concatenate([order_id[order_paid], np.char.add(order_id[refunded][refund_paid], "-R")]),
    }).sort("payout", "id").group_by("payout", maintain_order=True).agg(pl.col("id").str.join(gen.ID_SEPARATOR))
    truth = pl.DataFrame({
        "group_id": np.char.add("SHOP", np.char.zfill((np.arange(k) + 1).astype(str), 5)),
        "match_type": np.full(k, "payout"), "bank_ids": bank_id, "payout": np.arange(k),
        "adjustments": _fee_json(fees), "open_amount": np.full(k, ""), "case": np.full(k, "busy_shop_payout"),
    }).join(members.rename({"id": "ledger_ids"}), on="payout", how="left").select(_TRUTH)
    shop = {"bank": bank, "ledger": ledger, "truth": truth}
    if with_report:
        shop["stripe"] = _stripe_report(rng, cal, payout_days, order_in[order_paid], order_day[order_paid],
                                        number[order_paid], amount[order_paid], fee[order_paid],
                                        refund_in[refund_paid], refund_day[refund_paid],
                                        number[refunded][refund_paid], refund_amount[refund_paid])
    return _combine(_base_month(base_bank_lines, seed, start), shop)


def _stripe_report(rng, cal: _Calendar, payout_days, order_payout, order_day, number, amount, fee,
                   refund_payout, refund_day, refund_number, refund_amount) -> pl.DataFrame:
    """Stripe's itemized payout reconciliation report: one row per charge and refund, the order
    number in ``payment_metadata[order_id]`` without its ``#``."""
    k, m, r = len(payout_days), len(order_payout), len(refund_payout)
    letters = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", dtype="S1")

    def ids(prefix: str, count: int) -> np.ndarray:
        body = letters[rng.integers(0, len(letters), (count, 24))].view("S24").ravel().astype(str)
        return np.char.add(prefix, body)

    payout_id = ids("po_1", k)
    start = np.datetime64(cal.start, "s")
    second = np.concatenate([order_day, refund_day]).astype(np.int64) * 86_400 + rng.integers(0, 16 * 3_600, m + r)
    payout = np.concatenate([order_payout, refund_payout])
    gross = np.concatenate([amount, -refund_amount])
    fees = np.concatenate([fee, np.zeros(r, dtype=np.int64)])
    category = np.concatenate([np.full(m, "charge"), np.full(r, "refund")])
    frame = pl.DataFrame({
        "automatic_payout_id": payout_id[payout],
        "automatic_payout_effective_at": cal.dates(payout_days)[payout],
        "balance_transaction_id": ids("txn_3", m + r),
        "created": (start + (second - 8 * 3_600).astype("timedelta64[s]")).astype("datetime64[ms]"),
        "available_on": cal.dates(payout_days)[payout],
        "gross_minor": gross, "fee_minor": fees, "reporting_category": category,
        "source_id": np.concatenate([ids("ch_3", m), ids("re_3", r)]),
        "description": np.concatenate([np.full(m, "Shopify order"), np.full(r, "REFUND FOR PAYMENT")]),
        "order_id": np.concatenate([number, refund_number]).astype(str),
    })
    day_time = "%Y-%m-%d 00:00:00"
    return frame.sort("automatic_payout_effective_at", "created").select(
        "automatic_payout_id",
        automatic_payout_effective_at=pl.col("automatic_payout_effective_at").cast(pl.Datetime).dt.strftime(day_time),
        balance_transaction_id="balance_transaction_id",
        created_utc=pl.col("created").dt.strftime("%Y-%m-%d %H:%M:%S"),
        available_on_utc=pl.col("available_on").cast(pl.Datetime).dt.strftime(day_time),
        currency=pl.lit(CURRENCY.lower()), gross=_money(pl.col("gross_minor")), fee=_money(pl.col("fee_minor")),
        net=_money(pl.col("gross_minor") - pl.col("fee_minor")), reporting_category="reporting_category",
        source_id="source_id", customer_facing_amount=_money(pl.col("gross_minor")), description="description",
        **{"payment_metadata[order_id]": pl.col("order_id")},
    ).select(_STRIPE_COLUMNS)


def one_party(n_bank: int, n_ledger: int, *, base_bank_lines: int = 0, seed: int = 0,
              start: date = gen.DEFAULT_START) -> dict[str, pl.DataFrame]:
    """One payer on ``n_bank`` credits against its ``n_ledger`` open invoices (see the module
    docstring); ``base_bank_lines`` > 0 puts them beside a plain month.

    Examples
    --------
    >>> month = one_party(40, 200, seed=2)
    >>> month["ledger"]["counterparty"].unique().to_list()
    ['Golden Harbour Trading Limited']
    >>> month["bank"].height, month["ledger"].height
    (40, 200)
    """
    rng = np.random.default_rng(seed + 104_729)
    cal = _Calendar.of(start)
    size = np.where(rng.random(n_bank) < 0.8, 1, rng.integers(2, 5, n_bank))
    while size.sum() > n_ledger:  # a small ledger: fewer items per credit
        size = np.maximum(1, size - 1)
        if (size == 1).all():
            break
    paid = int(size.sum())
    if paid > n_ledger:
        raise ValueError("n_ledger must be at least n_bank")
    # six-digit serials: apart from the plain month's five-digit ones
    invoice_number = 100_001 + rng.permutation(n_ledger)
    invoice_id = np.char.add("INV-2026-", invoice_number.astype(str))
    amount = _amounts(rng, n_ledger, median=8_000, sigma=1.0, low=100, high=500_000)
    bank_day = np.sort(rng.integers(0, cal.n_days, n_bank))
    credit = np.repeat(np.arange(n_bank), size)
    invoice_day = np.concatenate([bank_day[credit] - rng.integers(0, 60, paid),
                                  rng.integers(-60, cal.n_days, n_ledger - paid)])
    net = np.bincount(credit, amount[:paid], minlength=n_bank).astype(np.int64)
    quoted = (size == 1) & (rng.random(n_bank) < 0.5)
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    channel = np.asarray(["FPS CR ", "CR TRF ", "TT IN "])[rng.integers(0, 3, n_bank)]
    description = np.char.add(np.char.add(channel, PAYER_BANK),
                              np.where(quoted, np.char.add(" ", invoice_id[first]), ""))
    prefix = "G"
    bank_id = np.char.add(prefix, np.char.zfill((np.arange(n_bank) + 1).astype(str), 8))
    bank = pl.DataFrame({"id": bank_id, "date": cal.dates(bank_day), "amount_minor": net,
                         "description": description}).select(
        "id", "date", amount=_money(pl.col("amount_minor")), currency=pl.lit(CURRENCY), description="description",
        counterparty=pl.lit(None, dtype=pl.Utf8), reference=pl.lit(None, dtype=pl.Utf8),
        account=pl.lit(gen.DEFAULT_BANK_ACCOUNT))
    ledger = pl.DataFrame({"id": invoice_id, "date": cal.dates(invoice_day), "amount_minor": amount}).select(
        "id", "date", amount=_money(pl.col("amount_minor")), currency=pl.lit(CURRENCY),
        description=pl.lit("Trade goods"), counterparty=pl.lit(PAYER_LEDGER), reference="id", account=pl.lit("1100"),
        type=pl.lit("invoice"), due_date=(pl.col("date") + pl.duration(days=30)).cast(pl.Utf8))
    members = pl.DataFrame({"credit": credit, "id": invoice_id[:paid]}).sort("credit", "id").group_by(
        "credit", maintain_order=True).agg(pl.col("id").str.join(gen.ID_SEPARATOR))
    truth = pl.DataFrame({
        "group_id": np.char.add("ONE", np.char.zfill((np.arange(n_bank) + 1).astype(str), 7)),
        "match_type": np.where(size == 1, "one_to_one", "one_to_many"), "bank_ids": bank_id,
        "credit": np.arange(n_bank), "adjustments": np.full(n_bank, "[]"), "open_amount": np.full(n_bank, ""),
        "case": np.full(n_bank, "one_party"),
    }).join(members.rename({"id": "ledger_ids"}), on="credit", how="left").select(_TRUTH)
    return _combine(_base_month(base_bank_lines, seed, start), {"bank": bank, "ledger": ledger, "truth": truth})


def common_amount(n_bank: int, *, amount: str = "100.00", seed: int = 0, start: date = gen.DEFAULT_START,
                  ) -> dict[str, pl.DataFrame]:
    """A plain month of ``n_bank // 2`` lines plus as many receipts of ``amount`` from distinct
    customers, with their invoices and more open invoices of ``amount``, so that about half of
    all bank lines and half of all ledger items carry ``amount``.

    Examples
    --------
    >>> month = common_amount(400, seed=1)
    >>> round((month["bank"]["amount"] == "100.00").mean(), 1), round((month["ledger"]["amount"] == "100.00").mean(), 1)
    (0.5, 0.5)
    """
    rng = np.random.default_rng(seed + 15_485_863)
    cal = _Calendar.of(start)
    base = _base_month(n_bank - n_bank // 2, seed, start)
    k = n_bank // 2
    extra_open = max(0, base["ledger"].height - k)
    names = person_names(rng.permutation(k + extra_open) + 1_000)
    serial = 60_000 + rng.permutation(k + extra_open)
    invoice_id = np.char.add("INV-2026-", serial.astype(str))
    bank_day = np.sort(rng.integers(0, cal.n_days, k))
    quoted = rng.random(k) < 0.5
    bank_id = np.char.add("C", np.char.zfill((np.arange(k) + 1).astype(str), 8))
    bank = pl.DataFrame({
        "id": bank_id, "date": cal.dates(bank_day),
        "description": np.char.add(np.char.add("FPS CR ", np.char.upper(names[:k])),
                                   np.where(quoted, np.char.add(" ", invoice_id[:k]), "")),
    }).select("id", "date", amount=pl.lit(amount), currency=pl.lit(CURRENCY), description="description",
              counterparty=pl.lit(None, dtype=pl.Utf8), reference=pl.lit(None, dtype=pl.Utf8),
              account=pl.lit(gen.DEFAULT_BANK_ACCOUNT))
    invoice_day = np.concatenate([bank_day - rng.integers(0, 45, k), rng.integers(-60, cal.n_days, extra_open)])
    ledger = pl.DataFrame({"id": invoice_id, "date": cal.dates(invoice_day), "counterparty": names}).select(
        "id", "date", amount=pl.lit(amount), currency=pl.lit(CURRENCY), description=pl.lit("Monthly service"),
        counterparty="counterparty", reference="id", account=pl.lit("1100"), type=pl.lit("invoice"),
        due_date=(pl.col("date") + pl.duration(days=30)).cast(pl.Utf8))
    truth = pl.DataFrame({
        "group_id": np.char.add("AMT", np.char.zfill((np.arange(k) + 1).astype(str), 7)),
        "match_type": np.full(k, "one_to_one"), "bank_ids": bank_id, "ledger_ids": invoice_id[:k],
        "adjustments": np.full(k, "[]"), "open_amount": np.full(k, ""), "case": np.full(k, "common_amount"),
    })
    return _combine(base, {"bank": bank, "ledger": ledger, "truth": truth})


def independent_month(n_bank: int, *, seed: int = 0, start: date = gen.DEFAULT_START) -> dict[str, pl.DataFrame]:
    """A month shaped like the issue's independent one (see the module docstring): ``n_bank``
    bank lines in all, about 2.9 ledger items per bank line, a busy shop with its Stripe report.

    Examples
    --------
    >>> month = independent_month(1_000, seed=1)
    >>> 2.5 < month["ledger"].height / month["bank"].height < 3.5, "stripe" in month and "fx" in month
    (True, True)
    """
    orders_per_day = max(1, round(INDEPENDENT_ORDERS_PER_DAY_PER_8500 * n_bank / 8_500))
    cal = _Calendar.of(start)
    payouts = int((cal.weekday(np.arange(cal.n_days)) < 5).sum())
    base_bank = max(1, n_bank - payouts)
    orders = orders_per_day * cal.n_days
    ratio = max(1.3, (INDEPENDENT_LEDGER_PER_BANK * n_bank - orders) / base_bank)
    shop = busy_shop(orders_per_day, with_report=True, base_bank_lines=0, seed=seed, start=start)
    return _combine(_base_month(base_bank, seed, start, open_items_ratio=ratio), shop)


#: file written for each frame of a shape
FILES = {"bank": "bank.csv", "ledger": "ledger.csv", "truth": "truth.csv", "fx": "fx.csv",
         "stripe": "stripe_payouts.csv"}


def save(month: dict[str, pl.DataFrame], out_dir: str | Path) -> dict[str, Path]:
    """Write a shape's frames as the CSV files ``recon match`` reads; returns the paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, file_name in FILES.items():
        frame = month.get(name)
        if frame is not None and (frame.height or name in ("bank", "ledger", "truth")):
            paths[name] = out / file_name
            frame.write_csv(paths[name])
    return paths


def payout_truth(truth: pl.DataFrame) -> pl.DataFrame:
    """The truth groups of the shop's payouts (``case`` ``busy_shop_payout``; none in a truth
    without a ``case`` column, as :func:`benchmarks.generate.save` writes it)."""
    if "case" not in truth.columns:
        return truth.clear()
    return truth.filter(pl.col("case") == "busy_shop_payout")
