"""The match run (engine): prepared frames -> candidates -> scores -> assignment -> proposals.

One function, :func:`match_frames`, runs the stages on canonical frames and returns proposals and
unmatched lines as Polars frames; the CLI, the workspace store and notebooks all go through it
(``engine.api.match`` prepares each side as soon as it is read, then calls :func:`match_prepared`,
the stages after preparation).
Proposals are groups (bank ids x ledger ids + adjustments): plain pairs from the scored candidates,
and compound groups (one line to many items and back, FX receipts, processor payouts) from their
generators, chosen together by :func:`engine.assignment.groups.assign_with_groups`.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import duckdb
import polars as pl

from engine.assignment.groups import assign_with_groups
from engine.assignment.pairs import EXACT_METHOD
from engine.candidates.caps import CapLog
from engine.candidates.generate import candidate_groups
from engine.candidates.pairs import generate_candidates
from engine.memory import default_limit, fit_pairs
from engine.prepare.features import prepare_bank, prepare_ledger
from engine.progress import Progress
from engine.scoring import explain, score_candidates, with_evidence
from engine.scoring.differences import cause as difference_cause
from engine.scoring.evidence import measure_pairs
from engine.scoring.explain import level_keys
from engine.scoring.floor import FLOOR_REASON, FLOORED, lift_to_review
from engine.scoring.score import level_codes, scored_frame, scorer_for
from engine.scoring.scorers import RulesScorer
from engine.writeoffs import demand_proof
from models.money import format_minor_expr
from models.schema import BANK_SCHEMA, ID_SEPARATOR, LEDGER_SCHEMA, MATCH_COLUMNS
from rules.model import RuleSet


@dataclass
class MatchOutcome:
    """Everything a run produces, as Polars frames.

    Attributes
    ----------
    proposals
        One row per proposed match group (``MATCH_COLUMNS`` + extras), sorted by ``match_id``.
    match_lines
        Long form: ``match_id``, ``side`` ('bank'/'ledger'), ``id``, ``amount_minor``, ``currency``.
    unmatched_bank, unmatched_ledger
        Canonical rows not in any proposal, plus ``reason``.
    scored
        All scored candidate pairs in compact form (``engine.scoring.COMPACT_SCHEMA``).
    candidates
        All scored candidate pairs (ids, confidence, level columns and the evidence text
        columns) for analysts, built from ``scored`` the first time it is read;
        :meth:`explain_candidates` renders the evidence sentence of the ones you pick.
    timings
        Seconds per stage.
    """

    proposals: pl.DataFrame
    match_lines: pl.DataFrame
    unmatched_bank: pl.DataFrame
    unmatched_ledger: pl.DataFrame
    scored: pl.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    #: the per-line columns the candidate view gathers (prepared bank / ledger frames)
    view_inputs: tuple[pl.DataFrame, pl.DataFrame, RuleSet] | None = field(default=None, repr=False)
    #: which scorer scored the pairs (``rules``, ``estimated``, ``learned``) and the weight of every
    #: level it used, beside the rule set's (``engine.scoring.scorers.weights_frame``)
    scorer_kind: str = "rules"
    weights: pl.DataFrame | None = None
    #: what the run wants its user to know (an estimate that fell back to the rule set, a cap that bit)
    warnings: list[str] = field(default_factory=list)
    _candidates: pl.DataFrame | None = field(default=None, init=False, repr=False)

    @property
    def candidates(self) -> pl.DataFrame:
        if self._candidates is None:
            bank, ledger, rules = self.view_inputs
            self._candidates = with_evidence(self.scored, bank, ledger, rules).with_columns(
                bank_id=bank["id"].gather(self.scored["bank_idx"]),
                ledger_id=ledger["id"].gather(self.scored["ledger_idx"]),
            )
        return self._candidates

    def explain_candidates(self, candidates: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
        """``candidates`` (rows of :attr:`candidates`) with their readable ``evidence``."""
        return candidates.with_columns(evidence=explain(candidates, rules))

    def counts(self) -> dict[str, int]:
        status = self.proposals["status"]
        return {
            "proposals": self.proposals.height,
            "auto": int((status == "auto").sum()),
            "review": int((status == "review").sum()),
            "bank_auto": int(self.match_lines.filter(
                (pl.col("side") == "bank")
                & pl.col("match_id").is_in(self.proposals.filter(pl.col("status") == "auto")["match_id"].implode())
            ).height),
            "bank_review": int(self.match_lines.filter(
                (pl.col("side") == "bank")
                & pl.col("match_id").is_in(self.proposals.filter(pl.col("status") == "review")["match_id"].implode())
            ).height),
            "unmatched_bank": self.unmatched_bank.height,
            "unmatched_ledger": self.unmatched_ledger.height,
        }


def match_id_expr(bank_ids: pl.Expr, ledger_ids: pl.Expr) -> pl.Expr:
    """Stable id of a match group: same bank and ledger ids -> same id, in any order."""
    return _match_id_of_sorted(bank_ids.list.sort(), ledger_ids.list.sort())


def _match_id_of_sorted(bank_ids: pl.Expr, ledger_ids: pl.Expr) -> pl.Expr:
    """:func:`match_id_expr` of id lists already in id order."""
    return _match_id_of_key(
        pl.lit("b:") + bank_ids.list.join("\x1f") + pl.lit("|l:") + ledger_ids.list.join("\x1f")
    )


def _match_id_of_key(key: pl.Expr) -> pl.Expr:
    """``models.ids.short_id("M-", key)`` of each key (``b:`` + bank ids + ``|l:`` + ledger
    ids): the first 16 hex digits of the SHA-1 of its UTF-8 bytes, computed by DuckDB's
    ``sha1`` over the whole column (hashlib would take one Python call per row)."""
    return key.map_batches(_match_ids, return_dtype=pl.Utf8)


def _match_ids(keys: pl.Series) -> pl.Series:
    staged = keys.rename("key").to_frame().to_arrow()
    with duckdb.connect() as con:
        con.register("staged", staged)
        # a projection without ORDER BY keeps the input order (preserve_insertion_order)
        ids = con.sql("SELECT 'M-' || left(sha1(key), 16) AS match_id FROM staged").to_arrow_table()
    return pl.Series(keys.name, ids.column("match_id"), dtype=pl.Utf8)


def _without_excluded(scored: pl.DataFrame, groups: pl.DataFrame, excluded: pl.DataFrame,
                      bank_prepared: pl.DataFrame, ledger_prepared: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``scored`` pairs and candidate ``groups`` but those whose match id is excluded; only
    candidates touching an excluded group's bank lines are given an id to compare."""
    excluded_ids = excluded["match_id"].unique().implode()
    bank_ids = bank_prepared["id"]
    touched = bank_prepared.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("bank_idx"), "id").filter(
        pl.col("id").is_in(excluded.filter(pl.col("side") == "bank")["id"].implode())
    )["bank_idx"].implode()
    pairs = scored.with_row_index("_row").filter(pl.col("bank_idx").is_in(touched))
    if pairs.height:
        pair_ids = pairs.select(
            "_row",
            _match_id_of_key(pl.lit("b:") + bank_ids.gather(pairs["bank_idx"]) + pl.lit("|l:")
                             + ledger_prepared["id"].gather(pairs["ledger_idx"])).alias("match_id"),
        )
        drop = pair_ids.filter(pl.col("match_id").is_in(excluded_ids))["_row"]
        scored = scored.with_row_index("_row").filter(~pl.col("_row").is_in(drop.implode())).drop("_row")
    numbered = groups.with_row_index("_group")
    near = numbered.filter(pl.col("bank_idx").list.eval(pl.element().is_in(touched)).list.any())
    if near.height:
        def ids(column: str, frame: pl.DataFrame) -> pl.DataFrame:
            long = near.select("_group", column).explode(column).drop_nulls(column)
            return long.with_columns(id=frame["id"].gather(long[column])).group_by("_group").agg(
                pl.col("id").alias(column))

        keyed = ids("bank_idx", bank_prepared).join(ids("ledger_idx", ledger_prepared), on="_group")
        drop = keyed.filter(match_id_expr(pl.col("bank_idx"), pl.col("ledger_idx")).is_in(excluded_ids))["_group"]
        groups = numbered.filter(~pl.col("_group").is_in(drop.implode())).drop("_group")
    return scored, groups


