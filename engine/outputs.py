"""Outputs (after assignment): a run's result files in its output folder (matches, unmatched lines,
rejects, duplicates) and the manifest that says which run they belong to.

The workspace is the source of truth and the files follow it. A run writes its files into a
staging folder inside the output folder (``.recon-staging-RUN``) while the workspace records the
run; only once the workspace has committed the run are they renamed into place, and
``manifest.json`` (the run id, the workspace, each file's rows and bytes) is written last. Before
the first file is replaced the previous manifest is removed, so:

- a run that fails before its workspace commit (the workspace is locked or not a DuckDB file, the
  process is killed) leaves the output folder as it was, the previous run's manifest included;
- a run killed while renaming leaves no manifest: a reader finds no ``manifest.json``, or one
  naming a run, and knows whether the files are one committed run's.

Each file is written to a temporary name and renamed, so no half-written ``matches.csv`` ever
looks complete. A staging folder left by a killed run is removed by the next run.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from models.errors import InputError, TerminalAdapterError
from models.money import format_minor_expr

OUTPUT_FILES = {
    "matches": "matches.csv",
    "unmatched_bank": "unmatched_bank.csv",
    "unmatched_ledger": "unmatched_ledger.csv",
    "rejects": "rejects.csv",
    "duplicates": "duplicates.csv",
}

MANIFEST = "manifest.json"
_STAGING_PREFIX = ".recon-staging-"


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


def check_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as a path, refused with one clear line when it cannot be an output folder.

    Raises
    ------
    InputError
        It names an existing file (or a path under one).
    """
    out = Path(out_dir)
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                where = "is" if path == out else f"is under {path}, which is"
                raise InputError(f"--out {out} {where} a file, not a folder; name a folder for the run's outputs")
            break
    return out


class StagedOutputs:
    """A run's output files, written aside and published once its workspace has committed.

    Parameters
    ----------
    out_dir
        The output folder (created when missing).
    run_id
        The run the files belong to (named in the staging folder and the manifest).

    Examples
    --------
    >>> staged = StagedOutputs("out", run.run_id)        # doctest: +SKIP
    >>> staged.write(run.output_frames())                 # doctest: +SKIP
    >>> ...  # commit the run to the workspace
    >>> staged.publish({"workspace": "books.duckdb"})     # doctest: +SKIP
    """

    def __init__(self, out_dir: str | Path, run_id: str):
        self.out = check_out_dir(out_dir)
        self.run_id = run_id
        self._created_out = not self.out.exists()
        self.staging = self.out / f"{_STAGING_PREFIX}{run_id}"
        self._rows: dict[str, int] = {}

    def write(self, frames: dict[str, pl.DataFrame]) -> dict[str, Path]:
        """Write ``frames`` (keys from ``OUTPUT_FILES``) into the staging folder."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            for stale in self.out.glob(f"{_STAGING_PREFIX}*"):  # left by a killed run
                if stale != self.staging:
                    shutil.rmtree(stale, ignore_errors=True)
            self.staging.mkdir(exist_ok=True)
        except OSError as exc:
            raise TerminalAdapterError(f"{self.out}: cannot create output folder: {exc.strerror or exc}") from None
        self._rows = {key: frame.height for key, frame in frames.items()}
        return write_outputs(self.staging, frames)

    def publish(self, manifest: dict | None = None) -> dict[str, Path]:
        """Move the staged files into the output folder and write ``manifest.json`` last.

        ``manifest``: more to record (the workspace, the run's mode); the run id, the time and
        each file's rows and bytes are added. Returns each file's final path (``manifest``
        included)."""
        (self.out / MANIFEST).unlink(missing_ok=True)
        written = {}
        files = {}
        for key in self._rows:
            name = OUTPUT_FILES[key]
            target = self.out / name
            os.replace(self.staging / name, target)
            written[key] = target
            files[name] = {"rows": self._rows[key], "bytes": target.stat().st_size}
        shutil.rmtree(self.staging, ignore_errors=True)
        body = {"run_id": self.run_id, "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
                **(manifest or {}), "files": files}
        path = self.out / MANIFEST
        tmp = path.with_name(f".{MANIFEST}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        written["manifest"] = path
        return written

    def discard(self) -> None:
        """Remove the staged files (the run was not committed): the output folder is as it was."""
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._created_out:
            try:
                self.out.rmdir()
            except OSError:
                pass
