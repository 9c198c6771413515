"""Adapters (the last stage): the durable outbox of a REST write-back target.

Every request to the platform is recorded here *before* it is sent, with its exact body and
idempotency key, and its answer is recorded after, element by element, with the platform's
ids. A process killed mid-batch (``kill -9``, a lost network) leaves requests without an
answer; the next write-back sends those again, byte for byte, with the same idempotency key,
and the platform answers with what it did the first time instead of doing it twice. So a
write is neither lost nor doubled.

Why SQLite (in WAL mode; the recording commit synced to disk) in a file beside the workspace rather than a
table in the workspace's DuckDB file: the orchestrating process holds that file, and the
outbox must commit after every answer while requests are in flight (several a second, from
concurrent requests); SQLite's WAL gives durable small commits and survives a killed writer.

Nothing is updated or deleted: ``requests`` and ``elements`` are written once when a request
is recorded, ``answers`` once per element when its answer arrives. An element's state is its
latest request's answer: none yet (``pending``), ``done`` or ``failed``. A failed element that
is tried again gets a new request (a new attempt number, so a new idempotency key); a
reversal is new elements under the reversal's own key.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Outbox", "OutboxElement", "PendingRequest", "ElementState", "OUTBOX_FILE"]

#: the outbox's file name inside the workspace directory
OUTBOX_FILE = "recon-outbox.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    params TEXT NOT NULL,
    body TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS elements (
    request_id INTEGER NOT NULL REFERENCES requests (request_id),
    position INTEGER NOT NULL,
    item_key TEXT NOT NULL,
    match_id TEXT NOT NULL,
    action TEXT NOT NULL,
    part TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (request_id, position)
);
CREATE INDEX IF NOT EXISTS elements_item ON elements (item_key, part);
CREATE INDEX IF NOT EXISTS elements_match ON elements (match_id);
CREATE TABLE IF NOT EXISTS answers (
    request_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    answered_at TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('done', 'failed')),
    external_ids TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (request_id, position)
);
"""


@dataclass(frozen=True, slots=True)
class OutboxElement:
    """An element to record: which item and part it writes, and its JSON text."""

    item_key: str
    match_id: str
    action: str
    part: str
    payload: str


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """A recorded request, ready to send (again)."""

    request_id: int
    idempotency_key: str
    kind: str
    method: str
    path: str
    params: dict[str, str]
    body: str
    elements: tuple[OutboxElement, ...]


@dataclass(frozen=True, slots=True)
class ElementState:
    """The latest state of one part of one item."""

    part: str
    state: str  # pending | done | failed
    attempt: int
    request_id: int
    payload: str
    external_ids: dict[str, str]
    reason: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def idempotency_key(elements: Iterable[tuple[str, str, int]]) -> str:
    """The idempotency key of a request: a digest of its elements' ``(item key, part,
    attempt)``, so it is derived from the items' keys, fits a header (ASCII, 70 characters,
    under Xero's 128) and is the same whenever the same request is sent again."""
    digest = hashlib.sha256()
    for item_key, part, attempt in elements:
        digest.update(f"{item_key}\x1f{part}\x1f{attempt}\x1e".encode())
    return "recon-" + digest.hexdigest()


