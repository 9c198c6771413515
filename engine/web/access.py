"""Review page (web stage): one thread at a time reads and writes the workspace.

A workspace is one process's at a time (:mod:`engine.workspace.lock`) and a DuckDB connection is
not for several threads at once, so every request's work runs on one thread owned by
:class:`WorkspaceAccess`, in the order the requests came. That thread opens the workspace on the
first request and keeps it open while requests keep coming (opening it costs tens of
milliseconds; a decision must take less than 200 ms), and closes it once no request has come for
``idle`` seconds, so that ``recon accept``, ``recon writeback`` or a notebook can take the
workspace between a reviewer's bursts. A request that finds the workspace held by another
process waits as the CLI does (``RECON_LOCK_WAIT``, default 5 s) and then fails with
:class:`~engine.workspace.lock.WorkspaceBusyError`.

The decisions themselves go through :mod:`engine.api` (``accept``, ``reject``, ``unmatch``,
``match_manual``, ``writeback``), called on this thread: they open the workspace again by its
path, which the re-entrant lock and DuckDB's shared database instance make cheap.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from engine.workspace.store import Workspace

__all__ = ["WorkspaceAccess"]

#: seconds without a request after which the workspace is closed (and its lock released)
IDLE_SECONDS = 2.0


class WorkspaceAccess:
    """Runs work on the workspace on one thread, in turn.

    Parameters
    ----------
    path
        The workspace file (it must exist).
    idle
        Seconds without work after which the workspace is closed.
    wait
        Seconds to wait for a workspace another process holds (default: as the CLI).

    Examples
    --------
    >>> access = WorkspaceAccess("books.duckdb")                      # doctest: +SKIP
    >>> access.call(lambda ws: ws.query("SELECT count(*) FROM proposals"))  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, idle: float = IDLE_SECONDS, wait: float | None = None):
        self.path = Path(path)
        self.idle = idle
        self.wait = wait
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="recon-web-workspace", daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[Workspace], Any]) -> Future:
        """Queue ``work(ws)``; its result (or exception) arrives in the returned future."""
        future: Future = Future()
        self._jobs.put((work, future))
        return future

    def call(self, work: Callable[[Workspace], Any]) -> Any:
        """Run ``work(ws)`` on the workspace thread and return its result."""
        return self.submit(work).result()

    async def run(self, work: Callable[[Workspace], Any]) -> Any:
        """Await ``work(ws)`` run on the workspace thread (the event loop stays free)."""
        return await asyncio.wrap_future(self.submit(work))

    def close(self) -> None:
        """Close the workspace and stop the thread (after the work already queued)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        ws: Workspace | None = None
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=self.idle if ws is not None else None)
                except queue.Empty:
                    ws.close()
                    ws = None
                    continue
                if job is None:
                    return
                work, future = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    if ws is None:
                        ws = Workspace(self.path, create=False, wait=self.wait)
                    future.set_result(work(ws))
                except BaseException as exc:  # handed to the request that asked
                    future.set_exception(exc)
        finally:
            if ws is not None:
                ws.close()
