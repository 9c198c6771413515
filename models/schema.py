"""Canonical tables every stage agrees on.

Feeds produce these frames; the engine consumes them and nothing else. Amounts are integer
minor units (``amount_minor``) in the line's own ``currency``; the sign is the cash movement in
the bank account (+ money in, - money out) on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

#: columns a canonical bank frame carries, in order
BANK_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Utf8,
    "date": pl.Date,
    "amount_minor": pl.Int64,
    "currency": pl.Utf8,
    "description": pl.Utf8,
    "counterparty": pl.Utf8,
    "reference": pl.Utf8,
    "account": pl.Utf8,
    "attributes": pl.Utf8,  # JSON object of the input's extra columns, text kept byte-exact
    "source_file": pl.Utf8,
    "source_line": pl.Int64,
}

#: columns a canonical ledger frame carries, in order
LEDGER_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Utf8,
    "date": pl.Date,
    "amount_minor": pl.Int64,
    "currency": pl.Utf8,
    "description": pl.Utf8,
    "counterparty": pl.Utf8,
    "reference": pl.Utf8,
    "account": pl.Utf8,
    "type": pl.Utf8,
    "due_date": pl.Date,
    "attributes": pl.Utf8,
    "source_file": pl.Utf8,
    "source_line": pl.Int64,
}

#: one row per input row that could not be loaded
REJECTS_SCHEMA: dict[str, pl.DataType] = {
    "source_file": pl.Utf8,
    "line": pl.Int64,
    "column": pl.Utf8,
    "reason": pl.Utf8,
    "raw": pl.Utf8,
}

#: one row per input row recognised as a line already loaded (same id)
DUPLICATES_SCHEMA: dict[str, pl.DataType] = {
    "side": pl.Utf8,
    "id": pl.Utf8,
    "source_file": pl.Utf8,
    "line": pl.Int64,
    "first_source_file": pl.Utf8,
    "first_line": pl.Int64,
    "same_content": pl.Boolean,
}

#: columns of ``matches.csv`` that later checks rely on (more may follow)
MATCH_COLUMNS: list[str] = [
    "match_id",
    "match_type",
    "status",
    "confidence",
    "bank_ids",
    "ledger_ids",
    "bank_amount",
    "ledger_amount",
    "difference",
    "currency",
    "explanation",
]

#: columns of a run's proposals kept in the workspace but not written to ``matches.csv``:
#: ``levels``, the level each comparison put a pair proposal in (``reference=full; ...``)
WORKSPACE_ONLY_COLUMNS: list[str] = ["levels"]

#: ground-truth file written by the benchmark generator and read by the evaluator
TRUTH_SCHEMA: dict[str, pl.DataType] = {
    "group_id": pl.Utf8,
    "match_type": pl.Utf8,
    "bank_ids": pl.Utf8,  # ';'-joined
    "ledger_ids": pl.Utf8,  # ';'-joined
}

#: statement balances stated by a feed (opening, closing, available, ...), for balance checks
BALANCE_SCHEMA: dict[str, pl.DataType] = {
    "account": pl.Utf8,
    "currency": pl.Utf8,
    "type": pl.Utf8,  # opening, closing, available, interim_opening, interim_closing, ...
    "date": pl.Date,
    "amount_minor": pl.Int64,
    "statement_id": pl.Utf8,
    "source_file": pl.Utf8,
}

#: the canonical payout table: one row per movement of a payment processor's balance (Stripe,
#: Shopify Payments, PayPal, ...), grouped by the payout that paid it out to the bank. Amounts
#: are integer minor units of ``currency`` and signed as movements of the processor balance:
#: a charge is positive, a refund, dispute or payout negative; ``fee_minor`` is positive when
#: the processor took a fee, and ``net_minor = gross_minor - fee_minor`` always holds.
PAYOUT_LINE_SCHEMA: dict[str, pl.DataType] = {
    "processor": pl.Utf8,  # stripe, shopify, paypal, venmo
    "payout_id": pl.Utf8,  # the payout that settles the line; null when not (yet) known
    "line_id": pl.Utf8,  # the processor's id of the balance movement (unique per processor)
    "category": pl.Utf8,  # charge, refund, dispute, dispute_reversal, fee, adjustment, payout, ...
    "currency": pl.Utf8,
    "gross_minor": pl.Int64,
    "fee_minor": pl.Int64,  # positive when the processor charged a fee
    "net_minor": pl.Int64,  # gross_minor - fee_minor
    "available_on": pl.Date,  # when the money becomes available (or the payout date)
    "created": pl.Date,  # when the movement happened, where the file says
    "source_id": pl.Utf8,  # the object that caused it (charge, refund, dispute id)
    "order_id": pl.Utf8,  # the shop's order id, where the file carries one
    "description": pl.Utf8,
    "attributes": pl.Utf8,  # JSON object of everything else, text kept byte-exact
    "source_file": pl.Utf8,
    "source_line": pl.Int64,
}

#: the categories feeds map processor-specific types onto
PAYOUT_CATEGORIES: tuple[str, ...] = (
    "charge",
    "refund",
    "dispute",
    "dispute_reversal",
    "fee",
    "adjustment",
    "reserve",
    "transfer",
    "topup",
    "payout",
    "payout_reversal",
    "other",
)

ID_SEPARATOR = ";"

MATCH_TYPES = ("one_to_one", "one_to_many", "many_to_one", "many_to_many", "payout")


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with ``schema``."""
    return pl.DataFrame(schema=schema)


@dataclass
class FileStats:
    """What happened to one input file: rows read = loaded + rejected."""

    source_file: str
    side: str
    rows_read: int
    loaded: int
    rejected: int
    duplicates: int = 0  # loaded rows that repeat an id seen before (matched at most once)
    conflicts: int = 0  # rejected rows whose id occurs again with different content

    def summary(self) -> str:
        dup = f", {self.duplicates} duplicate(s) of lines already loaded" if self.duplicates else ""
        clash = (
            f" ({self.conflicts} with an id that occurs again with different content)"
            if self.conflicts
            else ""
        )
        return (
            f"{self.source_file}: {self.rows_read} rows read, {self.loaded} loaded, "
            f"{self.rejected} rejected{clash}{dup}"
        )


@dataclass
class FeedResult:
    """What one feed module's ``read(path)`` returns for one file.

    ``frame`` holds canonical rows for the side the file serves (``BANK_SCHEMA``,
    ``LEDGER_SCHEMA`` or ``PAYOUT_LINE_SCHEMA``); ``rows_read`` = rows in ``frame`` +
    rows in ``rejects`` (before de-duplication, which the loader does across files).
    """

    format: str
    side: str
    frame: pl.DataFrame
    rejects: pl.DataFrame = field(default_factory=lambda: empty_frame(REJECTS_SCHEMA))
    balances: pl.DataFrame = field(default_factory=lambda: empty_frame(BALANCE_SCHEMA))
    accounts: list[str] = field(default_factory=list)
    rows_read: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    """A canonical frame plus everything that did not make it in cleanly."""

    frame: pl.DataFrame
    rejects: pl.DataFrame = field(default_factory=lambda: empty_frame(REJECTS_SCHEMA))
    duplicates: pl.DataFrame = field(default_factory=lambda: empty_frame(DUPLICATES_SCHEMA))
    stats: list[FileStats] = field(default_factory=list)
    #: the statement balances the files state (``BALANCE_SCHEMA``), which ingest keeps
    balances: pl.DataFrame = field(default_factory=lambda: empty_frame(BALANCE_SCHEMA))
