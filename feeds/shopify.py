"""Feeds stage: Shopify Payments exports (API JSON, admin CSV) -> canonical payout lines.

Reads what the Shopify Admin API returns for Shopify Payments:

* payouts (``{"payout": {...}}`` or ``{"payouts": [...]}``): one line per payout, category
  ``payout``, amounts negative (money leaves the Shopify balance to the bank), the payout date as
  ``available_on``; the payout's ``summary`` (gross and fee per category) is kept in the
  attributes and checked: a summary that does not add up to the amount is reported in the notes;
* balance transactions (``{"transactions": [...]}`` with ``payout_id``): one line per movement
  with ``amount``, ``fee`` and ``net`` (``net = amount - fee`` is checked; a row where it does not
  hold is rejected). The order id is the order's name as the shop writes it (``#1001``, from
  ``order_name`` / ``source_order_name`` or an ``associated_order`` / ``order`` object) when
  the export carries it, else ``source_order_id`` (Shopify's internal number for the order);
  ``attributes`` names the key it came from (``order_id_from``).

It also reads the **transactions CSV** the Shopify admin exports (Finance > Payouts > Export:
``Transaction Date, Type, Order, Card Brand, Card Source, Payout Status, Payout Date, Payout ID,
Available On, Amount, Fee, Net, Checkout, Payment Method Name, Presentment Amount, Presentment
Currency, Currency``; columns in any order, extra columns kept in the attributes). One line per
row: category from ``Type``, gross / fee / net from ``Amount`` / ``Fee`` / ``Net`` (``net =
amount - fee`` is checked, a row where it does not hold is rejected), ``order_id`` the ``Order``
column exactly as written (``#1001``), the payout's id where the export has the column, and
``available_on`` from ``Available On`` (else ``Payout Date``). The export carries no id of a
transaction of its own, so a line's id is a fingerprint of its row (the same row exported
again gets the same id).

Amounts are decimal strings in major units and are converted exactly. Orders, refunds, order
transactions and tender transactions are Shopify JSON too, but they record what customers paid
per order, not what Shopify Payments paid out: such a file is refused with that reason.
"""

from __future__ import annotations

import json
import re
from os import PathLike
from typing import Any

from feeds._common import next_fingerprint, reject_row
from feeds.canonical_csv import read_raw_table
from feeds.processor import (
    JsonDocument,
    attributes_json,
    check_currency,
    date_from_iso,
    find_order_id,
    json_head,
    lines_frame,
    load_json,
    major_to_minor,
    payout_result,
    rejects_frame,
    text_or_none,
    with_order_source,
)
from models.errors import FeedFormatError, PrecisionError
from models.money import format_minor
from models.schema import FeedResult

__all__ = ["FORMAT", "SIDES", "identify", "read"]

FORMAT = "shopify"
SIDES: tuple[str, ...] = ("processor",)

_CATEGORIES = {
    "charge": "charge",
    "refund": "refund",
    "dispute": "dispute",
    "reserve": "reserve",
    "adjustment": "adjustment",
    "credit": "adjustment",
    "debit": "adjustment",
    "payout": "payout",
    "payout_failure": "payout_reversal",
    "payout_cancellation": "payout_reversal",
    "application_fee_refund": "fee",
    "shop_cash_credit": "adjustment",
}
_SUMMARY_PARTS = ("adjustments", "charges", "refunds", "reserved_funds", "retried_payouts")
_NOT_PAYOUTS = {
    "order": "a single Shopify order",
    "orders": "a list of Shopify orders",
    "refund": "a Shopify refund of one order",
    "refunds": "a list of Shopify refunds",
    "tender_transactions": "Shopify tender transactions (what customers paid per order)",
    "transaction": "a Shopify order transaction",
}
_TOP_LEVEL_KEYS = {"payout", "payouts", "transactions", *_NOT_PAYOUTS}
_HINT = (
    "recon reads Shopify Payments payouts (GET /admin/api/VERSION/shopify_payments/payouts.json) "
    "and balance transactions (.../shopify_payments/balance/transactions.json)"
)


