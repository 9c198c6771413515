"""Processor payouts: report-based groups and groups inferred from consecutive settlement days."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from engine.candidates.caps import CapLog
from engine.candidates.groups import GROUP_SCHEMA, adjustment_total
from engine.candidates.payouts import (
    inferred_payout_groups,
    report_line_links,
    report_linked_ledger,
    report_payout_groups,
    report_settled_items,
)
from engine.pipeline import match_prepared
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


# --------------------------------------------------------------------------------------------
# order ids written differently on the two sides
# --------------------------------------------------------------------------------------------


def _one_order_payout(ledger_rows, line):
    """A payout of one charge line (gross 500.00, fee 15.00) against ``ledger_rows``: the ids of
    the ledger items the line links, and the group's adjustments."""
    pl_ = _ledger([{"date": D0 - timedelta(days=2), "type": "order", **r} for r in ledger_rows])
    lines = _lines([{"category": "charge", "gross": 50000, "fee": 1500, **line}])
    pb = _bank([{"id": "B1", "date": D0, "amount_minor": 48500, "description": "STRIPE PAYMENTS UK LTD"}])
    groups = report_payout_groups(pb, pl_, lines, RULES)
    assert groups.height == 1 and _balanced(groups, pb)
    linked = _ids(pl_, report_linked_ledger(pl_, lines).to_list())
    assert linked == _ids(pl_, groups["ledger_idx"][0].to_list())
    return linked, _adjustments(groups.row(0, named=True))


@pytest.mark.parametrize(
    "ledger_id, ledger_description, line",
    [
        ("#5022", "Web order #5022 (Stripe)", {"order_id": "5022"}),  # Shopify '#', metadata bare
        ("5022", "Web order (Stripe)", {"order_id": "#5022"}),
        ("0005022", "Web order (Stripe)", {"order_id": "5022"}),  # leading zeros
        ("SO-00114", "Web order (Stripe)", {"order_id": "so114"}),  # prefix, separator, zeros
        ("ORD 2026/00114", "Web order (Stripe)", {"order_id": "ORD-2026-00114"}),
        ("JT1001", "Web order (Stripe)", {"order_id": "jt-1001"}),
        ("SO-2026-00114", "Web order (Stripe)", {"order_id": "00114"}),  # the last number alone
        ("X-1", "Web order #5022 (Stripe)", {"order_id": "5022"}),  # the item's description only
        ("#5022", "Web order (Stripe)", {"description": "Payment for Order 5022"}),  # line's only
        ("#5022", "Web order (Stripe)", {"order_id": "", "description": "Order #5022"}),
    ],
)
def test_order_id_styles_link(ledger_id, ledger_description, line):
    rows = [
        {"id": ledger_id, "amount_minor": 50000, "description": ledger_description},
        {"id": "#9999", "amount_minor": 50000, "description": "Web order #9999 (Stripe)"},
    ]
    linked, adjustments = _one_order_payout(rows, {"description": "", **line})
    assert linked == [ledger_id]
    assert adjustments == {"processor_fee": -1500}


def test_bare_number_prefers_the_same_id_over_another_prefix():
    # '114' is written '#114' by this shop; JT114 is another store's order of the same amount
    rows = [
        {"id": "JT114", "amount_minor": 50000, "description": "Jade Tea order (Stripe)"},
        {"id": "#114", "amount_minor": 50000, "description": "Web order (Stripe)"},
    ]
    linked, _ = _one_order_payout(rows, {"order_id": "114"})
    assert linked == ["#114"]


def test_digits_only_ambiguity_is_resolved_by_amount():
    # '114' meets SO-00114 and JT114 by their digits only: the amount decides
    rows = [
        {"id": "SO-00114", "amount_minor": 30000, "description": "Web order (Stripe)"},
        {"id": "JT114", "amount_minor": 50000, "description": "Web order (Stripe)"},
    ]
    linked, _ = _one_order_payout(rows, {"order_id": "114"})
    assert linked == ["JT114"]


def test_digits_only_tie_is_not_broken_by_order():
    # the same amount and day too: nothing tells the two apart, so neither is linked and the
    # payout goes to review naming the line, rather than taking the first
    rows = [
        {"id": "SO-00114", "amount_minor": 50000, "description": "Web order (Stripe)"},
        {"id": "JT114", "amount_minor": 50000, "description": "Web order (Stripe)"},
    ]
    linked, adjustments = _one_order_payout(rows, {"order_id": "114", "description": "Order 114"})
    assert linked == []
    assert adjustments == {"processor_fee": -1500, "unlinked_report_lines": 50000}


