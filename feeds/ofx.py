"""Feeds stage: read OFX / QFX statements (via ofxparse) into canonical bank rows.

Reads OFX 1.x SGML (with or without closing tags, values on the next line, misnested "tidied"
tags) and OFX 2.x XML, bank (``STMTRS``), credit-card (``CCSTMTRS``) and investment statements
(their cash lines, ``INVBANKTRAN``), several statements per file. ofxparse (the product's OFX
library) builds the tag tree and the accounts; this module wraps it so that its known failure
modes give clear results instead of crashes or silently lost lines:

* **Encoding**: the bytes are decoded here, not by ofxparse (which decodes header-less and OFX 2
  files as ASCII and fails on the first accented letter): UTF-8 when the file is valid UTF-8,
  else the declared ``CHARSET`` (1252, 8859-1, ...), else cp1252. The header may also sit in an
  XML comment. ofxparse then gets the decoded text with a UTF-8 header.
* **Bad transactions**: ofxparse's ``fail_fast=False`` discards a transaction on any problem,
  including harmless ones (empty ``NAME``, empty ``FITID``). Here every ``STMTTRN`` is read:
  a missing or invalid ``DTPOSTED`` (e.g. 31 February) or ``TRNAMT`` (``$120``) makes a reject
  with the reason and the transaction's text; anything else is read normally.
* **Dates** are the booking date as written (``DTPOSTED`` ``YYYYMMDD``), not ofxparse's UTC
  conversion (which moves late-evening lines to the next day).
* **Amounts** are converted exactly with the currency's ISO 4217 exponent (``CURDEF``, or the
  transaction's own ``CURRENCY/CURSYM``); a comma decimal (``-200,00``) is accepted; an amount
  with more decimals than the currency allows (e.g. ``115.8331`` USD) is rejected, never rounded.
* **Error responses**: a file whose statement request failed (``STATUS`` with an error code and
  no statement) raises :class:`models.errors.FeedFormatError` quoting the bank's message.

Ids are ``ACCTID/FITID`` (FITIDs are unique per account only); a transaction without FITID gets
``fp-`` + a SHA-1 fingerprint of (account, date, amount, currency, name, memo, occurrence index).
A FITID repeated within one file keeps both lines with the same id (the loader de-duplicates
across files and reports duplicates) and is named in ``notes``. ``LEDGERBAL`` becomes a
``closing`` balance, ``AVAILBAL`` (and ``INVBAL/AVAILCASH``) an ``available`` one.
"""

from __future__ import annotations

import bisect
import datetime as dt
import io
import json
import re
import warnings
from decimal import Decimal, InvalidOperation
from os import PathLike

from ofxparse import OfxParser
from ofxparse.ofxparse import InvestmentStatement, OfxParserException, Statement

from feeds._common import (
    MAX_RAW,
    bank_result,
    clip_raw,
    decode_unicode,
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

FORMAT = "ofx"
SIDES = ("bank",)

_HEADER_FOR_OFXPARSE = "OFXHEADER:100\nDATA:OFXSGML\nENCODING:UTF-8\nCHARSET:NONE\n\n"
_AMOUNT = re.compile(r"^[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)$")
_DATE = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})")
_TRNRS = ("SONRS", "STMTTRNRS", "CCSTMTTRNRS", "INVSTMTTRNRS")
_MAPPED_LEAVES = {"trnamt", "fitid", "name", "memo"}


# --------------------------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------------------------


def identify(head: bytes, path: str) -> bool:
    """Whether ``head`` (the first bytes of the file at ``path``) is an OFX / QFX file.

    Parameters
    ----------
    head
        The first bytes of the file (up to 64 KiB are looked at).
    path
        The file's path (not used: the content decides).

    Returns
    -------
    bool
        True when an ``OFXHEADER`` line, an ``<?OFX ...?>`` declaration or an ``<OFX>`` tag
        appears.

    Examples
    --------
    >>> identify(b"OFXHEADER:100\\r\\nDATA:OFXSGML\\r\\n", "bank.qfx")
    True
    >>> identify(b":20:REF", "bank.qfx")
    False
    """
    sample = sniff_sample(head)
    if sample is None:
        return False
    return bool(re.search(rb"(?i)OFXHEADER\s*[:=]|<\?OFX\b|<OFX>", sample))


