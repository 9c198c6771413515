"""Order ids as comparable keys (engine stage 1, prepare; used by the payout generators).

A shop's order appears as ``#5022`` in a Shopify-style ledger, ``5022`` in a processor's
payment metadata, ``0005022`` in an export that pads it, ``SO-2026-00114`` in one system and
``so 2026 00114`` or ``Order SO-2026-00114`` in another, or only inside a description
(``Web order #5022 (Stripe)``). This module turns each written id into a few *keys*, graded by
how much a match on them proves, so both sides can be joined on plain strings:

====  ============  ===================================================================
rank  level         key (lower case)
====  ============  ===================================================================
0     ``exact``     the id as written, blanks trimmed (``#5022``, ``so-2026-00114``)
1     ``same_id``   letters and digits only, leading zeros of the number dropped
                    (``#5022``, ``5022``, ``0005022`` -> ``5022``; ``SO-00114``, ``so114``
                    -> ``so114``): the same id written another way
2     ``digits``    its digits only (``SO-00114``, ``#114``, ``JT114`` -> ``114``): a bare
                    number meeting a differently prefixed id -- weaker, another store's or
                    system's order may carry the same number
3     ``serial``    the last number of an id with several (``SO-2026-00114`` -> ``114``),
                    matched only against another id's ``digits`` (a serial never meets a
                    serial: ``SO-2025-00114`` is not ``SO-2026-00114``)
====  ============  ===================================================================

Two written ids *match at* the weaker of their two keys' ranks, the best over their keys.
Which of several matching items a line links is decided by the caller with amounts and dates;
this module only grades. Pure expression/frame builders, vectorized (no Python loop per row).
"""

from __future__ import annotations

import polars as pl

__all__ = [
    "ORDER_KEY_LEVELS",
    "candidate_order_ids",
    "digit_runs",
    "order_keys",
    "order_numbers",
    "store_key",
]

#: key levels, strongest first (their position is the rank used by :func:`order_keys`)
ORDER_KEY_LEVELS: tuple[str, ...] = ("exact", "same_id", "digits", "serial")

#: a token of free text that may be an id: no blanks or brackets/punctuation between its
#: characters ('-', '_', '#', '.' stay inside), at least one digit
_ID_TOKEN = r"#?[^\s,;:/()\[\]{}<>'\"|]*[0-9][^\s,;:/()\[\]{}<>'\"|]*"


def candidate_order_ids(text: pl.Expr) -> pl.Expr:
    """The tokens of a free text that could be order ids: those holding a digit, trailing
    dots/stars dropped (``"Web order #5022 (Stripe)"`` -> ``["#5022"]``, ``"Refund for order
    SO-2026-00090"`` -> ``["SO-2026-00090"]``). A list expression; null text gives ``[]``."""
    return (
        text.fill_null("")
        .str.extract_all(_ID_TOKEN)
        .list.eval(pl.element().str.strip_chars_end(".*"))
    )


def store_key(description: pl.Expr, *, case_fold: bool = True) -> pl.Expr:
    """A description with its order numbers and ids taken out, blanks collapsed: what the
    orders of one store and channel share (``"Web order #5022 (Stripe)"`` -> ``"web order
    (stripe)"``; ``"Summit Florist online order (Shopify Payments)"`` is unchanged but for case).
    ``case_fold=False`` keeps the case, to show the store to a reader.
    """
    key = (
        description.fill_null("")
        .str.replace_all(_ID_TOKEN, " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )
    return key.str.to_lowercase() if case_fold else key


def _strip_zeros(digits: pl.Expr) -> pl.Expr:
    """Leading zeros dropped, one zero kept for an all-zero number (``"000"`` -> ``"0"``)."""
    return digits.str.replace(r"^0+([0-9])", "$1")


def digit_runs(raw: pl.Expr) -> pl.Expr:
    """The runs of digits of a written id, in order (``"SO-2026-00114"`` -> ``["2026",
    "00114"]``): the input of :func:`order_numbers`, kept as a column so it is found once."""
    return raw.fill_null("").str.extract_all(r"[0-9]+")


def order_numbers(runs: pl.Expr) -> pl.Expr:
    """The numbers two written ids must share to match at any level, from their
    :func:`digit_runs`: the id's digits (leading zeros dropped) and, for an id with several
    numbers, its last one. Cheap (one regex pass, no letters looked at): filter a large side on
    it before building its :func:`order_keys`.

    >>> pl.select(n=order_numbers(digit_runs(pl.lit("SO-2026-00114")))).item().to_list()
    ['202600114', '114']
    """
    numbers = pl.concat_list(
        runs.list.join(""), pl.when(runs.list.len() >= 2).then(runs.list.last())
    ).list.drop_nulls()
    stripped = pl.element().str.strip_chars_start("0")
    return numbers.list.eval(
        pl.element()
        .filter(pl.element() != "")
        .pipe(lambda e: pl.when(stripped == "").then(pl.lit("0")).otherwise(stripped))
    ).list.unique(maintain_order=True)


def order_keys(frame: pl.DataFrame, raw: str = "raw") -> pl.DataFrame:
    """One row per key of each written id in column ``raw``: the frame's other columns, ``key``
    (text, comparable across sides) and ``level`` (rank in :data:`ORDER_KEY_LEVELS`).

    Keys of different levels never collide (each carries its level's tag), except that
    ``serial`` keys share the ``digits`` tag so a number alone (``00114``) can meet the last
    number of a longer id (``SO-2026-00114``); join two sides on ``key`` and take the larger
    ``level`` of the pair, dropping pairs where both are ``serial``.

    Examples
    --------
    >>> frame = pl.DataFrame({"row": [0, 1], "raw": ["#5022", "SO-2026-00114"]})
    >>> sorted(order_keys(frame)["key"].to_list())  # doctest: +NORMALIZE_WHITESPACE
    ['d:114', 'd:202600114', 'd:5022', 'e:#5022', 'e:so-2026-00114', 'n:5022', 'n:so202600114']
    """
    # staged columns, so that each text operation runs once
    staged = frame.with_columns(
        _text=pl.col(raw).fill_null("").str.strip_chars().str.to_lowercase()
    ).with_columns(
        _alnum=pl.col("_text").str.replace_all(r"[^\p{L}\p{N}]", ""),
        _runs=digit_runs(pl.col("_text")),
    ).with_columns(
        _digits=_strip_zeros(pl.col("_runs").list.join("")),
        _serial=_strip_zeros(pl.col("_runs").list.last()),
    )
    has_digit = pl.col("_digits") != ""
    keys = pl.concat_list(
        pl.when(has_digit).then(pl.lit("e:") + pl.col("_text")),
        # letters and digits only, the zeros leading the number dropped (so-00114 -> so114)
        pl.when(has_digit).then(
            pl.lit("n:") + pl.col("_alnum").str.replace(r"^([^0-9]*)0+([0-9])", "${1}${2}")
        ),
        pl.when(has_digit).then(pl.lit("d:") + pl.col("_digits")),
        pl.when((pl.col("_runs").list.len() >= 2) & (pl.col("_serial") != pl.col("_digits"))).then(
            pl.lit("d:") + pl.col("_serial")
        ),
    )
    levels = pl.lit([0, 1, 2, 3], dtype=pl.List(pl.Int8))
    others = [c for c in frame.columns if c != raw]
    return (
        staged.with_columns(key=keys, level=levels)
        .select(*others, "key", "level")
        .explode("key", "level")
        .drop_nulls("key")
    )
