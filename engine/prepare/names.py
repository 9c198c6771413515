"""Payer and payee name keys (engine stage 1, prepare).

A bank narrative (``FPS CR KAM WING TRADING CO LTD INV-2026-00123``) and a ledger
counterparty (``Kam Wing Trading Company Limited``) are reduced to the same key
(``kam wing trading``) so that candidate generation can block on it and scoring can compare
it. Beside the key, the per-name features the comparison
(:func:`engine.scoring.names.compare_names`) needs: the numbers a name carries
(:func:`text_numbers`, :func:`counterparty_numbers`), its initials signature
(:func:`name_initials`) and its alias group (:func:`checked_aliases`, :func:`alias_groups`,
:func:`alias_key`). Pure expression builders, as in :mod:`engine.prepare.text`, except the
alias table's reader.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from engine.prepare.text import fold_width, is_wide, normalize_text, rewrite_where, split_channel
from models.errors import FeedFormatError

__all__ = [
    "ALIAS_GROUPS_SCHEMA",
    "alias_groups",
    "alias_key",
    "counterparty_numbers",
    "name_codes",
    "name_initials",
    "name_key",
    "checked_aliases",
    "text_numbers",
]

# --------------------------------------------------------------------------------------------
# name_key
# --------------------------------------------------------------------------------------------

_CURRENCIES = "hkd|usd|rmb|cny|eur|gbp|jpy|sgd|aud|cad|chf|mop|twd|nzd"
_REFERENCE_WORDS = "inv|invoice|bill|rcpt|receipt|ref|reference|po|so|order|no|nos"
_REF_CHARS = r"[a-z0-9/\-_.#:]"
# Numbers that are amounts or quoted references, never part of a name:
_AMOUNTS_AND_REFERENCES = [
    # an amount with its currency, apart or glued: "hkd 1,234.50", "HKD31,424.33", "hk$500"
    rf"(?:(?-u:\b)(?:{_CURRENCIES})|hk\$|us\$|\$)\s*[0-9][0-9.,]*",
    # an amount: digits with decimal or thousands separators
    r"[0-9]+(?:[.,][0-9]+)+",
    # reference keywords and the token with a digit after them: "inv-2026-00123",
    # "ref no: 12"
    rf"(?-u:\b)(?:(?:{_REFERENCE_WORDS})(?-u:\b)[\s.:#/\-]*)+{_REF_CHARS}*[0-9]{_REF_CHARS}*",
]
# Everything in a narrative that is a number rather than a name, in one pass:
_NAME_NOISE = "|".join(
    [
        *_AMOUNTS_AND_REFERENCES,
        # any ASCII token holding a run of 3+ digits: "inv202600123", "00123", "ab-12345"
        rf"{_REF_CHARS}*[0-9]{{3,}}{_REF_CHARS}*",
        r"#[0-9]+",
    ]
)
_NAME_SYMBOLS = {"&": " and ", "'": "", "’": "", "‘": "", "`": "", "´": ""}
# Runs of characters other than letters, digits and marks, except a lone space (the common
# case, left alone so that the pass rarely has anything to rewrite). The run comes first, so
# that "t.m. chan" loses ". " as one run ("t m chan") rather than leaving two spaces.
_NAME_PUNCTUATION = r"[^\p{L}\p{N}\p{M}]{2,}|[^\p{L}\p{N}\p{M} ]"
# "(H.K.)", "(H K)" after a company name is the place, like "(HK)"; "CHAN H.K." is a person
# with initials, so only the bracketed form is read as Hong Kong
_HK_IN_BRACKETS = r"\(\s*h\.?\s*k\.?\s*\)"
# Chinese and Japanese write no spaces between words: a space between two such characters
# ("明珠 物流有限公司", "陳 大文") is layout, not a word break. Each pass joins every other
# gap of a run of one-character words ("陳 大 文" -> "陳大 文"), so two passes join them all.
_CJK_CHARACTER = r"[\p{Han}\p{Hiragana}\p{Katakana}ー々]"
_CJK_GAP = rf"({_CJK_CHARACTER}) +({_CJK_CHARACTER})"
# Chinese / Japanese company forms: written against the name ("金港貿易有限公司", with the
# place "金港貿易香港有限公司"; 株式会社 also before it), or standing alone after a name in
# another script ("ABC 香港 有限公司"). The character before a glued form must not be the end
# of a longer form (限, 份, 任), so that a name that is only a form ("有限公司") is kept whole
# rather than cut to "有限".
_CJK_COMPANY_FORMS = "股份有限公司|有限責任公司|有限责任公司|有限公司|公司|株式會社|株式会社"
_CJK_COMPANY = (
    rf"([^\s限份任])(?:香港)?(?:{_CJK_COMPANY_FORMS})(\s|$)"
    r"|(^|\s)(?:株式會社|株式会社)(\S)"
    rf"|(?:\s(?:香港)?(?:{_CJK_COMPANY_FORMS})|\s香港)+(\s|$)"
)
# Legal-form words, removed wherever they stand except as the first word of the name (each
# alternative needs a space before it), so a name is never reduced to nothing.
_LEGAL_WORDS = (
    "and company|and co|company|corporation|corp|incorporated|inc|limited|ltd|co|llc|llp|"
    "plc|pte|pty|gmbh|sdn|bhd|hong kong|hk"
)
# A bank field cut at a fixed width leaves the legal form half written at the end
# ("KAM WING TRADING CO LIMI", "EVER PEARL INDUSTRIAL LIMITE"). "l", "li", "lim" end personal
# names too (an initial, the surnames Li and Lim), so they count as a stub only after "co".
_LEGAL_STUB = r"\s(?:co|company)\s(?:l|li|lim)$|\s(?:lt|limi|limit|limite)$"
_LEGAL_WORD = rf"{_LEGAL_STUB}|\s(?:{_LEGAL_WORDS})\b"
# narrative words a bank puts between the channel and the payer ("AUTOPAY DR SALARY WONG ...",
# "FPS CR PAYMENT FROM ..."), removed from the start of the rest
_NARRATIVE_LEAD = (
    r"^(?:(?:salary|salaries|payroll|wages|commission|bonus|allowance|mpf|payment|pymt|pmt|"
    r"remittance|inward|outward|from|by|to|cr|dr|the|payer|payee)\s+)+"
)
# "Hong Kong" is written hk / hongkong / hong kong: one spelling, so the place never decides
_HONG_KONG = r"(?-u:\b)(?:hong kong|hongkong)(?-u:\b)"
# honorifics, written before or after the name (a dot after one is punctuation, gone by then)
_TITLES = "mr and mrs|mr|mrs|ms|miss|mdm|madam|dr|messrs|prof"
_TITLE = rf"^(?:{_TITLES})\s+|\s+(?:{_TITLES})$"
# Chinese honorifics after a name of two or more characters ("陳大文先生"); "陳先生" (Mr
# Chan) is all the name there is and stays whole
_CJK_TITLE = r"(\p{Han}{2})(?:先生|小姐|女士|太太)$"


def name_key(e: pl.Expr) -> pl.Expr:
    """Reduce a counterparty name or bank narrative to a name key for comparison.

    Steps: :func:`normalize_text`; drop a leading channel prefix (:func:`split_channel`);
    remove amounts (with their currency) and reference-like tokens (a keyword and a number
    such as ``inv-2026-00123`` or ``ref no 12``, any token with a run of 3+ digits, ``#12``:
    account numbers and FPS ids go with them); ``&`` becomes ``and``; apostrophes are
    dropped; other punctuation becomes a space (letters of every script, digits and combining
    marks are kept); a space between two Chinese or Japanese characters is removed
    (``明珠 物流`` -> ``明珠物流``: those scripts write no spaces between words); Chinese
    honorifics after a name of two or more characters (``先生``, ``小姐``, ``女士``,
    ``太太``) are removed; Chinese/Japanese company forms written against the name
    (``有限公司``, ``公司``, ``股份有限公司``, ``株式會社``, with ``香港`` before them) are
    removed; legal-form words (``limited``, ``ltd``, ``co``, ``company``, ``corp``, ``inc``,
    ``llc``, ``plc``, ``hk``, ``(hk)``, ``(h.k.)``, ``hong kong``, ``香港``, ...) are removed
    wherever they stand *except as the first word*, so a name is never reduced to nothing
    (``hk ltd`` -> ``hk``), and so is a form cut short at the end (``co limi``); a title
    (``mr``, ``mrs``, ``mr and mrs``, ``ms``, ``miss``, ``mdm``, ``madam``, ``dr``,
    ``messrs``, ``prof``, with or without a dot) is removed at the start or end of a name of
    two or more words; a reference word cut short at the end (``inv``, ``inv2``, and after a
    Chinese name any Latin stub of up to three letters) is removed. A key without a letter is
    no name (null).

    Word order and initials are kept as written (``kwan ming chow``, ``chan t m``): the
    comparison (:func:`engine.scoring.names.compare_names`) is order-invariant and reads
    initials; numbers of three or more digits are gone from the key, so names that differ
    only in such a number are told apart by :func:`text_numbers` /
    :func:`counterparty_numbers`, not by the key.

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
    ...     "明珠 物流 有限公司",
    ...     "FPS CR 9255227770 MS. LO FUNG MAN",
    ...     "AUTOPAY CR PAYER 64801859 萬寶海產有限公司",
    ...     "IBT CR 012-124395-116 豐寶龍塑膠 有限公司 IN",
    ...     "IBT CR 004-741359-028 FUNG S P INV2",
    ... ]})
    >>> df.select(name_key(pl.col("t")))["t"].to_list()  # doctest: +NORMALIZE_WHITESPACE
    ['kam wing trading', 'kam wing trading', '金港貿易', 'chan tai man', '明珠物流', 'lo fung man',
     '萬寶海產', '豐寶龍塑膠', 'fung s p']
    """
    _, rest = split_channel(normalize_text(e))
    words = (
        rest.str.replace(_NARRATIVE_LEAD, "")
        .str.replace_all(_HONG_KONG, "hk")
        .str.replace_all(_HK_IN_BRACKETS, " hk ")
        .str.replace_all(_NAME_NOISE, " ")
        .str.replace_many(list(_NAME_SYMBOLS), list(_NAME_SYMBOLS.values()))
        .str.replace_all(_NAME_PUNCTUATION, " ")
        .str.strip_chars(" ")
    )
    return (
        rewrite_where(
            words,
            is_wide,
            lambda text: text.str.replace_all(_CJK_GAP, "${1}${2}")
            .str.replace_all(_CJK_GAP, "${1}${2}")
            .str.replace(_CJK_TITLE, "${1}")
            .str.replace_all(_CJK_COMPANY, "${1}${2}${3}${4}${5}"),
        )
        .str.replace_all(_LEGAL_WORD, "")
        .str.replace_all(_TITLE, "")
        .str.strip_chars(" ")
        # a reference word left at the end once the bank's field width cut its number off
        # ("祥昌珠寶有限公司 INV/" -> "祥昌珠寶", "FUNG S P INV2" -> "fung s p"); after a
        # Chinese name any short Latin stub is such a cut ("豐寶龍塑膠 有限公司 IN")
        .str.replace(r" (?:inv|invoice|ref)[0-9]{0,2}$", "")
        .str.replace(rf"({_CJK_CHARACTER}) [a-z]{{1,3}}[0-9]{{0,2}}$", "${1}")
        .str.replace(r"^[^\p{L}]*$", "")  # digits alone ("12 10") are no name
        .replace("", None)
    )


# --------------------------------------------------------------------------------------------
# distinct names
# --------------------------------------------------------------------------------------------


def name_codes(names: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Number the distinct names of a column, so that per-name work is done once per name.

    Parameters
    ----------
    names
        ``String`` values (null counts as ``""``).

    Returns
    -------
    codes : np.ndarray
        ``int64`` per row: equal names, equal codes, numbered ``0 .. n - 1`` (in no
        particular order).
    first : np.ndarray
        ``int64`` per code: the first row holding that name, so ``names.gather(first)`` are
        the distinct names and ``names.gather(first).gather(codes)`` gives ``names`` back.

    Examples
    --------
    >>> codes, first = name_codes(pl.Series(["kam wing", "陳大文", "kam wing", None]))
    >>> int(codes[0] == codes[2]), sorted(first.tolist())
    (1, [0, 1, 3])
    """
    # the categorical's ids number the strings held as categoricals anywhere in the process (one
    # dictionary, ids reused once freed): marking the ids present numbers these densely without
    # sorting, unless far more other strings are held (then a sort costs less)
    ids = names.fill_null("").cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    if not len(ids):
        return ids, ids
    if int(ids.max()) < 8 * len(ids):
        present = np.zeros(int(ids.max()) + 1, dtype=np.int64)
        present[ids] = 1
        codes = (np.cumsum(present) - 1)[ids]
        n_names = int(codes.max()) + 1
    else:
        distinct, codes = np.unique(ids, return_inverse=True)
        codes = codes.reshape(-1)
        n_names = len(distinct)
    first = np.empty(n_names, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(ids) - 1, -1, -1)  # the last write, the first row, wins
    return codes, first


