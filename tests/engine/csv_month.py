"""Shared by the engine tests: a month written as canonical CSV files and matched through
``engine.api.match``, as a user runs it."""

from __future__ import annotations

from pathlib import Path

import engine.api as recon

HEADER_BANK = "id,date,amount,currency,description,counterparty,reference,account\n"
HEADER_LEDGER = "id,date,amount,currency,description,counterparty,reference,account,type,due_date\n"


def match_csv(tmp_path: Path, bank_rows: str, ledger_rows: str, **options) -> recon.MatchResult:
    """Write ``bank.csv`` and ``ledger.csv`` (the rows under the canonical headers) into
    ``tmp_path`` and match them; ``options`` go to :func:`engine.api.match` (``rules``,
    ``aliases``...)."""
    (tmp_path / "bank.csv").write_text(HEADER_BANK + bank_rows, encoding="utf-8")
    (tmp_path / "ledger.csv").write_text(HEADER_LEDGER + ledger_rows, encoding="utf-8")
    return recon.match(tmp_path / "bank.csv", tmp_path / "ledger.csv", **options)


def by_bank(result: recon.MatchResult) -> dict[str, dict]:
    """The proposals keyed by their ``bank_ids``."""
    return {r["bank_ids"]: r for r in result.proposals.iter_rows(named=True)}


def proposals_by_bank(tmp_path: Path, bank_rows: str, ledger_rows: str, **options) -> dict[str, dict]:
    """:func:`match_csv`, the proposals keyed by their ``bank_ids``."""
    return by_bank(match_csv(tmp_path, bank_rows, ledger_rows, **options))
