"""The reconciliation statement of a small month worked out by hand: the statement balance, the
book balance, each reconciling item and its category, a receipt in transit across the month's
end, the balances a bank statement states, the ageing and match rates, and the errors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from engine import api
from engine.report import build_report, parse_period
from models.errors import InputError, ReconError


def _dec(minor: int) -> Decimal:
    return Decimal(minor).scaleb(-2)


def _by_category(statement) -> dict[str, list[tuple[tuple[str, ...], Decimal]]]:
    out: dict[str, list] = {}
    for item in statement.items:
        out.setdefault(item.category, []).append((item.ids, _dec(item.amount_minor)))
    return out


def test_october_statement_by_hand(small_ws):
    report = build_report(small_ws, "2026-10", opening_balances={"HKD": "10000.00"})
    [hkd] = report.statements
    # bank: 10,000 + 1,000 - 500 - 25 + 1,950 (B4 is dated 2 November)
    assert _dec(hkd.statement_minor) == Decimal("12425.00")
    # books: 10,000 + cash-book (-500 + 800 - 300) + invoices settled (INV-1 1,000, INV-2 2,000)
    assert _dec(hkd.cash_book_minor) == Decimal("0.00") and hkd.cash_book_entries == 3
    assert _dec(hkd.settled_minor) == Decimal("3000.00") and hkd.settled_matches == 2
    assert _dec(hkd.book_minor) == Decimal("13000.00")
    assert _dec(hkd.difference_minor) == Decimal("-575.00")
    assert _by_category(hkd) == {
        "unmatched_bank": [(("B3",), Decimal("-25.00"))],  # the fee nobody booked
        "adjustment": [(("B5",), Decimal("-50.00"))],  # INV-2 paid 1,950: a 50.00 bank charge
        "deposit_in_transit": [(("RCPT-1",), Decimal("800.00"))],  # booked 31 Oct, banked 2 Nov
        "outstanding_payment": [(("PAY-2",), Decimal("-300.00"))],  # cheque not yet presented
    }
    assert sum(i.effect_minor for i in hkd.items) == hkd.difference_minor
    assert report.balanced
    adjustment = next(i for i in hkd.items if i.category == "adjustment")
    assert (adjustment.cause, adjustment.account) == ("bank_charge", "6800")
    transit = next(i for i in hkd.items if i.category == "deposit_in_transit")
    assert transit.state == "accepted" and "clears after 2026-10-31" in transit.note
    assert hkd.accounts == ["ACC-1"] and "given" in hkd.opening_source


def test_november_clears_the_deposit_in_transit(small_ws):
    [hkd] = build_report(small_ws, "2026-11", opening_balances={"HKD": "10000.00"}).statements
    assert _dec(hkd.statement_minor) == Decimal("13225.00")
    assert _dec(hkd.book_minor) == Decimal("13000.00")
    categories = _by_category(hkd)
    assert "deposit_in_transit" not in categories
    assert categories["outstanding_payment"] == [(("PAY-2",), Decimal("-300.00"))]
    assert sum(i.effect_minor for i in hkd.items) == hkd.difference_minor == 22500


def test_ageing_and_match_rates(small_ws):
    report = build_report(small_ws, "2026-10", opening_balances={"HKD": "10000.00"})
    ages = {(a.category, a.bucket): (a.items, a.amount_minor) for a in report.ageing if a.items}
    assert ages == {("unmatched_bank", "8-30"): (1, -2500),  # B3: 20 Oct, 11 days
                    ("deposit_in_transit", "0-7"): (1, 80000),  # RCPT-1: 31 Oct
                    ("outstanding_payment", "0-7"): (1, -30000)}  # PAY-2: 29 Oct
    assert report.month_bank_lines == 4  # B1, B2, B3, B5
    assert report.outcomes == {"auto": 0, "review": 0, "manual": 3, "pending": 0, "open": 1}
    manual = next(r for r in report.rates if r.group == "status" and r.label == "manual")
    assert (manual.matches, manual.accepted, manual.bank_lines, manual.rate) == (3, 3, 3, 1.0)


def test_a_rejected_match_leaves_its_lines_open(small_ws):
    undone = build_report(small_ws, "2026-10", opening_balances={"HKD": "10000.00"})
    match_id = next(i.match_id for i in undone.statements[0].items if i.category == "adjustment")
    api.unmatch(small_ws, match_id, reason="wrong customer", by="controller")
    [hkd] = build_report(small_ws, "2026-10", opening_balances={"HKD": "10000.00"}).statements
    categories = _by_category(hkd)
    assert (("B5",), Decimal("1950.00")) in categories["unmatched_bank"]
    assert "adjustment" not in categories
    assert _dec(hkd.book_minor) == Decimal("11000.00")  # 10,000 + INV-1 only: INV-2 no longer settled
    assert sum(i.effect_minor for i in hkd.items) == hkd.difference_minor
    b5 = next(i for i in hkd.items if i.ids == ("B5",))
    assert b5.state == "reversed" and b5.match_id == match_id


def _mt940(closing: str) -> str:
    return "\r\n".join([
        "{1:F01HSBCHKHHXXXX0000000000}{2:O940HSBCHKHHXXXXN}{4:",
        ":20:OCT2026", ":25:ACC-1", ":28C:00010/00001",
        ":60F:C260930HKD10000,00",
        ":61:2610051005CR1000,00NTRFINV-1//BANKREF1", ":86:FPS CR 陳大文 INV-1",
        ":61:2610101010DR500,00NCHQ000123//BANKREF2", ":86:CHQ 000123",
        ":61:2610201020DR25,00NCHGNONREF//BANKREF3", ":86:SERVICE FEE",
        ":61:2610151015CR1950,00NTRFINV-2//BANKREF4", ":86:TT INV-2",
        f":62F:C261031HKD{closing}", "-}", ""])


@pytest.mark.parametrize("closing, gap", [("12425,00", None), ("12400,00", Decimal("-25.00"))])
def test_statement_balance_from_an_mt940_statement(tmp_path, small_files, closing, gap):
    statement = tmp_path / "october.sta"
    statement.write_text(_mt940(closing), encoding="utf-8")
    ws = tmp_path / "books.duckdb"
    ingested = api.ingest(ws, bank=statement, ledger=small_files[1])
    assert ingested.added["balances"] == 2  # the opening and the closing balance
    report = build_report(ws, "2026-10")
    [hkd] = report.statements
    assert _dec(hkd.opening_minor) == Decimal("10000.00") and "october.sta" in hkd.opening_source
    assert _dec(hkd.statement_minor) == Decimal(closing.replace(",", "."))
    assert "stated on 2026-10-31" in hkd.statement_source
    gaps = [_dec(i.effect_minor) for i in hkd.items if i.category == "statement_gap"]
    assert gaps == ([] if gap is None else [gap])
    assert bool(report.notes) == (gap is not None)
    # nothing matched yet: every bank line and every cash-book entry is a reconciling item
    assert hkd.count("unmatched_bank") == 4 and hkd.count("outstanding_payment") == 2
    assert sum(i.effect_minor for i in hkd.items) == hkd.difference_minor


def test_a_period_with_nothing_in_it(small_ws):
    report = build_report(small_ws, "2025-01")
    assert report.statements == [] and report.month_bank_lines == 0 and report.ageing == []
    assert report.balanced


def test_unknown_workspace_is_one_clear_error(tmp_path):
    missing = tmp_path / "nowhere.duckdb"
    with pytest.raises(ReconError, match=r"workspace .*nowhere\.duckdb does not exist"):
        build_report(missing, "2026-10")
    assert not missing.exists()


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "October", ""])
def test_a_period_must_be_a_month(period):
    with pytest.raises(InputError, match="YYYY-MM"):
        parse_period(period)


def test_period_bounds():
    assert parse_period("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))


def test_an_opening_balance_with_too_many_decimals_is_refused(small_ws):
    with pytest.raises(InputError, match="--opening-balance HKD=1.234"):
        build_report(small_ws, "2026-10", opening_balances={"HKD": "1.234"})
