"""Feeds stage: read ISO 20022 camt.052 / camt.053 / camt.054 bank messages into canonical rows.

Covers the bank-to-customer account report (camt.052, ``BkToCstmrAcctRpt/Rpt``), statement
(camt.053, ``BkToCstmrStmt/Stmt``) and debit/credit notification (camt.054,
``BkToCstmrDbtCdtNtfctn/Ntfctn``), versions 001.02 to 001.08 and later: elements are matched by
their local name, whatever the namespace or prefix.

* Every entry (``Ntry``) becomes one canonical bank row; a batched entry whose transaction
  details (``TxDtls``) each carry an amount in the entry's currency that add up to the entry
  amount becomes one row per ``TxDtls`` instead, so that each payment can be matched on its
  own. Otherwise (details without amounts, or not adding up) the entry stays one row and the
  details are kept in ``attributes``, with a note.
* The sign is the cash movement given by ``CdtDbtInd`` (``CRDT`` +, ``DBIT`` -). A reversal
  (``RvslInd`` true) is booked in the direction its ``CdtDbtInd`` states (ISO 20022: a
  reversed credit is a ``DBIT`` entry), and ``reversal: true`` is kept in ``attributes``.
* The date is the booking date (``BookgDt``, ``Dt`` or the date of ``DtTm`` as written), else
  the value date (``ValDt``, noted in ``attributes``); an entry with neither is rejected.
* Amounts are exact minor units in the ``Ccy`` of each amount (0-, 2- and 3-decimal currencies).
* Every balance (``Bal``: OPBD, CLBD, PRCD, OPAV, CLAV, FWAV, ITBD, ITAV, INFO, XPCD, ...) goes to
  the balances table.

Ids are stable: the account servicer's reference (``AcctSvcrRef`` of the transaction details,
else of the entry), else ``UETR`` / ``TxId``, prefixed with the account; where these are absent
or repeated in the file, ``fp-`` + a SHA-1 fingerprint of (account, statement id, date, amount,
currency, entry text, occurrence index).

The XML is parsed with the standard library's expat parser, without DTDs: a document that
declares a ``DOCTYPE`` or entities is refused (no entity expansion, no external fetches).
Unreadable or foreign files raise :class:`models.errors.FeedFormatError`; a bad entry becomes a
reject with its line number and the rest of the file loads.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from os import PathLike
from xml.parsers import expat

from feeds._common import (
    SNIFF_BYTES,
    bank_result,
    clip_raw,
    minor_out_of_range,
    next_fingerprint,
    read_file,
    reject_row,
    sniff_sample,
)
from models.errors import FeedFormatError, PrecisionError
from models.money import to_minor
from models.schema import FeedResult

__all__ = ["FORMAT", "SIDES", "identify", "read"]

FORMAT = "camt"
SIDES = ("bank",)

_MESSAGES = {
    "BkToCstmrStmt": ("053", "Stmt"),
    "BkToCstmrAcctRpt": ("052", "Rpt"),
    "BkToCstmrDbtCdtNtfctn": ("054", "Ntfctn"),
}
_AMOUNT = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})")
_BALANCE_TYPES = {
    "OPBD": "opening",
    "CLBD": "closing",
    "OPAV": "opening_available",
    "CLAV": "closing_available",
    "FWAV": "forward_available",
    "ITBD": "interim",
    "ITAV": "interim_available",
    "INFO": "information",
    "XPCD": "expected",
    "PRCD": "previously_closed",
}
_PLACEHOLDERS = {"", "NOTPROVIDED", "NONREF", "NOT PROVIDED"}


# --------------------------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------------------------


def identify(head: bytes, path: str) -> bool:
    """Whether ``head`` (the first bytes of the file at ``path``) is a camt.052/053/054 message.

    Parameters
    ----------
    head
        The first bytes of the file (up to 64 KiB are looked at).
    path
        The file's path (not used: the content decides).

    Returns
    -------
    bool
        True when the camt namespace or one of the three message elements appears.

    Examples
    --------
    >>> identify(b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">', "x.xml")
    True
    >>> identify(b"<OFX>", "x.xml")
    False
    """
    sample = sniff_sample(head)
    if sample is None:
        return False
    if re.search(rb"camt\.05[234]\.", sample):
        return True
    return bool(re.search(rb"<(?:\w+:)?(?:BkToCstmrStmt|BkToCstmrAcctRpt|BkToCstmrDbtCdtNtfctn)\b", sample))


# --------------------------------------------------------------------------------------------
# A small namespace-agnostic tree with line numbers
# --------------------------------------------------------------------------------------------


@dataclass
class _Node:
    name: str
    attrib: dict[str, str]
    line: int
    end_line: int = 0
    children: list[_Node] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()

    def child(self, *path: str) -> _Node | None:
        node: _Node | None = self
        for name in path:
            if node is None:
                return None
            node = next((c for c in node.children if c.name == name), None)
        return node

    def all(self, name: str) -> list[_Node]:
        return [c for c in self.children if c.name == name]

    def value(self, *path: str) -> str:
        node = self.child(*path)
        return node.text if node is not None else ""

    def descendants(self, name: str) -> list[_Node]:
        found: list[_Node] = []
        stack = list(reversed(self.children))
        while stack:
            node = stack.pop()
            if node.name == name:
                found.append(node)
            stack.extend(reversed(node.children))
        return found


class _Forbidden(Exception):
    pass


def _parse_xml(source: str, data: bytes) -> _Node:
    """Parse ``data`` into a tree of :class:`_Node` (local names), refusing DTDs and entities."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    root = _Node("#document", {}, 0)
    stack = [root]

    def start(name: str, attrib: dict[str, str]) -> None:
        node = _Node(name.rsplit(":", 1)[-1], attrib, parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)

    def end(name: str) -> None:
        node = stack.pop()
        node.end_line = parser.CurrentLineNumber

    def text(data: str) -> None:
        stack[-1].parts.append(data)

    def forbid(*args: object) -> None:
        raise _Forbidden()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = forbid
    parser.EntityDeclHandler = forbid
    parser.ExternalEntityRefHandler = forbid
    try:
        parser.Parse(data, True)
    except _Forbidden:
        raise FeedFormatError(
            source,
            "declares a DOCTYPE or entities, which bank XML never needs; refused for safety "
            "(remove the <!DOCTYPE ...> declaration if the file is genuine)",
        ) from None
    except expat.ExpatError as error:
        line = getattr(error, "lineno", None)
        reason = expat.ErrorString(error.code) if getattr(error, "code", None) else str(error)
        raise FeedFormatError(
            source,
            f"is not well-formed XML ({reason} at line {line}, column {getattr(error, 'offset', 0) + 1}); "
            "re-download the camt file from the bank, and check its encoding if it was edited",
            line=line,
        ) from None
    except (ValueError, LookupError, UnicodeError) as error:  # unknown encoding in the declaration
        raise FeedFormatError(
            source, f"cannot be decoded as XML ({error}); re-save it as UTF-8"
        ) from None
    return root


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _date(text: str) -> dt.date | None:
    match = _DATE.match(text.strip())
    if not match:
        return None
    try:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _date_of(node: _Node | None) -> tuple[dt.date | None, str]:
    """(date, raw text) of a ``Dt``/``DtTm`` choice element such as ``BookgDt``."""
    if node is None:
        return None, ""
    raw = node.value("Dt") or node.value("DtTm") or node.text
    return _date(raw), raw


def _amount(node: _Node | None, fallback_currency: str) -> tuple[int | None, str, str]:
    """(minor units, currency, problem) of an ``Amt``-like element; unsigned."""
    if node is None:
        return None, "", "amount is missing"
    text = node.text
    currency = (node.attrib.get("Ccy") or fallback_currency).strip()
    if not currency:
        return None, "", f"amount {text!r} has no currency (Ccy attribute)"
    if not _AMOUNT.match(text):
        return None, currency, f"amount {text!r} is not a decimal number (expected e.g. 1234.50)"
    try:
        minor = to_minor(Decimal(text), currency)
    except PrecisionError as error:
        return None, currency, str(error)
    problem = minor_out_of_range(minor, text)
    if problem:
        return None, currency, problem
    return minor, currency, ""


def _party_name(node: _Node | None) -> str:
    """Name of a related party: v2-v7 ``Dbtr/Nm``, v8+ ``Dbtr/Pty/Nm``."""
    if node is None:
        return ""
    return node.value("Nm") or node.value("Pty", "Nm")


def _account_id(node: _Node | None) -> str:
    if node is None:
        return ""
    return node.value("Id", "IBAN") or node.value("Id", "Othr", "Id") or node.value("Id", "Othr") or ""


@dataclass
class _Detail:
    """What one ``TxDtls`` (or an entry without details) says about a payment."""

    line: int
    fields: dict[str, str]
    amount: int | None = None
    currency: str = ""
    sign: int = 0


def _detail(node: _Node, index: int) -> _Detail:
    refs = node.child("Refs")
    fields: dict[str, str] = {"detail_index": str(index)}
    if refs is not None:
        for name in ("AcctSvcrRef", "MsgId", "PmtInfId", "InstrId", "EndToEndId", "TxId",
                     "MndtId", "ChqNb", "UETR", "ClrSysRef"):
            value = refs.value(name)
            if value:
                fields[name] = value
        proprietary = refs.child("Prtry")
        if proprietary is not None and proprietary.value("Ref"):
            fields["PrtryRef"] = proprietary.value("Ref")
            fields["PrtryRefTp"] = proprietary.value("Tp")
    parties = node.child("RltdPties")
    if parties is not None:
        for role in ("Dbtr", "Cdtr", "UltmtDbtr", "UltmtCdtr"):
            name = _party_name(parties.child(role))
            if name:
                fields[role] = name
        for role in ("DbtrAcct", "CdtrAcct"):
            account = _account_id(parties.child(role))
            if account:
                fields[role] = account
    agents = node.child("RltdAgts")
    if agents is not None:
        for role in ("DbtrAgt", "CdtrAgt"):
            agent = agents.child(role, "FinInstnId")
            if agent is not None:
                bic = agent.value("BIC") or agent.value("BICFI")
                if bic:
                    fields[role] = bic
    remittance = node.child("RmtInf")
    if remittance is not None:
        unstructured = [n.text for n in remittance.all("Ustrd") if n.text]
        if unstructured:
            fields["Ustrd"] = " ".join(unstructured)
        for structured in remittance.all("Strd"):
            creditor = structured.child("CdtrRefInf")
            if creditor is not None and creditor.value("Ref"):
                fields.setdefault("CdtrRef", creditor.value("Ref"))
                kind = creditor.value("Tp", "CdOrPrtry", "Cd") or creditor.value("Tp", "CdOrPrtry", "Prtry")
                if kind:
                    fields.setdefault("CdtrRefTp", kind)
            extra = [n.text for n in structured.all("AddtlRmtInf") if n.text]
            if extra:
                fields.setdefault("AddtlRmtInf", " ".join(extra))
    if node.value("AddtlTxInf"):
        fields["AddtlTxInf"] = node.value("AddtlTxInf")
    reason = node.value("RtrInf", "Rsn", "Cd") or node.value("RtrInf", "Rsn", "Prtry")
    if reason:
        fields["ReturnReason"] = reason
    code = _bank_code(node.child("BkTxCd"))
    if code:
        fields["BkTxCd"] = code
    amount_node = node.child("Amt") or node.child("AmtDtls", "TxAmt", "Amt")
    detail = _Detail(line=node.line, fields=fields)
    if amount_node is not None:
        minor, currency, problem = _amount(amount_node, "")
        if not problem:
            detail.amount, detail.currency = minor, currency
    indicator = node.value("CdtDbtInd")
    detail.sign = 1 if indicator == "CRDT" else -1 if indicator == "DBIT" else 0
    return detail


def _bank_code(node: _Node | None) -> str:
    if node is None:
        return ""
    domain = node.child("Domn")
    parts = []
    if domain is not None:
        parts = [domain.value("Cd"), domain.value("Fmly", "Cd"), domain.value("Fmly", "SubFmlyCd")]
    code = "-".join(p for p in parts if p)
    proprietary = node.value("Prtry", "Cd")
    if proprietary:
        code = f"{code} ({proprietary})" if code else proprietary
    return code


def _texts(fields: dict[str, str], sign: int) -> tuple[str, str, str]:
    """(description, counterparty, reference) of one payment."""
    description = fields.get("Ustrd") or fields.get("AddtlTxInf") or fields.get("AddtlNtryInf") or fields.get("AddtlRmtInf", "")
    if sign > 0:
        counterparty = fields.get("Dbtr") or fields.get("UltmtDbtr") or fields.get("Cdtr", "")
    else:
        counterparty = fields.get("Cdtr") or fields.get("UltmtCdtr") or fields.get("Dbtr", "")
    reference = ""
    for key in ("CdtrRef", "EndToEndId", "ChqNb"):
        value = fields.get(key, "")
        if value.upper() not in _PLACEHOLDERS:
            reference = value
            break
    return description, counterparty, reference


def _source_text(lines: list[str], node: _Node) -> str:
    text = "\n".join(lines[max(node.line - 1, 0): max(node.end_line, node.line)])
    return clip_raw(text)


def read(path: str | PathLike[str]) -> FeedResult:
    """Read one camt.052 / camt.053 / camt.054 file into canonical bank rows and balances.

    Parameters
    ----------
    path
        The file; kept as given in ``source_file``.

    Returns
    -------
    FeedResult
        ``frame`` in ``BANK_SCHEMA`` (one row per entry, or per transaction detail of a batch
        that can be split), ``rejects`` (one per unreadable entry), ``balances`` (every
        ``Bal``), ``accounts``, ``rows_read`` and ``notes``.

    Raises
    ------
    FeedFormatError
        Missing, empty or unreadable file; not well-formed XML; a DTD; or XML that is not a
        camt.052/053/054 bank-to-customer message.

    Examples
    --------
    >>> result = read("tests/feeds/data/camt/statement_sample.xml")  # doctest: +SKIP
    >>> result.frame.select("id", "amount_minor", "currency").head(2)  # doctest: +SKIP
    """
    source = str(path)
    data = read_file(source, "a camt XML file")
    if not data.strip():
        raise FeedFormatError(source, "is empty; check that the camt download finished")
    root = _parse_xml(source, data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    lines = re.split(r"\r\n|\r|\n", text)

    messages = [node for node in _walk(root) if node.name in _MESSAGES]
    if not messages:
        top = root.children[0] if root.children else None
        namespace = ""
        if top is not None:
            namespace = next((v for k, v in top.attrib.items() if k == "xmlns" or k.startswith("xmlns:")), "")
        found = f" (root element <{top.name}>{' in ' + namespace if namespace else ''})" if top else ""
        raise FeedFormatError(
            source,
            f"is XML but not a camt.052/053/054 bank-to-customer message{found}; give the bank "
            "statement (camt.053), intraday report (camt.052) or notification (camt.054)",
        )
    found = re.search(rb"camt\.05[234]\.\d{3}\.\d{2}", data[:SNIFF_BYTES])
    version = found.group(0).decode("ascii") if found else ""

    rows: list[dict] = []
    rejects: list[dict] = []
    balances: list[dict] = []
    accounts: list[str] = []
    notes: list[str] = []
    for message in messages:
        kind, statement_name = _MESSAGES[message.name]
        message_id = message.value("GrpHdr", "MsgId")
        for statement in message.all(statement_name):
            _read_statement(
                source, lines, statement, version or f"camt.{kind}", message_id,
                rows, rejects, balances, accounts, notes,
            )
    read_entries = {id(e) for m in messages for st in m.all(_MESSAGES[m.name][1]) for e in st.all("Ntry")}
    for entry in root.descendants("Ntry"):
        if id(entry) not in read_entries:
            rejects.append(
                reject_row(
                    source, entry.line, "Ntry",
                    "entry is not directly inside a statement, report or notification "
                    "(Stmt/Rpt/Ntfctn), so its account is unknown",
                    _source_text(lines, entry),
                )
            )
    rejects.sort(key=lambda r: r["line"])
    _assign_ids(rows)
    return bank_result(FORMAT, rows, rejects, balances, accounts, notes)


def _walk(root: _Node) -> list[_Node]:
    """Message elements wherever they sit (under ``Document``, or inside an envelope such as a
    business application header wrapper)."""
    found: list[_Node] = []
    stack = list(reversed(root.children))
    while stack:
        node = stack.pop()
        if node.name in _MESSAGES:
            found.append(node)
            continue
        stack.extend(reversed(node.children))
    return found


def _read_statement(
    source: str,
    lines: list[str],
    statement: _Node,
    version: str,
    message_id: str,
    rows: list[dict],
    rejects: list[dict],
    balances: list[dict],
    accounts: list[str],
    notes: list[str],
) -> None:
    statement_id = statement.value("Id")
    account_node = statement.child("Acct")
    account = _account_id(account_node)
    account_currency = account_node.value("Ccy") if account_node is not None else ""
    if account and account not in accounts:
        accounts.append(account)

    codes = [b.value("Tp", "CdOrPrtry", "Cd") for b in statement.all("Bal")]
    for balance in statement.all("Bal"):
        code = balance.value("Tp", "CdOrPrtry", "Cd") or balance.value("Tp", "CdOrPrtry", "Prtry")
        kind_name = _BALANCE_TYPES.get(code, code.lower() or "unknown")
        if code == "PRCD" and "OPBD" not in codes:
            kind_name = "opening"  # the previous closing booked balance opens this statement
        minor, currency, problem = _amount(balance.child("Amt"), account_currency)
        day, raw_day = _date_of(balance.child("Dt"))
        indicator = balance.value("CdtDbtInd")
        if not problem and indicator not in ("CRDT", "DBIT"):
            problem = f"CdtDbtInd {indicator!r} is not CRDT or DBIT"
        if problem:
            notes.append(f"line {balance.line}: balance {code or '?'} cannot be read ({problem}); left out")
            continue
        balances.append(
            {
                "account": account,
                "currency": currency,
                "type": kind_name,
                "date": day,
                "amount_minor": -minor if indicator == "DBIT" else minor,
                "statement_id": statement_id,
                "source_file": source,
            }
        )

    for entry in statement.all("Ntry"):
        _read_entry(source, lines, entry, statement_id, account, account_currency, version,
                    message_id, rows, rejects, notes)


def _read_entry(
    source: str,
    lines: list[str],
    entry: _Node,
    statement_id: str,
    account: str,
    account_currency: str,
    version: str,
    message_id: str,
    rows: list[dict],
    rejects: list[dict],
    notes: list[str],
) -> None:
    raw = _source_text(lines, entry)

    def reject(reason: str, column: str) -> None:
        rejects.append(reject_row(source, entry.line, column, reason, raw))

    minor, currency, problem = _amount(entry.child("Amt"), account_currency)
    if problem:
        reject(f"entry amount cannot be read: {problem}", "Amt")
        return
    indicator = entry.value("CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        reject(f"CdtDbtInd {indicator!r} is not CRDT (credit) or DBIT (debit)", "CdtDbtInd")
        return
    sign = 1 if indicator == "CRDT" else -1
    booking, booking_raw = _date_of(entry.child("BookgDt"))
    value_date, value_raw = _date_of(entry.child("ValDt"))
    date_source = "booking date"
    if booking is None:
        if booking_raw:
            reject(f"booking date {booking_raw!r} (BookgDt) is not a valid date", "BookgDt")
            return
        if value_date is None:
            what = f"value date {value_raw!r} is not a valid date" if value_raw else "no value date (ValDt)"
            reject(f"entry has no booking date (BookgDt) and {what}", "BookgDt")
            return
        booking, date_source = value_date, "value date"

    status = entry.value("Sts") or entry.value("Sts", "Cd") or entry.value("Sts", "Prtry")
    if status and status != "BOOK":
        notes.append(f"line {entry.line}: entry status {status} (not booked yet); read, with its status in attributes")
    reversal = entry.value("RvslInd").lower() in ("true", "1")
    entry_fields: dict[str, str] = {
        "message": version,
        "message_id": message_id,
        "statement_id": statement_id,
        "entry_line": str(entry.line),
        "credit_debit": indicator,
        "status": status,
        "booking_date_raw": booking_raw,
        "value_date": value_date.isoformat() if value_date else value_raw,
        "date_source": date_source,
        "NtryRef": entry.value("NtryRef"),
        "AcctSvcrRef": entry.value("AcctSvcrRef"),
        "BkTxCd": _bank_code(entry.child("BkTxCd")),
        "AddtlNtryInf": entry.value("AddtlNtryInf"),
        "entry_amount_minor": str(sign * minor),
    }
    if reversal:
        entry_fields["reversal"] = "true"
    batches = [b for d in entry.all("NtryDtls") for b in d.all("Btch")]
    if batches:
        batch = batches[0]
        for name in ("MsgId", "PmtInfId", "NbOfTxs"):
            if batch.value(name):
                entry_fields[f"batch_{name}"] = batch.value(name)
    nodes = [t for d in entry.all("NtryDtls") for t in d.all("TxDtls")]
    details = [_detail(node, index) for index, node in enumerate(nodes, start=1)]

    splittable = len(details) >= 2 and all(
        d.amount is not None and d.currency == currency for d in details
    ) and sum((d.sign or sign) * d.amount for d in details) == sign * minor  # type: ignore[operator]
    if len(details) >= 2 and not splittable:
        notes.append(
            f"line {entry.line}: entry of {sign * minor} minor {currency} has {len(details)} transaction "
            "details whose amounts are missing or do not add up to it; kept as one line"
        )

    def add_row(fields: dict[str, str], amount: int, line: int, refs: list[str]) -> None:
        fields = {k: v for k, v in fields.items() if v}
        description, counterparty, reference = _texts(fields, 1 if amount > 0 else -1)
        identity = [fields.get(k, "") for k in ("detail_index", "NtryRef", "BkTxCd", "value_date")]
        rows.append(
            {
                "id": None,
                "date": booking,
                "amount_minor": amount,
                "currency": currency,
                "description": description,
                "counterparty": counterparty,
                "reference": reference,
                "account": account,
                "attributes": json.dumps(fields, ensure_ascii=False),
                "source_file": source,
                "source_line": line,
                "_refs": refs,
                "_key": [account, booking.isoformat(), str(amount), currency, description,
                         counterparty, reference, *identity],
            }
        )

    if splittable:
        for detail in details:
            detail_sign = detail.sign or sign
            fields = {**entry_fields, **_prefixed(detail.fields)}
            refs = [fields.get("AcctSvcrRef_detail", ""), fields.get("UETR", ""), fields.get("TxId", "")]
            add_row(fields, detail_sign * detail.amount, detail.line, refs)  # type: ignore[operator]
        return
    fields = dict(entry_fields)
    if len(details) == 1:
        fields.update(_prefixed(details[0].fields))
    elif details:
        fields["transaction_details"] = json.dumps([d.fields for d in details], ensure_ascii=False)
        joined = " | ".join(filter(None, (_texts(d.fields, sign)[0] for d in details)))
        if not fields.get("AddtlNtryInf") and joined:
            fields["AddtlNtryInf"] = joined
    refs = [fields.get("AcctSvcrRef", ""), fields.get("AcctSvcrRef_detail", ""),
            fields.get("UETR", ""), fields.get("TxId", "")]
    add_row(fields, sign * minor, entry.line, refs)


def _prefixed(fields: dict[str, str]) -> dict[str, str]:
    """Detail fields; the detail's own AcctSvcrRef is kept apart from the entry's."""
    out = dict(fields)
    if "AcctSvcrRef" in out:
        out["AcctSvcrRef_detail"] = out.pop("AcctSvcrRef")
    return out


def _assign_ids(rows: list[dict]) -> None:
    """Bank references where present and unique in the file; fingerprints otherwise."""
    chosen: list[str] = []
    for row in rows:
        refs = [r for r in row["_refs"] if r and r.upper() not in _PLACEHOLDERS]
        chosen.append(refs[0] if refs else "")
    counts: dict[tuple[str, str], int] = {}
    for row, ref in zip(rows, chosen, strict=True):
        if ref:
            counts[(row["account"], ref)] = counts.get((row["account"], ref), 0) + 1
    occurrences: dict[str, int] = {}
    for row, ref in zip(rows, chosen, strict=True):
        row.pop("_refs")
        key = row.pop("_key")
        if ref and counts[(row["account"], ref)] == 1:
            row["id"] = f"{row['account']}/{ref}" if row["account"] else ref
            continue
        row["id"] = next_fingerprint(key, occurrences)
