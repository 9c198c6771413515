"""Feeds stage: Shopify Payments JSON -> canonical payout lines.

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

Amounts are decimal strings in major units and are converted exactly. Orders, refunds, order
transactions and tender transactions are Shopify JSON too, but they record what customers paid
per order, not what Shopify Payments paid out: such a file is refused with that reason.
"""

from __future__ import annotations

import re
from os import PathLike
from typing import Any

from feeds._common import reject_row
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


def identify(head: bytes, path: str = "") -> bool:
    """Shopify Admin API JSON (payouts, balance transactions, or the order files it refuses)."""
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
    """Read Shopify Payments payouts or balance transactions JSON into payout lines.

    ``source_line`` is the line of each object's ``"id"``.

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
