"""``recon writeback`` and ``recon status``: write accepted matches back to a target, and see
where a workspace stands; thin calls into :mod:`engine.api`.

Exit status of ``recon writeback``: 0 when every pending item reached the target (or nothing
was pending), :data:`EXIT_NOT_WRITTEN` (3) when some items were not written (refused,
conflicting, failed, or the target stopped answering): they are listed with their reasons, stay
pending and are tried again by the next ``recon writeback``; 2 when the write-back could not
start (no such workspace, an unknown target, the workspace in use).
"""

from __future__ import annotations

import json
import logging
import sys

__all__ = ["register", "EXIT_NOT_WRITTEN"]

#: ``recon writeback``'s exit status when some items were not written
EXIT_NOT_WRITTEN = 3


def register(sub) -> dict:
    """Add ``writeback`` and ``status`` to ``sub`` (the ``recon`` sub-parsers); returns their handlers."""
    w = sub.add_parser(
        "writeback", help="write accepted matches (and reversals of undone ones) back to a target",
        description="Write what TARGET is owed: the status of every accepted match's lines, its adjustment "
                    "journal, and reversing entries for matches undone after write-back. Each item is written "
                    "once per target: a second run writes nothing new. Exit status 0: all written; 3: some "
                    "items not written (listed; tried again next time); 2: could not start.")
    w.add_argument("--workspace", required=True, metavar="FILE", help="the workspace (DuckDB file)")
    w.add_argument("--to", required=True, metavar="TARGET",
                   help="dir:PATH (status.csv, journal.csv), postgresql://...?table=T&id=COL&status=COL"
                        "&match_id=COL&journal=T2, duckdb:///PATH.duckdb?..., xero+https://HOST")
    w.add_argument("--dry-run", action="store_true", help="list what would be written; write nothing")
    w.add_argument("--batch-size", type=int, metavar="N",
                   help="items a batch (default: [writeback] batch_size of the rule set, 2000)")
    w.add_argument("--rules", metavar="FILE",
                   help="rule set whose accounts the journals use (default: the workspace's latest run's)")
    w.add_argument("--progress", choices=("auto", "bars", "log", "none"), default="auto",
                   help="progress on stderr: a bar (bars), a log line per batch (log); auto: a bar on a "
                        "terminal, nothing otherwise")
    w.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    s = sub.add_parser("status", help="counts of matches by state, pending write-back per target, last errors")
    s.add_argument("--workspace", required=True, metavar="FILE", help="the workspace (DuckDB file)")
    s.add_argument("--json", action="store_true",
                   help="print JSON: the six state counts (proposed, accepted, rejected, written, reversed, "
                        "failed) at the top level, then pending_writeback and last_errors")
    s.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return {"writeback": _cmd_writeback, "status": _cmd_status}


def _progress(mode: str):
    from engine.progress import Progress

    if mode == "auto":
        mode = "bars" if sys.stderr.isatty() else "none"
    if mode == "log":
        logger = logging.getLogger("recon")
        if not any(getattr(h, "_recon_writeback", False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler._recon_writeback = True
            handler.setFormatter(logging.Formatter("%(asctime)s recon: %(message)s", "%H:%M:%S"))
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return Progress(bars=mode == "bars")


def _cmd_writeback(args) -> int:
    from engine import api

    if args.batch_size is not None and args.batch_size < 1:
        from models.errors import InputError

        raise InputError(f"--batch-size {args.batch_size}: give a positive number of items")
    report = api.writeback(args.workspace, args.to, dry_run=args.dry_run, batch_size=args.batch_size,
                           rules=args.rules, progress=_progress(args.progress))
    print(report.summary())
    if report.dry_run or report.ok:
        return 0
    return EXIT_NOT_WRITTEN


def _cmd_status(args) -> int:
    from engine import api

    status = api.status(args.workspace)
    if args.json:
        out = {**status["states"], "pending_writeback": status["pending"], "last_errors": status["last_errors"]}
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    states = status["states"]
    lines = [f"recon status: {status['workspace']}", "  matches by state:"]
    lines += [f"    {state:<9} {n:>8}" for state, n in states.items()]
    if status["pending"]:
        lines.append("  pending write-back:")
        for target, owed in status["pending"].items():
            lines.append(f"    {target}: {owed['write']} to write, {owed['reverse']} to reverse")
    else:
        lines.append("  pending write-back: nothing written back yet (recon writeback --to TARGET)")
    if status["last_errors"]:
        lines.append("  last errors:")
        lines += [f"    {e['at']} {e['target']} {e['key']} {e['action']} {e['state']}: {e['reason']}"
                  for e in status["last_errors"]]
    print("\n".join(lines))
    return 0
