"""Feeds stage: PayPal and Venmo exports -> canonical payout lines.

* **PayPal activity download CSV**, in its layouts: the full one (Date, Time, Time Zone, Name,
  Type, Status, Currency, Gross, Fee, Net, ..., Transaction ID, Reference Txn ID, Balance), the
  custom-columns one (any subset in any order, ``TimeZone`` spelled either way) and the short one
  (Date, Time, Time Zone, Name, Type, Status, Amount, Receipt ID, Balance). PayPal writes the fee
  negative (``net = gross + fee``); recon stores it positive (``fee_minor = -fee``) and checks
  the sum. A layout without Currency is taken as USD (said in the notes); one without
  Transaction ID gets a fingerprint id. Dates are M/D/YYYY for US time zones and exports, and
  D/M/YYYY or D.M.YYYY when the values say so (a day above 12).
* **PayPal transaction-detail JSON** (the web activity page's data for one transaction): gross
  from ``rawAmounts``, fee and net from the localized texts ("1,63 EUR"), the localized date
  ("14. März 2022").
* **Venmo statement CSV**: transaction rows (with an ID) become lines with ``processor =
  "venmo"``; the statement's beginning and ending balances become balances, so
  ``recon inspect`` can check opening + movements = closing.

* **PayPal Settlement Report (STL)** CSV, the daily SFTP report (``STL-YYYYMMDD.NN.VVV.CSV``):
  records typed by their first field (RH report header, FH file header, SH section header, CH
  the column names of the section's body, SB one transaction, SF / SC section footer and record
  count, RF / RC / FF report and file footers). Each SB row becomes a line: the ``Transaction
  Debit or Credit`` (CR / DR) signs the gross, the ``Fee Debit or Credit`` the fee (DR = PayPal
  took a fee, ``fee_minor`` positive), the category comes from the T-code's group (T00 payment,
  T04 withdrawal to the bank = payout, T11 reversal / refund, T12 chargeback, T15 hold, ...).
  Amounts in the STL are unsigned digits with two implied decimals whatever the currency ("100.00
  USD and 100 JPY are both 10000", says PayPal's specification); a JPY amount that is not a
  whole number of yen is rejected, not rounded. The SC record counts are checked against the SB
  rows read (a difference is reported in the notes). The columns are taken from the CH row, so
  a report with its columns in another order, or with more of them, reads the same.

Amounts are parsed from their text exactly; categories map PayPal's ``Type`` onto the canonical
ones (the original stays in the attributes). The shop's order id, exactly as written, comes
from the Invoice Number (what a shop's checkout sends PayPal as the invoice id), else the Custom
Field (a JSON object of the cart's, ``{"order_id": 1234, ...}``, or text naming the order),
else the order the Item Title, Subject or Note names ("Order #1001"); ``attributes`` names the
column it came from (``order_id_from``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date
from decimal import Decimal
from os import PathLike
from pathlib import Path
from typing import Any

import polars as pl

from feeds._common import next_fingerprint, reject_row
from feeds.canonical_csv import read_raw_table
from feeds.processor import (
    attributes_json,
    check_currency,
    find_order_id,
    json_head,
    lines_frame,
    load_json,
    major_to_minor,
    order_id_in_text,
    payout_result,
    rejects_frame,
    with_order_source,
)
from models.errors import FeedFormatError, PrecisionError
from models.schema import BALANCE_SCHEMA, FeedResult

__all__ = ["FORMAT", "SIDES", "identify", "read"]

FORMAT = "paypal"
SIDES: tuple[str, ...] = ("processor",)

_US_ZONES = {"PST", "PDT", "MST", "MDT", "CST", "CDT", "EST", "EDT", "AKST", "AKDT", "HST"}
_MONTHS = {
    # German, English, French month names (lower case, without trailing dots)
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "april": 4, "mai": 5, "juni": 6,
    "juli": 7, "august": 8, "september": 9, "oktober": 10, "november": 11, "dezember": 12,
    "january": 1, "february": 2, "march": 3, "may": 5, "june": 6, "july": 7, "october": 10,
    "december": 12, "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8,
    "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
    "janvier": 1, "février": 2, "mars": 3, "avril": 4, "juin": 6, "juillet": 7, "août": 8,
    "septembre": 9, "octobre": 10, "novembre": 11, "décembre": 12,
}


def _category(kind: str, gross: int) -> str:
    text = kind.lower()
    rules = (
        ("refund", "refund"), ("chargeback", "dispute"), ("dispute", "dispute"),
        ("reversal", "adjustment"), ("hold", "reserve"), ("reserve", "reserve"),
        ("withdraw", "payout"), ("transfer to bank", "payout"), ("standard transfer", "payout"),
        ("instant transfer", "payout"), ("bank deposit", "topup"), ("add funds", "topup"),
        ("charge from debit card", "topup"), ("card deposit", "topup"), ("fee", "fee"),
        ("currency conversion", "adjustment"),
    )
    for needle, category in rules:
        if needle in text:
            return category
    return "charge" if gross >= 0 else "transfer"


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def _header_names(head: bytes) -> set[str]:
    text = head.lstrip(b"\xef\xbb\xbf")[:8192].decode("utf-8", errors="replace")
    for line in text.splitlines():
        if line.strip():
            return {n.strip().strip('"').strip().lower() for n in line.split(",")}
    return set()


def _is_venmo(names: set[str]) -> bool:
    return {"id", "datetime", "amount (total)"} <= names


def _is_paypal_csv(names: set[str]) -> bool:
    zone = "time zone" in names or "timezone" in names
    return zone and "date" in names and "status" in names and ("gross" in names or "amount" in names)


def _is_settlement_report(head: bytes, need_columns: bool = True) -> bool:
    """An STL report: its first record is an RH row and (``need_columns``) a CH row names the
    transaction columns."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head[: len(head) // 2 * 2].decode("utf-16", errors="replace")
    else:
        text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.split(",", 1)[0].strip().strip('"') != "RH":
        return False
    return not need_columns or any(
        line.split(",", 1)[0].strip().strip('"') == "CH" and "transaction event code" in line.lower()
        for line in text.splitlines()
    )


