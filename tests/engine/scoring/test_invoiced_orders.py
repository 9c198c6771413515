"""An order its customer was invoiced for is one receivable with the invoice: the customer's
payment settles the invoice, and the order neither competes with it nor makes its amount look
common."""

from __future__ import annotations

import datetime as dt

import polars as pl

from engine.prepare.features import prepare_ledger
from models.schema import LEDGER_SCHEMA
from rules.model import default_rules
from tests.engine.csv_month import proposals_by_bank

PAYMENT = "B1,2026-10-04,4937.22,HKD,FPS CR KWONG CHEONG PAPER LIMITED,,,001\n"
INVOICE = "INV-4977,2026-09-10,4937.22,HKD,Garment order,Kwong Cheong Paper Limited,INV-4977,1100,invoice,\n"


def _run(tmp_path, ledger_rows: str) -> dict:
    return proposals_by_bank(tmp_path, PAYMENT, ledger_rows)


def test_the_payment_settles_the_invoice_not_the_order_it_was_raised_from(tmp_path):
    order = "SO-1400,2026-09-03,4937.22,HKD,Sales order - Garment order,KWONG CHEONG PAPER LIMITED,,1150,order,\n"
    rows = _run(tmp_path, order + INVOICE)
    assert rows["B1"]["ledger_ids"] == "INV-4977"
    assert rows["B1"]["status"] == "auto", rows["B1"]["explanation"]
    assert "the only item with this amount" in rows["B1"]["explanation"]


def test_an_order_placed_after_the_invoice_is_another_sale_and_competes(tmp_path):
    # the same amount ordered again after the invoice: not yet invoiced, the payment may be for
    # either, so a person decides
    order = "SO-1500,2026-09-20,4937.22,HKD,Sales order - Garment order,KWONG CHEONG PAPER LIMITED,,1150,order,\n"
    rows = _run(tmp_path, INVOICE + order)
    assert rows["B1"]["status"] == "review"


def test_which_orders_count_as_invoiced():
    day = dt.date
    rows = [  # id, date, amount, currency, customer, type
        ("SO-1", day(2026, 9, 1), 100_00, "HKD", "Kam Wing", "order"),      # invoiced as INV-1
        ("SO-2", day(2026, 9, 1), 100_00, "HKD", "Harbour View", "order"),  # another customer
        ("SO-3", day(2026, 9, 20), 100_00, "HKD", "Kam Wing", "order"),     # after the invoice
        ("SO-4", day(2026, 9, 1), 250_00, "USD", "Kam Wing", "order"),      # another currency
        ("SO-5", day(2026, 9, 1), 300_00, "HKD", None, "order"),            # no customer
        ("INV-1", day(2026, 9, 10), 100_00, "HKD", "Kam Wing", "invoice"),
        ("INV-2", day(2026, 9, 10), 250_00, "HKD", "Kam Wing", "invoice"),
        ("INV-3", day(2026, 9, 10), 300_00, "HKD", None, "invoice"),
    ]
    ledger = pl.DataFrame(
        [{"id": i, "date": d, "amount_minor": a, "currency": c, "counterparty": n, "type": t}
         for i, d, a, c, n, t in rows],
        schema=LEDGER_SCHEMA,
    )
    prepared = prepare_ledger(ledger, default_rules())
    assert dict(zip(prepared["id"], prepared["invoiced"], strict=True)) == {
        "SO-1": True, "SO-2": False, "SO-3": False, "SO-4": False, "SO-5": False,
        "INV-1": False, "INV-2": False, "INV-3": False,
    }
