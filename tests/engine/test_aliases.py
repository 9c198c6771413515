"""An alias table links a payer's names in two scripts: without it 陳大文 and CHAN TAI MAN are no
evidence either way; with it they are the same payer (``recon match --aliases FILE``)."""

from __future__ import annotations

import csv

from engine.cli import main

BANK = """id,date,amount,currency,description,counterparty,reference,account
B1,2026-10-05,4321.00,HKD,FPS CR 陳大文,,,001
B2,2026-10-05,4321.00,HKD,FPS CR 黃小明,,,001
"""
LEDGER = """id,date,amount,currency,description,counterparty,reference,account,type,due_date
L1,2026-10-02,4321.00,HKD,Design fee,CHAN TAI MAN,,1100,invoice,
L2,2026-10-02,4321.00,HKD,Design fee,WONG SIU MING,,1100,invoice,
"""


def _run(tmp_path, *extra: str) -> dict[str, dict[str, str]]:
    (tmp_path / "bank.csv").write_text(BANK, encoding="utf-8")
    (tmp_path / "ledger.csv").write_text(LEDGER, encoding="utf-8")
    out = tmp_path / "out"
    code = main(["match", "--bank", str(tmp_path / "bank.csv"), "--ledger", str(tmp_path / "ledger.csv"),
                 "--out", str(out), "--quiet", *extra])
    assert code == 0
    with open(out / "matches.csv", encoding="utf-8", newline="") as fh:
        return {row["bank_ids"]: row for row in csv.DictReader(fh)}


def test_without_aliases_names_in_two_scripts_decide_nothing(tmp_path):
    rows = _run(tmp_path)
    # two payers, two same-amount invoices, names not comparable: nothing automatic
    assert all(row["status"] == "review" for row in rows.values())


def test_with_aliases_each_payer_finds_its_invoice(tmp_path):
    aliases = tmp_path / "aliases.csv"
    aliases.write_text("name,alias\n陳大文,CHAN TAI MAN\n黃小明,WONG SIU MING\n", encoding="utf-8")
    rows = _run(tmp_path, "--aliases", str(aliases))
    assert rows["B1"]["ledger_ids"] == "L1" and rows["B2"]["ledger_ids"] == "L2"
    assert rows["B1"]["status"] == "auto"
    assert "linked by the alias table" in rows["B1"]["explanation"]
    assert "陳大文" in rows["B1"]["bank_descriptions"]  # byte-exact


def test_a_bad_alias_file_is_one_line_naming_the_file(tmp_path, capsys):
    aliases = tmp_path / "aliases.csv"
    aliases.write_text("name\n陳大文\n", encoding="utf-8")
    (tmp_path / "bank.csv").write_text(BANK, encoding="utf-8")
    (tmp_path / "ledger.csv").write_text(LEDGER, encoding="utf-8")
    code = main(["match", "--bank", str(tmp_path / "bank.csv"), "--ledger", str(tmp_path / "ledger.csv"),
                 "--out", str(tmp_path / "out"), "--aliases", str(aliases)])
    err = capsys.readouterr().err
    assert code == 2 and "aliases.csv" in err and len(err.strip().splitlines()) == 1
