"""The full benchmark month (issue 3): compound cases present, every truth group balanced, the
Stripe report and fx.csv as documented, and every group decidable by a perfect matcher.

The decidability checks re-derive the guarantee with small brute-force searches written here,
independently of the generator's vectorized ones.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl
import pytest

from benchmarks.generate import (
    ADJUSTMENT_CAUSES,
    FULL_MIX,
    FX_CHARGES_HKD,
    LEDGER_ONLY_CASES,
    MAX_PAYMENT_LAG_DAYS,
    MAX_SUBSET_CANDIDATES,
    MAX_SUBSET_SIZE,
    PROCESSOR_FEE_MAX_PCT,
    SHORT_PAYMENT_MIN_TOLERANCE_HKD,
    SHORT_PAYMENT_TOLERANCE_PCT,
    STRIPE_COLUMNS,
    TRUTH_COLUMNS,
    generate,
    save,
)

N_BANK = 5_000
SEED = 11
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def month() -> dict[str, pl.DataFrame]:
    return generate(N_BANK, seed=SEED)


@pytest.fixture(scope="module")
def written(month, tmp_path_factory) -> dict[str, Path]:
    return save(month, tmp_path_factory.mktemp("full"))


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False, empty_string_is_null=False)


def _members(month, side: str) -> pl.DataFrame:
    """One row per (truth group, id) of one side."""
    truth = month["truth"]
    return truth.select("group_id", "case", id=pl.col(f"{side}_ids").str.split(";")).explode("id")


def _rate_lookup(month) -> dict[str, list[tuple[date, Decimal]]]:
    rates = defaultdict(list)
    for row in month["fx"].sort("date").iter_rows(named=True):
        rates[row["base"]].append((row["date"], Decimal(row["rate"])))
    return rates


def _rate_on(rates, currency: str, day: date) -> Decimal:
    earlier = [rate for when, rate in rates[currency] if when <= day]
    assert earlier, f"no {currency} rate on or before {day}"
    return earlier[-1]


def _to_hkd(amount: str, currency: str, day: date, rates) -> Decimal:
    if currency == "HKD":
        return Decimal(amount)
    return (Decimal(amount) * _rate_on(rates, currency, day)).quantize(CENT, rounding=ROUND_HALF_UP)


def test_same_seed_same_bytes_other_seed_other_month(written, tmp_path):
    again = save(generate(N_BANK, seed=SEED), tmp_path / "again")
    assert set(again) == set(written) == {"bank", "ledger", "truth", "labels", "fx", "stripe"}
    for name, path in written.items():
        assert path.read_bytes() == again[name].read_bytes(), name
    other = save(generate(N_BANK, seed=SEED + 1), tmp_path / "other")
    assert other["bank"].read_bytes() != written["bank"].read_bytes()


def test_every_case_and_variant_appears_in_a_5000_line_month(month, written):
    bank, ledger = month["bank"], month["ledger"]
    assert bank.height == N_BANK
    for case in FULL_MIX:
        assert case in set(ledger["case"] if case in LEDGER_ONLY_CASES else bank["case"]), case
    assert set(month["truth"]["match_type"]) == {"one_to_one", "one_to_many", "many_to_one", "payout"}
    assert _read(written["truth"]).columns == [*TRUTH_COLUMNS, "adjustments", "open_amount"]
    variants = {(c, v) for c, v in bank.select("case", "variant").unique().iter_rows()}
    expected = {
        "multi_invoice_payment": {"list_numbers", "list_full_then_numbers", "list_full", "none"},
        "supplier_batch": {"list_refs", "none"},
        "payroll_batch": {"batch_ref_in_ledger", "run_day_only"},
        "stripe_payout": {"payout_id_shown", "amount_only"},
        "processor_payout": {"shopify", "paypal"},
    }
    for case, wanted in expected.items():
        assert wanted <= {v for c, v in variants if c == case}, case
    prefixes = {(c, v.split(":")[0]) for c, v in variants if ":" in v}
    assert {("instalment", "paid_in_full"), ("instalment", "partly_paid"), ("short_payment", "bank_charge"),
            ("short_payment", "discount"), ("short_payment", "rounding"), ("fx_receipt", "USD"), ("fx_receipt", "CNY"),
            ("fx_receipt", "EUR"), ("fx_receipt", "USD+bank_charge")} <= prefixes
    descriptions = bank["description"]
    for pattern in (r"INV \d{5}/\d{5}", r"INV-2026-\d{5} \d{5}", r"^AUTOPAY DR PAYROLL BATCH PB\d{4}-?\d{3}$",
                    r"STRIPE PAYOUT po_1\w{23}$", r"SHOPIFY PAYOUT [A-Z]", r"PAYPAL TRANSFER [A-Z]", r"TT IN USD\d+\.\d\d "):
        assert descriptions.str.contains(pattern).any(), pattern
    assert {"credit_note", "order", "invoice", "bill", "payroll"} <= set(ledger["type"])
    assert {"HKD", "USD", "CNY", "EUR"} == set(ledger["currency"])
    assert ledger["id"].is_unique().all() and ledger["id"].str.contains(r"^#1\d{3}$").any()


def test_every_truth_group_balances_in_the_bank_currency(month):
    """bank total = ledger total converted at fx.csv's rate of the bank date + adjustments - open."""
    rates = _rate_lookup(month)
    bank = month["bank"].unique("id", keep="first").select("id", "date", "amount")
    ledger = month["ledger"].select("id", "amount", "currency")
    bank_side = _members(month, "bank").join(bank, on="id")
    group_date = bank_side.group_by("group_id").agg(pl.col("date").max())
    bank_total = {g: sum(Decimal(a) for a in amounts) for g, amounts in
                  bank_side.group_by("group_id").agg(pl.col("amount")).iter_rows()}
    ledger_side = _members(month, "ledger").join(ledger, on="id").join(group_date, on="group_id")
    ledger_total: dict[str, Decimal] = defaultdict(Decimal)
    for group, amount, currency, day in ledger_side.select("group_id", "amount", "currency", "date").iter_rows():
        ledger_total[group] += _to_hkd(amount, currency, day, rates)
    checked = 0
    for row in month["truth"].iter_rows(named=True):
        adjustments = json.loads(row["adjustments"])
        assert all(set(a) == {"cause", "amount"} and a["cause"] in ADJUSTMENT_CAUSES for a in adjustments)
        adjusted = sum((Decimal(a["amount"]) for a in adjustments), Decimal(0))
        open_amount = Decimal(row["open_amount"] or "0")
        group = row["group_id"]
        assert bank_total[group] == ledger_total[group] + adjusted - open_amount, row
        if row["case"] not in ("short_payment", "fx_receipt", "stripe_payout", "processor_payout"):
            assert adjustments == [], row
        checked += 1
    assert checked == month["truth"].height > 0.8 * month["bank"].height


