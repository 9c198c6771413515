"""Payer name comparison (engine stage 3, scoring): how alike a bank payer and a ledger party are.

Similarity is rapidfuzz's batch ``cpdist`` over the prepared name keys
(:func:`engine.prepare.names.name_key`), pair by pair, without building a text column per pair.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

__all__ = ["name_similarity", "pair_name_similarity", "script_code"]


def name_similarity(bank_names: pl.Series, ledger_names: pl.Series) -> np.ndarray:
    """Similarity 0-100 of pair-aligned normalised names (see :func:`pair_name_similarity`)."""
    rows = np.arange(len(bank_names))
    return pair_name_similarity(rows, rows, bank_names, ledger_names)


def pair_name_similarity(bank_rows: np.ndarray, ledger_rows: np.ndarray, bank_names: pl.Series,
                          ledger_names: pl.Series) -> np.ndarray:
    """Similarity 0-100 of the names at ``bank_rows`` / ``ledger_rows`` (pair-aligned row
    numbers into the per-line ``bank_names`` / ``ledger_names``); a bank name cut short (bank
    descriptions are often truncated at a fixed width) is compared with the same-length prefix of
    the ledger name. Names are looked up as Python strings by row (numpy object arrays), which is
    what rapidfuzz takes, instead of materialising a string column per pair."""
    if not len(bank_rows):
        return np.empty(0, dtype=np.float64)
    bank_text = _texts(bank_names, bank_rows)
    ledger_text = _texts(ledger_names, ledger_rows)
    # equal names score 100 and a missing one 0 (as the scorer would say): only the rest is compared
    both = (bank_names.fill_null("") != "").to_numpy()[bank_rows] & (ledger_names.fill_null("") != "").to_numpy()[ledger_rows]
    equal = both & (bank_text == ledger_text)
    similarity = np.where(equal, 100.0, 0.0)
    compare = np.flatnonzero(both & ~equal)
    if len(compare):
        similarity[compare] = process.cpdist(
            bank_text[compare].tolist(), ledger_text[compare].tolist(), scorer=fuzz.token_set_ratio, workers=-1,
        )
    prefix_len = bank_names.fill_null("").str.len_chars().to_numpy()[bank_rows]
    # a bank name cut short still shares most of its words: only long names that match partly
    # (not already well, not hardly at all) are worth the second look
    again = np.flatnonzero((prefix_len >= 10) & (similarity < 95) & (similarity >= 50))
    if len(again):
        ledger_prefix = pl.Series(ledger_text[again].tolist(), dtype=pl.Utf8).str.slice(0, pl.Series(prefix_len[again]))
        prefix = process.cpdist(bank_text[again].tolist(), ledger_prefix.to_list(), scorer=fuzz.ratio, workers=-1)
        similarity[again] = np.maximum(similarity[again], prefix)
    return similarity


def _texts(names: pl.Series, rows: np.ndarray) -> np.ndarray:
    """``names`` at ``rows`` as a numpy object array of Python strings (null -> ""): every name
    converted once and picked by row when the rows outnumber the names, else only those picked."""
    names = names.fill_null("")
    if len(rows) >= names.len():
        return np.array(names.to_list(), dtype=object)[rows]
    return np.array(names.gather(rows).to_list(), dtype=object)


def script_code(script: pl.Expr) -> pl.Expr:
    """A name's script as a small code, 0 for mixed or none: two names in different scripts
    (``cjk`` vs ``latin``) are not compared."""
    return script.replace_strict({"cjk": 1, "latin": 2}, default=0, return_dtype=pl.UInt8)
