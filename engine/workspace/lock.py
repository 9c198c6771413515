"""Workspace store: one process at a time writes a workspace.

Every command that reads or writes a workspace holds its lock: an exclusive ``flock`` on a
companion file beside it (``books.duckdb`` -> ``books.duckdb.lock``) holding the holder's process
id. The operating system releases the lock when the holder exits, however it exits (``kill -9``
included), so a crashed run never leaves a stale lock behind; the file itself stays, and a later
holder overwrites the process id in it.

A second process waits for the lock up to ``wait`` seconds (default :data:`DEFAULT_WAIT`, or the
``RECON_LOCK_WAIT`` environment variable), then fails with
``workspace W is in use by process N``; DuckDB's own file lock would otherwise refuse it with a
less helpful message, or, on a file system without locks, let two writers corrupt the file.

Within one process the lock is re-entrant for the thread holding it (an API function that calls
another, e.g. the events webhook ingesting and then matching); other threads wait as other
processes do.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.errors import ReconError

__all__ = ["WorkspaceBusyError", "workspace_lock", "lock_path", "default_wait", "DEFAULT_WAIT"]

#: seconds a command waits for a workspace another process holds
DEFAULT_WAIT = 5.0

_POLL = 0.05


class WorkspaceBusyError(ReconError):
    """Another process holds the workspace (``pid``: its process id, when known)."""

    def __init__(self, path: Path, pid: int | None, waited: float):
        self.path = path
        self.pid = pid
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"workspace {path} is in use by {holder} (waited {waited:g} s); "
            "try again when it has finished"
        )


class _Held:
    """The lock one process holds on one workspace: its file, thread and nesting depth."""

    def __init__(self) -> None:
        self.guard = threading.RLock()  # other threads of this process wait on it
        self.fd: int | None = None
        self.depth = 0


_held: dict[Path, _Held] = {}
_held_guard = threading.Lock()


def lock_path(workspace: str | Path) -> Path:
    """The lock file of ``workspace``: the same name with ``.lock`` appended."""
    path = Path(workspace)
    return path.with_name(path.name + ".lock")


def default_wait() -> float:
    text = os.environ.get("RECON_LOCK_WAIT")
    if text is None:
        return DEFAULT_WAIT
    try:
        return max(float(text), 0.0)
    except ValueError:
        raise ReconError(f"RECON_LOCK_WAIT={text!r}: not a number of seconds") from None


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


@contextmanager
def workspace_lock(workspace: str | Path, wait: float | None = None) -> Iterator[None]:
    """Hold the lock of ``workspace`` for the ``with`` block.

    Parameters
    ----------
    workspace
        The workspace file (it need not exist yet).
    wait
        Seconds to wait for another process (default: ``RECON_LOCK_WAIT`` or
        :data:`DEFAULT_WAIT`).

    Raises
    ------
    WorkspaceBusyError
        Another process still holds it after ``wait`` seconds.

    Examples
    --------
    >>> with workspace_lock("books.duckdb"):  # doctest: +SKIP
    ...     ...  # open, change and close the workspace
    """
    path = Path(workspace).resolve()
    wait = default_wait() if wait is None else wait
    with _held_guard:
        held = _held.setdefault(path, _Held())
    start = time.monotonic()
    if not (held.guard.acquire(timeout=wait) if wait > 0 else held.guard.acquire(blocking=False)):
        raise WorkspaceBusyError(Path(workspace), os.getpid(), wait)
    try:
        if held.depth == 0:
            held.fd = _acquire_file(path, Path(workspace), wait - (time.monotonic() - start), wait)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd is not None:
                fcntl.flock(held.fd, fcntl.LOCK_UN)
                os.close(held.fd)
                held.fd = None
    finally:
        held.guard.release()


def _acquire_file(path: Path, shown: Path, remaining: float, wait: float) -> int:
    lock_file = lock_path(path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + max(remaining, 0.0)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WorkspaceBusyError(shown, _holder(fd), wait) from None
                time.sleep(_POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        return fd
    except BaseException:
        os.close(fd)
        raise
