"""Feeds stage: bank and wallet CSV exports read through declared profiles.

A bank's CSV layout is data, not code: a :class:`BankCsvProfile` (a small TOML file, validated
by pydantic with every problem reported at once) says which encoding, delimiter, preamble and
footer the export has, which header names hold the date (and its formats), the amount (one
signed column, a debit/credit pair, or an unsigned amount with a direction column such as
``收/支``), the currency (fixed or a column), the id, the texts and the balances. Built-in
profiles live in ``feeds/profiles/*.toml``; a user's own profile is a ``.toml`` path given as
``--format my_bank.toml`` (or placed in a directory listed in ``RECON_PROFILE_PATH``, which
makes it take part in format detection). :func:`draft_profile` sniffs an unknown CSV and
writes a profile for the user to check and save.

Parsing uses the standard library's :mod:`csv` (Excel-like, lenient about a quote inside an
unquoted value and about blanks after a closing quote, both common in bank exports) fed line
by line, so every record keeps its first physical line number and raw text; a quote that is
never closed rejects only the line that opened it. Everything after the split runs as polars
expressions: amounts are cleaned of currency symbols, thousands separators and stray blanks,
a decimal comma becomes a point, and the text is converted exactly to integer minor units by
:func:`models.money.parse_amount_expr` (never through a float). Text columns keep their
characters exactly (surrounding padding blanks and TABs removed); the columns the canonical
frame has no place for go, as written, into ``attributes``.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from os import PathLike
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from feeds._common import reject_row
from feeds.canonical_csv import as_schema, reject_frame, with_fingerprints
from models.errors import FeedFormatError, ReconError
from models.money import CURRENCY_EXPONENTS, parse_amount_expr
from models.schema import BALANCE_SCHEMA, BANK_SCHEMA, REJECTS_SCHEMA, FeedResult, empty_frame

__all__ = [
    "FORMAT",
    "SIDES",
    "BankCsvProfile",
    "ProfileError",
    "builtin_profile_names",
    "draft_profile",
    "identify",
    "load_profile",
    "match_profile",
    "read",
    "sniff_encoding",
]

FORMAT = "bank_csv"
SIDES: tuple[str, ...] = ("bank",)

PROFILE_DIR = Path(__file__).parent / "profiles"
_NULL = pl.lit(None, dtype=pl.Utf8)
_TIME_DIRECTIVES = re.compile(r"%[HIMSpfzZ]")
_ENCODING_ALIASES = {"gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030"}
_MAX_HEADER_SEARCH = 300  # lines searched for the header


class ProfileError(ReconError):
    """A bank CSV profile is invalid; ``problems`` lists every problem, not just the first."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        super().__init__(
            f"{source}: invalid bank CSV profile ({len(self.problems)} problem(s)): "
            + "; ".join(self.problems)
        )


# --------------------------------------------------------------------------------------------
# The profile
# --------------------------------------------------------------------------------------------


class DirectionRule(BaseModel):
    """Rows whose ``column`` matches ``pattern`` (regex search) move money this way."""

    model_config = ConfigDict(extra="forbid")
    column: str
    pattern: str
    direction: Literal["in", "out"]


class SkipRule(BaseModel):
    """Rows whose ``column`` matches ``pattern`` are not transactions; reported as skipped."""

    model_config = ConfigDict(extra="forbid")
    column: str
    pattern: str
    reason: str


