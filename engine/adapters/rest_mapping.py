"""Adapters (the last stage): how a write item becomes an accounting platform's requests.

This module is the one place that knows the platform's JSON. :class:`XeroMapping` shapes
items on Xero's Accounting API (``/api.xro/2.0``); a QuickBooks Online shape (a ``Payment``
with ``LinkedTxn`` to its invoices, a ``JournalEntry``, the ``requestid`` query parameter for
idempotency, ``SyncToken`` for concurrency) would be a second class with the same methods
(:class:`PlatformMapping`), and the client, the outbox and the adapter would not change.

Xero has no endpoint that reconciles a bank statement line, so writing a match back means:

- **payments**: the cash of the match's bank lines is applied to its ledger items
  (:func:`allocate`): one ``Payment`` per bank line and invoice, or one ``BatchPayment`` when a
  bank line pays several invoices; an item of the opposite sign (a refund inside a payout) is
  a credit note, paid by its own ``Payment``;
- **adjustments**: the match's balanced journal lines as one ``ManualJournal`` per currency
  (``LineAmount`` positive for a debit, negative for a credit, as Xero wants them);
- **reversal** (an undo after write-back): Xero cannot un-apply a payment, it deletes it
  (``POST /Payments/{PaymentID}`` with ``Status: DELETED``; a batch payment through
  ``POST /BatchPayments`` with its ``BatchPaymentID``), which reopens the invoices; the
  manual journal that was posted is answered by a reversing manual journal (every
  ``LineAmount`` negated). On recon's side nothing is deleted: the reversal is a new item
  with its own key, and the outbox keeps both.

Amounts stay exact: integer minor units become :class:`~decimal.Decimal` and are written as
JSON numbers by :func:`dumps_exact` (never through a float).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from engine.adapters.base import MatchLine, WriteItem
from models.money import from_minor

__all__ = [
    "Allocation", "Element", "Outcome", "RequestSpec", "MappingError", "PlatformMapping",
    "XeroMapping", "allocate", "dumps_exact", "loads_exact",
]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NUMBER_MARK = "\u0000recon-number:"


class MappingError(ValueError):
    """An item the platform's shape cannot express (the item fails with this reason)."""


@dataclass(frozen=True, slots=True)
class Allocation:
    """Cash of one bank line applied to one ledger item (``amount_minor`` in the item's
    currency, always positive); ``credit_note`` when the item has the bank line's opposite
    sign (a refund inside a payout)."""

    bank: MatchLine
    ledger: MatchLine
    amount_minor: int
    credit_note: bool = False


@dataclass(frozen=True, slots=True)
class Element:
    """One element of a platform request, owned by one item.

    ``part`` names it inside its item and is stable across runs (``payment:BANK>INV``,
    ``batch_payment:BANK``, ``journal:HKD``, ``delete:payment:<PaymentID>``): with the item's
    key it makes the request's idempotency key. ``kind`` says which request carries it.
    """

    part: str
    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """A request ready to record and send."""

    method: str
    path: str
    params: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the platform did with one element: ``done`` with its ids, or ``failed``."""

    state: str
    external_ids: dict[str, str] = field(default_factory=dict)
    reason: str = ""


class PlatformMapping(Protocol):
    """What the adapter needs from a platform's shape."""

    name: str

    def plan_write(self, item: WriteItem) -> list[Element]: ...

    def plan_reverse(self, item: WriteItem, written: Sequence[tuple[str, dict, dict]]) -> list[Element]: ...

    def batch_limit(self, kind: str, configured: int) -> int: ...

    def request(self, kind: str, payloads: Sequence[dict]) -> RequestSpec: ...

    def idempotency(self, key: str) -> tuple[dict[str, str], dict[str, str]]: ...

    def outcomes(self, kind: str, count: int, status: int, body: Any) -> list[Outcome]: ...


