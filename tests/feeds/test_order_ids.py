"""Tests of the shop's order id in every processor feed: metadata keys in every style, order
ids named only in a description, kept exactly as written (feeds stage)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from feeds.processor import find_order_id, order_id_in_text, order_key_rank, with_order_source
from feeds.registry import read_any
from tests.feeds import helpers

DATA = Path(__file__).parent / "data"
SHARED = helpers.REALDATA
needs_shared = helpers.needs_shared()

_HEADER = "automatic_payout_id,balance_transaction_id,currency,gross,fee,net,reporting_category,description"


def orders(result) -> list[tuple[str, str | None, str | None]]:
    """(line id, order id, order_id_from) per line."""
    return [
        (line_id, order_id, json.loads(attributes).get("order_id_from"))
        for line_id, order_id, attributes in result.frame.select("line_id", "order_id", "attributes").rows()
    ]


# --- the building blocks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "rank"),
    [
        ("order_id", 0), ("orderId", 0), ("OrderID", 0), ("ORDERID", 0), ("woocommerce_order_id", 0),
        ("shopify-order-id", 0), ("payment_metadata[order_id]", 0),
        ("order_number", 1), ("orderNumber", 1), ("order_no", 1), ("OrderNo", 1), ("order nr", 1),
        ("Order Number", 1), ("order_name", 2), ("order_ref", 2), ("order", 3), ("shopify_order", 3),
        ("order_key", None), ("order_status", None), ("order_total", None), ("border", None),
        ("reorder", None), ("customer_id", None), ("", None),
    ],
)
def test_which_keys_name_an_order_id_and_how_specifically(key, rank):
    assert order_key_rank(key) == rank


@pytest.mark.parametrize(
    ("text", "order_id"),
    [
        ("Web order #5022 (Stripe)", "#5022"),
        ("Order SO-2026-00114", "SO-2026-00114"),
        ("Payment for order #1001", "#1001"),
        ("Refund for order 1001, partial", "1001"),
        ("Order No.: 0005022.", "0005022"),
        ("Order number #ORD-778", "#ORD-778"),
        ("Order ID: JT12345", "JT12345"),
        ("order_id=77", "77"),
        ("Order#88", "#88"),
        ("Order: #1001", "#1001"),
        ("Order #: 5022", "5022"),
        ("Order - JT12345", "JT12345"),
        ("MONTHLY - $1 for the first 2 Months: Me - Order 99309. Item total", "99309"),
        ("Bestellung 4711", "4711"),
        ("Order for 陳大文", None),
        ("Reorder 55", None),
        ("orders 12", None),
        ("Chargeback", None),
        ("", None),
        (None, None),
    ],
)
def test_order_id_named_in_a_description_is_kept_as_written(text, order_id):
    assert order_id_in_text(text) == order_id


def test_most_specific_key_wins_and_the_source_is_named():
    metadata = {"order": "5022", "order_key": "wc_order_x", "order_number": "SO-5022", "orderId": "0005022"}
    assert find_order_id(metadata) == ("0005022", "metadata[orderId]")
    # the earlier dict wins a tie; an empty value is no value; a JSON number is its text
    found = find_order_id([("charge", {"order_id": " "}), ("intent", {"order_id": 5022}), ("x", {"order_id": "9"})])
    assert found == ("5022", "intent[order_id]")
    assert find_order_id({"note": "x"}, [("description", "Web order #5022")]) == ("#5022", "description")
    assert find_order_id(None, [("description", None)]) == (None, None)


def test_order_source_is_appended_and_the_rest_stays_byte_exact():
    assert with_order_source('{"a":"陳 ","b":1}', "payment_metadata[訂單]") == (
        '{"a":"陳 ","b":1,"order_id_from":"payment_metadata[訂單]"}'
    )
    assert with_order_source("{}", "description") == '{"order_id_from":"description"}'
    assert with_order_source('{"a":1}', None) == '{"a":1}'


# --- Stripe itemized report CSV ----------------------------------------------------------------


def test_stripe_report_sample_of_order_id_styles():
    result = read_any(str(DATA / "stripe_order_id_styles.csv"), "processor")
    assert result.rejects.height == 0
    assert orders(result) == [
        ("txn_s01", "5022", "payment_metadata[order]"),  # order_key is a token, not the order
        ("txn_s02", "SO-2026-00114", "payment_metadata[order_number]"),  # number before bare order
        ("txn_s03", "0005022", "payment_metadata[orderId]"),  # leading zeros kept
        ("txn_s04", "WC-7001", "payment_metadata[woocommerce_order_id]"),  # id before number
        ("txn_s05", "#5023", "description"),
        ("txn_s06", "#1001", "description"),
        ("txn_s07", None, None),
        ("txn_s08", None, None),
    ]
    first = json.loads(result.frame["attributes"][0])
    assert first["payment_metadata[order]"] == "5022" and first["payment_metadata[order_key]"] == "wc_order_AbC123"


@pytest.mark.parametrize(
    "key",
    ["order_id", "order_number", "shopify_order", "order", "orderId", "woocommerce_order_id", "order_no",
     "OrderNumber", "shop_order_id", "訂單 order_id"],
)
@pytest.mark.parametrize("value", ["#5022", "SO-2026-00114", "0005022", "5022", "ORD 77/陳"])
def test_stripe_report_metadata_key_of_any_style(tmp_path, key, value):
    path = tmp_path / "report.csv"
    path.write_text(
        f"{_HEADER},payment_metadata[{key}],payment_metadata[customer]\n"
        f'po_1,txn_1,hkd,10.00,0.50,9.50,charge,Payment,"{value}",陳大文\n',
        encoding="utf-8",
    )
    assert orders(read_any(str(path), "processor")) == [("txn_1", value, f"payment_metadata[{key}]")]


@pytest.mark.parametrize(
    ("description", "order_id"),
    [
        ("Web order #5022 (Stripe)", "#5022"),
        ("Order SO-2026-00114", "SO-2026-00114"),
        ("Payment for order #1001", "#1001"),
        ("Order 0005022", "0005022"),
        ("Order for 陳大文", None),
    ],
)
def test_stripe_report_order_only_in_the_description(tmp_path, description, order_id):
    path = tmp_path / "report.csv"
    path.write_text(
        f"{_HEADER},payment_metadata[customer]\npo_1,txn_1,hkd,10.00,0.50,9.50,charge,{description},陳大文\n",
        encoding="utf-8",
    )
    expected_source = "description" if order_id else None
    assert orders(read_any(str(path), "processor")) == [("txn_1", order_id, expected_source)]


def test_stripe_report_empty_metadata_falls_back_to_the_next_key_then_the_description(tmp_path):
    path = tmp_path / "report.csv"
    path.write_text(
        f"{_HEADER},payment_metadata[order_id],payment_metadata[order_number]\n"
        "po_1,txn_1,hkd,10.00,0.50,9.50,charge,Web order #5022,,  SO-5022 \n"
        "po_1,txn_2,hkd,10.00,0.50,9.50,charge,Web order #5023,,\n",
        encoding="utf-8",
    )
    assert orders(read_any(str(path), "processor")) == [
        ("txn_1", "SO-5022", "payment_metadata[order_number]"),
        ("txn_2", "#5023", "description"),
    ]


# --- Stripe API JSON ---------------------------------------------------------------------------


def _stripe_bt(source, description=None) -> dict:
    return {"id": "txn_1", "object": "balance_transaction", "amount": 1000, "fee": 50, "net": 950,
            "currency": "hkd", "type": "charge", "source": source, "description": description}


@pytest.mark.parametrize(
    ("transaction", "expected"),
    [
        (_stripe_bt({"id": "ch_1", "metadata": {"order_number": "SO-2026-00114"}}),
         ("SO-2026-00114", "source.metadata[order_number]")),
        (_stripe_bt({"id": "ch_1", "metadata": {"orderId": 5022, "order": "x9"}}), ("5022", "source.metadata[orderId]")),
        (_stripe_bt({"id": "ch_1", "metadata": {}, "payment_intent": {"id": "pi_1", "metadata": {"shopify_order": "#1001"}}}),
         ("#1001", "source.payment_intent.metadata[shopify_order]")),
        (_stripe_bt({"id": "re_1", "metadata": {}, "charge": {"id": "ch_1", "metadata": {"woocommerce_order_id": "0005022"}}}),
         ("0005022", "source.charge.metadata[woocommerce_order_id]")),
        (_stripe_bt("ch_1", "Web order #5022 (Stripe)"), ("#5022", "description")),
        (_stripe_bt({"id": "ch_1", "metadata": {"order_key": "wc_x"}, "description": "Payment for order #1001"}),
         ("#1001", "source.description")),
        (_stripe_bt("ch_1", "Order for 陳大文"), (None, None)),
    ],
)
def test_stripe_json_order_from_metadata_or_description(tmp_path, transaction, expected):
    path = tmp_path / "bt.json"
    path.write_text(json.dumps({"object": "list", "data": [transaction]}, ensure_ascii=False), encoding="utf-8")
    assert orders(read_any(str(path), "processor")) == [("txn_1", *expected)]


# --- Shopify Payments JSON ---------------------------------------------------------------------


def _shopify_tx(**order) -> dict:
    return {"id": 11, "type": "charge", "payout_id": 9, "currency": "USD", "amount": "10.00", "fee": "0.59",
            "net": "9.41", "source_id": 5, "processed_at": "2026-10-01T10:00:00-04:00", **order}


@pytest.mark.parametrize(
    ("transaction", "expected"),
    [
        (_shopify_tx(source_order_id=450789469), ("450789469", "source_order_id")),
        (_shopify_tx(source_order_id=450789469, order_name="#1001"), ("#1001", "order_name")),
        (_shopify_tx(source_order_id=450789469, associated_order={"id": 450789469, "name": "#1001"}),
         ("#1001", "associated_order.name")),
        (_shopify_tx(source_order_id=None, source_order_transaction_id=77), (None, None)),
    ],
)
def test_shopify_balance_transaction_order(tmp_path, transaction, expected):
    path = tmp_path / "tx.json"
    path.write_text(json.dumps({"transactions": [transaction]}), encoding="utf-8")
    result = read_any(str(path), "processor")
    assert orders(result) == [("11", *expected)]
    if transaction.get("source_order_id"):  # kept in the attributes whichever id was taken
        assert json.loads(result.frame["attributes"][0])["source_order_id"] == transaction["source_order_id"]


@needs_shared
def test_real_shopify_balance_transactions_keep_source_order_id():
    result = read_any(str(SHARED / "shopify/shopify_payments_balance_transactions.json"), "processor")
    assert (result.frame.height, result.rejects.height) == (24, 1)
    dispute = result.frame.filter(pl.col("line_id") == "726130462").row(0, named=True)
    assert dispute["order_id"] == "625362839"
    assert json.loads(dispute["attributes"])["order_id_from"] == "source_order_id"


# --- PayPal and Venmo --------------------------------------------------------------------------

_PAYPAL = "Date,Time,TimeZone,Name,Type,Status,Currency,Gross,Fee,Net,Transaction ID,Item Title,Invoice Number,Custom Number\n"


@pytest.mark.parametrize(
    ("title", "invoice", "custom", "expected"),
    [
        ("Blue shirt", "WC-1234", '"{""order_id"":1235}"', ("WC-1234", "Invoice Number")),
        ("Blue shirt", "", '"{""order_id"":1235,""order_key"":""wc_order_x""}"', ("1235", "Custom Number")),
        ("Blue shirt", "", "Order #0005022", ("#0005022", "Custom Number")),
        ("Order #1001 - Blue shirt", "", "cust-77", ("#1001", "Item Title")),
        ("Blue shirt", "", "cust-77", (None, None)),
    ],
)
def test_paypal_activity_order_from_invoice_custom_or_item_title(tmp_path, title, invoice, custom, expected):
    path = tmp_path / "pp.csv"
    path.write_text(
        _PAYPAL + f"10/01/2026,10:00:00,PDT,陳大文,Express Checkout Payment,Completed,USD,10.00,-0.59,9.41,T1,{title},{invoice},{custom}\n",
        encoding="utf-8",
    )
    assert orders(read_any(str(path), "processor")) == [("T1", *expected)]


@needs_shared
def test_real_paypal_item_title_names_an_order():
    result = read_any(str(SHARED / "paypal/hledger_paypal_activity_custom_columns.csv"), "processor")
    assert result.frame.height == 7 and result.rejects.height == 0
    found = result.frame.filter(pl.col("order_id").is_not_null())
    assert orders(type("R", (), {"frame": found})) == [("06P57143A2806728E", "99309", "Item Title")]


def test_venmo_note_names_an_order(tmp_path):
    path = tmp_path / "venmo.csv"
    path.write_text(
        "Username,ID,Datetime,Type,Status,Note,From,To,Amount (total),Amount (fee)\n"
        "me,1,2026-10-01T10:00:00,Payment,Complete,Order #77 thanks,A,B,+ $10.00,\n"
        "me,2,2026-10-01T11:00:00,Payment,Complete,pizza,A,B,+ $5.00,\n",
        encoding="utf-8",
    )
    assert orders(read_any(str(path), "processor")) == [("1", "#77", "Note"), ("2", None, None)]
