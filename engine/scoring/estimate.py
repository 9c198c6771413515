"""Weights estimated from the run's own data (engine stage 3, scoring; ``scorer = "estimated"``).

The comparison levels are treated as a Fellegi-Sunter model, as Splink does:

- **u** (how often a level happens between unrelated lines) from random bank x ledger pairs of
  the same currency and sign (``scoring.estimation.random_pairs`` of them, drawn with the
  seed), measured exactly as candidates are;
- **m** (how often it happens between true matches) by expectation-maximisation over the
  candidate pairs, started from the rule-set scorer's posteriors, whose first estimate stays a
  prior worth ``prior_strength`` matches (so a level the month barely uses keeps about its
  prior share); each pair's posterior is scaled so that no bank line and no ledger item
  expects more than one match;
- **term frequencies**: an exact amount is weighed by how many ledger items have it (an exact
  3,800.00 in a ledger of 3,800.00 retainers is weak; a unique 28,808.15 is strong), and the
  same name by how many items the party has;
- the **prior** is the expected share of true matches among all same-currency, same-sign pairs.

A level's estimated weight is ``log2(m / u)``; it keeps the sign of its rule-set weight (a level
the rule set counts against a match never counts for one, and the reverse) and never counts
more against a match than the rule set's weight (see :func:`_bounded`); the context levels (the
only candidate, oldest first) keep the rule set's weights. EM runs on the distinct
level patterns (a few thousand at most), so it takes milliseconds whatever the month's size.
When it does not converge, or lands somewhere degenerate, the run falls back to the rule set's
weights and says why (:attr:`EstimatedScorer.warnings`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from engine.candidates.tolerance import tolerance_expr
from engine.scoring.evidence import PairEvidence, measure_pairs, receivable_counts
from engine.scoring.levels import COMPARISONS, comparisons_for
from engine.scoring.scorers import RulesScorer, competing_penalty, weights_frame
from rules.model import RuleSet

__all__ = ["ESTIMATED_COMPARISONS", "Estimate", "EstimatedScorer", "estimate_scorer", "random_pairs"]

#: the comparisons whose weights are estimated (the candidate context is not a property of a
#: pair of lines, so random pairs cannot give its u)
ESTIMATED_COMPARISONS = ("reference", "amount", "name", "date", "window")
#: no estimated weight goes beyond this many bits either way
MAX_BITS = 30.0
#: amount codes of random pairs whose amounts differ by more than the tolerance (no level)
_BEYOND = 255


@dataclass
class Estimate:
    """What the estimation found (probabilities per level, by code)."""

    converged: bool
    iterations: int
    candidate_match_share: float
    expected_matches: float
    population: int
    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]
    warnings: list[str] = field(default_factory=list)
    u_candidates: dict[str, np.ndarray] = field(default_factory=dict)
    #: log2 odds of a match before any evidence, among the candidates
    prior: float = 0.0


def _groups(bank: pl.DataFrame, ledger: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """Dense (currency, sign) group ids of the bank lines and ledger items, and how many."""
    key = [pl.col("currency"), pl.col("amount_minor").sign().alias("sign")]
    both = pl.concat([bank.select(key), ledger.select(key)])
    ids = both.select(pl.struct("currency", "sign").rank("dense")).to_series().to_numpy().astype(np.int64) - 1
    return ids[: bank.height], ids[bank.height:], int(ids.max()) + 1 if len(ids) else 0


def random_pairs(bank: pl.DataFrame, ledger: pl.DataFrame, n: int, seed: int) -> tuple[pl.DataFrame, int]:
    """``n`` bank x ledger pairs drawn uniformly from all pairs of the same currency and sign
    (deterministic for ``seed``), and how many such pairs there are."""
    bank_group, ledger_group, n_groups = _groups(bank, ledger)
    ledger_size = np.bincount(ledger_group, minlength=n_groups)
    population = int((np.bincount(bank_group, minlength=n_groups) * ledger_size).sum())
    empty = pl.DataFrame(schema={"bank_idx": pl.UInt32, "ledger_idx": pl.UInt32, "via": pl.UInt8})
    if population == 0 or n <= 0:
        return empty, population
    rng = np.random.default_rng(seed)
    # a bank line is drawn in proportion to the ledger items it could pair with, then one of them
    weight = ledger_size[bank_group].astype(np.float64)
    bank_rows = rng.choice(bank.height, size=n, p=weight / weight.sum())
    order = np.argsort(ledger_group, kind="stable")
    start = np.r_[0, np.cumsum(ledger_size)[:-1]]
    group = bank_group[bank_rows]
    offset = (rng.random(n) * ledger_size[group]).astype(np.int64)
    ledger_rows = order[start[group] + offset]
    pairs = pl.DataFrame({"bank_idx": bank_rows.astype(np.uint32), "ledger_idx": ledger_rows.astype(np.uint32),
                          "via": np.zeros(n, dtype=np.uint8)})
    return pairs, population


def _random_codes(bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> tuple[dict[str, np.ndarray], int, int]:
    """Level codes of the random pairs (amounts beyond the tolerance coded ``_BEYOND``), how many
    pairs were drawn, and the population they were drawn from."""
    est = rules.scoring.estimation
    pairs, population = random_pairs(bank, ledger, est.random_pairs, est.seed)
    comparisons = comparisons_for(rules)
    if pairs.height == 0:
        return {name: np.empty(0, dtype=np.uint8) for name in ESTIMATED_COMPARISONS}, 0, population
    evidence = measure_pairs(pairs, bank, ledger, rules)
    codes = {name: comparisons[name].codes(evidence) for name in ESTIMATED_COMPARISONS}
    currencies = sorted(set(bank["currency"].unique().to_list()) | set(ledger["currency"].unique().to_list()))
    tolerance = ledger.select(
        tolerance_expr(pl.col("amount_minor"), pl.col("currency"), rules, currencies)
    ).to_series().to_numpy()[evidence.ledger_rows]
    codes["amount"] = np.where(np.abs(evidence.amount_diff) <= tolerance, codes["amount"], _BEYOND).astype(np.uint8)
    return codes, pairs.height, population


def _u_probabilities(codes: dict[str, np.ndarray], drawn: int, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """Share of random pairs at each level, kept off zero (half a pair's worth when none was
    drawn: a level never seen among ``drawn`` pairs is rarer than ``1 / drawn``)."""
    u = {}
    for name, size in sizes.items():
        counts = np.bincount(codes[name][codes[name] != _BEYOND], minlength=size)[:size].astype(np.float64)
        u[name] = np.maximum(counts, 0.5) / max(drawn, 1)
    return u


def _em_sample(bank_rows: np.ndarray, n_bank: int, limit: int, seed: int) -> tuple[np.ndarray, float]:
    """The candidate pairs EM reads: all of them up to ``limit``, else every pair of a seeded
    random sample of bank lines holding about ``limit`` pairs; and by how much to scale the
    expected matches found among them back to all the candidates."""
    if len(bank_rows) <= limit:
        return np.arange(len(bank_rows)), 1.0
    share = limit / len(bank_rows)
    keep_line = np.random.default_rng(seed).random(n_bank) < share
    sample = np.flatnonzero(keep_line[bank_rows])
    lines_with_pairs = np.unique(bank_rows)
    sampled_lines = max(int(keep_line[lines_with_pairs].sum()), 1)
    return sample, len(lines_with_pairs) / sampled_lines


def _patterns(codes: dict[str, np.ndarray], sizes: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct combinations of estimated levels among the candidates: (pattern of each
    pair, each pattern's levels as a ``patterns x comparisons`` array, how many pairs)."""
    combined = np.zeros(len(next(iter(codes.values()))), dtype=np.int64)
    for name in ESTIMATED_COMPARISONS:
        combined = combined * sizes[name] + codes[name]
    distinct, inverse, counts = np.unique(combined, return_inverse=True, return_counts=True)
    levels = np.zeros((len(distinct), len(ESTIMATED_COMPARISONS)), dtype=np.int64)
    rest = distinct.copy()
    for j, name in reversed(list(enumerate(ESTIMATED_COMPARISONS))):
        levels[:, j] = rest % sizes[name]
        rest //= sizes[name]
    return inverse, levels, counts.astype(np.float64)


