"""Review page (web stage): what the pages show, read from the workspace with SQL.

The queue, a proposal, the open lines for a manual match and the write-back state are read here
from the workspace's tables (``proposals``, ``match_lines``, ``bank_lines``, ``ledger_items``,
``decisions``, ``writes``) with the decision store's rules: a match's state is the
``after_state`` of its latest decision, a proposal of the current run without one is
``proposed`` (:mod:`engine.workspace.decisions`). Every decision is made through
:mod:`engine.api`, never here: this module only reads.

The queries are written for a workspace of 100k proposals and more: the queue is one SQL query
filtered, sorted and cut to a page inside DuckDB (only the page's rows reach Python), undecided
proposals come from the current run anti-joined with the decisions, and decided ones from the
latest decision of each match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal, InvalidOperation

import duckdb

from engine.workspace.decisions import CURRENT_RUN_SQL, STATES, TAKEN_STATES
from models.errors import InputError, PrecisionError
from models.money import currency_exponent, display_minor, from_minor, to_minor
from models.schema import ID_SEPARATOR

__all__ = [
    "QueueFilters", "QueuePage", "SORTS", "MATCH_TYPES", "MATCH_STATUSES", "format_amount", "queue_page",
    "queue_ids", "state_counts", "proposal", "open_lines", "match_writes", "failed_writes", "accounts",
]

MATCH_TYPES = ("one_to_one", "one_to_many", "many_to_one", "many_to_many", "payout", "manual")
MATCH_STATUSES = ("auto", "review", "manual")

#: sort name -> (label, ORDER BY): "priority" puts what needs a person first: the least
#: confident proposals, then the largest amounts, then the oldest bank lines
SORTS = {
    "priority": ("least confident, then largest, then oldest",
                 "confidence ASC NULLS FIRST, abs_amount DESC, bank_date ASC NULLS LAST, match_id"),
    "confidence": ("least confident first", "confidence ASC NULLS FIRST, match_id"),
    "amount": ("largest amount first", "abs_amount DESC, match_id"),
    "age": ("oldest bank line first", "bank_date ASC NULLS LAST, match_id"),
}

_LATEST_SQL = ("SELECT match_id, arg_max(after_state, seq) AS state, max(seq) AS decision_seq "
               "FROM decisions GROUP BY match_id")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_ID_TEXT = re.compile(r"^[^\x00-\x1f]{1,200}$")


def format_amount(text: str | None, currency: str | None) -> str:
    """An amount for a person: thousands grouped, exactly the currency's decimals, and the
    currency code (``HKD 14,149.80``, ``JPY 5,000``, ``KWD 1.250``); empty for no amount.

    Examples
    --------
    >>> format_amount("-14149.8", "HKD")
    'HKD -14,149.80'
    """
    if text is None or text == "":
        return ""
    if not currency:
        return str(text)
    try:
        return f"{currency} {display_minor(to_minor(str(text), currency), currency)}"
    except (PrecisionError, InvalidOperation, ValueError):
        return f"{currency} {text}"


def _decimal(text: str | None, what: str) -> Decimal | None:
    if text is None or str(text).strip() == "":
        return None
    try:
        value = Decimal(str(text).strip().replace(",", ""))
    except InvalidOperation:
        raise InputError(f"{what} {text!r} is not an amount (e.g. 1000 or 1000.50)") from None
    if not value.is_finite():
        raise InputError(f"{what} {text!r} is not an amount (e.g. 1000 or 1000.50)")
    return value


def _date(text: str | None, what: str) -> date | None:
    if text is None or str(text).strip() == "":
        return None
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise InputError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None


@dataclass
class QueueFilters:
    """The queue's filters, validated from the page's query string (all given conditions hold).

    Parameters
    ----------
    state
        A state of :data:`engine.workspace.decisions.STATES`, or ``"any"``; default
        ``proposed`` (what awaits a decision).
    status, match_type
        The proposal's status (``auto``, ``review``, ``manual``) and type.
    account, currency
        The bank lines' account; the match's currency.
    min_amount, max_amount
        Bounds on the bank side's absolute amount, compared exactly.
    date_from, date_to
        Bounds on the bank lines' dates.
    text
        Words found in the match id, the line ids, the explanation, or a line's description,
        counterparty or reference (case-insensitive).
    sort
        A key of :data:`SORTS`.
    """

    state: str = "proposed"
    status: str | None = None
    match_type: str | None = None
    account: str | None = None
    currency: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    date_from: date | None = None
    date_to: date | None = None
    text: str | None = None
    sort: str = "priority"
    problems: list[str] = field(default_factory=list, repr=False)

    @classmethod
    def from_query(cls, query) -> QueueFilters:
        """Filters from a query string mapping; a bad value raises :class:`InputError` naming it."""
        def get(name: str) -> str | None:
            value = query.get(name)
            value = value.strip() if isinstance(value, str) else None
            return value or None

        problems = []
        state = get("state") or "proposed"
        if state != "any" and state not in STATES:
            problems.append(f"state {state!r} is not one of any, {', '.join(STATES)}")
        status = get("status")
        if status is not None and status not in MATCH_STATUSES:
            problems.append(f"status {status!r} is not one of {', '.join(MATCH_STATUSES)}")
        match_type = get("type")
        if match_type is not None and match_type not in MATCH_TYPES:
            problems.append(f"type {match_type!r} is not one of {', '.join(MATCH_TYPES)}")
        currency = get("currency")
        if currency is not None:
            currency = currency.upper()
            if not _CURRENCY.match(currency):
                problems.append(f"currency {currency!r} is not a three-letter ISO 4217 code")
        sort = get("sort") or "priority"
        if sort not in SORTS:
            problems.append(f"sort {sort!r} is not one of {', '.join(SORTS)}")
        values = {}
        for name, label, parse in (("min", "minimum amount", _decimal), ("max", "maximum amount", _decimal),
                                   ("from", "from date", _date), ("to", "to date", _date)):
            try:
                values[name] = parse(get(name), label)
            except InputError as exc:
                problems.append(str(exc))
        text, account = get("q"), get("account")
        for what, value in (("search text", text), ("account", account)):
            if value is not None and len(value) > 200:
                problems.append(f"{what} is longer than 200 characters")
        if problems:
            raise InputError("; ".join(problems))
        return cls(state=state, status=status, match_type=match_type, account=account, currency=currency,
                   min_amount=values["min"], max_amount=values["max"], date_from=values["from"],
                   date_to=values["to"], text=text, sort=sort)

    def query(self, **changes) -> dict[str, str]:
        """The query-string parameters that give these filters (``changes`` replace some)."""
        names = {"state": "state", "status": "status", "match_type": "type", "account": "account",
                 "currency": "currency", "min_amount": "min", "max_amount": "max", "date_from": "from",
                 "date_to": "to", "text": "q", "sort": "sort"}
        out = {}
        for f in fields(self):
            if f.name not in names:
                continue
            value = changes.get(f.name, getattr(self, f.name))
            if value is not None and value != "":
                out[names[f.name]] = str(value)
        return out

    def states(self) -> tuple[str, ...]:
        return STATES if self.state == "any" else (self.state,)


def _match_rows_sql(states: tuple[str, ...]) -> tuple[str, list]:
    """SQL of the current proposal row and state of every match in ``states``, and its
    parameters: the current run's undecided proposals, and the latest proposal row of each
    decided match."""
    parts, params = [], []
    if "proposed" in states:
        parts.append(
            "SELECT p.*, 'proposed' AS state, NULL::BIGINT AS decision_seq FROM proposals p "
            f"ANTI JOIN decisions d ON d.match_id = p.match_id WHERE p.run_id = ({CURRENT_RUN_SQL})")
    decided = [s for s in states if s != "proposed"]
    if decided:
        marks = ", ".join("?" for _ in decided)
        parts.append(
            f"SELECT p.*, l.state, l.decision_seq FROM ({_LATEST_SQL}) l "
            "JOIN proposals p ON p.match_id = l.match_id JOIN runs r ON r.run_id = p.run_id "
            f"WHERE l.state IN ({marks}) "
            "QUALIFY row_number() OVER (PARTITION BY p.match_id ORDER BY r.started_at DESC, p.run_id DESC) = 1")
        params += decided
    return " UNION ALL BY NAME ".join(f"({p})" for p in parts), params


def ensure_match_index(con: duckdb.DuckDBPyConnection) -> None:
    """Keep, in the connection's temporary table ``web_match_bank``, each match's first bank
    date and bank account (``match_id``, ``bank_date``, ``account``), for the age sort and the
    date and account filters.

    A match id names its lines (the same lines, the same id) and ``match_lines`` only grows, so
    a match's row never changes: only the runs not indexed yet are added (at 100k proposals the
    join costs a tenth of a second, once instead of on every page).
    """
    con.execute("CREATE TEMP TABLE IF NOT EXISTS web_match_bank (match_id VARCHAR, bank_date DATE, account VARCHAR)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS web_indexed_runs (run_id VARCHAR)")
    new = [r for (r,) in con.execute(
        "SELECT run_id FROM runs ANTI JOIN web_indexed_runs USING (run_id)").fetchall()]
    if not new:
        return
    marks = ", ".join("?" for _ in new)
    con.execute(
        f"""INSERT INTO web_match_bank
            SELECT ml.match_id, min(b.date), min(b.account) FROM match_lines ml
            JOIN bank_lines b ON ml.side = 'bank' AND b.id = ml.id
            WHERE ml.run_id IN ({marks}) AND ml.match_id NOT IN (SELECT match_id FROM web_match_bank)
            GROUP BY ml.match_id""", new)
    con.executemany("INSERT INTO web_indexed_runs VALUES (?)", [[r] for r in new])


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(filters: QueueFilters) -> tuple[list[str], list]:
    """Conditions on the rows of :func:`_match_rows_sql` (aliased ``m``) and their parameters."""
    conditions, params = [], []
    if filters.status:
        conditions.append("m.status = ?")
        params.append(filters.status)
    if filters.match_type:
        conditions.append("m.match_type = ?")
        params.append(filters.match_type)
    if filters.currency:
        conditions.append("m.currency = ?")
        params.append(filters.currency)
    if filters.min_amount is not None:
        conditions.append("m.abs_amount >= ?::DECIMAL(38, 6)")
        params.append(str(filters.min_amount))
    if filters.max_amount is not None:
        conditions.append("m.abs_amount <= ?::DECIMAL(38, 6)")
        params.append(str(filters.max_amount))
    for column, value, op in (("account", filters.account, "="), ("bank_date", filters.date_from, ">="),
                              ("bank_date", filters.date_to, "<=")):
        if value is not None:
            conditions.append(f"m.{column} {op} ?")
            params.append(value)
    if filters.text:
        like = _like(filters.text)
        lines = ("SELECT {key} FROM {table} WHERE description ILIKE ? ESCAPE '\\' OR counterparty ILIKE ? "
                 "ESCAPE '\\' OR reference ILIKE ? ESCAPE '\\' OR id ILIKE ? ESCAPE '\\'")
        conditions.append(
            "(m.match_id ILIKE ? ESCAPE '\\' OR m.explanation ILIKE ? ESCAPE '\\' OR m.match_id IN ("
            "SELECT match_id FROM match_lines WHERE side = 'bank' AND id IN ("
            + lines.format(key="id", table="bank_lines") + ") UNION ALL "
            "SELECT match_id FROM match_lines WHERE side = 'ledger' AND id IN ("
            + lines.format(key="id", table="ledger_items") + ")))")
        params += [like] * 10
    return conditions, params


def _filtered_sql(filters: QueueFilters) -> tuple[str, list]:
    rows, params = _match_rows_sql(filters.states())
    select = ("SELECT r.*, abs(TRY_CAST(r.bank_amount AS DECIMAL(38, 6))) AS abs_amount, i.bank_date, i.account "
              f"FROM ({rows}) r LEFT JOIN web_match_bank i ON i.match_id = r.match_id")
    conditions, more = _where(filters)
    sql = f"SELECT * FROM ({select}) m" + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
    return sql, params + more


@dataclass
class QueuePage:
    """One page of the queue: its rows (dicts, amounts as exact decimal text), the number of
    matches passing the filters, and where the page starts."""

    rows: list[dict]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(self.offset - self.limit, 0) if self.offset > 0 else None


def queue_page(con: duckdb.DuckDBPyConnection, filters: QueueFilters, offset: int = 0, limit: int = 50) -> QueuePage:
    """The matches passing ``filters``, sorted by ``filters.sort``, ``limit`` of them from
    ``offset``; each row with its bank lines' first date, description and account and the
    payers."""
    ensure_match_index(con)
    sql, params = _filtered_sql(filters)
    order = SORTS[filters.sort][1]
    # the page is picked on the sort columns alone, then its rows are read in full: DuckDB
    # sorts a few narrow columns of 100k rows instead of carrying every explanation along
    [(total,)] = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchall()
    picked = con.execute(
        f"SELECT match_id, run_id, state, decision_seq, abs_amount, bank_date, account FROM ({sql}) "
        f"ORDER BY {order} LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
    rows = []
    if picked:
        marks = ", ".join("(?, ?, ?)" for _ in picked)
        cur = con.execute(
            f"""WITH w(position, run_id, match_id) AS (VALUES {marks})
                SELECT p.* FROM w JOIN proposals p ON p.run_id = w.run_id AND p.match_id = w.match_id
                ORDER BY w.position""",
            [v for i, (m, r, *_rest) in enumerate(picked) for v in (i, r, m)])
        names = [d[0] for d in cur.description]
        for values, (_m, _r, state, seq, abs_amount, bank_date, account) in zip(cur.fetchall(), picked, strict=True):
            row = dict(zip(names, values, strict=True))
            row.update(state=state, decision_seq=seq, abs_amount=abs_amount, bank_date=bank_date, account=account)
            rows.append(row)
    _add_line_summaries(con, rows)
    return QueuePage(rows=rows, total=total, offset=offset, limit=limit)


def queue_ids(con: duckdb.DuckDBPyConnection, filters: QueueFilters) -> list[str]:
    """The ids of every match passing ``filters`` (what a bulk action applies to)."""
    ensure_match_index(con)
    sql, params = _filtered_sql(filters)
    return [m for (m,) in con.execute(f"SELECT match_id FROM ({sql}) ORDER BY match_id", params).fetchall()]


def _add_line_summaries(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    """Give each row ``bank_date``, ``bank_text`` (first bank line's description),
    ``account`` and ``payers`` (the ledger items' counterparties, else the bank lines')."""
    if not rows:
        return
    wanted = [(r["run_id"], r["match_id"]) for r in rows]
    marks = ", ".join("(?, ?)" for _ in wanted)
    found = con.execute(
        f"""WITH w(run_id, match_id) AS (VALUES {marks})
            SELECT ml.match_id, min(b.date) AS bank_date, min(b.description) AS bank_text, min(b.account) AS account,
                   coalesce(string_agg(DISTINCT li.counterparty, '; ' ORDER BY li.counterparty)
                                FILTER (WHERE trim(li.counterparty) <> ''),
                            string_agg(DISTINCT b.counterparty, '; ' ORDER BY b.counterparty)
                                FILTER (WHERE trim(b.counterparty) <> '')) AS payers
            FROM w JOIN match_lines ml ON ml.run_id = w.run_id AND ml.match_id = w.match_id
            LEFT JOIN bank_lines b ON ml.side = 'bank' AND b.id = ml.id
            LEFT JOIN ledger_items li ON ml.side = 'ledger' AND li.id = ml.id
            GROUP BY ml.match_id""",
        [v for pair in wanted for v in pair]).fetchall()
    by_id = {m: (d, t, a, p) for m, d, t, a, p in found}
    for r in rows:
        r["bank_date"], r["bank_text"], r["account"], r["payers"] = by_id.get(r["match_id"], (None, None, None, None))


def state_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Matches by current state, every state of :data:`STATES` present."""
    counts = dict.fromkeys(STATES, 0)
    [(proposed,)] = con.execute(
        f"SELECT count(*) FROM proposals p ANTI JOIN decisions d ON d.match_id = p.match_id "
        f"WHERE p.run_id = ({CURRENT_RUN_SQL})").fetchall()
    counts["proposed"] = proposed
    for state, n in con.execute(f"SELECT state, count(*) FROM ({_LATEST_SQL}) GROUP BY state").fetchall():
        counts[state] = counts.get(state, 0) + n
    return counts


def accounts(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The bank accounts the workspace's bank lines are on (for the account filter)."""
    return [a for (a,) in con.execute(
        "SELECT DISTINCT account FROM bank_lines WHERE account IS NOT NULL AND account <> '' ORDER BY account LIMIT 200"
    ).fetchall()]


def _split_ids(text: str | None) -> list[str]:
    return [i for i in (text or "").split(ID_SEPARATOR) if i]


_LINE_COLUMNS = "id, date, amount_minor, currency, description, counterparty, reference, account"


def _lines(con: duckdb.DuckDBPyConnection, table: str, ids: list[str], extra: str = "") -> list[dict]:
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    cur = con.execute(f"SELECT {_LINE_COLUMNS}{extra} FROM {table} WHERE id IN ({marks}) ORDER BY date, id", ids)
    names = [d[0] for d in cur.description]
    out = []
    for values in cur.fetchall():
        row = dict(zip(names, values, strict=True))
        row["amount"] = format_amount(str(from_minor(row["amount_minor"], row["currency"])), row["currency"])
        out.append(row)
    return out


def proposal(con: duckdb.DuckDBPyConnection, match_id: str) -> dict | None:
    """One match as its page shows it, or None when the workspace has no such match.

    Returns
    -------
    dict
        The current proposal row (``match_type``, ``status``, ``confidence``, amounts,
        ``explanation``, ``adjustments``, ``open_amount``, ``runner_up`` and ``margin`` when
        the run kept them) with ``state``; ``bank`` and ``ledger``: the lines;
        ``evidence``: the explanation's phrases, each with the weight of the comparison level it
        names when the run's ``weights`` table has it; ``adjustment_lines``: ``cause``,
        ``amount``, ``account``; ``differences``: which of amount, date, name, reference differ
        between the sides; ``decisions``: the match's decisions, newest first; ``writes``: its
        write-back results per target.
    """
    if not _ID_TEXT.match(match_id or ""):
        return None
    cur = con.execute(
        f"""WITH latest AS ({_LATEST_SQL.replace('GROUP BY', 'WHERE match_id = $m GROUP BY')})
            SELECT p.*, r.started_at AS proposed_at, r.rules_version, r.scorer, r.mode,
                   coalesce(l.state, CASE WHEN p.run_id = ({CURRENT_RUN_SQL}) THEN 'proposed' END) AS state
            FROM proposals p JOIN runs r ON r.run_id = p.run_id LEFT JOIN latest l ON l.match_id = p.match_id
            WHERE p.match_id = $m ORDER BY r.started_at DESC, p.run_id DESC LIMIT 1""", {"m": match_id})
    names = [d[0] for d in cur.description]
    found = cur.fetchall()
    if not found:
        return None
    row = dict(zip(names, found[0], strict=True))
    if row["state"] is None:
        row["state"] = "replaced"  # proposed by an earlier run, not by the current one
    currency = row["currency"]
    for key in ("bank_amount", "ledger_amount", "difference", "open_amount"):
        row[f"{key}_shown"] = format_amount(row.get(key), currency)
    row["bank"] = _lines(con, "bank_lines", _split_ids(row["bank_ids"]))
    row["ledger"] = _lines(con, "ledger_items", _split_ids(row["ledger_ids"]), extra=", type, due_date")
    row["adjustment_lines"] = adjustment_lines(row.get("adjustments"), currency)
    row["evidence"] = _evidence(con, row)
    row["level_weights"] = _level_weights(con, row)
    row["differences"] = _differences(row["bank"], row["ledger"])
    cur = con.execute(
        """SELECT seq, "at", "by", action, before_state, after_state, comment, target FROM decisions
           WHERE match_id = ? ORDER BY seq DESC""", [match_id])
    names = [d[0] for d in cur.description]
    row["decisions"] = [dict(zip(names, v, strict=True)) for v in cur.fetchall()]
    row["writes"] = match_writes(con, match_id)
    return row


_ADJUSTMENT = re.compile(r"^\s*(?P<cause>[a-z_]+)\s+(?P<amount>[+-]?[0-9]+(?:\.[0-9]+)?)\s*(?:\((?P<account>[^)]*)\))?\s*$")


def adjustment_lines(text: str | None, currency: str | None) -> list[dict]:
    """The balancing lines of ``cause amount (account)`` text joined by ``; ``."""
    out = []
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        found = _ADJUSTMENT.match(part)
        if found is None:
            out.append({"cause": part.strip(), "amount": "", "account": ""})
            continue
        out.append({"cause": found["cause"], "amount": format_amount(found["amount"], currency),
                    "account": found["account"] or ""})
    return out


def _evidence(con: duckdb.DuckDBPyConnection, row: dict) -> list[dict]:
    """The explanation's phrases, each with the weight (bits) of the level whose label it starts
    with in the run's scorer, when one does."""
    labels = con.execute(
        "SELECT label, weight, comparison FROM weights WHERE run_id = ? AND comparison <> 'prior' "
        "ORDER BY length(label) DESC", [row["run_id"]]).fetchall()
    out = []
    for phrase in (row.get("explanation") or "").split("; "):
        if not phrase.strip():
            continue
        level = next(((label, weight, comparison) for label, weight, comparison in labels
                      if phrase.lower().startswith(label.lower())), None)
        out.append({"phrase": phrase, "level": level[0] if level else None,
                    "comparison": level[2] if level else None, "weight": level[1] if level else None})
    return out


def _level_weights(con: duckdb.DuckDBPyConnection, row: dict) -> list[dict]:
    """The level each comparison put a pair proposal in (its ``levels`` column: ``reference=full;
    amount=exact; ...``) with the level's label and weight in the run's scorer, the prior first;
    empty for a group or a run that did not keep its levels. The weights add up to the pair's
    score in bits (before the review floor and the context groups add)."""
    from engine.scoring.explain import LEVEL_SEPARATOR

    levels = row.get("levels")
    if not levels:
        return []
    weights = {(comparison, level): (label, weight) for comparison, level, label, weight in con.execute(
        "SELECT comparison, level, label, weight FROM weights WHERE run_id = ?", [row["run_id"]]).fetchall()}
    out = []
    if ("prior", "prior") in weights:
        out.append({"comparison": "prior", "level": "prior", "label": "prior odds of a match",
                    "weight": weights[("prior", "prior")][1]})
    for entry in levels.split(LEVEL_SEPARATOR):
        comparison, _, level = entry.partition("=")
        label, weight = weights.get((comparison, level), (level, None))
        out.append({"comparison": comparison, "level": level, "label": label, "weight": weight})
    return out


def _norm(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


def _differences(bank: list[dict], ledger: list[dict]) -> dict[str, bool]:
    """Which fields differ between the two sides (a one-sided match differs in nothing)."""
    if not bank or not ledger:
        return {"amount": False, "date": False, "name": False, "reference": False}
    bank_total = sum(r["amount_minor"] for r in bank)
    ledger_total = sum(r["amount_minor"] for r in ledger)
    same_currency = {r["currency"] for r in bank} == {r["currency"] for r in ledger}
    bank_names = {_norm(r["counterparty"]) for r in bank} - {""}
    ledger_names = {_norm(r["counterparty"]) for r in ledger} - {""}
    bank_text = " ".join(_norm(f"{r['reference']} {r['description']}") for r in bank)
    refs = [_norm(r["reference"]) for r in ledger if _norm(r["reference"])]
    return {
        "amount": not same_currency or bank_total != ledger_total,
        "date": {r["date"] for r in bank} != {r["date"] for r in ledger},
        "name": bool(bank_names and ledger_names and not bank_names & ledger_names),
        "reference": bool(refs) and not all(ref in bank_text for ref in refs),
    }


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]).fetchall())


