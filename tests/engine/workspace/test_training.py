"""The learned scorer trained from a workspace's decisions (engine.workspace.training, ``recon
train --workspace``, ``recon training``): opt-in, labels, the saved model and the next match.

The decided history is the bundled sample month (benchmarks/sample) ingested and matched once,
then reviewed as a reviewer who knows the answer would: proposals that are truth groups accepted,
the others rejected.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import polars as pl
import pytest

from engine import api
from engine.evaluate import load_truth
from engine.scoring.learned import LearnedScorer
from engine.workspace.store import Workspace
from engine.workspace.training import decision_labels, enable_training, scorer_path, train_workspace
from engine.workspace.whatif import DecidedHistory
from models.errors import InputError, ModelFileError
from rules.model import default_rules
from tests.engine.workspace.helpers import query

SAMPLE = Path(__file__).resolve().parents[3] / "benchmarks" / "sample"


def review_like_the_truth(workspace: Path, truth: Path) -> tuple[int, int]:
    """Accept the proposals that are truth groups, reject the others; (accepted, rejected)."""
    def key(bank_ids: str, ledger_ids: str) -> tuple:
        return tuple(sorted(bank_ids.split(";"))), tuple(sorted(filter(None, ledger_ids.split(";"))))

    groups = {key(*ids) for ids in load_truth(truth).select("bank_ids", "ledger_ids").iter_rows()}
    proposals = api.review(workspace).select("match_id", "bank_ids", "ledger_ids").rows()
    good = [match_id for match_id, *ids in proposals if key(*ids) in groups]
    bad = [match_id for match_id, *ids in proposals if key(*ids) not in groups]
    api.accept(workspace, good, by="陳大文")
    if bad:
        api.reject(workspace, bad, by="陳大文")
    return len(good), len(bad)


@pytest.fixture(scope="module")
def sample_decided(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("sample") / "books.duckdb"
    api.ingest(ws, bank=SAMPLE / "bank.csv", ledger=SAMPLE / "ledger.csv",
               processor=SAMPLE / "stripe_payouts.csv", fx=SAMPLE / "fx.csv")
    api.match_workspace(ws)
    accepted, rejected = review_like_the_truth(ws, SAMPLE / "truth.csv")
    assert accepted > 1500 and rejected >= 1
    return ws


@pytest.fixture
def books(tmp_path, sample_decided) -> Path:
    ws = tmp_path / "books.duckdb"
    shutil.copyfile(sample_decided, ws)
    return ws


def _enable(ws: Path) -> None:
    with Workspace(ws) as opened:
        enable_training(opened, "bank CSV exports and our own ledger", by="陳大文")


def test_training_is_refused_unless_the_workspace_opted_in(books, recon):
    with pytest.raises(InputError, match="not enabled"):
        train_workspace(books)
    code, _out, err = recon("train", "--workspace", books, "--save")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "is not enabled" in err and "--enable --source" in err and "Xero" in err
    assert not scorer_path(books).exists()


def test_enabling_needs_the_data_source(books, recon):
    code, _out, err = recon("training", "--workspace", books, "--enable")
    assert code == 2 and "--source" in err
    code, out, err = recon("training", "--workspace", books, "--enable", "--source", "bank CSV exports",
                           "--by", "陳大文")
    assert code == 0, err
    assert "enabled by 陳大文" in out and "bank CSV exports" in out
    status = recon.json("training", "--workspace", books)
    assert status["training_enabled"] is True and status["scorer"] == "rules"


def test_a_trained_model_round_trips_and_the_next_incremental_match_uses_it(books, recon):
    _enable(books)
    data = recon.json("train", "--workspace", books, "--save")
    model = scorer_path(books)
    assert data["model"] == str(model) and model.name == "books.scorer.json"
    by_scorer = {row["scorer"]: row for row in data["held_out"]}
    assert set(by_scorer) == {"learned", "rules"}
    for row in by_scorer.values():
        assert math.isfinite(row["brier"]) and row["pairs"] > 500 and row["positives"] > 100
    assert data["decisions"]["accepted"] > 1500
    # the file read back is the model trained, and scores with the built-in rules
    loaded = LearnedScorer.load(model, default_rules())
    assert loaded.to_document() == json.loads(model.read_text(encoding="utf-8"))
    assert loaded.training["source"] == "decisions" and loaded.training["truth"] is None
    assert recon.json("training", "--workspace", books)["scorer"] == "learned"

    run = api.match_workspace(books)
    assert run.outcome.scorer_kind == "learned"
    assert query(books, "SELECT scorer FROM runs WHERE run_id = ?", [run.run_id]) == [("learned",)]
    assert json.loads(query(books, "SELECT rules_json FROM runs WHERE run_id = ?",
                            [run.run_id])[0][0])["scoring"]["model"] == str(model)

    # back to the rule set's scorer: the next run scores with the rules again, the file stays
    code, out, err = recon("training", "--workspace", books, "--use-rules")
    assert code == 0 and "scorer: the rule set's" in out
    assert api.match_workspace(books).outcome.scorer_kind == "rules"
    assert model.exists()


def test_disabling_training_stops_using_the_model(books, recon):
    _enable(books)
    train_workspace(books, save=True)
    code, out, err = recon("training", "--workspace", books, "--disable")
    assert code == 0, err
    assert api.match_workspace(books).outcome.scorer_kind == "rules"
    with pytest.raises(InputError, match="not enabled"):
        train_workspace(books)


def test_a_replaced_model_file_is_refused_by_the_next_match(books, tmp_path):
    _enable(books)
    train_workspace(books, save=True)
    other = tmp_path / "other.duckdb"
    shutil.copyfile(books, other)
    train_workspace(other, save=True, seed=3)  # another model (another split)
    shutil.copyfile(scorer_path(other), scorer_path(books))
    with pytest.raises(ModelFileError, match="not the model saved as the workspace's scorer"):
        api.match_workspace(books)


def test_labels_from_decisions():
    matches = pl.DataFrame({
        "match_id": ["M-ok", "M-no", "M-split", "M-bad-split"],
        "verdict": ["accepted", "rejected", "accepted", "rejected"],
    })
    lines = pl.DataFrame({
        "match_id": ["M-ok", "M-ok", "M-no", "M-no", "M-split", "M-split", "M-split",
                     "M-bad-split", "M-bad-split", "M-bad-split"],
        "side": ["bank", "ledger", "bank", "ledger", "bank", "ledger", "ledger", "bank", "ledger", "ledger"],
        "id": ["B1", "L1", "B2", "L2", "B3", "L3", "L4", "B4", "L5", "L6"],
    })
    history = DecidedHistory(matches=matches, lines=lines, undecided=0)
    labels = decision_labels(history)
    rows = set(labels.rows())
    assert ("B1", "L1", True) in rows  # accepted one-to-one: the pair
    assert ("B1", None, False) in rows and (None, "L1", False) in rows  # and no other pair of its lines
    assert ("B2", "L2", False) in rows  # rejected one-to-one: the pair is not a match
    assert {("B3", None, False), (None, "L3", False), (None, "L4", False)} <= rows  # an accepted group's lines
    assert not any("B4" in row or "L5" in row or "L6" in row for row in rows)  # a rejected group: no label
    assert ("B2", None, False) not in rows  # a rejected pair's lines may match elsewhere
