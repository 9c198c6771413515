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
from engine.prepare.orders import (
    candidate_order_ids,
    digit_runs,
    order_keys,
    store_key,
)
from models.money import format_minor_expr
from rules.model import RuleSet

__all__ = [
    "inferred_payout_groups",
    "report_linked_ledger",
    "report_payout_groups",
]

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


_LINK_COLUMNS = {"line_no": pl.UInt32, "ledger_idx": pl.UInt32}
#: a link ranked below this (the same id, exact or reformatted, and the same amount) settles its
#: item: see :func:`report_settled_items`
_SETTLING_RANK = 2_000_000
#: ledger types that are shop orders and their refunds (preferred over other items)
_ORDER_TYPES = ["order", "credit_note", "sale", "sales_order", "refund"]
#: rounds of mutual-best linking (each links every line whose best item is unambiguous)
_LINK_ROUNDS = 8


def _line_links(ledger_prepared: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """Ledger item of each report line that needs one (``line_no``, ``ledger_idx`` and the
    item's ``amount_minor``).

    A line's written order ids are its ``order_id`` (payment metadata, however the feed found
    it) and the id-like tokens of its description ("Order SO-2026-00114", "Refund for order
    #5022"); an item's are its ``id``, its ``reference`` and the id-like tokens of its
    description ("Web order #5022 (Stripe)"). Both sides are reduced to order keys
    (:func:`engine.prepare.orders.order_keys`), so ``5022`` meets ``#5022`` and ``0005022``,
    ``SO-00114`` meets ``so114`` and, more weakly, ``#114``. A charge (positive line) links a
    positive item, a refund (negative line) a negative item of exactly its amount (the credit
    note of the order).

    Among the items a line meets, the better one is decided by, in turn: the id level (exact,
    the same id reformatted, digits only, the last number), the same amount, an order or credit
    note rather than another type, where the id was found (metadata and ledger id before
    reference and descriptions), the days between the charge and the order. Lines and items
    link when each is the other's single best (a tie is never broken by order: the line stays
    unlinked and its payout goes to review naming it); linked lines and items leave and the
    rest try again, a few rounds. Each line links at most one item and each item one line.
    """
    amount_dtype = ledger_prepared.schema["amount_minor"]
    empty = pl.DataFrame(schema={**_LINK_COLUMNS, "amount_minor": amount_dtype, "link_rank": pl.Int64})
    needs = lines.filter(pl.col("needs_item")) if "needs_item" in lines.columns else lines
    raw_lines = pl.concat(
        [
            needs.select(
                "line_no", "currency", raw=pl.col("order_id").fill_null("").str.strip_chars(),
                via_line=pl.lit(0, dtype=pl.Int8),
            ).filter(pl.col("raw") != ""),
            needs.select(
                "line_no", "currency", raw=candidate_order_ids(pl.col("description")),
                via_line=pl.lit(1, dtype=pl.Int8),
            ).explode("raw").drop_nulls("raw"),
        ]
    )
    line_keys = order_keys(raw_lines).unique(["line_no", "key", "level"])
    if line_keys.height == 0:
        return empty
    wanted = line_keys["key"].unique().implode()
    ledger = ledger_prepared.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"), "currency", "id", "reference",
        "description",
    )
    raw_items = pl.concat(
        [
            ledger.select("_row", "currency", raw="id", via_item=pl.lit(0, dtype=pl.Int8)),
            ledger.select("_row", "currency", raw="reference", via_item=pl.lit(1, dtype=pl.Int8)),
            ledger.filter(pl.col("description").fill_null("").str.contains("[0-9]"))
            .select(
                "_row", "currency", raw=candidate_order_ids(pl.col("description")),
                via_item=pl.lit(2, dtype=pl.Int8),
            )
            .explode("raw"),
        ]
    )
    # only the ids sharing a number with some line's get their keys (the ledger is large)
    numbers = line_keys.filter(pl.col("key").str.starts_with("d:"))["key"].str.slice(2).unique()
    # (order_numbers' two numbers as plain columns: no list evaluation over the large side)
    runs = pl.col("_runs")
    whole = runs.list.join("").str.strip_chars_start("0")
    last = pl.when(runs.list.len() >= 2).then(runs.list.last().str.strip_chars_start("0"))
    wanted_numbers = numbers.implode()

    def number_in(number: pl.Expr) -> pl.Expr:
        return pl.when(number == "").then(pl.lit("0")).otherwise(number).is_in(wanted_numbers)

    raw_items = (
        raw_items.with_columns(_runs=digit_runs(pl.col("raw")))
        .filter((runs.list.len() > 0) & (number_in(whole) | number_in(last).fill_null(False)))
        .drop("_runs")
        .unique(["_row", "raw", "via_item"])
    )
    item_keys = order_keys(raw_items).filter(pl.col("key").is_in(wanted))
    joined = (
        line_keys.join(item_keys, on=["key", "currency"], how="inner", suffix="_item")
        .filter((pl.col("level") < 3) | (pl.col("level_item") < 3))  # never serial to serial
        .group_by("line_no", "_row")
        .agg(
            level=pl.max_horizontal("level", "level_item").min(),
            via=(pl.col("via_line") * 3 + pl.col("via_item")).min(),
        )
    )
    if joined.height == 0:
        return empty
    joined = joined.hstack(
        ledger_prepared.select(
            pl.col("ledger_idx", "amount_minor", "type_norm", "day").gather(joined["_row"])
        )
    ).join(
        needs.select(
            pl.col("line_no").cast(pl.UInt32), "gross_minor", created=pl.col("created").cast(pl.Int32)
        ),
        on="line_no",
    )
    charge = pl.col("gross_minor") > 0
    days_apart = (pl.col("created") - pl.col("day")).abs().fill_null(999).clip(0, 999)
    candidates = joined.filter(
        pl.when(charge)
        .then(pl.col("amount_minor") > 0)
        .otherwise((pl.col("amount_minor") < 0) & (pl.col("amount_minor") == pl.col("gross_minor")))
    ).select(
        pl.col("line_no").cast(pl.UInt32),
        pl.col("ledger_idx").cast(pl.UInt32),
        "amount_minor",
        # one integer rank, smaller is better: level, amount, type, where found, days apart
        rank=pl.col("level").cast(pl.Int64) * 1_000_000
        + (pl.col("amount_minor") != pl.col("gross_minor")).cast(pl.Int64) * 100_000
        + (~pl.col("type_norm").is_in(_ORDER_TYPES)).cast(pl.Int64) * 10_000
        + pl.col("via").cast(pl.Int64) * 1_000
        + days_apart.cast(pl.Int64),
    )
    linked = []
    for _ in range(_LINK_ROUNDS):  # rounds, not rows: each round is vectorized
        if candidates.height == 0:
            break
        best = candidates.with_columns(
            line_best=pl.col("rank").min().over("line_no"),
            item_best=pl.col("rank").min().over("ledger_idx"),
        ).filter((pl.col("rank") == pl.col("line_best")) & (pl.col("rank") == pl.col("item_best")))
        # single best both ways: no other item at the line's best rank and no other line at
        # the item's
        ties_line = candidates.join(
            best.select("line_no", "line_best"), on="line_no"
        ).filter(pl.col("rank") == pl.col("line_best")).group_by("line_no").len()
        ties_item = candidates.join(
            best.select("ledger_idx", "item_best"), on="ledger_idx"
        ).filter(pl.col("rank") == pl.col("item_best")).group_by("ledger_idx").len()
        sure = best.join(ties_line.filter(pl.col("len") == 1).select("line_no"), on="line_no").join(
            ties_item.filter(pl.col("len") == 1).select("ledger_idx"), on="ledger_idx"
        )
        if sure.height == 0:
            break
        linked.append(sure.select("line_no", "ledger_idx", "amount_minor", link_rank="rank"))
        candidates = candidates.filter(
            ~pl.col("line_no").is_in(sure["line_no"].implode())
            & ~pl.col("ledger_idx").is_in(sure["ledger_idx"].implode())
        )
    if not linked:
        return empty
    return pl.concat(linked).sort("line_no")


