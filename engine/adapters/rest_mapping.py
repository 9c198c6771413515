"""Adapters (the last stage): how a write item becomes an accounting platform's requests.

This module is the one place that knows the platforms' JSON. :class:`XeroMapping` shapes
items on Xero's Accounting API (``/api.xro/2.0``), :class:`QboMapping` on QuickBooks Online's
(``/v3/company/{realmId}``: a ``Payment`` with ``LinkedTxn`` to its invoices, a
``JournalEntry``, the ``requestid`` query parameter for idempotency, ``SyncToken`` for
concurrency); both have the methods of :class:`PlatformMapping`, and the client, the outbox and
the adapter are the same for both.

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

QuickBooks Online refers to everything by its own ids, so its mapping first looks up what the
items name (:meth:`QboMapping.prepare`, read-only ``GET`` requests): the invoices, bills and
credit notes by their numbers (``DocNumber``) with their customer or vendor, and the accounts of
the journal lines by number. Its reversal reads each payment first (``GET .../payment/{Id}``):
a payment whose ``SyncToken`` moved since recon wrote it was changed by someone in QuickBooks,
and is reported as a conflict instead of being deleted.

Amounts stay exact: integer minor units become :class:`~decimal.Decimal` and are written as
JSON numbers by :func:`dumps_exact` (never through a float).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from engine.adapters.base import MatchLine, WriteItem
from models.errors import TerminalAdapterError
from models.money import from_minor

__all__ = [
    "Allocation", "Element", "Outcome", "RequestSpec", "MappingError", "ConflictError", "PlatformMapping",
    "XeroMapping", "QboMapping", "allocate", "dumps_exact", "loads_exact",
]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NUMBER_MARK = "\u0000recon-number:"


class MappingError(ValueError):
    """An item the platform's shape cannot express (the item fails with this reason)."""


class ConflictError(MappingError):
    """What recon would change was changed on the platform by someone else since recon wrote
    it: the item is a conflict, reported and not overwritten."""


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
    """What the platform did with one element: ``done`` with its ids, ``failed``, or
    ``conflict`` (refused because someone else changed the record: not overwritten)."""

    state: str
    external_ids: dict[str, str] = field(default_factory=dict)
    reason: str = ""


#: ``await lookup(path, params)``: a read-only GET on the platform, answering (status, body)
Lookup = Callable[[str, dict[str, str]], Awaitable[tuple[int, Any]]]


class PlatformMapping(Protocol):
    """What the adapter needs from a platform's shape."""

    name: str
    #: the platform's name in messages ("Xero", "QuickBooks")
    label: str
    #: whether :meth:`prepare` must look things up on the platform before planning
    needs_lookup: bool

    def kind_of(self, part: str) -> str | None: ...

    def plan_write(self, item: WriteItem) -> list[Element]: ...

    def plan_reverse(self, item: WriteItem, written: Sequence[tuple[str, dict, dict]]) -> list[Element]: ...

    async def prepare(self, lookup: Lookup, writes: Sequence[WriteItem],
                      reverses: Sequence[tuple[WriteItem, Sequence[tuple[str, dict, dict]]]]) -> None: ...

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
    label = "Xero"
    needs_lookup = False
    #: part prefix -> kind, for the elements an earlier call recorded
    _PART_KINDS = (("delete:payment:", "delete_payment"), ("delete:batch_payment:", "delete_batch_payment"),
                   ("payment:", "payments"), ("batch_payment:", "batch_payments"), ("journal:", "manual_journals"))
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
    def kind_of(self, part: str) -> str | None:
        """The request kind of an element named ``part`` (None: not one of Xero's)."""
        return next((kind for prefix, kind in self._PART_KINDS if part.startswith(prefix)), None)

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

    async def prepare(self, lookup: Lookup, writes: Sequence[WriteItem],
                      reverses: Sequence[tuple[WriteItem, Sequence[tuple[str, dict, dict]]]]) -> None:
        """Nothing to look up: Xero takes invoice numbers and account codes as they are."""

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


