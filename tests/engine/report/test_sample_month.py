"""The report on the bundled sample month (ingested, matched, every auto proposal accepted
through engine.api) balances to the cent: its statement balance, book balance and reconciling
totals are recomputed here from the sample's own CSV files and the accepted matches, with
Decimal, without the report's code; and ``recon report --csv F --html F`` writes both."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date
from decimal import Decimal

from engine import api
from engine.cli import main
from engine.report import build_report
from tests.engine.report.conftest import SAMPLE

END = date(2026, 10, 31)
CASH_BOOK = {"payment", "receipt", "journal"}  # the default rule set's [writeback] cash_book_types


def _recompute(ws) -> dict[str, Decimal]:
    """The October reconciliation from the sample's files and the accepted matches."""
    bank = {r["id"]: r for r in csv.DictReader((SAMPLE / "bank.csv").open(encoding="utf-8"))}  # a line once
    ledger = {r["id"]: r for r in csv.DictReader((SAMPLE / "ledger.csv").open(encoding="utf-8"))}
    day = date.fromisoformat
    cash_book = {i: r for i, r in ledger.items() if r["type"] in CASH_BOOK and day(r["date"]) <= END}
    accepted = api.review(ws, state=["accepted", "written", "failed"]).rows(named=True)
    out = defaultdict(Decimal)
    out["statement"] = sum((Decimal(r["amount"]) for r in bank.values() if day(r["date"]) <= END), Decimal(0))
    out["book"] = sum((Decimal(r["amount"]) for r in cash_book.values()), Decimal(0))
    cleared_bank, cleared_cash = set(), set()
    for match in accepted:
        bank_ids = match["bank_ids"].split(";") if match["bank_ids"] else []
        ledger_ids = match["ledger_ids"].split(";") if match["ledger_ids"] else []
        cash_ids = [i for i in ledger_ids if ledger[i]["type"] in CASH_BOOK]
        if any(day(bank[i]["date"]) > END for i in bank_ids) or any(day(ledger[i]["date"]) > END for i in cash_ids):
            continue  # clears after the month's end
        cleared_bank.update(bank_ids)
        cleared_cash.update(cash_ids)
        paid = sum((Decimal(bank[i]["amount"]) for i in bank_ids), Decimal(0))
        settled = Decimal(match["ledger_amount"])
        cash = sum((Decimal(ledger[i]["amount"]) for i in cash_ids), Decimal(0))
        out["adjustment"] += paid - settled
        if len(cash_ids) < len(ledger_ids):
            out["book"] += settled - cash  # invoices, bills, orders, payroll settled
        else:
            out["partly_cleared"] += cash - settled
    out["unmatched_bank"] = sum((Decimal(r["amount"]) for i, r in bank.items()
                                 if day(r["date"]) <= END and i not in cleared_bank), Decimal(0))
    for i, r in cash_book.items():
        if i not in cleared_cash:
            out["deposit_in_transit" if Decimal(r["amount"]) > 0 else "outstanding_payment"] += Decimal(r["amount"])
    return out


def _dec(minor: int) -> Decimal:
    return Decimal(minor).scaleb(-2)


