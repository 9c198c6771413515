"""Feeds stage: payment processor exports -> the canonical payout table (shared parts).

The readers themselves live in :mod:`feeds.stripe` (itemized report CSVs, API JSON of balance
transactions and payouts), :mod:`feeds.shopify` (Shopify Payments payouts and balance
transactions JSON) and :mod:`feeds.paypal` (PayPal activity CSVs, PayPal transaction-detail
JSON, Venmo statements); each follows the feed module protocol of :mod:`feeds.registry` with
``SIDES = ("processor",)``. This module holds what they share: the schema
(:data:`~models.schema.PAYOUT_LINE_SCHEMA`, re-exported here), exact amount conversion,
JSON loading that never lets a float near an amount, dates, the shop's order id (from
metadata keys in every style or a description, exactly as written), and
:func:`read_processor_file`, the entry point the engine uses.

Sign convention of every reader: amounts are movements of the processor balance (a charge is
positive; a refund, dispute or payout negative), ``fee_minor`` is positive when the processor
took a fee, and ``net_minor = gross_minor - fee_minor`` is checked on every line (a line where
the file's own numbers do not add up is rejected, not repaired).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from os import PathLike
from pathlib import Path
from typing import Any

import polars as pl

from models.errors import FeedFormatError, PrecisionError
from models.money import CURRENCY_EXPONENTS, to_minor
from models.schema import PAYOUT_LINE_SCHEMA, REJECTS_SCHEMA, FeedResult, empty_frame

__all__ = [
    "PAYOUT_LINE_SCHEMA",
    "STRIPE_REQUIRED",
    "JsonDocument",
    "identify",
    "lines_frame",
    "load_json",
    "major_to_minor",
    "find_order_id",
    "order_id_from",
    "order_id_in_text",
    "order_key_rank",
    "payout_result",
    "read_processor_file",
    "rejects_frame",
    "with_order_source",
]

#: columns a Stripe report must have (header names, case-insensitive); :mod:`feeds.stripe`
#: re-exports it (it imports this module, so the tuple lives here)
STRIPE_REQUIRED: tuple[str, ...] = (
    "balance_transaction_id",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
)

#: the word after "order" in a key that names the order's id, and how specifically it does
#: (0 is most specific): order_id / orderId > order_number / order_no > order_name / order_ref
#: > a bare order (shopify_order). Any other word (order_key, order_status, order_url) does not
#: name the id: WooCommerce's order_key is a secret token, not the order number.
_ORDER_ID_WORDS: dict[str, int] = {
    "id": 0,
    "number": 1,
    "no": 1,
    "num": 1,
    "nr": 1,
    "name": 2,
    "ref": 2,
    "reference": 2,
    "": 3,
}
#: "order" in the languages a shop's payment description is commonly written in
_ORDER_WORD = r"(?:order|bestellung|commande|pedido)"
#: "Web order #5022 (Stripe)", "Order SO-2026-00114", "Payment for order #1001", "Order No.:
#: 0005022", "order_id=77": the id after the word, a "#" attached to it kept as written
_ORDER_IN_TEXT = re.compile(
    r"\b" + _ORDER_WORD
    + r"(?:[\s_-]*(?:id|no|nr|num|number|ref|reference)\b\.?)?"  # label word
    + r"(?:\s*#\s*[:.]\s*|\s*#\s+|\s*[:=]\s*|\s+[-\u2013]\s+|\s+|(?=#))"  # separator
    + r"(#?[A-Za-z0-9][A-Za-z0-9_./-]*)",
    re.IGNORECASE,
)
#: ``payment_metadata[order_id]``, ``charge_metadata[...]``, ``metadata[...]``: the key inside
_METADATA_COLUMN = re.compile(r"^\s*(?:[a-z_]*_)?metadata\[(.+)\]\s*$", re.IGNORECASE)
_ISO_DATE = re.compile(r"^\s*([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[ T][0-9:.]+(?:Z|[+-][0-9:]+)?)?\s*$")


def identify(path: str | PathLike[str]) -> bool:
    """Whether ``path`` is a Stripe itemized report CSV (kept for callers of the old module).

    New code uses :func:`feeds.registry.detect` with ``side="processor"``.
    """
    from feeds import stripe

    try:
        with open(path, "rb") as handle:
            head = handle.read(64 * 1024)
    except OSError:
        return False
    return stripe.identify_report_csv(head)


def read_processor_file(
    path: str | PathLike[str], format: str | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read one processor export (Stripe, Shopify Payments, PayPal) into payout lines.

    Parameters
    ----------
    path
        The file; its format is recognised by content unless ``format`` names it.
    format
        "stripe", "shopify" or "paypal" to skip detection.

    Returns
    -------
    (lines, rejects)
        ``lines`` in :data:`PAYOUT_LINE_SCHEMA`, in file order; ``rejects`` in
        ``REJECTS_SCHEMA``.

    Raises
    ------
    FeedFormatError
        Not a recognised processor file, or one that cannot be read (the message says why,
        e.g. that a single Shopify order is not a payout file).

    Examples
    --------
    >>> lines, rejects = read_processor_file("tests/feeds/data/stripe_payout_sample.csv")  # doctest: +SKIP
    >>> lines.select("payout_id", "line_id", "gross_minor", "fee_minor", "net_minor").row(0)  # doctest: +SKIP
    ('po_1OaHk2', 'txn_3OaA01', 10000, 320, 9680)
    """
    from feeds.registry import read_any

    result = read_any(path, "processor", format)
    return result.frame, result.rejects