class Outbox:
    """The outbox file of one workspace (shared by its REST targets, told apart by ``target``).

    Parameters
    ----------
    path
        The SQLite file (created when missing).
    target
        The target this outbox serves (e.g. ``xero+https://api.xero.com`` plus the tenant).
    """

    def __init__(self, path: str | Path, target: str):
        self.path = Path(path)
        self.target = target
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # the adapter is opened in the caller's thread and, when the caller is async code (the
        # review page's write-back button), writes from a thread of its own while the caller
        # waits: one thread at a time, so the connection may move between them
        self._con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.executescript(_SCHEMA)

    def close(self) -> None:
        self._con.close()

    # -- reading ---------------------------------------------------------------------------
    def states(self, item_keys: Sequence[str]) -> dict[str, dict[str, ElementState]]:
        """``{item_key: {part: state}}`` of every part ever recorded for these items here."""
        out: dict[str, dict[str, ElementState]] = {}
        rows = []
        for start in range(0, len(item_keys), 500):
            chunk = list(item_keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            rows.extend(self._con.execute(
                f"""SELECT e.item_key, e.part, e.attempt, e.request_id, e.payload,
                           a.state, a.external_ids, a.reason
                    FROM elements e JOIN requests r USING (request_id)
                    LEFT JOIN answers a USING (request_id, position)
                    WHERE r.target = ? AND e.item_key IN ({marks})
                    ORDER BY e.request_id""",
                [self.target, *chunk],
            ).fetchall())
        for item_key, part, attempt, request_id, payload, state, ids, reason in rows:
            out.setdefault(item_key, {})[part] = ElementState(
                part, state or "pending", attempt, request_id, payload,
                json.loads(ids) if ids else {}, reason or "")
        return out

    def written_parts(self, match_id: str) -> list[tuple[str, str, dict[str, str]]]:
        """``(part, payload, external ids)`` of the elements the latest write of ``match_id``
        put on the target (answered ``done``), oldest first: the write a reversal undoes (a
        match written, undone and written again is undone from its second write only)."""
        done = """FROM elements e JOIN requests r USING (request_id)
                  JOIN answers a USING (request_id, position)
                  WHERE r.target = ? AND e.match_id = ? AND e.action = 'write' AND a.state = 'done'"""
        rows = self._con.execute(
            f"""SELECT e.part, e.payload, a.external_ids {done}
                AND e.item_key = (SELECT e.item_key {done} ORDER BY e.request_id DESC, e.position DESC LIMIT 1)
                ORDER BY e.request_id, e.position""",
            [self.target, match_id, self.target, match_id],
        ).fetchall()
        return [(part, payload, json.loads(ids)) for part, payload, ids in rows]

    def pending(self) -> list[PendingRequest]:
        """Requests recorded here with an element that has no answer yet (sent or not)."""
        ids = [row[0] for row in self._con.execute(
            """SELECT DISTINCT e.request_id FROM elements e JOIN requests r USING (request_id)
               LEFT JOIN answers a USING (request_id, position)
               WHERE r.target = ? AND a.request_id IS NULL ORDER BY e.request_id""",
            [self.target],
        )]
        return [self._request(request_id) for request_id in ids]

    def _request(self, request_id: int) -> PendingRequest:
        key, kind, method, path, params, body = self._con.execute(
            "SELECT idempotency_key, kind, method, path, params, body FROM requests WHERE request_id = ?",
            [request_id],
        ).fetchone()
        elements = tuple(
            OutboxElement(*row) for row in self._con.execute(
                """SELECT item_key, match_id, action, part, payload FROM elements
                   WHERE request_id = ? ORDER BY position""", [request_id])
        )
        return PendingRequest(request_id, key, kind, method, path, json.loads(params), body, elements)

    # -- writing ---------------------------------------------------------------------------
    def record(self, requests: Sequence[tuple[str, str, str, dict[str, str], str, Sequence[tuple[OutboxElement, int]]]]) -> list[PendingRequest]:
        """Record requests before they are sent, all in one transaction.

        Parameters
        ----------
        requests
            ``(kind, method, path, params, body, [(element, attempt), ...])`` each.

        Returns
        -------
        list[PendingRequest]
            The recorded requests, with their ids and idempotency keys.
        """
        recorded = []
        # a request must be on disk before it is sent, even through a power cut: this commit
        # is synced; answers need not be (a lost answer only means sending again, same key)
        self._con.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            for kind, method, path, params, body, elements in requests:
                key = idempotency_key((e.item_key, e.part, attempt) for e, attempt in elements)
                cursor = self._con.execute(
                    """INSERT INTO requests (target, idempotency_key, kind, method, path, params, body, recorded_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                    [self.target, key, kind, method, path, json.dumps(params), body, _now()],
                )
                request_id = cursor.lastrowid
                self._con.executemany(
                    """INSERT INTO elements (request_id, position, item_key, match_id, action, part, attempt, payload)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                    [(request_id, position, e.item_key, e.match_id, e.action, e.part, attempt, e.payload)
                     for position, (e, attempt) in enumerate(elements)],
                )
                recorded.append(PendingRequest(request_id, key, kind, method, path, params, body,
                                               tuple(e for e, _ in elements)))
        self._con.execute("PRAGMA synchronous=NORMAL")
        return recorded

    def answer(self, request_id: int, http_status: int, outcomes: Sequence[tuple[str, dict[str, Any], str]]) -> None:
        """Record the platform's answer to a request: ``(state, external ids, reason)`` per
        element, in the request's order (``state`` is ``done`` or ``failed``)."""
        at = _now()
        with self._transaction():
            self._con.executemany(
                """INSERT OR IGNORE INTO answers (request_id, position, answered_at, http_status, state, external_ids, reason)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                [(request_id, position, at, http_status, state, json.dumps(ids, ensure_ascii=False), reason)
                 for position, (state, ids, reason) in enumerate(outcomes)],
            )

    def _transaction(self):
        con = self._con

        class _Tx:
            def __enter__(self):
                con.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind, value, traceback):
                con.execute("COMMIT" if kind is None else "ROLLBACK")
                return False

        return _Tx()
