"""Adapters (the last stage): the one small interface every write-back target implements.

An accepted match reaches the books as a :class:`WriteItem`: the match's bank lines and ledger
items with the status to set on them, and the balanced journal lines of its adjustments
(processor fees, FX differences, bank charges, short payments). An undo after write-back is a
second item of the same match with ``action="reverse"``: the lines go back to open and the
journal lines are mirrored (debit and credit swapped). Nothing is ever deleted.

Every item is keyed on :attr:`WriteItem.key` (the stable ``match_id`` plus the sequence number
of the decision that asked for it), and a target keeps the keys it has written: writing the same
item twice writes nothing the second time and reports it as ``already``.

An adapter declares what it can write (:data:`CAPABILITIES`): a target that cannot reverse is
refused an undo with a clear message instead of silently ignoring it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "CAPABILITIES", "MatchLine", "JournalLine", "WriteItem", "WriteResult", "Adapter",
    "LINE_STATE_RECONCILED", "LINE_STATE_OPEN",
]

#: status: the reconciliation status of each line; payments: a payment applied to the items
#: (an accounting platform); journals: the adjustment lines as journal entries; reversal: an
#: undo is written as reversing entries
CAPABILITIES = frozenset({"status", "payments", "journals", "reversal"})

#: the status a written match sets on its lines, and the one a reversal sets back
LINE_STATE_RECONCILED = "reconciled"
LINE_STATE_OPEN = "open"


@dataclass(frozen=True, slots=True)
class MatchLine:
    """One bank line or ledger item of a match, as the workspace holds it.

    ``amount_minor`` is signed as in the canonical tables (money in positive) in ``currency``'s
    minor units; the target may compare it with its own row (a row whose amount changed since
    recon read it was changed by someone else: a conflict, not overwritten).
    """

    side: Literal["bank", "ledger"]
    line_id: str
    date: date
    amount_minor: int
    currency: str
    counterparty: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One line of a balanced adjustment journal (the debits of a match's journal equal its
    credits, per currency)."""

    date: date
    account: str
    debit_minor: int
    credit_minor: int
    currency: str
    match_id: str
    memo: str


@dataclass(frozen=True, slots=True)
class WriteItem:
    """What one decision asks a target to write.

    Parameters
    ----------
    match_id
        The stable id of the match (the same whatever run proposed it).
    seq
        The sequence number of the decision asking for this write (the accept, or the unmatch of
        a written match): with ``match_id`` the item's idempotency key.
    action
        ``"write"``: set the lines reconciled, apply the payment, post the journal.
        ``"reverse"``: undo an earlier write of the same match with reversing entries.
    match_type
        ``one_to_one``, ``one_to_many``, ``many_to_one``, ``payout``, ``fx``, ``manual``, ...
    lines
        The match's bank lines and ledger items.
    journal
        The balanced adjustment lines (empty when the amounts agree); for a reversal, the
        mirror of the written journal.
    memo
        A short human text (the explanation, or the reviewer's reason for an undo).
    """

    match_id: str
    seq: int
    action: Literal["write", "reverse"]
    match_type: str
    lines: tuple[MatchLine, ...]
    journal: tuple[JournalLine, ...] = ()
    memo: str = ""

    @property
    def key(self) -> str:
        """The idempotency key: ``match_id:seq``."""
        return f"{self.match_id}:{self.seq}"

    @property
    def line_state(self) -> str:
        """The status this item sets on its lines."""
        return LINE_STATE_RECONCILED if self.action == "write" else LINE_STATE_OPEN


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a target did with one item.

    ``state``: ``written`` (done now), ``already`` (written before: nothing done), ``conflict``
    (a row was changed by someone else since recon read it: not overwritten), ``failed`` (the
    target refused it; ``reason`` says why, ``retryable`` whether the next write-back should try
    again).
    """

    key: str
    state: Literal["written", "already", "conflict", "failed"]
    reason: str = ""
    retryable: bool = False
    external_ids: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state in ("written", "already")


@runtime_checkable
class Adapter(Protocol):
    """A write-back target. ``write`` takes items with ``action="write"``, ``reverse`` items
    with ``action="reverse"``; both return one result per item, in order, and never raise for
    one item's failure (a failure that stops the whole batch, such as an unreachable server,
    raises :class:`models.errors.TransientAdapterError` or ``TerminalAdapterError``)."""

    name: str
    capabilities: frozenset[str]

    def write(self, items: Sequence[WriteItem]) -> list[WriteResult]: ...

    def reverse(self, items: Sequence[WriteItem]) -> list[WriteResult]: ...

    def close(self) -> None: ...
