"""Text and reference normalization for the candidate and scoring stage.

The candidate generator joins bank lines to ledger items on cheap keys (reference serials,
counterparty name keys) and the scorer compares the pairs it gets back. Both sides must be
reduced to the same comparable form, and both stages work on whole columns, so everything
here is a *pure expression builder*: a function that takes ``pl.Expr`` and returns
``pl.Expr``. Nothing here executes a query, loops over rows in Python or calls
``map_elements``; the caller decides where the expressions run (``select``,
``with_columns``, a lazy plan).

Conventions
-----------
* Text is folded with :func:`normalize_text` (Unicode NFKC, lower case, whitespace collapsed)
  before anything else, so full-width letters and digits (``ＩＮＶ－００１２３``) behave like
  ASCII ones. Chinese characters are kept exactly as written: Traditional Chinese is compared
  as itself, never converted to Simplified or romanised.
* A null input gives a null output. Functions that produce a *key* (:func:`name_key`,
  :func:`reference_serial`, :func:`reference_digits`) also give null when nothing usable is
  left, so two empty keys never compare equal.
* Digits are ASCII ``0-9`` after NFKC. Other scripts' digits (e.g. Arabic-Indic) are not
  treated as digits.
* Output columns keep the name of the (leftmost) input column, as polars expressions do;
  use ``.alias`` to rename.
"""

from __future__ import annotations

import polars as pl

__all__ = [
    "CHANNELS",
    "REFERENCE_STRENGTH_LEVELS",
    "alnum_text",
    "name_key",
    "normalize_text",
    "reference_digits",
    "reference_serial",
    "reference_strength",
    "split_channel",
    "text_digits",
    "text_reference_keys",
]

# --------------------------------------------------------------------------------------------
# normalize_text
# --------------------------------------------------------------------------------------------

#: characters whose full case folding differs from lower-casing (after NFKC)
_CASE_FOLD_EXTRA = {"ß": "ss", "ς": "σ"}


def normalize_text(e: pl.Expr) -> pl.Expr:
    """Fold text to a canonical comparable form.

    Unicode NFKC (full-width forms to ASCII, compatibility ligatures expanded), invisible
    format characters (zero-width space, BOM, soft hyphen) removed, case folded to lower case,
    every run of whitespace or control characters (tabs, newlines, NBSP, ideographic space
    U+3000) collapsed to one ASCII space, leading and trailing spaces stripped.

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
    return (
        e.str.normalize("NFKC")
        .str.replace_all(r"\p{Cf}+", "")
        .str.to_lowercase()
        .str.replace_many(list(_CASE_FOLD_EXTRA), list(_CASE_FOLD_EXTRA.values()))
        .str.replace_all(r"[\s\p{Cc}]+", " ")
        .str.strip_chars(" ")
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
# longest spelling first: regex alternation is leftmost-first, so this makes the longest
# matching prefix win ("fps cr" before "fps", "autopay dr" before "autopay")
_CHANNEL_ALTERNATION = "|".join(
    f"{_SEP}*".join(word for word in spelling.split(" "))
    for spelling in sorted(CHANNELS, key=lambda s: (-len(_compact(s)), s))
)
_CHANNEL_PREFIX = rf"(?i)^\s*({_CHANNEL_ALTERNATION})(?:{_SEP}+|$)"
# "so" is also a common Hong Kong surname (蘇): "so tai man" is a name, "so: rent" or
# "so 12345" is a standing order. Plain-space "so" followed by a letter is not a channel.
_SO_SURNAME = r"(?i)^\s*so +[^0-9 :/*\-]"


def split_channel(e: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Separate a leading bank channel prefix (``FPS CR``, ``TT IN``, ...) from the narrative.

    The longest known prefix wins; it must be followed by a separator (space, ``:``, ``-``,
    ``/``, ``*``) or the end of the text, so ``posh ltd`` has no channel. See
    :data:`CHANNELS` for the recognised spellings.

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
        when there is no prefix; null when the input is null.

    Examples
    --------
    >>> df = pl.DataFrame({"t": ["fps cr kam wing trading", "tt-in: acme", "posh ltd"]})
    >>> channel, rest = split_channel(pl.col("t"))
    >>> df.select(channel.alias("channel"), rest.alias("rest")).rows()
    [('FPS CR', 'kam wing trading'), ('TT IN', 'acme'), (None, 'posh ltd')]
    """
    is_surname = e.str.contains(_SO_SURNAME)
    matched = e.str.extract(_CHANNEL_PREFIX, 1)
    channel = (
        pl.when(is_surname)
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(
            matched.str.to_lowercase()
            .str.replace_all("[^a-z]", "")
            .replace_strict(_CHANNEL_BY_KEY, default=None, return_dtype=pl.String)
        )
    )
    rest = (
        pl.when(is_surname)
        .then(e)
        .otherwise(e.str.replace(_CHANNEL_PREFIX, ""))
        .str.strip_chars()
    )
    return channel, rest


