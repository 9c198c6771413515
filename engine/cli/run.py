"""``recon match``, ``train``, ``evaluate``, ``inspect``, ``profile`` and ``rules``: the one-shot
commands, each a thin call into :mod:`engine.api` or :mod:`feeds`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def register(sub) -> dict:
    """Add the one-shot commands to ``sub`` (the ``recon`` sub-parsers); returns their handlers."""
    m = sub.add_parser(
        "match", help="match bank lines to ledger items and write the proposals",
        description="One-shot: --bank FILE... --ledger FILE... --out DIR [--workspace FILE] matches the files "
                    "and writes the run's files (and records it in the workspace, default DIR/recon.duckdb). "
                    "Incremental: --workspace FILE alone matches the workspace's open lines (recon ingest "
                    "adds them), leaving accepted and written matches alone; with --out DIR it also writes "
                    "the run's files there.")
    m.add_argument("--bank", nargs="+", action="extend", default=[], metavar="FILE",
                   help="bank statement file(s) (canonical CSV)")
    m.add_argument("--ledger", nargs="+", action="extend", default=[], metavar="FILE",
                   help="ledger file(s): open invoices, bills, cash-book lines (canonical CSV)")
    m.add_argument("--fx", metavar="FILE", help="FX rates CSV: date, base, quote, rate (units of quote per base)")
    m.add_argument("--processor", nargs="+", action="extend", metavar="FILE", default=[],
                   help="processor payout report(s), e.g. Stripe itemized payout reconciliation CSV")
    m.add_argument("--rules", metavar="FILE", help="rule-set TOML file (default: built-in rules)")
    m.add_argument("--aliases", metavar="FILE",
                   help="alias table CSV (name,alias): names in any script that are the same party")
    for side in ("bank", "ledger", "processor"):
        m.add_argument(f"--{side}-format", metavar="NAME",
                       help=f"force the format of the {side} files (default: detected from their content)")
    m.add_argument("--out", metavar="DIR",
                   help="output folder (required with --bank/--ledger; optional with --workspace alone)")
    m.add_argument("--workspace", metavar="FILE",
                   help="DuckDB workspace file recording lines and runs (default: DIR/recon.duckdb); "
                        "alone, without --bank/--ledger: an incremental run over its open lines")
    m.add_argument("--truth", metavar="FILE", help="ground-truth CSV: also print precision/recall")
    m.add_argument("--quiet", action="store_true", help="print nothing on success")
    m.add_argument("--memory-limit", metavar="SIZE",
                   help="memory budget of the run, e.g. 6GB (default: 60%% of this machine's memory); "
                        "beyond it candidates are thinned with a warning and the workspace spills to disk")
    m.add_argument("--progress", choices=("auto", "bars", "log", "none"), default="auto",
                   help="stage progress on stderr: a bar per stage (bars), a log line per stage (log); "
                        "auto: bars on a terminal, log lines otherwise")
    m.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    t = sub.add_parser("train", help="train a learned scorer on a month with ground truth (or on a workspace's "
                                     "decisions) and save it (JSON)",
                       description="--bank --ledger --truth --out: from a month with ground truth. --workspace W "
                                   "[--save]: from the workspace's decisions (opt-in: `recon training --enable`; "
                                   "engine.cli.whatif).")
    t.add_argument("--workspace", metavar="FILE",
                   help="learn from this workspace's lines and reviewers' decisions instead of files and a truth file")
    t.add_argument("--save", action="store_true",
                   help="with --workspace: save the model beside it as the workspace's scorer")
    t.add_argument("--json", action="store_true", help="with --workspace: print one JSON object")
    t.add_argument("--bank", nargs="+", action="extend", metavar="FILE",
                   help="bank statement file(s), as for match")
    t.add_argument("--ledger", nargs="+", action="extend", metavar="FILE",
                   help="ledger file(s), as for match")
    t.add_argument("--fx", metavar="FILE", help="FX rates CSV, as for match (read and checked)")
    t.add_argument("--processor", nargs="+", action="extend", metavar="FILE", default=[],
                   help="processor payout report(s), as for match (read and checked)")
    t.add_argument("--truth", metavar="FILE",
                   help="truth CSV (group_id, match_type, bank_ids, ledger_ids) labelling the candidate pairs")
    t.add_argument("--out", metavar="FILE",
                   help='model file to write (JSON); use it with [scoring] scorer = "learned", model = "FILE"')
    t.add_argument("--rules", metavar="FILE", help="rule-set TOML file whose levels the model learns (default: built-in)")
    t.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the held-out split (default 0)")
    t.add_argument("--compound-pairs", choices=["leave-out", "negative"], default="negative",
                   help="pairs touching a compound truth group: trained on as non-matches (default) or left "
                        "out of training")
    for side in ("bank", "ledger", "processor"):
        t.add_argument(f"--{side}-format", metavar="NAME",
                       help=f"force the format of the {side} files (default: detected from their content)")
    t.add_argument("--quiet", action="store_true", help="print nothing on success")
    t.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    e = sub.add_parser("evaluate", help="score a run's matches.csv against a ground-truth CSV")
    e.add_argument("--out", required=True, metavar="DIR", help="output folder of a run")
    e.add_argument("--truth", required=True, metavar="FILE", help="truth CSV (group_id, match_type, bank_ids, ledger_ids)")
    e.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    i = sub.add_parser("inspect", help="read one file and show what recon makes of it (format, counts, balances, rejects)")
    i.add_argument("file", metavar="FILE")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.add_argument("--format", metavar="NAME", help="force the format (default: detected from the content)")
    i.add_argument("--side", choices=["bank", "ledger", "processor"], default=None,
                   help="what the file is for (default: recognised from its content)")
    i.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    p = sub.add_parser("profile", help="draft a bank CSV profile for an unknown CSV export")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--name", help="profile name (default: the file name)")
    p.add_argument("--out", metavar="FILE", help="write the profile here instead of printing it")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    r = sub.add_parser("rules", help="print the built-in rule set (save it, edit it, pass it with --rules)")
    r.add_argument("--check", metavar="FILE", help="validate a rule-set file and list every problem")
    r.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return {
        "match": _cmd_match,
        "train": _cmd_train,
        "evaluate": _cmd_evaluate,
        "inspect": _cmd_inspect,
        "profile": _cmd_profile,
        "rules": _cmd_rules,
    }




def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "0.0%"


def _summary(result, written: dict[str, Path]) -> str:
    c = result.counts()
    lines = [f"recon match: run {result.run_id} with rule set '{result.rules.name}' "
             f"({result.outcome.scorer_kind} scorer) in {result.seconds:.1f} s"]
    for s in result.stats:
        lines.append(f"  read {s.side:<9} {s.summary()}")
    if result.mode == "incremental":
        x = result.extra_inputs
        lines.append(f"  incremental: {x['open_bank_lines']} open bank lines, {x['open_ledger_items']} open ledger "
                     f"items ({x['taken_bank_lines']} bank lines and {x['taken_ledger_items']} ledger items in "
                     f"accepted or written matches left alone; {x['not_proposed_again']} rejected or undone "
                     f"groups not proposed again; {x['payout_lines']} payout lines, {x['fx_rates']} FX rates)")
    bank_total = c["bank_lines"]
    lines += [
        f"  matched automatically: {c['bank_auto']} of {bank_total} bank lines ({_pct(c['bank_auto'], bank_total)}) in {c['auto']} proposals",
        f"  needs review:          {c['bank_review']} bank lines in {c['review']} proposals",
        f"  left unmatched:        {c['unmatched_bank']} bank lines, {c['unmatched_ledger']} ledger items",
        f"  rejected rows:         {c['rejects']}    duplicate lines: {c['duplicates']}",
        *(f"  warning: {warning}" for warning in result.outcome.warnings),
        "  outputs:",
    ]
    for key, path in written.items():
        lines.append(f"    {key:<17} {path}")
    return "\n".join(lines)


class _StderrHandler(logging.StreamHandler):
    """Log lines to whatever ``sys.stderr`` is when a line is written (a command run in-process
    by a notebook or a test may see stderr replaced between runs)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _progress(args):
    """The run's progress reporting: bars on a terminal, log lines on stderr otherwise."""
    from engine.progress import Progress

    mode = "none" if args.quiet else args.progress
    if mode == "auto":
        mode = "bars" if sys.stderr.isatty() else "log"
    logger = logging.getLogger("recon")
    ours = [h for h in logger.handlers if isinstance(h, _StderrHandler)]
    if mode == "log":
        if not ours:
            handler = _StderrHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s recon: %(message)s", "%H:%M:%S"))
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    else:  # a command run in-process after one that logged (a notebook, a test) stays quiet
        for handler in ours:
            logger.removeHandler(handler)
    return Progress(bars=mode == "bars")