# -- QuickBooks Online ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Document:
    """An invoice, bill or credit note as QuickBooks holds it."""

    txn_type: str
    txn_id: str
    party: str  # the customer's or vendor's Id
    currency: str | None


#: QuickBooks' document type of a ledger item: (money in, credit note) -> TxnType
_DOCUMENT_TYPES = {(True, False): "Invoice", (True, True): "CreditMemo",
                   (False, False): "Bill", (False, True): "VendorCredit"}
#: the party reference each document type carries
_PARTY_REFS = {"Invoice": "CustomerRef", "CreditMemo": "CustomerRef", "Bill": "VendorRef", "VendorCredit": "VendorRef"}
#: kind -> (path, entity in the answer)
_QBO_KINDS = {
    "payment": ("/payment", "Payment"),
    "bill_payment": ("/billpayment", "BillPayment"),
    "journal_entry": ("/journalentry", "JournalEntry"),
    "delete_payment": ("/payment", "Payment"),
    "delete_bill_payment": ("/billpayment", "BillPayment"),
}
#: QuickBooks' error code for "Stale Object Error" (the SyncToken sent is not the current one)
_STALE_OBJECT = "5010"
#: QuickBooks' error code for "Object Not Found" (a deleted or unknown entity)
_NOT_FOUND = "610"
#: documents named in one query (the query travels in the URL)
_QUERY_CHUNK = 30
_QUERY_PAGE = 1000


