"""Review page (web stage): the ASGI application ``recon serve`` runs.

Server-rendered pages (Jinja2, every value escaped) with one small script for the keyboard and
for actions without a page reload; the same workspace and decision store as the CLI: every
decision goes through :mod:`engine.api`.

Pages (``GET``)
    ``/`` the queue (filters in the query string: ``state``, ``status``, ``type``, ``account``,
    ``currency``, ``min``, ``max``, ``from``, ``to``, ``q``, ``sort``, ``offset``, ``limit``);
    ``/matches/MATCH_ID`` a proposal side by side; ``/manual`` a manual match; ``/writeback``
    write-back status; ``/report?period=YYYY-MM`` the month-end report; ``/login``;
    ``/healthz`` (JSON, ``200``).
Actions (``POST``, JSON in and out, CSRF token in ``X-CSRF-Token``)
    ``/api/matches/MATCH_ID/accept`` | ``reject`` | ``unmatch`` (``comment``; for unmatch the
    reason); ``/api/bulk-accept`` (the queue's filters and the ``count`` the reviewer saw);
    ``/api/manual`` (``bank``, ``ledger``, ``adjust``, ``comment``); ``/api/writeback``
    (``to``, ``dry_run``). Each answers ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``
    with status 400 (refused, the reason in one line), 403 (CSRF), 401 (not signed in) or 503
    (the workspace is in use by another process).

Every response carries ``Server-Timing: app;dur=MS``: the time the server spent on it.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engine.web import queries
from engine.web.access import WorkspaceAccess
from engine.web.auth import Auth, check_csrf, csrf_token
from engine.workspace.lock import WorkspaceBusyError
from models.errors import InputError, ReconError
from rules.model import RuleSet, load_rules

__all__ = ["create_app"]

_MAX_BODY = 1 << 20
_MAX_IDS = 1000
_PUBLIC = ("/login", "/healthz", "/static/")


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("engine.web", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["amount"] = queries.format_amount
    env.filters["confidence"] = lambda c: "" if c is None else f"{c:.2f}"
    return env


class _Timing:
    """ASGI middleware: ``Server-Timing: app;dur=MS`` on every response (time spent serving it)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message):
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - start) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={ms:.1f}".encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed)


_SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class _Guard:
    """ASGI middleware: security headers on every response; the sign-in check (pages redirect
    to ``/login``, actions answer 401); the CSRF check of every ``POST``."""

    def __init__(self, app, auth: Auth):
        self.app = app
        self.auth = auth

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        path = request.url.path

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for name, value in _SECURITY_HEADERS.items():
                    if name.lower().encode("ascii") not in names:
                        headers.append((name.lower().encode("ascii"), value.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        public = path in _PUBLIC or path.startswith("/static/")
        if self.auth.required and not public and not request.session.get("user"):
            if path.startswith("/api/"):
                response = JSONResponse({"ok": False, "error": "not signed in: sign in at /login"}, status_code=401)
            else:
                response = RedirectResponse("/login?" + urlencode({"next": _local_path(str(request.url.path)
                                                                                       + _query(request))}),
                                            status_code=303)
            await response(scope, receive, with_headers)
            return
        if request.method == "POST":
            own = f"{request.url.scheme}://{request.headers.get('host', '')}"
            sent = request.headers.get("x-csrf-token")
            if sent is None and request.headers.get("content-type", "").startswith(
                    "application/x-www-form-urlencoded"):
                body = await request.body()
                sent = dict(parse_qsl(body.decode("utf-8", "replace"))).get("csrf_token")

                async def replay():
                    return {"type": "http.request", "body": body, "more_body": False}

                receive = replay
            problem = check_csrf(request.session, sent, request.headers.get("origin"), own)
            if problem:
                response = JSONResponse({"ok": False, "error": problem}, status_code=403)
                await response(scope, receive, with_headers)
                return
        await self.app(scope, receive, with_headers)


def _query(request: Request) -> str:
    return f"?{request.url.query}" if request.url.query else ""


def _local_path(target: str | None) -> str:
    """``target`` when it is a path on this site, else ``/`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def create_app(workspace: str | Path, auth: Auth | None = None, rules: RuleSet | str | Path | None = None,
               hosts: list[str] | None = None, idle: float | None = None) -> Starlette:
    """The review application for ``workspace``.

    Parameters
    ----------
    workspace
        The workspace file (it must exist: ``recon ingest`` and ``recon match`` make it).
    auth
        How reviewers sign in (:class:`engine.web.auth.Auth`); default: local, the
        operating-system user.
    rules
        The rule set whose adjustment causes a manual match may book to (default: built-in), as
        ``recon match-manual --rules``.
    hosts
        The ``Host`` names requests may carry (default: the loopback names); ``["*"]`` for any.
    idle
        Seconds without a request after which the workspace is closed for other processes.

    Returns
    -------
    starlette.applications.Starlette
    """
    path = Path(workspace)
    if not path.is_file():
        raise ReconError(f"workspace {path} does not exist; create it with "
                         f"`recon ingest --workspace {path} --bank FILE --ledger FILE` and `recon match`")
    auth = auth or Auth.configure()
    rule_set = rules if isinstance(rules, RuleSet) else load_rules(rules)
    access = WorkspaceAccess(path, **({"idle": idle} if idle is not None else {}))
    env = _environment()
    causes = sorted(rule_set.adjustments.accounts)

    def reviewer(request: Request) -> str:
        return request.session.get("user") or auth.local_user or "unknown"

    def page(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
        html = env.get_template(template).render(
            csrf=csrf_token(request.session), user=reviewer(request), auth_mode=auth.mode,
            workspace=str(path), path=request.url.path, **context)
        return HTMLResponse(html, status_code=status_code)

    def error_page(request: Request, exc: Exception, status_code: int) -> HTMLResponse:
        return page(request, "error.html", status_code=status_code, message=str(exc))

    def is_form(request: Request) -> bool:
        return request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")

    def back(request: Request) -> str:
        referer = urlsplit(request.headers.get("referer", ""))
        if referer.netloc and referer.netloc != request.headers.get("host"):
            return "/"
        return _local_path(referer.path + (f"?{referer.query}" if referer.query else ""))

    def reply(request: Request, payload: dict, done: str | None = None) -> Response:
        """JSON for the page's script; for a plain form (no script) the page it came from, or a
        page saying what was done."""
        if not is_form(request):
            return JSONResponse(payload)
        if done is not None:
            return page(request, "done.html", title="Done", message=done, back=back(request))
        return RedirectResponse(back(request), status_code=303)

    def failure(request: Request, exc: Exception) -> Response:
        status = 503 if isinstance(exc, WorkspaceBusyError) else 400
        if is_form(request):
            return error_page(request, exc, status)
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=status)

    async def read_json(request: Request) -> dict:
        body = await request.body()
        if len(body) > _MAX_BODY:
            raise InputError("the request is larger than 1 MiB")
        if not body:
            return {}
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            data: dict = {}
            for key, value in parse_qsl(body.decode("utf-8", "replace")):
                if key in data:  # a repeated field (several checkboxes): a list
                    data[key] = [*(data[key] if isinstance(data[key], list) else [data[key]]), value]
                else:
                    data[key] = value
            return data
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise InputError("the request body is not JSON") from None
        if not isinstance(data, dict):
            raise InputError("the request body is not a JSON object")
        return data

    def text_field(data: dict, name: str, limit: int = 500) -> str | None:
        value = data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InputError(f"{name} must be text")
        value = value.strip()
        if len(value) > limit:
            raise InputError(f"{name} is longer than {limit} characters")
        if any(ord(c) < 32 and c not in "\t" for c in value):
            raise InputError(f"{name} contains control characters")
        return value or None

    def id_list(data: dict, name: str) -> list[str]:
        value = data.get(name) or []
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value):
            raise InputError(f"{name} must be a list of ids")
        if len(value) > _MAX_IDS:
            raise InputError(f"{name}: at most {_MAX_IDS} ids at once")
        return value

    # -- pages ------------------------------------------------------------------------------

    async def queue_view(request: Request) -> Response:
        try:
            filters = queries.QueueFilters.from_query(request.query_params)
            offset = _int(request.query_params.get("offset"), "offset", 0, 10**9, 0)
            limit = _int(request.query_params.get("limit"), "limit", 1, 500, 50)
        except InputError as exc:
            return error_page(request, exc, 400)

        def work(ws):
            return (queries.queue_page(ws.con, filters, offset, limit), queries.state_counts(ws.con),
                    queries.accounts(ws.con))

        try:
            result, counts, accounts = await access.run(work)
        except WorkspaceBusyError as exc:
            return error_page(request, exc, 503)
        return page(request, "queue.html", page_=result, counts=counts, filters=filters, accounts=accounts,
                    sorts=queries.SORTS, types=queries.MATCH_TYPES, statuses=queries.MATCH_STATUSES,
                    states=("any", *counts), limit=limit,
                    link=lambda **changes: "/?" + urlencode({**filters.query(**{
                        k: v for k, v in changes.items() if k not in ("offset", "limit")}),
                        **({"offset": changes["offset"]} if changes.get("offset") else {}),
                        **({"limit": limit} if limit != 50 else {})}),
                    hidden=filters.query())

    async def match_view(request: Request) -> Response:
        match_id = request.path_params["match_id"]
        try:
            row = await access.run(lambda ws: queries.proposal(ws.con, match_id))
        except WorkspaceBusyError as exc:
            return error_page(request, exc, 503)
        if row is None:
            return error_page(request, ReconError(f"no match {match_id} in {path}"), 404)
        return page(request, "match.html", m=row)

    async def manual_view(request: Request) -> Response:
        q = request.query_params
        try:
            bank_text = text_field(dict(q), "bq", 200)
            ledger_text = text_field(dict(q), "lq", 200)
            currency = (text_field(dict(q), "currency", 3) or "").upper() or None
            if currency is not None and not (len(currency) == 3 and currency.isalpha()):
                raise InputError(f"currency {currency!r} is not a three-letter code")
        except InputError as exc:
            return error_page(request, exc, 400)

        def work(ws):
            return (queries.open_lines(ws.con, "bank", bank_text, currency),
                    queries.open_lines(ws.con, "ledger", ledger_text, currency))

        try:
            bank, ledger = await access.run(work)
        except WorkspaceBusyError as exc:
            return error_page(request, exc, 503)
        return page(request, "manual.html", bank=bank, ledger=ledger, causes=causes, bq=bank_text or "",
                    lq=ledger_text or "", currency=currency or "")

    async def writeback_view(request: Request) -> Response:
        from engine import api

        def work(ws):
            return api.status(path), queries.failed_writes(ws.con)

        try:
            status, failed = await access.run(work)
        except ReconError as exc:
            return error_page(request, exc, 503 if isinstance(exc, WorkspaceBusyError) else 400)
        return page(request, "writeback.html", status=status, failed=failed)

    async def report_view(request: Request) -> Response:
        period = request.query_params.get("period", "")
        try:
            from engine import report as report_module
        except ImportError:
            report_module = None
        if report_module is None or not hasattr(report_module, "render_html"):
            return page(request, "report.html", period=period, body=None, missing=True, status_code=501)
        if not period:
            return page(request, "report.html", period="", body=None, missing=False)
        try:
            report_module.parse_period(period)

            def work(ws):
                built = report_module.build_report(ws, period, rules=rule_set)
                return report_module.render_html(built, fragment=True)

            body = await access.run(work)
        except ReconError as exc:
            return error_page(request, exc, 503 if isinstance(exc, WorkspaceBusyError) else 400)
        response = page(request, "report.html", period=period, body=body, missing=False)
        # the report carries its own scoped <style> and coloured swatches; scripts stay forbidden
        response.headers["Content-Security-Policy"] = _SECURITY_HEADERS["Content-Security-Policy"].replace(
            "style-src 'self'", "style-src 'self' 'unsafe-inline'")
        return response

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "workspace": str(path), "exists": path.is_file(), "auth": auth.mode})

    async def login_view(request: Request) -> Response:
        nxt = _local_path(request.query_params.get("next"))
        if not auth.required:
            return RedirectResponse(nxt, status_code=303)
        return page(request, "login.html", next=nxt, problem=None)

    async def login_post(request: Request) -> Response:
        try:
            data = await read_json(request)
        except InputError as exc:
            return error_page(request, exc, 400)
        nxt = _local_path(data.get("next"))
        name = auth.sign_in(str(data.get("name") or ""), str(data.get("secret") or ""))
        if name is None:
            return page(request, "login.html", next=nxt, status_code=401,
                        problem="that name and " + ("token" if auth.mode == "token" else "password") + " do not match")
        request.session.clear()
        request.session["user"] = name
        request.session["csrf"] = secrets.token_urlsafe(32)
        return RedirectResponse(nxt, status_code=303)

    async def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- actions ----------------------------------------------------------------------------

    async def decide(request: Request) -> Response:
        from engine.workspace import review

        match_id = request.path_params["match_id"]
        action = request.path_params["action"]
        if action not in ("accept", "reject", "unmatch"):
            return JSONResponse({"ok": False, "error": f"no action {action!r}: accept, reject or unmatch"},
                                status_code=404)
        by = reviewer(request)
        try:
            data = await read_json(request)
            comment = text_field(data, "comment")
            # what api.accept / api.reject / api.unmatch run, on the workspace this app holds
            # open (opening it again would cost a tenth of the 200 ms a decision may take)
            if action in ("accept", "reject"):
                call = lambda ws: review.decide(ws, action, [match_id], comment=comment, by=by)  # noqa: E731
            else:
                reason = comment or f"undone on the review page by {by}"
                call = lambda ws: review.unmatch(ws, match_id, reason, by=by)  # noqa: E731
            report = await access.run(call)
        except ReconError as exc:
            return failure(request, exc)
        state = {"accept": "accepted", "reject": "rejected", "unmatch": "reversed"}[action]
        return reply(request, {"ok": True, "match_id": match_id, "action": action, "state": state, "by": report.by,
                               "seq": report.seqs[0] if report.seqs else None, "notes": report.notes})

    async def bulk_accept(request: Request) -> Response:
        from engine import api

        by = reviewer(request)
        try:
            data = await read_json(request)
            filters = queries.QueueFilters.from_query({k: v for k, v in data.items() if isinstance(v, str)})
            if filters.state not in ("proposed", "failed"):
                raise InputError(f"bulk accept applies to proposed (or failed) matches, not {filters.state}")
            expected = _int(str(data.get("count", "")), "count", 0, 10**9, None)
            comment = text_field(data, "comment")

            def work(ws):
                ids = queries.queue_ids(ws.con, filters)
                if expected is not None and len(ids) != expected:
                    raise InputError(f"the filters now pick {len(ids)} matches, not the {expected} shown: "
                                     "reload the queue and look again")
                if not ids:
                    raise InputError("no match passes these filters")
                return api.accept(path, ids, comment=comment, by=by)

            report = await access.run(work)
        except ReconError as exc:
            return failure(request, exc)
        return reply(request, {"ok": True, "accepted": report.count, "by": report.by},
                     done=f"accepted {report.count} matches (by {report.by})")

    async def manual_post(request: Request) -> Response:
        from engine import api

        by = reviewer(request)
        try:
            data = await read_json(request)
            bank, ledger = id_list(data, "bank"), id_list(data, "ledger")
            adjust = text_field(data, "adjust", 60)
            if adjust is not None and adjust not in causes:
                raise InputError(f"adjustment cause {adjust!r} is not one of {', '.join(causes)}")
            comment = text_field(data, "comment")
            report = await access.run(lambda ws: api.match_manual(path, bank=bank, ledger=ledger, adjust=adjust,
                                                                  comment=comment, by=by, rules=rule_set))
        except ReconError as exc:
            return failure(request, exc)
        if is_form(request):
            return RedirectResponse(f"/matches/{report.match_ids[0]}", status_code=303)
        return reply(request, {"ok": True, "match_id": report.match_ids[0], "by": report.by,
                               "url": f"/matches/{report.match_ids[0]}"})

    async def writeback_post(request: Request) -> Response:
        from engine import api

        try:
            data = await read_json(request)
            target = text_field(data, "to", 2000)
            if not target:
                raise InputError("give the write-back target (dir:PATH, postgresql://..., duckdb:///..., xero+https://...)")
            dry_run = data.get("dry_run") in (True, "1", "true", "on")
            report = await access.run(lambda ws: api.writeback(path, target, dry_run=dry_run))
        except ReconError as exc:
            return failure(request, exc)
        return reply(request, {"ok": report.ok, "summary": report.summary(), "written": report.written,
                               "failures": len(report.failures), "dry_run": dry_run}, done=report.summary())

    routes = [
        Route("/", queue_view),
        Route("/matches/{match_id}", match_view),
        Route("/manual", manual_view),
        Route("/writeback", writeback_view),
        Route("/report", report_view),
        Route("/healthz", healthz),
        Route("/login", login_view, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/matches/{match_id}/{action:str}", decide, methods=["POST"]),
        Route("/api/bulk-accept", bulk_accept, methods=["POST"]),
        Route("/api/manual", manual_post, methods=["POST"]),
        Route("/api/writeback", writeback_post, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("engine.web", "static")]), name="static"),
    ]
    allowed = hosts or ["127.0.0.1", "localhost", "::1", "[::1]"]
    middleware = [
        Middleware(_Timing),
        Middleware(TrustedHostMiddleware, allowed_hosts=allowed),
        Middleware(SessionMiddleware, secret_key=secrets.token_urlsafe(32), session_cookie="recon_session",
                   same_site="strict", https_only=False, max_age=12 * 3600),
        Middleware(_Guard, auth=auth),
    ]

    async def not_found(request: Request, exc) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"ok": False, "error": f"no such action {request.url.path}"}, status_code=404)
        return error_page(request, ReconError(f"no page {request.url.path}"), 404)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            access.close()

    app = Starlette(routes=routes, middleware=middleware, exception_handlers={404: not_found}, lifespan=lifespan)
    app.state.access = access
    app.state.auth = auth
    return app


def _int(text: str | None, what: str, low: int, high: int, default: int | None) -> int | None:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{what} {text!r} is not a whole number") from None
    if not low <= value <= high:
        raise InputError(f"{what} {value} is not between {low} and {high}")
    return value
