"""Workspace store -> adapters: write accepted matches back to a target, exactly once.

What a target is owed comes from two append-only tables of the workspace:

- ``decisions`` (:mod:`engine.workspace.decisions`): a match that is ``accepted``, ``written``
  or ``failed`` is owed a *write*, keyed ``match_id:seq`` with the seq of the accept (or manual)
  decision that made it accepted; an ``unmatch`` decision of a match the target had been sent is
  owed a *reverse*, keyed with the unmatch decision's seq;
- ``writes`` (this module): one row for every attempt and result, per target and key. A batch is
  first recorded as ``sending``, then sent, then its results (``written``, ``already``,
  ``conflict``, ``failed``) are recorded together with the decisions they make (``written``,
  ``write_failed``, ``reversal_written``) in one workspace transaction.

A target's pending set is every owed key it has no ``written``/``already`` row for, so each
target (files and PostgreSQL, say) gets each item once, whatever the others did. A crash between
the target's write and the workspace's record (``kill -9``) leaves those keys pending: the next
write-back sends them again and the target, which keeps the keys it wrote, answers ``already``.
A match that was *sent* (``sending``) and then undone is owed a reverse as well, in case the
send reached the target before the crash; a target that never recorded it answers that there is
nothing to undo.

The journal a write carries is built from the proposal's adjustments (``cause amount
(account)``, bank amount = ledger amount + adjustments), each booked between its cause's account
and the control account of the match (``[writeback]`` in the rule set): debits equal credits per
currency, in exact integer minor units. A reverse carries the mirror of the journal recorded as
sent to that very target. A target without the ``reversal`` capability is refused a reverse
(recorded as failed with the reason, never silently dropped).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from engine.adapters import Adapter, JournalLine, MatchLine, WriteItem, WriteResult, open_target
from engine.progress import Progress
from engine.workspace.crash import crash_point
from engine.workspace.decisions import STATES, append_decisions
from engine.workspace.store import Workspace
from models.errors import AdapterError, InputError, PrecisionError, ReconError, TerminalAdapterError
from models.money import format_minor, to_minor
from models.urls import masked_url
from rules.model import RuleSet, default_rules, from_mapping, load_rules

__all__ = [
    "WRITES_DDL", "WritebackReport", "PlannedItem", "target_key", "mask_target", "pending_items",
    "build_items", "journal_lines", "writeback", "workspace_status",
]

log = logging.getLogger("recon")

WRITES_DDL = """CREATE TABLE IF NOT EXISTS writes (
    target VARCHAR, key VARCHAR, match_id VARCHAR, seq BIGINT, action VARCHAR, state VARCHAR,
    reason VARCHAR, retryable BOOLEAN, "at" TIMESTAMP, external_ids VARCHAR, journal_json VARCHAR,
    capabilities VARCHAR)"""

#: result states that mean the target holds the key
DONE_STATES = ("written", "already")
#: how many of the latest errors ``recon status`` shows
LAST_ERRORS = 10

_ADJUSTMENT = re.compile(r"^(?P<cause>[A-Za-z_][\w]*)\s+(?P<amount>[+-]?\d+(?:\.\d+)?)(?:\s*\((?P<account>[^)]*)\))?$")


# -- targets ------------------------------------------------------------------------------
def mask_target(target: str) -> str:
    """``target`` as the workspace records and shows it: any password ``***``
    (:func:`models.urls.masked_url`).

    Examples
    --------
    >>> mask_target("postgresql://recon:s3cret@db:5432/books?table=items&password=x")
    'postgresql://recon:***@db:5432/books?table=items&password=***'
    >>> mask_target("dir:out")
    'dir:out'
    """
    return masked_url(target)


def target_key(target: str) -> str:
    """How the workspace names a target in ``writes`` and decisions: its password masked, a
    ``dir:`` folder made absolute (``dir:out`` from two folders is two targets)."""
    if target.lower().startswith("dir:") and target[4:].strip():
        return f"dir:{Path(target[4:]).expanduser().resolve()}"
    return mask_target(target)


# -- what is pending ----------------------------------------------------------------------
def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'", [name]
    ).fetchall()[0][0])


def _writes_relation(con: duckdb.DuckDBPyConnection) -> str:
    if _table_exists(con, "writes"):
        return "writes"
    return ("(SELECT NULL::VARCHAR AS target, NULL::VARCHAR AS key, NULL::VARCHAR AS match_id, "
            "NULL::BIGINT AS seq, NULL::VARCHAR AS action, NULL::VARCHAR AS state, NULL::VARCHAR AS reason, "
            'NULL::TIMESTAMP AS "at", NULL::VARCHAR AS journal_json WHERE false)')


def _pending_sql(writes: str) -> str:
    return f"""
