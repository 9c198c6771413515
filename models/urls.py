"""URLs shown to people (shared by feeds, engine and adapters): never with a secret in them.

A database URL or a write-back target may carry a password in its user part
(``postgresql://clerk:s3cret@db/books``) or as a query parameter (``?password=...``,
``?token=...``). Every message, log line, workspace record and summary names it through
:func:`masked_url`.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["SECRET_PARAMETERS", "masked_url"]

#: query parameters whose value is a secret
SECRET_PARAMETERS = frozenset(
    {"password", "pass", "passwd", "secret", "token", "client_secret", "access_token", "refresh_token"}
)


def masked_url(url: str) -> str:
    """``url`` with its password (user part) and every secret query parameter shown as ``***``;
    anything that is not a URL (``dir:out``) unchanged.

    The rest of the URL is kept exactly as written (no re-encoding), so the masked form of a
    target is stable: the same target always masks to the same text.

    Examples
    --------
    >>> masked_url("postgresql://clerk:s3cret@db:5432/books?table=t&password=s3cret")
    'postgresql://clerk:***@db:5432/books?table=t&password=***'
    >>> masked_url("postgresql://clerk@/books?host=/run/postgresql&sslmode=require")
    'postgresql://clerk@/books?host=/run/postgresql&sslmode=require'
    >>> masked_url("dir:out")
    'dir:out'
    """
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = "&".join(
        f"{piece.split('=', 1)[0]}=***" if piece.split("=", 1)[0].lower() in SECRET_PARAMETERS else piece
        for piece in parts.query.split("&")
    ) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