class BankCsvProfile(BaseModel):
    """How to read one bank's CSV export. All header names match case-insensitively, with
    surrounding blanks ignored.

    Examples
    --------
    A profile file (TOML)::

        name = "hsbc_hk_savings"
        title = "HSBC Hong Kong savings account export"
        identify_header = ["Date", "Description", "Billing amount", "Billing currency", "Balance"]
        date = "Date"
        date_formats = ["%d/%m/%Y"]
        amount = "Billing amount"
        currency_column = "Billing currency"
        description = ["Description"]
        balance = "Balance"
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    title: str = ""
    # the file
    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str = '"'
    skip_lines: int = 0
    header_pattern: str | None = None
    footer_pattern: str | None = None
    ignore_rows: list[str] = []
    trailing_delimiter: bool = True
    # recognising the file
    identify_header: list[str]
    identify_exact: bool = False
    # columns
    date: str
    date_formats: list[str] = ["%Y-%m-%d"]
    amount: str | None = None
    debit: str | None = None
    credit: str | None = None
    direction: str | None = None
    direction_values: dict[str, Literal["in", "out", "neutral", "skip"]] = {}
    direction_rules: list[DirectionRule] = []
    sign: Literal["as_written", "inverted"] = "as_written"
    currency: str | None = None
    currency_column: str | None = None
    currency_values: dict[str, str] = {}
    currency_symbols: list[str] = ["US$", "HK$", "NT$", "C$", "A$", "$", "€", "£", "¥", "￥", "₩", "₹"]
    thousands: list[str] = [","]
    decimal: Literal[".", ","] = "."
    empty_values: list[str] = ["-", "--", "—", "/"]
    id: str | None = None
    description: list[str] = []
    counterparty: list[str] = []
    reference: list[str] = []
    account: str | None = None
    account_columns: list[str] = []
    balance: str | None = None
    opening_balance: str | None = None
    opening_date: str | None = None
    closing_balance: str | None = None
    closing_date: str | None = None
    skip_rules: list[SkipRule] = []

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r} (e.g. utf-8, gb18030, big5, cp1252, iso-8859-1)"
            ) from None
        return value

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if len(value) != 1 or value in "\r\n":
            raise ValueError(f"must be one character other than a line break, not {value!r}")
        return value

    @field_validator("header_pattern", "footer_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value)
        return value

    @field_validator("ignore_rows")
    @classmethod
    def _regexes(cls, values: list[str]) -> list[str]:
        for value in values:
            _compile(value)
        return values

    @field_validator("date_formats")
    @classmethod
    def _formats(cls, values: list[str]) -> list[str]:
        if not values:
            raise ValueError("give at least one date format, e.g. '%Y-%m-%d'")
        for value in values:
            if "%" not in value:
                raise ValueError(f"date format {value!r} has no % directive (e.g. '%d/%m/%Y')")
        return values

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in CURRENCY_EXPONENTS:
            raise ValueError(f"{value!r} is not an ISO 4217 code (e.g. HKD, USD, CNY)")
        return value.upper() if value else value

    @field_validator("currency_values")
    @classmethod
    def _currency_values(cls, values: dict[str, str]) -> dict[str, str]:
        bad = [v for v in values.values() if v.upper() not in CURRENCY_EXPONENTS]
        if bad:
            raise ValueError(f"not ISO 4217 codes: {', '.join(map(repr, bad))}")
        return {k: v.upper() for k, v in values.items()}

    def semantic_problems(self) -> list[str]:
        """Problems between fields (pydantic checks each field alone)."""
        problems: list[str] = []
        modes = [self.amount is not None, self.debit is not None or self.credit is not None]
        if sum(modes) != 1:
            problems.append(
                "give either 'amount' (one signed or directed column) or 'debit' and 'credit' "
                "(separate money-out / money-in columns), not both or neither"
            )
        if (self.debit is None) != (self.credit is None):
            problems.append("'debit' and 'credit' go together: name both columns")
        if self.direction is not None and self.amount is None:
            problems.append("'direction' needs 'amount' (the unsigned amount it gives a sign to)")
        if (self.direction_values or self.direction_rules) and self.direction is None:
            if not self.direction_rules:
                problems.append("'direction_values' needs 'direction' (the column holding them)")
        if (self.currency is None) == (self.currency_column is None):
            problems.append(
                "give either 'currency' (an ISO code for the whole file) or 'currency_column'"
            )
        if self.account is not None and self.account_columns:
            problems.append("give 'account' (fixed) or 'account_columns', not both")
        for rule in self.direction_rules:
            try:
                _compile(rule.pattern)
            except ValueError as error:
                problems.append(f"direction_rules: {error}")
        for rule in self.skip_rules:
            try:
                _compile(rule.pattern)
            except ValueError as error:
                problems.append(f"skip_rules: {error}")
        if not self.identify_header:
            problems.append("'identify_header' needs at least one header name")
        return problems

    def referenced_columns(self) -> list[str]:
        """Every header name the profile reads."""
        names = [self.date, self.amount, self.debit, self.credit, self.direction, self.id]
        names += [self.currency_column, self.balance, self.opening_balance, self.opening_date]
        names += [self.closing_balance, self.closing_date]
        names += self.description + self.counterparty + self.reference + self.account_columns
        names += [rule.column for rule in self.direction_rules]
        names += [rule.column for rule in self.skip_rules]
        return list(dict.fromkeys(n for n in names if n is not None))


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(f"bad regular expression {pattern!r}: {error}") from None


def _key(name: str) -> str:
    return name.strip().strip("\ufeff").strip().lower()


def profile_from_dict(data: dict, source: str) -> BankCsvProfile:
    """Validate ``data`` as a profile, reporting every problem at once.

    Raises
    ------
    ProfileError
        With one entry per problem ("date_formats: ...", "amount/debit: ...").
    """
    try:
        profile = BankCsvProfile.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"]) or "(profile)"
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        raise ProfileError(source, problems) from None
    problems = profile.semantic_problems()
    if problems:
        raise ProfileError(source, problems)
    return profile


def load_profile(source: str | PathLike[str]) -> BankCsvProfile:
    """A profile by built-in name or ``.toml`` path.

    Raises
    ------
    ProfileError
        The file is not valid TOML or not a valid profile (every problem listed).
    FeedFormatError
        No such built-in profile or file.
    """
    text_source = str(source)
    path = Path(text_source)
    if not text_source.lower().endswith(".toml"):
        path = PROFILE_DIR / f"{text_source}.toml"
        if not path.is_file():
            names = ", ".join(builtin_profile_names())
            raise FeedFormatError(
                "(--format)",
                f"no bank CSV profile called {text_source!r}; built-in profiles: {names}; or "
                "give the path of a .toml profile (draft one with `recon profile FILE`)",
            )
    return _load_profile_file(str(path))


@cache
def _load_profile_file(path: str) -> BankCsvProfile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise FeedFormatError(path, f"profile cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ProfileError(path, ["the profile file is not UTF-8 text"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(path, [f"not valid TOML: {error}"]) from None
    return profile_from_dict(data, path)


def builtin_profile_names() -> list[str]:
    """Names of the profiles shipped in ``feeds/profiles``."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def _all_profiles() -> list[BankCsvProfile]:
    """Built-in profiles, then those in ``RECON_PROFILE_PATH`` directories (os.pathsep list)."""
    paths = sorted(PROFILE_DIR.glob("*.toml"))
    for directory in filter(None, os.environ.get("RECON_PROFILE_PATH", "").split(os.pathsep)):
        paths += sorted(Path(directory).glob("*.toml"))
    return [_load_profile_file(str(p)) for p in paths]


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def _decode(data: bytes, encoding: str) -> str:
    encoding = _ENCODING_ALIASES.get(encoding.lower(), encoding)
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig"):
        encoding = "utf-8-sig"
    return data.decode(encoding)


def _header_matches(profile: BankCsvProfile, line: str) -> bool:
    cells = [_key(c) for c in _split_line(line, profile.delimiter, profile.quote)]
    wanted = {_key(n) for n in profile.identify_header}
    if profile.identify_exact:
        return {c for c in cells if c} == wanted
    return wanted <= set(cells)


def _split_line(line: str, delimiter: str, quote: str) -> list[str]:
    try:
        return next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter, quotechar=quote), [])
    except csv.Error:
        return line.split(delimiter)


def match_profile(head: bytes) -> BankCsvProfile | None:
    """The first profile (built-in, then user) whose header signature ``head`` carries."""
    for profile in _all_profiles():
        try:
            text = _decode(head, profile.encoding)
        except UnicodeDecodeError as error:
            if error.start < len(head) - 4:  # not just a character cut at the end of the head
                continue
            text = _decode(head[: error.start], profile.encoding)
        for line in _lines(text)[:_MAX_HEADER_SEARCH]:
            if _header_matches(profile, line):
                return profile
    return None


def identify(head: bytes, path: str = "") -> bool:
    """Whether a built-in (or ``RECON_PROFILE_PATH``) profile recognises the file's header."""
    return match_profile(head) is not None


# --------------------------------------------------------------------------------------------
# Reading: bytes -> lines -> records with line numbers
# --------------------------------------------------------------------------------------------

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$")


def _lines(text: str) -> list[str]:
    """Physical lines, each with its own line ending (only CR, LF and CRLF break lines)."""
    return _LINE.findall(text)


def _ends_inside_quotes(text: str, delimiter: str, quote: str) -> bool:
    """Whether ``text`` ends inside a quoted value, by the rules of the csv module."""
    inside = False
    at_start = True
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if inside:
            if ch == quote:
                if i + 1 < n and text[i + 1] == quote:
                    i += 2
                    continue
                inside = False
            i += 1
            continue
        if ch == quote and at_start:
            inside = True
            at_start = False
        elif ch == delimiter or ch in "\r\n":
            at_start = True
        else:
            at_start = False
        i += 1
    return inside


@dataclass
class _Record:
    line: int
    raw: str
    fields: list[str] | None  # None: structurally broken (reason says why)
    reason: str | None = None


def _records(lines: list[str], first_line: int, delimiter: str, quote: str) -> Iterator[_Record]:
    """CSV records of ``lines`` (physical line ``first_line`` onwards) with line numbers."""
    start = 0
    while start < len(lines):
        position = [start]

        def feed(position=position):
            while position[0] < len(lines):
                position[0] += 1
                yield lines[position[0] - 1]

        reader = csv.reader(feed(), delimiter=delimiter, quotechar=quote, strict=False)
        restart = None
        while True:
            begin = position[0]
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                raw = lines[begin].rstrip("\r\n")
                yield _Record(first_line + begin, raw, None, f"cannot be split into values ({error})")
                restart = begin + 1
                break
            end = position[0]
            raw = "".join(lines[begin:end])
            if end == len(lines) and end - begin > 1 and _ends_inside_quotes(raw, delimiter, quote):
                yield _Record(
                    first_line + begin,
                    lines[begin].rstrip("\r\n"),
                    None,
                    f"a quoted value opened on this line is never closed (missing '{quote}')",
                )
                restart = begin + 1
                break
            yield _Record(first_line + begin, raw.rstrip("\r\n").removesuffix("\r"), fields)
        if restart is None:
            return
        start = restart


