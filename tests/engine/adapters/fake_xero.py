"""A local fake of Xero's Accounting API for the REST write-back tests (a real HTTP server on
127.0.0.1, run in a thread of the test process).

It behaves as the tests need the platform to: the OAuth 2.0 token endpoint issues access
tokens that expire (after ``token_lifetime`` platform seconds) and rotates the refresh token on
every refresh (the previous one is refused); the API enforces the rate limits (``calls`` per
rolling platform minute, ``concurrent`` requests in flight) with 429 and ``Retry-After``,
injects 500s (before or after doing the work) and 429s, honours ``Idempotency-Key`` (the same
key gets the first answer again and does nothing twice) and records what it did, so a test can
say "each payment and journal exactly once".

Platform time runs ``time_scale`` times as fast as the wall clock would have it: a platform
minute lasts ``60 * time_scale`` seconds (the client is given the same scale).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import secrets
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API = "/api.xro/2.0"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=lambda d: float(d) if isinstance(d, Decimal) else str(d)).encode()


@dataclass
class Received:
    """One API call as the fake saw it."""

    method: str
    path: str
    idempotency_key: str | None
    status: int
    replayed: bool
    at: float


@dataclass
class FakeXero:
    """The fake platform. Start it with :meth:`start` (or ``with FakeXero(...) as fake``).

    Parameters
    ----------
    time_scale
        Wall seconds per platform second.
    calls, concurrent
        Xero's limits: calls per rolling minute and requests in flight, per tenant.
    token_lifetime
        Platform seconds an access token lives (Xero: 1800).
    error_rate
        Share of API calls answered 500: ``error_after_work`` of them after doing the work
        (the client never hears of it), the others before.
    throttle_every
        Answer every N-th API call 429 with ``Retry-After: retry_after`` (0: never).
    invoices
        Invoice number -> amount due; when given, a payment of an unknown invoice or of more
        than is due is refused (as Xero refuses it), and a deleted payment gives it back.

    Set ``hold_after = N`` to hold the answer to the first call done (200) once N calls were
    admitted: the work is done and its answer kept under its idempotency key (``held_key``),
    then ``held`` is set and the answer waits for ``release``, so a test can kill the client
    while the platform has done something the client has not heard of.
    """

    client_id: str = "recon-test-client"
    client_secret: str = "recon-test-secret"
    tenant_id: str = "7a1c2f0e-0000-4000-8000-000000000001"
    time_scale: float = 1.0
    calls: int = 60
    concurrent: int = 5
    token_lifetime: float = 1800.0
    error_rate: float = 0.0
    error_after_work: float = 0.5
    throttle_every: int = 0
    retry_after: int = 1
    seed: int = 0
    invoices: dict[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.random = random.Random(self.seed)
        self.refresh_token = "rt-" + secrets.token_hex(16)
        self.issued_refresh_tokens = [self.refresh_token]
        self.issued_access_tokens: list[str] = []
        self.access_tokens: dict[str, float] = {}
        self.window: deque[float] = deque()
        self.in_flight = 0
        self.api_calls = 0
        self.received: list[Received] = []
        self.refreshes = 0
        self.refused_refresh_tokens: list[str] = []
        self.expired_token_calls = 0
        self.limit_exceeded: list[str] = []  # X-Rate-Limit-Problem of 429s the client caused
        self.injected_429 = 0
        self.injected_500 = 0
        self.idempotent: dict[str, tuple[str, int, bytes]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.batch_payments: dict[str, dict[str, Any]] = {}
        self.journals: dict[str, dict[str, Any]] = {}
        self.hold_after: int | None = None
        self.held_key: str | None = None
        self.held = threading.Event()
        self.release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # -- running ---------------------------------------------------------------------------
    def start(self) -> FakeXero:
        fake = self

        class Handler(_Handler):
            platform = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeXero:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def target(self) -> str:
        return "xero+" + self.url

    def environment(self, **overrides: str) -> dict[str, str]:
        """The RECON_XERO_* variables a client needs to talk to this fake."""
        env = {
            "RECON_XERO_CLIENT_ID": self.client_id,
            "RECON_XERO_CLIENT_SECRET": self.client_secret,
            "RECON_XERO_REFRESH_TOKEN": self.issued_refresh_tokens[0],
            "RECON_XERO_TENANT_ID": self.tenant_id,
            "RECON_XERO_BANK_ACCOUNT": "090",
            "RECON_XERO_TIME_SCALE": repr(self.time_scale),
            "RECON_XERO_CALLS_PER_MINUTE": str(self.calls),
            "RECON_XERO_CONCURRENT": str(self.concurrent),
        }
        env.update(overrides)
        return env

    def rate_seconds(self, calls: int) -> float:
        """The wall time ``calls`` API calls take at the sustained rate the limit allows
        (``calls / calls_per_minute`` platform minutes)."""
        return calls / self.calls * 60.0 * self.time_scale

    def minimum_seconds(self, calls: int) -> float:
        """The least wall time ``calls`` API calls can take under the rate limit: the k-th
        call (from 0) cannot start before ``k // calls_per_minute`` windows have passed."""
        return ((calls - 1) // self.calls) * 60.0 * self.time_scale if calls else 0.0

    # -- what the tests read ---------------------------------------------------------------
    def live_payments(self) -> list[dict[str, Any]]:
        return [p for p in self.payments.values() if p["Status"] == "AUTHORISED"]

    # -- OAuth -----------------------------------------------------------------------------
    def token(self, authorization: str | None, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if authorization != expected:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != ["refresh_token"]:
            return 400, {"error": "unsupported_grant_type"}
        presented = (form.get("refresh_token") or [""])[0]
        with self.lock:
            if presented != self.refresh_token:
                self.refused_refresh_tokens.append(presented)
                return 400, {"error": "invalid_grant"}
            access = "at-" + secrets.token_hex(24)
            self.refresh_token = "rt-" + secrets.token_hex(16)
            self.issued_refresh_tokens.append(self.refresh_token)
            self.issued_access_tokens.append(access)
            self.access_tokens[access] = time.monotonic() + self.token_lifetime * self.time_scale
            self.refreshes += 1
            return 200, {"access_token": access, "expires_in": int(self.token_lifetime), "token_type": "Bearer",
                         "refresh_token": self.refresh_token, "scope": "accounting.transactions offline_access"}

    # -- the API ---------------------------------------------------------------------------
    def admit(self, headers: Any) -> tuple[int, dict[str, str], dict[str, Any]] | None:
        """Authentication and rate limits; None when the call may go ahead (counted in flight)."""
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        now = time.monotonic()
        with self.lock:
            expires = self.access_tokens.get(token)
            if expires is None or now >= expires:
                self.expired_token_calls += expires is not None
                return 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, {
                    "Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired: token expired"}
            if not self.tenant_ok(headers):
                return 403, {}, {"Title": "Forbidden", "Status": 403, "Detail": "AuthenticationUnsuccessful"}
            window = 60.0 * self.time_scale
            while self.window and now - self.window[0] >= window:
                self.window.popleft()
            if len(self.window) >= self.calls:
                wait = math.ceil((self.window[0] + window - now) / self.time_scale)
                self.limit_exceeded.append("minute")
                return 429, {"Retry-After": str(wait), "X-Rate-Limit-Problem": "minute"}, {"Title": "Too Many Requests"}
            if self.in_flight >= self.concurrent:
                self.limit_exceeded.append("concurrent")
                return 429, {"Retry-After": "1", "X-Rate-Limit-Problem": "concurrent"}, {"Title": "Too Many Requests"}
            self.window.append(now)
            self.api_calls += 1
            self.in_flight += 1
            if self.throttle_every and self.api_calls % self.throttle_every == 0:
                self.injected_429 += 1
                self.in_flight -= 1
                return 429, {"Retry-After": str(self.retry_after), "X-Rate-Limit-Problem": "minute"}, {
                    "Title": "Too Many Requests"}
        return None

    def tenant_ok(self, headers: Any) -> bool:
        """Whether the call names this organisation (Xero: the ``Xero-tenant-id`` header)."""
        return headers.get("Xero-tenant-id") == self.tenant_id

    def done(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def handle(self, method: str, path: str, query: dict[str, list[str]], key: str | None,
               raw: bytes) -> tuple[int, bytes, bool, bool]:
        """Do one admitted call: (status, body, replayed, hold after answering)."""
        with self.lock:
            fingerprint = hashlib.sha256(method.encode() + path.encode() + raw).hexdigest()
            if key and key in self.idempotent:
                stored_fingerprint, status, body = self.idempotent[key]
                if stored_fingerprint != fingerprint:
                    return 400, _dumps({"Message": "Idempotency-Key reused for a different request"}), False, False
                return status, body, True, False
            fault = self.random.random() < self.error_rate
            if fault and self.random.random() >= self.error_after_work:
                self.injected_500 += 1
                return 500, _dumps({"Message": "An error occurred in Xero (before)"}), False, False
            try:
                document = json.loads(raw, parse_float=Decimal) if raw else {}
                status, answer = self._route(method, path, query, document)
            except (ValueError, KeyError, TypeError) as error:
                status, answer = 400, {"ErrorNumber": 14, "Type": "PostDataInvalidException",
                                       "Message": f"The request body is invalid: {error}"}
            body = _dumps(answer)
            if key and status < 500:
                self.idempotent[key] = (fingerprint, status, body)
            if fault:
                self.injected_500 += 1
                return 500, _dumps({"Message": "An error occurred in Xero (after the work was done)"}), False, False
            hold = self.hold_after is not None and self.api_calls >= self.hold_after and status == 200
            if hold:
                self.hold_after = None
                self.held_key = key
            return status, body, False, hold

    def _route(self, method: str, path: str, query: dict[str, list[str]], document: dict) -> tuple[int, Any]:
        summarize = (query.get("summarizeErrors") or ["true"])[0].lower() != "false"
        if method == "PUT" and path == "/Payments":
            return self._create(document["Payments"], "Payments", self._payment, summarize)
        if method == "PUT" and path == "/BatchPayments":
            return self._create(document["BatchPayments"], "BatchPayments", self._batch_payment, summarize)
        if method == "PUT" and path == "/ManualJournals":
            return self._create(document["ManualJournals"], "ManualJournals", self._journal, summarize)
        if method == "POST" and path.startswith("/Payments/"):
            payment = self.payments.get(path.removeprefix("/Payments/"))
            if payment is None:
                return 404, {"Title": "Not Found", "Status": 404, "Detail": "The resource you're looking for cannot be found"}
            if document.get("Status") != "DELETED":
                return 400, {"Message": "Only Status DELETED may be posted to a payment"}
            self._delete(payment)
            return 200, {"Payments": [{"PaymentID": payment["PaymentID"], "Status": "DELETED"}]}
        if method == "POST" and path == "/BatchPayments":
            batch = self.batch_payments.get(document.get("BatchPaymentID", ""))
            if batch is None or document.get("Status") != "DELETED":
                return 404, {"Title": "Not Found", "Status": 404, "Detail": "No such batch payment"}
            batch["Status"] = "DELETED"
            for payment_id in batch["PaymentIDs"]:
                self._delete(self.payments[payment_id])
            return 200, {"BatchPayments": [{"BatchPaymentID": batch["BatchPaymentID"], "Status": "DELETED"}]}
        return 404, {"Title": "Not Found", "Status": 404, "Detail": f"no endpoint {method} {path}"}

    def _create(self, elements: list[dict], collection: str, make, summarize: bool) -> tuple[int, Any]:
        problems = [self._problems(collection, element) for element in elements]
        if summarize and any(problems):
            return 400, {"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
                         "Elements": [{**e, "ValidationErrors": [{"Message": m} for m in p]}
                                      for e, p in zip(elements, problems, strict=True)]}
        answered = []
        for element, problem in zip(elements, problems, strict=True):
            if problem:
                answered.append({**element, "StatusAttributeString": "ERROR",
                                 "ValidationErrors": [{"Message": m} for m in problem]})
            else:
                answered.append({**make(element), "StatusAttributeString": "OK"})
        return 200, {collection: answered}

    def _problems(self, collection: str, element: dict) -> list[str]:
        if collection == "ManualJournals":
            total = sum(Decimal(line["LineAmount"]) for line in element["JournalLines"])
            return [] if total == 0 else [f"The total debits must equal the total credits (off by {total})"]
        payments = element["Payments"] if collection == "BatchPayments" else [element]
        problems = []
        due: dict[str, Decimal] = {}
        for payment in payments:
            amount = Decimal(payment["Amount"])
            if amount <= 0:
                problems.append("Payment amount must be greater than zero")
            number = payment.get("Invoice", {}).get("InvoiceNumber")
            if number is None or not self.invoices:
                continue
            if number not in self.invoices:
                problems.append(f"Invoice number {number} could not be found")
                continue
            due.setdefault(number, self.invoices[number])
            if amount > due[number]:
                problems.append("Payment amount exceeds the amount outstanding on this document")
            else:
                due[number] -= amount
        return problems

    def _payment(self, element: dict, batch_id: str | None = None, account: dict | None = None,
                 on: str | None = None, reference: str | None = None) -> dict:
        payment_id = str(uuid.uuid4())
        record = {
            "PaymentID": payment_id, "Status": "AUTHORISED", "BatchPaymentID": batch_id,
            "Invoice": element.get("Invoice"), "CreditNote": element.get("CreditNote"),
            "Account": account or element.get("Account"), "Date": on or element.get("Date"),
            "Amount": Decimal(element["Amount"]), "Reference": reference if batch_id else element.get("Reference"),
        }
        self.payments[payment_id] = record
        number = (element.get("Invoice") or {}).get("InvoiceNumber")
        if number in self.invoices:
            self.invoices[number] -= record["Amount"]
        return {**element, "PaymentID": payment_id, "Status": "AUTHORISED"}

    def _batch_payment(self, element: dict) -> dict:
        batch_id = str(uuid.uuid4())
        answered = [self._payment(p, batch_id, element.get("Account"), element.get("Date"), element.get("Reference"))
                    for p in element["Payments"]]
        self.batch_payments[batch_id] = {"BatchPaymentID": batch_id, "Status": "AUTHORISED",
                                         "PaymentIDs": [p["PaymentID"] for p in answered], **element}
        return {**element, "BatchPaymentID": batch_id, "Payments": answered}

    def _journal(self, element: dict) -> dict:
        journal_id = str(uuid.uuid4())
        self.journals[journal_id] = {"ManualJournalID": journal_id, **element}
        return {**element, "ManualJournalID": journal_id}

    def _delete(self, payment: dict) -> None:
        payment["Status"] = "DELETED"
        number = (payment.get("Invoice") or {}).get("InvoiceNumber")
        if number in self.invoices:
            self.invoices[number] += payment["Amount"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-request (the kill -9 test) is expected: no traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    platform: FakeXero

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
        self._api("PUT")

    def do_POST(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        if parts.path == "/connect/token":
            status, answer = self.platform.token(self.headers.get("Authorization"),
                                                 parse_qs(self._body().decode()))
            self._reply(status, _dumps(answer))
            return
        self._api("POST")

    def _api(self, method: str) -> None:
        fake = self.platform
        parts = urlsplit(self.path)
        raw = self._body()
        key = self.headers.get("Idempotency-Key")
        if not parts.path.startswith(API):
            self._reply(404, _dumps({"Message": "not found"}))
            return
        path = parts.path.removeprefix(API)
        refused = fake.admit(self.headers)
        if refused is not None:
            status, headers, answer = refused
            fake.received.append(Received(method, path, key, status, False, time.monotonic()))
            self._reply(status, _dumps(answer), headers)
            return
        try:
            status, body, replayed, hold = fake.handle(method, path, parse_qs(parts.query), key, raw)
        finally:
            fake.done()
        fake.received.append(Received(method, path, key, status, replayed, time.monotonic()))
        if hold:
            fake.held.set()
            fake.release.wait(30)
        self._reply(status, body)