def test_each_item_links_one_line_and_each_line_one_item():
    # two charges of order 5022 (a split payment) and one ledger order: one links, by amount
    pl_ = _ledger(
        [{"id": "#5022", "date": D0 - timedelta(days=2), "amount_minor": 30000, "type": "order",
          "description": "Web order #5022 (Stripe)"}]
    )
    lines = _lines(
        [
            {"category": "charge", "gross": 20000, "order_id": "5022"},
            {"category": "charge", "gross": 30000, "order_id": "5022"},
        ]
    )
    assert _ids(pl_, report_linked_ledger(pl_, lines).to_list()) == ["#5022"]
    pb = _bank([{"id": "B1", "date": D0, "amount_minor": 50000, "description": "STRIPE"}])
    g = report_payout_groups(pb, pl_, lines, RULES).row(0, named=True)
    assert g["ledger_total"] == 30000
    assert _adjustments(g) == {"unlinked_report_lines": 20000}


# --------------------------------------------------------------------------------------------
# inferred: day rolls, refunds, caps, weights from the rule set
# --------------------------------------------------------------------------------------------

SAT = date(2026, 10, 3)  # Saturday


def _stripe_day(day, amounts, start):
    return [
        {"id": f"#{start + i}", "date": day, "amount_minor": a, "type": "order",
         "description": f"Web order #{start + i} (Stripe)"}
        for i, a in enumerate(amounts)
    ]


def _net(gross, fee_per_mille=29, fixed=235, orders=1):
    return gross - (gross * fee_per_mille + 500) // 1000 - fixed * orders


def test_inferred_weekend_rolls_into_monday():
    # orders Fri..Tue; each business day's payout (Mon: Sat + Sun + Mon) two business days later
    fri, mon, tue = SAT - timedelta(days=1), SAT + timedelta(days=2), SAT + timedelta(days=3)
    days = [(fri, [41000, 23000]), (SAT, [35500, 12000]), (SAT + timedelta(days=1), [27000]),
            (mon, [50000, 8800]), (tue, [61000, 19900])]
    rows, n = [], 5000
    for day, amounts in days:
        rows += _stripe_day(day, amounts, n)
        n += len(amounts)
    pl_ = _ledger(rows)
    weekend_gross = 35500 + 12000 + 27000 + 50000 + 8800
    credit = weekend_gross - (weekend_gross * 29 + 500) // 1000 - 235 * 5
    pb = _bank([{"id": "B1", "date": mon + timedelta(days=2), "amount_minor": credit,
                 "description": "CR TRF STRIPE PAYMENTS UK LTD"}])
    groups = inferred_payout_groups(pb, pl_, RULES).sort("score", descending=True)
    best = groups.row(0, named=True)
    assert _ids(pl_, best["ledger_idx"]) == sorted(r["id"] for r in rows[2:7])
    assert "2026-10-03 to 2026-10-05 (a business day with the weekend before it)" in best["evidence"]
    assert _adjustments(best) == {"processor_fee": credit - weekend_gross}
    # 2.9% + HKD 2.35 x 5 orders of 1,333.00
    assert best["review_reason"].startswith("processor fee HKD 50.41 (3.78%)")
    assert _balanced(groups, pb)


def test_inferred_refunds_of_the_day_are_netted():
    day = D0 - timedelta(days=2)
    orders = _stripe_day(day, [40000, 60000, 25000], 7000)
    refund = {"id": "#6990-R1", "date": day, "amount_minor": -15000, "type": "credit_note",
              "description": "Refund #6990 (Stripe)"}
    pl_ = _ledger(orders + [refund])
    credit = (125000 - 15000) * 97 // 100  # 3% of the net
    pb = _bank([{"id": "B1", "date": D0, "amount_minor": credit, "description": "STRIPE 4411235"}])
    groups = inferred_payout_groups(pb, pl_, RULES)
    assert groups.height == 1
    g = groups.row(0, named=True)
    assert _ids(pl_, g["ledger_idx"]) == sorted(["#7000", "#7001", "#7002", "#6990-R1"])
    assert g["ledger_total"] == 110000
    assert _adjustments(g) == {"processor_fee": credit - 110000}
    assert "1 refunds netted" in g["evidence"]


def test_inferred_orders_of_one_store_are_one_store_whatever_their_numbers():
    # 'Web order #N (Stripe)': one store, so the day's 300 orders are one group, not 300 stores
    day = D0 - timedelta(days=3)
    orders = _stripe_day(day, [10000 + 37 * i for i in range(300)], 1)
    gross = sum(r["amount_minor"] for r in orders)
    pl_ = _ledger(orders)
    pb = _bank([{"id": "B1", "date": D0, "amount_minor": _net(gross, orders=300),
                 "description": "STRIPE PAYMENTS UK LTD"}])
    groups = inferred_payout_groups(pb, pl_, RULES)
    assert groups.height == 1
    assert groups["ledger_idx"][0].len() == 300
    assert "300 orders 'Web order (Stripe)' of 2026-09-28" in groups["evidence"][0]