# --------------------------------------------------------------------------------------------
# Decoding and pre-cleaning
# --------------------------------------------------------------------------------------------


def _declared_encoding(data: bytes) -> str | None:
    """The encoding an OFX 1 header (also inside a comment) or an XML declaration names."""
    start = data.upper().find(b"<OFX>")
    region = data[: start if start >= 0 else 4096][:8192]
    encoding = re.search(rb"(?im)^\s*ENCODING\s*:\s*([\w-]+)", region)
    charset = re.search(rb"(?im)^\s*CHARSET\s*:\s*([\w-]+)", region)
    if encoding:
        value = encoding.group(1).decode("ascii").upper()
        if value in ("UTF-8", "UTF8", "UNICODE"):
            return "utf-8"
        if charset:
            cs = charset.group(1).decode("ascii").upper()
            if cs in ("8859-1", "ISO-8859-1", "LATIN-1", "LATIN1"):
                return "latin-1"
            if cs.isdigit():
                return f"cp{cs}"
            if cs != "NONE":
                return cs.lower()
        return "cp1252"
    declaration = re.search(rb"<\?xml[^>]*encoding\s*=\s*[\"']([\w.-]+)[\"']", region)
    if declaration:
        return declaration.group(1).decode("ascii").lower()
    return None


def _decode(source: str, data: bytes, encoding: str | None) -> tuple[str, list[str]]:
    """(text, notes): UTF-8 when valid, else the declared single-byte charset, else cp1252."""
    notes: list[str] = []
    text, _, data = decode_unicode(source, data, encoding, example="cp1252", reexport="re-export it")
    if text is not None:
        return text, notes
    declared = _declared_encoding(data)
    for candidate in (declared, "cp1252", "latin-1"):
        if not candidate:
            continue
        try:
            text = data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
        if declared and candidate != declared:
            notes.append(f"the file declares {declared} but is not valid {declared}; decoded as {candidate}")
        return text, notes
    return data.decode("latin-1"), notes  # unreachable: latin-1 decodes every byte


def _line_aligned_blank(text: str) -> str:
    """Replace every character of ``text`` except line breaks by nothing (keeps line count)."""
    return "\n" * text.count("\n")


def _clean(text: str) -> str:
    """Text for ofxparse: one line ending, the OFX 1 header blanked (line numbers unchanged)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    first = text.find("<")
    if first > 0:
        text = _line_aligned_blank(text[:first]) + text[first:]
    return text


def _without_status(text: str) -> str:
    """``text`` without its closed ``SIGNONMSGSRSV1`` and ``STATUS`` aggregates (line-aligned)."""
    pattern = re.compile(r"(?is)<(SIGNONMSGSRSV1|STATUS)>.*?</\1>")
    return pattern.sub(lambda m: _line_aligned_blank(m.group(0)), text)


class _OfxParser(OfxParser):
    """ofxparse's parser, remembering each statement's tag and reading dates as written."""

    @classmethod
    def parseOfxDateTime(cls, ofxDateTime):  # noqa: N802, N803 - ofxparse's names
        match = _DATE.match(str(ofxDateTime).strip())
        if not match:
            raise ValueError(f"not an OFX date: {ofxDateTime!r}")
        return dt.datetime(int(match.group(1)), int(match.group(2)), int(match.group(3)))

    @classmethod
    def parseTransaction(cls, txn_ofx):  # noqa: N802 - ofxparse's name
        """ofxparse's reading, with its verdict ('' or why it discarded) kept on the tag."""
        try:
            transaction = super().parseTransaction(txn_ofx)
        except OfxParserException as error:
            txn_ofx.__dict__["_recon_verdict"] = " ".join(str(error).split())
            raise
        except Exception as error:  # an ofxparse bug on odd content: judged by this feed instead
            txn_ofx.__dict__["_recon_verdict"] = f"{type(error).__name__}: {error}"
            raise OfxParserException(str(error)) from None
        txn_ofx.__dict__["_recon_verdict"] = ""
        return transaction

    @classmethod
    def parseStatement(cls, stmt_ofx):  # noqa: N802 - ofxparse's name
        try:
            statement = super().parseStatement(stmt_ofx)
        except Exception:  # ofxparse stumbles on a malformed statement header: read it ourselves
            statement = Statement()
        statement.tag = stmt_ofx
        return statement

    @classmethod
    def parseInvestmentStatement(cls, invstmtrs_ofx):  # noqa: N802 - ofxparse's name
        try:
            statement = super().parseInvestmentStatement(invstmtrs_ofx)
        except Exception:
            statement = InvestmentStatement()
        statement.tag = invstmtrs_ofx
        return statement


