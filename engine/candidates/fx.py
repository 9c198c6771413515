"""FX receipts (engine stage 2b, a compound-group generator): a bank line paying a ledger item
in another currency.

A USD invoice paid into the HKD account arrives as HKD: the invoice amount converted at the
bank's buying rate (a little below the published rate: the spread) and, sometimes, less a flat
charge of the remitting or receiving bank. :func:`fx_groups` proposes such pairs as candidate
groups (:data:`engine.candidates.groups.GROUP_SCHEMA`, kind ``one_to_one``):

1. **Rate.** The published rate (the ``--fx`` table of :func:`feeds.fx.read_fx_csv`) of the
   bank date, or the nearest earlier one at most ``fx.max_rate_age_days`` old (a Polars
   ``join_asof`` per currency pair). A pair quoted only the other way round (HKD/USD for a USD
   item) is inverted as an exact fraction. No rate, no group.
2. **Blocking.** Only pairs with evidence besides the amount are considered: the bank text
   states the item's foreign amount, quotes one of its numbers (reference keys), or names the
   same payer on cheap keys (equal without spaces, one leading word aside, or cut short);
   exact joins, no pairwise comparison. A conversion that merely fits is no evidence: at a
   million lines thousands of HKD lines fall in some foreign item's converted range by chance.
   Then the item's date window and the rate of the bank date.
3. **Exact check.** ``converted = amount x rate`` in the bank currency's minor units, integer
   arithmetic (Int128) on the rate's exact decimal text, rounded half away from zero. The bank
   amount must equal ``converted + fx_difference + bank_charge`` with ``fx_difference`` at most
   ``fx.spread_max_pct`` of ``converted`` against the bank (a tenth of that in its favour: rates
   move within a day) and ``bank_charge`` zero or one of ``fx.bank_charges``.
4. **Split.** When several charges fit, the one is chosen for which the bank's own rate
   ``(bank + charge) / amount`` can be a rate quoted with ``fx.bank_rate_decimals`` decimals
   (banks credit foreign receipts at such a rate); then no charge; then the smallest charge.
5. **Score.** The evidence of a pair (reference, payer name, date: :mod:`engine.scoring`) plus
   amount evidence: the conversion fits (``fx.fit_weight_share`` of ``weights.amount.exact``),
   or the bank text states the foreign amount and it equals the item's (``weights.amount.exact``).
   Every fitting item is kept (up to ``fx.max_alternatives`` per bank line) so the assignment
   sees an ambiguity; groups too weak to ever reach review are dropped.

All vectorized; money never passes through a float.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from engine.candidates.groups import ADJUSTMENT_DTYPE, GROUP_SCHEMA, conform, empty_groups
from engine.scoring import explain, score_candidates
from engine.scoring.explain import CODE_COLUMNS
from engine.scoring.levels import comparisons_for, level_weights
from models.money import CURRENCY_EXPONENTS, exponent_expr, format_minor_expr, parse_amount_expr
from rules.model import RuleSet

__all__ = ["fx_groups", "rate_fractions"]

#: the bank may credit more than the published rate gives by this share of ``spread_max_pct``
_FAVOURABLE_SHARE = Decimal("0.1")
#: rates with more significant digits than this are not used (their products would overflow)
_MAX_RATE_DIGITS = 18
#: engine.scoring.names.pair_name_similarity looks again (prefix of a name cut short) at pairs this similar or more
_PREFIX_PASS_MIN = 50
#: a bank name this long or longer (without spaces) may be a ledger name cut short
_PREFIX_KEY = 10
#: amounts of this many minor units or more take no part (exact products stay within Int128)
_MAX_AMOUNT = 1 << 50

_RATE_SCHEMA = {
    "base": pl.Utf8, "quote": pl.Utf8, "rate_day": pl.Int32, "rate_text": pl.Utf8,
    "rate_num": pl.Int64, "rate_den": pl.Int64, "inverse": pl.Boolean,
}
_SHOWN_AMOUNT = r"\b[A-Z]{3} ?[0-9][0-9,]*(?:\.[0-9]+)?"


def rate_fractions(rates: pl.DataFrame) -> pl.DataFrame:
    """The FX table as exact fractions, inverse quotes added where a pair is only quoted the
    other way round.

    Parameters
    ----------
    rates
        A frame from :func:`feeds.fx.read_fx_csv` (``date``, ``base``, ``quote``, ``rate_text``).

    Returns
    -------
    pl.DataFrame
        ``base``, ``quote``, ``rate_day`` (days since 1970), ``rate_text``, ``rate_num`` /
        ``rate_den`` (one ``base`` buys ``rate_num / rate_den`` ``quote``, both Int64) and
        ``inverse`` (true when the row is a quote of ``quote/base`` turned round), sorted by
        ``rate_day``.

    Examples
    --------
    >>> import datetime as dt
    >>> fx = pl.DataFrame({"date": [dt.date(2026, 10, 5)], "base": ["USD"], "quote": ["HKD"],
    ...                    "rate_text": ["7.78040"]})
    >>> rate_fractions(fx).select("base", "quote", "rate_num", "rate_den", "inverse").rows()
    [('USD', 'HKD', 77804, 10000, False), ('HKD', 'USD', 10000, 77804, True)]
    """
    if rates.height == 0:
        return pl.DataFrame(schema=_RATE_SCHEMA)
    text = pl.col("rate_text").str.strip_chars()
    whole = text.str.extract(r"^([0-9]+)", 1)
    fraction = text.str.extract(r"\.([0-9]+)$", 1).fill_null("").str.strip_chars_end("0")
    digits = (whole + fraction).str.strip_chars_start("0")
    direct = (
        rates.select(
            "base", "quote",
            rate_day=pl.col("date").cast(pl.Int32),
            rate_text=text,
            _digits=digits,
            _decimals=fraction.str.len_chars(),
        )
        .filter(
            (pl.col("_digits").str.len_chars() > 0)
            & (pl.col("_digits").str.len_chars() <= _MAX_RATE_DIGITS)
            & (pl.col("_decimals") <= _MAX_RATE_DIGITS)
        )
        .with_columns(
            rate_num=pl.col("_digits").cast(pl.Int64),
            rate_den=pl.lit(10, dtype=pl.Int64).pow(pl.col("_decimals")).cast(pl.Int64),
            inverse=pl.lit(False),
        )
        .drop("_digits", "_decimals")
    )
    quoted = direct.select("base", "quote").unique()
    inverse = (
        direct.join(quoted, left_on=["quote", "base"], right_on=["base", "quote"], how="anti")
        .select(
            base="quote", quote="base", rate_day="rate_day", rate_text="rate_text",
            rate_num="rate_den", rate_den="rate_num", inverse=pl.lit(True),
        )
    )
    return pl.concat([direct, inverse]).select(list(_RATE_SCHEMA)).cast(_RATE_SCHEMA).sort("rate_day")


def _pow10(exponent: pl.Expr) -> pl.Expr:
    return pl.lit(10, dtype=pl.Int128).pow(exponent.clip(0, 30)).cast(pl.Int128)


def _div_ceil(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """Ceiling of ``num / den`` for ``num >= 0``, ``den > 0`` (Int128 has no negation)."""
    return (num + den - 1) // den


def _at(frame: pl.DataFrame, idx: str, rows: pl.Series, **columns: str) -> pl.DataFrame:
    """``frame``'s ``columns`` (new name = old name) at the rows whose ``idx`` is ``rows``, in
    that order (null where there is none): gathered by row number when ``idx`` is the row
    number (as :func:`engine.prepare.features.prepare_bank` / ``prepare_ledger`` give it), else joined."""
    if np.array_equal(frame[idx].to_numpy(), np.arange(frame.height)):
        return frame.select(**columns)[rows]
    return (
        rows.rename(idx).to_frame()
        .join(frame.select(idx, **columns), on=idx, how="left", maintain_order="left")
        .drop(idx)
    )


def _fraction(value: Decimal) -> tuple[int, int]:
    num, den = value.as_integer_ratio()
    return int(num), int(den)


def _name_keys(names: pl.Series, *, drop_first_word: bool = False) -> pl.DataFrame:
    """(``name``, ``key``) for distinct non-empty names: the name without spaces ("s a s" and
    "sas" alike) and, with ``drop_first_word``, also without its first word (a bank text's
    "deposit ..." or "instalment ..." before the payer)."""
    frame = pl.DataFrame({"name": names.unique()}).filter(pl.col("name") != "")
    keys = [frame.with_columns(key=pl.col("name").str.replace_all(" ", "", literal=True))]
    if drop_first_word:
        keys.append(
            frame.filter(pl.col("name").str.contains(" ", literal=True)).with_columns(
                key=pl.col("name").str.replace(r"^\S+ ", "").str.replace_all(" ", "", literal=True)
            )
        )
    return pl.concat(keys).filter(pl.col("key").str.len_chars() > 0).unique()


def _same_names(bank_names: pl.Series, ledger_names: pl.Series) -> pl.DataFrame:
    """Pairs of distinct names (``name_bank``, ``name_ledger``) that are the same payer on cheap
    keys: equal without spaces (the bank name may carry one word before it), or the bank name
    (:data:`_PREFIX_KEY` characters or more) a prefix of the ledger name, cut short."""
    bank = _name_keys(bank_names, drop_first_word=True)
    ledger = _name_keys(ledger_names)
    equal = bank.join(ledger, on="key").select(name_bank="name", name_ledger="name_right")
    cut = pl.col("key").str.slice(0, _PREFIX_KEY)
    prefix = (
        bank.filter(pl.col("key").str.len_chars() >= _PREFIX_KEY).with_columns(_p=cut)
        .join(ledger.with_columns(_p=cut), on="_p")
        .filter(pl.col("key_right").str.starts_with(pl.col("key")))
        .select(name_bank="name", name_ledger="name_right")
    )
    return pl.concat([equal, prefix]).unique()


def _evidence_pairs(bank_prepared: pl.DataFrame, foreign: pl.DataFrame, shown: pl.DataFrame) -> pl.DataFrame:
    """(``bank_idx``, ``ledger_idx``) pairs of a bank line and a foreign item with some evidence
    besides the amount: the bank text states the item's amount in its currency, quotes one of
    its numbers, or names the same payer (:func:`_same_names`)."""
    frames = []
    # the foreign amount stated in the bank text (``shown``: :func:`_shown_amounts`)
    frames.append(
        shown.join(
            foreign.select("ledger_idx", "currency", _abs=pl.col("amount_minor").abs()),
            left_on=["shown_currency", "shown_minor"], right_on=["currency", "_abs"],
        ).select("bank_idx", "ledger_idx")
    )
    # a number of the item among the bank text's keys (a full or serial reference always is)
    keys = pl.concat([
        foreign.select("ledger_idx", key="ref_serial"),
        foreign.select("ledger_idx", key="other_keys").explode("key"),
    ]).drop_nulls("key").unique()
    frames.append(
        bank_prepared.select("bank_idx", key="ref_keys").explode("key").drop_nulls("key")
        .join(keys, on="key").select("bank_idx", "ledger_idx")
    )
    # the same payer name (cheap keys; other names are too many to compare at scale)
    names = _same_names(bank_prepared["name_key"].fill_null(""), foreign["name_key"].fill_null(""))
    frames.append(
        bank_prepared.select("bank_idx", name_bank=pl.col("name_key"))
        .join(names, on="name_bank")
        .join(foreign.select("ledger_idx", name_ledger=pl.col("name_key")), on="name_ledger")
        .select("bank_idx", "ledger_idx")
    )
    return pl.concat([f.cast({"bank_idx": pl.UInt32, "ledger_idx": pl.UInt32}) for f in frames]).unique()


def _floor(rules: RuleSet) -> float:
    """Lowest score kept: the review threshold in bits less the ambiguity margin."""
    review = rules.thresholds.review
    return float(np.log2(review / (1.0 - review))) - rules.thresholds.ambiguity_margin if 0 < review < 1 else -np.inf


def _candidate_pairs(
    bank_prepared: pl.DataFrame,
    ledger_prepared: pl.DataFrame,
    fractions: pl.DataFrame,
    shown: pl.DataFrame,
    rules: RuleSet,
) -> pl.DataFrame:
    """Pairs of a bank line and a foreign item of the same sign with evidence besides the
    amount (:func:`_evidence_pairs`), within the item's date window, with the rate of the bank
    date (the nearest earlier one at most ``fx.max_rate_age_days`` old) joined on."""
    bank = bank_prepared.select(
        "bank_idx", pl.col("currency").alias("bank_currency"), pl.col("amount_minor").alias("amount_bank"),
        pl.col("day").alias("day_bank"),
    ).filter((pl.col("amount_bank") != 0) & (pl.col("amount_bank").abs() < _MAX_AMOUNT))
    # currencies some bank line can convert from (an item in the account's own currency is not foreign)
    foreign_currencies = (
        fractions.filter(pl.col("quote").is_in(bank["bank_currency"].unique().implode()) & (pl.col("base") != pl.col("quote")))
        ["base"].unique().to_list()
    )
    foreign = ledger_prepared.filter(
        (pl.col("amount_minor") != 0) & (pl.col("amount_minor").abs() < _MAX_AMOUNT)
        & pl.col("currency").is_in(foreign_currencies)
    )
    if bank.height == 0 or foreign.height == 0:
        return pl.DataFrame()
    pairs = _evidence_pairs(bank_prepared, foreign, shown)
    days = pl.col("day_bank") - pl.col("day_ledger")
    # each pair's bank line and (foreign) item gathered by row: the lines ``bank`` keeps only
    pairs = (
        pl.concat([
            pairs,
            _at(bank_prepared, "bank_idx", pairs["bank_idx"], bank_currency="currency", amount_bank="amount_minor",
                day_bank="day"),
            _at(ledger_prepared, "ledger_idx", pairs["ledger_idx"], ledger_currency="currency",
                amount_ledger="amount_minor", day_ledger="day", window_before="window_before",
                window_after="window_after"),
        ], how="horizontal")
        .filter(
            (pl.col("amount_bank") != 0) & (pl.col("amount_bank").abs() < _MAX_AMOUNT)
            & (pl.col("ledger_currency") != pl.col("bank_currency"))
            & (pl.col("amount_bank").sign() == pl.col("amount_ledger").sign())
            & (days <= pl.col("window_after")) & (-days <= pl.col("window_before"))
        )
        .sort("day_bank")
    )
    if pairs.height == 0:
        return pl.DataFrame()
    return pairs.join_asof(
        fractions,
        left_on="day_bank",
        right_on="rate_day",
        by_left=["ledger_currency", "bank_currency"],
        by_right=["base", "quote"],
        strategy="backward",
        tolerance=rules.fx.max_rate_age_days,
        check_sortedness=False,
    ).drop_nulls("rate_num").drop("base", "quote", strict=False)


def _charge_table(df: pl.DataFrame, rules: RuleSet) -> tuple[np.ndarray, np.ndarray]:
    """Charge magnitudes in minor units, options x exponents 0..6 (option 0 is "no charge", the
    rest ascending), and each row's bank-currency exponent (the column of its charges)."""
    options = sorted({Decimal(0), *rules.fx.bank_charges})
    bank_exp = df.select(exponent_expr(pl.col("bank_currency"))).to_series().fill_null(2).to_numpy()
    by_exponent = np.array(
        [[int((c.scaleb(e)).to_integral_value(rounding="ROUND_FLOOR")) for e in range(7)] for c in options],
        dtype=np.int64,
    )
    return by_exponent, np.clip(bank_exp, 0, 6)


