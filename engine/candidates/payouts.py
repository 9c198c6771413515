"""Processor payouts (engine stage 2, compound candidates): bank credits from Stripe, Shopify
Payments, PayPal, ... against the shop orders they settle.

Two generators, both returning candidate groups of kind ``payout`` in
:data:`engine.candidates.groups.GROUP_SCHEMA`:

* :func:`report_payout_groups` -- with a processor report (the canonical payout table,
  :data:`models.schema.PAYOUT_LINE_SCHEMA`): one group per (payout, bank credit) link. The
  report's lines decide the orders and credit notes, and the processor's fee is read, not
  guessed.
* :func:`inferred_payout_groups` -- without processor data: a bank credit naming a processor
  against the orders of consecutive settlement days of one store whose gross, less a fee of
  ``rules.payouts.fee_min_pct``..``fee_max_pct`` %, equals it. Every fitting day range is
  proposed (the group assignment chooses a consistent set) and always goes to review unless the
  fee is exactly zero.

Amounts are integer minor units throughout; floats only in scores and the fee percentage shown
to a reviewer. Everything is vectorized (Polars joins, numpy searchsorted); no loop per row.
"""

from __future__ import annotations

import re
from decimal import Decimal

import numpy as np
import polars as pl

from engine.candidates.caps import CapLog
from engine.candidates.groups import ADJUSTMENT_DTYPE, conform, empty_groups
from models.money import format_minor_expr
from rules.model import RuleSet

__all__ = [
    "inferred_payout_groups",
    "report_linked_ledger",
    "report_payout_groups",
]

# --------------------------------------------------------------------------------------------
# Evidence weights (bits, added to rules.weights.prior)
# --------------------------------------------------------------------------------------------

#: the bank text quotes the payout id: as decisive as a full invoice reference and then some
PAYOUT_ID_BITS = 15.0
#: the report's net total equals the bank amount exactly (multi-line totals rarely collide)
EXACT_NET_BITS = 10.0
#: the bank text names the processor (one of the source's bank words)
PROCESSOR_NAMED_BITS = 2.0
#: a report line with no ledger item, or a net that differs from the bank amount
REPORT_GAP_BITS = -1.0

#: inferred payouts: the bank credit falls in the fee band of the range's gross
FEE_BAND_BITS = 3.0
#: the fee is exactly zero: the credit equals the orders' gross
ZERO_FEE_BITS = 6.0
#: the fee is a typical card/wallet fee (``TYPICAL_FEE_PCT``) / merely inside the band
TYPICAL_FEE_BITS = 2.0
EDGE_FEE_BITS = 0.0
TYPICAL_FEE_PCT = (2.0, 4.5)
#: the fee rate is close to the store's usual rate (the median over its candidate ranges: a
#: processor charges one merchant a stable rate, while wrong ranges scatter over the fee band);
#: full weight at the median, none from USUAL_RATE_TOLERANCE_PCT percentage points away
USUAL_RATE_BITS = 2.0
USUAL_RATE_TOLERANCE_PCT = 0.75
#: per store word of the bank text found in the orders' description (at most STORE_WORDS_MAX)
STORE_WORD_BITS = 2.0
STORE_WORDS_MAX = 3
#: per order a range covers: full coverage of consecutive days wins over a shorter fitting range
PER_ORDER_BITS = 0.05

#: categories whose lines are balance movements of the processor, not of a shop order
_FEE_CATEGORIES = ("fee",)
#: categories that are the payout itself (not part of what it pays out)
_PAYOUT_CATEGORIES = ("payout", "payout_reversal")
#: payout ids shorter than this are not looked for in bank text (too likely by chance)
_SHORT_ID = 6

_TOKEN = r"[^\s,;:/()\[\]{}<>'\"|]+"


def _tokens(text: pl.Expr) -> pl.Expr:
    """Lower-case tokens of a text (split on blanks and brackets/punctuation, not on '-' or
    '_' so that ids such as ``po_1Bx...`` or ``SO-2026-00114`` stay whole)."""
    return (
        text.fill_null("")
        .str.to_lowercase()
        .str.extract_all(_TOKEN)
        .list.eval(pl.element().str.strip_chars(".#*"))
    )


def _words(text: pl.Expr) -> pl.Expr:
    """Lower-case alphabetic words of a text (store names, processor names)."""
    return text.fill_null("").str.to_lowercase().str.extract_all(r"\p{L}+")


def _word_pattern(words: list[str]) -> str:
    """A case-insensitive regex matching any of ``words`` as whole words."""
    alternatives = "|".join(re.escape(w.strip().lower()) for w in words if w.strip())
    return (
        rf"(?i)(?:^|[^\p{{L}}\p{{N}}])(?:{alternatives})(?:$|[^\p{{L}}\p{{N}}])"
        if alternatives
        else r"$^"
    )


