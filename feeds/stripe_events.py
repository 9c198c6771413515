"""Feeds stage: Stripe webhook events and API list pages -> canonical payout lines.

A webhook delivery is a signed JSON ``event`` (``{"id": "evt_...", "object": "event", "type":
"payout.paid", "created": ..., "data": {"object": {...}}}``) with the header ``Stripe-Signature:
t=TIMESTAMP,v1=HEX``, where HEX is the HMAC-SHA256 of ``TIMESTAMP + "." + body`` under the
endpoint's shared secret (Stripe's scheme; several ``v1`` entries may be given while a secret is
rolled). :func:`verify_signature` checks it, in constant time, and refuses a timestamp further
than the tolerance (300 s) from now, so a captured delivery cannot be replayed later.

What becomes a payout line (the mapping is the Stripe reader's,
:func:`feeds.stripe.api_object_line`):

* a **payout** object (``payout.paid``, ``payout.reconciliation_completed``, ...): the payout's
  own line (category ``payout``, money leaving the Stripe balance for the bank). A payout that
  ``failed`` or was ``canceled`` never reached the bank: no line;
* a **balance transaction** object, or any object with an expanded ``balance_transaction``
  (a ``charge.succeeded`` whose charge carries it): the movement, its fee and net, with the
  shop's order id from the charge's metadata.

Stripe's objects do not say which payout a charge is paid out in; that is known once the payout
is reconciled (its balance transactions are listed with ``?payout=po_...``). A line whose payout
is not known is therefore **held back** (returned apart, not ingested): matching groups the
lines of a payout, and a line stored without its payout could not be completed later (the
workspace keeps the version it holds). A balance transaction of type ``payout`` is left out of
a payout's list: the payout object is that line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl

from feeds._common import reject_out_of_range_dates, reject_row
from feeds.processor import lines_frame, rejects_frame
from feeds.stripe import api_object_line
from models.errors import FeedFormatError, PrecisionError, ReconError
from models.schema import FeedResult

__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "EventLines",
    "WebhookSignatureError",
    "event_lines",
    "list_lines",
    "parse_event",
    "parse_json",
    "sign",
    "verify_signature",
]

#: the request header carrying the signature
SIGNATURE_HEADER = "Stripe-Signature"

#: seconds a delivery's timestamp may be away from now (Stripe's libraries use 300)
DEFAULT_TOLERANCE = 300

#: payout states in which no money reaches the bank
_UNPAID = {"failed", "canceled"}


class WebhookSignatureError(ReconError):
    """A delivery whose signature is missing, malformed, wrong or too old (``reason``:
    ``"missing"``, ``"malformed"``, ``"mismatch"`` or ``"stale"``)."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value for ``payload`` (what a sender computes).

    Parameters
    ----------
    payload
        The request body, byte-exact.
    secret
        The endpoint's shared secret (``whsec_...``).
    timestamp
        Unix seconds of the delivery (default: now).

    Returns
    -------
    str
        ``"t=TIMESTAMP,v1=HEX"``.

    Examples
    --------
    >>> sign(b"{}", "whsec_test", 1700000000)[:13]
    't=1700000000,'
    """
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    payload: bytes,
    header: str | None,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a delivery's ``Stripe-Signature`` header; return its timestamp.

    Parameters
    ----------
    payload
        The request body exactly as received (the signature covers the bytes, not the JSON).
    header
        The header's value (None when absent).
    secret
        The shared secret.
    tolerance
        Seconds the timestamp may be away from ``now`` (either way).
    now
        Unix seconds to compare with (default: the clock).

    Returns
    -------
    int
        The delivery's timestamp.

    Raises
    ------
    WebhookSignatureError
        No header, no ``t=`` or ``v1=`` in it, no ``v1`` signature equal to the expected one,
        or a timestamp outside the tolerance.

    Examples
    --------
    >>> body = b'{"id": "evt_1"}'
    >>> verify_signature(body, sign(body, "whsec_x", 1700000000), "whsec_x", now=1700000010)
    1700000000
    """
    if not header:
        raise WebhookSignatureError("missing", f"no {SIGNATURE_HEADER} header; the delivery is not signed")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                timestamp = None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookSignatureError(
            "malformed", f"{SIGNATURE_HEADER} header without a timestamp (t=) and a v1 signature"
        )
    expected = sign(payload, secret, timestamp).partition("v1=")[2]
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise WebhookSignatureError(
            "mismatch", "signature does not match the payload under the shared secret"
        )
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise WebhookSignatureError(
            "stale",
            f"timestamp {timestamp} is {abs(int(now) - timestamp)} s from now, beyond the "
            f"tolerance of {tolerance} s (an old delivery replayed, or a clock far off)",
        )
    return timestamp


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number recon accepts")


