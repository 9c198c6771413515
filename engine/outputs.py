"""Outputs (after assignment): a run's result files in its output folder (matches, unmatched lines,
rejects, duplicates).

Files are written to a temporary name and renamed into place, so a crash never leaves a
half-written ``matches.csv`` that looks complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from models.errors import TerminalAdapterError
from models.money import format_minor_expr

OUTPUT_FILES = {
    "matches": "matches.csv",
    "unmatched_bank": "unmatched_bank.csv",
    "unmatched_ledger": "unmatched_ledger.csv",
    "rejects": "rejects.csv",
    "duplicates": "duplicates.csv",
}


def canonical_csv_view(frame: pl.DataFrame) -> pl.DataFrame:
    """Canonical rows as they read in a CSV: ``amount`` as exact decimal text, dates ISO."""
    cols = []
    for name in frame.columns:
        if name == "amount_minor":
            cols.append(format_minor_expr(pl.col("amount_minor"), pl.col("currency")).alias("amount"))
        else:
            cols.append(pl.col(name))
    return frame.select(cols)


def write_csv_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` as UTF-8 CSV to ``path`` via a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        frame.write_csv(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TerminalAdapterError(f"{path}: cannot write output: {exc.strerror or exc}") from None


def write_outputs(out_dir: str | Path, frames: dict[str, pl.DataFrame]) -> dict[str, Path]:
    """Write every frame in ``frames`` (keys from ``OUTPUT_FILES``) to ``out_dir``."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TerminalAdapterError(f"{out}: cannot create output folder: {exc.strerror or exc}") from None
    written = {}
    for key, frame in frames.items():
        path = out / OUTPUT_FILES[key]
        write_csv_atomic(frame, path)
        written[key] = path
    return written
