"""Scoring (engine stage 3): evidence per candidate pair -> confidence in [0, 1] + explanation.

Each comparison (reference, amount, payer name, date, amount uniqueness) lands in one level whose
weight comes from the rule set; weights are log2 odds ("bits of evidence", as in Fellegi-Sunter /
Splink) and add up with the prior to a score; ``confidence = 1 / (1 + 2 ** -score)``. Every level
also renders a short phrase, so the explanation a finance person reads is exactly the evidence
that produced the number. Fuzzy name similarity uses rapidfuzz's batch ``cpdist``.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from engine import normalize as nz
from engine.differences import explained as difference_explained
from engine.differences import is_bank_charge, is_discount, is_rounding
from models.money import format_minor_expr
from rules.model import RuleSet

SCORED_COLUMNS = [
    "bank_idx", "ledger_idx", "via", "score", "confidence", "amount_diff",
    "ref_level", "name_similarity", "name_level", "days",
]
#: the scored frame's columns and types (also what an empty candidate set gives)
SCORED_SCHEMA: dict[str, pl.DataType] = {
    "bank_idx": pl.UInt32, "ledger_idx": pl.UInt32, "via": pl.UInt8, "score": pl.Float64,
    "confidence": pl.Float64, "amount_diff": pl.Int64, "ref_level": pl.Utf8,
    "name_similarity": pl.Float64, "name_level": pl.Utf8, "days": pl.Int32,
    "amount_bank": pl.Int64, "amount_ledger": pl.Int64, "currency": pl.Utf8, "doc_ref": pl.Utf8,
    "shared_number": pl.Int64, "n_exact_bank": pl.Int32, "n_exact_ledger": pl.Int32,
    "_clear_bank": pl.Boolean, "_clear_ledger": pl.Boolean, "name_bank": pl.Utf8,
    "name_ledger": pl.Utf8, "in_window": pl.Boolean, "type_norm": pl.Utf8, "fifo": pl.Boolean,
}
#: what :func:`explain` needs besides ``SCORED_COLUMNS``
_EVIDENCE_COLUMNS = [
    "amount_bank", "amount_ledger", "currency", "doc_ref", "shared_number", "n_exact_bank",
    "n_exact_ledger", "_clear_bank", "_clear_ledger", "name_bank", "name_ledger", "in_window",
    "type_norm", "fifo",
]


def _name_similarity(bank_names: pl.Series, ledger_names: pl.Series) -> np.ndarray:
    """Similarity 0-100 of pair-aligned normalised names (see :func:`_pair_name_similarity`)."""
    rows = np.arange(len(bank_names))
    return _pair_name_similarity(rows, rows, bank_names, ledger_names)


def _pair_name_similarity(bank_rows: np.ndarray, ledger_rows: np.ndarray, bank_names: pl.Series,
                          ledger_names: pl.Series) -> np.ndarray:
    """Similarity 0-100 of the names at ``bank_rows`` / ``ledger_rows`` (pair-aligned row
    numbers into the per-line ``bank_names`` / ``ledger_names``); a bank name cut short (bank
    descriptions are often truncated at a fixed width) is compared with the same-length prefix of
    the ledger name. Names are looked up as Python strings by row (numpy object arrays), which is
    what rapidfuzz takes, instead of materialising a string column per pair."""
    if not len(bank_rows):
        return np.empty(0, dtype=np.float64)
    bank_text = np.array(bank_names.fill_null("").to_list(), dtype=object)[bank_rows]
    ledger_text = np.array(ledger_names.fill_null("").to_list(), dtype=object)[ledger_rows]
    # equal names score 100 and a missing one 0 (as the scorer would say): only the rest is compared
    both = (bank_names.fill_null("") != "").to_numpy()[bank_rows] & (ledger_names.fill_null("") != "").to_numpy()[ledger_rows]
    equal = both & (bank_text == ledger_text)
    similarity = np.where(equal, 100.0, 0.0)
    compare = np.flatnonzero(both & ~equal)
    if len(compare):
        similarity[compare] = process.cpdist(
            bank_text[compare].tolist(), ledger_text[compare].tolist(), scorer=fuzz.token_set_ratio, workers=-1,
        )
    prefix_len = bank_names.fill_null("").str.len_chars().to_numpy()[bank_rows]
    # a bank name cut short still shares most of its words: only long names that match partly
    # (not already well, not hardly at all) are worth the second look
    again = np.flatnonzero((prefix_len >= 10) & (similarity < 95) & (similarity >= 50))
    if len(again):
        ledger_prefix = pl.Series(ledger_text[again].tolist(), dtype=pl.Utf8).str.slice(0, pl.Series(prefix_len[again]))
        prefix = process.cpdist(bank_text[again].tolist(), ledger_prefix.to_list(), scorer=fuzz.ratio, workers=-1)
        similarity[again] = np.maximum(similarity[again], prefix)
    return similarity


def _reference_strength(df: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame) -> pl.Series:
    """Reference strength per pair, worked out only where it can be anything but "none": the
    bank text has a reference key and the ledger reference has a digit. Each side's profile is
    computed once per line (the ledger's only for the items that need it) and gathered."""
    possible = (
        (pl.col("ref_keys").list.len() > 0) & (pl.col("ref_digit_count") > 0) & pl.col("doc_ref").is_not_null()
    )
    rows = df.select(pl.arg_where(possible)).to_series()
    strength = pl.repeat("none", df.height, dtype=pl.Utf8, eager=True)
    if rows.len():
        pairs = df.select(pl.col("bank_idx", "ledger_idx").gather(rows))
        items = pairs["ledger_idx"].unique()
        profiles = ledger.select(pl.col("doc_ref").gather(items)).select(
            nz.ledger_reference_profile(pl.col("doc_ref"))
        ).to_series()
        # position of each pair's item among ``items``: a dense lookup by ledger row
        slot = np.zeros(ledger.height, dtype=np.uint32)
        slot[items.to_numpy()] = np.arange(items.len(), dtype=np.uint32)
        found = (
            pl.DataFrame({
                "reference_profile": bank["reference_profile"].gather(pairs["bank_idx"]),
                "ledger_profile": profiles.gather(slot[pairs["ledger_idx"].to_numpy()]),
            })
            .select(nz.reference_strength_from_profiles(pl.col("reference_profile"), pl.col("ledger_profile")))
            .to_series()
        )
        strength = strength.scatter(rows, found)
    return strength.alias("ref_strength")


def _script_code(script: pl.Expr) -> pl.Expr:
    """A name's script as a small code, 0 for mixed or none: two names in different scripts
    (``cjk`` vs ``latin``) are not compared."""
    return script.replace_strict({"cjk": 1, "latin": 2}, default=0, return_dtype=pl.UInt8)


def _levels(value: pl.Expr, levels: list, attr: str, ascending: bool) -> tuple[pl.Expr, pl.Expr]:
    """Map a numeric value onto ordered levels -> (weight, level index)."""
    weight = pl.lit(levels[-1].weight)
    index = pl.lit(len(levels) - 1)
    for i in reversed(range(len(levels))):
        bound = getattr(levels[i], attr)
        cond = value <= bound if ascending else value >= bound
        weight = pl.when(cond).then(pl.lit(levels[i].weight)).otherwise(weight)
        index = pl.when(cond).then(pl.lit(i)).otherwise(index)
    return weight, index


def _top_name_weight(w) -> float:
    """The weight of the top name level ("same name"): the oldest-first rule needs it."""
    return max(lvl.weight for lvl in w.name)


def score_candidates(
    pairs: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet
) -> pl.DataFrame:
    """Score candidate pairs.

    Parameters
    ----------
    pairs
        ``bank_idx``, ``ledger_idx``, ``via`` from :func:`engine.candidates.generate_candidates`.
    bank, ledger
        Prepared frames from :mod:`engine.features`.
    rules
        Weights and levels.

    Returns
    -------
    pl.DataFrame
        One row per pair with ``score``, ``confidence`` and the level columns that produced them
        (:func:`explain` renders them as a sentence).
    """
    w = rules.weights
    b = bank.select(
        pl.col("amount_minor").alias("amount_bank"), pl.col("currency").alias("currency"),
        pl.col("day").alias("day_bank"), "ref_keys",
        pl.col("name_key").alias("name_bank"),
        "explicit_ref_digits", _script_code(pl.col("name_script")).alias("script_bank"),
    )
    led = ledger.select(
        pl.col("amount_minor").alias("amount_ledger"), pl.col("day").alias("day_ledger"),
        "doc_ref", "ref_digit_count", "other_keys", pl.col("name_key").alias("name_ledger"),
        _script_code(pl.col("name_script")).alias("script_ledger"),
        "window_before", "window_after", "type_norm",
    )
    if pairs.height == 0:
        return pl.DataFrame(schema=SCORED_SCHEMA)
    # bank_idx / ledger_idx are row numbers of the prepared frames: gather, no hash join
    df = pl.concat([pairs, b[pairs["bank_idx"]], led[pairs["ledger_idx"]]], how="horizontal")

    similarity = _pair_name_similarity(
        pairs["bank_idx"].to_numpy(), pairs["ledger_idx"].to_numpy(), bank["name_key"], ledger["name_key"]
    )
    df = df.with_columns(
        name_similarity=pl.Series(similarity),
        amount_diff=pl.col("amount_bank") - pl.col("amount_ledger"),
        days=(pl.col("day_bank") - pl.col("day_ledger")).cast(pl.Int32),
        ref_strength=_reference_strength(df, bank, ledger),
        shared_number=pl.col("ref_keys").list.set_intersection(pl.col("other_keys")).list.first(),
    )
    exact = pl.col("amount_diff") == 0

    ref_level = (
        pl.when(pl.col("ref_strength").is_in(["full", "serial", "partial"]))
        .then(pl.col("ref_strength"))
        .when(pl.col("shared_number").is_not_null())
        .then(pl.lit("number"))
        # the bank quotes a complete document number of its own that is not this one (a number
        # cut short by the bank's field width is no conflict)
        .when(
            (pl.col("ref_digit_count") >= 3)
            & (pl.col("explicit_ref_digits") >= pl.col("ref_digit_count"))
        )
        .then(pl.lit("conflict"))
        .otherwise(pl.lit("none"))
    )
    ref_weight = ref_level.replace_strict(
        {"full": w.reference.full, "serial": w.reference.serial, "number": w.reference.number,
         "partial": w.reference.partial, "conflict": w.reference.conflict, "none": w.reference.none},
        return_dtype=pl.Float64,
    )
    amount_weight = (
        pl.when(exact).then(pl.lit(w.amount.exact))
        .when(difference_explained(rules)).then(pl.lit(w.amount.explained))
        .otherwise(pl.lit(w.amount.within_tolerance))
    )

    names_missing = (pl.col("name_bank") == "") | (pl.col("name_ledger") == "")
    different_script = (
        (pl.col("script_bank") > 0) & (pl.col("script_ledger") > 0)
        & (pl.col("script_bank") != pl.col("script_ledger"))
    )
    name_w, name_i = _levels(pl.col("name_similarity"), w.name, "min_similarity", ascending=False)
    name_labels = [lvl.label for lvl in w.name]
    name_level = (
        pl.when(names_missing).then(pl.lit("missing"))
        .when(different_script).then(pl.lit("different script"))
        .otherwise(name_i.replace_strict(dict(enumerate(name_labels)), return_dtype=pl.Utf8))
    )
    name_weight = (
        pl.when(names_missing).then(pl.lit(w.name_missing))
        .when(different_script).then(pl.lit(w.name_different_script))
        .otherwise(name_w)
    )
    # an exact-amount pair is the clear choice when no other exact-amount candidate of the same
    # bank line / ledger item has name evidence as good as its own
    df = df.with_columns(name_level=name_level, name_weight=name_weight)
    masked = pl.when(exact).then(pl.col("name_weight")).otherwise(pl.lit(-1e9))
    at_best = exact & (pl.col("name_weight") == pl.col("_best"))
    df = df.with_columns(_best=masked.max().over("bank_idx")).with_columns(
        _clear_bank=at_best & (at_best.cast(pl.Int32).sum().over("bank_idx") == 1),
        n_exact_bank=exact.cast(pl.Int32).sum().over("bank_idx"),
    ).with_columns(_best=masked.max().over("ledger_idx")).with_columns(
        _clear_ledger=at_best & (at_best.cast(pl.Int32).sum().over("ledger_idx") == 1),
        n_exact_ledger=exact.cast(pl.Int32).sum().over("ledger_idx"),
    )
    name_weight = pl.col("name_weight")
    abs_days = pl.col("days").abs()
    date_w, _ = _levels(abs_days, w.date, "max_days", ascending=True)
    in_window = (pl.col("days") <= pl.col("window_after")) & (-pl.col("days") <= pl.col("window_before"))
    window_weight = pl.when(in_window).then(pl.lit(0.0)).otherwise(pl.lit(w.outside_window))
    unique = pl.col("_clear_bank") & pl.col("_clear_ledger")
    competing = (pl.col("n_exact_bank") - 1 + pl.col("n_exact_ledger") - 1).clip(0, 6)
    # payments applied oldest first: when one payer (same name) has as many same-amount
    # payments as same-amount items, the k-th payment by date pays the k-th oldest item
    in_scope = exact & (pl.col("name_weight") >= _top_name_weight(w))
    scope = df.filter(in_scope).select("bank_idx", "ledger_idx", "name_ledger", "amount_ledger", "day_bank", "day_ledger")
    key = ["name_ledger", "amount_ledger"]
    bank_rank = scope.unique(["bank_idx", *key]).with_columns(
        _rb=pl.struct("day_bank", "bank_idx").rank("dense").over(key), _nb=pl.len().over(key),
    ).select("bank_idx", *key, "_rb", "_nb")
    ledger_rank = scope.unique(["ledger_idx", *key]).with_columns(
        _rl=pl.struct("day_ledger", "ledger_idx").rank("dense").over(key), _nl=pl.len().over(key),
    ).select("ledger_idx", *key, "_rl", "_nl")
    fifo = (
        scope.join(bank_rank, on=["bank_idx", *key]).join(ledger_rank, on=["ledger_idx", *key])
        .filter((pl.col("_rb") == pl.col("_rl")) & (pl.col("_nb") > 1) & (pl.col("_nb") == pl.col("_nl")))
        .select("bank_idx", "ledger_idx", pl.lit(True).alias("fifo"))
    )
    df = df.join(fifo, on=["bank_idx", "ledger_idx"], how="left").with_columns(pl.col("fifo").fill_null(False))
    uniq_weight = (
        pl.when(unique).then(pl.lit(w.unique_amount))
        .when(exact).then(competing.cast(pl.Float64) * w.competing_amount
                          + pl.when(pl.col("fifo")).then(pl.lit(w.oldest_first)).otherwise(pl.lit(0.0)))
        .otherwise(pl.lit(0.0))
    )
    df = df.with_columns(
        ref_level=ref_level, in_window=in_window,
        score=pl.lit(w.prior) + ref_weight + amount_weight + name_weight + date_w + window_weight + uniq_weight,
    ).with_columns(
        confidence=(1.0 / (1.0 + pl.lit(2.0).pow(-pl.col("score")))).round(4),
    )
    return df.select(*SCORED_COLUMNS, *_EVIDENCE_COLUMNS)


def explain(scored: pl.DataFrame, rules: RuleSet) -> pl.Series:
    """The readable evidence sentence of each scored pair (for the pairs you need: proposals,
    or candidates an analyst looks at), e.g. "reference INV-2026-00123 found in bank text;
    amount equal (HKD 1000.00); same name 'kam wing trading' ~ 'kam wing trading' (100%); 3 days
    after the ledger date"."""
    return scored.select(_evidence(rules).alias("evidence")).to_series()


def _evidence(rules: RuleSet) -> pl.Expr:
    """One readable sentence per pair: the levels that produced its score."""
    ref = (
        pl.when(pl.col("ref_level") == "full")
        .then(pl.lit("reference ") + pl.col("doc_ref") + pl.lit(" found in bank text"))
        .when(pl.col("ref_level") == "serial")
        .then(pl.lit("number of ") + pl.col("doc_ref") + pl.lit(" found in bank text"))
        .when(pl.col("ref_level") == "number")
        .then(pl.lit("number ") + pl.col("shared_number").cast(pl.Utf8)
              + pl.lit(" in the ledger item's text found in bank text"))
        .when(pl.col("ref_level") == "partial")
        .then(pl.lit("bank text shows a reference close to ") + pl.col("doc_ref")
              + pl.lit(" (transposed or truncated digits; weak)"))
        .when(pl.col("ref_level") == "conflict")
        .then(pl.lit("bank text quotes a reference other than ") + pl.col("doc_ref"))
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    diff_text = format_minor_expr(pl.col("amount_diff").abs(), pl.col("currency"))
    amount = (
        pl.when(pl.col("amount_diff") == 0)
        .then(pl.lit("amount equal (") + pl.col("currency") + pl.lit(" ")
              + format_minor_expr(pl.col("amount_bank"), pl.col("currency")) + pl.lit(")"))
        .otherwise(
            pl.lit("bank amount ") + diff_text
            + pl.when(pl.col("amount_diff") < 0).then(pl.lit(" less")).otherwise(pl.lit(" more"))
            + pl.lit(" than ledger (")
            + pl.when(is_bank_charge(rules)).then(pl.lit("a round bank charge"))
            .when(is_discount(rules)).then(pl.lit("a whole-percent discount"))
            .when(is_rounding()).then(pl.lit("paid down to whole tens"))
            .otherwise(pl.lit("within tolerance"))
            + pl.lit(")")
        )
    )
    uniqueness = (
        pl.when(pl.col("_clear_bank") & pl.col("_clear_ledger"))
        .then(pl.lit("no other candidate with this amount and as good a name"))
        .when(pl.col("amount_diff") == 0)
        .then(
            (pl.col("n_exact_bank") + pl.col("n_exact_ledger") - 2).cast(pl.Utf8)
            + pl.lit(" other candidate(s) with this amount")
            + pl.when(pl.col("fifo")).then(pl.lit(" (the payer's payments applied oldest item first)"))
            .otherwise(pl.lit(""))
        )
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    name = (
        pl.when(pl.col("name_level") == "missing").then(pl.lit("no payer name to compare"))
        .when(pl.col("name_level") == "different script")
        .then(pl.lit("payer '") + pl.col("name_bank") + pl.lit("' vs '") + pl.col("name_ledger")
              + pl.lit("' in different scripts, not compared"))
        .otherwise(
            pl.col("name_level") + pl.lit(" '") + pl.col("name_bank") + pl.lit("' ~ '")
            + pl.col("name_ledger") + pl.lit("' (")
            + pl.col("name_similarity").round(0).cast(pl.Int64).cast(pl.Utf8) + pl.lit("%)")
        )
    )
    days = pl.col("days")
    date = (
        pl.when(days == 0).then(pl.lit("same day"))
        .when(days == 1).then(pl.lit("1 day after the ledger date"))
        .when(days == -1).then(pl.lit("1 day before the ledger date"))
        .when(days > 0).then(days.cast(pl.Utf8) + pl.lit(" days after the ledger date"))
        .otherwise((-days).cast(pl.Utf8) + pl.lit(" days before the ledger date"))
        + pl.when(pl.col("in_window")).then(pl.lit(""))
        .otherwise(pl.lit(" (outside the window for ") + pl.when(pl.col("type_norm") == "")
                   .then(pl.lit("untyped items")).otherwise(pl.col("type_norm")) + pl.lit(")"))
    )
    return pl.concat_str([ref, amount, uniqueness, name, date], separator="; ", ignore_nulls=True)
