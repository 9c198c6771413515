"""A real, throwaway PostgreSQL server for the tests (a pytest plugin, registered in
``tests/conftest.py``) and for the write-back benchmark.

The server is started with Debian's ``initdb``/``pg_ctl`` in a temporary directory, listens only
on a unix socket there (no TCP port), trusts local connections, runs with ``fsync=off`` and is
stopped and removed afterwards. As root (CI containers) it runs as the ``postgres`` user through
``runuser``, since ``initdb`` refuses root. ``dev.py test`` installs the binaries when missing;
without them the tests that need the server skip and say why.

Fixtures
--------
postgres_url
    Session-scoped: ``postgresql://postgres@/postgres?host=SOCKET_DIR``, one server per test
    session (starting one takes ~2 s).
postgres_database
    A fresh, empty database on that server for one test, dropped afterwards:
    ``postgresql://postgres@/NAME?host=SOCKET_DIR``.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["PostgresUnavailable", "pg_bin", "throwaway_postgres", "postgres_url", "postgres_database"]


class PostgresUnavailable(RuntimeError):
    """This machine cannot start a throwaway server; the message says why."""


def pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding ``initdb``, or None."""
    found = [Path(path).parent for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found.sort(key=lambda bindir: (bindir.parent.name.isdigit(), int(bindir.parent.name) if bindir.parent.name.isdigit() else 0))
    return found[-1] if found else None


@contextmanager
def throwaway_postgres(settings: tuple[str, ...] = ()) -> Iterator[str]:
    """Start a server, yield its URL (database ``postgres``, user ``postgres``), stop it.

    Parameters
    ----------
    settings
        Extra ``-c name=value`` server settings (e.g. ``("shared_buffers=256MB",)``).

    Raises
    ------
    PostgresUnavailable
        No server binaries, or root without a ``postgres`` user / ``runuser``.
    """
    bindir = pg_bin()
    if bindir is None:
        raise PostgresUnavailable(
            "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
        )
    root = Path(tempfile.mkdtemp(prefix="recon-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        if shutil.which("runuser") is None:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable("running as root without runuser: cannot start PostgreSQL as another user")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable("running as root and there is no 'postgres' user to run the server") from None
        shutil.chown(root, user="postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, sockets = root / "data", root / "sock"
    options = " ".join(f"-c {setting}" for setting in ("fsync=off", *settings))

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    started = False
    try:
        run("mkdir", str(sockets))
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(root / "log"),
            "-o", f"-k {sockets} -c listen_addresses='' {options}", "start")
        started = True
        yield f"postgresql://postgres@/postgres?host={sockets}"
    finally:
        if started:
            subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server for the whole session; skipped (with the reason) when
    psycopg 3 or the server binaries are missing."""
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install 'recon[postgres]')")
    try:
        server = throwaway_postgres()
        url = server.__enter__()
    except PostgresUnavailable as reason:
        pytest.skip(str(reason))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


_database_numbers = itertools.count(1)


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    import psycopg

    name = f"recon_test_{os.getpid()}_{next(_database_numbers)}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url.replace("/postgres?", f"/{name}?", 1)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