def test_adjustments_stay_in_the_documented_ranges(month):
    truth = month["truth"].filter(pl.col("adjustments") != "[]")
    ledger = month["ledger"].select("id", "amount", "currency")
    gross = dict(_members(month, "ledger").join(ledger, on="id").group_by("group_id").agg(
        pl.col("amount").cast(pl.Decimal(20, 2)).sum()).iter_rows())
    seen = defaultdict(int)
    for row in truth.iter_rows(named=True):
        for adjustment in json.loads(row["adjustments"]):
            cause, amount = adjustment["cause"], Decimal(adjustment["amount"])
            seen[(row["case"], cause)] += 1
            assert amount < 0, row
            if row["case"] == "short_payment":
                invoice = gross[row["group_id"]]
                limit = max(Decimal(SHORT_PAYMENT_MIN_TOLERANCE_HKD), invoice * SHORT_PAYMENT_TOLERANCE_PCT / 100)
                assert -amount <= limit, row
                if cause == "bank_charge":
                    assert Decimal(5) <= -amount <= Decimal(150), row
            elif row["case"] == "fx_receipt" and cause == "bank_charge":
                assert int(-amount) in FX_CHARGES_HKD and -amount == int(-amount), row
            elif row["case"] in ("stripe_payout", "processor_payout"):
                assert cause == "processor_fee"
                if row["case"] == "processor_payout":
                    assert -amount <= gross[row["group_id"]] * PROCESSOR_FEE_MAX_PCT / 100, row
    assert {("short_payment", "bank_charge"), ("short_payment", "short_payment"), ("fx_receipt", "fx_difference"),
            ("fx_receipt", "bank_charge"), ("stripe_payout", "processor_fee"), ("processor_payout", "processor_fee")} <= set(seen)


