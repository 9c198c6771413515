"""Compound candidate groups: one bank line for several items, several lines for one item."""

from datetime import date, timedelta

import polars as pl
import pytest

from engine.candidates.compound import compound_groups
from engine.candidates.groups import GROUP_SCHEMA, adjustment_total
from engine.prepare.features import prepare_bank, prepare_ledger
from models.schema import BANK_SCHEMA, LEDGER_SCHEMA
from rules import default_rules

RULES = default_rules()
DAY = date(2026, 10, 15)


def _frame(schema, rows):
    base = {c: "" for c in schema if schema[c] == pl.Utf8}
    data = [{**base, "attributes": "{}", "source_file": "t.csv", "source_line": i + 2, **r} for i, r in enumerate(rows)]
    return pl.DataFrame(data, schema=schema)


def _bank(*rows):
    return _frame(BANK_SCHEMA, [
        {"id": f"B{i + 1}", "date": DAY, "currency": "HKD", **r} for i, r in enumerate(rows)
    ])


def _ledger(*rows):
    return _frame(LEDGER_SCHEMA, [{"currency": "HKD", "due_date": None, **r} for r in rows])


def _invoice(serial, amount, days_before, name="Kam Wing Trading Company Limited"):
    ref = f"INV-2026-{serial:05d}"
    return {"id": ref, "reference": ref, "date": DAY - timedelta(days=days_before), "amount_minor": amount,
            "counterparty": name, "type": "invoice", "description": "Catering service"}


def _groups(bank, ledger):
    pb, pl_ = prepare_bank(bank), prepare_ledger(ledger, RULES)
    groups = compound_groups(pb, pl_, RULES)
    assert groups.schema == pl.Schema(GROUP_SCHEMA)
    # the invariant: bank total == ledger total + adjustments, exactly
    bank_totals = groups.select(
        pl.col("bank_idx").list.eval(pl.element().cast(pl.Int64)).alias("b")
    )["b"].to_list()
    amounts = pb["amount_minor"].to_list()
    for row, idx in zip(groups.iter_rows(named=True), bank_totals, strict=True):
        adj = sum(a["amount_minor"] for a in row["adjustments"])
        assert sum(amounts[i] for i in idx) == row["ledger_total"] + adj
    return groups.with_columns(
        bank_ids=pl.col("bank_idx").list.eval(pl.element().replace_strict(
            pb["bank_idx"], pb["id"], return_dtype=pl.Utf8)).list.sort(),
        ledger_ids=pl.col("ledger_idx").list.eval(pl.element().replace_strict(
            pl_["ledger_idx"], pl_["id"], return_dtype=pl.Utf8)).list.sort(),
        adjustment=adjustment_total(pl.col("adjustments")),
    )


def _ids(groups, kind="one_to_many"):
    return {(tuple(r["bank_ids"]), tuple(r["ledger_ids"])) for r in groups.filter(kind=kind).iter_rows(named=True)}


@pytest.mark.parametrize("text", [
    "FPS CR KAM WING TRADING LTD INV 00163/00275/00301",
    "CR TRF KAM WING TRADING CO LTD INV-2026-00163 INV-2026-00275 INV-2026-00301",
    "FPS CR INV-2026-00163 00275 00301 KAM WING TRADING LTD",
])
def test_listed_invoices_make_one_confident_group(text):
    ledger = _ledger(_invoice(163, 120000, 30), _invoice(275, 345050, 20), _invoice(301, 99900, 5),
                     _invoice(302, 99900, 4))
    groups = _groups(_bank({"amount_minor": 564950, "description": text}), ledger)
    best = groups.row(0, named=True)
    assert (tuple(best["bank_ids"]), tuple(best["ledger_ids"])) == (
        ("B1",), ("INV-2026-00163", "INV-2026-00275", "INV-2026-00301"))
    assert best["kind"] == "one_to_many" and best["ledger_total"] == 564950 and best["adjustments"] == []
    assert best["score"] >= 5.0
    assert "equals the payment exactly" in best["evidence"]


def test_listed_invoices_short_paid_within_tolerance_balance_with_one_adjustment():
    ledger = _ledger(_invoice(163, 120000, 30), _invoice(275, 345050, 20))
    groups = _groups(_bank({"amount_minor": 460050, "description": "TT IN KAM WING TRADING LTD INV 00163/00275"}), ledger)
    row = groups.row(0, named=True)
    assert row["ledger_total"] == 465050 and row["adjustment"] == -5000
    assert row["adjustments"][0]["cause"] == "bank_charge"


