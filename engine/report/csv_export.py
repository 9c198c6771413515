"""Month-end report stage: the reconciliation statement as one CSV table.

One row a figure or item, for a spreadsheet or an audit file: ``kind`` is ``balance`` (the
statement balance, the book balance and what each is made of, the difference), ``total`` (a
category of reconciling items) or ``item`` (one reconciling item). Amounts are exact decimal
text with the currency's decimals (``-1234.50``; no thousands separators), ``to_books`` is the
row's move from the statement balance to the book balance: per currency, the statement balance
plus the ``to_books`` of the ``total`` rows (or of the ``item`` rows) is the book balance,
exactly. UTF-8, text as written (陳大文 stays 陳大文). The match rates and the ageing are in the
HTML and JSON forms.
"""

from __future__ import annotations

import csv
from pathlib import Path

from engine.report.statement import CATEGORIES, LABELS, Report
from models.money import format_minor

__all__ = ["write_csv", "CSV_COLUMNS"]

CSV_COLUMNS = [
    "period", "currency", "kind", "category", "label", "date", "age_days", "side", "ids", "match_id", "state",
    "cause", "account", "description", "counterparty", "reference", "items", "amount", "to_books", "note",
]


def _rows(report: Report):
    for s in report.statements:
        c = s.currency

        def money(minor: int, currency: str = c) -> str:
            return format_minor(minor, currency)

        base = {"period": report.period, "currency": c}
        for category, label, minor, items, note in (
            ("statement_balance", f"balance per bank statement at {report.end}", s.statement_minor, s.bank_lines,
             s.statement_source),
            ("opening_balance", "opening balance", s.opening_minor, None, s.opening_source),
            ("bank_lines", f"bank lines held dated up to {report.end}", s.bank_lines_minor, s.bank_lines, None),
            ("cash_book_entries", f"cash-book entries dated up to {report.end}", s.cash_book_minor,
             s.cash_book_entries, "types: " + ", ".join(report.cash_book_types)),
            ("settled_open_items", f"open items settled by matches cleared by {report.end}", s.settled_minor,
             s.settled_matches, None),
            ("book_balance", "balance per books", s.book_minor, None, "opening + cash-book entries + settled open items"),
            ("difference", "statement balance - book balance", s.difference_minor, None,
             "balances" if s.unexplained_minor == 0 else f"unexplained {money(s.unexplained_minor)}"),
        ):
            yield {**base, "kind": "balance", "category": category, "label": label, "amount": money(minor),
                   "items": items, "note": note}
        for key in CATEGORIES:
            yield {**base, "kind": "total", "category": key, "label": LABELS[key], "items": s.count(key),
                   "amount": money(-s.total(key)), "to_books": money(-s.total(key))}
        for item in s.items:
            yield {**base, "kind": "item", "category": item.category, "label": LABELS[item.category],
                   "date": item.date.isoformat() if item.date else None, "age_days": item.age_days,
                   "side": item.side, "ids": ";".join(item.ids), "match_id": item.match_id, "state": item.state,
                   "cause": item.cause, "account": item.account, "description": item.description,
                   "counterparty": item.counterparty, "reference": item.reference, "items": 1,
                   "amount": money(item.amount_minor), "to_books": money(-item.effect_minor), "note": item.note}


def write_csv(report: Report, path: str | Path) -> Path:
    """Write the statement of ``report`` as CSV (see the module docstring for its rows).

    Parameters
    ----------
    report
        What :func:`~engine.report.statement.build_report` returned.
    path
        The file to write (its folder is created; an existing file is replaced).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> write_csv(build_report("books.duckdb", "2026-10"), "october.csv")   # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with part.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in _rows(report):
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    part.replace(path)
    return path