# --------------------------------------------------------------------------------------------
# numbers in names
# --------------------------------------------------------------------------------------------

#: a number: a run of ASCII digits (full-width digits are folded first), at most 18 long so
#: that it fits an Int64 (a longer run is read as several numbers)
_NUMBER = r"[0-9]{1,18}"
_NO_NUMBERS = pl.lit([], dtype=pl.List(pl.Int64))


def text_numbers(e: pl.Expr) -> pl.Expr:
    """Every number written in a text, in order: the bank side of a name's numbers.

    A bank narrative cannot tell a name's number (``CUSTOMER 4842``) from a reference, an
    account number or an FPS id, so all of them count.

    Parameters
    ----------
    e
        A ``String`` expression (bank description, counterparty and reference text).

    Returns
    -------
    pl.Expr
        ``List(Int64)``: each run of digits as a number (leading zeros dropped, ``007`` ->
        ``7``), in the order written; ``[]`` where there is none or the input is null.

    Examples
    --------
    >>> df = pl.DataFrame({"t": ["FPS CR CUSTOMER 4842", "FPS CR 9255227770 LO FUNG MAN", None]})
    >>> df.select(text_numbers(pl.col("t")))["t"].to_list()
    [[4842], [9255227770], []]
    """
    return fold_width(e).str.extract_all(_NUMBER).cast(pl.List(pl.Int64)).fill_null(_NO_NUMBERS)