def test_inferred_cap_bites_with_a_warning_and_the_run_completes():
    # every order its own "store" (the customer's name in the description): a credit examines
    # at most max_windows_per_credit windows, the busiest stores first, and says so
    day = D0 - timedelta(days=2)
    rows = [
        {"id": f"#{i}", "date": day, "amount_minor": 10000 + i, "type": "order",
         "description": f"Order for customer {chr(65 + i % 26)}{chr(65 + i // 26)} (Stripe)"}
        for i in range(60)
    ]
    rows += [{"id": f"#B{i}", "date": day, "amount_minor": 20000, "type": "order",
              "description": "Order for customer Busy (Stripe)"} for i in range(3)]
    pl_ = _ledger(rows)
    pb = _bank([{"id": "B1", "date": D0, "amount_minor": 58200, "description": "STRIPE PAYMENTS"}])
    rules = RULES.with_changes(payouts={"max_windows_per_credit": 200})  # 2 of 61 stores
    caps = CapLog()
    groups = inferred_payout_groups(pb, pl_, rules, caps=caps)
    assert [_ids(pl_, ix) for ix in groups["ledger_idx"]] == [["#B0", "#B1", "#B2"]]  # 3% fee
    (message,) = caps.messages()
    assert message.startswith("inferred payouts: cap payouts.max_windows_per_credit = 200 reached")
    assert "5,900 settlement windows not examined" in message  # 59 stores x 100 windows
    # a whole run with the cap completes, proposes the payout and warns
    outcome = match_prepared(pb, pl_, rules)
    assert outcome.proposals.filter(pl.col("match_type") == "payout").height == 1
    assert any("payouts.max_windows_per_credit" in w for w in outcome.warnings)


def test_payout_weights_come_from_the_rule_set():
    d1, d2 = D0 - timedelta(days=3), D0 - timedelta(days=2)
    pl_ = _ledger(_shop_orders([(d1, [40000, 60000]), (d2, [100000])]))
    pb = _bank([{"id": "B1", "date": D0, "amount_minor": 194000,
                 "description": "CR TRF SHOPIFY PAYOUT SUMMIT FLORIST"}])
    base = inferred_payout_groups(pb, pl_, RULES)["score"].max()
    heavier = RULES.with_changes(weights={"payouts": {"store_word": 3.0}})
    assert inferred_payout_groups(pb, pl_, heavier)["score"].max() == pytest.approx(base + 2.0)
    report_pb = _bank([{"id": "B1", "date": D0, "amount_minor": 121900,
                        "description": f"CR TRF STRIPE PAYOUT {PAYOUT_ID}"}])
    lines = _lines([dict(r) for r in REPORT])
    quoted = report_payout_groups(report_pb, _ledger(ORDERS), lines, RULES)["score"][0]
    lighter = RULES.with_changes(weights={"payouts": {"payout_id": 12.0}})
    assert report_payout_groups(report_pb, _ledger(ORDERS), lines, lighter)["score"][0] == pytest.approx(
        quoted - 3.0
    )


def test_orders_the_report_settles_are_no_bank_lines_pairs():
    # the report settles SO-2026-00114 (900.00) and SO-2026-00115 (500.00); an unrelated bank
    # credit of exactly 900.00 from someone else must not take the order, whether or not the
    # payout's own credit is on this statement
    stranger = {"id": "B9", "date": D0, "amount_minor": 90000, "description": "FPS CR LEE SIU FUNG"}
    credit = {"id": "B1", "date": D0, "amount_minor": 121900, "description": f"CR TRF STRIPE PAYOUT {PAYOUT_ID}"}
    pl_ = _ledger(ORDERS)
    lines = _lines([dict(r) for r in REPORT])
    settled = report_settled_items(report_line_links(pl_, lines))
    assert _ids(pl_, settled.to_list()) == ["CN-2026-00001", "SO-2026-00114", "SO-2026-00115"]
    for bank_rows in ([stranger], [stranger, credit]):
        pb = _bank(bank_rows)
        outcome = match_prepared(pb, pl_, RULES, payout_lines=lines)
        used = outcome.proposals.filter(pl.col("bank_ids") == "B9")["ledger_ids"].to_list()
        assert all("SO-2026-00114" not in ids and "SO-2026-00115" not in ids for ids in used), used
    payout = outcome.proposals.filter(pl.col("bank_ids") == "B1").row(0, named=True)
    assert payout["match_type"] == "payout"
    assert payout["ledger_ids"] == "CN-2026-00001;SO-2026-00114;SO-2026-00115"


def test_a_bare_number_link_settles_nothing():
    # the report's order 114 meets ledger SO-2026-00114 only by its digits: a link for the
    # payout, but not proof enough to keep the item from a bank line's pair
    pl_ = _ledger(ORDERS[:1])
    lines = _lines([{"category": "charge", "gross": 90000, "fee": 2900, "order_id": "114",
                     "description": "Web shop checkout"}])
    links = report_line_links(pl_, lines)
    assert links.height == 1
    assert report_settled_items(links).len() == 0
