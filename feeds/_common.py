"""Feeds stage: small helpers every format reader shares (private to :mod:`feeds`).

Each helper keeps the exact wording and behaviour the readers had when each carried its own
copy, so that a file gives the same rows, rejects, ids and messages whichever reader meets it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from models.errors import FeedFormatError
from models.ids import short_id
from models.money import format_minor_expr
from models.schema import BALANCE_SCHEMA, BANK_SCHEMA, REJECTS_SCHEMA, FeedResult

__all__ = [
    "DATE_COLUMNS",
    "FINGERPRINT_SEPARATOR",
    "LAST_DATE",
    "FIRST_DATE",
    "MAX_MINOR",
    "MAX_RAW",
    "SNIFF_BYTES",
    "as_schema",
    "bank_result",
    "clip_raw",
    "date_range_reason",
    "decode_unicode",
    "fingerprint",
    "fingerprint_of_key",
    "minor_out_of_range",
    "next_fingerprint",
    "raw_text_expr",
    "read_file",
    "reject_out_of_range_dates",
    "reject_row",
    "sniff_sample",
]

#: joins the parts of a fingerprint key (ASCII unit separator: cannot be confused with text)
FINGERPRINT_SEPARATOR = "\x1f"

#: the largest magnitude of minor units a reader accepts (keeps every amount well inside Int64)
MAX_MINOR = 10**18

#: the first and last dates a line may carry. Statements, invoices and payouts of a business
#: fall well inside; a date outside is a typo or a placeholder ("9999-12-31" for "open",
#: "0000-01-01" for "unknown") and its row is rejected with a reason rather than matched
#: (the engine's date arithmetic and Python's ``datetime`` could not hold it either)
FIRST_DATE = dt.date(1900, 1, 1)
LAST_DATE = dt.date(2199, 12, 31)

#: per side, the date columns of a canonical row that must lie within FIRST_DATE..LAST_DATE
DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "bank": ("date",),
    "ledger": ("date", "due_date"),
    "processor": ("created", "available_on"),
}

#: how many characters of a line's source text a reject keeps
MAX_RAW = 4000

#: how many bytes of a file's start the content sniffers look at
SNIFF_BYTES = 64 * 1024

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"


def read_file(source: str, what: str, *, limit: int | None = None) -> bytes:
    """The bytes of the file at ``source``, or a :class:`FeedFormatError` saying what to do.

    Parameters
    ----------
    source
        The path as the caller gave it (used in the error message).
    what
        What the path should name, for the directory message ("a CSV file", "one file").
    limit
        Read at most this many bytes from the start (None: the whole file).

    Returns
    -------
    bytes
        The file's content (its first ``limit`` bytes when ``limit`` is given).

    Raises
    ------
    FeedFormatError
        The file does not exist, is a directory, or cannot be read (the OS reason is named).

    Examples
    --------
    >>> read_file("no/such/file.csv", "a CSV file")  # doctest: +SKIP
    Traceback (most recent call last):
    models.errors.FeedFormatError: no/such/file.csv: file not found; check the path and the working directory
    """
    path = Path(source)
    if not path.exists():
        raise FeedFormatError(source, "file not found; check the path and the working directory")
    if path.is_dir():
        raise FeedFormatError(source, f"is a directory, not a file; give the path of {what}")
    try:
        if limit is None:
            return path.read_bytes()
        with path.open("rb") as handle:
            return handle.read(limit)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise FeedFormatError(
            source, f"cannot be read ({reason}); check that the file exists and is readable"
        ) from None


def sniff_sample(head: bytes) -> bytes | None:
    """The first :data:`SNIFF_BYTES` of ``head`` for a content sniffer, UTF-16 recoded as UTF-8.

    Parameters
    ----------
    head
        The first bytes of a file (anything bytes-like).

    Returns
    -------
    bytes or None
        The sample (a file starting with a UTF-16 byte-order mark is decoded, undecodable
        bytes dropped, and encoded as UTF-8 so that ASCII patterns match); None when ``head``
        is not bytes-like.

    Examples
    --------
    >>> sniff_sample("<OFX>".encode("utf-16"))
    b'<OFX>'
    >>> sniff_sample(None) is None
    True
    """
    try:
        sample = bytes(head[:SNIFF_BYTES])
    except (TypeError, ValueError):
        return None
    if sample.startswith(_UTF16_BOMS):
        sample = sample.decode("utf-16", errors="ignore").encode("utf-8")
    return sample


def decode_unicode(
    source: str,
    data: bytes,
    encoding: str | None,
    *,
    example: str,
    reexport: str,
    advice: str = "",
) -> tuple[str | None, str, bytes]:
    """Decode ``data`` as the encoding asked for, else as UTF-16 (with a BOM) or UTF-8.

    Parameters
    ----------
    source
        The file, for error messages.
    data
        The file's bytes.
    encoding
        The encoding the user named (None: find it out).
    example
        A codec name suggested when ``encoding`` is unknown ("cp1252").
    reexport
        What to re-export when a UTF-16 byte-order mark is followed by invalid UTF-16
        ("re-export it").
    advice
        Added to the message when the bytes are not valid in the named ``encoding``.

    Returns
    -------
    (text, encoding used, data)
        ``text`` is None when no encoding was named and the file is neither UTF-16 with a BOM
        nor UTF-8: the caller then guesses a legacy code page from ``data`` (returned without
        any UTF-8 byte-order mark).

    Raises
    ------
    FeedFormatError
        ``encoding`` is not a known codec, or the bytes are not valid in it; or a UTF-16
        byte-order mark starts bytes that are not UTF-16.

    Examples
    --------
    >>> decode_unicode("a.ofx", b"\\xef\\xbb\\xbfCaf\\xc3\\xa9", None, example="cp1252", reexport="re-export it")
    ('Café', 'utf-8', b'Caf\\xc3\\xa9')
    """
    if encoding:
        try:
            return data.decode(encoding), encoding, data
        except LookupError:
            raise FeedFormatError(
                source, f"unknown encoding {encoding!r}; give a Python codec name such as {example}"
            ) from None
        except UnicodeDecodeError as error:
            line = data.count(b"\n", 0, error.start) + 1
            raise FeedFormatError(
                source,
                f"cannot be decoded as {encoding} (byte 0x{data[error.start]:02x} at line {line}){advice}",
                line=line,
            ) from None
    if data.startswith(_UTF8_BOM):
        data = data[3:]
    elif data.startswith(_UTF16_BOMS):
        try:
            return data.decode("utf-16"), "utf-16", data
        except UnicodeDecodeError:
            raise FeedFormatError(
                source, f"starts with a UTF-16 byte-order mark but is not valid UTF-16; {reexport}"
            ) from None
    try:
        return data.decode("utf-8"), "utf-8", data
    except UnicodeDecodeError:
        return None, "", data


# --------------------------------------------------------------------------------------------
# Rejects and amounts
# --------------------------------------------------------------------------------------------


def reject_row(source: str, line: int, column: str, reason: str | None, raw: str) -> dict:
    """One reject, as a dict with the columns of :data:`models.schema.REJECTS_SCHEMA`.

    Parameters
    ----------
    source
        The file (``source_file``).
    line
        The 1-based physical line where the bad record starts.
    column
        The field or element at fault ('' when the whole record is).
    reason
        What is wrong, in words a user can act on.
    raw
        The record's text as in the file.

    Returns
    -------
    dict
        ``{"source_file", "line", "column", "reason", "raw"}``.

    Examples
    --------
    >>> reject_row("a.sta", 5, "amount", "amount 1,2,3 is not a number", ":61:...")["line"]
    5
    """
    return {"source_file": source, "line": line, "column": column, "reason": reason, "raw": raw}


def clip_raw(text: str) -> str:
    """``text`` cut to :data:`MAX_RAW` characters, with " ..." where it was cut.

    Parameters
    ----------
    text
        A record's source text (an XML element, an OFX transaction, ...).

    Returns
    -------
    str
        ``text`` itself when short enough, else its first ``MAX_RAW`` characters + " ...".

    Examples
    --------
    >>> clip_raw("<Ntry/>")
    '<Ntry/>'
    >>> len(clip_raw("x" * 5000)) == MAX_RAW + 4
    True
    """
    return text if len(text) <= MAX_RAW else text[:MAX_RAW] + " ..."


def minor_out_of_range(minor: int, text: str, label: str = "amount") -> str:
    """Why ``minor`` cannot be stored ('' when it fits), for a reject reason or a note.

    Parameters
    ----------
    minor
        The amount in minor units, already converted exactly.
    text
        The amount as written in the file, quoted in the reason.
    label
        The amount's name in the reason ("amount", "TRNAMT", ...).

    Returns
    -------
    str
        ``"{label} {text} is too large"`` when ``abs(minor) >= MAX_MINOR``, else ``""``.

    Examples
    --------
    >>> minor_out_of_range(12345, "123.45")
    ''
    >>> minor_out_of_range(10**20, "1e18", "TRNAMT")
    'TRNAMT 1e18 is too large'
    """
    return f"{label} {text} is too large" if abs(minor) >= MAX_MINOR else ""


# --------------------------------------------------------------------------------------------
# Fingerprint ids of lines without an id of their own
# --------------------------------------------------------------------------------------------


def fingerprint_of_key(key: str) -> str:
    """``"fp-"`` + the first 16 hex digits of the SHA-1 of ``key``'s UTF-8 bytes.

    Parameters
    ----------
    key
        The joined key (parts separated by :data:`FINGERPRINT_SEPARATOR`).

    Returns
    -------
    str
        The id, e.g. ``"fp-3f2a..."`` (19 characters).

    Examples
    --------
    >>> fingerprint_of_key("a")
    'fp-86f7e437faa5a7fc'
    """
    return short_id("fp-", key)


def fingerprint(parts: Sequence[str]) -> str:
    """The fingerprint id of ``parts`` joined with :data:`FINGERPRINT_SEPARATOR`.

    Parameters
    ----------
    parts
        The texts that identify a line (account, date, amount, currency, texts, ...).

    Returns
    -------
    str
        ``fingerprint_of_key(FINGERPRINT_SEPARATOR.join(parts))``.

    Examples
    --------
    >>> fingerprint(["a"]) == fingerprint_of_key("a")
    True
    """
    return fingerprint_of_key(FINGERPRINT_SEPARATOR.join(parts))


def next_fingerprint(parts: Sequence[str], occurrences: dict[str, int]) -> str:
    """The fingerprint id of ``parts`` plus how often the same parts came before in the file.

    Two identical lines in one file thus get two ids, while the same file read again (or an
    overlapping file) gives the same ids again.

    Parameters
    ----------
    parts
        The texts that identify a line.
    occurrences
        Per joined key, how many lines of this file already had it; updated in place (one
        dict per file).

    Returns
    -------
    str
        ``fingerprint([*parts, str(occurrence)])``, occurrence counting from 0.

    Examples
    --------
    >>> seen: dict[str, int] = {}
    >>> first, second = next_fingerprint(["a"], seen), next_fingerprint(["a"], seen)
    >>> first == fingerprint(["a", "0"]) and second == fingerprint(["a", "1"])
    True
    """
    base = FINGERPRINT_SEPARATOR.join(parts)
    occurrence = occurrences.get(base, 0)
    occurrences[base] = occurrence + 1
    return fingerprint([*parts, str(occurrence)])


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


def as_schema(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """``frame`` reduced to exactly ``schema``'s columns, in order, cast to its dtypes.

    Re-exported as :func:`feeds.canonical_csv.as_schema`.

    Parameters
    ----------
    frame
        A frame holding at least the columns of ``schema`` (others are dropped).
    schema
        Column name -> dtype, in the wanted order (e.g. ``BANK_SCHEMA``).

    Returns
    -------
    pl.DataFrame
        ``frame.select(pl.col(name).cast(dtype) for each column of schema)``.

    Examples
    --------
    >>> as_schema(pl.DataFrame({"b": ["x"], "a": [1]}), {"a": pl.Int64}).columns
    ['a']
    """
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


def bank_result(
    format: str,
    rows: list[dict],
    rejects: list[dict],
    balances: list[dict],
    accounts: list[str],
    notes: list[str],
) -> FeedResult:
    """The :class:`FeedResult` of a bank statement read row by row (OFX, MT940, camt).

    Parameters
    ----------
    format
        The reader's ``FORMAT``.
    rows
        One dict per line with (at least) the columns of ``BANK_SCHEMA``; other keys are
        left out of the frame.
    rejects
        Dicts made by :func:`reject_row`.
    balances
        Dicts with the columns of ``BALANCE_SCHEMA``.
    accounts
        The statement accounts, in file order.
    notes
        What the user should know about the file.

    Returns
    -------
    FeedResult
        ``side="bank"``, frames in their schemas, ``rows_read = len(rows) + len(rejects)``.
    """
    frame = pl.DataFrame([{k: r[k] for k in BANK_SCHEMA} for r in rows], schema=BANK_SCHEMA)
    return FeedResult(
        format=format,
        side="bank",
        frame=frame,
        rejects=pl.DataFrame(rejects, schema=REJECTS_SCHEMA),
        balances=pl.DataFrame(balances, schema=BALANCE_SCHEMA),
        accounts=accounts,
        rows_read=len(rows) + len(rejects),
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Dates outside the range recon accepts
# --------------------------------------------------------------------------------------------


def date_range_reason(label: str, text: str) -> str:
    """The reject reason for a date outside :data:`FIRST_DATE`..:data:`LAST_DATE`.

    Parameters
    ----------
    label
        The date's name in the file or the canonical table ("date", "DTPOSTED", ...).
    text
        The date as written (or as ISO text).

    Returns
    -------
    str
        One sentence naming the date, the range and what to do.

    Examples
    --------
    >>> date_range_reason("date", "9999-12-31")
    "date '9999-12-31' is outside the dates recon accepts (1900-01-01 to 2199-12-31); correct it in the source"
    """
    return (
        f"{label} '{text}' is outside the dates recon accepts "
        f"({FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()}); correct it in the source"
    )


def _in_range(column: str) -> pl.Expr:
    """True where ``column`` is null or within the accepted range (Date arithmetic in Polars:
    no Python ``date`` is made, so year 0 and year 9999 compare as any other)."""
    value = pl.col(column)
    return value.is_null() | value.is_between(pl.lit(FIRST_DATE), pl.lit(LAST_DATE))


def _iso(column: str) -> pl.Expr:
    """``column`` as YYYY-MM-DD text, computed by Polars (Python's ``date`` has no year 0)."""
    value = pl.col(column)
    return pl.format(
        "{}-{}-{}",
        value.dt.year().cast(pl.Utf8).str.zfill(4),
        value.dt.month().cast(pl.Utf8).str.zfill(2),
        value.dt.day().cast(pl.Utf8).str.zfill(2),
    )


def _money_text(amount: str) -> pl.Expr:
    """An amount column as decimal text in the row's currency (the minor units when the
    currency is not a known ISO 4217 code), for the raw text of a reject."""
    return pl.coalesce(
        format_minor_expr(pl.col(amount), pl.col("currency")), pl.col(amount).cast(pl.Utf8)
    )


_RAW_COLUMNS: dict[str, tuple[str, ...]] = {
    "bank": ("id", "date", "amount_minor", "currency", "description", "counterparty", "reference", "account"),
    "ledger": ("id", "date", "amount_minor", "currency", "description", "counterparty", "reference",
               "account", "type", "due_date"),
    "processor": ("processor", "payout_id", "line_id", "category", "currency", "gross_minor", "fee_minor",
                  "net_minor", "available_on", "created", "description"),
}


def raw_text_expr(side: str, schema: Mapping[str, pl.DataType]) -> pl.Expr:
    """A canonical row rendered as comma-joined text, for the ``raw`` of a reject made after
    the reader (the source's own text is no longer at hand): its id, dates, amounts as decimal
    text in its currency, and texts.

    Parameters
    ----------
    side
        "bank", "ledger" or "processor".
    schema
        The frame's schema (columns it lacks are left out).

    Returns
    -------
    pl.Expr
        A Utf8 expression, e.g. ``B3,9999-12-31,120.00,HKD,FPS CR CUSTOMER 20,,,``.
    """
    parts = []
    for name in _RAW_COLUMNS[side]:
        if name not in schema:
            continue
        if name.endswith("_minor"):
            parts.append(_money_text(name))
        elif schema[name] == pl.Date:
            parts.append(_iso(name))
        else:
            parts.append(pl.col(name).cast(pl.Utf8))
    return pl.concat_str([part.fill_null("") for part in parts], separator=",")


def reject_out_of_range_dates(result: FeedResult) -> FeedResult:
    """``result`` with every row dated outside :data:`FIRST_DATE`..:data:`LAST_DATE` moved
    from the frame to the rejects, and balances dated outside it dropped with a note.

    Every reader's result passes through here (:func:`feeds.registry.read_any`), so the rule
    holds whatever the format; readers that can name the raw text of the row (the canonical
    CSV) reject such dates themselves first.

    Parameters
    ----------
    result
        One reader's result.

    Returns
    -------
    FeedResult
        The same result when every date is in range; else a copy whose ``rejects`` gain one
        row per line (the first bad date column named, the reason from
        :func:`date_range_reason`, ``raw`` = the line's canonical fields comma-joined) and
        whose ``rows_read`` is unchanged.
    """
    columns = [c for c in DATE_COLUMNS.get(result.side, ()) if c in result.frame.columns]
    frame, notes = result.frame, list(result.notes)
    rejects = result.rejects
    if columns and frame.height:
        ok = pl.all_horizontal([_in_range(c) for c in columns])
        bad = frame.filter(~ok)
        if bad.height:
            bad_column = pl.coalesce([pl.when(~_in_range(c)).then(pl.lit(c)) for c in columns])
            bad_text = pl.coalesce([pl.when(~_in_range(c)).then(_iso(c)) for c in columns])
            new = bad.select(
                source_file=pl.col("source_file"),
                line=pl.col("source_line"),
                column=bad_column,
                reason=pl.format(date_range_reason("{}", "{}"), bad_column, bad_text),
                raw=raw_text_expr(result.side, bad.schema),
            )
            rejects = pl.concat([as_schema(rejects, REJECTS_SCHEMA), as_schema(new, REJECTS_SCHEMA)])
            rejects = rejects.sort("line", nulls_last=True, maintain_order=True)
            frame = frame.filter(ok)
    balances = result.balances
    if balances.height and "date" in balances.columns:
        in_range = balances.select(_in_range("date")).to_series()
        if not in_range.all():
            for row in balances.filter(~in_range).select("type", "account", text=_iso("date")).iter_rows(named=True):
                account = f" of {row['account']}" if row["account"] else ""
                notes.append(f"the {row['type']} balance{account} {date_range_reason('dated', row['text'])}; "
                             "it is not used")
            balances = balances.filter(in_range)
    if frame is result.frame and balances is result.balances:
        return result
    return FeedResult(
        format=result.format,
        side=result.side,
        frame=frame,
        rejects=rejects,
        balances=balances,
        accounts=result.accounts,
        rows_read=result.rows_read,
        notes=notes,
    )
