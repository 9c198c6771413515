"""Workspace store: what an incremental match run is given, read from the workspace.

An incremental run (``recon match --workspace W``) matches the workspace's **open** lines: every
bank line and ledger item that is not in a match whose current state holds its lines
(``accepted``, ``written``, ``failed``; :data:`engine.workspace.decisions.TAKEN_STATES`). That
covers the lines ingested since the last run and the lines left open by earlier runs, so a late
ledger item can turn a bank line left open into a proposal. Accepted and written matches are
never disturbed: their lines are not offered again. A group a reviewer rejected (or undid) is not
proposed again as the same group (:data:`~engine.workspace.decisions.NOT_REPROPOSED_STATES`);
its lines may be proposed in other groups.

The run's proposals become the current ones: earlier runs' proposals still undecided are
replaced (the ``proposals`` table keeps every run's rows).

The processor payout lines and FX rates the workspace holds are given to every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from engine.workspace.decisions import NOT_REPROPOSED_STATES, TAKEN_STATES, current_states
from engine.workspace.store import Workspace
from feeds.fx import FX_SCHEMA
from models.schema import BANK_SCHEMA, LEDGER_SCHEMA, PAYOUT_LINE_SCHEMA

__all__ = ["OpenInputs", "open_inputs"]


@dataclass
class OpenInputs:
    """The frames an incremental run matches, and what was left out of them.

    Attributes
    ----------
    bank, ledger
        Open bank lines and ledger items (``BANK_SCHEMA`` / ``LEDGER_SCHEMA``).
    payout_lines, fx_rates
        Every payout line and FX rate the workspace holds (None when it holds none).
    excluded
        The lines of the groups not to propose again (``match_id``, ``side``, ``id``).
    taken_bank, taken_ledger
        How many lines accepted or written matches hold (not offered).
    """

    bank: pl.DataFrame
    ledger: pl.DataFrame
    payout_lines: pl.DataFrame | None
    fx_rates: pl.DataFrame | None
    excluded: pl.DataFrame
    taken_bank: int
    taken_ledger: int


def _in_states(states: pl.DataFrame, wanted: tuple[str, ...]) -> pl.Series:
    return states.filter(pl.col("state").is_in(list(wanted)))["match_id"]


def open_inputs(ws: Workspace) -> OpenInputs:
    """Read the open lines, payout lines and FX rates of ``ws`` (see the module docstring)."""
    con = ws.con
    states = current_states(con)
    con.register("_taken_ids", _in_states(states, TAKEN_STATES).to_frame().to_arrow())
    con.register("_excluded_ids", _in_states(states, NOT_REPROPOSED_STATES).to_frame().to_arrow())
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _taken AS SELECT DISTINCT side, id FROM match_lines "
            "WHERE match_id IN (SELECT match_id FROM _taken_ids)"
        )

        def side(table: str, name: str, schema: dict) -> tuple[pl.DataFrame, int]:
            frame = con.sql(
                f"SELECT {', '.join(schema)} FROM {table} t "
                f"WHERE t.id NOT IN (SELECT id FROM _taken WHERE side = '{name}') ORDER BY t.id"
            ).pl().cast(schema)
            taken = con.execute(f"SELECT count(*) FROM _taken WHERE side = '{name}'").fetchall()[0][0]
            return frame, taken

        bank, taken_bank = side("bank_lines", "bank", BANK_SCHEMA)
        ledger, taken_ledger = side("ledger_items", "ledger", LEDGER_SCHEMA)
        excluded = con.sql(
            "SELECT DISTINCT match_id, side, id FROM match_lines "
            "WHERE match_id IN (SELECT match_id FROM _excluded_ids)"
        ).pl().cast({"match_id": pl.Utf8, "side": pl.Utf8, "id": pl.Utf8})
        payouts = con.sql(f"SELECT {', '.join(PAYOUT_LINE_SCHEMA)} FROM payout_lines "
                          "ORDER BY processor, line_id").pl().cast(PAYOUT_LINE_SCHEMA)
        fx = con.sql(f"SELECT {', '.join(FX_SCHEMA)} FROM fx_rates ORDER BY date, base, quote").pl().cast(FX_SCHEMA)
        con.execute("DROP TABLE _taken")
    finally:
        con.unregister("_taken_ids")
        con.unregister("_excluded_ids")
    return OpenInputs(
        bank=bank, ledger=ledger,
        payout_lines=payouts if payouts.height else None,
        fx_rates=fx if fx.height else None,
        excluded=excluded, taken_bank=taken_bank, taken_ledger=taken_ledger,
    )
