"""Adapters (the last stage): write accepted matches to an accounting platform's REST API.

``xero+https://api.xero.com`` (or ``xero+http://HOST:PORT`` for a local stand-in) writes
through Xero's Accounting API: payments applied to invoices, batch payments, manual journals
for the adjustments, and reversals as deleted payments plus a reversing journal (what goes
where is :mod:`engine.adapters.rest_mapping`). Every request goes through the workspace's
durable outbox (:mod:`engine.adapters.outbox`) and carries an idempotency key, so a crash or a
lost connection mid-batch neither loses nor doubles a write; the HTTP side (OAuth 2.0 token
rotation, rate limits, retries) is :mod:`engine.adapters.rest_client`.

Credentials and settings come from the environment (``RECON_XERO_*``) or a TOML config file
(``RECON_XERO_CONFIG``, else ``xero.toml`` in the workspace directory); the environment wins.
See :class:`XeroSettings` and the README's "Xero / REST write-back" section.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from engine.adapters.base import WriteItem, WriteResult
from engine.adapters.outbox import OUTBOX_FILE, ElementState, Outbox, OutboxElement, PendingRequest

try:
    from engine.adapters.rest_client import ApiClient, ClientLimits, TokenManager, TokenStore
except ModuleNotFoundError as missing:  # the `xero` extra is not installed
    _MISSING_LIBRARY: str | None = missing.name
else:
    _MISSING_LIBRARY = None
from engine.adapters.rest_mapping import (
    Element,
    MappingError,
    XeroMapping,
    dumps_exact,
    loads_exact,
)
from models.errors import InputError, TransientAdapterError

__all__ = ["open_adapter", "RestAdapter", "XeroSettings", "load_settings", "TOKEN_FILE", "CONFIG_FILE"]

log = logging.getLogger("engine.adapters.rest")

#: the rotated tokens, beside the workspace (mode 0600)
TOKEN_FILE = "xero-token.json"
#: the config file looked for in the workspace directory when RECON_XERO_CONFIG is not set
CONFIG_FILE = "xero.toml"
_XERO_TOKEN_URL = "https://identity.xero.com/connect/token"
#: items planned and recorded at a time (their requests go out while the next are planned)
_PLAN_SLICE = 50


class XeroSettings(BaseModel):
    """Credentials and limits of a Xero target (config file keys; the environment variable of
    each is ``RECON_XERO_`` + the key in capitals)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str
    client_secret: SecretStr
    tenant_id: str
    bank_account: str = Field(description="Code of the Xero bank account the payments go through")
    refresh_token: SecretStr | None = None
    token_url: str | None = None
    base_currency: str | None = None
    calls_per_minute: int = Field(60, ge=1)
    concurrent: int = Field(5, ge=1)
    batch_size: int = Field(50, ge=1)
    max_attempts: int = Field(8, ge=1)
    timeout: float = Field(30.0, gt=0)
    time_scale: float = Field(1.0, gt=0)
    refresh_leeway: float = Field(60.0, ge=0)


def load_settings(workspace_dir: Path, environ: dict[str, str] | None = None) -> XeroSettings:
    """Read the settings: the config file, then ``RECON_XERO_*`` variables over it.

    Raises
    ------
    InputError
        A setting is missing or invalid (every problem is listed; secrets are never shown).
    """
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    config = environ.get("RECON_XERO_CONFIG")
    path = Path(config) if config else workspace_dir / CONFIG_FILE
    if config or path.exists():
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise InputError(f"Xero config file {path}: {error}") from None
        values.update(document.get("xero", document))
    for name in XeroSettings.model_fields:
        variable = f"RECON_XERO_{name.upper()}"
        if environ.get(variable):
            values[name] = environ[variable]
    try:
        return XeroSettings(**values)
    except ValidationError as error:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors()]
        raise InputError(
            f"Xero settings ({path if path.exists() else 'environment'}): " + "; ".join(problems)
            + " (set RECON_XERO_CLIENT_ID, RECON_XERO_CLIENT_SECRET, RECON_XERO_REFRESH_TOKEN, "
            "RECON_XERO_TENANT_ID, RECON_XERO_BANK_ACCOUNT, or write them in the config file)") from None


def open_adapter(target: str, *, workspace_dir: Path) -> RestAdapter:
    """Open ``xero+https://HOST[:PORT]`` or ``xero+http://HOST:PORT``.

    Raises
    ------
    InputError
        The target is not a Xero URL, or the settings are incomplete.
    TerminalAdapterError
        No refresh token anywhere (neither given nor kept from an earlier run).
    """
    if _MISSING_LIBRARY:
        raise InputError(f"the Xero target needs the `xero` extra ({_MISSING_LIBRARY} is not installed): "
                         "pip install 'recon[xero]'")
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    if scheme not in ("xero+http", "xero+https") or not parts.hostname:
        raise InputError(f"write-back target {target!r}: expected xero+https://HOST or xero+http://HOST:PORT")
    http_scheme = scheme.split("+", 1)[1]
    root = f"{http_scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    settings = load_settings(Path(workspace_dir))
    token_url = settings.token_url or (
        _XERO_TOKEN_URL if parts.hostname.endswith("xero.com") else f"{root}/connect/token")
    return RestAdapter(
        base_url=f"{root}/api.xro/2.0",
        token_url=token_url,
        settings=settings,
        workspace_dir=Path(workspace_dir),
        target=f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}#{settings.tenant_id}",
    )


