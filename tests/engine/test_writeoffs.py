"""An automatic match may write a difference off only when nothing else explains it."""

from __future__ import annotations

from tests.engine.csv_month import proposals_by_bank

INVOICE = "INV-2026-01069,2026-09-20,10000.00,HKD,Design fee,Kam Wing Trading Ltd,,1100,invoice,\n"


def _run(tmp_path, bank_rows: str, ledger_rows: str = INVOICE):
    return proposals_by_bank(tmp_path, bank_rows, ledger_rows)


def test_a_discount_is_booked_automatically_when_nothing_else_explains_it(tmp_path):
    rows = _run(tmp_path, "B1,2026-10-02,9800.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n")
    assert rows["B1"]["ledger_ids"] == "INV-2026-01069"
    assert rows["B1"]["adjustments"].startswith("short_payment -200.00")
    assert rows["B1"]["status"] == "auto"


def test_no_automatic_discount_when_the_payers_next_credit_is_the_difference(tmp_path):
    # 9,800.00 looks like a 2% discount, but the same customer pays the other 200.00 a week later
    rows = _run(
        tmp_path,
        "B1,2026-10-02,9800.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n"
        "B2,2026-10-09,200.00,HKD,FPS CR KAM WING TRADING,,,001\n",
    )
    pair = next(r for r in rows.values() if "B1" in r["bank_ids"].split(";"))
    if pair["bank_ids"] == "B1":  # proposed as a one-to-one with a write-off: never automatically
        assert pair["status"] == "review"
        assert "B2" in pair["explanation"] and "could make this match whole" in pair["explanation"]
    else:  # or found as the instalments they are
        assert pair["bank_ids"] == "B1;B2"


def test_nameless_credit_of_the_difference_also_counts(tmp_path):
    rows = _run(
        tmp_path,
        "B1,2026-10-02,9800.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n"
        "B2,2026-10-09,200.00,HKD,CASH DEPOSIT,,,001\n",
    )
    assert rows["B1"]["status"] == "review"
    assert "B2" in rows["B1"]["explanation"]


def test_another_payers_credit_of_the_difference_does_not_count(tmp_path):
    rows = _run(
        tmp_path,
        "B1,2026-10-02,9800.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n"
        "B2,2026-10-09,200.00,HKD,FPS CR HARBOUR VIEW PROPERTIES,,,001\n",
    )
    assert rows["B1"]["status"] == "auto"


def test_an_open_item_of_the_overpaid_amount_stops_an_automatic_overpayment(tmp_path):
    # 10,150.00 in: the invoice plus a 150.00 one of the same customer, not an overpayment
    rows = _run(
        tmp_path,
        "B1,2026-10-02,10150.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n",
        INVOICE + "INV-2026-01070,2026-09-21,150.00,HKD,Courier,Kam Wing Trading Ltd,,1100,invoice,\n",
    )
    pair = rows["B1"]
    assert pair["status"] == "review" or pair["ledger_ids"] == "INV-2026-01069;INV-2026-01070"


def test_a_partly_paid_item_is_not_booked_unseen_while_the_payer_has_an_open_smaller_credit(tmp_path):
    # two instalments quote the invoice, a third (not quoting it) is the same payer's and smaller
    # than what stays open: the two-line group may be incomplete, so a person looks
    rows = _run(
        tmp_path,
        "B1,2026-10-02,3000.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n"
        "B2,2026-10-09,2000.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n"
        "B3,2026-10-16,1500.00,HKD,FPS CR KAM WING TRADING,,,001\n",
    )
    group = rows["B1;B2"]
    assert (group["ledger_ids"], group["match_type"]) == ("INV-2026-01069", "many_to_one")
    assert group["open_amount"] == "5000.00"
    assert group["status"] == "review"
    assert "B3" in group["explanation"] and "may pay part of what stays open" in group["explanation"]


def test_a_partly_paid_item_with_no_other_credit_of_the_payer_stays_automatic(tmp_path):
    rows = _run(
        tmp_path,
        "B1,2026-10-02,3000.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n"
        "B2,2026-10-09,2000.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n"
        "B3,2026-10-16,1500.00,HKD,FPS CR HARBOUR VIEW PROPERTIES,,,001\n",
    )
    assert rows["B1;B2"]["status"] == "auto"


def test_an_open_line_quoting_the_item_counts_whoever_the_bank_names(tmp_path):
    # two instalments of the customer quote the invoice; the third, for exactly what stays
    # open, quotes it too but the bank prints another name (a family member paying): the two
    # are not booked unseen with the rest left open
    invoice = "00012204,2026-09-19,3652.00,HKD,Installation work,Chan Leung Shing,00012204,1100,invoice,\n"
    rows = _run(
        tmp_path,
        "B1,2026-10-01,1181.00,HKD,CHQ DEP 356862 12204 CHAN LEUNG SHING,,,001\n"
        "B2,2026-10-11,1088.00,HKD,CR TRF A/C 250-8-051167 PART PAYMENT 00012204 MARY CHAN,,,001\n"
        "B3,2026-10-20,1383.00,HKD,TT IN A/C 250-8-051167 INV12204 CHAN LEUNG SHING,,,001\n",
        invoice,
    )
    groups = {ids: row for ids, row in rows.items() if "00012204" in row["ledger_ids"]}
    assert groups, rows
    for ids, row in groups.items():
        if set(ids.split(";")) != {"B1", "B2", "B3"}:  # a part of the item's payments
            assert row["status"] == "review", (ids, row["explanation"])


def test_a_payers_open_credit_that_pays_another_of_its_items_to_the_cent_is_not_part_of_the_rest(tmp_path):
    # B3 (1,500.00) is the same payer's and smaller than what stays open, but it pays one of
    # the payer's two other invoices of exactly 1,500.00 (which one is for a person to say: a
    # review proposal): it explains such an invoice, not this rest
    rows = _run(
        tmp_path,
        "B1,2026-10-02,3000.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n"
        "B2,2026-10-09,2000.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n"
        "B3,2026-10-16,1500.00,HKD,FPS CR KAM WING TRADING,,,001\n",
        INVOICE + "INV-2026-01070,2026-09-25,1500.00,HKD,Courier,Kam Wing Trading Ltd,,1100,invoice,\n"
        "INV-2026-01071,2026-09-26,1500.00,HKD,Courier,Kam Wing Trading Ltd,,1100,invoice,\n",
    )
    assert rows["B3"]["status"] == "review"
    assert rows["B3"]["ledger_ids"] in ("INV-2026-01070", "INV-2026-01071")
    group = rows["B1;B2"]
    assert group["open_amount"] == "5000.00"
    assert group["status"] == "auto", group["explanation"]


def test_a_payers_open_credit_of_another_amount_still_holds_the_rest_for_review(tmp_path):
    # the same month with the other invoice at 1,400.00: B3 pays nothing to the cent, so it
    # may be a third instalment and the two-line group is not booked unseen
    rows = _run(
        tmp_path,
        "B1,2026-10-02,3000.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n"
        "B2,2026-10-09,2000.00,HKD,FPS CR KAM WING TRADING INV-2026-01069,,,001\n"
        "B3,2026-10-16,1500.00,HKD,FPS CR KAM WING TRADING,,,001\n",
        INVOICE + "INV-2026-01070,2026-09-25,1400.00,HKD,Courier,Kam Wing Trading Ltd,,1100,invoice,\n",
    )
    assert rows["B1;B2"]["status"] == "review"
    assert "B3" in rows["B1;B2"]["explanation"]