def _quoted(text: str) -> str:
    """A string literal of QuickBooks' query language (a quote escaped with a backslash)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fault(body: Any) -> tuple[str, list[str]]:
    """The message and error codes of a QuickBooks error answer (``Fault``, or ``fault`` on a 401)."""
    if not isinstance(body, dict):
        return "no message", []
    fault = body.get("Fault") or body.get("fault") or {}
    errors = (fault.get("Error") or fault.get("error") or []) if isinstance(fault, dict) else []
    texts, codes = [], []
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        texts.append(str(error.get("Detail") or error.get("detail") or error.get("Message") or error.get("message") or ""))
        codes.append(str(error.get("code", "")))
    message = "; ".join(t for t in texts if t) or str(body.get("Message") or "no message")
    return message, codes


class QboMapping:
    """Write items shaped on the QuickBooks Online Accounting API (see the module docstring).

    - **payments**: one ``Payment`` (money in; a ``BillPayment`` for money out) per bank line
      and customer (vendor), its ``Line[]`` linking each invoice (bill) it pays
      (``LinkedTxn: [{TxnId, TxnType: "Invoice"}]``) and any credit note applied with it
      (``CreditMemo``, ``VendorCredit``); ``TotalAmt`` is the documents paid less the credit
      notes, deposited to (paid from) the bank account; ``POST /payment?requestid=KEY``;
    - **adjustments**: one ``JournalEntry`` per currency, each line a ``Debit`` or ``Credit``
      ``PostingType`` on its account, the customer (vendor) named on a receivable (payable) line
      as QuickBooks requires;
    - **reversal**: the payment is deleted (``POST /payment?operation=delete`` with its ``Id``
      and ``SyncToken``) after a read shows it unchanged since recon wrote it (a moved
      ``SyncToken`` is a conflict), and a reversing journal entry (postings swapped) is posted.

    Parameters
    ----------
    bank_account
        The number (``AcctNum``) of the bank account the payments go through, or its name.
    accounts
        Account number -> QuickBooks account ``Id``, for accounts that have no number in
        QuickBooks (the rest are looked up by number, then by name).
    minor_version
        Sent as ``minorversion`` (QuickBooks answers in minor version 75 at least).
    """

    name = "qbo"
    label = "QuickBooks"
    needs_lookup = True
    _PART_KINDS = (("delete:payment:", "delete_payment"), ("delete:bill_payment:", "delete_bill_payment"),
                   ("payment:", "payment"), ("bill_payment:", "bill_payment"), ("journal:", "journal_entry"))
    #: QuickBooks' limit on a requestid
    REQUEST_ID_LENGTH = 50

    def __init__(self, bank_account: str, accounts: dict[str, str] | None = None, minor_version: str = "75"):
        self.bank_account = bank_account
        self.accounts = dict(accounts or {})
        self.minor_version = minor_version
        self._documents: dict[tuple[str, str], _Document | str] = {}
        self._chart: dict[str, tuple[str, str]] | None = None  # number or name -> (Id, AccountType)
        self._current: dict[tuple[str, str], str | None] = {}  # (entity, Id) -> SyncToken, None: gone

    # -- looking up ----------------------------------------------------------------------
    async def prepare(self, lookup: Lookup, writes: Sequence[WriteItem],
                      reverses: Sequence[tuple[WriteItem, Sequence[tuple[str, dict, dict]]]]) -> None:
        """Look up what the items name: their documents (by number), the chart of accounts
        (once), and, for a reversal, each payment's current ``SyncToken``.

        Raises
        ------
        TerminalAdapterError
            QuickBooks refused a look-up (the token, the realm, a malformed query).
        """
        wanted: dict[str, set[str]] = {}
        for item in writes:
            try:
                allocations = allocate(item)
            except MappingError:
                continue  # plan_write reports it
            for allocation in allocations:
                txn_type = _DOCUMENT_TYPES[(_money_in(allocation), allocation.credit_note)]
                if (txn_type, allocation.ledger.line_id) not in self._documents:
                    wanted.setdefault(txn_type, set()).add(allocation.ledger.line_id)
        for txn_type, numbers in wanted.items():
            ordered = sorted(numbers)
            for start in range(0, len(ordered), _QUERY_CHUNK):
                chunk = ordered[start:start + _QUERY_CHUNK]
                found = await self._query(lookup, f"select * from {txn_type} where DocNumber in "
                                                  f"({', '.join(_quoted(n) for n in chunk)})", txn_type)
                by_number: dict[str, list[dict]] = {}
                for row in found:
                    by_number.setdefault(str(row.get("DocNumber", "")), []).append(row)
                for number in chunk:
                    rows = by_number.get(number, [])
                    if len(rows) == 1:
                        row = rows[0]
                        party = (row.get(_PARTY_REFS[txn_type]) or {}).get("value")
                        self._documents[(txn_type, number)] = _Document(
                            txn_type, str(row["Id"]), str(party), (row.get("CurrencyRef") or {}).get("value"))
                    elif rows:
                        self._documents[(txn_type, number)] = (
                            f"QuickBooks holds {len(rows)} {txn_type} documents numbered {number} "
                            f"(Ids {', '.join(str(r['Id']) for r in rows)}): write this match by hand")
                    else:
                        self._documents[(txn_type, number)] = f"QuickBooks holds no {txn_type} numbered {number}"
        if self._chart is None and writes:  # the bank account, and the journals' accounts
            rows, start = [], 1
            while True:
                page = await self._query(lookup, f"select * from Account startposition {start} maxresults {_QUERY_PAGE}",
                                         "Account")
                rows.extend(page)
                if len(page) < _QUERY_PAGE:
                    break
                start += _QUERY_PAGE
            chart: dict[str, tuple[str, str]] = {}
            for row in rows:
                entry = (str(row["Id"]), str(row.get("AccountType", "")))
                if row.get("Name"):
                    chart.setdefault(str(row["Name"]), entry)
            for row in rows:  # a number wins over a name
                if row.get("AcctNum"):
                    chart[str(row["AcctNum"])] = (str(row["Id"]), str(row.get("AccountType", "")))
            self._chart = chart
        read: set[tuple[str, str]] = set()  # each payment read once a call, and afresh every call
        for _item, written in reverses:
            for part, _payload, ids in written:
                entity = "BillPayment" if part.startswith("bill_payment:") else "Payment"
                if not part.startswith(("payment:", "bill_payment:")) or (entity, ids.get("Id")) in read:
                    continue
                read.add((entity, ids["Id"]))
                path = _QBO_KINDS["bill_payment" if entity == "BillPayment" else "payment"][0]
                status, body = await lookup(f"{path}/{ids['Id']}", {"minorversion": self.minor_version})
                message, codes = _fault(body)
                if status == 200 and isinstance(body, dict) and isinstance(body.get(entity), dict):
                    self._current[(entity, ids["Id"])] = str(body[entity].get("SyncToken"))
                elif _NOT_FOUND in codes or status == 404:
                    self._current[(entity, ids["Id"])] = None
                else:
                    raise TerminalAdapterError(f"QuickBooks refused the read of {entity} {ids['Id']} ({status}): {message}")

    async def _query(self, lookup: Lookup, statement: str, entity: str) -> list[dict]:
        status, body = await lookup("/query", {"query": statement, "minorversion": self.minor_version})
        if status != 200:
            message, _codes = _fault(body)
            raise TerminalAdapterError(f"QuickBooks refused the look-up of {entity} ({status}): {message}")
        rows = ((body or {}).get("QueryResponse") or {}).get(entity) or []
        return [row for row in rows if isinstance(row, dict)]

    def _document(self, txn_type: str, number: str) -> _Document:
        found = self._documents.get((txn_type, number))
        if found is None:
            raise MappingError(f"{txn_type} {number} was not looked up in QuickBooks")
        if isinstance(found, str):
            raise MappingError(found)
        return found

    def _account(self, number: str) -> tuple[str, str]:
        """(Id, AccountType) of the account recon calls ``number``."""
        if number in self.accounts:
            known = (self._chart or {}).get(number)
            return self.accounts[number], known[1] if known and known[0] == self.accounts[number] else ""
        found = (self._chart or {}).get(number)
        if found is None:
            raise MappingError(f"QuickBooks has no account numbered or named {number!r}: give its Id in the "
                               f"settings' accounts (RECON_QBO_ACCOUNTS=\"{number}=ID\")")
        return found

    # -- planning --------------------------------------------------------------------------
    def kind_of(self, part: str) -> str | None:
        """The request kind of an element named ``part`` (None: not one of QuickBooks')."""
        return next((kind for prefix, kind in self._PART_KINDS if part.startswith(prefix)), None)

    def plan_write(self, item: WriteItem) -> list[Element]:
        """The payments (bill payments) and journal entries that write ``item``; needs
        :meth:`prepare` first.

        Raises
        ------
        MappingError
            A document or account QuickBooks does not hold, or a journal that does not balance.
        """
        groups: dict[tuple[str, bool, str, str], list[tuple[Allocation, _Document]]] = {}
        for allocation in allocate(item):
            money_in = _money_in(allocation)
            document = self._document(_DOCUMENT_TYPES[(money_in, allocation.credit_note)], allocation.ledger.line_id)
            key = (allocation.bank.line_id, money_in, document.party, allocation.ledger.currency)
            groups.setdefault(key, []).append((allocation, document))
        per_bank = {}
        for bank_id, *_rest in groups:
            per_bank[bank_id] = per_bank.get(bank_id, 0) + 1
        elements = []
        parties = set()
        for (bank_id, money_in, party, currency), paid in groups.items():
            parties.add((money_in, party))
            prefix = "payment" if money_in else "bill_payment"
            part = f"{prefix}:{bank_id}" if per_bank[bank_id] == 1 else f"{prefix}:{bank_id}:{party}:{currency}"
            elements.append(Element(part, prefix, self._payment(item, paid, money_in, party, currency)))
        elements.extend(self._journals(item, parties))
        return elements

    def _payment(self, item: WriteItem, paid: list[tuple[Allocation, _Document]], money_in: bool, party: str,
                 currency: str) -> dict[str, Any]:
        bank = paid[0][0].bank
        lines = [{"Amount": from_minor(a.amount_minor, currency),
                  "LinkedTxn": [{"TxnId": document.txn_id, "TxnType": document.txn_type}]}
                 for a, document in paid]
        total = sum(-a.amount_minor if a.credit_note else a.amount_minor for a, _ in paid)
        if total < 0:
            raise MappingError(f"bank line {bank.line_id}: the credit notes exceed the documents paid "
                               f"({from_minor(-total, currency)} {currency}); QuickBooks takes no negative payment")
        bank_ref = {"value": self._account(self.bank_account)[0]}
        payload: dict[str, Any] = {
            "TxnDate": bank.date.isoformat(),
            "TotalAmt": from_minor(total, currency),
            "CurrencyRef": {"value": currency},
            "PrivateNote": f"recon {item.match_id}: bank line {bank.line_id}"[:4000],
            "Line": lines,
        }
        reference = _reference(bank)
        if money_in:
            payload |= {"CustomerRef": {"value": party}, "DepositToAccountRef": bank_ref,
                        "PaymentRefNum": reference[:21]}
        else:
            payload |= {"VendorRef": {"value": party}, "PayType": "Check",
                        "CheckPayment": {"BankAccountRef": bank_ref}, "DocNumber": reference[:21]}
        return payload

    def _journals(self, item: WriteItem, parties: set[tuple[bool, str]]) -> list[Element]:
        by_currency: dict[str, list] = {}
        for line in item.journal:
            by_currency.setdefault(line.currency, []).append(line)
        elements = []
        narration = f"recon {item.match_id}" + (f": {item.memo}" if item.memo else "")
        for currency, lines in by_currency.items():
            total = sum(line.debit_minor - line.credit_minor for line in lines)
            if total != 0:
                raise MappingError(f"the {currency} journal does not balance (debits - credits = {total} minor units)")
            entries = []
            for number, line in enumerate(lines):
                net = line.debit_minor - line.credit_minor
                account_id, account_type = self._account(line.account)
                detail: dict[str, Any] = {"PostingType": "Debit" if net >= 0 else "Credit",
                                          "AccountRef": {"value": account_id}}
                entity = {"Accounts Receivable": ("Customer", True), "Accounts Payable": ("Vendor", False)}.get(account_type)
                if entity:
                    named = [party for money_in, party in parties if money_in == entity[1]]
                    if len(named) != 1:
                        raise MappingError(f"account {line.account} is {account_type}: QuickBooks wants one "
                                           f"{entity[0].lower()} on its journal line, and this match has {len(named)}")
                    detail["Entity"] = {"Type": entity[0], "EntityRef": {"value": named[0]}}
                entries.append({
                    "Id": str(number),
                    "Description": (line.memo or narration)[:4000],
                    "Amount": from_minor(abs(net), currency),
                    "DetailType": "JournalEntryLineDetail",
                    "JournalEntryLineDetail": detail,
                })
            elements.append(Element(f"journal:{currency}", "journal_entry", {
                "TxnDate": min(line.date for line in lines).isoformat(),
                "PrivateNote": narration[:4000],
                "CurrencyRef": {"value": currency},
                "Line": entries,
            }))
        return elements

    def plan_reverse(self, item: WriteItem, written: Sequence[tuple[str, dict, dict]]) -> list[Element]:
        """Reverse what an earlier write of the same match put on QuickBooks: delete each
        payment (unless gone already) and post the reversing journal entries; needs
        :meth:`prepare` first (the payments' current ``SyncToken``).

        Raises
        ------
        ConflictError
            A payment was changed in QuickBooks since recon wrote it: nothing of the
            reversal is sent.
        """
        elements: list[Element] = []
        on = min((line.date for line in item.journal), default=date.today()).isoformat()
        for part, payload, ids in written:
            if part.startswith(("payment:", "bill_payment:")):
                entity = "BillPayment" if part.startswith("bill_payment:") else "Payment"
                key = (entity, ids["Id"])
                if key not in self._current:
                    raise MappingError(f"{entity} {ids['Id']} was not read from QuickBooks")
                current = self._current[key]
                if current is None:
                    continue  # deleted in QuickBooks already: nothing to delete
                if current != ids.get("SyncToken"):
                    raise ConflictError(
                        f"{entity} {ids['Id']} was changed in QuickBooks since recon wrote it (SyncToken "
                        f"{ids.get('SyncToken')} -> {current}): not deleted; undo it in QuickBooks, "
                        "then run recon writeback again")
                kind = "delete_bill_payment" if entity == "BillPayment" else "delete_payment"
                elements.append(Element(f"delete:{part}", kind, {"Id": ids["Id"], "SyncToken": current}))
            elif part.startswith("journal:"):
                narration = f"reversal of recon {item.match_id}" + (f": {item.memo}" if item.memo else "")
                swap = {"Debit": "Credit", "Credit": "Debit"}
                elements.append(Element(part, "journal_entry", {
                    **payload,
                    "TxnDate": on,
                    "PrivateNote": narration[:4000],
                    "Line": [
                        {**line, "JournalEntryLineDetail": {
                            **line["JournalEntryLineDetail"],
                            "PostingType": swap[line["JournalEntryLineDetail"]["PostingType"]]}}
                        for line in payload["Line"]
                    ],
                }))
        return elements

    # -- requests --------------------------------------------------------------------------
    def batch_limit(self, kind: str, configured: int) -> int:
        """One entity a request (QuickBooks' ``requestid`` is per entity)."""
        return 1

    def request(self, kind: str, payloads: Sequence[dict]) -> RequestSpec:
        """The request carrying the one element of ``payloads``."""
        (payload,) = payloads
        path, _entity = _QBO_KINDS[kind]
        params = {"minorversion": self.minor_version}
        if kind.startswith("delete_"):
            params["operation"] = "delete"
        return RequestSpec("POST", path, params, dict(payload))

    def idempotency(self, key: str) -> tuple[dict[str, str], dict[str, str]]:
        """QuickBooks takes the key as the ``requestid`` query parameter, 50 characters at most
        (the outbox's key is a digest: its first 50 characters are as unique)."""
        return {}, {"requestid": key[:self.REQUEST_ID_LENGTH]}

    def outcomes(self, kind: str, count: int, status: int, body: Any) -> list[Outcome]:
        """Read QuickBooks' answer to a request of one element (status 200 or a terminal 4xx)."""
        entity = _QBO_KINDS[kind][1]
        if status >= 400:
            message, codes = _fault(body)
            reason = f"QuickBooks answered {status}: {message}" + (f" (code {', '.join(codes)})" if codes else "")
            if _STALE_OBJECT in codes:
                return [Outcome("conflict", reason=reason + ": changed in QuickBooks by someone else; not overwritten")]
            if kind.startswith("delete_") and _NOT_FOUND in codes:
                return [Outcome("done")]  # deleted in QuickBooks already: what the delete was for
            return [Outcome("failed", reason=reason)] * count
        answered = body.get(entity) if isinstance(body, dict) else None
        if not isinstance(answered, dict) or not answered.get("Id"):
            return [Outcome("failed", reason=f"QuickBooks answered {status} without the {entity} sent")] * count
        ids = {"Id": str(answered["Id"])}
        if answered.get("SyncToken") is not None:
            ids["SyncToken"] = str(answered["SyncToken"])
        return [Outcome("done", external_ids=ids)]


def _money_in(allocation: Allocation) -> bool:
    """Whether the bank line of ``allocation`` brought money in (a customer paying)."""
    if allocation.bank.amount_minor != 0:
        return allocation.bank.amount_minor > 0
    return (allocation.ledger.amount_minor > 0) != allocation.credit_note
