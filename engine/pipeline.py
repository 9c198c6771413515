"""The match run (engine): prepared frames -> candidates -> scores -> assignment -> proposals.

One function, :func:`match_frames`, runs the stages on canonical frames and returns proposals and
unmatched lines as Polars frames; the CLI, the workspace store and notebooks all go through it.
Proposals are modelled as groups (bank ids x ledger ids + adjustments) so compound matches fit the
same tables; this stage produces one-to-one groups.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import polars as pl

from engine.assignment import EXACT_METHOD, assign_one_to_one
from engine.candidates import generate_candidates
from engine.features import prepare_bank, prepare_ledger
from engine.scoring import explain, score_candidates
from models.ids import short_ids
from models.money import CURRENCY_EXPONENTS, format_minor_expr
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
    candidates
        All scored candidate pairs (ids, confidence, level columns) for analysts;
        :meth:`explain_candidates` renders the evidence sentence of the ones you pick.
    timings
        Seconds per stage.
    """

    proposals: pl.DataFrame
    match_lines: pl.DataFrame
    unmatched_bank: pl.DataFrame
    unmatched_ledger: pl.DataFrame
    candidates: pl.DataFrame
    timings: dict[str, float] = field(default_factory=dict)

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
    key = (
        pl.lit("b:") + bank_ids.list.sort().list.join("\x1f")
        + pl.lit("|l:") + ledger_ids.list.sort().list.join("\x1f")
    )
    return key.map_batches(lambda keys: short_ids("M-", keys), return_dtype=pl.Utf8)


def _fmt(value: pl.Expr, digits: int = 2) -> pl.Expr:
    return value.round(digits).cast(pl.Utf8)


