"""The plain baseline recon is compared with: exact amount, +-7 days, first-come greedy.

Stage: benchmarks, outside the feeds -> engine -> adapters flow. It stands for what a careful
spreadsheet does: each bank line, in statement order (date, then id), takes the earliest unmatched
ledger item (by date, then id) of the same currency and exactly the same amount dated within
``window_days`` of it. One-to-one only; no names, no references, no FX, no groups, every match
``auto`` with confidence 1. Its ``matches.csv``-shaped output is scored with the same
:func:`engine.evaluate.evaluate` as recon's, so ``benchmarks/RESULTS.md`` can show both.

How it stays vectorized
-----------------------
Within one (currency, amount) bucket, with ledger items sorted by date and the window
``[lo_i, hi_i)`` of bank line ``i`` found by binary search, the greedy is a pointer ``c`` into the
ledger list: line ``i`` matches item ``c_i`` when ``c_i < hi_i``, and
``c_{i+1} = max(min(c_i + 1, hi_i), lo_{i+1})``. Each step is a function ``x -> clamp(x + a, L, H)``
and such functions compose into one of the same form, so all pointers come from one prefix scan
(log2(n) numpy passes). Buckets are laid end to end in one global order, so a new bucket's first
``lo`` resets the pointer by itself. Exact, and about a second for a million lines.

Examples
--------
``python -m benchmarks.baseline --bank bank.csv --ledger ledger.csv --out DIR`` writes
``DIR/matches.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from models.money import format_minor_expr, parse_amount_expr
from models.schema import MATCH_COLUMNS

BASELINE_WINDOW_DAYS = 7
#: the matches.csv columns the baseline writes (recon's contract plus an empty ``adjustments``)
BASELINE_COLUMNS = [*MATCH_COLUMNS, "adjustments"]
_DAY_SPAN = 1 << 22  # more days than any date can be apart from 1970: keys never overlap


def _canonical(frame: pl.DataFrame, side: str) -> pl.DataFrame:
    """id, date, currency, amount_minor from a canonical frame (text amounts or amount_minor)."""
    missing = [c for c in ("id", "date", "currency") if c not in frame.columns]
    if missing or not {"amount", "amount_minor"} & set(frame.columns):
        raise ValueError(f"{side} frame needs id, date, currency and amount (or amount_minor); lacks "
                         f"{', '.join(missing) or 'amount'}")
    currency = pl.col("currency").cast(pl.Utf8).str.strip_chars().str.to_uppercase()
    if "amount_minor" in frame.columns:
        minor = pl.col("amount_minor").cast(pl.Int64)
    else:
        minor, _ = parse_amount_expr(pl.col("amount").cast(pl.Utf8), currency)
    date = pl.col("date")
    if frame.schema["date"] != pl.Date:
        date = date.cast(pl.Utf8).str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    return (
        frame.select(id=pl.col("id").cast(pl.Utf8), date=date, currency=currency, amount_minor=minor)
        .drop_nulls(["id", "date", "currency", "amount_minor"])
    )


def _compose(first: tuple[np.ndarray, ...], then: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """``then o first`` for functions ``x -> clamp(x + a, low, high)`` given as (a, low, high)."""
    a1, low1, high1 = first
    a2, low2, high2 = then
    return a1 + a2, np.clip(low1 + a2, low2, high2), np.clip(high1 + a2, low2, high2)


def greedy_pointers(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Pointers of the first-come greedy: ``c_0 = lo_0``, ``c_{i+1} = max(min(c_i + 1, hi_i), lo_{i+1})``.

    ``lo`` and ``hi`` must be non-decreasing with ``lo <= hi``; line ``i`` matches item ``c_i``
    exactly when ``c_i < hi_i``.

    Examples
    --------
    >>> greedy_pointers(np.array([0, 0, 0, 5]), np.array([2, 2, 2, 6])).tolist()
    [0, 1, 2, 5]
    """
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    m = len(lo)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    # step i maps c_i to c_{i+1}: x -> clamp(x + 1, lo_{i+1}, max(hi_i, lo_{i+1}))
    step = (np.ones(m - 1, dtype=np.int64), lo[1:], np.maximum(hi[:-1], lo[1:]))
    prefix = tuple(part.copy() for part in step)
    shift = 1
    while shift < m - 1:  # Hillis-Steele inclusive scan: prefix_i = step_i o ... o step_0
        earlier = tuple(part[:-shift] for part in prefix)
        later = tuple(part[shift:] for part in prefix)
        combined = _compose(earlier, later)
        prefix = tuple(np.concatenate([part[:shift], new]) for part, new in zip(prefix, combined, strict=True))
        shift *= 2
    a, low, high = prefix
    return np.concatenate([lo[:1], np.clip(lo[0] + a, low, high)])


