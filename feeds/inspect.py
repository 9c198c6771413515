"""Feeds stage: what a file holds, as a user checks it before matching (``recon inspect``).

:func:`inspect_file` reads one file with the detected (or named) format and summarises it: the
format, accounts, currencies, number of canonical lines, date range, money in and out per
currency (exact decimal text), the rejects, the balances the file states and a balance check
per statement: opening + movements = closing. A mismatch is reported with its difference, never
hidden. :func:`format_inspection` renders the summary for a terminal.

Which lines belong to which statement: lines whose ``attributes`` name their statement
(``statement_id``, or MT940's ``statement_reference`` + ``statement_number``) are summed per
statement; otherwise all lines of the statement's account and currency are summed when the
file holds one statement for them, and lines dated after the opening and up to the closing
balance's date when it holds several.
"""

from __future__ import annotations

import json
from os import PathLike
from typing import Any

import polars as pl

from feeds.registry import detect_side, read_any
from models.money import CURRENCY_EXPONENTS, format_minor

__all__ = ["format_inspection", "inspect_file"]


def _money(minor: int | None, currency: str) -> str | None:
    if minor is None:
        return None
    if currency in CURRENCY_EXPONENTS:
        return format_minor(int(minor), currency)
    return str(minor)


def _statement_key(attributes: str | None) -> str | None:
    if not attributes or not attributes.startswith("{"):
        return None
    try:
        data = json.loads(attributes)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("statement_id"):
        return str(data["statement_id"])
    reference, number = data.get("statement_reference"), data.get("statement_number")
    if number and data.get("sequence_number"):  # MT940 :28C: statement/sequence
        number = f"{number}/{data['sequence_number']}"
    if reference:
        return f"{reference} {number}".strip() if number else str(reference)
    return None


def _is_opening(kind: str) -> bool:
    return "opening" in kind and "available" not in kind


def _is_closing(kind: str) -> bool:
    return "closing" in kind and "available" not in kind


def _balance_checks(frame: pl.DataFrame, balances: pl.DataFrame, side: str) -> list[dict[str, Any]]:
    """One check per (account, currency, statement) that states a closing balance."""
    if balances.height == 0:
        return []
    amount = "net_minor" if side == "processor" else "amount_minor"
    account_column = "account" if "account" in frame.columns else None
    lines = frame.select(
        amount=pl.col(amount),
        currency=pl.col("currency"),
        account=pl.col(account_column) if account_column else pl.lit(""),
        date=pl.col("date") if "date" in frame.columns else pl.coalesce("created", "available_on"),
        statement=pl.col("attributes").map_elements(_statement_key, return_dtype=pl.Utf8),
    )
    checks = []
    groups = balances.with_columns(pl.col("account").fill_null(""), pl.col("statement_id").fill_null(""))
    keys = groups.select("account", "currency", "statement_id").unique(maintain_order=True).rows()
    statements_per_account = groups.group_by("account", "currency").agg(pl.col("statement_id").n_unique())
    several = {(a, c) for a, c, n in statements_per_account.iter_rows() if n > 1}
    for account, currency, statement in keys:
        group = groups.filter(
            (pl.col("account") == account) & (pl.col("currency") == currency) & (pl.col("statement_id") == statement)
        )
        openings = [r for r in group.iter_rows(named=True) if _is_opening(r["type"])]
        closings = [r for r in group.iter_rows(named=True) if _is_closing(r["type"])]
        check: dict[str, Any] = {"account": account, "currency": currency, "statement_id": statement or None}
        if not closings:
            continue
        # several statements under one id (consecutive days): check the chain as a whole, from
        # the first opening to the last closing
        closing = next((r for r in reversed(closings) if r["type"] == "closing"), closings[-1])
        check["closing"] = _money(closing["amount_minor"], currency)
        check["closing_date"] = closing["date"].isoformat() if closing["date"] else None
        if not openings:
            check.update(status="not_checked", reason="the file states no opening balance for this statement")
            checks.append(check)
            continue
        opening = next((r for r in openings if r["type"] == "opening"), openings[0])
        mine = lines.filter(pl.col("currency") == currency)
        if side != "processor":
            mine = mine.filter((pl.col("account") == account) | (pl.lit(account) == ""))
        keyed = mine.filter(pl.col("statement").is_not_null())
        if statement and keyed.height:
            mine = mine.filter(pl.col("statement") == statement)
            how = "lines of this statement"
        elif (account, currency) in several and opening["date"] and closing["date"]:
            mine = mine.filter((pl.col("date") > opening["date"]) & (pl.col("date") <= closing["date"]))
            how = "lines dated after the opening up to the closing date"
        else:
            how = "all lines of this account and currency"
        movements = int(mine.get_column("amount").sum() or 0)
        expected = int(opening["amount_minor"]) + movements
        difference = int(closing["amount_minor"]) - expected
        check.update(
            opening=_money(opening["amount_minor"], currency),
            opening_type=opening["type"],
            opening_date=opening["date"].isoformat() if opening["date"] else None,
            movements=_money(movements, currency),
            lines=mine.height,
            expected_closing=_money(expected, currency),
            difference=_money(difference, currency),
            status="ok" if difference == 0 else "mismatch",
            summed=how,
        )
        checks.append(check)
    return checks


