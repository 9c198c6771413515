"""A local fake of the QuickBooks Online Accounting API for the REST write-back tests (a real
HTTP server on 127.0.0.1, run in a thread of the test process), built on the fake Xero's
machinery (:mod:`tests.engine.adapters.fake_xero`): the same OAuth 2.0 token endpoint (access
tokens that expire, a refresh token rotated on every refresh), rate limits (``calls`` per
rolling platform minute per realm, ``concurrent`` in flight) answered 429, injected 500s
(before or after the work) and 429s, and a record of every call.

What it adds is QuickBooks' shape: the company (realm) in the path
(``/v3/company/{realmId}/...``); the ``requestid`` query parameter as the idempotency key (50
characters at most; the same id gets the first answer again and does nothing twice); a query
endpoint for invoices, bills, credit notes and accounts; payments and bill payments linked to
their documents (``LinkedTxn``), checked against the documents' customers, vendors and open
balances; journal entries that must balance and name a customer on a receivable line; reads of
a payment; deletes that must carry the payment's current ``SyncToken`` (else 400 "Stale Object
Error", code 5010). :meth:`FakeQbo.change` plays someone editing a payment in QuickBooks.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.engine.adapters.fake_xero import FakeXero, Received, _dumps, _Handler, _Server

COMPANY = "/v3/company/"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"

#: a small chart of accounts: Id -> (AcctNum, Name, AccountType)
CHART = {
    "35": ("090", "HSBC HKD current", "Bank"),
    "84": ("1100", "Accounts Receivable (A/R)", "Accounts Receivable"),
    "33": ("2100", "Accounts Payable (A/P)", "Accounts Payable"),
    "90": ("1190", "Processor clearing", "Other Current Asset"),
    "87": ("6800", "Bank charges", "Expense"),
    "88": ("6810", "Processor fees", "Expense"),
    "89": ("7100", "Exchange gain or loss", "Other Expense"),
    "91": ("6900", "Short payments written off", "Expense"),
}
_PARTY = {"Invoice": "CustomerRef", "CreditMemo": "CustomerRef", "Bill": "VendorRef", "VendorCredit": "VendorRef"}
_QUERY = re.compile(r"^select \* from (?P<entity>\w+)(?: where DocNumber in \((?P<numbers>.*)\))?"
                    r"(?: startposition (?P<start>\d+))?(?: maxresults (?P<max>\d+))?$", re.IGNORECASE | re.DOTALL)
_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")


class Fault(Exception):
    """A QuickBooks error answer: status, code, message, detail."""

    def __init__(self, status: int, code: str, message: str, detail: str = ""):
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail or message

    def body(self) -> dict:
        return {"Fault": {"Error": [{"Message": self.message, "Detail": self.detail, "code": self.code,
                                     "element": ""}], "type": "ValidationFault"}, "time": "2026-03-02T10:00:00.000-08:00"}


@dataclass
class FakeQbo(FakeXero):
    """The fake QuickBooks company. Start it with :meth:`start` (or ``with FakeQbo(...) as fake``).

    Parameters (beside :class:`~tests.engine.adapters.fake_xero.FakeXero`'s)
    ----------
    realm_id
        The company's realm id (every API path names it).
    documents
        Filled with :meth:`add_document`: the invoices, bills and credit notes payments link to.

    ``calls``, ``concurrent`` and ``token_lifetime`` default to QuickBooks' documented limits
    (500 a minute per realm, 10 at a time) and its one-hour access token.
    """

    realm_id: str = "9341453078510317"
    calls: int = 500
    concurrent: int = 10
    token_lifetime: float = 3600.0
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.accounts = {i: {"Id": i, "AcctNum": n, "Name": name, "AccountType": kind, "Active": True}
                         for i, (n, name, kind) in CHART.items()}
        self.entities: dict[str, dict[str, Any]] = {}  # Payment / BillPayment / JournalEntry by Id
        #: ids whose SyncToken moves right after recon reads them (someone saves the payment
        #: between recon's read and its delete)
        self.change_after_read: set[str] = set()
        self._next_id = 1000

    # -- what the tests set up and read ----------------------------------------------------
    def _id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def add_document(self, txn_type: str, number: str, amount: Decimal, party: str = "58",
                     currency: str = "HKD") -> str:
        """Book an invoice (``Invoice``), bill, credit memo or vendor credit open for ``amount``."""
        with self.lock:
            doc_id = self._id()
            self.documents[doc_id] = {"Id": doc_id, "Type": txn_type, "DocNumber": number, "SyncToken": "0",
                                      _PARTY[txn_type]: {"value": party}, "TotalAmt": amount, "Balance": amount,
                                      "CurrencyRef": {"value": currency}}
            return doc_id

    def live(self, entity: str) -> list[dict[str, Any]]:
        """The payments (``Payment``), bill payments or journal entries not deleted."""
        return [e for e in self.entities.values() if e["_entity"] == entity and e["_status"] == "Active"]

    def change(self, entity_id: str) -> None:
        """Someone edits the entity in QuickBooks: its SyncToken moves on."""
        with self.lock:
            record = self.entities[entity_id]
            record["SyncToken"] = str(int(record["SyncToken"]) + 1)
            record["PrivateNote"] = record.get("PrivateNote", "") + " (edited in QuickBooks)"

    def delete(self, entity_id: str) -> None:
        """Someone deletes the entity in QuickBooks (what it applied is open again)."""
        with self.lock:
            record = self.entities[entity_id]
            record["_status"] = "Deleted"
            for document_id, amount in record["_applied"]:
                self.documents[document_id]["Balance"] += amount

    @property
    def target(self) -> str:
        return "qbo+" + self.url

    def environment(self, **overrides: str) -> dict[str, str]:
        """The RECON_QBO_* variables a client needs to talk to this fake."""
        env = {
            "RECON_QBO_CLIENT_ID": self.client_id,
            "RECON_QBO_CLIENT_SECRET": self.client_secret,
            "RECON_QBO_REFRESH_TOKEN": self.issued_refresh_tokens[0],
            "RECON_QBO_REALM_ID": self.realm_id,
            "RECON_QBO_BANK_ACCOUNT": "090",
            "RECON_QBO_TIME_SCALE": repr(self.time_scale),
            "RECON_QBO_CALLS_PER_MINUTE": str(self.calls),
            "RECON_QBO_CONCURRENT": str(self.concurrent),
        }
        env.update(overrides)
        return env

    # -- running ---------------------------------------------------------------------------
    def start(self) -> FakeQbo:
        fake = self

        class Handler(_QboHandler):
            platform = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def tenant_ok(self, headers: Any) -> bool:
        return True  # the realm is in the path, checked by the handler

    def handle(self, method: str, path: str, query: dict[str, list[str]], key: str | None,
               raw: bytes) -> tuple[int, bytes, bool, bool]:
        if key is not None and len(key) > 50:
            fault = Fault(400, "2050", "Request Id too long", f"requestid must be 50 characters at most ({len(key)})")
            return 400, _dumps(fault.body()), False, False
        return super().handle(method, path, query, key, raw)

    # -- the API ---------------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict[str, list[str]], document: dict) -> tuple[int, Any]:
        try:
            return self._dispatch(method, path, query, document)
        except Fault as fault:
            return fault.status, fault.body()
        except (ValueError, KeyError, TypeError, ArithmeticError) as error:
            return 400, Fault(400, "2010", "Request has invalid or unsupported property",
                              f"{type(error).__name__}: {error}").body()

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], document: dict) -> tuple[int, Any]:
        operation = (query.get("operation") or [""])[0]
        resource, _, entity_id = path.strip("/").partition("/")
        if method == "GET" and resource == "query":
            return 200, {"QueryResponse": self._query((query.get("query") or [""])[0]), "time": "now"}
        entity = {"payment": "Payment", "billpayment": "BillPayment", "journalentry": "JournalEntry"}.get(resource)
        if entity is None:
            raise Fault(404, "404", "Unsupported Operation", f"no resource {resource!r}")
        if method == "GET" and entity_id:
            answer = {entity: self._public(self._entity(entity, entity_id)), "time": "now"}
            if entity_id in self.change_after_read:
                self.change_after_read.discard(entity_id)
                record = self.entities[entity_id]
                record["SyncToken"] = str(int(record["SyncToken"]) + 1)
            return 200, answer
        if method == "POST" and operation == "delete":
            record = self._entity(entity, str(document["Id"]))
            if str(document.get("SyncToken")) != record["SyncToken"]:
                raise Fault(400, "5010", "Stale Object Error",
                            "Stale Object Error : You and 陳大文 were working on this at the same time. 陳大文 "
                            "finished before you did, so your work was not saved.")
            record["_status"] = "Deleted"
            for document_id, amount in record["_applied"]:
                self.documents[document_id]["Balance"] += amount
            return 200, {entity: {"Id": record["Id"], "status": "Deleted", "domain": "QBO"}, "time": "now"}
        if method == "POST" and not operation:
            make = {"Payment": self._payment, "BillPayment": self._payment, "JournalEntry": self._journal}[entity]
            return 200, {entity: self._public(make(entity, document)), "time": "now"}
        raise Fault(400, "2010", "Unsupported Operation", f"{method} {path} operation={operation!r}")

    def _query(self, statement: str) -> dict[str, Any]:
        parsed = _QUERY.match(statement.strip())
        if parsed is None:
            raise Fault(400, "4000", "Error parsing query", f"QueryParserError: {statement[:80]}")
        entity = parsed["entity"]
        if entity == "Account":
            rows = list(self.accounts.values())
        elif entity in _PARTY:
            rows = [d for d in self.documents.values() if d["Type"] == entity]
        else:
            raise Fault(400, "4001", "Invalid query", f"unknown entity {entity}")
        if parsed["numbers"] is not None:
            numbers = {re.sub(r"\\(.)", r"\1", literal) for literal in _LITERAL.findall(parsed["numbers"])}
            rows = [row for row in rows if row.get("DocNumber") in numbers]
        start = int(parsed["start"] or 1)
        rows = rows[start - 1:start - 1 + int(parsed["max"] or 100)]
        if not rows:
            return {}
        return {entity: [self._public(row) for row in rows], "startPosition": start, "maxResults": len(rows)}

    def _entity(self, entity: str, entity_id: str) -> dict[str, Any]:
        record = self.entities.get(entity_id)
        if record is None or record["_entity"] != entity or record["_status"] != "Active":
            raise Fault(400, "610", "Object Not Found",
                        "Object Not Found : Something you're trying to use has been made inactive or deleted.")
        return record

    def _account(self, reference: dict | None) -> dict[str, Any]:
        account_id = str((reference or {}).get("value"))
        if account_id not in self.accounts:
            raise Fault(400, "2500", "Invalid Reference Id", f"Invalid Reference Id : Accounts element id {account_id} "
                                                             "not found")
        return self.accounts[account_id]

    def _payment(self, entity: str, document: dict) -> dict[str, Any]:
        party_ref = "CustomerRef" if entity == "Payment" else "VendorRef"
        party = str(document[party_ref]["value"])
        bank = document["DepositToAccountRef"] if entity == "Payment" else document["CheckPayment"]["BankAccountRef"]
        if self._account(bank)["AccountType"] not in ("Bank", "Other Current Asset"):
            raise Fault(400, "6000", "A business validation error has occurred while processing your request",
                        "Business Validation Error: the deposit account must be a bank account")
        applied, total = [], Decimal(0)
        for line in document["Line"]:
            amount = Decimal(line["Amount"])
            for linked in line["LinkedTxn"]:
                target = self.documents.get(str(linked["TxnId"]))
                if target is None or target["Type"] != linked["TxnType"]:
                    raise Fault(400, "610", "Object Not Found", f"Object Not Found : {linked['TxnType']} "
                                                                 f"{linked['TxnId']} does not exist")
                if target[_PARTY[target["Type"]]]["value"] != party:
                    raise Fault(400, "6000", "A business validation error has occurred while processing your request",
                                f"Business Validation Error: {target['Type']} {target['DocNumber']} belongs to "
                                f"another {'customer' if entity == 'Payment' else 'vendor'}")
                if amount > target["Balance"]:
                    raise Fault(400, "6000", "A business validation error has occurred while processing your request",
                                f"Business Validation Error: {amount} applied to {target['Type']} "
                                f"{target['DocNumber']}, whose open balance is {target['Balance']}")
                credit = target["Type"] in ("CreditMemo", "VendorCredit")
                total += -amount if credit else amount
                applied.append((target["Id"], amount))
        if Decimal(document["TotalAmt"]) != total:
            raise Fault(400, "6000", "A business validation error has occurred while processing your request",
                        f"Business Validation Error: TotalAmt {document['TotalAmt']} is not the lines' {total}")
        for document_id, amount in applied:
            self.documents[document_id]["Balance"] -= amount
        record = {**document, "Id": self._id(), "SyncToken": "0", "domain": "QBO", "_entity": entity,
                  "_status": "Active", "_applied": applied}
        self.entities[record["Id"]] = record
        return record

    def _journal(self, entity: str, document: dict) -> dict[str, Any]:
        totals = {"Debit": Decimal(0), "Credit": Decimal(0)}
        for line in document["Line"]:
            detail = line["JournalEntryLineDetail"]
            account = self._account(detail["AccountRef"])
            totals[detail["PostingType"]] += Decimal(line["Amount"])
            named = (detail.get("Entity") or {}).get("Type")
            if account["AccountType"] == "Accounts Receivable" and named != "Customer":
                raise Fault(400, "6000", "A business validation error has occurred while processing your request",
                            "Business Validation Error: When you use Accounts Receivable, you must choose a "
                            "customer in the Name field.")
            if account["AccountType"] == "Accounts Payable" and named != "Vendor":
                raise Fault(400, "6000", "A business validation error has occurred while processing your request",
                            "Business Validation Error: When you use Accounts Payable, you must choose a "
                            "vendor in the Name field.")
        if totals["Debit"] != totals["Credit"]:
            raise Fault(400, "6000", "A business validation error has occurred while processing your request",
                        "Business Validation Error: Transactions must be balanced "
                        f"(debits {totals['Debit']}, credits {totals['Credit']})")
        record = {**document, "Id": self._id(), "SyncToken": "0", "domain": "QBO", "_entity": entity,
                  "_status": "Active", "_applied": []}
        self.entities[record["Id"]] = record
        return record

    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if not k.startswith("_")}


class _QboHandler(_Handler):
    platform: FakeQbo

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._api("GET")

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path == TOKEN_PATH:
            status, answer = self.platform.token(self.headers.get("Authorization"), parse_qs(self._body().decode()))
            self._reply(status, _dumps(answer))
            return
        self._api("POST")

    def _api(self, method: str) -> None:
        fake = self.platform
        parts = urlsplit(self.path)
        raw = self._body()
        query = parse_qs(parts.query)
        key = (query.get("requestid") or [None])[0]
        realm, _, rest = parts.path.removeprefix(COMPANY).partition("/")
        path = "/" + rest
        if not parts.path.startswith(COMPANY):
            self._reply(404, _dumps(Fault(404, "404", "not found").body()))
            return
        if realm != fake.realm_id:
            fault = Fault(403, "003100", "ApplicationAuthorizationFailed",
                          f"message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403 (realm {realm})")
            fake.received.append(Received(method, path, key, 403, False, time.monotonic()))
            self._reply(403, _dumps(fault.body()))
            return
        refused = fake.admit(self.headers)
        if refused is not None:
            status, headers, _xero = refused
            if status == 401:
                answer = {"fault": {"error": [{"message": "message=AuthenticationFailed; errorCode=003200; "
                                                          "statusCode=401", "detail": "Token expired", "code": "3200"}],
                                    "type": "AUTHENTICATION"}}
            else:
                answer = Fault(status, "3001", "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                               "The request limit was reached.").body()
            fake.received.append(Received(method, path, key, status, False, time.monotonic()))
            self._reply(status, _dumps(answer), headers)
            return
        try:
            status, body, replayed, hold = fake.handle(method, path, query, key, raw)
        finally:
            fake.done()
        fake.received.append(Received(method, path, key, status, replayed, time.monotonic()))
        if hold:
            fake.held.set()
            fake.release.wait(30)
        self._reply(status, body)