@dataclass
class _Table:
    header: list[str]
    header_line: int
    rows: pl.DataFrame  # source_line, raw, c0..c{n-1}
    rejects: list[dict]
    ignored: int = 0
    notes: list[str] = field(default_factory=list)


def _fail(path: str, problem: str, line: int | None = None, raw: str | None = None):
    return FeedFormatError(path, problem, line=line, raw=raw)


def _read_text(path: str, profile: BankCsvProfile) -> str:
    file = Path(path)
    if not file.is_file():
        raise _fail(path, "is a directory, not a file" if file.is_dir() else "file not found; check the path")
    try:
        data = file.read_bytes()
    except OSError as error:
        raise _fail(path, f"cannot be read ({error.strerror or error})") from None
    if not data.strip():
        raise _fail(path, "is empty; check that the export finished")
    try:
        return _decode(data, profile.encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        guess = sniff_encoding(data)[0]
        raise _fail(
            path,
            f"is not {profile.encoding} (byte 0x{data[error.start]:02x} at byte offset "
            f"{error.start}); the profile '{profile.name}' expects {profile.encoding}"
            + (f"; the file looks like {guess}" if guess and guess != profile.encoding else ""),
            line=line,
        ) from None


def _find_header(path: str, lines: list[str], profile: BankCsvProfile) -> int:
    if profile.header_pattern is not None:
        pattern = re.compile(profile.header_pattern)
        for index, line in enumerate(lines[:_MAX_HEADER_SEARCH]):
            if pattern.search(line.lstrip("\ufeff")):
                return index
        raise _fail(
            path,
            f"no line matches the header pattern {profile.header_pattern!r} of profile "
            f"'{profile.name}' in the first {_MAX_HEADER_SEARCH} lines; is this the right bank?",
        )
    index = profile.skip_lines
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index >= len(lines):
        raise _fail(path, f"has no header line after the {profile.skip_lines} preamble line(s)")
    return index


def _unique_names(header: list[str]) -> list[str]:
    """Header names with surrounding blanks removed; a repeated name gets ' #2', ' #3'."""
    seen: Counter[str] = Counter()
    names = []
    for index, name in enumerate(header):
        clean = name.strip().strip("\ufeff").strip() or f"(column {index + 1})"
        seen[clean.lower()] += 1
        names.append(clean if seen[clean.lower()] == 1 else f"{clean} #{seen[clean.lower()]}")
    return names


def _read_table(path: str, text: str, profile: BankCsvProfile) -> _Table:
    lines = _lines(text)
    header_index = _find_header(path, lines, profile)
    end = len(lines)
    if profile.footer_pattern is not None:
        footer = re.compile(profile.footer_pattern)
        for index in range(header_index + 1, len(lines)):
            if footer.search(lines[index]):
                end = index
                break
    header = _split_line(lines[header_index], profile.delimiter, profile.quote)
    width = len(header)
    if profile.trailing_delimiter:
        while width > 1 and not header[width - 1].strip():
            width -= 1
        header = header[:width]
    ignore = [re.compile(p) for p in profile.ignore_rows]
    rows: list[list] = []
    rejects: list[dict] = []
    ignored = 0
    for record in _records(lines[header_index + 1 : end], header_index + 2, profile.delimiter, profile.quote):
        if record.fields is None:
            rejects.append(reject_row(path, record.line, "", record.reason, record.raw))
            continue
        fields = record.fields
        if not any(f.strip() for f in fields):
            continue  # a blank line or a row of empty cells is not a record
        if any(p.search(record.raw) for p in ignore):
            ignored += 1
            continue
        if len(fields) > width and profile.trailing_delimiter and not any(
            f.strip() for f in fields[width:]
        ):
            fields = fields[:width]
        if len(fields) != width:
            more = " (a value containing the delimiter must be quoted)" if len(fields) > width else ""
            rejects.append(
                reject_row(path, record.line, "", f"row has {len(fields)} fields; the header has {width}{more}", record.raw)
            )
            continue
        rows.append([record.line, record.raw, *fields])
    schema = {"source_line": pl.Int64, "raw": pl.Utf8, **{f"c{i}": pl.Utf8 for i in range(width)}}
    frame = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    table = _Table(header=header, header_line=header_index + 1, rows=frame, rejects=rejects, ignored=ignored)
    if ignored:
        table.notes.append(f"{ignored} row(s) matched ignore_rows of profile '{profile.name}' (marker rows, not transactions)")
    if end < len(lines):
        table.notes.append(f"footer from line {end + 1} on not read (footer_pattern)")
    return table


# --------------------------------------------------------------------------------------------
# Reading: text fields -> canonical values
# --------------------------------------------------------------------------------------------


def _clean_amount(text: pl.Expr, profile: BankCsvProfile) -> tuple[pl.Expr, pl.Expr]:
    """(canonical decimal text or "" when empty, the original text stripped)."""
    s = text.str.strip_chars()
    empty = s.is_null() | (s == "") | s.is_in(profile.empty_values)
    negative = (
        s.str.starts_with("-")
        | s.str.starts_with("−")
        | s.str.ends_with("-")
        | (s.str.starts_with("(") & s.str.ends_with(")"))
    )
    body = s
    for symbol in sorted(profile.currency_symbols, key=len, reverse=True):
        body = body.str.replace_all(symbol, "", literal=True)
    body = body.str.replace_all(r"[\s+\-−()]", "")
    for separator in profile.thousands:
        if separator != profile.decimal:
            body = body.str.replace_all(separator, "", literal=True)
    if profile.decimal == ",":
        body = body.str.replace_all(",", ".", literal=True)
    canonical = pl.when(empty).then(pl.lit("")).when(negative).then(pl.lit("-") + body).otherwise(body)
    return canonical, s


def _with_clean_amounts(frame: pl.DataFrame, columns: list[str], profile: BankCsvProfile) -> pl.DataFrame:
    """Add ``_canon_cN`` (canonical decimal text) and ``_orig_cN`` for the amount columns ``cN``.

    Materialised once, so that the exact parser works on a plain column (a nested cleaning
    expression repeated inside it makes polars plan for a long time).
    """
    exprs = []
    for column in dict.fromkeys(columns):
        canonical, original = _clean_amount(pl.col(column), profile)
        exprs += [canonical.alias(f"_canon_{column}"), original.alias(f"_orig_{column}")]
    return frame.with_columns(exprs) if exprs else frame


def _amount(column: str, currency: pl.Expr, currency_ok: pl.Expr, label: str, profile: BankCsvProfile):
    """(minor units or null, reason or null, is_empty) for the amount column ``column`` (cN),
    whose cleaned text :func:`_with_clean_amounts` added."""
    canonical, original = pl.col(f"_canon_{column}"), pl.col(f"_orig_{column}")
    minor, reason = parse_amount_expr(canonical, currency)
    is_empty = canonical == ""
    reason = (
        pl.when(~currency_ok | is_empty)
        .then(_NULL)
        .when(reason.is_not_null() & reason.str.contains("decimals;"))
        .then(pl.lit(f"{label} '") + original + pl.lit("' ") + reason.str.replace(r"^amount '[^']*' ", ""))
        .when(reason.is_not_null())
        .then(pl.lit(f"{label} '") + original + pl.lit("' is not an amount"))
        .otherwise(_NULL)
    )
    return minor, reason, is_empty


def _dates(text: pl.Expr, formats: list[str], label: str) -> tuple[pl.Expr, pl.Expr]:
    s = text.str.strip_chars()
    parsed = []
    for fmt in formats:
        if _TIME_DIRECTIVES.search(fmt):
            parsed.append(s.str.to_datetime(fmt, strict=False).dt.date())
        else:
            parsed.append(s.str.to_date(fmt, strict=False))
    value = pl.coalesce(parsed)
    shown = " or ".join(formats)
    reason = (
        pl.when(s.is_null() | (s == ""))
        .then(pl.lit(f"{label} is empty"))
        .when(value.is_null())
        .then(pl.lit(f"{label} '") + s + pl.lit(f"' does not match the date format {shown}"))
        .otherwise(_NULL)
    )
    return value, reason


def _columns(path: str, table: _Table, profile: BankCsvProfile) -> dict[str, str]:
    by_key: dict[str, str] = {}
    for index, name in enumerate(table.header):
        by_key.setdefault(_key(name), f"c{index}")
    missing = [n for n in profile.referenced_columns() if _key(n) not in by_key]
    if missing:
        found = ", ".join(n.strip() for n in table.header)
        raise _fail(
            path,
            f"missing column(s) {', '.join(repr(m) for m in missing)} that profile "
            f"'{profile.name}' reads; columns found: {found}; the bank may have changed its "
            "export: draft a new profile with `recon profile FILE`",
            line=table.header_line,
        )
    return {n: by_key[_key(n)] for n in profile.referenced_columns()}


def _joined(columns: dict[str, str], names: list[str], empty_values: list[str]) -> pl.Expr:
    """Text of ``names`` joined by a space; padding blanks and placeholders ('/', '-') dropped."""
    if not names:
        return pl.lit("")
    parts = []
    for n in names:
        value = pl.col(columns[n]).str.strip_chars()
        parts.append(pl.when(value.is_in(empty_values)).then(pl.lit("")).otherwise(value))
    if len(parts) == 1:
        return parts[0]
    return pl.concat_str(parts, separator=" ", ignore_nulls=True).str.strip_chars(" ")


def _read_profile(path: str, profile: BankCsvProfile) -> FeedResult:
    text = _read_text(path, profile)
    table = _read_table(path, text, profile)
    columns = _columns(path, table, profile)
    frame = table.rows

    def col(name: str) -> pl.Expr:
        return pl.col(columns[name])

    # currency
    if profile.currency is not None:
        currency = pl.lit(profile.currency)
        currency_reason = _NULL
    else:
        raw_currency = col(profile.currency_column).str.strip_chars()
        mapping = {k.strip(): v for k, v in profile.currency_values.items()}
        mapped = raw_currency.replace(mapping) if mapping else raw_currency
        currency = mapped.str.to_uppercase()
        currency_reason = (
            pl.when(currency.is_null() | (currency == ""))
            .then(pl.lit(f"{profile.currency_column} (currency) is empty"))
            .when(~currency.is_in(list(CURRENCY_EXPONENTS)))
            .then(pl.lit(f"{profile.currency_column} '") + raw_currency + pl.lit("' is not an ISO 4217 currency code; map it with currency_values in the profile"))
            .otherwise(_NULL)
        )
    frame = frame.with_columns(_currency=currency, _r_currency=currency_reason)
    amount_names = [profile.amount, profile.debit, profile.credit, profile.balance,
                    profile.opening_balance, profile.closing_balance]
    frame = _with_clean_amounts(frame, [columns[n] for n in amount_names if n is not None], profile)
    currency_ok = pl.col("_r_currency").is_null()
    checks: list[tuple[str, str]] = []

    # amount
    if profile.amount is not None:
        minor, reason, empty = _amount(columns[profile.amount], pl.col("_currency"), currency_ok, profile.amount, profile)
        reason = pl.when(currency_ok & empty).then(pl.lit(f"{profile.amount} (amount) is empty")).otherwise(reason)
        frame = frame.with_columns(_minor=minor, _r_amount=reason)
        amount_label = profile.amount
        if profile.direction is not None or profile.direction_rules:
            frame = frame.with_columns(_minor=pl.col("_minor").abs(), **_direction_columns(columns, profile))
    else:
        debit, debit_reason, debit_empty = _amount(columns[profile.debit], pl.col("_currency"), currency_ok, profile.debit, profile)
        credit, credit_reason, credit_empty = _amount(columns[profile.credit], pl.col("_currency"), currency_ok, profile.credit, profile)
        frame = frame.with_columns(_debit=debit.abs(), _credit=credit.abs(), _debit_empty=debit_empty, _credit_empty=credit_empty,
                                   _r_debit=debit_reason, _r_credit=credit_reason)
        both = ~pl.col("_debit_empty") & ~pl.col("_credit_empty") & (pl.col("_debit") != 0) & (pl.col("_credit") != 0)
        neither = pl.col("_debit_empty") & pl.col("_credit_empty")
        frame = frame.with_columns(
            _minor=pl.col("_credit").fill_null(0) - pl.col("_debit").fill_null(0),
            _r_amount=pl.coalesce(
                pl.col("_r_debit"),
                pl.col("_r_credit"),
                pl.when(currency_ok & neither).then(pl.lit(f"neither {profile.debit} nor {profile.credit} has an amount")),
                pl.when(currency_ok & both).then(pl.lit(f"both {profile.debit} and {profile.credit} have an amount; a row moves money one way")),
            ),
        )
        amount_label = profile.debit
    if profile.sign == "inverted":
        frame = frame.with_columns(_minor=-pl.col("_minor"))
    checks.append((amount_label, "_r_amount"))
    if profile.currency_column is not None:
        checks.append((profile.currency_column, "_r_currency"))

    # date
    date, date_reason = _dates(col(profile.date), profile.date_formats, profile.date)
    frame = frame.with_columns(_date=date, _r_date=date_reason)
    checks.insert(0, (profile.date, "_r_date"))

    # skip rules: real rows that are not completed transactions
    skip_reason = _NULL
    for rule in reversed(profile.skip_rules):
        value = col(rule.column).str.strip_chars()
        skip_reason = pl.when(value.str.contains(rule.pattern)).then(
            pl.lit(f"skipped: {rule.column} '") + value + pl.lit(f"' ({rule.reason})")
        ).otherwise(skip_reason)
    frame = frame.with_columns(_r_skip=skip_reason)
    if "_r_direction" in frame.columns:
        checks.append((profile.direction or "direction", "_r_direction"))
        frame = frame.with_columns(_minor=pl.col("_minor") * pl.col("_sign"))
    checks.insert(0, (profile.skip_rules[0].column if profile.skip_rules else "", "_r_skip"))

    rejects = reject_frame(frame, path, checks)
    good = frame.filter(pl.all_horizontal([pl.col(r).is_null() for _, r in checks]))

    used = set(columns.values())
    extras = [(name, f"c{i}") for i, name in enumerate(_unique_names(table.header)) if f"c{i}" not in used]
    if profile.account is not None:
        account = pl.lit(profile.account)
    elif profile.account_columns:
        account = _joined(columns, profile.account_columns, profile.empty_values)
    else:
        account = pl.lit("")
    identifier = col(profile.id).str.strip_chars() if profile.id else pl.lit("")
    canonical = good.select(
        id=identifier,
        date="_date",
        amount_minor="_minor",
        currency="_currency",
        description=_joined(columns, profile.description, profile.empty_values),
        counterparty=_joined(columns, profile.counterparty, profile.empty_values),
        reference=_joined(columns, profile.reference, profile.empty_values),
        account=account,
        attributes=_attributes(extras, columns, profile),
        source_file=pl.lit(path),
        source_line="source_line",
    )
    canonical = with_fingerprints(as_schema(canonical, BANK_SCHEMA))
    structural = pl.DataFrame(table.rejects, schema=REJECTS_SCHEMA) if table.rejects else empty_frame(REJECTS_SCHEMA)
    all_rejects = as_schema(pl.concat([structural, rejects]), REJECTS_SCHEMA).sort("line", maintain_order=True)
    balances, balance_notes = _balances(path, good, canonical, columns, profile)
    accounts = sorted({a for a in canonical.get_column("account").to_list() if a})
    return FeedResult(
        format=FORMAT,
        side="bank",
        frame=canonical,
        rejects=all_rejects,
        balances=balances,
        accounts=accounts,
        rows_read=canonical.height + all_rejects.height,
        notes=[f"profile: {profile.name}", *table.notes, *balance_notes],
    )


def _direction_columns(columns: dict[str, str], profile: BankCsvProfile) -> dict[str, pl.Expr]:
    """``_sign`` (+1/-1) and ``_r_direction`` from the direction rules and values."""
    values = {k.strip(): v for k, v in profile.direction_values.items()}
    if profile.direction is not None:
        raw = pl.col(columns[profile.direction]).str.strip_chars()
        mapped = raw.replace_strict(values, default="unknown", return_dtype=pl.Utf8) if values else pl.lit("unknown")
    else:
        raw = pl.lit("")
        mapped = pl.lit("unknown")
    # rules come first, in order
    ruled = _NULL
    for rule in reversed(profile.direction_rules):
        ruled = pl.when(pl.col(columns[rule.column]).str.strip_chars().str.contains(rule.pattern)).then(pl.lit(rule.direction)).otherwise(ruled)
    direction = pl.coalesce(ruled, mapped)
    label = profile.direction or "direction"
    reason = (
        pl.when(direction == "in").then(_NULL)
        .when(direction == "out").then(_NULL)
        .when(direction == "skip").then(pl.lit(f"skipped: {label} '") + raw + pl.lit("' (not a movement of money, per the profile)"))
        .when(direction == "neutral").then(
            pl.lit(f"{label} '") + raw + pl.lit("' does not say whether money came in or went out, and no direction rule of the profile matches this row; add a direction_rules entry")
        )
        .otherwise(pl.lit(f"{label} '") + raw + pl.lit("' is not a direction the profile knows (direction_values)"))
    )
    sign = pl.when(direction == "out").then(pl.lit(-1, dtype=pl.Int64)).otherwise(pl.lit(1, dtype=pl.Int64))
    return {"_sign": sign, "_r_direction": reason}


def _attributes(extras: list[tuple[str, str]], columns: dict[str, str], profile: BankCsvProfile) -> pl.Expr:
    """JSON of the unused columns as written, plus the balance column(s), also as written."""
    kept = list(extras)
    for name in (profile.balance, profile.direction, profile.debit, profile.credit):
        if name is not None:
            kept.append((name.strip(), columns[name]))
    if not kept:
        return pl.lit("{}")
    kept.sort(key=lambda item: int(item[1][1:]))
    unique = dict(kept)
    return pl.struct([pl.col(c).alias(n) for n, c in unique.items()]).struct.json_encode()


def _balances(path: str, good: pl.DataFrame, canonical: pl.DataFrame, columns: dict[str, str], profile: BankCsvProfile):
    """Balances the export states, and notes on a running balance that does not chain."""
    rows: list[dict] = []
    notes: list[str] = []
    if good.height == 0:
        return empty_frame(BALANCE_SCHEMA), notes
    account = canonical.get_column("account")[0] if canonical.height else ""

    def parse(name: str) -> pl.DataFrame:
        minor, _reason, _empty = _amount(columns[name], pl.col("_currency"), pl.lit(True), name, profile)
        return good.select(pl.col("_date"), pl.col("_currency"), pl.col("_minor"), pl.col("source_line"), _balance=minor)

    if profile.balance is not None:
        frame = parse(profile.balance).with_row_index("_row")
        dates = frame.get_column("_date").to_list()
        newest_first = len(dates) > 1 and dates[0] > dates[-1]
        ordered = frame.reverse() if newest_first else frame
        ordered = ordered.sort("_date", maintain_order=True)
        # per currency: the closing balance is the running balance after the newest row
        for currency in ordered.get_column("_currency").unique(maintain_order=True).to_list():
            part = ordered.filter(pl.col("_currency") == currency)
            last = part.row(part.height - 1, named=True)
            if last["_balance"] is not None:
                rows.append({"account": account, "currency": currency, "type": "closing", "date": last["_date"],
                             "amount_minor": last["_balance"], "statement_id": None, "source_file": path})
            first = part.row(0, named=True)
            if first["_balance"] is not None and first["_minor"] is not None:
                rows.append({"account": account, "currency": currency, "type": "opening_derived", "date": first["_date"],
                             "amount_minor": first["_balance"] - first["_minor"], "statement_id": None, "source_file": path})
            chain = part.with_columns(_expected=pl.col("_balance").shift(1) + pl.col("_minor")).slice(1)
            broken = chain.filter(pl.col("_expected").is_not_null() & pl.col("_balance").is_not_null() & (pl.col("_expected") != pl.col("_balance")))
            if broken.height:
                line = broken.row(0, named=True)
                notes.append(
                    f"running balance ({profile.balance}, {currency}) does not chain on {broken.height} row(s); "
                    f"first at line {line['source_line']}: previous balance + amount = {line['_expected']} minor units, "
                    f"the file says {line['_balance']}"
                )
    for kind, value_name, date_name in (("opening", profile.opening_balance, profile.opening_date),
                                        ("closing", profile.closing_balance, profile.closing_date)):
        if value_name is None:
            continue
        values = parse(value_name).get_column("_balance")
        currencies = good.get_column("_currency")
        if date_name is not None:
            stated, _ = _dates(pl.col(columns[date_name]), profile.date_formats, date_name)
            dates = good.select(stated).to_series()
        else:
            dates = good.get_column("_date")
        seen = set()
        for value, currency, date in zip(values.to_list(), currencies.to_list(), dates.to_list(), strict=True):
            if value is None or (value, currency, date) in seen:
                continue
            seen.add((value, currency, date))
            rows.append({"account": account, "currency": currency, "type": kind, "date": date,
                         "amount_minor": value, "statement_id": None, "source_file": path})
    if not rows:
        return empty_frame(BALANCE_SCHEMA), notes
    return pl.DataFrame(rows, schema=BALANCE_SCHEMA), notes


def read(path: str | PathLike[str], side: str = "bank", profile: str | BankCsvProfile | None = None, **options) -> FeedResult:
    """Read a bank CSV export through a profile.

    Parameters
    ----------
    path
        The export; kept as given in ``source_file``.
    side
        Must be "bank".
    profile
        A :class:`BankCsvProfile`, a built-in profile name, or a ``.toml`` path; None picks the
        profile whose header signature the file carries.

    Returns
    -------
    FeedResult
        ``frame`` in ``BANK_SCHEMA``; ``rejects`` (bad rows, and rows a skip rule marks as not
        transactions, with the reason); ``balances`` where the export states them (a running
        balance column gives the closing balance); ``notes`` naming the profile used.

    Raises
    ------
    FeedFormatError
        No profile recognises the file, the file does not decode in the profile's encoding,
        or a column the profile reads is missing.
    ProfileError
        The profile itself is invalid.
    """
    source = str(path)
    if options:
        raise _fail(source, f"the bank CSV reader takes only 'profile' (got {', '.join(options)})")
    if side != "bank":
        raise _fail(source, f"a bank CSV export is a bank statement, not a {side} file")
    if profile is None:
        try:
            with open(source, "rb") as handle:
                head = handle.read(64 * 1024)
        except OSError as error:
            raise _fail(source, f"cannot be read ({error.strerror or error})") from None
        chosen = match_profile(head)
        if chosen is None:
            raise _fail(
                source,
                "no bank CSV profile recognises this file's header; draft one with "
                f"`recon profile {source}` and pass it with --format PROFILE.toml",
            )
    elif isinstance(profile, BankCsvProfile):
        chosen = profile
    else:
        chosen = load_profile(profile)
    return _read_profile(source, chosen)


# --------------------------------------------------------------------------------------------
# Drafting a profile for an unknown CSV
# --------------------------------------------------------------------------------------------

_CANDIDATE_ENCODINGS = ("utf-8", "gb18030", "big5", "cp1252", "iso-8859-1")
_DATE_CANDIDATES = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y%m%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d/%m/%y",
    "%m/%d/%y",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d %b %Y",
    "%b %d, %Y",
)
_AMOUNT_NAMES = re.compile(r"amount|amt|金额|金額|montant|betrag|importe|bedrag|importo|valor|sum|value|billing", re.I)
_DEBIT_NAMES = re.compile(r"withdrawal|debit|支出|付款|借方|paid out|money out|out\b|soll|débit|ausgang|expense", re.I)
_CREDIT_NAMES = re.compile(r"deposit|credit|收入|收款|贷方|paid in|money in|\bin\b|haben|crédit|eingang|income", re.I)
_DIRECTION_VALUES = {
    "收入": "in", "支出": "out", "不计收支": "neutral", "/": "neutral",
    "credit": "in", "debit": "out", "cr": "in", "dr": "out", "c": "in", "d": "out",
    "in": "in", "out": "out", "deposit": "in", "withdrawal": "out", "haben": "in", "soll": "out",
}
_CURRENCY_NAMES = re.compile(r"currency|币种|幣別|币别|devise|währung|moneda|valuta", re.I)
_DESCRIPTION_NAMES = re.compile(r"desc|narrat|memo|details|摘要|说明|商品|remarque|libell|verwendung|particulars|payee|text|交易类型|交易分类", re.I)
_COUNTERPARTY_NAMES = re.compile(r"counterpart|payee|merchant|name|对方|交易对方|beneficiar|empf", re.I)
_ID_NAMES = re.compile(r"^(id|transaction id|reference id|fitid|交易单号|交易号|交易订单号|流水号)$", re.I)
_BALANCE_NAMES = re.compile(r"balance|余额|餘額|solde|saldo", re.I)
_CURRENCY_WORDS = {"人民币": "CNY", "港币": "HKD", "港幣": "HKD", "美元": "USD", "欧元": "EUR", "日元": "JPY", "英镑": "GBP", "新台幣": "TWD"}
_SYMBOL_CURRENCY = {"¥": "CNY", "￥": "CNY", "€": "EUR", "£": "GBP", "HK$": "HKD", "US$": "USD", "₹": "INR", "₩": "KRW"}