def baseline_match(bank: pl.DataFrame, ledger: pl.DataFrame, window_days: int = BASELINE_WINDOW_DAYS) -> pl.DataFrame:
    """Match exact amounts within ``window_days``, first come first served, one to one.

    Parameters
    ----------
    bank, ledger
        Canonical frames: ``id``, ``date`` (Date or ``YYYY-MM-DD`` text), ``currency`` and
        ``amount`` (decimal text) or ``amount_minor``. Rows whose date or amount cannot be read
        are skipped; a bank id delivered twice is matched once.
    window_days
        Largest distance in days between the bank date and the ledger date.

    Returns
    -------
    polars.DataFrame
        One row per match with :data:`BASELINE_COLUMNS` (as ``matches.csv``): ``match_type``
        ``one_to_one``, ``status`` ``auto``, ``confidence`` 1.0, difference 0.

    Examples
    --------
    >>> bank = pl.DataFrame({"id": ["B1", "B2"], "date": ["2026-10-05", "2026-10-06"],
    ...                      "amount": ["100.00", "100.00"], "currency": ["HKD", "HKD"]})
    >>> ledger = pl.DataFrame({"id": ["I1", "I2"], "date": ["2026-10-01", "2026-09-01"],
    ...                        "amount": ["100.00", "100.00"], "currency": ["HKD", "HKD"]})
    >>> baseline_match(bank, ledger).select("bank_ids", "ledger_ids").rows()
    [('B1', 'I1')]
    """
    b = _canonical(bank, "bank").unique("id", keep="first", maintain_order=True)
    led = _canonical(ledger, "ledger")
    keys = pl.concat([b.select("currency", "amount_minor"), led.select("currency", "amount_minor")]).unique()
    keys = keys.sort("currency", "amount_minor").with_row_index("_key")
    day = pl.col("date").cast(pl.Int64) + (_DAY_SPAN // 2)
    position = pl.col("_key").cast(pl.Int64) * _DAY_SPAN + day
    led = led.join(keys, on=["currency", "amount_minor"]).with_columns(_pos=position).sort("_pos", "id")
    b = b.join(keys, on=["currency", "amount_minor"]).with_columns(_pos=position).sort("_pos", "id")
    ledger_pos = led["_pos"].to_numpy()
    bank_pos = b["_pos"].to_numpy()
    lo = np.searchsorted(ledger_pos, bank_pos - window_days, side="left")
    hi = np.searchsorted(ledger_pos, bank_pos + window_days, side="right")
    pointer = greedy_pointers(lo, hi)
    matched = pointer < hi
    pairs = pl.concat(
        [b.filter(pl.Series(matched)).select("id", "date", "currency", "amount_minor"),
         led[pointer[matched]].select(ledger_id="id", ledger_date="date")],
        how="horizontal",
    )
    amount = format_minor_expr(pl.col("amount_minor"), pl.col("currency"))
    apart = (pl.col("date") - pl.col("ledger_date")).dt.total_days().abs()
    return pairs.sort("date", "id").select(
        match_id=pl.lit("BASE-") + pl.col("id"),
        match_type=pl.lit("one_to_one"),
        status=pl.lit("auto"),
        confidence=pl.lit(1.0),
        bank_ids="id",
        ledger_ids="ledger_id",
        bank_amount=amount,
        ledger_amount=amount,
        difference=format_minor_expr(pl.col("amount_minor") * 0, pl.col("currency")),
        currency="currency",
        explanation=pl.lit("exact amount, ") + apart.cast(pl.Utf8)
        + pl.when(apart == 1).then(pl.lit(" day apart")).otherwise(pl.lit(" days apart"))
        + pl.lit(f" (baseline: first come, first served within {window_days} days)"),
        adjustments=pl.lit(""),
    )


def _read_text(path: str | Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False, columns=["id", "date", "amount", "currency"])


def baseline_files(bank_path: str | Path | list, ledger_path: str | Path | list,
                   window_days: int = BASELINE_WINDOW_DAYS) -> pl.DataFrame:
    """:func:`baseline_match` on canonical CSV files (several per side are concatenated)."""
    def read(paths) -> pl.DataFrame:
        paths = paths if isinstance(paths, list | tuple) else [paths]
        return pl.concat([_read_text(p) for p in paths])

    return baseline_match(read(bank_path), read(ledger_path), window_days)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bank", nargs="+", required=True, help="canonical bank CSV file(s)")
    parser.add_argument("--ledger", nargs="+", required=True, help="canonical ledger CSV file(s)")
    parser.add_argument("--window-days", type=int, default=BASELINE_WINDOW_DAYS)
    parser.add_argument("--out", required=True, help="directory for matches.csv")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    matches = baseline_files(args.bank, args.ledger, args.window_days)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    matches.write_csv(out / "matches.csv")
    print(f"baseline: {matches.height:,} matches in {time.perf_counter() - started:.1f}s -> {out / 'matches.csv'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