# --------------------------------------------------------------------------------------------
# Building results
# --------------------------------------------------------------------------------------------


def lines_frame(lines: list[dict[str, Any]]) -> pl.DataFrame:
    """Payout-line dicts (keys of :data:`PAYOUT_LINE_SCHEMA`, missing ones null) -> frame."""
    if not lines:
        return empty_frame(PAYOUT_LINE_SCHEMA)
    columns = {name: [line.get(name) for line in lines] for name in PAYOUT_LINE_SCHEMA}
    return pl.DataFrame(columns, schema=PAYOUT_LINE_SCHEMA)


def rejects_frame(rejects: list[dict[str, Any]]) -> pl.DataFrame:
    """Reject dicts (keys of ``REJECTS_SCHEMA``) -> frame sorted by line."""
    if not rejects:
        return empty_frame(REJECTS_SCHEMA)
    columns = {name: [r.get(name) for r in rejects] for name in REJECTS_SCHEMA}
    return pl.DataFrame(columns, schema=REJECTS_SCHEMA).sort("line", maintain_order=True)


def payout_result(
    format: str,
    lines: pl.DataFrame,
    rejects: pl.DataFrame,
    *,
    balances: pl.DataFrame | None = None,
    notes: list[str] | None = None,
) -> FeedResult:
    """A processor :class:`FeedResult` (accounts = the processors and currencies seen)."""
    accounts = sorted(
        {f"{p}:{c}" for p, c in lines.select("processor", "currency").unique().iter_rows()}
    )
    result = FeedResult(
        format=format,
        side="processor",
        frame=lines,
        rejects=rejects,
        accounts=accounts,
        rows_read=lines.height + rejects.height,
        notes=list(notes or []),
    )
    if balances is not None:
        result.balances = balances
    return result


# --------------------------------------------------------------------------------------------
# Amounts, dates, ids
# --------------------------------------------------------------------------------------------


def major_to_minor(value: Any, currency: str, label: str) -> int:
    """Exact minor units of a decimal amount in major units ("41.90", Decimal, int).

    Raises
    ------
    PrecisionError
        Not an exact decimal for the currency (more decimals than it allows, text that is
        not a number, a bool); the message names ``label``.
    """
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise PrecisionError(f"{label} {json.dumps(value, default=str)} is not an amount")
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?[0-9]+(\.[0-9]+)?", text):
        raise PrecisionError(f"{label} {text!r} is not a decimal number")
    try:
        return to_minor(text.lstrip("+"), currency)
    except PrecisionError as error:
        raise PrecisionError(str(error).replace("amount", label, 1)) from None


def check_currency(value: Any, label: str = "currency") -> str:
    """Upper-cased ISO 4217 code, or PrecisionError naming the problem."""
    if not isinstance(value, str) or not value.strip():
        raise PrecisionError(f"{label} is missing")
    code = value.strip().upper()
    if code not in CURRENCY_EXPONENTS:
        raise PrecisionError(f"{label} {value!r} is not an ISO 4217 code")
    return code


