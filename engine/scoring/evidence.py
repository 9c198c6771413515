"""Pair measurements (engine stage 3, scoring): what the comparison levels look at.

:func:`measure_pairs` gathers, for every candidate pair, the measurements the levels'
conditions read (:class:`PairEvidence`): how the amounts relate, the days between the dates,
how the bank text quotes the item's reference, how alike the names are, and the context among
the candidates (the only exact-amount candidate both ways, oldest-first). Everything is a numpy
array gathered by row number from per-line columns of the prepared frames; no text, list or
struct column is built per pair.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.prepare.references import (
    REFERENCE_GRADES,
    ledger_reference_profile,
    reference_digits,
    reference_grade_from_profiles,
)
from engine.scoring import differences
from engine.scoring.levels import REFERENCE_LEVELS
from engine.scoring.names import compare_names
from rules.model import RuleSet

__all__ = ["PairEvidence", "measure_pairs", "receivable_counts", "shared_number"]

_GRADE = {name: np.uint8(i) for i, name in enumerate(REFERENCE_LEVELS)}
#: candidate pairs whose reference is graded at once (memory per pair: both lines' profiles)
_GRADE_CHUNK = 250_000


@dataclass
class PairEvidence:
    """Pair-aligned measurements of candidate pairs (numpy arrays of equal length).

    ``reference`` holds positions in :data:`engine.scoring.levels.REFERENCE_LEVELS`;
    ``amount_kind`` positions in :data:`engine.scoring.differences.AMOUNT_KINDS`.
    """

    bank_rows: np.ndarray
    ledger_rows: np.ndarray
    amount_bank: np.ndarray
    amount_ledger: np.ndarray
    amount_kind: np.ndarray
    days: np.ndarray
    in_window: np.ndarray
    near_window: np.ndarray
    amount_count: np.ndarray
    band_count: np.ndarray
    reference: np.ndarray
    shared_number: pl.Series
    similarity: np.ndarray
    name_missing: np.ndarray
    different_script: np.ndarray
    initials: np.ndarray
    digits_differ: np.ndarray
    alias: np.ndarray
    acronym: np.ndarray
    purpose: np.ndarray
    #: context among the candidates, filled by :func:`add_context` once name weights are known
    clear: np.ndarray | None = None
    clear_bank: np.ndarray | None = None
    clear_ledger: np.ndarray | None = None
    n_exact_bank: np.ndarray | None = None
    n_exact_ledger: np.ndarray | None = None
    fifo: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.bank_rows)

    @property
    def amount_diff(self) -> np.ndarray:
        return self.amount_bank - self.amount_ledger

    @property
    def exact(self) -> np.ndarray:
        return self.amount_kind == 0


def _column(frame: pl.DataFrame, name: str, fill=0) -> np.ndarray:
    return frame[name].fill_null(fill).to_numpy()


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


def _reference_grades(bank_rows: np.ndarray, ledger_rows: np.ndarray, bank: pl.DataFrame,
                      ledger: pl.DataFrame) -> np.ndarray:
    """The reference grade of each pair (:data:`engine.prepare.references.REFERENCE_GRADES`),
    worked out only where it can be anything but "none": the bank text has a reference key and
    the ledger reference has a digit. Each side's profile is computed once per line (the
    ledger's only for the items that need it) and gathered."""
    has_keys = (bank["ref_keys"].list.len() > 0).fill_null(False).to_numpy()
    has_ref = ((ledger["ref_digit_count"] > 0) & ledger["doc_ref"].is_not_null()).fill_null(False).to_numpy()
    rows = np.flatnonzero(has_keys[bank_rows] & has_ref[ledger_rows])
    grade = np.full(len(bank_rows), _GRADE["none"], dtype=np.uint8)
    if not len(rows):
        return grade
    wanted = np.zeros(ledger.height, dtype=bool)
    wanted[ledger_rows[rows]] = True
    items = np.flatnonzero(wanted)
    profiles = ledger.select(pl.col("doc_ref").gather(items)).select(
        ledger_reference_profile(pl.col("doc_ref"))
    ).to_series()
    # position of each pair's item among ``items``: a dense lookup by ledger row
    slot = np.zeros(ledger.height, dtype=np.uint32)
    slot[items] = np.arange(len(items), dtype=np.uint32)
    codes = {g: _GRADE[g] for g in REFERENCE_GRADES}
    # both profiles are gathered per pair (lists and many fields): a bounded number of pairs at a
    # time keeps that memory flat whatever the month's size
    for start in range(0, len(rows), _GRADE_CHUNK):
        part = rows[start:start + _GRADE_CHUNK]
        grade[part] = (
            pl.DataFrame({
                "reference_profile": bank["reference_profile"].gather(bank_rows[part]),
                "ledger_profile": profiles.gather(slot[ledger_rows[part]]),
            })
            .select(reference_grade_from_profiles(pl.col("reference_profile"), pl.col("ledger_profile"))
                    .replace_strict(codes, return_dtype=pl.UInt8))
            .to_series()
            .to_numpy()
        )
    return grade


