"""Scoring (engine stage 3): evidence per candidate pair -> confidence in [0, 1] + explanation.

Each comparison (reference, amount, payer name, date, amount uniqueness) lands in one level whose
weight comes from the rule set; weights are log2 odds ("bits of evidence", as in Fellegi-Sunter /
Splink) and add up with the prior to a score; ``confidence = 1 / (1 + 2 ** -score)``. Every level
also renders a short phrase, so the explanation a finance person reads is exactly the evidence
that produced the number. Fuzzy name similarity uses rapidfuzz's batch ``cpdist``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from engine.prepare.references import ledger_reference_profile, reference_strength_from_profiles
from engine.scoring.differences import explained as difference_explained
from engine.scoring.differences import is_bank_charge, is_discount, is_rounding
from engine.scoring.levels import REF_LEVELS, level_index
from engine.scoring.names import pair_name_similarity, script_code
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
#: what :func:`score_candidates` gives without the evidence text (``evidence=False``): the levels
#: as codes (``ref_code``: position in ``REF_LEVELS``; ``name_code``: position among the rule
#: set's name levels, then "missing", then "different script")
COMPACT_SCHEMA: dict[str, pl.DataType] = {
    "bank_idx": pl.UInt32, "ledger_idx": pl.UInt32, "via": pl.UInt8, "score": pl.Float64,
    "confidence": pl.Float64, "amount_diff": pl.Int64, "ref_code": pl.UInt8,
    "name_similarity": pl.Float64, "name_code": pl.UInt8, "days": pl.Int32, "shared_number": pl.Int64,
    "n_exact_bank": pl.Int32, "n_exact_ledger": pl.Int32, "_clear_bank": pl.Boolean,
    "_clear_ledger": pl.Boolean, "in_window": pl.Boolean, "fifo": pl.Boolean,
}
_FULL, _SERIAL, _NUMBER, _PARTIAL, _CONFLICT, _NONE = range(len(REF_LEVELS))








def _reference_strength(bank_rows: np.ndarray, ledger_rows: np.ndarray, bank: pl.DataFrame,
                        ledger: pl.DataFrame) -> np.ndarray:
    """Reference strength code per pair (``_FULL``, ``_SERIAL``, ``_PARTIAL`` or ``_NONE``),
    worked out only where it can be anything but "none": the bank text has a reference key and
    the ledger reference has a digit. Each side's profile is computed once per line (the
    ledger's only for the items that need it) and gathered."""
    has_keys = (bank["ref_keys"].list.len() > 0).fill_null(False).to_numpy()
    has_ref = ((ledger["ref_digit_count"] > 0) & ledger["doc_ref"].is_not_null()).fill_null(False).to_numpy()
    rows = np.flatnonzero(has_keys[bank_rows] & has_ref[ledger_rows])
    strength = np.full(len(bank_rows), _NONE, dtype=np.uint8)
    if len(rows):
        pair_bank, pair_ledger = bank_rows[rows], ledger_rows[rows]
        wanted = np.zeros(ledger.height, dtype=bool)
        wanted[pair_ledger] = True
        items = np.flatnonzero(wanted)
        profiles = ledger.select(pl.col("doc_ref").gather(items)).select(
            ledger_reference_profile(pl.col("doc_ref"))
        ).to_series()
        # position of each pair's item among ``items``: a dense lookup by ledger row
        slot = np.zeros(ledger.height, dtype=np.uint32)
        slot[items] = np.arange(len(items), dtype=np.uint32)
        found = (
            pl.DataFrame({
                "reference_profile": bank["reference_profile"].gather(pair_bank),
                "ledger_profile": profiles.gather(slot[pair_ledger]),
            })
            .select(
                reference_strength_from_profiles(pl.col("reference_profile"), pl.col("ledger_profile"))
                .replace_strict({"full": _FULL, "serial": _SERIAL, "partial": _PARTIAL, "none": _NONE},
                                return_dtype=pl.UInt8)
            )
            .to_series()
            .to_numpy()
        )
        strength[rows] = found
    return strength


