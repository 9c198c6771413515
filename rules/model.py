"""Rule-set model: a validated, analyst-editable file (TOML) with matching parameters.

Rules are data; the engine's building blocks read them. Loading reports every problem in the
file at once (a :class:`~models.errors.RuleConfigError` listing them), not just the first.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.errors import RuleConfigError
from models.money import currency_exponent

NonNegDecimal = Annotated[Decimal, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DateWindow(_Strict):
    """Days the bank date may lie before / after the ledger date."""

    before: int = Field(ge=0, le=3660)
    after: int = Field(ge=0, le=3660)


class Dates(_Strict):
    default: DateWindow = DateWindow(before=10, after=90)
    by_type: dict[str, DateWindow] = Field(default_factory=dict)

    @field_validator("by_type")
    @classmethod
    def _lower_types(cls, value: dict[str, DateWindow]) -> dict[str, DateWindow]:
        return {k.strip().lower(): v for k, v in value.items()}

    def widest(self) -> DateWindow:
        """The union of all windows: what candidate generation must cover."""
        windows = [self.default, *self.by_type.values()]
        return DateWindow(
            before=max(w.before for w in windows), after=max(w.after for w in windows)
        )


class Amount(_Strict):
    """Amount tolerance, in units of the line's currency (exact decimals, never floats)."""

    tolerance_abs: NonNegDecimal = Decimal("50.00")
    tolerance_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal("0.5")
    tolerance_max: NonNegDecimal = Decimal("300.00")

    @model_validator(mode="after")
    def _max_covers_abs(self) -> Amount:
        if self.tolerance_max < self.tolerance_abs:
            raise ValueError("tolerance_max must be >= tolerance_abs")
        return self

    def minor(self, currency: str) -> tuple[int, int, int, int]:
        """Tolerances in ``currency`` minor units: (abs_minor, pct_num, pct_den, max_minor).

        The percentage band of an amount ``a`` is ``abs(a) * pct_num // pct_den`` (exact integer
        arithmetic); fractions of a minor unit in ``tolerance_abs``/``tolerance_max`` round down.
        """
        scale = Decimal(10) ** currency_exponent(currency)
        num, den = (self.tolerance_pct / Decimal(100)).as_integer_ratio()
        return (
            int(self.tolerance_abs * scale),
            int(num),
            int(den),
            int(self.tolerance_max * scale),
        )


class Adjustments(_Strict):
    """How a difference between bank and ledger amounts is booked (``matches.csv`` adjustments).

    A difference within the amount tolerance becomes one balancing adjustment line: a bank
    charge when the bank side is worse off by at most ``bank_charge_max`` in whole multiples of
    ``bank_charge_step`` (banks charge flat, round fees) and not by a whole percentage of the
    item up to ``discount_max_pct`` (a prompt-payment discount), otherwise a short payment (paid less; written off) or an overpayment (paid more;
    held for the customer). ``accounts`` maps each cause to the ledger account it is booked to.
    """

    bank_charge_max: NonNegDecimal = Decimal("200.00")
    bank_charge_step: Annotated[Decimal, Field(gt=0)] = Decimal("5.00")
    discount_max_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal("5")
    accounts: dict[str, str] = Field(
        default_factory=lambda: {
            "bank_charge": "6800",
            "short_payment": "6900",
            "overpayment": "2190",
            "fx_difference": "7100",
            "processor_fee": "6810",
            "unlinked_report_lines": "1190",
            "report_difference": "1190",
        }
    )


