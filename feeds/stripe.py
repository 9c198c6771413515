"""Feeds stage: Stripe exports -> canonical payout lines.

Two kinds of input:

* **Itemized report CSVs** ("Payout reconciliation - itemized", "Balance change from activity -
  itemized"): one row per balance transaction with decimal ``gross``, ``fee`` and ``net`` in
  major units and a lower-case currency. Stripe's ``fee`` is positive and ``gross - fee ==
  net`` (a charge of 20.00 with a 0.88 fee nets 19.12; a dispute of -10.00 with a 15.00 fee nets
  -25.00); rows where that does not hold are rejected.
* **API JSON**: a ``balance_transaction`` or ``payout`` object, a list object
  (``{"object": "list", "data": [...]}``) or a bare array of them. API amounts are integers in
  Stripe's minor unit, which is the ISO 4217 one except for Stripe's zero-decimal currencies
  (JPY 1500 is 1500 yen; MGA is zero-decimal at Stripe but has 2 ISO decimals) and ISK (two
  decimals at Stripe, none in ISO: the amount must be a multiple of 100). A decimal string
  (dj-stripe stores ``"10.00"``) is taken as major units. A payout becomes one line with category
  ``payout`` and negative amounts (money leaves the Stripe balance to the bank).

Other Stripe objects (a charge, the OpenAPI fixture bundle) are refused with the reason.
Columns and keys the canonical table has no place for are kept, byte-exact, in ``attributes``.
"""

from __future__ import annotations

import json
from os import PathLike
from typing import Any

import polars as pl

from feeds._common import reject_row
from feeds.canonical_csv import (
    amount_exprs,
    as_schema,
    attributes_expr,
    currency_exprs,
    read_raw_table,
    reject_frame,
    resolve_columns,
)
from feeds.processor import (
    STRIPE_REQUIRED,
    JsonDocument,
    attributes_json,
    check_currency,
    date_from_epoch,
    find_order_id,
    json_head,
    lines_frame,
    load_json,
    major_to_minor,
    order_id_in_text,
    order_key_rank,
    payout_result,
    rejects_frame,
    text_or_none,
    with_order_source,
)
from models.errors import FeedFormatError, PrecisionError
from models.money import currency_exponent
from models.schema import PAYOUT_LINE_SCHEMA, REJECTS_SCHEMA, FeedResult

__all__ = [
    "FORMAT",
    "SIDES",
    "STRIPE_REQUIRED",
    "api_object_line",
    "identify",
    "read",
    "stripe_minor_to_iso",
]

FORMAT = "stripe"
SIDES: tuple[str, ...] = ("processor",)

# STRIPE_REQUIRED (the columns a Stripe report must have, header names case-insensitive) is
# defined once in feeds.processor, which cannot import this module at load time
_STRIPE_KNOWN: tuple[str, ...] = STRIPE_REQUIRED + (
    "automatic_payout_id",
    "available_on_utc",
    "available_on",
    "created_utc",
    "created",
    "source_id",
    "description",
)
_WHAT = "Stripe itemized report CSV"
_HINT = (
    "expected a Stripe itemized report (payout reconciliation or balance change from activity) "
    "downloaded as CSV, with columns "
    + ", ".join(STRIPE_REQUIRED)
    + " (plus optional automatic_payout_id, available_on_utc, created_utc, source_id, description)"
)
# "2020-01-27", "2020-01-27 00:00:00", "2020-01-27T00:00:00Z": the date is the first 10 chars
_TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9:.]+(Z|[+-][0-9:]+)?)?$"

#: Stripe's zero-decimal currencies (amounts are whole units) and other exponents that differ
#: from ISO 4217
STRIPE_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split(), 0
    ),
    "ISK": 2,
}

