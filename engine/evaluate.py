"""Score match proposals against ground truth.

Stage: engine (evaluation, after matching). Reads a matches frame (as written to
``matches.csv``) and a truth frame (``truth.csv`` from :mod:`benchmarks.generate`, or one an
analyst labelled by hand) and nothing else, so notebooks can call it on any run.

A proposal is correct only if its set of bank ids AND its set of ledger ids are exactly those of
one truth group: a partial overlap (one id too many or too few on either side) counts as wrong.
Ids inside a group are compared as sets (order, repeats and spaces around ``;`` do not matter).

Metrics
-------
precision
    proposed groups exactly in truth / proposed groups, over all statuses and per status.
recall
    truth groups exactly proposed (any status) / truth groups, overall and per truth match type.
auto_error_rate
    ``auto`` proposals not in truth / ``auto`` proposals: what would be booked wrongly unseen.
auto_coverage
    distinct bank lines inside a correct ``auto`` proposal / distinct bank lines: the work the
    engine takes off a person's desk. Its ceiling (``auto_coverage_ceiling``) is the share of
    bank lines in some truth group: lines with no ledger item can never be matched.
auto_error_rate_by_type
    the auto error rate per ``match_type`` the proposals claim (when ``matches`` has that column).
auto_wrong_books_rate
    a second, booking-centred auto error: ``auto`` proposals that would book something wrong /
    ``auto`` proposals. A proposal books wrongly when it pairs a bank line with a ledger item
    that is not in the same truth group as that line (lines and items in no truth group
    included), or when it is a strict part of one truth group and books a write-off adjustment
    (:data:`WRITE_OFF_CAUSES`: ``short_payment``, ``bank_charge``, ``overpayment`` and their
    aliases ``discount`` / ``write_off``): it closes an item that is not settled. A strict part
    that leaves the item open (an instalment with ``open_amount``) books nothing wrong; it is
    still an auto error under the exact-group definition. Overall and per claimed match type.
auto_coverage_truth
    distinct bank lines inside a correct ``auto`` proposal / distinct bank lines in some truth
    group: the share of the matchable work done unseen (the acceptance target is >= 0.9).
brier_score, reliability
    calibration of ``confidence`` (when ``matches`` has it) against "the proposal is exactly a
    truth group", over every proposal with a confidence: the mean squared difference, and per
    confidence bin (:data:`CALIBRATION_BINS`) the proposals, their mean confidence and the
    share that is correct.
adjustments
    when both ``matches`` and ``truth`` have an ``adjustments`` column: among the correct
    proposals, the share whose adjustment lines total the truth's (``adjustment_total_accuracy``)
    and the share whose totals per cause agree too (``adjustment_cause_accuracy``). Causes are
    compared after :data:`ADJUSTMENT_CAUSE_ALIASES` (``write_off`` and ``discount`` count as
    ``short_payment``); see :func:`parse_adjustments` for the accepted cell formats.

Rows of ``matches`` whose status is in :data:`NON_PROPOSAL_STATUSES` (e.g. ``unmatched``), or that
name no bank id or no ledger id, propose nothing; they are counted as ``ignored``.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import polars as pl

from models.errors import InputError
from models.money import CURRENCY_EXPONENTS
from models.schema import ID_SEPARATOR, TRUTH_SCHEMA

AUTO_STATUS = "auto"
REVIEW_STATUS = "review"
#: statuses a matcher may write for rows that propose no match
NON_PROPOSAL_STATUSES = ("unmatched", "rejected")
MATCH_REQUIRED_COLUMNS = ("status", "bank_ids", "ledger_ids")
#: cause names that mean the same adjustment (compared after lower-casing, spaces as "_")
ADJUSTMENT_CAUSE_ALIASES: dict[str, str] = {
    "write_off": "short_payment", "writeoff": "short_payment", "discount": "short_payment",
    "short": "short_payment", "underpayment": "short_payment",
    "fee": "processor_fee", "processing_fee": "processor_fee", "payout_fee": "processor_fee",
    "fx": "fx_difference", "fx_diff": "fx_difference", "exchange_difference": "fx_difference",
    "fx_gain_loss": "fx_difference",
    "charge": "bank_charge", "bank_charges": "bank_charge", "bank_fee": "bank_charge",
}
#: adjustment causes that write an amount off (after :data:`ADJUSTMENT_CAUSE_ALIASES`): booked on
#: a strict part of a truth group they close an item that is not settled
WRITE_OFF_CAUSES = frozenset({"short_payment", "bank_charge", "overpayment"})
#: edges of the reliability bins: [0, 0.5), [0.5, 0.7), ..., [0.99, 1.0] (the last one closed)
CALIBRATION_BINS = (0.0, 0.5, 0.7, 0.9, 0.95, 0.97, 0.99, 1.0)
_KNOWN_CAUSES = {
    "processor_fee", "fx_difference", "bank_charge", "short_payment", "overpayment", *ADJUSTMENT_CAUSE_ALIASES
}
_TEXT_ADJUSTMENT = re.compile(r"([A-Za-z][A-Za-z_ ]*?)\s*[:=]?\s*([+-]?\d[\d,]*(?:\.\d+)?)")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True)
class ReliabilityBin:
    """Proposals whose confidence falls in ``[low, high)`` (``[low, high]`` for the last bin)."""

    low: float
    high: float
    proposals: int = 0
    correct: int = 0
    confidence_sum: float = 0.0

    @property
    def mean_confidence(self) -> float | None:
        return self.confidence_sum / self.proposals if self.proposals else None

    @property
    def share_correct(self) -> float | None:
        return _ratio(self.correct, self.proposals)

    @property
    def label(self) -> str:
        return f"{self.low:g}-{self.high:g}"


@dataclass(frozen=True)
class EvaluationReport:
    """What a run got right, as counts and the ratios built from them.

    Ratios are ``None`` when their denominator is 0 (e.g. no auto proposals).
    """

    proposed: int
    auto: int
    review: int
    truth_groups: int
    correct: int
    correct_auto: int
    found: int
    bank_lines: int
    bank_lines_auto_correct: int
    bank_lines_in_truth: int = 0
    ignored: int = 0
    proposed_by_status: dict[str, int] = field(default_factory=dict)
    correct_by_status: dict[str, int] = field(default_factory=dict)
    truth_by_type: dict[str, int] = field(default_factory=dict)
    found_by_type: dict[str, int] = field(default_factory=dict)
    auto_by_type: dict[str, int] = field(default_factory=dict)
    correct_auto_by_type: dict[str, int] = field(default_factory=dict)
    adjustments_checked: int = 0
    adjustments_total_ok: int = 0
    adjustments_causes_ok: int = 0
    wrong_books_auto: int = 0
    wrong_books_auto_by_type: dict[str, int] = field(default_factory=dict)
    calibrated: int = 0
    brier_score: float | None = None
    reliability: tuple[ReliabilityBin, ...] = ()

    @property
    def precision(self) -> float | None:
        return _ratio(self.correct, self.proposed)

    @property
    def precision_by_status(self) -> dict[str, float | None]:
        return {s: _ratio(self.correct_by_status.get(s, 0), n) for s, n in self.proposed_by_status.items()}

    @property
    def recall(self) -> float | None:
        return _ratio(self.found, self.truth_groups)

    @property
    def recall_by_type(self) -> dict[str, float | None]:
        return {t: _ratio(self.found_by_type.get(t, 0), n) for t, n in self.truth_by_type.items()}

    @property
    def auto_error_rate(self) -> float | None:
        return _ratio(self.auto - self.correct_auto, self.auto)

    @property
    def auto_error_rate_by_type(self) -> dict[str, float | None]:
        """Auto error rate per match type claimed by the proposals."""
        return {t: _ratio(n - self.correct_auto_by_type.get(t, 0), n) for t, n in self.auto_by_type.items()}

    @property
    def auto_wrong_books_rate(self) -> float | None:
        """Auto proposals that book wrongly (see the module docstring) / auto proposals."""
        return _ratio(self.wrong_books_auto, self.auto)

    @property
    def auto_wrong_books_rate_by_type(self) -> dict[str, float | None]:
        """Auto wrong-books rate per match type claimed by the proposals."""
        return {t: _ratio(self.wrong_books_auto_by_type.get(t, 0), n) for t, n in self.auto_by_type.items()}

    @property
    def auto_coverage_truth(self) -> float | None:
        """Bank lines in a correct auto proposal / bank lines that belong to some truth group."""
        return _ratio(self.bank_lines_auto_correct, self.bank_lines_in_truth)

    @property
    def adjustment_total_accuracy(self) -> float | None:
        """Correct proposals whose adjustments total the truth's / correct proposals checked."""
        return _ratio(self.adjustments_total_ok, self.adjustments_checked)

    @property
    def adjustment_cause_accuracy(self) -> float | None:
        """Correct proposals whose adjustments agree with the truth's per cause / checked."""
        return _ratio(self.adjustments_causes_ok, self.adjustments_checked)

    @property
    def auto_coverage(self) -> float | None:
        return _ratio(self.bank_lines_auto_correct, self.bank_lines)

    @property
    def auto_coverage_ceiling(self) -> float | None:
        """The best possible auto coverage: bank lines that belong to some truth group."""
        return _ratio(self.bank_lines_in_truth, self.bank_lines)

    def to_dict(self) -> dict:
        """Counts and ratios as plain Python values (JSON-ready)."""
        out = asdict(self)
        out.update(
            precision=self.precision, precision_by_status=self.precision_by_status,
            recall=self.recall, recall_by_type=self.recall_by_type,
            auto_error_rate=self.auto_error_rate, auto_coverage=self.auto_coverage,
            auto_coverage_ceiling=self.auto_coverage_ceiling,
            auto_error_rate_by_type=self.auto_error_rate_by_type,
            adjustment_total_accuracy=self.adjustment_total_accuracy,
            adjustment_cause_accuracy=self.adjustment_cause_accuracy,
            auto_wrong_books_rate=self.auto_wrong_books_rate,
            auto_wrong_books_rate_by_type=self.auto_wrong_books_rate_by_type,
            auto_coverage_truth=self.auto_coverage_truth,
            reliability=[
                {**asdict(b), "mean_confidence": b.mean_confidence, "share_correct": b.share_correct}
                for b in self.reliability
            ],
        )
        return out

    def to_frame(self) -> pl.DataFrame:
        """One row per figure: ``metric, scope, numerator, denominator, value``.

        Counts have ``metric == "count"`` and their number in ``numerator`` and ``value``.
        """
        rows: list[tuple[str, str, int, int | None]] = [
            ("precision", "all", self.correct, self.proposed),
            *[("precision", f"status={s}", self.correct_by_status.get(s, 0), n)
              for s, n in sorted(self.proposed_by_status.items())],
            ("recall", "all", self.found, self.truth_groups),
            *[("recall", f"match_type={t}", self.found_by_type.get(t, 0), n)
              for t, n in sorted(self.truth_by_type.items())],
            ("auto_error_rate", f"status={AUTO_STATUS}", self.auto - self.correct_auto, self.auto),
            *[("auto_error_rate", f"match_type={t}", n - self.correct_auto_by_type.get(t, 0), n)
              for t, n in sorted(self.auto_by_type.items())],
            ("auto_coverage", "bank_lines", self.bank_lines_auto_correct, self.bank_lines),
            ("auto_coverage_ceiling", "bank_lines", self.bank_lines_in_truth, self.bank_lines),
        ]
        if self.adjustments_checked:
            rows += [
                ("adjustment_total_accuracy", "correct", self.adjustments_total_ok, self.adjustments_checked),
                ("adjustment_cause_accuracy", "correct", self.adjustments_causes_ok, self.adjustments_checked),
            ]
        rows += [
            ("auto_wrong_books_rate", f"status={AUTO_STATUS}", self.wrong_books_auto, self.auto),
            *[("auto_wrong_books_rate", f"match_type={t}", self.wrong_books_auto_by_type.get(t, 0), n)
              for t, n in sorted(self.auto_by_type.items())],
            ("auto_coverage_truth", "truth_bank_lines", self.bank_lines_auto_correct, self.bank_lines_in_truth),
            *[("reliability", f"confidence={b.label}", b.correct, b.proposals) for b in self.reliability],
        ]
        # figures that are not a ratio of counts: the value itself, over how many proposals
        measures = [("brier_score", "proposals", self.calibrated, self.brier_score)]
        measures += [("mean_confidence", f"confidence={b.label}", b.proposals, b.mean_confidence)
                     for b in self.reliability]
        counts = [
            ("proposed", self.proposed), ("auto", self.auto), ("review", self.review),
            ("truth_groups", self.truth_groups), ("correct", self.correct),
            ("correct_auto", self.correct_auto), ("found", self.found),
            ("bank_lines", self.bank_lines), ("bank_lines_auto_correct", self.bank_lines_auto_correct),
            ("bank_lines_in_truth", self.bank_lines_in_truth), ("ignored", self.ignored),
        ]
        if not self.calibrated:
            measures = []
        return pl.DataFrame(
            {
                "metric": [r[0] for r in rows] + [m[0] for m in measures] + ["count"] * len(counts),
                "scope": [r[1] for r in rows] + [m[1] for m in measures] + [c[0] for c in counts],
                "numerator": [r[2] for r in rows] + [None] * len(measures) + [c[1] for c in counts],
                "denominator": [r[3] for r in rows] + [m[2] for m in measures] + [None] * len(counts),
                "value": [_ratio(r[2], r[3]) for r in rows] + [m[3] for m in measures]
                + [float(c[1]) for c in counts],
            },
            schema={"metric": pl.Utf8, "scope": pl.Utf8, "numerator": pl.Int64,
                    "denominator": pl.Int64, "value": pl.Float64},
        )

    def to_markdown(self) -> str:
        """A small markdown report: ratios with their fractions, then the counts."""
        lines = ["| metric | scope | value | fraction |", "|---|---|---:|---:|"]
        ratios = pl.col("metric").is_in(["count", "reliability", "brier_score", "mean_confidence"]).not_()
        for row in self.to_frame().filter(ratios).iter_rows(named=True):
            lines.append(
                f"| {row['metric']} | {row['scope']} | {format_ratio(row['value'])} "
                f"| {row['numerator']:,}/{row['denominator']:,} |"
            )
        if self.calibrated:
            lines += ["", f"Calibration of {self.calibrated:,} proposals' confidence against \"exactly a truth "
                      f"group\": Brier score {self.brier_score:.4f}.", "", *self.reliability_markdown()]
        lines += [
            "",
            f"{self.proposed:,} proposed ({self.auto:,} auto, {self.review:,} review), "
            f"{self.correct:,} correct ({self.correct_auto:,} auto); {self.truth_groups:,} truth "
            f"groups, {self.found:,} found; {self.bank_lines:,} bank lines, "
            f"{self.bank_lines_in_truth:,} in a truth group, "
            f"{self.bank_lines_auto_correct:,} settled by a correct auto match"
            + (f"; {self.ignored:,} rows proposing nothing ignored" if self.ignored else "")
            + ".",
        ]
        return "\n".join(lines)

    def reliability_markdown(self) -> list[str]:
        """The reliability table: per confidence bin, proposals, mean confidence, share correct."""
        lines = ["| confidence | proposals | mean confidence | correct |", "|---|---:|---:|---:|"]
        for b in self.reliability:
            mean = "n/a" if b.mean_confidence is None else f"{b.mean_confidence:.4f}"
            lines.append(f"| {b.label} | {b.proposals:,} | {mean} | {format_ratio(b.share_correct)} |")
        return lines

    def __str__(self) -> str:
        return self.to_markdown()