class WriteBack(_Strict):
    """The control accounts the adjustment journal of a written-back match books against.

    A proposal's adjustment ``cause amount (account)`` (bank amount = ledger amount + the
    adjustments) is the part of the items the bank line did not settle (or settled beyond them).
    It sits in the account the items are booked to until a journal moves it to the cause's
    account: a negative amount debits the cause's account and credits the control account, a
    positive one the other way round. The control account is ``processor_clearing`` for a
    payout, ``bank`` when every ledger item is a cash-book line (one of ``cash_book_types``,
    already booked on the bank account), otherwise ``receivables`` for money in and ``payables``
    for money out. An adjustment booked to the control account itself (e.g. report lines left in
    the processor clearing account) stays where it is: it gets no journal lines.
    """

    receivables: str = Field(default="1100", min_length=1)
    payables: str = Field(default="2100", min_length=1)
    processor_clearing: str = Field(default="1190", min_length=1)
    bank: str = Field(default="1010", min_length=1)
    cash_book_types: tuple[str, ...] = ("payment", "receipt", "journal")
    #: matches a write-back sends to a target at a time (one transaction in the target and one
    #: in the workspace a batch)
    batch_size: int = Field(default=2000, ge=1, le=100_000)

    @field_validator("cash_book_types")
    @classmethod
    def _lower_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t.strip().lower() for t in value)

    def control_account(self, match_type: str, money_in: bool, ledger_types: list[str]) -> str:
        """The account a match's adjustments are booked against (see the class docstring)."""
        if match_type == "payout":
            return self.processor_clearing
        types = [(t or "").strip().lower() for t in ledger_types]
        if types and all(t in self.cash_book_types for t in types):
            return self.bank
        return self.receivables if money_in else self.payables


class Candidates(_Strict):
    max_per_line_exact: int = Field(5, ge=1, le=10_000)
    max_per_line_band: int = Field(3, ge=0, le=10_000)
    max_per_line_name: int = Field(10, ge=0, le=10_000)
    max_per_line_reference: int = Field(8, ge=0, le=10_000)
    reference_window_days: int = Field(400, ge=0, le=3660)
    # a line with no payer name also meets max_per_line_band items within tolerance dated in
    # buckets of this many days (its own and the one before); 0 turns that search off
    nameless_near_days: int = Field(4, ge=0, le=366)


class Compound(_Strict):
    """Bounded search for groups: one bank line settling several ledger items and back.

    Caps keep a dense block from stalling a run: a bank line considers at most
    ``max_block_items`` items of one payer (nearest in date first) and combinations of at most
    ``max_subset_size`` of them; a listed or batch reference may gather up to ``max_group_items``;
    an item considers at most ``max_instalments`` bank lines of its payer as instalments, and a
    bank line at most ``max_instalment_items`` items it may be an instalment of. A cap that bites
    is named in the run's warnings. How alike two names must be to be "the same payer" is not
    set here: it follows the name levels of ``[weights]`` (see :mod:`engine.candidates.compound`).
    """

    max_subset_size: int = Field(4, ge=2, le=8)  # items combined without a listed reference
    max_block_items: int = Field(20, ge=2, le=200)  # items of one payer a bank line combines
    max_group_items: int = Field(200, ge=2, le=100_000)  # items a listed/batch reference gathers
    block_window_days: int = Field(90, ge=0, le=3660)  # payer's items this far before the bank date
    # bank lines paying one ledger item (every subset of them is tried: 2 ** n, so at most 12)
    max_instalments: int = Field(6, ge=2, le=12)
    # items of its payer one bank line may be an instalment of (those quoting it first, then nearest)
    max_instalment_items: int = Field(20, ge=1, le=1_000)
    instalment_window_days: int = Field(120, ge=0, le=3660)
    subset_penalty: float = 1.0  # bits off a reference-less group per log2(combinations tried)
    # ledger items dated up to this many days after the bank line may still be in a listed or
    # batch group (an invoice booked a few days after the customer paid it)
    group_days_after: int = Field(14, ge=0, le=3660)
    # a day block (a payroll run) is paid on its day or up to this many days later
    day_block_lag_days: int = Field(3, ge=0, le=60)
    # a day block of at least this many items is strong evidence; smaller ones are weak
    day_block_strong_items: int = Field(5, ge=2, le=100_000)
    # a combination search uses the ledger names at most this much less similar than the best one
    payer_similarity_spread: float = Field(5.0, ge=0, le=100)
    # a ledger reference quoted in full in the bank text has at least this many letters and digits
    full_ref_min_chars: int = Field(6, ge=1, le=100)
    # a batch reference: letters then digits (separators allowed), at least this many characters
    batch_key_min_chars: int = Field(6, ge=2, le=100)


