"""Adapters (the last stage): write accepted matches back to the books.

A target is named on the command line (``recon writeback --to TARGET``):

- ``dir:PATH``: files, ``PATH/status.csv`` and ``PATH/journal.csv`` (:mod:`engine.adapters.files`);
- ``postgresql://...`` and ``duckdb:///PATH.duckdb?...``: a SQL ledger
  (:mod:`engine.adapters.sql`);
- ``xero+http://HOST:PORT`` / ``xero+https://...``: an accounting platform's REST API shaped on
  Xero's (:mod:`engine.adapters.rest`).

Each module has ``open_adapter(target, workspace_dir=...)`` returning an
:class:`~engine.adapters.base.Adapter`; :func:`open_target` picks the module by the target's
scheme and imports only that one (a PostgreSQL driver is not needed to write files).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from engine.adapters.base import (
    CAPABILITIES,
    Adapter,
    JournalLine,
    MatchLine,
    WriteItem,
    WriteResult,
)
from models.errors import InputError

__all__ = [
    "open_target", "target_module", "Adapter", "CAPABILITIES", "JournalLine", "MatchLine",
    "WriteItem", "WriteResult",
]

_SCHEMES = {
    "dir": "engine.adapters.files",
    "postgresql": "engine.adapters.sql",
    "postgres": "engine.adapters.sql",
    "duckdb": "engine.adapters.sql",
    "xero+http": "engine.adapters.rest",
    "xero+https": "engine.adapters.rest",
    "qbo+http": "engine.adapters.rest", "qbo+https": "engine.adapters.rest",
}


def target_module(target: str) -> str:
    """The adapter module that writes to ``target``.

    Raises
    ------
    InputError
        The target names no known scheme.
    """
    scheme = target.split(":", 1)[0].lower() if ":" in target else ""
    try:
        return _SCHEMES[scheme]
    except KeyError:
        known = ", ".join(["dir:PATH", "postgresql://...", "duckdb:///PATH.duckdb?...", "xero+http(s)://HOST"])
        raise InputError(f"write-back target {target!r}: unknown kind; use one of {known}") from None


def open_target(target: str, workspace_dir: str | Path) -> Adapter:
    """Open the adapter for ``target`` (see the module docstring); ``workspace_dir`` is where a
    target may keep state of its own (credentials, an outbox)."""
    module = import_module(target_module(target))
    return module.open_adapter(target, workspace_dir=Path(workspace_dir))
