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


def _calibrated_report():
    truth = pl.DataFrame({
        "group_id": ["T1", "T2"], "match_type": ["one_to_one", "many_to_one"], "bank_ids": ["B1", "B2;B3"],
        "ledger_ids": ["I1", "I2"], "adjustments": ["[]", "[]"], "open_amount": ["", ""],
    })
    matches = pl.DataFrame({
        "match_type": ["one_to_one", "one_to_one", "one_to_one"], "status": ["auto", "auto", "review"],
        "confidence": [0.99, 0.95, 0.6], "bank_ids": ["B1", "B2", "B4"], "ledger_ids": ["I1", "I2", "I1"],
        "adjustments": ["", "short_payment -10.00", ""], "currency": ["HKD"] * 3,
    })
    return evaluate(matches, truth, bank_ids=pl.Series(["B1", "B2", "B3", "B4"]))


def test_the_table_has_profile_wrong_books_truth_coverage_and_brier():
    plain = run.SizeResult(size=10_000, seed=1, report=_calibrated_report())
    held = run.SizeResult(size=10_000, seed=1, profile="holdout", report=_calibrated_report())
    table = run.results_table([plain, held]).splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert {"profile", "wrong books", "wrong books one_to_one", "wrong books many_to_one", "auto cov truth",
            "brier"} <= set(header)
    rows = [dict(zip(header, [c.strip() for c in line.strip("|").split("|")], strict=True)) for line in table[2:]]
    assert [r["profile"] for r in rows] == ["none", "holdout"]
    recon = rows[0]
    # B2 -> I2 is a strict part of T2 that writes 10.00 off: wrong books; B1 -> I1 is right
    assert (recon["auto error"], recon["wrong books"], recon["wrong books one_to_one"]) == ("50.00%", "50.00%", "50.00%")
    assert recon["auto cov truth"] == "33.33%"  # B1 of B1, B2, B3
    assert recon["brier"] == f"{(0.01 ** 2 + 0.95 ** 2 + 0.6 ** 2) / 3:.4f}"


def test_a_section_with_the_holdout_says_so_and_shows_reliability():
    results = [run.SizeResult(size=100, seed=0, report=_calibrated_report()),
               run.SizeResult(size=100, seed=0, profile="holdout", report=_calibrated_report())]
    text = run.section(results, ["--sizes", "100", "--holdout"], machine=["- a machine"])
    assert "Profiles: `holdout` (see `benchmarks/profiles.py`); `holdout` is held out: never tune on it" in text
    assert "Reliability, 100 bank lines, profile `holdout`" in text
    assert "| 0.99-1 | 1 | 0.9900 | 100.00% |" in text


def test_main_with_holdout_runs_both_profiles(fast_recon, tmp_path, monkeypatch):
    monkeypatch.setattr(run, "run_size", _run_size_in(tmp_path / "data"))
    results = tmp_path / "RESULTS.md"
    assert run.main(["--sizes", "300", "--no-baseline", "--holdout", "--results", str(results)]) == 0
    text = results.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| 300 | recon |")]
    assert len(rows) == 2 and "| none |" in rows[0] and "| holdout |" in rows[1]
    with pytest.raises(SystemExit):
        run.main(["--sizes", "300", "--profile", "bogus", "--no-append"])


def test_decidable_recall_leaves_out_groups_with_an_undecidable_bank_line(tmp_path):
    (tmp_path / "truth.csv").write_text(
        "group_id,match_type,bank_ids,ledger_ids\n"
        "T1,one_to_one,B1,L1\n"
        "T2,one_to_one,B2,L2\n"
        "T3,many_to_one,B3;B4,L3\n"  # B4 undecidable: the group is left out
        "T4,one_to_one,B5,L5\n",
        encoding="utf-8",
    )
    (tmp_path / "labels.csv").write_text(
        "side,id,case,variant,delivered\n"
        "bank,B1,invoice_receipt,full,1\n"
        "bank,B2,invoice_receipt,full|name=initials,1\n"
        "bank,B3,instalment,full,1\n"
        "bank,B4,instalment,none|ref=absent:undecidable,1\n"
        "bank,B5,invoice_receipt,full,1\n"
        "ledger,L1,invoice_receipt,full:undecidable,1\n",  # only bank lines decide
        encoding="utf-8",
    )
    # B1/L1 found; B2 paired with the wrong item; B4;B3 found (written in another order) but
    # left out; B5 not proposed
    (tmp_path / "matches.csv").write_text(
        "match_id,bank_ids,ledger_ids\nM1,B1,L1\nM2,B2,L9\nM3,B4;B3,L3\n", encoding="utf-8"
    )
    got = run.decidable_recall(tmp_path / "matches.csv", tmp_path / "truth.csv", tmp_path / "labels.csv")
    assert got == pytest.approx(1 / 3)