def _report_lines(payout_lines: pl.DataFrame) -> pl.DataFrame:
    lines = payout_lines.filter(
        pl.col("payout_id").is_not_null()
        & (pl.col("payout_id") != "")
        & ~pl.col("category").is_in(_PAYOUT_CATEGORIES)
    )
    return lines.with_row_index("line_no").with_columns(
        needs_item=~pl.col("category").is_in(_FEE_CATEGORIES)
    )


def report_line_links(ledger_prepared: pl.DataFrame, payout_lines: pl.DataFrame) -> pl.DataFrame:
    """The ledger item each report line links (``line_no``, ``ledger_idx``, the item's
    ``amount_minor``), worked out once for :func:`report_payout_groups` and
    :func:`report_linked_ledger`."""
    return _line_links(ledger_prepared, _report_lines(payout_lines))


def report_settled_items(line_links: pl.DataFrame) -> pl.Series:
    """``ledger_idx`` of the items the report says the processor settled: linked by the same id
    (as written or reformatted, not a bare number meeting another prefix) at the same amount.
    Such an order was paid through the processor, whether or not this statement holds the
    payout's credit: no other bank line can be its payment (at scale, chance same-amount pairs
    with unrelated bank lines would otherwise take the orders a payout needs)."""
    rank = pl.col("link_rank")
    return (line_links.filter((rank < _SETTLING_RANK) & (rank % 1_000_000 < 100_000))["ledger_idx"]
            .unique().sort())


