"""Feeds stage: which format modules exist, which one reads a file, and the multi-file loader.

Every format module in ``feeds/`` follows one small protocol::

    FORMAT = "ofx"                 # the name used with --format
    SIDES = ("bank",)              # which inputs it can serve: "bank", "ledger", "processor"
    def identify(head: bytes, path: str) -> bool     # sniff the first 64 KiB, never raises
    def read(path: str, side: str = "bank", **options) -> FeedResult

:func:`detect` asks the modules, in :data:`FORMAT_MODULES` order, whether they recognise a
file *by its content*; the file name's extension only breaks a tie between two modules that
both recognise it. :func:`detect_side` does the same without knowing what the file is for (as
``recon inspect FILE`` without ``--side``): it asks the modules of every side and says which
side the file reads as, so a Stripe export is recognised as a processor file rather than
refused as an unknown bank file. :func:`read_any` reads one file with the detected (or named) module, and
:func:`load` reads several files for one side into one canonical frame in which every line
appears once: a line whose id was already loaded from an earlier row or file is listed in
``duplicates`` instead (first occurrence wins), so importing a statement twice, or two
overlapping statements, yields each line once.

Modules are imported lazily: a module that is missing or broken only matters when a file of
its format is read (the error then names the module and the reason), and detection of the
other formats goes on without it.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from types import ModuleType

import polars as pl

from feeds._common import as_schema, raw_text_expr, read_file, reject_out_of_range_dates
from models.errors import FeedFormatError
from models.schema import (
    BALANCE_SCHEMA,
    BANK_SCHEMA,
    DUPLICATES_SCHEMA,
    LEDGER_SCHEMA,
    PAYOUT_LINE_SCHEMA,
    REJECTS_SCHEMA,
    FeedResult,
    FileStats,
    LoadResult,
    empty_frame,
)

__all__ = [
    "FORMAT_MODULES",
    "HEAD_BYTES",
    "SIDES",
    "detect",
    "detect_side",
    "format_names",
    "get_module",
    "load",
    "load_bank",
    "load_ledger",
    "load_processor",
    "read_any",
    "side_schema",
]

#: format name -> module, in detection priority order (the first module that recognises a
#: file wins; the file's extension breaks ties)
FORMAT_MODULES: dict[str, str] = {
    "canonical_csv": "feeds.canonical_csv",
    "ofx": "feeds.ofx",
    "mt940": "feeds.mt940",
    "camt": "feeds.camt",
    "bank_csv": "feeds.bank_csv",
    "parquet": "feeds.parquet",
    "database": "feeds.database",
    "stripe": "feeds.stripe",
    "shopify": "feeds.shopify",
    "paypal": "feeds.paypal",
}

#: how each format is named in messages
_TITLES: dict[str, str] = {
    "canonical_csv": "canonical CSV",
    "ofx": "OFX",
    "mt940": "MT940",
    "camt": "camt",
    "bank_csv": "a known bank CSV profile",
    "parquet": "Parquet",
    "database": "a database URL",
    "stripe": "a Stripe report or API JSON",
    "shopify": "Shopify Payments JSON or transactions CSV",
    "paypal": "a PayPal activity CSV, settlement report (STL) or Venmo statement",
}

#: extensions that break a tie between two modules recognising the same file
_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "canonical_csv": (".csv",),
    "ofx": (".ofx", ".qfx"),
    "mt940": (".sta", ".940", ".mt940", ".txt"),
    "camt": (".xml",),
    "bank_csv": (".csv", ".txt"),
    "parquet": (".parquet", ".pq"),
    "stripe": (".csv", ".json"),
    "shopify": (".json",),
    "paypal": (".csv",),
}

SIDES: tuple[str, ...] = ("bank", "ledger", "processor")

#: how many bytes of a file ``identify`` sees
HEAD_BYTES = 64 * 1024

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)

#: canonical columns compared to decide whether a repeated id carries the same content
_CONTENT_COLUMNS = {
    "bank": ["date", "amount_minor", "currency", "description", "counterparty", "reference", "account"],
    "ledger": [
        "date",
        "amount_minor",
        "currency",
        "description",
        "counterparty",
        "reference",
        "account",
        "type",
        "due_date",
    ],
    "processor": [
        "payout_id",
        "category",
        "currency",
        "gross_minor",
        "fee_minor",
        "net_minor",
        "available_on",
    ],
}


def side_schema(side: str) -> dict[str, pl.DataType]:
    """The canonical schema of ``side`` ("bank", "ledger" or "processor")."""
    _check_side(side)
    return {"bank": BANK_SCHEMA, "ledger": LEDGER_SCHEMA, "processor": PAYOUT_LINE_SCHEMA}[side]


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise FeedFormatError(
            "(input)", f"unknown side {side!r}; expected one of {', '.join(SIDES)}"
        )


def format_names() -> list[str]:
    """Every format name ``--format`` accepts (built-in bank CSV profile names included)."""
    names = list(FORMAT_MODULES)
    try:
        from feeds.bank_csv import builtin_profile_names

        names += [f"bank_csv:{name}" for name in builtin_profile_names()]
    except ImportError:  # pragma: no cover - bank_csv ships with the package
        pass
    return names


def get_module(name: str) -> ModuleType:
    """Import the format module called ``name`` (a key of :data:`FORMAT_MODULES`).

    Raises
    ------
    FeedFormatError
        Unknown name, or the module cannot be imported (missing in this installation, or
        broken); the message says which and why.
    """
    if name not in FORMAT_MODULES:
        raise FeedFormatError(
            "(--format)",
            f"unknown format {name!r}; known formats: {', '.join(FORMAT_MODULES)} "
            "(or bank_csv:PROFILE, or the path of a bank CSV profile .toml)",
        )
    module_name = FORMAT_MODULES[name]
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise FeedFormatError(
            "(--format)",
            f"the {_TITLES.get(name, name)} reader ({module_name}) is not available in this "
            f"installation ({error}); reinstall recon or read the file in another format",
        ) from None


def _try_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(FORMAT_MODULES[name])
    except ImportError:
        return None


def _split_format(format: str) -> tuple[str, dict]:
    """``--format`` value -> (module name, options): "bank_csv:hsbc_hk_savings", a profile
    file "my_bank.toml", or the bare name of a built-in bank CSV profile also work."""
    if format in FORMAT_MODULES:
        return format, {}
    if format.startswith("bank_csv:"):
        return "bank_csv", {"profile": format.split(":", 1)[1]}
    if format.lower().endswith(".toml"):
        return "bank_csv", {"profile": format}
    try:
        from feeds.bank_csv import builtin_profile_names

        if format in builtin_profile_names():
            return "bank_csv", {"profile": format}
    except ImportError:  # pragma: no cover
        pass
    get_module(format)  # raises the "unknown format" error
    raise AssertionError("unreachable")  # pragma: no cover


def detect(path: str | PathLike[str], side: str = "bank") -> ModuleType:
    """The format module that reads ``path`` for ``side``, recognised by content.

    Parameters
    ----------
    path
        A file, or a database URL (``duckdb:///file.duckdb?table=...``, ``postgresql://...``).
    side
        "bank", "ledger" or "processor": only modules serving that side are asked.

    Returns
    -------
    module
        The first module (in :data:`FORMAT_MODULES` order) whose ``identify`` recognises the
        file's first 64 KiB; when several do, one whose usual extension matches the file's.

    Raises
    ------
    FeedFormatError
        The file is missing or unreadable, or no module recognises it (the message lists the
        formats tried and what to do).

    Examples
    --------
    >>> detect("statement.ofx", "bank").FORMAT  # doctest: +SKIP
    'ofx'
    """
    _check_side(side)
    return _detect(str(path), (side,))[0]


def detect_side(path: str | PathLike[str], prefer: str | None = None) -> tuple[ModuleType, str]:
    """The format module that reads ``path`` and the side it reads it as, for a file whose
    side is not known (``recon inspect FILE``).

    Parameters
    ----------
    path
        A file, or a database URL.
    prefer
        A side to try first ("bank", "ledger" or "processor"); when no module of that side
        recognises the file, the modules of the other sides are asked.

    Returns
    -------
    (module, side)
        The side: ``prefer`` when one of its modules recognises the file, else the first side
        in :data:`SIDES` order ("bank", "ledger", "processor") one of whose modules does (so a
        canonical CSV reads as bank, a Stripe report as processor); the module as
        :func:`detect` picks it for that side.

    Raises
    ------
    FeedFormatError
        The file is missing or unreadable, or no module of any side recognises it (the message
        lists every format tried).

    Examples
    --------
    >>> module, side = detect_side("balance_transactions.json")  # doctest: +SKIP
    >>> module.FORMAT, side  # doctest: +SKIP
    ('stripe', 'processor')
    """
    if prefer is not None:
        _check_side(prefer)
    order = (prefer, *(s for s in SIDES if s != prefer)) if prefer else SIDES
    return _detect(str(path), order)


def _detect(source: str, sides: Sequence[str]) -> tuple[ModuleType, str]:
    """(module, side): the first side in ``sides`` one of whose modules recognises the file,
    and that module (ties broken by the file's extension); the near-canonical fallback when
    none does; else the not-recognised error listing every format asked."""
    if _URL.match(source):
        database = get_module("database")
        return database, next((s for s in sides if s in database.SIDES), sides[0])
    head = read_file(source, "one file", limit=HEAD_BYTES)
    recognised: dict[str, bool] = {}  # format name -> its verdict (asked once per file)
    for side in sides:
        matches: list[tuple[str, ModuleType]] = []
        for name in FORMAT_MODULES:
            if name == "database":
                continue
            module = _try_module(name)
            if module is None or side not in getattr(module, "SIDES", ()):
                continue
            if name not in recognised:
                try:
                    recognised[name] = bool(module.identify(head, source))
                except Exception:  # noqa: BLE001 - a sniffer that trips over odd bytes did not recognise them
                    recognised[name] = False
            if recognised[name]:
                matches.append((name, module))
        if len(matches) > 1:
            suffix = Path(source).suffix.lower()
            for name, module in matches:
                if suffix in _EXTENSIONS.get(name, ()):
                    return module, side
        if matches:
            return matches[0][1], side
    canonical = _try_module("canonical_csv")
    usable = [s for s in sides if canonical is not None and s in canonical.SIDES]
    if usable and _near_canonical(head):
        # a canonical CSV with a column missing: its reader names the missing column
        return canonical, usable[0]
    only = sides[0] if len(sides) == 1 else None
    raise FeedFormatError(source, _not_recognised(source, only, list(recognised), head))


_CANONICAL_NAMES = {"id", "date", "amount", "currency", "description", "counterparty", "reference",
                    "account", "type", "due_date"}


def _near_canonical(head: bytes) -> bool:
    """A comma CSV whose header names at least three canonical columns (``id,date,value,
    currency``): meant as canonical CSV, so the canonical reader's message fits best."""
    text = head.removeprefix(b"\xef\xbb\xbf")[:8192].decode("utf-8", errors="replace")
    for line in text.splitlines():
        if line.strip():
            names = {name.strip().strip('"').strip().lower() for name in line.split(",")}
            return len(names & _CANONICAL_NAMES) >= 3
    return False


def _not_recognised(source: str, side: str | None, tried: list[str], head: bytes) -> str:
    titles = [_TITLES.get(name, name) for name in tried] or ["any known format"]
    listing = titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + f", or {titles[-1]}"
    if not head.strip():
        return "is empty; check that this is the right file and that the export finished"
    if head[8:12] == b"DUCK":
        return f"is a DuckDB database file; name the table or query: duckdb:///{source}?table=NAME"
    hint = "use --format NAME"
    if side is None:
        hint += (
            f" (and --side); for a bank CSV export, draft a profile with `recon profile {source}`"
        )
        return f"could not recognise the format of this file: not {listing}; {hint}"
    if side == "bank":
        hint += f" or draft a profile with `recon profile {source}`"
    elif side == "ledger":
        hint += " or export the ledger as canonical CSV (id,date,amount,currency,...)"
    else:
        hint += (
            " (a Stripe report needs the columns balance_transaction_id, currency, gross, fee, "
            "net, reporting_category)"
        )
    return f"could not recognise the format of this {side} file: not {listing}; {hint}"


def read_any(
    path: str | PathLike[str], side: str | None = "bank", format: str | None = None, **options
) -> FeedResult:
    """Read one file (or database URL) for ``side`` into a :class:`~models.schema.FeedResult`.

    Parameters
    ----------
    path
        The file or URL; kept as given in ``source_file``.
    side
        "bank", "ledger" or "processor"; None reads the file as whatever side its format
        serves (:func:`detect_side`; ``FeedResult.side`` says which).
    format
        A format name (``--format``) to skip detection: a key of :data:`FORMAT_MODULES`,
        ``bank_csv:PROFILE``, a built-in profile name, or a profile ``.toml`` path.
    **options
        Passed to the module's ``read``.

    Raises
    ------
    FeedFormatError
        Not recognised, not readable in that format, or the format cannot serve ``side``.
    """
    if side is not None:
        _check_side(side)
    source = str(path)
    if format:
        name, extra = _split_format(format)
        module = get_module(name)
        options = {**extra, **options}
        if side is None:
            side = next((s for s in SIDES if s in getattr(module, "SIDES", ())), "bank")
        if side not in getattr(module, "SIDES", ()):
            raise FeedFormatError(
                source,
                f"the {_TITLES.get(name, name)} format cannot be read as the {side} side "
                f"(it serves: {', '.join(module.SIDES)})",
            )
    elif side is None:
        module, side = detect_side(source)
    else:
        module = detect(source, side)
    if _accepts_side(module):
        result = module.read(source, side=side, **options)
    else:  # a module whose read() serves one side only and takes no side argument
        result = module.read(source, **options)
    if not isinstance(result, FeedResult):  # pragma: no cover - a module breaking the protocol
        raise TypeError(f"{module.__name__}.read returned {type(result).__name__}, not FeedResult")
    return reject_out_of_range_dates(result)


def _accepts_side(module: ModuleType) -> bool:
    try:
        parameters = inspect.signature(module.read).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return True
    return "side" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def load(
    paths: str | PathLike[str] | Sequence[str | PathLike[str]],
    side: str,
    format: str | None = None,
) -> LoadResult:
    """Read several files for one side into one canonical frame, each line once.

    A line is identified by its id (bank/ledger ``id``, processor ``(processor, line_id)``).
    When an id occurs more than once across the rows and files:

    - every occurrence carries the same content (the same file twice, overlapping
      statements): the first is loaded, the others are listed in ``duplicates``;
    - the occurrences differ only in that some leave a field empty that another fills in
      (a processor line exported before its payout was known, and again with the payout id):
      the most complete occurrence is loaded (the first of equally complete ones), the others
      are listed in ``duplicates`` with ``same_content`` false;
    - two occurrences give different values for a field (``INV-1`` at 100.00 and at 200.00):
      the id is a **conflict**. No occurrence is loaded: each goes to ``rejects`` with a
      reason naming every occurrence (``file:line``) and the fields that differ, since recon
      cannot tell which version is right. Correct the source, or give each line its own id.

    Parameters
    ----------
    paths
        The files (or database URLs), in the order they should be read.
    side
        "bank", "ledger" or "processor".
    format
        Format name for every file; None detects each file's format.

    Returns
    -------
    LoadResult
        ``frame`` in the side's schema with one row per distinct id (in the order of the
        rows' first occurrence), the ``rejects`` of every file plus the conflicts,
        ``duplicates`` and one ``FileStats`` per path (``rows_read = loaded + rejected``;
        duplicates count as loaded, conflicting rows as rejected and in ``conflicts``).

    Raises
    ------
    FeedFormatError
        One of the files cannot be read at all.

    Examples
    --------
    >>> result = load(["ledger.csv"], "ledger")  # doctest: +SKIP
    >>> result.rejects.filter(pl.col("column") == "id")["reason"][0]  # doctest: +SKIP
    "id 'INV-1' occurs with different content at ledger.csv:2 and ledger.csv:4 (differs in: date, amount); ..."
    """
    _check_side(side)
    if isinstance(paths, str | PathLike):
        paths = [paths]
    schema = side_schema(side)
    frames: list[pl.DataFrame] = []
    rejects: list[pl.DataFrame] = []
    balances: list[pl.DataFrame] = []
    counts: list[tuple[str, int, int, int]] = []
    for number, path in enumerate(paths):
        result = read_any(path, side, format)
        frame = as_schema(result.frame, schema)
        frames.append(frame.with_columns(_file=pl.lit(number, dtype=pl.Int64)))
        rejects.append(as_schema(result.rejects, REJECTS_SCHEMA))
        if result.balances.height:
            balances.append(as_schema(result.balances, BALANCE_SCHEMA).with_columns(
                pl.col("source_file").fill_null(str(path))))
        counts.append((str(path), result.rows_read, frame.height, result.rejects.height))

    combined = (
        pl.concat(frames)
        if frames
        else empty_frame(schema).with_columns(_file=pl.lit(None, dtype=pl.Int64))
    )
    if side == "processor":
        key = pl.concat_str([pl.col("processor"), pl.col("line_id")], separator="\x1f")
        id_column = "line_id"
    else:
        key = pl.col("id")
        id_column = "id"
    combined = combined.with_columns(_key=key).with_row_index("_row")
    repeated_mask = combined.select(pl.col("_key").is_duplicated()).to_series()
    if repeated_mask.any():
        kept, duplicates, conflicts = _resolve_repeats(combined.filter(repeated_mask), side, id_column)
        frame = pl.concat([combined.filter(~repeated_mask), kept.select(combined.columns)]).sort("_row")
    else:
        frame, duplicates, conflicts = combined, empty_frame(DUPLICATES_SCHEMA), empty_frame(REJECTS_SCHEMA)
    duplicates_per_file = dict(duplicates.group_by("_file").len().iter_rows()) if duplicates.height else {}
    conflicts_per_file = dict(conflicts.group_by("_file").len().iter_rows()) if conflicts.height else {}

    stats = [
        FileStats(
            source_file=source,
            side=side,
            rows_read=rows_read,
            loaded=loaded - int(conflicts_per_file.get(number, 0)),
            rejected=rejected + int(conflicts_per_file.get(number, 0)),
            duplicates=int(duplicates_per_file.get(number, 0)),
            conflicts=int(conflicts_per_file.get(number, 0)),
        )
        for number, (source, rows_read, loaded, rejected) in enumerate(counts)
    ]
    all_rejects = [*rejects, as_schema(conflicts, REJECTS_SCHEMA)] if conflicts.height else rejects
    return LoadResult(
        frame=as_schema(frame, schema),
        rejects=pl.concat(all_rejects) if all_rejects else empty_frame(REJECTS_SCHEMA),
        duplicates=as_schema(duplicates, DUPLICATES_SCHEMA),
        stats=stats,
        balances=pl.concat(balances) if balances else empty_frame(BALANCE_SCHEMA),
    )


#: how many occurrences of a conflicting id its reject reason names
_NAMED_OCCURRENCES = 5


def _resolve_repeats(
    repeated: pl.DataFrame, side: str, id_column: str
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(rows kept, duplicates, conflict rejects) of the rows whose id occurs more than once
    (see :func:`load` for the rule); the duplicates and rejects carry ``_file``."""
    content = _CONTENT_COLUMNS[side]
    # most repeats are exact (the same statement twice): one hash of the content per row finds
    # the ids whose occurrences differ at all; only those are compared field by field
    repeated = repeated.with_columns(_hash=pl.struct(content).hash())
    varying = repeated.group_by("_key").agg(pl.col("_hash").n_unique() > 1).filter("_hash")["_key"]
    exact = repeated.filter(~pl.col("_key").is_in(varying.implode()))
    repeated = repeated.filter(pl.col("_key").is_in(varying.implode()))
    # per id and field: how many different non-empty values its occurrences give
    differing = {
        c: (pl.col(c).n_unique() - pl.col(c).is_null().any().cast(pl.UInt32)).over("_key") > 1
        for c in content
    }
    repeated = repeated.with_columns(
        _conflict=pl.any_horizontal(list(differing.values())),
        _differs=pl.concat_list(
            [pl.when(flag).then(pl.lit(_field_label(c))) for c, flag in differing.items()]
        ).list.drop_nulls().list.join(", "),
        _filled=pl.sum_horizontal([pl.col(c).is_not_null() for c in content]),
        _where=pl.col("source_file") + pl.lit(":") + pl.col("source_line").cast(pl.Utf8).fill_null("?"),
    )
    agreeing = pl.concat(
        [
            exact.with_columns(_filled=pl.lit(0, dtype=pl.UInt32)).sort("_row"),
            repeated.filter(~pl.col("_conflict"))
            .select(*exact.columns, "_filled")
            .sort(["_key", "_filled", "_row"], descending=[False, True, False]),
        ],
        how="vertical_relaxed",
    )
    first = agreeing.select(pl.col("_key").is_first_distinct()).to_series()
    kept = agreeing.filter(first)
    later = agreeing.filter(~first)
    if later.height:
        originals = kept.select(
            "_key",
            first_source_file="source_file",
            first_line="source_line",
            **{f"_first_{c}": c for c in content},
        )
        joined = later.join(originals, on="_key", how="left", maintain_order="left").sort("_row")
        same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(f"_first_{c}")) for c in content])
        duplicates = joined.select(
            side=pl.lit(side),
            id=id_column,
            source_file="source_file",
            line="source_line",
            first_source_file="first_source_file",
            first_line="first_line",
            same_content=same,
            _file="_file",
        )
    else:
        duplicates = empty_frame(DUPLICATES_SCHEMA).with_columns(_file=pl.lit(None, dtype=pl.Int64))

    clashing = repeated.filter(pl.col("_conflict")).sort("_row")
    if clashing.height:
        places = clashing.group_by("_key").agg(
            _places=pl.col("_where").head(_NAMED_OCCURRENCES), _count=pl.len()
        )
        named = pl.col("_places")
        listing = (
            pl.when(pl.col("_count") <= _NAMED_OCCURRENCES)
            .then(
                named.list.head(pl.col("_count") - 1).list.join(", ")
                + pl.lit(" and ")
                + named.list.last()
            )
            .otherwise(
                named.list.join(", ")
                + pl.lit(" and ")
                + (pl.col("_count") - _NAMED_OCCURRENCES).cast(pl.Utf8)
                + pl.lit(" more")
            )
        )
        clashing = clashing.join(places.with_columns(_listing=listing), on="_key", how="left").sort("_row")
        conflicts = clashing.select(
            source_file="source_file",
            line="source_line",
            column=pl.lit(id_column),
            reason=pl.format(
                "{} '{}' occurs with different content at {} (differs in: {}); none of them is "
                "used: correct the source, or give each line its own id",
                pl.lit(id_column),
                pl.col(id_column),
                pl.col("_listing"),
                pl.col("_differs"),
            ),
            raw=raw_text_expr(side, clashing.schema),
            _file="_file",
        )
    else:
        conflicts = empty_frame(REJECTS_SCHEMA).with_columns(_file=pl.lit(None, dtype=pl.Int64))
    return kept, duplicates, conflicts


def _field_label(column: str) -> str:
    """A canonical column as a user names the field ("amount_minor" -> "amount")."""
    return column.removesuffix("_minor")


def load_bank(
    paths: str | PathLike[str] | Sequence[str | PathLike[str]], format: str | None = None
) -> LoadResult:
    """Read bank statements of any supported format into one ``BANK_SCHEMA`` frame.

    See :func:`load`; bank lines without an id of their own carry a stable fingerprint id,
    so a re-imported or overlapping statement yields each line once.
    """
    return load(paths, "bank", format)


def load_ledger(
    paths: str | PathLike[str] | Sequence[str | PathLike[str]], format: str | None = None
) -> LoadResult:
    """Read ledger files (canonical CSV, Parquet, database URL) into one ``LEDGER_SCHEMA`` frame.

    See :func:`load`; a repeated id is kept once and listed in ``duplicates``.
    """
    return load(paths, "ledger", format)


def load_processor(
    paths: str | PathLike[str] | Sequence[str | PathLike[str]], format: str | None = None
) -> LoadResult:
    """Read processor files (Stripe, Shopify Payments, PayPal) into one payout-line frame.

    See :func:`load`; a line is identified by ``(processor, line_id)``, so the same balance
    transaction in two overlapping exports is kept once.
    """
    return load(paths, "processor", format)
