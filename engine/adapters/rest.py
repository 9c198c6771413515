"""Adapters (the last stage): write accepted matches to an accounting platform's REST API.

``xero+https://api.xero.com`` (or ``xero+http://HOST:PORT`` for a local stand-in) writes
through Xero's Accounting API: payments applied to invoices, batch payments, manual journals
for the adjustments, and reversals as deleted payments plus a reversing journal.
``qbo+https://quickbooks.api.intuit.com`` (``qbo+http://HOST:PORT``) writes through QuickBooks
Online's: a payment (bill payment) linked to the invoices (bills) it pays, journal entries,
reversals as deleted payments (after a read shows them unchanged) plus reversing journal
entries. What goes where is :mod:`engine.adapters.rest_mapping`. Every request goes through the
workspace's durable outbox (:mod:`engine.adapters.outbox`) and carries an idempotency key
(Xero's ``Idempotency-Key`` header, QuickBooks' ``requestid``), so a crash or a lost connection
mid-batch neither loses nor doubles a write; the HTTP side (OAuth 2.0 token rotation, rate
limits, retries) is :mod:`engine.adapters.rest_client`.

Credentials and settings come from the environment (``RECON_XERO_*``, ``RECON_QBO_*``) or a
TOML config file (``RECON_XERO_CONFIG`` / ``RECON_QBO_CONFIG``, else ``xero.toml`` / ``qbo.toml``
in the workspace directory); the environment wins. See :class:`XeroSettings`,
:class:`QboSettings` and the README's "Xero / REST write-back" section.
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

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from engine.adapters.base import WriteItem, WriteResult
from engine.adapters.outbox import OUTBOX_FILE, ElementState, Outbox, OutboxElement, PendingRequest

try:
    from engine.adapters.rest_client import ApiClient, ClientLimits, TokenManager, TokenStore
except ModuleNotFoundError as missing:  # the `xero` extra is not installed
    _MISSING_LIBRARY: str | None = missing.name
else:
    _MISSING_LIBRARY = None
from engine.adapters.rest_mapping import (
    ConflictError,
    Element,
    MappingError,
    PlatformMapping,
    QboMapping,
    XeroMapping,
    dumps_exact,
    loads_exact,
)
from models.errors import InputError, TransientAdapterError

__all__ = [
    "open_adapter", "RestAdapter", "XeroSettings", "QboSettings", "load_settings", "TOKEN_FILE", "CONFIG_FILE",
    "QBO_TOKEN_FILE", "QBO_CONFIG_FILE", "CONFLICT",
]

log = logging.getLogger("engine.adapters.rest")

#: the rotated tokens, beside the workspace (mode 0600)
TOKEN_FILE = "xero-token.json"
QBO_TOKEN_FILE = "qbo-token.json"
#: the config file looked for in the workspace directory when RECON_XERO_CONFIG is not set
CONFIG_FILE = "xero.toml"
QBO_CONFIG_FILE = "qbo.toml"
_XERO_TOKEN_URL = "https://identity.xero.com/connect/token"
_INTUIT_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
#: items planned and recorded at a time (their requests go out while the next are planned)
_PLAN_SLICE = 50
#: how the outbox records an element the platform refused as changed by someone else (its
#: answer table knows done and failed only): failed, with this at the head of the reason
CONFLICT = "conflict: "


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


class QboSettings(BaseModel):
    """Credentials and limits of a QuickBooks Online target (config file keys under ``[qbo]``;
    the environment variable of each is ``RECON_QBO_`` + the key in capitals). The limits are
    QuickBooks' documented ones: 500 requests a minute per realm (company), 10 at a time."""

    model_config = ConfigDict(extra="forbid")

    client_id: str
    client_secret: SecretStr
    realm_id: str = Field(description="The QuickBooks company's realm id (in every request's path)")
    bank_account: str = Field(description="Number (or name) of the bank account the payments go through")
    refresh_token: SecretStr | None = None
    token_url: str | None = None
    accounts: dict[str, str] = Field(default_factory=dict,
                                     description="account number -> QuickBooks account Id, for accounts without a number")
    minor_version: str = "75"
    calls_per_minute: int = Field(500, ge=1)
    concurrent: int = Field(10, ge=1)
    max_attempts: int = Field(8, ge=1)
    timeout: float = Field(30.0, gt=0)
    time_scale: float = Field(1.0, gt=0)
    refresh_leeway: float = Field(60.0, ge=0)

    @field_validator("accounts", mode="before")
    @classmethod
    def _accounts_from_text(cls, value: Any) -> Any:
        """``"6800=87,1100=84"`` (the environment's form) as a table."""
        if isinstance(value, str):
            pairs = [pair.split("=", 1) for pair in value.split(",") if pair.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("write the accounts as NUMBER=ID pairs separated by commas, e.g. 6800=87,1100=84")
            return {number.strip(): account.strip() for number, account in pairs}
        return value


@dataclass(frozen=True, slots=True)
class _Platform:
    """What tells the platforms apart outside their payloads."""

    name: str
    label: str
    prefix: str  # of the environment variables
    section: str  # of the config file
    config_file: str
    token_file: str
    settings: type[BaseModel]
    required: str  # the variables to set, for the message when some are missing


_XERO = _Platform("xero", "Xero", "RECON_XERO_", "xero", CONFIG_FILE, TOKEN_FILE, XeroSettings,
                  "RECON_XERO_CLIENT_ID, RECON_XERO_CLIENT_SECRET, RECON_XERO_REFRESH_TOKEN, "
                  "RECON_XERO_TENANT_ID, RECON_XERO_BANK_ACCOUNT")
_QBO = _Platform("qbo", "QuickBooks Online", "RECON_QBO_", "qbo", QBO_CONFIG_FILE, QBO_TOKEN_FILE, QboSettings,
                 "RECON_QBO_CLIENT_ID, RECON_QBO_CLIENT_SECRET, RECON_QBO_REFRESH_TOKEN, "
                 "RECON_QBO_REALM_ID, RECON_QBO_BANK_ACCOUNT")
_PLATFORMS = {"xero": _XERO, "qbo": _QBO}


def load_settings(workspace_dir: Path, environ: dict[str, str] | None = None, platform: str = "xero") -> Any:
    """Read the settings of ``platform`` (``xero`` or ``qbo``): the config file, then the
    ``RECON_XERO_*`` (``RECON_QBO_*``) variables over it.

    Returns
    -------
    XeroSettings or QboSettings

    Raises
    ------
    InputError
        A setting is missing or invalid (every problem is listed; secrets are never shown).
    """
    spec = _PLATFORMS[platform]
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    config = environ.get(f"{spec.prefix}CONFIG")
    path = Path(config) if config else workspace_dir / spec.config_file
    if config or path.exists():
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise InputError(f"{spec.label} config file {path}: {error}") from None
        values.update(document.get(spec.section, document))
    for name in spec.settings.model_fields:
        variable = f"{spec.prefix}{name.upper()}"
        if environ.get(variable):
            values[name] = environ[variable]
    try:
        return spec.settings(**values)
    except ValidationError as error:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors()]
        raise InputError(
            f"{spec.label} settings ({path if path.exists() else 'environment'}): " + "; ".join(problems)
            + f" (set {spec.required}, or write them in the config file)") from None


