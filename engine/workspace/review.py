"""Workspace store: a reviewer's work on the proposals — list, accept, reject, group by hand, undo.

Every change is one or more rows of the append-only ``decisions`` table
(:mod:`engine.workspace.decisions`), written in one transaction under the workspace lock: a
command either records all the decisions it was asked for or none (an unknown match id, or a
match in a state the action does not apply to, refuses the whole command with every problem
named).

- :func:`list_matches`: the current proposals with their state, filtered (status, state, type,
  amount range, ids);
- :func:`decide`: accept or reject the matches picked by id, by the same filters, or every
  proposed ``auto`` proposal;
- :func:`manual_match`: a reviewer's own group of bank lines and ledger items, refused when its
  amounts differ and no adjustment cause books the difference, or when a line is already in an
  accepted or written match; its id is the one a run would give the same group;
- :func:`unmatch`: undo an accepted or written match (``reversed``); its lines are open again and
  nothing is deleted (write-back writes reversing entries where it had been written).
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import polars as pl

from engine.pipeline import adjustment_line, match_id_expr
from engine.workspace.crash import crash_point
from engine.workspace.decisions import (
    STATES,
    TAKEN_STATES,
    TRANSITIONS,
    append_decision_frame,
    append_decisions,
    current_proposals,
    transition_error,
)
from engine.workspace.store import Workspace, rules_version
from models.errors import InputError
from models.money import format_minor
from models.schema import ID_SEPARATOR
from rules.model import RuleSet

__all__ = [
    "Filters", "DecisionReport", "reviewer", "list_matches", "decide", "manual_match", "unmatch",
    "MATCH_STATUSES",
]

MATCH_STATUSES = ("auto", "review", "manual")

#: what a decision keeps of the proposal it decided (``features_json``)
_FEATURES = ("match_type", "status", "bank_ids", "ledger_ids", "bank_amount", "ledger_amount", "difference",
             "currency", "explanation", "adjustments", "open_amount")


def reviewer(by: str | None = None) -> str:
    """``by``, or the environment's user (``LOGNAME``, ``USER``, ``LNAME``, ``USERNAME``, then the
    account name)."""
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _amount(text: str | None, what: str) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise InputError(f"{what} {text!r}: not a decimal amount (e.g. 1000 or 1000.50)") from None
    if not value.is_finite():
        raise InputError(f"{what} {text!r}: not a decimal amount (e.g. 1000 or 1000.50)")
    return value


@dataclass
class Filters:
    """Which matches a command works on (all given conditions hold).

    Parameters
    ----------
    status
        ``auto``, ``review`` or ``manual`` (the proposal's status).
    states
        Current states (:data:`engine.workspace.decisions.STATES`); empty: any.
    match_type
        ``one_to_one``, ``one_to_many``, ``many_to_one``, ``many_to_many``, ``payout``, ``manual``.
    min_amount, max_amount
        Bounds on the size of the bank side (its absolute amount, in the match's currency), as
        decimal text or Decimal.
    match_ids
        Only these matches.
    """

    status: str | None = None
    states: tuple[str, ...] = ()
    match_type: str | None = None
    min_amount: str | Decimal | None = None
    max_amount: str | Decimal | None = None
    match_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.states, str):
            self.states = (self.states,)
        self.states = tuple(self.states or ())
        self.match_ids = tuple(self.match_ids or ())
        problems = [f"state {s!r} is not one of {', '.join(STATES)}" for s in self.states if s not in STATES]
        if self.status is not None and self.status not in MATCH_STATUSES:
            problems.append(f"status {self.status!r} is not one of {', '.join(MATCH_STATUSES)}")
        if problems:
            raise InputError("; ".join(problems))
        self.min_amount = _amount(self.min_amount, "--min-amount")
        self.max_amount = _amount(self.max_amount, "--max-amount")

    @property
    def any(self) -> bool:
        """Whether any condition is set."""
        return bool(self.status or self.states or self.match_type or self.min_amount is not None
                    or self.max_amount is not None or self.match_ids)


def _apply(frame: pl.DataFrame, filters: Filters) -> pl.DataFrame:
    conditions = []
    if filters.status:
        conditions.append(pl.col("status") == filters.status)
    if filters.states:
        conditions.append(pl.col("state").is_in(list(filters.states)))
    if filters.match_type:
        conditions.append(pl.col("match_type") == filters.match_type)
    if filters.match_ids:
        conditions.append(pl.col("match_id").is_in(list(filters.match_ids)))
    if filters.min_amount is not None or filters.max_amount is not None:
        # exact decimal comparison of the amount text (never a float)
        size = pl.col("bank_amount").str.strip_prefix("-").cast(pl.Decimal(38, 6), strict=False)
        if filters.min_amount is not None:
            conditions.append(size >= filters.min_amount)
        if filters.max_amount is not None:
            conditions.append(size <= filters.max_amount)
    return frame.filter(*conditions) if conditions else frame


def _with_payers(con, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``payers``: the distinct counterparties of each match's ledger items (the
    bank lines' counterparties where the ledger side names none), byte-exact."""
    if frame.height == 0:
        return frame.with_columns(payers=pl.lit(None, dtype=pl.Utf8))
    con.register("_wanted", frame.select("run_id", "match_id").to_arrow())
    try:
        payers = con.sql(
            """SELECT w.match_id, coalesce(
                      string_agg(DISTINCT li.counterparty, '; ' ORDER BY li.counterparty)
                          FILTER (WHERE trim(li.counterparty) <> ''),
                      string_agg(DISTINCT bl.counterparty, '; ' ORDER BY bl.counterparty)
                          FILTER (WHERE trim(bl.counterparty) <> '')) AS payers
               FROM _wanted w JOIN match_lines ml ON ml.run_id = w.run_id AND ml.match_id = w.match_id
               LEFT JOIN ledger_items li ON ml.side = 'ledger' AND li.id = ml.id
               LEFT JOIN bank_lines bl ON ml.side = 'bank' AND bl.id = ml.id
               GROUP BY w.match_id"""
        ).pl()
    finally:
        con.unregister("_wanted")
    return frame.join(payers.cast({"match_id": pl.Utf8, "payers": pl.Utf8}), on="match_id", how="left",
                      maintain_order="left")


def list_matches(ws: Workspace, filters: Filters | None = None, limit: int | None = None) -> pl.DataFrame:
    """The workspace's current matches that pass ``filters``, by match id.

    Returns
    -------
    polars.DataFrame
        ``match_id``, ``match_type``, ``status``, ``state``, ``confidence``, ``currency``,
        ``bank_amount``, ``ledger_amount``, ``difference`` (exact decimal text), ``bank_ids``,
        ``ledger_ids`` (``;``-joined), ``payers``, ``explanation``, ``adjustments``,
        ``open_amount``, ``run_id``, ``decision_seq``, ``accept_seq``, ``rules_version``,
        ``scorer``.
    """
    filters = filters or Filters()
    frame = _apply(current_proposals(ws.con), filters)
    if limit is not None:
        frame = frame.head(limit)
    frame = _with_payers(ws.con, frame)
    return frame.select(
        "match_id", "match_type", "status", "state", "confidence", "currency", "bank_amount", "ledger_amount",
        "difference", "bank_ids", "ledger_ids", "payers", "explanation", "adjustments", "open_amount", "run_id",
        "decision_seq", "accept_seq", "rules_version", "scorer",
    )


@dataclass
class DecisionReport:
    """What a decision command did: the action, the matches and their decision seqs."""

    action: str
    match_ids: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    by: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.match_ids)


_PAST = {"accept": "accepted", "reject": "rejected", "manual": "matched by hand", "unmatch": "unmatched"}


def _unknown(con, match_id: str, ws: Workspace) -> str:
    """Why ``match_id`` is not a current match: never proposed, or replaced by a later run."""
    rows = con.execute("SELECT run_id FROM proposals WHERE match_id = ? ORDER BY run_id DESC LIMIT 1",
                       [match_id]).fetchall()
    if not rows:
        return f"no match {match_id} in {ws.path}"
    return (f"{match_id} was proposed by run {rows[0][0]} and replaced by a later run's proposals "
            "(`recon review` lists the current ones)")


def _decision_row(action: str, row: dict, by: str, comment: str | None, detail: dict | None = None) -> dict:
    return {
        "by": by, "action": action, "match_id": row["match_id"], "before_state": row["state"],
        "after_state": TRANSITIONS[action][1], "comment": comment, "run_id": row["run_id"],
        "rules_version": row.get("rules_version"), "scorer": row.get("scorer"),
        "confidence": row.get("confidence"),
        "features_json": {name: row.get(name) for name in _FEATURES},
        "detail_json": detail,
    }


def _decision_frame(action: str, picked: pl.DataFrame, by: str, comment: str | None) -> pl.DataFrame:
    """The decisions of ``action`` on the current proposals ``picked`` (as :func:`_decision_row`
    makes one, a column at a time)."""
    return picked.select(
        pl.lit(by, dtype=pl.Utf8).alias("by"),
        pl.lit(action, dtype=pl.Utf8).alias("action"),
        "match_id",
        pl.col("state").alias("before_state"),
        pl.lit(TRANSITIONS[action][1], dtype=pl.Utf8).alias("after_state"),
        pl.lit(comment, dtype=pl.Utf8).alias("comment"),
        "run_id", "rules_version", "scorer", "confidence",
        pl.struct(sorted(_FEATURES)).struct.json_encode().alias("features_json"),
    )


def _lines_of(con, rows: pl.DataFrame | list[dict]) -> pl.DataFrame:
    """The lines (``match_id``, ``side``, ``id``) of the current proposal of each of ``rows``."""
    if isinstance(rows, list):
        rows = pl.DataFrame(rows) if rows else pl.DataFrame(schema={"run_id": pl.Utf8, "match_id": pl.Utf8})
    wanted = rows.select(pl.col("run_id").cast(pl.Utf8), pl.col("match_id").cast(pl.Utf8))
    con.register("_wanted", wanted.to_arrow())
    try:
        return con.sql("SELECT ml.match_id, ml.side, ml.id FROM match_lines ml "
                       "JOIN _wanted w USING (run_id, match_id)").pl()
    finally:
        con.unregister("_wanted")


def _taken_lines(con, current: pl.DataFrame) -> pl.DataFrame:
    """Lines held by matches in a taken state: ``side``, ``id``, ``taken_by`` (match id)."""
    taken = current.filter(pl.col("state").is_in(list(TAKEN_STATES)))
    if taken.height == 0:
        return pl.DataFrame(schema={"side": pl.Utf8, "id": pl.Utf8, "taken_by": pl.Utf8})
    return _lines_of(con, taken).select(
        "side", "id", pl.col("match_id").alias("taken_by"))


def _sharing_lines(con, match_ids: tuple[str, ...]) -> list[str]:
    """``match_ids`` and every match (of any run) holding one of their lines."""
    con.register("_named", pl.DataFrame({"match_id": list(match_ids)}, schema={"match_id": pl.Utf8}).to_arrow())
    try:
        found = con.execute(
            "SELECT DISTINCT other.match_id FROM match_lines named JOIN match_lines other "
            "ON other.side = named.side AND other.id = named.id "
            "WHERE named.match_id IN (SELECT match_id FROM _named)").fetchall()
    finally:
        con.unregister("_named")
    return list(dict.fromkeys([*match_ids, *(m for (m,) in found)]))


def _line_clashes(con, current: pl.DataFrame, rows: pl.DataFrame) -> list[str]:
    """Problems of accepting ``rows``: a line already in an accepted or written match, or in two
    of the matches picked."""
    lines = _lines_of(con, rows)
    taken = _taken_lines(con, current)
    problems = [
        f"{r['match_id']}: {r['side']} {r['id']} is already in {r['taken_by']}, which is accepted or written"
        for r in lines.join(taken, on=["side", "id"]).filter(pl.col("match_id") != pl.col("taken_by"))
        .sort("match_id", "id").iter_rows(named=True)
    ]
    shared = lines.group_by("side", "id").agg(pl.col("match_id").sort()).filter(pl.col("match_id").list.len() > 1)
    problems += [
        f"{r['side']} {r['id']} is in more than one of the matches picked ({', '.join(r['match_id'])})"
        for r in shared.sort("id").iter_rows(named=True)
    ]
    return problems


def decide(
    ws: Workspace,
    action: str,
    match_ids: tuple[str, ...] | list[str] = (),
    filters: Filters | None = None,
    all_auto: bool = False,
    comment: str | None = None,
    by: str | None = None,
) -> DecisionReport:
    """Accept or reject matches; all of them or none.

    Parameters
    ----------
    ws
        The open workspace.
    action
        ``"accept"`` or ``"reject"``.
    match_ids
        The matches to decide; each must exist and be in a state the action applies to
        (accept: ``proposed`` or ``failed``; reject: ``proposed``).
    filters
        Or: every match passing these filters that the action applies to (the ids above
        narrow it further).
    all_auto
        Or: every ``proposed`` proposal with status ``auto``.
    comment
        Why (kept with each decision).
    by
        Who (default: the environment's user).

    Returns
    -------
    DecisionReport

    Raises
    ------
    InputError
        Nothing picked the matches, a match id is unknown or in the wrong state, or a line of a
        match to accept is already in an accepted or written match: nothing is recorded.
    """
    if action not in ("accept", "reject"):
        raise InputError(f"decide: action {action!r} is not accept or reject")
    filters = filters or Filters()
    match_ids = tuple(dict.fromkeys(match_ids))
    if not (match_ids or filters.any or all_auto):
        raise InputError(f"{action}: name the matches (MATCH_ID ..., filters such as --status, or --all-auto)")
    by = reviewer(by)
    allowed = TRANSITIONS[action][0]
    con = ws.con
    con.execute("BEGIN TRANSACTION")
    try:
        # matches named by id: only they and the matches sharing a line with them matter
        scope = _sharing_lines(con, match_ids) if match_ids and not (filters.any or all_auto) else None
        current = current_proposals(con, scope)
        problems = []
        if match_ids:
            known = current.filter(pl.col("match_id").is_in(list(match_ids)))
            missing = sorted(set(match_ids) - set(known["match_id"].to_list()))
            problems += [_unknown(con, m, ws) for m in missing]
        if match_ids and not (filters.any or all_auto):
            picked = known
            problems += [
                transition_error(action, r["match_id"], r["state"])
                for r in picked.iter_rows(named=True) if r["state"] not in allowed
            ]
        else:
            picked = _apply(current, filters)
            if match_ids:
                picked = picked.filter(pl.col("match_id").is_in(list(match_ids)))
            if all_auto:
                picked = picked.filter((pl.col("status") == "auto") & (pl.col("state") == "proposed"))
            if filters.states and not set(filters.states) & allowed:
                problems.append(f"{action} applies to matches that are {' or '.join(sorted(allowed))}, "
                                f"not {', '.join(filters.states)}")
            picked = picked.filter(pl.col("state").is_in(list(allowed)))
        if action == "accept" and picked.height and not problems:
            problems += _line_clashes(con, current, picked)
        if problems:
            raise InputError(f"{action}: nothing done: " + "; ".join(problems))
        seqs = append_decision_frame(con, _decision_frame(action, picked, by, comment))
        crash_point(f"{action}:before-commit")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return DecisionReport(action, picked["match_id"].to_list(), seqs, by)


def _load_lines(con, table: str, ids: list[str]) -> pl.DataFrame:
    con.register("_ids", pl.DataFrame({"id": ids}, schema={"id": pl.Utf8}).to_arrow())
    try:
        return con.sql(f"SELECT id, amount_minor, currency FROM {table} WHERE id IN (SELECT id FROM _ids)").pl()
    finally:
        con.unregister("_ids")


def manual_match(
    ws: Workspace,
    bank_ids: list[str],
    ledger_ids: list[str],
    rules: RuleSet,
    adjust: str | None = None,
    comment: str | None = None,
    by: str | None = None,
) -> DecisionReport:
    """Record a reviewer's own group of bank lines and ledger items as an accepted match.

    The group must balance (bank total = ledger total, in one currency), or ``adjust`` names
    the cause the difference is booked to (a cause of ``[adjustments.accounts]`` in ``rules``,
    e.g. ``bank_charge``); a group of bank lines alone needs ``adjust``. Its match id is the one
    a run gives the same lines (:func:`engine.pipeline.match_id_expr`). It gets a proposal row
    and match lines of its own (run ``manual-SEQ``, type and status ``manual``) and one
    ``manual`` decision.

    Raises
    ------
    InputError
        An id is unknown, a line is already in an accepted or written match, the lines are in
        several currencies, the amounts differ and no (known) adjustment cause is given.
    """
    bank_ids = sorted(dict.fromkeys(bank_ids))
    ledger_ids = sorted(dict.fromkeys(ledger_ids))
    if not bank_ids:
        raise InputError("match-manual: give the bank line(s) with --bank ID ...")
    if adjust is not None and adjust not in rules.adjustments.accounts:
        causes = ", ".join(sorted(rules.adjustments.accounts))
        raise InputError(f"match-manual: --adjust {adjust!r} is not an adjustment cause of rule set "
                         f"'{rules.name}' (one of: {causes})")
    by = reviewer(by)
    con = ws.con
    con.execute("BEGIN TRANSACTION")
    try:
        bank = _load_lines(con, "bank_lines", bank_ids)
        ledger = _load_lines(con, "ledger_items", ledger_ids)
        problems = [f"no bank line {i} in {ws.path}" for i in sorted(set(bank_ids) - set(bank["id"].to_list()))]
        problems += [f"no ledger item {i} in {ws.path}" for i in sorted(set(ledger_ids) - set(ledger["id"].to_list()))]
        if problems:
            raise InputError("match-manual: " + "; ".join(problems))
        current = current_proposals(con)
        taken = _taken_lines(con, current)
        wanted = pl.DataFrame({"side": ["bank"] * len(bank_ids) + ["ledger"] * len(ledger_ids),
                               "id": bank_ids + ledger_ids})
        clashes = wanted.join(taken, on=["side", "id"]).sort("side", "id")
        if clashes.height:
            raise InputError("match-manual: refused: " + "; ".join(
                f"{r['side']} {r['id']} is already in {r['taken_by']}, which is accepted or written "
                f"(unmatch it first)" for r in clashes.iter_rows(named=True)))
        currencies = sorted(set(bank["currency"].to_list()) | set(ledger["currency"].to_list()))
        if len(currencies) != 1:
            raise InputError(f"match-manual: the lines are in {', '.join(currencies)}; a manual match is in "
                             "one currency")
        currency = currencies[0]
        bank_total, ledger_total = int(bank["amount_minor"].sum()), int(ledger["amount_minor"].sum())
        difference = bank_total - ledger_total
        if difference and adjust is None:
            causes = ", ".join(sorted(rules.adjustments.accounts))
            raise InputError(
                f"match-manual: refused: the bank lines total {currency} {format_minor(bank_total, currency)} and "
                f"the ledger items {currency} {format_minor(ledger_total, currency)}, a difference of {currency} "
                f"{format_minor(difference, currency)}; give --adjust CAUSE to book it ({causes}) or pick lines "
                "that balance")
        match_id = pl.select(match_id_expr(pl.lit(bank_ids, dtype=pl.List(pl.Utf8)),
                                           pl.lit(ledger_ids, dtype=pl.List(pl.Utf8)))).item()
        state_row = current.filter(pl.col("match_id") == match_id)
        before = state_row["state"][0] if state_row.height else "proposed"
        if before not in TRANSITIONS["manual"][0]:
            raise InputError(f"match-manual: {transition_error('manual', match_id, before)}")
        adjustments = ""
        if difference:
            adjustments = pl.select(adjustment_line(pl.lit(adjust), pl.lit(difference, dtype=pl.Int64),
                                                    pl.lit(currency), rules)).item()
        [(last,)] = con.execute("SELECT coalesce(max(seq), 0) FROM decisions").fetchall()
        seq = last + 1
        run_id = f"manual-{seq}"
        now = datetime.now(UTC).replace(tzinfo=None)
        explanation = f"matched by hand by {by}" + (f": {comment}" if comment else "")
        if adjustments:
            explanation += f"; balanced by {adjustments}"
        proposal = {
            "run_id": run_id, "match_id": match_id, "match_type": "manual", "status": "manual", "confidence": None,
            "bank_ids": ID_SEPARATOR.join(bank_ids), "ledger_ids": ID_SEPARATOR.join(ledger_ids),
            "bank_amount": format_minor(bank_total, currency), "ledger_amount": format_minor(ledger_total, currency),
            "difference": format_minor(difference, currency), "currency": currency, "explanation": explanation,
            "adjustments": adjustments, "open_amount": "",
        }
        ws.append_rows("proposals", pl.DataFrame([proposal], schema={
            k: (pl.Float64 if k == "confidence" else pl.Utf8) for k in proposal}))
        ws.append_rows("match_lines", pl.concat([
            bank.select(pl.lit(run_id).alias("run_id"), pl.lit(match_id).alias("match_id"),
                        pl.lit("bank").alias("side"), "id", "amount_minor", "currency"),
            ledger.select(pl.lit(run_id).alias("run_id"), pl.lit(match_id).alias("match_id"),
                          pl.lit("ledger").alias("side"), "id", "amount_minor", "currency"),
        ]).sort("side", "id"))
        rules_json = rules.model_dump_json()
        version = rules_version(rules.name, rules_json)
        con.execute(
            "INSERT INTO runs (run_id, started_at, finished_at, rules_name, rules_json, inputs_json, counts_json, "
            "out_dir, mode, rules_version, scorer) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 'manual', ?, NULL)",
            [run_id, now, now, rules.name, rules_json,
             json.dumps({"bank": bank_ids, "ledger": ledger_ids, "adjust": adjust}, ensure_ascii=False),
             json.dumps({"proposals": 1}), version],
        ).fetchall()
        row = {**proposal, "state": before, "rules_version": version, "scorer": None}
        seqs = append_decisions(con, [_decision_row("manual", row, by, comment, {"adjust": adjust})])
        if seqs != [seq]:  # the lock makes this impossible; never record a run under another seq
            raise RuntimeError(f"decision seq {seqs} is not the expected {seq}")
        crash_point("manual:before-commit")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return DecisionReport("manual", [match_id], seqs, by)


def unmatch(ws: Workspace, match_id: str, reason: str, by: str | None = None) -> DecisionReport:
    """Undo an accepted or written match: it becomes ``reversed`` and its lines are open again.

    Nothing is deleted. A match that had been written back gets reversing entries from the next
    write-back (:mod:`engine.workspace.writeback`); the same group is not proposed again.

    Raises
    ------
    InputError
        No reason, an unknown match, or one that is not accepted, written or failed.
    """
    if not reason or not reason.strip():
        raise InputError("unmatch: give the reason (--reason TEXT)")
    by = reviewer(by)
    con = ws.con
    con.execute("BEGIN TRANSACTION")
    try:
        current = current_proposals(con, [match_id])
        if current.height == 0:
            raise InputError(f"unmatch: {_unknown(con, match_id, ws)}")
        row = current.row(0, named=True)
        problem = transition_error("unmatch", match_id, row["state"])
        if problem:
            raise InputError(f"unmatch: {problem}")
        detail = {"was": row["state"], "accept_seq": row["accept_seq"]}
        seqs = append_decisions(con, [_decision_row("unmatch", row, by, reason, detail)])
        crash_point("unmatch:before-commit")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return DecisionReport("unmatch", [match_id], seqs, by,
                          notes=["write-back will write reversing entries"] if row["state"] != "accepted" else [])


def past_tense(action: str) -> str:
    """``accepted``, ``rejected``, ... for messages."""
    return _PAST[action]