class FxRules(_Strict):
    """Foreign-currency ledger items paid into an account in another currency.

    The ledger amount is converted at the ``--fx`` rate of the bank date (nearest earlier date
    when that day has none, at most ``max_rate_age_days`` back). The bank may credit less by
    its rate spread (up to ``spread_max_pct`` of the converted amount, booked as fx_difference)
    and a bank charge (one of ``bank_charges``, in the bank currency, booked as bank_charge).
    """

    max_rate_age_days: int = Field(10, ge=0, le=3660)
    spread_max_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal("1.0")
    bank_charges: list[NonNegDecimal] = Field(
        default_factory=lambda: [Decimal(v) for v in ("50", "60", "75", "80", "100", "120", "150", "200", "250")]
    )
    # when several charges fit, prefer the one that leaves the bank a rate quoted with this many decimals
    bank_rate_decimals: int = Field(4, ge=0, le=12)
    # a conversion that merely fits is worth this share of weights.amount.exact (the bank text
    # stating the foreign amount is worth all of it)
    fit_weight_share: float = Field(0.5, ge=0, le=1)
    max_alternatives: int = Field(5, ge=1, le=100)  # fitting foreign items kept per bank line


class PayoutSource(_Strict):
    """A payment processor as it shows in bank text and in ledger order descriptions."""

    name: str
    bank_words: list[str]  # any of these (case-insensitive words) in the bank text
    ledger_words: list[str]  # any of these in the ledger order's description


class Payouts(_Strict):
    """Processor payouts (Stripe, Shopify Payments, PayPal).

    With a processor report the payout's lines decide the orders and the fee. Without one, a
    bank credit from a processor is matched to the orders of consecutive settlement days whose
    gross less a fee of ``fee_min_pct``..``fee_max_pct`` % equals it; such a proposal goes to
    review unless the fee is exactly zero.
    """

    fee_min_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal("0")
    fee_max_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal("5")
    max_settlement_days: int = Field(10, ge=1, le=60)  # days of orders one payout may cover
    max_lag_days: int = Field(10, ge=0, le=60)  # days from the last order day to the bank date
    report_window_days: int = Field(7, ge=0, le=60)  # payout date to bank date, with a report
    # caps of the inferred search: settlement windows one credit examines (stores x lag days x
    # window lengths; the stores whose words the bank text names and with the most orders first),
    # and candidate groups one credit keeps (best scores first)
    max_windows_per_credit: int = Field(5_000, ge=1, le=10_000_000)
    max_groups_per_credit: int = Field(20, ge=1, le=10_000)
    sources: list[PayoutSource] = Field(default_factory=list)


class ReferenceWeights(_Strict):
    """Reference levels, strongest first (``engine.scoring.levels.reference_comparison``)."""

    full: float = 10.0  # the ledger reference as written (INV-2026-00123, INV202600123)
    cheque: float = 9.0  # one cheque number on both sides (CHQ 100003; a bill's "chq 100003")
    reformatted: float = 8.0  # the same number, prefix or separators changed (2026-00123)
    serial: float = 6.5  # its number alone (00123, 123)
    number: float = 5.5  # another document number of the item (our cheque number on a bill)
    near: float = 1.5  # one transposition or one digit off (weak)
    truncated: float = 1.0  # cut short (weak)
    none: float = 0.0
    conflict: float = -4.0  # the bank quotes a different complete document number

    @model_validator(mode="before")
    @classmethod
    def _legacy_partial(cls, data):
        """``partial`` (one level for transposed or truncated digits, before they were told
        apart) still reads: it sets both ``near`` and ``truncated`` unless they are given."""
        if isinstance(data, dict) and "partial" in data:
            data = dict(data)
            partial = data.pop("partial")
            data.setdefault("near", partial)
            data.setdefault("truncated", partial)
        return data


class AmountWeights(_Strict):
    exact: float = 4.0
    explained: float = 1.5  # a round bank charge, a whole-% discount, rounding to tens
    within_tolerance: float = -1.0


class NameLevel(_Strict):
    min_similarity: float = Field(ge=0, le=100)
    weight: float
    label: str = Field(min_length=1)


class DateLevel(_Strict):
    max_days: int = Field(ge=0)
    weight: float


def _default_name_levels() -> list[NameLevel]:
    return [
        NameLevel(min_similarity=95, weight=4.5, label="same name"),
        NameLevel(min_similarity=85, weight=3.0, label="similar name"),
        NameLevel(min_similarity=70, weight=1.0, label="partly similar name"),
        NameLevel(min_similarity=50, weight=-1.0, label="different name"),
        NameLevel(min_similarity=0, weight=-2.5, label="unrelated name"),
    ]


