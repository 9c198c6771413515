"""Helpers of the workspace lifecycle tests: the hand-written Hong Kong month of
``tests/engine/data`` (see ``tests/engine/test_pipeline.py`` for what each line is) ingested into
a fresh workspace, and the ``recon`` command run in-process with its output captured."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from engine import cli

DATA = Path(__file__).resolve().parents[1] / "data"
BANK = DATA / "hk_bank.csv"
BANK_OVERLAP = DATA / "hk_bank_overlap.csv"
LEDGER = DATA / "hk_ledger.csv"
STRIPE = DATA / "stripe_payout.csv"
FX = DATA / "fx.csv"


class Recon:
    """``recon ARGS`` in-process: exit status, stdout and stderr."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *args) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = cli.main([str(a) for a in args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args):
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of ``sql`` against the workspace, opened read-only as an analyst would."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def without_lines(source: Path, target: Path, *ids: str) -> Path:
    """A copy of the CSV ``source`` without the rows of ``ids``."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    target.write_text("".join(line for line in lines if line.split(",", 1)[0] not in ids), encoding="utf-8")
    return target


def proposal_of(ws: Path, bank_id: str) -> dict:
    """The current proposal holding ``bank_id`` (from ``recon review --json``, any state)."""
    from engine import api

    frame = api.review(ws, state=None)
    rows = [r for r in frame.iter_rows(named=True) if bank_id in r["bank_ids"].split(";")]
    assert len(rows) == 1, rows
    return rows[0]