#: header names (lower case) every Shopify Payments transactions CSV export has
_CSV_REQUIRED = frozenset({"transaction date", "type", "order", "amount", "fee", "net", "currency"})
#: ... and at least one of these, which only a payouts export has
_CSV_PAYOUT_COLUMNS = frozenset({"payout status", "payout date", "payout id"})
#: the columns turned into canonical ones (the rest go to the attributes)
_CSV_USED = frozenset(
    {"transaction date", "type", "order", "amount", "fee", "net", "currency", "payout id",
     "payout date", "available on"}
)
_CSV_DATE = re.compile(
    r"^\s*([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[ T][0-9:.]+(?:\s*(?:Z|[+-][0-9]{2}:?[0-9]{2}|[A-Z]{2,5}))?)?\s*$"
)


def _csv_header_names(head: bytes) -> set[str]:
    """The lower-cased names of the first non-blank line, when it reads as a CSV header."""
    text = head.removeprefix(b"\xef\xbb\xbf")[:8192].decode("utf-8", errors="replace")
    for line in text.splitlines():
        if line.strip():
            return {name.strip().strip('"').strip().lower() for name in line.split(",")}
    return set()


def _is_transactions_csv(names: set[str]) -> bool:
    return _CSV_REQUIRED <= names and bool(_CSV_PAYOUT_COLUMNS & names)


def identify(head: bytes, path: str = "") -> bool:
    """Shopify Admin API JSON (payouts, balance transactions, or the order files it refuses),
    or the Shopify Payments transactions CSV export (by its header)."""
    if _is_transactions_csv(_csv_header_names(head)):
        return True
    text = json_head(head)
    if text is None:
        return False
    first_key = re.match(r'\s*\{\s*"([^"]+)"\s*:', text)
    if first_key:
        return first_key.group(1) in _TOP_LEVEL_KEYS
    # a bare list: Shopify order transactions (refused with the reason by read)
    return text.startswith("[") and '"gateway"' in text and '"order_id"' in text


def _refuse(doc: JsonDocument, what: str) -> FeedFormatError:
    return FeedFormatError(doc.path, f"is {what}, not a Shopify Payments payout or balance transactions file; {_HINT}")


def _payout_line(obj: dict[str, Any], currency: str, notes: list[str]) -> dict[str, Any]:
    amount = major_to_minor(obj.get("amount"), currency, "amount")
    summary = obj.get("summary")
    if isinstance(summary, dict):
        total = 0
        for part in _SUMMARY_PARTS:
            gross = summary.get(f"{part}_gross_amount", "0")
            fee = summary.get(f"{part}_fee_amount", "0")
            total += major_to_minor(gross, currency, f"summary {part} gross") - major_to_minor(
                fee, currency, f"summary {part} fee"
            )
        if total != amount:
            notes.append(
                f"payout {obj.get('id')}: its summary (gross - fee per category) gives "
                f"{format_minor(total, currency)} "
                f"but the amount is {obj.get('amount')} {currency}"
            )
    return {
        "payout_id": text_or_none(obj.get("id")),
        "category": "payout",
        "gross_minor": -amount,
        "fee_minor": 0,
        "net_minor": -amount,
        "available_on": date_from_iso(obj.get("date"), "date"),
        "created": None,
        "source_id": None,
        "order_id": None,
        "description": f"Shopify Payments payout ({obj.get('status', 'unknown status')})",
        "attributes": attributes_json(obj, {"id", "amount", "currency", "date"}),
    }


def _transaction_line(obj: dict[str, Any], currency: str) -> dict[str, Any]:
    gross = major_to_minor(obj.get("amount"), currency, "amount")
    fee = major_to_minor(obj.get("fee", "0"), currency, "fee")
    net = major_to_minor(obj.get("net"), currency, "net")
    if gross - fee != net:
        raise PrecisionError(
            f"amount - fee != net ({obj.get('amount')} - {obj.get('fee')} != {obj.get('net')}); "
            "Shopify reports net = amount - fee"
        )
    kind = str(obj.get("type") or "")
    order_id, order_source = _order_of(obj)
    return {
        "payout_id": text_or_none(obj.get("payout_id")),
        "category": _CATEGORIES.get(kind, "other"),
        "gross_minor": gross,
        "fee_minor": fee,
        "net_minor": net,
        "available_on": None,
        "created": date_from_iso(obj.get("processed_at"), "processed_at"),
        "source_id": text_or_none(obj.get("source_id")),
        "order_id": order_id,
        "description": f"{kind} ({obj.get('source_type')})" if obj.get("source_type") else kind,
        "attributes": with_order_source(
            attributes_json(
                obj, {"id", "amount", "fee", "net", "currency", "payout_id", "processed_at",
                      "source_id"}
            ),
            order_source,
        ),
    }


