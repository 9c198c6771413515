"""Progress of a run: a bar per stage on a terminal, a line per stage in the logs.

A month-end run of a million lines takes a minute or two and must never sit silent. Every stage
of the pipeline (reading, preparing, candidate pairs, scoring, group generators, assignment,
outputs, the workspace) runs inside :meth:`Progress.stage`:

- on a terminal (``stderr`` is a tty) a `tqdm <https://tqdm.github.io>`_ bar per stage shows
  the stage, its elapsed time and the process's memory, refreshed every second; stages that run
  side by side (pairs and the group generators) get a bar each;
- in the logs (logger ``recon``) a line when a stage starts and when it ends, with its wall
  time and the process's resident memory, and a line every :data:`HEARTBEAT_SECONDS` while a
  long stage is still running.

Stages only report; they never change what a run computes.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
from tqdm import tqdm

log = logging.getLogger("recon")
log.addHandler(logging.NullHandler())  # a library logs only where its user points it

#: a log line at least this often while one stage runs
HEARTBEAT_SECONDS = 30.0
_REFRESH_SECONDS = 1.0


def rss_bytes() -> int:
    """Resident memory of this process, in bytes."""
    return psutil.Process().memory_info().rss


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


class Progress:
    """Reports the stages of one run.

    Parameters
    ----------
    bars
        Show a bar per stage; ``None`` (the default) shows them when ``stderr`` is a terminal.
    """

    def __init__(self, bars: bool | None = None, memory_limit: int | None = None):
        self.bars = sys.stderr.isatty() if bars is None else bars
        self.memory_limit = memory_limit
        self.peak_rss = rss_bytes()
        self.stages: dict[str, float] = {}
        #: (stage, memory) when the process first went over ``memory_limit``
        self.over_limit: tuple[str, int] | None = None
        self._lock = threading.Lock()

    def _sample(self, stage: str = "") -> int:
        rss = rss_bytes()
        with self._lock:
            self.peak_rss = max(self.peak_rss, rss)
            first_time = self.memory_limit is not None and rss > self.memory_limit and self.over_limit is None
            if first_time:
                self.over_limit = (stage, rss)
        if first_time:
            log.warning("stage %s: memory %s is over the limit of %s", stage, _gb(rss), _gb(self.memory_limit))
        return rss

    def over_limit_warning(self) -> str | None:
        """A sentence for the run's warnings when the run went over its memory limit."""
        if self.over_limit is None:
            return None
        stage, rss = self.over_limit
        return (f"memory limit {_gb(self.memory_limit)} exceeded in stage '{stage}' ({_gb(rss)}; peak "
                f"{_gb(self.peak_rss)}): lower the caps in [candidates] / [compound] or raise --memory-limit")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Run the body as the stage ``name``: a bar, a start and an end line, heartbeats."""
        start = time.perf_counter()
        log.info("stage %s: started (memory %s)", name, _gb(self._sample(name)))
        bar = tqdm(desc=name, bar_format="{desc}: {elapsed}{postfix}", disable=not self.bars,
                   leave=True, file=sys.stderr, dynamic_ncols=True)
        done = threading.Event()

        def watch() -> None:
            last_line = start
            while not done.wait(_REFRESH_SECONDS):
                rss = self._sample(name)
                bar.set_postfix_str(f"memory {_gb(rss)}", refresh=True)
                now = time.perf_counter()
                if now - last_line >= HEARTBEAT_SECONDS:
                    last_line = now
                    log.info("stage %s: running for %.0f s (memory %s)", name, now - start, _gb(rss))

        watcher = threading.Thread(target=watch, name=f"progress-{name}", daemon=True)
        watcher.start()
        failed = True
        try:
            yield
            failed = False
        finally:
            done.set()
            watcher.join()
            seconds = time.perf_counter() - start
            rss = self._sample(name)
            with self._lock:
                self.stages[name] = self.stages.get(name, 0.0) + seconds
            bar.set_postfix_str(f"memory {_gb(rss)}", refresh=False)
            bar.close()
            log.info("stage %s: %s %.1f s (memory %s)", name, "failed after" if failed else "done in", seconds,
                     _gb(rss))


#: a Progress that shows no bars (the Python API's default; logs still get their lines)
def quiet() -> Progress:
    return Progress(bars=False)