# --------------------------------------------------------------------------------------------
# name_key
# --------------------------------------------------------------------------------------------

# a number with decimal or thousands separators: an amount, not part of a name or reference
_AMOUNT_IN_NAME = r"[0-9]+(?:[.,][0-9]+)+"
# reference keywords followed by a token holding a digit: "inv-2026-00123", "ref no: 12"
_REFERENCE_WORDS = r"inv|invoice|bill|rcpt|receipt|ref|reference|po|so|order|no|nos"
_KEYWORD_REFERENCE = (
    rf"\b(?:(?:{_REFERENCE_WORDS})\b[\s.:#/\-]*)+[a-z0-9/\-_.#:]*[0-9][a-z0-9/\-_.#:]*"
)
# any ASCII token with a run of 3+ digits ("inv202600123", "00123", "ab-12345"), or "#12"
_DIGIT_TOKEN = r"[a-z0-9/\-_.#:]*[0-9]{3,}[a-z0-9/\-_.#:]*|#[0-9]+"
_APOSTROPHES = r"['’‘`´]"
_PUNCTUATION = r"[^\p{L}\p{N}\p{M}\s]+"
# Chinese / Japanese company forms written directly after the name (no space)
_CJK_SUFFIXES = "股份有限公司|有限責任公司|有限责任公司|有限公司|公司|株式會社|株式会社"
_CJK_SUFFIX_GLUED = rf"(\S)(?:{_CJK_SUFFIXES})(\s|$)"
_CJK_PREFIX_GLUED = r"(^|\s)(?:株式會社|株式会社)(\S)"
# legal-form words removed wherever they stand, except as the first word of the name
_LEGAL_WORDS = (
    "and company|and co|company|corporation|corp|incorporated|inc|limited|ltd|co|llc|llp|"
    "plc|pte|pty|gmbh|sdn|bhd|hong kong|hk|" + _CJK_SUFFIXES + "|香港"
)
_LEGAL_WORD = rf"\s(?:{_LEGAL_WORDS})\b"
_TITLES = "mr|mrs|ms|miss|mdm|dr"
_LEADING_TITLE = rf"^(?:{_TITLES})\s+"
_TRAILING_TITLE = rf"\s+(?:{_TITLES})$"


