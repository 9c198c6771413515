"""``recon review``, ``accept``, ``reject``, ``match-manual`` and ``unmatch`` (workspace store):
what a reviewer sees and does, and the decision records each action leaves."""

from __future__ import annotations

import json

import polars as pl
import pytest

from engine import api
from engine.pipeline import match_id_expr
from tests.engine.workspace.helpers import proposal_of, query


def states(ws) -> dict[str, str]:
    return dict(api.review(ws, state=None).select("match_id", "state").iter_rows())


def decision_count(ws) -> int:
    return query(ws, "SELECT count(*) FROM decisions")[0][0]


def test_review_json_lists_proposals_with_exact_amounts(matched, recon):
    rows = recon.json("review", "--workspace", matched)
    assert len(rows) == 8
    short_paid = next(r for r in rows if r["bank_ids"] == ["B11"])
    assert {k: short_paid[k] for k in ("match_type", "status", "state", "currency", "bank_amount", "ledger_amount",
                                        "difference", "ledger_ids", "payers")} == {
        "match_type": "one_to_one", "status": "auto", "state": "proposed", "currency": "HKD",
        "bank_amount": "7765.00", "ledger_amount": "7800.00", "difference": "-35.00", "ledger_ids": ["L11"],
        "payers": "Kowloon Trading Co. Ltd"}
    assert short_paid["match_id"].startswith("M-") and "balanced by bank_charge -35.00 (6800)" in short_paid["explanation"]
    assert short_paid["adjustments"] == "bank_charge -35.00 (6800)"


def test_review_filters_by_status_type_and_amount(matched, recon):
    review = recon.json("review", "--workspace", matched, "--status", "review")
    assert sorted((r["bank_ids"], r["status"]) for r in review) == [(["B05"], "review"), (["B06"], "review")]
    big = recon.json("review", "--workspace", matched, "--min-amount", "8000")
    assert sorted(r["bank_amount"] for r in big) == ["12500.00", "8800.00"]
    band = recon.json("review", "--workspace", matched, "--min-amount", "3200", "--max-amount", "4350.00")
    assert sorted(r["bank_amount"] for r in band) == ["3200.00", "3200.00", "4350.00"]
    assert recon.json("review", "--workspace", matched, "--type", "payout") == []
    assert len(recon.json("review", "--workspace", matched, "--limit", "3")) == 3
    code, _, err = recon("review", "--workspace", matched, "--min-amount", "lots")
    assert (code, err) == (2, "recon: error: --min-amount 'lots': not a decimal amount (e.g. 1000 or 1000.50)\n")


def test_review_table_aligns_chinese_names_by_display_width(matched, recon):
    code, out, _ = recon("review", "--workspace", matched)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["MATCH", "TYPE", "STATUS", "STATE", "CONF", "AMOUNT", "DIFF", "BANK", "LEDGER", "PAYER"]
    assert lines[-1] == "8 matches"
    from engine.cli.workspace import display_width

    chinese = next(line for line in lines if "陳大文" in line)
    latin = next(line for line in lines if "Kowloon Trading" in line)
    # the payer column starts at the same display column on every line
    assert display_width(chinese[: chinese.index("陳大文")]) == display_width(latin[: latin.index("Kowloon")])
    assert "HKD 7765.00" in latin and "-35.00" in latin


def test_accept_all_auto_accepts_every_proposed_auto_proposal(matched, recon):
    code, out, _ = recon("accept", "--workspace", matched, "--all-auto", "--by", "陳大文", "--comment", "month end")
    assert (code, out) == (0, "accepted 6 matches (by 陳大文)\n")
    accepted = api.review(matched, state="accepted")
    assert set(accepted["status"]) == {"auto"} and accepted.height == 6
    # nothing left to accept the second time
    assert recon("accept", "--workspace", matched, "--all-auto")[1].startswith("accepted 0 matches")
    assert decision_count(matched) == 6


def test_accept_and_reject_by_filters(matched, recon):
    # B05 5000.00 from 金港貿易有限公司, who has two invoices of 5000.00 (B06 4350.00 is also for review)
    code, out, _ = recon("reject", "--workspace", matched, "--status", "review", "--min-amount", "4500",
                         "--max-amount", "6000", "--by", "amy")
    assert (code, out) == (0, "rejected 1 match (by amy)\n")
    assert proposal_of(matched, "B05")["state"] == "rejected"
    code, out, _ = recon("accept", "--workspace", matched, "--min-amount", "8000", "--by", "amy")
    assert out == "accepted 2 matches (by amy)\n"
    assert {proposal_of(matched, b)["state"] for b in ("B01", "B02")} == {"accepted"}
    assert {proposal_of(matched, b)["state"] for b in ("B06", "B11")} == {"proposed"}


