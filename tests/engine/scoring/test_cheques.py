"""A cheque the business wrote: the bank prints its number (``CHQ 100003``) and the books wrote
it on the bill paid with it (``chq 100003``). One number on both sides settles the cheque
among bills of the same amount; another cheque's number does not."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from engine.prepare.features import prepare_bank, prepare_ledger
from models.schema import BANK_SCHEMA, LEDGER_SCHEMA
from rules.model import default_rules
from tests.engine.csv_month import proposals_by_bank

BILLS = (
    "BILL-5,2026-08-06,-7300.00,HKD,Garment order; chq 100003,亞洲太平洋傢俬有限公司,2524-4905,2100,bill,\n"
    "BILL-6,2026-08-07,-7300.00,HKD,Garment order; chq 100004,Hing Fook Catering Ltd,2524-4906,2100,bill,\n"
)


def _run(tmp_path, bank: str) -> dict:
    return proposals_by_bank(tmp_path, bank, BILLS)


def test_a_presented_cheque_settles_the_bill_that_names_it(tmp_path):
    rows = _run(tmp_path, "B1,2026-10-01,-7300.00,HKD,CHQ 100003,,,001\n")
    assert (rows["B1"]["ledger_ids"], rows["B1"]["status"]) == ("BILL-5", "auto"), rows["B1"]["explanation"]
    assert "cheque 100003 on the bank line and in the ledger item" in rows["B1"]["explanation"]


def test_a_cheque_no_bill_names_is_not_settled(tmp_path):
    # cheque 100009: both bills have its amount, neither its number
    rows = _run(tmp_path, "B1,2026-10-01,-7300.00,HKD,CHQ 100009,,,001\n")
    assert all(r["status"] != "auto" for r in rows.values())


@pytest.mark.parametrize(("bank_text", "number"), [
    ("CHQ 100003", 100003),
    ("CHQ DEP 332898 INV-2026-32800", 332898),
    ("CHEQUE NO 000123", 123),  # six digits as printed, leading zeros and all
    ("CHQ 123", None),  # too short for a cheque number
    ("FPS CR 100003 KAM WING", None),  # not a cheque line
])
def test_bank_cheque_numbers(bank_text, number):
    bank = pl.DataFrame([{"id": "B1", "date": dt.date(2026, 10, 1), "amount_minor": -100, "currency": "HKD",
                          "description": bank_text}], schema=BANK_SCHEMA)
    assert prepare_bank(bank)["cheque_no"].to_list() == [number]


@pytest.mark.parametrize(("description", "number"), [
    ("Garment order; chq 100003", 100003),
    ("Paid by cheque no. 100003", 100003),
    ("Cheque #0100003", 100003),
    ("Check number: 4567", 4567),
    ("Cheque received", None),
    ("Order 100003", None),
])
def test_ledger_cheque_numbers(description, number):
    ledger = pl.DataFrame([{"id": "L1", "date": dt.date(2026, 10, 1), "amount_minor": -100, "currency": "HKD",
                            "description": description, "type": "bill"}], schema=LEDGER_SCHEMA)
    assert prepare_ledger(ledger, default_rules())["cheque_no"].to_list() == [number]
