"""Feature preparation (engine stage 1): canonical frames -> comparison-ready columns.

Adds, for every bank line and ledger item, the normalised columns candidate generation and
scoring compare: day numbers, payer name keys and what the name comparison needs per name
(script, initials signature, numbers, alias group), reference keys, the ledger type's date
window. Pure functions of frames; vectorized Polars expressions only.
"""

from __future__ import annotations

import polars as pl

from engine.prepare.names import (
    alias_groups,
    alias_key,
    counterparty_numbers,
    name_codes,
    name_initials,
    name_key,
    text_numbers,
)
from engine.prepare.references import (
    bank_reference_profile,
    reference_digits,
    reference_serial,
    text_reference_keys,
)
from engine.prepare.text import normalize_text, split_channel
from rules.model import RuleSet

#: a document number the bank text quotes explicitly ("INV-2026-00123", "PO 4411"): its digits
#: are compared with the ledger reference's to tell a different reference from a cut-off one
_EXPLICIT_REFERENCE = (
    r"(?:^|[^a-z])(?:inv|invoice|bill|rcpt|receipt|po|so|ref|order)[^a-z0-9]{0,3}([0-9][0-9 /-]*[0-9]|[0-9])"
)
#: a cheque's number as the bank prints it: "CHQ 100003", "CHQ DEP 332898", "CHEQUE NO 000123"
_BANK_CHEQUE = r"^(?:chq|cheque)(?: (?:dep|deposit|no|paid))?[ .:#]*([0-9]{4,12})(?:[^0-9]|$)"
#: a cheque's number as the books write it: "chq 100003", "cheque no. 100003", "Cheque #100003"
_LEDGER_CHEQUE = r"(?:^|[^a-z])(?:chq|cheque|check)(?:\s*(?:no|number))?[\s.:#]*([0-9]{4,12})(?:[^0-9]|$)"
_CJK = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]"
_LATIN = r"[a-z]"


def _nonempty(col: str) -> pl.Expr:
    c = pl.col(col).fill_null("").str.strip_chars()
    return pl.when(c != "").then(pl.col(col)).otherwise(None)


#: channels that describe a charge rather than a payer: their narrative is worth comparing
_CHARGE_CHANNELS = ["BANK CHARGES", "SERVICE FEE", "INT"]


def _name_keys(frame: pl.DataFrame) -> pl.Series:
    """The payer/payee name key per row: the counterparty's, or the description's when there is
    no counterparty. When that holds no name and is not a payment channel (``SERVICE FEE``,
    ``TT COMM``, ``Bank charges - cable charges``), the description's words stand in, so a bank
    charge can still be compared with its journal line; a payment with no name
    (``CHQ DEP 00456``) stays nameless (``""``).

    Names repeat (a customer's every invoice), so each distinct name is keyed once (unless
    most rows are distinct anyway) and the stand-in words are worked out only for the rows
    without a name."""
    description = pl.col("description").fill_null("")
    source = frame.select(pl.coalesce(_nonempty("counterparty"), description).alias("source"))
    distinct = source.select(pl.col("source").approx_n_unique()).item()  # cheap estimate
    if distinct * 2 > source.height:
        # mostly distinct (bank narratives quote invoice numbers): keying every row costs
        # less than finding the distinct values and joining their keys back
        key = source.select(key=name_key(pl.col("source")))["key"]
    else:
        keyed = source.unique().with_columns(key=name_key(pl.col("source")))
        key = source.join(keyed, on="source", how="left", maintain_order="left")["key"]
    nameless = key.is_null().arg_true()
    if nameless.len():
        text = normalize_text(description)
        channel, _ = split_channel(text)
        fallback = pl.when(channel.is_null() | channel.is_in(_CHARGE_CHANNELS)).then(
            text.str.replace_all(r"[^\p{L}]+", " ").str.strip_chars(" ")
        )
        key = key.scatter(nameless, frame.select(pl.col("description").gather(nameless)).select(fallback).to_series())
    return key.fill_null("").alias("name_key")


def _script(expr: pl.Expr) -> pl.Expr:
    """'cjk', 'latin', 'mixed' or '' for a normalised name (cjk: Chinese characters, kana or
    hangul)."""
    has_cjk = expr.str.contains(_CJK)
    has_latin = expr.str.contains(_LATIN)
    return (
        pl.when(has_cjk & has_latin).then(pl.lit("mixed"))
        .when(has_cjk).then(pl.lit("cjk"))
        .when(has_latin).then(pl.lit("latin"))
        .otherwise(pl.lit(""))
    )