def _id_order(match_id: pl.Expr) -> pl.Expr:
    """A number that sorts match ids as their text does ("M-" + 16 lowercase hex digits), so
    the outputs are sorted on one integer rather than on text."""
    return match_id.str.slice(2).str.to_integer(base=16, dtype=pl.UInt64)


def _fmt(value: pl.Expr, digits: int = 2) -> pl.Expr:
    return value.round(digits).cast(pl.Utf8)


def _below_auto(auto: float) -> pl.Expr:
    """"confidence 0.94 below auto threshold 0.97": with four decimals where two would show the
    threshold itself (0.9697 reads "0.97 below 0.97" otherwise)."""
    confidence = pl.col("confidence")
    shown = pl.when(confidence.round(2) >= auto).then(_fmt(confidence, 4)).otherwise(_fmt(confidence))
    return pl.lit("confidence ") + shown + pl.lit(" below auto threshold ") + pl.lit(str(auto))


def match_frames(
    bank: pl.DataFrame,
    ledger: pl.DataFrame,
    rules: RuleSet,
    fx_rates: pl.DataFrame | None = None,
    payout_lines: pl.DataFrame | None = None,
    aliases: pl.DataFrame | None = None,
) -> MatchOutcome:
    """Run the whole match on canonical frames.

    Parameters
    ----------
    bank, ledger
        Canonical frames (``models.schema.BANK_SCHEMA`` / ``LEDGER_SCHEMA``), duplicates removed.
    rules
        The rule set.
    fx_rates
        FX rates (``feeds.fx.FX_SCHEMA``) for ledger items in another currency than the bank
        line; without them such items are not matched.
    payout_lines
        Processor payout lines (``models.schema.PAYOUT_LINE_SCHEMA``); without them processor
        credits are matched to orders with an inferred fee (always for review).
    aliases
        Names that are the same party in any script (:func:`feeds.aliases.read_aliases`).

    Returns
    -------
    MatchOutcome
    """
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:  # the two sides side by side
        ledger_job = pool.submit(prepare_ledger_frame, ledger, rules, aliases)
        bank_prepared = prepare_bank_frame(bank, aliases)
        ledger_prepared = ledger_job.result()
    return match_prepared(bank_prepared, ledger_prepared, rules, fx_rates, payout_lines,
                          {"prepare": time.perf_counter() - t0})


def prepare_bank_frame(bank: pl.DataFrame, aliases: pl.DataFrame | None = None) -> pl.DataFrame:
    """The bank side of a run: canonical bank lines in id order, prepared for matching
    (``aliases``: the workspace's alias table, :func:`feeds.aliases.read_aliases`).

    The canonical row order (by id) breaks ties the same way whatever order the files listed
    the lines in, so the same inputs always give the same proposals and ids."""
    return prepare_bank(bank.sort("id"), aliases=aliases)


def prepare_ledger_frame(ledger: pl.DataFrame, rules: RuleSet, aliases: pl.DataFrame | None = None) -> pl.DataFrame:
    """The ledger side of a run (see :func:`prepare_bank_frame`)."""
    return prepare_ledger(ledger.sort("id"), rules, aliases=aliases)


