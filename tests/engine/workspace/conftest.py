"""Fixtures of the workspace lifecycle tests: the hand-written Hong Kong month of
``tests/engine/data`` ingested into a fresh workspace, and ``recon`` run in-process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import api
from tests.engine.workspace.helpers import BANK, LEDGER, Recon


@pytest.fixture
def recon(capsys) -> Recon:
    """``recon ARGS`` in-process, returning (exit status, stdout, stderr)."""
    return Recon(capsys)


@pytest.fixture(scope="session")
def matched_template(tmp_path_factory) -> Path:
    """The month ingested and matched once, made once a session (copied by :func:`matched`)."""
    ws = tmp_path_factory.mktemp("template") / "books.duckdb"
    api.ingest(ws, bank=BANK, ledger=LEDGER)
    api.match_workspace(ws)
    return ws


@pytest.fixture
def matched(tmp_path, matched_template) -> Path:
    """A workspace of its own with the month ingested and matched once: 8 proposals (6 auto,
    2 for review), no decision yet."""
    ws = tmp_path / "books.duckdb"
    shutil.copyfile(matched_template, ws)
    return ws
