"""Feeds stage: canonical bank or ledger lines stored in a Parquet file.

The file carries recon's canonical column names (``id, date, amount, currency, description,
counterparty, reference, account``, plus ``type, due_date`` for the ledger; any order, matched
case-insensitively; other columns go to ``attributes``). Amounts must be exact: decimal text
(``"1234.50"``), a DECIMAL type, an integer of whole units, or integer minor units in a column
named ``amount_minor``. A floating-point amount column is refused for the whole file: a binary
float cannot hold 0.10 exactly, and recon never guesses which decimal was meant.

Values are turned into text and validated by exactly the same code as the canonical CSV
(:func:`feeds.canonical_csv.canonical_from_table`), so a bad row is rejected with the same
reasons; ``source_line`` is the 1-based row number in the file.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from feeds.canonical_csv import RawTable, canonical_from_table
from models.errors import FeedFormatError
from models.money import format_minor_expr
from models.schema import REJECTS_SCHEMA, FeedResult, empty_frame

__all__ = ["FORMAT", "SIDES", "identify", "read", "read_arrow"]

FORMAT = "parquet"
SIDES: tuple[str, ...] = ("bank", "ledger")


def identify(head: bytes, path: str = "") -> bool:
    """Parquet files start with the magic bytes ``PAR1``."""
    return head.startswith(b"PAR1")


def _text_column(column: pa.ChunkedArray, name: str, source: str) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if name.strip().lower() in ("amount", "amount_minor") and pa.types.is_floating(kind):
        raise FeedFormatError(
            source,
            f"column '{name}' holds floating-point numbers ({kind}); a float cannot hold money "
            "exactly (0.1 + 0.2 != 0.3), so recon refuses it: write the amount as decimal text, a "
            "DECIMAL type, or integer minor units in 'amount_minor'",
        )
    if pa.types.is_timestamp(kind):
        column = pc.cast(column, pa.date32())
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        column = column.cast(pa.string())  # fails loudly on bytes that are not UTF-8
    elif pa.types.is_struct(kind) or pa.types.is_list(kind) or pa.types.is_map(kind):
        return pa.chunked_array(
            [[None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in column.to_pylist()]],
            type=pa.string(),
        )
    return pc.cast(column, pa.string())


def read_arrow(table: pa.Table, source: str, side: str, what: str) -> FeedResult:
    """Validate an Arrow table with canonical column names into a :class:`FeedResult`.

    Raises
    ------
    FeedFormatError
        A float amount column, a required column missing, a name given twice, or a value
        that cannot become text.
    """
    if side not in SIDES:
        raise FeedFormatError(source, f"a {what} holds bank or ledger lines, not {side}")
    names = list(table.column_names)
    lowered = [n.strip().lower() for n in names]
    columns: dict[str, pl.Series] = {}
    try:
        for index, name in enumerate(names):
            text = _text_column(table.column(index), name, source)
            series = pl.from_arrow(text)
            columns[f"c{index}"] = series.cast(pl.Utf8).fill_null("")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise FeedFormatError(source, f"a column cannot be read as text ({error})") from None
    header = list(names)
    frame = pl.DataFrame(columns) if columns else pl.DataFrame()
    if "amount" not in lowered and "amount_minor" in lowered and "currency" in lowered:
        minor = f"c{lowered.index('amount_minor')}"
        currency = f"c{lowered.index('currency')}"
        if not (pa.types.is_integer(table.column(lowered.index("amount_minor")).type)):
            raise FeedFormatError(source, "column 'amount_minor' must hold integers (minor units)")
        frame = frame.with_columns(
            format_minor_expr(
                pl.col(minor).cast(pl.Int64, strict=False),
                pl.col(currency).str.strip_chars().str.to_uppercase(),
            )
            .fill_null(pl.col(minor))
            .alias(minor)
        )
        header[lowered.index("amount_minor")] = "amount"
    height = table.num_rows
    rows = frame.with_columns(
        source_line=pl.int_range(1, height + 1, dtype=pl.Int64),
        raw=pl.struct([pl.col(f"c{i}").alias(n) for i, n in enumerate(names)]).struct.json_encode()
        if names
        else pl.lit("{}"),
    ) if height else frame.with_columns(source_line=pl.lit(None, dtype=pl.Int64), raw=pl.lit(None, dtype=pl.Utf8))
    rows = rows.select("source_line", "raw", *[f"c{i}" for i in range(len(names))])
    raw_table = RawTable(path=source, header=header, header_line=1, rows=rows, rejects=empty_frame(REJECTS_SCHEMA))
    frame_out, rejects, rows_read = canonical_from_table(raw_table, side, what=what)
    accounts = sorted({a for a in frame_out.get_column("account").to_list() if a})
    return FeedResult(format=FORMAT, side=side, frame=frame_out, rejects=rejects, accounts=accounts, rows_read=rows_read)


def read(path: str | PathLike[str], side: str = "ledger", **options) -> FeedResult:
    """Read canonical bank or ledger lines from a Parquet file.

    Raises
    ------
    FeedFormatError
        Not a readable Parquet file, a float amount column, or a missing required column.
    """
    source = str(path)
    if options:
        raise FeedFormatError(source, f"the Parquet reader takes no options ({', '.join(options)})")
    if not Path(source).is_file():
        raise FeedFormatError(source, "file not found; check the path")
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(source)
    except (pa.ArrowException, OSError) as error:
        raise FeedFormatError(source, f"is not a readable Parquet file ({error})") from None
    result = read_arrow(table, source, side, f"{side} Parquet file")
    result.format = FORMAT
    return result