WITH latest AS (
    SELECT match_id, after_state AS state FROM decisions
    QUALIFY row_number() OVER (PARTITION BY match_id ORDER BY seq DESC) = 1
), accepts AS (
    SELECT match_id, max(seq) AS accept_seq FROM decisions
    WHERE action IN ('accept', 'manual') GROUP BY match_id
), tw AS (
    SELECT * FROM {writes} WHERE target = $target
), done AS (
    SELECT DISTINCT key FROM tw WHERE state IN ('written', 'already')
), owed_writes AS (
    SELECT l.match_id, a.accept_seq AS seq, 'write' AS action, a.accept_seq AS write_seq,
           NULL::VARCHAR AS comment, NULL::TIMESTAMP AS decided_at, l.state
    FROM latest l JOIN accepts a USING (match_id)
    WHERE l.state IN ('accepted', 'written', 'failed')
), unmatches AS (
    SELECT match_id, seq, comment, "at",
           lag(seq, 1, 0) OVER (PARTITION BY match_id ORDER BY seq) AS previous_unmatch
    FROM decisions WHERE action = 'unmatch'
), sent AS (
    -- the writes of this target that may have reached it
    SELECT DISTINCT match_id, seq FROM tw WHERE action = 'write' AND state IN ('sending', 'written', 'already')
), owed_reverses AS (
    SELECT u.match_id, u.seq, 'reverse' AS action, max(s.seq) AS write_seq,
           any_value(u.comment) AS comment, any_value(u."at") AS decided_at, any_value(l.state) AS state
    FROM unmatches u JOIN sent s ON s.match_id = u.match_id AND s.seq < u.seq AND s.seq > u.previous_unmatch
    JOIN latest l ON l.match_id = u.match_id
    GROUP BY u.match_id, u.seq
), owed AS (
    SELECT * FROM owed_writes UNION ALL SELECT * FROM owed_reverses
)
SELECT o.* FROM owed o
WHERE o.match_id || ':' || o.seq NOT IN (SELECT key FROM done)
ORDER BY o.seq, o.match_id
"""


_PENDING_SCHEMA = {"match_id": pl.Utf8, "seq": pl.Int64, "action": pl.Utf8, "write_seq": pl.Int64,
                   "comment": pl.Utf8, "decided_at": pl.Datetime("us"), "state": pl.Utf8}


def pending_items(con: duckdb.DuckDBPyConnection, target: str) -> pl.DataFrame:
    """What ``target`` (as :func:`target_key` names it) is owed, in decision order.

    Returns
    -------
    polars.DataFrame
        ``match_id``, ``seq`` (the key's decision), ``action`` (``write`` / ``reverse``),
        ``write_seq`` (the accept whose write it is, or which a reverse undoes), ``comment``
        and ``decided_at`` (of an unmatch: its reason and time), ``state`` (the match's current
        state).
    """
    if not _table_exists(con, "decisions"):
        return pl.DataFrame(schema=_PENDING_SCHEMA)
    return con.sql(_pending_sql(_writes_relation(con)), params={"target": target}).pl().cast(_PENDING_SCHEMA)


# -- items --------------------------------------------------------------------------------
class _ItemProblem(ReconError):
    """An item that cannot be built (its adjustments cannot be read): failed, not sent."""


def _ids_text(ids: list[str]) -> str:
    return ", ".join(ids) if len(ids) <= 3 else f"{', '.join(ids[:3])} and {len(ids) - 3} more"


def journal_lines(
    match_id: str,
    match_type: str,
    currency: str,
    adjustments: str | None,
    difference: str | None,
    lines: list[MatchLine],
    ledger_types: list[str],
    rules: RuleSet,
) -> tuple[JournalLine, ...]:
    """The balanced journal of one match's adjustments.

    Parameters
    ----------
    match_id, match_type, currency
        Of the proposal (``currency`` is the bank's: a foreign-currency item's proposal is in
        the bank currency, and so are its adjustments).
    adjustments
        The proposal's ``adjustments`` cell: ``cause amount (account)`` items joined by ``; ``
        (an item without an account takes the cause's account from ``[adjustments.accounts]``).
    difference
        The proposal's ``difference`` (bank - ledger): the adjustments must add up to it.
    lines
        The match's lines: the journal is dated on the latest bank line, money in or out is the
        sign of the bank lines' total.
    ledger_types
        The ledger items' types (a match of cash-book lines only books against the bank).
    rules
        The accounts (``[adjustments.accounts]``, ``[writeback]``).

    Returns
    -------
    tuple of JournalLine
        Two lines an adjustment (one debit, one credit), none when the amounts agree or an
        adjustment is booked to the control account itself.

    Raises
    ------
    _ItemProblem
        An adjustment cannot be read, names no account, or the adjustments do not add up to the
        difference.

    Examples
    --------
    A customer paid 2,946.33 for an invoice of 3,066.33; the bank kept a 120.00 charge:

    >>> from datetime import date
    >>> bank = MatchLine("bank", "B1", date(2026, 10, 2), 294633, "HKD")
    >>> [(j.account, j.debit_minor, j.credit_minor) for j in journal_lines(
    ...     "M-1", "one_to_one", "HKD", "bank_charge -120.00 (6800)", "-120.00", [bank], ["invoice"],
    ...     default_rules())]
    [('6800', 12000, 0), ('1100', 0, 12000)]
    """
    text = (adjustments or "").strip()
    if not text:
        try:
            agreed = difference in (None, "") or to_minor(difference, currency) == 0
        except PrecisionError:
            agreed = False  # said below
        if agreed:
            return ()  # the amounts agree: nothing to book
    bank_lines = [line for line in lines if line.side == "bank"]
    dated = max((line.date for line in bank_lines or lines), default=None)
    if dated is None:
        raise _ItemProblem(f"{match_id} has no lines in the workspace")
    bank_total = sum(line.amount_minor for line in bank_lines)
    money_in = bank_total > 0 if bank_total else sum(line.amount_minor for line in lines) > 0
    control = rules.writeback.control_account(match_type, money_in, ledger_types)
    bank_ids = [line.line_id for line in bank_lines]
    ledger_lines = [line for line in lines if line.side == "ledger"]
    counterparty = next((line.counterparty for line in ledger_lines if line.counterparty), None)
    where = f"bank {_ids_text(bank_ids)} / ledger {_ids_text([line.line_id for line in ledger_lines])}"
    if counterparty:
        where += f" ({counterparty})"
    journal: list[JournalLine] = []
    total = 0
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        found = _ADJUSTMENT.match(part)
        if found is None:
            raise _ItemProblem(f"{match_id}: adjustment {part!r} is not 'cause amount (account)'")
        cause = found["cause"]
        account = (found["account"] or "").strip() or rules.adjustments.accounts.get(cause, "")
        if not account:
            raise _ItemProblem(f"{match_id}: adjustment cause {cause!r} has no account: add it to "
                               "[adjustments.accounts] in the rule set")
        try:
            amount = to_minor(found["amount"], currency)
        except PrecisionError as exc:
            raise _ItemProblem(f"{match_id}: adjustment {part!r}: {exc}") from None
        total += amount
        if amount == 0 or account == control:
            continue
        memo = f"{cause}: {where}"
        size = abs(amount)
        # a negative adjustment: the bank side got less than the items, the shortfall leaves
        # the control account for the cause's account (a charge, a fee, a write-off)
        debit_account, credit_account = (account, control) if amount < 0 else (control, account)
        journal.append(JournalLine(dated, debit_account, size, 0, currency, match_id, memo))
        journal.append(JournalLine(dated, credit_account, 0, size, currency, match_id, memo))
    if difference not in (None, ""):
        try:
            expected = to_minor(difference, currency)
        except PrecisionError as exc:
            raise _ItemProblem(f"{match_id}: difference {difference!r}: {exc}") from None
        if expected != total:
            raise _ItemProblem(
                f"{match_id}: the adjustments add up to {format_minor(total, currency)} {currency}, "
                f"not the difference {format_minor(expected, currency)} {currency}")
    return tuple(journal)


def _journal_json(journal: tuple[JournalLine, ...]) -> str:
    return json.dumps([[j.date.isoformat(), j.account, j.debit_minor, j.credit_minor, j.currency, j.memo]
                       for j in journal], ensure_ascii=False)


def _mirror(journal_json: str | None, match_id: str, on: date, reason: str) -> tuple[JournalLine, ...]:
    rows = json.loads(journal_json) if journal_json else []
    why = f"reversal ({reason})" if reason else "reversal"
    return tuple(JournalLine(on, account, credit, debit, currency, match_id, f"{why}: {memo}")
                 for _day, account, debit, credit, currency, memo in rows)


_ITEM_ROWS_SQL = """
WITH b AS (SELECT * FROM _wb_batch),
accepts AS (SELECT seq, run_id FROM decisions WHERE seq IN (SELECT write_seq FROM b)),
chosen AS (
    SELECT b.match_id, b.write_seq, p.run_id, p.match_type, p.currency, p.difference, p.adjustments,
           p.explanation
    FROM b JOIN proposals p USING (match_id)
    LEFT JOIN accepts a ON a.seq = b.write_seq
    LEFT JOIN runs r ON r.run_id = p.run_id
    QUALIFY row_number() OVER (
        PARTITION BY b.match_id, b.write_seq
        ORDER BY (p.run_id = a.run_id) DESC NULLS LAST, r.started_at DESC NULLS LAST, p.run_id DESC) = 1
)
SELECT * FROM chosen
"""

_LINE_ROWS_SQL = """
WITH ml AS (
    SELECT DISTINCT c.match_id, c.write_seq, m.side, m.id, m.amount_minor, m.currency
    FROM _wb_chosen c JOIN match_lines m ON m.run_id = c.run_id AND m.match_id = c.match_id
), bank AS (
    SELECT id, any_value(date) AS date, any_value(amount_minor) AS amount_minor,
           any_value(currency) AS currency, any_value(counterparty) AS counterparty,
           any_value(reference) AS reference, NULL::VARCHAR AS type
    FROM bank_lines WHERE id IN (SELECT id FROM ml WHERE side = 'bank') GROUP BY id
), ledger AS (
    SELECT id, any_value(date) AS date, any_value(amount_minor) AS amount_minor,
           any_value(currency) AS currency, any_value(counterparty) AS counterparty,
           any_value(reference) AS reference, any_value(type) AS type
    FROM ledger_items WHERE id IN (SELECT id FROM ml WHERE side = 'ledger') GROUP BY id
)
SELECT ml.match_id, ml.write_seq, ml.side, ml.id,
       coalesce(b.date, l.date) AS date,
       coalesce(b.amount_minor, l.amount_minor, ml.amount_minor) AS amount_minor,
       coalesce(b.currency, l.currency, ml.currency) AS currency,
       coalesce(b.counterparty, l.counterparty) AS counterparty,
       coalesce(b.reference, l.reference) AS reference,
       l.type
FROM ml LEFT JOIN bank b ON ml.side = 'bank' AND b.id = ml.id
        LEFT JOIN ledger l ON ml.side = 'ledger' AND l.id = ml.id
ORDER BY ml.match_id, ml.write_seq, ml.side, ml.id
"""


def build_items(
    con: duckdb.DuckDBPyConnection, batch: pl.DataFrame, rules: RuleSet, target: str,
) -> list[tuple[WriteItem | None, str, str | None]]:
    """The :class:`WriteItem` of each pending row of ``batch`` (from :func:`pending_items`).

    A write is built from the proposal the accept decision accepted (its run's row of
    ``proposals`` and ``match_lines``; the match's latest proposal when that run left none) and
    the lines as ingested; a reverse carries the match's lines and the mirror of the journal
    recorded as sent to ``target``, dated on the unmatch.

    Returns
    -------
    list of (item, problem, run_id)
        In the order of ``batch``: the item, or None and the reason it cannot be built; the
        ``run_id`` of the proposal it was built from.
    """
    con.register("_wb_batch", batch.select("match_id", "write_seq").unique().to_arrow())
    try:
        chosen = con.sql(_ITEM_ROWS_SQL).pl()
        con.register("_wb_chosen", chosen.select("match_id", "write_seq", "run_id").to_arrow())
        try:
            line_rows = con.sql(_LINE_ROWS_SQL).pl()
        finally:
            con.unregister("_wb_chosen")
    finally:
        con.unregister("_wb_batch")
    sent: dict[tuple[str, int], str | None] = {}
    reverses = batch.filter(pl.col("action") == "reverse")
    if reverses.height:
        con.register("_wb_rev", reverses.select("match_id", "write_seq").to_arrow())
        try:
            rows = con.execute(
                f"""SELECT w.match_id, w.seq, w.journal_json FROM {_writes_relation(con)} w
                    JOIN _wb_rev r ON r.match_id = w.match_id AND r.write_seq = w.seq
                    WHERE w.target = ? AND w.action = 'write' AND w.journal_json IS NOT NULL
                    QUALIFY row_number() OVER (PARTITION BY w.match_id, w.seq ORDER BY w."at" DESC) = 1""",
                [target]).fetchall()
        finally:
            con.unregister("_wb_rev")
        sent = {(m, s): j for m, s, j in rows}
    proposals = {(r["match_id"], r["write_seq"]): r for r in chosen.to_dicts()}
    lines: dict[tuple[str, int], list[MatchLine]] = {}
    types: dict[tuple[str, int], list[str]] = {}
    columns = ("match_id", "write_seq", "side", "id", "date", "amount_minor", "currency", "counterparty",
               "reference", "type")
    for match_id, write_seq, side, line_id, day, amount, currency, counterparty, reference, kind in zip(
            *(line_rows[c].to_list() for c in columns), strict=True):
        k = (match_id, write_seq)
        lines.setdefault(k, []).append(MatchLine(side, line_id, day, amount, currency, counterparty, reference))
        if side == "ledger":
            types.setdefault(k, []).append(kind or "")
    out: list[tuple[WriteItem | None, str, str | None]] = []
    for row in batch.to_dicts():
        k = (row["match_id"], row["write_seq"])
        proposal = proposals.get(k)
        run_id = proposal["run_id"] if proposal else None
        if proposal is None or not lines.get(k):
            out.append((None, f"{row['match_id']}: the workspace holds no proposal or lines for this match", run_id))
            continue
        match_lines = tuple(lines[k])
        if row["action"] == "write":
            try:
                journal = journal_lines(row["match_id"], proposal["match_type"], proposal["currency"],
                                        proposal["adjustments"], proposal["difference"], list(match_lines),
                                        types.get(k, []), rules)
            except _ItemProblem as exc:
                out.append((None, str(exc), run_id))
                continue
            memo = proposal["explanation"] or ""
        else:
            on = (row["decided_at"] or datetime.now(UTC)).date()
            journal = _mirror(sent.get(k), row["match_id"], on, row["comment"] or "")
            memo = row["comment"] or ""
        out.append((WriteItem(row["match_id"], int(row["seq"]), row["action"], proposal["match_type"],
                              match_lines, journal, memo), "", run_id))
    return out


# -- the write-back -----------------------------------------------------------------------
@dataclass
class PlannedItem:
    """One item a dry run would send (or why it cannot be built)."""

    key: str
    action: str
    match_type: str
    lines: int
    journal: tuple[JournalLine, ...]
    problem: str = ""

    def describe(self) -> str:
        if self.problem:
            return f"{self.key}  {self.action:<7}  cannot be written: {self.problem}"
        posts = "; ".join(
            f"{j.account} {'Dr' if j.debit_minor else 'Cr'} {format_minor(j.debit_minor or j.credit_minor, j.currency)} {j.currency}"
            for j in self.journal)
        return (f"{self.key}  {self.action:<7}  {self.match_type:<11}  {self.lines} line(s)"
                + (f"  journal: {posts}" if posts else ""))


@dataclass
class WritebackReport:
    """What one ``recon writeback`` did (or, for a dry run, would do)."""

    target: str
    dry_run: bool = False
    pending: int = 0
    #: (action, state) -> items
    counts: Counter = field(default_factory=Counter)
    #: (key, action, state, reason) of every item not written
    failures: list[tuple[str, str, str, str]] = field(default_factory=list)
    planned: list[PlannedItem] = field(default_factory=list)
    #: why the write-back stopped before the end (the rest stays pending), or None
    stopped: str | None = None
    batches: int = 0
    seconds: float = 0.0

    @property
    def written(self) -> int:
        """Items the target holds now (written now, or found written before)."""
        return sum(n for (_action, state), n in self.counts.items() if state in DONE_STATES)

    @property
    def ok(self) -> bool:
        return not self.failures and self.stopped is None

    def summary(self) -> str:
        """The lines ``recon writeback`` prints."""
        if self.dry_run:
            head = (f"recon writeback --dry-run: would write {len(self.planned)} item(s) to {self.target} "
                    "(nothing written)")
            by_action = Counter(p.action for p in self.planned)
            rows = [f"  {action:<8} {n:>7}" for action, n in sorted(by_action.items())]
            return "\n".join([head, *rows, *("  " + p.describe() for p in self.planned)])
        if self.pending == 0:
            return f"recon writeback: wrote 0 items to {self.target}: nothing pending"
        head = (f"recon writeback: wrote {self.written} of {self.pending} pending item(s) to {self.target} "
                f"in {self.seconds:.1f} s ({self.batches} batch(es))")
        if self.failures:
            head += f"; {len(self.failures)} not written (tried again by the next write-back)"
        rows = [f"  {action:<8} {state:<9} {n:>7}" for (action, state), n in sorted(self.counts.items())]
        out = [head, *rows]
        if self.failures:
            out.append("  not written:")
            out.extend(f"    {key} {action} {state}: {reason}" for key, action, state, reason in self.failures[:50])
            if len(self.failures) > 50:
                out.append(f"    ... and {len(self.failures) - 50} more (recon status lists the latest)")
        if self.stopped:
            out.append(f"  stopped: {self.stopped}; the rest stays pending: run recon writeback again")
        return "\n".join(out)


def _rules_of(ws: Workspace, rules: RuleSet | str | Path | None) -> RuleSet:
    """The rule set given, else the latest run's, else the built-in one."""
    if isinstance(rules, RuleSet):
        return rules
    if rules is not None:
        return load_rules(rules)
    row = ws.con.execute(
        "SELECT rules_name, rules_json FROM runs WHERE rules_json IS NOT NULL "
        "ORDER BY started_at DESC, run_id DESC LIMIT 1").fetchone()
    if row is None:
        return default_rules()
    return from_mapping(json.loads(row[1]), source=f"rule set {row[0]!r} of the workspace's latest run")


def _require_workspace(path: Path) -> None:
    if not path.exists():
        raise InputError(f"workspace {path} does not exist: create it with `recon ingest --workspace {path} ...`")


def _batches(frame: pl.DataFrame, size: int) -> Iterator[pl.DataFrame]:
    for start in range(0, frame.height, size):
        yield frame.slice(start, size)


#: about how many pending items one set of workspace queries reads (then sent in batches)
_CHUNK_ITEMS = 20_000


def _chunk_size(batch_size: int) -> int:
    return batch_size * max(1, _CHUNK_ITEMS // batch_size)


@dataclass(slots=True)
class _Entry:
    """One pending row and what became of it in this write-back."""

    row: dict
    item: WriteItem | None
    run_id: str | None
    journal_json: str | None = None
    state: str = "sending"
    reason: str = ""
    retryable: bool = True
    external: dict | None = None

    @property
    def key(self) -> str:
        return f"{self.row['match_id']}:{self.row['seq']}"


_WRITES_SCHEMA = {"target": pl.Utf8, "key": pl.Utf8, "match_id": pl.Utf8, "seq": pl.Int64, "action": pl.Utf8,
                  "state": pl.Utf8, "reason": pl.Utf8, "retryable": pl.Boolean, "at": pl.Datetime("us"),
                  "external_ids": pl.Utf8, "journal_json": pl.Utf8, "capabilities": pl.Utf8}


def _writes_rows(target: str, entries: list[_Entry], at: datetime, capabilities: str) -> pl.DataFrame:
    n = len(entries)
    return pl.DataFrame({
        "target": [target] * n, "key": [e.key for e in entries], "match_id": [e.row["match_id"] for e in entries],
        "seq": [e.row["seq"] for e in entries], "action": [e.row["action"] for e in entries],
        "state": [e.state for e in entries], "reason": [e.reason for e in entries],
        "retryable": [e.retryable for e in entries], "at": [at] * n,
        "external_ids": [json.dumps(e.external, ensure_ascii=False, sort_keys=True) if e.external else None
                         for e in entries],
        "journal_json": [e.journal_json for e in entries], "capabilities": [capabilities] * n,
    }, schema=_WRITES_SCHEMA)


def _decision_rows(target: str, entries: list[_Entry], states: dict[str, str]) -> list[dict]:
    """The decisions one batch's results make, each applied after the one before (``states``:
    the current state of each match, updated)."""
    rows = []
    for entry in entries:
        match_id, ok = entry.row["match_id"], entry.state in DONE_STATES
        now = states.get(match_id, "proposed")
        if entry.row["action"] == "write":
            action = "written" if ok else "write_failed"
            after = "written" if ok else "failed"
            # a match another target has already written stays written: this target's failure
            # is in ``writes`` (and ``recon status``), not a change of the match's state
            if now not in ("accepted", "failed", "written") or (not ok and now == "written"):
                continue
        else:
            action, after = "reversal_written", "reversed"
            if not ok or now != "reversed":
                continue
        rows.append({
            "by": "recon", "action": action, "match_id": match_id, "before_state": now, "after_state": after,
            "comment": entry.reason or None, "run_id": entry.run_id, "target": target,
            "detail_json": json.dumps({"key": entry.key, "result": entry.state, **(
                {"external_ids": entry.external} if entry.external else {})}, ensure_ascii=False),
        })
        states[match_id] = after
    return rows


def _record(ws: Workspace, target: str, entries: list[_Entry], capabilities: str,
            states: dict[str, str] | None = None) -> None:
    """Record one batch in ``writes`` (with its decisions, when ``states`` is given: the
    results) in one workspace transaction."""
    if not entries:
        return
    frame = _writes_rows(target, entries, datetime.now(UTC).replace(tzinfo=None), capabilities)
    ws.con.execute("BEGIN TRANSACTION")
    try:
        ws.append_rows("writes", frame)
        if states is not None:
            append_decisions(ws.con, _decision_rows(target, entries, states))
        ws.con.execute("COMMIT")
    except BaseException:
        ws.con.execute("ROLLBACK")
        raise


def _send(adapter: Adapter, items: list[WriteItem]) -> list[WriteResult]:
    """Send ``items`` in order, one call per run of the same action; one result per item."""
    results: list[WriteResult] = []
    start = 0
    while start < len(items):
        end = start
        while end < len(items) and items[end].action == items[start].action:
            end += 1
        run = items[start:end]
        got = adapter.write(run) if run[0].action == "write" else adapter.reverse(run)
        if len(got) != len(run) or any(r.key != i.key for r, i in zip(got, run, strict=False)):
            raise AdapterError(f"{adapter.name}: answered {len(got)} result(s) for {len(run)} item(s), "
                               "or not in the order given")
        results.extend(got)
        start = end
    return results


def writeback(
    workspace: str | Path,
    to: str,
    *,
    dry_run: bool = False,
    batch_size: int | None = None,
    rules: RuleSet | str | Path | None = None,
    progress: Progress | None = None,
    adapter: Adapter | None = None,
) -> WritebackReport:
    """Write what ``to`` is owed (accepted matches, reversals of undone ones) and record it.

    Parameters
    ----------
    workspace
        The workspace file.
    to
        The target (``dir:PATH``, ``postgresql://...``, ``duckdb:///...``, ``xero+https://...``).
    dry_run
        List what would be written and write nothing (neither the target nor the workspace).
    batch_size
        Items a batch (default: ``[writeback] batch_size`` of the rule set).
    rules
        The rule set whose accounts the journals use (default: the workspace's latest run's).
    progress
        Where the stage reports (default: log lines only).
    adapter
        An adapter already open for ``to`` (tests); default: :func:`engine.adapters.open_target`.

    Returns
    -------
    WritebackReport

    Raises
    ------
    InputError
        The workspace does not exist, or the target names no known kind.
    AdapterError
        The target cannot be opened at all.
    """
    started = time.perf_counter()
    path = Path(workspace)
    _require_workspace(path)
    target = target_key(to)
    progress = progress if progress is not None else Progress(bars=False)
    report = WritebackReport(target=target, dry_run=dry_run)
    with Workspace(path) as ws:
        ruleset = _rules_of(ws, rules)
        size = batch_size or ruleset.writeback.batch_size
        if not dry_run:
            ws.con.execute(WRITES_DDL)
        pending = pending_items(ws.con, target)
        report.pending = pending.height
        if dry_run:
            for chunk in _batches(pending, _chunk_size(size)):
                for (item, problem, _run), row in zip(build_items(ws.con, chunk, ruleset, target),
                                                      chunk.iter_rows(named=True), strict=True):
                    report.planned.append(PlannedItem(
                        f"{row['match_id']}:{row['seq']}", row["action"], item.match_type if item else "",
                        len(item.lines) if item else 0, item.journal if item else (), problem))
        elif pending.height:
            own_adapter = adapter is None
            adapter = open_target(to, path.parent) if own_adapter else adapter
            try:
                with progress.stage(f"write-back to {target}"):
                    _write_all(ws, adapter, target, pending, ruleset, size, report)
            finally:
                if own_adapter:
                    adapter.close()
    report.seconds = time.perf_counter() - started
    return report


def _write_all(ws: Workspace, adapter: Adapter, target: str, pending: pl.DataFrame, rules: RuleSet, size: int,
               report: WritebackReport) -> None:
    capabilities = json.dumps(sorted(adapter.capabilities))
    states = dict(zip(pending["match_id"].to_list(), pending["state"].to_list(), strict=True))
    for chunk in _batches(pending, _chunk_size(size)):
        built = build_items(ws.con, chunk, rules, target)
        rows = chunk.to_dicts()
        for start in range(0, len(rows), size):
            report.batches += 1
            entries = [_Entry(row, item, run_id, state="failed" if item is None else "sending", reason=problem,
                              retryable=item is not None)
                       for (item, problem, run_id), row in zip(built[start:start + size], rows[start:start + size],
                                                               strict=True)]
            _write_batch(ws, adapter, target, entries, capabilities, states, report)
            log.info("write-back to %s: batch %d, %d of %d item(s) done", target, report.batches,
                     sum(report.counts.values()), report.pending)
            if report.stopped:
                return


def _write_batch(ws: Workspace, adapter: Adapter, target: str, entries: list[_Entry], capabilities: str,
                 states: dict[str, str], report: WritebackReport) -> None:
    can_reverse = "reversal" in adapter.capabilities
    to_send: list[_Entry] = []
    for entry in entries:
        if entry.item is None:
            continue
        entry.journal_json = _journal_json(entry.item.journal) if entry.item.journal else None
        if entry.item.action == "reverse" and not can_reverse:
            entry.state, entry.retryable = "failed", False
            entry.reason = (f"{target} cannot write reversals (it can write: "
                            f"{', '.join(sorted(adapter.capabilities))}): undo {entry.item.match_id} there by hand")
        else:
            to_send.append(entry)
    if to_send:
        # recorded before sending: if the process dies after the target wrote them, the
        # workspace still knows they may have reached it (an undo then reverses them too)
        _record(ws, target, to_send, capabilities)
        try:
            crash_point("writeback:before-send")
            results = _send(adapter, [entry.item for entry in to_send])
            # the target has the batch, the workspace does not know yet (the resend case)
            crash_point("writeback:after-send")
            crash_point(f"writeback:after-send:{report.batches}")
        except AdapterError as exc:
            report.stopped = str(exc)
            results = [WriteResult(entry.key, "failed", str(exc), not isinstance(exc, TerminalAdapterError))
                       for entry in to_send]
        for entry, result in zip(to_send, results, strict=True):
            entry.state, entry.reason, entry.retryable = result.state, result.reason, result.retryable
            entry.external = dict(result.external_ids)
    _record(ws, target, entries, capabilities, states)
    for entry in entries:
        report.counts[(entry.row["action"], entry.state)] += 1
        if entry.state not in DONE_STATES:
            report.failures.append((entry.key, entry.row["action"], entry.state, entry.reason))


# -- status -------------------------------------------------------------------------------
def workspace_status(workspace: str | Path) -> dict:
    """Counts by state, what each target written to has pending, and the latest errors.

    Returns
    -------
    dict
        ``states``: ``{state: matches}`` with every one of
        :data:`~engine.workspace.decisions.STATES`; ``pending``: ``{target: {"write": n,
        "reverse": n}}`` for every target written to; ``last_errors``: the latest
        :data:`LAST_ERRORS` results that left an item unwritten and still pending (``at``,
        ``target``, ``key``, ``action``, ``state``, ``reason``).
    """
    from engine.workspace.decisions import current_states

    path = Path(workspace)
    _require_workspace(path)
    with Workspace(path) as ws:
        states = current_states(ws.con)
        counts = dict.fromkeys(STATES, 0)
        for state, n in states.group_by("state").len().iter_rows():
            counts[state] = counts.get(state, 0) + n
        pending: dict[str, dict[str, int]] = {}
        errors: list[dict] = []
        if _table_exists(ws.con, "writes"):
            targets = [t for (t,) in ws.con.execute("SELECT DISTINCT target FROM writes ORDER BY target").fetchall()]
            still: set[tuple[str, str]] = set()
            for target in targets:
                owed = pending_items(ws.con, target)
                pending[target] = {"write": owed.filter(pl.col("action") == "write").height,
                                   "reverse": owed.filter(pl.col("action") == "reverse").height}
                still.update((target, f"{m}:{s}") for m, s in owed.select("match_id", "seq").iter_rows())
            rows = ws.con.execute(
                """SELECT "at", target, key, action, state, reason FROM writes
                   WHERE state IN ('failed', 'conflict') ORDER BY "at" DESC, key""").fetchall()
            for at, target, key, action, state, reason in rows:
                if (target, key) in still:
                    errors.append({"at": at.isoformat(sep=" ", timespec="seconds"), "target": target, "key": key,
                                   "action": action, "state": state, "reason": reason})
                    still.discard((target, key))  # the latest result of a key only
                if len(errors) >= LAST_ERRORS:
                    break
    return {"workspace": str(path), "states": counts, "pending": pending, "last_errors": errors}