def _maximise(levels: np.ndarray, counts: np.ndarray, matched: np.ndarray, sizes: list[int],
              prior_m: list[np.ndarray] | None, strength: float) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """M-step on patterns (``matched``: the expected matches among each pattern's pairs): m and
    u per comparison (candidate frame) and the share of matches among the candidates."""
    unmatched = np.maximum(counts - matched, 0.0)
    m, u = [], []
    for j, size in enumerate(sizes):
        m_counts = np.bincount(levels[:, j], weights=matched, minlength=size)
        if prior_m is not None:
            m_counts = m_counts + strength * prior_m[j]
        u_counts = np.bincount(levels[:, j], weights=unmatched, minlength=size) + 1e-9
        m.append(np.maximum(m_counts / m_counts.sum(), 1e-9))
        u.append(np.maximum(u_counts / u_counts.sum(), 1e-9))
    share = float(matched.sum() / counts.sum())
    return m, u, share


def _expect(levels: np.ndarray, m: list[np.ndarray], u: list[np.ndarray], share: float) -> np.ndarray:
    """E-step on patterns: the posterior of a match given the levels."""
    share = min(max(share, 1e-9), 1 - 1e-9)
    log_odds = np.full(len(levels), math.log(share / (1 - share)))
    for j in range(levels.shape[1]):
        log_odds += np.log(m[j][levels[:, j]]) - np.log(u[j][levels[:, j]])
    return 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))