def format_ratio(value: float | None) -> str:
    """``0.98765 -> '98.77%'``; ``None`` (nothing to divide by) -> ``'n/a'``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.2f}%"


def canonical_ids(frame: pl.DataFrame, column: str) -> pl.Series:
    """``column``'s ';'-joined ids as a canonical key: trimmed, de-duplicated, sorted, re-joined.

    Null or empty gives ``""``. Vectorized (explode, sort, re-aggregate) for millions of rows.

    Examples
    --------
    >>> canonical_ids(pl.DataFrame({"ids": ["B2; B1", None, "B1;B1"]}), "ids").to_list()
    ['B1;B2', '', 'B1']
    """
    ids = (
        frame.select(pl.col(column).cast(pl.Utf8).fill_null("").str.split(ID_SEPARATOR).alias("_id"))
        .with_row_index("_row")
        .explode("_id")
        .with_columns(pl.col("_id").str.strip_chars())
        .filter(pl.col("_id") != "")
        .unique(["_row", "_id"])
        .sort(["_row", "_id"])
        .group_by("_row")
        .agg(pl.col("_id"))
        .select("_row", pl.col("_id").list.join(ID_SEPARATOR).alias("_key"))
    )
    rows = pl.DataFrame({"_row": pl.int_range(0, frame.height, dtype=pl.UInt32, eager=True)})
    return rows.join(ids, on="_row", how="left").sort("_row")["_key"].fill_null("").alias(column)


def _cause(name: str) -> str:
    key = re.sub(r"[\s-]+", "_", str(name).strip().lower())
    return ADJUSTMENT_CAUSE_ALIASES.get(key, key)


def _minor(amount, exponent: int) -> int:
    value = Decimal(str(amount).replace(",", "").strip()).scaleb(exponent)
    if value != value.to_integral_value():
        raise ValueError(f"{amount} has more decimals than the currency allows")
    return int(value)


def parse_adjustments(text: str | None, exponent: int = 2) -> list[tuple[str, int]] | None:
    """Adjustment lines of a ``matches.csv`` or ``truth.csv`` cell as (cause, minor units).

    Accepted forms: a JSON list of objects with ``cause`` (or ``type`` / ``kind`` / ``reason``)
    and ``amount`` (decimal text or number, in major units) or ``amount_minor``; a JSON object
    ``{cause: amount}``; or text such as ``processor_fee -233.32; bank_charge -100.00`` (pairs of
    a known cause and an amount; other words, e.g. account codes in brackets, are ignored).
    Causes are lower-cased and mapped through :data:`ADJUSTMENT_CAUSE_ALIASES`. Empty, ``[]``
    and null give ``[]``; a cell that cannot be read (or an amount with too many decimals) gives
    ``None``.

    Examples
    --------
    >>> parse_adjustments('[{"cause":"processor_fee","amount":"-233.32"}]')
    [('processor_fee', -23332)]
    >>> parse_adjustments("write_off: -5.00 (6900); bank charge -100")
    [('short_payment', -500), ('bank_charge', -10000)]
    >>> parse_adjustments("")
    []
    """
    if text is None:
        return []
    text = str(text).strip()
    if text in ("", "[]", "{}", "null", "none"):
        return []
    try:
        if text[0] in "[{":
            data = json.loads(text)
            items = data.items() if isinstance(data, dict) else None
            if items is not None:
                return [(_cause(k), _minor(v, exponent)) for k, v in items]
            out = []
            for item in data:
                name = next((item[k] for k in ("cause", "type", "kind", "reason") if k in item), None)
                if name is None:
                    return None
                value = int(item["amount_minor"]) if "amount_minor" in item else _minor(item["amount"], exponent)
                out.append((_cause(name), value))
            return out
        pairs = [(_cause(name), _minor(amount, exponent)) for name, amount in _TEXT_ADJUSTMENT.findall(text)
                 if _cause(name) in _KNOWN_CAUSES]
        return pairs or None
    except (ValueError, KeyError, TypeError, InvalidOperation, AttributeError):
        return None


def _adjustments_agree(proposed: str | None, expected: str | None, exponent: int) -> tuple[bool, bool]:
    """(totals agree, totals per cause agree) of two adjustments cells."""
    mine, theirs = parse_adjustments(proposed, exponent), parse_adjustments(expected, exponent)
    if mine is None or theirs is None:
        return False, False
    by_cause: list[dict[str, int]] = []
    for lines in (mine, theirs):
        sums: dict[str, int] = defaultdict(int)
        for cause, amount in lines:
            sums[cause] += amount
        by_cause.append({c: a for c, a in sums.items() if a})
    total = sum(a for _, a in mine) == sum(a for _, a in theirs)
    return total, total and by_cause[0] == by_cause[1]


def _member_ids(keys: pl.Series) -> pl.Series:
    """The ids inside canonical keys, one per row."""
    return keys.filter(keys != "").str.split(ID_SEPARATOR).explode()


def _require(frame: pl.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what} lacks column(s) {', '.join(missing)} (has: {', '.join(frame.columns)}); "
            f"ids go ';'-joined in bank_ids / ledger_ids"
        )


def evaluate(matches: pl.DataFrame, truth: pl.DataFrame, bank_ids: pl.Series | None = None) -> EvaluationReport:
    """Compare proposed groups with the true ones.

    Parameters
    ----------
    matches
        One row per proposal with at least ``status``, ``bank_ids`` and ``ledger_ids`` (ids
        ';'-joined), as in ``matches.csv``; ``match_id`` is not needed. With ``match_type`` the
        auto error rate is also given per type; with ``adjustments`` (and ``currency``, for its
        decimals; default 2) the adjustments of correct proposals are checked against the truth.
    truth
        ``group_id, match_type, bank_ids, ledger_ids`` as in ``truth.csv``, optionally
        ``adjustments``.
    bank_ids
        Every distinct bank line id of the input, the denominator of auto coverage. Default:
        the bank ids named in truth or in matches (unmatched noise lines are then not counted).

    Returns
    -------
    EvaluationReport

    Raises
    ------
    InputError
        A required column is missing.

    Examples
    --------
    >>> truth = pl.DataFrame({"group_id": ["T1", "T2"], "match_type": ["one_to_one"] * 2,
    ...                       "bank_ids": ["B1", "B2"], "ledger_ids": ["INV-1", "INV-2"]})
    >>> matches = pl.DataFrame({"match_id": ["M1", "M2"], "match_type": ["one_to_one"] * 2,
    ...                         "status": ["auto", "review"], "bank_ids": ["B1", "B2"],
    ...                         "ledger_ids": ["INV-1", "INV-3"]})
    >>> report = evaluate(matches, truth)
    >>> report.precision, report.recall, report.auto_error_rate, report.auto_coverage
    (0.5, 0.5, 0.0, 0.5)
    """
    _require(matches, MATCH_REQUIRED_COLUMNS, "matches")
    _require(truth, ("bank_ids", "ledger_ids", "match_type"), "truth")
    keys = ["_bank", "_ledger"]
    check_adjustments = "adjustments" in matches.columns and "adjustments" in truth.columns

    def text(frame: pl.DataFrame, column: str, default: str = "") -> pl.Series:
        if column not in frame.columns:
            return pl.repeat(default, frame.height, dtype=pl.Utf8, eager=True)
        return frame[column].cast(pl.Utf8).fill_null(default).str.strip_chars()

    proposals = pl.DataFrame({
        "status": text(matches, "status"),
        "_bank": canonical_ids(matches, "bank_ids"),
        "_ledger": canonical_ids(matches, "ledger_ids"),
        "_type": text(matches, "match_type"),
        "_adj": text(matches, "adjustments"),
        "_currency": text(matches, "currency"),
        "_confidence": _confidences(matches),
    })
    proposes = ~pl.col("status").is_in(NON_PROPOSAL_STATUSES) & (pl.col("_bank") != "") & (pl.col("_ledger") != "")
    ignored = proposals.filter(~proposes).height
    proposals = proposals.filter(proposes)
    groups = pl.DataFrame({
        "match_type": truth["match_type"].cast(pl.Utf8).fill_null(""),
        "_bank": canonical_ids(truth, "bank_ids"),
        "_ledger": canonical_ids(truth, "ledger_ids"),
        "_adj_truth": text(truth, "adjustments"),
    }).unique(keys, keep="first", maintain_order=True)

    proposals = proposals.join(
        groups.select(*keys, "_adj_truth").with_columns(_correct=pl.lit(True)), on=keys, how="left"
    ).with_columns(pl.col("_correct").fill_null(False))
    groups = groups.join(
        proposals.select(keys).unique().with_columns(_found=pl.lit(True)), on=keys, how="left"
    ).with_columns(pl.col("_found").fill_null(False))

    by_status = proposals.group_by("status").agg(n=pl.len(), correct=pl.col("_correct").sum())
    by_type = groups.group_by("match_type").agg(n=pl.len(), found=pl.col("_found").sum())
    is_auto = pl.col("status") == AUTO_STATUS

    by_auto_type = (
        proposals.filter(is_auto & (pl.col("_type") != "")).group_by("_type")
        .agg(n=pl.len(), correct=pl.col("_correct").sum())
    )
    adjustments_checked = adjustments_total_ok = adjustments_causes_ok = 0
    if check_adjustments:
        correct = proposals.filter(pl.col("_correct")).select("_adj", "_adj_truth", "_currency")
        empty = pl.col("_adj").is_in(["", "[]"]) & pl.col("_adj_truth").is_in(["", "[]"])
        adjustments_checked = correct.height
        adjustments_total_ok = adjustments_causes_ok = correct.filter(empty).height
        for mine, theirs, currency in correct.filter(~empty).iter_rows():
            total_ok, causes_ok = _adjustments_agree(mine, theirs, CURRENCY_EXPONENTS.get(currency.upper(), 2))
            adjustments_total_ok += total_ok
            adjustments_causes_ok += causes_ok

    auto = proposals.filter(is_auto)
    wrong = auto.with_columns(_wrong=_books_wrongly(auto, groups)).filter(pl.col("_wrong"))
    wrong_by_type = wrong.filter(pl.col("_type") != "").group_by("_type").len()
    calibrated, brier, reliability = _calibration(proposals)

    auto_correct_lines = _member_ids(proposals.filter(is_auto & pl.col("_correct"))["_bank"]).unique()
    truth_lines = _member_ids(groups["_bank"]).unique()
    if bank_ids is None:
        universe = pl.concat([truth_lines, _member_ids(proposals["_bank"])]).unique()
    else:
        universe = bank_ids.cast(pl.Utf8).drop_nulls().str.strip_chars().unique()
        auto_correct_lines = auto_correct_lines.filter(auto_correct_lines.is_in(universe.implode()))
        truth_lines = truth_lines.filter(truth_lines.is_in(universe.implode()))

    return EvaluationReport(
        proposed=proposals.height,
        auto=proposals.filter(is_auto).height,
        review=proposals.filter(pl.col("status") == REVIEW_STATUS).height,
        truth_groups=groups.height,
        correct=int(proposals["_correct"].sum()),
        correct_auto=proposals.filter(is_auto & pl.col("_correct")).height,
        found=int(groups["_found"].sum()),
        bank_lines=universe.len(),
        bank_lines_auto_correct=auto_correct_lines.len(),
        bank_lines_in_truth=truth_lines.len(),
        ignored=ignored,
        proposed_by_status=dict(zip(by_status["status"], by_status["n"], strict=True)),
        correct_by_status={s: int(c) for s, c in zip(by_status["status"], by_status["correct"], strict=True)},
        truth_by_type=dict(zip(by_type["match_type"], by_type["n"], strict=True)),
        found_by_type={t: int(f) for t, f in zip(by_type["match_type"], by_type["found"], strict=True)},
        auto_by_type=dict(zip(by_auto_type["_type"], by_auto_type["n"], strict=True)),
        correct_auto_by_type={t: int(c) for t, c in zip(by_auto_type["_type"], by_auto_type["correct"], strict=True)},
        adjustments_checked=adjustments_checked,
        adjustments_total_ok=adjustments_total_ok,
        adjustments_causes_ok=adjustments_causes_ok,
        wrong_books_auto=wrong.height,
        wrong_books_auto_by_type=dict(zip(wrong_by_type["_type"], wrong_by_type["len"], strict=True)),
        calibrated=calibrated,
        brier_score=brier,
        reliability=reliability,
    )


def _confidences(matches: pl.DataFrame) -> pl.Series:
    """``confidence`` as floats in [0, 1]; missing, unreadable or out-of-range values are null."""
    if "confidence" not in matches.columns:
        return pl.repeat(None, matches.height, dtype=pl.Float64, eager=True)
    value = matches["confidence"].cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False)
    return value.set(value.is_nan().fill_null(False) | (value < 0) | (value > 1), None)


def _books_wrongly(proposals: pl.DataFrame, groups: pl.DataFrame) -> pl.Series:
    """Per proposal: would booking it be wrong (see ``auto_wrong_books_rate`` above)?

    ``proposals`` has the canonical ``_bank`` / ``_ledger`` keys, ``_correct``, ``_adj`` and
    ``_currency``; ``groups`` the truth groups' keys. An id is looked up on its own side (a bank
    id and a ledger id may be the same text).
    """
    if proposals.height == 0:
        return pl.Series("_wrong", [], dtype=pl.Boolean)

    def members(frame: pl.DataFrame, row: str) -> pl.DataFrame:
        return pl.concat([
            frame.select(row, side=pl.lit(side), id=pl.col(column).str.split(ID_SEPARATOR))
            .explode("id").filter(pl.col("id").is_not_null() & (pl.col("id") != ""))
            for side, column in (("bank", "_bank"), ("ledger", "_ledger"))
        ])

    truth_members = members(groups.with_row_index("_group"), "_group").unique(["side", "id"], keep="first")
    proposed = proposals.with_row_index("_row")
    inside = (
        members(proposed, "_row").join(truth_members, on=["side", "id"], how="left")
        .group_by("_row")
        .agg(_inside=pl.col("_group").is_not_null().all() & (pl.col("_group").n_unique() == 1))
    )
    proposed = proposed.join(inside, on="_row", how="left").sort("_row")
    # a strict part of one truth group: wrong only if it writes an amount off
    part = proposed.filter(pl.col("_inside") & ~pl.col("_correct") & ~pl.col("_adj").is_in(["", "[]"]))
    writes_off = set()
    for row, adjustments, currency in part.select("_row", "_adj", "_currency").iter_rows():
        lines = parse_adjustments(adjustments, CURRENCY_EXPONENTS.get(currency.upper(), 2)) or []
        if any(cause in WRITE_OFF_CAUSES and amount for cause, amount in lines):
            writes_off.add(row)
    return (~proposed["_inside"].fill_null(False) | proposed["_row"].is_in(list(writes_off))).alias("_wrong")


def _calibration(proposals: pl.DataFrame) -> tuple[int, float | None, tuple[ReliabilityBin, ...]]:
    """(proposals with a confidence, Brier score, reliability bins) against ``_correct``."""
    scored = proposals.filter(pl.col("_confidence").is_not_null()).select(
        p=pl.col("_confidence"), y=pl.col("_correct").cast(pl.Float64))
    if scored.height == 0:
        return 0, None, ()
    brier = float(scored.select(((pl.col("p") - pl.col("y")) ** 2).mean()).item())
    edges = CALIBRATION_BINS
    bins = []
    for i, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        upper = (pl.col("p") <= high) if i == len(edges) - 2 else (pl.col("p") < high)
        inside = scored.filter((pl.col("p") >= low) & upper)
        bins.append(ReliabilityBin(low=low, high=high, proposals=inside.height, correct=int(inside["y"].sum()),
                                   confidence_sum=float(inside["p"].sum())))
    return scored.height, brier, tuple(bins)


def _read_text_csv(path: Path, what: str) -> pl.DataFrame:
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    # every column as text: ids like 00123 must keep their zeros
    return pl.read_csv(path, infer_schema=False, empty_string_is_null=False)


def load_truth(path: str | Path) -> pl.DataFrame:
    """Read ``truth.csv``: the :data:`~models.schema.TRUTH_SCHEMA` columns as text, extras kept.

    Raises
    ------
    InputError
        The file is missing or lacks a truth column.
    """
    truth = _read_text_csv(Path(path), "truth file")
    _require(truth, TRUTH_SCHEMA, f"truth file {path}")
    return truth


def evaluate_files(out_dir: str | Path, truth_path: str | Path, bank_path: str | Path | None = None) -> EvaluationReport:
    """Evaluate ``out_dir/matches.csv`` (from ``recon match --out DIR``) against a truth file.

    Parameters
    ----------
    out_dir
        The directory ``recon match`` wrote into.
    truth_path
        ``truth.csv``.
    bank_path
        The bank CSV that was matched; its distinct ``id`` values are the denominator of auto
        coverage (default: the ids named in truth or matches).
    """
    matches_path = Path(out_dir) / "matches.csv"
    if not matches_path.is_file():
        raise InputError(f"no matches.csv in {out_dir}: run `recon match --out {out_dir}` first")
    matches = _read_text_csv(matches_path, "matches file")
    bank_ids = None
    if bank_path is not None:
        bank_ids = pl.read_csv(bank_path, columns=["id"], infer_schema=False)["id"]
    return evaluate(matches, load_truth(truth_path), bank_ids=bank_ids)
