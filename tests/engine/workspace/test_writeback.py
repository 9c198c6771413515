"""Write-back orchestration: what each target is owed, recorded once per target and key, with
decisions, reversals, refusals, failures and a crash between the target's write and the
workspace's record. The workspace is built through the store API (a run's proposals and lines,
accept and unmatch decisions as the decision store contract defines them)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine import api
from engine.cli import main
from engine.workspace import writeback as wb
from engine.workspace.decisions import append_decisions
from engine.workspace.store import Workspace
from models.errors import TransientAdapterError
from rules.model import default_rules

RUN = "R-20261031T000000000000"
#: match id -> (bank line, ledger item, bank amount, ledger amount, adjustments, payer, type)
MATCHES = {
    # a customer paid 2,946.33 for 3,066.33: the bank kept a 120.00 charge
    "M-charge": ("B1", "INV-1", 294633, 306633, "bank_charge -120.00 (6800)", "陳大文", "invoice"),
    # a supplier bill of 100.00 cost 105.00 to pay
    "M-bill": ("B2", "BILL-1", -10500, -10000, "bank_charge -5.00 (6800)", "金港貿易有限公司", "bill"),
    # paid exactly
    "M-exact": ("B3", "INV-2", 50000, 50000, "", "Lee Hoi Man", "invoice"),
    # proposed only: never written
    "M-open": ("B4", "INV-3", 77700, 77700, "", "Tsang Chun Kit", "invoice"),
}


def _fmt(minor: int) -> str:
    return str(Decimal(minor).scaleb(-2).quantize(Decimal("0.01")))


def make_workspace(path: Path, matches: dict = MATCHES) -> Path:
    """A workspace holding one run's proposals of ``matches``, all but M-open accepted."""
    bank, ledger, proposals, lines = [], [], [], []
    for i, (match_id, (bank_id, ledger_id, bank_minor, ledger_minor, adjustments, payer, kind)) in enumerate(
            matches.items()):
        bank.append({"id": bank_id, "date": date(2026, 10, 2 + i), "amount_minor": bank_minor, "currency": "HKD",
                     "description": f"FPS {payer}", "counterparty": payer, "reference": ledger_id})
        ledger.append({"id": ledger_id, "date": date(2026, 9, 1 + i), "amount_minor": ledger_minor,
                       "currency": "HKD", "description": "goods", "counterparty": payer, "reference": ledger_id,
                       "type": kind})
        proposals.append({
            "match_id": match_id, "match_type": "one_to_one", "status": "auto", "confidence": 0.99,
            "bank_ids": bank_id, "ledger_ids": ledger_id, "bank_amount": _fmt(bank_minor),
            "ledger_amount": _fmt(ledger_minor), "difference": _fmt(bank_minor - ledger_minor), "currency": "HKD",
            "explanation": f"reference {ledger_id}; payer {payer}", "adjustments": adjustments, "open_amount": ""})
        lines += [{"match_id": match_id, "side": "bank", "id": bank_id, "amount_minor": bank_minor, "currency": "HKD"},
                  {"match_id": match_id, "side": "ledger", "id": ledger_id, "amount_minor": ledger_minor,
                   "currency": "HKD"}]
    rules = default_rules()
    with Workspace(path) as ws:
        ws.record_run(RUN, datetime.now(UTC), pl.DataFrame(bank), pl.DataFrame(ledger), pl.DataFrame(proposals),
                      pl.DataFrame(lines), pl.DataFrame(schema={"source_file": pl.Utf8, "line": pl.Int64,
                                                                "column": pl.Utf8, "reason": pl.Utf8, "raw": pl.Utf8}),
                      rules.name, json.dumps(rules.to_toml_dict()), {}, {}, "", mode="incremental")
        append_decisions(ws.con, [{"by": "陳大文", "action": "accept", "match_id": m, "after_state": "accepted",
                                   "run_id": RUN} for m in matches if m != "M-open"])
    return path


def unmatch(path: Path, match_id: str, reason: str = "wrong customer") -> int:
    with Workspace(path) as ws:
        state = ws.con.execute("SELECT after_state FROM decisions WHERE match_id = ? ORDER BY seq DESC LIMIT 1",
                               [match_id]).fetchall()[0][0]
        return append_decisions(ws.con, [{"by": "陳大文", "action": "unmatch", "match_id": match_id,
                                          "before_state": state, "after_state": "reversed", "comment": reason,
                                          "run_id": RUN}])[0]


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def decisions(path: Path, action: str) -> list[tuple]:
    with Workspace(path) as ws:
        return ws.con.execute("SELECT match_id, before_state, after_state, target, comment FROM decisions "
                              "WHERE action = ? ORDER BY seq", [action]).fetchall()


