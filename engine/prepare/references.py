"""Reference keys and grade (engine stage 1, prepare; graded per pair in scoring).

Ledger references (``INV-2026-00123``) and the numbers in bank text are reduced to integer keys
(serials) for candidate generation, and to per-line *profiles* (:func:`bank_reference_profile`,
:func:`ledger_reference_profile`) from which the reference grade of a candidate pair
(:func:`reference_grade_from_profiles`, one of :data:`REFERENCE_GRADES`) is worked out without
re-parsing text per pair. :func:`reference_grade` grades text pairs directly, building both
profiles itself (for tests, notebooks and analysts). Pure expression builders, as in
:mod:`engine.prepare.text`.

Conventions
-----------
* Width is folded with :func:`engine.prepare.text.fold_width` only (letters, digits and
  separators are all that matter). Digits are ASCII ``0-9`` after that fold; other scripts'
  digits are not treated as digits.
* A null input gives a null output. Functions that produce a *key* (:func:`reference_serial`,
  :func:`reference_digits`) also give null when nothing usable is left, so two empty keys never
  compare equal. The profile builders and :func:`reference_grade_from_profiles` stage their
  intermediate columns in a struct so nothing is computed twice; the grade's output column is
  named ``reference_grade``.
"""

from __future__ import annotations

import polars as pl

from engine.prepare.text import fold_width

__all__ = [
    "REFERENCE_GRADES",
    "bank_reference_profile",
    "ledger_reference_profile",
    "reference_digits",
    "reference_grade",
    "reference_grade_from_profiles",
    "reference_serial",
    "text_digits",
    "text_reference_keys",
    "two_digit_year_tails",
]

# --------------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------------

#: reference grades, strongest first (see :func:`reference_grade_from_profiles`); each grade
#: is its own comparison level with its own weight
REFERENCE_GRADES: tuple[str, ...] = ("full", "reformatted", "serial", "near", "truncated", "none")

_MIN_KEY_DIGITS = 3
_MAX_KEY_DIGITS = 12
_MAX_TRUNCATED_DIGITS = 4  # a truncated reference lost at most this many trailing digits
_MIN_FUZZY_DIGITS = 4  # a serial compared digit by digit (near, truncated) has 4+ digits
_MAX_NIBBLES = 15  # digit strings read as hexadecimal nibbles: 15 fit in an Int64 (60 bits)
_MAX_GLUED_NIBBLES = 16  # and 16 when the first digit is 1 or 2, as a year's (19xx, 20xx) is
_YEAR_DIGITS = 4
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
    return _replace_all_twice(fold_width(e), _NON_REFERENCE_NUMBER, "${1} ${2}")


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
        fold_width(e)
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
    return fold_width(e).str.replace_all("[^0-9]+", "").replace("", None)


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
    :func:`reference_grade_from_profiles`.

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


def two_digit_year_tails(exploded: pl.DataFrame, key: str) -> pl.DataFrame:
    """A reference written with a two-digit year run into its serial (``INV261808`` for
    ``INV/26/1808``): for each row whose integer ``key`` has 5+ digits and starts with the two
    digits of the row's ``date`` year or the year before, the same row with the number after
    those digits as the key (the rows to add beside the originals)."""
    digits = pl.col(key).cast(pl.Utf8)
    year = pl.col("date").dt.year() % 100
    head = digits.str.slice(0, 2).cast(pl.Int32, strict=False)
    tail = digits.str.slice(2).cast(pl.Int64, strict=False)
    return exploded.filter(
        (digits.str.len_chars() >= 5) & ((head == year) | (head == year - 1)) & (tail >= 100)
    ).with_columns(tail.cast(exploded.schema[key]).alias(key))


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
    return fold_width(e).str.replace_all("[^0-9]+", " ").str.strip_chars(" ")


# --------------------------------------------------------------------------------------------
# reference profiles
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


def _contains(haystack: pl.Expr, needle: pl.Expr) -> pl.Expr:
    return haystack.str.contains(needle, literal=True).fill_null(False)


def _nibbles(digits: pl.Expr) -> pl.Expr:
    """A string of decimal digits read as hexadecimal, one 4-bit nibble per digit
    (``"01069"`` -> ``0x01069``), so that two digit strings of the same length compare digit
    by digit with bitwise operations: nibble ``p`` of ``a ^ b`` is non-zero exactly where the
    ``p``-th digits from the right differ. Leading zeros keep their place but not their count,
    so lengths are compared separately. Null beyond Int64 (16 digits starting with 8 or 9)."""
    return digits.str.to_integer(base=16, strict=False)