def test_a_bad_match_id_refuses_the_whole_command(matched, recon):
    good = proposal_of(matched, "B01")["match_id"]
    code, out, err = recon("accept", "--workspace", matched, good, "M-0000000000000000")
    assert code == 2 and out == ""
    assert err == f"recon: error: accept: nothing done: no match M-0000000000000000 in {matched}\n"
    assert decision_count(matched) == 0
    recon("accept", "--workspace", matched, good)
    code, _, err = recon("reject", "--workspace", matched, good)
    assert code == 2
    assert err == f"recon: error: reject: nothing done: {good} is accepted; reject applies to a match that is proposed\n"
    code, _, err = recon("accept", "--workspace", matched)
    assert code == 2 and "name the matches" in err


def test_every_decision_records_who_when_what_why_and_the_proposal(matched, recon):
    target = proposal_of(matched, "B11")  # 7765.00 for L11 7800.00: a bank charge of 35.00
    recon("accept", "--workspace", matched, target["match_id"], "--by", "陳大文", "--comment", "charge agreed")
    [row] = query(matched, 'SELECT seq, "at", "by", action, match_id, before_state, after_state, comment, run_id, '
                           "rules_version, scorer, confidence, features_json, target FROM decisions")
    seq, at, by, action, match_id, before, after, comment, run_id, version, scorer, confidence, features, target_ = row
    assert (seq, by, action, match_id, before, after, comment) == (
        1, "陳大文", "accept", target["match_id"], "proposed", "accepted", "charge agreed")
    assert at is not None and target_ is None
    assert run_id == target["run_id"]
    assert version.startswith("default@") and len(version) == len("default@") + 12
    assert scorer == "rules" and confidence == pytest.approx(target["confidence"])
    evidence = json.loads(features)
    assert (evidence["bank_ids"], evidence["ledger_ids"], evidence["difference"]) == ("B11", "L11", "-35.00")
    assert evidence["adjustments"] == "bank_charge -35.00 (6800)"
    assert evidence["explanation"] == target["explanation"]


def test_who_defaults_to_the_environments_user(matched, recon, monkeypatch):
    monkeypatch.setenv("LOGNAME", "kwok.wing")
    recon("accept", "--workspace", matched, proposal_of(matched, "B01")["match_id"])
    assert query(matched, 'SELECT "by" FROM decisions') == [("kwok.wing",)]


def match_id(bank: list[str], ledger: list[str]) -> str:
    return pl.select(match_id_expr(pl.lit(bank, dtype=pl.List(pl.Utf8)), pl.lit(ledger, dtype=pl.List(pl.Utf8)))).item()


def test_manual_match_that_does_not_balance_is_refused_without_a_cause(matched, recon):
    # B10 (HKD 450.00 from 金港貿易有限公司) against L06 (HKD 5000.00): no adjustment cause
    code, out, err = recon("match-manual", "--workspace", matched, "--bank", "B10", "--ledger", "L06")
    assert code == 2 and out == ""
    assert err == ("recon: error: match-manual: refused: the bank lines total HKD 450.00 and the ledger items "
                   "HKD 5000.00, a difference of HKD -4550.00; give --adjust CAUSE to book it (bank_charge, "
                   "fx_difference, overpayment, processor_fee, report_difference, short_payment, "
                   "unlinked_report_lines) or pick lines that balance\n")
    code, _, err = recon("match-manual", "--workspace", matched, "--bank", "B10", "--ledger", "L06", "--adjust", "tip")
    assert code == 2 and "--adjust 'tip' is not an adjustment cause" in err
    assert decision_count(matched) == 0