def _default_date_levels() -> list[DateLevel]:
    return [
        DateLevel(max_days=0, weight=2.5),
        DateLevel(max_days=1, weight=2.0),
        DateLevel(max_days=3, weight=1.5),
        DateLevel(max_days=10, weight=0.5),
        DateLevel(max_days=45, weight=0.0),
        DateLevel(max_days=100000, weight=-0.5),
    ]


class CommonnessLevel(_Strict):
    """How many ledger items (same currency and sign) share an exact amount: at most
    ``max_items``."""

    max_items: int = Field(ge=1)
    weight: float
    label: str = Field(min_length=1)


def _default_commonness_levels() -> list[CommonnessLevel]:
    return [
        CommonnessLevel(max_items=1, weight=1.5, label="the only item with this amount"),
        CommonnessLevel(max_items=3, weight=0.5, label="a rare amount"),
        CommonnessLevel(max_items=20, weight=0.0, label="an amount some items share"),
        CommonnessLevel(max_items=100, weight=-1.5, label="a common amount"),
        CommonnessLevel(max_items=1_000_000_000, weight=-3.0, label="a very common amount"),
    ]


class GroupWeights(_Strict):
    """Evidence of compound groups (``[weights.groups]``), in bits on the pair scale: what
    :mod:`engine.candidates.compound` adds for an exact total, a batch, a day block, a payer
    subset, instalments and remainders.

    An exact total of several items is worth ``log2(amount / its roundness)`` bits (a
    coincidental exact total is about as likely as one in that many), between the amount level's
    ``exact`` weight and a cap per kind of group."""

    # the most bits an exact total of several items can give (a listed, batch or subset group)
    max_exact_total_bits: float = Field(20.0, ge=0)
    # the most bits a day block's exact total gives (below a referenced batch)
    day_block_max_bits: float = Field(11.0, ge=0)
    # bits off a day block of fewer than compound.day_block_strong_items items
    day_block_small_penalty: float = Field(4.0, ge=0)
    # the most bits instalments' exact total gives (paying the item in full, the last one the
    # exact remainder); paid in part, the total is no evidence
    instalment_max_total_bits: float = Field(4.0, ge=0)
    # per instalment that quotes no usable reference of the item (only its payer's name links it)
    unreferenced_instalment: float = -1.0
    # instalments quoting the item plus lines of its payer paying exactly what they left open:
    # the remainder is evidence (a whole-percent "discount" of that amount is less likely)
    remainder: float = 4.0


class PayoutWeights(_Strict):
    """Evidence of processor payouts (``[weights.payouts]``), in bits on the pair scale: what
    :mod:`engine.candidates.payouts` adds for a payout id in the bank text, an exact net, a fee
    in the band, ... with and without a processor report."""

    # with a processor report
    payout_id: float = 15.0  # the bank text quotes the payout id (as decisive as a full reference)
    exact_net: float = 10.0  # the report's net equals the bank amount (multi-line totals rarely collide)
    processor_named: float = 2.0  # the bank text names the processor (a source's bank words)
    report_gap: float = -1.0  # per gap: a report line with no ledger item / a net not the bank amount
    # without processor data (inferred from the orders' calendar)
    fee_band: float = 3.0  # the credit is the window's gross less a fee inside the band
    zero_fee: float = 6.0  # the credit equals the window's gross exactly
    typical_fee: float = 2.0  # the fee is a typical card/wallet fee (typical_fee_min_pct..max_pct)
    edge_fee: float = 0.0  # the fee is merely inside the band
    typical_fee_min_pct: float = Field(2.0, ge=0, le=100)
    typical_fee_max_pct: float = Field(4.5, ge=0, le=100)
    # the fee is close to the usual one, learnt from the run's confident payouts (a processor
    # charges one merchant a stable rate, wrong windows scatter over the band): full weight at
    # the usual fee, none from usual_rate_tolerance_pct percentage points of the gross away
    usual_rate: float = 2.0
    usual_rate_tolerance_pct: float = Field(0.75, gt=0, le=100)
    store_word: float = 2.0  # per store word of the bank text found in the orders' description
    store_words_max: int = Field(3, ge=0, le=100)  # store words counted at most
    # per order a window covers (full coverage of consecutive days wins over a shorter fitting
    # window), at most per_order_max in all (a busy day's 2,000 orders are not 100 bits)
    per_order: float = 0.05
    per_order_max: float = Field(3.0, ge=0)
    # the window is one business day's settlement: its orders and those of the weekend days
    # before it (Sat + Sun + Mon paid together), as daily rolling payouts are
    business_day: float = 1.0

    @model_validator(mode="after")
    def _typical_band(self) -> PayoutWeights:
        if self.typical_fee_min_pct > self.typical_fee_max_pct:
            raise ValueError("typical_fee_min_pct must be <= typical_fee_max_pct")
        return self


