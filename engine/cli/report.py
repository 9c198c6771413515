"""``recon report``: the month-end bank reconciliation of a workspace, as text, JSON, HTML and
CSV; a thin call into :mod:`engine.report`."""

from __future__ import annotations

from models.errors import InputError

__all__ = ["register"]


def register(sub) -> dict:
    """Add ``report`` to ``sub`` (the ``recon`` sub-parsers); returns its handler."""
    r = sub.add_parser(
        "report", help="the month-end bank reconciliation statement of a workspace (text, JSON, HTML, CSV)",
        description="The bank reconciliation statement for a month: balance per bank statement, balance per "
                    "books, and the reconciling items (deposits in transit, outstanding payments, bank lines "
                    "not in the books, adjustments booked) summing exactly to their difference; match rates; "
                    "unmatched items by age. Definitions: README, 'Month-end report'.")
    r.add_argument("--workspace", required=True, metavar="FILE", help="the workspace (DuckDB file)")
    r.add_argument("--period", required=True, metavar="YYYY-MM", help="the month to report (e.g. 2026-10)")
    r.add_argument("--html", metavar="FILE", help="write the report as a self-contained HTML page")
    r.add_argument("--csv", metavar="FILE", help="write the statement and its items as CSV")
    r.add_argument("--json", action="store_true", help="print the report as JSON instead of the text statement")
    r.add_argument("--opening-balance", action="append", default=[], metavar="CUR=AMOUNT",
                   help="balance of the currency's bank account(s) before the first line held, where no statement "
                        "ingested states one (canonical CSV); repeat per currency, e.g. HKD=125000.00")
    r.add_argument("--closing-balance", action="append", default=[], metavar="CUR=AMOUNT",
                   help="the statement's closing balance at the month's end, read off the bank statement "
                        "(default: the one ingested, else opening + lines held)")
    r.add_argument("--rules", metavar="FILE",
                   help="rule set whose [writeback] cash_book_types are the cash-book entries "
                        "(default: the workspace's latest run's)")
    r.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return {"report": _cmd_report}


def _balances(values: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        currency, sep, amount = value.partition("=")
        if not sep or not currency.strip() or not amount.strip():
            raise InputError(f"{option} {value!r}: give CURRENCY=AMOUNT, e.g. HKD=125000.00")
        out[currency.strip().upper()] = amount.strip()
    return out


def _cmd_report(args) -> int:
    from pathlib import Path

    from engine.report import build_report, render_html, write_csv

    for option, target in (("--html", args.html), ("--csv", args.csv)):
        if target is not None and Path(target).is_dir():
            raise InputError(f"{option} {target}: is a folder; name the file to write")
    report = build_report(args.workspace, args.period,
                          opening_balances=_balances(args.opening_balance, "--opening-balance"),
                          closing_balances=_balances(args.closing_balance, "--closing-balance"),
                          rules=args.rules)
    written = []
    if args.html:
        path = Path(args.html)
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        part.write_text(render_html(report), encoding="utf-8")
        part.replace(path)
        written.append(f"wrote {path}")
    if args.csv:
        written.append(f"wrote {write_csv(report, args.csv)}")
    if args.json:
        print(report.to_json())
    else:
        print(report.summary())
        for line in written:
            print(f"  {line}")
    return 0
