"""Scoring proposals against truth: hand-computed figures for small, readable cases."""

from __future__ import annotations

import polars as pl
import pytest

from engine.evaluate import (
    EvaluationReport,
    canonical_ids,
    evaluate,
    evaluate_files,
    format_ratio,
    load_truth,
    parse_adjustments,
)
from models.errors import InputError

# truth used by most cases: four one-to-one groups and one one-to-many
TRUTH = [
    ("T1", "one_to_one", "B1", "INV-1"),
    ("T2", "one_to_one", "B2", "INV-2"),
    ("T3", "one_to_one", "B3", "INV-3"),
    ("T4", "one_to_many", "B4", "INV-4;INV-5"),
    ("T5", "one_to_one", "B5", "INV-6"),
]


def _truth(rows=TRUTH) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["group_id", "match_type", "bank_ids", "ledger_ids"], orient="row"
    )


def _matches(rows) -> pl.DataFrame:
    return pl.DataFrame(
        [(f"M{i}", "one_to_one", *row) for i, row in enumerate(rows, 1)],
        schema=["match_id", "match_type", "status", "bank_ids", "ledger_ids"], orient="row",
    )


# (name, match rows (status, bank_ids, ledger_ids), bank_ids universe, expected figures)
CASES = [
    (
        "correct auto, wrong auto, correct review, partial overlap, missing group",
        [
            ("auto", "B1", "INV-1"),  # correct
            ("auto", "B2", "INV-3"),  # wrong ledger item
            ("review", "B3", "INV-3"),  # correct, in review
            ("auto", "B4", "INV-4"),  # partial: INV-5 missing -> wrong
            # T2, T4, T5 never proposed exactly
        ],
        None,
        dict(proposed=4, auto=3, review=1, truth_groups=5, correct=2, correct_auto=1, found=2,
             precision=0.5, precision_by_status={"auto": 1 / 3, "review": 1.0},
             recall=0.4, recall_by_type={"one_to_one": 0.5, "one_to_many": 0.0},
             auto_error_rate=2 / 3, bank_lines=5, bank_lines_auto_correct=1, auto_coverage=0.2,
             bank_lines_in_truth=5),
    ),
    (
        "bank ids of the input widen the coverage denominator",
        [("auto", "B1", "INV-1"), ("auto", "B3", "INV-3")],
        ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B1"],
        dict(proposed=2, auto=2, correct=2, precision=1.0, auto_error_rate=0.0, bank_lines=10,
             bank_lines_auto_correct=2, auto_coverage=0.2, bank_lines_in_truth=5,
             auto_coverage_ceiling=0.5),
    ),
    (
        "id order, spaces and repeats inside a group do not matter",
        [("auto", " B4 ", "INV-5; INV-4;INV-5")],
        None,
        dict(proposed=1, correct=1, precision=1.0, recall=0.2,
             recall_by_type={"one_to_one": 0.0, "one_to_many": 1.0}),
    ),
    (
        "one id too many is wrong",
        [("auto", "B1", "INV-1;INV-2")],
        None,
        dict(proposed=1, correct=0, precision=0.0, recall=0.0, auto_error_rate=1.0,
             auto_coverage=0.0),
    ),
    (
        "unmatched rows and rows with an empty side propose nothing",
        [("auto", "B1", "INV-1"), ("unmatched", "B2", ""), ("review", "", "INV-6"), ("auto", None, None)],
        None,
        dict(proposed=1, auto=1, review=0, correct=1, ignored=3, precision=1.0),
    ),
    (
        "the same group proposed twice counts twice in precision, once in recall",
        [("auto", "B1", "INV-1"), ("review", "B1", "INV-1")],
        None,
        dict(proposed=2, correct=2, found=1, precision=1.0, recall=0.2, bank_lines_auto_correct=1),
    ),
    (
        "no proposals: ratios over nothing are None",
        [],
        None,
        dict(proposed=0, auto=0, precision=None, auto_error_rate=None, recall=0.0, auto_coverage=0.0),
    ),
]