def test_reference_less_payment_finds_the_one_combination_of_the_payers_items():
    items = [_invoice(100 + i, amount, 3 + 4 * i) for i, amount in
             enumerate([150011, 220037, 98765, 412399, 77123, 300055])]
    other = _invoice(900, 150011 + 98765, 10, name="Lucky Star Bakery Limited")  # another payer
    groups = _groups(_bank({"amount_minor": 150011 + 98765 + 77123,
                            "description": "AUTOPAY CR KAM WING TRADING CO LTD"}), _ledger(*items, other))
    assert _ids(groups) == {(("B1",), ("INV-2026-00100", "INV-2026-00102", "INV-2026-00104"))}
    row = groups.row(0, named=True)
    assert "the only combination" in row["evidence"] and row["score"] >= 5.0


def test_two_combinations_with_the_same_total_are_both_proposed():
    items = [_invoice(100, 100000, 10), _invoice(101, 250000, 12), _invoice(102, 150000, 14),
             _invoice(103, 200000, 16)]
    groups = _groups(_bank({"amount_minor": 350000, "description": "FPS CR KAM WING TRADING LTD"}), _ledger(*items))
    assert _ids(groups) == {
        (("B1",), ("INV-2026-00100", "INV-2026-00101")),
        (("B1",), ("INV-2026-00102", "INV-2026-00103")),
    }
    assert groups["score"].n_unique() == 1  # neither is preferred


def test_payroll_batch_reference_gathers_the_batch():
    wages = [{"id": f"PRL-2026-{i:05d}", "reference": f"P{i:05d}", "date": DAY, "amount_minor": -(650000 + i * 1001),
              "counterparty": f"Employee {i}", "type": "payroll", "description": "Wages Oct 2026 - batch PB2610-003"}
             for i in range(1, 8)]
    noise = {**wages[0], "id": "PRL-2026-00099", "description": "Wages Oct 2026 - batch PB2610-004"}
    total = sum(w["amount_minor"] for w in wages)
    groups = _groups(_bank({"amount_minor": total, "date": DAY + timedelta(days=1),
                            "description": "AUTOPAY DR PAYROLL BATCH PB2610003"}), _ledger(*wages, noise))
    best = groups.row(0, named=True)
    assert best["ledger_ids"] == [w["id"] for w in wages] and best["score"] >= 10
    assert "PB2610003" in best["evidence"]


def test_payroll_run_without_batch_reference_is_the_days_block():
    wages = [{"id": f"PRL-2026-{i:05d}", "reference": f"P{i:05d}", "date": DAY, "amount_minor": -(550000 + i * 733),
              "counterparty": f"Employee {i}", "type": "payroll", "description": "Wages Oct 2026"}
             for i in range(1, 7)]
    other_day = [{**w, "id": w["id"] + "X", "date": DAY - timedelta(days=7)} for w in wages]
    total = sum(w["amount_minor"] for w in wages)
    groups = _groups(_bank({"amount_minor": total, "date": DAY + timedelta(days=1),
                            "description": "AUTOPAY DR PAYROLL BATCH PB2610007"}), _ledger(*wages, *other_day))
    assert _ids(groups) == {(("B1",), tuple(w["id"] for w in wages))}
    assert 0 < groups.row(0, named=True)["score"] < 10  # weaker than a quoted batch


def test_instalments_paid_in_full():
    ledger = _ledger(_invoice(3991, 5000000, 40))
    bank = _bank(
        {"amount_minor": 2000000, "date": DAY - timedelta(days=20), "description": "FPS CR DEPOSIT INV-2026-03991 KAM WING TRADING LTD"},
        {"amount_minor": 1800000, "date": DAY - timedelta(days=10), "description": "CR TRF INV202603991 KAM WING TRADING"},
        {"amount_minor": 1200000, "description": "CHQ DEP 123456 INSTALMENT 03991 KAM WING TRADING LTD"},
    )
    groups = _groups(bank, ledger)
    full = groups.filter(kind="many_to_one").row(0, named=True)
    assert full["bank_ids"] == ["B1", "B2", "B3"] and full["ledger_total"] == 5000000
    assert full["open_minor"] is None and full["score"] >= 5.0


def test_instalments_partly_paid_leave_the_rest_open():
    ledger = _ledger(_invoice(3087, 5000000, 40))
    bank = _bank(
        {"amount_minor": 2000000, "date": DAY - timedelta(days=9), "description": "TT IN PART PYT 03087 KAM WING TRADING LTD"},
        {"amount_minor": 1500000, "description": "FPS CR inv 2026 03087 KAM WING TRADING LTD"},
    )
    groups = _groups(bank, ledger).filter(kind="many_to_one")
    assert groups.height == 1
    row = groups.row(0, named=True)
    assert row["bank_ids"] == ["B1", "B2"] and row["ledger_total"] == 3500000
    assert row["open_minor"] == 1500000 and row["adjustments"] == []
    assert "still open" in row["evidence"]