def open_adapter(target: str, *, workspace_dir: Path) -> RestAdapter:
    """Open ``xero+https://HOST[:PORT]``, ``qbo+https://HOST[:PORT]`` or their ``+http``
    forms (a local stand-in).

    Raises
    ------
    InputError
        The target is not a Xero or QuickBooks URL, or the settings are incomplete.
    TerminalAdapterError
        No refresh token anywhere (neither given nor kept from an earlier run).
    """
    if _MISSING_LIBRARY:
        raise InputError(f"the Xero and QuickBooks targets need the `xero` extra ({_MISSING_LIBRARY} is not "
                         "installed): pip install 'recon[xero]'")
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    platform, _, http_scheme = scheme.partition("+")
    if platform not in _PLATFORMS or http_scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"write-back target {target!r}: expected xero+https://HOST, qbo+https://HOST "
                         "or their +http://HOST:PORT forms")
    root = f"{http_scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    workspace_dir = Path(workspace_dir)
    settings = load_settings(workspace_dir, platform=platform)
    where = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    if platform == "xero":
        return RestAdapter(
            base_url=f"{root}/api.xro/2.0",
            token_url=settings.token_url or (
                _XERO_TOKEN_URL if parts.hostname.endswith("xero.com") else f"{root}/connect/token"),
            settings=settings, workspace_dir=workspace_dir, target=f"{where}#{settings.tenant_id}",
            platform=_XERO, mapping=XeroMapping(settings.bank_account, settings.base_currency),
            tenant=("Xero-tenant-id", settings.tenant_id),
        )
    return RestAdapter(
        base_url=f"{root}/v3/company/{settings.realm_id}",
        token_url=settings.token_url or (
            _INTUIT_TOKEN_URL if parts.hostname.endswith("intuit.com") else f"{root}/oauth2/v1/tokens/bearer"),
        settings=settings, workspace_dir=workspace_dir, target=f"{where}#{settings.realm_id}",
        platform=_QBO, mapping=QboMapping(settings.bank_account, settings.accounts, settings.minor_version),
        tenant=None,
    )