_AMOUNT_OR_REFERENCE = "|".join(_AMOUNTS_AND_REFERENCES)


def counterparty_numbers(e: pl.Expr) -> pl.Expr:
    """The numbers written in a counterparty name: the ledger side of a name's numbers.

    ``Customer 3609 Limited`` is another party than ``Customer 4842 Limited``, although both
    have the name key ``customer``. Amounts (``HKD 1,200.00``) and quoted references
    (``ref 12``, ``inv-2026-00123``) in the counterparty field are not the name's.

    Parameters
    ----------
    e
        A ``String`` expression: the ledger item's counterparty.

    Returns
    -------
    pl.Expr
        ``List(Int64)`` in the order written; ``[]`` where there is none or the input is
        null.

    Examples
    --------
    >>> df = pl.DataFrame({"t": ["Customer 3609 Limited", "7-Eleven", "Kam Wing Ltd (ref 12)", None]})
    >>> df.select(counterparty_numbers(pl.col("t")))["t"].to_list()
    [[3609], [7], [], []]
    """
    name = fold_width(e).str.to_lowercase().str.replace_all(_AMOUNT_OR_REFERENCE, " ")
    return name.str.extract_all(_NUMBER).cast(pl.List(pl.Int64)).fill_null(_NO_NUMBERS)