def match_prepared(
    bank_prepared: pl.DataFrame,
    ledger_prepared: pl.DataFrame,
    rules: RuleSet,
    fx_rates: pl.DataFrame | None = None,
    payout_lines: pl.DataFrame | None = None,
    timings: dict[str, float] | None = None,
    progress: Progress | None = None,
    memory_limit: int | None = None,
    excluded: pl.DataFrame | None = None,
) -> MatchOutcome:
    """:func:`match_frames` on sides already prepared by :func:`prepare_bank_frame` and
    :func:`prepare_ledger_frame` (a caller that reads the files can prepare each side as soon as
    it is read); ``timings`` are carried over into the outcome's. ``excluded``: groups not to
    propose (a reviewer rejected them), as their lines (``match_id``, ``side``, ``id``); their
    lines may still be proposed in other groups."""
    timings = dict(timings or {})
    caps = CapLog()
    progress = progress if progress is not None else Progress(bars=False)
    memory_limit = memory_limit if memory_limit is not None else default_limit()
    budget_warnings: list[str] = []

    # the group generators and the pair stages are independent: run them side by side (both
    # are mostly Polars/numpy work, which releases the GIL)
    def timed_groups() -> tuple[pl.DataFrame, float]:
        start = time.perf_counter()
        with progress.stage("group candidates"):
            found = candidate_groups(bank_prepared, ledger_prepared, rules, fx_rates, payout_lines, caps=caps)
        return found, time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=1) as pool:
        groups_job = pool.submit(timed_groups)
        t0 = time.perf_counter()
        with progress.stage("candidate pairs"):
            pairs = generate_candidates(bank_prepared, ledger_prepared, rules)
            pairs, pair_warning = fit_pairs(pairs, bank_prepared, ledger_prepared, memory_limit)
            budget_warnings += [pair_warning] if pair_warning else []
        timings["candidates"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with progress.stage("pair evidence"):
            evidence = measure_pairs(pairs, bank_prepared, ledger_prepared, rules) if pairs.height else None
            codes = level_codes(evidence, bank_prepared, ledger_prepared, rules) if evidence is not None else None
        timings["scoring"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with progress.stage(f"{rules.scoring.scorer} scorer"):
            scorer = (scorer_for(rules, evidence, codes, bank_prepared, ledger_prepared) if evidence is not None
                      else RulesScorer(rules))
        timings["scorer"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with progress.stage("scoring pairs"):
            scored = (scored_frame(pairs, evidence, codes, scorer) if evidence is not None
                      else score_candidates(pairs, bank_prepared, ledger_prepared, rules, evidence=False))
        timings["scoring"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        (groups, settled), timings["groups"] = groups_job.result()
        if settled.len():  # the report's orders are its payouts' to take, no bank line's pair
            scored = scored.filter(~pl.col("ledger_idx").is_in(settled.implode()))
        if excluded is not None and excluded.height:
            scored, groups = _without_excluded(scored, groups, excluded, bank_prepared, ledger_prepared)
        timings["waiting for groups"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    th = rules.thresholds
    # a nameless line the amount alone singles out is at least proposed for review
    scored = lift_to_review(scored, rules)
    # weigh pairs and groups by their evidence in bits above the review threshold (always > 0)
    floor = math.log2(th.review / (1.0 - th.review)) if th.review < 1 else 0.0
    scored = scored.with_columns(weight=(pl.col("score") - floor + 1.0).clip(lower_bound=1e-6))
    groups = groups.with_columns(
        weight=(pl.col("score") - floor + 1.0).clip(lower_bound=1e-6),
        confidence=_confidence(pl.col("score")),
    )
    with progress.stage("assignment"):
        chosen, chosen_groups, pair_runner_ups = assign_with_groups(
            scored, groups, th.review, bank_prepared.height, th.ambiguity_margin
        )
    timings["assignment"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with progress.stage("proposals"):
        outputs = _outputs(chosen, chosen_groups, pair_runner_ups, groups, scored, bank_prepared, ledger_prepared,
                           rules, fx_rates)
    timings["output"] = time.perf_counter() - t0
    # what the candidate view gathers per line, not the whole prepared frames
    view_inputs = (bank_prepared.select("id", "amount_minor", "currency", "name_key"),
                   ledger_prepared.select("id", "amount_minor", "doc_ref", "name_key", "type_norm"), rules)
    return MatchOutcome(*outputs, scored.drop("weight"), timings, view_inputs, scorer_kind=scorer.kind,
                        weights=scorer.weights(), warnings=[*getattr(scorer, "warnings", []), *caps.messages(), *budget_warnings])


def _outputs(chosen, chosen_groups, pair_runner_ups, groups, scored, bank_prepared, ledger_prepared, rules,
             fx_rates=None):
    """Proposals, match lines, unmatched bank lines and ledger items (the first fields of
    :class:`MatchOutcome`, in order)."""
    # gathers from a column in many chunks are an order of magnitude slower than from one
    bank_prepared = bank_prepared.with_columns(
        bank_prepared[name].rechunk() for name in ("id", "amount_minor", "currency", "date", "description")
    )
    ledger_prepared = ledger_prepared.with_columns(
        ledger_prepared[name].rechunk()
        for name in ("id", "amount_minor", "currency", "date", "counterparty", "description")
    )
    labels = _group_labels(groups, chosen_groups, pair_runner_ups, bank_prepared, ledger_prepared)
    taken = pl.concat([
        chosen.select("bank_idx", "ledger_idx"),
        chosen_groups.join(groups.with_row_index("group").select("group", "bank_idx", "ledger_idx"), on="group")
        .select("bank_idx", "ledger_idx").explode("bank_idx").explode("ledger_idx"),
    ])
    # the pair proposals, the group proposals and the unmatched lines are independent; much of
    # their work is one expression at a time (one core), so build them side by side
    with ThreadPoolExecutor(max_workers=1) as pool:
        group_job = pool.submit(_group_proposals, chosen_groups, groups, bank_prepared, ledger_prepared, rules, labels)
        unmatched_job = pool.submit(_unmatched, taken, scored, bank_prepared, ledger_prepared, rules, fx_rates)
        proposals, lines = _proposals(chosen, scored, bank_prepared, ledger_prepared, rules, pair_runner_ups, labels)
        g_proposals, g_lines = group_job.result()
        proposals = pl.concat([proposals, g_proposals], how="diagonal_relaxed").sort(_id_order(pl.col("match_id")))
        # by match id, then side, then id: each match's lines come bank lines first, each side in
        # id order, so a stable sort on the match id alone gives that order
        lines = pl.concat([lines, g_lines], how="vertical_relaxed").sort(
            _id_order(pl.col("match_id")), maintain_order=True
        )
        unmatched_bank, unmatched_ledger = unmatched_job.result()
    # an automatic write-off needs proof that nothing else explains the difference
    proposals = demand_proof(
        proposals.drop("open_minor"), lines, proposals.select("match_id", "open_minor").drop_nulls(),
        bank_prepared, ledger_prepared, rules,
    )
    return proposals, lines, unmatched_bank, unmatched_ledger


def _adjustments_expr(rules: RuleSet) -> pl.Expr:
    """One balancing line per proposal whose amounts differ: ``cause amount (account)``, where
    bank amount = ledger amount + adjustment amount; empty when the amounts are equal.

    A negative difference leaves the bank side worse off (received less, or paid more): a flat
    fee (up to ``adjustments.bank_charge_max``, a whole multiple of ``bank_charge_step``, not a
    whole percentage of the item) is a bank charge. Otherwise money in that is short is a short
    payment and money out that is larger an overpayment; a positive difference is money in
    overpaid or money out short-paid (a discount taken)."""
    diff = pl.col("amount_bank") - pl.col("amount_ledger")
    return pl.when(diff == 0).then(pl.lit("")).otherwise(
        adjustment_line(difference_cause(rules), diff, pl.col("currency"), rules)
    )


def _scored_rows(scored: pl.DataFrame, *pairs: tuple[pl.Series, pl.Series]) -> list[pl.Series]:
    """The row of ``scored`` holding each (bank_idx, ledger_idx) pair, null where the pair was
    not scored (or an index is null): one binary search per pair over the pair keys, sorted
    once, instead of a hash table over all scored pairs per look-up. Scored pairs are unique."""
    def key(bank: pl.Series, ledger: pl.Series) -> pl.Series:
        return bank.cast(pl.UInt64) * (1 << 32) + ledger.cast(pl.UInt64)

    keys = key(scored["bank_idx"], scored["ledger_idx"]).rechunk()
    order = None
    if not keys.is_sorted():
        order = keys.arg_sort()
        keys = keys.gather(order)
    rows = []
    for bank, ledger in pairs:
        wanted = key(bank, ledger)
        if keys.len() == 0:
            rows.append(pl.Series(dtype=pl.UInt32).extend_constant(None, wanted.len()))
            continue
        pos = keys.search_sorted(wanted.fill_null(0), side="left").clip(upper_bound=keys.len() - 1)
        found = pl.DataFrame({"pos": pos, "hit": (keys.gather(pos) == wanted).fill_null(False)})
        row = found.select(pl.when(pl.col("hit")).then(pl.col("pos"))).to_series()
        rows.append(row if order is None else order.gather(row))
    return rows


def _only_where(df: pl.DataFrame, rows: pl.Expr, **columns: pl.Expr) -> pl.DataFrame:
    """``df`` plus ``columns`` evaluated only on the rows where ``rows`` holds (null on the
    others). Polars evaluates every branch of a when/then on every row, so text that only a
    few rows need is cheaper built on those rows alone."""
    numbered = df.with_row_index("_row")
    # lazily, so that only the columns the expressions use are filtered
    subset = numbered.lazy().filter(rows).select("_row", **columns).collect()
    return numbered.join(subset, on="_row", how="left", maintain_order="left").drop("_row")


def _proposals(chosen, scored, bank_prepared, ledger_prepared, rules, pair_runner_ups=None, labels=None):
    """Proposals and match lines of the chosen pairs, unsorted (the caller sorts them with the
    group proposals); the lines are all bank lines, then all ledger lines."""
    bank_idx, ledger_idx = chosen["bank_idx"], chosen["ledger_idx"]
    picked_rows, ru_ledger_rows, ru_bank_rows = _scored_rows(
        scored,
        (bank_idx, ledger_idx),
        # the runner-up pair: this bank line with another item, or this item with another line
        (bank_idx, chosen["runner_up_ledger_idx"]),
        (chosen["runner_up_bank_idx"], ledger_idx),
    )
    picked = with_evidence(scored.select(pl.all().gather(picked_rows)), bank_prepared, ledger_prepared, rules)
    df = _pair_columns(chosen, picked, scored, bank_prepared, ledger_prepared, rules, pair_runner_ups, labels,
                       picked_rows, ru_ledger_rows, ru_bank_rows)
    df = df.with_columns(evidence=explain(picked, rules)).with_columns(
        explanation=pl.concat_str(
            [
                pl.col("evidence"),
                pl.when(pl.col("amount_bank") != pl.col("amount_ledger"))
                .then(pl.lit("balanced by ") + pl.col("_adjustments")),
                pl.when(pl.col("status") == "review").then(pl.lit("review: ") + pl.col("_why_review")),
                pl.when(pl.col("method") != EXACT_METHOD).then(pl.lit("assignment: ") + pl.col("method")),
            ],
            separator="; ",
            ignore_nulls=True,
        ),
    )
    proposals = df.select(
        "match_id",
        pl.lit("one_to_one").alias("match_type"),
        "status",
        pl.col("confidence").round(4),
        # one id a side: the id lists joined by ID_SEPARATOR are the ids themselves
        pl.col("bank_id").alias("bank_ids"),
        pl.col("ledger_id").alias("ledger_ids"),
        "bank_amount",
        "ledger_amount",
        "difference",
        "currency",
        "explanation",
        "adjustments",
        pl.col("margin").round(4),
        "runner_up",
        "method",
        pl.col("bank_date").cast(pl.Utf8).alias("bank_dates"),
        pl.col("ledger_date").cast(pl.Utf8).alias("ledger_dates"),
        # the lines' own text, byte-exact, so a reviewer sees who paid without a look-up
        pl.col("bank_description").alias("bank_descriptions"),
        pl.col("ledger_counterparty").alias("ledger_counterparties"),
        pl.col("ledger_description").alias("ledger_descriptions"),
        pl.lit("").alias("open_amount"),
        # the level of each comparison (kept in the workspace, not in matches.csv)
        pl.col("_levels").alias("levels"),
    )
    assert proposals.columns[: len(MATCH_COLUMNS)] == MATCH_COLUMNS
    lines = pl.concat([
        df.select("match_id", pl.lit("bank").alias("side"), pl.col("bank_id").alias("id"),
                  pl.col("amount_bank").alias("amount_minor"), "currency"),
        df.select("match_id", pl.lit("ledger").alias("side"), pl.col("ledger_id").alias("id"),
                  pl.col("amount_ledger").alias("amount_minor"), "currency"),
    ])
    return proposals, lines


def _pair_columns(chosen, picked, scored, bank_prepared, ledger_prepared, rules, pair_runner_ups, labels,
                  picked_rows, ru_ledger_rows, ru_bank_rows):
    """``chosen`` (same rows, same order) with the columns of the pair proposals but the
    explanation; ``picked`` are the scored rows of the chosen pairs (at ``picked_rows`` of
    ``scored``), ``ru_*_rows`` those of their runner-up pairs."""
    th = rules.thresholds
    bank_idx, ledger_idx = chosen["bank_idx"], chosen["ledger_idx"]
    confidence = scored["confidence"]
    bank_ids, ledger_ids = bank_prepared["id"], ledger_prepared["id"]
    df = chosen.with_columns(
        confidence=picked["confidence"],
        # nothing but the amount and the date ties the lines together: no payer name to compare
        # (or none in a comparable script) and no reference
        _unconfirmed=picked["name_level"].is_in(["missing", "different script"]) & (picked["ref_level"] == "none")
        & th.auto_needs_name_or_reference,
        _floored=scored[FLOORED].gather(picked_rows),
        _levels=picked.select(level_keys(rules)).to_series(),
        amount_bank=picked["amount_bank"],
        amount_ledger=picked["amount_ledger"],
        currency=picked["currency"],
        _c1=confidence.gather(ru_ledger_rows),
        _c2=confidence.gather(ru_bank_rows),
        bank_id=bank_ids.gather(bank_idx),
        bank_date=bank_prepared["date"].gather(bank_idx),
        ledger_id=ledger_ids.gather(ledger_idx),
        ledger_date=ledger_prepared["date"].gather(ledger_idx),
        ru_bank=bank_ids.gather(chosen["runner_up_bank_idx"]),
        ru_ledger=ledger_ids.gather(chosen["runner_up_ledger_idx"]),
        bank_description=bank_prepared["description"].gather(bank_idx),
        ledger_counterparty=ledger_prepared["counterparty"].gather(ledger_idx),
        ledger_description=ledger_prepared["description"].gather(ledger_idx),
    ).with_columns(runner_up_confidence=pl.coalesce("_c1", "_c2"))
    ambiguous = pl.col("margin") < th.ambiguity_margin
    if pair_runner_ups is not None and pair_runner_ups.height and labels is not None:
        group_text = (
            pair_runner_ups.select("bank_idx", "ledger_idx", "runner_up_groups").explode("runner_up_groups")
            .join(labels, left_on="runner_up_groups", right_on="group", how="inner")
            .group_by("bank_idx", "ledger_idx").agg(pl.col("label").str.join(" / ").alias("ru_group"))
        )
        df = df.join(group_text, on=["bank_idx", "ledger_idx"], how="left", maintain_order="left")
    else:
        df = df.with_columns(ru_group=pl.lit(None, dtype=pl.Utf8))
    runner_up = (
        pl.when(pl.col("ru_group").is_not_null())
        .then(pl.col("ru_group"))
        .when(pl.col("ru_ledger").is_not_null())
        .then(pl.lit("ledger ") + pl.col("ru_ledger"))
        .when(pl.col("ru_bank").is_not_null())
        .then(pl.lit("bank line ") + pl.col("ru_bank"))
    )
    runner_up_text = (
        pl.when(pl.col("ru_group").is_not_null()).then(runner_up)
        .otherwise(runner_up + pl.lit(" (confidence ") + _fmt(pl.col("runner_up_confidence")) + pl.lit(")"))
    )
    status = (
        pl.when((pl.col("confidence") >= th.auto) & ~ambiguous & ~pl.col("_unconfirmed"))
        .then(pl.lit("auto")).otherwise(pl.lit("review"))
    )
    why_review = (
        pl.when(pl.col("_unconfirmed") & (pl.col("confidence") >= th.auto) & ~ambiguous)
        .then(pl.lit("no payer name to compare and no reference: the amount and the date alone do not prove it"))
        .when(pl.col("_floored") & (pl.col("confidence") < th.auto) & ~ambiguous)
        .then(pl.lit(FLOOR_REASON + " (confidence ") + _fmt(pl.col("confidence")) + pl.lit(")"))
        .when(ambiguous & runner_up.is_not_null())
        .then(pl.lit("too close to call: runner-up ") + runner_up_text)
        .when(ambiguous)
        .then(pl.lit("too close to call"))
        .when(pl.col("confidence") < th.auto)
        .then(_below_auto(th.auto))
    )
    diff = pl.col("amount_bank") - pl.col("amount_ledger")
    differs = (diff != 0).fill_null(True)
    has_runner_up_text = runner_up.is_not_null() | (pl.col("status") == "review")
    df = df.with_columns(
        status=status,
        # match_id_expr of one bank id and one ledger id, without the lists
        match_id=_match_id_of_key(pl.lit("b:") + pl.col("bank_id") + pl.lit("|l:") + pl.col("ledger_id")),
        bank_amount=format_minor_expr(pl.col("amount_bank"), pl.col("currency")),
    )
    # the text only a few pairs need (a difference, a runner-up, why to review) is built on those
    # pairs alone; the others get what it would be for them: no adjustment, the bank amount, zero
    df = _only_where(
        df, differs,
        _adjustments=_adjustments_expr(rules),
        _ledger_amount=format_minor_expr(pl.col("amount_ledger"), pl.col("currency")),
        _difference=format_minor_expr(diff, pl.col("currency")),
    )
    df = _only_where(
        df, has_runner_up_text,
        _runner_up=pl.when(runner_up.is_not_null()).then(runner_up_text).otherwise(pl.lit("")),
        _why_review=why_review,
    )
    zero = df.select(pl.col("currency").unique()).with_columns(
        _zero=format_minor_expr(pl.lit(0, dtype=pl.Int64), pl.col("currency"))
    )
    return df.join(zero, on="currency", how="left", nulls_equal=True, maintain_order="left").with_columns(
        adjustments=pl.when(differs).then(pl.col("_adjustments")).otherwise(pl.lit("")),
        ledger_amount=pl.when(differs).then(pl.col("_ledger_amount")).otherwise(pl.col("bank_amount")),
        difference=pl.when(differs).then(pl.col("_difference")).otherwise(pl.col("_zero")),
        runner_up=pl.when(has_runner_up_text).then(pl.col("_runner_up")).otherwise(pl.lit("")),
    )


def _unmatched(taken, scored, bank_prepared, ledger_prepared, rules, fx_rates=None):
    """Bank lines and ledger items in no proposal, each with the reason (its best candidate and
    what became of it). ``bank_idx`` / ``ledger_idx`` are the row numbers of ``bank_prepared`` /
    ``ledger_prepared``. An item in a currency no bank line has, with no rate to convert it, says
    so."""
    review = rules.thresholds.review
    taken = taken.select("bank_idx", "ledger_idx")
    ids = {"bank_idx": bank_prepared["id"], "ledger_idx": ledger_prepared["id"]}

    def side(frame, own, other, columns, other_id_col, noun_other, noun_self):
        rest = frame.select(own, *columns).filter(~pl.col(own).is_in(taken[own].implode()))
        # the best candidate of each line: highest confidence, then lowest index on the other side
        best = (
            scored.select(own, other, "confidence")
            .filter(pl.col(own).is_in(rest[own].implode()))
            .sort(["confidence", other], descending=[True, False])
            .group_by(own, maintain_order=True)
            .first()
        )
        # who took that candidate (the first line of this side taking it)
        taker = (
            taken.filter(pl.col(other).is_in(best[other].implode()))
            .unique(other, keep="first", maintain_order=True)
            .select(other, pl.col(own).alias("_taker"))
        )
        best = best.join(taker, on=other, how="left")
        best = best.with_columns(
            ids[other].gather(best[other]).alias(other_id_col),
            ids[own].gather(best["_taker"]).alias("_taker_id"),
        )
        reason = (
            pl.when(pl.col("confidence").is_null())
            .then(pl.lit(f"no {noun_other} with this amount (within tolerance), reference or payer in the date window"))
            .when(pl.col("confidence") < review)
            .then(pl.lit(f"best candidate {noun_other} ") + pl.col(other_id_col) + pl.lit(" scored ")
                  + _fmt(pl.col("confidence")) + pl.lit(f", below the review threshold {review}"))
            .when(pl.col("_taker_id").is_not_null())
            .then(pl.lit(f"best candidate {noun_other} ") + pl.col(other_id_col) + pl.lit(" (")
                  + _fmt(pl.col("confidence")) + pl.lit(f") is matched to {noun_self} ")
                  + pl.col("_taker_id") + pl.lit(" with a better overall fit"))
            .otherwise(pl.lit("not chosen in the global assignment"))
        )
        return (
            rest.join(best, on=own, how="left", maintain_order="left")
            .with_columns(reason=reason).sort(own).select(*columns, "reason")
        )

    ub = side(bank_prepared, "bank_idx", "ledger_idx", list(BANK_SCHEMA), "ledger_id", "ledger item", "bank line")
    ul = side(ledger_prepared, "ledger_idx", "bank_idx", list(LEDGER_SCHEMA), "bank_id", "bank line", "ledger item")
    return ub, _unconvertible(ul, bank_prepared, fx_rates)


def _unconvertible(unmatched_ledger: pl.DataFrame, bank_prepared: pl.DataFrame,
                   fx_rates: pl.DataFrame | None) -> pl.DataFrame:
    """Unmatched items with no candidate at all, in a currency no bank line has and that no
    FX rate (either way round) converts into a bank currency: the reason names the missing rate
    instead of the generic "no bank line with this amount"."""
    bank_currencies = sorted(bank_prepared["currency"].unique().to_list())
    if not bank_currencies or unmatched_ledger.height == 0:
        return unmatched_ledger
    quoted: set[tuple[str, str]] = set()
    if fx_rates is not None:
        for base, quote in fx_rates.select("base", "quote").unique().iter_rows():
            quoted |= {(base, quote), (quote, base)}
    foreign = [
        c for c in unmatched_ledger["currency"].unique().to_list()
        if c not in bank_currencies and not any((c, b) in quoted for b in bank_currencies)
    ]
    if not foreign:
        return unmatched_ledger
    into = "/".join(bank_currencies)
    missing = (
        pl.lit("no FX rates were given (--fx) to convert it")
        if fx_rates is None or fx_rates.height == 0
        else pl.lit("the FX rates given (--fx) have no ") + pl.col("currency") + pl.lit(f"/{into} rate to convert it")
    )
    return unmatched_ledger.with_columns(
        reason=pl.when(pl.col("currency").is_in(foreign) & pl.col("reason").str.starts_with("no bank line with"))
        .then(pl.lit("no bank line in ") + pl.col("currency") + pl.lit(f" (the bank account is in {into}), and ") + missing)
        .otherwise(pl.col("reason"))
    )


def _confidence(score: pl.Expr) -> pl.Expr:
    """Confidence of a score in bits: 1 / (1 + 2 ** -score), as for pairs."""
    return 1.0 / (1.0 + pl.lit(2.0).pow(-score))


def _member_frames(chosen: pl.DataFrame, bank_prepared: pl.DataFrame,
                   ledger_prepared: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Long form of the chosen groups' members (``group`` + the line's columns), sorted by id."""
    def members(frame: pl.DataFrame, idx: str, columns: list[str]) -> pl.DataFrame:
        long = chosen.select("group", idx).explode(idx).drop_nulls(idx)
        # the index is the row number: a gather, not a join
        return long.hstack(frame.select(pl.col(columns).gather(long[idx]))).sort("group", "id")

    bank = members(bank_prepared, "bank_idx", ["id", "amount_minor", "currency", "date", "description"])
    ledger = members(ledger_prepared, "ledger_idx",
                     ["id", "amount_minor", "currency", "date", "counterparty", "description"])
    return bank, ledger


def _group_labels(groups, chosen_groups, pair_runner_ups, bank_prepared, ledger_prepared) -> pl.DataFrame:
    """``group`` -> readable label of the groups named as runner-ups."""
    wanted = pl.concat([
        chosen_groups.select(pl.col("runner_up_groups").explode().alias("group")),
        pair_runner_ups.select(pl.col("runner_up_groups").explode().alias("group")),
    ]).drop_nulls().unique()
    if wanted.height == 0:
        return pl.DataFrame(schema={"group": pl.UInt32, "label": pl.Utf8})
    sel = wanted.join(groups.with_row_index("group"), on="group")
    bank, ledger = _member_frames(sel, bank_prepared, ledger_prepared)
    b = bank.group_by("group").agg(pl.col("id").str.join(ID_SEPARATOR).alias("b"))
    lg = ledger.group_by("group").agg(pl.col("id").str.join(ID_SEPARATOR).alias("l"))
    return sel.join(b, on="group").join(lg, on="group").select(
        "group",
        (pl.lit("bank ") + pl.col("b") + pl.lit(" with ledger ") + pl.col("l")
         + pl.lit(" (confidence ") + _fmt(pl.col("confidence")) + pl.lit(")")).alias("label"),
    )


def adjustment_line(cause: pl.Expr, amount_minor: pl.Expr, currency: pl.Expr, rules: RuleSet) -> pl.Expr:
    """One adjustment line as ``matches.csv`` writes it: ``cause amount (account)``, the
    account from ``rules.adjustments.accounts`` (left out when the cause has none)."""
    account = cause.replace_strict(rules.adjustments.accounts, default="", return_dtype=pl.Utf8)
    return (
        cause + pl.lit(" ") + format_minor_expr(amount_minor, currency)
        + pl.when(account != "").then(pl.lit(" (") + account + pl.lit(")")).otherwise(pl.lit(""))
    )


def _group_proposals(chosen_groups, groups, bank_prepared, ledger_prepared, rules, labels):
    """Proposals and match lines of the chosen groups (same columns as the pair proposals)."""
    th = rules.thresholds
    chosen = chosen_groups.join(groups.with_row_index("group"), on="group")
    bank, ledger = _member_frames(chosen, bank_prepared, ledger_prepared)
    # texts are gathered into lists and joined afterwards (faster than str.join per group)
    bank_texts = ["bank_dates", "bank_descriptions"]
    bank_agg = bank.group_by("group").agg(
        pl.col("id").alias("bank_list"),
        pl.col("amount_minor").sum().alias("bank_total"),
        pl.col("currency").first(),
        pl.col("date").cast(pl.Utf8).alias("bank_dates"),
        pl.col("description").fill_null("").alias("bank_descriptions"),
    ).with_columns(pl.col(bank_texts).list.join(ID_SEPARATOR))
    ledger_texts = ["ledger_dates", "ledger_counterparties", "ledger_descriptions"]
    ledger_agg = ledger.group_by("group").agg(
        pl.col("id").alias("ledger_list"),
        pl.col("currency").first().alias("ledger_currency"),
        pl.col("date").cast(pl.Utf8).alias("ledger_dates"),
        pl.col("counterparty").fill_null("").alias("ledger_counterparties"),
        pl.col("description").fill_null("").alias("ledger_descriptions"),
    ).with_columns(pl.col(ledger_texts).list.join(ID_SEPARATOR))
    adjustments = (
        chosen.select("group", "adjustments").explode("adjustments").drop_nulls("adjustments")
        .unnest("adjustments")
        .join(bank_agg.select("group", "currency"), on="group")
        .group_by("group", maintain_order=True).agg(adjustment_line(pl.col("cause"), pl.col("amount_minor"), pl.col("currency"), rules)
             .str.join("; ").alias("adjustment_text"))
    )
    # runner-ups: other groups, or plain pairs
    ru_groups = (
        chosen.select("group", pl.col("runner_up_groups").alias("ru")).explode("ru")
        .join(labels, left_on="ru", right_on="group", how="inner")
        .group_by("group").agg(pl.col("label").str.join(" / ").alias("ru_g"))
    )
    ru_pairs = chosen.select("group", pl.col("runner_up_pairs").alias("ru")).explode("ru").drop_nulls("ru").unnest("ru")
    ru_pairs = (
        ru_pairs.with_columns(b=bank_prepared["id"].gather(ru_pairs["bank_idx"]),
                              l=ledger_prepared["id"].gather(ru_pairs["ledger_idx"]))
        # listed by ledger item, then bank line
        .sort("ledger_idx", "bank_idx")
        .group_by("group", maintain_order=True).agg(
            (pl.lit("bank line ") + pl.col("b") + pl.lit(" with ledger ") + pl.col("l")).str.join(" / ").alias("ru_p")
        )
    )
    df = (
        chosen.join(bank_agg, on="group").join(ledger_agg, on="group")
        .join(adjustments, on="group", how="left").join(ru_groups, on="group", how="left")
        .join(ru_pairs, on="group", how="left")
        .with_columns(
            adjustment_text=pl.col("adjustment_text").fill_null(""),
            runner_up=pl.coalesce("ru_g", "ru_p").fill_null(""),
            n_bank=pl.col("bank_list").list.len(),
            n_ledger=pl.col("ledger_list").list.len(),
        )
    )
    ambiguous = pl.col("margin") < th.ambiguity_margin
    status = (
        pl.when((pl.col("confidence") >= th.auto) & ~ambiguous & pl.col("review_reason").is_null())
        .then(pl.lit("auto")).otherwise(pl.lit("review"))
    )
    why_review = (
        pl.when(pl.col("review_reason").is_not_null()).then(pl.col("review_reason"))
        .when(ambiguous & (pl.col("runner_up") != "")).then(pl.lit("too close to call: runner-up ") + pl.col("runner_up"))
        .when(ambiguous).then(pl.lit("too close to call"))
        .when(pl.col("confidence") < th.auto)
        .then(_below_auto(th.auto))
    )
    kind = (
        pl.when(pl.col("kind") == "payout").then(pl.lit("payout"))
        .when((pl.col("n_bank") == 1) & (pl.col("n_ledger") == 1)).then(pl.lit("one_to_one"))
        .when(pl.col("n_bank") == 1).then(pl.lit("one_to_many"))
        .when(pl.col("n_ledger") == 1).then(pl.lit("many_to_one"))
        .otherwise(pl.lit("many_to_many"))
    )
    open_text = format_minor_expr(pl.col("open_minor"), pl.col("ledger_currency"))
    df = df.with_columns(status=status, match_type=kind).with_columns(
        explanation=pl.concat_str(
            [
                pl.col("evidence"),
                pl.when(pl.col("adjustment_text") != "").then(pl.lit("balanced by ") + pl.col("adjustment_text")),
                pl.when(pl.col("open_minor").is_not_null() & (pl.col("open_minor") != 0))
                .then(pl.lit("still open: ") + pl.col("ledger_currency") + pl.lit(" ") + open_text),
                pl.when(pl.col("status") == "review").then(pl.lit("review: ") + why_review),
                pl.when(pl.col("method") != EXACT_METHOD).then(pl.lit("assignment: ") + pl.col("method")),
            ],
            separator="; ",
            ignore_nulls=True,
        ),
        # the members are sorted by id (_member_frames), and so are the lists
        match_id=_match_id_of_sorted(pl.col("bank_list"), pl.col("ledger_list")),
    )
    proposals = df.select(
        "match_id",
        "match_type",
        "status",
        pl.col("confidence").round(4),
        pl.col("bank_list").list.join(ID_SEPARATOR).alias("bank_ids"),
        pl.col("ledger_list").list.join(ID_SEPARATOR).alias("ledger_ids"),
        format_minor_expr(pl.col("bank_total"), pl.col("currency")).alias("bank_amount"),
        format_minor_expr(pl.col("ledger_total"), pl.col("currency")).alias("ledger_amount"),
        format_minor_expr(pl.col("bank_total") - pl.col("ledger_total"), pl.col("currency")).alias("difference"),
        "currency",
        "explanation",
        pl.col("adjustment_text").alias("adjustments"),
        pl.col("margin").round(4),
        "runner_up",
        "method",
        "bank_dates",
        "ledger_dates",
        "bank_descriptions",
        "ledger_counterparties",
        "ledger_descriptions",
        pl.when(pl.col("open_minor").is_not_null()).then(open_text).otherwise(pl.lit("")).alias("open_amount"),
        "open_minor",
    )
    ids = df.select("group", "match_id")
    # all bank lines, then all ledger lines, each group's members in id order (as the caller's
    # stable sort by match id needs them)
    lines = pl.concat([
        bank.join(ids, on="group", maintain_order="left")
        .select("match_id", pl.lit("bank").alias("side"), "id", "amount_minor", "currency"),
        ledger.join(ids, on="group", maintain_order="left")
        .select("match_id", pl.lit("ledger").alias("side"), "id", "amount_minor", "currency"),
    ])
    return proposals, lines
