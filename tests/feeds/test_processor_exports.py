"""Tests of the Stripe API JSON, Shopify Payments and PayPal/Venmo readers (feeds stage)."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

import feeds
from feeds.registry import detect, read_any
from feeds.stripe import stripe_minor_to_iso
from models.errors import FeedFormatError, PrecisionError
from models.schema import PAYOUT_LINE_SCHEMA, REJECTS_SCHEMA
from tests.feeds import helpers

SHARED = helpers.REALDATA
needs_shared = helpers.needs_shared()


def real(name: str) -> str:
    return str(SHARED / name)


def read(path: str):
    result = read_any(path, "processor")
    assert result.frame.schema == pl.Schema(PAYOUT_LINE_SCHEMA)
    assert result.rejects.schema == pl.Schema(REJECTS_SCHEMA)
    assert result.rows_read == result.frame.height + result.rejects.height
    net_ok = result.frame.select((pl.col("gross_minor") - pl.col("fee_minor") == pl.col("net_minor")).all()).item()
    assert net_ok in (True, None)
    return result


def money(frame: pl.DataFrame):
    return frame.select("line_id", "category", "currency", "gross_minor", "fee_minor", "net_minor").rows()


# --- Stripe JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [(2000, "USD", 2000), (1500, "JPY", 1500), (50000, "ISK", 500), (7, "MGA", 700), (12340, "KWD", 12340)],
)
def test_stripe_minor_units_per_currency(amount, currency, minor):
    assert stripe_minor_to_iso(amount, currency) == minor


def test_stripe_minor_units_refuses_fractions_and_floats():
    with pytest.raises(PrecisionError, match="not a whole number of ISK"):
        stripe_minor_to_iso(50050, "ISK")
    with pytest.raises(PrecisionError, match="not an integer"):
        stripe_minor_to_iso(12.5, "USD")  # type: ignore[arg-type]


def test_stripe_list_object_with_jpy_payout_and_bad_items(tmp_path):
    data = {
        "object": "list",
        "data": [
            {"id": "txn_1", "object": "balance_transaction", "amount": 1500, "fee": 45, "net": 1455,
             "currency": "jpy", "type": "charge", "reporting_category": "charge", "created": 1767571200,
             "available_on": 1767744000, "source": {"id": "ch_1", "metadata": {"order_id": "A-17"}},
             "description": "Order for 陳大文"},
            {"id": "txn_2", "object": "balance_transaction", "amount": -1455, "fee": 0, "net": -1455,
             "currency": "jpy", "type": "payout", "reporting_category": "payout", "source": "po_9",
             "created": 1767830400, "available_on": 1767830400},
            {"id": "po_9", "object": "payout", "amount": 1455, "currency": "jpy", "arrival_date": 1767916800,
             "created": 1767830400, "status": "paid", "balance_transaction": "txn_2"},
            {"id": "txn_3", "object": "balance_transaction", "amount": 10.5, "fee": 0, "net": 10.5, "currency": "usd"},
            {"id": "txn_4", "object": "balance_transaction", "amount": 100, "fee": 3, "net": 90, "currency": "usd"},
            {"id": "ch_5", "object": "charge", "amount": 100, "currency": "usd"},
            {"id": "txn_1", "object": "balance_transaction", "amount": 1, "fee": 0, "net": 1, "currency": "usd"},
        ],
    }
    path = tmp_path / "bt.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    assert detect(str(path), "processor").FORMAT == "stripe"
    result = read(str(path))
    assert money(result.frame) == [
        ("txn_1", "charge", "JPY", 1500, 45, 1455),
        ("txn_2", "payout", "JPY", -1455, 0, -1455),
        ("po_9", "payout", "JPY", -1455, 0, -1455),
    ]
    first = result.frame.row(0, named=True)
    assert (first["order_id"], first["source_id"], first["description"]) == ("A-17", "ch_1", "Order for 陳大文")
    assert (first["created"], first["available_on"]) == (dt.date(2026, 1, 5), dt.date(2026, 1, 7))
    assert result.frame["payout_id"].to_list() == [None, "po_9", "po_9"]
    reasons = result.rejects["reason"].to_list()
    assert "not an integer" in reasons[0]
    assert "amount - fee != net" in reasons[1]
    assert "charge is not a balance transaction" in reasons[2]
    assert "already appears on line" in reasons[3]
    text = path.read_text(encoding="utf-8").splitlines()
    for line in result.frame["source_line"].to_list():
        assert '"id"' in text[line - 1]


@needs_shared
def test_real_stripe_json_files():
    charge = read(real("stripe/djstripe_balance_transaction_charge.json")).frame.row(0, named=True)
    assert (charge["line_id"], charge["gross_minor"], charge["fee_minor"], charge["net_minor"]) == (
        "txn_fake_ch_fakefakefakefakefake0001", 2000, 88, 1912
    )
    assert (charge["created"], charge["available_on"], charge["currency"]) == (
        dt.date(2019, 5, 16), dt.date(2019, 5, 23), "USD"
    )
    assert json.loads(charge["attributes"])["status"] == "pending"
    dispute = read(real("stripe/djstripe_balance_transaction_dispute.json")).frame.row(0, named=True)
    assert (dispute["category"], dispute["gross_minor"], dispute["fee_minor"], dispute["net_minor"]) == (
        "dispute", -1000, 1500, -2500
    )
    assert dispute["source_id"] == "dp_1JHRCWJSZQVUcJYgEHzUiuvb"
    payout = read(real("stripe/djstripe_payout_bank_account.json")).frame.row(0, named=True)
    assert (payout["payout_id"], payout["net_minor"], payout["available_on"]) == (
        "po_1JR569QuFmP1Mw5uxasKoRx5", -1000, dt.date(2021, 8, 23)
    )  # dj-stripe's decimal string '10.00' read as major units


@needs_shared
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("stripe/djstripe_charge.json", "Stripe charge object, not a balance transaction or payout (its balance transaction is txn_fake"),
        ("stripe/stripe_openapi_fixtures3.json", "OpenAPI fixture bundle"),
        ("shopify/order_single.json", "a single Shopify order, not a Shopify Payments payout"),
        ("shopify/orders_list.json", "a list of Shopify orders"),
        ("shopify/order_refund.json", "a Shopify refund of one order"),
        ("shopify/order_transactions.json", "Shopify order transactions"),
        ("shopify/tender_transactions.json", "tender transactions"),
    ],
)
def test_real_files_that_are_not_payout_files_are_refused_with_the_reason(name, reason):
    with pytest.raises(FeedFormatError) as error:
        read_any(real(name), "processor")
    assert reason in str(error.value)
    assert "\n" not in str(error.value)


# --- Shopify -----------------------------------------------------------------------------------


@needs_shared
def test_real_shopify_balance_transactions():
    result = read(real("shopify/shopify_payments_balance_transactions.json"))
    assert result.frame.height == 24 and result.rejects.height == 1  # 25 rows in the file
    assert "amount - fee != net (-1.50 - -0.25 != -1.75)" in result.rejects["reason"][0]
    assert set(result.frame["payout_id"]) == {"623721858"}
    dispute = result.frame.filter(pl.col("line_id") == "726130462").row(0, named=True)
    assert (dispute["category"], dispute["gross_minor"], dispute["fee_minor"], dispute["net_minor"]) == (
        "dispute", -1150, 1500, -2650
    )
    assert dispute["order_id"] == "625362839"
    payout = result.frame.filter(pl.col("category") == "payout").row(0, named=True)
    assert (payout["line_id"], payout["net_minor"]) == ("854848137", -4190)
    # the 24 readable rows: the file's sums minus the rejected adjustment
    assert result.frame["gross_minor"].sum() == 5975 + 150
    assert result.frame["net_minor"].sum() == 3948 + 175


@needs_shared
def test_real_shopify_payouts_and_summary_check():
    single = read(real("shopify/shopify_payments_payout_single.json"))
    row = single.frame.row(0, named=True)
    assert (row["payout_id"], row["net_minor"], row["available_on"], row["currency"]) == (
        "623721858", -4190, dt.date(2019, 11, 12), "USD"
    )
    assert single.notes == []  # its summary reconciles
    many = read(real("shopify/shopify_payments_payouts.json"))
    assert many.frame.select("payout_id", "currency", "net_minor").rows() == [
        ("854088011", "USD", -4312), ("512467833", "USD", -4312), ("39438702", "USD", -4312),
        ("710174591", "USD", -4190), ("974708905", "CAD", -5169), ("623721858", "USD", -4190),
    ]
    assert [json.loads(a)["status"] for a in many.frame["attributes"]] == [
        "scheduled", "failed", "in_transit", "paid", "paid", "paid"
    ]
    assert len(many.notes) == 4  # summaries that do not add up to the amount
    assert any("974708905" in n and "50.39" in n and "51.69" in n for n in many.notes)


def test_shopify_own_sample_exact_strings(tmp_path):
    path = tmp_path / "tx.json"
    path.write_text(json.dumps({"transactions": [
        {"id": 1, "type": "charge", "payout_id": 9, "currency": "JPY", "amount": "1500", "fee": "45",
         "net": "1455", "source_id": 5, "source_order_id": 77, "processed_at": "2026-01-05T23:30:00+09:00"},
        {"id": 2, "type": "charge", "payout_id": 9, "currency": "KWD", "amount": "1.2345", "fee": "0", "net": "1.2345"},
        {"id": 3, "type": "charge", "payout_id": 9, "currency": "USD", "amount": 0.1, "fee": "0", "net": "0.1"},
    ]}), encoding="utf-8")
    result = read(str(path))
    # a JSON number is parsed as Decimal from its text (never a float): 0.1 stays exact
    assert money(result.frame) == [("1", "charge", "JPY", 1500, 45, 1455), ("3", "charge", "USD", 10, 0, 10)]
    assert result.frame.row(0, named=True)["created"] == dt.date(2026, 1, 5)
    assert result.frame.row(0, named=True)["order_id"] == "77"
    assert result.rejects["reason"][0] == "amount 1.2345 has more decimals than KWD allows (3)"
    assert result.rejects.height == 1


# --- PayPal and Venmo --------------------------------------------------------------------------


@needs_shared
def test_real_paypal_custom_columns():
    result = read(real("paypal/hledger_paypal_activity_custom_columns.csv"))
    frame = result.frame
    assert frame.height == 7
    assert (frame["available_on"].min(), frame["available_on"].max()) == (dt.date(2019, 10, 1), dt.date(2019, 10, 22))
    benefactor = frame.filter(pl.col("line_id") == "68LL1662YP3134303").row(0, named=True)
    assert (benefactor["gross_minor"], benefactor["fee_minor"], benefactor["net_minor"]) == (1000, 59, 941)
    funding = frame.filter(pl.col("line_id") == "0UT1454T080467333").row(0, named=True)
    assert (funding["source_id"], funding["net_minor"], funding["category"]) == ("06P57143A2806728E", 699, "topup")
    assert sorted(frame.filter(pl.col("net_minor") < 0)["net_minor"].to_list()) == [-700, -699, -200]


@needs_shared
def test_real_paypal_full_and_short_layouts():
    full = read(real("paypal/ledgerautosync_paypal_activity_full.csv")).frame
    assert full.select("line_id", "net_minor", "available_on").rows() == [
        ("XYZ1", -2000, dt.date(2016, 6, 4)), ("XYZ2", 112000, dt.date(2016, 6, 4))
    ]
    assert "Jane Doe" in full["description"][0] and "Recurring Payment Sent" in full["description"][0]
    short = read_any(real("paypal/ledgerautosync_paypal_activity_short.csv"), "processor")
    assert short.frame.select("net_minor", "currency", "available_on").rows() == [
        (-1234, "USD", dt.date(2016, 12, 31)), (1234, "USD", dt.date(2016, 12, 31))
    ]
    assert any("USD" in note for note in short.notes)


@needs_shared
def test_real_paypal_detail_json_and_venmo_statement():
    detail = read(real("paypal/beancountimport_paypal_transaction_detail_de.json")).frame.row(0, named=True)
    assert (detail["gross_minor"], detail["fee_minor"], detail["net_minor"], detail["currency"]) == (5150, 163, 4987, "EUR")
    assert detail["available_on"] == dt.date(2022, 3, 14)
    venmo = read(real("paypal/ledgerautosync_venmo_statement.csv"))
    assert venmo.frame.select("line_id", "net_minor").rows() == [("1", 7301), ("2", 5003), ("3", -1201), ("4", -3502)]
    balances = dict(venmo.balances.select("type", "amount_minor").rows())
    assert balances == {"opening": 0, "closing": 7601}


def test_paypal_day_first_decimal_comma_and_bad_row(tmp_path):
    path = tmp_path / "pp.csv"
    path.write_text(
        '"Datum","Uhrzeit","Zeitzone","Name","Typ","Status","Währung","Brutto","Gebühr","Netto","Transaktionscode"\n',
        encoding="utf-8",
    )
    # German headers are not the English PayPal layout: refused with the columns it needs
    with pytest.raises(FeedFormatError):
        read_any(str(path), "processor")
    path.write_text(
        "Date,Time,TimeZone,Name,Type,Status,Currency,Gross,Fee,Net,Transaction ID\n"
        '25/12/2025,10:00:00,CET,Jürgen Groß,Payment Received,Completed,EUR,"1.234,56","-35,80","1.198,76",T1\n'
        "26/12/2025,10:00:00,CET,Zoë,Payment Received,Completed,EUR,10,-1,8,T2\n"
        "27/12/2025,10:00:00,CET,Zoë,Withdraw Funds to Bank Account,Completed,EUR,-100,0,-100,T3\n",
        encoding="utf-8",
    )
    result = read(str(path))
    assert money(result.frame) == [
        ("T1", "charge", "EUR", 123456, 3580, 119876),
        ("T3", "payout", "EUR", -10000, 0, -10000),
    ]
    assert result.frame["available_on"][0] == dt.date(2025, 12, 25)
    assert "Jürgen Groß" in result.frame["description"][0]
    assert result.rejects.select("line").to_series().to_list() == [3]


def test_load_processor_keeps_each_line_once(tmp_path):
    data = {"object": "list", "data": [
        {"id": "txn_1", "object": "balance_transaction", "amount": 100, "fee": 3, "net": 97, "currency": "usd"}]}
    one, two = tmp_path / "a.json", tmp_path / "b.json"
    one.write_text(json.dumps(data), encoding="utf-8")
    two.write_text(json.dumps(data), encoding="utf-8")
    loaded = feeds.load_processor([str(one), str(two)])
    assert loaded.frame.height == 1
    assert loaded.duplicates.select("id", "same_content").rows() == [("txn_1", True)]
    assert [s.duplicates for s in loaded.stats] == [0, 1]
