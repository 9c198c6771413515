from pathlib import Path

import pytest

from models.errors import RuleConfigError
from rules import default_rules, load_rules


def test_default_rules_load_and_make_sense():
    rules = default_rules()
    assert rules.name == "default"
    assert 0 < rules.thresholds.review <= rules.thresholds.auto <= 1
    assert rules.window_for("INVOICE").after >= 45  # invoices paid 45 days late must match
    assert rules.window_for("receipt").after <= 14
    assert rules.amount.minor("HKD") == (20000, 1, 50, 1000000)  # HKD 200, 2%, at most HKD 10,000
    assert rules.amount.minor("JPY")[0] == 200  # no minor unit: 200 yen


def test_bad_file_lists_every_problem(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text(
        '[thresholds]\nauto = 1.5\nreview = "x"\n[amount]\ntolerance_abs = "-3"\n[weights]\nprior = -8\nnmae = 3\n',
        encoding="utf-8",
    )
    with pytest.raises(RuleConfigError) as err:
        load_rules(path)
    problems = err.value.problems
    assert len(problems) == 4, problems
    text = str(err.value)
    assert "thresholds.auto" in text and "thresholds.review" in text
    assert "amount.tolerance_abs" in text and "weights.nmae" in text
    assert str(path) in text


def test_not_toml_and_missing_file(tmp_path: Path):
    path = tmp_path / "r.toml"
    path.write_text("[thresholds\nauto=", encoding="utf-8")
    with pytest.raises(RuleConfigError, match="not valid TOML"):
        load_rules(path)
    with pytest.raises(RuleConfigError, match="file not found"):
        load_rules(tmp_path / "missing.toml")


def test_with_changes_validates_again():
    rules = default_rules()
    assert rules.with_changes(thresholds={"auto": 0.99}).thresholds.auto == 0.99
    with pytest.raises(RuleConfigError, match="review must be <= thresholds.auto"):
        rules.with_changes(thresholds={"auto": 0.4, "review": 0.6})


def test_partial_file_keeps_defaults(tmp_path: Path):
    path = tmp_path / "r.toml"
    path.write_text('name = "strict"\n[thresholds]\nauto = 0.99\n', encoding="utf-8")
    rules = load_rules(path)
    assert rules.name == "strict" and rules.thresholds.auto == 0.99
    assert rules.thresholds.review == default_rules().thresholds.review


def test_partial_file_inherits_builtin_windows(tmp_path: Path):
    path = tmp_path / "late_payers.toml"
    path.write_text("[dates.by_type]\ninvoice = { before = 14, after = 200 }\n", encoding="utf-8")
    rules = load_rules(path)
    assert rules.name == "late_payers"
    assert rules.window_for("invoice").after == 200
    assert rules.window_for("receipt") == default_rules().window_for("receipt")
