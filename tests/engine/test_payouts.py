"""Processor payouts: report-based groups and groups inferred from consecutive settlement days."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from engine.candidates.groups import GROUP_SCHEMA, adjustment_total
from engine.candidates.payouts import (
    inferred_payout_groups,
    report_linked_ledger,
    report_payout_groups,
)
from engine.prepare.features import prepare_bank, prepare_ledger
from models.schema import BANK_SCHEMA, LEDGER_SCHEMA, PAYOUT_LINE_SCHEMA
from rules import default_rules

RULES = default_rules()
D0 = date(2026, 10, 1)
PAYOUT_ID = "po_1BxG8U3vvdSAfxJHpXTMFRSk"


def _frame(schema, rows):
    base = {c: "" for c in schema if schema[c] == pl.Utf8}
    data = [
        {**base, "attributes": "{}", "source_file": "t.csv", "source_line": i + 2, **r}
        for i, r in enumerate(rows)
    ]
    return pl.DataFrame(data, schema=schema)


def _bank(rows):
    rows = [{"currency": "HKD", "account": "001", **r} for r in rows]
    return prepare_bank(_frame(BANK_SCHEMA, rows).sort("id"))


def _ledger(rows):
    rows = [{"currency": "HKD", "account": "1100", **r} for r in rows]
    return prepare_ledger(_frame(LEDGER_SCHEMA, rows).sort("id"), RULES)


def _lines(rows, payout_id=PAYOUT_ID, payout_day=D0):
    attrs = f'{{"automatic_payout_effective_at":"{payout_day} 00:00:00"}}'
    out = []
    for i, r in enumerate(rows):
        gross, fee = r.pop("gross"), r.pop("fee", 0)
        out.append(
            {
                "processor": "stripe",
                "payout_id": payout_id,
                "line_id": f"txn_{payout_id}_{i}",
                "currency": "HKD",
                "gross_minor": gross,
                "fee_minor": fee,
                "net_minor": gross - fee,
                "available_on": payout_day,
                "created": payout_day - timedelta(days=2),
                "source_id": "",
                "order_id": None,
                "attributes": attrs,
                **r,
            }
        )
    return _frame(PAYOUT_LINE_SCHEMA, out)


def _ids(frame: pl.DataFrame, idx: list[int]) -> list[str]:
    return sorted(frame["id"].gather(idx).to_list())


def _adjustments(group_row: dict) -> dict[str, int]:
    return {a["cause"]: a["amount_minor"] for a in group_row["adjustments"]}


def _balanced(groups: pl.DataFrame, pb: pl.DataFrame) -> bool:
    bank_total = (
        groups["bank_idx"]
        .list.eval(pl.element())
        .map_elements(
            lambda ix: int(pb["amount_minor"].gather(ix.to_list()).sum()), return_dtype=pl.Int64
        )
    )
    adj = groups.select(adjustment_total(pl.col("adjustments")))["adjustments"]
    return (bank_total == groups["ledger_total"] + adj).all()


# a Stripe payout: two orders (one by metadata, one by description), a refund of a third
# order's part, a fee row; net 900.00 - 29.00 + 500.00 - 17.00 - 120.00 - 15.00 = 1219.00
ORDERS = [
    {
        "id": "SO-2026-00114",
        "date": D0 - timedelta(days=2),
        "amount_minor": 90000,
        "type": "order",
        "description": "Web shop order - card (Stripe)",
    },
    {
        "id": "SO-2026-00115",
        "date": D0 - timedelta(days=2),
        "amount_minor": 50000,
        "type": "order",
        "description": "Web shop order - card (Stripe)",
    },
    {
        "id": "SO-2026-00090",
        "date": D0 - timedelta(days=9),
        "amount_minor": 40000,
        "type": "order",
        "description": "Web shop order - card (Stripe)",
    },
    {
        "id": "CN-2026-00001",
        "date": D0 - timedelta(days=1),
        "amount_minor": -12000,
        "type": "credit_note",
        "reference": "SO-2026-00090",
        "description": "Card refund (Stripe)",
    },
    {
        "id": "INV-2026-00001",
        "date": D0 - timedelta(days=5),
        "amount_minor": 121900,
        "type": "invoice",
        "description": "Consulting",
    },
]
REPORT = [
    {
        "category": "charge",
        "gross": 90000,
        "fee": 2900,
        "order_id": "SO-2026-00114",
        "description": "Web shop checkout",
    },
    {"category": "charge", "gross": 50000, "fee": 1700, "description": "Order SO-2026-00115"},
    {"category": "refund", "gross": -12000, "description": "Refund for order SO-2026-00090"},
    {"category": "fee", "gross": -1500, "description": "Radar for Fraud Teams"},
]


def test_report_payout_with_orders_refund_and_fee_row():
    pb = _bank(
        [
            {
                "id": "B1",
                "date": D0,
                "amount_minor": 121900,
                "description": f"CR TRF STRIPE PAYOUT {PAYOUT_ID}",
            }
        ]
    )
    pl_ = _ledger(ORDERS)
    groups = report_payout_groups(pb, pl_, _lines([dict(r) for r in REPORT]), RULES)
    assert groups.schema == pl.Schema(GROUP_SCHEMA)
    assert groups.height == 1
    g = groups.row(0, named=True)
    assert g["kind"] == "payout"
    assert _ids(pb, g["bank_idx"]) == ["B1"]
    assert _ids(pl_, g["ledger_idx"]) == ["CN-2026-00001", "SO-2026-00114", "SO-2026-00115"]
    assert g["ledger_total"] == 90000 + 50000 - 12000
    assert _adjustments(g) == {"processor_fee": -(2900 + 1700 + 1500)}
    assert g["review_reason"] is None
    assert g["score"] >= 5  # auto-accept territory at the default thresholds
    assert _balanced(groups, pb)


def test_payout_id_shown_beats_amount_only():
    # B1 quotes the id (in any case); B2 has the same net amount but no id
    pb = _bank(
        [
            {
                "id": "B1",
                "date": D0,
                "amount_minor": 121900,
                "description": f"CR TRF STRIPE PAYOUT {PAYOUT_ID.upper()}",
            },
            {
                "id": "B2",
                "date": D0,
                "amount_minor": 121900,
                "description": "CR TRF STRIPE PAYMENTS UK LTD",
            },
        ]
    )
    groups = report_payout_groups(pb, _ledger(ORDERS), _lines([dict(r) for r in REPORT]), RULES)
    assert [_ids(pb, ix) for ix in groups["bank_idx"]] == [["B1"]]  # id quoted: amount not needed


@pytest.mark.parametrize(
    "bank_day, description, expected",
    [
        (
            D0 + timedelta(days=1),
            "CR TRF STRIPE PAYMENTS UK LTD",
            True,
        ),  # a day later, processor named
        (D0 + timedelta(days=3), "CR TRF", True),  # amount alone within the window
        (D0 + timedelta(days=8), "CR TRF STRIPE PAYMENTS UK LTD", False),  # past report_window_days
        (D0 - timedelta(days=1), "CR TRF STRIPE PAYMENTS UK LTD", False),  # before the payout date
    ],
)
def test_amount_only_link(bank_day, description, expected):
    pb = _bank([{"id": "B1", "date": bank_day, "amount_minor": 121900, "description": description}])
    groups = report_payout_groups(pb, _ledger(ORDERS), _lines([dict(r) for r in REPORT]), RULES)
    assert (groups.height == 1) == expected
    if expected:
        g = groups.row(0, named=True)
        assert _adjustments(g) == {"processor_fee": -6100}
        assert "net equals the bank amount" in g["evidence"]


def test_amount_only_scores_below_payout_id_and_drops_when_shared():
    pb = _bank(
        [
            {
                "id": "B1",
                "date": D0,
                "amount_minor": 121900,
                "description": f"CR TRF STRIPE PAYOUT {PAYOUT_ID}",
            },
            {
                "id": "B2",
                "date": D0,
                "amount_minor": 121900,
                "description": "CR TRF STRIPE PAYMENTS UK LTD",
            },
            {
                "id": "B3",
                "date": D0,
                "amount_minor": 121900,
                "description": "CR TRF STRIPE PAYMENTS UK LTD",
            },
        ]
    )
    other = _lines([dict(r) for r in REPORT], payout_id="po_1OtherPayoutXXXXXXXXXXX")
    lines = pl.concat([_lines([dict(r) for r in REPORT]), other])
    groups = report_payout_groups(pb, _ledger(ORDERS), lines, RULES)
    by_bank = {
        (_ids(pb, b)[0]): s for b, s in zip(groups["bank_idx"], groups["score"], strict=True)
    }
    assert set(by_bank) == {"B1", "B2", "B3"}  # the other payout pairs with B2 or B3
    assert by_bank["B1"] > by_bank["B2"] + 5
    assert by_bank["B2"] == by_bank["B3"]


def test_unlinked_report_line_goes_to_review():
    report = [dict(r) for r in REPORT] + [
        {"category": "charge", "gross": 30000, "fee": 1000, "description": "Order SO-2026-09999"},
    ]
    pb = _bank(
        [
            {
                "id": "B1",
                "date": D0,
                "amount_minor": 121900 + 29000,
                "description": f"CR TRF STRIPE PAYOUT {PAYOUT_ID}",
            }
        ]
    )
    groups = report_payout_groups(pb, _ledger(ORDERS), _lines(report), RULES)
    assert groups.height == 1
    g = groups.row(0, named=True)
    assert _adjustments(g) == {"processor_fee": -7100, "unlinked_report_lines": 30000}
    assert g["review_reason"].startswith("1 report line has no ledger item: Order SO-2026-09999")
    assert _balanced(groups, pb)


def test_net_differs_from_bank_amount_goes_to_review():
    pb = _bank(
        [
            {
                "id": "B1",
                "date": D0,
                "amount_minor": 121000,
                "description": f"CR TRF STRIPE PAYOUT {PAYOUT_ID}",
            }
        ]
    )
    groups = report_payout_groups(pb, _ledger(ORDERS), _lines([dict(r) for r in REPORT]), RULES)
    g = groups.row(0, named=True)
    assert _adjustments(g) == {"processor_fee": -6100, "report_difference": -900}
    assert "is not the bank amount" in g["review_reason"]
    assert _balanced(groups, pb)


def test_report_linked_ledger_lists_explained_items():
    pl_ = _ledger(ORDERS)
    linked = report_linked_ledger(pl_, _lines([dict(r) for r in REPORT]))
    assert _ids(pl_, linked.to_list()) == ["CN-2026-00001", "SO-2026-00114", "SO-2026-00115"]


# --------------------------------------------------------------------------------------------
# inferred
# --------------------------------------------------------------------------------------------

SHOP = "Summit Florist online order (Shopify Payments)"
OTHER_SHOP = "Harbour Books online order (Shopify Payments)"


def _shop_orders(days_amounts, description=SHOP, prefix="#SF"):
    rows, n = [], 0
    for day, amounts in days_amounts:
        for amount in amounts:
            n += 1
            rows.append(
                {
                    "id": f"{prefix}{n:04d}",
                    "date": day,
                    "amount_minor": amount,
                    "type": "order",
                    "description": description,
                }
            )
    return rows


def test_inferred_payout_over_two_days_with_three_percent_fee():
    d1, d2 = D0 - timedelta(days=3), D0 - timedelta(days=2)
    orders = _shop_orders([(d1, [40000, 60000]), (d2, [100000])])  # gross 2000.00
    others = _shop_orders([(d1, [70000]), (d2, [130000])], description=OTHER_SHOP, prefix="#HB")
    pl_ = _ledger(orders + others)
    pb = _bank(
        [
            {
                "id": "B1",
                "date": D0,
                "amount_minor": 194000,  # 3% fee
                "description": "CR TRF SHOPIFY PAYOUT SUMMIT FLORIST",
            }
        ]
    )
    groups = inferred_payout_groups(pb, pl_, RULES)
    assert groups.schema == pl.Schema(GROUP_SCHEMA)
    wanted = [r["id"] for r in orders]
    matches = [g for g in groups.iter_rows(named=True) if _ids(pl_, g["ledger_idx"]) == wanted]
    assert len(matches) == 1
    g = matches[0]
    assert g["ledger_total"] == 200000
    assert _adjustments(g) == {"processor_fee": -6000}
    assert (
        g["review_reason"] == "processor fee HKD 60.00 (3.00%) inferred without a processor report"
    )
    # the store named in the bank text rules out Harbour Books
    assert all(not set(_ids(pl_, ix)) & {r["id"] for r in others} for ix in groups["ledger_idx"])
    assert _balanced(groups, pb)


def test_inferred_fee_above_five_percent_gives_no_group():
    orders = _shop_orders([(D0 - timedelta(days=3), [40000, 60000])])  # gross 1000.00
    pl_ = _ledger(orders)
    pb = _bank(
        [
            {
                "id": "B1",
                "date": D0,
                "amount_minor": 94900,  # 5.1% fee
                "description": "CR TRF SHOPIFY PAYOUT SUMMIT FLORIST",
            }
        ]
    )
    assert inferred_payout_groups(pb, pl_, RULES).height == 0
    pb = _bank(
        [
            {
                "id": "B1",
                "date": D0,
                "amount_minor": 95000,  # exactly 5%: inside the band
                "description": "CR TRF SHOPIFY PAYOUT SUMMIT FLORIST",
            }
        ]
    )
    assert inferred_payout_groups(pb, pl_, RULES).height == 1


def test_inferred_zero_fee_needs_no_review_and_excluded_items_stay_out():
    orders = _shop_orders([(D0 - timedelta(days=2), [40000, 60000])])
    pl_ = _ledger(orders)
    pb = _bank(
        [{"id": "B1", "date": D0, "amount_minor": 100000, "description": "CR TRF SHOPIFY PAYOUT"}]
    )
    groups = inferred_payout_groups(pb, pl_, RULES)
    assert groups.height == 1
    g = groups.row(0, named=True)
    assert g["adjustments"] == [] and g["review_reason"] is None
    assert (
        inferred_payout_groups(pb, pl_, RULES, exclude_ledger=pl.Series([orders[0]["id"]])).height
        == 0
    )


def test_inferred_ignores_orders_of_another_processor_and_late_orders():
    # PayPal orders do not explain a Shopify credit; orders on the bank date are not paid yet
    paypal = _shop_orders(
        [(D0 - timedelta(days=2), [100000])], description="Summit Florist online order (PayPal)"
    )
    same_day = _shop_orders([(D0, [100000])], prefix="#LATE")
    pl_ = _ledger(paypal + same_day)
    pb = _bank(
        [
            {
                "id": "B1",
                "date": D0,
                "amount_minor": 97000,
                "description": "CR TRF SHOPIFY PAYOUT SUMMIT FLORIST",
            }
        ]
    )
    assert inferred_payout_groups(pb, pl_, RULES).height == 0