def _run_ofxparse(text: str):
    payload = (_HEADER_FOR_OFXPARSE + text).encode("utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _OfxParser.parse(io.BytesIO(payload), fail_fast=False)


# --------------------------------------------------------------------------------------------
# Tag helpers (bs4 tags built by ofxparse; names are lower case)
# --------------------------------------------------------------------------------------------


def _leaf(tag, name: str) -> str | None:
    """Text of the first ``name`` element under ``tag`` (None when absent, '' when empty)."""
    if tag is None:
        return None
    found = tag.find(name)
    if found is None:
        return None
    if found.contents and isinstance(found.contents[0], str):
        return str(found.contents[0]).strip()
    return ""


def _fields(tag) -> dict[str, str]:
    """Every element under ``tag`` -> the text of its own first string ('' when it has none).

    One pass over the transaction's elements (first occurrence of each name wins); a currency
    symbol is keyed by its aggregate (``currency/cursym``, ``origcurrency/cursym``).
    """
    values: dict[str, str] = {}
    for element in tag.find_all(True):
        name = element.name
        if name == "cursym" and element.parent is not None:
            name = f"{element.parent.name}/cursym"
        if name in values:
            continue
        first = element.contents[0] if element.contents else None
        values[name] = str(first).strip() if isinstance(first, str) else ""
    return values


def _parse_date(text: str | None, label: str) -> tuple[dt.date | None, str]:
    if text is None:
        return None, f"{label} is missing"
    if not text:
        return None, f"{label} is empty"
    match = _DATE.match(text)
    if not match or match.group(0) == "00000000":
        return None, f"{label} {text!r} is not a date (expected YYYYMMDD...)"
    try:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3))), ""
    except ValueError as error:
        return None, f"{label} {text!r} is not a valid date ({error})"


def _parse_amount(text: str | None, currency: str, label: str) -> tuple[int | None, str]:
    if text is None:
        return None, f"{label} is missing"
    compact = text.replace(" ", "")
    if not compact:
        return None, f"{label} is empty"
    if compact.lower() in ("null", "-null"):
        return 0, ""
    if not _AMOUNT.match(compact):
        return None, f"{label} {text!r} is not a decimal amount"
    if not currency:
        return None, "no currency: the statement's CURDEF is empty and the transaction has no CURRENCY"
    try:
        value = Decimal(compact.replace(",", "."))
    except InvalidOperation:
        return None, f"{label} {text!r} is not a decimal amount"
    try:
        minor = to_minor(value, currency)
    except PrecisionError as error:
        return None, f"{label} {text}: {error}"
    problem = minor_out_of_range(minor, text, label)
    return (None, problem) if problem else (minor, "")


