"""``recon serve-events`` and ``recon poll``: processor events into a workspace, as they happen
and to catch up.

``serve-events`` runs :func:`create_app`, an ASGI application (Starlette, served by uvicorn;
any ASGI server can serve it), on 127.0.0.1 unless told otherwise:

``POST /webhooks/stripe``
    A Stripe-signed event. Answers ``200 {"received": ID}`` once the event is stored (it is
    applied right after, in the background: payout lines ingested, then one incremental match
    for the events that arrived together); ``400`` for a missing, malformed or wrong signature,
    a timestamp beyond the tolerance, or a body that is not an event; ``200 {"received": ID,
    "duplicate": true}`` for an event id already stored (a processor's retry of a delivery
    already received, or a replay within the signature's tolerance): acknowledged so that the
    processor stops retrying, never applied again; ``413`` for a body over 1 MiB; ``503`` with ``Retry-After`` while the workspace is
    busy (the processor retries).
``GET /events/{id}``
    The stored event's state (``received``, ``processed``, ``failed``), line counts, note and
    the match run that followed; ``404`` when not stored.
``GET /health``
    ``200 {"ok": true}``.

``poll`` catches up from a drop folder or an API list endpoint
(:func:`engine.workspace.events.poll_folder`, :func:`engine.workspace.events.poll_url`).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any

from models.errors import ReconError

#: the largest webhook body accepted
MAX_BODY = 1 << 20

#: seconds a webhook request waits for a busy workspace before answering 503
STORE_WAIT = 10.0

#: seconds the worker collects further events before applying them together (one match)
DEBOUNCE = 0.5


def register(sub) -> dict:
    """Add ``serve-events`` and ``poll`` to ``sub``; returns their handlers."""
    s = sub.add_parser(
        "serve-events", help="receive processor webhooks (Stripe-signed) into a workspace and match at once",
        description="Serve POST /webhooks/stripe: verify the Stripe-Signature (HMAC-SHA256 with the shared "
                    "secret, 300 s tolerance), store each event once in the workspace's events table, "
                    "ingest its payout lines and match the workspace incrementally. GET /events/ID shows an "
                    "event's state.")
    s.add_argument("--workspace", required=True, metavar="FILE", help="the workspace file")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8717, help="port (default 8717)")
    s.add_argument("--secret-env", default="RECON_WEBHOOK_SECRET", metavar="NAME",
                   help="environment variable holding the endpoint's signing secret (default RECON_WEBHOOK_SECRET)")
    s.add_argument("--tolerance", type=int, default=300, metavar="SECONDS",
                   help="how far a delivery's timestamp may be from now (default 300)")
    s.add_argument("--api", metavar="URL",
                   help="the processor's balance-transaction list endpoint (e.g. https://api.stripe.com/v1/"
                        "balance_transactions): a paid payout's transactions are listed with ?payout=ID and ingested")
    s.add_argument("--api-key-env", default="STRIPE_API_KEY", metavar="NAME",
                   help="environment variable holding the API key for --api (default STRIPE_API_KEY)")
    s.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    p = sub.add_parser(
        "poll", help="catch up: ingest new files of a drop folder or new items of an API list, then match",
        description="--from DIR: every file not read before (by content hash); files in DIR/bank, DIR/ledger, "
                    "DIR/processor are read as that side, others recognised by content. --from URL: a list "
                    "endpoint listed newest first: all of it the first time, then what is newer than the stored cursor (events, "
                    "balance transactions or payouts). Both are idempotent: run twice, nothing doubles.")
    p.add_argument("--workspace", required=True, metavar="FILE", help="the workspace file")
    p.add_argument("--from", dest="sources", nargs="+", action="extend", required=True, metavar="DIR_OR_URL",
                   help="a drop folder or an http(s) list endpoint (several may be given)")
    p.add_argument("--token-env", default="STRIPE_API_KEY", metavar="NAME",
                   help="environment variable holding the API key for a URL (default STRIPE_API_KEY; unset: none sent)")
    p.add_argument("--json", action="store_true", help="print what was read as JSON")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return {"serve-events": _cmd_serve, "poll": _cmd_poll}


def _secret(name: str) -> str:
    secret = os.environ.get(name, "")
    if not secret:
        raise ReconError(f"the environment variable {name} is not set; set it to the webhook endpoint's "
                         "signing secret (whsec_...) or name another with --secret-env")
    return secret


def _cmd_poll(args) -> int:
    from engine.workspace.events import poll_folder, poll_url

    token = os.environ.get(args.token_env) or None
    reports = []
    for source in args.sources:
        if source.startswith(("http://", "https://")):
            reports.append(poll_url(args.workspace, source, token=token))
        else:
            reports.append(poll_folder(args.workspace, source))
    if args.json:
        print(json.dumps([{
            "source": r.source, "files": r.files, "skipped": r.skipped, "items": r.items,
            "lines_added": r.lines_added, "cursor": r.cursor, "run_id": r.run_id,
            "events": r.events.events if r.events else {},
        } for r in reports], ensure_ascii=False, indent=2))
    else:
        print("\n".join(r.summary() for r in reports))
    return 0


class _Worker:
    """Applies stored events one batch at a time in a background thread: the events that
    arrive within :data:`DEBOUNCE` seconds of each other share one match run."""

    def __init__(self, workspace: str, api_url: str | None, api_key: str | None):
        self.workspace = workspace
        self.api_url = api_url
        self.api_key = api_key
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="recon-events", daemon=True)

    def start(self) -> None:
        from engine.workspace.events import pending_events

        for event_id in pending_events(self.workspace):  # stored before a crash or restart
            self.queue.put(event_id)
        self.thread.start()

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=30)

    def _run(self) -> None:
        from engine.workspace.events import ListClient, process_events

        while True:
            first = self.queue.get()
            if first is None:
                return
            batch, stop = [first], False
            while True:
                try:
                    more = self.queue.get(timeout=DEBOUNCE)
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            api = ListClient(self.api_url, token=self.api_key) if self.api_url else None
            try:
                report = process_events(self.workspace, batch, api=api)
                print(report.summary(), file=sys.stderr, flush=True)
            except Exception as error:  # noqa: BLE001 - the events stay 'received' and are retried at the next start
                print(f"recon serve-events: applying {', '.join(batch)} failed: {type(error).__name__}: "
                      f"{error}", file=sys.stderr, flush=True)
            finally:
                if api is not None:
                    api.close()
            if stop:
                return


def create_app(workspace: str | Path, secret: str, *, tolerance: int = 300, api_url: str | None = None,
               api_key: str | None = None):
    """The webhook receiver as an ASGI application (see the module docstring for its routes).

    Parameters
    ----------
    workspace
        The workspace file events are stored in and applied to.
    secret
        The endpoint's signing secret.
    tolerance
        Seconds a delivery's timestamp may be from now.
    api_url, api_key
        The processor's balance-transaction list endpoint and key (see ``--api``).

    Returns
    -------
    starlette.applications.Starlette
        Serve it with any ASGI server, e.g. ``uvicorn``; the event worker starts and stops
        with the application's lifespan.
    """
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from engine.workspace.events import event_state, store_event
    from engine.workspace.lock import WorkspaceBusyError
    from feeds.stripe_events import (
        SIGNATURE_HEADER,
        WebhookSignatureError,
        parse_event,
        verify_signature,
    )

    workspace = str(workspace)
    worker = _Worker(workspace, api_url, api_key)

    def refuse(status: int, error: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"error": error}, status_code=status, **extra)

    async def receive(request: Request) -> JSONResponse:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY:
            return refuse(413, f"body over {MAX_BODY} bytes")
        body = await request.body()
        if len(body) > MAX_BODY:
            return refuse(413, f"body over {MAX_BODY} bytes")
        try:
            verify_signature(body, request.headers.get(SIGNATURE_HEADER), secret, tolerance=tolerance)
            event = parse_event(body)
        except WebhookSignatureError as error:
            return refuse(400, f"signature {error.reason}: {error}")
        except ReconError as error:
            return refuse(400, str(error))
        try:
            stored = await run_in_threadpool(store_event, workspace, event, body.decode("utf-8-sig"),
                                             "webhook", STORE_WAIT)
        except WorkspaceBusyError as error:
            return refuse(503, str(error), headers={"Retry-After": "5"})
        if not stored:
            # a processor retries a delivery it saw no 2xx for, for days: the duplicate is
            # acknowledged (and never applied twice), not refused into more retries
            return JSONResponse({"received": event["id"], "duplicate": True,
                                 "note": f"event {event['id']} was already received; not applied again"})
        worker.queue.put(event["id"])
        return JSONResponse({"received": event["id"]})

    async def state(request: Request) -> JSONResponse:
        try:
            found = await run_in_threadpool(event_state, workspace, request.path_params["event_id"])
        except WorkspaceBusyError as error:
            return refuse(503, str(error), headers={"Retry-After": "5"})
        if found is None:
            return refuse(404, "no such event")
        return JSONResponse(found)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @asynccontextmanager
    async def lifespan(app):
        await run_in_threadpool(worker.start)
        try:
            yield
        finally:
            await run_in_threadpool(worker.stop)

    return Starlette(
        routes=[
            Route("/webhooks/stripe", receive, methods=["POST"]),
            Route("/events/{event_id}", state, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def _cmd_serve(args) -> int:
    try:
        import uvicorn
    except ImportError:
        raise ReconError("recon serve-events needs the 'events' extra: pip install 'recon[events]'") from None
    secret = _secret(args.secret_env)
    api_key = os.environ.get(args.api_key_env) or None
    app = create_app(args.workspace, secret, tolerance=args.tolerance, api_url=args.api, api_key=api_key)
    print(f"recon serve-events: {args.workspace} listening on http://{args.host}:{args.port}/webhooks/stripe",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