# --------------------------------------------------------------------------------------------
# initials
# --------------------------------------------------------------------------------------------


def name_initials(key: pl.Expr) -> pl.Expr:
    """The initials signature of a name key: the first letters of its words, sorted.

    Hong Kong bank narratives write given names as initials, in either order (``HO H L``,
    ``T M CHAN`` for Ho Ho Ling, Chan Tai Man). Two names can be the same person written so
    only if their signatures are equal: ``chan t m``, ``t m chan`` and ``chan tai man`` all
    give ``cmt``. Only names whose every word starts with a Latin letter have one.

    Parameters
    ----------
    key
        A name key (:func:`name_key`).

    Returns
    -------
    pl.Expr
        ``String``: the sorted first letters; ``""`` for no name, or a name with a word
        starting otherwise (Chinese characters, a digit, an accented letter).

    Examples
    --------
    >>> df = pl.DataFrame({"k": ["chan tai man", "t m chan", "ho h l", "陳大文", "7 eleven", None]})
    >>> df.select(name_initials(pl.col("k")))["k"].to_list()
    ['cmt', 'cmt', 'hhl', '', '', '']
    """
    letters = key.str.extract_all(r"\b[a-z]").list.sort().list.join("")
    initials = (
        pl.when(key.str.contains(r"(?:^| )[^a-z ]") | (key.fill_null("") == ""))
        .then(pl.lit(""))
        .otherwise(letters)
    )
    name = key.meta.output_name(raise_if_undetermined=False)  # keep the input's column name
    return initials if name is None else initials.alias(name)