@dataclass(slots=True)
class _ItemRun:
    """Bookkeeping of one item through one write-back call."""

    item: WriteItem
    parts: list[str]
    done_before: bool = True
    failure: str = ""


class RestAdapter:
    """The Xero write-back target (see the module docstring).

    ``write`` and ``reverse`` first send again whatever an earlier call recorded and did not
    hear back about, then plan, record and send the new items' requests.
    """

    name = "xero"
    capabilities = frozenset({"payments", "journals", "reversal"})

    def __init__(self, *, base_url: str, token_url: str, settings: XeroSettings, workspace_dir: Path,
                 target: str):
        self.base_url = base_url
        self.settings = settings
        self.target = target
        self.limits = ClientLimits(
            calls_per_minute=settings.calls_per_minute, concurrent=settings.concurrent,
            max_attempts=settings.max_attempts, timeout=settings.timeout, time_scale=settings.time_scale,
            refresh_leeway=settings.refresh_leeway,
        )
        self.mapping = XeroMapping(settings.bank_account, settings.base_currency)
        self.outbox = Outbox(workspace_dir / OUTBOX_FILE, target)
        seed = settings.refresh_token.get_secret_value() if settings.refresh_token else None
        self.tokens = TokenManager(token_url, settings.client_id, settings.client_secret.get_secret_value(),
                                   TokenStore(workspace_dir / TOKEN_FILE), seed, self.limits)
        self.calls = 0
        self._tls = None

    # -- the Adapter protocol --------------------------------------------------------------
    def write(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Apply each item's payments and post its journal; one result per item, in order."""
        return self._run(items, "write")

    def reverse(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Delete each item's match's payments and post the reversing journal."""
        return self._run(items, "reverse")

    def close(self) -> None:
        self.outbox.close()

    # -- one call --------------------------------------------------------------------------
    def _run(self, items: Sequence[WriteItem], action: str) -> list[WriteResult]:
        wrong = [item.key for item in items if item.action != action]
        if wrong:
            raise InputError(f"{action}() was given items of another action: {', '.join(wrong[:5])}")
        unique = list({item.key: item for item in items}.values())
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            results = asyncio.run(self._run_async(unique))
        else:  # called from async code: run on a loop of our own
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                results = pool.submit(asyncio.run, self._run_async(unique)).result()
        by_key = {result.key: result for result in results}
        return [by_key[item.key] for item in items]

    async def _run_async(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        client = ApiClient(self.base_url, self.tokens, self.settings.tenant_id, self.limits, self._tls)
        self._tls = client.tls  # built once (loading the CA bundle takes a tenth of a second)
        async with client:
            try:
                resumed = self.outbox.pending()
                answered_now = {request.request_id for request in resumed}
                if resumed:
                    log.info("xero: sending again %d request(s) an earlier write-back did not hear back about",
                             len(resumed))
                    await self._settle([asyncio.create_task(self._send(client, r)) for r in resumed])
                runs: list[_ItemRun] = []
                waiting: dict[str, list[tuple[Element, OutboxElement, int]]] = {}
                sending: list[asyncio.Task] = []
                # items are planned and recorded a slice at a time, and each slice's requests go
                # out while the next is planned: the first calls do not wait for the whole batch
                for start in range(0, len(items), _PLAN_SLICE):
                    planned, new = self._plan(items[start:start + _PLAN_SLICE], answered_now)
                    runs.extend(planned)
                    for element, recorded, attempt in new:
                        waiting.setdefault(element.kind, []).append((element, recorded, attempt))
                    last = start + _PLAN_SLICE >= len(items)
                    recorded_requests = self._record(waiting, flush=last)
                    sending.extend(asyncio.create_task(self._send(client, r)) for r in recorded_requests)
                    await asyncio.sleep(0)
                await self._settle(sending)
            finally:
                self.calls += client.calls
        return self._results(runs)

    def _plan(self, items: Sequence[WriteItem], resent: set[int]) -> tuple[list[_ItemRun], list[tuple[Element, OutboxElement, int]]]:
        """Each item's elements, and those still to record (new, or failed before); ``resent``:
        the requests this call sent again (an item they finished is written now, not before)."""
        states = self.outbox.states([item.key for item in items])
        runs: list[_ItemRun] = []
        new: list[tuple[Element, OutboxElement, int]] = []
        for item in items:
            known = states.get(item.key, {})
            try:
                if item.action == "write":
                    elements = self.mapping.plan_write(item)
                else:
                    written = [(part, loads_exact(payload), ids)
                               for part, payload, ids in self.outbox.written_parts(item.match_id)]
                    elements = known_reverse(known) or self.mapping.plan_reverse(item, written)
            except MappingError as error:
                runs.append(_ItemRun(item, [], done_before=False, failure=str(error)))
                continue
            run = _ItemRun(item, [element.part for element in elements])
            for element in elements:
                state = known.get(element.part)
                if state is not None and state.request_id in resent:
                    run.done_before = False
                if state is not None and state.state != "failed":
                    continue  # done, or pending and sent again above
                run.done_before = False
                if state is not None:  # failed before: the same element again, a new attempt
                    element = Element(element.part, element.kind, loads_exact(state.payload))
                payload = state.payload if state is not None else dumps_exact(element.payload)
                attempt = state.attempt + 1 if state is not None else 0
                new.append((element, OutboxElement(item.key, item.match_id, item.action, element.part, payload), attempt))
            runs.append(run)
        return runs, new

    def _record(self, waiting: dict[str, list[tuple[Element, OutboxElement, int]]], flush: bool) -> list[PendingRequest]:
        """Record the full requests of the waiting elements (all of them when ``flush``); the
        rest wait for the next slice, so slices do not leave half-empty requests behind."""
        requests = []
        for kind, elements in waiting.items():
            size = self.mapping.batch_limit(kind, self.settings.batch_size)
            cut = len(elements) if flush else len(elements) - len(elements) % size
            for start in range(0, cut, size):
                chunk = elements[start:min(start + size, cut)]
                spec = self.mapping.request(kind, [element.payload for element, _, _ in chunk])
                requests.append((kind, spec.method, spec.path, spec.params, dumps_exact(spec.body),
                                 [(recorded, attempt) for _, recorded, attempt in chunk]))
            del elements[:cut]
        return self.outbox.record(requests) if requests else []

    async def _settle(self, tasks: list[asyncio.Task]) -> None:
        """Wait for every request; a terminal error (the token refused) stops the call, a
        transient one leaves its request pending for the next write-back."""
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, TransientAdapterError):
                raise result

    async def _send(self, client: ApiClient, request: PendingRequest) -> None:
        headers, params = self.mapping.idempotency(request.idempotency_key)
        try:
            answer = await client.send(request.method, request.path, {**request.params, **params},
                                       request.body, headers)
        except TransientAdapterError as error:
            log.warning("xero: request %d left pending: %s", request.request_id, error)
            raise
        outcomes = self.mapping.outcomes(request.kind, len(request.elements), answer.status, answer.body)
        self.outbox.answer(request.request_id, answer.status,
                           [(o.state, o.external_ids, o.reason) for o in outcomes])

    def _results(self, runs: list[_ItemRun]) -> list[WriteResult]:
        states = self.outbox.states([run.item.key for run in runs])
        results = []
        for run in runs:
            key = run.item.key
            if run.failure:
                results.append(WriteResult(key, "failed", reason=run.failure, retryable=False))
                continue
            known = states.get(key, {})
            parts = [known[part] for part in run.parts if part in known]
            ids = _external_ids(parts)
            failed = [p for p in parts if p.state == "failed"]
            pending = [p for p in parts if p.state == "pending"]
            if failed:
                results.append(WriteResult(key, "failed", reason="; ".join(f"{p.part}: {p.reason}" for p in failed),
                                           retryable=False, external_ids=ids))
            elif pending:
                results.append(WriteResult(
                    key, "failed", retryable=True, external_ids=ids,
                    reason=f"{len(pending)} request element(s) sent without a final answer (server errors, "
                           "rate limits or the network); the next write-back sends them again with the same "
                           "idempotency key"))
            elif not run.parts and run.item.action == "reverse":
                results.append(WriteResult(key, "already", reason=f"nothing of match {run.item.match_id} was "
                                                                   "written to this target: nothing to reverse"))
            else:
                results.append(WriteResult(key, "already" if run.done_before else "written", external_ids=ids))
        return results


def known_reverse(known: dict[str, ElementState]) -> list[Element]:
    """The elements an earlier call already planned for a reversal (so a rerun reverses what
    it planned then, not what is left now that the payments are deleted)."""
    kinds = {"delete:payment:": "delete_payment", "delete:batch_payment:": "delete_batch_payment",
             "journal:": "manual_journals"}
    elements = []
    for part, state in known.items():
        kind = next((k for prefix, k in kinds.items() if part.startswith(prefix)), None)
        if kind:
            elements.append(Element(part, kind, loads_exact(state.payload)))
    return elements


def _external_ids(parts: list[ElementState]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for state in parts:
        for name, value in state.external_ids.items():
            ids[f"{state.part}:{name}"] = value
    return ids
