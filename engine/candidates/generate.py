"""All candidate groups of a run: every group generator, side by side, checked to balance.

Stage 2b of the engine (after :mod:`engine.candidates.pairs`, beside it in time). Each generator is
its own module of this package and returns frames of :data:`engine.candidates.groups.GROUP_SCHEMA`;
this module runs them, concatenates their groups and refuses any group that does not balance.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import polars as pl

from engine.candidates.caps import CapLog
from engine.candidates.compound import compound_groups
from engine.candidates.fx import fx_groups
from engine.candidates.groups import adjustment_total, conform, empty_groups
from engine.candidates.payouts import (
    inferred_payout_groups,
    report_line_links,
    report_linked_ledger,
    report_payout_groups,
    report_settled_items,
)
from rules.model import RuleSet


class CandidateGroups(NamedTuple):
    """What the group generators give the assignment."""

    #: every candidate group, :data:`engine.candidates.groups.GROUP_SCHEMA`
    groups: pl.DataFrame
    #: ``ledger_idx`` of the items a processor report says the processor settled
    #: (:func:`engine.candidates.payouts.report_settled_items`): only its payout may take them,
    #: no pair and no other group
    settled: pl.Series


def candidate_groups(
    bank_prepared: pl.DataFrame,
    ledger_prepared: pl.DataFrame,
    rules: RuleSet,
    fx_rates: pl.DataFrame | None = None,
    payout_lines: pl.DataFrame | None = None,
    caps: CapLog | None = None,
) -> CandidateGroups:
    """Every candidate group (``engine.candidates.groups.GROUP_SCHEMA``) of the run: one bank line to
    several items and back, FX receipts, processor payouts (from the report when given, else
    inferred), and the items the report settles. A group that does not balance exactly (bank
    total = ledger total + adjustments) is a defect of its generator and is refused here. Caps
    that bit are recorded in ``caps``."""
    caps = caps if caps is not None else CapLog()

    def processor_and_fx() -> tuple[list[pl.DataFrame], pl.Series]:
        frames = []
        if fx_rates is not None and fx_rates.height:
            frames.append(fx_groups(bank_prepared, ledger_prepared, fx_rates, rules))
        explained = None
        settled = pl.Series("ledger_idx", [], dtype=pl.UInt32)
        if payout_lines is not None and payout_lines.height:
            links = report_line_links(ledger_prepared, payout_lines)
            frames.append(report_payout_groups(bank_prepared, ledger_prepared, payout_lines, rules, line_links=links))
            explained = report_linked_ledger(ledger_prepared, payout_lines, line_links=links)
            settled = report_settled_items(links).cast(pl.UInt32)
        frames.append(inferred_payout_groups(bank_prepared, ledger_prepared, rules, exclude_ledger=explained,
                                             caps=caps))
        return frames, settled

    # the compound generators and the processor / FX ones are independent: side by side (mostly
    # Polars and numpy work, which releases the GIL)
    with ThreadPoolExecutor(max_workers=1) as pool:
        beside = pool.submit(processor_and_fx)
        frames = [compound_groups(bank_prepared, ledger_prepared, rules, caps=caps)]
        more, settled = beside.result()
    frames += more
    groups = pl.concat([conform(f) for f in frames]) if frames else empty_groups()
    if settled.len():
        touches = groups["ledger_idx"].list.eval(pl.element().is_in(settled.implode())).list.any()
        groups = groups.filter((pl.col("kind") == "payout") | ~touches)
    bank_total = (
        groups.select(pl.int_range(pl.len()).alias("g"), "bank_idx").explode("bank_idx")
        .join(bank_prepared.select("bank_idx", "amount_minor"), on="bank_idx", how="left")
        .group_by("g").agg(pl.col("amount_minor").sum()).sort("g")["amount_minor"]
    )
    balanced = groups.select(
        pl.col("ledger_total") + adjustment_total(pl.col("adjustments"))
    ).to_series() == bank_total
    if not balanced.all():
        raise AssertionError(
            f"{(~balanced).sum()} candidate group(s) do not balance: {groups.filter(~balanced).head(3)}"
        )
    return CandidateGroups(groups, settled)
