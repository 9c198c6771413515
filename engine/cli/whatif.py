"""``recon what-if`` and ``recon training``: the analyst's loop on a workspace's decided history;
thin calls into :mod:`engine.workspace.whatif` and :mod:`engine.workspace.training`.

``recon train --workspace W`` (training the learned scorer from the workspace's decisions instead
of a truth file) is the ``train`` command of :mod:`engine.cli.run`, which hands a ``--workspace``
run to :func:`train_from_workspace` here.
"""

from __future__ import annotations

import json

__all__ = ["register", "train_from_workspace"]


def register(sub) -> dict:
    """Add ``what-if`` and ``training`` to ``sub`` (the ``recon`` sub-parsers); returns their handlers."""
    w = sub.add_parser(
        "what-if", help="replay a rule set against the workspace's decisions (nothing is written)",
        description="Match every line of the workspace in memory with the rule set that proposed its decided "
                    "matches (before) and with --rules (after), and compare both with the decisions: accepted "
                    "matches lost, changed or moved between auto and review, rejected ones coming back, "
                    "precision and recall (accepted = positive; rejected, undone or conflicting with an accepted "
                    "match = negative; proposals no decision speaks to are not counted). Nothing is written.")
    w.add_argument("--workspace", required=True, metavar="FILE", help="the workspace (DuckDB file)")
    w.add_argument("--rules", required=True, metavar="FILE",
                   help="the new rule set (a rule file needs only the settings it changes)")
    w.add_argument("--before", metavar="FILE",
                   help="the rule set to compare with (default: the one the runs that proposed the decided "
                        "matches recorded)")
    w.add_argument("--limit", type=int, metavar="N",
                   help="changed matches listed (default: 20 on the terminal, all with --json)")
    w.add_argument("--json", action="store_true", help="print one JSON object")
    w.add_argument("--memory-limit", metavar="SIZE", help="memory budget of each replay, e.g. 6GB")
    w.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    t = sub.add_parser(
        "training", help="allow or forbid training on the workspace's decisions; show or reset its scorer",
        description="Training a learned scorer on a workspace's decisions is opt-in. Some platforms' API terms "
                    "forbid training models on data pulled through their API (Xero's developer terms do): do not "
                    "enable it for a workspace fed from such an API. Without an option: show the settings.")
    action = t.add_mutually_exclusive_group()
    action.add_argument("--enable", action="store_true",
                        help="allow `recon train --workspace` on this workspace (needs --source)")
    action.add_argument("--disable", action="store_true",
                        help="forbid it again; a learned scorer trained here is no longer used")
    action.add_argument("--use-rules", action="store_true",
                        help="match with the rule set's scorer again (the model file is kept)")
    t.add_argument("--workspace", required=True, metavar="FILE", help="the workspace (DuckDB file)")
    t.add_argument("--source", metavar="TEXT",
                   help="with --enable: where the workspace's data comes from (kept with the setting)")
    t.add_argument("--by", metavar="NAME", help="who (default: the environment's user)")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return {"what-if": _cmd_what_if, "training": _cmd_training}


def _cmd_what_if(args) -> int:
    from engine.memory import parse_size
    from engine.workspace.whatif import what_if
    from models.errors import InputError

    if args.limit is not None and args.limit < 0:
        raise InputError(f"--limit {args.limit}: give a number of rows, 0 or more")
    report = what_if(args.workspace, args.rules, before=args.before,
                     memory_limit=parse_size(args.memory_limit) if args.memory_limit else None)
    if args.json:
        print(json.dumps(report.to_dict(limit=args.limit), ensure_ascii=False, indent=2, default=str))
    else:
        print(report.summary(limit=20 if args.limit is None else args.limit))
    return 0


def _cmd_training(args) -> int:
    from engine.workspace import training
    from engine.workspace.store import Workspace
    from models.errors import InputError

    if args.source and not args.enable:
        raise InputError("--source goes with --enable (where the data comes from when training is allowed)")
    with Workspace(args.workspace, create=False) as ws:
        if args.enable:
            setting = training.enable_training(ws, args.source or "", by=args.by)
        elif args.disable:
            setting = training.disable_training(ws, by=args.by)
        elif args.use_rules:
            setting = training.use_rules_scorer(ws, by=args.by)
        else:
            setting = training.training_setting(ws)
    if args.json:
        print(json.dumps(setting.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(setting.summary())
    return 0


def train_from_workspace(args) -> int:
    """``recon train --workspace W [--rules F] [--seed N] [--save] [--json]``: the learned scorer
    trained on the workspace's decisions (:func:`engine.workspace.training.train_workspace`)."""
    from engine.workspace.training import train_workspace
    from models.errors import InputError

    given = [f"--{name}" for name in ("bank", "ledger", "truth", "fx", "processor") if getattr(args, name, None)]
    if given:
        raise InputError(f"{', '.join(given)}: `recon train --workspace` learns from the workspace's lines and "
                         "decisions; give files to `recon train` without --workspace")
    if args.out:
        raise InputError("--out: `recon train --workspace` saves the model beside the workspace (with --save)")
    report = train_workspace(args.workspace, rules=args.rules, seed=args.seed, save=args.save)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str))
    elif not args.quiet:
        print(report.summary())
    return 0