def test_the_sample_month_balances_to_the_cent(sample_ws):
    expected = _recompute(sample_ws)
    report = build_report(sample_ws, "2026-10")
    [hkd] = report.statements
    assert hkd.currency == "HKD" and hkd.accounts == ["004-512345-001"]
    assert _dec(hkd.statement_minor) == expected["statement"]  # opening 0.00: canonical CSV states none
    assert _dec(hkd.book_minor) == expected["book"]
    assert _dec(-hkd.total("unmatched_bank")) == -expected["unmatched_bank"]
    assert _dec(hkd.total("adjustment")) == expected["adjustment"]
    transit = [i for i in hkd.items if i.category == "deposit_in_transit"]
    outstanding = [i for i in hkd.items if i.category == "outstanding_payment"]
    assert _dec(sum(i.amount_minor for i in transit + outstanding)) == (
        expected["deposit_in_transit"] + expected["outstanding_payment"] + expected["partly_cleared"])
    # the reconciling items sum exactly to statement - books
    assert (expected["statement"] - expected["book"]) == (
        expected["unmatched_bank"] + expected["adjustment"] - expected["deposit_in_transit"]
        - expected["outstanding_payment"] - expected["partly_cleared"])
    assert _dec(hkd.difference_minor) == expected["statement"] - expected["book"]
    assert sum(i.effect_minor for i in hkd.items) == hkd.difference_minor and report.balanced
    # every auto proposal was accepted: the month's lines are auto-accepted, pending review or open
    assert report.month_bank_lines == 1990  # bank.csv's 2,000 rows hold 10 lines twice
    assert report.outcomes["auto"] + report.outcomes["pending"] + report.outcomes["open"] == 1990
    auto = next(r for r in report.rates if r.group == "status" and r.label == "auto")
    assert auto.matches == auto.accepted == 1802 and auto.rate == 1.0


def test_recon_report_writes_csv_and_html(sample_ws, tmp_path, capsys):
    html, table = tmp_path / "out" / "october.html", tmp_path / "out" / "october.csv"
    status = main(["report", "--workspace", str(sample_ws), "--period", "2026-10", "--csv", str(table),
                   "--html", str(html)])
    printed = capsys.readouterr().out
    assert status == 0
    assert "balances" in printed and f"wrote {html}" in printed and f"wrote {table}" in printed
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    figure = {r["category"]: Decimal(r["amount"]) for r in rows if r["kind"] == "balance"}
    totals = sum(Decimal(r["to_books"]) for r in rows if r["kind"] == "total")
    items = sum(Decimal(r["to_books"]) for r in rows if r["kind"] == "item")
    assert figure["statement_balance"] + totals == figure["book_balance"]
    assert figure["statement_balance"] + items == figure["book_balance"]
    assert figure["book_balance"] == _recompute(sample_ws)["book"]
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "<svg" in page and "balances to the cent" in page
    # self-contained: no script, stylesheet, image or font fetched from anywhere
    assert "<script" not in page.lower() and "<link" not in page.lower() and "src=" not in page
    assert "url(" not in page and "@import" not in page


def test_recon_report_json(sample_ws, capsys):
    assert main(["report", "--workspace", str(sample_ws), "--period", "2026-10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    [hkd] = data["statements"]
    assert data["balanced"] is True and hkd["unexplained"] == "0.00"
    assert Decimal(hkd["statement_balance"]) - Decimal(hkd["book_balance"]) == Decimal(hkd["difference"])


def test_recon_report_unknown_workspace_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.duckdb"
    assert main(["report", "--workspace", str(missing), "--period", "2026-10", "--csv", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert not missing.exists() and not (tmp_path / "r.csv").exists()



def test_match_rates_by_the_evidence_a_match_rests_on(sample_ws):
    report = build_report(sample_ws, "2026-10")
    evidence = {r.label: r for r in report.rates if r.group == "evidence"}
    # every match of the month falls in one evidence row, pairs by their reference level
    by_type = [r for r in report.rates if r.group == "match_type"]
    assert sum(r.matches for r in evidence.values()) == sum(r.matches for r in by_type)
    pairs = next(r for r in by_type if r.label == "one_to_one")
    # one-to-one matches are scored pairs, or found by a group search (an FX receipt)
    assert sum(r.matches for label, r in evidence.items() if label.startswith("reference: ")) + (
        evidence["group search: one_to_one"].matches) == pairs.matches
    assert evidence["reference: full"].matches > 0 and evidence["reference: none"].matches > 0
    assert {label for label in evidence if label.startswith("group search: ")} == {
        "group search: one_to_one", "group search: one_to_many", "group search: many_to_one",
        "group search: payout"}