def name_key(e: pl.Expr) -> pl.Expr:
    """Reduce a counterparty name or bank narrative to a name key for comparison.

    Steps: :func:`normalize_text`; drop a leading channel prefix (:func:`split_channel`);
    remove amounts and reference-like tokens (keyword + number such as ``inv-2026-00123`` or
    ``ref no 12``, any token with a run of 3+ digits, ``#12``); ``&`` becomes ``and``;
    apostrophes are dropped; other punctuation becomes a space (letters of every script,
    digits and combining marks are kept); glued Chinese/Japanese company forms
    (``有限公司``, ``公司``, ``股份有限公司``, ``株式會社``) are removed; legal-form words
    (``limited``, ``ltd``, ``co``, ``company``, ``corp``, ``inc``, ``llc``, ``plc``, ``hk``,
    ``(hk)``, ``香港``, ...) are removed wherever they stand *except as the first word*, so a
    name is never reduced to nothing (``hk ltd`` -> ``hk``); a title (``mr``, ``mrs``, ``ms``,
    ``miss``, ``mdm``, ``dr``) is removed at the start or end of a multi-word name; spaces
    are collapsed.

    Parameters
    ----------
    e
        A ``String`` expression: a ledger counterparty, or bank description/counterparty
        text.

    Returns
    -------
    pl.Expr
        ``String``; null where the input is null or nothing of a name is left.

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
    key = (
        rest.str.replace_all(_AMOUNT_IN_NAME, " ")
        .str.replace_all(_KEYWORD_REFERENCE, " ")
        .str.replace_all(_DIGIT_TOKEN, " ")
        .str.replace_all("&", " and ", literal=True)
        .str.replace_all(_APOSTROPHES, "")
        .str.replace_all(_PUNCTUATION, " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars(" ")
        .str.replace_all(_CJK_SUFFIX_GLUED, "${1}${2}")
        .str.replace_all(_CJK_PREFIX_GLUED, "${1}${2}")
        .str.replace_all(_LEGAL_WORD, "")
        .str.replace(_LEADING_TITLE, "")
        .str.replace(_TRAILING_TITLE, "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars(" ")
    )
    return pl.when(key.str.len_bytes() > 0).then(key)


# --------------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------------

#: reference strength levels, weakest first (cast to ``pl.Enum(REFERENCE_STRENGTH_LEVELS)``
#: to compare or sort them)
REFERENCE_STRENGTH_LEVELS: tuple[str, ...] = ("none", "partial", "serial", "full")

_YEAR_PREFIXED = r"^(?:19|20)[0-9]{2}([0-9]{4,})$"  # >= 8 digits starting with a year
_YEAR = r"^(?:19|20)[0-9]{2}$"
_MIN_KEY_DIGITS = 3
_MAX_KEY_DIGITS = 12

# Free text is cut into numeric tokens (digit runs joined by . , / -), each wrapped in
# markers so that amounts and dates can be recognised as *whole* tokens (the regex engine has
# no look-around). Control characters never survive normalize_text, so they are safe markers.
_OPEN, _CLOSE, _MARK = "\x02", "\x03", "\x04"
_NUMERIC_TOKEN = r"[0-9]+(?:[.,/\-][0-9]+)*"
_AMOUNT_TOKEN = (
    r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]{1,3})?"  # 1,234 / 1,234.50
    r"|[0-9]{1,3}(?:\.[0-9]{3})+,[0-9]{1,3}"  # 1.234,50
    r"|[0-9]+[.,][0-9]{1,3}"  # 1234.50 / 12,5
)
_DATE_TOKEN = (
    r"(?:19|20)[0-9]{2}[-/.][0-9]{1,2}[-/.][0-9]{1,2}"  # 2026-10-03
    r"|[0-9]{1,2}[-/.][0-9]{1,2}[-/.](?:19|20)?[0-9]{2}"  # 03/10/2026, 3.10.26
)
_NON_REFERENCE_TOKEN = f"{_OPEN}(?:{_AMOUNT_TOKEN}|{_DATE_TOKEN}){_CLOSE}"


def _numeric_text(e: pl.Expr) -> pl.Expr:
    """Normalized text with amount and date tokens blanked out (markers removed again)."""
    return (
        normalize_text(e)
        .str.replace_all(_NUMERIC_TOKEN, f"{_OPEN}${{0}}{_CLOSE}")
        .str.replace_all(_NON_REFERENCE_TOKEN, " ")
        .str.replace_all(f"[{_OPEN}{_CLOSE}]", "")
    )


def _digit_groups(text: pl.Expr) -> pl.Expr:
    return text.str.extract_all("[0-9]+")


def _year_stripped(groups: pl.Expr, min_digits: int) -> pl.Expr:
    """Per list element: the digits after a leading 19xx/20xx year, for long enough groups."""
    return groups.list.eval(
        pl.element().filter(
            (pl.element().str.len_bytes() >= min_digits)
            & (pl.element().str.len_bytes() <= _MAX_KEY_DIGITS + 4)
            & pl.element().str.contains("^(?:19|20)")
        ).str.slice(4)
    )


def _to_keys(digit_strings: pl.Expr) -> pl.Expr:
    """List of digit strings -> sorted unique non-zero Int64 keys."""
    key = pl.element().cast(pl.Int64, strict=False)
    return digit_strings.list.eval(key.filter(key > 0).unique().sort())


def _serial_digits(text: pl.Expr) -> pl.Expr:
    """Serial of a normalized reference as its digit string ("00123"), or null."""
    last = text.str.extract(r"([0-9]+)[^0-9]*$", 1)
    return pl.coalesce(last.str.extract(_YEAR_PREFIXED, 1), last)


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
    serial = _serial_digits(normalize_text(e)).cast(pl.Int64, strict=False)
    return pl.when(serial > 0).then(serial)


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
    digits = normalize_text(e).str.replace_all("[^0-9]+", "")
    return pl.when(digits.str.len_bytes() > 0).then(digits)


def text_reference_keys(e: pl.Expr) -> pl.Expr:
    """Every candidate reference serial found in free bank text, for an equality join.

    Keys are, for each digit group of 3 to 12 digits, its integer value (so ``00123`` and
    ``#123`` give 123); and for each group of 8 or more digits that starts with 19xx/20xx, the
    integer after the four year digits (``inv202600123`` gives 202600123 and 123). Split forms
    (``inv 2026 00123``, ``inv/2026/00123``) give 2026 and 123.

    Numbers that are plainly not references are skipped: amounts (``1,234.50``, ``1234.50``,
    ``1.234,50``) and separated dates (``2026-10-03``, ``03/10/2026``). Compact dates
    (``20261003``) are kept (they look exactly like ``INV20261003``); so are phone numbers.
    Recall matters more than precision here: the scorer grades each joined pair with
    :func:`reference_strength`.

    Parameters
    ----------
    e
        A ``String`` expression: bank description, reference, or both concatenated.

    Returns
    -------
    pl.Expr
        ``List(Int64)``, sorted and deduplicated; empty when there is no key; null when the
        input is null. Before joining on it, ``explode`` and drop the nulls that empty lists
        become.

    Examples
    --------
    >>> df = pl.DataFrame({"t": ["FPS INV-2026-00123", "inv202600123", "HKD 1,234.50", "#456"]})
    >>> df.select(text_reference_keys(pl.col("t")))["t"].to_list()
    [[123, 2026], [123, 202600123], [], [456]]
    """
    groups = _digit_groups(_numeric_text(e))
    direct = groups.list.eval(
        pl.element().filter(
            pl.element().str.len_bytes().is_between(_MIN_KEY_DIGITS, _MAX_KEY_DIGITS)
        )
    )
    return _to_keys(direct.list.concat(_year_stripped(groups, min_digits=8)))


def text_digits(e: pl.Expr) -> pl.Expr:
    """All digit groups of the text joined by a single space, for fuzzy digit comparison.

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
    return _digit_groups(normalize_text(e)).list.join(" ")


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
    return normalize_text(e).str.replace_all(r"[^\p{L}\p{N}\p{M}]+", "")


def _mark_digit_runs(text: pl.Expr) -> pl.Expr:
    return text.str.replace_all("[0-9]+", f"{_MARK}${{0}}{_MARK}")


def _glued_form(text: pl.Expr) -> pl.Expr:
    """Alnum form, digit runs marked: 'inv 2026 00123' -> '|inv|202600123|' (| = marker)."""
    return _mark_digit_runs(text.str.replace_all(r"[^\p{L}\p{N}\p{M}]+", ""))


def _split_form(text: pl.Expr) -> pl.Expr:
    """Alnum form, each original digit run marked: 'inv 2026 00123' -> 'inv|2026||00123|'."""
    return _mark_digit_runs(text).str.replace_all(rf"[^\p{{L}}\p{{N}}\p{{M}}{_MARK}]+", "")


def _digit_signature(digits: pl.Expr) -> pl.Expr:
    """Digits sorted ("00132" -> "00123"): equal signatures = same digits in any order."""
    return digits.str.split("").list.sort().list.join("")


def _contains(haystack: pl.Expr, needle: pl.Expr) -> pl.Expr:
    return haystack.str.contains(needle, literal=True).fill_null(False)


def reference_strength(bank_text: pl.Expr, ledger_reference: pl.Expr) -> pl.Expr:
    """How strongly the bank text carries the ledger reference, row-wise on candidate pairs.

    Levels, strongest first (the first that holds is returned):

    ``"full"``
        The ledger reference's alnum form (``inv202600123``) appears in the bank text's alnum
        form, the reference's digit groups laid out either as written or run together; or
        the bank text holds the reference's year followed by its serial (``2026 00123``,
        ``2026/123``, ``202600123``). A match must cover whole digit runs: ``inv-2026-0012``
        is not found in ``inv-2026-00123``, nor ``123`` in ``1,123.50`` (amounts and dates in
        the bank text are ignored). References shorter than 3 letters/digits are never
        ``"full"``.
    ``"serial"``
        The reference serial (:func:`reference_serial`) is one of the bank text's keys
        (:func:`text_reference_keys`), ignoring leading zeros: ``00123`` or ``#123`` for
        ``INV-2026-00123``.
    ``"partial"``
        A bank digit group (3 to 12 digits, or the part after a year in a longer group) has
        the same digits as the reference's serial in another order (``00132``; compared both
        as written and without leading zeros), or is a prefix of at least 3 digits of the
        serial as written (``001`` for ``00123``, a truncated reference). A weak signal.
    ``"none"``
        Otherwise, and whenever either side is null or the reference has no letter or digit.

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
    # bank side
    bank = _numeric_text(bank_text)
    bank_glued = _glued_form(bank)
    bank_split = _split_form(bank)
    bank_groups = _digit_groups(bank)
    bank_keys = _to_keys(
        bank_groups.list.eval(
            pl.element().filter(
                pl.element().str.len_bytes().is_between(_MIN_KEY_DIGITS, _MAX_KEY_DIGITS)
            )
        ).list.concat(_year_stripped(bank_groups, min_digits=8))
    )
    # candidates for a damaged serial: groups of 3..12 digits, and what follows a year in a
    # group of 7+ digits ("2026001" -> "001")
    bank_candidates = bank_groups.list.eval(
        pl.element().filter(
            pl.element().str.len_bytes().is_between(_MIN_KEY_DIGITS, _MAX_KEY_DIGITS)
        )
    ).list.concat(_year_stripped(bank_groups, min_digits=7))
    bank_signatures = bank_candidates.list.eval(
        pl.concat_list(
            _digit_signature(pl.element()),
            _digit_signature(pl.element().str.strip_chars_start("0")),
        ).explode()
    )

    # ledger side
    ledger = normalize_text(ledger_reference)
    ledger_alnum = ledger.str.replace_all(r"[^\p{L}\p{N}\p{M}]+", "")
    ledger_groups = _digit_groups(ledger)
    last = ledger_groups.list.last()
    previous = ledger_groups.list.get(-2, null_on_oob=True)
    year = pl.coalesce(
        last.str.extract(r"^((?:19|20)[0-9]{2})[0-9]{4,}$", 1),
        pl.when(previous.str.contains(_YEAR)).then(previous),
    )
    serial = _serial_digits(ledger)  # as written, "00123"
    serial_value = serial.cast(pl.Int64, strict=False)
    serial_unpadded = serial_value.cast(pl.String)

    full = (ledger_alnum.str.len_chars() >= _MIN_KEY_DIGITS) & (
        _contains(bank_glued, _glued_form(ledger))
        | _contains(bank_split, _split_form(ledger))
        | _contains(bank_glued, pl.concat_str(pl.lit(_MARK), year, serial, pl.lit(_MARK)))
        | _contains(
            bank_split,
            pl.concat_str(pl.lit(_MARK), year, pl.lit(_MARK * 2), serial, pl.lit(_MARK)),
        )
        | _contains(
            bank_split,
            pl.concat_str(pl.lit(_MARK), year, pl.lit(_MARK * 2), serial_unpadded, pl.lit(_MARK)),
        )
    )
    serial_found = (serial_value > 0) & bank_keys.list.contains(serial_value)
    serial_prefixes = pl.concat_list(
        [serial.str.slice(0, n) for n in range(_MIN_KEY_DIGITS, _MAX_KEY_DIGITS)]
    )
    serial_signatures = pl.concat_list(
        _digit_signature(serial), _digit_signature(serial.str.strip_chars_start("0"))
    )
    damaged = (serial.str.len_bytes() >= _MIN_KEY_DIGITS) & (serial_value > 0) & (
        (bank_signatures.list.set_intersection(serial_signatures).list.len() > 0)
        | (bank_candidates.list.set_intersection(serial_prefixes).list.len() > 0)
    )
    return (
        pl.when(full.fill_null(False))
        .then(pl.lit("full"))
        .when(serial_found.fill_null(False))
        .then(pl.lit("serial"))
        .when(damaged.fill_null(False))
        .then(pl.lit("partial"))
        .otherwise(pl.lit("none"))
        .alias("reference_strength")
    )