def inspect_file(
    path: str | PathLike[str], format: str | None = None, side: str | None = None
) -> dict[str, Any]:
    """Read one file and summarise it for a person checking it.

    Parameters
    ----------
    path
        The file (or database URL).
    format
        ``--format`` name; None detects the format from the content.
    side
        "bank", "ledger" or "processor"; None (the default) reads the file as whatever side
        its format serves: a Stripe, Shopify Payments or PayPal export as processor, a
        statement as bank. A side given with no ``format`` is tried first; a file no format of
        that side recognises is read as the side that does recognise it, and ``notes`` says
        so (a Stripe report inspected as ``--side bank`` shows as a processor file).

    Returns
    -------
    dict
        JSON-ready: ``format``, ``side`` (the side the file was read as), ``source``, ``transactions`` (canonical lines
        produced), ``rows_read``, ``rejects`` (list of {line, column, reason, raw}), ``accounts``,
        ``currencies``, ``currency`` (the only one, or None), ``date_range`` ([first, last] ISO
        dates or None), ``totals_in`` / ``totals_out`` / ``net`` ({currency: exact decimal text}),
        ``balances`` (each stated balance), ``balance_checks`` (per statement: opening,
        movements, expected and stated closing, ``difference``, ``status`` "ok" / "mismatch" /
        "not_checked"), ``notes``.

    Raises
    ------
    FeedFormatError
        The file cannot be read at all (the same errors ``recon match`` would give).

    Examples
    --------
    >>> summary = inspect_file("statement.sta")  # doctest: +SKIP
    >>> summary["transactions"], summary["balance_checks"][0]["status"]  # doctest: +SKIP
    (7, 'ok')
    """
    notes: list[str] = []
    if format or side is None:
        result = read_any(path, side, format)
    else:
        _, read_side = detect_side(path, prefer=side)
        if read_side != side:
            notes.append(
                f"no {side} format recognises this file; it reads as a {read_side} file "
                f"(give it to recon match with --{read_side})"
            )
        result = read_any(path, read_side)
    side = result.side
    frame = result.frame
    amount = "net_minor" if side == "processor" else "amount_minor"
    date_column = "date" if "date" in frame.columns else "created"
    dates = frame.get_column(date_column).drop_nulls() if frame.height else pl.Series([], dtype=pl.Date)
    if side == "processor" and dates.len() == 0 and frame.height:
        dates = frame.get_column("available_on").drop_nulls()
    currencies = sorted(set(frame.get_column("currency").drop_nulls().to_list()))
    totals_in, totals_out, net = {}, {}, {}
    for currency in currencies:
        values = frame.filter(pl.col("currency") == currency).get_column(amount)
        incoming = int(values.filter(values > 0).sum() or 0)
        outgoing = int(values.filter(values < 0).sum() or 0)
        totals_in[currency] = _money(incoming, currency)
        totals_out[currency] = _money(-outgoing, currency)
        net[currency] = _money(incoming + outgoing, currency)
    balances = [
        {
            "account": row["account"],
            "currency": row["currency"],
            "type": row["type"],
            "date": row["date"].isoformat() if row["date"] else None,
            "amount": _money(row["amount_minor"], row["currency"] or ""),
            "statement_id": row["statement_id"],
        }
        for row in result.balances.iter_rows(named=True)
    ]
    accounts = list(result.accounts) or sorted(
        {a for a in frame.get_column("account").to_list() if a} if "account" in frame.columns else set()
    )
    return {
        "source": str(path),
        "format": result.format,
        "side": side,
        "transactions": frame.height,
        "rows_read": result.rows_read,
        "rejects": [
            {"line": r["line"], "column": r["column"], "reason": r["reason"], "raw": r["raw"]}
            for r in result.rejects.iter_rows(named=True)
        ],
        "accounts": accounts,
        "currencies": currencies,
        "currency": currencies[0] if len(currencies) == 1 else None,
        "date_range": [dates.min().isoformat(), dates.max().isoformat()] if dates.len() else None,
        "totals_in": totals_in,
        "totals_out": totals_out,
        "net": net,
        "balances": balances,
        "balance_checks": _balance_checks(frame, result.balances, side),
        "notes": notes + list(result.notes),
    }


