"""Stable short ids derived from text (line fingerprints, match ids).

SHA-1 of the UTF-8 bytes, first 16 hex digits, behind a prefix: the same text gives the same id
on every machine and Python/Polars version (Polars' own ``hash`` is not stable across versions).
"""

from __future__ import annotations

import hashlib

import polars as pl


def short_id(prefix: str, key: str) -> str:
    """``prefix`` + the first 16 hex digits of the SHA-1 of ``key``.

    Examples
    --------
    >>> short_id("fp-", "a")
    'fp-86f7e437faa5a7fc'
    """
    return prefix + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def short_ids(prefix: str, keys: pl.Series) -> pl.Series:
    """:func:`short_id` for a whole column (hashlib has no vectorized form: one call per value,
    the only per-row Python in the id paths)."""
    return pl.Series([short_id(prefix, k) for k in keys.to_list()], dtype=pl.Utf8)