def date_from_epoch(value: Any, label: str) -> dt.date | None:
    """UTC date of Unix seconds (null stays null)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PrecisionError(f"{label} {value!r} is not a Unix timestamp (whole seconds)")
    try:
        return dt.datetime.fromtimestamp(value, tz=dt.UTC).date()
    except (OverflowError, OSError, ValueError):
        raise PrecisionError(f"{label} {value!r} is out of range") from None


def date_from_iso(value: Any, label: str) -> dt.date | None:
    """The date part of an ISO 8601 date or timestamp, as written (its own offset)."""
    if value is None or value == "":
        return None
    match = _ISO_DATE.match(str(value))
    if not match:
        raise PrecisionError(f"{label} {value!r} is not an ISO date (YYYY-MM-DD[THH:MM:SS])")
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:
        raise PrecisionError(f"{label} {value!r} is not a valid date") from None


def order_key_rank(key: str) -> int | None:
    """How specifically a metadata key or column names the shop's order id; None when it
    does not name one.

    The key's words (snake_case, camelCase, kebab-case, spaces) must end in "order" or
    "order" + one of id / number / no / num / nr / name / ref / reference; a shop or platform
    word before it is allowed (``woocommerce_order_id``, ``shopify_order``). A metadata column
    of a report (``payment_metadata[order_id]``) is ranked by the key inside the brackets.

    Returns
    -------
    int or None
        0 for an order id (``order_id``, ``orderId``, ``woocommerce_order_id``), 1 for an order
        number (``order_number``, ``order_no``), 2 for an order name or reference
        (``order_name``), 3 for a bare order (``order``, ``shopify_order``); None for
        ``order_key``, ``order_status``, ``border`` and other keys.

    Examples
    --------
    >>> [order_key_rank(k) for k in ("orderId", "order_no", "shopify_order", "order_key")]
    [0, 1, 3, None]
    >>> order_key_rank("payment_metadata[woocommerce_order_id]")
    0
    """
    inner = _METADATA_COLUMN.match(key)
    if inner:
        key = inner.group(1)
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    words = [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]
    if not words:
        return None
    if len(words) >= 2 and words[-2] == "order" and words[-1] in _ORDER_ID_WORDS:
        return _ORDER_ID_WORDS[words[-1]]
    last = words[-1]  # "orderid", "ORDERNUMBER", "order"
    if last.startswith("order") and last[5:] in _ORDER_ID_WORDS:
        return _ORDER_ID_WORDS[last[5:]]
    return None


def order_id_in_text(text: Any) -> str | None:
    """The order id a description names, exactly as written; None when it names none.

    The id is the word after "order" (or a label: "order id", "order no.", "order number",
    and ":" / "=" / "#:"); a "#" attached to it is part of the id as written ("#5022"). An id
    holds at least one digit ("Order for 陳大文" names none).

    Examples
    --------
    >>> order_id_in_text("Web order #5022 (Stripe)"), order_id_in_text("Order SO-2026-00114")
    ('#5022', 'SO-2026-00114')
    >>> order_id_in_text("Payment for order #1001"), order_id_in_text("Order No.: 0005022.")
    ('#1001', '0005022')
    """
    if not isinstance(text, str):
        return None
    for match in _ORDER_IN_TEXT.finditer(text):
        found = match.group(1).rstrip("./-_")
        if any(ch.isdigit() for ch in found):
            return found
    return None


def _metadata_value(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = str(value).strip()
    return text or None


def find_order_id(
    metadata: Any = None, texts: Sequence[tuple[str, Any]] = ()
) -> tuple[str | None, str | None]:
    """The shop's order id and where it was found: (id, key or text name).

    Parameters
    ----------
    metadata
        A dict of metadata (key -> value), or a list of (where, dict) to search in order (the
        charge's metadata before its payment intent's; where "" names a key by itself); the
        key ranked most specific by :func:`order_key_rank` wins, the earlier dict on a tie.
    texts
        (name, text) pairs searched after the metadata, in order, with
        :func:`order_id_in_text` (e.g. ``[("description", "Web order #5022")]``).

    Returns
    -------
    (order_id, source)
        The id exactly as written (``"#5022"``, ``"SO-2026-00114"``, ``"0005022"``; a JSON
        number as its text) and the key (``metadata[order_number]``) or text name it came from;
        (None, None) when nothing names an order.
    """
    sources = [("metadata", metadata)] if isinstance(metadata, dict) else list(metadata or [])
    best: tuple[tuple[int, int, int], str, str] | None = None
    for position, (where, data) in enumerate(sources):
        if not isinstance(data, dict):
            continue
        for order, (key, value) in enumerate(data.items()):
            rank = order_key_rank(str(key))
            found = _metadata_value(value) if rank is not None else None
            if found is None:
                continue
            candidate = ((rank, position, order), found, f"{where}[{key}]" if where else str(key))
            if best is None or candidate[0] < best[0]:
                best = candidate
    if best is not None:
        return best[1], best[2]
    for name, text in texts:
        found = order_id_in_text(text)
        if found:
            return found, name
    return None, None


def order_id_from(metadata: Any = None, description: Any = None) -> str | None:
    """The shop's order id from metadata (``order_id``, ``order_number``, ``orderId``, ...) or
    a description such as "Web order #5022" / "Order SO-2026-00114", exactly as written; None
    when neither names one (see :func:`find_order_id`)."""
    return find_order_id(metadata, [("description", description)])[0]


def with_order_source(attributes: str, source: str | None) -> str:
    """``attributes`` (a JSON object's text) with ``"order_id_from": source`` appended, the
    rest of the text left byte-exact; unchanged when ``source`` is None."""
    if source is None:
        return attributes
    entry = '"order_id_from":' + json.dumps(source, ensure_ascii=False)
    body = attributes.strip()
    if body in ("", "{}"):
        return "{" + entry + "}"
    return body[:-1].rstrip() + "," + entry + "}"


def text_or_none(value: Any) -> str | None:
    """Ids and texts from JSON as text (numbers written exactly, null stays null)."""
    if value is None:
        return None
    if isinstance(value, dict):
        inner = value.get("id")
        return None if inner is None else str(inner)
    return str(value)


def attributes_json(obj: dict[str, Any], consumed: set[str]) -> str:
    """JSON of the keys not used by a canonical column (non-ASCII kept as is)."""
    rest = {k: v for k, v in obj.items() if k not in consumed}
    return json.dumps(rest, ensure_ascii=False, default=str, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# JSON files
# --------------------------------------------------------------------------------------------


class JsonDocument:
    """A parsed JSON file plus what is needed to point at a line in it.

    Floats are parsed as :class:`~decimal.Decimal` (``parse_float``) so that no amount ever
    passes through a binary float; NaN and Infinity are refused.
    """

    def __init__(self, path: str, text: str, data: Any):
        self.path = path
        self.text = text
        self.data = data
        self._cursor = 0

    def line_of(self, key: str, value: Any) -> int:
        """Physical line of the next ``"key": value`` after the previous one found (1 if
        the text cannot be found, e.g. unusual spacing)."""
        token = json.dumps(value, ensure_ascii=False) if not isinstance(value, Decimal) else str(value)
        pattern = re.compile(r'"' + re.escape(key) + r'"\s*:\s*' + re.escape(token))
        match = pattern.search(self.text, self._cursor) or pattern.search(self.text)
        if not match:
            return 1
        self._cursor = match.end()
        return self.text.count("\n", 0, match.start()) + 1

    def raw(self, obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, default=str, separators=(",", ":"))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number recon accepts")


def load_json(path: str | PathLike[str], what: str) -> JsonDocument:
    """Read a UTF-8 JSON file (BOM accepted) without floats.

    Raises
    ------
    FeedFormatError
        Missing, unreadable, not UTF-8, empty, or not valid JSON (with the line of the error).
    """
    source = str(path)
    file = Path(source)
    if not file.is_file():
        problem = "is a directory, not a file" if file.is_dir() else "file not found; check the path"
        raise FeedFormatError(source, problem)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise FeedFormatError(source, f"cannot be read ({error.strerror or error})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise FeedFormatError(
            source, f"is not UTF-8 JSON (byte 0x{data[error.start]:02x} at offset {error.start}); "
            f"a {what} is UTF-8", line=line
        ) from None
    if not text.strip():
        raise FeedFormatError(source, f"is empty; a {what} holds a JSON object or list")
    try:
        parsed = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        line = getattr(error, "lineno", None)
        message = getattr(error, "msg", None) or str(error) or type(error).__name__
        raise FeedFormatError(
            source, f"is not valid JSON ({message}); a {what} must be the file exactly as exported",
            line=line,
        ) from None
    return JsonDocument(source, text, parsed)


def json_head(head: bytes) -> str | None:
    """The first 64 KiB as text when they look like the start of a JSON document, else None."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:65536]
    if not text.startswith((b"{", b"[")):
        return None
    return text.decode("utf-8", errors="replace")


def decimal_or_none(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except (InvalidOperation, ValueError):
        return None
