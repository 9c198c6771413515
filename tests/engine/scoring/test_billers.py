"""Bills paid by direct debit: the bank prints the biller's acronym or the bill's purpose where
the payee would stand. A unique amount with that reading is settled; without it, reviewed."""

from __future__ import annotations

from tests.engine.csv_month import proposals_by_bank as _run


def test_rent_paid_by_direct_debit_is_settled_by_its_purpose(tmp_path):
    rows = _run(tmp_path, "B1,2026-10-29,-69808.96,HKD,AUTOPAY DR OFFICE RENT,,,001\n",
                "PAY-350,2026-10-26,-69808.96,HKD,Office rent Sep 2026,Harbour View Properties Limited,,1010,payment,\n")
    assert (rows["B1"]["ledger_ids"], rows["B1"]["status"]) == ("PAY-350", "auto"), rows["B1"]["explanation"]
    assert "'office rent' is the item's purpose" in rows["B1"]["explanation"]


def test_a_biller_by_its_acronym_is_settled(tmp_path):
    rows = _run(tmp_path, "B1,2026-10-26,-403.05,HKD,AUTOPAY DR HKBN LTD,,,001\n",
                "PAY-316,2026-10-26,-403.05,HKD,Broadband Sep 2026,Hong Kong Broadband Network Limited,,1010,payment,\n")
    assert (rows["B1"]["ledger_ids"], rows["B1"]["status"]) == ("PAY-316", "auto"), rows["B1"]["explanation"]
    assert "acronym" in rows["B1"]["explanation"]


def test_an_unrelated_text_stays_a_review_proposal(tmp_path):
    # the same debit against a bill whose description and payee say nothing of the bank's text
    rows = _run(tmp_path, "B1,2026-10-29,-69808.96,HKD,AUTOPAY DR OFFICE RENT,,,001\n",
                "PAY-350,2026-10-26,-69808.96,HKD,Consulting Sep 2026,Harbour View Properties Limited,,1010,payment,\n")
    assert (rows["B1"]["ledger_ids"], rows["B1"]["status"]) == ("PAY-350", "review")


def test_a_biller_printed_by_its_brand_needs_the_alias_table(tmp_path):
    # no comparison reads a brand: TOWNGAS is The Hong Kong and China Gas Company only once the
    # workspace's alias table says so
    bank = "B1,2026-10-24,-932.15,HKD,AUTOPAY DR TOWNGAS,,,001\n"
    ledger = "PAY-288,2026-10-24,-932.15,HKD,Gas Sep 2026,The Hong Kong and China Gas Company Limited,,1010,payment,\n"
    assert _run(tmp_path, bank, ledger)["B1"]["status"] == "review"
    (tmp_path / "aliases.csv").write_text("name,alias\nThe Hong Kong and China Gas Company Limited,TOWNGAS\n",
                                          encoding="utf-8")
    row = _run(tmp_path, bank, ledger, aliases=tmp_path / "aliases.csv")["B1"]
    assert (row["ledger_ids"], row["status"]) == ("PAY-288", "auto")
    assert "linked by the alias table" in row["explanation"]