@pytest.fixture
def ws(tmp_path) -> Path:
    return make_workspace(tmp_path / "books.duckdb")


def test_writes_accepted_matches_with_their_journals_and_records_decisions(ws, tmp_path):
    out = tmp_path / "files"
    report = api.writeback(ws, f"dir:{out}")
    assert report.ok and report.pending == 3 and report.written == 3
    assert dict(report.counts) == {("write", "written"): 3}
    status = {(r["side"], r["line_id"]): (r["match_id"], r["state"]) for r in rows(out / "status.csv")}
    assert status == {("bank", "B1"): ("M-charge", "reconciled"), ("ledger", "INV-1"): ("M-charge", "reconciled"),
                      ("bank", "B2"): ("M-bill", "reconciled"), ("ledger", "BILL-1"): ("M-bill", "reconciled"),
                      ("bank", "B3"): ("M-exact", "reconciled"), ("ledger", "INV-2"): ("M-exact", "reconciled")}
    journal = [(r["date"], r["account"], r["debit"], r["credit"], r["match_id"]) for r in rows(out / "journal.csv")]
    # money in short by a charge: the charge account debited, receivables credited; money out
    # costing more: the charge debited, payables credited
    assert sorted(journal) == sorted([
        ("2026-10-02", "6800", "120.00", "0.00", "M-charge"), ("2026-10-02", "1100", "0.00", "120.00", "M-charge"),
        ("2026-10-03", "6800", "5.00", "0.00", "M-bill"), ("2026-10-03", "2100", "0.00", "5.00", "M-bill")])
    memos = [r["memo"] for r in rows(out / "journal.csv") if r["match_id"] == "M-charge"]
    assert memos[0] == "bank_charge: bank B1 / ledger INV-1 (陳大文)"
    target = f"dir:{out.resolve()}"
    assert sorted(decisions(ws, "written")) == [
        ("M-bill", "accepted", "written", target, None), ("M-charge", "accepted", "written", target, None),
        ("M-exact", "accepted", "written", target, None)]
    states = api.status(ws)
    assert states["states"] == {"proposed": 1, "accepted": 0, "rejected": 0, "written": 3, "reversed": 0,
                                "failed": 0}
    assert states["pending"] == {target: {"write": 0, "reverse": 0}}


def test_a_second_writeback_writes_nothing(ws, tmp_path, capsys):
    out = tmp_path / "files"
    assert main(["writeback", "--workspace", str(ws), "--to", f"dir:{out}"]) == 0
    first = capsys.readouterr().out
    assert "wrote 3 of 3 pending item(s)" in first and "write    written         3" in first
    journal = (out / "journal.csv").read_bytes()
    assert main(["writeback", "--workspace", str(ws), "--to", f"dir:{out}"]) == 0
    assert capsys.readouterr().out.strip() == f"recon writeback: wrote 0 items to dir:{out.resolve()}: nothing pending"
    assert (out / "journal.csv").read_bytes() == journal
    assert len(decisions(ws, "written")) == 3


def test_unmatch_after_writeback_writes_a_mirrored_reversal(ws, tmp_path):
    out = tmp_path / "files"
    api.writeback(ws, f"dir:{out}")
    seq = unmatch(ws, "M-charge", "paid by 陳小明, not 陳大文")
    report = api.writeback(ws, f"dir:{out}")
    assert dict(report.counts) == {("reverse", "written"): 1}
    status = {(r["side"], r["line_id"]): (r["match_id"], r["state"]) for r in rows(out / "status.csv")}
    assert status[("bank", "B1")] == ("M-charge", "open") and status[("ledger", "INV-1")] == ("M-charge", "open")
    assert status[("bank", "B2")] == ("M-bill", "reconciled")
    charge = [r for r in rows(out / "journal.csv") if r["match_id"] == "M-charge"]
    today = datetime.now(UTC).date().isoformat()
    assert [(r["date"], r["account"], r["debit"], r["credit"]) for r in charge] == [
        ("2026-10-02", "6800", "120.00", "0.00"), ("2026-10-02", "1100", "0.00", "120.00"),
        (today, "6800", "0.00", "120.00"), (today, "1100", "120.00", "0.00")]
    assert charge[2]["memo"].startswith("reversal (paid by 陳小明, not 陳大文): bank_charge")
    assert decisions(ws, "reversal_written") == [
        ("M-charge", "reversed", "reversed", f"dir:{out.resolve()}", None)]
    with Workspace(ws) as w:
        keys = w.con.execute("SELECT key FROM writes WHERE action = 'reverse' AND state = 'written'").fetchall()
    assert keys == [(f"M-charge:{seq}",)]
    assert api.writeback(ws, f"dir:{out}").pending == 0
    assert api.status(ws)["states"]["reversed"] == 1