def _statuses(text: str) -> list[tuple[str, str, str, str]]:
    """(response, code, severity, message) of each signon / statement response."""
    found = []
    names = "|".join(_TRNRS)
    for match in re.finditer(rf"(?is)<({names})>(.*?)(?=<(?:{names})>|\Z)", text):
        status = re.search(r"(?is)<STATUS>(.*?)(?:</STATUS>|<(?:STMTRS|CCSTMTRS|INVSTMTRS|DTSERVER)>|\Z)", match.group(2))
        if not status:
            continue

        def value(name: str, block: str = status.group(1)) -> str:
            hit = re.search(rf"(?is)<{name}>\s*([^<]*)", block)
            return hit.group(1).strip() if hit else ""

        found.append((match.group(1).upper(), value("CODE"), value("SEVERITY"), value("MESSAGE")))
    return found


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read(path: str | PathLike[str], *, encoding: str | None = None) -> FeedResult:
    """Read one OFX or QFX file into canonical bank rows, rejects and balances.

    Parameters
    ----------
    path
        The file; kept as given in ``source_file``.
    encoding
        Override the text encoding (by default UTF-8 when valid, else the declared charset,
        else cp1252).

    Returns
    -------
    FeedResult
        ``frame`` in ``BANK_SCHEMA`` (one row per readable ``STMTTRN``, in file order),
        ``rejects`` (one per unreadable ``STMTTRN``), ``balances`` (``LEDGERBAL`` as
        ``closing``, ``AVAILBAL`` as ``available``), ``accounts``, ``rows_read`` and ``notes``.

    Raises
    ------
    FeedFormatError
        The file is missing, empty, not OFX, cannot be parsed, holds no statement, or the bank
        answered with an error status instead of a statement.

    Examples
    --------
    >>> result = read("tests/feeds/data/ofx/checking_sgml.ofx")  # doctest: +SKIP
    >>> result.frame.select("id", "date", "amount_minor").head(1)  # doctest: +SKIP
    """
    source = str(path)
    data = read_file(source, "an OFX/QFX file")
    if not data.strip():
        raise FeedFormatError(source, "is empty; check that the OFX download finished")
    text, notes = _decode(source, data, encoding)
    text = _clean(text)
    if not re.search(r"(?i)<OFX\s*>", text):
        raise FeedFormatError(
            source,
            "is not an OFX/QFX file (no <OFX> element); download the statement as OFX/QFX/Quicken "
            "'Web Connect', or read it with the feed for its format",
        )
    try:
        parsed = _run_ofxparse(text)
    except Exception as first_error:  # ofxparse's own failures (status blocks, headers, ...)
        try:
            parsed = _run_ofxparse(_without_status(text))
            notes.append(f"ofxparse failed on the status blocks ({type(first_error).__name__}); read without them")
        except Exception as error:
            raise FeedFormatError(
                source,
                f"cannot be parsed as OFX (ofxparse: {type(error).__name__}: {str(error)[:200]}); "
                "re-download the statement from the bank",
            ) from None

    statuses = _statuses(text)
    statements = [a for a in getattr(parsed, "accounts", []) if getattr(getattr(a, "statement", None), "tag", None) is not None]
    failed = [s for s in statuses if s[1] not in ("", "0") and s[0] != "SONRS"]
    signon_failed = [s for s in statuses if s[0] == "SONRS" and s[1] not in ("", "0")]
    if not statements:
        problem = (failed or signon_failed or [None])[0]
        if problem is not None:
            response, code, severity, message = problem
            raise FeedFormatError(
                source,
                f"the bank answered with an error instead of a statement ({response} STATUS {code} "
                f"{severity} {message!r}); download the statement again or ask the bank",
            )
        raise FeedFormatError(
            source,
            "contains no bank, credit-card or investment statement (no STMTRS, CCSTMTRS or "
            "INVSTMTRS); download a statement, not a sign-on or account-list response",
        )
    for response, code, severity, message in failed:
        notes.append(f"a {response} response has STATUS {code} {severity} {message!r}: its statement is missing")

    # every STMTTRN start tag in file order, for lines and raw text
    starts = [m.start() for m in re.finditer(r"(?i)<STMTTRN\s*>", text)]
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    soup = statements[0].statement.tag
    while soup.parent is not None:
        soup = soup.parent
    ordinal = {id(tag): index for index, tag in enumerate(soup.find_all("stmttrn"))}
    aligned = len(ordinal) == len(starts)

    rows: list[dict] = []
    rejects: list[dict] = []
    balances: list[dict] = []
    accounts: list[str] = []
    seen: set[int] = set()
    for account in statements:
        statement_tag = account.statement.tag
        kind = {"stmtrs": "bank", "ccstmtrs": "creditcard", "invstmtrs": "investment"}.get(statement_tag.name, statement_tag.name)
        account_id = (_leaf(statement_tag, "acctid") or "").strip()
        if account_id and account_id not in accounts:
            accounts.append(account_id)
        curdef = (_leaf(statement_tag, "curdef") or "").strip().upper()
        context = {
            "statement_type": kind,
            "bankid": _leaf(statement_tag, "bankid") or _leaf(statement_tag, "brokerid") or "",
            "branchid": _leaf(statement_tag, "branchid") or "",
            "accttype": _leaf(statement_tag, "accttype") or "",
            "curdef": curdef,
        }
        dtstart = (_leaf(statement_tag, "dtstart") or "")[:8]
        dtend = (_leaf(statement_tag, "dtend") or "")[:8]
        statement_id = f"{account_id} {dtstart}-{dtend}" if dtstart or dtend else account_id
        for warning in getattr(account.statement, "warnings", []) or []:
            summary = re.split(r"\s+for\s*<|\s+for\s*$", " ".join(str(warning).split()))[0]
            notes.append(f"account {account_id}: ofxparse warning: {summary[:160]}")
        _read_balances(source, statement_tag, account_id, curdef, statement_id, balances, notes)

        if kind == "investment":
            tags = [t for bank in statement_tag.find_all("invbanktran") for t in bank.find_all("stmttrn")]
        else:
            tags = statement_tag.find_all("stmttrn")
        for tag in tags:
            if id(tag) in seen:
                continue
            seen.add(id(tag))
            index = ordinal.get(id(tag))
            if aligned and index is not None:
                start = starts[index]
                line = bisect.bisect_right(line_starts, start)
                end = starts[index + 1] if index + 1 < len(starts) else len(text)
                closing = re.search(r"(?i)</STMTTRN\s*>", text[start:end])
                raw = text[start: start + closing.end()] if closing else text[start:end]
            else:
                line = (getattr(tag, "sourceline", None) or 0) - _HEADER_FOR_OFXPARSE.count("\n")
                line = line if line > 0 else len(rows) + len(rejects) + 1
                raw = str(tag)
            raw = clip_raw(raw.strip())
            _read_transaction(source, tag, line, raw, account_id, curdef, context, rows, rejects, notes)

    _reject_unread(source, text, line_starts, soup, seen, rejects)
    _assign_ids(rows, notes)
    return bank_result(FORMAT, rows, rejects, balances, accounts, notes)