def test_one_partial_payment_alone_is_no_group_and_payments_never_exceed_the_invoice():
    ledger = _ledger(_invoice(3087, 5000000, 40))
    bank = _bank(
        {"amount_minor": 3000000, "description": "TT IN PART PYT 03087 KAM WING TRADING LTD"},
        {"amount_minor": 2500000, "description": "FPS CR INV-2026-03087 KAM WING TRADING LTD"},
    )
    assert _groups(bank, ledger).height == 0
    assert _groups(bank.head(1), ledger).height == 0


@pytest.mark.parametrize("bank_row", [
    # totals differ (no subset fits exactly, no listed reference)
    {"amount_minor": 150011 + 98765 + 1, "description": "AUTOPAY CR KAM WING TRADING CO LTD"},
    # the right total, but another payer
    {"amount_minor": 150011 + 98765, "description": "AUTOPAY CR LUCKY STAR BAKERY LTD"},
    # the right total, but money out
    {"amount_minor": -(150011 + 98765), "description": "AUTOPAY DR KAM WING TRADING CO LTD"},
])
def test_no_group_without_an_exact_total_from_the_same_payer(bank_row):
    items = [_invoice(100, 150011, 5), _invoice(101, 98765, 8), _invoice(102, 412399, 20)]
    assert _groups(_bank(bank_row), _ledger(*items)).height == 0


def test_no_group_across_currencies():
    items = [_invoice(100, 150011, 5), {**_invoice(101, 98765, 8), "currency": "USD"}]
    bank = _bank({"amount_minor": 150011 + 98765, "description": "FPS CR KAM WING TRADING LTD INV 00100/00101"})
    assert _groups(bank, _ledger(*items)).height == 0


def _bill(ref, amount, days_before, name="Po Tung Mei Jewellery Company Limited", bill_id=None):
    return {"id": bill_id or f"BILL-{ref}", "reference": ref, "date": DAY - timedelta(days=days_before),
            "amount_minor": amount, "counterparty": name, "type": "bill", "description": "Goods supplied"}


def test_listed_serials_that_look_like_years_are_numbers_not_year_prefixes():
    # 2094 and 1973 follow another number; only a year near the bank date prefixes a reference
    ledger = _ledger(_bill("2526-2094", -363200, 40), _bill("2544-2813", -2986603, 39),
                     _bill("2581-1973", -1545800, 30), _bill("2569-5858", -1207594, 20))
    bank = _bank({"amount_minor": -363200 - 2986603, "description": "AUTOPAY DR PO TUNG MEI JEWELLERY LTD 2526-2094 2544-2813"},
                 {"amount_minor": -1545800 - 1207594, "description": "TT OUT PO TUNG MEI JEWELLERY CO LTD 2581-1973 2569-5858"})
    groups = _groups(bank, ledger)
    assert _ids(groups) >= {(("B1",), ("BILL-2526-2094", "BILL-2544-2813")),
                            (("B2",), ("BILL-2569-5858", "BILL-2581-1973"))}


def test_listed_numbers_shared_by_many_documents_of_other_types_still_find_the_invoices():
    # short serials collide with web orders of other payers (another script: no name check)
    orders = [{"id": f"#{p}{s}", "reference": f"#{p}{s}", "date": DAY - timedelta(days=3), "amount_minor": 20000 + i,
               "counterparty": "Luk Kin Ling", "type": "order", "description": "Online order"}
              for i, (p, s) in enumerate((p, s) for p in ("BK", "PH", "GB", "PK", "RS", "HB", "SA", "EC", "PO", "LS", "KK")
                                          for s in (1164, 3358))]
    ledger = _ledger(_invoice(1164, 298400, 60, name="Wing Wah Engineering Ltd."),
                     _invoice(3358, 53000, 50, name="Wing Wah Engineering Ltd."), *orders)
    groups = _groups(_bank({"amount_minor": 351400, "description": "CR TRF 榮華工程有限公司 INV 01164/03358",
                            "counterparty": "榮華工程有限公司"}), ledger)
    best = groups.row(0, named=True)
    assert best["ledger_ids"] == ["INV-2026-01164", "INV-2026-03358"] and best["score"] >= 5.0