def parse_json(payload: bytes, what: str) -> Any:
    """``payload`` as JSON, decimals as :class:`~decimal.Decimal` (never float).

    Raises
    ------
    FeedFormatError
        Not UTF-8 or not valid JSON (``what`` names the source in the message).
    """
    try:
        return json.loads(payload.decode("utf-8-sig"), parse_float=Decimal, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise FeedFormatError(what, "is not UTF-8 JSON") from None
    except (ValueError, RecursionError) as error:
        raise FeedFormatError(what, f"is not valid JSON ({getattr(error, 'msg', error)})") from None


def parse_event(payload: bytes | dict[str, Any], what: str = "(webhook)") -> dict[str, Any]:
    """A Stripe event, checked: an object with ``object == "event"``, an ``id``, a ``type`` and
    ``data.object``.

    Raises
    ------
    FeedFormatError
        Anything else (the message says what is missing).
    """
    event = parse_json(payload, what) if isinstance(payload, bytes) else payload
    if not isinstance(event, dict) or event.get("object") != "event":
        raise FeedFormatError(what, 'is not a Stripe event (expected {"object": "event", ...})')
    for key in ("id", "type"):
        if not isinstance(event.get(key), str) or not event[key]:
            raise FeedFormatError(what, f"is a Stripe event without '{key}'")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise FeedFormatError(what, f"event {event['id']} has no data.object")
    return event


@dataclass
class EventLines:
    """What one event or list page gives.

    Attributes
    ----------
    result
        The payout lines to ingest (processor side) and the objects that could not be read.
    held_back
        Lines whose payout is not known yet (not to be ingested; see the module docstring).
    notes
        Why something gave no line (an unpaid payout, an object of no interest).
    """

    result: FeedResult
    held_back: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def _movement(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The balance transaction an object stands for: itself, or its expanded
    ``balance_transaction`` with the object as its (expanded) source."""
    if obj.get("object") in ("balance_transaction", "payout"):
        return obj
    inner = obj.get("balance_transaction")
    if isinstance(inner, dict) and inner.get("object") == "balance_transaction":
        source = inner.get("source")
        if not isinstance(source, dict):  # the charge (refund, ...) it belongs to
            inner = {**inner, "source": obj}
        return inner
    return None


def _lines(
    objects: list[tuple[Any, str, int]], payout: str | None, skip_payout_transactions: bool
) -> EventLines:
    lines: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    notes: list[str] = []
    for obj, source, line in objects:
        raw = json.dumps(obj, ensure_ascii=False, default=str, separators=(",", ":"))
        if not isinstance(obj, dict):
            rejects.append(reject_row(source, line, "", "list item is not a JSON object", raw))
            continue
        movement = _movement(obj)
        if movement is None:
            inner = obj.get("balance_transaction")
            why = (f"its balance transaction {inner} is not expanded" if isinstance(inner, str)
                   else "it carries no balance transaction")
            notes.append(f"{source}: a Stripe {obj.get('object')} {obj.get('id')} gives no payout line ({why})")
            continue
        if movement.get("object") == "payout" and str(movement.get("status")) in _UNPAID:
            notes.append(f"{source}: payout {movement.get('id')} is {movement.get('status')}: nothing reached the bank")
            continue
        if skip_payout_transactions and movement.get("type") == "payout":
            continue  # the payout object is this line
        try:
            row = api_object_line(movement, source_file=source, source_line=line)
        except PrecisionError as error:
            rejects.append(reject_row(source, line, "", str(error), raw))
            continue
        if payout and not row["payout_id"]:
            row["payout_id"] = payout
        lines.append(row)
    result = reject_out_of_range_dates(
        FeedResult(format="stripe", side="processor", frame=lines_frame(lines),
                   rejects=rejects_frame(rejects), rows_read=len(lines) + len(rejects))
    )
    frame = result.frame.unique(subset=["processor", "line_id"], keep="first", maintain_order=True)
    known = pl.col("payout_id").is_not_null() & (pl.col("payout_id") != "")
    result.frame = frame.filter(known)
    return EventLines(result=result, held_back=frame.filter(~known), notes=notes)


def event_lines(event: dict[str, Any]) -> EventLines:
    """The payout lines of one Stripe event (see the module docstring for what gives a line).

    Parameters
    ----------
    event
        A checked event (:func:`parse_event`); its id is the lines' ``source_file``.

    Returns
    -------
    EventLines

    Examples
    --------
    >>> event = {"id": "evt_1", "object": "event", "type": "payout.paid", "data": {"object": {
    ...     "object": "payout", "id": "po_1", "amount": 9680, "currency": "hkd",
    ...     "arrival_date": 1767830400, "status": "paid"}}}
    >>> event_lines(event).result.frame.select("payout_id", "net_minor").row(0)
    ('po_1', -9680)
    """
    return _lines([(event["data"]["object"], event["id"], 1)], None, False)


def list_lines(
    items: list[Any], source: str, *, payout: str | None = None, first_line: int = 1
) -> EventLines:
    """The payout lines of a page of a Stripe API list (balance transactions or payouts).

    Parameters
    ----------
    items
        The page's ``data``.
    source
        What to name as the lines' ``source_file`` (the URL read).
    payout
        The payout the list was filtered on (``?payout=po_...``): the payout of every line,
        and its own ``payout`` balance transaction left out (the payout object is that line).
    first_line
        The position of the page's first item in the whole list (``source_line``).

    Returns
    -------
    EventLines
    """
    objects = [(item, source, first_line + n) for n, item in enumerate(items)]
    return _lines(objects, payout, payout is not None)