def report_linked_ledger(ledger_prepared: pl.DataFrame, payout_lines: pl.DataFrame,
                         line_links: pl.DataFrame | None = None) -> pl.Series:
    """``ledger_idx`` of every ledger item a processor report's lines explain (whether or not
    the payout's bank credit is found): pass it as ``exclude_ledger`` to
    :func:`inferred_payout_groups`. ``line_links``: :func:`report_line_links`, when known."""
    if line_links is None:
        line_links = report_line_links(ledger_prepared, payout_lines)
    return line_links["ledger_idx"].unique().sort()


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
    bank_prepared: pl.DataFrame, ledger_prepared: pl.DataFrame, payout_lines: pl.DataFrame, rules: RuleSet,
    line_links: pl.DataFrame | None = None,
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
    line_links
        :func:`report_line_links` of the same frames, when the caller has it.

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
    weights = rules.weights.payouts
    payouts = _payouts(payout_lines)
    links = _bank_links(bank_prepared, payouts, rules)
    if links.height == 0:
        return empty_groups()
    lines = _report_lines(payout_lines)
    line_item = line_links if line_links is not None else _line_links(ledger_prepared, lines)  # with amounts
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
        .then(pl.lit(weights.payout_id))
        .otherwise(pl.lit(weights.exact_net) - pl.col("shared").cast(pl.Float64).log(2))
        + pl.col("named").cast(pl.Float64) * weights.processor_named
        + gaps.cast(pl.Float64) * weights.report_gap
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


