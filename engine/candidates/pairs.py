"""Candidate generation (engine stage 2): which bank line / ledger item pairs are worth scoring.

Everything here is vectorized with sorted searches over integer keys (numpy ``searchsorted``)
instead of join-then-filter: for every bank line we look up the range of ledger items in the same
block (same currency and amount, same payer, same reference key) whose date or amount falls in the
window, and explode those ranges. This is O(n log n) and bounded: a bank line keeps at most
``candidates.max_per_line_*`` items per generator (nearest first), so a popular amount or a busy
customer can never blow up a run.

Generators (``via`` bit flags):

- ``EXACT`` (1): same currency, exact amount, ledger date within the widest date window, nearest
  date first;
- ``BAND`` (2): same currency, a different amount within the rule set's tolerance band, nearest
  amount first; and for a line without a payer name, the same among the items dated within a
  few days of it (``max_per_line_band`` more: the nearest amounts of a busy month may all be
  dated far away);
- ``NAME`` (4): same currency and payer (the whole name key, or its first two words for a name
  the bank cut short): exact amount nearest date first, and near amounts nearest first;
- ``REFERENCE`` (8): a reference key in the bank text equals the ledger item's reference serial,
  within ``reference_window_days``, amount within tolerance.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from engine.candidates.tolerance import tolerance_expr
from engine.prepare.references import two_digit_year_tails
from rules.model import RuleSet

EXACT, BAND, NAME, REFERENCE = 1, 2, 4, 8

_DAY_OFFSET = 1 << 20  # days since 1970 shifted positive; keys stay below 2**21
_AMOUNT_OFFSET = 1 << 40  # amount keys: lines within +-2**40 minor units (1.1e12) take part
_AMOUNT_SPAN = 1 << 41

CANDIDATE_SCHEMA = {"bank_idx": pl.UInt32, "ledger_idx": pl.UInt32, "via": pl.UInt8}


def block_ids(bank_keys: pl.DataFrame, ledger_keys: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Dense integer block ids for the block key columns, shared by both sides, as
    :func:`window_pairs` takes them.

    Keys are hashed (64-bit, within this process) and the hashes ranked; two different keys that
    collide would only share a block, i.e. give a few more candidates, never lose one.

    Parameters
    ----------
    bank_keys, ledger_keys
        The block key columns of each side, one row per bank line / ledger item: the same
        column names in the same order (types are relaxed to a common one). Pass an empty
        ``ledger_keys`` (``bank_keys.clear()``) to number the keys of one frame only.

    Returns
    -------
    (bank_block, ledger_block)
        int64 arrays aligned with the rows of each input: equal keys get equal ids
        (non-negative, in the order of their hashes, not of the rows); a row with a null in
        any key column gets -1 (never paired).
    """
    both = pl.concat([bank_keys, ledger_keys], how="vertical_relaxed")
    null = both.select(pl.any_horizontal(pl.all().is_null())).to_series().to_numpy()
    ids = both.select(pl.struct(pl.all()).hash().rank("dense")).to_series().to_numpy()
    ids = np.where(null, -1, ids.astype(np.int64) - 1)
    return ids[: bank_keys.height], ids[bank_keys.height :]


def _first_words(name: pl.Expr, n: int) -> pl.Expr:
    """The first ``n`` words of a name key (null when it has fewer than ``n`` words)."""
    words = name.str.split(" ")
    return pl.when(words.list.len() >= n).then(words.list.head(n).list.join(" "))


def _sorted_words(name: pl.Expr) -> pl.Expr:
    """A name key's words in alphabetical order: the same key whatever order they came in."""
    return name.str.split(" ").list.sort().list.join(" ")


def _initials_key(bank: pl.DataFrame) -> pl.Expr:
    """The bank name's initials signature (``name_initials``) where the name writes a word as
    a single letter (``ho h l``), else null."""
    if "name_initials" not in bank.columns:
        return pl.lit(None, dtype=pl.Utf8).alias("name_initials")
    has_initial = pl.col("name_key").fill_null("").str.contains(r"(?:^| )\p{L}(?: |$)")
    return pl.when(has_initial).then(pl.col("name_initials")).alias("name_initials")