def match_frames(bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> MatchOutcome:
    """Run the whole match on canonical frames.

    Parameters
    ----------
    bank, ledger
        Canonical frames (``models.schema.BANK_SCHEMA`` / ``LEDGER_SCHEMA``), duplicates removed.
    rules
        The rule set.

    Returns
    -------
    MatchOutcome
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # a canonical row order (by id): ties are then broken the same way whatever order the
    # files listed the lines in, so the same inputs always give the same proposals and ids
    bank = bank.sort("id")
    ledger = ledger.sort("id")
    pb = prepare_bank(bank)
    pl_ = prepare_ledger(ledger, rules)
    timings["prepare"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pairs = generate_candidates(pb, pl_, rules)
    timings["candidates"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    scored = score_candidates(pairs, pb, pl_, rules)
    timings["scoring"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    th = rules.thresholds
    # weigh pairs by their evidence in bits above the review threshold (always > 0)
    floor = math.log2(th.review / (1.0 - th.review)) if th.review < 1 else 0.0
    scored = scored.with_columns(weight=(pl.col("score") - floor + 1.0).clip(lower_bound=1e-6))
    chosen = assign_one_to_one(scored, th.review, weight="weight")
    timings["assignment"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    proposals, lines = _proposals(chosen, scored, pb, pl_, rules)
    unmatched_bank, unmatched_ledger = _unmatched(chosen, scored, pb, pl_, rules)
    cand_view = scored.with_columns(
        bank_id=pb["id"].gather(scored["bank_idx"]),
        ledger_id=pl_["id"].gather(scored["ledger_idx"]),
    )
    timings["output"] = time.perf_counter() - t0
    return MatchOutcome(proposals, lines, unmatched_bank, unmatched_ledger, cand_view, timings)


def _adjustments_expr(rules: RuleSet) -> pl.Expr:
    """One balancing line per proposal whose amounts differ: ``cause amount (account)``, where
    bank amount = ledger amount + adjustment amount; empty when the amounts are equal.

    A negative difference leaves the bank side worse off (received less, or paid more): up to
    ``adjustments.bank_charge_max`` that is a bank charge. Beyond it, money in that is short is a
    short payment and money out that is larger an overpayment; a positive difference is money in
    overpaid or money out short-paid (a discount taken)."""
    diff = pl.col("amount_bank") - pl.col("amount_ledger")
    money_in = pl.col("amount_ledger") > 0
    charge_max = pl.col("currency").replace_strict(
        {code: int(rules.adjustments.bank_charge_max.scaleb(exp)) for code, exp in CURRENCY_EXPONENTS.items()},
        default=0,
        return_dtype=pl.Int64,
    )
    cause = (
        pl.when((diff < 0) & (-diff <= charge_max))
        .then(pl.lit("bank_charge"))
        .when(money_in == (diff < 0))
        .then(pl.lit("short_payment"))
        .otherwise(pl.lit("overpayment"))
    )
    account = cause.replace_strict(rules.adjustments.accounts, default="", return_dtype=pl.Utf8)
    return (
        pl.when(diff == 0)
        .then(pl.lit(""))
        .otherwise(
            cause + pl.lit(" ") + format_minor_expr(diff, pl.col("currency"))
            + pl.when(account != "").then(pl.lit(" (") + account + pl.lit(")")).otherwise(pl.lit(""))
        )
    )


def _proposals(chosen, scored, pb, pl_, rules):
    th = rules.thresholds
    def pair_key(bank: str, ledger: str) -> pl.Expr:
        return (pl.col(bank).cast(pl.UInt64) * (1 << 32) + pl.col(ledger).cast(pl.UInt64)).alias("_pk")

    keyed = scored.with_columns(pair_key("bank_idx", "ledger_idx"))
    picked = chosen.select(pair_key("bank_idx", "ledger_idx")).join(keyed, on="_pk", how="left")
    picked = picked.with_columns(evidence=explain(picked, rules))
    conf = keyed.select("_pk", "confidence")
    df = (
        chosen.with_columns(pair_key("bank_idx", "ledger_idx"))
        .join(picked.select("_pk", "confidence", "evidence", "amount_bank", "amount_ledger", "currency"),
              on="_pk", how="left")
        # the runner-up pair: this bank line with another item, or this item with another line
        .with_columns(pair_key("bank_idx", "runner_up_ledger_idx"))
        .join(conf.rename({"confidence": "_c1"}), on="_pk", how="left")
        .with_columns(pair_key("runner_up_bank_idx", "ledger_idx"))
        .join(conf.rename({"confidence": "_c2"}), on="_pk", how="left")
        .with_columns(runner_up_confidence=pl.coalesce("_c1", "_c2"))
    )
    bank_ids, ledger_ids = pb["id"], pl_["id"]
    df = df.with_columns(
        bank_id=bank_ids.gather(df["bank_idx"]),
        bank_date=pb["date"].gather(df["bank_idx"]),
        ledger_id=ledger_ids.gather(df["ledger_idx"]),
        ledger_date=pl_["date"].gather(df["ledger_idx"]),
        ru_bank=bank_ids.gather(df["runner_up_bank_idx"]),
        ru_ledger=ledger_ids.gather(df["runner_up_ledger_idx"]),
        bank_description=pb["description"].gather(df["bank_idx"]),
        ledger_counterparty=pl_["counterparty"].gather(df["ledger_idx"]),
        ledger_description=pl_["description"].gather(df["ledger_idx"]),
    )
    ambiguous = pl.col("margin") < th.ambiguity_margin
    runner_up = (
        pl.when(pl.col("ru_ledger").is_not_null())
        .then(pl.lit("ledger ") + pl.col("ru_ledger"))
        .when(pl.col("ru_bank").is_not_null())
        .then(pl.lit("bank line ") + pl.col("ru_bank"))
    )
    runner_up_text = runner_up + pl.lit(" (confidence ") + _fmt(pl.col("runner_up_confidence")) + pl.lit(")")
    status = (
        pl.when((pl.col("confidence") >= th.auto) & ~ambiguous).then(pl.lit("auto")).otherwise(pl.lit("review"))
    )
    why_review = (
        pl.when(ambiguous & runner_up.is_not_null())
        .then(pl.lit("too close to call: runner-up ") + runner_up_text)
        .when(ambiguous)
        .then(pl.lit("too close to call"))
        .when(pl.col("confidence") < th.auto)
        .then(pl.lit("confidence ") + _fmt(pl.col("confidence")) + pl.lit(" below auto threshold ")
              + pl.lit(str(th.auto)))
    )
    df = df.with_columns(status=status).with_columns(
        explanation=pl.concat_str(
            [
                pl.col("evidence"),
                pl.when(pl.col("amount_bank") != pl.col("amount_ledger"))
                .then(pl.lit("balanced by ") + _adjustments_expr(rules)),
                pl.when(pl.col("status") == "review").then(pl.lit("review: ") + why_review),
                pl.when(pl.col("method") != EXACT_METHOD).then(pl.lit("assignment: ") + pl.col("method")),
            ],
            separator="; ",
            ignore_nulls=True,
        ),
        runner_up=pl.when(runner_up.is_not_null()).then(runner_up_text).otherwise(pl.lit("")),
        bank_list=pl.concat_list(pl.col("bank_id")),
        ledger_list=pl.concat_list(pl.col("ledger_id")),
    )
    df = df.with_columns(match_id=match_id_expr(pl.col("bank_list"), pl.col("ledger_list")))
    proposals = df.select(
        "match_id",
        pl.lit("one_to_one").alias("match_type"),
        "status",
        pl.col("confidence").round(4),
        pl.col("bank_list").list.join(ID_SEPARATOR).alias("bank_ids"),
        pl.col("ledger_list").list.join(ID_SEPARATOR).alias("ledger_ids"),
        format_minor_expr(pl.col("amount_bank"), pl.col("currency")).alias("bank_amount"),
        format_minor_expr(pl.col("amount_ledger"), pl.col("currency")).alias("ledger_amount"),
        format_minor_expr(pl.col("amount_bank") - pl.col("amount_ledger"), pl.col("currency")).alias("difference"),
        "currency",
        "explanation",
        _adjustments_expr(rules).alias("adjustments"),
        pl.col("margin").round(4),
        "runner_up",
        "method",
        pl.col("bank_date").cast(pl.Utf8).alias("bank_dates"),
        pl.col("ledger_date").cast(pl.Utf8).alias("ledger_dates"),
        # the lines' own text, byte-exact, so a reviewer sees who paid without a look-up
        pl.col("bank_description").alias("bank_descriptions"),
        pl.col("ledger_counterparty").alias("ledger_counterparties"),
        pl.col("ledger_description").alias("ledger_descriptions"),
    ).sort("match_id")
    assert proposals.columns[: len(MATCH_COLUMNS)] == MATCH_COLUMNS
    lines = pl.concat([
        df.select("match_id", pl.lit("bank").alias("side"), pl.col("bank_id").alias("id"),
                  pl.col("amount_bank").alias("amount_minor"), "currency"),
        df.select("match_id", pl.lit("ledger").alias("side"), pl.col("ledger_id").alias("id"),
                  pl.col("amount_ledger").alias("amount_minor"), "currency"),
    ]).sort("match_id", "side", "id")
    return proposals, lines


def _unmatched(chosen, scored, pb, pl_, rules):
    review = rules.thresholds.review
    taken = chosen.select("bank_idx", "ledger_idx")
    ids_b = pb.select("bank_idx", pl.col("id").alias("bank_id"))
    ids_l = pl_.select("ledger_idx", pl.col("id").alias("ledger_id"))

    def side(frame, own, other, other_ids, other_id_col, noun_other, noun_self):
        rest = frame.join(taken.select(own), on=own, how="anti")
        best = (
            scored.select(own, other, "confidence")
            .join(rest.select(own), on=own, how="semi")
            .sort(["confidence", other], descending=[True, False])
            .group_by(own, maintain_order=True)
            .first()
            .join(other_ids, on=other, how="left")
            .join(taken.select(pl.col(other), pl.col(own).alias("_taker")), on=other, how="left")
        )
        own_ids = ids_b if own == "bank_idx" else ids_l
        best = best.join(
            own_ids.rename({own: "_taker", own_ids.columns[1]: "_taker_id"}), on="_taker", how="left"
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
        out = rest.join(best, on=own, how="left").with_columns(reason=reason)
        return out

    ub = side(pb, "bank_idx", "ledger_idx", ids_l, "ledger_id", "ledger item", "bank line")
    ul = side(pl_, "ledger_idx", "bank_idx", ids_b, "bank_id", "bank line", "ledger item")
    ub = ub.sort("bank_idx").select(*BANK_SCHEMA, "reason")
    ul = ul.sort("ledger_idx").select(*LEDGER_SCHEMA, "reason")
    return ub, ul