def test_manual_match_with_a_cause_is_accepted_with_its_own_proposal(matched, recon):
    # B06 4350.00 quotes INV-2026-00170 (a typo); the run proposed L07 (4380.00) for review, and the
    # reviewer records it as a manual match, less a 30.00 bank charge: the same group, the same id
    code, out, err = recon("match-manual", "--workspace", matched, "--bank", "B06", "--ledger", "L07",
                           "--adjust", "bank_charge", "--comment", "typo in the reference", "--by", "amy")
    assert code == 0, err
    expected = match_id(["B06"], ["L07"])  # the id a run gives the same lines
    assert out == f"matched by hand: {expected} (bank B06; ledger L07) accepted by amy\n"
    manual = proposal_of(matched, "B06")
    assert (manual["match_id"], manual["match_type"], manual["status"], manual["state"]) == (
        expected, "manual", "manual", "accepted")
    assert (manual["difference"], manual["adjustments"]) == ("-30.00", "bank_charge -30.00 (6800)")
    [(run_id, action, before, comment)] = query(matched, "SELECT run_id, action, before_state, comment FROM decisions")
    assert (run_id, action, before, comment) == ("manual-1", "manual", "proposed", "typo in the reference")
    assert query(matched, "SELECT side, id, amount_minor FROM match_lines WHERE run_id = 'manual-1' ORDER BY side") == [
        ("bank", "B06", 435000), ("ledger", "L07", 438000)]


def test_manual_match_touching_an_accepted_match_is_refused(matched, recon):
    taken = proposal_of(matched, "B01")["match_id"]
    recon("accept", "--workspace", matched, taken)
    code, _, err = recon("match-manual", "--workspace", matched, "--bank", "B10", "--ledger", "L01",
                         "--adjust", "short_payment")
    assert code == 2
    assert err == (f"recon: error: match-manual: refused: ledger L01 is already in {taken}, which is accepted or "
                   "written (unmatch it first)\n")
    code, _, err = recon("match-manual", "--workspace", matched, "--bank", "B99", "--ledger", "L01")
    assert code == 2 and f"no bank line B99 in {matched}" in err


def test_unmatch_reopens_the_lines_and_keeps_the_history(matched, recon):
    target = proposal_of(matched, "B01")["match_id"]
    code, _, err = recon("unmatch", "--workspace", matched, target, "--reason", "wrong customer")
    assert code == 2
    assert err == (f"recon: error: unmatch: {target} is proposed; unmatch applies to a match that is accepted or "
                   "failed or written\n")
    recon("accept", "--workspace", matched, target, "--by", "amy")
    code, out, _ = recon("unmatch", "--workspace", matched, target, "--reason", "wrong customer", "--by", "ben")
    assert (code, out) == (0, f"unmatched {target} (by ben); its lines are open again\n")
    assert states(matched)[target] == "reversed"
    assert query(matched, 'SELECT action, before_state, after_state, "by", comment FROM decisions ORDER BY seq') == [
        ("accept", "proposed", "accepted", "amy", None), ("unmatch", "accepted", "reversed", "ben", "wrong customer")]
    # the next run offers B01 and L01 again, but not as the same group
    assert recon("match", "--workspace", matched, "--quiet")[0] == 0
    run_id = query(matched, "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")[0][0]
    assert query(matched, "SELECT count(*) FROM proposals WHERE run_id = ? AND match_id = ?", [run_id, target]) == [(0,)]
    assert query(matched, "SELECT count(*) FROM proposals WHERE match_id = ?", [target]) == [(1,)]  # history kept
    # a manual match may rebuild the group
    assert recon("match-manual", "--workspace", matched, "--bank", "B01", "--ledger", "L01")[0] == 0
    assert states(matched)[target] == "accepted"


def test_a_proposal_replaced_by_a_later_run_is_named_as_such(matched, recon):
    # B05 (5000.00) was proposed with L05; the reviewer matches it to L06 by hand instead
    replaced = proposal_of(matched, "B05")
    assert recon("match-manual", "--workspace", matched, "--bank", "B05", "--ledger", "L06")[0] == 0
    assert recon("match", "--workspace", matched, "--quiet")[0] == 0
    code, _, err = recon("accept", "--workspace", matched, replaced["match_id"])
    assert code == 2
    assert err == (f"recon: error: accept: nothing done: {replaced['match_id']} was proposed by run "
                   f"{replaced['run_id']} and replaced by a later run's proposals (`recon review` lists the "
                   "current ones)\n")


def test_a_missing_workspace_is_not_created_by_review(tmp_path, recon):
    missing = tmp_path / "typo.duckdb"
    code, _, err = recon("review", "--workspace", missing)
    assert code == 2
    assert err == (f"recon: error: workspace {missing} does not exist; create it with "
                   f"`recon ingest --workspace {missing} --bank FILE --ledger FILE`\n")
    assert not missing.exists()