def window_pairs(
    bank_block: np.ndarray,
    bank_key: np.ndarray,
    ledger_block: np.ndarray,
    ledger_key: np.ndarray,
    below: np.ndarray | int,
    above: np.ndarray | int,
    cap: int,
    key_span: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (bank row, ledger row) in the same block with ``ledger_key`` in
    ``[bank_key - below, bank_key + above]``; at most ``cap`` per bank row, nearest key first.

    Parameters
    ----------
    bank_block, ledger_block
        Dense block ids (int64, -1 = no block: never paired).
    bank_key, ledger_key
        Non-negative int64 keys smaller than ``key_span``.
    below, above
        Window reach (scalar or per bank row).
    cap
        Maximum ledger rows per bank row.
    key_span
        Upper bound of the keys; ``block * key_span + key`` must fit in int64.

    Returns
    -------
    (bank_rows, ledger_rows)
        Row positions into the inputs, int64 arrays of equal length.
    """
    if cap <= 0 or len(bank_key) == 0 or len(ledger_key) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    # a key outside [0, key_span) (a date centuries away, an absurd amount) would reach into
    # the neighbouring block's keys: such a row is never paired
    bank_block = np.where((bank_key >= 0) & (bank_key < key_span), bank_block, -1)
    ledger_block = np.where((ledger_key >= 0) & (ledger_key < key_span), ledger_block, -1)
    blocks = int(max(bank_block.max(initial=0), ledger_block.max(initial=0))) + 1
    if blocks >= (1 << 62) // key_span:
        raise ValueError(f"too many candidate blocks ({blocks}) for key span {key_span}")
    ledger_ok = np.flatnonzero(ledger_block >= 0)
    composite = ledger_block[ledger_ok] * key_span + ledger_key[ledger_ok]
    order = np.argsort(composite)
    sorted_keys = composite[order]
    sorted_rows = ledger_ok[order]

    # look up the bank rows in key order too: sorted needles keep searchsorted cache-friendly
    bank_ok = np.flatnonzero(bank_block >= 0)
    bank_ok = bank_ok[np.argsort(bank_block[bank_ok] * key_span + bank_key[bank_ok])]
    base = bank_block[bank_ok] * key_span
    key = bank_key[bank_ok]
    below_ok = below[bank_ok] if isinstance(below, np.ndarray) else below
    above_ok = above[bank_ok] if isinstance(above, np.ndarray) else above
    lo = np.searchsorted(sorted_keys, base + np.maximum(key - below_ok, 0), side="left")
    hi = np.searchsorted(sorted_keys, base + np.minimum(key + above_ok, key_span - 1), side="right")
    count = hi - lo
    crowded = count > cap
    if crowded.any():
        centre = np.searchsorted(sorted_keys, base + key, side="left")
        start = np.clip(centre - cap // 2, lo, np.maximum(hi - cap, lo))
        lo = np.where(crowded, start, lo)
        hi = np.where(crowded, start + cap, hi)
        count = hi - lo
    total = int(count.sum())
    if total == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    rep = np.repeat(np.arange(len(bank_ok)), count)
    starts = np.repeat(lo - np.cumsum(count) + count, count)
    positions = starts + np.arange(total)
    return bank_ok[rep], sorted_rows[positions]


def generate_candidates(bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """Candidate pairs for one-to-one scoring.

    Parameters
    ----------
    bank
        Prepared bank lines (see :func:`engine.prepare.features.prepare_bank`): ``bank_idx``, ``day``,
        ``amount_minor``, ``currency``, ``name_key``, ``ref_keys``.
    ledger
        Prepared ledger items: ``ledger_idx``, ``day``, ``amount_minor``, ``currency``,
        ``name_key``, ``ref_serial``.
    rules
        The rule set (date windows, tolerances, caps).

    Returns
    -------
    pl.DataFrame
        ``bank_idx``, ``ledger_idx``, ``via`` (bit flags of the generators that proposed the pair),
        unique per pair, same currency, same sign, amount within tolerance.
    """
    if bank.height == 0 or ledger.height == 0:
        return pl.DataFrame(schema=CANDIDATE_SCHEMA)
    cand = rules.candidates
    widest = rules.dates.widest()
    bank_day = bank["day"].cast(pl.Int64).to_numpy() + _DAY_OFFSET
    ledger_day = ledger["day"].cast(pl.Int64).to_numpy() + _DAY_OFFSET
    bank_amount = bank["amount_minor"].to_numpy()
    ledger_amount = ledger["amount_minor"].to_numpy()
    currencies = sorted(set(bank["currency"].unique().to_list()) | set(ledger["currency"].unique().to_list()))
    bank_tol = bank.select(
        tolerance_expr(pl.col("amount_minor"), pl.col("currency"), rules, currencies)
    ).to_series().to_numpy()
    ledger_tol = ledger.select(
        tolerance_expr(pl.col("amount_minor"), pl.col("currency"), rules, currencies)
    ).to_series().to_numpy()
    # amount-keyed searches need the amount inside the key span; (absurdly) larger amounts
    # still meet their match through the exact-amount and reference generators
    bank_amount_ok = np.abs(bank_amount) < _AMOUNT_OFFSET
    ledger_amount_ok = np.abs(ledger_amount) < _AMOUNT_OFFSET
    bank_amount_key = np.where(bank_amount_ok, bank_amount + _AMOUNT_OFFSET, 0)
    ledger_amount_key = np.where(ledger_amount_ok, ledger_amount + _AMOUNT_OFFSET, 0)

    def in_window(b: np.ndarray, l_: np.ndarray) -> np.ndarray:
        d = bank_day[b] - ledger_day[l_]
        return (d <= widest.after) & (-d <= widest.before)

    def admissible(b: np.ndarray, l_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rule every generator's pairs meet: same sign, amount within the ledger item's
        band (pairs of equal amounts meet it by construction: their generators skip this)."""
        keep = (np.abs(bank_amount[b] - ledger_amount[l_]) <= ledger_tol[l_]) & (
            np.sign(bank_amount[b]) == np.sign(ledger_amount[l_])
        )
        return b[keep], l_[keep]

    def by_amount(block_bank: np.ndarray, block_ledger: np.ndarray, cap: int):
        """Nearest amounts within the tolerance band, inside blocks, then the date window."""
        b, l_ = window_pairs(
            np.where(bank_amount_ok, block_bank, -1), bank_amount_key,
            np.where(ledger_amount_ok, block_ledger, -1), ledger_amount_key,
            bank_tol, bank_tol, cap, _AMOUNT_SPAN,
        )
        keep = in_window(b, l_)
        return b[keep], l_[keep]

    def _near_date_band() -> tuple[np.ndarray, np.ndarray]:
        nameless = (bank["name_key"].fill_null("") == "").to_numpy()
        days = cand.nameless_near_days
        if days == 0 or not nameless.any():
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        bucket_bank = bank_day // days
        # each item in its bucket and the next: a line meets the items of its bucket and the one before
        rows = np.concatenate([np.arange(ledger.height), np.arange(ledger.height)])
        bucket_ledger = np.concatenate([ledger_day // days, ledger_day // days + 1])
        bb, lb = block_ids(
            pl.DataFrame({"currency": bank["currency"], "bucket": bucket_bank}),
            pl.DataFrame({"currency": ledger["currency"].gather(rows), "bucket": bucket_ledger}),
        )
        b, i = window_pairs(
            np.where(bank_amount_ok & nameless, bb, -1), bank_amount_key,
            np.where(ledger_amount_ok[rows], lb, -1), ledger_amount_key[rows],
            bank_tol, bank_tol, cand.max_per_line_band, _AMOUNT_SPAN,
        )
        l_ = rows[i]
        keep = in_window(b, l_) & (bank_amount[b] != ledger_amount[l_])
        return admissible(b[keep], l_[keep])

    def by_amount_and_reference() -> list[tuple[np.ndarray, np.ndarray, int]]:
        parts = []
        # 1. exact amount within the widest date window, nearest date first
        bb, lb = block_ids(bank.select("currency", "amount_minor"), ledger.select("currency", "amount_minor"))
        b, l_ = window_pairs(bb, bank_day, lb, ledger_day, widest.after, widest.before,
                             cand.max_per_line_exact, 1 << 21)
        parts.append((b, l_, EXACT))

        # 2. amount within the tolerance band (same currency), nearest amount first; exact
        #    amounts are the first generator's job
        cb, cl = block_ids(bank.select("currency"), ledger.select("currency"))
        b, l_ = by_amount(cb, cl, cand.max_per_line_band)
        keep = bank_amount[b] != ledger_amount[l_]
        parts.append((*admissible(b[keep], l_[keep]), BAND))

        # 2b. a nameless line: amounts within the band among the items dated near it (a few
        #     days either side, ``candidates.nameless_near_days``). In a busy ledger the nearest amounts of the whole month
        #     may all lie outside the date window, while the item booked the same day, 50.00
        #     more (a bank charge), is further away in amount; a named line has the payer's
        #     near amounts (by_payer) for that
        parts.append((*_near_date_band(), BAND))

        # 4. reference key found in the bank text
        exploded = (
            bank.select("bank_idx", "currency", "day", "date", pl.col("ref_keys").alias("ref_key"))
            .explode("ref_key")
            .drop_nulls("ref_key")
        )
        # a reference written with a two-digit year run into its serial ("INV261808" for
        # INV/26/1808): the number after the bank year's (or the year before's) two digits
        # is a key too
        exploded = pl.concat([exploded, two_digit_year_tails(exploded, "ref_key")]).drop("date")
        if exploded.height:
            bb, lb = block_ids(
                exploded.select("currency", "ref_key"),
                ledger.select("currency", pl.col("ref_serial").alias("ref_key")),
            )
            e_day = exploded["day"].cast(pl.Int64).to_numpy() + _DAY_OFFSET
            eb, l_ = window_pairs(bb, e_day, lb, ledger_day, cand.reference_window_days,
                                  cand.reference_window_days, cand.max_per_line_reference, 1 << 21)
            parts.append((*admissible(exploded["bank_idx"].to_numpy().astype(np.int64)[eb], l_), REFERENCE))
        return parts

    def by_payer() -> list[tuple[np.ndarray, np.ndarray, int]]:
        parts = []
        # 3. same payer: exact amount (nearest date first; a customer with hundreds of open
        #    invoices still gets the ones with the right amount) and near amounts; on the whole
        #    name key and on its first two words (a name cut short by the bank, "HARBOUR EASTERN
        #    TECH")
        #    (words in any order: "KWAN MING CHOW" for Chow Kwan Ming), and, for a bank name given
        #    with initials ("HO H L"), on the initials of the words (exact amounts only)
        blocks = ((_sorted_words(pl.col("name_key")), True), (_first_words(pl.col("name_key"), 2), False),
                  (_initials_key(bank), False))
        for key_expr, near in blocks:
            bank_names = bank.select("currency", key_expr.replace("", None).alias("k"))
            ledger_key = pl.col("name_initials") if key_expr.meta.output_name() == "name_initials" else key_expr
            ledger_names = ledger.select("currency", ledger_key.replace("", None).alias("k"))
            bb, lb = block_ids(
                bank_names.with_columns(a=bank["amount_minor"]), ledger_names.with_columns(a=ledger["amount_minor"])
            )
            b, l_ = window_pairs(bb, bank_day, lb, ledger_day, widest.after, widest.before,
                                 cand.max_per_line_name, 1 << 21)
            parts.append((b, l_, NAME))
            if near:
                nb, nl = block_ids(bank_names, ledger_names)
                b, l_ = by_amount(nb, nl, cand.max_per_line_band)
                keep = bank_amount[b] != ledger_amount[l_]
                parts.append((*admissible(b[keep], l_[keep]), NAME))
        return parts

    # the generators are independent (numpy sorts and searches, Polars hashing: no GIL held):
    # two of them side by side; the union below does not depend on their order
    with ThreadPoolExecutor(max_workers=1) as pool:
        payer_job = pool.submit(by_payer)
        parts = by_amount_and_reference()
        parts += payer_job.result()

    # union (every part already meets the same-sign, within-band rule: see admissible)
    b = np.concatenate([p[0] for p in parts])
    l_ = np.concatenate([p[1] for p in parts])
    via = np.concatenate([np.full(len(p[0]), p[2], dtype=np.uint8) for p in parts])
    key = (b.astype(np.uint64) << np.uint64(32)) | l_.astype(np.uint64)
    # one row per pair, its generators' flags or-ed: sort by pair, then reduce each run
    pairs = pl.DataFrame({"key": key, "via": via}).sort("key")
    sorted_key = pairs["key"].to_numpy()
    first = np.flatnonzero(np.concatenate([sorted_key[:1] == sorted_key[:1], sorted_key[1:] != sorted_key[:-1]]))
    merged = sorted_key[first]
    return pl.DataFrame(
        {
            "bank_idx": (merged >> np.uint64(32)).astype(np.uint32),
            "ledger_idx": (merged & np.uint64(0xFFFFFFFF)).astype(np.uint32),
            "via": np.bitwise_or.reduceat(pairs["via"].to_numpy(), first) if len(first) else np.empty(0, np.uint8),
        },
        schema=CANDIDATE_SCHEMA,
    )
