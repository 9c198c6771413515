"""Workspace store: processor events (webhooks and polling), each stored and applied once.

Two ways new processor data reaches a workspace between statements:

* **the fast path**: ``recon serve-events`` receives a processor's signed webhooks
  (:mod:`engine.cli.events`); each event is stored here once (:func:`store_event`), then applied
  (:func:`process_events`): its payout lines are ingested and the workspace is matched again;
* **the catch-up**: ``recon poll`` reads what may have been missed: a drop folder of statement
  and processor files (:func:`poll_folder`, every file remembered by the SHA-256 of its
  content) or a processor API list endpoint paged with ``starting_after`` (:func:`poll_url`,
  its cursor stored here). Events listed by the API go through the same ``events`` table, so an
  event seen by both the webhook and the poll is applied once.

Tables (created on first use):

``events``
    ``event_id`` (unique), ``type``, ``source`` (``webhook`` or the URL polled), ``created``
    (the processor's time), ``received_at``, ``payload`` (the JSON text as received), ``state``
    (``received`` -> ``processed`` | ``failed``), ``processed_at``, ``lines_added``,
    ``lines_held`` (lines already in the workspace), ``lines_waiting`` (lines whose payout is not
    known yet, see :mod:`feeds.stripe_events`), ``note``, ``run_id`` (the match run that followed).
    An event stays ``received`` until it is applied, so a crash between the two is resumed by the
    next server start or poll.
``poll_files``
    ``sha256``, ``name``, ``side``, ``polled_at``, ``ingest_id``, ``state`` (``ingested`` |
    ``failed``), ``note``: the files of a drop folder already read.
``poll_cursors``
    ``source`` (the URL without the cursor), ``cursor`` (the last item id read), ``updated_at``.

Every step is idempotent: an event id, a file's content and a line's key are each taken once;
ingest adds only what the workspace does not hold (:mod:`engine.workspace.ingest`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import polars as pl

from engine.workspace.ingest import ingest_loaded
from engine.workspace.store import Workspace
from feeds.registry import detect_side
from feeds.stripe_events import EventLines, event_lines, list_lines, parse_event, parse_json
from models.errors import FeedFormatError, ReconError
from models.schema import FileStats, LoadResult

__all__ = [
    "EVENTS_DDL",
    "PollReport",
    "ProcessReport",
    "ListClient",
    "event_state",
    "events_frame",
    "pending_events",
    "poll_folder",
    "poll_url",
    "process_events",
    "store_event",
]

EVENTS_DDL = [
    """CREATE TABLE IF NOT EXISTS events (
        event_id VARCHAR PRIMARY KEY, type VARCHAR, source VARCHAR, created TIMESTAMP,
        received_at TIMESTAMP, payload VARCHAR, state VARCHAR, processed_at TIMESTAMP,
        lines_added INTEGER, lines_held INTEGER, lines_waiting INTEGER, note VARCHAR, run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS poll_files (
        sha256 VARCHAR, name VARCHAR, side VARCHAR, polled_at TIMESTAMP, ingest_id VARCHAR,
        state VARCHAR, note VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS poll_cursors (
        source VARCHAR PRIMARY KEY, cursor VARCHAR, updated_at TIMESTAMP)""",
]

#: folders of a drop folder whose files are read as that side (files at the top are recognised)
_SIDE_FOLDERS = ("bank", "ledger", "processor")

#: payout event types after which the payout's balance transactions can be listed
_RECONCILED = {"payout.paid", "payout.reconciliation_completed"}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _open(workspace: str | Path, wait: float | None = None) -> Workspace:
    ws = Workspace(workspace, wait=wait)
    for ddl in EVENTS_DDL:
        ws.con.execute(ddl).fetchall()
    return ws


# --------------------------------------------------------------------------------------------
# Events: stored once, applied once
# --------------------------------------------------------------------------------------------


def store_event(
    workspace: str | Path, event: dict[str, Any], payload: str, source: str = "webhook",
    wait: float | None = None,
) -> bool:
    """Store ``event`` unless its id is stored already.

    Parameters
    ----------
    workspace
        The workspace file.
    event
        The checked event (:func:`feeds.stripe_events.parse_event`).
    payload
        Its JSON text as received (kept byte-exact).
    source
        ``"webhook"`` or the URL it was listed by.
    wait
        Seconds to wait for the workspace lock.

    Returns
    -------
    bool
        True when stored now, False when the id was already stored (a replay or a retry).
    """
    created = event.get("created")
    created_at = (datetime.fromtimestamp(created, UTC).replace(tzinfo=None)
                  if isinstance(created, int) and not isinstance(created, bool) else None)
    with _open(workspace, wait) as ws:
        inserted = ws.con.execute(
            "INSERT INTO events (event_id, type, source, created, received_at, payload, state) "
            "VALUES (?, ?, ?, ?, ?, ?, 'received') ON CONFLICT DO NOTHING RETURNING event_id",
            [event["id"], event["type"], source, created_at, _now(), payload],
        ).fetchall()
    return bool(inserted)


def pending_events(workspace: str | Path) -> list[str]:
    """Ids of the events stored but not applied yet, oldest first."""
    with _open(workspace) as ws:
        rows = ws.con.execute(
            "SELECT event_id FROM events WHERE state = 'received' ORDER BY received_at, event_id"
        ).fetchall()
    return [r[0] for r in rows]


def event_state(workspace: str | Path, event_id: str) -> dict[str, Any] | None:
    """The stored record of one event (without its payload), or None when not stored."""
    with _open(workspace) as ws:
        frame = ws.query(
            "SELECT event_id, type, source, state, lines_added, lines_held, lines_waiting, note, run_id "
            "FROM events WHERE event_id = ?", [event_id],
        )
    return frame.row(0, named=True) if frame.height else None


@dataclass
class ProcessReport:
    """What applying events did: per event id its state and counts, and the match run."""

    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines_added: int = 0
    run_id: str | None = None

    def summary(self) -> str:
        out = [f"events applied: {len(self.events)}, payout lines added: {self.lines_added}"
               + (f", matched in run {self.run_id}" if self.run_id else "")]
        for event_id, info in self.events.items():
            out.append(f"  {event_id}: {info['state']}, {info['lines_added']} added"
                       + (f" ({info['note']})" if info.get("note") else ""))
        return "\n".join(out)


def _ingest_lines(ws: Workspace, found: EventLines, source: str) -> tuple[int, int]:
    """Ingest the lines of ``found`` (their rejects recorded with them); (added, already held)."""
    result = found.result
    if result.frame.height == 0 and result.rejects.height == 0:
        return 0, 0
    loaded = LoadResult(
        frame=result.frame,
        rejects=result.rejects,
        stats=[FileStats(source, "processor", result.rows_read, result.frame.height, result.rejects.height)],
    )
    report = ingest_loaded(ws, processor=loaded)
    return report.added.get("processor", 0), report.already.get("processor", 0)


def process_events(
    workspace: str | Path,
    event_ids: list[str] | None = None,
    *,
    api: ListClient | None = None,
    match: Callable[[str | Path], str | None] | None = None,
) -> ProcessReport:
    """Apply stored events: ingest their payout lines, then match the workspace once.

    Parameters
    ----------
    workspace
        The workspace file.
    event_ids
        The events to apply (default: every event still ``received``); one already
        ``processed`` is skipped.
    api
        A client of the processor's balance-transaction list endpoint: after a payout is paid
        (``payout.paid``, ``payout.reconciliation_completed``) its transactions are listed with
        ``?payout=ID`` and ingested with it. Without one, they come with ``recon poll``.
    match
        Runs the incremental match and returns its run id (default:
        :func:`engine.api.match_workspace`); called once, when any line was added.

    Returns
    -------
    ProcessReport
    """
    ids = pending_events(workspace) if event_ids is None else event_ids
    report = ProcessReport()
    for event_id in ids:
        with _open(workspace) as ws:
            row = ws.con.execute(
                "SELECT payload, state, type FROM events WHERE event_id = ?", [event_id]
            ).fetchall()
            if not row or row[0][1] == "processed":
                continue
            payload, _, kind = row[0]
            notes: list[str] = []
            try:
                event = parse_event(payload.encode("utf-8"), event_id)
                found = event_lines(event)
                notes += found.notes
                added, held = _ingest_lines(ws, found, event_id)
                waiting = found.held_back.height
                payout = event["data"]["object"]
                if api is not None and kind in _RECONCILED and payout.get("object") == "payout":
                    for page in api.pages({"payout": str(payout.get("id"))}):
                        listed = list_lines(page.items, api.source, payout=str(payout.get("id")),
                                            first_line=page.first_line)
                        more_added, more_held = _ingest_lines(ws, listed, f"{api.source}?payout={payout.get('id')}")
                        added, held = added + more_added, held + more_held
                if waiting:
                    notes.append(f"{waiting} line(s) wait for their payout")
                state = "processed"
            except ReconError as error:
                added = held = waiting = 0
                state, notes = "failed", [str(error)]
            note = "; ".join(notes) or None
            ws.con.execute(
                "UPDATE events SET state = ?, processed_at = ?, lines_added = ?, lines_held = ?, "
                "lines_waiting = ?, note = ? WHERE event_id = ?",
                [state, _now(), added, held, waiting, note, event_id],
            ).fetchall()
        report.events[event_id] = {"state": state, "lines_added": added, "note": note}
        report.lines_added += added
    if report.lines_added:
        report.run_id = (match or _match)(workspace)
        with _open(workspace) as ws:
            ws.con.execute(
                "UPDATE events SET run_id = ? WHERE event_id IN (SELECT unnest(?::VARCHAR[]))",
                [report.run_id, list(report.events)],
            ).fetchall()
    return report


def _match(workspace: str | Path) -> str:
    from engine.api import match_workspace  # the API layer joins the store and the stages

    return match_workspace(workspace).run_id


# --------------------------------------------------------------------------------------------
# Poll: a drop folder
# --------------------------------------------------------------------------------------------


@dataclass
class PollReport:
    """What one ``recon poll`` did."""

    source: str
    files: list[dict[str, Any]] = field(default_factory=list)  # name, side, state, added, note
    skipped: int = 0  # files (or items) already read
    items: int = 0  # API list items read
    lines_added: int = 0
    events: ProcessReport | None = None
    cursor: str | None = None
    run_id: str | None = None

    def summary(self) -> str:
        out = [f"recon poll: {self.source}"]
        for f in self.files:
            out.append(f"  {f['name']} ({f['side']}): {f['state']}, {f['added']} line(s) added"
                       + (f" ({f['note']})" if f.get("note") else ""))
        if self.items:
            out.append(f"  {self.items} item(s) read, cursor now {self.cursor}")
        if self.events is not None and self.events.events:
            out.append(f"  events applied: {len(self.events.events)}")
        out.append(f"  already read: {self.skipped}; lines added: {self.lines_added}"
                   + (f"; matched in run {self.run_id}" if self.run_id else "; nothing new to match"))
        return "\n".join(out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _drop_files(folder: Path) -> list[tuple[Path, str | None]]:
    """(file, side or None to recognise) of a drop folder, in name order; names starting with
    '.' or ending in .tmp / .part (a file still being written) are left for later."""
    found = []
    for directory, side in ((folder, None), *((folder / s, s) for s in _SIDE_FOLDERS)):
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.suffix not in (".tmp", ".part"):
                found.append((path, side))
    return found


def poll_folder(
    workspace: str | Path, folder: str | Path, *, match: Callable[[str | Path], str | None] | None = None
) -> PollReport:
    """Ingest every file of ``folder`` whose content was not read before, then match.

    Files directly in ``folder`` are recognised by content as any input (a canonical CSV reads
    as a bank statement, a Stripe export as processor lines); files in ``folder/bank``,
    ``folder/ledger`` and ``folder/processor`` are read as that side. A file is remembered by
    the SHA-256 of its content: the same file polled again, renamed or copied, is not read
    again; a changed file is. A file that cannot be read is remembered as ``failed`` with the
    reason (it is read again once its content changes).

    Parameters
    ----------
    workspace
        The workspace file.
    folder
        The drop folder.
    match
        See :func:`process_events`.

    Returns
    -------
    PollReport

    Raises
    ------
    ReconError
        ``folder`` is not a folder.
    """
    from engine.api import ingest

    folder = Path(folder)
    if not folder.is_dir():
        raise ReconError(f"{folder}: not a folder; --from takes a drop folder or an http(s) URL")
    report = PollReport(source=str(folder))
    with _open(workspace) as ws:
        known = {r[0] for r in ws.con.execute("SELECT sha256 FROM poll_files").fetchall()}
    for path, side in _drop_files(folder):
        digest = _sha256(path)
        if digest in known:
            report.skipped += 1
            continue
        known.add(digest)
        entry = {"name": str(path), "side": side or "?", "state": "ingested", "added": 0, "note": None}
        ingest_id = None
        try:
            if side is None:
                _, side = detect_side(str(path))
                entry["side"] = side
            result = ingest(workspace, **{side: [str(path)]})
            entry["added"] = sum(result.added.values())
            ingest_id = result.ingest_id
            if result.conflicts.height or result.rejects.height:
                entry["note"] = f"{result.rejects.height} rejected, {result.conflicts.height} conflict(s)"
        except FeedFormatError as error:
            entry.update(state="failed", note=str(error))
        with _open(workspace) as ws:
            ws.con.execute(
                "INSERT INTO poll_files VALUES (?, ?, ?, ?, ?, ?, ?)",
                [digest, str(path), entry["side"], _now(), ingest_id, entry["state"], entry["note"]],
            ).fetchall()
        report.files.append(entry)
        report.lines_added += entry["added"]
    if report.lines_added:
        report.run_id = (match or _match)(workspace)
    return report


# --------------------------------------------------------------------------------------------
# Poll: an API list endpoint
# --------------------------------------------------------------------------------------------


@dataclass
class Page:
    """One page of a list: its items, the position of the first in the whole read, and the
    cursor to store once the page is applied (``None`` while storing one would skip items not
    read yet)."""

    items: list[Any]
    first_line: int
    has_more: bool
    resume: str | None = None


class ListClient:
    """A Stripe-style list endpoint: ``GET URL?limit=N[&starting_after=ID|&ending_before=ID]``
    answering ``{"object": "list", "data": [...], "has_more": bool}``, newest item first.

    A first read walks back through the whole list with ``starting_after``; the cursor is the
    newest item it saw, stored only once the walk is done. A later read asks for what is newer
    than the cursor with ``ending_before`` (each answer the page just newer than the cursor,
    still newest first), moving the cursor to the newest item of each page as it is applied.

    Parameters
    ----------
    url
        The endpoint, with any fixed query parameters (``?type=charge``).
    token
        Sent as ``Authorization: Bearer TOKEN`` when given.
    limit
        Items a page.
    timeout
        Seconds a request may take.
    retries
        Attempts of a request answered 429 or 5xx, or failing to connect; a 429's
        ``Retry-After`` is honoured (at most 60 s), else the wait doubles from 0.5 s.

    Examples
    --------
    >>> client = ListClient("https://api.stripe.com/v1/events")  # doctest: +SKIP
    >>> [len(p.items) for p in client.pages()]                    # doctest: +SKIP
    [100, 100, 17]
    """

    def __init__(self, url: str, token: str | None = None, limit: int = 100, timeout: float = 30.0,
                 retries: int = 5):
        import httpx

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ReconError(f"{url}: not an http(s) URL")
        self.base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self.params = dict(parse_qsl(parts.query))
        self.source = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(sorted(self.params.items())), ""))
        self.limit = limit
        self.retries = retries
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self._httpx = httpx

    def close(self) -> None:
        self._client.close()

    def _get(self, params: dict[str, str]) -> dict[str, Any]:
        wait = 0.5
        for attempt in range(1, self.retries + 1):
            try:
                response = self._client.get(self.base, params=params)
            except self._httpx.TransportError as error:
                if attempt == self.retries:
                    raise ReconError(f"{self.source}: cannot be reached ({error}); run recon poll again later") from None
                time.sleep(wait)
                wait *= 2
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == self.retries:
                    break
                after = response.headers.get("Retry-After", "")
                time.sleep(min(float(after), 60.0) if after.replace(".", "", 1).isdigit() else wait)
                wait *= 2
                continue
            if response.status_code != 200:
                raise ReconError(
                    f"{self.source}: HTTP {response.status_code} ({response.text[:200].strip()}); "
                    "check the URL and the token"
                )
            body = parse_json(response.content, self.source)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise ReconError(f"{self.source}: the answer is not a list object with a 'data' array")
            return body
        raise ReconError(f"{self.source}: HTTP {response.status_code} after {self.retries} attempts; "
                         "run recon poll again later (it resumes from the stored cursor)")

    def pages(self, extra: dict[str, str] | None = None, after: str | None = None):
        """Yield the pages of the whole list (``after`` None), or of the items newer than the
        cursor ``after``; each page's ``resume`` is the cursor to store once it is applied."""
        position = 1
        newest: str | None = None
        cursor = after
        while True:
            params = {**self.params, **(extra or {}), "limit": str(self.limit)}
            if cursor:
                params["ending_before" if after else "starting_after"] = cursor
            body = self._get(params)
            items = body["data"]
            more = bool(body.get("has_more")) and bool(items)
            if items:
                cursor = self._id(items[0] if after else items[-1])
                newest = newest or self._id(items[0])
            # catching up, each page is newer than the last: its newest item is the cursor; a
            # first read is complete only at its last page, and its cursor the newest of all
            resume = (cursor if items else None) if after else (None if more else newest)
            yield Page(items=items, first_line=position, has_more=more, resume=resume)
            position += len(items)
            if not more:
                return

    def _id(self, item: Any) -> str:
        if isinstance(item, dict) and item.get("id"):
            return str(item["id"])
        raise ReconError(f"{self.source}: a listed item has no id to page by")


def poll_url(
    workspace: str | Path,
    url: str,
    *,
    token: str | None = None,
    client: ListClient | None = None,
    match: Callable[[str | Path], str | None] | None = None,
) -> PollReport:
    """Read a processor API list from where the last poll of it stopped, then match.

    Items that are events (``/v1/events``) are stored and applied as webhooks are (an event
    the webhook already delivered is not applied again); balance transactions and payouts
    (``/v1/balance_transactions``, ``/v1/payouts``) become payout lines directly, with the
    payout of a list filtered by ``?payout=po_...``. The cursor (the newest item read) is
    stored once a first read is complete, then after each page of a catch-up, so a poll stopped
    half-way reads again only what it had not finished (items already held are not doubled).

    Parameters
    ----------
    workspace
        The workspace file.
    url
        The list endpoint, with any fixed query parameters.
    token
        The API key (``Authorization: Bearer``).
    client
        A :class:`ListClient` to use instead of one made from ``url`` and ``token``.
    match
        See :func:`process_events`.

    Returns
    -------
    PollReport
    """
    own = client is None
    client = client or ListClient(url, token=token)
    report = PollReport(source=client.source)
    applied = ProcessReport()
    try:
        with _open(workspace) as ws:
            row = ws.con.execute("SELECT cursor FROM poll_cursors WHERE source = ?", [client.source]).fetchall()
        cursor = row[0][0] if row else None
        payout = client.params.get("payout")
        for page in client.pages(after=cursor):
            report.items += len(page.items)
            events = [i for i in page.items if isinstance(i, dict) and i.get("object") == "event"]
            others = [i for i in page.items if not (isinstance(i, dict) and i.get("object") == "event")]
            new_events = []
            for item in events:
                event = parse_event(item, client.source)
                text = json.dumps(item, ensure_ascii=False, default=str, separators=(",", ":"))
                if store_event(workspace, event, text, source=client.source):
                    new_events.append(event["id"])
                else:
                    report.skipped += 1
            if others:
                found = list_lines(others, client.source, payout=payout, first_line=page.first_line)
                with _open(workspace) as ws:
                    added, held = _ingest_lines(ws, found, client.source)
                report.lines_added += added
                report.skipped += held
            if new_events:
                done = process_events(workspace, new_events, match=lambda _: None)
                applied.events.update(done.events)
                report.lines_added += done.lines_added
            if page.resume:
                cursor = page.resume
                with _open(workspace) as ws:
                    ws.con.execute(
                        "INSERT INTO poll_cursors VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE "
                        "SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                        [client.source, cursor, _now()],
                    ).fetchall()
        report.cursor = cursor
    finally:
        if own:
            client.close()
    report.events = applied
    if report.lines_added:
        report.run_id = (match or _match)(workspace)
        if applied.events:
            with _open(workspace) as ws:
                ws.con.execute(
                    "UPDATE events SET run_id = ? WHERE event_id IN (SELECT unnest(?::VARCHAR[]))",
                    [report.run_id, list(applied.events)],
                ).fetchall()
    return report


def events_frame(workspace: str | Path) -> pl.DataFrame:
    """The ``events`` table without payloads, newest first (for ``recon poll --json`` and tests)."""
    with _open(workspace) as ws:
        return ws.query(
            "SELECT event_id, type, source, state, lines_added, lines_held, lines_waiting, note, run_id "
            "FROM events ORDER BY received_at DESC"
        )