def test_amounts_are_exact_in_their_own_currency(written):
    from models.money import parse_amount_expr

    for name in ("bank", "ledger"):
        frame = _read(written[name])
        minor, reason = parse_amount_expr(pl.col("amount"), pl.col("currency"))
        assert frame.select(reason.is_null().all()).item(), name
        assert frame.select(minor.is_not_null().all()).item(), name


def test_stripe_report_has_stripe_columns_and_balances(month, written):
    report = _read(written["stripe"])
    assert report.columns == STRIPE_COLUMNS
    assert set(report["currency"]) == {"hkd"}
    assert set(report["reporting_category"]) == {"charge", "refund", "fee"}
    money = report.with_columns(pl.col("gross", "fee", "net").cast(pl.Decimal(20, 2)))
    assert money.select((pl.col("gross") - pl.col("fee") == pl.col("net")).all()).item()
    charges = money.filter(pl.col("reporting_category") == "charge")
    refunds = money.filter(pl.col("reporting_category") == "refund")
    fees = money.filter(pl.col("reporting_category") == "fee")
    assert (charges["fee"] > 0).all() and (charges["gross"] > 0).all()
    assert (refunds["gross"] < 0).all() and (refunds["fee"] == 0).all() and (fees["gross"] < 0).all()
    for column, pattern in (("automatic_payout_id", r"^po_1\w{23}$"), ("balance_transaction_id", r"^txn_3\w{23}$"),
                            ("automatic_payout_effective_at", r"^2026-1[01]-\d\d 00:00:00$"),
                            ("created_utc", r"^2026-\d\d-\d\d \d\d:\d\d:\d\d$")):
        assert report[column].str.contains(pattern).all(), column
    assert report["balance_transaction_id"].is_unique().all()
    # every charge names its order, in the metadata or in the description ("Order SO-2026-00123")
    order_id = pl.coalesce(pl.when(pl.col("payment_metadata[order_id]") != "").then(pl.col("payment_metadata[order_id]")),
                           pl.col("description").str.extract(r"^Order (\S+)$"))
    charges = charges.with_columns(order=order_id)
    assert charges["order"].null_count() == 0
    assert (charges["payment_metadata[order_id]"] == "").any() and (charges["description"] == "Web shop checkout").any()
    orders = month["ledger"].filter(pl.col("type") == "order")
    assert charges["order"].is_in(orders["id"].implode()).all()
    # each payout truth group: its orders are the payout's charges, its credit notes its refunds,
    # and the bank credit is the payout's net
    payout_of_order = dict(charges.select("order", "automatic_payout_id").iter_rows())
    refunds = refunds.with_columns(order=pl.col("payment_metadata[order_id]"))
    net = dict(money.group_by("automatic_payout_id").agg(pl.col("net").sum()).iter_rows())
    credit_notes = month["ledger"].filter(pl.col("type") == "credit_note").select("id", "reference", "amount")
    bank = month["bank"].unique("id", keep="first")
    groups = month["truth"].filter(pl.col("case") == "stripe_payout")
    assert groups.height == month["bank"].filter(pl.col("case") == "stripe_payout").height
    for row in groups.iter_rows(named=True):
        ids = row["ledger_ids"].split(";")
        paid = [i for i in ids if not i.startswith("CN-")]
        payouts = {payout_of_order[i] for i in paid}
        assert len(payouts) == 1, row
        (payout,) = payouts
        assert set(paid) == {o for o, p in payout_of_order.items() if p == payout}
        refunded = credit_notes.filter(pl.col("id").is_in([i for i in ids if i.startswith("CN-")]))
        in_report = refunds.filter(pl.col("automatic_payout_id") == payout)
        assert sorted(refunded["reference"]) == sorted(in_report["order"])
        line = bank.filter(pl.col("id") == row["bank_ids"]).row(0, named=True)
        assert Decimal(line["amount"]) == net[payout]
        if line["variant"] == "payout_id_shown":
            assert line["description"].endswith(payout)