def _source_expr(text: pl.Expr, rules: RuleSet, side: str) -> pl.Expr:
    """The name of the first payout source whose ``{side}_words`` the text contains, else null."""
    expr = pl.lit(None, dtype=pl.Utf8)
    for source in reversed(rules.payouts.sources):
        words = source.bank_words if side == "bank" else source.ledger_words
        expr = (
            pl.when(text.fill_null("").str.contains(_word_pattern(words)))
            .then(pl.lit(source.name))
            .otherwise(expr)
        )
    return expr


def _any_source(text: pl.Expr, rules: RuleSet, side: str) -> pl.Expr:
    """Whether the text contains the ``{side}_words`` of some payout source (one pass of one
    pattern; :func:`_source_expr` is not null exactly where this holds)."""
    words = [
        w
        for source in rules.payouts.sources
        for w in (source.bank_words if side == "bank" else source.ledger_words)
    ]
    return text.fill_null("").str.contains(_word_pattern(words))


def _date_text(day: pl.Expr) -> pl.Expr:
    return day.cast(pl.Date).dt.strftime("%Y-%m-%d")


# --------------------------------------------------------------------------------------------
# With a processor report
# --------------------------------------------------------------------------------------------


def _payouts(payout_lines: pl.DataFrame) -> pl.DataFrame:
    """One row per payout: id, processor, currency, net total (minor), payout day, line counts.

    The payout date is, in order of preference, the report's automatic payout effective date
    (Stripe's ``automatic_payout_effective_at`` in the attributes), the date of the payout's own
    ``payout`` line, or the latest ``available_on`` of its lines. The net total is the payout
    line's amount when the table carries one (its negation), else the sum of the lines' nets.
    """
    attrs = pl.col("attributes").fill_null("{}")
    effective = (
        pl.coalesce(
            attrs.str.json_path_match("$.automatic_payout_effective_at_utc"),
            attrs.str.json_path_match("$.automatic_payout_effective_at"),
        )
        .str.slice(0, 10)
        .str.to_date("%Y-%m-%d", strict=False)
    )
    is_payout = pl.col("category").is_in(_PAYOUT_CATEGORIES)
    lines = payout_lines.filter(pl.col("payout_id").is_not_null() & (pl.col("payout_id") != ""))
    return (
        lines.with_columns(_effective=effective)
        .group_by("payout_id", "processor", "currency")
        .agg(
            net_lines=pl.col("net_minor").filter(~is_payout).sum(),
            net_payout=(-pl.col("net_minor").filter(is_payout)).sum(),
            has_payout_line=is_payout.any(),
            effective=pl.col("_effective").max(),
            payout_line_day=pl.col("available_on").filter(is_payout).max(),
            latest=pl.col("available_on").filter(~is_payout).max(),
            created=pl.col("created").max(),
        )
        .with_columns(
            net_minor=pl.when(pl.col("has_payout_line"))
            .then(pl.col("net_payout"))
            .otherwise(pl.col("net_lines")),
            payout_day=pl.coalesce("effective", "payout_line_day", "latest", "created").cast(
                pl.Int32
            ),
        )
    )


def _line_links(ledger_prepared: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """Ledger item of each report line that needs one (``line_no``, ``ledger_idx`` and the
    item's ``amount_minor``).

    A line's keys are its ``order_id`` (payment metadata) or, when absent, the tokens of its
    description holding a digit ("Order SO-2026-00114", "Refund for order SO-2026-00136"). A key
    equal to a ledger item's id or reference (exact, case-insensitive) links a positive line (a
    charge) to a positive ledger item -- preferring the same amount -- and a negative line (a
    refund) to a negative ledger item of exactly that amount (the credit note whose reference
    is the order). Each line links at most one item and each item at most one line.
    """
    keys = (
        lines.select(
            "line_no",
            "currency",
            "gross_minor",
            key=pl.when(pl.col("order_id").fill_null("").str.strip_chars() != "")
            .then(pl.concat_list(pl.col("order_id").str.strip_chars().str.to_lowercase()))
            .otherwise(
                _tokens(pl.col("description")).list.eval(
                    pl.element().filter(pl.element().str.contains(r"[0-9]"))
                )
            ),
        )
        .explode("key")
        .drop_nulls("key")
        .unique()
    )
    if keys.height == 0:
        return pl.DataFrame(
            schema={
                "line_no": pl.UInt32,
                "ledger_idx": pl.UInt32,
                "amount_minor": ledger_prepared.schema["amount_minor"],
            }
        )
    # the items' keys, kept where some line has the key: a light frame (the row, currency, key),
    # the amount and type gathered for the few rows that link
    wanted = keys["key"].unique().implode()
    ledger = ledger_prepared.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"), "currency", "id", "reference"
    )
    by_id = ledger.select(
        "_row", "currency", key=pl.col("id").str.strip_chars().str.to_lowercase(), via=pl.lit(0)
    ).filter(pl.col("key").is_in(wanted))
    by_ref = ledger.select(
        "_row",
        "currency",
        key=pl.col("reference").fill_null("").str.strip_chars().str.to_lowercase(),
        via=pl.lit(1),
    ).filter((pl.col("key") != "") & pl.col("key").is_in(wanted))
    joined = keys.join(pl.concat([by_id, by_ref]), on=["key", "currency"], how="inner")
    joined = joined.hstack(
        ledger_prepared.select(pl.col("ledger_idx", "amount_minor", "type_norm").gather(joined["_row"]))
    )
    charge = pl.col("gross_minor") > 0
    return (
        joined.filter(
            pl.when(charge)
            .then(pl.col("amount_minor") > 0)
            .otherwise(
                (pl.col("amount_minor") < 0) & (pl.col("amount_minor") == pl.col("gross_minor"))
            )
        )
        .with_columns(
            _rank=(pl.col("amount_minor") != pl.col("gross_minor")).cast(pl.Int32) * 4
            + (
                ~pl.col("type_norm").is_in(
                    ["order", "credit_note", "sale", "sales_order", "refund"]
                )
            ).cast(pl.Int32)
            * 2
            + pl.col("via")
        )
        .sort("_rank", "line_no", "ledger_idx")
        .unique("line_no", keep="first", maintain_order=True)
        .unique("ledger_idx", keep="first", maintain_order=True)
        .select(
            pl.col("line_no").cast(pl.UInt32), pl.col("ledger_idx").cast(pl.UInt32), "amount_minor"
        )
    )