def _shorter_number_conflicts(b: np.ndarray, l_: np.ndarray, bank: pl.DataFrame, ledger: pl.DataFrame,
                              rows: np.ndarray) -> np.ndarray:
    """Where (among ``rows``) the bank quotes a shorter number of the item's own series that is
    not the item's number cut short: ``INV/26/49777`` against ``INV/26/101851`` (digits
    ``2649777`` and ``26101851``: the same first two digits, the year, but not a prefix) is
    another document; ``INV/26/1018`` (a prefix) is the same one cut by the bank's field width,
    and ``PO 4411`` (another series) says nothing about the item."""
    out = np.zeros(len(b), dtype=bool)
    at = np.flatnonzero(rows)
    if len(at) == 0:
        return out
    quoted = bank["explicit_ref"].gather(b[at])
    own = pl.DataFrame({"doc_ref": ledger["doc_ref"].gather(l_[at])}).select(
        reference_digits(pl.col("doc_ref"))).to_series()
    same_series = quoted.str.slice(0, 2) == own.str.slice(0, 2)
    cut_short = own.str.starts_with(quoted)
    out[at] = (same_series & ~cut_short).fill_null(False).to_numpy()
    return out


def measure_pairs(pairs: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> PairEvidence:
    """The measurements of every pair (``bank_idx``, ``ledger_idx``: row numbers of the
    prepared frames), without the candidate context (:func:`add_context`)."""
    b = pairs["bank_idx"].to_numpy().astype(np.int64)
    l_ = pairs["ledger_idx"].to_numpy().astype(np.int64)
    amount_bank = bank["amount_minor"].to_numpy()[b]
    amount_ledger = ledger["amount_minor"].to_numpy()[l_]
    days = (bank["day"].to_numpy()[b] - ledger["day"].to_numpy()[l_]).astype(np.int32)
    # the reference grade (Polars) is worked out beside the name similarity (rapidfuzz): both
    # release the GIL
    with ThreadPoolExecutor(max_workers=1) as pool:
        ref_job = pool.submit(_reference_grades, b, l_, bank, ledger)
        names = compare_names(b, l_, bank, ledger, unlike_below=_unlike_below(rules))
        reference = ref_job.result()
    cut = _cut_names(b, l_, bank, ledger, names.similarity)
    shared = shared_number(b, l_, bank["ref_keys"], ledger["other_keys"])
    digits = _column(ledger, "ref_digit_count")[l_]
    loose = reference == _GRADE["none"]
    has_shared = shared.is_not_null().to_numpy()
    # the bank quotes a complete document number of its own that is not this one (a number
    # cut short by the bank's field width is no conflict)
    explicit = _column(bank, "explicit_ref_digits")[b]
    conflict = (digits >= 3) & (explicit >= digits)
    conflict |= _shorter_number_conflicts(b, l_, bank, ledger, loose & ~has_shared & ~conflict & (explicit >= 5)
                                          & (explicit < digits))
    # ... or quotes another candidate item's reference as written: that item is the one it pays
    quoted = np.isin(reference, [_GRADE["full"], _GRADE["reformatted"]])
    quotes_one = np.bincount(b[quoted], minlength=int(b.max()) + 1 if len(b) else 0) > 0
    conflict |= quotes_one[b] & (explicit >= 3) if len(b) else conflict
    reference[loose & has_shared] = _GRADE["number"]
    reference[loose & ~has_shared & conflict] = _GRADE["conflict"]
    # one cheque number on both sides (CHQ 100003 presented; the bill paid by "chq 100003")
    cheque = _cheque_numbers(b, l_, bank, ledger)
    mine = np.flatnonzero((cheque > 0) & (reference > _GRADE["cheque"]))
    if len(mine):
        reference[mine] = _GRADE["cheque"]
        shared = shared.scatter(mine, pl.Series(cheque[mine], dtype=pl.Int64))

    amount_kind = np.zeros(len(b), dtype=np.uint8)
    differ = np.flatnonzero(amount_bank != amount_ledger)
    if len(differ):
        amount_kind[differ] = pl.DataFrame({
            "amount_bank": amount_bank[differ], "amount_ledger": amount_ledger[differ],
            "currency": bank["currency"].gather(b[differ]),
        }).select(differences.kind(rules)).to_series().to_numpy()

    after, before = _column(ledger, "window_after")[l_], _column(ledger, "window_before")[l_]
    in_window = (days <= after) & (-days <= before)
    amount_count, band_count = _amount_counts(bank, ledger, rules)
    return PairEvidence(
        bank_rows=b, ledger_rows=l_, amount_bank=amount_bank, amount_ledger=amount_ledger,
        amount_kind=amount_kind, days=days, in_window=in_window,
        near_window=(days <= 2 * after) & (-days <= 2 * before),
        amount_count=amount_count[l_], band_count=band_count[b], reference=reference,
        shared_number=shared, similarity=names.similarity, name_missing=names.missing | cut,
        different_script=names.different_script, initials=names.initials, digits_differ=names.digits_differ,
        alias=names.alias, acronym=names.acronym, purpose=names.purpose,
    )


def _cheque_numbers(b: np.ndarray, l_: np.ndarray, bank: pl.DataFrame, ledger: pl.DataFrame) -> np.ndarray:
    """Per pair, the cheque number the bank line and the ledger item both name
    (``cheque_no``), 0 where they name none or different ones."""
    if "cheque_no" not in bank.columns or "cheque_no" not in ledger.columns:
        return np.zeros(len(b), dtype=np.int64)
    bank_no = bank["cheque_no"].fill_null(-1).to_numpy()[b]
    ledger_no = ledger["cheque_no"].fill_null(-2).to_numpy()[l_]
    return np.where(bank_no == ledger_no, bank_no, 0)


def _unlike_below(rules: RuleSet) -> float:
    """The similarity below which two names count against a pair (the least similarity of
    the name levels weighing 0 or more): only there an acronym or a purpose is looked for."""
    return min((level.min_similarity for level in rules.weights.name if level.weight >= 0), default=0.0)


#: a bank name this short (in characters) that begins the ledger name was cut by the bank's field
#: width: it says nothing either way
CUT_NAME_MAX_CHARS = 9


def _cut_names(bank_rows: np.ndarray, ledger_rows: np.ndarray, bank: pl.DataFrame, ledger: pl.DataFrame,
               similarity: np.ndarray) -> np.ndarray:
    """Pairs whose bank name is only the first few letters of the ledger name (``EA`` or
    ``EASTE`` for Eastern Harbour Construction: the narrative ran out of room): no name
    evidence, rather than an unrelated name. Only pairs that look dissimilar are checked."""
    bank_len = bank["name_key"].fill_null("").str.len_chars().to_numpy()
    rows = np.flatnonzero((similarity < 70) & (bank_len[bank_rows] > 0) & (bank_len[bank_rows] <= CUT_NAME_MAX_CHARS))
    cut = np.zeros(len(bank_rows), dtype=bool)
    if len(rows):
        found = pl.DataFrame({
            "bank": bank["name_key"].gather(bank_rows[rows]), "ledger": ledger["name_key"].gather(ledger_rows[rows]),
        }).select(pl.col("ledger").str.starts_with(pl.col("bank")).fill_null(False)).to_series().to_numpy()
        cut[rows] = found
    return cut


def receivable_counts(ledger: pl.DataFrame) -> np.ndarray:
    """Per ledger item, how many ledger items have its currency and amount, an order counted
    with the invoice it was invoiced as (``invoiced``), not beside it: the two are one
    receivable."""
    if "invoiced" not in ledger.columns:
        return ledger.select(pl.len().over("currency", "amount_minor")).to_series().to_numpy()
    counted = (~pl.col("invoiced")).cast(pl.Int32)
    return ledger.select(counted.sum().over("currency", "amount_minor").clip(lower_bound=1)).to_series().to_numpy()


def _amount_counts(bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> tuple[np.ndarray, np.ndarray]:
    """Per ledger item, how many ledger items have its currency and amount; per bank line, how
    many ledger items of its currency and sign lie within the tolerance of its amount (sorted
    searches over one integer key per line: currency, then amount)."""
    from engine.candidates.tolerance import tolerance_expr

    amount_count = receivable_counts(ledger)
    currencies = sorted(set(bank["currency"].unique().to_list()) | set(ledger["currency"].unique().to_list()))
    code = {c: i for i, c in enumerate(currencies)}
    span = np.int64(1) << np.int64(44)  # amounts within +-2**43 minor units keep their order

    def keys(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        currency = frame["currency"].replace_strict(code, return_dtype=pl.Int64).to_numpy()
        amount = np.clip(frame["amount_minor"].to_numpy(), -(span // 2) + 1, span // 2 - 1)
        return currency * span, amount

    ledger_base, ledger_amount = keys(ledger)
    sorted_keys = np.sort(ledger_base + ledger_amount + span // 2)
    bank_base, bank_amount = keys(bank)
    tolerance = bank.select(
        tolerance_expr(pl.col("amount_minor"), pl.col("currency"), rules, currencies)
    ).to_series().to_numpy()
    # never across zero: a credit's band holds credits only
    low = np.where(bank_amount > 0, np.maximum(bank_amount - tolerance, 1), bank_amount - tolerance)
    high = np.where(bank_amount < 0, np.minimum(bank_amount + tolerance, -1), bank_amount + tolerance)
    base = bank_base + span // 2
    band_count = np.searchsorted(sorted_keys, base + high, side="right") - np.searchsorted(sorted_keys, base + low, side="left")
    return amount_count, band_count


def _per_group(rows: np.ndarray, size: int, values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each pair, over the pairs of its group (same ``rows`` value) where ``mask`` holds:
    the highest value (``-inf`` when none) and how many pairs there are."""
    best = np.full(size, -np.inf)
    np.maximum.at(best, rows[mask], values[mask])
    return best[rows], np.bincount(rows[mask], minlength=size)[rows]


#: how far (in the ranking only, not in any score) an invoiced order's name evidence is put
#: below its invoice's, so that the invoice is the clear candidate of equal name evidence
INVOICED_ORDER_YIELDS = 1e-3


def add_context(evidence: PairEvidence, name_weight: np.ndarray, top_name_weight: float, bank: pl.DataFrame,
                ledger: pl.DataFrame) -> None:
    """The context among the candidates, in place: an exact-amount pair is the clear choice
    when no other exact-amount candidate of the same bank line / ledger item has name evidence
    (``name_weight`` per pair, by the rule set's name weights whatever the scorer: it is a
    question of which candidate names best, not of how much a name is worth) as good as its
    own (an order its customer was invoiced for, ``invoiced``, ranks just below its invoice);
    and, among the pairs at the top name level (``top_name_weight``), the payer's same-amount
    payments applied oldest item first."""
    b, l_ = evidence.bank_rows, evidence.ledger_rows
    exact = evidence.exact
    if "invoiced" in ledger.columns:
        # an order that was invoiced gives way to its invoice: the payment settles the invoice
        name_weight = name_weight - INVOICED_ORDER_YIELDS * ledger["invoiced"].to_numpy()[l_]
    best_bank, n_exact_bank = _per_group(b, bank.height, name_weight, exact)
    best_ledger, n_exact_ledger = _per_group(l_, ledger.height, name_weight, exact)
    at_bank_best = exact & (name_weight == best_bank)
    at_ledger_best = exact & (name_weight == best_ledger)
    evidence.clear_bank = at_bank_best & (_per_group(b, bank.height, name_weight, at_bank_best)[1] == 1)
    evidence.clear_ledger = at_ledger_best & (_per_group(l_, ledger.height, name_weight, at_ledger_best)[1] == 1)
    evidence.clear = evidence.clear_bank & evidence.clear_ledger
    evidence.n_exact_bank = n_exact_bank.astype(np.int32)
    evidence.n_exact_ledger = n_exact_ledger.astype(np.int32)
    evidence.fifo = _oldest_first(b, l_, exact & (name_weight >= top_name_weight), bank, ledger,
                                  evidence.amount_ledger)


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