#: the per-name columns :func:`_name_features` adds, in order
NAME_FEATURES: dict[str, pl.DataType] = {
    "name_script": pl.String, "name_initials": pl.String, "alias_key": pl.String,
}


def _name_features(key: pl.Series, aliases: pl.DataFrame | None) -> pl.DataFrame:
    """:data:`NAME_FEATURES` of each name key (``""`` for no name), in row order.

    Names repeat (a customer's every invoice and payment), so the features are worked out
    once per distinct key (:func:`engine.prepare.names.name_codes`) and picked by code."""
    groups = alias_groups(aliases) if aliases is not None else None
    features = [
        _script(pl.col("name_key")).alias("name_script"),
        name_initials(pl.col("name_key")).alias("name_initials"),
        (alias_key(pl.col("name_key"), groups) if groups is not None and groups.height
         else pl.lit(None, dtype=pl.String)).alias("alias_key"),
    ]
    codes, first = name_codes(key)
    return key.gather(first).to_frame("name_key").select(features).gather(codes)


def prepare_bank(bank: pl.DataFrame, *, aliases: pl.DataFrame | None = None) -> pl.DataFrame:
    """Comparison columns for canonical bank lines (row order kept; ``bank_idx`` = row number).

    Name columns: ``name_key`` (String, ``""`` for no name: :func:`_name_keys`),
    ``name_script`` (``cjk`` / ``latin`` / ``mixed`` / ``""``), ``name_numbers``
    (List(Int64): every number in the description, counterparty and reference, since a bank
    cannot tell a name's number from a reference or an FPS id:
    :func:`engine.prepare.names.text_numbers`), ``name_initials`` (String, the sorted first
    letters of the name's words: :func:`engine.prepare.names.name_initials`) and
    ``alias_key`` (String: the canonical key of the name's alias group, null when the name
    is not in ``aliases`` or no table is given).

    Parameters
    ----------
    bank
        Canonical bank lines.
    aliases
        An alias table with ``name`` and ``alias`` columns
        (:func:`feeds.aliases.read_aliases`), or None.
    """
    text = pl.concat_str(
        [pl.col("description").fill_null(""), pl.col("reference").fill_null("")], separator=" "
    )
    # The channel is read from the normalised description. A line without a reference has
    # the description and a space as its text, and normalize_text drops that space: its
    # normalised description is its bank_text, so only the lines with a reference normalise
    # their description again (the others hand normalize_text "", which costs nothing).
    no_reference = pl.col("reference").fill_null("") == ""
    description = pl.col("description").fill_null("")
    norm = (
        pl.when(no_reference)
        .then(pl.col("bank_text"))
        .otherwise(normalize_text(pl.when(no_reference).then(pl.lit("")).otherwise(description)))
    )
    channel, _rest = split_channel(norm)
    columns = ["bank_idx", *bank.columns, "day", "channel", "bank_text", "name_key",
               "reference_profile", "ref_keys", "explicit_ref", "explicit_ref_digits", *NAME_FEATURES, "name_numbers",
               "cheque_no"]
    key = _name_keys(bank)
    numbers_text = pl.concat_str(
        [pl.col(c).fill_null("") for c in ("description", "counterparty", "reference")], separator=" "
    )
    return bank.lazy().with_row_index("bank_idx").with_columns(
        *_name_features(key, aliases).get_columns(),
        day=pl.col("date").cast(pl.Int32),
        bank_text=normalize_text(text),
        name_key=key,
        reference_profile=bank_reference_profile(text),
        name_numbers=text_numbers(numbers_text),
    ).with_columns(
        channel=channel,
        ref_keys=pl.col("reference_profile").struct.field("keys"),
    ).with_columns(
        explicit_ref=pl.col("bank_text").str.extract(_EXPLICIT_REFERENCE, 1).str.replace_all(r"[^0-9]", ""),
    ).with_columns(
        explicit_ref_digits=pl.col("explicit_ref").str.len_chars().fill_null(0).cast(pl.Int32),
        cheque_no=pl.col("bank_text").str.extract(_BANK_CHEQUE, 1).cast(pl.Int64, strict=False),
    ).select(columns).collect()


