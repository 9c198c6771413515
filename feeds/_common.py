"""Feeds stage: small helpers every format reader shares (private to :mod:`feeds`).

Each helper keeps the exact wording and behaviour the readers had when each carried its own
copy, so that a file gives the same rows, rejects, ids and messages whichever reader meets it.
"""

from __future__ import annotations

from pathlib import Path

from models.errors import FeedFormatError

__all__ = ["read_file"]


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