def _pow16(exponent: pl.Expr) -> pl.Expr:
    """``16 ** exponent`` as Int64 (a shift by ``exponent`` nibbles); exponent clipped at 0."""
    return pl.lit(16, pl.Int64).pow(exponent.clip(lower_bound=0))


# a year standing before another digit group, as in inv-2026-00123: no serial of its own
_MARKED_LEADING_YEAR = rf"\{_MARK}{_YEAR}\{_MARK}\{_MARK}"
# a digit group of a year and 3 or more digits glued, as in inv202600123
_MARKED_GLUED_YEAR_RUN = rf"\{_MARK}{_YEAR}[0-9]{{{_MIN_KEY_DIGITS},}}\{_MARK}"
# Fingerprints: a few features of a digit string hashed to bits of an Int64, so that a pair
# whose bank runs cannot be near or truncated is told apart by one AND of two integers,
# without looking at the runs. 61 is prime, so the structured feature numbers spread.
_FINGERPRINT_BITS = 61


def _bit(feature: pl.Expr) -> pl.Expr:
    return pl.lit(2, pl.Int64).pow(feature % _FINGERPRINT_BITS)


def _near_fingerprint(digits: pl.Expr) -> pl.Expr:
    """Bits of a digit string of 4+ digits (0 for a shorter one) of which a string of the same
    length one digit or one adjacent swap away shares at least one: the two digits changed
    are either not its first two (length, first two digits), or not its last two (length,
    last two digits), or, in 4 digits, the middle two (length, first and last digit)."""
    length = digits.str.len_bytes().cast(pl.Int64)
    first_two = digits.str.slice(0, 2).cast(pl.Int64, strict=False)
    last_two = digits.str.slice(-2).cast(pl.Int64, strict=False)
    ends = digits.str.slice(0, 1).cast(pl.Int64, strict=False) * 10 + last_two % 10
    bits = (
        _bit(length * 100 + first_two)
        | _bit(10_000 + length * 100 + last_two)
        | _bit(20_000 + ends) * (length == _MIN_FUZZY_DIGITS).cast(pl.Int64)
    )
    return (bits * (length >= _MIN_FUZZY_DIGITS).cast(pl.Int64)).fill_null(0)


def _ends_bits(length: pl.Expr, digits: pl.Expr) -> pl.Expr:
    """Bits of (``length``, first two digits) and (``length``, last two digits) of ``digits``."""
    first_two = digits.str.slice(0, 2).cast(pl.Int64, strict=False)
    last_two = digits.str.slice(-2).cast(pl.Int64, strict=False)
    return _bit(30_000 + length * 100 + first_two) | _bit(40_000 + length * 100 + last_two)


def _one_off_fingerprint(digits: pl.Expr) -> pl.Expr:
    """Bits of a serial (5+ digits; 0 otherwise) that a run one digit longer or shorter than it
    shares when it is the serial with one digit left out or written twice: the edit leaves
    either the first two or the last two digits in place (the ledger side: its own length)."""
    length = digits.str.len_bytes().cast(pl.Int64)
    return (_ends_bits(length, digits) * (length > _MIN_FUZZY_DIGITS).cast(pl.Int64)).fill_null(0)


def _one_off_run_fingerprint(digits: pl.Expr) -> pl.Expr:
    """The bank side of :func:`_one_off_fingerprint`: a run's bits at its length plus and less
    one (the length of the serial it may be one digit off)."""
    length = digits.str.len_bytes().cast(pl.Int64)
    bits = _ends_bits(length + 1, digits) | _ends_bits(length - 1, digits)
    return (bits * (length >= _MIN_FUZZY_DIGITS).cast(pl.Int64)).fill_null(0)


def _prefix_fingerprint(digits: pl.Expr) -> pl.Expr:
    """The bit of a digit string's first 3 digits, which a truncation of it keeps (0 for a
    null string)."""
    return _bit(digits.str.slice(0, _MIN_KEY_DIGITS).cast(pl.Int64, strict=False)).fill_null(0)


_MARKED_YEAR_RUN = rf"\{_MARK}({_YEAR})([0-9]{{4,{_MAX_KEY_DIGITS}}})\{_MARK}"


