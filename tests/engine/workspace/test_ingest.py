"""``recon ingest`` (workspace store): lines added once each, payout lines and FX rates kept for
later runs, a line held with other content reported as a conflict naming both versions."""

from __future__ import annotations

from tests.engine.workspace.helpers import BANK, BANK_OVERLAP, FX, LEDGER, STRIPE, query


def test_ingesting_the_same_and_an_overlapping_statement_adds_each_line_once(tmp_path, recon):
    ws = tmp_path / "books.duckdb"
    code, out, _ = recon("ingest", "--workspace", ws, "--bank", BANK, "--ledger", LEDGER)
    assert code == 0
    # 12 rows: B07 twice (loaded once), B08 rejected (three decimals)
    assert "bank:      10 added, 0 already held" in out
    assert "ledger:    11 added, 0 already held" in out

    code, out, _ = recon("ingest", "--workspace", ws, "--bank", BANK, "--ledger", LEDGER)
    assert code == 0
    assert "bank:      0 added, 10 already held" in out
    assert "ledger:    0 added, 11 already held" in out

    # the next statement repeats B10 and B11 and brings B12
    code, out, _ = recon("ingest", "--workspace", ws, "--bank", BANK_OVERLAP)
    assert "bank:      1 added, 2 already held" in out
    assert query(ws, "SELECT id FROM bank_lines GROUP BY id HAVING count(*) > 1") == []
    assert query(ws, "SELECT count(*) FROM bank_lines") == [(11,)]
    assert query(ws, "SELECT count(*) FROM ledger_items") == [(11,)]
    ingests = [row[0] for row in query(ws, "SELECT ingest_id FROM ingests ORDER BY ingested_at")]
    assert len(ingests) == 3
    # B12 came with the third ingest, B01 with the first
    assert dict(query(ws, "SELECT id, first_run_id FROM bank_lines WHERE id IN ('B01', 'B12')")) == {
        "B01": ingests[0], "B12": ingests[2]}
    # the bad row is kept as a reject of the ingest that read it
    assert query(ws, 'SELECT run_id, line, "column" FROM rejects') == [(ingests[0], 10, "amount"), (ingests[1], 10, "amount")]


def test_names_are_stored_byte_exact(tmp_path, recon):
    ws = tmp_path / "books.duckdb"
    recon("ingest", "--workspace", ws, "--bank", BANK, "--ledger", LEDGER)
    [(stored,)] = query(ws, "SELECT encode(counterparty) FROM ledger_items WHERE id = 'L02'")
    assert bytes(stored) == "金港貿易有限公司".encode()


def test_a_line_held_with_other_content_is_a_conflict_naming_both_versions(tmp_path, recon):
    ws = tmp_path / "books.duckdb"
    recon("ingest", "--workspace", ws, "--ledger", LEDGER)
    changed = tmp_path / "ledger_april.csv"
    changed.write_text(
        "id,date,amount,currency,description,counterparty,reference,account,type,due_date\n"
        "L11,2026-02-25,7900.00,HKD,Invoice INV-2026-00111,Kowloon Trading Co. Ltd,INV-2026-00111,1100-AR,invoice,2026-03-27\n"
        "L12,2026-03-25,300.00,HKD,Invoice INV-2026-00112,陳大文,INV-2026-00112,1100-AR,invoice,2026-04-24\n",
        encoding="utf-8",
    )
    code, out, _ = recon("ingest", "--workspace", ws, "--ledger", changed)
    assert code == 0
    assert "ledger:    1 added, 0 already held" in out
    assert "conflicts: 1" in out
    [line] = [line.strip() for line in out.splitlines() if line.strip().startswith("conflict:")]
    assert line == (
        f"conflict: ledger L11 is held from {LEDGER} line 12; {changed} line 2 has different content "
        "(amount 7800.00 held, 7900.00 new): kept the held version, the new line is not loaded"
    )
    # the held version is kept; the conflict is recorded with both versions
    assert query(ws, "SELECT amount_minor FROM ledger_items WHERE id = 'L11'") == [(780000,)]
    assert query(ws, "SELECT side, id, held_source_file, held_line, new_source_file, new_line FROM conflicts") == [
        ("ledger", "L11", str(LEDGER), 12, str(changed), 2)]
    # the conflict is printed even when --quiet
    code, out, err = recon("ingest", "--workspace", ws, "--ledger", changed, "--quiet")
    assert code == 0 and out == ""
    assert "conflict: ledger L11" in err


def test_payout_lines_and_fx_rates_are_kept_once(tmp_path, recon):
    ws = tmp_path / "books.duckdb"
    for _ in range(2):
        code, out, err = recon("ingest", "--workspace", ws, "--processor", STRIPE, "--fx", FX)
        assert code == 0, err
    assert "processor: 0 added, 2 already held" in out
    assert "fx:        0 added, 2 already held" in out  # the third rate ("seven") is rejected
    assert query(ws, "SELECT processor, line_id, payout_id, net_minor FROM payout_lines ORDER BY line_id") == [
        ("stripe", "txn_1HK001", "po_1HK001", 96600), ("stripe", "txn_1HK002", "po_1HK001", -20000)]
    assert query(ws, "SELECT base, quote, rate_text FROM fx_rates ORDER BY base") == [
        ("EUR", "HKD", "8.4710"), ("USD", "HKD", "7.8125")]


def test_nothing_to_ingest_is_one_clear_line(tmp_path, recon):
    code, _, err = recon("ingest", "--workspace", tmp_path / "books.duckdb")
    assert code == 2
    assert err == "recon: error: nothing to ingest: give --bank, --ledger, --processor or --fx files\n"


def test_a_version_that_fills_in_empty_fields_completes_the_held_line(tmp_path, recon):
    """A Stripe line exported before its payout was known, then again with the payout: the
    held line gains its payout id (no conflict); a version that lacks a field is no conflict
    either, and changes nothing."""
    header = ("automatic_payout_id,automatic_payout_effective_at,balance_transaction_id,created,available_on,"
              "currency,gross,fee,net,reporting_category,source_id,description\n")
    row = ",2026-03-09 10:00:00,2026-03-11 00:00:00,hkd,1000.00,34.00,966.00,charge,ch_1HK001,Order 2001 陳大文\n"
    pending, paid, bare = (tmp_path / name for name in ("pending.csv", "paid.csv", "bare.csv"))
    pending.write_text(header + ",,txn_1HK001" + row, encoding="utf-8")
    paid.write_text(header + "po_1HK001,2026-03-12 00:00:00,txn_1HK001" + row, encoding="utf-8")
    bare.write_text(header + "po_1HK001,2026-03-12 00:00:00,txn_1HK001" + row.replace("Order 2001 陳大文", ""),
                    encoding="utf-8")
    ws = tmp_path / "books.duckdb"
    recon("ingest", "--workspace", ws, "--processor", pending)
    assert query(ws, "SELECT payout_id FROM payout_lines") == [(None,)]
    code, out, _ = recon("ingest", "--workspace", ws, "--processor", paid)
    assert code == 0
    assert "processor: 0 added, 0 already held, 1 completed (empty fields filled in)" in out
    assert "conflicts: 0" in out
    code, out, _ = recon("ingest", "--workspace", ws, "--processor", bare)
    assert "processor: 0 added, 1 already held" in out and "conflicts: 0" in out
    assert query(ws, "SELECT payout_id, description, source_file FROM payout_lines") == [
        ("po_1HK001", "Order 2001 陳大文", str(pending))]
