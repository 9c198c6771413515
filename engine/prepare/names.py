"""Payer and payee name keys (engine stage 1, prepare).

A bank narrative (``FPS CR KAM WING TRADING CO LTD INV-2026-00123``) and a ledger
counterparty (``Kam Wing Trading Company Limited``) are reduced to the same key
(``kam wing trading``) so that candidate generation can block on it and scoring can compare
it. Pure expression builders, as in :mod:`engine.prepare.text`.
"""

from __future__ import annotations

import polars as pl

from engine.prepare.text import is_wide, normalize_text, rewrite_where, split_channel

__all__ = ["name_key"]

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
        rewrite_where(
            words,
            is_wide,
            lambda text: text.str.replace_all(_CJK_COMPANY, "${1}${2}${3}${4}${5}"),
        )
        .str.replace_all(_LEGAL_WORD, "")
        .str.replace_all(_TITLE, "")
        .str.strip_chars(" ")
        .str.replace(r"^[^\p{L}]*$", "")  # digits alone ("12 10") are no name
        .replace("", None)
    )
