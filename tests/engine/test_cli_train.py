"""``recon train`` (engine CLI): train on one generated month, match another with the learned
scorer, and fail in one line on a bad model file or a truth file that does not fit.

Training runs the real command in a subprocess, as a user would; matching and the failures
call :func:`engine.cli.main` in the process (the same code, quicker).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.generate import generate, save
from engine import api, cli

ROOT = Path(__file__).resolve().parents[2]


def run_recon(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *map(str, args)], capture_output=True, text=True,
                          encoding="utf-8", cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    """Two small generated months (other seeds), and a model trained on the first by the CLI."""
    root = tmp_path_factory.mktemp("train")
    train = save(generate(1500, seed=1), root / "train")
    test = save(generate(1500, seed=2), root / "test")
    model = root / "model.json"
    trained = run_recon("train", "--bank", train["bank"], "--ledger", train["ledger"], "--truth", train["truth"],
                        "--out", model, "--seed", "3")
    rules = root / "learned.toml"
    rules.write_text('name = "learned"\n[scoring]\nscorer = "learned"\nmodel = "model.json"\n', encoding="utf-8")
    return {"root": root, "train": train, "test": test, "model": model, "trained": trained, "rules": rules}


def test_train_writes_the_model_and_prints_the_summary(months):
    trained = months["trained"]
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr == ""
    out = trained.stdout
    assert out.startswith("recon train: rule set 'default'")
    for words in ("pairs used:", "positive)", "held-out Brier score: learned", "rule set",
                  "reliability on the held-out pairs", "0.97-0.99", "0.99-1", f"model written to {months['model']}"):
        assert words in out
    document = json.loads(months["model"].read_text(encoding="utf-8"))
    assert document["format"] == "recon-learned-scorer"
    assert document["training"]["truth"] == "truth.csv"
    assert document["training"]["seed"] == 3
    assert document["training"]["positives"] > 1000


def test_match_with_the_learned_scorer(months, tmp_path, capsys):
    test = months["test"]
    out = tmp_path / "out"
    assert cli.main(["match", "--bank", str(test["bank"]), "--ledger", str(test["ledger"]), "--fx", str(test["fx"]),
                     "--rules", str(months["rules"]), "--out", str(out)]) == 0
    assert "rule set 'learned'" in capsys.readouterr().out and (out / "matches.csv").is_file()
    # the run really used the model: the same through the API, where the outcome says so
    result = api.match(bank=test["bank"], ledger=test["ledger"], fx=test["fx"], rules=months["rules"])
    assert result.outcome.scorer_kind == "learned"
    report = api.evaluate(result, test["truth"])
    # seen when written (seeds 1 -> 2): recall 99.6%, auto error 0.0-0.1%; rule set 99.9% / 0%
    assert report.recall > 0.98
    assert report.auto_error_rate < 0.005


def _one_line_error(capsys, argv) -> str:
    assert cli.main(argv) == cli.EXIT_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    # the stage log lines of a run off a terminal aside, one line: the error
    lines = [line for line in captured.err.strip().splitlines() if " recon: stage " not in line]
    assert len(lines) == 1 and lines[0].startswith("recon: error: "), captured.err
    return lines[0]


def test_match_with_a_corrupt_model_fails_in_one_line(months, tmp_path, capsys):
    model = tmp_path / "model.json"
    text = months["model"].read_text(encoding="utf-8")
    at = text.index('"intercept": ') + len('"intercept": ')
    digit = next(i for i in range(at, len(text)) if text[i].isdigit() and text[i] != "3")
    model.write_text(text[:digit] + "3" + text[digit + 1:], encoding="utf-8")
    rules = tmp_path / "rules.toml"
    rules.write_text('[scoring]\nscorer = "learned"\nmodel = "model.json"\n', encoding="utf-8")
    test = months["test"]
    argv = ["match", "--bank", str(test["bank"]), "--ledger", str(test["ledger"]), "--rules", str(rules),
            "--out", str(tmp_path / "out"), "--quiet"]
    line = _one_line_error(capsys, argv)
    assert f"model file {model}" in line and "checksum does not match" in line and "recon train" in line

    model.unlink()
    line = _one_line_error(capsys, argv)
    assert f"model file {model}: not found" in line


def test_train_with_a_truth_file_of_other_lines_fails_in_one_line(months, tmp_path, capsys):
    truth = tmp_path / "truth.csv"
    truth.write_text("group_id,match_type,bank_ids,ledger_ids\nT1,one_to_one,NOBODY,NOTHING\n", encoding="utf-8")
    train = months["train"]
    line = _one_line_error(capsys, ["train", "--bank", str(train["bank"]), "--ledger", str(train["ledger"]),
                                    "--truth", str(truth), "--out", str(tmp_path / "model.json")])
    assert "no match among" in line and "truth file" in line
    assert not (tmp_path / "model.json").exists()


def test_train_without_a_truth_file_fails_in_one_line(months, tmp_path, capsys):
    train = months["train"]
    line = _one_line_error(capsys, ["train", "--bank", str(train["bank"]), "--ledger", str(train["ledger"]),
                                    "--truth", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "m.json")])
    assert "truth file not found" in line