@pytest.mark.parametrize(("matches", "bank_ids", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_evaluate_figures(matches, bank_ids, expected):
    report = evaluate(
        _matches(matches), _truth(), bank_ids=None if bank_ids is None else pl.Series(bank_ids)
    )
    for name, value in expected.items():
        got = getattr(report, name)
        if isinstance(value, dict):
            assert got == pytest.approx(value), name
        elif value is None:
            assert got is None, name
        else:
            assert got == pytest.approx(value), name


def test_report_frame_and_markdown_show_the_fractions():
    report = evaluate(_matches(CASES[0][1]), _truth())
    frame = report.to_frame()
    row = frame.filter((pl.col("metric") == "precision") & (pl.col("scope") == "status=auto")).row(0, named=True)
    assert (row["numerator"], row["denominator"]) == (1, 3)
    assert frame.filter(pl.col("metric") == "recall", pl.col("scope") == "match_type=one_to_many")["value"].item() == 0.0
    assert frame.filter(pl.col("scope") == "truth_groups")["numerator"].item() == 5
    text = str(report)
    assert "| precision | all | 50.00% | 2/4 |" in text
    assert "| auto_error_rate | status=auto | 66.67% | 2/3 |" in text
    assert report.to_dict()["recall_by_type"] == {"one_to_one": 0.5, "one_to_many": 0.0}


def test_an_empty_report_renders_na():
    report = EvaluationReport(proposed=0, auto=0, review=0, truth_groups=0, correct=0,
                              correct_auto=0, found=0, bank_lines=0, bank_lines_auto_correct=0)
    assert "n/a" in report.to_markdown()
    assert format_ratio(None) == "n/a" and format_ratio(0.98765) == "98.77%"


@pytest.mark.parametrize(
    ("raw", "key"),
    [("B2;B1", "B1;B2"), (" B1 ; B2 ", "B1;B2"), ("B1;B1", "B1"), ("", ""), (None, ""), ("B1;;B2;", "B1;B2")],
)
def test_canonical_ids(raw, key):
    assert canonical_ids(pl.DataFrame({"ids": [raw]}, schema={"ids": pl.Utf8}), "ids").to_list() == [key]


def test_missing_columns_are_all_named():
    with pytest.raises(InputError, match="status, ledger_ids"):
        evaluate(pl.DataFrame({"bank_ids": ["B1"]}), _truth())


def test_evaluate_files_reads_matches_truth_and_bank(tmp_path):
    _truth().write_csv(tmp_path / "truth.csv")
    _matches([("auto", "B1", "INV-1"), ("review", "B2", "INV-2")]).write_csv(tmp_path / "matches.csv")
    pl.DataFrame({"id": ["B1", "B2", "B3", "B4", "B5", "B6", "B6"], "amount": ["1.00"] * 7}).write_csv(tmp_path / "bank.csv")
    report = evaluate_files(tmp_path, tmp_path / "truth.csv", bank_path=tmp_path / "bank.csv")
    assert (report.correct, report.correct_auto, report.bank_lines) == (2, 1, 6)
    assert report.auto_coverage == pytest.approx(1 / 6)


def test_ids_keep_their_leading_zeros(tmp_path):
    _truth([("T1", "one_to_one", "000123", "00045")]).write_csv(tmp_path / "truth.csv")
    _matches([("auto", "000123", "00045")]).write_csv(tmp_path / "matches.csv")
    assert evaluate_files(tmp_path, tmp_path / "truth.csv").precision == 1.0


def test_file_problems_say_what_to_do(tmp_path):
    with pytest.raises(InputError, match="no matches.csv"):
        evaluate_files(tmp_path, tmp_path / "truth.csv")
    (tmp_path / "truth.csv").write_text("group_id,bank_ids\nT1,B1\n")
    with pytest.raises(InputError, match="match_type, ledger_ids"):
        load_truth(tmp_path / "truth.csv")


# ---------------------------------------------------------------------------------------------
# compound matches: adjustments and auto errors per claimed match type
# ---------------------------------------------------------------------------------------------
ADJUSTED_TRUTH = [
    ("T1", "one_to_one", "B1", "INV-1", "[]"),
    ("T2", "one_to_one", "B2", "INV-2", '[{"cause":"bank_charge","amount":"-50.00"}]'),
    ("T3", "payout", "B3", "SO-1;SO-2", '[{"cause":"processor_fee","amount":"-12.34"}]'),
    ("T4", "one_to_one", "B4", "INV-4", '[{"cause":"fx_difference","amount":"-20.00"},{"cause":"bank_charge","amount":"-100.00"}]'),
    ("T5", "one_to_one", "B5", "INV-5", '[{"cause":"short_payment","amount":"-5.00"}]'),
]


def _adjusted_matches(rows) -> pl.DataFrame:
    return pl.DataFrame(
        [(f"M{i}", *row) for i, row in enumerate(rows, 1)],
        schema=["match_id", "match_type", "status", "bank_ids", "ledger_ids", "currency", "adjustments"],
        orient="row",
    )


def test_adjustments_of_correct_groups_are_checked_by_total_and_by_cause():
    truth = pl.DataFrame(ADJUSTED_TRUTH, schema=["group_id", "match_type", "bank_ids", "ledger_ids", "adjustments"],
                         orient="row")
    matches = _adjusted_matches([
        ("one_to_one", "auto", "B1", "INV-1", "HKD", ""),  # none expected, none given: right
        ("one_to_one", "auto", "B2", "INV-2", "HKD", "bank_charge -50.00 (6910)"),  # text form: right
        ("payout", "auto", "B3", "SO-2;SO-1", "HKD", '[{"cause":"processor_fee","amount":"-12.30"}]'),  # wrong total
        ("one_to_one", "review", "B4", "INV-4", "HKD", '[{"cause":"fx_difference","amount":"-120.00"}]'),  # total only
        ("one_to_one", "auto", "B5", "INV-5", "HKD", '[{"type":"write_off","amount_minor":-500}]'),  # alias: right
        ("one_to_one", "auto", "B6", "INV-6", "HKD", '[{"cause":"bank_charge","amount":"-1.00"}]'),  # wrong group
    ])
    report = evaluate(matches, truth)
    assert (report.adjustments_checked, report.adjustments_total_ok, report.adjustments_causes_ok) == (5, 4, 3)
    assert report.adjustment_total_accuracy == pytest.approx(0.8)
    assert report.adjustment_cause_accuracy == pytest.approx(0.6)
    assert report.auto_error_rate_by_type == pytest.approx({"one_to_one": 0.25, "payout": 0.0})
    frame = report.to_frame()
    row = frame.filter(pl.col("metric") == "adjustment_total_accuracy").row(0, named=True)
    assert (row["numerator"], row["denominator"]) == (4, 5)
    assert "| auto_error_rate | match_type=one_to_one | 25.00% | 1/4 |" in report.to_markdown()


def test_without_adjustments_columns_nothing_is_checked():
    report = evaluate(_matches(CASES[0][1]), _truth())
    assert report.adjustments_checked == 0 and report.adjustment_total_accuracy is None
    assert not report.to_frame().filter(pl.col("metric").str.starts_with("adjustment")).height
    bare = _matches(CASES[0][1]).drop("match_type")
    assert evaluate(bare, _truth()).auto_error_rate_by_type == {}


@pytest.mark.parametrize(
    ("cell", "exponent", "expected"),
    [
        ('[{"cause":"processor_fee","amount":"-233.32"}]', 2, [("processor_fee", -23332)]),
        ('[{"cause":"FX Difference","amount":-1.5},{"kind":"fee","amount":"-2"}]', 2,
         [("fx_difference", -150), ("processor_fee", -200)]),
        ('{"bank_charge": "-100.00"}', 2, [("bank_charge", -10000)]),
        ("processor_fee -1,233.32; discount: -5", 2, [("processor_fee", -123332), ("short_payment", -500)]),
        ("bank_charge -100", 0, [("bank_charge", -100)]),
        ("", 2, []),
        ("[]", 2, []),
        (None, 2, []),
        ('[{"cause":"bank_charge","amount":"-1.005"}]', 2, None),  # more decimals than HKD has
        ("see notes", 2, None),
        ('[{"amount":"-1.00"}]', 2, None),  # no cause
    ],
)
def test_parse_adjustments(cell, exponent, expected):
    assert parse_adjustments(cell, exponent) == expected


# ---------------------------------------------------------------------------------------------
# wrong books, auto coverage of truth lines, calibration
# ---------------------------------------------------------------------------------------------
BOOKS_TRUTH = [
    ("T1", "one_to_one", "B1", "INV-1", "[]", ""),
    ("T2", "many_to_one", "B2;B3;B4", "INV-2", "[]", ""),  # three instalments settle INV-2
    ("T3", "many_to_one", "B5;B6", "INV-3", "[]", "400.00"),  # two instalments, 400.00 still open
    ("T4", "one_to_many", "B7", "INV-4;INV-5", "[]", ""),
    ("T5", "one_to_one", "B8", "INV-6", '[{"cause":"bank_charge","amount":"-50.00"}]', ""),
]


def _books_truth() -> pl.DataFrame:
    return pl.DataFrame(BOOKS_TRUTH, schema=["group_id", "match_type", "bank_ids", "ledger_ids", "adjustments",
                                             "open_amount"], orient="row")


def _books_matches(rows) -> pl.DataFrame:
    """rows: (match_type, status, confidence, bank_ids, ledger_ids, adjustments)."""
    return pl.DataFrame(
        [(f"M{i}", *row, "HKD") for i, row in enumerate(rows, 1)],
        schema=["match_id", "match_type", "status", "confidence", "bank_ids", "ledger_ids", "adjustments",
                "currency"], orient="row",
    )


# (name, proposal, wrong books?, exact-group correct?)
BOOKS_CASES = [
    ("the exact group", ("one_to_one", "auto", 0.99, "B1", "INV-1", ""), False, True),
    ("a pair across truth groups", ("one_to_one", "auto", 0.99, "B1", "INV-6", ""), True, False),
    ("a bank line in no truth group", ("one_to_one", "auto", 0.99, "B99", "INV-1", ""), True, False),
    ("a ledger item in no truth group", ("one_to_one", "auto", 0.99, "B1", "INV-99", ""), True, False),
    ("an instalment written off short", ("one_to_one", "auto", 0.99, "B2", "INV-2", "short_payment -700.00 (6900)"),
     True, False),
    ("an instalment left open", ("one_to_one", "auto", 0.99, "B5", "INV-3", ""), False, False),
    ("two instalments, the rest a discount", ("many_to_one", "auto", 0.99, "B2;B3", "INV-2",
                                              '[{"cause":"discount","amount":"-10.00"}]'), True, False),
    ("two instalments, the rest open", ("many_to_one", "auto", 0.99, "B2;B3", "INV-2", ""), False, False),
    ("part of a list, the rest as overpayment", ("one_to_one", "auto", 0.99, "B7", "INV-4", "overpayment 12.00"),
     True, False),
    ("part of a list, fx difference only", ("one_to_one", "auto", 0.99, "B7", "INV-4", "fx_difference -3.00"),
     False, False),
    ("the exact group with its bank charge", ("one_to_one", "auto", 0.99, "B8", "INV-6", "bank_charge -50.00"),
     False, True),
    ("a write-off in review is not booked", ("one_to_one", "review", 0.6, "B2", "INV-2", "write_off -700.00"),
     False, False),
]


@pytest.mark.parametrize(("proposal", "wrong", "correct"), [c[1:] for c in BOOKS_CASES], ids=[c[0] for c in BOOKS_CASES])
def test_wrong_books_one_proposal_at_a_time(proposal, wrong, correct):
    report = evaluate(_books_matches([proposal]), _books_truth())
    is_auto = proposal[1] == "auto"
    assert report.wrong_books_auto == int(wrong)
    assert report.correct == int(correct)
    if is_auto:
        assert report.auto_wrong_books_rate == float(wrong)
        assert report.auto_error_rate == float(not correct)  # the exact-group definition
    else:
        assert report.auto_wrong_books_rate is None


def test_wrong_books_per_type_in_the_frame_and_the_markdown():
    matches = _books_matches([c[1] for c in BOOKS_CASES])
    report = evaluate(matches, _books_truth())
    # auto one_to_one: exact, across, B99, INV-99, written off, left open, overpayment, fx, charge -> 5 of 9 wrong
    # auto many_to_one: discount (wrong), rest open (fine) -> 1 of 2
    assert report.auto_wrong_books_rate_by_type == pytest.approx({"one_to_one": 5 / 9, "many_to_one": 0.5})
    assert report.wrong_books_auto == 6 and report.auto == 11
    frame = report.to_frame()
    row = frame.filter((pl.col("metric") == "auto_wrong_books_rate") & (pl.col("scope") == "status=auto")).row(0, named=True)
    assert (row["numerator"], row["denominator"]) == (6, 11)
    text = report.to_markdown()
    assert "| auto_wrong_books_rate | status=auto | 54.55% | 6/11 |" in text
    assert "| auto_wrong_books_rate | match_type=many_to_one | 50.00% | 1/2 |" in text
    assert report.to_dict()["auto_wrong_books_rate"] == pytest.approx(6 / 11)


def test_auto_coverage_of_the_bank_lines_in_truth():
    matches = _books_matches([
        ("one_to_one", "auto", 0.99, "B1", "INV-1", ""),
        ("many_to_one", "auto", 0.99, "B2;B3;B4", "INV-2", ""),
        ("one_to_one", "review", 0.8, "B8", "INV-6", "bank_charge -50.00"),
    ])
    report = evaluate(matches, _books_truth(), bank_ids=pl.Series([f"B{i}" for i in range(1, 13)]))
    assert (report.bank_lines_auto_correct, report.bank_lines_in_truth, report.bank_lines) == (4, 8, 12)
    assert report.auto_coverage_truth == pytest.approx(0.5)
    assert report.auto_coverage == pytest.approx(4 / 12)
    assert "| auto_coverage_truth | truth_bank_lines | 50.00% | 4/8 |" in report.to_markdown()


def test_brier_score_and_reliability_by_hand():
    matches = _books_matches([
        ("one_to_one", "auto", 0.995, "B1", "INV-1", ""),  # right, bin 0.99-1
        ("one_to_one", "auto", 1.0, "B99", "INV-1", ""),  # wrong, bin 0.99-1 (closed at 1)
        ("one_to_one", "auto", 0.98, "B8", "INV-6", "bank_charge -50.00"),  # right, bin 0.97-0.99
        ("one_to_one", "review", 0.6, "B5", "INV-3", ""),  # wrong, bin 0.5-0.7
        ("one_to_one", "review", 0.4, "B7", "INV-4", ""),  # wrong, bin 0-0.5
        ("one_to_one", "review", None, "B6", "INV-3", ""),  # no confidence: not calibrated
    ])
    report = evaluate(matches, _books_truth())
    expected = ((0.995 - 1) ** 2 + 1.0 ** 2 + (0.98 - 1) ** 2 + 0.6 ** 2 + 0.4 ** 2) / 5
    assert report.calibrated == 5 and report.brier_score == pytest.approx(expected)
    bins = {b.label: b for b in report.reliability}
    assert list(bins) == ["0-0.5", "0.5-0.7", "0.7-0.9", "0.9-0.95", "0.95-0.97", "0.97-0.99", "0.99-1"]
    top = bins["0.99-1"]
    assert (top.proposals, top.correct) == (2, 1)
    assert top.mean_confidence == pytest.approx(0.9975) and top.share_correct == pytest.approx(0.5)
    assert (bins["0.97-0.99"].proposals, bins["0.97-0.99"].share_correct) == (1, 1.0)
    assert bins["0.7-0.9"].proposals == 0 and bins["0.7-0.9"].mean_confidence is None
    text = report.to_markdown()
    assert f"Brier score {expected:.4f}" in text
    assert "| 0.99-1 | 2 | 0.9975 | 50.00% |" in text
    frame = report.to_frame()
    assert frame.filter(pl.col("metric") == "brier_score")["value"].item() == pytest.approx(expected)
    assert frame.filter((pl.col("metric") == "reliability") & (pl.col("scope") == "confidence=0.5-0.7"))["value"].item() == 0.0


def test_without_confidence_there_is_no_calibration():
    report = evaluate(_matches(CASES[0][1]), _truth())
    assert report.calibrated == 0 and report.brier_score is None and report.reliability == ()
    assert "Brier" not in report.to_markdown()
    assert not report.to_frame().filter(pl.col("metric").is_in(["brier_score", "reliability"])).height