def _report_lines(payout_lines: pl.DataFrame) -> pl.DataFrame:
    lines = payout_lines.filter(
        pl.col("payout_id").is_not_null()
        & (pl.col("payout_id") != "")
        & ~pl.col("category").is_in(_PAYOUT_CATEGORIES)
    )
    return lines.with_row_index("line_no").with_columns(
        needs_item=~pl.col("category").is_in(_FEE_CATEGORIES)
    )


def report_linked_ledger(ledger_prepared: pl.DataFrame, payout_lines: pl.DataFrame) -> pl.Series:
    """``ledger_idx`` of every ledger item a processor report's lines explain (whether or not
    the payout's bank credit is found): pass it as ``exclude_ledger`` to
    :func:`inferred_payout_groups`."""
    lines = _report_lines(payout_lines)
    return _line_links(ledger_prepared, lines)["ledger_idx"].unique().sort()


def _bank_links(bank_prepared: pl.DataFrame, payouts: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """(payout_id, bank_idx, how) pairs: the payout id quoted in the bank text (``id``), else
    the exact net amount in the same currency within ``report_window_days`` after the payout
    date (``amount``), on bank lines quoting no other payout's id."""
    ids = payouts.select(
        "payout_id", token=pl.col("payout_id").str.strip_chars().str.to_lowercase()
    ).filter(pl.col("token").str.len_chars() >= _SHORT_ID)
    # a token equal to an id is in the lower-cased text: only such texts are split into tokens
    quotes = (
        pl.col("bank_text")
        .fill_null("")
        .str.to_lowercase()
        .str.contains_any(ids["token"].unique().to_list())
    )
    tokens = (
        bank_prepared.select("bank_idx", "bank_text")
        .filter(quotes if ids.height else pl.lit(False))
        .select("bank_idx", token=_tokens(pl.col("bank_text")))
        .explode("token")
        .drop_nulls()
    )
    by_id = tokens.join(ids, on="token", how="inner").select("payout_id", "bank_idx").unique()
    quoting = by_id["bank_idx"].unique()
    linked_payouts = by_id["payout_id"].unique()
    window = rules.payouts.report_window_days
    bank = bank_prepared.select("bank_idx", "currency", "amount_minor", "day").filter(
        ~pl.col("bank_idx").is_in(quoting.implode())
    )
    by_amount = (
        payouts.filter(
            ~pl.col("payout_id").is_in(linked_payouts.implode()) & (pl.col("net_minor") != 0)
        )
        .select("payout_id", "currency", amount_minor="net_minor", payout_day="payout_day")
        .join(bank, on=["currency", "amount_minor"], how="inner")
        .filter(
            (pl.col("day") >= pl.col("payout_day"))
            & (pl.col("day") <= pl.col("payout_day") + window)
        )
        .select("payout_id", "bank_idx")
    )
    return pl.concat(
        [by_id.with_columns(how=pl.lit("id")), by_amount.with_columns(how=pl.lit("amount"))]
    )


def report_payout_groups(
    bank_prepared: pl.DataFrame, ledger_prepared: pl.DataFrame, payout_lines: pl.DataFrame, rules: RuleSet
) -> pl.DataFrame:
    """With a processor report: one group per payout that a bank credit settles.

    Parameters
    ----------
    bank_prepared, ledger_prepared
        Prepared bank lines / ledger items (:func:`engine.prepare.features.prepare_bank`,
        :func:`engine.prepare.features.prepare_ledger`).
    payout_lines
        The canonical payout table (:data:`models.schema.PAYOUT_LINE_SCHEMA`).
    rules
        The rule set (``rules.payouts``, ``rules.weights.prior``).

    Returns
    -------
    pl.DataFrame
        Groups in :data:`engine.candidates.groups.GROUP_SCHEMA`, kind ``payout``: the bank credit, the
        orders and credit notes the payout's lines name, ``ledger_total`` their sum and the
        adjustments ``processor_fee`` (fees the report shows: per-line fees and fee rows),
        ``unlinked_report_lines`` (gross of lines with no ledger item) and ``report_difference``
        (whatever else separates bank and ledger: a net that is not the bank amount, an order
        booked at another amount), each omitted when zero. A group with either of the last two
        carries a ``review_reason``. A payout the bank quotes by id is linked even when the
        amounts differ; otherwise the exact net within ``report_window_days`` after the payout
        date links it, less strongly when several payouts or credits share that net.

    Examples
    --------
    A Stripe payout ``po_1Abc...`` of two orders (fee 3.00 each) and a 1.50 fee row, credited
    as "CR TRF STRIPE PAYOUT po_1Abc..." gives one group: the two orders,
    ``processor_fee = -7.50``.
    """
    if payout_lines.height == 0 or bank_prepared.height == 0:
        return empty_groups()
    prior = rules.weights.prior
    payouts = _payouts(payout_lines)
    links = _bank_links(bank_prepared, payouts, rules)
    if links.height == 0:
        return empty_groups()
    lines = _report_lines(payout_lines)
    line_item = _line_links(ledger_prepared, lines)  # with the item's amount
    lines = lines.with_columns(pl.col("line_no").cast(pl.UInt32)).join(
        line_item, on="line_no", how="left", maintain_order="left"
    )
    unlinked = pl.col("needs_item") & pl.col("ledger_idx").is_null()
    unlinked_text = (
        pl.coalesce(
            pl.when(pl.col("description").fill_null("").str.strip_chars() != "").then(
                pl.col("description")
            ),
            pl.col("line_id"),
        )
        + pl.lit(" ")
        + format_minor_expr(pl.col("gross_minor"), pl.col("currency"))
    )
    per_payout = lines.group_by("payout_id").agg(
        ledger_idx=pl.col("ledger_idx").drop_nulls().unique().sort(),
        ledger_total=pl.col("amount_minor").sum(),
        # fees the report shows: per-line fees and the fee rows themselves
        fee=(
            pl.col("net_minor").filter(~pl.col("needs_item")).sum()
            - pl.col("fee_minor").filter(pl.col("needs_item")).sum()
        ),
        unlinked_gross=pl.col("gross_minor").filter(unlinked).sum(),
        unlinked_count=unlinked.sum(),
        unlinked_list=unlinked_text.filter(unlinked).head(3),
        line_count=pl.len(),
        charges=(pl.col("category") == "charge").sum(),
        refunds=(pl.col("category") == "refund").sum(),
        fee_rows=(~pl.col("needs_item")).sum(),
    )
    bank = bank_prepared.select("bank_idx", "amount_minor", "currency", "day", "bank_text")
    # how many payouts share a bank line / bank lines share a payout, for amount-only links
    links = links.with_columns(
        shared=pl.when(pl.col("how") == "amount")
        .then(pl.len().over("bank_idx", "how") * pl.len().over("payout_id", "how"))
        .otherwise(1)
    )
    named = _source_expr(pl.col("bank_text"), rules, "bank").is_not_null()
    groups = (
        links.join(
            payouts.select(
                "payout_id",
                "processor",
                net_total="net_minor",
                pcur="currency",
                payout_day="payout_day",
            ),
            on="payout_id",
        )
        .join(bank, on="bank_idx")
        .filter(pl.col("currency") == pl.col("pcur"))
        .join(per_payout, on="payout_id", how="left")
        .with_columns(
            ledger_total=pl.col("ledger_total").fill_null(0),
            fee=pl.col("fee").fill_null(0),
            unlinked_gross=pl.col("unlinked_gross").fill_null(0),
            unlinked_count=pl.col("unlinked_count").fill_null(0),
            ledger_idx=pl.col("ledger_idx").fill_null(pl.lit([], dtype=pl.List(pl.UInt32))),
            named=named,
        )
        .with_columns(
            difference=pl.col("amount_minor")
            - pl.col("ledger_total")
            - pl.col("fee")
            - pl.col("unlinked_gross"),
        )
    )
    cur = pl.col("currency")
    money = lambda e: cur + pl.lit(" ") + format_minor_expr(e, cur)  # noqa: E731
    adjustments = pl.concat_list(
        pl.when(pl.col(col) != 0)
        .then(
            pl.concat_list(
                pl.struct(cause=pl.lit(cause), amount_minor=pl.col(col)).cast(ADJUSTMENT_DTYPE)
            )
        )
        .otherwise(pl.lit([], dtype=pl.List(ADJUSTMENT_DTYPE)))
        for col, cause in (
            ("fee", "processor_fee"),
            ("unlinked_gross", "unlinked_report_lines"),
            ("difference", "report_difference"),
        )
    )
    net_differs = pl.col("net_total") != pl.col("amount_minor")
    gaps = (pl.col("unlinked_count") > 0).cast(pl.Int32) + (pl.col("difference") != 0).cast(
        pl.Int32
    )
    score = (
        pl.lit(prior)
        + pl.when(pl.col("how") == "id")
        .then(pl.lit(PAYOUT_ID_BITS))
        .otherwise(pl.lit(EXACT_NET_BITS) - pl.col("shared").cast(pl.Float64).log(2))
        + pl.col("named").cast(pl.Float64) * PROCESSOR_NAMED_BITS
        + gaps.cast(pl.Float64) * REPORT_GAP_BITS
    )
    reasons = pl.concat_list(
        pl.when(pl.col("unlinked_count") > 0)
        .then(
            pl.concat_list(
                pl.col("unlinked_count").cast(pl.Utf8)
                + pl.when(pl.col("unlinked_count") == 1)
                .then(pl.lit(" report line has"))
                .otherwise(pl.lit(" report lines have"))
                + pl.lit(" no ledger item: ")
                + pl.col("unlinked_list").list.join(", ")
                + pl.when(pl.col("unlinked_count") > 3).then(pl.lit(", ...")).otherwise(pl.lit(""))
            )
        )
        .otherwise(pl.lit([], dtype=pl.List(pl.Utf8))),
        pl.when(net_differs)
        .then(
            pl.concat_list(
                pl.lit("the payout's net ")
                + money(pl.col("net_total"))
                + pl.lit(" is not the bank amount ")
                + money(pl.col("amount_minor"))
            )
        )
        .otherwise(pl.lit([], dtype=pl.List(pl.Utf8))),
        pl.when((pl.col("difference") != 0) & ~net_differs)
        .then(
            pl.concat_list(
                pl.lit("ledger amounts differ from the report's gross by ")
                + money(pl.col("difference"))
            )
        )
        .otherwise(pl.lit([], dtype=pl.List(pl.Utf8))),
    ).list.join("; ")
    account = rules.adjustments.accounts.get("processor_fee", "")
    evidence = (
        pl.col("processor").fill_null("processor")
        + pl.lit(" payout ")
        + pl.col("payout_id")
        + pl.when(pl.col("how") == "id")
        .then(pl.lit(" quoted in the bank text"))
        .otherwise(
            pl.lit(" of ")
            + _date_text(pl.col("payout_day"))
            + pl.lit(": net equals the bank amount exactly")
            + pl.when(pl.col("shared") > 1)
            .then(
                pl.lit(" (")
                + pl.col("shared").cast(pl.Utf8)
                + pl.lit(" payout/credit pairings share it)")
            )
            .otherwise(pl.lit(""))
        )
        + pl.when(pl.col("named") & (pl.col("how") != "id"))
        .then(pl.lit("; bank text names the processor"))
        .otherwise(pl.lit(""))
        + pl.lit("; ")
        + pl.col("charges").fill_null(0).cast(pl.Utf8)
        + pl.lit(" charges, ")
        + pl.col("refunds").fill_null(0).cast(pl.Utf8)
        + pl.lit(" refunds, ")
        + pl.col("fee_rows").fill_null(0).cast(pl.Utf8)
        + pl.lit(" fee rows; ")
        + pl.col("ledger_idx").list.len().cast(pl.Utf8)
        + pl.lit(" ledger items total ")
        + money(pl.col("ledger_total"))
        + pl.when(pl.col("fee") != 0)
        .then(
            pl.lit("; processor fee ")
            + money(pl.col("fee"))
            + (pl.lit(f" ({account})") if account else pl.lit(""))
        )
        .otherwise(pl.lit(""))
    )
    out = groups.select(
        kind=pl.lit("payout"),
        bank_idx=pl.concat_list(pl.col("bank_idx").cast(pl.UInt32)),
        ledger_idx="ledger_idx",
        score=score,
        ledger_total="ledger_total",
        adjustments=adjustments,
        evidence=evidence,
        open_minor=pl.lit(None, dtype=pl.Int64),
        review_reason=pl.when(reasons != "").then(reasons),
    )
    return conform(out.sort("bank_idx", "score", descending=[False, True]))


# --------------------------------------------------------------------------------------------
# Without processor data
# --------------------------------------------------------------------------------------------


def _store_pairs(bank: pl.DataFrame, stores: pl.DataFrame) -> pl.DataFrame:
    """(bank line, store) pairs of the same source and currency whose store words include every
    store word of the bank text (``bank_words``; ``matched`` = how many), in bank line order
    then store order. A line naming no store pairs with every store of its source and
    currency; a line naming some, with the stores that have all its words (found by word)."""
    lines = bank.select(
        "bank_idx", "source", "currency", "day", "amount_minor", bank_words="store_words"
    ).with_row_index("_b")
    named = pl.col("bank_words").list.len() > 0
    keys = ["source", "currency"]
    every = (
        lines.filter(~named)
        .select("_b", *keys)
        .join(stores.select("store_no", *keys), on=keys)
        .select("_b", "store_no")
    )
    store_words = (
        stores.select("store_no", *keys, word="store_words")
        .explode("word")
        .drop_nulls("word")
        .unique()
    )
    by_word = (
        lines.filter(named)
        .select("_b", *keys, n=pl.col("bank_words").list.len(), word="bank_words")
        .explode("word")
        .join(store_words, on=[*keys, "word"])
        .group_by("_b", "store_no")
        .agg(found=pl.len(), n=pl.col("n").first())
        .filter(pl.col("found") == pl.col("n"))
        .select("_b", "store_no")
    )
    found = pl.concat([every, by_word]).sort("_b", "store_no")
    return (
        lines.drop("_b")[found["_b"]]
        .hstack(stores.select("store_no", "store", words_ledger="store_words")[found["store_no"]])
        .with_columns(matched=pl.col("bank_words").list.len())
    )


def _scaled_pct(pct: Decimal) -> int:
    """A percentage in millionths of the whole (4 decimal places of the percentage)."""
    return int((Decimal(pct) * 10_000).to_integral_value())


def _bank_store_words(bank_lines: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """The bank text's store words: its words (3+ letters) that some order description of the
    same source carries, the source's own name words left out. Words no order knows (channel
    codes, "payout", "transfer", a truncated name) say nothing either way."""
    vocab = (
        orders.select("source", word=_words(pl.col("description")))
        .explode("word")
        .drop_nulls()
        .unique()
    )
    return (
        bank_lines.select(
            "bank_idx",
            "source",
            word=_words(pl.col("bank_text")).list.set_difference(pl.col("skip")),
        )
        .explode("word")
        .drop_nulls()
        .filter(pl.col("word").str.len_chars() >= 3)
        .join(vocab, on=["source", "word"], how="semi")
        .group_by("bank_idx")
        .agg(store_words=pl.col("word").unique().sort())
    )


def inferred_payout_groups(
    bank_prepared: pl.DataFrame,
    ledger_prepared: pl.DataFrame,
    rules: RuleSet,
    exclude_ledger: pl.Series | None = None,
    caps: CapLog | None = None,
) -> pl.DataFrame:
    """Without processor data: a processor's bank credit vs the orders of consecutive
    settlement days.

    A bank credit whose text names a payout source (``rules.payouts.sources`` bank words) is
    compared with the positive ledger items whose description names the same source (ledger
    words), grouped by store: the item's description ("Summit Florist online order (Shopify
    Payments)"). When the bank text shows store words ("CR TRF SHOPIFY PAYOUT SUMMIT FLORIST"),
    every one must be in the store's description. For each store, every range of order days
    ``d1..d2`` (both with orders) with ``d2 - d1 < max_settlement_days``, ``d2`` before the bank
    date and at most ``max_lag_days`` before it, whose gross ``G`` satisfies
    ``G x (1 - fee_max_pct %) <= credit <= G x (1 - fee_min_pct %)`` (exact integers) is a group;
    ``processor_fee = credit - G``.

    Parameters
    ----------
    bank_prepared, ledger_prepared
        Prepared bank lines / ledger items.
    rules
        The rule set (``rules.payouts``, ``rules.weights.prior``).
    exclude_ledger
        Ledger items already explained by a processor report (:func:`report_linked_ledger`):
        ``ledger_idx`` values (integers) or ledger ids (text).

    Returns
    -------
    pl.DataFrame
        Groups in :data:`engine.candidates.groups.GROUP_SCHEMA`, kind ``payout``, all fitting ranges (the
        assignment keeps one store's payouts from overlapping). ``review_reason`` is set unless
        the fee is exactly zero. The score rewards store words matched, a typical fee
        (2-4.5 %), and each order covered (so covering consecutive days completely wins).
    """
    cfg = rules.payouts
    if not cfg.sources or bank_prepared.height == 0 or ledger_prepared.height == 0:
        return empty_groups()
    prior = rules.weights.prior
    skip = {
        s.name: sorted(
            {w for word in (s.bank_words + s.ledger_words + [s.name]) for w in _split_words(word)}
        )
        for s in cfg.sources
    }
    # the columns used, and the source worked out for the lines naming one only
    bank = (
        bank_prepared.select("bank_idx", "bank_text", "amount_minor", "currency", "day")
        .filter((pl.col("amount_minor") > 0) & _any_source(pl.col("bank_text"), rules, "bank"))
        .with_columns(source=_source_expr(pl.col("bank_text"), rules, "bank"))
        .filter(pl.col("source").is_not_null())
        .with_columns(skip=pl.col("source").replace_strict(skip, return_dtype=pl.List(pl.Utf8)))
    )
    orders = (
        ledger_prepared.select("ledger_idx", "id", "description", "amount_minor", "currency", "day")
        .filter((pl.col("amount_minor") > 0) & _any_source(pl.col("description"), rules, "ledger"))
        .with_columns(source=_source_expr(pl.col("description"), rules, "ledger"))
        .filter(pl.col("source").is_not_null() & pl.col("day").is_not_null())
    )
    if exclude_ledger is not None and exclude_ledger.len() > 0:
        column = "id" if exclude_ledger.dtype == pl.Utf8 else "ledger_idx"
        values = exclude_ledger.cast(pl.Utf8 if column == "id" else pl.UInt32)
        orders = orders.filter(~pl.col(column).is_in(values.implode()))
    if bank.height == 0 or orders.height == 0:
        return empty_groups()
    orders = orders.with_columns(store=pl.col("description").fill_null("").str.strip_chars())
    # a store's words are its description's (stripping blanks takes no letter away)
    stores = (
        orders.select("source", "currency", "store")
        .unique()
        .sort("source", "currency", "store")
        .with_row_index("store_no")
        .with_columns(store_words=_words(pl.col("store")))
    )
    store_words = _bank_store_words(bank, orders)
    bank = bank.join(store_words, on="bank_idx", how="left", maintain_order="left").with_columns(
        store_words=pl.col("store_words").fill_null(pl.lit([], dtype=pl.List(pl.Utf8)))
    )
    pairs = _store_pairs(bank, stores)
    if pairs.height == 0:
        return empty_groups()
    # orders sorted by (store, day): cumulative gross, searchsorted for any day range
    orders = orders.join(
        stores.select("source", "currency", "store", "store_no"), on=["source", "currency", "store"]
    ).sort("store_no", "day", "ledger_idx")
    span = np.int64(1 << 32)
    order_key = orders["store_no"].to_numpy().astype(np.int64) * span + orders[
        "day"
    ].to_numpy().astype(np.int64)
    cum = np.concatenate([[0], np.cumsum(orders["amount_minor"].to_numpy().astype(np.int64))])
    # all (d1, d2) per pair: d2 = bank day - lag (1..max_lag), d1 = d2 - k (0..max_settlement-1)
    lag = np.arange(1, max(cfg.max_lag_days, 0) + 1, dtype=np.int64)
    back = np.arange(cfg.max_settlement_days, dtype=np.int64)
    if len(lag) == 0:
        return empty_groups()
    p_store = pairs["store_no"].to_numpy().astype(np.int64)
    p_day = pairs["day"].to_numpy().astype(np.int64)
    p_credit = pairs["amount_minor"].to_numpy().astype(np.int64)
    d2 = p_day[:, None, None] - lag[None, :, None]
    shape = (len(p_store), len(lag), len(back))
    d2 = np.broadcast_to(d2, shape)
    d1 = d2 - back[None, None, :]
    key_base = np.broadcast_to(p_store[:, None, None] * span, shape)
    lo = np.searchsorted(order_key, (key_base + d1).ravel(), side="left")
    hi = np.searchsorted(order_key, (key_base + d2).ravel(), side="right")
    n_keys = len(order_key)
    first_ok = (lo < n_keys) & (order_key[np.minimum(lo, n_keys - 1)] == (key_base + d1).ravel())
    last_ok = (hi > 0) & (order_key[np.maximum(hi - 1, 0)] == (key_base + d2).ravel())
    gross = cum[hi] - cum[lo]
    credit = np.broadcast_to(p_credit[:, None, None], shape).ravel()
    scale = 1_000_000
    fee_max, fee_min = _scaled_pct(cfg.fee_max_pct), _scaled_pct(cfg.fee_min_pct)
    fits = (
        first_ok
        & last_ok
        & (hi > lo)
        & (gross * (scale - fee_max) <= credit * scale)
        & (credit * scale <= gross * (scale - fee_min))
    )
    hit = np.flatnonzero(fits)
    if len(hit) == 0:
        return empty_groups()
    pair_of = hit // (len(lag) * len(back))
    cand = (
        pairs[pair_of]
        .with_columns(
            lo=pl.Series(lo[hit]),
            hi=pl.Series(hi[hit]),
            d1=pl.Series(d1.ravel()[hit]).cast(pl.Int32),
            d2=pl.Series(d2.ravel()[hit]).cast(pl.Int32),
            gross=pl.Series(gross[hit]),
        )
        .with_row_index("cand")
    )
    members = orders["ledger_idx"].to_numpy()
    flat = cand.select("cand", pos=pl.int_ranges("lo", "hi")).explode("pos")
    ledger_lists = (
        flat.with_columns(ledger_idx=pl.Series(members[flat["pos"].to_numpy()]).cast(pl.UInt32))
        .group_by("cand")
        .agg(pl.col("ledger_idx").sort())
    )
    cand = cand.join(ledger_lists, on="cand").sort("cand")
    fee = pl.col("amount_minor") - pl.col("gross")  # <= 0
    pct = (-fee).cast(pl.Float64) * 100.0 / pl.col("gross").cast(pl.Float64)
    n_orders = pl.col("hi") - pl.col("lo")
    cand = (
        cand.with_columns(_pct=pct)
        .with_columns(
            _closeness=(
                1.0
                - (pl.col("_pct") - pl.col("_pct").median().over("store_no")).abs()
                / USUAL_RATE_TOLERANCE_PCT
            ).clip(0.0, 1.0)
        )
        .with_columns(_usual=pl.col("_closeness") > 0)
    )
    score = (
        pl.lit(prior)
        + PROCESSOR_NAMED_BITS
        + pl.when(fee == 0).then(pl.lit(ZERO_FEE_BITS)).otherwise(pl.lit(FEE_BAND_BITS))
        + pl.when((pct >= TYPICAL_FEE_PCT[0]) & (pct <= TYPICAL_FEE_PCT[1]))
        .then(pl.lit(TYPICAL_FEE_BITS))
        .otherwise(pl.lit(EDGE_FEE_BITS))
        + pl.col("_closeness") * USUAL_RATE_BITS
        + pl.col("matched").clip(0, STORE_WORDS_MAX).cast(pl.Float64) * STORE_WORD_BITS
        + n_orders.cast(pl.Float64) * PER_ORDER_BITS
    )
    cur = pl.col("currency")
    money = lambda e: cur + pl.lit(" ") + format_minor_expr(e, cur)  # noqa: E731
    hundredths = ((-fee) * 10_000 + pl.col("gross") // 2) // pl.col("gross")  # of a percent
    pct_text = (
        (hundredths // 100).cast(pl.Utf8)
        + pl.lit(".")
        + (hundredths % 100).cast(pl.Utf8).str.zfill(2)
    )
    account = rules.adjustments.accounts.get("processor_fee", "")
    evidence = (
        pl.col("source")
        + pl.lit(" credit vs ")
        + n_orders.cast(pl.Utf8)
        + pl.lit(" orders '")
        + pl.col("store")
        + pl.lit("' of ")
        + _date_text(pl.col("d1"))
        + pl.when(pl.col("d2") != pl.col("d1"))
        .then(pl.lit(" to ") + _date_text(pl.col("d2")))
        .otherwise(pl.lit(""))
        + pl.lit(", gross ")
        + money(pl.col("gross"))
        + pl.when(fee == 0)
        .then(pl.lit(" equals the credit exactly"))
        .otherwise(
            pl.lit(" less processor fee ")
            + money(-fee)
            + pl.lit(" (")
            + pct_text
            + pl.lit("%)")
            + (pl.lit(f" [{account}]") if account else pl.lit(""))
        )
        + pl.when(pl.col("_usual"))
        .then(pl.lit("; fee rate close to the store's usual"))
        .otherwise(pl.lit(""))
        + pl.when(pl.col("matched") > 0)
        .then(
            pl.lit("; store named in the bank text (")
            + pl.col("bank_words").list.join(" ")
            + pl.lit(")")
        )
        .otherwise(pl.lit("; bank text does not name the store"))
    )
    out = cand.select(
        kind=pl.lit("payout"),
        bank_idx=pl.concat_list(pl.col("bank_idx").cast(pl.UInt32)),
        ledger_idx="ledger_idx",
        score=score,
        ledger_total="gross",
        adjustments=pl.when(fee != 0)
        .then(
            pl.concat_list(
                pl.struct(cause=pl.lit("processor_fee"), amount_minor=fee).cast(ADJUSTMENT_DTYPE)
            )
        )
        .otherwise(pl.lit([], dtype=pl.List(ADJUSTMENT_DTYPE))),
        evidence=evidence,
        open_minor=pl.lit(None, dtype=pl.Int64),
        review_reason=pl.when(fee != 0).then(
            pl.lit("processor fee ")
            + money(-fee)
            + pl.lit(" (")
            + pct_text
            + pl.lit("%) inferred without a processor report")
        ),
    )
    return conform(out)


def _split_words(text: str) -> list[str]:
    return [w for w in "".join(ch.lower() if ch.isalpha() else " " for ch in text).split() if w]