def _charge_options(df: pl.DataFrame, rules: RuleSet) -> np.ndarray:
    """Charge magnitudes in each row's bank-currency minor units, rows x options; option 0 is
    "no charge", the rest ascending."""
    by_exponent, exponent = _charge_table(df, rules)
    return by_exponent[:, exponent].T


def _fits_some_charge(df: pl.DataFrame, rules: RuleSet) -> np.ndarray:
    """Per row: whether some charge option is feasible (:func:`_feasible`), one option at a
    time (no rows x options arrays): ``fx_against = -(diff + charge)`` within ``[-_favour,
    _against]``, i.e. ``-diff - _against <= charge <= _favour - diff``."""
    by_exponent, exponent = _charge_table(df, rules)
    diff = df["diff"].to_numpy()
    low = -diff - df["_against"].to_numpy()
    high = df["_favour"].to_numpy() - diff
    fits = np.zeros(df.height, dtype=bool)
    for charges in by_exponent:
        charge = charges[exponent]
        fits |= (charge >= low) & (charge <= high)
    return fits


def _feasible(df: pl.DataFrame, charge: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row and charge option: (feasible, fx (signed), charge (signed))."""
    # bank = converted + fx + charge: a charge always lowers the bank amount (less in, more
    # out), and so does a spread against the bank side
    charge_signed = -charge
    fx = df["diff"].to_numpy()[:, None] - charge_signed
    fx_against = -fx  # how much worse off the bank side is than the conversion
    feasible = (fx_against <= df["_against"].to_numpy()[:, None]) & (fx_against >= -df["_favour"].to_numpy()[:, None])
    return feasible, fx, charge_signed


def _convert(pairs: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """Convert exactly at the bank date's rate (``converted``, ``diff = bank - converted``);
    pairs whose difference no spread and charge explain are dropped."""
    spread_num, spread_den = _fraction(rules.fx.spread_max_pct / 100)
    fav_num, fav_den = _fraction(rules.fx.spread_max_pct * _FAVOURABLE_SHARE / 100)
    exp_bank, exp_ledger = exponent_expr(pl.col("bank_currency")), exponent_expr(pl.col("ledger_currency"))
    shift = exp_bank - exp_ledger
    mul = pl.col("rate_num").cast(pl.Int128) * _pow10(shift)
    div = pl.col("rate_den").cast(pl.Int128) * _pow10(-shift)
    magnitude = pl.col("amount_ledger").abs().cast(pl.Int128)
    # round half away from zero: sign * floor((2|a|*mul + div) / (2*div))
    converted = ((2 * magnitude * mul + div) // (2 * div)).cast(pl.Int64) * pl.col("amount_ledger").sign()
    df = pairs.with_columns(converted=converted)
    df = df.with_columns(
        diff=pl.col("amount_bank") - pl.col("converted"),
        _against=(pl.col("converted").abs().cast(pl.Int128) * spread_num // spread_den).cast(pl.Int64),
        _favour=(pl.col("converted").abs().cast(pl.Int128) * fav_num // fav_den).cast(pl.Int64),
    )
    if df.height == 0:
        return df
    return df.filter(pl.Series(_fits_some_charge(df, rules)))


def _split(df: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """Split ``bank - converted`` into ``fx_difference`` and ``bank_charge`` (``fx_minor``,
    ``charge_minor``, signed): a charge that puts the bank's own rate on
    ``fx.bank_rate_decimals`` decimals first, then no charge, then the smallest."""
    if df.height == 0:
        return df.with_columns(fx_minor=pl.lit(0, pl.Int64), charge_minor=pl.lit(0, pl.Int64),
                               rate_consistent=pl.lit(False))
    charge = _charge_options(df, rules)
    options = charge.shape[1]
    feasible, fx, charge_signed = _feasible(df, charge)

    # the bank's own rate: (bank - charge) = round(amount * r * 10**shift / 10**d) for an integer r?
    target = np.abs(df["amount_bank"].to_numpy()[:, None] - charge_signed)
    consistent = _bank_rate_fits(df, target, rules.fx.bank_rate_decimals)
    rank = np.where(feasible, np.where(consistent, 0, options) + np.arange(options)[None, :], 10**6)
    best = rank.argmin(axis=1)
    ok = rank[np.arange(len(best)), best] < 10**6
    rows = np.arange(len(best))
    df = df.with_columns(
        fx_minor=pl.Series(fx[rows, best], dtype=pl.Int64),
        charge_minor=pl.Series(charge_signed[rows, best], dtype=pl.Int64),
        rate_consistent=pl.Series(consistent[rows, best]),
    ).filter(pl.Series(ok))
    return df.drop("_against", "_favour")


def _bank_rate_fits(df: pl.DataFrame, target: np.ndarray, decimals: int) -> np.ndarray:
    """Whether ``target`` (bank-currency minor magnitudes, rows x options) is the item's amount
    converted at some rate with ``fx.bank_rate_decimals`` decimals, rounded half up: an
    integer ``r`` with ``|amount| * r * 10**(shift - d)`` in ``[target - 1/2, target + 1/2)``,
    i.e. ``(2t - 1) q <= 2 |amount| m r < (2t + 1) q``."""
    shift = exponent_expr(pl.col("bank_currency")) - exponent_expr(pl.col("ledger_currency"))
    m = _pow10(shift - decimals)
    q = _pow10(decimals - shift)
    frame = df.select(
        step=2 * pl.col("amount_ledger").abs().cast(pl.Int128) * m,
        q=q,
    ).with_columns(pl.Series(f"t{k}", target[:, k]).cast(pl.Int128) for k in range(target.shape[1]))
    fits = []
    for k in range(target.shape[1]):
        t = pl.col(f"t{k}")
        low, high = (2 * t - 1) * pl.col("q"), (2 * t + 1) * pl.col("q")
        r = _div_ceil(low, pl.col("step"))
        fits.append(((t > 0) & (pl.col("step") > 0) & (r * pl.col("step") < high)).alias(f"f{k}"))
    return frame.select(fits).fill_null(False).to_numpy()


def _shown_amounts(bank_prepared: pl.DataFrame) -> pl.DataFrame:
    """Foreign amounts the bank text states ("TT IN USD1234.56 ..."): ``bank_idx``,
    ``shown_currency``, ``shown_minor`` (exact minor units of that currency)."""
    # only a text naming another currency than the line's, before a number, is read for amounts
    text = pl.col("description").fill_null("")
    names_other = pl.lit(False)
    for currency in bank_prepared["currency"].drop_nulls().unique().sort().to_list():
        others = "|".join(c for c in sorted(CURRENCY_EXPONENTS) if c != currency)
        names_other = pl.when(pl.col("currency") == currency).then(
            text.str.contains(rf"\b(?:{others}) ?[0-9]") if others else pl.lit(False)
        ).otherwise(names_other)
    found = (
        bank_prepared.select("bank_idx", "currency", "description").filter(names_other)
        .select("bank_idx", "currency", text.str.extract_all(_SHOWN_AMOUNT).alias("m"))
        .explode("m")
        .drop_nulls("m")
        .with_columns(
            shown_currency=pl.col("m").str.slice(0, 3),
            _text=pl.col("m").str.slice(3).str.strip_chars().str.replace_all(",", ""),
        )
        .filter(pl.col("shown_currency").is_in(list(CURRENCY_EXPONENTS)) & (pl.col("shown_currency") != pl.col("currency")))
    )
    minor, _reason = parse_amount_expr(pl.col("_text"), pl.col("shown_currency"))
    return found.select("bank_idx", "shown_currency", shown_minor=minor).drop_nulls("shown_minor")


def _money(minor: pl.Expr, currency: pl.Expr) -> pl.Expr:
    return currency + pl.lit(" ") + format_minor_expr(minor, currency)


def _could_reach(df: pl.DataFrame, bank_prepared: pl.DataFrame, ledger_prepared: pl.DataFrame, rules: RuleSet,
                 floor: float) -> pl.Series:
    """Whether a pair's score could reach ``floor``: a cheap upper bound of the pair evidence
    (:func:`engine.scoring.score_candidates` then runs on the pairs that could). The name
    level is exact but for the scorer's second look at names cut short (only pairs at
    :data:`_PREFIX_PASS_MIN` or more, counted at the best level); the reference level is bounded
    by whether the item's serial or another of its numbers is among the bank text's keys (a
    full or serial reference always puts it there), else at most ``near`` or ``truncated``."""
    w = rules.weights
    keys = pl.concat([
        df.select("bank_idx", "ledger_idx"),
        _at(bank_prepared, "bank_idx", df["bank_idx"], ref_keys="ref_keys", name_bank="name_key",
            script_bank="name_script"),
        _at(ledger_prepared, "ledger_idx", df["ledger_idx"], ref_serial="ref_serial", other_keys="other_keys",
            name_ledger="name_key", script_ledger="name_script"),
    ], how="horizontal")
    # each distinct pair of names once (a payer's lines meet the same few foreign customers)
    names = keys.select(pl.col("name_bank", "name_ledger").fill_null("")).unique()
    names = names.with_columns(_similarity=pl.Series(process.cpdist(
        names["name_bank"].to_list(), names["name_ledger"].to_list(),
        scorer=fuzz.token_set_ratio, workers=-1, score_cutoff=_PREFIX_PASS_MIN, dtype=np.float64,
    ), dtype=pl.Float64))
    keys = keys.with_columns(pl.col("name_bank", "name_ledger").fill_null("")).join(
        names, on=["name_bank", "name_ledger"], how="left", maintain_order="left"
    )
    best_name = max(level.weight for level in w.name)
    similar_w, _ = level_weights(pl.col("_similarity"), w.name, "min_similarity", ascending=False)
    names_missing = (pl.col("name_bank") == "") | (pl.col("name_ledger") == "")
    different_script = (
        pl.col("script_bank").is_in(["cjk", "latin"]) & pl.col("script_ledger").is_in(["cjk", "latin"])
        & (pl.col("script_bank") != pl.col("script_ledger"))
    )
    name_upper = (
        pl.when(names_missing).then(pl.lit(w.name_missing))
        .when(different_script).then(pl.lit(max(w.name_different_script, w.name_alias)))
        .when(pl.col("_similarity") >= _PREFIX_PASS_MIN).then(pl.max_horizontal(similar_w, pl.lit(best_name)))
        # initials or an alias link may be worth more than the similarity level says
        .otherwise(pl.max_horizontal(similar_w, pl.lit(max(w.name_initials, w.name_alias))))
    )
    shared = (
        pl.col("ref_keys").list.contains(pl.col("ref_serial")).fill_null(False)
        | (pl.col("ref_keys").list.set_intersection(pl.col("other_keys")).list.len() > 0).fill_null(False)
    )
    r = w.reference
    ref_upper = (
        pl.when(shared).then(pl.lit(max(r.full, r.reformatted, r.serial, r.number, r.near, r.truncated, r.none,
                                        r.conflict)))
        .when(pl.col("ref_keys").list.len() > 0).then(pl.lit(max(r.near, r.truncated, r.none, r.conflict)))
        .otherwise(pl.lit(max(r.none, r.conflict)))
    )
    date_weight, _ = level_weights((pl.col("day_bank") - pl.col("day_ledger")).abs(), w.date, "max_days", ascending=True)
    return keys.with_columns(
        amount_weight=df["amount_weight"],
        day_bank=df["day_bank"], day_ledger=df["day_ledger"],
    ).select(
        (pl.lit(w.prior) + ref_upper + name_upper + date_weight + pl.col("amount_weight")) >= floor
    ).to_series()


def fx_groups(
    bank_prepared: pl.DataFrame, ledger_prepared: pl.DataFrame, rates: pl.DataFrame, rules: RuleSet
) -> pl.DataFrame:
    """Candidate groups (:data:`engine.candidates.groups.GROUP_SCHEMA`, kind ``one_to_one``) pairing a bank
    line with a ledger item in another currency, converted at the bank date's rate.

    Parameters
    ----------
    bank_prepared
        Prepared bank lines (:func:`engine.prepare.features.prepare_bank`).
    ledger_prepared
        Prepared ledger items (:func:`engine.prepare.features.prepare_ledger`).
    rates
        The FX table from :func:`feeds.fx.read_fx_csv` (``rate_text`` is used, never ``rate``).
    rules
        ``fx`` (rate age, spread, bank charges), ``weights``, ``thresholds``.

    Returns
    -------
    pl.DataFrame
        One row per (bank line, foreign item) that fits, at most ``fx.max_alternatives`` per
        bank line, best first: ``ledger_total`` is the item converted at the bank date's rate
        (bank currency minor units) and ``adjustments`` holds ``fx_difference`` and, when the
        bank took one, ``bank_charge``, so that ``bank amount == ledger_total + adjustments``.

    Examples
    --------
    A USD 4,702.17 invoice credited as HKD 36,481.40 when USD/HKD is 7.7804: converted
    HKD 36,584.77, fx_difference -53.37, bank_charge -50.00.

    >>> groups = fx_groups(bank_prepared, ledger_prepared, rates, rules)  # doctest: +SKIP
    >>> groups.row(0, named=True)["adjustments"]  # doctest: +SKIP
    [{'cause': 'fx_difference', 'amount_minor': -5337}, {'cause': 'bank_charge', 'amount_minor': -5000}]
    """
    if bank_prepared.height == 0 or ledger_prepared.height == 0 or rates.height == 0:
        return empty_groups()
    fractions = rate_fractions(rates)
    # the foreign amount the bank text states, if any
    shown = _shown_amounts(bank_prepared)
    pairs = _candidate_pairs(bank_prepared, ledger_prepared, fractions, shown, rules)
    if pairs.height == 0:
        return empty_groups()
    df = _convert(pairs, rules)
    if df.height == 0:
        return empty_groups()
    w = rules.weights
    floor = _floor(rules)

    stated = (
        df.select("bank_idx", "ledger_idx", "ledger_currency", "amount_ledger")
        .join(shown, left_on=["bank_idx", "ledger_currency"], right_on=["bank_idx", "shown_currency"])
        .group_by("bank_idx", "ledger_idx")
        .agg(
            shown_equal=(pl.col("shown_minor") == pl.col("amount_ledger").abs()).any(),
            shown_minor=pl.col("shown_minor").first(),
        )
    )
    fit_weight = w.amount.exact * rules.fx.fit_weight_share
    df = df.join(stated, on=["bank_idx", "ledger_idx"], how="left").with_columns(
        amount_weight=pl.when(pl.col("shown_equal")).then(pl.lit(w.amount.exact))
        .when(pl.col("shown_equal").is_null()).then(pl.lit(fit_weight))
        .otherwise(pl.lit(w.amount.within_tolerance))
    )
    # (rivals too: a pair whose stated amount differs counts at the fit weight, see below)
    rivals = df.with_columns(amount_weight=pl.max_horizontal("amount_weight", pl.lit(fit_weight)))
    df = df.filter(_could_reach(rivals, bank_prepared, ledger_prepared, rules, floor))
    df = _split(df, rules)
    if df.height == 0:
        return empty_groups()

    # pair evidence (reference, name, date) from the pair scorer; the amount is ours
    scored = score_candidates(
        df.select("bank_idx", "ledger_idx", via=pl.lit(0, dtype=pl.UInt8)), bank_prepared, ledger_prepared, rules
    )
    # the pair's reference, name, date and window levels at the rule set's weights
    comparisons = comparisons_for(rules)
    pair_weight = pl.lit(w.prior)
    for name in ("reference", "name", "date", "window"):
        weights = dict(enumerate(comparisons[name].weights.tolist()))
        pair_weight = pair_weight + pl.col(CODE_COLUMNS[name]).replace_strict(weights, return_dtype=pl.Float64)
    pair_phrases = explain(scored, rules).str.split("; ").list.eval(
        pl.element().filter(
            ~pl.element().str.starts_with("amount equal")
            & ~pl.element().str.starts_with("bank amount ")
            & ~pl.element().str.starts_with("no other candidate")
            & ~pl.element().str.contains(r"^[0-9]+ other candidate")
        )
    ).list.join("; ")
    evidence = scored.select(
        "bank_idx", "ledger_idx",
        pair_score=pair_weight,
        pair_evidence=pair_phrases,
    )
    df = df.join(evidence, on=["bank_idx", "ledger_idx"], how="left")

    df = df.with_columns(score=pl.col("pair_score") + pl.col("amount_weight"))

    # a group that is the only one both of its bank line and of its item is the clear choice
    # (``weights.unique_amount``, as for an exact pair). Rivals are the pairs that fit and could
    # reach review on their conversion alone: another item of the payer whose amount the bank
    # text contradicts still keeps the ambiguity visible
    rival = (pl.col("score") >= floor) | (pl.col("pair_score") + fit_weight >= floor)
    df = df.filter(rival)
    unique = (pl.len().over("bank_idx") == 1) & (pl.len().over("ledger_idx") == 1)
    df = df.with_columns(unique=unique).filter(pl.col("score") >= floor).with_columns(
        score=pl.col("score") + pl.when(pl.col("unique")).then(pl.lit(w.unique_amount)).otherwise(pl.lit(0.0))
    )
    # at most fx.max_alternatives per bank line
    df = (
        df.sort(["bank_idx", "score", "ledger_idx"], descending=[False, True, False])
        .filter(pl.int_range(pl.len()).over("bank_idx") < rules.fx.max_alternatives)
    )
    if df.height == 0:
        return empty_groups()

    lc, bc = pl.col("ledger_currency"), pl.col("bank_currency")
    rate_phrase = (
        pl.when(pl.col("inverse"))
        .then(pl.lit("1/") + pl.col("rate_text") + pl.lit(" (") + bc + pl.lit("/") + lc)
        .otherwise(pl.col("rate_text") + pl.lit(" (") + lc + pl.lit("/") + bc)
        + pl.lit(" on ") + pl.col("rate_day").cast(pl.Date).cast(pl.Utf8) + pl.lit(")")
    )
    split_phrase = pl.concat_str(
        [
            pl.lit("fx_difference ") + format_minor_expr(pl.col("fx_minor"), bc),
            pl.when(pl.col("charge_minor") != 0).then(
                pl.lit("bank_charge ") + format_minor_expr(pl.col("charge_minor"), bc)
            ),
        ],
        separator=", ", ignore_nulls=True,
    )
    shown_phrase = (
        pl.when(pl.col("shown_equal"))
        .then(pl.lit("bank text states ") + _money(pl.col("amount_ledger").abs(), lc))
        .when(pl.col("shown_equal").is_not_null())
        .then(pl.lit("bank text states ") + _money(pl.col("shown_minor"), lc) + pl.lit(", not this amount"))
    )
    fx_phrase = (
        _money(pl.col("amount_ledger"), lc) + pl.lit(" at ") + rate_phrase + pl.lit(" = ")
        + _money(pl.col("converted"), bc) + pl.lit("; credited ") + _money(pl.col("amount_bank"), bc)
        + pl.lit(": ") + split_phrase
    )
    # the fx difference and the charge, each when not zero (lists joined: no list.eval per row)
    adjustments = pl.concat_list(
        pl.when(pl.col(column) != 0)
        .then(pl.concat_list(pl.struct(cause=pl.lit(cause), amount_minor=pl.col(column)).cast(ADJUSTMENT_DTYPE)))
        .otherwise(pl.lit([], dtype=pl.List(ADJUSTMENT_DTYPE)))
        for column, cause in (("fx_minor", "fx_difference"), ("charge_minor", "bank_charge"))
    )
    out = df.select(
        kind=pl.lit("one_to_one"),
        bank_idx=pl.concat_list(pl.col("bank_idx").cast(pl.UInt32)),
        ledger_idx=pl.concat_list(pl.col("ledger_idx").cast(pl.UInt32)),
        score=pl.col("score"),
        ledger_total=pl.col("converted"),
        adjustments=adjustments.cast(pl.List(ADJUSTMENT_DTYPE)),
        evidence=pl.concat_str(
            [fx_phrase, shown_phrase,
             pl.when(pl.col("unique")).then(pl.lit("no other FX candidate for this line or item")),
             pl.col("pair_evidence")],
            separator="; ", ignore_nulls=True,
        ),
    )
    return conform(out).cast(GROUP_SCHEMA)