def format_inspection(summary: dict[str, Any]) -> str:
    """The summary of :func:`inspect_file` as text for a terminal (one fact per line)."""
    out = [
        f"{summary['source']}",
        f"  format:        {summary['format']} ({summary['side']} side)",
        f"  accounts:      {', '.join(summary['accounts']) or '(not stated)'}",
        f"  currencies:    {', '.join(summary['currencies']) or '(none)'}",
        f"  transactions:  {summary['transactions']} read, {len(summary['rejects'])} rejected "
        f"({summary['rows_read']} rows)",
    ]
    if summary["date_range"]:
        out.append(f"  dates:         {summary['date_range'][0]} to {summary['date_range'][1]}")
    for currency in summary["currencies"]:
        out.append(
            f"  {currency}:           in {summary['totals_in'][currency]}, out "
            f"{summary['totals_out'][currency]}, net {summary['net'][currency]}"
        )
    if summary["balances"]:
        out.append("  balances:")
        for b in summary["balances"]:
            where = f" [{b['statement_id']}]" if b["statement_id"] else ""
            out.append(f"    {b['type']:<16} {b['date'] or '':<10} {b['amount']} {b['currency']} {b['account'] or ''}{where}")
    for check in summary["balance_checks"]:
        label = f"{check['account'] or '(account)'} {check['currency']}"
        if check["statement_id"]:
            label += f" [{check['statement_id']}]"
        if check["status"] == "not_checked":
            out.append(f"  balance check {label}: not checked ({check['reason']})")
        elif check["status"] == "ok":
            out.append(
                f"  balance check {label}: OK  {check['opening']} + {check['movements']} = {check['closing']}"
            )
        else:
            out.append(
                f"  balance check {label}: MISMATCH  {check['opening']} + {check['movements']} = "
                f"{check['expected_closing']}, but the file states {check['closing']} "
                f"(difference {check['difference']})"
            )
    if summary["rejects"]:
        out.append("  rejects:")
        for reject in summary["rejects"][:50]:
            out.append(f"    line {reject['line']}: {reject['reason']}")
        if len(summary["rejects"]) > 50:
            out.append(f"    ... and {len(summary['rejects']) - 50} more (use --json for all)")
    for note in summary["notes"]:
        out.append(f"  note: {note}")
    return "\n".join(out)
