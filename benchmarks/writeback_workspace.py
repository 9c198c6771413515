"""Write-back benchmark through the workspace: ``recon writeback`` of N accepted matches.

Stage: benchmarks (issue 12: "write-back of 100k accepted matches to PostgreSQL in under 60 s").
Where ``benchmarks/writeback.py`` times the SQL adapter alone on items built in Python, this one
times the whole of :func:`engine.workspace.writeback.writeback`: what is pending per target
(the decisions and ``writes`` tables), each batch's items built from the proposals, match lines
and ingested lines with their journals, the ``sending`` record, the adapter, and the results and
decisions recorded in one workspace transaction a batch.

The workspace is made through the store API: one run of N one-to-one proposals (bank ``B{i}``
pays ledger ``L{i}``; every tenth less a 15.00 bank charge, the payer named in Chinese on every
fourth), all accepted. Then, each timed on its own: the write-back to the target, the same again
(nothing pending), and after 1% of the matches are undone, the write-back of their reversals.
Targets: ``dir:`` (a temporary folder) and, with ``--postgres``, a throwaway PostgreSQL server
(:func:`tests.pg_server.throwaway_postgres`, ``fsync=off``, as the tests run it) holding the
ledger and bank tables.

Examples
--------
``python -m benchmarks.writeback_workspace --n 100000``
``python -m benchmarks.writeback_workspace --n 100000 --postgres``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.progress import rss_bytes  # noqa: E402
from engine.workspace.decisions import append_decisions  # noqa: E402
from engine.workspace.store import Workspace  # noqa: E402
from engine.workspace.writeback import writeback  # noqa: E402
from rules.model import default_rules  # noqa: E402

_PAYERS = ("陳大文", "金港貿易有限公司", "Lee Hoi Man", "Tsang Chun Kit")
RUN = "R-20260331T000000000000"


def make_workspace(path: Path, n: int) -> None:
    """A workspace of ``n`` accepted one-to-one matches (see the module docstring)."""
    i = pl.int_range(0, n, eager=True)
    ledger_minor = 10_000 + i % 50_000
    charged = i % 10 == 0
    bank_minor = pl.select(pl.when(charged).then(ledger_minor - 1500).otherwise(ledger_minor)).to_series()
    payer = pl.Series([_PAYERS[k % 4] for k in range(n)])
    day = pl.Series([date(2026, 3, 1) + timedelta(days=k % 28) for k in range(n)])
    ids = i.cast(pl.Utf8)
    bank = pl.DataFrame({"id": "B" + ids, "date": day, "amount_minor": bank_minor, "currency": "HKD",
                         "counterparty": payer, "reference": "L" + ids})
    ledger = pl.DataFrame({"id": "L" + ids, "date": day, "amount_minor": ledger_minor, "currency": "HKD",
                           "counterparty": payer, "reference": "L" + ids, "type": "invoice"})
    fmt = lambda minor: (minor // 100).cast(pl.Utf8) + "." + (minor % 100).cast(pl.Utf8).str.zfill(2)  # noqa: E731
    proposals = pl.DataFrame({
        "match_id": "M-" + ids, "match_type": "one_to_one", "status": "auto", "confidence": 0.99,
        "bank_ids": "B" + ids, "ledger_ids": "L" + ids,
        "bank_amount": pl.select(fmt(bank_minor)).to_series(), "ledger_amount": pl.select(fmt(ledger_minor)).to_series(),
        "difference": pl.select(pl.when(charged).then(pl.lit("-15.00")).otherwise(pl.lit("0.00"))).to_series(),
        "currency": "HKD", "explanation": "reference L" + ids,
        "adjustments": pl.select(pl.when(charged).then(pl.lit("bank_charge -15.00 (6800)")).otherwise(pl.lit(""))
                                 ).to_series(),
        "open_amount": ""})
    lines = pl.concat([
        pl.DataFrame({"match_id": "M-" + ids, "side": "bank", "id": "B" + ids, "amount_minor": bank_minor,
                      "currency": "HKD"}),
        pl.DataFrame({"match_id": "M-" + ids, "side": "ledger", "id": "L" + ids, "amount_minor": ledger_minor,
                      "currency": "HKD"})])
    rules = default_rules()
    with Workspace(path) as ws:
        ws.record_run(RUN, datetime.now(UTC), bank, ledger, proposals, lines,
                      pl.DataFrame(schema={"source_file": pl.Utf8, "line": pl.Int64, "column": pl.Utf8,
                                           "reason": pl.Utf8, "raw": pl.Utf8}),
                      rules.name, json.dumps(rules.to_toml_dict()), {}, {}, "", mode="incremental")
        append_decisions(ws.con, [{"by": "benchmark", "action": "accept", "match_id": m, "after_state": "accepted",
                                   "run_id": RUN} for m in proposals["match_id"].to_list()])
        ws.con.execute("CHECKPOINT")


def _postgres_books(url: str, path: Path) -> None:
    import psycopg

    with Workspace(path) as ws:
        ledger = ws.query("SELECT id, amount_minor FROM ledger_items")
        bank = ws.query("SELECT id, amount_minor FROM bank_lines")
    with psycopg.connect(url, autocommit=True) as con:
        for table, frame in (("ledger", ledger), ("bank", bank)):
            con.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, amount numeric(18, 2))")
            with con.cursor().copy(f"COPY {table} (id, amount) FROM STDIN") as copy:
                for line_id, minor in frame.iter_rows():
                    copy.write_row((line_id, f"{minor // 100}.{minor % 100:02d}"))


def _unmatch_one_percent(path: Path) -> int:
    with Workspace(path) as ws:
        ids = [m for (m,) in ws.con.execute(
            "SELECT match_id FROM decisions WHERE action = 'accept' AND seq % 100 = 0").fetchall()]
        append_decisions(ws.con, [{"by": "benchmark", "action": "unmatch", "match_id": m, "before_state": "written",
                                   "after_state": "reversed", "comment": "undone", "run_id": RUN} for m in ids])
    return len(ids)


def run(n: int, target: str, path: Path) -> dict:
    figures = {"n": n, "target": target.split("?")[0].split(":")[0]}
    for step in ("write", "write again"):
        start = time.perf_counter()
        report = writeback(path, target)
        figures[step] = round(time.perf_counter() - start, 2)
        assert report.ok, report.summary()
        if step == "write":
            assert report.written == n, report.summary()
        else:
            assert report.pending == 0
    undone = _unmatch_one_percent(path)
    start = time.perf_counter()
    report = writeback(path, target)
    figures["reverse 1%"] = round(time.perf_counter() - start, 2)
    assert report.ok and report.written == undone, report.summary()
    figures["peak RSS GB"] = round(rss_bytes() / 1e9, 2)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="accepted matches (default 100000)")
    parser.add_argument("--postgres", action="store_true", help="also write to a throwaway PostgreSQL server")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recon-writeback-") as tmp:
        folder = Path(tmp)
        template = folder / "template.duckdb"
        start = time.perf_counter()
        make_workspace(template, args.n)
        print(f"workspace of {args.n} accepted matches made in {time.perf_counter() - start:.1f} s")
        ws = folder / "files.duckdb"
        ws.write_bytes(template.read_bytes())
        print(run(args.n, f"dir:{folder / 'files'}", ws))
        if args.postgres:
            from tests.pg_server import throwaway_postgres

            with throwaway_postgres() as url:
                ws = folder / "pg.duckdb"
                ws.write_bytes(template.read_bytes())
                _postgres_books(url, ws)
                target = url.replace("?", "?table=ledger&id=id&amount=amount&bank_table=bank&bank_id=id"
                                          "&bank_amount=amount&", 1)
                print(run(args.n, target, ws))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