def identify(head: bytes, path: str = "") -> bool:
    """A PayPal activity CSV, a PayPal Settlement Report (STL), a Venmo statement CSV, or
    PayPal transaction-detail JSON."""
    names = _header_names(head)
    if _is_venmo(names) or _is_paypal_csv(names) or _is_settlement_report(head):
        return True
    text = json_head(head)
    return text is not None and '"transactionId"' in text and '"grossAmount"' in text


# --------------------------------------------------------------------------------------------
# Amount and date text
# --------------------------------------------------------------------------------------------


def _amount_text(text: str) -> str:
    """'1,120.00' / '1.120,00' / '- $12.01' / '49,87\u00a0EUR' -> canonical '-12.01'."""
    s = text.strip().replace("\u00a0", " ")
    negative = s.startswith(("-", "−")) or (s.startswith("(") and s.endswith(")"))
    body = re.sub(r"[A-Za-z$€£¥\s()+\-−]", "", s)
    if "," in body and "." in body:
        decimal = "," if body.rfind(",") > body.rfind(".") else "."
    elif "," in body:
        decimal = "," if re.search(r",[0-9]{1,2}$", body) else ""
    else:
        decimal = "."
    if decimal == ",":
        body = body.replace(".", "").replace(",", ".")
    else:
        body = body.replace(",", "")
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", body):
        raise PrecisionError(f"{text!r} is not an amount")
    return ("-" if negative else "") + body


def _minor(text: str, currency: str, label: str) -> int:
    if text is None or not str(text).strip():
        return 0
    try:
        return major_to_minor(_amount_text(str(text)), currency, label)
    except PrecisionError as error:
        raise PrecisionError(f"{label} {text!r}: {error}") from None