def prepare_ledger(ledger: pl.DataFrame, rules: RuleSet, *, aliases: pl.DataFrame | None = None) -> pl.DataFrame:
    """Comparison columns for canonical ledger items (``ledger_idx`` = row number).

    The reference compared with bank text is the item's ``reference`` or, when empty, its ``id``.

    Name columns as :func:`prepare_bank`'s, except ``name_numbers``: the numbers written in
    the counterparty (``Customer 3609 Limited`` -> ``[3609]``, ``7-Eleven`` -> ``[7]``;
    amounts and quoted references left out: :func:`engine.prepare.names.counterparty_numbers`),
    ``[]`` when the item has no counterparty. ``invoiced``: an order its customer was later
    invoiced for with the same amount (:func:`_invoiced_order`). ``cheque_no``: the number of
    the cheque the item's description or reference names (``chq 100003``), leading zeros
    dropped; the bank side's is the number a cheque line prints (``CHQ 100003``).

    Parameters
    ----------
    ledger
        Canonical ledger items.
    rules
        The rule set (date windows per ledger type).
    aliases
        An alias table with ``name`` and ``alias`` columns
        (:func:`feeds.aliases.read_aliases`), or None.
    """
    doc_ref = pl.coalesce(_nonempty("reference"), pl.col("id"))
    # other document numbers the item's text carries (our cheque number on a bill, a PO
    # number): 4+ digits, years left out
    other_keys = (
        text_reference_keys(
            pl.concat_str([pl.col("description").fill_null(""), pl.col("reference").fill_null("")],
                          separator=" ")
        )
        .list.eval(pl.element().filter((pl.element() >= 1000) & ~pl.element().is_between(1900, 2100)))
    )
    types = pl.col("type").fill_null("").str.strip_chars().str.to_lowercase()
    before = {t: w.before for t, w in rules.dates.by_type.items()}
    after = {t: w.after for t, w in rules.dates.by_type.items()}
    key = _name_keys(ledger)
    return ledger.lazy().with_row_index("ledger_idx").with_columns(
        day=pl.col("date").cast(pl.Int32),
        doc_ref=doc_ref,
        ref_serial=reference_serial(doc_ref),
        ref_digit_count=reference_digits(doc_ref).str.len_chars().fill_null(0).cast(pl.Int32),
        other_keys=other_keys,
        name_key=key,
        window_before=types.replace_strict(before, default=rules.dates.default.before, return_dtype=pl.Int32),
        window_after=types.replace_strict(after, default=rules.dates.default.after, return_dtype=pl.Int32),
        type_norm=types,
    ).with_columns(
        *_name_features(key, aliases).get_columns(),
        name_numbers=_counterparty_numbers(ledger),
        invoiced=_invoiced_order(types, key),
        cheque_no=pl.concat_str([pl.col("description").fill_null(""), pl.col("reference").fill_null("")], separator=" ")
        .str.to_lowercase().str.extract(_LEDGER_CHEQUE, 1).cast(pl.Int64, strict=False),
    ).collect()


def _invoiced_order(types: pl.Expr, name_key: pl.Series) -> pl.Expr:
    """Whether an item is an order its customer was invoiced for: an invoice of the same
    customer (name key), currency and amount dated on or after the order. The order is the
    invoice's source document, one receivable with it: a customer's payment settles the invoice,
    so the order does not compete with it for the payment, nor make its amount look common.
    One window aggregate over (currency, amount, customer): O(items)."""
    day = pl.col("date").cast(pl.Int32)
    customer = pl.lit(name_key).fill_null("")
    last_invoice = day.filter(types == "invoice").max().over("currency", "amount_minor", customer)
    return ((types == "order") & (customer != "") & (last_invoice >= day)).fill_null(False)


def _counterparty_numbers(ledger: pl.DataFrame) -> pl.Series:
    """``name_numbers`` of ledger items: the numbers of each distinct counterparty, worked out
    once (counterparties repeat) and picked back in row order."""
    parties = ledger["counterparty"]
    codes, first = name_codes(parties)
    distinct = parties.gather(first).to_frame("counterparty")
    return distinct.select(counterparty_numbers(pl.col("counterparty")))["counterparty"].gather(codes)