# --------------------------------------------------------------------------------------------
# alias table
# --------------------------------------------------------------------------------------------

#: columns of the resolved alias groups (:func:`alias_groups`)
ALIAS_GROUPS_SCHEMA: dict[str, pl.DataType] = {"name_key": pl.String, "alias_key": pl.String}


def checked_aliases(aliases: pl.DataFrame) -> pl.DataFrame:
    """``aliases`` (as :func:`feeds.aliases.read_aliases` reads them) once every name and alias
    is a name: a value that normalises to nothing (only digits, a reference or a legal form)
    cannot link a payer, and is reported with its file and line.

    Raises
    ------
    FeedFormatError
        The first such row, with the count of the others.
    """
    keys = aliases.select(name=name_key(pl.col("name")), alias=name_key(pl.col("alias")))
    problems: list[tuple[int, str, str]] = []
    for column in ("name", "alias"):
        unnamed = aliases.filter(keys[column].is_null() & (pl.col(column).fill_null("") != ""))
        problems += [
            (line, source, f"the {column} {value!r} is no name once normalised (only digits, references or a "
                           "legal form are left out of names); write the party's name")
            for value, source, line in unnamed.select(column, "source_file", "source_line").iter_rows()
        ]
    if problems:
        problems.sort()
        line, source, problem = problems[0]
        more = f" ({len(problems) - 1} more problem(s) in the file)" if len(problems) > 1 else ""
        raise FeedFormatError(source, problem + more, line=line)
    return aliases


def _token_sorted(key: pl.Expr) -> pl.Expr:
    """A name key with its words in sorted order: ``kwan ming chow`` and ``chow kwan ming``
    are looked up in the alias table alike."""
    return key.str.split(" ").list.sort().list.join(" ")