#: Stripe balance transaction ``reporting_category`` / ``type`` -> canonical category
_CATEGORIES: dict[str, str] = {
    "charge": "charge",
    "payment": "charge",
    "refund": "refund",
    "payment_refund": "refund",
    "refund_failure": "refund",
    "dispute": "dispute",
    "dispute_reversal": "dispute_reversal",
    "fee": "fee",
    "stripe_fee": "fee",
    "network_cost": "fee",
    "application_fee": "fee",
    "tax": "fee",
    "payout": "payout",
    "payout_cancel": "payout_reversal",
    "payout_failure": "payout_reversal",
    "payout_reversal": "payout_reversal",
    "transfer": "transfer",
    "transfer_reversal": "transfer",
    "connect_collection_transfer": "transfer",
    "topup": "topup",
    "topup_reversal": "topup",
    "risk_reserved_funds": "reserve",
    "adjustment": "adjustment",
    "other_adjustment": "adjustment",
    "partial_capture_reversal": "adjustment",
    "climate_order_purchase": "other",
    "contribution": "other",
}


def _category(value: str) -> str:
    return _CATEGORIES.get(value.strip().lower(), "other") if value else "other"


def stripe_minor_to_iso(amount: int, currency: str, label: str = "amount") -> int:
    """Convert a Stripe API integer amount to ISO 4217 minor units of ``currency``.

    Raises
    ------
    PrecisionError
        The amount is not an integer, or (ISK) not a whole number of ISO units.

    Examples
    --------
    >>> stripe_minor_to_iso(2000, "USD"), stripe_minor_to_iso(1500, "JPY")
    (2000, 1500)
    >>> stripe_minor_to_iso(50000, "ISK"), stripe_minor_to_iso(7, "MGA")
    (500, 700)
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise PrecisionError(
            f"{label} {amount!r} is not an integer; Stripe API amounts are whole minor units"
        )
    iso = currency_exponent(currency)
    stripe = STRIPE_EXPONENTS.get(currency, iso)
    if iso >= stripe:
        return amount * 10 ** (iso - stripe)
    step = 10 ** (stripe - iso)
    if amount % step:
        raise PrecisionError(
            f"{label} {amount} is not a whole number of {currency} (Stripe writes {currency} "
            f"with {stripe} decimals, ISO 4217 allows {iso})"
        )
    return amount // step


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def identify_report_csv(head: bytes) -> bool:
    """Whether ``head`` starts with a Stripe report CSV header (all required columns)."""
    text = head.lstrip(b"\xef\xbb\xbf")[:8192].decode("utf-8", errors="replace")
    for line in text.splitlines():
        if line.strip():
            names = {n.strip().strip('"').strip().lower() for n in line.split(",")}
            return set(STRIPE_REQUIRED) <= names
    return False


def identify(head: bytes, path: str = "") -> bool:
    """A Stripe report CSV, or JSON made of Stripe API objects (``"object": ...`` keys)."""
    if identify_report_csv(head):
        return True
    text = json_head(head)
    if text is None:
        return False
    return ('"object"' in text and ('"id"' in text or '"data"' in text)) or (
        '"resources"' in text and '"balance_transaction"' in text
    )


# --------------------------------------------------------------------------------------------
# Report CSV
# --------------------------------------------------------------------------------------------


def _dates(text: pl.Expr, label: str) -> tuple[pl.Expr, pl.Expr]:
    """(Date, reason) from Stripe's ``*_utc`` text, or epoch seconds."""
    s = text.str.strip_chars()
    epoch = s.str.contains(r"^[0-9]{9,11}$")
    from_text = pl.when(s.str.contains(_TIMESTAMP_PATTERN)).then(
        s.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    )
    from_epoch = pl.from_epoch(s.cast(pl.Int64, strict=False), time_unit="s").dt.date()
    parsed = pl.when(epoch).then(from_epoch).otherwise(from_text)
    reason = (
        pl.when(s.is_null() | (s == ""))
        .then(pl.lit(None, dtype=pl.Utf8))
        .when(parsed.is_null())
        .then(pl.lit(f"{label} '") + s + pl.lit("' is not a date (YYYY-MM-DD[ HH:MM:SS])"))
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    return parsed, reason


def _prefer_utc(columns: dict[str, str], extras: list, header: list[str], name: str) -> str | None:
    """Keep ``NAME_utc`` over the local-time ``NAME`` (which stays in the attributes)."""
    utc = f"{name}_utc"
    if utc in columns and name in columns:
        local = columns.pop(name)
        extras.append((header[int(local[1:])], local))
        extras.sort(key=lambda item: int(item[1][1:]))
    if utc in columns:
        return utc
    return name if name in columns else None


def read_report_csv(path: str | PathLike[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read a Stripe itemized report CSV: (lines, rejects).

    A row is rejected when its currency is unknown, an amount is not exact for the currency,
    ``gross - fee != net``, the balance transaction id is empty or already seen earlier in the
    file, or a date is not a date.

    Raises
    ------
    FeedFormatError
        Not a readable UTF-8 CSV, or not a Stripe report (the message lists the columns).
    """
    table = read_raw_table(path, what=_WHAT)
    columns, extras = resolve_columns(table, _STRIPE_KNOWN, STRIPE_REQUIRED, what=_WHAT, hint=_HINT)
    available_label = _prefer_utc(columns, extras, table.header, "available_on")
    created_label = _prefer_utc(columns, extras, table.header, "created")
    # the shop's order id: the metadata column whose key names it most specifically
    # (payment_metadata[order_id] before [order_number] before [order]), else the description
    ranked = sorted(
        (rank, position, name, column)
        for position, (name, column) in enumerate(extras)
        if (rank := order_key_rank(name)) is not None
    )
    order_columns = [(name, column) for _, _, name, column in ranked]

    def text(name: str) -> pl.Expr:
        return pl.col(columns[name]) if name in columns else pl.lit("")

    currency, currency_reason = currency_exprs(pl.col(columns["currency"]))
    line_id = pl.col(columns["balance_transaction_id"]).str.strip_chars()
    checked = table.rows.with_columns(
        _currency=currency, _r_currency=currency_reason, _line_id=line_id
    )
    for name in ("gross", "fee", "net"):
        amount, reason = amount_exprs(
            pl.col(columns[name]), pl.col("_currency"), pl.col("_r_currency"), label=name
        )
        checked = checked.with_columns(amount.alias(f"_{name}"), reason.alias(f"_r_{name}"))
    for label, target in ((available_label, "available"), (created_label, "created")):
        if label is not None:
            value, reason = _dates(pl.col(columns[label]), label)
        else:
            value, reason = pl.lit(None, dtype=pl.Date), pl.lit(None, dtype=pl.Utf8)
        checked = checked.with_columns(value.alias(f"_{target}"), reason.alias(f"_r_{target}"))
    amounts_ok = pl.all_horizontal(
        [pl.col(f"_r_{n}").is_null() for n in ("currency", "gross", "fee", "net")]
    )
    first_line = pl.col("source_line").first().over("_line_id")
    checked = checked.with_columns(
        _r_line_id=pl.when(pl.col("_line_id") == "")
        .then(pl.lit("balance_transaction_id is empty"))
        .when(first_line != pl.col("source_line"))
        .then(
            pl.lit("balance_transaction_id '")
            + pl.col("_line_id")
            + pl.lit("' already appears on line ")
            + first_line.cast(pl.Utf8)
        ),
        _r_sum=pl.when(amounts_ok & (pl.col("_gross") - pl.col("_fee") != pl.col("_net"))).then(
            pl.lit("gross - fee != net (")
            + pl.col(columns["gross"]).str.strip_chars()
            + pl.lit(" - ")
            + pl.col(columns["fee"]).str.strip_chars()
            + pl.lit(" != ")
            + pl.col(columns["net"]).str.strip_chars()
            + pl.lit("); Stripe reports a positive fee with net = gross - fee")
        ),
    )
    checks_by_column = {
        "balance_transaction_id": "_r_line_id",
        "currency": "_r_currency",
        "gross": "_r_gross",
        "fee": "_r_fee",
        "net": "_r_net",
    }
    checks = sorted(checks_by_column.items(), key=lambda item: int(columns[item[0]][1:]))
    checks.append(("net", "_r_sum"))  # only meaningful once the amounts themselves are fine
    if available_label is not None:
        checks.append((available_label, "_r_available"))
    if created_label is not None:
        checks.append((created_label, "_r_created"))
    rejects = reject_frame(checked, table.path, checks)
    good = checked.filter(pl.all_horizontal([pl.col(reason).is_null() for _, reason in checks]))
    payout = text("automatic_payout_id").str.strip_chars()
    order, order_source = _order_exprs(order_columns, columns.get("description"))
    attributes = attributes_expr([("reporting_category", columns["reporting_category"]), *extras])
    lines = good.select(
        processor=pl.lit("stripe"),
        payout_id=pl.when(payout != "").then(payout),
        line_id="_line_id",
        category=text("reporting_category")
        .str.strip_chars()
        .str.to_lowercase()
        .replace_strict(_CATEGORIES, default="other", return_dtype=pl.Utf8),
        currency="_currency",
        gross_minor="_gross",
        fee_minor="_fee",
        net_minor="_net",
        available_on="_available",
        created="_created",
        source_id=text("source_id").str.strip_chars(),
        order_id=order,
        description=text("description"),
        attributes=pl.when(order_source.is_null())
        .then(attributes)
        .when(attributes == "{}")
        .then(pl.lit('{"order_id_from":') + order_source + pl.lit("}"))
        .otherwise(
            attributes.str.head(-1) + pl.lit(',"order_id_from":') + order_source + pl.lit("}")
        ),
        source_file=pl.lit(table.path),
        source_line="source_line",
    )
    all_rejects = pl.concat([table.rejects, rejects]).sort("line", maintain_order=True)
    return as_schema(lines, PAYOUT_LINE_SCHEMA), as_schema(all_rejects, REJECTS_SCHEMA)


def _order_exprs(
    order_columns: list[tuple[str, str]], description_column: str | None
) -> tuple[pl.Expr, pl.Expr]:
    """(order id, where it came from as JSON text) of a report row: the first non-empty of
    ``order_columns`` (header name, column), else the order a description names; both null
    when none does."""
    order = pl.lit(None, dtype=pl.Utf8)
    source = pl.lit(None, dtype=pl.Utf8)
    if description_column:
        order = pl.col(description_column).map_elements(order_id_in_text, return_dtype=pl.Utf8)
        source = pl.when(order.is_not_null()).then(pl.lit(json.dumps("description")))
    for name, column in reversed(order_columns):
        value = pl.col(column).str.strip_chars()
        present = value.is_not_null() & (value != "")
        order = pl.when(present).then(value).otherwise(order)
        source = pl.when(present).then(pl.lit(json.dumps(name, ensure_ascii=False))).otherwise(source)
    return order, source


# --------------------------------------------------------------------------------------------
# API JSON
# --------------------------------------------------------------------------------------------

_BT_KEYS = {
    "id",
    "object",
    "amount",
    "fee",
    "net",
    "currency",
    "available_on",
    "created",
    "source",
    "description",
}
_PAYOUT_KEYS = {"id", "object", "amount", "currency", "arrival_date", "created", "description"}


def _objects(doc: JsonDocument) -> list[Any]:
    data = doc.data
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        raise FeedFormatError(doc.path, "is JSON but not a Stripe object or list of objects")
    if "resources" in data and isinstance(data["resources"], dict):
        raise FeedFormatError(
            doc.path,
            "is Stripe's OpenAPI fixture bundle (one example object per API resource), not an "
            "export of balance transactions or payouts; export GET /v1/balance_transactions "
            "(or /v1/payouts) as JSON",
        )
    kind = data.get("object")
    if kind == "list":
        items = data.get("data")
        if not isinstance(items, list):
            raise FeedFormatError(doc.path, "is a Stripe list object without a 'data' array")
        return items
    if kind in ("balance_transaction", "payout"):
        return [data]
    if isinstance(kind, str):
        hint = ""
        if isinstance(data.get("balance_transaction"), str):
            hint = f" (its balance transaction is {data['balance_transaction']})"
        raise FeedFormatError(
            doc.path,
            f"is a Stripe {kind} object, not a balance transaction or payout{hint}; recon reads "
            "the balance transactions that move money (GET /v1/balance_transactions, or the "
            "itemized payout reconciliation report)",
        )
    raise FeedFormatError(
        doc.path,
        "is JSON without a Stripe 'object' key; expected a balance_transaction, a payout, or a "
        "list of them",
    )


def _balance_transaction(obj: dict[str, Any], currency: str) -> dict[str, Any]:
    gross = stripe_minor_to_iso(obj.get("amount"), currency, "amount")
    fee = stripe_minor_to_iso(obj.get("fee", 0), currency, "fee")
    net = stripe_minor_to_iso(obj.get("net"), currency, "net")
    if gross - fee != net:
        raise PrecisionError(
            f"amount - fee != net ({obj.get('amount')} - {obj.get('fee')} != {obj.get('net')}); "
            "Stripe reports a positive fee with net = amount - fee"
        )
    category_text = obj.get("reporting_category") or obj.get("type") or ""
    source = obj.get("source")
    kind = str(obj.get("type") or "")
    order_id, order_source = _order_of(obj)
    return {
        "payout_id": text_or_none(source) if kind == "payout" else None,
        "category": _category(str(category_text)),
        "gross_minor": gross,
        "fee_minor": fee,
        "net_minor": net,
        "available_on": date_from_epoch(obj.get("available_on"), "available_on"),
        "created": date_from_epoch(obj.get("created"), "created"),
        "source_id": text_or_none(source),
        "order_id": order_id,
        "description": text_or_none(obj.get("description")) or "",
        "attributes": with_order_source(attributes_json(obj, _BT_KEYS), order_source),
    }


def _order_of(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    """The shop's order id of a balance transaction and where it was found: the metadata of
    its expanded source (a charge; a refund's or dispute's charge) or of that source's payment
    intent, then the descriptions."""
    metadata: list[tuple[str, Any]] = []
    texts: list[tuple[str, Any]] = [("description", obj.get("description"))]
    source = obj.get("source")
    if isinstance(source, dict):
        charge = source.get("charge")
        for where, item in (("source", source), ("source.charge", charge)):
            if not isinstance(item, dict):
                continue
            metadata.append((f"{where}.metadata", item.get("metadata")))
            intent = item.get("payment_intent")
            if isinstance(intent, dict):
                metadata.append((f"{where}.payment_intent.metadata", intent.get("metadata")))
            texts.append((f"{where}.description", item.get("description")))
    return find_order_id(metadata, texts)


def _payout(obj: dict[str, Any], currency: str) -> dict[str, Any]:
    amount = obj.get("amount")
    if isinstance(amount, str):  # dj-stripe and some exports store major units as text
        minor = major_to_minor(amount, currency, "amount")
    else:
        minor = stripe_minor_to_iso(amount, currency, "amount")
    return {
        "payout_id": text_or_none(obj.get("id")),
        "category": "payout",
        "gross_minor": -minor,
        "fee_minor": 0,
        "net_minor": -minor,
        "available_on": date_from_epoch(obj.get("arrival_date"), "arrival_date"),
        "created": date_from_epoch(obj.get("created"), "created"),
        "source_id": text_or_none(obj.get("balance_transaction")),
        "order_id": None,
        "description": text_or_none(obj.get("description")) or "",
        "attributes": attributes_json(obj, _PAYOUT_KEYS),
    }


def read_api_json(path: str | PathLike[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read Stripe API JSON (balance transactions and payouts): (lines, rejects).

    ``source_line`` is the line of each object's ``"id"``. An object is rejected when it is
    another kind of object, its id or currency is missing, an amount is not an exact integer of
    minor units, ``amount - fee != net``, an id repeats, or a timestamp is not one.
    """
    doc = load_json(path, "Stripe API JSON")
    objects = _objects(doc)
    lines: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for position, obj in enumerate(objects, start=1):
        if isinstance(obj, dict) and obj.get("id") is not None:
            line = doc.line_of("id", obj["id"])
        else:
            line = position
        try:
            if not isinstance(obj, dict):
                raise PrecisionError("list item is not a JSON object")
            line_id = text_or_none(obj.get("id"))
            if line_id in seen:
                raise PrecisionError(f"id '{line_id}' already appears on line {seen[line_id]}")
            row = api_object_line(obj, source_file=doc.path, source_line=line)
        except PrecisionError as error:
            rejects.append(reject_row(doc.path, line, "", str(error), doc.raw(obj)))
            continue
        seen[row["line_id"]] = line
        lines.append(row)
    return lines_frame(lines), rejects_frame(rejects)


def api_object_line(obj: dict[str, Any], *, source_file: str, source_line: int) -> dict[str, Any]:
    """One Stripe API ``balance_transaction`` or ``payout`` object as a payout line.

    The mapping every Stripe API input shares: a JSON export (:func:`read_api_json`), a webhook
    event and a page of an API list (:mod:`feeds.stripe_events`).

    Parameters
    ----------
    obj
        The object as parsed from JSON (decimals as :class:`~decimal.Decimal`, never float).
    source_file, source_line
        Where it came from (a file and line, or an event id and 1).

    Returns
    -------
    dict
        The keys of :data:`~models.schema.PAYOUT_LINE_SCHEMA`; ``processor`` is ``"stripe"``,
        ``line_id`` the object's id.

    Raises
    ------
    PrecisionError
        Another kind of object, a missing id or currency, an amount that is not an exact
        integer of minor units, ``amount - fee != net``, or a timestamp that is not one.

    Examples
    --------
    >>> api_object_line({"object": "payout", "id": "po_1", "amount": 9680, "currency": "hkd",
    ...                  "arrival_date": 1767830400}, source_file="evt_1", source_line=1)["net_minor"]
    -9680
    """
    kind = obj.get("object")
    if kind not in ("balance_transaction", "payout"):
        raise PrecisionError(
            f"a Stripe {kind or 'object without an object type'} is not a balance "
            "transaction or payout"
        )
    line_id = text_or_none(obj.get("id"))
    if not line_id:
        raise PrecisionError("id is missing")
    currency = check_currency(obj.get("currency"))
    row = (_balance_transaction if kind == "balance_transaction" else _payout)(obj, currency)
    return {
        **row,
        "processor": "stripe",
        "line_id": line_id,
        "currency": currency,
        "source_file": source_file,
        "source_line": source_line,
    }


def read(path: str | PathLike[str], side: str = "processor", **options) -> FeedResult:
    """Read a Stripe report CSV or Stripe API JSON into payout lines.

    Raises
    ------
    FeedFormatError
        Neither a Stripe report CSV nor Stripe API JSON of balance transactions / payouts
        (the message says what the file is instead, where it can tell).
    """
    if side != "processor":
        raise FeedFormatError(str(path), f"a Stripe export is a processor file, not {side}")
    if options:
        raise FeedFormatError(str(path), f"the Stripe reader takes no options ({', '.join(options)})")
    try:
        with open(path, "rb") as handle:
            head = handle.read(64 * 1024)
    except OSError:
        head = b""
    if json_head(head) is not None:
        lines, rejects = read_api_json(path)
    else:
        lines, rejects = read_report_csv(path)
    return payout_result(FORMAT, lines, rejects)