def _flat_lists(lists: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A list column as (start offset per row, length per row, all values): row ``i`` holds
    ``values[start[i]:start[i] + length[i]]`` (a null list is empty)."""
    arr = lists.rechunk().to_arrow()
    offsets = arr.offsets.to_numpy()
    length = (offsets[1:] - offsets[:-1]) * lists.is_not_null().to_numpy()
    return offsets[:-1], length, arr.values.to_numpy(zero_copy_only=False)


def shared_number(bank_rows: np.ndarray, ledger_rows: np.ndarray, ref_keys: pl.Series,
                   other_keys: pl.Series) -> pl.Series:
    """Per pair, the first of the bank line's reference keys (in their order) that is also one
    of the ledger item's other numbers (``ref_keys`` / ``other_keys`` per line), else null:
    ``ref_keys.list.set_intersection(other_keys).list.first()``, without gathering the lists
    per pair. Each pair's bank keys are laid out flat and compared with the item's (a few)
    numbers one position at a time."""
    shared = pl.repeat(None, len(bank_rows), dtype=pl.Int64, eager=True)
    b_start, b_len, b_values = _flat_lists(ref_keys)
    l_start, l_len, l_values = _flat_lists(other_keys)
    rows = np.flatnonzero((b_len[bank_rows] > 0) & (l_len[ledger_rows] > 0))
    if not len(rows):
        return shared
    count = b_len[bank_rows[rows]]
    pair = np.repeat(np.arange(len(rows)), count)  # one entry per (pair, bank key), keys in order
    position = np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
    key = b_values[b_start[bank_rows[rows]][pair] + position]
    item = ledger_rows[rows][pair]
    hit = np.zeros(len(pair), dtype=bool)
    for j in range(int(l_len.max())):
        has = l_len[item] > j
        hit[has] |= key[has] == l_values[l_start[item[has]] + j]
    found = np.flatnonzero(hit)
    # the first hit of each pair (entries are in pair order, keys in list order)
    first = found[np.r_[True, pair[found][1:] != pair[found][:-1]]] if len(found) else found
    return shared.scatter(rows[pair[first]], pl.Series(key[first], dtype=pl.Int64))






def _top_name_weight(w) -> float:
    """The weight of the top name level ("same name"): the oldest-first rule needs it."""
    return max(lvl.weight for lvl in w.name)




def _per_group(rows: np.ndarray, size: int, values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each pair, over the pairs of its group (same ``rows`` value) where ``mask`` holds:
    the highest value (``-inf`` when none) and how many pairs there are."""
    best = np.full(size, -np.inf)
    np.maximum.at(best, rows[mask], values[mask])
    return best[rows], np.bincount(rows[mask], minlength=size)[rows]


def _column(frame: pl.DataFrame, name: str, fill=0) -> np.ndarray:
    return frame[name].fill_null(fill).to_numpy()


def score_candidates(
    pairs: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet, evidence: bool = True
) -> pl.DataFrame:
    """Score candidate pairs.

    Parameters
    ----------
    pairs
        ``bank_idx``, ``ledger_idx``, ``via`` from :func:`engine.candidates.generate_candidates`.
    bank, ledger
        Prepared frames from :mod:`engine.prepare.features`.
    rules
        Weights and levels.
    evidence
        With the text columns :func:`explain` reads (``SCORED_SCHEMA``); without them
        (``COMPACT_SCHEMA``: levels as codes, no names or references), which is all the
        assignment needs: :func:`with_evidence` adds them to the pairs that need them.

    Returns
    -------
    pl.DataFrame
        One row per pair with ``score``, ``confidence`` and the level columns that produced them
        (:func:`explain` renders them as a sentence).
    """
    w = rules.weights
    if pairs.height == 0:
        compact = pl.DataFrame(schema=COMPACT_SCHEMA)
        return with_evidence(compact, bank, ledger, rules) if evidence else compact
    # bank_idx / ledger_idx are row numbers of the prepared frames: everything per pair is a
    # gather of a per-line array (numbers only; text stays per line)
    b = pairs["bank_idx"].to_numpy().astype(np.int64)
    l_ = pairs["ledger_idx"].to_numpy().astype(np.int64)
    amount_bank = bank["amount_minor"].to_numpy()[b]
    amount_ledger = ledger["amount_minor"].to_numpy()[l_]
    amount_diff = amount_bank - amount_ledger
    exact = amount_diff == 0
    days = (bank["day"].to_numpy()[b] - ledger["day"].to_numpy()[l_]).astype(np.int32)
    # the reference strength (Polars) is worked out beside the name similarity (rapidfuzz):
    # both release the GIL
    with ThreadPoolExecutor(max_workers=1) as pool:
        # reference: the ledger reference as written or its serial in the bank text (or a close
        # one), another number of the item's, or a different complete document number quoted
        ref_job = pool.submit(_reference_strength, b, l_, bank, ledger)
        similarity = pair_name_similarity(b, l_, bank["name_key"], ledger["name_key"])
        ref_code = ref_job.result()
    shared = shared_number(b, l_, bank["ref_keys"], ledger["other_keys"])
    shared_numbers = shared
    shared = shared_numbers.is_not_null().to_numpy()
    digits = _column(ledger, "ref_digit_count")[l_]
    # the bank quotes a complete document number of its own that is not this one (a number
    # cut short by the bank's field width is no conflict)
    conflict = (digits >= 3) & (_column(bank, "explicit_ref_digits")[b] >= digits)
    loose = ref_code == _NONE
    ref_code[loose & shared] = _NUMBER
    ref_code[loose & ~shared & conflict] = _CONFLICT
    ref_weight = np.array([getattr(w.reference, level) for level in REF_LEVELS])[ref_code]

    amount_weight = np.where(exact, w.amount.exact, w.amount.within_tolerance)
    differ = np.flatnonzero(~exact)
    if len(differ):
        explained = pl.DataFrame({
            "amount_bank": amount_bank[differ], "amount_ledger": amount_ledger[differ],
            "currency": bank["currency"].gather(b[differ]),
        }).select(difference_explained(rules)).to_series().fill_null(False).to_numpy()
        amount_weight[differ[explained]] = w.amount.explained

    # names: missing on either side, in different scripts (not compared), or the similarity level
    unnamed_bank = (bank["name_key"].fill_null("") == "").to_numpy()
    unnamed_ledger = (ledger["name_key"].fill_null("") == "").to_numpy()
    names_missing = unnamed_bank[b] | unnamed_ledger[l_]
    script_bank = bank.select(script_code(pl.col("name_script"))).to_series().to_numpy()[b]
    script_ledger = ledger.select(script_code(pl.col("name_script"))).to_series().to_numpy()[l_]
    different_script = (script_bank > 0) & (script_ledger > 0) & (script_bank != script_ledger)
    level = level_index(similarity, [lvl.min_similarity for lvl in w.name], ascending=False)
    name_weight = np.array([lvl.weight for lvl in w.name])[level]
    name_code = level.astype(np.uint8)
    name_code[different_script] = len(w.name) + 1
    name_weight[different_script] = w.name_different_script
    name_code[names_missing] = len(w.name)
    name_weight[names_missing] = w.name_missing

    # an exact-amount pair is the clear choice when no other exact-amount candidate of the same
    # bank line / ledger item has name evidence as good as its own
    best_bank, n_exact_bank = _per_group(b, bank.height, name_weight, exact)
    best_ledger, n_exact_ledger = _per_group(l_, ledger.height, name_weight, exact)
    at_bank_best = exact & (name_weight == best_bank)
    at_ledger_best = exact & (name_weight == best_ledger)
    clear_bank = at_bank_best & (_per_group(b, bank.height, name_weight, at_bank_best)[1] == 1)
    clear_ledger = at_ledger_best & (_per_group(l_, ledger.height, name_weight, at_ledger_best)[1] == 1)

    date_weight = np.array([lvl.weight for lvl in w.date])[
        level_index(np.abs(days), [lvl.max_days for lvl in w.date], ascending=True)
    ]
    in_window = (days <= _column(ledger, "window_after")[l_]) & (-days <= _column(ledger, "window_before")[l_])
    window_weight = np.where(in_window, 0.0, w.outside_window)
    fifo = _oldest_first(b, l_, exact & (name_weight >= _top_name_weight(w)), bank, ledger, amount_ledger)
    competing = np.clip(n_exact_bank - 1 + n_exact_ledger - 1, 0, 6)
    uniq_weight = np.where(
        clear_bank & clear_ledger,
        w.unique_amount,
        np.where(exact, competing.astype(np.float64) * w.competing_amount + np.where(fifo, w.oldest_first, 0.0), 0.0),
    )
    score = w.prior + ref_weight + amount_weight + name_weight + date_weight + window_weight + uniq_weight
    compact = pairs.select("bank_idx", "ledger_idx", "via").with_columns(
        score=pl.Series(score),
        amount_diff=pl.Series(amount_diff),
        ref_code=pl.Series(ref_code),
        name_similarity=pl.Series(similarity),
        name_code=pl.Series(name_code),
        days=pl.Series(days),
        shared_number=shared_numbers,
        n_exact_bank=pl.Series(n_exact_bank, dtype=pl.Int32),
        n_exact_ledger=pl.Series(n_exact_ledger, dtype=pl.Int32),
        _clear_bank=pl.Series(clear_bank),
        _clear_ledger=pl.Series(clear_ledger),
        in_window=pl.Series(in_window),
        fifo=pl.Series(fifo),
    ).with_columns(
        confidence=(1.0 / (1.0 + pl.lit(2.0).pow(-pl.col("score")))).round(4),
    ).select(list(COMPACT_SCHEMA))
    return with_evidence(compact, bank, ledger, rules) if evidence else compact


def _oldest_first(b: np.ndarray, l_: np.ndarray, in_scope: np.ndarray, bank: pl.DataFrame,
                  ledger: pl.DataFrame, amount_ledger: np.ndarray) -> np.ndarray:
    """Payments applied oldest first: among the exact-amount, same-name pairs (``in_scope``),
    when one payer (same ledger name) has as many same-amount payments as same-amount items
    and more than one, the k-th payment by date pays the k-th oldest item."""
    fifo = np.zeros(len(b), dtype=bool)
    rows = np.flatnonzero(in_scope)
    if not len(rows):
        return fifo
    # the ledger name as a number (equal names, equal numbers): the payer key is an integer
    name_id = ledger["name_key"].cast(pl.Categorical).to_physical().to_numpy()
    # a line's place in date order (then row order) as one integer: day * 2**32 + row
    def when(day: np.ndarray, row: np.ndarray) -> np.ndarray:
        return (day.astype(np.int64) << 32) + row

    # the payer key (ledger name, amount) as one dense number per scope row
    names, amounts = name_id[l_[rows]], amount_ledger[rows]
    by_key = np.lexsort((amounts, names))
    new_key = np.r_[True, (names[by_key][1:] != names[by_key][:-1]) | (amounts[by_key][1:] != amounts[by_key][:-1])]
    key = np.empty(len(rows), dtype=np.int64)
    key[by_key] = np.cumsum(new_key) - 1
    rank_b, count_b = _rank_within(key, when(bank["day"].to_numpy()[b[rows]], b[rows]))
    rank_l, count_l = _rank_within(key, when(ledger["day"].to_numpy()[l_[rows]], l_[rows]))
    fifo[rows[(rank_b == rank_l) & (count_b > 1) & (count_b == count_l)]] = True
    return fifo


def _rank_within(key: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the place (1, 2, ...) of its line among the distinct lines of its ``key``, in
    ``order`` (the line's date and row number: one value per line, so it stands for the line),
    and how many distinct lines the key has."""
    distinct_order, order_rank = np.unique(order, return_inverse=True)
    # one number per (key, line), sorting by key then order
    entries, entry = np.unique(key * len(distinct_order) + order_rank, return_inverse=True)
    k = entries // len(distinct_order)
    start = np.r_[True, k[1:] != k[:-1]]
    run = np.cumsum(start) - 1  # the key run of each distinct entry
    run_start = np.flatnonzero(start)
    place = np.arange(len(entries)) - run_start[run] + 1
    size = np.diff(np.r_[run_start, len(entries)])[run]
    return place[entry], size[entry]


def with_evidence(scored: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """Compact scored pairs (``score_candidates(..., evidence=False)``) with the level names and
    the text columns :func:`explain` reads (``SCORED_SCHEMA``, in its column order)."""
    names = [lvl.label for lvl in rules.weights.name] + ["missing", "different script"]
    b, l_ = scored["bank_idx"], scored["ledger_idx"]
    return scored.with_columns(
        ref_level=pl.col("ref_code").replace_strict(dict(enumerate(REF_LEVELS)), return_dtype=pl.Utf8),
        name_level=pl.col("name_code").replace_strict(dict(enumerate(names)), return_dtype=pl.Utf8),
        amount_bank=bank["amount_minor"].gather(b),
        amount_ledger=ledger["amount_minor"].gather(l_),
        currency=bank["currency"].gather(b),
        doc_ref=ledger["doc_ref"].gather(l_),
        name_bank=bank["name_key"].gather(b),
        name_ledger=ledger["name_key"].gather(l_),
        type_norm=ledger["type_norm"].gather(l_),
    ).select(list(SCORED_SCHEMA)).cast(SCORED_SCHEMA)


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