class Weights(_Strict):
    prior: float = -5.0
    reference: ReferenceWeights = ReferenceWeights()
    amount: AmountWeights = AmountWeights()
    name: list[NameLevel] = Field(default_factory=_default_name_levels, min_length=1)
    name_missing: float = 0.0
    name_different_script: float = 0.0
    name_initials: float = 3.0  # given names as initials (HO H L for Ho Ho Ling)
    name_alias: float = 4.5  # linked by the workspace's alias table (陳大文 = CHAN TAI MAN)
    name_digits_differ: float = -6.0  # the names differ in their numbers (Customer 3609 vs 4842)
    name_acronym: float = 3.0  # one name the acronym of the other (HKBN, Hong Kong Broadband Network)
    name_purpose: float = 2.0  # the bank prints the item's purpose, not a payee (OFFICE RENT)
    date: list[DateLevel] = Field(default_factory=_default_date_levels, min_length=1)
    outside_window: float = -4.0  # further outside the ledger type's window than its own length
    near_window: float = -1.5  # outside the window by no more than its own length again
    # an exact amount weighed by how many ledger items have it
    commonness: list[CommonnessLevel] = Field(default_factory=_default_commonness_levels, min_length=1)
    only_item_near: float = 2.0  # a different amount, but the only ledger item within its tolerance
    unique_amount: float = 2.5
    competing_amount: float = 0.0
    oldest_first: float = 2.0  # same payer, same amount: k-th payment to the k-th oldest item
    groups: GroupWeights = GroupWeights()
    payouts: PayoutWeights = PayoutWeights()

    @field_validator("name")
    @classmethod
    def _name_levels_descending(cls, levels: list[NameLevel]) -> list[NameLevel]:
        mins = [lvl.min_similarity for lvl in levels]
        if mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
            raise ValueError("name levels must have strictly decreasing min_similarity")
        if mins[-1] != 0:
            raise ValueError("the last name level must have min_similarity = 0 (catch-all)")
        return levels

    @field_validator("commonness")
    @classmethod
    def _commonness_ascending(cls, levels: list[CommonnessLevel]) -> list[CommonnessLevel]:
        bounds = [lvl.max_items for lvl in levels]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError("commonness levels must have strictly increasing max_items")
        return levels

    @field_validator("date")
    @classmethod
    def _date_levels_ascending(cls, levels: list[DateLevel]) -> list[DateLevel]:
        maxes = [lvl.max_days for lvl in levels]
        if maxes != sorted(maxes) or len(set(maxes)) != len(maxes):
            raise ValueError("date levels must have strictly increasing max_days")
        return levels


class Estimation(_Strict):
    """Weights estimated from the run's own data (``scorer = "estimated"``): u probabilities
    from ``random_pairs`` random bank x ledger pairs, m probabilities by expectation-maximisation
    over the candidate pairs (at most ``max_iterations`` rounds, converged when no probability
    moves by more than ``tolerance``), the rule set's weights counting as ``prior_strength``
    matches' worth of evidence; on a month with more than ``em_pairs`` candidate pairs, EM reads the
    candidates of a random sample of bank lines. Deterministic for ``seed``."""

    random_pairs: int = Field(200_000, ge=1_000, le=50_000_000)
    max_iterations: int = Field(100, ge=1, le=10_000)
    tolerance: float = Field(1e-4, gt=0, le=0.1)
    prior_strength: float = Field(20.0, ge=0)
    em_pairs: int = Field(400_000, ge=1_000, le=100_000_000)  # candidate pairs EM reads (a sample of lines beyond)
    seed: int = 0


