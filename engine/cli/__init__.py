"""The ``recon`` command line: a thin layer over :mod:`engine.api`, one module a group of commands.

- :mod:`engine.cli.run`: ``match``, ``train``, ``evaluate``, ``inspect``, ``profile``, ``rules``;
- :mod:`engine.cli.whatif`: ``what-if``, ``training`` (and ``train --workspace``).

Each module has ``register(sub)``, which adds its sub-commands to the parser and returns their
handlers. Errors recon raises on purpose print one line naming the file and the problem and exit
with status 2; a traceback appears only with ``--debug``.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from models.errors import ReconError

__all__ = ["main", "EXIT_INPUT", "EXIT_BUG"]

EXIT_INPUT = 2
EXIT_BUG = 1

#: the command modules, in the order their commands appear in ``recon --help``
COMMAND_MODULES = ("engine.cli.run", "engine.cli.workspace", "engine.cli.writeback", "engine.cli.events",
                   "engine.cli.whatif", "engine.cli.report", "engine.cli.serve")


def _build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(
        prog="recon",
        description="Bank reconciliation matching engine: propose matches between bank lines and ledger items.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers: dict = {}
    for name in COMMAND_MODULES:
        handlers.update(import_module(name).register(sub))
    return parser, handlers


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recon`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    parser, handlers = _build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False) or "--debug" in argv
    try:
        return handlers[args.command](args)
    except ReconError as exc:
        if debug:
            raise
        print(f"recon: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("recon: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line unless --debug
        if debug:
            raise
        print(f"recon: internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_BUG
