"""Feeds stage: read SWIFT MT940 statements and MT942 interim reports into canonical bank rows.

An MT940 file holds one or more statements (``:20:`` starts each one), optionally wrapped in
SWIFT blocks (``{1:...}{2:...}{4:`` ... ``-}``) or in SOH/ETX control characters. Each ``:61:``
statement line becomes one canonical bank row; the ``:86:`` (or non-SWIFT ``:NS:``) information
that follows it gives the description, counterparty and reference:

* German/SEPA structured ``:86:`` (``GVC?00posting text?10...?20..?29 purpose?30 bank?31 account
  ?32/?33 name``, also with ``>`` as separator), with SEPA keywords ``EREF+``, ``KREF+``,
  ``MREF+``, ``SVWZ+``, ... inside the purpose;
* Dutch/SWIFT structured ``:86:`` (``/EREF/.../NAME/.../REMI/...``);
* anything else is kept as free text, one ``\\n`` between the file's lines.

Signs are the cash movement: ``C`` and ``RD`` (reversal of a debit) are money in, ``D`` and
``RC`` (reversal of a credit) money out. The booking date is the entry date of ``:61:`` when the
bank gives one (its year taken from the value date), else the value date. Every balance the
statement states (``:60F:`` opening, ``:60M:`` interim opening, ``:62F:`` closing, ``:62M:``
interim closing, ``:64:`` closing available, ``:65:`` forward available) goes to the balances
table in exact minor units.

Ids are stable: the bank reference after ``//`` in ``:61:`` (prefixed with the account) when it
is unique in the file, else ``fp-`` + a SHA-1 fingerprint of (account, statement number, booking
date, amount, currency, the line's text, occurrence index). A ``:61:`` line that cannot be read
(malformed, invalid booking date such as 30 February, bad amount, unknown currency) becomes a
reject with its line number; the rest of the file loads. A file that is not MT940 at all raises
:class:`models.errors.FeedFormatError`.

The file is decoded as UTF-8 when it is valid UTF-8; otherwise the legacy code page (cp1252,
cp852 as used by Hungarian and other Central European banks, cp1250) whose decoding gives the
most letters is chosen and named in ``notes``; ``read(path, encoding=...)`` overrides it.

Parsing is per record in Python: statement files are small and the format is inherently
line-oriented. The mt-940 package from PyPI was evaluated and not used: it keeps the
statement-level balances of the last statement only, silently turns an invalid date such as
30 February into 29 February, fails on SWIFT block wrappers with supplementary ``:61:`` lines
and gives no line numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass, field
from os import PathLike

import polars as pl

from feeds._common import (
    SNIFF_BYTES,
    bank_result,
    decode_unicode,
    minor_out_of_range,
    next_fingerprint,
    read_file,
    reject_row,
)
from models.errors import FeedFormatError, PrecisionError
from models.money import CURRENCY_EXPONENTS, to_minor
from models.schema import FeedResult

__all__ = ["FORMAT", "SIDES", "identify", "read"]

FORMAT = "mt940"
SIDES = ("bank",)

_TAG = re.compile(r"^:(\d{2}[A-Z]?|NS):")
_TERMINATOR = re.compile(r"^-(?:\}.*|X*)\s*$")
_CONTROL = "\x00\x01\x02\x03\x04\x1a"
_BALANCE = re.compile(r"^(?P<mark>[CD])(?P<date>\d{6})(?P<currency>[A-Z]{3})(?P<amount>\d+(?:,\d*)?)$")
# :61: first line: value date, [entry date], mark, [funds code], amount, type, references
_STATEMENT_LINE = re.compile(
    r"^(?P<value_date>\d{6})"
    r"(?P<entry_date>\d{4})?"
    r"(?P<mark>RC|RD|EC|ED|C|D)"
    r"(?P<funds_code>[A-Z])?"
    r"(?P<amount>\d+(?:,\d*)?)"
    r"(?P<type>[NSF][A-Z0-9 ]{3})"
    r"(?P<rest>.*)$"
)
_SEPA_KEYWORDS = (
    "EREF", "KREF", "MREF", "CRED", "DEBT", "SVWZ", "ABWA", "ABWE", "IBAN", "BIC", "COAM",
    "OAMT", "SQTP", "PURP", "RTRN",
)
_SEPA_SPLIT = re.compile(r"(" + "|".join(_SEPA_KEYWORDS) + r")\+")
_SWIFT_CODES = (
    "EREF", "PREF", "MARF", "CSID", "BENM", "ORDP", "NAME", "ID", "ADDR", "REMI", "CDTRREF",
    "CDTRREFTP", "CD", "SCOR", "ISSR", "ISDT", "IBAN", "BIC", "TRTP", "RTRN", "PURP", "ULTC",
    "ULTD", "EXCH", "CHGS", "OCMT", "BUSP", "FX", "SVCL",
)
_SWIFT_SPLIT = re.compile(r"/(" + "|".join(_SWIFT_CODES) + r")/")
_PLACEHOLDER_REFERENCES = {"", "NONREF", "NOTPROVIDED", "NONE"}
_LEGACY_ENCODINGS = ("cp1252", "cp852", "cp1250")


# --------------------------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------------------------


def identify(head: bytes, path: str) -> bool:
    """Whether ``head`` (the first bytes of the file at ``path``) looks like MT940/MT942.

    Parameters
    ----------
    head
        The first bytes of the file (up to 64 KiB are looked at).
    path
        The file's path; only used as a tie-breaker (``.sta``, ``.940``, ``.942``, ``.mt940``).

    Returns
    -------
    bool
        True when a ``:20:`` line and a ``:25:``/``:28C:``/``:60F:``/``:61:`` line are found at
        line starts.

    Examples
    --------
    >>> identify(b":20:REF\\r\\n:25:NL71RABO0123456789\\r\\n:28C:1/1\\r\\n", "x.sta")
    True
    >>> identify(b"<OFX>", "x.sta")
    False
    """
    try:
        sample = bytes(head[:SNIFF_BYTES]).replace(b"\r", b"\n")
    except (TypeError, ValueError):
        return False
    if not re.search(rb"(?m)^[\x01\x02\s]*(?:\{4:)?:20:", sample):
        return False
    return bool(re.search(rb"(?m)^:(?:25|28C?|60[FM]|61|34F|13D?):", sample))


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass
class _Tag:
    name: str
    line: int
    lines: list[str]  # content lines: first after the tag, then continuation lines


@dataclass
class _Statement:
    first_line: int
    tags: list[_Tag] = field(default_factory=list)


def _fail(path: str, problem: str, line: int | None = None, raw: str | None = None) -> FeedFormatError:
    return FeedFormatError(path, problem, line=line, raw=raw)


def _legacy_score(text: str) -> int:
    """Letters minus other characters among the non-ASCII characters of ``text``."""
    score = 0
    for char in text:
        if ord(char) < 128:
            continue
        score += 1 if unicodedata.category(char).startswith("L") else -2
    return score


def _decode(source: str, data: bytes, encoding: str | None) -> tuple[str, str, bool]:
    """(text, encoding used, whether the encoding was guessed among legacy code pages)."""
    text, used, data = decode_unicode(
        source,
        data,
        encoding,
        example="cp852",
        reexport="re-export the statement",
        advice="; give the encoding the bank used, or leave it out to let recon guess",
    )
    if text is not None:
        return text, used, False
    best: tuple[int, int, str, str] | None = None
    for rank, candidate in enumerate(_LEGACY_ENCODINGS):
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError:
            continue
        key = (_legacy_score(text), -rank, candidate, text)
        if best is None or key[:2] > best[:2]:
            best = key
    if best is None:
        return data.decode("latin-1"), "latin-1", True
    return best[3], best[2], True


def _physical_lines(text: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", text)


def _split_statements(lines: list[str]) -> list[_Statement]:
    """Group physical lines into statements (one per ``:20:``) and tags with their lines."""
    statements: list[_Statement] = []
    current: _Statement | None = None
    tag: _Tag | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip(_CONTROL)
        if "{4:" in line:  # SWIFT block wrapper: the text block starts after "{4:"
            line = line.split("{4:", 1)[1]
            tag = None
            if not line.strip():
                continue
        if _TERMINATOR.match(line):
            tag = None
            continue
        match = _TAG.match(line)
        if match:
            name = match.group(1)
            if name == "20" or current is None:
                current = _Statement(first_line=number)
                statements.append(current)
            tag = _Tag(name=name, line=number, lines=[line[match.end():]])
            current.tags.append(tag)
            continue
        if tag is not None:
            tag.lines.append(line)
        # else: header lines of a message (bank id, "940", "{1:...}"), not statement content
    return statements


def _parse_date(text: str) -> dt.date:
    """YYMMDD -> date (YY < 70 -> 20YY). Raises ValueError for an impossible date."""
    year = int(text[0:2])
    year += 2000 if year < 70 else 1900
    return dt.date(year, int(text[2:4]), int(text[4:6]))


def _entry_date(value_date_text: str, entry_text: str) -> dt.date:
    """Booking date from ``MMDD`` with the year of the value date (across a year end too)."""
    year = int(value_date_text[0:2])
    year += 2000 if year < 70 else 1900
    value_month = int(value_date_text[2:4])
    month, day = int(entry_text[0:2]), int(entry_text[2:4])
    if month - value_month > 6:
        year -= 1
    elif value_month - month > 6:
        year += 1
    return dt.date(year, month, day)


def _amount_minor(amount_text: str, currency: str, negative: bool) -> int:
    minor = to_minor(amount_text.replace(",", "."), currency)
    problem = minor_out_of_range(minor, amount_text)
    if problem:
        raise PrecisionError(problem)
    return -minor if negative else minor


def _join_free_text(lines: list[str]) -> str:
    return "\n".join(part.rstrip() for part in lines).strip()


def _parse_german(content: str) -> dict[str, str] | None:
    """German (DFÜ/SEPA) structured :86: -> fields, or None when it is not structured."""
    match = re.match(r"^(\d{3})([?>])", content)
    if not match:
        return None
    separator = match.group(2)
    pieces = re.split(re.escape(separator) + r"(\d{2})", content[3:])
    if pieces[0].strip():
        return None
    subfields: dict[str, list[str]] = {}
    for index in range(1, len(pieces) - 1, 2):
        subfields.setdefault(pieces[index], []).append(pieces[index + 1])
    if not subfields:
        return None
    fields: dict[str, str] = {"gvc": match.group(1)}

    def sub(*codes: str, sep: str = "") -> str:
        return sep.join(value for code in codes for value in subfields.get(code, []))

    purpose_codes = [f"{n:02d}" for n in list(range(20, 30)) + list(range(60, 64))]
    purpose_parts = [value for code in purpose_codes for value in subfields.get(code, [])]
    joined = "".join(purpose_parts)
    sepa = bool(_SEPA_SPLIT.search(joined))
    fields["purpose"] = joined if sepa else " ".join(part.strip() for part in purpose_parts).strip()
    names = {
        "00": "posting_text", "10": "primanota", "30": "counterparty_bank",
        "31": "counterparty_account", "34": "text_key_extension", "38": "counterparty_iban",
    }
    for code, name in names.items():
        if code in subfields:
            fields[name] = sub(code)
    name = sub("32", "33")
    if name:
        fields["counterparty_name"] = name
    if sepa:
        tokens = _SEPA_SPLIT.split(joined)
        if tokens[0].strip():
            fields["purpose_prefix"] = tokens[0]
        for index in range(1, len(tokens) - 1, 2):
            key = "sepa_" + tokens[index].lower()
            fields.setdefault(key, tokens[index + 1].strip())
    other = {code: "".join(values) for code, values in subfields.items()
             if code not in names and code not in ("32", "33") and code not in purpose_codes}
    for code, value in other.items():
        fields[f"subfield_{code}"] = value
    return fields


def _parse_swift_structured(content: str) -> dict[str, str] | None:
    """``/EREF/.../NAME/.../REMI/...`` structured :86: -> fields, or None."""
    if not content.startswith("/") or not _SWIFT_SPLIT.match(content):
        return None
    tokens = _SWIFT_SPLIT.split(content)
    fields: dict[str, str] = {}
    for index in range(1, len(tokens) - 1, 2):
        value = tokens[index + 1]
        fields.setdefault("swift_" + tokens[index].lower(), value.strip())
    return fields


def _information(tags: list[_Tag]) -> tuple[str, str, str, dict[str, str]]:
    """(description, counterparty, reference, attributes) from the :86:/:NS: tags of a line."""
    info = [t for t in tags if t.name == "86"]
    non_swift = [t for t in tags if t.name == "NS"]
    attributes: dict[str, str] = {}
    if non_swift:
        attributes["non_swift"] = "\n".join(_join_free_text(t.lines) for t in non_swift)
    if not info:
        return attributes.get("non_swift", ""), "", "", attributes
    raw_lines = [line for t in info for line in t.lines]
    free = "\n".join(_join_free_text(t.lines) for t in info).strip()
    attributes["information"] = free
    unwrapped = "".join(raw_lines)  # structured fields are wrapped at fixed width
    german = _parse_german(unwrapped.strip())
    if german is not None:
        attributes.update(german)
        description = german.get("sepa_svwz") or german.get("purpose") or german.get("posting_text", "")
        reference = german.get("sepa_eref", "")
        if reference.upper() in _PLACEHOLDER_REFERENCES:
            reference = german.get("sepa_kref", "")
        return description, german.get("counterparty_name", ""), reference, attributes
    swift = _parse_swift_structured("".join(line.rstrip() for line in raw_lines))
    if swift is not None:
        attributes.update(swift)
        description = swift.get("swift_remi") or free
        reference = swift.get("swift_eref", "")
        return description, swift.get("swift_name", ""), reference, attributes
    return free, "", "", attributes


def _references(rest: str) -> tuple[str, str, str]:
    """(customer reference, bank reference, extra text) from the rest of a :61: first line."""
    head, bank, extra = rest, "", ""
    if "//" in rest:
        head, tail = rest.split("//", 1)
        bank, extra = tail[:16], tail[16:]
    customer = head
    if len(head) > 16 and (head[15] == " " or head[16] == " "):
        customer, extra = head[:16], head[16:] + extra
    return customer.strip(), bank.strip(), extra.strip()


def _statement_currency(statement: _Statement) -> str:
    for tag in statement.tags:
        text = tag.lines[0].strip() if tag.lines else ""
        if tag.name in ("60F", "60M", "62F", "62M", "64", "65"):
            match = _BALANCE.match(text)
            if match:
                return match.group("currency")
        if tag.name in ("34F", "90D", "90C"):
            match = re.search(r"([A-Z]{3})", text)
            if match:
                return match.group(1)
    for tag in statement.tags:
        if tag.name == "25" and tag.lines:
            match = re.search(r"([A-Z]{3})\s*$", tag.lines[0])
            if match and match.group(1) in CURRENCY_EXPONENTS:
                return match.group(1)
    return ""


_BALANCE_TYPES = {
    "60F": "opening",
    "60M": "interim_opening",
    "62F": "closing",
    "62M": "interim_closing",
    "64": "closing_available",
    "65": "forward_available",
}


def read(path: str | PathLike[str], *, encoding: str | None = None) -> FeedResult:
    """Read one MT940 (or MT942) file into canonical bank rows, rejects and balances.

    Parameters
    ----------
    path
        The file; kept as given in ``source_file``.
    encoding
        The file's text encoding (e.g. ``"cp852"``); by default UTF-8 when the file is valid
        UTF-8, else the best-fitting legacy code page (named in ``notes``).

    Returns
    -------
    FeedResult
        ``frame`` in ``BANK_SCHEMA`` (one row per readable ``:61:`` line, in file order),
        ``rejects`` (one per unreadable ``:61:`` line), ``balances`` (every stated balance),
        ``accounts`` (``:25:`` values in file order), ``rows_read`` and ``notes``.

    Raises
    ------
    FeedFormatError
        The file is missing, empty, binary, or contains no MT940 statement (no ``:20:``).

    Examples
    --------
    >>> result = read("tests/feeds/data/mt940/sepa_sample.sta")  # doctest: +SKIP
    >>> result.frame.select("date", "amount_minor", "counterparty").head(1)  # doctest: +SKIP
    """
    source = str(path)
    data = read_file(source, "an MT940 statement file")
    if not data.strip():
        raise _fail(source, "is empty; check that the statement download finished")
    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail(source, "contains NUL bytes: it is a binary file, not an MT940 statement (a text file with :20:, :25:, :61: lines)")
    text, used, guessed = _decode(source, data, encoding)
    statements = _split_statements(_physical_lines(text))
    notes: list[str] = []
    statements = [s for s in statements if any(t.name == "20" for t in s.tags) or any(t.name == "61" for t in s.tags)]
    if not statements:
        raise _fail(
            source,
            "contains no MT940 statement (no ':20:' line); check that this is an MT940/MT942 file, "
            "or read it with the feed for its format",
        )
    if guessed and any(ord(c) > 127 for c in text):
        notes.append(
            f"text decoded as {used} (not UTF-8; code page guessed from the letters it yields); "
            "pass encoding=... if names look wrong"
        )

    rows: list[dict] = []
    rejects: list[dict] = []
    balances: list[dict] = []
    accounts: list[str] = []

    for statement in statements:
        _read_statement(source, statement, rows, rejects, balances, accounts, notes)

    _assign_ids(rows)
    duplicates = pl.Series([r["id"] for r in rows], dtype=pl.Utf8).is_duplicated() if rows else None
    if duplicates is not None and duplicates.any():
        notes.append(f"{int(duplicates.sum())} lines share an id with another line of this file")
    return bank_result(FORMAT, rows, rejects, balances, accounts, notes)


def _read_statement(
    source: str,
    statement: _Statement,
    rows: list[dict],
    rejects: list[dict],
    balances: list[dict],
    accounts: list[str],
    notes: list[str],
) -> None:
    def first(name: str) -> str:
        for tag in statement.tags:
            if tag.name == name:
                return _join_free_text(tag.lines)
        return ""

    reference = first("20")
    account = first("25")
    number = first("28C") or first("28")
    statement_no, _, sequence_no = number.partition("/")
    statement_id = f"{reference} {number}".strip() if number else reference
    currency = _statement_currency(statement)
    if account and account not in accounts:
        accounts.append(account)
    related = first("21")

    for tag in statement.tags:
        if tag.name in _BALANCE_TYPES:
            text = tag.lines[0].strip()
            match = _BALANCE.match(text)
            problem = ""
            if not match:
                problem = "expected C|D, YYMMDD, currency, amount (e.g. C240131EUR1234,56)"
            else:
                try:
                    day = _parse_date(match.group("date"))
                    minor = _amount_minor(match.group("amount"), match.group("currency"), match.group("mark") == "D")
                except ValueError as error:
                    problem = str(error)
            if problem:
                notes.append(f"line {tag.line}: balance :{tag.name}:{text} cannot be read ({problem}); balance left out")
                continue
            balances.append(
                {
                    "account": account,
                    "currency": match.group("currency"),
                    "type": _BALANCE_TYPES[tag.name],
                    "date": day,
                    "amount_minor": minor,
                    "statement_id": statement_id,
                    "source_file": source,
                }
            )

    # :61: lines with the :86: / :NS: tags that follow them
    groups: list[tuple[_Tag, list[_Tag]]] = []
    open_group: list[_Tag] | None = None  # info tags of the :61: just read, while only :86:/:NS: follow
    for tag in statement.tags:
        if tag.name == "61":
            groups.append((tag, []))
            open_group = groups[-1][1]
        elif tag.name in ("86", "NS") and open_group is not None:
            open_group.append(tag)
        else:
            open_group = None
    for line_tag, info_tags in groups:
        raw = ":61:" + "\n".join(line_tag.lines)
        for info in info_tags:
            raw += f"\n:{info.name}:" + "\n".join(info.lines)

        def reject(reason: str, column: str, line_tag: _Tag = line_tag, raw: str = raw) -> None:
            rejects.append(reject_row(source, line_tag.line, column, reason, raw))

        first_line = line_tag.lines[0].strip()
        match = _STATEMENT_LINE.match(first_line)
        if not match:
            reject(
                f"statement line :61:{first_line} cannot be read: expected value date YYMMDD, optional "
                "entry date MMDD, C/D/RC/RD, amount with ',' decimals and a 4-character type (e.g. "
                "2401310131D12,50NTRFNONREF)",
                ":61:",
            )
            continue
        value_text, entry_text = match.group("value_date"), match.group("entry_date")
        try:
            value_date: dt.date | None = _parse_date(value_text)
        except ValueError:
            value_date = None
        if entry_text:
            try:
                booking = _entry_date(value_text, entry_text)
            except ValueError:
                reject(f"entry (booking) date {entry_text} (MMDD) of value date {value_text} is not a valid date", "entry date")
                continue
        elif value_date is None:
            reject(f"value date {value_text} (YYMMDD) is not a valid date and no entry date is given", "value date")
            continue
        else:
            booking = value_date
        if not currency:
            reject("no currency: the statement has no :60F:/:62F: balance and no currency in :25:", "currency")
            continue
        if currency not in CURRENCY_EXPONENTS:
            reject(
                f"statement currency {currency!r} is not an active ISO 4217 code (e.g. a withdrawn "
                "currency such as DEM); recon cannot convert its amounts to exact minor units",
                "currency",
            )
            continue
        mark = match.group("mark")
        negative = mark in ("D", "RC", "ED")
        try:
            minor = _amount_minor(match.group("amount"), currency, negative)
        except PrecisionError as error:
            reject(f"amount {match.group('amount')} cannot be read: {error}", "amount")
            continue
        customer, bank, extra = _references(match.group("rest"))
        supplementary = _join_free_text([extra, *line_tag.lines[1:]])
        description, counterparty, reference, attributes = _information(info_tags)
        if not reference and customer.upper() not in _PLACEHOLDER_REFERENCES:
            reference = customer
        if not description:
            description = supplementary
        details = {
            "statement_reference": first("20") or None,
            "related_reference": related or None,
            "statement_number": statement_no or None,
            "sequence_number": sequence_no or None,
            "value_date": value_date.isoformat() if value_date else None,
            "value_date_raw": value_text,
            "entry_date_raw": entry_text,
            "mark": mark,
            "funds_code": match.group("funds_code"),
            "transaction_type": match.group("type"),
            "customer_reference": customer or None,
            "bank_reference": bank or None,
            "supplementary_details": supplementary or None,
        }
        if value_date is None:
            details["value_date_problem"] = f"value date {value_text} is not a valid date; the entry date is used"
            notes.append(f"line {line_tag.line}: value date {value_text} is not a valid date; booking date {booking} (entry date) used")
        details.update(attributes)
        rows.append(
            {
                "id": None,
                "date": booking,
                "amount_minor": minor,
                "currency": currency,
                "description": description,
                "counterparty": counterparty,
                "reference": reference,
                "account": account,
                "attributes": json.dumps({k: v for k, v in details.items() if v is not None}, ensure_ascii=False),
                "source_file": source,
                "source_line": line_tag.line,
                "_bank_reference": bank,
                "_key": [account, statement_no, booking.isoformat(), str(minor), currency, raw],
            }
        )


def _assign_ids(rows: list[dict]) -> None:
    """Bank reference ids where unique in the file, fingerprints otherwise."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        bank = row["_bank_reference"]
        if bank and bank.upper() not in _PLACEHOLDER_REFERENCES:
            key = (row["account"], bank)
            counts[key] = counts.get(key, 0) + 1
    occurrences: dict[str, int] = {}
    for row in rows:
        bank = row.pop("_bank_reference")
        key_parts = row.pop("_key")
        if bank and counts.get((row["account"], bank), 0) == 1:
            row["id"] = f"{row['account']}/{bank}" if row["account"] else bank
            continue
        row["id"] = next_fingerprint(key_parts, occurrences)