def test_stripe_report_and_fx_file_load_through_the_feeds(written):
    from feeds.fx import read_fx_csv
    from feeds.stripe import read_report_csv

    lines, rejects = read_report_csv(written["stripe"])
    assert rejects.height == 0 and lines.height == _read(written["stripe"]).height
    assert lines["order_id"].null_count() < lines.height
    rates, rejects = read_fx_csv(written["fx"])
    assert rejects.height == 0 and rates.height == _read(written["fx"]).height


def test_fx_file_has_positive_rates_with_gaps(month, written):
    raw = _read(written["fx"])
    assert raw.columns == ["date", "base", "quote", "rate"]
    assert set(raw["base"]) == {"USD", "CNY", "EUR"} and set(raw["quote"]) == {"HKD"}
    assert raw["rate"].str.contains(r"^\d+\.\d{4}$").all()
    fx = month["fx"].with_columns(pl.col("rate").cast(pl.Decimal(12, 4)))
    assert (fx["rate"] > 0).all()
    bounds = {"USD": (7.75, 7.85), "CNY": (1.0, 1.2), "EUR": (7.5, 9.5)}
    for base, (low, high) in bounds.items():
        rates = fx.filter(pl.col("base") == base)["rate"].cast(pl.Float64)
        assert low <= rates.min() and rates.max() <= high, base
    usd = fx.filter(pl.col("base") == "USD")["date"]
    weekdays = pl.date_range(usd.min(), usd.max(), eager=True).filter(pl.date_range(usd.min(), usd.max(), eager=True).dt.weekday() <= 5)
    assert 0 < weekdays.len() - usd.len() and (usd.dt.weekday() <= 5).all()  # weekends and some weekdays missing
    paid = (  # some payments fall on a day without a rate: the nearest earlier one applies
        _members(month, "bank").join(month["bank"].select("id", "date"), on="id")
        .join(_members(month, "ledger").join(month["ledger"].select("id", "currency"), on="id"), on="group_id")
        .filter(pl.col("currency") != "HKD").select("date", base="currency").unique()
    )
    assert paid.join(fx.select("date", "base"), on=["date", "base"], how="anti").height > 0
    assert usd.min() <= month["ledger"].filter(pl.col("currency") != "HKD")["date"].min()


def test_instalments_reference_their_invoice_and_partial_ones_stay_open(month):
    groups = month["truth"].filter(pl.col("match_type") == "many_to_one")
    assert groups.height > 0
    bank = month["bank"].unique("id", keep="first")
    ledger = month["ledger"]
    partly = 0
    for row in groups.iter_rows(named=True):
        lines = bank.filter(pl.col("id").is_in(row["bank_ids"].split(";")))
        invoice = ledger.filter(pl.col("id") == row["ledger_ids"]).row(0, named=True)
        number = invoice["id"].rsplit("-", 1)[1]
        assert lines.height >= 2 and lines["description"].str.contains(number, literal=True).all(), row
        paid = sum(Decimal(a) for a in lines["amount"])
        if row["open_amount"]:
            partly += 1
            assert Decimal(row["open_amount"]) > 0 and paid < Decimal(invoice["amount"])
        else:
            assert paid == Decimal(invoice["amount"])
        assert (lines["date"] >= invoice["date"]).all()
        assert ((lines["date"] - invoice["date"]).dt.total_days() <= MAX_PAYMENT_LAG_DAYS).all()
    assert 0 < partly < groups.height


