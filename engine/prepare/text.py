"""Text normalization (engine stage 1, prepare): fold free text to a comparable form.

Bank narratives and ledger names reach the engine as written; the name keys
(:mod:`engine.prepare.names`) and reference keys (:mod:`engine.prepare.references`) are built
on the forms made here. Everything is a *pure expression builder*: a function that takes
``pl.Expr`` and returns ``pl.Expr``. Nothing here executes a query, loops over rows in Python
or calls ``map_elements``; the caller decides where the expressions run.

Conventions
-----------
* Text is folded with :func:`normalize_text` (Unicode NFKC, case folding, whitespace
  collapsed). Chinese characters are kept exactly as written: Traditional Chinese is compared
  as itself, never converted to Simplified or romanised.
* Reference work only needs digits, letters and separators, so :func:`fold_width` folds just
  the full-width ASCII block (``ＩＮＶ－２０２６`` -> ``INV-2026``) and the ideographic
  space, which is much cheaper on a million rows.
* A null input gives a null output. Each expression uses its input once, so nothing is
  computed twice even where polars does not eliminate common subexpressions.
* Output columns keep the name of the input column, as polars expressions do.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

__all__ = ["CHANNELS", "alnum_text", "fold_width", "is_wide", "normalize_text", "rewrite_where",
           "split_channel"]

# --------------------------------------------------------------------------------------------
# gating: rewrite only the rows that need it
# --------------------------------------------------------------------------------------------


def is_wide(text: pl.Expr) -> pl.Expr:
    """True where the text has a non-ASCII character (more bytes than characters)."""
    return text.str.len_bytes() != text.str.len_chars()


#: a character that NFKC, format-character removal or the extra case folds might change:
#: anything but ASCII and the CJK Unified Ideographs block (U+4E00..U+9FFF)
_MAY_NEED_NFKC = r"[^\x00-\x7F\x{4E00}-\x{9FFF}]"


def _needs_nfkc(text: pl.Expr) -> pl.Expr:
    """True where the text has a character other than ASCII and CJK Unified Ideographs."""
    return text.str.contains(_MAY_NEED_NFKC)


def rewrite_where(
    e: pl.Expr,
    needs: Callable[[pl.Expr], pl.Expr],
    rewrite: Callable[[pl.Expr], pl.Expr],
    otherwise: Callable[[pl.Expr], pl.Expr] | None = None,
) -> pl.Expr:
    """``rewrite`` the rows where ``needs`` holds; the others get ``otherwise`` (or stay).

    Polars evaluates both branches of ``when/then`` on every row, so ``rewrite`` is handed
    the text of the rows that need it and ``""`` for the rest: an expensive rewrite (NFKC, a
    regex pass that rarely matches) then costs little on rows that cannot change. The input
    is evaluated once, through a struct.
    """
    f = pl.field
    keep = otherwise or (lambda text: text)
    rewritten = (
        pl.struct(text=e)
        .struct.with_fields(needs=needs(f("text")))
        .struct.with_fields(
            text=pl.when(f("needs"))
            .then(rewrite(pl.when(f("needs")).then(f("text")).otherwise(pl.lit(""))))
            .otherwise(keep(f("text")))
        )
        .struct.field("text")
    )
    name = e.meta.output_name(raise_if_undetermined=False)  # keep the input's column name
    return rewritten if name is None else rewritten.alias(name)


# --------------------------------------------------------------------------------------------
# normalize_text
# --------------------------------------------------------------------------------------------

#: characters whose full case folding differs from lower-casing (after NFKC)
_CASE_FOLD_EXTRA = {"ß": "ss", "ς": "σ"}
# a run of 2+ whitespace/control characters, or a single one that is not an ASCII space:
# only these need rewriting, which keeps the (usually match-free) pass cheap
_WHITESPACE_TO_FIX = r"[\s\p{Cc}]{2,}|[^\S ]|\p{Cc}"


def normalize_text(e: pl.Expr) -> pl.Expr:
    """Fold text to a canonical comparable form.

    Unicode NFKC (full-width forms to ASCII, compatibility ligatures expanded), invisible
    format characters (zero-width space, BOM, soft hyphen) removed, case folded (lower case,
    plus ``ß`` -> ``ss`` and final sigma -> sigma), every run of whitespace or control
    characters (tabs, newlines, NBSP, ideographic space U+3000) collapsed to one ASCII space,
    leading and trailing spaces stripped.

    Chinese, Japanese and Korean characters pass through unchanged (NFKC does not convert
    Traditional to Simplified Chinese).

    Parameters
    ----------
    e
        A ``String`` expression.

    Returns
    -------
    pl.Expr
        ``String``; null where the input is null, ``""`` where it is empty or blank.

    Examples
    --------
    >>> df = pl.DataFrame({"t": ["ＣＨＡＮ\u3000ＴＡＩ  Man\t", "金港貿易有限公司"]})
    >>> df.select(normalize_text(pl.col("t")))["t"].to_list()
    ['chan tai man', '金港貿易有限公司']
    """
    # Only rows with a character outside ASCII and the CJK Unified Ideographs need NFKC,
    # format-character removal and the extra case folds (those characters are NFKC-stable,
    # not format characters, and have no case); the others (usually most, Chinese names
    # included) only need lower-casing.
    folded = rewrite_where(
        e,
        _needs_nfkc,
        lambda text: text.str.normalize("NFKC")
        .str.replace_all(r"\p{Cf}+", "")
        .str.to_lowercase()
        .str.replace_many(list(_CASE_FOLD_EXTRA), list(_CASE_FOLD_EXTRA.values())),
        otherwise=lambda text: text.str.to_lowercase(),
    )
    return folded.str.replace_all(_WHITESPACE_TO_FIX, " ").str.strip_chars(" ")


# full-width ASCII block U+FF01..U+FF5E and the ideographic space, as NFKC maps them
_FULL_WIDTH = [chr(cp) for cp in range(0xFF01, 0xFF5F)] + ["\u3000"]
_HALF_WIDTH = [chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)] + [" "]


def fold_width(e: pl.Expr) -> pl.Expr:
    """Full-width ASCII forms to ASCII (a cheap subset of NFKC, enough for references).

    Only rows with a non-ASCII character are searched at all; the rest pass through.
    """
    return rewrite_where(
        e, is_wide, lambda text: text.str.replace_many(_FULL_WIDTH, _HALF_WIDTH)
    )


# --------------------------------------------------------------------------------------------
# split_channel
# --------------------------------------------------------------------------------------------

#: bank channel prefixes: spelling (words separated by one space) -> canonical channel name.
#: Between the words of a spelling any of `` :/*-`` (or nothing) may appear, so ``fps cr``
#: also matches ``fps-cr``, ``fps/cr`` and ``fpscr``; ``t t`` matches ``tt`` and ``t/t``.
CHANNELS: dict[str, str] = {
    "fps cr": "FPS CR",
    "fps dr": "FPS DR",
    "fps": "FPS",
    "t t in": "TT IN",
    "t t out": "TT OUT",
    "t t": "TT",
    "ibt cr": "IBT CR",
    "ibt dr": "IBT DR",
    "ibt": "IBT",
    "chq dep": "CHQ DEP",
    "cheque deposit": "CHEQUE DEPOSIT",
    "chq": "CHQ",
    "autopay dr": "AUTOPAY DR",
    "autopay cr": "AUTOPAY CR",
    "autopay": "AUTOPAY",
    "cr trf": "CR TRF",
    "dr trf": "DR TRF",
    "trf": "TRF",
    "transfer": "TRANSFER",
    "tfr": "TFR",
    "cash dep": "CASH DEP",
    "cash deposit": "CASH DEP",
    "atm": "ATM",
    "eps": "EPS",
    "pos": "POS",
    "dd": "DD",
    "so": "SO",
    "giro": "GIRO",
    "inward remittance": "INWARD REMITTANCE",
    "outward remittance": "OUTWARD REMITTANCE",
    "remittance": "REMITTANCE",
    "salary": "SALARY",
    "payroll": "PAYROLL",
    "bank charges": "BANK CHARGES",
    "bank charge": "BANK CHARGES",
    "service fee": "SERVICE FEE",
    "int": "INT",
}

_SEP = r"[ :/*\-]"


def _compact(spelling: str) -> str:
    return "".join(ch for ch in spelling if "a" <= ch <= "z")


def _channel_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for spelling, canonical in CHANNELS.items():
        key = _compact(spelling)
        if lookup.setdefault(key, canonical) != canonical:  # pragma: no cover - table check
            raise ValueError(f"channel spellings collide on {key!r}; fix CHANNELS")
    return lookup


_CHANNEL_BY_KEY = _channel_lookup()
# Longest spelling first: regex alternation is leftmost-first, so this makes the longest
# matching prefix win ("fps cr" before "fps", "autopay dr" before "autopay").
_CHANNEL_ALTERNATION = "|".join(
    f"{_SEP}*".join(spelling.split(" "))
    for spelling in sorted(CHANNELS, key=lambda s: (-len(_compact(s)), s))
    if spelling != "so"
)
# "so" is also a common Hong Kong surname (蘇): "so tai man" is a name, while "so: rent",
# "so-88812", "so 12345" or a bare "so" is a standing order.
_CHANNEL_PREFIX = (
    rf"(?i)^\s*(?:(?:{_CHANNEL_ALTERNATION})(?:{_SEP}+|$)"
    rf"|so{_SEP}*(?:[:/*\-]{_SEP}*|$)"
    rf"|so +[0-9])"
)
# The same prefix for removal. The last form above has to consume the digit, which must
# stay in the rest, so "so 12345" is first rewritten to "so:12345" (a rare match; capture
# groups are slow on the common path, so the main pattern has none).
_SO_NUMBER = r"(?i)^(\s*so) +([0-9])"
_CHANNEL_PREFIX_REMOVAL = _CHANNEL_PREFIX.replace("|so +[0-9])", ")")


def split_channel(e: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Separate a leading bank channel prefix (``FPS CR``, ``TT IN``, ...) from the narrative.

    The longest known prefix wins; it must be followed by a separator (space, ``:``, ``-``,
    ``/``, ``*``) or the end of the text, so ``posh ltd`` has no channel. ``SO`` (standing
    order) needs a ``:``/``-``/``/``/``*`` or a number after it, because ``so tai man`` is a
    name. See :data:`CHANNELS` for the recognised spellings.

    Parameters
    ----------
    e
        A ``String`` expression, normally already passed through :func:`normalize_text`
        (matching is case-insensitive either way).

    Returns
    -------
    channel : pl.Expr
        ``String``: the canonical upper-case channel name (``"FPS CR"``), or null when there
        is no channel prefix or the input is null.
    rest : pl.Expr
        ``String``: the text after the prefix and its separators, stripped; the whole input
        (stripped) when there is no prefix; null when the input is null.

    Examples
    --------
    >>> df = pl.DataFrame({"t": ["fps cr kam wing trading", "tt-in: acme", "posh ltd"]})
    >>> channel, rest = split_channel(pl.col("t"))
    >>> df.select(channel.alias("channel"), rest.alias("rest")).rows()
    [('FPS CR', 'kam wing trading'), ('TT IN', 'acme'), (None, 'posh ltd')]
    """
    channel = (
        e.str.extract(_CHANNEL_PREFIX, 0)
        .str.to_lowercase()
        .str.replace_all("[^a-z]+", "")
        .replace_strict(_CHANNEL_BY_KEY, default=None, return_dtype=pl.String)
    )
    rest = (
        e.str.replace(_SO_NUMBER, "${1}:${2}")
        .str.replace(_CHANNEL_PREFIX_REMOVAL, "")
        .str.strip_chars()
    )
    return channel, rest



#: runs of characters that are not letters, digits or marks
NOT_NAME_CHARACTER = r"[^\p{L}\p{N}\p{M}]+"


def alnum_text(e: pl.Expr) -> pl.Expr:
    """Normalized text with everything except letters and digits removed.

    Letters of every script (and their combining marks) are kept, so ``INV-2026-00123``
    becomes ``inv202600123`` and ``金港 貿易`` becomes ``金港貿易``.

    Parameters
    ----------
    e
        A ``String`` expression.

    Returns
    -------
    pl.Expr
        ``String``; null where the input is null.

    Examples
    --------
    >>> df = pl.DataFrame({"t": ["INV-2026-00123", "inv / 2026 / 00123"]})
    >>> df.select(alnum_text(pl.col("t")))["t"].to_list()
    ['inv202600123', 'inv202600123']
    """
    return normalize_text(e).str.replace_all(NOT_NAME_CHARACTER, "")
