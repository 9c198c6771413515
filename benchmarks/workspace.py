"""Workspace lifecycle benchmark: ingest, incremental match, review and decisions on one month.

Stage: benchmarks (issue 12, the workspace and decision store). A month is generated with
:mod:`benchmarks.generate` (or read from ``--month DIR``, e.g. ``benchmarks/sample``) and taken
through the lifecycle, each step timed on its own:

1. ``ingest``: bank, ledger, processor report and FX rates into a new workspace;
2. ``ingest again``: the same files (nothing added);
3. ``match``: the first incremental run (every line open);
4. ``review``: the proposals for review (all rows), then the first 20 of every state;
5. ``accept all auto``: one decision a proposed auto proposal;
6. ``match after accepts``: the second incremental run (only the lines left open);
7. ``unmatch``: one accepted match undone.

The counts are checked as it goes (nothing added twice, every auto proposal accepted, the second
run leaving the accepted lines alone).

Examples
--------
``python -m benchmarks.workspace --bank-lines 100000``
``python -m benchmarks.workspace --month benchmarks/sample``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(label: str, results: list, func):
    start = time.perf_counter()
    value = func()
    seconds = time.perf_counter() - start
    results.append((label, seconds))
    print(f"{label:<24} {seconds:7.1f} s", flush=True)
    return value


def run(month: Path, workdir: Path) -> list[tuple[str, float]]:
    """Take ``month`` through the lifecycle in a workspace under ``workdir``; returns the
    (step, seconds) of each step."""
    import engine.api as recon

    ws = workdir / "books.duckdb"
    files = {"bank": month / "bank.csv", "ledger": month / "ledger.csv"}
    if (month / "stripe_payouts.csv").exists():
        files["processor"] = month / "stripe_payouts.csv"
    if (month / "fx.csv").exists():
        files["fx"] = month / "fx.csv"
    results: list[tuple[str, float]] = []
    first = _timed("ingest", results, lambda: recon.ingest(ws, **files))
    again = _timed("ingest again", results, lambda: recon.ingest(ws, **files))
    assert sum(again.added.values()) == 0 and again.already["bank"] == first.added["bank"]
    run1 = _timed("match", results, lambda: recon.match_workspace(ws))
    counts = run1.counts()
    _timed("review (for review)", results, lambda: recon.review(ws, status="review"))
    _timed("review (20 rows)", results, lambda: recon.review(ws, state=None, limit=20))
    accepted = _timed("accept all auto", results, lambda: recon.accept(ws, all_auto=True, by="benchmark"))
    assert accepted.count == counts["auto"]
    run2 = _timed("match after accepts", results, lambda: recon.match_workspace(ws))
    assert run2.extra_inputs["taken_bank_lines"] == counts["bank_auto"]
    _timed("unmatch", results, lambda: recon.unmatch(ws, accepted.match_ids[0], reason="benchmark"))
    print(f"bank lines {first.added['bank']}, ledger items {first.added['ledger']}; first run "
          f"{counts['proposals']} proposals ({counts['auto']} auto); second run {run2.counts()['proposals']} "
          f"proposals over {run2.extra_inputs['open_bank_lines']} open bank lines; workspace "
          f"{ws.stat().st_size / 2**20:.0f} MB")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workspace", description=__doc__.split("\n")[0])
    parser.add_argument("--bank-lines", type=int, default=10_000, help="size of the generated month")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--month", type=Path, help="use this month (bank.csv, ledger.csv, ...) instead")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recon-workspace-bench-") as tmp:
        month = args.month
        if month is None:
            month = Path(tmp) / "month"
            subprocess.run([sys.executable, "-m", "benchmarks.generate", "--bank-lines", str(args.bank_lines),
                            "--seed", str(args.seed), "--out", str(month)], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)
        run(month, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
