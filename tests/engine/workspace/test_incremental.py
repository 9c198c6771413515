"""``recon match --workspace W`` (incremental): the open lines are matched; accepted matches are
left alone; a late ledger item turns an open bank line into a proposal; undecided proposals are
replaced with their history kept; a rejected group is not proposed again."""

from __future__ import annotations

import json

from engine import api
from tests.engine.workspace.helpers import (
    BANK,
    BANK_OVERLAP,
    LEDGER,
    STRIPE,
    proposal_of,
    query,
    without_lines,
)


def current_run(ws) -> str:
    return query(ws, "SELECT run_id FROM runs WHERE mode = 'incremental' ORDER BY started_at DESC LIMIT 1")[0][0]


def test_a_first_incremental_run_proposes_what_a_one_shot_run_does(matched):
    one_shot = api.match(bank=BANK, ledger=LEDGER)
    run_id = current_run(matched)
    stored = query(matched, "SELECT match_id, status, bank_ids, ledger_ids, difference FROM proposals "
                            "WHERE run_id = ? ORDER BY match_id", [run_id])
    assert stored == one_shot.proposals.select("match_id", "status", "bank_ids", "ledger_ids", "difference") \
        .sort("match_id").rows()
    assert [r["state"] for r in api.review(matched).iter_rows(named=True)] == ["proposed"] * 8


def test_late_ledger_item_turns_an_open_bank_line_into_a_proposal_and_accepted_matches_stay(tmp_path, recon):
    ws = tmp_path / "books.duckdb"
    early_ledger = without_lines(LEDGER, tmp_path / "ledger_early.csv", "L10")
    recon("ingest", "--workspace", ws, "--bank", BANK, BANK_OVERLAP, "--ledger", early_ledger, "--quiet")
    code, out, err = recon("match", "--workspace", ws, "--progress", "none")
    assert code == 0, err
    first_run = current_run(ws)
    # B12 (HKD 6600.00 from 陳大文 quoting INV-2026-00110) has nothing to match yet
    assert "B12" not in {i for r in api.review(ws).iter_rows(named=True) for i in r["bank_ids"].split(";")}
    accepted = proposal_of(ws, "B01")["match_id"]
    assert recon("accept", "--workspace", ws, accepted, "--by", "陳大文")[0] == 0

    # the invoice arrives late
    late = tmp_path / "ledger_late.csv"
    late.write_text(LEDGER.read_text(encoding="utf-8").splitlines()[0] + "\n"
                    + next(line for line in LEDGER.read_text(encoding="utf-8").splitlines() if line.startswith("L10,"))
                    + "\n", encoding="utf-8")
    recon("ingest", "--workspace", ws, "--ledger", late, "--quiet")
    code, out, err = recon("match", "--workspace", ws, "--progress", "none")
    assert code == 0, err
    assert "2 ledger items in accepted or written matches left alone" not in out
    assert "1 bank lines and 1 ledger items in accepted or written matches left alone" in out
    second_run = current_run(ws)
    assert second_run != first_run

    late_match = proposal_of(ws, "B12")
    assert (late_match["ledger_ids"], late_match["state"], late_match["run_id"]) == ("L10", "proposed", second_run)
    # the accepted match is untouched: same state, same run, its lines not offered again
    kept = proposal_of(ws, "B01")
    assert (kept["match_id"], kept["state"], kept["run_id"]) == (accepted, "accepted", first_run)
    assert query(ws, "SELECT count(*) FROM match_lines WHERE run_id = ? AND id IN ('B01', 'L01')", [second_run]) == [(0,)]
    assert query(ws, "SELECT count(*) FROM decisions") == [(1,)]


def test_undecided_proposals_are_replaced_and_kept_as_history(matched, recon):
    first_run = current_run(matched)
    assert recon("match", "--workspace", matched, "--quiet")[0] == 0
    second_run = current_run(matched)
    review = api.review(matched)
    assert set(review["run_id"]) == {second_run}
    # both runs' rows are in the proposals table
    assert dict(query(matched, "SELECT run_id, count(*) FROM proposals GROUP BY run_id")) == {first_run: 8, second_run: 8}


def test_a_rejected_group_is_not_proposed_again(matched, recon):
    short_paid = proposal_of(matched, "B11")  # B11 7765.00 against L11 7800.00: short payment, review
    code, out, _ = recon("reject", "--workspace", matched, short_paid["match_id"], "--comment", "not Kowloon Trading")
    assert (code, out) == (0, "rejected 1 match (by " + out.split("(by ", 1)[1])
    assert recon("match", "--workspace", matched, "--quiet")[0] == 0
    run_id = current_run(matched)
    assert query(matched, "SELECT count(*) FROM proposals WHERE run_id = ? AND match_id = ?",
                 [run_id, short_paid["match_id"]]) == [(0,)]
    # still rejected; its lines are open again (unmatched in this run)
    assert proposal_of(matched, "B11")["state"] == "rejected"
    assert query(matched, "SELECT count(*) FROM match_lines WHERE run_id = ? AND id = 'B11'", [run_id]) == [(0,)]


def test_payout_lines_ingested_before_are_used_by_later_runs(tmp_path, recon):
    ws = tmp_path / "books.duckdb"
    bank = tmp_path / "bank.csv"
    bank.write_text("id,date,amount,currency,description,counterparty,reference,account\n"
                    "B1,2026-03-12,766.00,HKD,STRIPE PAYOUT po_1HK001,,,HSBC-HKD-001\n", encoding="utf-8")
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("id,date,amount,currency,description,counterparty,reference,account,type,due_date\n"
                      "SO-2001,2026-03-09,1000.00,HKD,Order 2001,陳大文,2001,1100-AR,invoice,\n"
                      "CN-2001,2026-03-10,-200.00,HKD,Refund order 2001,陳大文,2001,1100-AR,credit_note,\n",
                      encoding="utf-8")
    recon("ingest", "--workspace", ws, "--processor", STRIPE, "--quiet")
    recon("ingest", "--workspace", ws, "--bank", bank, "--ledger", ledger, "--quiet")
    code, out, err = recon("match", "--workspace", ws, "--progress", "none")
    assert code == 0, err
    assert "2 payout lines" in out
    payout = proposal_of(ws, "B1")
    assert (payout["match_type"], payout["ledger_ids"], payout["difference"]) == ("payout", "CN-2001;SO-2001", "-34.00")


def test_out_with_a_workspace_writes_the_run_files_and_a_manifest(matched, recon, tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = recon("match", "--workspace", matched, "--out", out_dir, "--progress", "none")
    assert code == 0, err
    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["run_id"] == current_run(matched)
    assert manifest["mode"] == "incremental"
    assert manifest["files"]["matches.csv"]["rows"] == 8
    assert len((out_dir / "matches.csv").read_text(encoding="utf-8").splitlines()) == 9


def test_incremental_run_refuses_files_it_would_ignore(matched, recon):
    code, _, err = recon("match", "--workspace", matched, "--processor", STRIPE)
    assert code == 2
    assert err.startswith("recon: error: --processor: an incremental run (--workspace without --bank/--ledger) "
                          "uses what the workspace holds; add files with `recon ingest --workspace")