def test_payroll_batches_sum_their_lines_and_name_the_batch(month):
    groups = month["truth"].filter(pl.col("case") == "payroll_batch")
    bank = month["bank"].unique("id", keep="first")
    ledger = month["ledger"]
    payroll = ledger.filter(pl.col("type") == "payroll")
    for row in groups.iter_rows(named=True):
        line = bank.filter(pl.col("id") == row["bank_ids"]).row(0, named=True)
        items = ledger.filter(pl.col("id").is_in(row["ledger_ids"].split(";")))
        assert 5 <= items.height <= 40 and items["date"].n_unique() == 1
        assert 0 <= (line["date"] - items["date"][0]).days <= 1
        batch = line["description"].rsplit(" ", 1)[1]
        named = items["description"].str.replace_all("-", "").str.contains(batch.replace("-", ""), literal=True)
        if line["variant"] == "batch_ref_in_ledger":
            assert named.all()
        else:  # the only payroll booked on its run day
            assert not named.any()
            assert payroll.filter(pl.col("date") == items["date"][0]).height == items.height


def _decisive(variant: str) -> bool:
    """Whether a line's label says its reference identifies its items (see labels.csv)."""
    seen = variant.split(":")[-1]
    return seen in ("full", "compact", "spaced", "number", "reference", "cheque", "shown") or variant.startswith("list_")


