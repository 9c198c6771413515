"""The DuckDB workspace (engine store): what a run leaves in the file, and re-runs.

Inputs are the hand-written Hong Kong month in ``tests/engine/data`` (see ``test_pipeline.py``);
``hk_bank_overlap.csv`` repeats B10 and B11 and adds B12.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import duckdb
import pytest

import engine.api as recon
from engine import cli

DATA = Path(__file__).parent / "data"
BANK = DATA / "hk_bank.csv"
BANK_OVERLAP = DATA / "hk_bank_overlap.csv"
BANK_NO_ID = DATA / "hk_bank_noid.csv"
LEDGER = DATA / "hk_ledger.csv"


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of ``sql`` against the workspace file, opened read-only as an analyst would."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def repeated_ids(path: Path, table: str) -> list[tuple]:
    return query(path, f"SELECT id, count(*) FROM {table} GROUP BY id HAVING count(*) > 1")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> tuple[recon.MatchResult, Path]:
    """One run written to an output folder: the workspace lands at DIR/recon.duckdb."""
    out = tmp_path_factory.mktemp("out")
    result = recon.match(bank=BANK, ledger=LEDGER)
    written = result.write(out)
    assert written["workspace"] == out / "recon.duckdb"
    return result, out / "recon.duckdb"


def test_run_is_recorded_with_its_rules_and_counts(first_run):
    result, ws = first_run
    runs = query(ws, "SELECT run_id, rules_name, inputs_json, counts_json FROM runs")
    assert len(runs) == 1
    run_id, rules_name, inputs_json, counts_json = runs[0]
    assert (run_id, rules_name) == (result.run_id, "default")
    assert "hk_bank.csv" in inputs_json and "hk_ledger.csv" in inputs_json
    assert '"auto": 6' in counts_json and '"review": 2' in counts_json


def test_proposals_are_stored_as_written(first_run):
    result, ws = first_run
    stored = query(
        ws,
        "SELECT match_id, status, bank_ids, ledger_ids, bank_amount, ledger_amount, difference "
        "FROM proposals WHERE run_id = ? ORDER BY match_id",
        [result.run_id],
    )
    expected = result.proposals.select(
        "match_id", "status", "bank_ids", "ledger_ids", "bank_amount", "ledger_amount", "difference"
    ).sort("match_id").rows()
    assert stored == expected
    assert ("B11", "L11", "7765.00", "7800.00", "-35.00") in [row[2:] for row in stored]
    lines = query(ws, "SELECT side, id FROM match_lines WHERE run_id = ? ORDER BY side, id", [result.run_id])
    assert [i for side, i in lines if side == "bank"] == ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B11"]


def test_lines_are_stored_once_each_and_rejects_are_kept(first_run):
    _, ws = first_run
    bank_ids = [row[0] for row in query(ws, "SELECT id FROM bank_lines ORDER BY id")]
    assert bank_ids == ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B09", "B10", "B11"]
    assert query(ws, "SELECT count(*) FROM ledger_items") == [(11,)]
    assert query(ws, "SELECT amount_minor, currency FROM bank_lines WHERE id = 'B09'") == [(-200000, "HKD")]
    assert query(ws, 'SELECT line, "column" FROM rejects') == [(10, "amount")]


@pytest.mark.parametrize(
    ("table", "line_id", "column", "text"),
    [
        ("ledger_items", "L01", "counterparty", "陳大文"),
        ("ledger_items", "L02", "counterparty", "金港貿易有限公司"),
        ("ledger_items", "L09", "counterparty", "Société Générale"),
        ("bank_lines", "B07", "description", "FPS CR 陳大文"),
        ("bank_lines", "B09", "counterparty", "Müller GmbH"),
    ],
)
def test_names_are_stored_byte_exact(first_run, table, line_id, column, text):
    _, ws = first_run
    [(stored,)] = query(ws, f"SELECT encode({column}) FROM {table} WHERE id = ?", [line_id])
    assert bytes(stored) == text.encode("utf-8")


def test_decomposed_name_is_stored_as_given(tmp_path):
    nfd = unicodedata.normalize("NFD", "Société Générale")
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(LEDGER.read_text(encoding="utf-8").replace("Société Générale", nfd), encoding="utf-8")
    recon.match(bank=BANK, ledger=ledger).write(tmp_path / "out")
    [(stored,)] = query(tmp_path / "out" / "recon.duckdb",
                        "SELECT encode(counterparty) FROM ledger_items WHERE id = 'L09'")
    assert bytes(stored) == nfd.encode("utf-8")


def test_rerun_with_same_and_overlapping_files_adds_no_duplicate_lines(tmp_path):
    """Two ``recon match --workspace`` runs into one file: the second re-reads hk_bank.csv and
    adds the overlapping statement (B10, B11 again; B12 new)."""
    ws = tmp_path / "books.duckdb"

    def run(*bank: Path, out: str) -> None:
        args = ["match", "--bank", *map(str, bank), "--ledger", str(LEDGER),
                "--out", str(tmp_path / out), "--workspace", str(ws), "--quiet"]
        assert cli.main(args) == 0  # the CLI entry point, in-process (test_cli runs it as a subprocess)

    run(BANK, out="march")
    run(BANK, BANK_OVERLAP, out="march-again")
    assert not (tmp_path / "march" / "recon.duckdb").exists()  # --workspace replaces the default

    runs = query(ws, "SELECT run_id, out_dir FROM runs ORDER BY started_at")
    assert len(runs) == 2 and runs[0][0] != runs[1][0]
    assert [Path(out).name for _, out in runs] == ["march", "march-again"]
    assert repeated_ids(ws, "bank_lines") == []
    assert repeated_ids(ws, "ledger_items") == []
    assert query(ws, "SELECT count(*) FROM bank_lines") == [(11,)]  # 10 + B12
    assert query(ws, "SELECT count(*) FROM ledger_items") == [(11,)]
    # B12 arrived with the second run; B10 keeps the run that first saw it
    first_seen = dict(query(ws, "SELECT id, first_run_id FROM bank_lines WHERE id IN ('B10', 'B12')"))
    assert first_seen == {"B10": runs[0][0], "B12": runs[1][0]}
    # each run keeps its own proposals: the second also matched B12 to the open invoice L10
    per_run = dict(query(ws, "SELECT run_id, count(*) FROM proposals GROUP BY run_id"))
    assert per_run == {runs[0][0]: 8, runs[1][0]: 9}


def test_rerun_of_a_bank_file_without_ids_adds_no_duplicate_lines(tmp_path):
    ws = tmp_path / "recon.duckdb"
    for _ in range(2):
        recon.match(bank=BANK_NO_ID, ledger=LEDGER).write(tmp_path / "out", workspace=ws)
    assert query(ws, "SELECT count(*) FROM runs") == [(2,)]
    assert repeated_ids(ws, "bank_lines") == []
    # the two identical HKD 200.00 cash deposits are two lines, each stored once
    assert query(ws, "SELECT count(*) FROM bank_lines WHERE amount_minor = 20000") == [(2,)]
    assert query(ws, "SELECT count(*) FROM bank_lines") == [(3,)]


def test_a_workspace_from_before_compound_matches_gains_the_open_amount_column(tmp_path):
    # the proposals table as the first version created it: no open_amount column
    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as con:
        con.execute(
            "CREATE TABLE proposals (run_id VARCHAR, match_id VARCHAR, match_type VARCHAR, status VARCHAR, "
            "confidence DOUBLE, bank_ids VARCHAR, ledger_ids VARCHAR, bank_amount VARCHAR, "
            "ledger_amount VARCHAR, difference VARCHAR, currency VARCHAR, explanation VARCHAR, "
            "adjustments VARCHAR)"
        )
        con.execute("INSERT INTO proposals (run_id, match_id) VALUES ('R-old', 'M-old')")
    result = recon.match(bank=BANK, ledger=LEDGER)
    result.write(tmp_path / "out", workspace=old)
    rows = query(old, "SELECT run_id, count(*), count(open_amount) FROM proposals GROUP BY run_id ORDER BY run_id")
    assert rows[0][0] != "R-old" and rows[0][1] == rows[0][2] == result.proposals.height  # new run, column filled
    assert rows[1] == ("R-old", 1, 0)  # the old run kept, its open amount unknown


def test_workspace_query_returns_a_polars_frame(first_run):
    from engine.workspace.store import Workspace

    result, ws = first_run
    with Workspace(ws) as workspace:
        frame = workspace.query("SELECT status, count(*) AS n FROM proposals WHERE run_id = ? GROUP BY ALL ORDER BY status",
                                [result.run_id])
    assert frame.rows() == [("auto", 6), ("review", 2)]
