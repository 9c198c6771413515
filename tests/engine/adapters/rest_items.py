"""Write items for the REST write-back tests, built directly (engine/adapters/base.py), and
what the fake Xero should hold once they are written."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from engine.adapters.base import JournalLine, MatchLine, WriteItem

DAY = date(2026, 3, 2)


def one_to_one(n: int, *, amount_minor: int = 100_000, invoice: str | None = None, reference: str | None = None,
               journal_minor: int = 0) -> WriteItem:
    """Bank line B{n} pays invoice INV-{n}; with ``journal_minor``, a bank charge of that much
    (the bank line carries the invoice less the charge)."""
    on = DAY + timedelta(days=n % 28)
    invoice = invoice or f"INV-{n:05d}"
    journal = ()
    if journal_minor:
        journal = (JournalLine(on, "6800", journal_minor, 0, "HKD", f"M{n}", "bank charge"),
                   JournalLine(on, "090", 0, journal_minor, "HKD", f"M{n}", "bank charge"))
    return WriteItem(
        f"M{n}", n, "write", "one_to_one",
        (MatchLine("bank", f"B{n}", on, amount_minor - journal_minor, "HKD", "陳大文", reference or f"FPS {invoice}"),
         MatchLine("ledger", invoice, on, amount_minor, "HKD", "陳大文")),
        journal,
    )


def one_to_many(n: int) -> WriteItem:
    """Bank line B{n} pays INV-{n}-a and INV-{n}-b together (a batch payment)."""
    on = DAY + timedelta(days=n % 28)
    return WriteItem(
        f"M{n}", n, "write", "one_to_many",
        (MatchLine("bank", f"B{n}", on, 350_00, "HKD", "金港貿易有限公司", f"PAY {n}"),
         MatchLine("ledger", f"INV-{n:05d}-a", on, 100_00, "HKD"),
         MatchLine("ledger", f"INV-{n:05d}-b", on, 250_00, "HKD")),
    )


def many_to_one(n: int) -> WriteItem:
    """Bank lines B{n}-1 and B{n}-2 pay INV-{n} in two instalments."""
    on = DAY + timedelta(days=n % 28)
    return WriteItem(
        f"M{n}", n, "write", "many_to_one",
        (MatchLine("bank", f"B{n}-1", on, 400_00, "HKD", reference=f"INV-{n:05d} 1/2"),
         MatchLine("bank", f"B{n}-2", on + timedelta(days=1), 600_00, "HKD", reference=f"INV-{n:05d} 2/2"),
         MatchLine("ledger", f"INV-{n:05d}", on, 1000_00, "HKD")),
    )


def month(count: int) -> list[WriteItem]:
    """``count`` matches: 70% one-to-one (a third of those with a bank-charge journal), 20%
    one bank line paying two invoices, 10% two instalments of one invoice."""
    items = []
    for n in range(count):
        shape = n % 10
        if shape < 7:
            items.append(one_to_one(n, amount_minor=1000_00 + n, journal_minor=50_00 if n % 3 == 0 else 0))
        elif shape < 9:
            items.append(one_to_many(n))
        else:
            items.append(many_to_one(n))
    return items


def expected_payments(items: list[WriteItem]) -> Counter:
    """(invoice, amount, date) of every payment the items should put on Xero, batch or not."""
    expected: Counter = Counter()
    for item in items:
        banks = sorted((line for line in item.lines if line.side == "bank"), key=lambda b: b.date)
        ledgers = [line for line in item.lines if line.side == "ledger"]
        if item.match_type == "many_to_one":
            for bank in banks:
                expected[(ledgers[0].line_id, Decimal(bank.amount_minor) / 100, bank.date.isoformat())] += 1
        else:
            for ledger in ledgers:
                expected[(ledger.line_id, Decimal(ledger.amount_minor) / 100, banks[0].date.isoformat())] += 1
    return expected


def received_payments(fake) -> Counter:
    return Counter(
        ((p["Invoice"] or {}).get("InvoiceNumber"), p["Amount"], p["Date"]) for p in fake.live_payments()
    )


def invoices_due(items: list[WriteItem]) -> dict[str, Decimal]:
    """The fake's invoice register for these items: each ledger item due in full."""
    return {line.line_id: Decimal(line.amount_minor) / 100
            for item in items for line in item.lines if line.side == "ledger"}
