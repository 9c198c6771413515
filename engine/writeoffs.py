"""Write-offs need proof (engine, after assignment): an automatic match may book a difference only
when nothing else explains it.

A match whose amounts differ balances with an adjustment line: a short payment, a discount, a
bank charge, an overpayment. Booked automatically, that line changes the books. It is only right
when the difference really is a write-off, not the part of a payment still to come or an item
paid together with another: an invoice of 10,000.00 paid 9,800.00 now and 200.00 next week is an
instalment, not a 2% discount. So an ``auto`` proposal goes to ``review``, naming the line, when

- it books an adjustment, and another bank line that no automatic match took, of the same
  currency, with exactly the difference (``bank total + line = ledger total``), dated within
  ``compound.instalment_window_days``, from a payer who is not plainly someone else (same or
  similar name, no name, or quoting the item's number), could make it whole; or a ledger item
  no automatic match took could (``ledger total + item = bank total``: paid together);
- or it leaves part of an item open (instalments so far) and such a bank line has exactly what
  stays open, or an open line of the item's payer, smaller than what stays open and paying no
  other item to the cent, may be part of it.

Everything is a join on (currency, amount) or (currency, payer), each key offering at most
MAX_LINES_PER_KEY open lines: a month where one amount or one payer is everywhere stays bounded.
"""

from __future__ import annotations

import polars as pl

from engine.scoring.names import name_similarity
from models.money import format_minor_expr
from rules.model import RuleSet

__all__ = ["demand_proof"]

#: a line whose payer name is at most this similar to the item's (same script) is someone else
PLAINLY_OTHER_SIMILARITY = 50.0


def _compatible(pairs: pl.DataFrame) -> pl.Series:
    """Whether each (``name_line``, ``name_item``) may be the same payer: a name missing on
    either side, or names not plainly different."""
    line = pairs["name_line"].fill_null("")
    item = pairs["name_item"].fill_null("")
    unknown = (line == "") | (item == "") | (line == item)
    check = (~unknown).arg_true()
    ok = unknown.to_numpy().copy()
    if check.len():
        similarity = name_similarity(line.gather(check), item.gather(check))
        ok[check.to_numpy()] = similarity > PLAINLY_OTHER_SIMILARITY
    return pl.Series(ok)


def _quotes_the_item(hits: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame) -> pl.Series:
    """Whether each hit's open bank line (``other_id``) quotes the number of the proposal's
    ledger item (``ledger_id``): its reference keys hold the item's serial."""
    quoted = (
        hits.select("other_id", "ledger_id")
        .join(bank.select(other_id="id", keys="ref_keys"), on="other_id", how="left", maintain_order="left")
        .join(ledger.select(ledger_id="id", serial="ref_serial"), on="ledger_id", how="left", maintain_order="left")
        .select(pl.col("keys").list.contains(pl.col("serial")).fill_null(False))
        .to_series()
    )
    return quoted


#: open lines one key (an amount, a payer) offers every proposal that asks for it: a month where
#: one amount or one payer is everywhere (thousands of 100.00 lines) must not multiply the
#: proposals by the lines; the first few are enough to show the doubt
MAX_LINES_PER_KEY = 20


