"""Workspace store: named crash points, the exact steps at which the reliability tests kill a
command with SIGKILL.

A command passes :func:`crash_point` at the steps where a crash is most telling (a match run
before its workspace transaction, inside it just before ``COMMIT``, after the commit but before
its files are published; an accept inside its transaction). When the environment variable
``RECON_CRASH_AT`` names the step, the process sends itself SIGKILL there, exactly as
``kill -9`` from outside would: no ``finally`` block, no ``atexit``, no flush. Without the
variable a crash point costs one dictionary look-up.
"""

from __future__ import annotations

import os
import signal

__all__ = ["crash_point", "CRASH_ENV"]

CRASH_ENV = "RECON_CRASH_AT"


def crash_point(name: str) -> None:
    """Die here with SIGKILL when ``RECON_CRASH_AT`` equals ``name`` (for tests that kill)."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