def match_writes(con: duckdb.DuckDBPyConnection, match_id: str) -> list[dict]:
    """The latest write-back result of each target and key of ``match_id``."""
    if not _has_table(con, "writes"):
        return []
    cur = con.execute(
        """SELECT target, key, action, state, reason, "at" FROM writes WHERE match_id = ?
           QUALIFY row_number() OVER (PARTITION BY target, key ORDER BY "at" DESC) = 1
           ORDER BY "at" DESC""", [match_id])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, v, strict=True)) for v in cur.fetchall()]


def failed_writes(con: duckdb.DuckDBPyConnection, limit: int = 100) -> list[dict]:
    """Matches whose current state is ``failed``, with the adapter's latest reason."""
    if not _has_table(con, "writes"):
        return []
    cur = con.execute(
        f"""WITH latest AS ({_LATEST_SQL})
            SELECT w.match_id, w.target, w.action, w.state, w.reason, w."at" FROM writes w
            JOIN latest l ON l.match_id = w.match_id
            WHERE l.state = 'failed' AND w.state IN ('failed', 'conflict')
            QUALIFY row_number() OVER (PARTITION BY w.match_id ORDER BY w."at" DESC) = 1
            ORDER BY w."at" DESC LIMIT ?""", [limit])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, v, strict=True)) for v in cur.fetchall()]