def alias_groups(aliases: pl.DataFrame) -> pl.DataFrame:
    """Resolve an alias table into groups: one canonical key per party.

    Every ``name`` and ``alias`` is normalised with :func:`name_key`; two entries are linked
    when a row links them or their keys have the same words (in any order); names linked
    directly or through a chain (``A,B`` and ``B,C``) are one group, whose canonical key is
    the group's smallest name key (code-point order, so the result does not depend on the
    order of the rows).

    Parameters
    ----------
    aliases
        ``name`` and ``alias`` (String) columns, as :func:`feeds.aliases.read_aliases` returns them; rows
        whose name or alias has no name key are ignored.

    Returns
    -------
    pl.DataFrame
        :data:`ALIAS_GROUPS_SCHEMA`: one row per distinct name key of the table, sorted by
        ``alias_key`` then ``name_key``.

    Raises
    ------
    ValueError
        ``aliases`` lacks the ``name`` or ``alias`` column.

    Examples
    --------
    >>> table = pl.DataFrame({"name": ["陳大文", "CHAN TAI MAN"], "alias": ["CHAN TAI MAN", "TM CHAN"]})
    >>> alias_groups(table).rows()
    [('chan tai man', 'chan tai man'), ('tm chan', 'chan tai man'), ('陳大文', 'chan tai man')]
    """
    missing = [column for column in ("name", "alias") if column not in aliases.columns]
    if missing:
        raise ValueError(
            f"an alias table needs the columns name and alias (missing: {', '.join(missing)}); "
            "read the file with feeds.aliases.read_aliases"
        )
    links = aliases.select(
        name=name_key(pl.col("name")), alias=name_key(pl.col("alias"))
    ).drop_nulls()
    keys = pl.concat([links["name"], links["alias"]]).unique().sort()
    if keys.is_empty():
        return pl.DataFrame(schema=ALIAS_GROUPS_SCHEMA)
    # nodes are the word-sorted keys, so reordered spellings of one name are one node
    nodes = keys.to_frame("name_key").with_columns(lookup=_token_sorted(pl.col("name_key")))
    lookups = nodes["lookup"].unique().sort()
    node = {value: i for i, value in enumerate(lookups.to_list())}
    code = links.select(_token_sorted(pl.col("name")), _token_sorted(pl.col("alias")))
    name_code = code["name"].replace_strict(node, return_dtype=pl.Int64).to_numpy()
    alias_code = code["alias"].replace_strict(node, return_dtype=pl.Int64).to_numpy()
    graph = coo_matrix((np.ones(len(name_code)), (name_code, alias_code)), shape=(len(node), len(node)))
    _, group = connected_components(graph, directed=False)
    return (
        nodes.with_columns(group=pl.col("lookup").replace_strict(node, return_dtype=pl.Int64).gather(group))
        .with_columns(alias_key=pl.col("name_key").min().over("group"))
        .select(list(ALIAS_GROUPS_SCHEMA))
        .sort("alias_key", "name_key")
    )


def alias_key(key: pl.Expr, groups: pl.DataFrame) -> pl.Expr:
    """The alias group of each name key, looked up by its words in any order.

    Parameters
    ----------
    key
        Name keys (:func:`name_key`).
    groups
        Resolved groups (:func:`alias_groups`).

    Returns
    -------
    pl.Expr
        ``String``: the group's canonical key where the name is in the table, else null.

    Examples
    --------
    >>> groups = alias_groups(pl.DataFrame({"name": ["陳大文"], "alias": ["CHAN TAI MAN"]}))
    >>> df = pl.DataFrame({"k": ["陳大文", "tai man chan", "chan tai ming", None]})
    >>> df.select(alias_key(pl.col("k"), groups))["k"].to_list()
    ['chan tai man', 'chan tai man', None, None]
    """
    lookup = groups.select(lookup=_token_sorted(pl.col("name_key")), alias_key="alias_key").unique("lookup")
    return _token_sorted(key).replace_strict(
        lookup["lookup"], lookup["alias_key"], default=None, return_dtype=pl.String
    )
