"""``recon ingest``, ``review``, ``accept``, ``reject``, ``match-manual`` and ``unmatch``: the
workspace lifecycle after (and around) ``recon match --workspace W``, each a thin call into
:mod:`engine.api`."""

from __future__ import annotations

import json
import sys
import unicodedata

from models.schema import ID_SEPARATOR

_STATES = ("proposed", "accepted", "rejected", "written", "reversed", "failed")
_TYPES = ("one_to_one", "one_to_many", "many_to_one", "many_to_many", "payout", "manual")


def _workspace_arg(parser) -> None:
    parser.add_argument("--workspace", required=True, metavar="FILE", help="the workspace file (DuckDB)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def _filter_args(parser, default_state: str | None) -> None:
    shown = f" (default: {default_state})" if default_state else ""
    parser.add_argument("--status", choices=("auto", "review", "manual"), help="the proposal's status")
    parser.add_argument("--state", nargs="+", action="extend", choices=_STATES, metavar="STATE",
                        help=f"current state(s): {', '.join(_STATES)}{shown}")
    parser.add_argument("--type", dest="match_type", choices=_TYPES, metavar="TYPE",
                        help=f"match type: {', '.join(_TYPES)}")
    parser.add_argument("--min-amount", metavar="X", help="bank side at least X (absolute amount, exact decimal)")
    parser.add_argument("--max-amount", metavar="X", help="bank side at most X (absolute amount, exact decimal)")
    parser.add_argument("--match", nargs="+", action="extend", default=[], metavar="ID", dest="match_ids",
                        help="only these match ids")


def _who_args(parser) -> None:
    parser.add_argument("--comment", metavar="TEXT", help="why (kept with the decision)")
    parser.add_argument("--by", metavar="NAME", help="who decides (default: the environment's user)")


def register(sub) -> dict:
    """Add the workspace lifecycle commands to ``sub``; returns their handlers."""
    g = sub.add_parser("ingest", help="add bank, ledger, processor and FX files to a workspace (each line once)")
    g.add_argument("--bank", nargs="+", action="extend", default=[], metavar="FILE", help="bank statement file(s)")
    g.add_argument("--ledger", nargs="+", action="extend", default=[], metavar="FILE", help="ledger file(s)")
    g.add_argument("--processor", nargs="+", action="extend", default=[], metavar="FILE",
                   help="processor payout report(s) (Stripe, Shopify Payments, PayPal)")
    g.add_argument("--fx", metavar="FILE", help="FX rates CSV: date, base, quote, rate")
    for side in ("bank", "ledger", "processor"):
        g.add_argument(f"--{side}-format", metavar="NAME",
                       help=f"force the format of the {side} files (default: detected from their content)")
    g.add_argument("--quiet", action="store_true", help="print nothing on success but conflicts")
    _workspace_arg(g)

    r = sub.add_parser("review", help="list a workspace's matches: a table, or JSON for scripts")
    _filter_args(r, default_state="proposed")
    r.add_argument("--json", action="store_true", help="print a JSON array (amounts as exact decimal text)")
    r.add_argument("--limit", type=int, metavar="N", help="at most N matches")
    _workspace_arg(r)

    for name, verb in (("accept", "accept"), ("reject", "reject")):
        a = sub.add_parser(name, help=f"{verb} proposed matches: by id, by filters, or --all-auto (all or nothing)")
        a.add_argument("ids", nargs="*", metavar="MATCH_ID", help=f"the matches to {verb}")
        _filter_args(a, default_state=None)
        a.add_argument("--all-auto", action="store_true", help=f"{verb} every proposed auto proposal")
        _who_args(a)
        _workspace_arg(a)

    m = sub.add_parser("match-manual", help="record your own match of bank lines and ledger items (accepted)")
    m.add_argument("--bank", nargs="+", action="extend", default=[], required=True, metavar="ID", help="bank line id(s)")
    m.add_argument("--ledger", nargs="+", action="extend", default=[], metavar="ID", help="ledger item id(s)")
    m.add_argument("--adjust", metavar="CAUSE",
                   help="book the difference to this adjustment cause (bank_charge, short_payment, overpayment, "
                        "fx_difference, processor_fee, ...: [adjustments.accounts] of the rule set)")
    m.add_argument("--rules", metavar="FILE", help="rule-set file whose adjustment accounts apply (default: built-in)")
    _who_args(m)
    _workspace_arg(m)

    u = sub.add_parser("unmatch", help="undo an accepted or written match (its lines open again; nothing deleted)")
    u.add_argument("match_id", metavar="MATCH_ID")
    u.add_argument("--reason", required=True, metavar="TEXT", help="why the match is undone")
    u.add_argument("--by", metavar="NAME", help="who undoes it (default: the environment's user)")
    _workspace_arg(u)
    return {
        "ingest": _cmd_ingest,
        "review": _cmd_review,
        "accept": _cmd_accept,
        "reject": _cmd_reject,
        "match-manual": _cmd_match_manual,
        "unmatch": _cmd_unmatch,
    }


def _cmd_ingest(args) -> int:
    from engine import api

    report = api.ingest(
        args.workspace, bank=args.bank, ledger=args.ledger, processor=args.processor, fx=args.fx,
        bank_format=args.bank_format, ledger_format=args.ledger_format, processor_format=args.processor_format,
    )
    if not args.quiet:
        print(report.summary())
    elif report.conflicts.height:
        for line in report.conflict_lines():
            print(f"recon ingest: {line}", file=sys.stderr)
    return 0


# -- the review table ---------------------------------------------------------------------------

def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and full-width characters take two,
    combining marks none."""
    total = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns (ending in ``…`` when cut)."""
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(width - display_width(text), 0)
    return gap + text if right else text + gap


def _ids(text: str | None) -> str:
    ids = [i for i in (text or "").split(ID_SEPARATOR) if i]
    if len(ids) <= 2:
        return ID_SEPARATOR.join(ids)
    return f"{ids[0]};{ids[1]} +{len(ids) - 2}"


_COLUMNS = (  # header, width limit, right-aligned
    ("MATCH", None, False), ("TYPE", None, False), ("STATUS", None, False), ("STATE", None, False),
    ("CONF", None, True), ("AMOUNT", None, True), ("DIFF", None, True), ("BANK", 28, False),
    ("LEDGER", 28, False), ("PAYER", 30, False),
)


def format_table(frame) -> str:
    """The review table: one line a match, columns aligned by display width (Chinese names take
    two columns a character), amounts with their currency."""
    rows = []
    for r in frame.iter_rows(named=True):
        confidence = "" if r["confidence"] is None else f"{r['confidence']:.2f}"
        difference = r["difference"] or ""
        rows.append((
            r["match_id"], r["match_type"] or "", r["status"] or "", r["state"], confidence,
            f"{r['currency']} {r['bank_amount']}", difference if difference.strip("-0.") else "",
            _ids(r["bank_ids"]), _ids(r["ledger_ids"]), r["payers"] or "",
        ))
    widths = []
    for i, (header, limit, _right) in enumerate(_COLUMNS):
        cells = [display_width(header)] + [display_width(row[i]) for row in rows]
        widths.append(min(max(cells), limit) if limit else max(cells))
    lines = []
    for row in [tuple(h for h, _, _ in _COLUMNS), *rows]:
        cells = [_pad(_fit(cell, widths[i]), widths[i], right=_COLUMNS[i][2]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _json_rows(frame) -> list[dict]:
    out = []
    for r in frame.iter_rows(named=True):
        out.append({
            "match_id": r["match_id"], "match_type": r["match_type"], "status": r["status"], "state": r["state"],
            "confidence": r["confidence"], "currency": r["currency"], "bank_amount": r["bank_amount"],
            "ledger_amount": r["ledger_amount"], "difference": r["difference"],
            "bank_ids": [i for i in (r["bank_ids"] or "").split(ID_SEPARATOR) if i],
            "ledger_ids": [i for i in (r["ledger_ids"] or "").split(ID_SEPARATOR) if i],
            "payers": r["payers"], "explanation": r["explanation"], "adjustments": r["adjustments"] or "",
            "open_amount": r["open_amount"] or "", "run_id": r["run_id"], "decision_seq": r["decision_seq"],
            "rules_version": r["rules_version"], "scorer": r["scorer"],
        })
    return out


def _cmd_review(args) -> int:
    from engine import api

    frame = api.review(
        args.workspace, status=args.status, state=args.state or "proposed", match_type=args.match_type,
        min_amount=args.min_amount, max_amount=args.max_amount, match_ids=args.match_ids, limit=args.limit,
    )
    if args.json:
        print(json.dumps(_json_rows(frame), ensure_ascii=False, indent=2))
        return 0
    if frame.height == 0:
        print("no matches")
        return 0
    print(format_table(frame))
    more = " (--limit reached: more may match)" if args.limit is not None and frame.height == args.limit else ""
    print(f"{frame.height} match{'es' if frame.height != 1 else ''}{more}")
    return 0


# -- decisions ----------------------------------------------------------------------------------

def _decide(args, action: str) -> int:
    from engine import api
    from engine.workspace.review import past_tense

    call = api.accept if action == "accept" else api.reject
    report = call(
        args.workspace, list(args.ids) + list(args.match_ids), status=args.status, state=args.state,
        match_type=args.match_type, min_amount=args.min_amount, max_amount=args.max_amount,
        all_auto=args.all_auto, comment=args.comment, by=args.by,
    )
    noun = "match" if report.count == 1 else "matches"
    print(f"{past_tense(action)} {report.count} {noun} (by {report.by})")
    return 0


def _cmd_accept(args) -> int:
    return _decide(args, "accept")


def _cmd_reject(args) -> int:
    return _decide(args, "reject")


def _cmd_match_manual(args) -> int:
    from engine import api

    report = api.match_manual(args.workspace, bank=args.bank, ledger=args.ledger, adjust=args.adjust,
                              comment=args.comment, by=args.by, rules=args.rules)
    ledger = ", ".join(args.ledger) if args.ledger else "none"
    print(f"matched by hand: {report.match_ids[0]} (bank {', '.join(args.bank)}; ledger {ledger}) "
          f"accepted by {report.by}")
    return 0


def _cmd_unmatch(args) -> int:
    from engine import api

    report = api.unmatch(args.workspace, args.match_id, args.reason, by=args.by)
    note = f"; {'; '.join(report.notes)}" if report.notes else ""
    print(f"unmatched {report.match_ids[0]} (by {report.by}); its lines are open again{note}")
    return 0