def sniff_encoding(data: bytes) -> tuple[str, str]:
    """(encoding, why) for raw bytes: UTF-8 when valid, else the legacy encoding whose decoded
    text looks most like real text (common CJK ideographs for GB18030/Big5, Latin letters for
    CP1252/ISO-8859-1)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16", "UTF-16 byte order mark"
    try:
        data.decode("utf-8")
        return "utf-8", "valid UTF-8" + (" with BOM" if data.startswith(b"\xef\xbb\xbf") else "")
    except UnicodeDecodeError:
        pass
    best, best_score = "cp1252", -1.0
    for encoding in _CANDIDATE_ENCODINGS[1:]:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        score = _plausibility(text, encoding)
        if score > best_score:
            best, best_score = encoding, score
    return best, f"not UTF-8; decodes as {best} with the most plausible text"


def _plausibility(text: str, encoding: str) -> float:
    """Share of non-ASCII characters that are common in text written in that encoding."""
    chars = [c for c in text if ord(c) > 127]
    if not chars:
        return 1.0
    good = 0
    for c in chars:
        if encoding in ("gb18030", "big5"):
            try:
                encoded = c.encode("gb2312" if encoding == "gb18030" else "big5")
            except UnicodeEncodeError:
                continue
            lead = encoded[0]
            # GB2312 level-1 hanzi and CJK punctuation / Big5 frequent hanzi
            if (encoding == "gb18030" and (0xB0 <= lead <= 0xD7 or 0xA1 <= lead <= 0xA3)) or (
                encoding == "big5" and (0xA4 <= lead <= 0xC6 or lead == 0xA1)
            ):
                good += 1
        elif c.isalpha() or c in "€–—‘’“”…°£¥§«»·×÷":
            good += 1
    score = good / len(chars)
    return score - (0.01 if encoding == "iso-8859-1" else 0)  # cp1252 is the usual superset


def _sniff_delimiter(lines: list[str]) -> str:
    best, best_score = ",", -1
    for delimiter in (",", ";", "\t", "|"):
        counts = [len(_split_line(line, delimiter, '"')) for line in lines if line.strip()]
        if not counts:
            continue
        modal, frequency = Counter(counts).most_common(1)[0]
        if modal < 2:
            continue
        score = frequency * 1000 + modal
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _numeric(cell: str) -> bool:
    text = re.sub(r"[\s$€£¥￥,+\-−()'.]", "", cell)
    return bool(text) and text.isdigit()


def _guess_header(lines: list[str], delimiter: str) -> int:
    """Index of the first line with the modal field count whose cells are mostly text."""
    split = [[c.strip() for c in _split_line(line, delimiter, '"')] for line in lines]
    counts = [len([c for c in cells]) for cells, line in zip(split, lines, strict=True) if line.strip()]
    if not counts:
        return 0
    modal = Counter(c for c in counts if c > 1).most_common(1)[0][0] if any(c > 1 for c in counts) else 1
    for index, cells in enumerate(split):
        filled = [c for c in cells if c]
        if len(cells) >= modal - 1 and len(filled) >= max(2, (modal + 1) // 2):
            if sum(not _numeric(c) for c in filled) >= 0.8 * len(filled):
                # the next non-blank line should look like data of the same width
                return index
    return 0


def _date_formats(values: list[str]) -> list[str] | None:
    """The date format(s) that read (nearly) every value: the best one, plus a second one for
    the values it leaves (e.g. some rows with a time, some without)."""
    values = [v.strip() for v in values if v.strip()]
    if not values:
        return None
    series = pl.Series(values, dtype=pl.Utf8)
    parsed_by = {}
    for fmt in _DATE_CANDIDATES:
        if _TIME_DIRECTIVES.search(fmt):
            parsed = series.str.to_datetime(fmt, strict=False)
        else:
            parsed = series.str.to_date(fmt, strict=False)
        parsed_by[fmt] = parsed.is_not_null()
    ranked = sorted(parsed_by, key=lambda f: -int(parsed_by[f].sum()))
    best = ranked[0]
    chosen, covered = [best], parsed_by[best]
    if int(covered.sum()) < len(values):
        second = max(ranked[1:], key=lambda f: int((parsed_by[f] & ~covered).sum()))
        if int((parsed_by[second] & ~covered).sum()) > 0:
            chosen.append(second)
            covered = covered | parsed_by[second]
    return chosen if int(covered.sum()) >= max(1, int(0.9 * len(values))) else None


def _amount_share(values: list[str]) -> float:
    filled = [v.strip() for v in values if v.strip() and v.strip() not in ("-", "/", "—")]
    if not filled:
        return 0.0
    pattern = re.compile(r"^[+\-−(]?\s*(?:[A-Z]{0,2}[$€£¥￥₹₩])?\s*[+\-−]?\s*[0-9][0-9,.' ]*\)?-?$")
    return sum(bool(pattern.match(v)) for v in filled) / len(filled)


def _debit_credit_pair(amountish: list[str], values: dict[str, list[str]]) -> tuple[str | None, str | None]:
    """A money-out / money-in column pair: named so, and exactly one filled on (nearly) every row
    (two columns both filled on each row are totals, not a pair)."""

    def filled(v: str) -> bool:
        return bool(v.strip()) and v.strip() not in ("-", "/", "—") and bool(re.search(r"[1-9]", v))

    for debit in (n for n in amountish if _DEBIT_NAMES.search(n)):
        for credit in (n for n in amountish if _CREDIT_NAMES.search(n) and n != debit):
            pairs = list(zip(values[debit], values[credit], strict=True))
            one = sum(filled(d) != filled(c) for d, c in pairs)
            if pairs and one >= 0.9 * len(pairs):
                return debit, credit
    return None, None


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value, ensure_ascii=False)


def draft_profile(path: str | PathLike[str], name: str | None = None) -> tuple[str, str]:
    """Sniff an unknown bank CSV and draft a profile for it.

    Parameters
    ----------
    path
        The CSV export.
    name
        The profile's name; defaults to the file's stem.

    Returns
    -------
    (profile_toml, report)
        ``profile_toml`` is the text of a ``.toml`` profile that loads the file when saved
        (``recon match --bank FILE --format saved.toml``); ``report`` says, line by line, what
        was guessed from what and what the user should check (sign, currency, id).

    Raises
    ------
    FeedFormatError
        The file is missing, empty, not text, or has no recognisable date or amount column.

    Examples
    --------
    >>> text, report = draft_profile("export.csv")  # doctest: +SKIP
    >>> Path("my_bank.toml").write_text(text, encoding="utf-8")  # doctest: +SKIP
    """
    source = str(path)
    file = Path(source)
    if not file.is_file():
        raise _fail(source, "is a directory, not a file" if file.is_dir() else "file not found; check the path")
    data = file.read_bytes()
    if not data.strip():
        raise _fail(source, "is empty; nothing to draft a profile from")
    if b"\x00" in data[:65536] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail(source, "is a binary file, not a CSV export")
    report: list[str] = []
    encoding, why = sniff_encoding(data)
    if encoding == "utf-16":
        raise _fail(source, "is UTF-16; re-save it as UTF-8 CSV first")
    report.append(f"encoding: {encoding} ({why})")
    text = _decode(data, encoding)
    lines = _lines(text)
    sample = lines[:_MAX_HEADER_SEARCH]
    delimiter = _sniff_delimiter(sample)
    report.append(f"delimiter: {delimiter!r} (the most lines split into the same number of fields)")
    header_index = _guess_header(sample, delimiter)
    header = _split_line(lines[header_index], delimiter, '"')
    while len(header) > 1 and not header[-1].strip():
        header = header[:-1]
    names = _unique_names(header)
    report.append(f"header: line {header_index + 1} ({len(names)} columns: {', '.join(names)})")
    probe = BankCsvProfile(name="probe", encoding=encoding, delimiter=delimiter, skip_lines=header_index,
                           identify_header=[names[0]], date=names[0], amount=names[0], currency="USD")
    table = _read_table(source, text, probe)
    values = {n: table.rows.get_column(f"c{i}").to_list() for i, n in enumerate(names)}
    body_lines = [r for r in values.get(names[0], [])]
    if not body_lines:
        raise _fail(source, f"has no data rows after the header on line {header_index + 1}")

    # date column: of the columns where (nearly) every value is a date of one format, the one
    # with the most distinct values (a statement date repeated on each row loses)
    date_column, formats, best_distinct = None, None, 0
    for n in names:
        found = _date_formats(values[n])
        distinct = len({v.strip() for v in values[n] if v.strip()})
        if found is not None and distinct > best_distinct:
            date_column, formats, best_distinct = n, found, distinct
    if date_column is None:
        raise _fail(source, "no column holds dates in a known format; write the profile by hand (see feeds/profiles/*.toml)")
    date_format = formats[0]
    if date_format.startswith(("%d/%m", "%m/%d")):
        other = date_format.replace("%d/%m", "%X").replace("%m/%d", "%d/%m").replace("%X", "%m/%d")
        series = pl.Series([v.strip() for v in values[date_column] if v.strip()])
        if series.str.to_date(other, strict=False).null_count() == 0 and not _TIME_DIRECTIVES.search(date_format):
            report.append(f"date: {date_column!r} could be {date_format} or {other} (no day above 12): CHECK")
    report.append(f"date: column {date_column!r}, format {' or '.join(formats)}")

    amountish = [n for n in names if n != date_column and _amount_share(values[n]) >= 0.9 and not _BALANCE_NAMES.search(n)]
    draft: dict = {"name": name or re.sub(r"[^A-Za-z0-9_]+", "_", file.stem).strip("_").lower() or "my_bank",
                   "title": f"drafted from {file.name}", "encoding": encoding, "delimiter": delimiter}
    if header_index:
        draft["skip_lines"] = header_index
    draft["identify_header"] = [n for n in names if not n.startswith("(column ")][:8]
    draft["date"] = date_column
    draft["date_formats"] = formats
    debit, credit = _debit_credit_pair(amountish, values)
    signed = next((n for n in amountish if _AMOUNT_NAMES.search(n)), None)
    direction = None
    for n in names:
        cells = [v.strip().lower() for v in values[n] if v.strip()]
        known = [c for c in cells if c in _DIRECTION_VALUES]
        signs = {_DIRECTION_VALUES[c] for c in known}
        if n not in amountish and cells and {"in", "out"} & signs and len(known) >= 0.75 * len(cells):
            direction = n
            break
    if debit and credit:
        draft["debit"], draft["credit"] = debit, credit
        report.append(f"amount: money out in {debit!r}, money in in {credit!r}")
    elif signed or amountish:
        amount_column = signed or amountish[0]
        draft["amount"] = amount_column
        negatives = any(v.strip().startswith(("-", "(", "−")) for v in values[amount_column])
        if direction and not negatives:
            draft["direction"] = direction
            seen = {v.strip() for v in values[direction] if v.strip()}
            draft["direction_values"] = {v: _DIRECTION_VALUES.get(v.lower(), "neutral") for v in sorted(seen)}
            report.append(f"amount: {amount_column!r} (unsigned), sign from {direction!r}: CHECK the direction values")
        else:
            report.append(
                f"amount: {amount_column!r} taken as signed (+ money in, - money out)"
                + ("" if negatives else "; no negative value seen: CHECK the sign (set sign = \"inverted\" for a card statement)")
            )
    else:
        raise _fail(source, "no column holds amounts; write the profile by hand (see feeds/profiles/*.toml)")

    currency_column = None
    for n in names:
        if not _CURRENCY_NAMES.search(n):
            continue
        codes = {v.strip() for v in values[n] if v.strip()}
        mapped = {c: _CURRENCY_WORDS.get(c, c.upper()) for c in codes}
        if codes and set(mapped.values()) <= set(CURRENCY_EXPONENTS):
            currency_column = n
            draft["currency_column"] = n
            words = {c: code for c, code in mapped.items() if c.upper() != code}
            if words:
                draft["currency_values"] = words
            report.append(f"currency: column {n!r} ({', '.join(sorted(set(mapped.values())))})")
            break
    if not currency_column:
        all_text = " ".join(v for n in amountish for v in values[n])
        guess = next((code for symbol, code in _SYMBOL_CURRENCY.items() if symbol in all_text), None)
        guess = guess or {"gb18030": "CNY", "big5": "TWD"}.get(encoding)
        draft["currency"] = guess or "USD"
        report.append(
            f"currency: {draft['currency']} for every row ("
            + ("guessed from the amounts' symbol or the encoding" if guess else "no currency column or symbol found")
            + "): CHECK"
        )
    decimal_comma = sum(bool(re.search(r",[0-9]{2}$", v.strip())) for n in amountish for v in values[n])
    decimal_point = sum(bool(re.search(r"\.[0-9]{1,2}$", v.strip())) for n in amountish for v in values[n])
    if decimal_comma > decimal_point:
        draft["decimal"] = ","
        draft["thousands"] = [".", " ", "'"]
        report.append("amounts use a decimal comma")
    id_column = next((n for n in names if _ID_NAMES.search(n.strip())), None)
    if id_column:
        ids = [v.strip() for v in values[id_column]]
        if len(set(ids)) != len(ids) or "" in ids:
            report.append(f"id: column {id_column!r} repeats or is empty on some rows: kept as the reference instead")
            draft["reference"] = [id_column]
            id_column = None
    if id_column:
        draft["id"] = id_column
        report.append(f"id: column {id_column!r}")
    else:
        report.append("id: none; recon fingerprints each line (account, date, amount, texts)")
    texts = [n for n in names if n not in (date_column, id_column, currency_column, direction) and n not in amountish
             and _DESCRIPTION_NAMES.search(n) and not _BALANCE_NAMES.search(n)]
    if texts:
        draft["description"] = texts[:2]
    counterparty = next((n for n in names if _COUNTERPARTY_NAMES.search(n) and n not in texts and n != date_column), None)
    if counterparty:
        draft["counterparty"] = [counterparty]
    balance = next(
        (n for n in names if _BALANCE_NAMES.search(n) and _amount_share(values[n]) >= 0.9
         and len({v.strip() for v in values[n]}) > 1),
        None,
    )
    if balance:
        draft["balance"] = balance
        report.append(f"running balance: column {balance!r}")
    date_index = names.index(date_column)
    dated, _ = _dates(pl.col(f"c{date_index}"), formats, date_column)
    last_good = int(table.rows.filter(dated.is_not_null()).get_column("source_line").max() or 0)
    trailing = [r for r in table.rejects if r["line"] > last_good and r["reason"].startswith("row has ")]
    if not trailing:
        total_row = re.compile(r"(?i)合计|合計|总计|總計|total|summe|totaux")
        after = table.rows.filter(pl.col("source_line") > last_good).select("source_line", "raw").rows()
        trailing = [{"line": line, "raw": raw, "reason": ""} for line, raw in after
                    if total_row.search(_split_line(raw, delimiter, '"')[0])]
    if trailing:
        first_cell = _split_line(trailing[0]["raw"], delimiter, '"')[0].strip()
        if first_cell:
            draft["footer_pattern"] = "^" + re.escape(first_cell)
            report.append(f"footer: from the line starting {first_cell!r} (a summary row, not a transaction)")
    single = [r["raw"] for r in table.rejects if r["reason"].startswith("row has 1 fields") and r not in trailing]
    if single:
        draft["ignore_rows"] = ["^" + re.escape(raw) + "$" for raw in dict.fromkeys(single)]
        report.append(f"{len(single)} one-cell marker row(s) ignored: CHECK they are not transactions")
    lines_out = ["# bank CSV profile drafted by `recon profile`; check the lines marked CHECK in the report"]
    lines_out += [f"{key} = {_toml_value(value)}" for key, value in draft.items()]
    profile_text = "\n".join(lines_out) + "\n"
    profile = profile_from_dict(tomllib.loads(profile_text), "(drafted profile)")
    try:
        result = _read_profile(source, profile)
        report.append(
            f"trial read: {result.frame.height} transaction(s), {result.rejects.height} reject(s)"
            + (f"; first reject line {result.rejects['line'][0]}: {result.rejects['reason'][0]}" if result.rejects.height else "")
        )
    except ReconError as error:
        report.append(f"trial read failed: {error}")
    return profile_text, "\n".join(report)