def _reject_unread(
    source: str, text: str, line_starts: list[int], soup, seen: set[int], rejects: list[dict]
) -> None:
    """Make a reject of every STMTTRN that was not read: outside any statement, or lost by the
    tag tree because of broken markup (e.g. a ``</STMTTRN`` without its ``>``)."""
    offset = _HEADER_FOR_OFXPARSE.count("\n")
    in_tree: dict[int, int] = {}
    for tag in soup.find_all("stmttrn"):
        line = (getattr(tag, "sourceline", None) or 0) - offset
        in_tree[line] = in_tree.get(line, 0) + 1
        if id(tag) not in seen:
            rejects.append(
                reject_row(
                    source, max(line, 1), "STMTTRN",
                    "transaction is not inside a bank or credit-card statement (STMTRS/CCSTMTRS) "
                    "or an investment INVBANKTRAN, so its account and currency are unknown",
                    str(tag)[:MAX_RAW],
                )
            )
    for match in re.finditer(r"(?i)<STMTTRN\s*>", text):
        line = bisect.bisect_right(line_starts, match.start())
        if in_tree.get(line, 0) > 0:
            in_tree[line] -= 1
            continue
        end = text.find("\n", match.end() + 200)
        rejects.append(
            reject_row(
                source, line, "STMTTRN",
                "transaction could not be read: the OFX markup around it is broken "
                "(unclosed or damaged tags)",
                text[match.start(): end if end > 0 else len(text)][:MAX_RAW],
            )
        )
    rejects.sort(key=lambda r: r["line"])