#: where a balance transaction may carry the order's name (GraphQL-style exports and apps)
_ORDER_NAME_KEYS = ("order_name", "source_order_name")
_ORDER_OBJECTS = ("associated_order", "order", "source_order")


def _order_of(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    """The order id of a balance transaction and the key it came from.

    The order's name (``#1001``) comes first: it is how the shop, its customers and its books
    call the order, while ``source_order_id`` is Shopify's internal number for it (450789469)
    that a ledger rarely holds. Otherwise the key that names an order id most specifically
    (``source_order_id``).
    """
    for key in _ORDER_NAME_KEYS:
        value = obj.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip(), key
    for key in _ORDER_OBJECTS:
        inner = obj.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("name"), str) and inner["name"].strip():
            return inner["name"].strip(), f"{key}.name"
    keys = {k: v for k, v in obj.items() if k not in ("id", "source_id", "payout_id")}
    return find_order_id([("", keys)])


def read(path: str | PathLike[str], side: str = "processor", **options) -> FeedResult:
    """Read Shopify Payments payouts or balance transactions JSON, or the admin's transactions
    CSV export, into payout lines.

    ``source_line`` is the line of each JSON object's ``"id"``, or the CSV row's line.

    Raises
    ------
    FeedFormatError
        Not JSON, or Shopify JSON of another kind (order, refund, tender transactions, order
        transactions): the message says what the file is and what to export instead.
    """
    if side != "processor":
        raise FeedFormatError(str(path), f"a Shopify Payments export is a processor file, not {side}")
    if options:
        raise FeedFormatError(str(path), f"the Shopify reader takes no options ({', '.join(options)})")
    if json_head(_head(str(path))) is None:
        return _read_transactions_csv(str(path))
    doc = load_json(path, "Shopify Payments JSON")
    data = doc.data
    if isinstance(data, list):
        if data and isinstance(data[0], dict) and ("kind" in data[0] or "gateway" in data[0]):
            raise _refuse(doc, "a list of Shopify order transactions (authorizations, captures)")
        raise _refuse(doc, "a bare JSON list")
    if not isinstance(data, dict):
        raise _refuse(doc, "JSON that is not an object")
    if "payout" in data and isinstance(data["payout"], dict):
        items, kind = [data["payout"]], "payout"
    elif isinstance(data.get("payouts"), list):
        items, kind = data["payouts"], "payout"
    elif isinstance(data.get("transactions"), list):
        items, kind = data["transactions"], "transaction"
        first = next((t for t in items if isinstance(t, dict)), {})
        if items and "payout_id" not in first and ("kind" in first or "gateway" in first):
            raise _refuse(doc, "a list of Shopify order transactions (authorizations, captures)")
    else:
        for key, what in _NOT_PAYOUTS.items():
            if key in data:
                raise _refuse(doc, what)
        raise _refuse(doc, "JSON without 'payout', 'payouts' or 'transactions'")
    lines: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    notes: list[str] = []
    seen: dict[str, int] = {}
    for position, obj in enumerate(items, start=1):
        line = doc.line_of("id", obj["id"]) if isinstance(obj, dict) and "id" in obj else position
        try:
            if not isinstance(obj, dict):
                raise PrecisionError("list item is not a JSON object")
            line_id = text_or_none(obj.get("id"))
            if not line_id:
                raise PrecisionError("id is missing")
            if line_id in seen:
                raise PrecisionError(f"id {line_id} already appears on line {seen[line_id]}")
            currency = check_currency(obj.get("currency"))
            row = _payout_line(obj, currency, notes) if kind == "payout" else _transaction_line(obj, currency)
        except PrecisionError as error:
            rejects.append(reject_row(doc.path, line, "", str(error), doc.raw(obj)))
            continue
        seen[line_id] = line
        if kind == "payout":  # payout and balance-transaction ids are separate sequences
            line_id = f"payout:{line_id}"
        lines.append({**row, "processor": "shopify", "line_id": line_id, "currency": currency,
                      "source_file": doc.path, "source_line": line})
    return payout_result(FORMAT, lines_frame(lines), rejects_frame(rejects), notes=notes)