def dumps_exact(value: Any) -> str:
    """JSON text with every :class:`~decimal.Decimal` written as a plain JSON number.

    Examples
    --------
    >>> dumps_exact({"Amount": Decimal("1234.50"), "Reference": "陳大文"})
    '{"Amount": 1234.50, "Reference": "陳大文"}'
    """

    def mark(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return f"{_NUMBER_MARK}{obj:f}"
        raise TypeError(f"cannot write {type(obj).__name__} as JSON")

    text = json.dumps(value, ensure_ascii=False, default=mark)
    return re.sub(r'"\\u0000recon-number:(-?[0-9.]+)"', r"\1", text)


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as an exact :class:`~decimal.Decimal`."""
    return json.loads(text, parse_float=Decimal)


def allocate(item: WriteItem) -> list[Allocation]:
    """Apply the cash of ``item``'s bank lines to its ledger items.

    Bank lines are taken in date order, ledger items in the item's order, each bank line's
    cash filling items until it is used up. The rule for what an item receives:

    - when the match carries a journal (fees, FX difference, bank charge, short payment), each
      item is settled in full: the journal explains the difference between the cash and the
      items, so the last bank line applies what the others did not cover;
    - without a journal, the cash is applied as far as it goes: an item the bank lines pay in
      part (instalments) keeps the rest open;
    - an item in another currency than the bank line (a foreign-currency invoice) is paid in
      full, in its own currency, by the bank line at hand;
    - an item of the bank lines' opposite sign (a refund inside a payout) is a credit note,
      paid in full by the first bank line, whose cash it adds to.

    Raises
    ------
    MappingError
        The bank lines are in several currencies or of both signs.
    """
    banks = sorted((line for line in item.lines if line.side == "bank"), key=lambda b: (b.date, b.line_id))
    ledgers = [line for line in item.lines if line.side == "ledger"]
    if not banks or not ledgers:
        return []
    if len({b.currency for b in banks}) > 1:
        raise MappingError("the bank lines are in several currencies; write them as separate matches")
    signs = {b.amount_minor > 0 for b in banks if b.amount_minor != 0}
    if len(signs) > 1:
        raise MappingError("the bank lines mix money in and money out; write them as separate matches")
    money_in = signs.pop() if signs else True
    bank_currency = banks[0].currency
    cash = [abs(b.amount_minor) for b in banks]
    allocations: list[Allocation] = []

    for ledger in ledgers:
        if ledger.amount_minor != 0 and (ledger.amount_minor > 0) != money_in:
            allocations.append(Allocation(banks[0], ledger, abs(ledger.amount_minor), credit_note=True))
            if ledger.currency == bank_currency:
                cash[0] += abs(ledger.amount_minor)

    index = 0
    for ledger in ledgers:
        if ledger.amount_minor == 0 or (ledger.amount_minor > 0) != money_in:
            continue
        need = abs(ledger.amount_minor)
        if ledger.currency != bank_currency:
            allocations.append(Allocation(banks[min(index, len(banks) - 1)], ledger, need))
            continue
        applied: list[Allocation] = []
        while need > 0 and index < len(banks):
            take = min(need, cash[index])
            if take > 0:
                applied.append(Allocation(banks[index], ledger, take))
                cash[index] -= take
                need -= take
            if cash[index] == 0:
                index += 1
        if need > 0 and item.journal:
            last = applied.pop() if applied else Allocation(banks[-1], ledger, 0)
            applied.append(Allocation(last.bank, ledger, last.amount_minor + need))
        allocations.extend(applied)
    return allocations


def _document(line: MatchLine, credit_note: bool) -> tuple[str, dict[str, str]]:
    """The ``Invoice`` / ``CreditNote`` reference of a ledger item: its GUID or its number."""
    if credit_note:
        key = "CreditNoteID" if _GUID.match(line.line_id) else "CreditNoteNumber"
        return "CreditNote", {key: line.line_id}
    key = "InvoiceID" if _GUID.match(line.line_id) else "InvoiceNumber"
    return "Invoice", {key: line.line_id}


def _reference(bank: MatchLine) -> str:
    """What Xero shows beside a payment: the bank line's reference, else its id (255 max)."""
    return (bank.reference or bank.line_id)[:255]


def _validation_messages(element: Any) -> list[str]:
    if not isinstance(element, dict):
        return []
    messages = [str(e.get("Message", "")) for e in element.get("ValidationErrors") or [] if isinstance(e, dict)]
    for payment in element.get("Payments") or []:
        messages.extend(_validation_messages(payment))
    return [m for m in messages if m]


class XeroMapping:
    """Write items shaped on Xero's Accounting API (see the module docstring).

    Parameters
    ----------
    bank_account
        The ``Code`` of the Xero bank account the payments go through (e.g. ``"090"``).
    base_currency
        The organisation's base currency, when known: Xero posts manual journals in the base
        currency only, so a journal in another currency is refused here instead of being
        booked at the wrong amount.
    """

    name = "xero"
    #: kind -> (method, path, collection): the batchable requests carry a list of elements
    _COLLECTIONS = {
        "payments": ("PUT", "/Payments", "Payments"),
        "batch_payments": ("PUT", "/BatchPayments", "BatchPayments"),
        "manual_journals": ("PUT", "/ManualJournals", "ManualJournals"),
    }
    #: Xero's advice: up to 50 elements in one PUT
    MAX_ELEMENTS = 50

    def __init__(self, bank_account: str, base_currency: str | None = None):
        self.bank_account = bank_account
        self.base_currency = base_currency

    # -- planning --------------------------------------------------------------------------
    def plan_write(self, item: WriteItem) -> list[Element]:
        """The payments, batch payments and manual journals that write ``item``.

        Raises
        ------
        MappingError
            The item cannot be expressed in Xero's shape (the message says why).
        """
        elements: list[Element] = []
        by_bank: dict[str, list[Allocation]] = {}
        for allocation in allocate(item):
            if allocation.credit_note:
                elements.append(self._payment(allocation))
            else:
                by_bank.setdefault(allocation.bank.line_id, []).append(allocation)
        for bank_id, allocations in by_bank.items():
            if len(allocations) == 1:
                elements.append(self._payment(allocations[0]))
                continue
            bank = allocations[0].bank
            elements.append(Element(
                part=f"batch_payment:{bank_id}",
                kind="batch_payments",
                payload={
                    "Account": {"Code": self.bank_account},
                    "Date": bank.date.isoformat(),
                    "Reference": _reference(bank),
                    "Payments": [
                        {
                            _document(a.ledger, False)[0]: _document(a.ledger, False)[1],
                            "Amount": from_minor(a.amount_minor, a.ledger.currency),
                        }
                        for a in allocations
                    ],
                },
            ))
        elements.extend(self._journals(item))
        return elements

    def _payment(self, allocation: Allocation) -> Element:
        field_name, document = _document(allocation.ledger, allocation.credit_note)
        return Element(
            part=f"payment:{allocation.bank.line_id}>{allocation.ledger.line_id}",
            kind="payments",
            payload={
                field_name: document,
                "Account": {"Code": self.bank_account},
                "Date": allocation.bank.date.isoformat(),
                "Amount": from_minor(allocation.amount_minor, allocation.ledger.currency),
                "Reference": _reference(allocation.bank),
            },
        )

    def _journals(self, item: WriteItem) -> list[Element]:
        by_currency: dict[str, list] = {}
        for line in item.journal:
            by_currency.setdefault(line.currency, []).append(line)
        elements = []
        for currency, lines in by_currency.items():
            if self.base_currency and currency != self.base_currency:
                raise MappingError(
                    f"journal lines in {currency}, but Xero posts manual journals in the "
                    f"organisation's base currency ({self.base_currency}) only")
            total = sum(line.debit_minor - line.credit_minor for line in lines)
            if total != 0:
                raise MappingError(f"the {currency} journal does not balance (debits - credits = {total} minor units)")
            narration = f"recon {item.match_id}" + (f": {item.memo}" if item.memo else "")
            elements.append(Element(
                part=f"journal:{currency}",
                kind="manual_journals",
                payload={
                    "Narration": narration[:500],
                    "Date": min(line.date for line in lines).isoformat(),
                    "Status": "POSTED",
                    "LineAmountTypes": "NoTax",
                    "JournalLines": [
                        {
                            "LineAmount": from_minor(line.debit_minor - line.credit_minor, currency),
                            "AccountCode": line.account,
                            "Description": line.memo[:4000] if line.memo else narration[:4000],
                        }
                        for line in lines
                    ],
                },
            ))
        return elements

    def plan_reverse(self, item: WriteItem, written: Sequence[tuple[str, dict, dict]]) -> list[Element]:
        """Reverse what an earlier write of the same match put on Xero.

        Parameters
        ----------
        item
            The reverse item (``action="reverse"``); its memo (the reviewer's reason) goes on
            the reversing journal, its journal's date (else today) dates it.
        written
            ``(part, payload, external_ids)`` of each element the write put on Xero.
        """
        elements: list[Element] = []
        on = min((line.date for line in item.journal), default=date.today()).isoformat()
        for part, payload, ids in written:
            if part.startswith("payment:"):
                payment_id = ids["PaymentID"]
                elements.append(Element(f"delete:payment:{payment_id}", "delete_payment",
                                        {"PaymentID": payment_id, "Status": "DELETED"}))
            elif part.startswith("batch_payment:"):
                batch_id = ids["BatchPaymentID"]
                elements.append(Element(f"delete:batch_payment:{batch_id}", "delete_batch_payment",
                                        {"BatchPaymentID": batch_id, "Status": "DELETED"}))
            elif part.startswith("journal:"):
                narration = f"reversal of recon {item.match_id}" + (f": {item.memo}" if item.memo else "")
                elements.append(Element(part, "manual_journals", {
                    **payload,
                    "Narration": narration[:500],
                    "Date": on,
                    "JournalLines": [
                        {**line, "LineAmount": -Decimal(line["LineAmount"])}
                        for line in payload["JournalLines"]
                    ],
                }))
        return elements

    # -- requests --------------------------------------------------------------------------
    def batch_limit(self, kind: str, configured: int) -> int:
        """How many elements of ``kind`` one request may carry."""
        if kind in self._COLLECTIONS:
            return max(1, min(configured, self.MAX_ELEMENTS))
        return 1

    def request(self, kind: str, payloads: Sequence[dict]) -> RequestSpec:
        """The request carrying ``payloads`` (elements of one ``kind``).

        ``summarizeErrors=false`` makes Xero answer element by element, so one bad payment
        fails alone while the others of its request are written.
        """
        if kind in self._COLLECTIONS:
            method, path, collection = self._COLLECTIONS[kind]
            return RequestSpec(method, path, {"summarizeErrors": "false"}, {collection: list(payloads)})
        (payload,) = payloads
        if kind == "delete_payment":
            return RequestSpec("POST", f"/Payments/{payload['PaymentID']}", {}, {"Status": "DELETED"})
        if kind == "delete_batch_payment":
            return RequestSpec("POST", "/BatchPayments", {}, dict(payload))
        raise ValueError(f"unknown request kind {kind!r}")

    def idempotency(self, key: str) -> tuple[dict[str, str], dict[str, str]]:
        """Headers and query parameters that carry the idempotency key (Xero: a header)."""
        return {"Idempotency-Key": key}, {}

    def outcomes(self, kind: str, count: int, status: int, body: Any) -> list[Outcome]:
        """Read Xero's answer to a request of ``count`` elements (status 200 or a terminal 4xx)."""
        collection = {"delete_payment": "Payments", "delete_batch_payment": "BatchPayments"}.get(kind)
        collection = collection or self._COLLECTIONS[kind][2]
        if status >= 400:
            body = body if isinstance(body, dict) else {}
            message = body.get("Message") or body.get("Detail") or body.get("Title")
            elements = body.get("Elements")
            outcomes = []
            for index in range(count):
                details = _validation_messages(elements[index]) if elements and index < len(elements) else []
                reason = f"Xero answered {status}: " + "; ".join(details or [str(message or "no message")])
                outcomes.append(Outcome("failed", reason=reason))
            return outcomes
        returned = body.get(collection) if isinstance(body, dict) else None
        if not isinstance(returned, list) or len(returned) < count:
            return [Outcome("failed", reason=f"Xero answered {status} without the {count} {collection} sent")] * count
        outcomes = []
        for element in returned[:count]:
            problems = _validation_messages(element)
            if element.get("StatusAttributeString") == "ERROR" or problems:
                outcomes.append(Outcome("failed", reason="Xero refused it: " + "; ".join(problems or ["validation error"])))
                continue
            ids = {name: str(element[name]) for name in ("PaymentID", "BatchPaymentID", "ManualJournalID") if element.get(name)}
            if kind == "batch_payments":
                for index, payment in enumerate(element.get("Payments") or []):
                    if isinstance(payment, dict) and payment.get("PaymentID"):
                        ids[f"PaymentID.{index}"] = str(payment["PaymentID"])
            outcomes.append(Outcome("done", external_ids=ids))
        return outcomes