def _incremental_match(args) -> int:
    from engine import api
    from models.errors import InputError

    given = [f"--{name.replace('_', '-')}" for name in ("fx", "processor", "bank_format", "ledger_format",
                                                        "processor_format") if getattr(args, name)]
    if given:
        raise InputError(f"{', '.join(given)}: an incremental run (--workspace without --bank/--ledger) uses what "
                         f"the workspace holds; add files with `recon ingest --workspace {args.workspace} ...`")
    progress = _progress(args)
    result = api.match_workspace(args.workspace, rules=args.rules, progress=progress,
                                 memory_limit=args.memory_limit, aliases=args.aliases, out=args.out)
    if not args.quiet:
        print(_summary(result, result.written))
        if args.truth:
            print(api.evaluate(result, args.truth))
    return 0


def _cmd_match(args) -> int:
    from engine import api
    from engine.outputs import check_out_dir
    from models.errors import InputError

    if not args.bank and not args.ledger:
        if args.workspace:
            return _incremental_match(args)
        raise InputError("give --bank and --ledger files (with --out DIR), or --workspace FILE alone for an "
                         "incremental run over the lines `recon ingest` added")
    if not args.bank:
        raise InputError("no bank file given (use --bank FILE)")
    if not args.ledger:
        raise InputError("no ledger file given (use --ledger FILE)")
    if not args.out:
        raise InputError("no output folder given (use --out DIR)")
    check_out_dir(args.out)  # before the run, not after it
    progress = _progress(args)
    result = api.match(
        bank=args.bank, ledger=args.ledger, rules=args.rules, fx=args.fx, processor=args.processor,
        bank_format=args.bank_format, ledger_format=args.ledger_format,
        processor_format=args.processor_format, aliases=args.aliases, progress=progress,
        memory_limit=args.memory_limit,
    )
    written = result.write(args.out, workspace=args.workspace, progress=progress)
    if not args.quiet:
        print(_summary(result, written))
        if args.truth:
            print(api.evaluate(result, args.truth))
    return 0