def _day_first(values: list[str], zones: list[str]) -> bool:
    """Whether slash dates are D/M/Y: a first part above 12 says so; a second part above 12 or
    a US time zone says M/D/Y; undecided files are M/D/Y (PayPal's US export)."""
    firsts, seconds = [], []
    for value in values:
        parts = re.split(r"[/.]", value.strip())
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
            firsts.append(int(parts[0]))
            seconds.append(int(parts[1]))
    if any(f > 12 for f in firsts):
        return True
    if any(s > 12 for s in seconds) or any(z.strip().upper() in _US_ZONES for z in zones):
        return False
    return any("." in v for v in values)


def _date(value: str, day_first: bool) -> date:
    text = value.strip()
    match = re.fullmatch(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[T ].*)?", text)
    if match:
        y, m, d = (int(g) for g in match.groups())
    else:
        match = re.fullmatch(r"([0-9]{1,2})[/.]([0-9]{1,2})[/.]([0-9]{2,4})", text)
        if not match:
            raise PrecisionError(f"date {value!r} is not a date (M/D/YYYY, D.M.YYYY or YYYY-MM-DD)")
        a, b, y = (int(g) for g in match.groups())
        y += 2000 if y < 100 else 0
        d, m = (a, b) if day_first else (b, a)
    try:
        return date(y, m, d)
    except ValueError:
        raise PrecisionError(f"date {value!r} is not a valid date") from None


def _localized_date(value: str) -> date:
    """'14. März 2022', '14 mars 2022', 'March 14, 2022' -> date."""
    text = value.strip().lower().replace(",", " ").replace(".", " ")
    parts = text.split()
    numbers = [int(p) for p in parts if p.isdigit()]
    months = [_MONTHS[p] for p in parts if p in _MONTHS]
    if len(numbers) != 2 or len(months) != 1:
        raise PrecisionError(f"date {value!r} is not a date recon can read")
    day, year = (numbers[0], numbers[1]) if numbers[1] > 31 else (numbers[1], numbers[0])
    try:
        return date(year, months[0], day)
    except ValueError:
        raise PrecisionError(f"date {value!r} is not a valid date") from None


# --------------------------------------------------------------------------------------------
# Order ids
# --------------------------------------------------------------------------------------------

#: the column holding the invoice id the shop sent PayPal (its order number); "Invoice Id" is
#: PayPal Invoicing's own id (INV2-...), not the shop's
_INVOICE_COLUMNS = ("invoice number",)
#: columns of a cart's custom data
_CUSTOM_COLUMNS = ("custom field", "custom number", "custom")
#: free text that may name the order
_TEXT_COLUMNS = ("item title", "subject", "note")