def _one_to_one(posterior: np.ndarray, inverse: np.ndarray, bank_rows: np.ndarray, ledger_rows: np.ndarray,
                n_patterns: int) -> np.ndarray:
    """Expected matches per pattern once each pair's posterior is scaled so that no bank line
    and no ledger item expects more than one match (a line is paid once): without this, EM
    lets the matches' share grow past the number of lines wherever levels are not independent."""
    pair = posterior[inverse]
    per_bank = np.bincount(bank_rows, weights=pair)
    per_ledger = np.bincount(ledger_rows, weights=pair)
    scale = np.minimum(1.0 / np.maximum(per_bank[bank_rows], 1.0), 1.0 / np.maximum(per_ledger[ledger_rows], 1.0))
    return np.bincount(inverse, weights=pair * scale, minlength=n_patterns)


def estimate(evidence: PairEvidence, codes: dict[str, np.ndarray], bank: pl.DataFrame, ledger: pl.DataFrame,
             rules: RuleSet) -> Estimate:
    """Estimate every level's weight from the run's data (see the module docstring).

    Parameters
    ----------
    evidence, codes
        The candidate pairs' measurements and level codes (:func:`engine.scoring.score.level_codes`).
    bank, ledger
        The prepared frames (random pairs are drawn from them).
    rules
        The rule set: the weights are the priors, ``scoring.estimation`` the settings.
    """
    est = rules.scoring.estimation
    comparisons = comparisons_for(rules)
    sizes = {name: len(comparisons[name].levels) for name in ESTIMATED_COMPARISONS}
    random_codes, drawn, population = _random_codes(bank, ledger, rules)
    u_random = _u_probabilities(random_codes, drawn, sizes)
    warnings: list[str] = []

    # EM over the candidates' level patterns, from the rule set's posteriors; on a month with
    # more candidates than ``em_pairs``, on all the candidates of a seeded sample of bank lines
    # (the m probabilities are shares, which a sample of lines estimates as well; the expected
    # matches are scaled back)
    start = confidence_from_bits(RulesScorer(rules).score(evidence, codes))
    bank_rows, ledger_rows = evidence.bank_rows, evidence.ledger_rows
    sample, scale = _em_sample(bank_rows, bank.height, est.em_pairs, est.seed)
    em_codes = {n: codes[n][sample] for n in ESTIMATED_COMPARISONS}
    start, bank_rows, ledger_rows = start[sample], bank_rows[sample], ledger_rows[sample]
    inverse, levels, counts = _patterns(em_codes, sizes)
    posterior = np.bincount(inverse, weights=start, minlength=len(counts)) / counts
    matched = _one_to_one(posterior, inverse, bank_rows, ledger_rows, len(counts))
    size_list = [sizes[n] for n in ESTIMATED_COMPARISONS]
    prior_m, _, _ = _maximise(levels, counts, matched, size_list, None, 0.0)
    m, u_candidates, share = _maximise(levels, counts, matched, size_list, prior_m, est.prior_strength)
    converged, iteration = False, 0
    for iteration in range(1, est.max_iterations + 1):  # noqa: B007 - the count is reported
        posterior = _expect(levels, m, u_candidates, share)
        matched = _one_to_one(posterior, inverse, bank_rows, ledger_rows, len(counts))
        new_m, u_candidates, share = _maximise(levels, counts, matched, size_list, prior_m, est.prior_strength)
        change = max(float(np.abs(a - b).max()) for a, b in zip(new_m, m, strict=True))
        m = new_m
        if change < est.tolerance:
            converged = True
            break
    expected = float(matched.sum()) * scale
    if not converged:
        warnings.append(f"weight estimation did not converge in {est.max_iterations} rounds: "
                        "the rule set's weights are used (raise scoring.estimation.max_iterations)")
    elif not (0.0 < share < 1.0) or expected < 1.0:
        converged = False
        warnings.append("weight estimation found no matches among the candidates: the rule set's weights are used")
    elif drawn == 0:
        converged = False
        warnings.append("no random pairs to estimate u probabilities from: the rule set's weights are used")

    m_by_name = dict(zip(ESTIMATED_COMPARISONS, m, strict=True))
    u_by_name = dict(zip(ESTIMATED_COMPARISONS, u_candidates, strict=True))
    weights = {name: _bounded(np.log2(m_by_name[name] / u_random[name]), comparisons[name].weights)
               for name in ESTIMATED_COMPARISONS}
    share_all = min(max(expected / max(population, 1), 1e-12), 0.5)
    prior = math.log2(share_all / (1.0 - share_all))
    return Estimate(converged, iteration, share, expected, population, m_by_name, u_random, weights,
                    warnings=warnings, u_candidates=u_by_name, prior=prior)