@dataclass(slots=True)
class _ItemRun:
    """Bookkeeping of one item through one write-back call."""

    item: WriteItem
    parts: list[str]
    done_before: bool = True
    failure: str = ""
    conflict: bool = False


class RestAdapter:
    """The Xero or QuickBooks Online write-back target (see the module docstring).

    ``write`` and ``reverse`` first send again whatever an earlier call recorded and did not
    hear back about, then look up what the platform needs (QuickBooks: its ids), plan, record
    and send the new items' requests.
    """

    capabilities = frozenset({"payments", "journals", "reversal"})

    def __init__(self, *, base_url: str, token_url: str, settings: XeroSettings | QboSettings, workspace_dir: Path,
                 target: str, platform: _Platform = _XERO, mapping: PlatformMapping | None = None,
                 tenant: tuple[str, str] | None = None):
        self.name = platform.name
        self.base_url = base_url
        self.settings = settings
        self.target = target
        self.limits = ClientLimits(
            calls_per_minute=settings.calls_per_minute, concurrent=settings.concurrent,
            max_attempts=settings.max_attempts, timeout=settings.timeout, time_scale=settings.time_scale,
            refresh_leeway=settings.refresh_leeway,
        )
        self.mapping = mapping or XeroMapping(settings.bank_account, settings.base_currency)
        self.tenant = tenant if tenant is not None or mapping is not None else ("Xero-tenant-id", settings.tenant_id)
        self.outbox = Outbox(workspace_dir / OUTBOX_FILE, target)
        seed = settings.refresh_token.get_secret_value() if settings.refresh_token else None
        variable = f"{platform.prefix}REFRESH_TOKEN"
        self.tokens = TokenManager(token_url, settings.client_id, settings.client_secret.get_secret_value(),
                                   TokenStore(workspace_dir / platform.token_file, variable), seed, self.limits,
                                   variable)
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
        client = ApiClient(self.base_url, self.tokens, self.tenant[1] if self.tenant else None, self.limits,
                           self._tls, tenant_header=self.tenant[0] if self.tenant else None, label=self.name)
        self._tls = client.tls  # built once (loading the CA bundle takes a tenth of a second)
        async with client:
            try:
                resumed = self.outbox.pending()
                answered_now = {request.request_id for request in resumed}
                if resumed:
                    log.info("%s: sending again %d request(s) an earlier write-back did not hear back about",
                             self.name, len(resumed))
                    await self._settle([asyncio.create_task(self._send(client, r)) for r in resumed])
                runs: list[_ItemRun] = []
                waiting: dict[str, list[tuple[Element, OutboxElement, int]]] = {}
                sending: list[asyncio.Task] = []
                # items are planned and recorded a slice at a time, and each slice's requests go
                # out while the next is planned: the first calls do not wait for the whole batch
                for start in range(0, len(items), _PLAN_SLICE):
                    if self.mapping.needs_lookup:
                        try:
                            await self._prepare(client, items[start:start + _PLAN_SLICE])
                        except BaseException:
                            # the look-up failed: hear the answers to what is on its way first
                            await asyncio.gather(*sending, return_exceptions=True)
                            raise
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

    async def _prepare(self, client: ApiClient, items: Sequence[WriteItem]) -> None:
        """Let the mapping look up what the items new to the outbox name (an item recorded
        before is planned from its record: its requests go again as they were)."""
        states = self.outbox.states([item.key for item in items])
        fresh = [item for item in items if item.key not in states]
        writes = [item for item in fresh if item.action == "write"]
        reverses = [(item, [(part, loads_exact(payload), ids)
                            for part, payload, ids in self.outbox.written_parts(item.match_id)])
                    for item in fresh if item.action == "reverse"]

        async def lookup(path: str, params: dict[str, str]) -> tuple[int, Any]:
            answer = await client.send("GET", path, params, "", {})
            return answer.status, answer.body

        if writes or reverses:
            await self.mapping.prepare(lookup, writes, reverses)

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
                    # a platform looked up before planning: an item recorded before is planned
                    # from its record (its parts were recorded together, see _record)
                    elements = ((self.mapping.needs_lookup and known_elements(known, self.mapping))
                                or self.mapping.plan_write(item))
                else:
                    written = [(part, loads_exact(payload), ids)
                               for part, payload, ids in self.outbox.written_parts(item.match_id)]
                    elements = known_elements(known, self.mapping) or self.mapping.plan_reverse(item, written)
            except MappingError as error:
                runs.append(_ItemRun(item, [], done_before=False, failure=str(error),
                                     conflict=isinstance(error, ConflictError)))
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
            size = self.mapping.batch_limit(kind, getattr(self.settings, "batch_size", 1))
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
            log.warning("%s: request %d left pending: %s", self.name, request.request_id, error)
            raise
        outcomes = self.mapping.outcomes(request.kind, len(request.elements), answer.status, answer.body)
        self.outbox.answer(request.request_id, answer.status,
                           [("failed", o.external_ids, CONFLICT + o.reason) if o.state == "conflict"
                            else (o.state, o.external_ids, o.reason) for o in outcomes])

    def _results(self, runs: list[_ItemRun]) -> list[WriteResult]:
        states = self.outbox.states([run.item.key for run in runs])
        results = []
        for run in runs:
            key = run.item.key
            if run.failure:
                results.append(WriteResult(key, "conflict" if run.conflict else "failed", reason=run.failure,
                                           retryable=False))
                continue
            known = states.get(key, {})
            parts = [known[part] for part in run.parts if part in known]
            ids = _external_ids(parts)
            failed = [p for p in parts if p.state == "failed"]
            pending = [p for p in parts if p.state == "pending"]
            if failed:
                conflict = all(p.reason.startswith(CONFLICT) for p in failed)
                results.append(WriteResult(key, "conflict" if conflict else "failed",
                                           reason="; ".join(f"{p.part}: {p.reason.removeprefix(CONFLICT)}" for p in failed),
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


def known_elements(known: dict[str, ElementState], mapping: PlatformMapping) -> list[Element]:
    """The elements an earlier call already planned for an item (so a rerun sends what it
    planned then: a reversal reverses what it planned before the payments were deleted, a
    QuickBooks write keeps the ids it looked up)."""
    elements = []
    for part, state in known.items():
        kind = mapping.kind_of(part)
        if kind:
            elements.append(Element(part, kind, loads_exact(state.payload)))
    return elements


def _external_ids(parts: list[ElementState]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for state in parts:
        for name, value in state.external_ids.items():
            ids[f"{state.part}:{name}"] = value
    return ids
