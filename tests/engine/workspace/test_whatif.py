"""What-if: a rule set replayed against a workspace's decided history (engine.workspace.whatif,
``recon what-if``).

The hand-written month of ``tests/engine/data`` (see ``tests/engine/test_pipeline.py``), matched
once, then decided by hand: the six auto proposals accepted (among them B11 <-> L11, HKD 35.00
short: bank charges, within the amount tolerance), B06 -> L07 (a near reference, HKD 30.00
short, for review) rejected, B05 -> L05 or L06 (too close to call) left undecided.
"""

from __future__ import annotations

import json

import pytest

from engine import api
from engine.workspace.whatif import what_if
from rules.model import default_rules
from tests.engine.workspace.helpers import proposal_of, query

B11_L11 = ("B11", "L11")
B06_L07 = ("B06", "L07")


@pytest.fixture
def decided(matched):
    api.accept(matched, all_auto=True, by="陳大文")
    api.reject(matched, [proposal_of(matched, "B06")["match_id"]], by="陳大文", comment="not this invoice")
    return matched


def _near_weight(bits: float):
    rules = default_rules()
    return rules.with_changes(weights={"reference": {**rules.weights.reference.model_dump(), "near": bits}})


def _row(report, bank_id: str) -> dict:
    rows = [r for r in report.matches().iter_rows(named=True) if r["bank_ids"] == bank_id]
    assert len(rows) == 1, rows
    return rows[0]


def test_the_same_rules_change_nothing(decided):
    report = what_if(decided, default_rules())
    before, after = report.metrics()
    assert before == after
    assert report.changes().height == 0
    assert report.history.accepted == 6 and report.history.rejected == 1 and report.history.undecided == 1
    # 6 accepted proposed again, the rejected one too; B05's proposal awaits a decision: not judged
    assert before["proposals_accepted"] == 6 and before["proposals_rejected"] == 1
    assert before["proposals_not_judged"] == 1
    assert before["precision"] == pytest.approx(6 / 7) and before["recall"] == 1.0


def test_a_tighter_tolerance_loses_exactly_the_accepted_match_that_needed_it(decided):
    # B11 is HKD 35.00 short of L11 (a bank charge); B06 is HKD 30.00 short of L07
    tighter = default_rules().with_changes(amount={"tolerance_abs": "30", "tolerance_pct": "0"})
    report = what_if(decided, tighter)
    lost = report.lost_or_changed()
    assert lost.select("bank_ids", "ledger_ids").rows() == [B11_L11]
    assert lost["after"].to_list() == ["lost"] and lost["before"].to_list() == ["auto"]
    assert lost["bank_amount"].to_list() == ["7765.00"] and lost["currency"].to_list() == ["HKD"]
    assert report.changes().select("bank_ids", "ledger_ids").rows() == [B11_L11]
    before, after = report.metrics()
    assert (before["accepted_lost"], after["accepted_lost"]) == (0, 1)
    assert after["recall"] == pytest.approx(5 / 6)
    assert after["proposals_rejected"] == 1  # B06 -> L07 (30.00 short) is still within it


def test_a_rejected_group_comes_back_as_auto_when_its_weight_rises(decided):
    report = what_if(decided, _near_weight(8.0))
    back = report.coming_back()
    assert back.select("bank_ids", "ledger_ids", "before", "after").rows() == [(*B06_L07, "review", "auto")]
    before, after = report.metrics()
    assert (before["rejected_auto"], after["rejected_auto"]) == (0, 1)
    assert after["auto_precision"] == pytest.approx(6 / 7) and before["auto_precision"] == 1.0


def test_a_rejected_group_comes_back_when_the_weight_that_kept_it_out_is_restored(decided):
    report = what_if(decided, default_rules(), before=_near_weight(-6.0))
    row = _row(report, "B06")
    assert (row["verdict"], row["before"], row["after"]) == ("rejected", "not proposed", "review")
    assert report.coming_back()["bank_ids"].to_list() == ["B06"]
    before, after = report.metrics()
    assert before["precision"] == 1.0 and after["precision"] == pytest.approx(6 / 7)


def test_a_stricter_auto_threshold_moves_accepted_matches_to_review_and_loses_none(decided):
    report = what_if(decided, default_rules().with_changes(thresholds={"auto": 0.9995}))
    before, after = report.metrics()
    assert after["accepted_lost"] == after["accepted_changed"] == 0
    moved = report.changes()
    assert set(moved["before"]) == {"auto"} and set(moved["after"]) == {"review"}
    # B03 / B04 (0.9891), B02 (0.9986) and B07 (0.999) fall below 0.9995; B01 and B11 stay auto
    assert sorted(moved["bank_ids"]) == ["B02", "B03", "B04", "B07"]
    assert (before["auto_recall"], after["auto_recall"]) == (1.0, pytest.approx(2 / 6))
    assert after["recall"] == 1.0


def test_a_proposal_holding_a_line_of_an_accepted_match_counts_against_precision(decided):
    # the reviewer settles B05 by hand with the other invoice; its proposal stays undecided
    proposed = proposal_of(decided, "B05")["ledger_ids"]
    other = {"L05": "L06", "L06": "L05"}[proposed]
    api.match_manual(decided, bank=["B05"], ledger=[other], by="陳大文")
    report = what_if(decided, default_rules())
    before, _after = report.metrics()
    assert before["proposals_conflicting"] == 1 and before["proposals_not_judged"] == 0
    assert before["precision"] == pytest.approx(6 / 8)  # 6 accepted of 6 + B06 rejected + B05 conflicting
    manual = _row(report, "B05")
    assert manual["manual"] and manual["verdict"] == "accepted" and manual["before"] == "changed"


def test_nothing_is_written(decided):
    tables = ("runs", "proposals", "decisions", "match_lines")
    counts = [query(decided, f"SELECT count(*) FROM {table}")[0][0] for table in tables]
    what_if(decided, _near_weight(8.0))
    assert [query(decided, f"SELECT count(*) FROM {table}")[0][0] for table in tables] == counts


def test_cli_what_if_table_and_json(decided, recon, tmp_path):
    rules = tmp_path / "tighter.toml"
    rules.write_text('[amount]\ntolerance_abs = "30"\ntolerance_pct = "0"\n', encoding="utf-8")
    code, out, err = recon("what-if", "--workspace", decided, "--rules", rules)
    assert code == 0, err
    assert "accepted matches lost (lines left unmatched)" in out
    lost_line = next(line for line in out.splitlines() if "accepted matches lost" in line)
    assert lost_line.split()[-3:] == ["0", "1", "+1"]
    assert "accepted         auto -> lost" in out and "7765.00 HKD" in out
    data = recon.json("what-if", "--workspace", decided, "--rules", rules)
    assert data["after"]["rules"] == "tighter" and data["before"]["rules"] == "default"
    assert data["after"]["metrics"]["accepted_lost"] == 1
    assert data["history"] == {"accepted": 6, "rejected": 1, "manual": 0, "undecided_not_counted": 1}
    [change] = data["changes"]["rows"]
    assert (change["bank_ids"], change["before"], change["after"]) == ("B11", "auto", "lost")
    json.dumps(data)


def test_cli_what_if_without_decisions_says_what_to_do(matched, recon, tmp_path):
    rules = tmp_path / "r.toml"
    rules.write_text("[thresholds]\nauto = 0.99\n", encoding="utf-8")
    code, _out, err = recon("what-if", "--workspace", matched, "--rules", rules)
    assert code == 2
    assert "no decided match yet" in err and "recon accept" in err
    assert len(err.strip().splitlines()) == 1
