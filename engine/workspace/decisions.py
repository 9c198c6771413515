"""Workspace store: the decisions table, an append-only record of what happened to each match.

A match (a group of bank lines and ledger items, named by its stable ``match_id``) is proposed
by a run; from then on every change of its state is one decision row: a reviewer accepting,
rejecting, grouping lines by hand or undoing a match, and write-back recording that a target
has it (or refused it). Nothing is ever updated or deleted: a match's current state is the
``after_state`` of its latest decision (the highest ``seq``); a proposal without decisions is
``proposed``.

Each row keeps who (``by``), when (``at``, UTC), what (``action``, ``before_state`` ->
``after_state``), why (``comment``) and what the proposal was built from (the run, the rule-set
version, the scorer, its confidence and its evidence as JSON), so a decision can be replayed and
explained later.

State changes (``action``: before -> after):

==================  ===============================  ===========
action              from                             to
==================  ===============================  ===========
accept              proposed, failed                 accepted
reject              proposed                         rejected
manual              (none), proposed, rejected,      accepted
                    reversed
unmatch             accepted, written, failed        reversed
written             accepted, failed                 written
write_failed        accepted                         failed
reversal_written    reversed                         reversed
==================  ===============================  ===========

The lines of an ``accepted``, ``written`` or ``failed`` match are taken: no later run offers
them again. A ``rejected`` or ``reversed`` match's lines are open again, but that same group is
not proposed again (a reviewer may still build it with a manual match).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

import duckdb
import polars as pl

__all__ = [
    "STATES", "ACTIONS", "TRANSITIONS", "TAKEN_STATES", "NOT_REPROPOSED_STATES", "DECISIONS_DDL",
    "CURRENT_RUN_SQL", "append_decisions", "append_decision_frame", "current_states", "current_proposals",
    "transition_error",
]

STATES = ("proposed", "accepted", "rejected", "written", "reversed", "failed")

#: action -> (the states it may follow, the state it leaves)
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "accept": (frozenset({"proposed", "failed"}), "accepted"),
    "reject": (frozenset({"proposed"}), "rejected"),
    "manual": (frozenset({"proposed", "rejected", "reversed"}), "accepted"),
    "unmatch": (frozenset({"accepted", "written", "failed"}), "reversed"),
    "written": (frozenset({"accepted", "failed", "written"}), "written"),
    "write_failed": (frozenset({"accepted", "failed"}), "failed"),
    "reversal_written": (frozenset({"reversed"}), "reversed"),
}
ACTIONS = tuple(TRANSITIONS)

#: a match in one of these states holds its lines: no run offers them again
TAKEN_STATES = ("accepted", "written", "failed")
#: a match in one of these states is never proposed again as the same group
NOT_REPROPOSED_STATES = ("rejected", "reversed")

DECISIONS_DDL = """CREATE TABLE IF NOT EXISTS decisions (
    seq BIGINT, "at" TIMESTAMP, "by" VARCHAR, action VARCHAR, match_id VARCHAR,
    before_state VARCHAR, after_state VARCHAR, comment VARCHAR, run_id VARCHAR,
    rules_version VARCHAR, scorer VARCHAR, confidence DOUBLE, features_json VARCHAR,
    target VARCHAR, detail_json VARCHAR)"""

_COLUMNS = (
    "seq", "at", "by", "action", "match_id", "before_state", "after_state", "comment", "run_id",
    "rules_version", "scorer", "confidence", "features_json", "target", "detail_json",
)
_QUOTED_COLUMNS = ", ".join(f'"{name}"' for name in _COLUMNS)  # "at" and "by" are SQL keywords
_DECISION_SCHEMA = {name: pl.Utf8 for name in _COLUMNS} | {
    "seq": pl.Int64, "at": pl.Datetime("us"), "confidence": pl.Float64}

#: the run whose proposals are the current ones: the latest match run (a manual match is
#: recorded as a run of its own, which proposes nothing to review)
CURRENT_RUN_SQL = (
    "SELECT run_id FROM runs WHERE coalesce(mode, '') <> 'manual' "
    "ORDER BY started_at DESC, run_id DESC LIMIT 1"
)


def transition_error(action: str, match_id: str, state: str) -> str | None:
    """Why ``action`` cannot apply to ``match_id`` in ``state`` (None when it can)."""
    allowed, _after = TRANSITIONS[action]
    if state in allowed:
        return None
    ok = " or ".join(sorted(allowed))
    return f"{match_id} is {state}; {action} applies to a match that is {ok}"


def _in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    # outside a transaction every statement is a transaction of its own (a new id each time);
    # a probing BEGIN would abort the caller's open transaction in DuckDB 2
    first = con.execute("SELECT txid_current()").fetchall()[0][0]
    return con.execute("SELECT txid_current()").fetchall()[0][0] == first


def append_decisions(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> list[int]:
    """Append decision rows; return their sequence numbers.

    Parameters
    ----------
    con
        A connection to the workspace. When a transaction is open the rows join it (they are
        committed or rolled back with the caller's other changes); otherwise they are committed
        together in a transaction of their own.
    rows
        One dict a decision, keyed by the columns of the ``decisions`` table except ``seq`` and
        ``at`` (filled here: the next numbers after the highest ever used, and the current UTC
        time). ``before_state`` defaults to ``'proposed'``; missing optional keys are NULL;
        ``features_json`` / ``detail_json`` may be given as dicts (serialised as JSON).

    Returns
    -------
    list[int]
        The ``seq`` of each row, in order.

    Raises
    ------
    ValueError
        A row names an unknown action or state, or no match id.
    """
    if not rows:
        return []
    records = []
    for row in rows:
        unknown = set(row) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"decision row has unknown keys: {sorted(unknown)}")
        record = {name: row.get(name) for name in _COLUMNS}
        record["before_state"] = row.get("before_state") or "proposed"
        for key in ("features_json", "detail_json"):
            if record[key] is not None and not isinstance(record[key], str):
                record[key] = json.dumps(record[key], ensure_ascii=False, sort_keys=True)
        records.append(record)
    return append_decision_frame(con, pl.DataFrame(records, schema=_DECISION_SCHEMA))


def append_decision_frame(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> list[int]:
    """:func:`append_decisions` of a frame (one row a decision, columns of the ``decisions``
    table; ``seq`` and ``at`` are filled here): many decisions at once without a Python object
    a row (accepting 100k proposals)."""
    if frame.height == 0:
        return []
    frame = frame.with_columns(
        pl.lit(None, dtype=_DECISION_SCHEMA[name]).alias(name) for name in _COLUMNS if name not in frame.columns
    ).select(_COLUMNS).cast(_DECISION_SCHEMA).with_columns(pl.col("before_state").fill_null("proposed"))
    bad_action = frame.filter(~pl.col("action").is_in(list(TRANSITIONS)) | pl.col("action").is_null())
    if bad_action.height:
        raise ValueError(f"decision action {bad_action['action'][0]!r} is not one of {ACTIONS}")
    for key in ("before_state", "after_state"):
        bad = frame.filter(~pl.col(key).is_in(list(STATES)) | pl.col(key).is_null())
        if bad.height:
            raise ValueError(f"decision {key} {bad[key][0]!r} is not one of {STATES}")
    if frame.filter(pl.col("match_id").is_null() | (pl.col("match_id") == "")).height:
        raise ValueError("decision row has no match_id")
    at = datetime.now(UTC).replace(tzinfo=None)
    own = not _in_transaction(con)
    if own:
        con.execute("BEGIN TRANSACTION")
    try:
        [(last,)] = con.execute("SELECT coalesce(max(seq), 0) FROM decisions").fetchall()
        staged = frame.with_columns(
            seq=pl.int_range(last + 1, last + 1 + frame.height, dtype=pl.Int64),
            at=pl.lit(at, dtype=pl.Datetime("us")),
        )
        # one INSERT from an Arrow table (executemany costs milliseconds a row: minutes at 100k)
        con.register("_decisions_staged", staged.to_arrow())
        try:
            con.execute(f"INSERT INTO decisions ({_QUOTED_COLUMNS}) SELECT {_QUOTED_COLUMNS} FROM _decisions_staged")
        finally:
            con.unregister("_decisions_staged")
        if own:
            con.execute("COMMIT")
    except BaseException:
        if own:
            con.execute("ROLLBACK")
        raise
    return list(range(last + 1, last + 1 + frame.height))


_STATES_SQL = f"""
WITH latest AS (
    SELECT match_id, after_state AS state, seq, action
    FROM {{decisions}}
    QUALIFY row_number() OVER (PARTITION BY match_id ORDER BY seq DESC) = 1
), accepts AS (
    SELECT match_id, max(seq) AS accept_seq FROM {{decisions}}
    WHERE action IN ('accept', 'manual') GROUP BY match_id
), proposed AS (
    SELECT DISTINCT match_id FROM {{proposals}} WHERE run_id = ({CURRENT_RUN_SQL})
)
SELECT l.match_id, l.state, l.seq, l.action,
       CASE WHEN l.state IN ('accepted', 'written', 'failed') THEN a.accept_seq END AS accept_seq
FROM latest l LEFT JOIN accepts a USING (match_id)
UNION ALL
SELECT p.match_id, 'proposed', NULL::BIGINT, NULL::VARCHAR, NULL::BIGINT
FROM proposed p ANTI JOIN latest l USING (match_id)
ORDER BY match_id
"""

#: the decisions and proposals of some matches only (``current_proposals(con, match_ids)``)
_SCOPED = {"decisions": "(SELECT * FROM decisions WHERE match_id IN (SELECT match_id FROM _scope))",
           "proposals": "(SELECT * FROM proposals WHERE match_id IN (SELECT match_id FROM _scope))"}
_CURRENT_STATES_SQL = _STATES_SQL.format(decisions="decisions", proposals="proposals")

_STATES_SCHEMA = {"match_id": pl.Utf8, "state": pl.Utf8, "seq": pl.Int64, "action": pl.Utf8,
                  "accept_seq": pl.Int64}


def current_states(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The current state of every match the workspace knows.

    Returns
    -------
    polars.DataFrame
        ``match_id``, ``state`` (one of :data:`STATES`), ``seq`` and ``action`` of the latest
        decision (null for a proposal without decisions), and ``accept_seq``: for an
        ``accepted``, ``written`` or ``failed`` match the seq of the accept or manual decision
        that made it accepted (null otherwise). Every match with a decision is listed, and the
        proposals of the current run (the latest match run) without one, as ``proposed``.
        Sorted by ``match_id``.
    """
    return con.sql(_CURRENT_STATES_SQL).pl().cast(_STATES_SCHEMA)


_PROPOSALS_SQL = """
WITH states AS ({states}),
latest_rows AS (
    SELECT p.*, r.started_at AS proposed_at, r.rules_name, r.rules_version, r.scorer
    FROM proposals p JOIN runs r USING (run_id)
    WHERE p.match_id IN (SELECT match_id FROM states)
    QUALIFY row_number() OVER (PARTITION BY p.match_id ORDER BY r.started_at DESC, p.run_id DESC) = 1
)
SELECT s.state, s.seq AS decision_seq, s.action AS decision_action, s.accept_seq, lr.*
FROM states s JOIN latest_rows lr USING (match_id)
ORDER BY match_id
"""
_CURRENT_PROPOSALS_SQL = _PROPOSALS_SQL.format(states=_CURRENT_STATES_SQL)
_SCOPED_PROPOSALS_SQL = _PROPOSALS_SQL.format(states=_STATES_SQL.format(**_SCOPED))


def current_proposals(con: duckdb.DuckDBPyConnection, match_ids: Iterable[str] | None = None) -> pl.DataFrame:
    """Every match of :func:`current_states` with its current proposal row.

    The current proposal of a match is its row of the ``proposals`` table from the latest run
    that proposed it (a manual match's own run for a reviewer's group).

    Parameters
    ----------
    con
        A connection to the workspace.
    match_ids
        Only these matches (a match's state depends on its own decisions and proposals alone,
        so a decision on a few matches need not read the state of 100k others); None: all.

    Returns
    -------
    polars.DataFrame
        ``state``, ``decision_seq``, ``decision_action``, ``accept_seq``, the columns of the
        ``proposals`` table (``run_id``, ``match_id``, ``match_type``, ``status``, ...), and of
        the run: ``proposed_at``, ``rules_name``, ``rules_version``, ``scorer``.
    """
    if match_ids is None:
        return con.sql(_CURRENT_PROPOSALS_SQL).pl()
    con.register("_scope", pl.DataFrame({"match_id": list(match_ids)}, schema={"match_id": pl.Utf8}).to_arrow())
    try:
        return con.sql(_SCOPED_PROPOSALS_SQL).pl()
    finally:
        con.unregister("_scope")
