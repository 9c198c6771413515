"""Text and reference normalization for the candidate and scoring stage.

The candidate generator joins bank lines to ledger items on cheap keys (reference serials,
counterparty name keys) and the scorer grades the pairs it gets back. Both sides must be
reduced to the same comparable form, and both stages work on whole columns, so everything
here is a *pure expression builder*: a function that takes ``pl.Expr`` and returns
``pl.Expr``. Nothing here executes a query, loops over rows in Python or calls
``map_elements``; the caller decides where the expressions run (``select``,
``with_columns``, a lazy plan).

Conventions
-----------
* Names and narratives are folded with :func:`normalize_text` (Unicode NFKC, case folding,
  whitespace collapsed). Chinese characters are kept exactly as written: Traditional Chinese
  is compared as itself, never converted to Simplified or romanised.
* The reference functions only need digits, letters and separators, so instead of full NFKC
  they fold the full-width ASCII block (``ＩＮＶ－２０２６`` -> ``INV-2026``) and the
  ideographic space, which is much cheaper on a million rows. Digits are ASCII ``0-9`` after
  that fold; other scripts' digits are not treated as digits.
* A null input gives a null output. Functions that produce a *key* (:func:`name_key`,
  :func:`reference_serial`, :func:`reference_digits`) also give null when nothing usable is
  left, so two empty keys never compare equal.
* Each expression uses its input once, so nothing is computed twice even where polars does
  not eliminate common subexpressions (eager ``select``). :func:`reference_strength` shares
  its intermediate columns through a struct for the same reason.
* Output columns keep the name of the input column, as polars expressions do (use
  ``.alias``), except :func:`reference_strength`, which is named ``reference_strength``.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

__all__ = [
    "CHANNELS",
    "REFERENCE_STRENGTH_LEVELS",
    "alnum_text",
    "bank_reference_profile",
    "name_key",
    "normalize_text",
    "reference_digits",
    "reference_serial",
    "reference_strength",
    "ledger_reference_profile",
    "reference_strength_from_profile",
    "reference_strength_from_profiles",
    "split_channel",
    "text_digits",
    "text_reference_keys",
]

# --------------------------------------------------------------------------------------------
# gating: rewrite only the rows that need it
# --------------------------------------------------------------------------------------------


def _is_wide(text: pl.Expr) -> pl.Expr:
    """True where the text has a non-ASCII character (more bytes than characters)."""
    return text.str.len_bytes() != text.str.len_chars()


#: a character that NFKC, format-character removal or the extra case folds might change:
#: anything but ASCII and the CJK Unified Ideographs block (U+4E00..U+9FFF)
_MAY_NEED_NFKC = r"[^\x00-\x7F\x{4E00}-\x{9FFF}]"


def _needs_nfkc(text: pl.Expr) -> pl.Expr:
    """True where the text has a character other than ASCII and CJK Unified Ideographs."""
    return text.str.contains(_MAY_NEED_NFKC)


def _rewrite_where(
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
    folded = _rewrite_where(
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


def _fold_width(e: pl.Expr) -> pl.Expr:
    """Full-width ASCII forms to ASCII (a cheap subset of NFKC, enough for references).

    Only rows with a non-ASCII character are searched at all; the rest pass through.
    """
    return _rewrite_where(
        e, _is_wide, lambda text: text.str.replace_many(_FULL_WIDTH, _HALF_WIDTH)
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


# --------------------------------------------------------------------------------------------
# name_key
# --------------------------------------------------------------------------------------------

_CURRENCIES = "hkd|usd|rmb|cny|eur|gbp|jpy|sgd|aud|cad|chf|mop|twd|nzd"
_REFERENCE_WORDS = "inv|invoice|bill|rcpt|receipt|ref|reference|po|so|order|no|nos"
_REF_CHARS = r"[a-z0-9/\-_.#:]"
# Everything in a narrative that is a number rather than a name, in one pass:
_NAME_NOISE = "|".join(
    [
        # an amount with its currency: "hkd 1,234.50", "hk$500"
        rf"(?:(?-u:\b)(?:{_CURRENCIES})(?-u:\b)|hk\$|us\$|\$)\s*[0-9][0-9.,]*",
        # an amount: digits with decimal or thousands separators
        r"[0-9]+(?:[.,][0-9]+)+",
        # reference keywords and the token with a digit after them: "inv-2026-00123",
        # "ref no: 12"
        rf"(?-u:\b)(?:(?:{_REFERENCE_WORDS})(?-u:\b)[\s.:#/\-]*)+{_REF_CHARS}*[0-9]{_REF_CHARS}*",
        # any ASCII token holding a run of 3+ digits: "inv202600123", "00123", "ab-12345"
        rf"{_REF_CHARS}*[0-9]{{3,}}{_REF_CHARS}*",
        r"#[0-9]+",
    ]
)
_NAME_SYMBOLS = {"&": " and ", "'": "", "’": "", "‘": "", "`": "", "´": ""}
_NOT_NAME_CHARACTER = r"[^\p{L}\p{N}\p{M}]+"
# Runs of characters other than letters, digits and marks, except a lone space (the common
# case, left alone so that the pass rarely has anything to rewrite).
_NAME_PUNCTUATION = r"[^\p{L}\p{N}\p{M} ]|[^\p{L}\p{N}\p{M}]{2,}"
# Chinese / Japanese company forms: written against the name ("金港貿易有限公司"; 株式会社
# also before it), or standing alone after it ("金港貿易 (香港) 有限公司"). The character
# before a glued form must not be the end of a longer form (限, 份, 任), so that a name that
# is only a form ("有限公司") is kept whole rather than cut to "有限".
_CJK_COMPANY_FORMS = "股份有限公司|有限責任公司|有限责任公司|有限公司|公司|株式會社|株式会社"
_CJK_COMPANY = (
    rf"([^\s限份任])(?:{_CJK_COMPANY_FORMS})(\s|$)"
    r"|(^|\s)(?:株式會社|株式会社)(\S)"
    rf"|(?:\s(?:{_CJK_COMPANY_FORMS}|香港))+(\s|$)"
)
# Legal-form words, removed wherever they stand except as the first word of the name (each
# alternative needs a space before it), so a name is never reduced to nothing.
_LEGAL_WORDS = (
    "and company|and co|company|corporation|corp|incorporated|inc|limited|ltd|co|llc|llp|"
    "plc|pte|pty|gmbh|sdn|bhd|hong kong|hk"
)
_LEGAL_WORD = rf"\s(?:{_LEGAL_WORDS})\b"
# narrative words a bank puts between the channel and the payer ("AUTOPAY DR SALARY WONG ...",
# "FPS CR PAYMENT FROM ..."), removed from the start of the rest
_NARRATIVE_LEAD = (
    r"^(?:(?:salary|salaries|payroll|wages|commission|bonus|allowance|mpf|payment|pymt|pmt|"
    r"remittance|inward|outward|from|by|to|cr|dr|the)\s+)+"
)
# "Hong Kong" is written hk / hongkong / hong kong: one spelling, so the place never decides
_HONG_KONG = r"(?-u:\b)(?:hong kong|hongkong)(?-u:\b)"
_TITLES = "mr|mrs|ms|miss|mdm|dr"
_TITLE = rf"^(?:{_TITLES})\s+|\s+(?:{_TITLES})$"


def name_key(e: pl.Expr) -> pl.Expr:
    """Reduce a counterparty name or bank narrative to a name key for comparison.

    Steps: :func:`normalize_text`; drop a leading channel prefix (:func:`split_channel`);
    remove amounts (with their currency) and reference-like tokens (a keyword and a number
    such as ``inv-2026-00123`` or ``ref no 12``, any token with a run of 3+ digits, ``#12``);
    ``&`` becomes ``and``; apostrophes are dropped; other punctuation becomes a space
    (letters of every script, digits and combining marks are kept); Chinese/Japanese company
    forms written against the name (``有限公司``, ``公司``, ``股份有限公司``, ``株式會社``)
    are removed; legal-form words (``limited``, ``ltd``, ``co``, ``company``, ``corp``,
    ``inc``, ``llc``, ``plc``, ``hk``, ``(hk)``, ``hong kong``, ``香港``, ...) are removed
    wherever they stand *except as the first word*, so a name is never reduced to nothing
    (``hk ltd`` -> ``hk``); a title (``mr``, ``mrs``, ``ms``, ``miss``, ``mdm``, ``dr``) is
    removed at the start or end of a name of two or more words. A key without a letter is
    no name (null).

    Parameters
    ----------
    e
        A ``String`` expression: a ledger counterparty, or bank description/counterparty
        text.

    Returns
    -------
    pl.Expr
        ``String``: words separated by single spaces; null where the input is null or
        nothing of a name is left.

    Examples
    --------
    >>> df = pl.DataFrame({"t": [
    ...     "FPS CR KAM WING TRADING CO LTD INV-2026-00123",
    ...     "Kam Wing Trading Company Limited",
    ...     "金港貿易有限公司",
    ...     "ＣＨＡＮ　ＴＡＩ　ＭＡＮ",
    ... ]})
    >>> df.select(name_key(pl.col("t")))["t"].to_list()
    ['kam wing trading', 'kam wing trading', '金港貿易', 'chan tai man']
    """
    _, rest = split_channel(normalize_text(e))
    words = (
        rest.str.replace(_NARRATIVE_LEAD, "")
        .str.replace_all(_HONG_KONG, "hk")
        .str.replace_all(_NAME_NOISE, " ")
        .str.replace_many(list(_NAME_SYMBOLS), list(_NAME_SYMBOLS.values()))
        .str.replace_all(_NAME_PUNCTUATION, " ")
        .str.strip_chars(" ")
    )
    return (
        _rewrite_where(
            words,
            _is_wide,
            lambda text: text.str.replace_all(_CJK_COMPANY, "${1}${2}${3}${4}${5}"),
        )
        .str.replace_all(_LEGAL_WORD, "")
        .str.replace_all(_TITLE, "")
        .str.strip_chars(" ")
        .str.replace(r"^[^\p{L}]*$", "")  # digits alone ("12 10") are no name
        .replace("", None)
    )


# --------------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------------

#: reference strength levels, weakest first (cast to ``pl.Enum(REFERENCE_STRENGTH_LEVELS)``
#: to compare or sort them)
REFERENCE_STRENGTH_LEVELS: tuple[str, ...] = ("none", "partial", "serial", "full")

_MIN_KEY_DIGITS = 3
_MAX_KEY_DIGITS = 12
_MAX_TRUNCATED_DIGITS = 4  # a truncated reference lost at most this many trailing digits
_YEAR = "(?:19|20)[0-9]{2}"
_LAST_DIGIT_RUN = r"([0-9]+)[^0-9]*$"
_YEAR_PREFIXED_RUN = rf"^{_YEAR}([0-9]{{4,}})$"  # 8+ digits starting with a year
# the year of a reference: the start of its last digit run (8+ digits), or the digit run
# just before the last one when that is exactly a year ("inv-2026-00123")
_REFERENCE_YEAR = rf"(?:^|[^0-9])({_YEAR})(?:[0-9]{{4,}}|[^0-9]+[0-9]+)[^0-9]*$"

# Numbers in free text that are plainly not references: amounts and separated dates. Each
# must be a whole numeric token, so the pattern takes the character before it and the one
# or two after it (and puts them back); the regex engine has no look-around. A match eats
# the character after it, so a second pass catches the next of two adjacent amounts.
_AMOUNT_TOKEN = (
    r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]{1,3})?"  # 1,234 / 1,234.50
    r"|[0-9]{1,3}(?:\.[0-9]{3})+,[0-9]{1,3}"  # 1.234,50
    r"|[0-9]+[.,][0-9]{1,3}"  # 1234.50 / 12,5
)
_DATE_TOKEN = (
    rf"{_YEAR}[-/.][0-9]{{1,2}}[-/.][0-9]{{1,2}}"  # 2026-10-03
    r"|[0-9]{1,2}[-/.][0-9]{1,2}[-/.](?:19|20)?[0-9]{2}"  # 03/10/2026, 3.10.26
)
_NON_REFERENCE_NUMBER = (
    rf"(^|[^0-9.,])(?:{_AMOUNT_TOKEN}|{_DATE_TOKEN})([^0-9.,/\-]|[.,/\-][^0-9]|[.,/\-]?$)"
)
# a digit run of 8..16 digits starting with a year: append the part after the year as an
# extra run ("inv202600123" -> "inv202600123 00123"); again two passes for adjacent runs
_YEAR_RUN = rf"(^|[^0-9])({_YEAR})([0-9]{{4,{_MAX_KEY_DIGITS}}})([^0-9]|$)"


def _replace_all_twice(e: pl.Expr, pattern: str, replacement: str) -> pl.Expr:
    """``e.str.replace_all(pattern, replacement)`` applied twice (for adjacent matches, whose
    first eats the character the second needs), the second pass only on the rows the first
    changed: a row the first pass left as it was has nothing for the second pass either."""
    f = pl.field
    stage = pl.struct(text=e).struct.with_fields(
        once=f("text").str.replace_all(pattern, replacement)
    )
    changed = f("once") != f("text")
    again = pl.when(changed).then(f("once")).otherwise(pl.lit("")).str.replace_all(
        pattern, replacement
    )
    twice = stage.struct.with_fields(
        text=pl.when(changed).then(again).otherwise(f("once"))
    ).struct.field("text")
    name = e.meta.output_name(raise_if_undetermined=False)  # keep the input's column name
    return twice if name is None else twice.alias(name)


def _reference_text(e: pl.Expr) -> pl.Expr:
    """Width-folded text with amounts and separated dates blanked out."""
    return _replace_all_twice(_fold_width(e), _NON_REFERENCE_NUMBER, "${1} ${2}")


def _with_year_tails(text: pl.Expr) -> pl.Expr:
    """Append the part after the year to each year-prefixed digit run (``_YEAR_RUN``)."""
    return _replace_all_twice(text, _YEAR_RUN, "${1}${2}${3} ${3}${4}")


def _keys_from_runs(runs: pl.Expr) -> pl.Expr:
    """List of digit runs -> deduplicated non-zero Int64 keys of 3..12 digits, in text order."""
    run = pl.element()
    as_key = (
        pl.when(run.str.len_bytes().is_between(_MIN_KEY_DIGITS, _MAX_KEY_DIGITS))
        .then(run)
        .cast(pl.Int64, strict=False)
        .replace(0, None)
    )
    return runs.list.eval(as_key).list.eval(pl.element().drop_nulls().unique(maintain_order=True))


def reference_serial(e: pl.Expr) -> pl.Expr:
    """Serial number of a ledger reference: the integer value of its last digit group.

    When that group has 8 or more digits and starts with a plausible year (19xx or 20xx), the
    digits after the year are the serial (``INV202600123`` -> 123).

    Parameters
    ----------
    e
        A ``String`` expression holding ledger references (``INV-2026-00123``,
        ``RCPT-000123``, ``PO 4411``, bare numbers).

    Returns
    -------
    pl.Expr
        ``Int64``; null when there is no digit, the serial is 0, or it does not fit in
        ``Int64``.

    Examples
    --------
    >>> df = pl.DataFrame({"r": ["INV-2026-00123", "RCPT-000123", "INV202600123", "PO 4411", "N/A"]})
    >>> df.select(reference_serial(pl.col("r")))["r"].to_list()
    [123, 123, 123, 4411, None]
    """
    return (
        _fold_width(e)
        .str.extract(_LAST_DIGIT_RUN, 1)
        .str.replace(_YEAR_PREFIXED_RUN, "${1}")
        .cast(pl.Int64, strict=False)
        .replace(0, None)
    )


def reference_digits(e: pl.Expr) -> pl.Expr:
    """All digits of a reference concatenated (``INV-2026-00123`` -> ``"202600123"``).

    Parameters
    ----------
    e
        A ``String`` expression.

    Returns
    -------
    pl.Expr
        ``String``; null when the input is null or holds no digit.

    Examples
    --------
    >>> df = pl.DataFrame({"r": ["INV-2026-00123", "ＰＯ　４４１１", "N/A"]})
    >>> df.select(reference_digits(pl.col("r")))["r"].to_list()
    ['202600123', '4411', None]
    """
    return _fold_width(e).str.replace_all("[^0-9]+", "").replace("", None)


def text_reference_keys(e: pl.Expr) -> pl.Expr:
    """Every candidate reference serial found in free bank text, for an equality join.

    Keys are, for each digit group of 3 to 12 digits, its integer value (so ``00123`` and
    ``#123`` give 123); and for each group of 8 to 16 digits that starts with 19xx/20xx, the
    integer after the four year digits (``inv202600123`` gives 202600123 and 123). Split
    forms (``inv 2026 00123``, ``inv/2026/00123``) give 2026 and 123.

    Numbers that are plainly not references are skipped: amounts (``1,234.50``, ``1234.50``,
    ``1.234,50``) and separated dates (``2026-10-03``, ``03/10/2026``). Compact dates
    (``20261003``) are kept, because they look exactly like ``INV20261003``; so are phone
    numbers. Recall matters more than precision here: the scorer grades each joined pair with
    :func:`reference_strength`.

    Parameters
    ----------
    e
        A ``String`` expression: bank description, reference, or both concatenated.

    Returns
    -------
    pl.Expr
        ``List(Int64)``: distinct keys in order of appearance; empty when there is none; null
        when the input is null. Before joining on it, ``explode`` and drop the nulls that
        empty lists become.

    Examples
    --------
    >>> df = pl.DataFrame({"t": ["FPS INV-2026-00123", "inv202600123", "HKD 1,234.50", "#456"]})
    >>> df.select(text_reference_keys(pl.col("t")))["t"].to_list()
    [[2026, 123], [202600123, 123], [], [456]]
    """
    runs = (
        _with_year_tails(_reference_text(e)).str.extract_all("[0-9]+")
    )
    return _keys_from_runs(runs)


def text_digits(e: pl.Expr) -> pl.Expr:
    """All digit groups of the text joined by a single space, for fuzzy digit comparison.

    Every group is kept, amounts and dates included (full-width digits are folded).

    Parameters
    ----------
    e
        A ``String`` expression.

    Returns
    -------
    pl.Expr
        ``String``; ``""`` when there is no digit; null when the input is null.

    Examples
    --------
    >>> df = pl.DataFrame({"t": ["inv/2026/00123 paid 1,234.50", "no digits"]})
    >>> df.select(text_digits(pl.col("t")))["t"].to_list()
    ['2026 00123 1 234 50', '']
    """
    return _fold_width(e).str.replace_all("[^0-9]+", " ").str.strip_chars(" ")


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
    return normalize_text(e).str.replace_all(_NOT_NAME_CHARACTER, "")


# --------------------------------------------------------------------------------------------
# reference_strength
# --------------------------------------------------------------------------------------------

# Digit runs are wrapped in "|" after everything but letters and digits is removed, so a
# match can be required to cover whole digit runs: "inv-2026-00123" -> "inv|2026||00123|",
# and with the runs joined ("||" removed) "inv|202600123|". "|" itself never survives the
# removal, so it cannot come from the text.
_MARK = "|"


def _marked(text: pl.Expr) -> pl.Expr:
    """Letters and digits only, each digit group wrapped in ``_MARK``."""
    return text.str.replace_all("[0-9]+", f"{_MARK}${{0}}{_MARK}").str.replace_all(
        rf"[^\p{{L}}\p{{N}}\p{{M}}{_MARK}]+", ""
    )


def _digit_signature(value: pl.Expr) -> pl.Expr:
    """Multiset of the decimal digits of a non-negative Int64 (up to 12 digits) as one Int64.

    Each digit d adds 16**d, so two numbers share a signature exactly when one is a
    rearrangement of the other's digits (132 and 123; not 1023 and 123).
    """
    return pl.sum_horizontal(
        pl.when(value >= 10**place)
        .then(pl.lit(16, pl.Int64).pow((value // 10**place) % 10))
        .otherwise(0)
        for place in range(_MAX_KEY_DIGITS)
    )


def _contains(haystack: pl.Expr, needle: pl.Expr) -> pl.Expr:
    return haystack.str.contains(needle, literal=True).fill_null(False)


_MARKED_YEAR_RUN = rf"\{_MARK}({_YEAR})([0-9]{{4,{_MAX_KEY_DIGITS}}})\{_MARK}"


def bank_reference_profile(bank_text: pl.Expr) -> pl.Expr:
    """The bank-text side of :func:`reference_strength`, to compute once per bank line.

    :func:`reference_strength` works on candidate pairs, where each bank line is repeated
    once per ledger item it is paired with. Computing this profile per bank line and joining
    it onto the pairs, then calling :func:`reference_strength_from_profile`, does the
    bank-side work once instead of once per pair.

    Parameters
    ----------
    bank_text
        ``String`` expression: the bank line's free text (description and reference).

    Returns
    -------
    pl.Expr
        ``Struct`` named ``reference_profile`` with ``marked`` (``String``: letters and
        digits with each digit group wrapped in ``|``, amounts and dates removed), ``keys``
        (``List(Int64)``, equal to :func:`text_reference_keys`) and ``signatures``
        (``List(Int64)``: each key's digit multiset); the fields are null where the text is
        null.

    Examples
    --------
    >>> df = pl.DataFrame({"t": ["FPS INV-2026-00123 HKD 1,234.50"]})
    >>> df.select(bank_reference_profile(pl.col("t")).struct.unnest()).row(0)[:2]
    ('fpsinv|2026||00123|hkd', [2026, 123])
    """
    f = pl.field
    marked = _marked(_reference_text(bank_text).str.to_lowercase())
    runs_with_year_tails = f("marked").str.replace_all(
        _MARKED_YEAR_RUN, f"{_MARK}${{1}}${{2}}{_MARK}{_MARK}${{2}}{_MARK}"
    )
    profile = (
        pl.struct(marked=marked)
        .struct.with_fields(keys=_keys_from_runs(runs_with_year_tails.str.extract_all("[0-9]+")))
        .struct.with_fields(signatures=f("keys").list.eval(_digit_signature(pl.element())))
    )
    return profile.alias("reference_profile")


def reference_strength(bank_text: pl.Expr, ledger_reference: pl.Expr) -> pl.Expr:
    """How strongly the bank text carries the ledger reference, row-wise on candidate pairs.

    Levels, strongest first (the first that holds is returned):

    ``"full"``
        The ledger reference's letters and digits (``inv202600123``) appear in the bank
        text's letters and digits, its digit groups either as written or run together
        (``INV-2026-00123`` in ``inv202600123``, ``INV202600123`` in ``inv/2026/00123``); or
        the bank text holds the reference's year followed by its serial (``2026 00123``,
        ``2026/123``, ``202600123``). A match must cover whole digit groups:
        ``inv-2026-0012`` is not found in ``inv-2026-00123``, nor ``123`` in ``1,123.50``
        (amounts and separated dates in the bank text are ignored). References with fewer
        than 3 letters and digits are never ``"full"``.
    ``"serial"``
        The reference serial (:func:`reference_serial`) is one of the bank text's keys
        (:func:`text_reference_keys`), so leading zeros do not matter: ``00123`` or ``#123``
        for ``INV-2026-00123``.
    ``"partial"``
        A bank key has the same digits as the serial in another order (``00132`` for
        ``00123``), or is a prefix of at least 3 digits of the serial as written, alone or
        after the reference's year, with 1 to 4 trailing digits cut off (``001``,
        ``2026001`` for ``INV-2026-00123``: a truncated reference). A weak signal.
    ``"none"``
        Otherwise, and whenever either side is null or the reference has no digit and fewer
        than 3 letters.

    Parameters
    ----------
    bank_text
        ``String`` expression: the bank line's free text (description and reference).
    ledger_reference
        ``String`` expression: the ledger item's reference, in the same frame.

    Returns
    -------
    pl.Expr
        ``String`` named ``reference_strength``, holding one of
        :data:`REFERENCE_STRENGTH_LEVELS`; never null.

    Examples
    --------
    >>> df = pl.DataFrame({
    ...     "text_bank": ["FPS INV202600123", "inv 2026 00123", "paid 00123", "INV-2026-00132",
    ...                   "INV-2026-001", "HKD 1,123.50"],
    ...     "reference_ledger": ["INV-2026-00123"] * 6,
    ... })
    >>> strength = reference_strength(pl.col("text_bank"), pl.col("reference_ledger"))
    >>> df.select(strength)["reference_strength"].to_list()
    ['full', 'full', 'serial', 'partial', 'partial', 'none']
    """
    return reference_strength_from_profile(bank_reference_profile(bank_text), ledger_reference)


def ledger_reference_profile(ledger_reference: pl.Expr) -> pl.Expr:
    """The ledger side of :func:`reference_strength`, to compute once per ledger item (like
    :func:`bank_reference_profile` for the bank side) rather than once per candidate pair.

    Parameters
    ----------
    ledger_reference
        ``String`` expression: the ledger item's reference.

    Returns
    -------
    pl.Expr
        ``Struct`` named ``ledger_reference_profile``: the reference folded to lower case
        (``text``), its letters and digits with its digit groups marked (``marked``) and run together (``joined``), their count
        (``size``), its year (``year``, ``year_value``) and serial (``serial``, its value
        ``serial_value``, its length ``serial_length`` and digit multiset
        ``serial_signature``).

    Examples
    --------
    >>> df = pl.DataFrame({"r": ["INV-2026-00123"]})
    >>> df.select(ledger_reference_profile(pl.col("r")).struct.unnest()).row(0)[:6]
    ('inv-2026-00123', 'inv|2026||00123|', '2026', '00123', 'inv|202600123|', 12)
    """
    f = pl.field
    # Each stage is materialized once as a struct field and read by the next stage.
    stage = pl.struct(text=_fold_width(ledger_reference).str.to_lowercase()).struct.with_fields(
        marked=_marked(f("text")),
        year=f("text").str.extract(_REFERENCE_YEAR, 1),
        serial=f("text").str.extract(_LAST_DIGIT_RUN, 1).str.replace(_YEAR_PREFIXED_RUN, "${1}"),
    )
    stage = stage.struct.with_fields(
        joined=f("marked").str.replace_all(_MARK * 2, "", literal=True),
        size=f("marked").str.len_chars() - f("marked").str.count_matches(_MARK, literal=True),
        year_value=f("year").cast(pl.Int64),
        serial_value=f("serial").cast(pl.Int64, strict=False).replace(0, None),
        serial_length=f("serial").str.len_bytes().cast(pl.Int64),
    )
    stage = stage.struct.with_fields(serial_signature=_digit_signature(f("serial_value")))
    return stage.alias("ledger_reference_profile")


def reference_strength_from_profile(bank_profile: pl.Expr, ledger_reference: pl.Expr) -> pl.Expr:
    """:func:`reference_strength` with the bank side precomputed by :func:`bank_reference_profile`.

    Parameters
    ----------
    bank_profile
        ``Struct`` expression made by :func:`bank_reference_profile`.
    ledger_reference
        ``String`` expression: the ledger item's reference, in the same frame.

    Returns
    -------
    pl.Expr
        ``String`` named ``reference_strength``; see :func:`reference_strength`.

    Examples
    --------
    >>> bank = pl.DataFrame({"id": ["b1"], "text": ["kam wing inv 2026 00123"]})
    >>> bank = bank.with_columns(bank_reference_profile(pl.col("text")))
    >>> pairs = pl.DataFrame({"id": ["b1", "b1"], "reference": ["INV-2026-00123", "INV-2026-00999"]})
    >>> pairs = pairs.join(bank, on="id")
    >>> strength = reference_strength_from_profile(pl.col("reference_profile"), pl.col("reference"))
    >>> pairs.select(strength)["reference_strength"].to_list()
    ['full', 'none']
    """
    return reference_strength_from_profiles(bank_profile, ledger_reference_profile(ledger_reference))


def reference_strength_from_profiles(bank_profile: pl.Expr, ledger_profile: pl.Expr) -> pl.Expr:
    """:func:`reference_strength` on both precomputed sides: ``bank_profile`` from
    :func:`bank_reference_profile`, ``ledger_profile`` from :func:`ledger_reference_profile`
    (``Struct`` expressions in the same frame). Returns ``String`` ``reference_strength``."""
    f = pl.field
    stage = pl.struct(bank=bank_profile, ledger=ledger_profile).struct.with_fields(
        bank_marked=f("bank").struct.field("marked"),
        bank_keys=f("bank").struct.field("keys"),
        bank_signatures=f("bank").struct.field("signatures"),
        ledger_marked=f("ledger").struct.field("marked"),
        ledger_joined=f("ledger").struct.field("joined"),
        ledger_size=f("ledger").struct.field("size"),
        year=f("ledger").struct.field("year"),
        serial=f("ledger").struct.field("serial"),
        year_value=f("ledger").struct.field("year_value"),
        serial_value=f("ledger").struct.field("serial_value"),
        serial_length=f("ledger").struct.field("serial_length"),
        serial_signature=f("ledger").struct.field("serial_signature"),
    )

    bank_marked, keys = f("bank_marked"), f("bank_keys")
    year, serial, value, length = f("year"), f("serial"), f("serial_value"), f("serial_length")
    full = (f("ledger_size") >= _MIN_KEY_DIGITS) & pl.any_horizontal(
        _contains(bank_marked, f("ledger_marked")),
        _contains(bank_marked, f("ledger_joined")),
        _contains(bank_marked, pl.concat_str(pl.lit(_MARK), year, serial, pl.lit(_MARK))),
        _contains(
            bank_marked,
            pl.concat_str(pl.lit(_MARK), year, pl.lit(_MARK * 2), serial, pl.lit(_MARK)),
        ),
        _contains(
            bank_marked,
            pl.concat_str(
                pl.lit(_MARK), year, pl.lit(_MARK * 2), value.cast(pl.String), pl.lit(_MARK)
            ),
        ),
    )
    serial_found = keys.list.contains(value).fill_null(False)
    # truncation: the first k digits of the zero-padded serial, alone or glued to the year,
    # as integers like the keys; k >= 3 and at most _MAX_TRUNCATED_DIGITS digits cut off
    truncated = []
    for cut in range(1, _MAX_TRUNCATED_DIGITS + 1):
        prefix = pl.when(length - cut >= _MIN_KEY_DIGITS).then(value // 10**cut)
        truncated.append(keys.list.contains(prefix).fill_null(False))
        glued = f("year_value") * pl.lit(10, pl.Int64).pow((length - cut).clip(0)) + prefix
        truncated.append(keys.list.contains(glued).fill_null(False))
    transposed = f("bank_signatures").list.contains(f("serial_signature")).fill_null(False)
    partial = (value.is_not_null() & (length >= _MIN_KEY_DIGITS)) & pl.any_horizontal(
        transposed, *truncated
    )

    strength = (
        pl.when(full.fill_null(False))
        .then(pl.lit("full"))
        .when(serial_found)
        .then(pl.lit("serial"))
        .when(partial.fill_null(False))
        .then(pl.lit("partial"))
        .otherwise(pl.lit("none"))
    )
    return stage.struct.with_fields(reference_strength=strength).struct.field(
        "reference_strength"
    )