def _bounded(bits: np.ndarray, rule_bits: np.ndarray) -> np.ndarray:
    """Estimated weights within ``MAX_BITS``, never of the other sign than the rule set's, and
    never more against a match than the rule set says (a level the rule set calls no evidence,
    such as no reference or no name, never counts against one): EM learns how often true
    matches land in a level from the matches it already believes in, so a level that weak true
    matches reach (no reference quoted, an unrelated payer name on a standing order, a date
    outside the window) would otherwise count as near-proof against them."""
    bits = np.clip(bits, -MAX_BITS, MAX_BITS)
    return np.where(rule_bits >= 0, np.maximum(bits, 0.0), np.clip(bits, rule_bits, 0.0))


def confidence_from_bits(score: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp2(-np.clip(score, -1000, 1000)))


class EstimatedScorer:
    """Scores with the estimated weights (:func:`estimate`), exact amounts and names weighed by
    their term frequencies, and the rule set's weights for the candidate context."""

    kind = "estimated"

    def __init__(self, rules: RuleSet, result: Estimate, bank: pl.DataFrame, ledger: pl.DataFrame) -> None:
        self.rules = rules
        self.estimate = result
        self.comparisons = comparisons_for(rules)
        self.warnings = list(result.warnings)
        # term frequencies: per ledger item, the share of the items it could pair with (same
        # currency and sign) that have its amount / its name
        _, ledger_group, n_groups = _groups(bank, ledger)
        group_size = np.bincount(ledger_group, minlength=n_groups)[ledger_group].astype(np.float64)
        amount_count = receivable_counts(ledger)
        name_count = ledger.select(pl.len().over(pl.col("name_key").fill_null(""))).to_series().to_numpy()
        self._amount_share = amount_count / group_size
        self._name_share = name_count / group_size

    @property
    def converged(self) -> bool:
        return self.estimate.converged

    def score(self, evidence: PairEvidence, codes: dict[str, np.ndarray]) -> np.ndarray:
        if not self.estimate.converged:
            return RulesScorer(self.rules).score(evidence, codes)
        result = self.estimate
        total = np.full(evidence.size, result.prior)
        for name in ESTIMATED_COMPARISONS:
            total += result.weights[name][codes[name]]
        total += self.term_frequency_bits(evidence, codes)
        total += self.comparisons["uniqueness"].weights[codes["uniqueness"]]
        return total + competing_penalty(evidence, self.rules)

    def term_frequency_bits(self, evidence: PairEvidence, codes: dict[str, np.ndarray]) -> np.ndarray:
        """Bits to add to an exact amount's and the same name's level weight for how common
        the value is, as Splink's term-frequency adjustment: the level is worth
        ``log2(m / tf)``, where ``tf`` is the share of the item's possible partners (same
        currency and sign) that have its amount, or its name (never below how often random
        pairs have the same name: a name is compared fuzzily)."""
        result = self.estimate
        bits = np.zeros(evidence.size)
        rows = evidence.ledger_rows
        for comparison, key, share in (("amount", "exact", self._amount_share),
                                       ("name", self.rules.weights.name[0].label, self._name_share)):
            code = self.comparisons[comparison].index(key)
            at = codes[comparison] == code
            floor = result.u[comparison][code] if comparison == "name" else 0.0
            worth = np.log2(result.m[comparison][code] / np.maximum(share[rows[at]], max(floor, 1e-12)))
            bits[at] += np.clip(worth, 0.0, MAX_BITS) - result.weights[comparison][code]
        return bits

    def weights(self) -> pl.DataFrame:
        result = self.estimate
        used = {name: comp.weights for name, comp in self.comparisons.items()}
        prior = self.rules.weights.prior
        if result.converged:
            used.update(result.weights)
            prior = result.prior
        frame = weights_frame(self.comparisons, used, prior, self.rules.weights.prior)
        def column(table: dict[str, np.ndarray]) -> pl.Series:
            values = [None] + [float(v) if c in table else None
                               for c in COMPARISONS for v in table.get(c, self.comparisons[c].weights)]
            return pl.Series(values, dtype=pl.Float64)

        return frame.with_columns(m=column(result.m), u_candidates=column(result.u_candidates),
                                  u_random=column(result.u))


def estimate_scorer(evidence: PairEvidence, codes: dict[str, np.ndarray], bank: pl.DataFrame,
                    ledger: pl.DataFrame, rules: RuleSet) -> EstimatedScorer:
    """:func:`estimate` and the scorer using it."""
    return EstimatedScorer(rules, estimate(evidence, codes, bank, ledger, rules), bank, ledger)