def _cmd_train(args) -> int:
    from engine import api
    from models.errors import InputError

    if args.workspace:
        from engine.cli.whatif import train_from_workspace

        return train_from_workspace(args)
    alone = [f"--{name}" for name in ("save", "json") if getattr(args, name)]
    if alone:
        raise InputError(f"{', '.join(alone)}: only with --workspace FILE (training from its decisions)")
    missing = [f"--{name}" for name in ("bank", "ledger", "truth", "out") if not getattr(args, name)]
    if missing:
        raise InputError(f"recon train needs {', '.join(missing)} (or --workspace FILE to learn from its decisions)")

    report = api.train(
        bank=args.bank, ledger=args.ledger, truth=args.truth, out=args.out, rules=args.rules, fx=args.fx,
        processor=args.processor, seed=args.seed, bank_format=args.bank_format,
        ledger_format=args.ledger_format, processor_format=args.processor_format,
        compound_pairs=args.compound_pairs.replace("-", "_"),
    )
    if not args.quiet:
        print(report.summary())
    return 0


def _cmd_evaluate(args) -> int:
    from engine.evaluate import evaluate_files

    print(evaluate_files(args.out, args.truth))
    return 0


def _cmd_inspect(args) -> int:
    import json

    import feeds

    summary = feeds.inspect_file(args.file, format=args.format, side=args.side)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    else:
        print(feeds.format_inspection(summary))
    return 0


def _cmd_profile(args) -> int:
    import feeds

    toml_text, report = feeds.draft_profile(args.file, name=args.name)
    if args.out:
        Path(args.out).write_text(toml_text, encoding="utf-8")
        print(f"wrote {args.out}; check it, then use it with --bank-format {args.out}")
    else:
        sys.stdout.write(toml_text)
    print(report, file=sys.stderr)
    return 0


def _cmd_rules(args) -> int:
    from importlib import resources

    from rules.model import load_rules

    if args.check:
        rules = load_rules(args.check)
        print(f"{args.check}: valid rule set '{rules.name}'")
        return 0
    sys.stdout.write(resources.files("rules").joinpath("default.toml").read_text(encoding="utf-8"))
    return 0