def test_an_unmatch_before_writeback_writes_nothing(ws, tmp_path):
    unmatch(ws, "M-charge")
    out = tmp_path / "files"
    report = api.writeback(ws, f"dir:{out}")
    assert dict(report.counts) == {("write", "written"): 2}
    assert {r["match_id"] for r in rows(out / "status.csv")} == {"M-bill", "M-exact"}


def test_each_target_gets_each_item_once(ws, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert api.writeback(ws, f"dir:{first}").written == 3
    assert api.writeback(ws, f"dir:{second}").written == 3
    assert api.writeback(ws, f"dir:{first}").pending == 0
    unmatch(ws, "M-bill")
    assert dict(api.writeback(ws, f"dir:{first}").counts) == {("reverse", "written"): 1}
    pending = api.status(ws)["pending"]
    assert pending == {f"dir:{first.resolve()}": {"write": 0, "reverse": 0},
                       f"dir:{second.resolve()}": {"write": 0, "reverse": 1}}
    assert dict(api.writeback(ws, f"dir:{second}").counts) == {("reverse", "written"): 1}
    # a written match gets one 'written' decision a target, the first one changes its state
    assert [(b, a) for m, b, a, _t, _c in decisions(ws, "written") if m == "M-bill"] == [
        ("accepted", "written"), ("written", "written")]


def test_a_crash_after_the_target_wrote_resends_and_nothing_is_doubled(ws, tmp_path, monkeypatch):
    out = tmp_path / "files"
    real_record = wb._record

    def crash_before_results(ws_, target, entries, capabilities, states=None):
        if states is not None:  # the target has written the batch; the workspace never hears of it
            raise KeyboardInterrupt
        real_record(ws_, target, entries, capabilities)

    monkeypatch.setattr(wb, "_record", crash_before_results)
    with pytest.raises(KeyboardInterrupt):
        api.writeback(ws, f"dir:{out}")
    monkeypatch.setattr(wb, "_record", real_record)
    assert api.status(ws)["states"]["accepted"] == 3
    report = api.writeback(ws, f"dir:{out}")
    assert dict(report.counts) == {("write", "already"): 3} and report.ok
    assert len(rows(out / "journal.csv")) == 4 and len(rows(out / "status.csv")) == 6
    assert api.status(ws)["states"]["written"] == 3


def test_a_match_sent_then_undone_before_its_result_was_recorded_is_reversed(ws, tmp_path, monkeypatch):
    out = tmp_path / "files"
    real_record = wb._record

    def crash_before_results(ws_, target, entries, capabilities, states=None):
        if states is not None:
            raise KeyboardInterrupt
        real_record(ws_, target, entries, capabilities)

    monkeypatch.setattr(wb, "_record", crash_before_results)
    with pytest.raises(KeyboardInterrupt):
        api.writeback(ws, f"dir:{out}")
    monkeypatch.setattr(wb, "_record", real_record)
    unmatch(ws, "M-charge")  # still 'accepted' in the workspace, yet the folder has it
    report = api.writeback(ws, f"dir:{out}")
    assert dict(report.counts) == {("write", "already"): 2, ("reverse", "written"): 1}
    assert {r["state"] for r in rows(out / "status.csv") if r["match_id"] == "M-charge"} == {"open"}
    debits = sum(Decimal(r["debit"]) for r in rows(out / "journal.csv"))
    assert debits == sum(Decimal(r["credit"]) for r in rows(out / "journal.csv")) == Decimal("245.00")  # 120 + 5, then 120 back


class StatusOnly:
    """A target that writes line status only (no journals, no reversals), recording what it got."""

    name = "status-only"
    capabilities = frozenset({"status"})

    def __init__(self) -> None:
        self.got: list = []
        self.fail_with: Exception | None = None

    def write(self, items):
        if self.fail_with is not None:
            raise self.fail_with
        self.got += [item.key for item in items]
        return [wb.WriteResult(item.key, "written") for item in items]

    def reverse(self, items):
        raise AssertionError("a target without the reversal capability must not be sent reversals")

    def close(self) -> None:
        pass


def test_a_target_without_reversal_is_refused_the_undo_with_a_reason(ws, tmp_path, capsys):
    target = StatusOnly()
    api_target = "postgresql://recon:s3cret@db.example/books?table=items"
    assert wb.writeback(ws, api_target, adapter=target).written == 3
    unmatch(ws, "M-exact")
    report = wb.writeback(ws, api_target, adapter=target)
    assert not report.ok
    [(key, action, state, reason)] = report.failures
    assert action == "reverse" and state == "failed"
    assert "cannot write reversals (it can write: status): undo M-exact there by hand" in reason
    assert "s3cret" not in reason and "recon:***@db.example" in reason
    status = api.status(ws)
    assert status["pending"]["postgresql://recon:***@db.example/books?table=items"] == {"write": 0, "reverse": 1}
    assert status["last_errors"][0]["key"] == key and "cannot write reversals" in status["last_errors"][0]["reason"]
    with Workspace(ws) as w:
        targets = {t for (t,) in w.con.execute("SELECT DISTINCT target FROM decisions WHERE target IS NOT NULL"
                                                ).fetchall()}
    assert targets == {"postgresql://recon:***@db.example/books?table=items"}


def test_a_target_that_stops_answering_leaves_the_batch_pending(ws, tmp_path):
    target = StatusOnly()
    target.fail_with = TransientAdapterError("db.example: connection refused")
    report = wb.writeback(ws, "postgresql://recon@db.example/books", adapter=target, batch_size=2)
    assert report.stopped == "db.example: connection refused" and report.batches == 1
    assert [f[2] for f in report.failures] == ["failed", "failed"]
    assert api.status(ws)["states"]["failed"] == 2  # the first batch's two matches
    target.fail_with = None
    report = wb.writeback(ws, "postgresql://recon@db.example/books", adapter=target, batch_size=2)
    assert report.ok and report.written == 3 and report.batches == 2
    assert api.status(ws)["states"] == {"proposed": 1, "accepted": 0, "rejected": 0, "written": 3,
                                        "reversed": 0, "failed": 0}


def test_an_item_whose_adjustments_cannot_be_booked_fails_with_its_reason(tmp_path, capsys):
    matches = dict(MATCHES)
    matches["M-odd"] = ("B9", "INV-9", 9900, 10000, "goodwill -1.00", "Ko Hung Kin", "invoice")
    ws = make_workspace(tmp_path / "books.duckdb", matches)
    out = tmp_path / "files"
    assert main(["writeback", "--workspace", str(ws), "--to", f"dir:{out}"]) == 3
    printed = capsys.readouterr().out
    assert "wrote 3 of 4 pending item(s)" in printed and "1 not written" in printed
    assert "M-odd:" in printed and "adjustment cause 'goodwill' has no account" in printed
    assert decisions(ws, "write_failed")[0][:3] == ("M-odd", "accepted", "failed")
    assert "M-odd" not in {r["match_id"] for r in rows(out / "status.csv")}
    assert main(["status", "--workspace", str(ws), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {k: status[k] for k in ("proposed", "accepted", "rejected", "written", "reversed", "failed")} == {
        "proposed": 1, "accepted": 0, "rejected": 0, "written": 3, "reversed": 0, "failed": 1}
    assert status["pending_writeback"] == {f"dir:{out.resolve()}": {"write": 1, "reverse": 0}}
    assert status["last_errors"][0]["key"].startswith("M-odd:")


def test_dry_run_lists_what_would_be_written_and_writes_nothing(ws, tmp_path, capsys):
    out = tmp_path / "files"
    assert main(["writeback", "--workspace", str(ws), "--to", f"dir:{out}", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"recon writeback --dry-run: would write 3 item(s) to dir:{out.resolve()}")
    assert "journal: 6800 Dr 120.00 HKD; 1100 Cr 120.00 HKD" in printed
    assert not out.exists()
    with Workspace(ws) as w:
        assert w.con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'writes'"
                             ).fetchall() == [(0,)]
        assert w.con.execute("SELECT count(*) FROM decisions WHERE action = 'written'").fetchall() == [(0,)]
    assert api.writeback(ws, f"dir:{out}").written == 3


def test_status_text_of_a_fresh_workspace(ws, capsys):
    assert main(["status", "--workspace", str(ws)]) == 0
    printed = capsys.readouterr().out
    assert "accepted         3" in printed and "proposed         1" in printed
    assert "nothing written back yet" in printed


def test_missing_workspace_is_one_clear_line(tmp_path, capsys):
    assert main(["writeback", "--workspace", str(tmp_path / "nope.duckdb"), "--to", f"dir:{tmp_path}"]) == 2
    assert "workspace" in capsys.readouterr().err and not (tmp_path / "nope.duckdb").exists()


def test_target_names_mask_passwords():
    assert wb.mask_target("postgresql://u:pw@h:5432/db?password=x&table=t") == \
        "postgresql://u:***@h:5432/db?password=***&table=t"
    assert wb.target_key("dir:relative/out") == f"dir:{Path('relative/out').resolve()}"