def open_lines(con: duckdb.DuckDBPyConnection, side: str, text: str | None = None, currency: str | None = None,
               limit: int = 200) -> list[dict]:
    """Bank lines (``side="bank"``) or ledger items not held by an accepted, written or failed
    match, most recent first, optionally narrowed by text (id, description, counterparty,
    reference) and currency; each with ``amount_minor`` and ``exponent`` for the running sum."""
    if side not in ("bank", "ledger"):
        raise InputError(f"side {side!r} is not bank or ledger")
    table = "bank_lines" if side == "bank" else "ledger_items"
    taken = ", ".join(f"'{s}'" for s in TAKEN_STATES)
    conditions, params = [], [side]
    if text:
        like = _like(text)
        conditions.append("(t.id ILIKE ? ESCAPE '\\' OR t.description ILIKE ? ESCAPE '\\' "
                          "OR t.counterparty ILIKE ? ESCAPE '\\' OR t.reference ILIKE ? ESCAPE '\\')")
        params += [like] * 4
    if currency:
        conditions.append("t.currency = ?")
        params.append(currency)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    cur = con.execute(
        f"""WITH latest AS ({_LATEST_SQL}),
            held AS (SELECT DISTINCT ml.id FROM match_lines ml JOIN latest l ON l.match_id = ml.match_id
                     WHERE ml.side = ? AND l.state IN ({taken}))
            SELECT t.id, t.date, t.amount_minor, t.currency, t.description, t.counterparty, t.reference, t.account
            FROM {table} t ANTI JOIN held h ON h.id = t.id {where}
            ORDER BY t.date DESC, t.id LIMIT ?""", [*params, limit])
    names = [d[0] for d in cur.description]
    out = []
    for values in cur.fetchall():
        row = dict(zip(names, values, strict=True))
        row["amount"] = format_amount(str(from_minor(row["amount_minor"], row["currency"])), row["currency"])
        row["exponent"] = currency_exponent(row["currency"])
        out.append(row)
    return out