def _at_most(lines: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """At most :data:`MAX_LINES_PER_KEY` lines of each ``key``, in the frame's order."""
    return lines.filter(pl.int_range(pl.len()).over(key) < MAX_LINES_PER_KEY)


def _part_of_the_rest(totals: pl.DataFrame, bank: pl.DataFrame, ledger: pl.DataFrame, taken: pl.DataFrame,
                      explained: pl.DataFrame, window: int) -> pl.DataFrame:
    """For the proposals that leave part of an item open: open bank lines of the item's payer
    (the same name key) moving money the same way, smaller than what stays open, within
    ``window`` days: another instalment of it may be among them (the group is then incomplete,
    not wrong, but no longer to be booked unseen). A line that another proposal pays to the
    cent (``explained``: it equals another item of the payer exactly) is that item's payment,
    not a part of this rest. A join on (currency, payer name)."""
    partial = totals.filter(pl.col("open_minor").is_not_null() & (pl.col("open_minor") != 0))
    empty = pl.DataFrame(schema={"match_id": pl.Utf8, "side": pl.Utf8, "other_id": pl.Utf8, "currency": pl.Utf8,
                                 "amount_minor": pl.Int64, "whole": pl.Boolean})
    if partial.height == 0:
        return empty
    open_lines = bank.select("id", "day", "currency", "amount_minor", name="name_key").join(
        taken.filter(pl.col("side") == "bank").select("id"), on="id", how="anti"
    ).join(explained, on="id", how="anti").filter(pl.col("name").fill_null("") != "")
    # the payer's smallest open credits are the ones that could be part of the rest
    open_lines = _at_most(open_lines.sort(pl.col("amount_minor").abs()), ["currency", "name"])
    return (
        partial.join(ledger.select(ledger_id="id", name="name_key"), on="ledger_id")
        .join(bank.select(bank_id="id", bank_day="day"), on="bank_id")
        .join(open_lines.rename({"id": "other_id", "day": "other_day", "amount_minor": "other_amount"}),
              on=["currency", "name"])
        .filter(
            (pl.col("other_amount").sign() == pl.col("open_minor").sign())
            & (pl.col("other_amount").abs() < pl.col("open_minor").abs())
            & ((pl.col("other_day") - pl.col("bank_day")).abs() <= window)
        )
        .select("match_id", side=pl.lit("bank"), other_id="other_id", currency="currency",
                amount_minor="other_amount", whole=pl.lit(False))
    )


def demand_proof(proposals: pl.DataFrame, match_lines: pl.DataFrame, open_minor: pl.DataFrame,
                 bank: pl.DataFrame, ledger: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """``proposals`` with the ``auto`` ones whose adjustment or open remainder another open line
    could explain sent to ``review`` (see the module docstring), the line named in the
    explanation.

    Parameters
    ----------
    proposals
        ``match_id``, ``status``, ``explanation``, ``bank_amount``, ``ledger_amount``,
        ``open_amount`` (and any other columns, kept).
    match_lines
        ``match_id``, ``side``, ``id``, ``amount_minor``, ``currency`` of every proposal.
    open_minor
        ``match_id``, ``open_minor``: what stays open on a partly paid item (in its currency).
    bank, ledger
        The prepared frames (``id``, ``day``, ``currency``, ``amount_minor``, ``name_key``,
        ``ref_keys`` / ``ref_serial``).
    """
    # only an auto proposal that books a difference or leaves something open needs proof
    books = (pl.col("bank_amount") != pl.col("ledger_amount")) | (pl.col("open_amount").fill_null("") != "")
    auto_ids = proposals.filter((pl.col("status") == "auto") & books).select("match_id")
    if auto_ids.height == 0:
        return proposals
    lines = match_lines.join(auto_ids, on="match_id")
    totals = lines.group_by("match_id").agg(
        bank_total=pl.col("amount_minor").filter(pl.col("side") == "bank").sum(),
        ledger_total=pl.col("amount_minor").filter(pl.col("side") == "ledger").sum(),
        currency=pl.col("currency").filter(pl.col("side") == "bank").first(),
        ledger_currency=pl.col("currency").filter(pl.col("side") == "ledger").first(),
        bank_id=pl.col("id").filter(pl.col("side") == "bank").first(),
        ledger_id=pl.col("id").filter(pl.col("side") == "ledger").first(),
    ).join(open_minor, on="match_id", how="left")
    # the difference in the bank currency (an FX group's ledger lines are in their own)
    same_currency = pl.col("currency") == pl.col("ledger_currency")
    wanted = pl.concat([
        # a bank line that makes the bank side whole
        totals.filter(same_currency & (pl.col("bank_total") != pl.col("ledger_total"))).select(
            "match_id", "currency", "bank_id", "ledger_id", side=pl.lit("bank"),
            amount_minor=pl.col("ledger_total") - pl.col("bank_total"),
        ),
        # a ledger item paid together with these
        totals.filter(same_currency & (pl.col("bank_total") != pl.col("ledger_total"))).select(
            "match_id", "currency", "bank_id", "ledger_id", side=pl.lit("ledger"),
            amount_minor=pl.col("bank_total") - pl.col("ledger_total"),
        ),
        # the rest of an item paid in part
        totals.filter(same_currency & pl.col("open_minor").is_not_null() & (pl.col("open_minor") != 0)).select(
            "match_id", "currency", "bank_id", "ledger_id", side=pl.lit("bank"), amount_minor=pl.col("open_minor"),
        ),
    ])
    if wanted.height == 0:
        return proposals
    # the lines every auto proposal took (not only those that book a difference)
    taken = match_lines.join(proposals.filter(pl.col("status") == "auto").select("match_id"), on="match_id",
                             how="semi").select("side", "id")
    window = rules.compound.instalment_window_days
    found = []
    for side, frame in (("bank", bank), ("ledger", ledger)):
        open_lines = _at_most(frame.select("id", "day", "currency", "amount_minor", "name_key").join(
            taken.filter(pl.col("side") == side).select("id"), on="id", how="anti"
        ).filter(pl.col("amount_minor").is_in(wanted["amount_minor"].unique().implode())), ["currency", "amount_minor"])
        hits = (
            wanted.filter(pl.col("side") == side)
            .join(open_lines.rename({"id": "other_id", "day": "other_day", "name_key": "name_line"}),
                  on=["currency", "amount_minor"])
            .join(bank.select(bank_id="id", bank_day="day"), on="bank_id")
            .join(ledger.select(ledger_id="id", name_item="name_key"), on="ledger_id")
            .filter((pl.col("other_day") - pl.col("bank_day")).abs() <= window)
        )
        if hits.height:
            compatible = _compatible(hits)
            if side == "bank" and "ref_keys" in bank.columns and "ref_serial" in ledger.columns:
                # a line quoting the item's number is the item's, whoever the bank names
                compatible = compatible | _quotes_the_item(hits, bank, ledger)
            found.append(hits.filter(compatible).with_columns(whole=pl.lit(True)))
    # the bank lines of the proposals that balance to the cent with nothing left open
    exact = (pl.col("bank_amount") == pl.col("ledger_amount")) & (pl.col("open_amount").fill_null("") == "")
    explained = match_lines.filter(pl.col("side") == "bank").join(
        proposals.filter(exact).select("match_id"), on="match_id", how="semi"
    ).select("id").unique()
    found.append(_part_of_the_rest(totals.filter(same_currency), bank, ledger, taken, explained, window))
    if not any(f.height for f in found):
        return proposals
    columns = ["match_id", "side", "other_id", "currency", "amount_minor", "whole"]
    hits = (
        pl.concat([f.select(columns) for f in found if f.height])
        .sort("match_id", "whole", "side", "other_id", descending=[False, True, False, False])
        .group_by("match_id", maintain_order=True).first()
    )
    noun = pl.when(pl.col("side") == "bank").then(pl.lit("bank line ")).otherwise(pl.lit("ledger item "))
    reason = hits.select(
        "match_id",
        _proof=pl.lit("review: ") + noun + pl.col("other_id") + pl.lit(" (") + pl.col("currency") + pl.lit(" ")
        + format_minor_expr(pl.col("amount_minor"), pl.col("currency"))
        + pl.when(pl.col("whole"))
        .then(pl.lit(") is still open and could make this match whole: the difference may not be a write-off"))
        .otherwise(pl.lit(") of the same payer is still open and may pay part of what stays open")),
    )
    out = proposals.join(reason, on="match_id", how="left", maintain_order="left")
    flagged = pl.col("_proof").is_not_null()
    return out.with_columns(
        status=pl.when(flagged).then(pl.lit("review")).otherwise(pl.col("status")),
        explanation=pl.when(flagged).then(pl.col("explanation") + pl.lit("; ") + pl.col("_proof"))
        .otherwise(pl.col("explanation")),
    ).drop("_proof")

