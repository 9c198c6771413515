"""Adapters (the last stage): the HTTP client of a REST write-back target.

- :class:`TokenStore` / :class:`TokenManager`: OAuth 2.0 refresh-token grant. The access token
  is refreshed before it expires (and once more on a 401); the platform rotates the refresh
  token on every refresh, and the new one is written to a 0600 file at once, before the new
  access token is used, so a crash cannot leave recon holding a refresh token the platform
  has already retired. Tokens never reach a log line or an error message.
- :class:`SlidingWindowLimiter`: at most N calls in any window (Xero: 60 a rolling minute),
  and a pause for everyone when the platform answers 429 with ``Retry-After``.
- :class:`ApiClient`: httpx with at most K requests in flight (Xero: 5), tenacity retries with
  exponential backoff and jitter on 5xx, 429 and network errors or timeouts; a terminal
  answer (4xx) is returned for the caller to record, never retried.

All platform times (the rate window, ``Retry-After``, token lifetimes, backoff) are multiplied
by ``time_scale`` (1.0 against the real platform) so the tests can run a fake platform on a
faster clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import ssl
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import certifi
import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from models.errors import TerminalAdapterError, TransientAdapterError

__all__ = ["TokenStore", "TokenManager", "SlidingWindowLimiter", "ApiClient", "ClientLimits", "Answer"]

log = logging.getLogger("engine.adapters.rest")


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """The client-side limits (defaults: Xero's documented ones)."""

    calls_per_minute: int = 60
    concurrent: int = 5
    max_attempts: int = 8
    timeout: float = 30.0
    time_scale: float = 1.0
    #: refresh this many (platform) seconds before the access token expires
    refresh_leeway: float = 60.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0


@dataclass(frozen=True, slots=True)
class Answer:
    """The platform's final answer to one request (after retries)."""

    status: int
    body: Any


class TokenStore:
    """The rotating tokens, in a JSON file readable by its owner only (0600).

    The file remembers a digest of the refresh token it was seeded from (the environment's
    or the config file's), so a new authorisation given there (a different token) wins over
    the rotated chain kept here, and the old chain is not used again.
    """

    def __init__(self, path: str | Path, variable: str = "RECON_XERO_REFRESH_TOKEN"):
        self.path = Path(path)
        self.variable = variable

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def load(self, seed_refresh_token: str | None) -> dict[str, Any]:
        """The tokens to start from: the stored chain, or the seed when it is new.

        Raises
        ------
        TerminalAdapterError
            Neither a stored refresh token nor a seed.
        """
        stored: dict[str, Any] = {}
        if self.path.exists():
            try:
                stored = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise TerminalAdapterError(f"token file {self.path} cannot be read ({type(error).__name__}); "
                                           f"remove it and set {self.variable} again") from None
        if seed_refresh_token and stored.get("seed_digest") != self._digest(seed_refresh_token):
            return {"refresh_token": seed_refresh_token, "seed_digest": self._digest(seed_refresh_token)}
        if stored.get("refresh_token"):
            return stored
        raise TerminalAdapterError(
            f"no refresh token: set {self.variable} (or refresh_token in the config file) "
            "to the one from your app's authorisation")

    def save(self, tokens: dict[str, Any]) -> None:
        """Write the tokens at once: a temporary file created 0600, fsynced, renamed over."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(tokens, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        os.chmod(self.path, 0o600)


class TokenManager:
    """Access tokens from the refresh-token grant, refreshed by one caller at a time.

    Parameters
    ----------
    token_url
        The token endpoint (Xero: ``https://identity.xero.com/connect/token``).
    client_id, client_secret
        The app's credentials (sent as HTTP Basic, as Xero wants them).
    store
        Where the rotated tokens are kept.
    seed_refresh_token
        The refresh token given by the environment or the config file.
    limits
        For the time scale and the refresh leeway.
    variable
        The environment variable a new refresh token goes in (named when the platform refuses
        the one recon holds).
    """

    def __init__(self, token_url: str, client_id: str, client_secret: str, store: TokenStore,
                 seed_refresh_token: str | None, limits: ClientLimits, variable: str = "RECON_XERO_REFRESH_TOKEN"):
        self.token_url = token_url
        self.variable = variable
        self._auth = (client_id, client_secret)
        self.store = store
        self.limits = limits
        self._tokens = store.load(seed_refresh_token)
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def _fresh(self) -> bool:
        expires_at = self._tokens.get("expires_at")
        leeway = self.limits.refresh_leeway * self.limits.time_scale
        return bool(self._tokens.get("access_token")) and expires_at is not None and time.time() < expires_at - leeway

    async def access_token(self, client: httpx.AsyncClient) -> str:
        """A valid access token (refreshing first when it is about to expire)."""
        if not self._fresh():
            await self.refresh(client, failed=self._tokens.get("access_token"))
        return self._tokens["access_token"]

    async def refresh(self, client: httpx.AsyncClient, failed: str | None) -> None:
        """Refresh, unless another caller already replaced the token ``failed``.

        Raises
        ------
        TerminalAdapterError
            The platform refused the refresh token or the app's credentials.
        TransientAdapterError
            The token endpoint could not be reached (after retries).
        """
        async with self._lock:
            if self._tokens.get("access_token") != failed and self._fresh():
                return
            retrying = AsyncRetrying(
                retry=retry_if_exception_type((httpx.TransportError, _RetryableAnswer)),
                wait=wait_random_exponential(multiplier=self.limits.backoff_base * self.limits.time_scale,
                                             max=self.limits.backoff_max * self.limits.time_scale),
                stop=stop_after_attempt(self.limits.max_attempts),
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        response = await client.post(
                            self.token_url, auth=self._auth,
                            data={"grant_type": "refresh_token", "refresh_token": self._tokens["refresh_token"]},
                        )
                        if response.status_code >= 500 or response.status_code == 429:
                            raise _RetryableAnswer(response.status_code, None)
            except (httpx.TransportError, _RetryableAnswer) as error:
                raise TransientAdapterError(
                    f"the token endpoint {self.token_url} could not be reached ({_describe(error)}); "
                    "the next write-back resumes") from None
            if response.status_code != 200:
                problem = _oauth_error(response)
                raise TerminalAdapterError(
                    f"the token endpoint refused the refresh ({response.status_code} {problem}): "
                    f"authorise the app again and set {self.variable} to the new refresh token")
            granted = response.json()
            lifetime = float(granted.get("expires_in", 1800)) * self.limits.time_scale
            self._tokens = {
                "access_token": granted["access_token"],
                "refresh_token": granted.get("refresh_token") or self._tokens["refresh_token"],
                "expires_at": time.time() + lifetime,
                "seed_digest": self._tokens.get("seed_digest"),
            }
            self.store.save(self._tokens)
            self.refreshes += 1
            log.info("access token refreshed; the rotated refresh token is saved in %s", self.store.path)


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "(no JSON error)"
    return str(body.get("error", "")) if isinstance(body, dict) else ""


class SlidingWindowLimiter:
    """At most ``calls`` calls in any ``window`` seconds; :meth:`pause` holds every caller.

    A call counts from when its answer arrives (until then it counts as in the window): the
    platform received it before that, so the next call it allows arrives at the platform more
    than a window after this one, however late the network or the event loop delivered it.
    Written here (a few lines) rather than taken from a token-bucket library: a bucket lets a
    full bucket go and then refills at the average rate, which puts more than ``calls`` calls
    in some rolling window, and Xero counts a rolling window.
    """

    def __init__(self, calls: int, window: float):
        self.calls = calls
        self.window = window
        self._slots: list[list[float]] = []
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> list[float]:
        """Wait for a free slot; pass what it returns to :meth:`release` once answered."""
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                self._slots = [slot for slot in self._slots if slot[0] > now - self.window]
                if len(self._slots) < self.calls:
                    slot = [math.inf]
                    self._slots.append(slot)
                    return slot
                earliest = min(slot[0] for slot in self._slots)
                await asyncio.sleep(earliest + self.window - now if earliest < math.inf else self.window / 1000)

    @staticmethod
    def release(slot: list[float]) -> None:
        slot[0] = time.monotonic()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


class _RetryableAnswer(Exception):
    def __init__(self, status: int, retry_after: float | None):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def _describe(error: BaseException) -> str:
    if isinstance(error, _RetryableAnswer):
        return f"HTTP {error.status}"
    return type(error).__name__


class ApiClient:
    """Send recorded requests to the platform within its limits.

    Parameters
    ----------
    base_url
        The API root (Xero: ``https://api.xero.com/api.xro/2.0``).
    tokens
        The access-token source.
    tenant_id
        Sent as ``tenant_header`` (Xero's ``Xero-tenant-id``); None: no such header (QuickBooks
        names its company, the realm, in the path).
    limits
        Calls a minute, requests in flight, attempts, timeout, time scale.
    label
        The platform's name in log lines.
    """

    def __init__(self, base_url: str, tokens: TokenManager, tenant_id: str | None, limits: ClientLimits,
                 tls: ssl.SSLContext | None = None, *, tenant_header: str | None = "Xero-tenant-id",
                 label: str = "xero"):
        self.base_url = base_url.rstrip("/")
        self.tenant = {tenant_header: tenant_id} if tenant_header and tenant_id else {}
        self.label = label
        self.tls = tls or ssl.create_default_context(cafile=certifi.where())
        self.tokens = tokens
        self.tenant_id = tenant_id
        self.limits = limits
        self.calls = 0
        self._client: httpx.AsyncClient | None = None
        self._limiter: SlidingWindowLimiter | None = None
        self._in_flight: asyncio.Semaphore | None = None

    async def __aenter__(self) -> ApiClient:
        scale = self.limits.time_scale
        self._client = httpx.AsyncClient(
            timeout=self.limits.timeout, verify=self.tls,
            limits=httpx.Limits(max_connections=self.limits.concurrent + 1),
            headers={"Accept": "application/json", "User-Agent": "recon-writeback"},
        )
        self._limiter = SlidingWindowLimiter(self.limits.calls_per_minute, 60.0 * scale)
        self._in_flight = asyncio.Semaphore(self.limits.concurrent)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _RetryableAnswer) and error.retry_after is not None:
            return error.retry_after
        jitter = wait_random_exponential(multiplier=self.limits.backoff_base * self.limits.time_scale,
                                         max=self.limits.backoff_max * self.limits.time_scale)
        return jitter(state)

    async def send(self, method: str, path: str, params: dict[str, str], body: str,
                   headers: dict[str, str]) -> Answer:
        """Send one request until the platform gives a final answer.

        Returns the 2xx or terminal 4xx answer (a 401 only after one refresh of the token).

        Raises
        ------
        TransientAdapterError
            5xx, 429 or network errors on every attempt: the request stays pending.
        TerminalAdapterError
            The token could not be refreshed at all.
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((httpx.TransportError, _RetryableAnswer)),
            wait=self._wait,
            stop=stop_after_attempt(self.limits.max_attempts),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "%s: %s %s: %s, trying again (attempt %d of %d)", self.label, method, path,
                _describe(state.outcome.exception()), state.attempt_number + 1, self.limits.max_attempts),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._send_once(method, path, params, body, headers)
        except (httpx.TransportError, _RetryableAnswer) as error:
            raise TransientAdapterError(
                f"{method} {path}: {_describe(error)} after {self.limits.max_attempts} attempts") from None
        raise AssertionError("unreachable")

    async def _send_once(self, method: str, path: str, params: dict[str, str], body: str,
                         headers: dict[str, str]) -> Answer:
        refreshed = False
        while True:
            async with self._in_flight:
                slot = await self._limiter.acquire()
                try:
                    # the token is taken when the call may go, not before the wait for a slot
                    token = await self.tokens.access_token(self._client)
                    self.calls += 1
                    response = await self._client.request(
                        method, f"{self.base_url}{path}", params=params, content=body.encode("utf-8"),
                        headers={**headers, "Authorization": f"Bearer {token}", **self.tenant,
                                 "Content-Type": "application/json; charset=utf-8"},
                    )
                finally:
                    self._limiter.release(slot)
            status = response.status_code
            log.debug("%s: %s %s -> %d", self.label, method, path, status)
            if status == 401 and not refreshed:
                refreshed = True
                await self.tokens.refresh(self._client, failed=token)
                continue
            if status == 429:
                retry_after = _retry_after(response) * self.limits.time_scale
                self._limiter.pause(retry_after)
                log.warning("%s: 429 (%s), waiting %.2f s as Retry-After says", self.label,
                            response.headers.get("X-Rate-Limit-Problem", "rate limit"), retry_after)
                raise _RetryableAnswer(status, retry_after)
            if status >= 500:
                raise _RetryableAnswer(status, None)
            try:
                parsed = json.loads(response.content, parse_float=Decimal) if response.content else None
            except ValueError:
                parsed = {"Message": response.text[:200]}
            return Answer(status, parsed)


def _retry_after(response: httpx.Response) -> float:
    """``Retry-After`` in seconds (Xero sends a number of seconds); 1 when absent or a date."""
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0