class Scoring(_Strict):
    """Which scorer turns a pair's comparison levels into a score: ``rules`` (the weights
    below as written), ``estimated`` (estimated per run, the weights as priors) or ``learned``
    (a calibrated classifier saved by ``recon train``; ``model`` is its file, relative to the
    rule file)."""

    scorer: Literal["rules", "estimated", "learned"] = "rules"
    model: str | None = None
    estimation: Estimation = Estimation()

    @model_validator(mode="after")
    def _learned_needs_model(self) -> Scoring:
        if self.scorer == "learned" and not self.model:
            raise ValueError('scorer = "learned" needs model = "FILE" (made by `recon train`)')
        return self


class Thresholds(_Strict):
    auto: float = Field(0.97, gt=0, le=1)
    review: float = Field(0.5, gt=0, le=1)
    ambiguity_margin: float = Field(1.0, ge=0, le=30)  # bits (log2 odds)
    # a pair with no comparable payer name and no reference is never matched automatically
    auto_needs_name_or_reference: bool = True
    # ... but is proposed for review when the amount singles it out: an exact amount at most this
    # many ledger items have (0: never lifted; see engine/scoring/floor.py)
    review_floor_max_items: int = Field(3, ge=0, le=1000)

    @model_validator(mode="after")
    def _review_below_auto(self) -> Thresholds:
        if self.review > self.auto:
            raise ValueError("thresholds.review must be <= thresholds.auto")
        return self


class RuleSet(_Strict):
    """A complete, validated rule set.

    Examples
    --------
    >>> rules = default_rules()
    >>> stricter = rules.with_changes(thresholds={"auto": 0.99})
    >>> stricter.thresholds.auto
    0.99
    """

    name: str = "custom"
    description: str = ""
    dates: Dates = Dates()
    amount: Amount = Amount()
    candidates: Candidates = Candidates()
    adjustments: Adjustments = Adjustments()
    writeback: WriteBack = WriteBack()
    compound: Compound = Compound()
    fx: FxRules = FxRules()
    payouts: Payouts = Payouts()
    weights: Weights = Weights()
    scoring: Scoring = Scoring()
    thresholds: Thresholds = Thresholds()

    def window_for(self, ledger_type: str) -> DateWindow:
        return self.dates.by_type.get(ledger_type.strip().lower(), self.dates.default)

    def with_changes(self, **sections: dict) -> RuleSet:
        """A copy with some values changed, validated again (for notebooks).

        ``rules.with_changes(thresholds={"auto": 0.9}, amount={"tolerance_abs": "20"})``
        """
        data = self.model_dump(mode="json")
        for section, values in sections.items():
            if isinstance(values, dict) and isinstance(data.get(section), dict):
                data[section] = {**data[section], **values}
            else:
                data[section] = values
        return from_mapping(data, source=f"{self.name} (modified)")

    def to_toml_dict(self) -> dict:
        return self.model_dump(mode="json")


def _format_problem(err: dict) -> str:
    where = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        msg = "unknown setting (check the spelling against rules/default.toml)"
    return f"{where}: {msg}"


def from_mapping(data: dict, source: str = "<rules>") -> RuleSet:
    """Validate a parsed mapping; raise :class:`RuleConfigError` listing every problem."""
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        raise RuleConfigError(source, [_format_problem(e) for e in exc.errors()]) from None


def _default_mapping() -> dict:
    text = resources.files("rules").joinpath("default.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Load and validate a rule-set TOML file; ``None`` gives the built-in default.

    A file only needs the settings it changes: everything else comes from the built-in
    ``rules/default.toml`` (tables merge key by key; lists such as ``weights.name`` replace).

    Raises
    ------
    RuleConfigError
        The file is missing, not TOML, or has invalid values (all listed).
    """
    if path is None:
        return default_rules()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RuleConfigError(str(path), ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleConfigError(str(path), [f"cannot read the file: {exc}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    data.setdefault("name", path.stem)
    model = data.get("scoring", {}).get("model") if isinstance(data.get("scoring"), dict) else None
    if isinstance(model, str) and model and not Path(model).is_absolute():
        # a model file named in a rule file lives next to it
        data["scoring"] = {**data["scoring"], "model": str(path.parent / model)}
    return from_mapping(_deep_merge(_default_mapping(), data), source=str(path))


def default_rules() -> RuleSet:
    """The built-in rule set shipped as ``rules/default.toml``."""
    return from_mapping(_default_mapping(), source="rules/default.toml (built-in)")