def test_an_equal_payer_name_excludes_names_only_as_similar():
    items = [_invoice(100, 100011, 5, name="Siu Man Kwan"), _invoice(101, 200037, 8, name="Siu Man Kwan"),
             _invoice(102, 150013, 6, name="Siu Man Siu"), _invoice(103, 150041, 9, name="Siu Man Siu")]
    bank = _bank({"amount_minor": 150013 + 150041, "description": "CHQ DEP SIU MAN KWAN"},
                 {"amount_minor": 100011 + 200037 + 1, "description": "CHQ DEP SIU MAN KWAN"})
    assert _groups(bank, _ledger(*items)).height == 0


def test_a_cheque_number_equal_to_another_payers_invoice_number_does_not_stop_the_search():
    items = [_invoice(11439, 261200, 30, name="Hing Lik Mei Holdings Ltd"),
             _invoice(19190, 300037, 25, name="Hing Lik Mei Holdings Ltd"),
             _invoice(29234, 296011, 20, name="Hing Lik Mei Holdings Ltd"),
             _invoice(12204, 857248, 10, name="Lucky Star Bakery Limited")]
    bank = _bank({"amount_minor": 261200 + 300037 + 296011, "description": "CHQ DEP 012204 HING LIK MEI HOLDINGS LTD"})
    assert _ids(_groups(bank, _ledger(*items))) == {
        (("B1",), ("INV-2026-11439", "INV-2026-19190", "INV-2026-29234"))}


def test_an_item_another_line_of_the_payer_pays_exactly_is_left_out_of_combinations():
    items = [_invoice(100, 120011, 5), _invoice(101, 230037, 8), _invoice(102, 110023, 12)]
    bank = _bank({"amount_minor": 120011, "description": "FPS CR KAM WING TRADING LTD"},
                 {"amount_minor": 230037 + 120011, "description": "FPS CR KAM WING TRADING LTD"},
                 {"amount_minor": 230037 + 110023, "description": "FPS CR KAM WING TRADING LTD"})
    # 120011 is B1's: B2's only combination would need it; B3's does not
    assert _ids(_groups(bank, _ledger(*items))) == {(("B3",), ("INV-2026-00101", "INV-2026-00102"))}


def test_references_quoted_in_full_resolve_numbers_other_bills_of_the_payer_share():
    # at scale a four-digit serial repeats: 1625 is both 2534-1625 and 2580-1625 of this payer
    ledger = _ledger(_bill("2534-1625", -502876, 40, name="建安紙業有限公司"), _bill("2533-0116", -140000, 35, name="建安紙業有限公司"),
                     _bill("2580-1625", -77700, 10, name="建安紙業有限公司"), _bill("2590-0116", -88800, 8, name="建安紙業有限公司"))
    bank = _bank({"amount_minor": -502876 - 140000, "description": "IBT DR 建安紙業有限公司 2533-0116 2534-1625",
                  "counterparty": "建安紙業有限公司"})
    groups = _groups(bank, ledger)
    best = groups.row(0, named=True)
    assert best["ledger_ids"] == ["BILL-2533-0116", "BILL-2534-1625"] and best["score"] >= 5.0
    assert "references the bank text quotes in full" in best["evidence"]


def test_payroll_day_block_paying_several_people_takes_no_name_penalty():
    people = ["Lai Siu Hin", "Tam Ming-pui", "Chan Yin Fuk", "Cheung Shing-kin", "Ko Yan Yee", "Chu Ting Hang"]
    wages = [{"id": f"PRL-2026-{i:05d}", "reference": f"P{i:05d}", "date": DAY, "amount_minor": -(650000 + i * 917),
              "counterparty": name, "type": "payroll", "description": "Wages Oct 2026"}
             for i, name in enumerate(people, start=1)]
    total = sum(w["amount_minor"] for w in wages)
    groups = _groups(_bank({"amount_minor": total, "description": "AUTOPAY DR PAYROLL BATCH PB2610-011"}),
                     _ledger(*wages))
    best = groups.row(0, named=True)
    assert best["ledger_ids"] == [w["id"] for w in wages]
    assert best["score"] >= 5.5 and "unrelated name" not in best["evidence"]


def test_instalments_quoting_the_invoice_in_full_reach_auto_with_a_name_in_another_script():
    ledger = _ledger(_invoice(5640, 2309300, 10, name="Chan Chi Shuk"))
    bank = _bank(
        {"amount_minor": 1309300, "date": DAY - timedelta(days=4), "description": "CR TRF PART PYT INV-2026-05640 陳志淑"},
        {"amount_minor": 1000000, "description": "FPS CR 05640 陳志淑"},
    )
    best = _groups(bank, ledger).filter(kind="many_to_one").row(0, named=True)
    assert best["bank_ids"] == ["B1", "B2"] and best["open_minor"] is None
    assert best["score"] >= 5.5 and "another script" in best["evidence"]
