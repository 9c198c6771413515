"""The benchmark runner: commands per generated month, the recon-vs-baseline table, RESULTS.md.

The end-to-end tests stand the (fast) baseline in for ``recon match`` so that they exercise the
runner, not the engine.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import benchmarks.run as run
from engine.evaluate import evaluate


def _report(truth_types=("one_to_one", "payout"), adjustments=True):
    truth = pl.DataFrame({
        "group_id": ["T1", "T2"], "match_type": list(truth_types), "bank_ids": ["B1", "B2"],
        "ledger_ids": ["I1", "S1;S2"], "adjustments": ["[]", '[{"cause":"processor_fee","amount":"-1.00"}]'],
    })
    matches = pl.DataFrame({"match_type": ["one_to_one"], "status": ["auto"], "bank_ids": ["B1"], "ledger_ids": ["I1"],
                            **({"adjustments": [""]} if adjustments else {})})
    return evaluate(matches, truth)


def test_recon_gets_fx_and_processor_files_when_the_month_has_them(tmp_path):
    paths = {name: tmp_path / f"{name}.csv" for name in ("bank", "ledger", "truth")}
    plain = run.recon_command(paths, tmp_path / "out")
    assert "--fx" not in plain and "--processor" not in plain
    full = run.recon_command({**paths, "fx": tmp_path / "fx.csv", "stripe": tmp_path / "stripe_payouts.csv"},
                             tmp_path / "out", rules="r.toml")
    assert full[full.index("--fx") + 1].endswith("fx.csv")
    assert full[full.index("--processor") + 1].endswith("stripe_payouts.csv")
    assert full[-2:] == ["--rules", "r.toml"] and full[2:4] == ["engine.cli", "match"]
    assert run.baseline_command(paths, tmp_path / "b")[2] == "benchmarks.baseline"


def test_the_table_shows_recon_and_the_baseline_side_by_side():
    result = run.SizeResult(size=10_000, seed=0, bank_lines=10_000, ledger_lines=13_500, generate_seconds=1.2,
                            wall_seconds=6.1, peak_rss_bytes=300 * 2**20, report=_report(),
                            baseline=run.SystemResult(wall_seconds=0.4, peak_rss_bytes=90 * 2**20,
                                                      report=_report(adjustments=False)))
    failed = run.SizeResult(size=20_000, seed=0, status="exit 2: recon: error: bad | file")
    table = run.results_table([result, failed]).splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:3] == ["size", "system", "bank lines"]
    assert {"recall one_to_one", "recall payout", "auto error", "auto coverage", "adj ok"} <= set(header)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
    assert [r[1] for r in rows] == ["recon", "baseline", "recon"]
    recon, baseline, broken = (dict(zip(header, r, strict=True)) for r in rows)
    assert (recon["recall"], recon["recall payout"], recon["adj ok"]) == ("50.00%", "0.00%", "100.00%")
    assert (baseline["gen s"], baseline["wall s"], baseline["adj ok"]) == ("", "0.4", "n/a")
    assert broken["status"] == "exit 2: recon: error: bad / file" and broken["recall"] == "n/a"


def test_a_section_names_the_mix_and_both_commands():
    root = str(run.ROOT)
    result = run.SizeResult(size=100, seed=0, mix="full", report=_report(),
                            command=["/usr/bin/python3", "-m", "engine.cli", "match", "--bank", f"{root}/x/bank.csv"],
                            baseline=run.SystemResult(command=["/usr/bin/python3", "-m", "benchmarks.baseline"]))
    text = run.section([result], ["--sizes", "100"], machine=["- a machine"])
    assert "- a machine" in text and "Command: `python -m benchmarks.run --sizes 100`" in text
    assert "Case mix: `full`" in text
    assert "Each size runs: `python3 -m engine.cli match --bank x/bank.csv`" in text
    assert "Baseline: `python3 -m benchmarks.baseline`" in text


@pytest.fixture
def fast_recon(monkeypatch):
    """The baseline stands in for recon match."""
    monkeypatch.setattr(run, "recon_command", lambda paths, out, rules=None: run.baseline_command(paths, out))


def test_run_size_generates_matches_scores_and_cleans_up(fast_recon, tmp_path):
    result = run.run_size(800, seed=1, rules=None, keep=False, timeout=120, data_dir=tmp_path)
    assert result.status == "ok" and result.baseline.status == "ok"
    assert result.bank_lines == 800 and result.ledger_lines > 800 and result.mix == "full"
    assert result.report.truth_by_type.keys() == {"one_to_one", "one_to_many", "many_to_one", "payout"}
    assert result.report.recall == pytest.approx(result.baseline.report.recall)  # the same program twice
    assert result.wall_seconds > 0 and result.peak_rss_bytes > 0
    assert not any(tmp_path.iterdir())  # nothing kept


def test_a_failing_matcher_is_reported_with_its_error_line(monkeypatch, tmp_path):
    monkeypatch.setattr(run, "recon_command",
                        lambda paths, out, rules=None: ["python3", "-c", "import sys; sys.exit('recon: error: no luck')"])
    result = run.run_size(300, seed=1, rules=None, keep=True, timeout=60, data_dir=tmp_path, mix="foundation",
                          baseline=False)
    assert result.status == "exit 1: recon: error: no luck" and result.report is None and result.baseline is None
    kept = tmp_path / "bank300-seed1-foundation"
    assert {p.name for p in kept.iterdir()} >= {"bank.csv", "ledger.csv", "truth.csv", "recon.log"}
    assert not (kept / "fx.csv").exists()


def test_main_appends_a_section_under_the_header(fast_recon, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run, "DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(run, "run_size", _run_size_in(tmp_path / "data"))
    results = tmp_path / "RESULTS.md"
    assert run.main(["--sizes", "400", "--mix", "foundation", "--results", str(results)]) == 0
    text = results.read_text(encoding="utf-8")
    assert text.startswith("# Benchmark results") and "| system |" in text
    assert "| 400 | recon |" in text and "| 400 | baseline |" in text and "Case mix: `foundation`" in text
    assert "| 400 | recon |" in capsys.readouterr().out


def _run_size_in(data_dir: Path):
    original = run.run_size

    def run_size(*args, **kwargs):
        kwargs["data_dir"] = data_dir
        return original(*args, **kwargs)

    return run_size
