"""The workspace under stress (workspace store): one process at a time with a clear message, the
output folder following the committed run (``manifest.json``), and ``kill -9`` at several
points of ``recon match`` and ``recon accept`` leaving a workspace the rerun completes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import api
from tests.engine.workspace.helpers import BANK, LEDGER, query

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "benchmarks" / "sample"


def recon_process(*args, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """``recon ARGS`` in a subprocess, as a user runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *map(str, args)], cwd=ROOT, text=True, encoding="utf-8",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}, **kwargs,
    )


def hold_lock(ws: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the workspace for ``seconds`` (it says 'held' once it does)."""
    code = ("import sys, time\nfrom engine.workspace.lock import workspace_lock\n"
            "with workspace_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(float(sys.argv[2]))\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(ws), str(seconds)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == "held"
    return holder


def assert_consistent(ws: Path, out: Path | None = None) -> None:
    """Every stored proposal and match line belongs to a recorded run, decision seqs are unique,
    and the output folder's manifest (when there is one) names a recorded run whose files it
    describes."""
    runs = {run_id for (run_id,) in query(ws, "SELECT run_id FROM runs")}
    for table in ("proposals", "match_lines"):
        assert query(ws, f"SELECT DISTINCT run_id FROM {table} WHERE run_id NOT IN (SELECT run_id FROM runs)") == []
    assert query(ws, "SELECT count(*) = count(DISTINCT seq) FROM decisions") == [(True,)]
    if out is not None and (out / "manifest.json").exists():
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["run_id"] in runs
        for name, facts in manifest["files"].items():
            with (out / name).open(encoding="utf-8", newline="") as handle:
                assert sum(1 for _ in csv.reader(handle)) - 1 == facts["rows"]
        matches = query(ws, "SELECT count(*) FROM proposals WHERE run_id = ?", [manifest["run_id"]])[0][0]
        assert manifest["files"]["matches.csv"]["rows"] == matches


# -- one process at a time --------------------------------------------------------------------------

def test_a_second_process_fails_with_the_holders_process_id(matched, recon, monkeypatch):
    monkeypatch.setenv("RECON_LOCK_WAIT", "0.3")
    holder = hold_lock(matched, 60)
    try:
        code, out, err = recon("accept", "--workspace", matched, "--all-auto")
        assert (code, out) == (2, "")
        assert err == (f"recon: error: workspace {matched} is in use by process {holder.pid} (waited 0.3 s); "
                       "try again when it has finished\n")
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (killed: the system released its lock): the workspace is usable
    assert recon("accept", "--workspace", matched, "--all-auto", "--by", "amy")[1] == "accepted 6 matches (by amy)\n"


def test_a_second_process_waits_for_a_short_holder(matched, recon, monkeypatch):
    monkeypatch.setenv("RECON_LOCK_WAIT", "10")
    holder = hold_lock(matched, 1.0)
    start = time.monotonic()
    code, out, err = recon("accept", "--workspace", matched, "--all-auto", "--by", "amy")
    assert (code, out) == (0, "accepted 6 matches (by amy)\n"), err
    assert time.monotonic() - start > 0.5  # it waited for the holder
    holder.wait()


def test_two_runs_started_together_run_one_after_the_other(matched):
    runs = [recon_process("match", "--workspace", matched, "--quiet", env={"RECON_LOCK_WAIT": "60"}) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in runs]
    assert results == [(0, ""), (0, "")]
    assert query(matched, "SELECT count(*) FROM runs WHERE mode = 'incremental'") == [(3,)]  # the fixture's + 2
    assert_consistent(matched)


# -- the output folder follows the workspace --------------------------------------------------------

def one_shot(recon, out: Path, ws: Path) -> tuple[int, str, str]:
    return recon("match", "--bank", BANK, "--ledger", LEDGER, "--out", out, "--workspace", ws, "--quiet")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_manifest_names_the_committed_run(tmp_path, recon):
    out, ws = tmp_path / "out", tmp_path / "books.duckdb"
    assert one_shot(recon, out, ws)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [manifest["run_id"]] == [r for (r,) in query(ws, "SELECT run_id FROM runs")]
    assert manifest["mode"] == "one-shot" and manifest["workspace"] == str(ws)
    assert manifest["files"]["matches.csv"]["rows"] == 8 and manifest["files"]["rejects.csv"]["rows"] == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "duplicates.csv", "manifest.json", "matches.csv", "rejects.csv", "unmatched_bank.csv", "unmatched_ledger.csv"]


@pytest.mark.parametrize("problem", ["locked", "not duckdb"])
def test_a_run_whose_workspace_cannot_be_opened_leaves_the_out_folder_untouched(tmp_path, recon, monkeypatch, problem):
    out, ws = tmp_path / "out", tmp_path / "books.duckdb"
    assert one_shot(recon, out, ws)[0] == 0
    before = snapshot(out)
    monkeypatch.setenv("RECON_LOCK_WAIT", "0.2")
    if problem == "locked":
        holder = hold_lock(ws, 60)
        expected = f"recon: error: workspace {ws} is in use by process {holder.pid}"
    else:
        ws = tmp_path / "notes.duckdb"
        ws.write_text("not a database\n", encoding="utf-8")
        expected = f"recon: error: {ws}: cannot open the DuckDB workspace"
    try:
        code, _, err = one_shot(recon, out, ws)
    finally:
        if problem == "locked":
            holder.kill()
            holder.wait()
    assert code == 2 and err.startswith(expected) and err.count("\n") == 1
    assert snapshot(out) == before  # same files, same bytes, no staging folder


def test_out_naming_an_existing_file_is_one_clear_line(tmp_path, recon):
    existing = tmp_path / "report.txt"
    existing.write_text("keep me\n", encoding="utf-8")
    code, out, err = one_shot(recon, existing, tmp_path / "books.duckdb")
    assert (code, out) == (2, "")
    assert err == f"recon: error: --out {existing} is a file, not a folder; name a folder for the run's outputs\n"
    assert existing.read_text(encoding="utf-8") == "keep me\n"
    assert not (tmp_path / "books.duckdb").exists()


# -- kill -9 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("point", ["match:before-record", "match:before-commit", "match:after-commit"])
def test_kill_during_match_then_the_rerun_completes(tmp_path, recon, point):
    """SIGKILL at an exact step of ``recon match`` (RECON_CRASH_AT: the process kills itself as
    ``kill -9`` would), after a first complete run into the same folder and workspace."""
    out, ws = tmp_path / "out", tmp_path / "books.duckdb"
    assert one_shot(recon, out, ws)[0] == 0
    first = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["run_id"]
    crashed = recon_process("match", "--bank", BANK, "--ledger", LEDGER, "--out", out, "--workspace", ws, "--quiet",
                            env={"RECON_CRASH_AT": point})
    assert crashed.wait(timeout=120) == -signal.SIGKILL
    committed = point == "match:after-commit"
    assert query(ws, "SELECT count(*) FROM runs")[0][0] == (2 if committed else 1)
    # the folder still holds the first run's files, and says so
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["run_id"] == first
    assert_consistent(ws, out)
    # the rerun completes and cleans up what the killed run staged
    assert one_shot(recon, out, ws)[0] == 0
    assert_consistent(ws, out)
    assert query(ws, "SELECT count(*) FROM runs")[0][0] == (3 if committed else 2)
    assert not [p for p in out.iterdir() if p.name.startswith(".recon-staging-")]


def test_kill_from_outside_during_an_incremental_match(tmp_path):
    """``kill -9`` from another process while ``recon match --workspace`` on the bundled sample
    month starts recording its run (the step at which the out folder used to get the new run's
    files while the workspace had no record of it)."""
    stage = "writing outputs and workspace"
    ws, out = tmp_path / "books.duckdb", tmp_path / "out"
    api.ingest(ws, bank=SAMPLE / "bank.csv", ledger=SAMPLE / "ledger.csv", processor=SAMPLE / "stripe_payouts.csv",
               fx=SAMPLE / "fx.csv")
    run = recon_process("match", "--workspace", ws, "--out", out, "--progress", "log")
    for line in run.stderr:
        if f"stage {stage}: started" in line:
            run.send_signal(signal.SIGKILL)
            break
    assert run.wait(timeout=120) == -signal.SIGKILL
    assert_consistent(ws, out)
    rerun = api.match_workspace(ws, out=out)
    assert_consistent(ws, out)
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["run_id"] == rerun.run_id
    assert rerun.counts()["auto"] > 1700


def test_kill_during_accept_records_nothing_and_the_rerun_accepts(matched, recon):
    crashed = recon_process("accept", "--workspace", matched, "--all-auto", "--by", "amy",
                            env={"RECON_CRASH_AT": "accept:before-commit"})
    assert crashed.wait(timeout=120) == -signal.SIGKILL
    assert query(matched, "SELECT count(*) FROM decisions") == [(0,)]
    assert_consistent(matched)
    assert recon("accept", "--workspace", matched, "--all-auto", "--by", "amy")[1] == "accepted 6 matches (by amy)\n"
    assert query(matched, "SELECT count(*), min(seq), max(seq) FROM decisions") == [(6, 1, 6)]