def _runs_mask(fingerprint) -> pl.Expr:
    """The OR of ``fingerprint`` over a profile's digit runs; every bit (-1) for a line with a
    run glued to a year (the part after the year may be near or truncated too, rare enough not
    to fingerprint it separately)."""
    return (
        pl.when(pl.field("marked").str.contains(_MARKED_GLUED_YEAR_RUN))
        .then(pl.lit(-1, pl.Int64))
        .otherwise(pl.field("runs").list.eval(fingerprint(pl.element())).list.agg(pl.element().bitwise_or()))
    )


def bank_reference_profile(bank_text: pl.Expr) -> pl.Expr:
    """The bank-text side of the reference grade, to compute once per bank line.

    The grade works on candidate pairs, where each bank line is repeated once per ledger item
    it is paired with. Computing this profile per bank line and gathering it onto the pairs,
    then calling :func:`reference_grade_from_profiles`, does the bank-side work once instead
    of once per pair.

    Parameters
    ----------
    bank_text
        ``String`` expression: the bank line's free text (description and reference).

    Returns
    -------
    pl.Expr
        ``Struct`` named ``reference_profile`` with ``marked`` (``String``: letters and
        digits with each digit group wrapped in ``|``, amounts and dates removed), ``keys``
        (``List(Int64)``, equal to :func:`text_reference_keys`), ``runs`` (``List(String)``:
        the digit runs of 3 or more digits of ``marked`` as written, leading zeros kept, in
        text order, but not a year standing before another run, as the 2026 of
        ``INV-2026-00123``), and three ``Int64`` masks that let
        :func:`reference_grade_from_profiles` pass over the pairs whose runs cannot be near or
        truncated: ``run_length_mask`` (bit ``n`` set when a run has ``n`` digits, 62 standing
        for 62 or more), ``near_mask``, ``prefix_mask`` and ``one_off_mask`` (fingerprints of
        the runs: first and last two digits with the length, first three digits, first and
        last two digits with the length plus or less one, hashed to bits 0-60; every bit (-1)
        when a run starts with a year and 3 more digits), null when there is no run. The
        fields are null where the text is null.

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
        .struct.with_fields(
            keys=_keys_from_runs(runs_with_year_tails.str.extract_all("[0-9]+")),
            runs=f("marked")
            .str.replace_all(_MARKED_LEADING_YEAR, _MARK)
            .str.extract_all(f"[0-9]{{{_MIN_KEY_DIGITS},}}"),
        )
        .struct.with_fields(
            run_length_mask=f("runs")
            .list.eval(pl.lit(2, pl.Int64).pow(pl.element().str.len_bytes().clip(upper_bound=62)))
            .list.agg(pl.element().bitwise_or()),
            near_mask=_runs_mask(_near_fingerprint),
            prefix_mask=_runs_mask(_prefix_fingerprint),
            one_off_mask=_runs_mask(_one_off_run_fingerprint),
        )
    )
    return profile.alias("reference_profile")


def ledger_reference_profile(ledger_reference: pl.Expr) -> pl.Expr:
    """The ledger side of the reference grade, to compute once per ledger item (like
    :func:`bank_reference_profile` for the bank side) rather than once per candidate pair.

    Parameters
    ----------
    ledger_reference
        ``String`` expression: the ledger item's reference.

    Returns
    -------
    pl.Expr
        ``Struct`` named ``ledger_reference_profile``: the reference folded to lower case
        (``text``), its letters and digits with its digit groups marked (``marked``) and run
        together (``joined``), their count (``size``), its year (``year``) and serial
        (``serial``: the last digit group as written, its value ``serial_value`` and its
        length ``serial_length``). Then what :func:`reference_grade_from_profiles` reads
        besides: the letters before the first digit
        (``prefix``), the serial without its leading zeros (``serial_significant``, its length
        ``serial_significant_length``, and ``serial_end``: it followed by the mark, which
        every form of the reference ends with), the forms of the reference to look for in a
        bank text's ``marked`` (``forms``, ``List(String)``: as written, run together,
        prefix/year/serial, year/serial apart and glued, year/value, two-digit year/serial,
        prefix/serial; null where the reference lacks a part), the serial, year, and year and
        serial read as hexadecimal nibbles (``serial_nibbles``, ``year_nibbles``,
        ``year_serial_nibbles``, with ``serial_scale`` = 16 ** ``serial_length``) and the
        serial's fingerprints (``near_mask``, ``prefix_mask``, ``one_off_mask``; see
        :func:`bank_reference_profile`).

    Examples
    --------
    >>> df = pl.DataFrame({"r": ["INV-2026-00123"]})
    >>> df.select(ledger_reference_profile(pl.col("r")).struct.unnest()).row(0)[:6]
    ('inv-2026-00123', 'inv|2026||00123|', '2026', '00123', 'inv|202600123|', 12)
    """
    f = pl.field
    # Each stage is materialized once as a struct field and read by the next stage.
    stage = pl.struct(text=fold_width(ledger_reference).str.to_lowercase()).struct.with_fields(
        marked=_marked(f("text")),
        year=f("text").str.extract(_REFERENCE_YEAR, 1),
        serial=f("text").str.extract(_LAST_DIGIT_RUN, 1).str.replace(_YEAR_PREFIXED_RUN, "${1}"),
    )
    stage = stage.struct.with_fields(
        joined=f("marked").str.replace_all(_MARK * 2, "", literal=True),
        size=f("marked").str.len_chars() - f("marked").str.count_matches(_MARK, literal=True),
        serial_value=f("serial").cast(pl.Int64, strict=False).replace(0, None),
        serial_length=f("serial").str.len_bytes().cast(pl.Int64),
    )
    # what reference_grade_from_profiles looks for in the bank text: the reference as written
    # and rewritten (``forms``, in the order of _FORMS), and the serial's digits as
    # hexadecimal nibbles and fingerprints for the digit-by-digit comparisons
    year, serial, short_year = f("year"), f("serial"), f("year").str.slice(2)
    stage = stage.struct.with_fields(
        prefix=f("marked").str.extract(rf"^([^\{_MARK}]+)\{_MARK}", 1),
        serial_significant=serial.str.strip_chars_start("0"),
    )
    year_serial_marked = pl.concat_str(
        pl.lit(_MARK), year, pl.lit(_MARK * 2), serial, pl.lit(_MARK)
    )
    forms = {
        "marked": f("marked"),
        "joined": f("joined"),
        "prefix_year_serial": pl.concat_str(f("prefix"), year_serial_marked),
        "year_serial": year_serial_marked,
        "year_serial_glued": pl.concat_str(pl.lit(_MARK), year, serial, pl.lit(_MARK)),
        "year_value": pl.concat_str(
            pl.lit(_MARK), year, pl.lit(_MARK * 2), f("serial_value").cast(pl.String),
            pl.lit(_MARK),
        ),
        "short_year_serial": pl.concat_str(
            pl.lit(_MARK), short_year, pl.lit(_MARK * 2), serial, pl.lit(_MARK)
        ),
        "prefix_serial": pl.when(f("serial_length") >= _MIN_FUZZY_DIGITS).then(
            pl.concat_str(f("prefix"), pl.lit(_MARK), serial, pl.lit(_MARK))
        ),
    }
    stage = stage.struct.with_fields(
        forms=pl.concat_list([forms[name] for name in _FORMS]),
        # every form ends with the serial's significant digits and a mark ("1069|")
        serial_end=pl.concat_str(f("serial_significant"), pl.lit(_MARK)),
        serial_significant_length=f("serial_significant").str.len_bytes().cast(pl.Int64),
        serial_nibbles=_nibbles(pl.when(f("serial_length") <= _MAX_NIBBLES).then(serial)),
        serial_scale=_pow16(f("serial_length").clip(upper_bound=_MAX_NIBBLES)),
        year_nibbles=_nibbles(year),
        year_serial_nibbles=_nibbles(
            pl.when(f("serial_length") + _YEAR_DIGITS <= _MAX_GLUED_NIBBLES).then(
                pl.concat_str(year, serial)
            )
        ),
        near_mask=_near_fingerprint(serial),
        prefix_mask=_prefix_fingerprint(serial) | _prefix_fingerprint(f("serial_significant")),
        one_off_mask=_one_off_fingerprint(serial),
    )
    return stage.alias("ledger_reference_profile")


# --------------------------------------------------------------------------------------------
# reference_grade
# --------------------------------------------------------------------------------------------

# The ledger profile's forms of the reference (its ``forms``, in this order), marked like the
# bank text; one of the first _FULL_FORMS in the bank text makes the pair "full": the
# reference as written, its digit groups run together, its year and serial apart; one of the
# others "reformatted": the reference rewritten.
_FORMS = (
    "marked",
    "joined",
    "prefix_year_serial",
    "year_serial",
    "year_serial_glued",
    "year_value",
    "short_year_serial",
    "prefix_serial",
)
_FULL_FORMS = 3
# the ledger profile's fields that _digit_by_digit reads
_DIGIT_BY_DIGIT_FIELDS = (
    "serial_length",
    "serial_scale",
    "serial_significant_length",
    "serial_nibbles",
    "year_nibbles",
    "year_serial_nibbles",
)
_GRADE_CODE = {grade: code for code, grade in enumerate(REFERENCE_GRADES)}
_NEAR, _TRUNCATED = 2, 1  # per-run codes of the digit-by-digit comparison (the best one wins)


def _digit_by_digit(run: pl.Expr, ledger: pl.Expr) -> pl.Expr:
    """Per bank digit run (``run``, a ``String`` element inside ``list.eval``) against the
    ledger serial: ``_NEAR``, ``_TRUNCATED``, both added, or 0.
    ``ledger`` is a struct of the ledger profile's ``_DIGIT_BY_DIGIT_FIELDS`` in the outer
    frame, each row's values broadcast to its runs.

    Digits are compared as hexadecimal nibbles (:func:`_nibbles`) with integer and bitwise
    operations only: inside list.eval every operation runs once over all runs of all pairs,
    and a branch (when/then) costs as much as a dozen of them. Intermediate values are struct
    fields, each computed once (an expression used twice would be evaluated twice).
    """
    f = pl.field
    stage = pl.struct(run=run, ledger=ledger).struct.with_fields(
        [f("ledger").struct.field(name) for name in _DIGIT_BY_DIGIT_FIELDS],
        length=f("run").str.len_bytes().cast(pl.Int64),
        digits=_nibbles(f("run")),
    )
    length, digits = f("length"), f("digits")
    serial, serial_length, scale = f("serial_nibbles"), f("serial_length"), f("serial_scale")

    # near: a run of the serial's length, alone or after the ledger's year, that differs from
    # it in exactly one digit, or by exactly one swap of two adjacent digits. ``differ`` has
    # a non-zero nibble where a digit differs; ``place`` is 16 ** the place of the lowest
    # (0 when none differs: 16 ** 16 overflows, and the divisions by it give null).
    stage = stage.struct.with_fields(
        candidate=digits % scale,  # the run itself, or the part after a glued year
        aligned=(length == serial_length)
        | ((length == serial_length + _YEAR_DIGITS) & (digits // scale == f("year_nibbles"))),
    )
    stage = stage.struct.with_fields(differ=f("candidate") ^ serial)
    stage = stage.struct.with_fields(
        place=pl.lit(16, pl.Int64).pow(f("differ").bitwise_trailing_zeros() // 4)
    )
    differ, place = f("differ"), f("place")
    stage = stage.struct.with_fields(
        beyond=differ // place,  # the differing digits, the lowest one last
        two_digits=(f("candidate") // place) % 256,  # the run's two digits from there
        two_serial_digits=(serial // place) % 256,  # and the serial's
    )
    one_digit = f("beyond") < 16
    swapped = (f("beyond") < 256) & (
        f("two_digits") == (f("two_serial_digits") % 16) * 16 + f("two_serial_digits") // 16
    )
    near_same_length = f("aligned") & (differ != 0) & (f("candidate") != 0) & (one_digit | swapped)

    # near too: one digit left out or written twice (``0104`` / ``010469`` for ``01069``): of
    # the run and the serial, the longer one (``big``) less one digit is the shorter
    # (``small``). Deleting the digit at the lowest place where the two differ (aligned at the
    # right) does it if any deletion does (below that place they agree; a deletion further
    # down leaves a run of equal digits, so either gives the same string). Serials of 5 to
    # 14 digits: a 4-digit serial less a digit is too likely another number.
    longer = length == serial_length + 1
    stage = stage.struct.with_fields(
        one_off=(longer | (length == serial_length - 1))
        & serial_length.is_between(_MIN_FUZZY_DIGITS + 1, _MAX_NIBBLES - 1)
        & (digits != 0),
        big=pl.when(longer).then(digits).otherwise(serial),
        small=pl.when(longer).then(serial).otherwise(digits),
    )
    stage = stage.struct.with_fields(gap=f("big") ^ f("small"))
    stage = stage.struct.with_fields(
        gap_place=pl.lit(16, pl.Int64).pow(f("gap").bitwise_trailing_zeros() // 4)
    )
    # (a digit more or less at the very end is not a typo but another number or a
    # truncation, graded as such: the lowest differing place is not the last digit's)
    one_off = (
        f("one_off")
        & (f("gap") != 0)
        & (f("gap_place") >= 16)
        & (f("big") // (f("gap_place") * 16) == f("small") // f("gap_place"))
    )
    near = near_same_length.fill_null(False) | one_off.fill_null(False)

    # truncated: the run is the serial with 1 to _MAX_TRUNCATED_DIGITS trailing digits cut
    # off: as written when the run starts with a 0, without the serial's leading zeros when
    # it does not (``106`` for ``01069``); or the year and the serial so cut, glued
    def cut_from(whole: pl.Expr, cut: pl.Expr) -> pl.Expr:
        return (cut >= 1) & (cut <= _MAX_TRUNCATED_DIGITS) & (digits == whole // _pow16(cut))

    leading_zero = digits < _pow16(length - 1)
    significant_length = f("serial_significant_length")
    alone_cut = (
        significant_length
        + (serial_length - significant_length) * leading_zero.cast(pl.Int64)
        - length
    )
    truncated = (length >= _MIN_KEY_DIGITS) & (
        ((digits != 0) & cut_from(serial, alone_cut))
        | (
            (length >= _YEAR_DIGITS + _MIN_KEY_DIGITS)
            & (digits % _pow16(length - _YEAR_DIGITS) != 0)  # something after the year
            & cut_from(f("year_serial_nibbles"), serial_length + _YEAR_DIGITS - length)
        )
    )
    code = (
        near.fill_null(False).cast(pl.Int8) * _NEAR
        + truncated.fill_null(False).cast(pl.Int8) * _TRUNCATED
    )
    return stage.struct.with_fields(code=code).struct.field("code")


def reference_grade_from_profiles(bank_profile: pl.Expr, ledger_profile: pl.Expr) -> pl.Expr:
    """How closely the bank text carries the ledger reference, graded finely, on candidate pairs.

    The sides are precomputed per line, ``bank_profile`` by :func:`bank_reference_profile` and
    ``ledger_profile`` by :func:`ledger_reference_profile`, and gathered onto the pairs. Pass
    them as columns (``pl.col(...)``): each is read several times.

    Grades, strongest first (the first that holds is returned). "The serial" is the
    reference's last digit group as written, leading zeros kept (``01069`` in
    ``INV-2026-01069`` and in ``INV202601069``); "a run" is a digit group of the bank text of
    3 or more digits, as written. Amounts and separated dates in the bank text never count
    (``HKD 1,069.00``, ``01069.00``, ``2026-10-06``), nor does a year standing before another
    group (the ``2026`` of ``INV-2026-…``), nor a run of zeros.

    ``"full"``
        The reference's letters and digits appear in the bank text with its letter prefix,
        its digit groups as written or run together, covering whole digit groups
        (``INV-2026-01069``, ``INV202601069``, ``inv 2026 01069``, ``INV/2026/01069``; and
        ``INV-2026-01069`` for ``INV202601069``).
    ``"reformatted"``
        The same document number with the letter prefix or the separators changed or
        missing: the reference's year and then the serial, apart or glued (``2026-01069``,
        ``IN2026-01069``, ``IV-2026-01069``, ``202601069``; also ``2026 1069``, the year and
        the serial's value), or the year's last two digits and then the serial, apart
        (``INV26-01069``); or, for a serial of 4 or more digits, the letter prefix and then
        the serial (``INV 01069``, ``INV01069``).
    ``"serial"``
        The serial's value is one of the bank text's keys (:func:`text_reference_keys`), with
        or without leading zeros (``1163``, ``#1163``, ``01163``, ``no.1163`` for
        ``INV-2026-01163``).
    ``"near"``
        A run, alone or glued after the reference's own year, has the serial's length and
        differs from it in exactly one digit, or by exactly one swap of two adjacent digits
        (``INV-2026-01068``, ``INV-2026-10069``, ``2026-01096``, ``INV202601096`` for
        ``INV-2026-01069``); only for serials of 4 to 15 digits (12 when glued). Or a run
        alone is the serial with one digit left out or one written twice (``INV-2026-0169``,
        ``INV-2026-010699`` for ``INV-2026-01069``); only for serials of 5 to 14 digits.
    ``"truncated"``
        A run, alone or glued after the reference's own year, is the serial with 1 to 4
        trailing digits cut off and at least 3 left: as written (``0106``, ``INV-2026-010``,
        ``20260106`` for ``INV-2026-01069``), or, for a run not starting with 0, the serial
        without its leading zeros (``106``; but ``00106`` is not). Only for serials of 4 to
        15 digits (12 when glued).
    ``"none"``
        Otherwise, and whenever either side is null, the reference has no digit, or the
        serial has fewer than 3 digits. A serial of 0 (``INV-0000``) is only ever
        ``"full"``, ``"reformatted"`` or ``"none"``.

    A 3-digit serial is never ``"near"`` nor ``"truncated"``: a swapped or cut 3-digit
    number is too likely to be another one (``INV-132`` for ``INV-123`` is ``"none"``).

    Most candidate pairs share nothing: the forms are looked up only where the bank text
    holds the serial's significant digits at the end of a group, and runs are compared digit
    by digit only where their lengths and fingerprints (see :func:`bank_reference_profile`)
    allow a near or truncated serial.

    Parameters
    ----------
    bank_profile
        ``Struct`` expression made by :func:`bank_reference_profile`.
    ledger_profile
        ``Struct`` expression made by :func:`ledger_reference_profile`, in the same frame.

    Returns
    -------
    pl.Expr
        ``String`` named ``reference_grade``, one of :data:`REFERENCE_GRADES`; never null.

    Examples
    --------
    >>> pairs = pl.DataFrame({
    ...     "text": ["FPS INV202601069", "TT 2026-01069", "paid #1069", "INV-2026-10069",
    ...              "INV-2026-0106", "HKD 1,069.00"],
    ...     "reference": ["INV-2026-01069"] * 6,
    ... })
    >>> pairs = pairs.with_columns(
    ...     bank_reference_profile(pl.col("text")), ledger_reference_profile(pl.col("reference"))
    ... )
    >>> grade = reference_grade_from_profiles(
    ...     pl.col("reference_profile"), pl.col("ledger_reference_profile")
    ... )
    >>> pairs.select(grade)["reference_grade"].to_list()
    ['full', 'reformatted', 'serial', 'near', 'truncated', 'none']
    """
    f = pl.field
    bank, ledger = f("bank").struct.field, f("ledger").struct.field
    # Each stage is materialized once as a struct field and read by the next stage (an
    # expression used twice would be evaluated twice).
    stage = pl.struct(bank=bank_profile, ledger=ledger_profile).struct.with_fields(
        marked=bank("marked"), serial_length=ledger("serial_length")
    )
    marked, serial_length = f("marked"), f("serial_length")
    stage = stage.struct.with_fields(
        # a null serial means the reference has no digit
        gradable=(marked.is_not_null() & (serial_length >= _MIN_KEY_DIGITS)).fill_null(False),
        # Which forms the bank text holds, looked up only where it holds the serial's end,
        # which every form ends with (a pair elsewhere gets an empty list of forms).
        found=ledger("forms")
        .list.head(_contains(marked, ledger("serial_end")).cast(pl.UInt32) * len(_FORMS))
        .list.eval(_contains(bank_profile.struct.field("marked"), pl.element())),
        serial=bank("keys").list.contains(ledger("serial_value")).fill_null(False),
    )
    stage = stage.struct.with_fields(
        full=(
            (ledger("size") >= _MIN_KEY_DIGITS) & f("found").list.head(_FULL_FORMS).list.any()
        ).fill_null(False),
        reformatted=f("found").list.slice(_FULL_FORMS).list.any().fill_null(False),
    )
    stage = stage.struct.with_fields(
        exact=pl.when(~f("gradable"))
        .then(_GRADE_CODE["none"])
        .when(f("full"))
        .then(_GRADE_CODE["full"])
        .when(f("reformatted"))
        .then(_GRADE_CODE["reformatted"])
        .when(f("serial"))
        .then(_GRADE_CODE["serial"])
    )

    # The digit-by-digit comparison runs only on pairs not graded yet whose bank text has a
    # run of a length that can be near or truncated: from 3 digits (or the serial's
    # significant length less 4) up to the serial's length plus a glued year.
    lowest = (ledger("serial_significant_length") - _MAX_TRUNCATED_DIGITS).clip(_MIN_KEY_DIGITS)
    highest = serial_length + _YEAR_DIGITS
    lengths_wanted = pl.lit(2, pl.Int64).pow(highest + 1) - pl.lit(2, pl.Int64).pow(lowest)
    comparable = (
        f("exact").is_null()
        & ledger("serial_value").is_not_null()  # a serial of 0 is no serial
        & serial_length.is_between(_MIN_FUZZY_DIGITS, _MAX_NIBBLES)
        & ((bank("run_length_mask") & lengths_wanted) != 0)
        & (
            ((bank("near_mask") & ledger("near_mask")) != 0)
            | ((bank("prefix_mask") & ledger("prefix_mask")) != 0)
            | ((bank("one_off_mask") & ledger("one_off_mask")) != 0)
        )
    ).fill_null(False)
    # The ledger values the runs are compared with, as a small struct of the outer frame:
    # inside list.eval an outer expression is gathered once per run, and gathering the whole
    # ledger profile (strings and all) for one field of it costs ten times as much.
    serial_digits = pl.struct(
        [ledger_profile.struct.field(name) for name in _DIGIT_BY_DIGIT_FIELDS]
    )
    # (the other pairs' run lists are emptied rather than nulled: list.eval skips empty lists
    # but not the values under null ones)
    runs = bank("runs")
    stage = stage.struct.with_fields(
        closest=runs.list.head(comparable.cast(pl.UInt32) * runs.list.len())
        .list.eval(_digit_by_digit(pl.element(), serial_digits))
        .list.max()
    )
    fuzzy = (
        pl.when(f("closest") >= _NEAR)
        .then(_GRADE_CODE["near"])
        .when(f("closest") >= _TRUNCATED)
        .then(_GRADE_CODE["truncated"])
        .otherwise(_GRADE_CODE["none"])
    )
    code = stage.struct.with_fields(code=pl.coalesce(f("exact"), fuzzy)).struct.field("code")
    return code.replace_strict(
        list(_GRADE_CODE.values()), list(_GRADE_CODE), return_dtype=pl.String
    ).alias("reference_grade")


def reference_grade(bank_text: pl.Expr, ledger_reference: pl.Expr) -> pl.Expr:
    """The reference grade of text pairs, building both sides' profiles itself.

    A convenience for tests, notebooks and analysts grading a few pairs: the result is
    :func:`reference_grade_from_profiles` on :func:`bank_reference_profile` of ``bank_text``
    and :func:`ledger_reference_profile` of ``ledger_reference``, computed row by row, each
    profile several times over (the grade reads each side in several places; about four times
    the work of grading precomputed profiles). On candidate pairs at scale, where each line is
    repeated once per pair it is in, compute the profiles once per line, gather them onto the
    pairs and call :func:`reference_grade_from_profiles`, as scoring does.

    Parameters
    ----------
    bank_text
        ``String`` expression: the bank line's free text (description and reference).
    ledger_reference
        ``String`` expression: the ledger item's reference, in the same frame.

    Returns
    -------
    pl.Expr
        ``String`` named ``reference_grade``, one of :data:`REFERENCE_GRADES` (see
        :func:`reference_grade_from_profiles` for what each means); never null.

    Examples
    --------
    >>> pairs = pl.DataFrame({
    ...     "text": ["FPS INV202601069", "TT 2026-01069", "paid #1069", "INV-2026-10069",
    ...              "INV-2026-0106", "HKD 1,069.00"],
    ...     "reference": ["INV-2026-01069"] * 6,
    ... })
    >>> pairs.select(reference_grade(pl.col("text"), pl.col("reference")))["reference_grade"].to_list()
    ['full', 'reformatted', 'serial', 'near', 'truncated', 'none']
    """
    # The profiles cannot be staged as struct fields here: the grade also reads them inside
    # ``list.eval``, where ``pl.field`` does not reach the outer row's struct.
    return reference_grade_from_profiles(
        bank_reference_profile(bank_text), ledger_reference_profile(ledger_reference)
    )