def _store_pairs(bank: pl.DataFrame, stores: pl.DataFrame, allowed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(bank line, store) pairs of the same source and currency whose store words include every
    store word of the bank text (``bank_words``; ``matched`` = how many), and per bank line the
    stores left out by the cap.

    A line naming no store pairs with every store of its source and currency; a line naming
    some, with the stores that have all its words (found by word). A line keeps at most
    ``allowed`` stores, those with the most orders first (then the lowest store number): the
    cap bounds a month whose order descriptions split into thousands of "stores".

    Returns
    -------
    (pairs, capped)
        ``pairs`` in bank line order then store order; ``capped``: ``bank_idx``, ``left_out``
        (stores not examined) for the lines the cap bit.
    """
    lines = bank.select(
        "bank_idx", "source", "currency", "day", "amount_minor", "bank_text", bank_words="store_words"
    ).with_row_index("_b")
    named = pl.col("bank_words").list.len() > 0
    keys = ["source", "currency"]
    # unnamed lines: every store of the source, the same busiest ones for each line
    ranked = stores.sort("n_orders", "store_no", descending=[True, False]).with_columns(
        _rank=pl.int_range(pl.len()).over(keys), _stores=pl.len().over(keys)
    )
    every = (
        lines.filter(~named)
        .select("_b", *keys)
        .join(ranked.filter(pl.col("_rank") < allowed).select("store_no", *keys), on=keys)
        .select("_b", "store_no")
    )
    every_capped = (
        lines.filter(~named)
        .select("_b", "bank_idx", *keys)
        .join(ranked.group_by(keys).agg(pl.col("_stores").first()), on=keys)
        .filter(pl.col("_stores") > allowed)
        .select("bank_idx", left_out=pl.col("_stores") - allowed)
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
        .join(stores.select("store_no", "n_orders"), on="store_no")
        .sort("_b", "n_orders", "store_no", descending=[False, True, False])
        .with_columns(_rank=pl.int_range(pl.len()).over("_b"), _stores=pl.len().over("_b"))
    )
    by_word_capped = (
        by_word.filter(pl.col("_stores") > allowed)
        .group_by("_b")
        .agg(left_out=pl.col("_stores").first() - allowed)
        .join(lines.select("_b", "bank_idx"), on="_b")
        .select("bank_idx", "left_out")
    )
    by_word = by_word.filter(pl.col("_rank") < allowed).select("_b", "store_no")
    found = pl.concat([every, by_word]).sort("_b", "store_no")
    pairs = (
        lines.drop("_b")[found["_b"]]
        .hstack(stores.select("store_no", "store", "store_text", words_ledger="store_words")[found["store_no"]])
        .with_columns(matched=pl.col("bank_words").list.len())
    )
    capped = pl.concat([every_capped, by_word_capped.cast({"left_out": every_capped.schema["left_out"]})])
    return pairs, capped


def _scaled_pct(pct: Decimal) -> int:
    """A percentage in millionths of the whole (4 decimal places of the percentage)."""
    return int((Decimal(pct) * 10_000).to_integral_value())


def _bank_store_words(bank_lines: pl.DataFrame, stores: pl.DataFrame) -> pl.DataFrame:
    """The bank text's store words: its words (3+ letters) that some store of the same source
    carries, the source's own name words left out. Words no store knows (channel codes,
    "payout", "transfer", a truncated name) say nothing either way."""
    vocab = (
        stores.select("source", word=_words(pl.col("store")))
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


#: settlement windows evaluated at once (arrays of this many entries, a few dozen MB)
_WINDOW_BATCH = 1 << 20


def _weekday(day: np.ndarray) -> np.ndarray:
    """0 = Monday ... 6 = Sunday of an epoch day number (1970-01-01 was a Thursday)."""
    return (day + 3) % 7


def _fitting_windows(
    pairs: pl.DataFrame, day_key: np.ndarray, sums: dict[str, np.ndarray], cfg, span: np.int64
) -> pl.DataFrame:
    """Every settlement window of every (credit, store) pair that fits the fee band.

    For a pair, the windows are the day ranges ``d1..d2`` with ``d2`` 1..``max_lag_days`` days
    before the bank date and ``d2 - d1 < max_settlement_days``, both ends days with items of
    the store. A window's totals come from cumulative day totals (``sums``, one entry per
    (store, day) row and a leading zero): O(1) per window. Two totals are tried: the orders'
    gross with the window's refunds netted and, when the window has refunds and does not fit
    with them, the orders alone (refunds paid from another payout). Evaluated in batches of
    ``_WINDOW_BATCH`` windows so memory stays flat however many pairs there are.
    """
    lag = np.arange(1, max(cfg.max_lag_days, 0) + 1, dtype=np.int64)
    back = np.arange(cfg.max_settlement_days, dtype=np.int64)
    per_pair = len(lag) * len(back)
    if per_pair == 0 or pairs.height == 0:
        return pl.DataFrame()
    scale = 1_000_000
    fee_max, fee_min = _scaled_pct(cfg.fee_max_pct), _scaled_pct(cfg.fee_min_pct)
    n_keys = len(day_key)
    step = max(1, _WINDOW_BATCH // per_pair)
    found = []
    p_store_all = pairs["store_no"].to_numpy().astype(np.int64)
    p_day_all = pairs["day"].to_numpy().astype(np.int64)
    p_credit_all = pairs["amount_minor"].to_numpy().astype(np.int64)
    for start in range(0, pairs.height, step):  # batches of pairs, not rows
        p_store = p_store_all[start : start + step]
        p_day = p_day_all[start : start + step]
        p_credit = p_credit_all[start : start + step]
        shape = (len(p_store), len(lag), len(back))
        d2 = np.broadcast_to(p_day[:, None, None] - lag[None, :, None], shape).ravel()
        d1 = (np.broadcast_to(p_day[:, None, None] - lag[None, :, None], shape)
              - back[None, None, :]).ravel()
        base = np.broadcast_to(p_store[:, None, None] * span, shape).ravel()
        lo = np.searchsorted(day_key, base + d1, side="left")
        hi = np.searchsorted(day_key, base + d2, side="right")
        first_ok = (lo < n_keys) & (day_key[np.minimum(lo, n_keys - 1)] == base + d1)
        last_ok = (hi > 0) & (day_key[np.maximum(hi - 1, 0)] == base + d2)
        orders = sums["orders"][hi] - sums["orders"][lo]
        refunds = sums["refunds"][hi] - sums["refunds"][lo]
        credit = np.broadcast_to(p_credit[:, None, None], shape).ravel()
        ok = first_ok & last_ok & (sums["n_orders"][hi] > sums["n_orders"][lo])
        fits_netted = np.zeros(len(ok), dtype=bool)
        for netted, total in ((True, orders + refunds), (False, orders)):
            fits = (
                ok
                & (total > 0)
                & (total * (scale - fee_max) <= credit * scale)
                & (credit * scale <= total * (scale - fee_min))
            )
            if netted:
                fits_netted = fits
            else:  # without its refunds only when the window does not fit with them
                fits &= (refunds != 0) & ~fits_netted
            hit = np.flatnonzero(fits)
            if len(hit) == 0:
                continue
            # one business day's settlement: d2 a weekday, d1 after the business day before it
            # and no items on the days in between (Sat + Sun + Mon when the weekend had orders)
            weekday = _weekday(d2[hit])
            before = d2[hit] - np.where(weekday == 0, 3, 1)
            lo_roll = np.searchsorted(day_key, base[hit] + before + 1, side="left")
            aligned = (weekday < 5) & (d1[hit] > before) & (lo_roll == lo[hit])
            found.append(
                pl.DataFrame(
                    {
                        "pair": (hit // per_pair + start).astype(np.int64),
                        "lo": lo[hit],
                        "hi": hi[hit],
                        "d1": d1[hit].astype(np.int32),
                        "d2": d2[hit].astype(np.int32),
                        "gross": total[hit],
                        "netted": np.full(len(hit), netted & True) & (refunds[hit] != 0),
                        "aligned": aligned,
                    }
                )
            )
    return pl.concat(found) if found else pl.DataFrame()


def _usual_rates(cand: pl.DataFrame, tolerance: float) -> pl.DataFrame:
    """The usual fee rate (% of the gross) of each store, learnt from the run's candidates.

    A processor charges one merchant a stable rate; wrong windows scatter over the fee band.
    With at least three *confident* candidates (the only window fitting its credit) the usual
    rate is their median; otherwise it is the densest rate of all the store's candidates (the
    most candidates within a quarter of ``tolerance`` of it; among equally dense ones their
    median). Returns ``store_no``, ``usual_pct``.
    """
    h = tolerance / 4.0
    rates = cand.select("store_no", "_pct", "_unique").sort("store_no", "_pct")
    key = rates["store_no"].to_numpy().astype(np.float64) * 1_000.0 + rates["_pct"].to_numpy()
    density = np.searchsorted(key, key + h, side="right") - np.searchsorted(key, key - h, side="left")
    dense = (
        rates.with_columns(_density=pl.Series(density))
        .filter(pl.col("_density") == pl.col("_density").max().over("store_no"))
        .group_by("store_no")
        .agg(dense_pct=pl.col("_pct").median())
    )
    confident = (
        rates.filter(pl.col("_unique"))
        .group_by("store_no")
        .agg(conf_pct=pl.col("_pct").median(), n_conf=pl.len())
    )
    return dense.join(confident, on="store_no", how="left").select(
        "store_no",
        usual_pct=pl.when(pl.col("n_conf") >= 3).then("conf_pct").otherwise("dense_pct"),
    )


def inferred_payout_groups(
    bank_prepared: pl.DataFrame,
    ledger_prepared: pl.DataFrame,
    rules: RuleSet,
    exclude_ledger: pl.Series | None = None,
    caps: CapLog | None = None,
) -> pl.DataFrame:
    """Without processor data: a processor's bank credit vs the orders of a settlement window.

    A bank credit whose text names a payout source (``rules.payouts.sources`` bank words) is
    compared with the ledger items whose description names the same source (ledger words):
    orders (positive) and refunds (negative). Items are grouped by *store*: their description
    with order numbers and ids taken out (:func:`engine.prepare.orders.store_key`), so every
    ``Web order #5022 (Stripe)`` is one store, ``web order (stripe)``; a refund whose own
    description is no store's joins the only store of its source, if there is one. When the
    bank text shows store words ("CR TRF SHOPIFY PAYOUT SUMMIT FLORIST"), every one must be in
    the store's description.

    The items are first totalled per (store, order day). A credit's candidate windows are the
    day ranges ``d1..d2`` of one store with items on both ends, ``d2`` 1..``max_lag_days``
    days before the bank date and at most ``max_settlement_days`` days long: one order day,
    consecutive days, and business-day rolls (a weekday's orders with those of the weekend
    days before it, as daily rolling payouts settle them). A window fits when its total ``G``
    (orders' gross with the window's refunds netted; or, only when that does not fit, without
    them: refunds that went out with another payout) satisfies ``G x (1 - fee_max_pct %) <= credit <= G x (1 -
    fee_min_pct %)`` in exact integers; ``processor_fee = credit - G``.

    Scores (``rules.weights.payouts``): the fee in the band or zero, a typical fee, closeness to
    the store's usual fee rate learnt from the run's confident windows
    (:func:`_usual_rates`), store words, orders covered (capped), a business-day window.
    Always review unless the fee is exactly zero.

    Complexity: O(items) to total the days, then O(windows) with windows = credits x stores
    per credit x ``max_lag_days`` x ``max_settlement_days``, stores per credit capped so that
    a credit examines at most ``payouts.max_windows_per_credit`` windows (the stores the bank
    text names and with most orders first); windows are evaluated in fixed-size batches. A
    credit keeps at most ``payouts.max_groups_per_credit`` groups (best scores first), so the
    member lists are at most that many windows of ``max_settlement_days`` days each. Either cap
    biting is recorded in ``caps``.

    Parameters
    ----------
    bank_prepared, ledger_prepared
        Prepared bank lines / ledger items.
    rules
        The rule set (``rules.payouts``, ``rules.weights.prior``, ``rules.weights.payouts``).
    exclude_ledger
        Ledger items already explained by a processor report (:func:`report_linked_ledger`):
        ``ledger_idx`` values (integers) or ledger ids (text).
    caps
        Where caps that bite are recorded (the run's :class:`~engine.candidates.caps.CapLog`).

    Returns
    -------
    pl.DataFrame
        Groups in :data:`engine.candidates.groups.GROUP_SCHEMA`, kind ``payout``, the fitting
        windows (the group assignment keeps one store's payouts from overlapping).
        ``review_reason`` is set unless the fee is exactly zero.
    """
    cfg = rules.payouts
    weights = rules.weights.payouts
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
    items = (
        ledger_prepared.select(
            "ledger_idx", "id", pl.col("description").fill_null(""), "amount_minor", "currency", "day"
        )
        .filter((pl.col("amount_minor") != 0) & _any_source(pl.col("description"), rules, "ledger"))
    )
    if exclude_ledger is not None and exclude_ledger.len() > 0:
        column = "id" if exclude_ledger.dtype == pl.Utf8 else "ledger_idx"
        values = exclude_ledger.cast(pl.Utf8 if column == "id" else pl.UInt32)
        items = items.filter(~pl.col(column).is_in(values.implode()))
    # source and store worked out once per distinct description
    described = (
        items.select("description")
        .unique()
        .with_columns(
            source=_source_expr(pl.col("description"), rules, "ledger"),
            store=store_key(pl.col("description")),
            store_text=store_key(pl.col("description"), case_fold=False),
        )
    )
    items = items.join(described, on="description").filter(
        pl.col("source").is_not_null() & pl.col("day").is_not_null()
    )
    orders = items.filter(pl.col("amount_minor") > 0)
    if bank.height == 0 or orders.height == 0:
        return empty_groups()
    keys = ["source", "currency", "store"]
    stores = (
        orders.group_by(keys)
        .agg(n_orders=pl.len(), store_text=pl.col("store_text").min())
        .sort(keys)
        .with_row_index("store_no")
        .with_columns(store_words=_words(pl.col("store")))
    )
    orders = orders.join(stores.select(*keys, "store_no"), on=keys)
    # a refund joins the store of its own description, else the only store of its source
    only_store = (
        stores.group_by("source", "currency")
        .agg(pl.col("store_no").first(), n=pl.len())
        .filter(pl.col("n") == 1)
        .select("source", "currency", only="store_no")
    )
    refunds = (
        items.filter(pl.col("amount_minor") < 0)
        .join(stores.select(*keys, "store_no"), on=keys, how="left")
        .join(only_store, on=["source", "currency"], how="left")
        .with_columns(store_no=pl.coalesce("store_no", "only"))
        .filter(pl.col("store_no").is_not_null())
        .drop("only")
    )
    store_words = _bank_store_words(bank, stores)
    bank = bank.join(store_words, on="bank_idx", how="left", maintain_order="left").with_columns(
        store_words=pl.col("store_words").fill_null(pl.lit([], dtype=pl.List(pl.Utf8)))
    )
    per_store = max(cfg.max_lag_days, 0) * cfg.max_settlement_days
    if per_store == 0:
        return empty_groups()
    allowed = max(1, cfg.max_windows_per_credit // per_store)
    pairs, capped = _store_pairs(bank, stores, allowed)
    if caps is not None and capped.height:
        named = capped.join(bank.select("bank_idx", "bank_text", "currency", "amount_minor"), on="bank_idx")
        caps.bit(
            "inferred payouts",
            "payouts.max_windows_per_credit",
            cfg.max_windows_per_credit,
            _credit_names(named),
            int(capped["left_out"].sum()) * per_store,
            "settlement windows",
        )
    if pairs.height == 0:
        return empty_groups()
    # day totals per store: the windows are summed from these, not from the orders
    day_rows = (
        pl.concat(
            [
                orders.select("store_no", "day", o=pl.col("amount_minor"), r=pl.lit(0, pl.Int64),
                              no=pl.lit(1, pl.Int64), nr=pl.lit(0, pl.Int64)),
                refunds.select("store_no", "day", o=pl.lit(0, pl.Int64), r=pl.col("amount_minor"),
                               no=pl.lit(0, pl.Int64), nr=pl.lit(1, pl.Int64)),
            ],
            how="vertical_relaxed",
        )
        .group_by("store_no", "day")
        .agg(pl.col("o", "r", "no", "nr").sum())
        .sort("store_no", "day")
    )
    span = np.int64(1 << 32)
    day_key = day_rows["store_no"].to_numpy().astype(np.int64) * span + day_rows["day"].to_numpy().astype(
        np.int64
    )

    def cumulative(col: str) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(day_rows[col].to_numpy().astype(np.int64))])

    sums = {"orders": cumulative("o"), "refunds": cumulative("r"), "n_orders": cumulative("no"),
            "n_refunds": cumulative("nr")}
    windows = _fitting_windows(pairs, day_key, sums, cfg, span)
    if windows.height == 0:
        return empty_groups()
    cand = pairs.select(
        "bank_idx", "source", "currency", "amount_minor", "bank_text", "bank_words", "store_no",
        "store_text", "matched",
    )[windows["pair"]].hstack(windows.drop("pair"))
    lo, hi = cand["lo"].to_numpy(), cand["hi"].to_numpy()
    netted = cand["netted"].to_numpy()
    cand = cand.with_columns(
        n_orders=pl.Series(sums["n_orders"][hi] - sums["n_orders"][lo]),
        n_refunds=pl.Series(np.where(netted, sums["n_refunds"][hi] - sums["n_refunds"][lo], 0)),
        # positions of the window's orders / refunds in the (store, day)-sorted item lists
        o_lo=pl.Series(sums["n_orders"][lo]),
        o_hi=pl.Series(sums["n_orders"][hi]),
        r_lo=pl.Series(sums["n_refunds"][lo]),
        r_hi=pl.Series(np.where(netted, sums["n_refunds"][hi], sums["n_refunds"][lo])),
    )
    fee = pl.col("amount_minor") - pl.col("gross")  # <= 0
    pct = (-fee).cast(pl.Float64) * 100.0 / pl.col("gross").cast(pl.Float64)
    cand = cand.with_columns(_pct=pct, _unique=pl.len().over("bank_idx") == 1)
    cand = cand.join(_usual_rates(cand, weights.usual_rate_tolerance_pct), on="store_no", how="left")
    closeness = (
        1.0 - (pl.col("_pct") - pl.col("usual_pct")).abs() / weights.usual_rate_tolerance_pct
    ).clip(0.0, 1.0)
    n_items = pl.col("n_orders") + pl.col("n_refunds")
    score = (
        pl.lit(prior)
        + weights.processor_named
        + pl.when(fee == 0).then(pl.lit(weights.zero_fee)).otherwise(pl.lit(weights.fee_band))
        + pl.when((pct >= weights.typical_fee_min_pct) & (pct <= weights.typical_fee_max_pct))
        .then(pl.lit(weights.typical_fee))
        .otherwise(pl.lit(weights.edge_fee))
        + pl.col("_closeness") * weights.usual_rate
        + pl.col("matched").clip(0, weights.store_words_max).cast(pl.Float64) * weights.store_word
        + (n_items.cast(pl.Float64) * weights.per_order).clip(None, weights.per_order_max)
        + pl.col("aligned").cast(pl.Float64) * weights.business_day
    )
    cand = (
        cand.with_columns(_closeness=closeness)
        .with_columns(_usual=pl.col("_closeness") > 0, score=score)
        .sort(
            ["bank_idx", "score", "store_no", "d2", "d1", "netted"],
            descending=[False, True, False, True, False, True],
        )
        .with_columns(_rank=pl.int_range(pl.len()).over("bank_idx"), _n=pl.len().over("bank_idx"))
    )
    keep = cfg.max_groups_per_credit
    over = cand.filter((pl.col("_rank") == 0) & (pl.col("_n") > keep))
    if caps is not None and over.height:
        caps.bit(
            "inferred payouts",
            "payouts.max_groups_per_credit",
            keep,
            _credit_names(over),
            int((over["_n"] - keep).sum()),
            "fitting settlement windows (lower scores)",
        )
    cand = cand.filter(pl.col("_rank") < keep).drop("_rank", "_n").with_row_index("cand")
    # member lists: the window's orders, and its refunds when netted
    order_members = orders.sort("store_no", "day", "ledger_idx")["ledger_idx"].to_numpy()
    refund_members = refunds.sort("store_no", "day", "ledger_idx")["ledger_idx"].to_numpy()
    flat_orders = cand.select("cand", pos=pl.int_ranges("o_lo", "o_hi")).explode("pos").drop_nulls()
    flat_refunds = cand.select("cand", pos=pl.int_ranges("r_lo", "r_hi")).explode("pos").drop_nulls()
    ledger_lists = (
        pl.concat(
            [
                flat_orders.select("cand", ledger_idx=pl.Series(
                    order_members[flat_orders["pos"].to_numpy()], dtype=pl.UInt32)),
                flat_refunds.select("cand", ledger_idx=pl.Series(
                    refund_members[flat_refunds["pos"].to_numpy()], dtype=pl.UInt32)),
            ]
        )
        .group_by("cand")
        .agg(pl.col("ledger_idx").sort())
    )
    cand = cand.join(ledger_lists, on="cand").sort("cand")
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
        + pl.col("n_orders").cast(pl.Utf8)
        + pl.lit(" orders '")
        + pl.col("store_text")
        + pl.lit("' of ")
        + _date_text(pl.col("d1"))
        + pl.when(pl.col("d2") != pl.col("d1"))
        .then(pl.lit(" to ") + _date_text(pl.col("d2")))
        .otherwise(pl.lit(""))
        + pl.when(pl.col("aligned") & (pl.col("d2") != pl.col("d1")))
        .then(pl.lit(" (a business day with the weekend before it)"))
        .otherwise(pl.lit(""))
        + pl.when(pl.col("n_refunds") > 0)
        .then(pl.lit(", ") + pl.col("n_refunds").cast(pl.Utf8) + pl.lit(" refunds netted"))
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
        score="score",
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


def _credit_names(credits: pl.DataFrame) -> list[str]:
    """Readable partition names of bank credits for a cap warning."""
    cur = pl.col("currency")
    return credits.select(
        pl.lit("credit '") + pl.col("bank_text").fill_null("").str.slice(0, 40) + pl.lit("' ")
        + cur + pl.lit(" ") + format_minor_expr(pl.col("amount_minor"), cur)
    ).to_series().to_list()


def _split_words(text: str) -> list[str]:
    return [w for w in "".join(ch.lower() if ch.isalpha() else " " for ch in text).split() if w]
