"""Fixtures of the workspace lifecycle tests: the hand-written Hong Kong month of
``tests/engine/data`` ingested into a fresh workspace, and ``recon`` run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.workspace.helpers import BANK, LEDGER, Recon


@pytest.fixture
def recon(capsys) -> Recon:
    """``recon ARGS`` in-process, returning (exit status, stdout, stderr)."""
    return Recon(capsys)


@pytest.fixture
def matched(tmp_path, recon) -> Path:
    """A workspace with the month ingested and matched once (6 auto, 2 review proposals)."""
    ws = tmp_path / "books.duckdb"
    code, _, err = recon("ingest", "--workspace", ws, "--bank", BANK, "--ledger", LEDGER, "--quiet")
    assert code == 0, err
    code, _, err = recon("match", "--workspace", ws, "--quiet")
    assert code == 0, err
    return ws