def _explanations(amount: int, candidates: list[tuple[str, int, bool]]) -> tuple[list, list]:
    """Exact subsets (1-4 items) and single short / FX band items explaining ``amount``."""
    exact, band = [], []
    for size in range(1, MAX_SUBSET_SIZE + 1):
        for combo in itertools.combinations(candidates, size):
            if sum(c[1] for c in combo) == amount:
                exact.append(tuple(sorted(c[0] for c in combo)))
    for item, value, foreign in candidates:
        tolerance = (-(-value // 100) + 25_000) if foreign else max(15_000, -(-value * 2 // 100))
        if value - tolerance <= amount < value:
            band.append((item,))
    return exact, band


def test_lines_without_references_have_exactly_one_explanation(month):
    """A vague list / short / FX line: among its party's items of the last 60 days that no
    referenced line settles (at most 20), exactly one subset or band item explains the amount."""
    rates = _rate_lookup(month)
    bank = month["bank"].unique("id", keep="first")
    ledger = month["ledger"]
    truth = month["truth"]
    bank_members = _members(month, "bank").join(bank.select("id", "variant"), on="id")
    bank_members = bank_members.with_columns(decisive=pl.col("variant").map_elements(_decisive, return_dtype=pl.Boolean))
    identified_groups = set(bank_members.group_by("group_id").agg(pl.col("decisive").all()).filter("decisive")["group_id"])
    identified = set(_members(month, "ledger").filter(pl.col("group_id").is_in(list(identified_groups)))["id"])
    counterparty = dict(ledger.select("id", "counterparty").iter_rows())
    vague = (
        bank.filter(pl.col("case").is_in(["multi_invoice_payment", "supplier_batch", "short_payment", "fx_receipt"])
                    & ~pl.col("variant").map_elements(_decisive, return_dtype=pl.Boolean))
        .join(truth.select(bank_id="bank_ids", ledger_ids="ledger_ids"), left_on="id", right_on="bank_id")
    )
    assert vague.filter(pl.col("case") == "multi_invoice_payment").height >= 10
    assert vague.filter(pl.col("case") == "supplier_batch").height >= 5
    assert vague.filter(pl.col("case") == "short_payment").height >= 5
    assert vague.filter(pl.col("case") == "fx_receipt").height >= 5
    for line in vague.iter_rows(named=True):
        truth_items = line["ledger_ids"].split(";")
        party = counterparty[truth_items[0]]
        kind = ledger.filter(pl.col("id") == truth_items[0])["type"][0]
        window = ledger.filter(
            (pl.col("counterparty") == party) & (pl.col("type") == kind)
            & pl.col("date").is_between(pl.lit(line["date"]) - pl.duration(days=MAX_PAYMENT_LAG_DAYS), pl.lit(line["date"]))
            & ~pl.col("id").is_in(list(identified))
        )
        assert window.height <= MAX_SUBSET_CANDIDATES, line
        amount = abs(int(Decimal(line["amount"]) * 100))
        candidates = [(i, abs(int(_to_hkd(a, c, line["date"], rates) * 100)), c != "HKD")
                      for i, a, c in window.select("id", "amount", "currency").iter_rows()]
        exact, band = _explanations(amount, candidates)
        expected = tuple(sorted(truth_items))
        if line["case"] in ("multi_invoice_payment", "supplier_batch"):
            assert exact == [expected] and band == [], line
        else:
            assert exact == [] and band == [expected], line


def _fits(credit: Decimal, gross: Decimal) -> bool:
    return gross * (100 - PROCESSOR_FEE_MAX_PCT) / 100 <= credit <= gross


def test_processor_payouts_settle_consecutive_blocks_that_only_they_fit(month):
    """A reference matcher: per store and gateway, each payout (in bank date order) takes the
    orders from the first unsettled one up to the only day whose block fits its credit."""
    ledger = month["ledger"].filter(pl.col("description").str.contains(r" online order \((Shopify Payments|PayPal)\)$"))
    ledger = ledger.with_columns(
        store=pl.col("description").str.extract(r"^(.*) online order").str.to_uppercase(),
        gateway=pl.col("description").str.extract(r"\((Shopify Payments|PayPal)\)$").replace(
            {"Shopify Payments": "SHOPIFY PAYOUT", "PayPal": "PAYPAL TRANSFER"}),
    ).sort("date", "id")
    lines = month["bank"].filter(pl.col("case") == "processor_payout").with_columns(
        gateway=pl.col("description").str.extract(r"^CR TRF (SHOPIFY PAYOUT|PAYPAL TRANSFER) "),
        store=pl.col("description").str.extract(r"^CR TRF (?:SHOPIFY PAYOUT|PAYPAL TRANSFER) (.*)$"),
    ).sort("date", "id")
    truth = dict(month["truth"].filter(pl.col("case") == "processor_payout").select("bank_ids", "ledger_ids").iter_rows())
    assert set(lines["variant"]) == {"shopify", "paypal"}  # none left out of the truth
    checked = 0
    for (store, gateway), payouts in lines.group_by("store", "gateway"):
        orders = ledger.filter((pl.col("store") == store) & (pl.col("gateway") == gateway))
        days = orders.group_by("date", maintain_order=True).agg(pl.col("id"), pl.col("amount").cast(pl.Decimal(20, 2)).sum())
        start = 0
        for line in payouts.iter_rows(named=True):
            credit = Decimal(line["amount"])
            fitting, gross = [], Decimal(0)
            for end in range(start, days.height):
                if days["date"][end] >= line["date"]:
                    break
                gross += days["amount"][end]
                if _fits(credit, gross):
                    fitting.append(end)
            assert len(fitting) == 1, (store, gateway, line)
            block = [i for ids in days["id"][start:fitting[0] + 1] for i in ids]
            assert sorted(block) == sorted(truth[line["id"]].split(";"))
            start = fitting[0] + 1
            checked += 1
    assert checked == lines.height


@pytest.mark.parametrize("n_bank", [50, 101, 999, 12_345])
def test_the_bank_has_exactly_the_lines_asked_for(n_bank):
    month = generate(n_bank, seed=n_bank)
    assert month["bank"].height == n_bank
    assert month["truth"]["bank_ids"].str.split(";").explode().is_unique().all()
