"""Review page (web stage): who is reviewing, and protection of the write actions.

Three ways to run the page:

- **local** (no authentication configured): allowed only on a loopback address (127.0.0.1,
  ::1, localhost); the reviewer recorded with each decision is the operating-system user
  running ``recon serve``, as for the CLI.
- **token**: a shared secret read from an environment variable (never from the command line,
  which other users of the machine can read); at sign-in a reviewer gives the token and their
  name, which every decision records.
- **users**: a file of ``name:hash`` lines (``recon serve-passwd``), each hash a salted scrypt
  hash (:func:`hashlib.scrypt`, the standard library's memory-hard password hash); the signed-in
  name is the reviewer.

Sessions are cookies signed by Starlette's ``SessionMiddleware`` (itsdangerous) with a key made
at start-up, ``SameSite=Strict`` and ``HttpOnly``. Every write action (a ``POST``) must carry
the session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``, compared in
constant time) and, when the browser sends one, an ``Origin`` equal to the page's own; the
``Host`` header must name the address served (no DNS rebinding of a loopback page).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from models.errors import InputError, ReconError

__all__ = [
    "Auth", "hash_password", "verify_password", "read_users", "add_user", "is_loopback", "require_safe_bind",
    "csrf_token", "check_csrf",
]

# scrypt cost: 2**15 x 8 x 1 takes ~32 MiB and ~0.1 s a check: slow for a guesser, quick for a person
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 2**20
_NAME = re.compile(r"^[^\x00-\x1f\x7f:]{1,80}$")


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password``: ``scrypt$N$r$p$SALT$HASH`` (base64).

    Examples
    --------
    >>> verify_password("s3cret", hash_password("s3cret"))
    True
    """
    if not password:
        raise InputError("the password is empty")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt${_N}${_R}${_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (a :func:`hash_password` hash), in constant time."""
    try:
        kind, n, r, p, salt, digest = encoded.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=_MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def read_users(path: str | Path) -> dict[str, str]:
    """The ``name:hash`` lines of a users file (blank lines and ``#`` comments skipped).

    Raises
    ------
    ReconError
        The file cannot be read, or a line is not ``name:scrypt$...``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReconError(f"users file {path}: cannot be read ({exc})") from None
    users, problems = {}, []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, encoded = line.rpartition(":")
        if not sep or not _NAME.match(name) or not encoded.startswith("scrypt$"):
            problems.append(f"line {number} is not NAME:scrypt$... (make one with `recon serve-passwd`)")
            continue
        users[name] = encoded.strip()
    if problems:
        raise ReconError(f"users file {path}: " + "; ".join(problems))
    if not users:
        raise ReconError(f"users file {path} has no users (add one with `recon serve-passwd {path} NAME`)")
    return users


def add_user(path: str | Path, name: str, password: str) -> None:
    """Add ``name`` to the users file (or replace its hash), keeping the file private (0600)."""
    if not _NAME.match(name or ""):
        raise InputError(f"user name {name!r}: 1 to 80 characters, no ':' and no control characters")
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [line for line in lines if line.rpartition(":")[0] != name]
    kept.append(f"{name}:{hash_password(password)}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(kept) + "\n")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Auth:
    """How reviewers sign in: ``mode`` is ``local``, ``token`` or ``users``."""

    mode: str = "local"
    token: str | None = None
    users: dict[str, str] = field(default_factory=dict)
    #: the name a local reviewer's decisions record (the operating-system user)
    local_user: str | None = None

    @classmethod
    def configure(cls, token_env: str | None = None, users_file: str | Path | None = None) -> Auth:
        """The sign-in ``recon serve`` was asked for.

        Raises
        ------
        ReconError
            Both a token and a users file, an unset or short token variable, or a bad users file.
        """
        if token_env and users_file:
            raise ReconError("give either --token-env or --users, not both")
        if token_env:
            token = os.environ.get(token_env, "")
            if len(token) < 16:
                raise ReconError(f"the environment variable {token_env} must hold the access token (16 characters "
                                 "or more; e.g. python3 -c 'import secrets; print(secrets.token_urlsafe())')")
            return cls(mode="token", token=token)
        if users_file:
            return cls(mode="users", users=read_users(users_file))
        from engine.workspace.review import reviewer

        return cls(mode="local", local_user=reviewer(None))

    @property
    def required(self) -> bool:
        return self.mode != "local"

    def sign_in(self, name: str, secret: str) -> str | None:
        """The reviewer's name when ``name`` and ``secret`` are right, else None."""
        name = (name or "").strip()
        if not _NAME.match(name) or not secret:
            return None
        if self.mode == "token":
            ok = hmac.compare_digest(secret.encode("utf-8"), (self.token or "").encode("utf-8"))
            return name if ok else None
        if self.mode == "users":
            encoded = self.users.get(name)
            # an unknown name costs a hash too, so timing does not tell which names exist
            ok = verify_password(secret, encoded or _DUMMY_HASH)
            return name if ok and encoded is not None else None
        return None


_DUMMY_HASH = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def require_safe_bind(host: str, auth: Auth) -> None:
    """Refuse to listen beyond this machine without authentication.

    Raises
    ------
    ReconError
        ``host`` is not a loopback address and ``auth`` is local.
    """
    if not is_loopback(host) and not auth.required:
        raise ReconError(f"refusing to serve on {host} without authentication: set --token-env NAME (a token in "
                         "that environment variable) or --users FILE (see recon serve-passwd), or serve on 127.0.0.1")


def csrf_token(session: dict) -> str:
    """The session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf(session: dict, sent: str | None, origin: str | None, own_origin: str) -> str | None:
    """Why a write request is refused (None when it carries the session's token and, if the
    browser named one, comes from the page's own origin)."""
    if origin and origin != "null" and origin.rstrip("/") != own_origin.rstrip("/"):
        return f"the request comes from {origin}, not from this page"
    if origin == "null":
        return "the request comes from an opaque origin"
    expected = session.get("csrf")
    if not expected or not sent or not hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8")):
        return "the form is out of date or not from this page (CSRF token missing or wrong): reload the page"
    return None
