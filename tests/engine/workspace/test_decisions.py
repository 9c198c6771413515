"""The decisions contract (workspace store): ``append_decisions`` and ``current_states`` as
write-back and the events webhook use them."""

from __future__ import annotations

import polars as pl
import pytest

from engine import api
from engine.workspace.decisions import STATES, append_decisions, current_states
from engine.workspace.store import Workspace
from tests.engine.workspace.helpers import proposal_of


def test_current_states_follow_the_latest_decision(matched):
    first, second, third = (proposal_of(matched, b)["match_id"] for b in ("B01", "B02", "B03"))
    api.accept(matched, [first, second], by="amy")
    api.unmatch(matched, second, reason="wrong payer", by="amy")
    manual = api.match_manual(matched, bank=["B10"], ledger=[], adjust="overpayment", by="amy")
    with Workspace(matched) as ws:
        written = append_decisions(ws.con, [{"by": "recon", "action": "written", "match_id": first,
                                             "before_state": "accepted", "after_state": "written",
                                             "target": "dir:out", "detail_json": {"key": f"{first}:1"}}])
        states = current_states(ws.con)
    assert written == [5]
    rows = {r["match_id"]: r for r in states.iter_rows(named=True)}
    assert (rows[first]["state"], rows[first]["action"], rows[first]["seq"], rows[first]["accept_seq"]) == (
        "written", "written", 5, 1)
    assert (rows[second]["state"], rows[second]["seq"], rows[second]["accept_seq"]) == ("reversed", 3, None)
    assert (rows[manual.match_ids[0]]["state"], rows[manual.match_ids[0]]["accept_seq"]) == ("accepted", 4)
    assert (rows[third]["state"], rows[third]["seq"], rows[third]["action"]) == ("proposed", None, None)
    assert states.height == 9  # the run's 8 proposals and the manual match
    assert set(states["state"]) <= set(STATES)
    assert states.schema["accept_seq"] == pl.Int64


def test_append_decisions_joins_the_callers_transaction(matched):
    target = proposal_of(matched, "B01")["match_id"]
    with Workspace(matched) as ws:
        ws.con.execute("BEGIN TRANSACTION")
        append_decisions(ws.con, [{"by": "amy", "action": "accept", "match_id": target, "after_state": "accepted"}])
        ws.con.execute("ROLLBACK")
        assert ws.con.execute("SELECT count(*) FROM decisions").fetchall() == [(0,)]
        with pytest.raises(ValueError, match="decision action 'approve' is not one of"):
            append_decisions(ws.con, [{"action": "approve", "match_id": target, "after_state": "accepted"}])
        assert append_decisions(ws.con, [{"action": "accept", "match_id": target, "after_state": "accepted"}]) == [1]