def _read_balances(source, statement_tag, account_id, curdef, statement_id, balances, notes) -> None:
    wanted = [("ledgerbal", "closing"), ("availbal", "available")]
    for element, kind in wanted:
        block = statement_tag.find(element)
        if block is None:
            continue
        amount_text = _leaf(block, "balamt")
        minor, problem = _parse_amount(amount_text, curdef, "BALAMT")
        if problem:
            notes.append(f"account {account_id}: {element.upper()} left out ({problem})")
            continue
        day, _ = _parse_date(_leaf(block, "dtasof"), "DTASOF")
        balances.append(
            {"account": account_id, "currency": curdef, "type": kind, "date": day,
             "amount_minor": minor, "statement_id": statement_id, "source_file": source}
        )
    invbal = statement_tag.find("invbal")
    if invbal is not None and _leaf(invbal, "availcash") is not None:
        minor, problem = _parse_amount(_leaf(invbal, "availcash"), curdef, "AVAILCASH")
        if problem:
            notes.append(f"account {account_id}: INVBAL/AVAILCASH left out ({problem})")
        else:
            day, _ = _parse_date(_leaf(statement_tag, "dtasof"), "DTASOF")
            balances.append(
                {"account": account_id, "currency": curdef, "type": "available", "date": day,
                 "amount_minor": minor, "statement_id": statement_id, "source_file": source}
            )


def _read_transaction(source, tag, line, raw, account_id, curdef, context, rows, rejects, notes) -> None:
    verdict = tag.__dict__.get("_recon_verdict")
    if verdict is None:  # not parsed by ofxparse (e.g. outside its statement lists): ask it now
        try:
            _OfxParser.parseTransaction(tag)
        except Exception:
            pass
        verdict = tag.__dict__.get("_recon_verdict", "")
    discarded = verdict

    fields = _fields(tag)
    currency = (fields.get("currency/cursym") or curdef).upper()
    day, date_problem = _parse_date(fields.get("dtposted"), "DTPOSTED")
    minor, amount_problem = _parse_amount(fields.get("trnamt"), currency, "TRNAMT")
    problems = [p for p in (date_problem, amount_problem) if p]
    if problems:
        column = "DTPOSTED" if date_problem else ("TRNAMT" if "TRNAMT" in amount_problem else "CURDEF")
        rejects.append(reject_row(source, line, column, "; ".join(problems), raw))
        return
    if discarded:
        notes.append(f"line {line}: ofxparse discarded this transaction ({discarded}); read it from the file")

    fitid = fields.get("fitid", "")
    name = fields.get("name", "")
    memo = fields.get("memo", "")
    checknum = fields.get("checknum", "")
    refnum = fields.get("refnum", "")
    reference = checknum if checknum.strip("0") else ""
    if not reference and refnum and refnum != fitid:
        reference = refnum
    attributes = {k: v for k, v in context.items() if v}
    attributes.update({k: v for k, v in fields.items() if v and k not in _MAPPED_LEAVES})
    if fitid:
        attributes["fitid"] = fitid
    if name and memo:
        attributes["name"] = name
    if currency != curdef:
        attributes["currency_source"] = "STMTTRN/CURRENCY"
    description = memo or name
    rows.append(
        {
            "id": None,
            "date": day,
            "amount_minor": minor,
            "currency": currency,
            "description": description,
            "counterparty": name,
            "reference": reference,
            "account": account_id,
            "attributes": json.dumps(attributes, ensure_ascii=False),
            "source_file": source,
            "source_line": line,
            "_fitid": fitid,
            "_key": [account_id, day.isoformat(), str(minor), currency, name, memo],  # type: ignore[union-attr]
        }
    )


def _assign_ids(rows: list[dict], notes: list[str]) -> None:
    """``ACCTID/FITID``; fingerprints where FITID is empty; repeated FITIDs are noted."""
    lines: dict[tuple[str, str], list[int]] = {}
    occurrences: dict[str, int] = {}
    for row in rows:
        fitid = row.pop("_fitid")
        key = row.pop("_key")
        if fitid:
            row["id"] = f"{row['account']}/{fitid}" if row["account"] else fitid
            lines.setdefault((row["account"], fitid), []).append(row["source_line"])
            continue
        row["id"] = next_fingerprint(key, occurrences)
    for (account, fitid), at in lines.items():
        if len(at) > 1:
            notes.append(
                f"FITID {fitid} of account {account} appears {len(at)} times (lines "
                f"{', '.join(map(str, at))}); all are kept with the same id and the loader reports "
                "the repeats as duplicates"
            )
