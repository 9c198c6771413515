"""Progress of a run: a line per stage in the logs, bars on request, the heartbeat of a long stage."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import progress as progress_module
from engine.progress import Progress

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]
STAGES = ("bank: read and prepare", "ledger: read and prepare", "candidate pairs", "pair evidence",
          "rules scorer", "scoring pairs", "group candidates", "assignment", "proposals",
          "writing outputs and workspace")


def _match(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "match", "--bank", str(DATA / "hk_bank.csv"),
         "--ledger", str(DATA / "hk_ledger.csv"), "--out", str(tmp_path / "out"), *extra],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=300,
    )


def test_a_run_off_a_terminal_logs_every_stage_start_and_end_with_memory(tmp_path):
    run = _match(tmp_path)
    assert run.returncode == 0, run.stderr
    for stage in STAGES:
        assert f"stage {stage}: started (memory " in run.stderr, stage
        assert f"stage {stage}: done in " in run.stderr, stage
    # the summary stays on stdout, the progress on stderr
    assert "stage " not in run.stdout and "recon match: run " in run.stdout


def test_quiet_and_none_print_no_progress(tmp_path):
    for flags in (["--quiet"], ["--progress", "none"]):
        run = _match(tmp_path, *flags)
        assert run.returncode == 0, run.stderr
        assert "stage " not in run.stderr and "memory" not in run.stderr


def test_bars_show_each_stage_with_its_elapsed_time(tmp_path):
    run = _match(tmp_path, "--progress", "bars")
    assert run.returncode == 0, run.stderr
    screen = run.stderr.replace("\r", "\n")
    for stage in STAGES:
        assert f"{stage}: 00:" in screen, stage
    assert "recon: stage" not in run.stderr  # bars instead of log lines


def test_a_long_stage_logs_a_heartbeat_and_the_time_it_took(monkeypatch, caplog):
    monkeypatch.setattr(progress_module, "HEARTBEAT_SECONDS", 0.0)
    monkeypatch.setattr(progress_module, "_REFRESH_SECONDS", 0.05)
    caplog.set_level(logging.INFO, logger="recon")
    progress = Progress(bars=False)
    with progress.stage("slow stage"):
        time.sleep(0.3)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("stage slow stage: running for ") for m in messages), messages
    assert messages[-1].startswith("stage slow stage: done in 0.")
    assert progress.stages["slow stage"] == pytest.approx(0.3, abs=0.25)
    assert progress.peak_rss > 10_000_000  # a Python process holds well over 10 MB
