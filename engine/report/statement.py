"""Month-end report stage (after matching and review): the bank reconciliation statement.

For a period (a calendar month) and each currency the workspace holds bank lines or cash-book
entries in, :func:`build_report` computes the statement a controller signs: the balance per
bank statement at the period's end, the balance per books, and the reconciling items between
them, summing **exactly** (integer minor units) to their difference. It also gives the month's
match rates and the unmatched items by age. Everything is read from the workspace (lines,
current proposals and decisions, the statement balances ingest kept); nothing is written.

Definitions (as of the period's end ``E``, the month's last day; a match's state is its current
state, so decisions taken after ``E`` count):

- **Cash-book entries** are the ledger items whose ``type`` is one of the rule set's
  ``[writeback] cash_book_types`` (default ``payment``, ``receipt``, ``journal``): lines already
  booked on the bank account. The other ledger items (invoices, bills, credit notes, orders,
  payroll, untyped items, ...) are open items: they reach the bank account only when a match
  settles them. A ledger item does not name its bank account, so the books are kept per
  currency (the bank accounts of one currency are reconciled together).
- A match is **cleared by E** when it is ``accepted``, ``written`` or ``failed`` (write-back
  refused it, but the reviewer accepted it), every bank line in it is dated on or before ``E``
  and so is every cash-book entry in it.
- **Opening balance**: per bank account, the earliest opening balance its statements state
  (CAMT.053 ``OPBD``, MT940 ``:60F:``, a bank CSV's running balance less its first line), as
  ingest stored it; or the ``opening_balances`` given (``--opening-balance``); otherwise 0.00,
  said in the notes. The books are taken to agree with the bank at that opening: the book
  balance starts from the same amount.
- **Statement balance**: per bank account, the latest closing balance its statements state
  dated in the period (CAMT.053 ``CLBD``, MT940 ``:62F:``, OFX ``LEDGERBAL``, a bank CSV's running
  balance), plus the lines held dated after it up to ``E``; or the ``closing_balances`` given
  (``--closing-balance``); otherwise it is computed: opening balance + every bank line held
  dated up to ``E`` (said as such). Where a balance is stated, the difference between it and
  opening + lines held is shown as its own reconciling item (statement movements not held in
  the workspace: a statement not ingested, a rejected row); it is zero when the workspace holds
  every line of the statements.
- **Book balance** = opening balance + every cash-book entry dated up to ``E`` + the open items
  settled by matches cleared by ``E`` (each match's ledger amount in the account's currency less
  the cash-book entries in it: invoices, bills, orders, payroll settled at the amount paid, a
  foreign-currency item at its converted amount).

Reconciling items (their ``effect`` is their share of statement balance - book balance):

- ``statement_gap``: stated statement balance - (opening + lines held), see above;
- ``unmatched_bank``: bank lines dated up to ``E`` in no match cleared by ``E`` (charges, interest,
  unknown credits; lines still proposed or for review; lines whose match clears after ``E``);
  effect = their amount;
- ``adjustment``: the adjustments of matches cleared by ``E`` (bank charges, short payments,
  overpayments, FX differences, processor fees: bank amount = ledger amount + adjustments);
  effect = their amount;
- ``deposit_in_transit``: cash-book receipts dated up to ``E`` not in a match cleared by ``E``;
  ``outstanding_payment``: cash-book payments likewise; effect = -their amount. A cash-book
  entry a cleared match settles only in part (an instalment still open) leaves its open part
  here.

so that statement balance - book balance = the sum of the effects, always.
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from engine.workspace.decisions import TAKEN_STATES, current_proposals
from engine.workspace.store import Workspace, rules_version
from models.errors import InputError, PrecisionError, ReconError
from models.money import display_minor, format_minor, to_minor
from rules.model import RuleSet, default_rules, from_mapping, load_rules

__all__ = [
    "Report", "Statement", "ReconcilingItem", "RateRow", "AgeRow", "build_report", "parse_period",
    "format_amount", "CATEGORIES", "AGE_BUCKETS", "OUTCOMES", "LABELS",
]

#: reconciling item categories, in the order the statement lists them, and their titles
CATEGORIES: dict[str, str] = {
    "deposit_in_transit": "Deposits in transit (receipts in the books, not yet on the statement)",
    "outstanding_payment": "Outstanding payments (payments in the books, not yet cleared)",
    "unmatched_bank": "Bank lines not in the books (charges, interest, unknown credits, lines not yet matched)",
    "adjustment": "Adjustments booked on accepted matches (bank charges, write-offs, FX differences, fees)",
    "statement_gap": "Statement movements not held in the workspace (stated balance - opening - lines held)",
}

#: age buckets of unmatched items: (label, first day, last day or None)
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7", 0, 7), ("8-30", 8, 30), ("31-60", 31, 60), ("61-90", 61, 90), (">90", 91, None))

#: what became of the month's bank lines, in the order the report shows them
OUTCOMES: dict[str, str] = {
    "auto": "accepted: auto proposal",
    "review": "accepted: reviewed proposal",
    "manual": "accepted: manual match",
    "pending": "proposed, not decided",
    "open": "no match (none proposed, or rejected / undone)",
}

#: short labels of the categories (plain-text statement, CSV)
LABELS = {"deposit_in_transit": "deposits in transit", "outstanding_payment": "outstanding payments",
          "unmatched_bank": "bank lines not in the books", "adjustment": "adjustments booked",
          "statement_gap": "statement movements not held"}

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")
# one adjustment of a proposal's ``adjustments`` cell: ``cause amount (account)``
_ADJUSTMENT = re.compile(r"^\s*(?P<cause>[A-Za-z_][\w]*)\s+(?P<amount>[+-]?\d+(?:\.\d+)?)\s*(?:\((?P<account>[^)]*)\))?\s*$")
_OPENING_TYPES = ("opening", "opening_derived")


def parse_period(period: str) -> tuple[date, date]:
    """The first and last day of a ``YYYY-MM`` period.

    Raises
    ------
    InputError
        Not ``YYYY-MM`` or not a month.

    Examples
    --------
    >>> parse_period("2026-10")
    (datetime.date(2026, 10, 1), datetime.date(2026, 10, 31))
    """
    found = _PERIOD.match(str(period).strip())
    if not found or not 1 <= int(found[2]) <= 12 or not 1900 <= int(found[1]) <= 2199:
        raise InputError(f"period {period!r}: give a month as YYYY-MM (e.g. 2026-10)")
    year, month = int(found[1]), int(found[2])
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def format_amount(minor: int, currency: str) -> str:
    """An amount for display: the currency's decimals, thousands separated.

    Examples
    --------
    >>> format_amount(-123456789, "HKD"), format_amount(1234567, "JPY"), format_amount(12345, "KWD")
    ('-1,234,567.89', '1,234,567', '12.345')
    """
    return display_minor(minor, currency)


@dataclass(frozen=True)
class ReconcilingItem:
    """One line of the statement between the statement balance and the book balance.

    Attributes
    ----------
    category
        A key of :data:`CATEGORIES`.
    currency
        The account currency.
    date
        The line's date (an adjustment: its match's latest bank line).
    side
        ``bank``, ``ledger`` or ``match`` (an adjustment), ``statement`` (a gap).
    ids
        The bank line or ledger item id(s).
    amount_minor
        As the line moved (or would move) cash: + in, - out; an adjustment as booked.
    effect_minor
        Its share of statement balance - book balance.
    match_id, state
        The match the line is in (a pending proposal, a match not cleared by the end, the
        adjustment's match) and its current state; None for a line in no match.
    cause, account
        An adjustment's cause and account.
    description, counterparty, reference
        The line's own text, as written.
    note
        Why the line is here, in words.
    age_days
        Days from its date to the period's end.
    """

    category: str
    currency: str
    date: date | None
    side: str
    ids: tuple[str, ...]
    amount_minor: int
    effect_minor: int
    match_id: str | None = None
    state: str | None = None
    cause: str | None = None
    account: str | None = None
    description: str | None = None
    counterparty: str | None = None
    reference: str | None = None
    note: str | None = None
    age_days: int | None = None


@dataclass
class Statement:
    """The reconciliation of one currency's bank account(s) at the period's end.

    ``statement_minor - book_minor == sum(item.effect_minor for item in items)`` always holds
    (:attr:`unexplained_minor` is 0; :func:`build_report` checks it).
    """

    currency: str
    accounts: list[str]
    opening_minor: int
    opening_source: str
    bank_lines: int
    bank_lines_minor: int
    statement_minor: int
    statement_source: str
    cash_book_entries: int
    cash_book_minor: int
    settled_matches: int
    settled_minor: int
    book_minor: int
    items: list[ReconcilingItem] = field(default_factory=list)

    @property
    def difference_minor(self) -> int:
        """Statement balance - book balance."""
        return self.statement_minor - self.book_minor

    def total(self, category: str) -> int:
        """The sum of the effects of one category's items."""
        return sum(i.effect_minor for i in self.items if i.category == category)

    def count(self, category: str) -> int:
        return sum(1 for i in self.items if i.category == category)

    @property
    def unexplained_minor(self) -> int:
        """Difference the reconciling items do not explain (0 when the statement balances)."""
        return self.difference_minor - sum(i.effect_minor for i in self.items)

    def fmt(self, minor: int) -> str:
        return format_amount(minor, self.currency)


@dataclass(frozen=True)
class RateRow:
    """Matches touching the month's bank lines, for one status or match type.

    ``accepted`` counts ``accepted``, ``written`` and ``failed`` matches; ``rate`` is accepted
    over decided (accepted + rejected + reversed), None when nothing was decided.
    """

    group: str
    label: str
    matches: int
    accepted: int
    rejected: int
    reversed: int
    pending: int
    bank_lines: int

    @property
    def rate(self) -> float | None:
        decided = self.accepted + self.rejected + self.reversed
        return self.accepted / decided if decided else None


@dataclass(frozen=True)
class AgeRow:
    """Unmatched items of one category and currency in one age bucket at the period's end."""

    category: str
    currency: str
    bucket: str
    items: int
    amount_minor: int


@dataclass
class Report:
    """The month-end report of one workspace and period (:func:`build_report`)."""

    workspace: str
    period: str
    start: date
    end: date
    generated_at: datetime
    rules_version: str
    cash_book_types: tuple[str, ...]
    statements: list[Statement]
    outcomes: dict[str, int]
    month_bank_lines: int
    rates: list[RateRow]
    ageing: list[AgeRow]
    notes: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """Every currency's reconciling items sum exactly to its difference."""
        return all(s.unexplained_minor == 0 for s in self.statements)

    def to_dict(self) -> dict:
        """The report as JSON-ready data: amounts as exact decimal text, dates ISO."""
        def money(minor: int, currency: str) -> str:
            return format_minor(minor, currency)

        statements = []
        for s in self.statements:
            c = s.currency
            statements.append({
                "currency": c, "accounts": s.accounts,
                "opening_balance": money(s.opening_minor, c), "opening_source": s.opening_source,
                "bank_lines": s.bank_lines, "bank_lines_total": money(s.bank_lines_minor, c),
                "statement_balance": money(s.statement_minor, c), "statement_source": s.statement_source,
                "cash_book_entries": s.cash_book_entries, "cash_book_total": money(s.cash_book_minor, c),
                "settled_matches": s.settled_matches, "settled_total": money(s.settled_minor, c),
                "book_balance": money(s.book_minor, c),
                "difference": money(s.difference_minor, c),
                "totals": {k: {"items": s.count(k), "effect": money(s.total(k), c)} for k in CATEGORIES},
                "unexplained": money(s.unexplained_minor, c),
                "items": [{
                    "category": i.category, "date": i.date.isoformat() if i.date else None, "side": i.side,
                    "ids": list(i.ids), "amount": money(i.amount_minor, c), "effect": money(i.effect_minor, c),
                    "match_id": i.match_id, "state": i.state, "cause": i.cause, "account": i.account,
                    "description": i.description, "counterparty": i.counterparty, "reference": i.reference,
                    "note": i.note, "age_days": i.age_days,
                } for i in s.items],
            })
        return {
            "workspace": self.workspace, "period": self.period, "start": self.start.isoformat(),
            "end": self.end.isoformat(), "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "rules_version": self.rules_version, "cash_book_types": list(self.cash_book_types),
            "balanced": self.balanced, "statements": statements,
            "month_bank_lines": self.month_bank_lines, "outcomes": self.outcomes,
            "rates": [{"group": r.group, "label": r.label, "matches": r.matches, "accepted": r.accepted,
                       "rejected": r.rejected, "reversed": r.reversed, "pending": r.pending,
                       "bank_lines": r.bank_lines, "rate": r.rate} for r in self.rates],
            "ageing": [{"category": a.category, "currency": a.currency, "bucket": a.bucket, "items": a.items,
                        "amount": money(a.amount_minor, a.currency)} for a in self.ageing],
            "notes": self.notes,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def summary(self) -> str:
        """The statement as plain text (what ``recon report`` prints)."""
        out = [f"Bank reconciliation {self.period} ({self.start} to {self.end}), workspace {self.workspace}"]
        for s in self.statements:
            c = s.currency
            width = max(len(s.fmt(v)) for v in (s.statement_minor, s.book_minor, *(s.total(k) for k in CATEGORIES)))
            out.append(f"  {c}  accounts: {', '.join(s.accounts) or '(none named)'}; each item as it moves the "
                       "statement balance to the books")
            out.append(f"    {'statement balance at ' + self.end.isoformat():<52} {s.fmt(s.statement_minor):>{width}}"
                       f"  ({s.statement_source})")
            for key in CATEGORIES:
                if s.count(key) or key != "statement_gap":
                    label = f"{LABELS[key]} ({s.count(key)})"
                    out.append(f"    {label:<52} {s.fmt(-s.total(key)):>{width}}")
            out.append(f"    {'= book balance':<52} {s.fmt(s.book_minor):>{width}}  (opening {s.fmt(s.opening_minor)}"
                       f" + {s.cash_book_entries} cash-book entries {s.fmt(s.cash_book_minor)} + {s.settled_matches}"
                       f" settled matches {s.fmt(s.settled_minor)})")
            state = "balances" if s.unexplained_minor == 0 else f"DOES NOT BALANCE by {s.fmt(s.unexplained_minor)}"
            out.append(f"    difference statement - book {s.fmt(s.difference_minor)} = reconciling items: {state}")
        if self.month_bank_lines:
            shares = ", ".join(f"{k} {v}" for k, v in self.outcomes.items())
            out.append(f"  bank lines dated in the month: {self.month_bank_lines} ({shares})")
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)


def _amount_option(values: dict[str, str | Decimal | int] | None, what: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for currency, amount in (values or {}).items():
        code = str(currency).strip().upper()
        try:
            out[code] = to_minor(amount if isinstance(amount, Decimal | int) else str(amount).strip(), code)
        except PrecisionError as exc:
            raise InputError(f"{what} {currency}={amount}: {exc}") from None
    return out


def _rules(ws: Workspace, rules: RuleSet | str | Path | None) -> RuleSet:
    """The rule set given, else the latest run's (its cash-book types), else the built-in one."""
    if isinstance(rules, RuleSet):
        return rules
    if rules is not None:
        return load_rules(rules)
    rows = ws.con.execute(
        "SELECT rules_name, rules_json FROM runs WHERE rules_json IS NOT NULL "
        "ORDER BY started_at DESC, run_id DESC LIMIT 1").fetchall()
    if not rows:
        return default_rules()
    return from_mapping(json.loads(rows[0][1]), source=f"rule set {rows[0][0]!r} of the workspace's latest run")


def _parse_adjustments(text: str | None, currency: str) -> list[tuple[str, int, str | None]] | None:
    """``cause amount (account)`` items of a proposal as (cause, minor, account); None when one
    cannot be read."""
    out = []
    for part in (p for p in (text or "").split(";") if p.strip()):
        found = _ADJUSTMENT.match(part)
        if found is None:
            return None
        try:
            out.append((found["cause"], to_minor(found["amount"], currency), (found["account"] or "").strip() or None))
        except PrecisionError:
            return None
    return out


def _age(day: date | None, end: date) -> int | None:
    return (end - day).days if day is not None else None


def _bucket(days: int) -> str:
    for label, first, last in AGE_BUCKETS:
        if days >= first and (last is None or days <= last):
            return label
    return AGE_BUCKETS[0][0]  # dated after the end: not an unmatched item of this period


def _table_exists(ws: Workspace, name: str) -> bool:
    return bool(ws.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()[0][0])


def _minor_or_none(text: str | None, currency: str) -> int | None:
    if text is None or str(text).strip() == "":
        return None
    try:
        return to_minor(str(text).strip(), currency)
    except PrecisionError:
        return None


def build_report(
    workspace: str | Path | Workspace,
    period: str,
    *,
    opening_balances: dict[str, str | Decimal | int] | None = None,
    closing_balances: dict[str, str | Decimal | int] | None = None,
    rules: RuleSet | str | Path | None = None,
) -> Report:
    """The month-end bank reconciliation of a workspace (see the module docstring for every
    definition).

    Parameters
    ----------
    workspace
        The workspace file, or an open :class:`~engine.workspace.store.Workspace` (used as it
        is; a path is opened, locked while the report is read, and closed).
    period
        The month, ``YYYY-MM``.
    opening_balances
        ``{currency: amount}``: the balance of the currency's account(s) before the first line
        the workspace holds, where no statement the workspace holds states one (canonical CSV
        has no balances); overrides a stated one.
    closing_balances
        ``{currency: amount}``: the statement balance at the period's end read off the bank's
        statement; overrides the stated or computed one (any difference to opening + lines
        held is shown as a statement gap).
    rules
        The rule set whose ``[writeback] cash_book_types`` define the cash-book entries
        (default: the workspace's latest run's).

    Returns
    -------
    Report

    Raises
    ------
    InputError
        A period that is not ``YYYY-MM``; an amount that is not exact for its currency.
    ReconError
        The workspace does not exist or is not a workspace; the reconciliation does not sum
        (a bug: never expected).

    Examples
    --------
    >>> report = build_report("books.duckdb", "2026-10")          # doctest: +SKIP
    >>> report.statements[0].difference_minor == sum(i.effect_minor for i in report.statements[0].items)  # doctest: +SKIP
    True
    """
    start, end = parse_period(period)
    openings = _amount_option(opening_balances, "--opening-balance")
    closings = _amount_option(closing_balances, "--closing-balance")
    if isinstance(workspace, Workspace):
        return _build(workspace, period, start, end, openings, closings, rules)
    path = Path(workspace)
    if not path.exists():
        raise ReconError(f"workspace {path} does not exist; create it with "
                         f"`recon ingest --workspace {path} --bank FILE --ledger FILE`")
    with Workspace(path, create=False) as ws:
        return _build(ws, period, start, end, openings, closings, rules)


def _build(ws: Workspace, period: str, start: date, end: date, openings: dict[str, int],
           closings: dict[str, int], rules: RuleSet | str | Path | None) -> Report:
    rule_set = _rules(ws, rules)
    cash_types = tuple(rule_set.writeback.cash_book_types)
    con = ws.con
    notes: list[str] = []

    # every match the workspace knows, with its current state, and its lines
    current = current_proposals(con)
    # the evidence a match rests on: its reference level (a pair proposal keeps its comparison
    # levels, "reference=full; amount=exact; ..."), or how a group or a manual match was made
    reference = pl.col("levels").str.extract(r"(?:^|; )reference=([^;]+)") if "levels" in current.columns \
        else pl.lit(None, dtype=pl.Utf8)
    current = current.with_columns(
        evidence=pl.when(pl.col("status") == "manual").then(pl.lit("manual match"))
        .when(reference.is_not_null()).then(pl.lit("reference: ") + reference)
        .otherwise(pl.lit("group search: ") + pl.col("match_type"))
    ).select("match_id", "run_id", "state", "match_type", "status", "evidence", "currency", "bank_amount",
             "ledger_amount", "adjustments")
    con.register("_current", current.select("run_id", "match_id").to_arrow())
    try:
        lines = con.sql("SELECT ml.match_id, ml.side, ml.id FROM match_lines ml "
                        "JOIN _current c ON ml.run_id = c.run_id AND ml.match_id = c.match_id").pl()
    finally:
        con.unregister("_current")
    bank = con.sql(
        "SELECT id, date, amount_minor, currency, description, counterparty, reference, account FROM bank_lines "
        "WHERE date <= $end ORDER BY date, id", params={"end": end}).pl()
    ledger_ids = lines.filter(pl.col("side") == "ledger").select("id").unique()
    con.register("_ledger_ids", ledger_ids.to_arrow())
    try:
        ledger = con.sql(
            "SELECT id, date, amount_minor, currency, description, counterparty, reference, "
            "lower(trim(coalesce(type, ''))) AS type FROM ledger_items "
            "WHERE (date <= $end AND list_contains($types, lower(trim(coalesce(type, ''))))) "
            "OR id IN (SELECT id FROM _ledger_ids)", params={"end": end, "types": list(cash_types)}).pl()
    finally:
        con.unregister("_ledger_ids")
    ledger = ledger.with_columns(cash_book=pl.col("type").is_in(list(cash_types)))
    bank_all = con.sql("SELECT id, date, currency FROM bank_lines WHERE id IN "
                       "(SELECT id FROM match_lines WHERE side = 'bank')").pl() if lines.height else bank.head(0)

    # which matches are cleared by the end
    taken = current.filter(pl.col("state").is_in(list(TAKEN_STATES)))
    bank_in = lines.filter(pl.col("side") == "bank").join(bank_all.select("id", "date"), on="id", how="left")
    ledger_in = lines.filter(pl.col("side") == "ledger").join(
        ledger.select("id", "date", "amount_minor", "currency", "cash_book"), on="id", how="left")
    per_bank = bank_in.group_by("match_id").agg(
        late_bank=(pl.col("date").is_null() | (pl.col("date") > end)).any(), bank_date=pl.col("date").max(),
        bank_ids=pl.col("id").sort())
    per_cash = ledger_in.filter(pl.col("cash_book").fill_null(False)).group_by("match_id").agg(
        late_cash=(pl.col("date") > end).any())
    cleared = (taken.join(per_bank, on="match_id", how="left").join(per_cash, on="match_id", how="left")
               .filter(~pl.col("late_bank").fill_null(False) & ~pl.col("late_cash").fill_null(False)))
    # a cash-book entry counts in its match's book when the match is in the entry's currency; one
    # in a match of another currency was converted: it is an open item of that match
    in_cleared = ledger_in.join(cleared.select("match_id", match_currency="currency"), on="match_id")
    own = pl.col("cash_book").fill_null(False) & (pl.col("currency") == pl.col("match_currency"))
    cleared_cash_ids = set(in_cleared.filter(own)["id"].to_list())
    converted_cash_ids = set(in_cleared.filter(pl.col("cash_book").fill_null(False) & ~own)["id"].to_list())
    per_ledger = in_cleared.group_by("match_id").agg(
        cash=pl.col("amount_minor").filter(own).sum(), cash_ids=pl.col("id").filter(own).sort(),
        open_items=(~own).sum())
    cleared = cleared.join(per_ledger, on="match_id", how="left")
    cleared_bank_ids = set(bank_in.join(cleared.select("match_id"), on="match_id")["id"].to_list())

    # where each open line is (a proposal, a rejected match, an accepted one not cleared by the end)
    rank = {"accepted": 0, "written": 0, "failed": 0, "proposed": 1, "rejected": 2, "reversed": 3}
    states = dict(current.select("match_id", "state").iter_rows())
    statuses = dict(current.select("match_id", "status").iter_rows())
    where: dict[tuple[str, str], tuple[str, str]] = {}
    for match_id, side, line_id in lines.iter_rows():
        state = states.get(match_id)
        held = where.get((side, line_id))
        if held is None or rank.get(state, 9) < rank.get(held[1], 9):
            where[(side, line_id)] = (match_id, state)

    def open_note(side: str, line_id: str) -> tuple[str | None, str | None, str]:
        held = where.get((side, line_id))
        if held is None:
            return None, None, "in no proposal"
        match_id, state = held
        if state in TAKEN_STATES:
            return match_id, state, f"in {state} match {match_id}, which clears after {end.isoformat()}"
        if state == "proposed":
            return match_id, state, f"proposed ({statuses.get(match_id)}) in {match_id}, not decided"
        return match_id, state, f"{state} match {match_id}; open again"

    # balances the statements state, per account
    balances = (con.sql("SELECT account, currency, type, date, amount_minor, source_file FROM statement_balances")
                .pl() if _table_exists(ws, "statement_balances") else None)
    currencies = sorted(set(bank["currency"].to_list())
                        | set(ledger.filter(pl.col("cash_book") & (pl.col("date") <= end))["currency"].to_list())
                        | set(openings) | set(closings))
    statements = []
    for currency in currencies:
        statements.append(_statement(
            currency, start, end, bank.filter(pl.col("currency") == currency),
            ledger.filter((pl.col("currency") == currency) & pl.col("cash_book") & (pl.col("date") <= end)
                          & ~pl.col("id").is_in(list(converted_cash_ids))),
            cleared.filter(pl.col("currency") == currency), cleared_bank_ids, cleared_cash_ids,
            None if balances is None else balances.filter(pl.col("currency") == currency),
            openings.get(currency), closings.get(currency), open_note, notes))

    rates, outcomes, month_lines = _rates(current, lines, bank, start, end)
    ageing = _ageing(statements, end)
    return Report(
        workspace=str(ws.path), period=period, start=start, end=end, generated_at=datetime.now(UTC),
        rules_version=rules_version(rule_set.name, rule_set.model_dump_json()), cash_book_types=cash_types, statements=statements,
        outcomes=outcomes, month_bank_lines=month_lines, rates=rates, ageing=ageing, notes=notes)


def _statement(currency, start, end, bank, cash_book, cleared, cleared_bank_ids, cleared_cash_ids,
               balances, opening_given, closing_given, open_note, notes) -> Statement:
    """One currency's statement (see the module docstring)."""
    accounts = sorted({a for a in bank["account"].to_list() if a}
                      | ({a for a in balances["account"].to_list() if a} if balances is not None else set()))
    lines_minor = int(bank["amount_minor"].sum() or 0)

    # opening: stated per account (earliest), or given, or 0
    stated_openings: dict[str, tuple[int, date, str]] = {}
    stated_closings: dict[str, tuple[int, date, str]] = {}
    if balances is not None and balances.height:
        for row in balances.sort("date").iter_rows(named=True):
            account = row["account"] or ""
            if row["type"] in _OPENING_TYPES and row["date"] is not None:
                held = stated_openings.get(account)
                if held is None or row["date"] < held[1] or (row["date"] == held[1] and row["type"] == "opening"):
                    stated_openings[account] = (row["amount_minor"], row["date"], row["source_file"] or "")
            if row["type"] == "closing" and row["date"] is not None and start <= row["date"] <= end:
                stated_closings[account] = (row["amount_minor"], row["date"], row["source_file"] or "")
    if opening_given is not None:
        opening, opening_source = opening_given, "given (--opening-balance)"
    elif stated_openings:
        opening = sum(v[0] for v in stated_openings.values())
        opening_source = "stated: " + "; ".join(
            f"{a or 'account'} {format_amount(v[0], currency)} on {v[1].isoformat()} ({Path(v[2]).name})"
            for a, v in sorted(stated_openings.items()))
        missing = [a for a in accounts if a not in stated_openings]
        if missing:
            notes.append(f"{currency}: no opening balance stated for account(s) {', '.join(missing)}: 0 taken for them")
    else:
        opening, opening_source = 0, "not stated: 0 assumed"
        if bank.height:
            notes.append(f"{currency}: no statement the workspace holds states an opening balance: 0.00 is "
                         f"assumed; give the balance before the first line with --opening-balance {currency}=AMOUNT")

    # statement balance: given, stated (plus later lines), or computed
    computed = opening + lines_minor
    if closing_given is not None:
        statement, source = closing_given, "given (--closing-balance)"
    elif stated_closings and all(a in stated_closings for a in (accounts or [""])):
        statement = 0
        parts = []
        for account, (amount, day, source_file) in sorted(stated_closings.items()):
            after = int(bank.filter(((pl.col("account") == account) if account else pl.lit(True))
                                    & (pl.col("date") > day))["amount_minor"].sum() or 0)
            statement += amount + after
            part = f"{account or 'account'} {format_amount(amount, currency)} stated on {day.isoformat()} ({Path(source_file).name})"
            if after:
                part += f" + lines after it {format_amount(after, currency)}"
            parts.append(part)
        source = "closing balance " + "; ".join(parts)
    else:
        statement, source = computed, "computed: opening balance + the lines held"
    items: list[ReconcilingItem] = []
    if statement != computed:
        items.append(ReconcilingItem(
            "statement_gap", currency, end, "statement", (), statement - computed, statement - computed,
            note=f"stated {format_amount(statement, currency)} - opening {format_amount(opening, currency)} - "
                 f"lines held {format_amount(lines_minor, currency)}"))
        notes.append(f"{currency}: the statement balance differs from opening + the lines held by "
                     f"{format_amount(statement - computed, currency)}: a statement or lines not ingested?")

    # bank lines in no cleared match
    for row in bank.filter(~pl.col("id").is_in(list(cleared_bank_ids))).iter_rows(named=True):
        match_id, state, note = open_note("bank", row["id"])
        items.append(ReconcilingItem(
            "unmatched_bank", currency, row["date"], "bank", (row["id"],), row["amount_minor"], row["amount_minor"],
            match_id=match_id, state=state, description=row["description"], counterparty=row["counterparty"],
            reference=row["reference"], note=note, age_days=_age(row["date"], end)))

    # adjustments (and a cash-book entry's open part) of cleared matches
    settled_minor = settled_matches = 0
    bank_amounts = dict(bank.select("id", "amount_minor").iter_rows())
    for row in cleared.iter_rows(named=True):
        match_id = row["match_id"]
        ledger_minor = _minor_or_none(row["ledger_amount"], currency)
        if ledger_minor is None:
            raise ReconError(f"{match_id}: its ledger amount {row['ledger_amount']!r} {currency} cannot be read")
        cash = row["cash"] or 0
        if row["open_items"]:
            # invoices, bills, orders, ... settled: booked at the amount the match settles
            settled_minor += ledger_minor - cash
            settled_matches += 1
        elif ledger_minor != cash:
            # a cash-book entry the match settles only in part: its open part is still to clear
            rest = cash - ledger_minor
            items.append(ReconcilingItem(
                "deposit_in_transit" if rest > 0 else "outstanding_payment", currency, row["bank_date"], "ledger",
                tuple(row["cash_ids"] or ()), rest, -rest, match_id=match_id, state=row["state"],
                note=f"the part {match_id} does not settle", age_days=_age(row["bank_date"], end)))
        bank_ids = tuple(row["bank_ids"] or ())
        actual_bank = sum(bank_amounts[b] for b in bank_ids)
        difference = actual_bank - ledger_minor
        parsed = _parse_adjustments(row["adjustments"], currency) or []
        booked = 0
        for cause, amount, account in parsed:
            booked += amount
            items.append(ReconcilingItem(
                "adjustment", currency, row["bank_date"], "match", bank_ids, amount, amount, match_id=match_id,
                state=row["state"], cause=cause, account=account, note=f"{cause} on {row['match_type']} {match_id}",
                age_days=_age(row["bank_date"], end)))
        if booked != difference:
            rest = difference - booked
            items.append(ReconcilingItem(
                "adjustment", currency, row["bank_date"], "match", bank_ids, rest, rest, match_id=match_id,
                state=row["state"], cause="unexplained",
                note=f"bank {format_amount(actual_bank, currency)} - ledger {format_amount(ledger_minor, currency)} "
                     f"not explained by the match's adjustments ({row['adjustments'] or 'none'})",
                age_days=_age(row["bank_date"], end)))

    # cash-book entries in no cleared match
    for row in cash_book.filter(~pl.col("id").is_in(list(cleared_cash_ids))).iter_rows(named=True):
        amount = row["amount_minor"]
        if amount == 0:
            continue
        match_id, state, note = open_note("ledger", row["id"])
        items.append(ReconcilingItem(
            "deposit_in_transit" if amount > 0 else "outstanding_payment", currency, row["date"], "ledger",
            (row["id"],), amount, -amount, match_id=match_id, state=state, description=row["description"],
            counterparty=row["counterparty"], reference=row["reference"], note=note,
            age_days=_age(row["date"], end)))

    cash_minor = int(cash_book["amount_minor"].sum() or 0)
    book = opening + cash_minor + settled_minor
    result = Statement(
        currency=currency, accounts=accounts, opening_minor=opening, opening_source=opening_source,
        bank_lines=bank.height, bank_lines_minor=lines_minor, statement_minor=statement, statement_source=source,
        cash_book_entries=cash_book.height, cash_book_minor=cash_minor, settled_matches=settled_matches,
        settled_minor=settled_minor, book_minor=book, items=items)
    if result.unexplained_minor:
        raise ReconError(f"{currency}: the reconciling items miss the difference by "
                         f"{format_amount(result.unexplained_minor, currency)} (a bug in recon: please report it)")
    return result


def _rates(current: pl.DataFrame, lines: pl.DataFrame, bank: pl.DataFrame, start: date,
           end: date) -> tuple[list[RateRow], dict[str, int], int]:
    """Match rates over the month's bank lines: by status, by match type and by the evidence a
    match rests on (a pair's reference level; a group's kind), and what became of each line."""
    month = bank.filter(pl.col("date") >= start).select("id")
    outcomes = dict.fromkeys(OUTCOMES, 0)
    if month.height == 0:
        return [], outcomes, 0
    touching = lines.filter(pl.col("side") == "bank").join(month, on="id").join(
        current.select("match_id", "state", "status", "match_type", "evidence"), on="match_id")
    state_kind = (pl.when(pl.col("state").is_in(list(TAKEN_STATES))).then(pl.lit("accepted"))
                  .when(pl.col("state") == "proposed").then(pl.lit("pending"))
                  .otherwise(pl.col("state")))
    touching = touching.with_columns(kind=state_kind)
    rows = []
    for group, column, labels in (("status", "status", ("auto", "review", "manual")),
                                  ("match_type", "match_type", None), ("evidence", "evidence", None)):
        per_match = touching.group_by("match_id").agg(pl.col(column).first(), pl.col("kind").first(),
                                                      lines=pl.col("id").n_unique())
        keys = labels or tuple(sorted(set(per_match[column].drop_nulls().to_list())))
        for key in keys:
            mine = per_match.filter(pl.col(column) == key)
            kinds = dict(mine.group_by("kind").len().iter_rows())
            accepted = mine.filter(pl.col("kind") == "accepted")
            rows.append(RateRow(group, key, mine.height, kinds.get("accepted", 0), kinds.get("rejected", 0),
                                kinds.get("reversed", 0), kinds.get("pending", 0), int(accepted["lines"].sum() or 0)))
    # each line's best match: accepted over proposed over rejected / undone
    rank = pl.col("kind").replace_strict({"accepted": 0, "pending": 1}, default=2, return_dtype=pl.Int8)
    best = touching.with_columns(rank=rank).sort("rank", "match_id").group_by("id").first()
    for kind, status, n in best.group_by("kind", "status").len().iter_rows():
        if kind == "accepted":
            outcomes[status if status in outcomes else "auto"] += n
        elif kind == "pending":
            outcomes["pending"] += n
        else:
            outcomes["open"] += n
    outcomes["open"] += month.height - best.height
    return rows, outcomes, month.height


def _ageing(statements: list[Statement], end: date) -> list[AgeRow]:
    """The open reconciling items (bank lines, deposits in transit, outstanding payments) by age."""
    rows = []
    for s in statements:
        for category in ("unmatched_bank", "deposit_in_transit", "outstanding_payment"):
            counts = {label: [0, 0] for label, _, _ in AGE_BUCKETS}
            for item in s.items:
                if item.category == category and item.age_days is not None:
                    slot = counts[_bucket(item.age_days)]
                    slot[0] += 1
                    slot[1] += item.amount_minor
            rows += [AgeRow(category, s.currency, label, n, amount) for label, (n, amount) in counts.items()]
    return rows
