"""Alias tables (feeds): which names, in any script, are the same party.

A workspace keeps, as data, the names its payers go by (``陳大文`` is ``CHAN TAI MAN``); the
engine links names through it (:func:`engine.prepare.names.alias_groups`). This module only
reads the file into a frame, byte-exact, or says what is wrong with it, naming the line.
"""

from __future__ import annotations

import csv
import io
from os import PathLike

import polars as pl

from feeds._common import read_file
from models.errors import FeedFormatError

__all__ = ["ALIAS_SCHEMA", "read_aliases"]

#: columns of an alias table as read
ALIAS_SCHEMA: dict[str, pl.DataType] = {
    "name": pl.String, "alias": pl.String, "source_file": pl.String, "source_line": pl.Int64,
}


def read_aliases(path: str | PathLike[str]) -> pl.DataFrame:
    """Read an alias table: which names, in any script, are the same party.

    The file is UTF-8 CSV (a BOM is allowed) with a header naming the columns ``name`` and
    ``alias`` (any order, case-insensitive; other columns are ignored, e.g. a note), one link
    a row::

        name,alias
        陳大文,CHAN TAI MAN
        金港貿易有限公司,GOLDEN HARBOUR TRADING CO LTD
        GOLDEN HARBOUR TRADING CO LTD,GH TRADING

    Names linked directly or through a chain are one party (:func:`engine.prepare.names.alias_groups`). Blank lines
    are skipped; a value containing a comma is quoted (``"Kam Wing, Ltd"``).

    Parameters
    ----------
    path
        The file; kept per workspace, as data.

    Returns
    -------
    pl.DataFrame
        :data:`ALIAS_SCHEMA`: ``name`` and ``alias`` exactly as written (byte for byte, blanks
        around a value removed), the ``source_file`` and the ``source_line`` (1-based line of
        the row), in file order. That every value is a name is the engine's check
        (:func:`engine.prepare.names.checked_aliases`).

    Raises
    ------
    FeedFormatError
        Naming the file and, for a bad row, its line: the file cannot be read, is not UTF-8
        or is empty; the header lacks ``name`` or ``alias``; a row has a missing field or an
        empty value. The first bad row is named, with the count of the others.

    Examples
    --------
    >>> aliases = read_aliases("aliases.csv")  # doctest: +SKIP
    >>> aliases.row(0)  # doctest: +SKIP
    ('陳大文', 'CHAN TAI MAN', 2)
    """
    source = str(path)
    data = read_file(source, "an alias table (CSV: name,alias)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise FeedFormatError(
            source, f"is not UTF-8 (byte 0x{data[error.start]:02x}); re-save the alias table as 'CSV UTF-8'",
            line=line,
        ) from None
    physical = text.splitlines()
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    end = 0  # physical line where the previous record ended
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if not any(field.strip() for field in record):
                continue  # blank line
            if header is None:
                header, header_line = [field.strip().lower() for field in record], start
            else:
                rows.append((start, record))
    except csv.Error as error:
        raise FeedFormatError(source, f"is not a readable CSV ({error})", line=reader.line_num) from None
    if header is None:
        raise FeedFormatError(source, "is empty; an alias table has the header name,alias and one link a row")
    missing = [column for column in ("name", "alias") if column not in header]
    if missing:
        raise FeedFormatError(
            source,
            f"has no {' or '.join(repr(c) for c in missing)} column; the header must name the columns name,alias",
            line=header_line, raw=physical[header_line - 1],
        )
    columns = {column: header.index(column) for column in ("name", "alias")}
    problems: list[tuple[int, str]] = []
    values: dict[str, list[str | None]] = {"name": [], "alias": []}
    for line, record in rows:
        for column, at in columns.items():
            value = record[at].strip() if at < len(record) else None
            values[column].append(value)
            if value is None:
                problems.append((line, f"has no {column} (the row has {len(record)} field(s)); write name,alias"))
            elif value == "":
                problems.append((line, f"the {column} is empty; every row links a name to an alias"))
    if problems:
        _raise_first(source, problems, physical)
    return pl.DataFrame(
        {**values, "source_file": [source] * len(rows), "source_line": [line for line, _ in rows]},
        schema=ALIAS_SCHEMA,
    )


def _raise_first(source: str, problems: list[tuple[int, str]], physical: list[str]) -> None:
    """Raise the first problem (by line), saying how many more there are."""
    problems.sort()
    line, problem = problems[0]
    more = f" ({len(problems) - 1} more problem(s) in the file)" if len(problems) > 1 else ""
    raise FeedFormatError(source, problem + more, line=line, raw=physical[line - 1])
