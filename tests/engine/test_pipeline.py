"""End-to-end behaviour of the match run (engine) through ``engine.api.match``.

The inputs in ``tests/engine/data`` are a small hand-written Hong Kong SME month; every expected
pair below follows from reading those two files:

- B01 <-> L01  FPS CR, 陳大文, quotes INV-2026-00101, invoice paid 45 days after it was raised
- B02 <-> L02  CHQ DEP 金港貿易有限公司, cash-book receipt one day earlier
- B03 <-> L03, B04 <-> L04  two customers pay HKD 3,200.00 the same day: the name decides
- B05 -> L05 or L06  金港貿易有限公司 pays one of two identical invoices: too close to call
- B06 -> L07  quotes INV-2026-00170, a transposition of L07's INV-2026-00107, HKD 30.00 short,
               no name: weak evidence, for review only
- B07  delivered twice by the bank feed (same id), matches cash-book receipt L08
- B08  HKD 100.125 (three decimals): rejected, never rounded
- B11 <-> L11  reference found, HKD 35.00 bank charges deducted (within tolerance)
- B09, B10 / L09, L10  nothing to match: unmatched with a reason
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

import engine.api as recon

DATA = Path(__file__).parent / "data"
BANK = DATA / "hk_bank.csv"
LEDGER = DATA / "hk_ledger.csv"
BANK_NO_ID = DATA / "hk_bank_noid.csv"

CLEAR_PAIRS = {
    "B01": "L01",  # invoice paid 45 days later, reference in the bank text
    "B02": "L02",  # cash-book receipt, one day apart
    "B03": "L03",  # same amount as B04: WONG SIU MING
    "B04": "L04",  # same amount as B03: LEE KA YAN
    "B07": "L08",  # the bank line delivered twice
    "B11": "L11",  # bank charges deducted
}


@pytest.fixture(scope="module")
def result() -> recon.MatchResult:
    return recon.match(bank=BANK, ledger=LEDGER)


def _pairs(proposals: pl.DataFrame) -> dict[str, str]:
    return dict(proposals.select("bank_ids", "ledger_ids").iter_rows())


def _row(proposals: pl.DataFrame, bank_id: str) -> dict:
    rows = proposals.filter(pl.col("bank_ids") == bank_id).to_dicts()
    assert len(rows) == 1, f"expected one proposal for {bank_id}, got {rows}"
    return rows[0]


def _reversed_copy(src: Path, dst: Path) -> Path:
    header, *rows = src.read_text(encoding="utf-8").splitlines()
    dst.write_text("\n".join([header, *reversed(rows)]) + "\n", encoding="utf-8")
    return dst


# --------------------------------------------------------------------------------------------
# which pairs, which status
# --------------------------------------------------------------------------------------------


def test_proposes_exactly_the_right_pairs(result):
    pairs = _pairs(result.proposals)
    ambiguous = pairs.pop("B05")
    assert pairs.pop("B06") == "L07"  # weak, for review (below)
    assert pairs == CLEAR_PAIRS
    assert ambiguous in {"L05", "L06"}
    assert result.proposals["match_type"].unique().to_list() == ["one_to_one"]


@pytest.mark.parametrize("bank_id", sorted(CLEAR_PAIRS))
def test_clear_pairs_are_auto(result, bank_id):
    row = _row(result.proposals, bank_id)
    assert row["ledger_ids"] == CLEAR_PAIRS[bank_id]
    assert row["status"] == "auto"
    assert row["runner_up"] == ""


@pytest.mark.parametrize(
    ("bank_id", "payer", "ledger_id"),
    [("B03", "WONG SIU MING", "L03"), ("B04", "LEE KA YAN", "L04")],
)
def test_two_customers_paying_the_same_amount_are_told_apart_by_name(result, bank_id, payer, ledger_id):
    row = _row(result.proposals, bank_id)
    assert row["ledger_ids"] == ledger_id
    assert row["bank_amount"] == "3200.00"
    assert "same name" in row["explanation"]
    assert payer.lower() in row["explanation"].lower()


def test_customer_paying_one_of_two_identical_invoices_goes_to_review_naming_the_other(result):
    row = _row(result.proposals, "B05")
    other = {"L05": "L06", "L06": "L05"}[row["ledger_ids"]]
    assert row["status"] == "review"
    assert other in row["runner_up"]
    assert other in row["explanation"]
    assert "too close to call" in row["explanation"]
    # the invoice not chosen is left open, and says which line took its payment
    reason = result.unmatched_ledger.filter(pl.col("id") == other)["reason"].item()
    assert "B05" in reason and row["ledger_ids"] in reason


def test_transposed_reference_is_weak_evidence_for_review_only(result):
    """B06 quotes INV-2026-00170 for L07's INV-2026-00107, amount 30.00 short, no payer name:
    a degraded reference is graded evidence (not a contradiction), enough with a round bank
    charge and no other item near the amount for a reviewer to look, never for an auto match."""
    row = _row(result.proposals, "B06")
    assert (row["ledger_ids"], row["status"]) == ("L07", "review")
    assert "one transposition away from INV-2026-00107 (weak)" in row["explanation"]
    assert row["confidence"] < recon.default_rules().thresholds.auto


def test_a_stricter_review_threshold_leaves_the_weak_pair_unmatched_with_its_reason():
    stricter = recon.default_rules().with_changes(thresholds={"review": 0.6})
    result = recon.match(bank=BANK, ledger=LEDGER, rules=stricter)
    assert "B06" not in _pairs(result.proposals)
    for frame, line_id, other in ((result.unmatched_bank, "B06", "L07"), (result.unmatched_ledger, "L07", "B06")):
        reason = frame.filter(pl.col("id") == line_id)["reason"].item()
        assert other in reason and "below the review threshold" in reason


def test_rejected_three_decimal_amount_is_not_matched(result):
    assert "B08" not in result.bank.frame["id"].to_list()
    assert "B08" not in _pairs(result.proposals)


# --------------------------------------------------------------------------------------------
# what a reviewer reads: explanation, confidence, amounts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bank_id", "phrases"),
    [
        ("B01", ["reference INV-2026-00101 found", "amount equal", "45 days after"]),
        ("B11", ["reference INV-2026-00111 found", "35.00 less than ledger", "16 days after"]),
        ("B07", ["amount equal", "陳大文", "same day"]),
    ],
)
def test_explanation_names_the_evidence(result, bank_id, phrases):
    explanation = _row(result.proposals, bank_id)["explanation"]
    for phrase in phrases:
        assert phrase in explanation


def test_explanation_says_one_day_in_the_singular(result):
    explanation = _row(result.proposals, "B02")["explanation"]
    assert "1 day after the ledger date" in explanation


def test_confidence_is_a_probability(result):
    for frame in (result.proposals, result.candidates):
        conf = frame["confidence"]
        assert conf.null_count() == 0
        assert ((conf >= 0) & (conf <= 1)).all()


def test_difference_is_bank_minus_ledger_exactly(result):
    for row in result.proposals.iter_rows(named=True):
        assert Decimal(row["difference"]) == Decimal(row["bank_amount"]) - Decimal(row["ledger_amount"])
    row = _row(result.proposals, "B11")
    assert (row["bank_amount"], row["ledger_amount"], row["difference"]) == ("7765.00", "7800.00", "-35.00")
    assert row["currency"] == "HKD"


# --------------------------------------------------------------------------------------------
# stable ids
# --------------------------------------------------------------------------------------------


def test_match_id_is_stable_across_runs(result):
    again = recon.match(bank=BANK, ledger=LEDGER)
    assert again.proposals.select("match_id", "bank_ids", "ledger_ids").equals(
        result.proposals.select("match_id", "bank_ids", "ledger_ids")
    )
    assert result.proposals["match_id"].is_unique().all()


def test_match_id_of_clear_pairs_does_not_depend_on_row_order(result, tmp_path):
    shuffled = recon.match(
        bank=_reversed_copy(BANK, tmp_path / "bank.csv"),
        ledger=_reversed_copy(LEDGER, tmp_path / "ledger.csv"),
    )
    cols = ["match_id", "bank_ids", "ledger_ids", "status", "confidence", "explanation"]
    clear = pl.col("bank_ids").is_in(list(CLEAR_PAIRS))
    assert shuffled.proposals.filter(clear).select(cols).sort("match_id").equals(
        result.proposals.filter(clear).select(cols).sort("match_id")
    )


def test_ambiguous_proposal_does_not_depend_on_row_order(result, tmp_path):
    shuffled = recon.match(
        bank=_reversed_copy(BANK, tmp_path / "bank.csv"),
        ledger=_reversed_copy(LEDGER, tmp_path / "ledger.csv"),
    )
    assert _row(shuffled.proposals, "B05")["match_id"] == _row(result.proposals, "B05")["match_id"]


# --------------------------------------------------------------------------------------------
# unmatched, rejects, duplicates, counts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "line_id", "words"),
    [
        ("bank", "B09", ["no ledger item"]),
        ("bank", "B10", ["no ledger item"]),
        ("ledger", "L06", ["B05", "better overall fit"]),
        ("ledger", "L09", ["no bank line"]),
        ("ledger", "L10", ["no bank line"]),
    ],
)
def test_unmatched_lines_carry_a_readable_reason(result, side, line_id, words):
    frame = result.unmatched_bank if side == "bank" else result.unmatched_ledger
    reason = frame.filter(pl.col("id") == line_id)["reason"].item()
    for word in words:
        assert word in reason


def test_every_line_is_matched_or_unmatched_exactly_once(result):
    proposed_bank = result.proposals["bank_ids"].to_list()
    proposed_ledger = result.proposals["ledger_ids"].to_list()
    assert sorted(proposed_bank + result.unmatched_bank["id"].to_list()) == sorted(result.bank.frame["id"])
    assert sorted(proposed_ledger + result.unmatched_ledger["id"].to_list()) == sorted(result.ledger.frame["id"])
    assert result.unmatched_bank["reason"].str.len_chars().min() > 20
    assert result.unmatched_ledger["reason"].str.len_chars().min() > 20


def test_rows_read_equal_loaded_plus_rejected_per_file(result):
    by_side = {s.side: s for s in result.stats}
    assert (by_side["bank"].rows_read, by_side["bank"].loaded, by_side["bank"].rejected) == (12, 11, 1)
    assert (by_side["ledger"].rows_read, by_side["ledger"].loaded, by_side["ledger"].rejected) == (11, 11, 0)
    for s in result.stats:
        assert s.rows_read == s.loaded + s.rejected


def test_three_decimal_hkd_amount_is_rejected_at_its_line(result):
    assert result.rejects.height == 1
    reject = result.rejects.row(0, named=True)
    assert Path(reject["source_file"]) == BANK
    assert reject["line"] == 10  # header is line 1
    assert reject["column"] == "amount"
    assert "3 decimals" in reject["reason"] and "HKD" in reject["reason"]
    assert reject["raw"] == "B08,2026-03-20,100.125,HKD,CHQ DEP SMALL CHANGE,,,HSBC-HKD-001"


def test_bank_line_delivered_twice_is_loaded_once_matched_once_and_listed(result):
    assert result.bank.frame["id"].to_list().count("B07") == 1
    assert result.proposals["bank_ids"].to_list().count("B07") == 1
    dup = result.duplicates.filter(pl.col("id") == "B07").row(0, named=True)
    assert (dup["side"], dup["line"], dup["first_line"], dup["same_content"]) == ("bank", 9, 8, True)


def test_same_file_given_twice_yields_each_line_once(result):
    twice = recon.match(bank=[BANK, BANK], ledger=[LEDGER, LEDGER])
    assert twice.bank.frame["id"].is_unique().all()
    assert sorted(twice.bank.frame["id"]) == sorted(result.bank.frame["id"])
    assert sorted(twice.ledger.frame["id"]) == sorted(result.ledger.frame["id"])
    assert _pairs(twice.proposals) == _pairs(result.proposals)
    # every line of the second copy is a duplicate; its bad row is reported once
    assert twice.duplicates.filter(pl.col("side") == "bank").height == 1 + 11
    assert twice.duplicates.filter(pl.col("side") == "ledger").height == 11
    assert twice.rejects.height == 1


def test_bank_file_without_id_column_gets_stable_ids(result):
    first = recon.match(bank=BANK_NO_ID, ledger=LEDGER)
    again = recon.match(bank=[BANK_NO_ID, BANK_NO_ID], ledger=LEDGER)
    ids = first.bank.frame["id"].to_list()
    assert len(ids) == 3 and len(set(ids)) == 3  # two identical cash deposits stay two lines
    assert again.bank.frame["id"].to_list() == ids
    assert again.duplicates.height == 3
    # the id-less FPS line still finds its invoice
    paid = first.bank.frame.filter(pl.col("amount_minor") == 1_250_000)["id"].item()
    assert _pairs(first.proposals) == {paid: "L01"}


# --------------------------------------------------------------------------------------------
# rule sets
# --------------------------------------------------------------------------------------------


def test_stricter_auto_threshold_moves_auto_to_review_without_changing_pairs(result):
    stricter = recon.default_rules().with_changes(thresholds={"auto": 0.999})
    strict = recon.match(bank=BANK, ledger=LEDGER, rules=stricter)
    assert _pairs(strict.proposals) == _pairs(result.proposals)
    assert strict.proposals["match_id"].sort().equals(result.proposals["match_id"].sort())
    status = dict(strict.proposals.select("bank_ids", "status").iter_rows())
    assert status["B01"] == "auto"  # reference + amount + name: confidence 1.0
    assert status["B11"] == "auto"  # reference + name, short by a round bank charge
    # B07's 980.00 is the only item with that amount: 0.999 passes even the stricter threshold
    for bank_id in ("B02", "B03", "B04"):
        assert status[bank_id] == "review"
        assert "below auto threshold 0.999" in _row(strict.proposals, bank_id)["explanation"]
    assert stricter.thresholds.auto == 0.999
    assert recon.default_rules().thresholds.auto != 0.999  # the default is left alone


def test_match_ids_are_the_sha1_short_ids_of_the_sorted_member_ids():
    # ids a user may look up later: the same members give the same id in any order, and the id
    # is models.ids.short_id of "b:" + bank ids + "|l:" + ledger ids (names byte-exact, CJK too)
    import hashlib

    from engine.pipeline import match_id_expr

    frame = pl.DataFrame({
        "bank": [["B2", "B1"], ["陳大文-01"], ["B9"]],
        "ledger": [["INV-2", "INV-10"], ["金港貿易有限公司/7"], ["x" * 5000]],
    })
    ids = frame.select(match_id_expr(pl.col("bank"), pl.col("ledger")).alias("id"))["id"].to_list()
    keys = ["b:B1\x1fB2|l:INV-10\x1fINV-2", "b:陳大文-01|l:金港貿易有限公司/7", "b:B9|l:" + "x" * 5000]
    assert ids == ["M-" + hashlib.sha1(k.encode("utf-8")).hexdigest()[:16] for k in keys]
