"""Caps that bound candidate generation, and the warnings they leave when they bite.

Every generator partitions its work (currency, sign, payer, processor/store, date window) and
caps the work per partition (items per payer block, combinations tried, orders per settlement
window, ...), so its time and memory grow with the data, not with its square. A cap that bites
never fails a run and never drops a line silently: the generator does less (fewer combinations,
the nearest items only) and records *what* was capped, *where*, and *how much* was left out in
the run's :class:`CapLog`. The pipeline adds the log's lines to the run's warnings, which the CLI
prints in its summary and the workspace keeps with the run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

#: partitions named in one warning line; the rest are counted
NAMED_PARTITIONS = 3


@dataclass(frozen=True)
class CapHit:
    """One cap that bit: which generator, which rule-set cap and its value, where, what was left."""

    generator: str
    cap: str
    limit: int
    partitions: tuple[str, ...]
    left_out: int
    what: str

    def message(self) -> str:
        named = ", ".join(self.partitions[:NAMED_PARTITIONS])
        more = len(self.partitions) - NAMED_PARTITIONS
        where = named + (f" and {more:,} more" if more > 0 else "")
        return (f"{self.generator}: cap {self.cap} = {self.limit:,} reached in {len(self.partitions):,} "
                f"partition(s) ({where}); {self.left_out:,} {self.what} not examined there")


@dataclass
class CapLog:
    """Cap warnings of one run (thread-safe: generators run side by side)."""

    hits: list[CapHit] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bit(self, generator: str, cap: str, limit: int, partitions: list[str], left_out: int,
            what: str = "candidates") -> None:
        """Record that ``cap`` (a rule-set path such as ``compound.max_block_items``, value
        ``limit``) bit in ``partitions`` (readable names, e.g. ``payer 'CHAN TAI MAN' HKD``),
        leaving ``left_out`` ``what`` unexamined. Nothing is recorded when no partition bit."""
        if not partitions:
            return
        with self._lock:
            self.hits.append(CapHit(generator, cap, int(limit), tuple(partitions), int(left_out), what))

    def messages(self) -> list[str]:
        """One line per cap that bit, naming the first partitions and counting the others."""
        with self._lock:
            return [hit.message() for hit in self.hits]