# --------------------------------------------------------------------------------------------
# Transactions CSV (Shopify admin > Finance > Payouts > Export)
# --------------------------------------------------------------------------------------------


def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(64 * 1024)
    except OSError as error:
        raise FeedFormatError(path, f"cannot be read ({error.strerror or error})") from None


def _csv_date(text: str, label: str):
    """The date part of "2026-03-02 10:15:32 -0800" (or a bare date), as written."""
    if not text.strip():
        return None
    match = _CSV_DATE.match(text)
    if not match:
        raise PrecisionError(f"{label} {text!r} is not a date (YYYY-MM-DD[ HH:MM:SS ±HHMM])")
    return date_from_iso(match.group(1), label)


def _read_transactions_csv(path: str) -> FeedResult:
    table = read_raw_table(path, what="Shopify Payments transactions CSV")
    names = [name.strip() for name in table.header]
    index: dict[str, str] = {}
    for position, name in enumerate(names):
        index.setdefault(name.lower(), f"c{position}")
    if not _is_transactions_csv(set(index)):
        missing = sorted(_CSV_REQUIRED - set(index))
        what = (f"lacks the column(s) {', '.join(missing)}" if missing
                else "has no Payout Status / Payout Date / Payout ID column")
        raise FeedFormatError(
            path,
            f"is a CSV but not a Shopify Payments transactions export: it {what}; export it from "
            "the Shopify admin (Finance > Payouts > Export), or give the API JSON "
            "(shopify_payments/balance/transactions.json)",
        )

    def get(row: dict[str, Any], key: str) -> str:
        return (row[index[key]] or "").strip() if key in index else ""

    lines: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    fingerprints: dict[str, int] = {}
    for row in table.rows.iter_rows(named=True):
        line = int(row["source_line"])
        try:
            currency = check_currency(get(row, "currency"), "Currency")
            gross = major_to_minor(get(row, "amount"), currency, "Amount")
            fee = major_to_minor(get(row, "fee") or "0", currency, "Fee")
            net = major_to_minor(get(row, "net"), currency, "Net")
            if gross - fee != net:
                raise PrecisionError(
                    f"Amount - Fee != Net ({get(row, 'amount')} - {get(row, 'fee')} != "
                    f"{get(row, 'net')} {currency}); Shopify reports Net = Amount - Fee"
                )
            created = _csv_date(get(row, "transaction date"), "Transaction Date")
            if created is None:
                raise PrecisionError("Transaction Date is missing")
            available = _csv_date(get(row, "available on"), "Available On") or _csv_date(
                get(row, "payout date"), "Payout Date"
            )
        except PrecisionError as error:
            rejects.append(reject_row(path, line, "", str(error), row["raw"]))
            continue
        kind = get(row, "type")
        order_id = get(row, "order") or None
        # what a row says about the movement itself: the payout columns are left out, as a
        # pending row exported again once paid out must keep its id
        parts = [get(row, k) for k in ("transaction date", "type", "order", "amount", "fee", "net",
                                       "currency", "checkout")]
        extras = {
            (name or f"(column {position + 1})"): row[f"c{position}"]
            for position, name in enumerate(names)
            if name.lower() not in _CSV_USED and (name or (row[f"c{position}"] or "").strip())
        }
        lines.append({
            "processor": "shopify",
            "payout_id": get(row, "payout id") or None,
            "line_id": next_fingerprint(parts, fingerprints),
            "category": _CATEGORIES.get(kind.lower().replace(" ", "_"), "other"),
            "currency": currency,
            "gross_minor": gross,
            "fee_minor": fee,
            "net_minor": net,
            "available_on": available,
            "created": created,
            "source_id": None,
            "order_id": order_id,
            "description": " - ".join(p for p in (kind, order_id, get(row, "card brand")) if p),
            "attributes": with_order_source(
                json.dumps(extras, ensure_ascii=False, separators=(",", ":")),
                "Order" if order_id else None,
            ),
            "source_file": path,
            "source_line": line,
        })
    rejects.extend(table.rejects.to_dicts())
    return payout_result(FORMAT, lines_frame(lines), rejects_frame(rejects))
