"""A real PostgreSQL server for the store tests, started once per test session.

The server is the machine's own PostgreSQL (``initdb``/``pg_ctl`` on the PATH or under
``/usr/lib/postgresql/*/bin``), in a temporary directory, listening on a free
127.0.0.1 port with trust authentication. ``initdb`` refuses to run as root: as root,
the server runs as the ``postgres`` user (or ``nobody``). Each test gets a database of
its own. Without a PostgreSQL install, the tests that need it are skipped and say why
(and fail under CI, which must run them).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


class NoPostgres(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


@contextmanager
def running_server() -> Iterator[str]:
    """A temporary PostgreSQL server; yields the URL of its ``postgres`` database.

    Raises :class:`NoPostgres` without server binaries, ``RuntimeError`` when it does
    not start (with initdb's or the server log's last words). Used by the tests and by
    ``bench/bench_postgres.py``.
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise NoPostgres("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    user = _server_user()
    base = Path(tempfile.mkdtemp(prefix="tandem-tui-pg-"))
    run_as = {"user": user} if user else {}
    if user:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    data = base / "data"
    port = _free_port()
    try:
        init = subprocess.run(
            [initdb, "-D", str(data), "-A", "trust", "-U", "tandem", "-E", "UTF8", "--no-sync"],
            capture_output=True, text=True, cwd=base, **run_as,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()}")
        options = f"-h 127.0.0.1 -p {port} -k {base} -F -c max_connections=50"
        start = subprocess.run(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "server.log"), "-w", "-t", "60", "start"],
            capture_output=True, text=True, cwd=base, **run_as,
        )
        if start.returncode != 0:
            log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {start.stderr.strip()} {log[-500:]}")
        try:
            yield f"postgresql://tandem@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, cwd=base, **run_as)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a running server's ``postgres`` database (session-wide)."""
    try:
        with running_server() as url:
            yield url
    except NoPostgres as error:
        if os.environ.get("CI"):
            pytest.fail(str(error))  # CI must run these tests, never skip them quietly
        pytest.skip(str(error))


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