def _custom_order(text: str) -> str | None:
    """The order id in a Custom Field: a JSON object's order key ({"order_id": 1234}), or text
    naming the order; None for other custom data (a bare token may be anything)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return find_order_id([("", data)])[0]
    return order_id_in_text(stripped)


def _order_of(cells: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """(order id, header it came from) of a row whose order columns are ``cells`` (header as
    written, text): Invoice Number, then Custom Field, then the text columns."""
    by_name = {header.strip().lower(): (header.strip(), text or "") for header, text in cells}
    for name in _INVOICE_COLUMNS:
        header, text = by_name.get(name, ("", ""))
        if text.strip():
            return text.strip(), header
    for name in _CUSTOM_COLUMNS:
        header, text = by_name.get(name, ("", ""))
        found = _custom_order(text) if text.strip() else None
        if found:
            return found, header
    for name in _TEXT_COLUMNS:
        header, text = by_name.get(name, ("", ""))
        found = order_id_in_text(text)
        if found:
            return found, header
    return None, None


# --------------------------------------------------------------------------------------------
# CSV layouts
# --------------------------------------------------------------------------------------------


def _table_rows(path: str, what: str):
    table = read_raw_table(path, what=what)
    names = [n.strip() for n in table.header]
    index: dict[str, str] = {}
    for i, name in enumerate(names):
        index.setdefault(name.lower(), f"c{i}")
    return table, names, index


def _extras(row: dict[str, Any], names: list[str], used: set[str]) -> str:
    rest = {}
    for i, name in enumerate(names):
        value = row[f"c{i}"]
        if name.lower() in used or (not name and not (value or "").strip()):
            continue
        rest[name or f"(column {i + 1})"] = value
    return json.dumps(rest, ensure_ascii=False, separators=(",", ":"))


def _read_paypal_csv(path: str) -> FeedResult:
    table, names, index = _table_rows(path, "PayPal activity CSV")
    rows = table.rows.to_dicts()

    def get(row: dict[str, Any], *keys: str) -> str:
        for key in keys:
            if key in index:
                return row[index[key]] or ""
        return ""

    notes: list[str] = []
    has_currency = "currency" in index
    if not has_currency:
        notes.append("no Currency column: amounts taken as USD (PayPal's US export)")
    day_first = _day_first([get(r, "date") for r in rows], [get(r, "time zone", "timezone") for r in rows])
    used = {"date", "currency", "gross", "fee", "net", "amount", "transaction id", "reference txn id",
            "invoice number", "item title", "name", "type"}
    order_cells = [
        (names[int(column[1:])], column)
        for name, column in index.items()
        if name in (*_INVOICE_COLUMNS, *_CUSTOM_COLUMNS, *_TEXT_COLUMNS)
    ]
    lines, rejects = [], []
    seen_ids: dict[str, int] = {}
    fingerprints: dict[str, int] = {}
    for row in table.rows.iter_rows(named=True):
        line = row["source_line"]
        try:
            currency = check_currency(get(row, "currency")) if has_currency else "USD"
            if "gross" in index:
                gross = _minor(get(row, "gross"), currency, "Gross")
                fee_written = _minor(get(row, "fee"), currency, "Fee")
                net = _minor(get(row, "net"), currency, "Net") if "net" in index else gross + fee_written
                if gross + fee_written != net:
                    raise PrecisionError(
                        f"Gross + Fee != Net ({get(row, 'gross')} + {get(row, 'fee')} != "
                        f"{get(row, 'net')}); PayPal writes the fee negative"
                    )
            else:
                gross = net = _minor(get(row, "amount"), currency, "Amount")
                fee_written = 0
            when = _date(get(row, "date"), day_first)
            line_id = get(row, "transaction id").strip()
            if not line_id:
                parts = [get(row, k) for k in ("date", "time", "name", "type", "status")]
                line_id = next_fingerprint([*parts, str(gross), currency], fingerprints)
            if line_id in seen_ids:
                raise PrecisionError(f"Transaction ID {line_id} already appears on line {seen_ids[line_id]}")
        except PrecisionError as error:
            rejects.append(reject_row(path, line, "", str(error), row["raw"]))
            continue
        seen_ids[line_id] = line
        kind = get(row, "type").strip()
        name = get(row, "name").strip()
        title = get(row, "item title").strip()
        category = _category(kind, gross)
        order_id, order_source = _order_of([(header, row[column]) for header, column in order_cells])
        lines.append({
            "processor": "paypal",
            "payout_id": line_id if category == "payout" else None,
            "line_id": line_id,
            "category": category,
            "currency": currency,
            "gross_minor": gross,
            "fee_minor": -fee_written,
            "net_minor": net,
            "available_on": when,
            "created": when,
            "source_id": get(row, "reference txn id").strip() or None,
            "order_id": order_id,
            "description": " - ".join(p for p in (kind, name, title) if p),
            "attributes": with_order_source(_extras(row, names, used - {"type", "name"}), order_source),
            "source_file": path,
            "source_line": line,
        })
    rejects.extend(table.rejects.to_dicts())
    return payout_result(FORMAT, lines_frame(lines), rejects_frame(rejects), notes=notes)


def _read_venmo(path: str) -> FeedResult:
    table, names, index = _table_rows(path, "Venmo statement CSV")

    def get(row: dict[str, Any], key: str) -> str:
        return (row[index[key]] or "") if key in index else ""

    lines, rejects, balances = [], [], []
    username = ""
    seen: dict[str, int] = {}
    used = {"id", "datetime", "amount (total)", "amount (fee)", "note"}
    for row in table.rows.iter_rows(named=True):
        line = row["source_line"]
        if get(row, "username").strip():
            username = get(row, "username").strip()
        if not get(row, "id").strip():
            # statement rows: beginning / ending balance, fee totals, the disclaimer
            for key, kind in (("beginning balance", "opening"), ("ending balance", "closing")):
                text = get(row, key).strip()
                if text:
                    try:
                        balances.append({"account": username, "currency": "USD", "type": kind, "date": None,
                                         "amount_minor": _minor(text, "USD", key), "statement_id": None,
                                         "source_file": path})
                    except PrecisionError as error:
                        rejects.append(reject_row(path, line, key, str(error), row["raw"]))
            continue
        try:
            total = _minor(get(row, "amount (total)"), "USD", "Amount (total)")
            fee = abs(_minor(get(row, "amount (fee)"), "USD", "Amount (fee)"))
            when = _date(get(row, "datetime"), False)
            line_id = get(row, "id").strip()
            if line_id in seen:
                raise PrecisionError(f"ID {line_id} already appears on line {seen[line_id]}")
        except PrecisionError as error:
            rejects.append(reject_row(path, line, "", str(error), row["raw"]))
            continue
        seen[line_id] = line
        kind = get(row, "type").strip()
        order_id = order_id_in_text(get(row, "note"))
        lines.append({
            "processor": "venmo", "payout_id": line_id if _category(kind, total) == "payout" else None,
            "line_id": line_id, "category": _category(kind, total), "currency": "USD",
            "gross_minor": total + fee, "fee_minor": fee, "net_minor": total,
            "available_on": when, "created": when, "source_id": None,
            "order_id": order_id, "description": get(row, "note"),
            "attributes": with_order_source(_extras(row, names, used), "Note" if order_id else None),
            "source_file": path, "source_line": line,
        })
    rejects.extend(table.rejects.to_dicts())
    frame = pl.DataFrame(balances, schema=BALANCE_SCHEMA) if balances else None
    return payout_result(FORMAT, lines_frame(lines), rejects_frame(rejects), balances=frame)


def _read_detail_json(path: str) -> FeedResult:
    doc = load_json(path, "PayPal transaction detail JSON")
    data = doc.data
    if not isinstance(data, dict) or "transactionId" not in data or not isinstance(data.get("amount"), dict):
        raise FeedFormatError(path, "is JSON but not a PayPal transaction detail (transactionId, amount)")
    amount = data["amount"]
    line = doc.line_of("transactionId", data["transactionId"])
    try:
        raw_gross = (amount.get("rawAmounts") or {}).get("gross") or {}
        currency = check_currency(raw_gross.get("currencyCode") or "")
        gross = major_to_minor(raw_gross.get("value"), currency, "rawAmounts.gross")
        fee = abs(_minor(amount.get("feeAmount", ""), currency, "feeAmount"))
        net = abs(_minor(amount.get("netAmount", ""), currency, "netAmount"))
        if data.get("isCredit") is False:
            gross, net = -gross, -net
        if gross - fee != net:
            raise PrecisionError(f"gross - fee != net ({gross} - {fee} != {net} minor units)")
        when = _localized_date(str(data.get("date", "")))
    except PrecisionError as error:
        rejects = rejects_frame([reject_row(path, line, "", str(error), doc.raw(amount))])
        return payout_result(FORMAT, lines_frame([]), rejects)
    counterparty = (data.get("counterparty") or {}).get("name") or ""
    kind = str(data.get("transactionType") or "")
    note = (data.get("notesInfo") or {}).get("note") if isinstance(data.get("notesInfo"), dict) else None
    order_id, order_source = find_order_id(
        [("", {k: v for k, v in data.items() if k != "transactionId"})], [("notesInfo.note", note)]
    )
    lines = [{
        "processor": "paypal", "payout_id": None, "line_id": str(data["transactionId"]),
        "category": _category(str(data.get("txnTypeServiceKey") or kind), gross), "currency": currency,
        "gross_minor": gross, "fee_minor": fee, "net_minor": net, "available_on": when, "created": when,
        "source_id": None, "order_id": order_id,
        "description": " - ".join(p for p in (kind, counterparty) if p),
        "attributes": with_order_source(
            attributes_json({"status": data.get("status"), "transactionType": kind,
                             "counterparty": data.get("counterparty"), "amount": amount,
                             "date": data.get("date")}, set()),
            order_source,
        ),
        "source_file": path, "source_line": line,
    }]
    return payout_result(FORMAT, lines_frame(lines), rejects_frame([]))


# --------------------------------------------------------------------------------------------
# Settlement Report (STL)
# --------------------------------------------------------------------------------------------

#: T-code event group (the two digits after "T") -> category when the row is a credit (CR)
#: and when it is a debit (DR), from PayPal's transaction event code reference
_TCODE_GROUPS: dict[str, tuple[str, str, str]] = {
    # group: (what the group is, category of a CR row, category of a DR row)
    "00": ("payment", "charge", "transfer"),
    "01": ("fee", "fee", "fee"),
    "02": ("currency conversion", "adjustment", "adjustment"),
    "03": ("bank deposit into PayPal", "topup", "topup"),
    "04": ("bank withdrawal from PayPal", "payout_reversal", "payout"),
    "05": ("debit card", "transfer", "transfer"),
    "07": ("pre-approved payment", "charge", "transfer"),
    "11": ("reversal", "refund", "refund"),
    "12": ("adjustment / chargeback", "dispute_reversal", "dispute"),
    "15": ("hold / release", "reserve", "reserve"),
    "16": ("buyer credit", "charge", "transfer"),
}
#: the CH names recon turns into canonical columns (the rest go to the attributes)
_STL_USED = frozenset({
    "transaction id", "invoice id", "paypal reference id", "transaction event code",
    "transaction initiation date", "transaction completion date", "transaction debit or credit",
    "gross transaction amount", "gross transaction currency", "fee debit or credit", "fee amount",
    "fee currency",
})
_STL_REQUIRED = ("transaction id", "transaction event code", "transaction debit or credit",
                 "gross transaction amount", "gross transaction currency")
_STL_DATE = re.compile(r"^\s*([0-9]{4})[/-]([0-9]{2})[/-]([0-9]{2})(?:[ T].*)?$")


def _stl_amount(digits: str, currency: str, label: str) -> int:
    """Minor units of an STL amount: unsigned digits with two implied decimals."""
    text = digits.strip()
    if not text:
        return 0
    if not text.isdigit() or not text.isascii():
        raise PrecisionError(f"{label} {digits!r} is not an STL amount (unsigned digits, 2 implied decimals)")
    try:
        return major_to_minor(f"{Decimal(text).scaleb(-2):f}", currency, label)
    except PrecisionError as error:
        raise PrecisionError(f"{error} (the STL writes {text} for {Decimal(text).scaleb(-2):f}: "
                             "two implied decimals in every currency)") from None


def _stl_sign(value: str, label: str) -> int:
    code = value.strip().upper()
    if code == "CR":
        return 1
    if code == "DR":
        return -1
    raise PrecisionError(f"{label} {value!r} is neither CR nor DR")


def _stl_date(value: str, label: str) -> date | None:
    """The date part of "2026/03/02 10:15:32 -0800", as written (its own offset)."""
    if not value.strip():
        return None
    match = _STL_DATE.match(value)
    if not match:
        raise PrecisionError(f"{label} {value!r} is not a date (YYYY/MM/DD HH:MM:SS ±HHMM)")
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        raise PrecisionError(f"{label} {value!r} is not a valid date") from None


def _stl_records(path: str) -> list[tuple[int, str, list[str]]]:
    """(first physical line, raw text, fields) of every non-blank record of an STL file."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise FeedFormatError(path, f"cannot be read ({error.strerror or error})") from None
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = data.decode("utf-16")  # older STL files were UTF-16
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FeedFormatError(
            path, f"is not UTF-8 (byte at offset {error.start}); a PayPal Settlement Report is "
            "UTF-8 (older ones UTF-16): download it again without converting it",
        ) from None
    physical = text.splitlines()
    records: list[tuple[int, str, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    for fields in reader:
        end = reader.line_num
        raw = "\n".join(physical[start - 1:end])
        if any(f.strip() for f in fields):
            records.append((start, raw, fields))
        start = end + 1
    return records


def _stl_order(row: dict[str, str]) -> tuple[str | None, str | None]:
    """(order id, column): the STL's Invoice ID is the invoice id the shop's checkout sent
    PayPal (its order number), so it comes first; else the order a Custom Field names."""
    invoice = row.get("invoice id", "").strip()
    if invoice:
        return invoice, "Invoice ID"
    custom = row.get("custom field", "")
    found = _custom_order(custom) if custom.strip() else None
    return (found, "Custom Field") if found else (None, None)


def _read_settlement_report(path: str) -> FeedResult:
    records = _stl_records(path)
    lines: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    notes: list[str] = []
    columns: list[str] = []
    seen: dict[str, int] = {}
    section_rows = 0
    account = ""
    for line, raw, fields in records:
        kind = fields[0].strip()
        if kind == "SH":
            section_rows = 0
            account = fields[3].strip() if len(fields) > 3 else ""
            continue
        if kind == "CH":
            columns = [name.strip() for name in fields[1:]]
            continue
        if kind == "SC":
            stated = fields[1].strip() if len(fields) > 1 else ""
            if stated.isdigit() and int(stated) != section_rows:
                notes.append(
                    f"line {line}: the section says it holds {stated} transaction rows (SC) but "
                    f"{section_rows} SB rows were read; the report may be cut short or altered"
                )
            continue
        if kind != "SB":
            continue  # RH, FH, SF, RF, RC, FF: headers, footers and totals
        section_rows += 1
        if not columns:
            rejects.append(reject_row(path, line, "", "an SB row before any CH row: the column "
                                      "names are unknown", raw))
            continue
        if len(fields) - 1 != len(columns):
            rejects.append(reject_row(path, line, "", f"{len(fields) - 1} fields, the CH row names "
                                      f"{len(columns)}", raw))
            continue
        row = {name.lower(): value for name, value in zip(columns, fields[1:], strict=True)}
        missing = [name for name in _STL_REQUIRED if name not in row]
        if missing:
            raise FeedFormatError(
                path, f"is a PayPal Settlement Report whose CH row lacks {', '.join(missing)}; "
                "download the report again as PayPal generates it", line=line,
            )
        try:
            line_id = row["transaction id"].strip()
            if not line_id:
                raise PrecisionError("Transaction ID is missing")
            if line_id in seen:
                raise PrecisionError(f"Transaction ID {line_id} already appears on line {seen[line_id]}")
            currency = check_currency(row["gross transaction currency"], "Gross Transaction Currency")
            sign = _stl_sign(row["transaction debit or credit"], "Transaction Debit or Credit")
            gross = sign * _stl_amount(row["gross transaction amount"], currency, "Gross Transaction Amount")
            fee_digits = row.get("fee amount", "").strip()
            fee = 0
            if fee_digits.strip("0"):  # blank, "0" and "000" are no fee
                fee_currency = row.get("fee currency", "").strip() or currency
                if fee_currency.upper() != currency:
                    raise PrecisionError(
                        f"Fee Currency {fee_currency} differs from Gross Transaction Currency "
                        f"{currency}; recon keeps one currency per line"
                    )
                fee_sign = _stl_sign(row.get("fee debit or credit", ""), "Fee Debit or Credit")
                fee = -fee_sign * _stl_amount(fee_digits, currency, "Fee Amount")
            code = row["transaction event code"].strip().upper()
            if not re.fullmatch(r"T[0-9]{4}", code):
                raise PrecisionError(f"Transaction Event Code {code!r} is not a T-code (T0006)")
            created = _stl_date(row.get("transaction initiation date", ""), "Transaction Initiation Date")
            completed = _stl_date(row.get("transaction completion date", ""), "Transaction Completion Date")
        except PrecisionError as error:
            rejects.append(reject_row(path, line, "", str(error), raw))
            continue
        seen[line_id] = line
        group, credit_category, debit_category = _TCODE_GROUPS.get(code[1:3], ("other", "other", "other"))
        category = credit_category if sign > 0 else debit_category
        order_id, order_source = _stl_order(row)
        extras = {name: value for name, value in zip(columns, fields[1:], strict=True)
                  if name.lower() not in _STL_USED}
        if account:
            extras.setdefault("Account ID", account)  # the section header's account
        lines.append({
            "processor": "paypal",
            "payout_id": line_id if category in ("payout", "payout_reversal") else None,
            "line_id": line_id,
            "category": category,
            "currency": currency,
            "gross_minor": gross,
            "fee_minor": fee,
            "net_minor": gross - fee,
            "available_on": completed or created,
            "created": created,
            "source_id": row.get("paypal reference id", "").strip() or None,
            "order_id": order_id,
            "description": f"{code} {group} ({'CR' if sign > 0 else 'DR'})",
            "attributes": with_order_source(
                json.dumps(extras, ensure_ascii=False, separators=(",", ":")), order_source
            ),
            "source_file": path,
            "source_line": line,
        })
    if not columns:
        raise FeedFormatError(path, "is a PayPal Settlement Report without a CH row (column names); "
                              "download the report again as PayPal generates it")
    return payout_result(FORMAT, lines_frame(lines), rejects_frame(rejects), notes=notes)


def read(path: str | PathLike[str], side: str = "processor", **options) -> FeedResult:
    """Read a PayPal activity CSV, a PayPal Settlement Report (STL), a Venmo statement CSV or a
    PayPal transaction-detail JSON.

    Raises
    ------
    FeedFormatError
        Not one of those (the message lists the columns a PayPal or Venmo export has).
    """
    source = str(path)
    if side != "processor":
        raise FeedFormatError(source, f"a PayPal export is a processor file, not {side}")
    if options:
        raise FeedFormatError(source, f"the PayPal reader takes no options ({', '.join(options)})")
    try:
        with open(source, "rb") as handle:
            head = handle.read(64 * 1024)
    except OSError as error:
        raise FeedFormatError(source, f"cannot be read ({error.strerror or error})") from None
    if json_head(head) is not None:
        return _read_detail_json(source)
    if _is_settlement_report(head, need_columns=False):
        return _read_settlement_report(source)
    names = _header_names(head)
    if _is_venmo(names):
        return _read_venmo(source)
    if _is_paypal_csv(names):
        return _read_paypal_csv(source)
    raise FeedFormatError(
        source,
        "is not a PayPal activity CSV (needs Date, Time Zone, Status and Gross or Amount columns), "
        "a PayPal Settlement Report (STL: an RH row, then CH / SB rows) "
        "nor a Venmo statement (ID, Datetime, Amount (total))",
    )
