"""Is an engine live, which store is authoritative, where is its API, and which token.

Everything a routing decision rests on, found the way the Tandem engine itself finds it
(frumu-ai/tandem: ``engine_lock.rs``, ``orchestration_store/migration.rs``,
``engine_api_token.rs``, ``storage_paths.rs``), and each answer remembers how it was
found, so a refusal can say why in one line:

- **live**: ``GET <url>/global/health`` answers (no token needed), or the ≥ 0.6.9
  engine lock ``stateful_runtime.engine.lock`` beside the runs file names a pid that
  is alive with the start time its ``linux-start:<ticks>`` hint records (the file stays
  after an engine exits; it is only read here, never locked);
- **store**: the SQLite store ``stateful_runtime.sqlite3`` once its
  ``stateful_migrations`` row ``legacy_stateful_runtime_v1`` is ``complete`` (opened
  read-only), else the runs file;
- **URL**: ``--engine-url``, ``TANDEM_ENGINE_URL``, else
  ``http://127.0.0.1:$TANDEM_ENGINE_PORT`` (default port 39731);
- **token**: ``--token-file``, ``TANDEM_API_TOKEN``, ``TANDEM_API_TOKEN_FILE``, else the
  engine's token file ``<tandem home>/security/engine_api_token``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ENGINE_HOST = "127.0.0.1"
DEFAULT_ENGINE_PORT = 39731
ENGINE_LOCK_NAME = "stateful_runtime.engine.lock"
SQLITE_STORE_NAME = "stateful_runtime.sqlite3"
LEGACY_MIGRATION_ID = "legacy_stateful_runtime_v1"
TOKEN_FILE_PARTS = ("security", "engine_api_token")
#: How long (s) a health probe may take: a live engine on loopback answers in ms.
HEALTH_TIMEOUT_S = 0.5

STORE_RUNS_FILE = "runs file"
STORE_SQLITE = "sqlite"


# ── the engine's URL ─────────────────────────────────────────────────────────


@dataclass(frozen=True)
class EngineUrl:
    url: str
    #: Where it came from: ``--engine-url``, ``TANDEM_ENGINE_URL``, ``TANDEM_ENGINE_PORT``, ``default``.
    origin: str


def engine_url(option: str | None, env: Mapping[str, str]) -> EngineUrl:
    if option and option.strip():
        return EngineUrl(option.strip().rstrip("/"), "--engine-url")
    named = (env.get("TANDEM_ENGINE_URL") or "").strip()
    if named:
        return EngineUrl(named.rstrip("/"), "TANDEM_ENGINE_URL")
    port = (env.get("TANDEM_ENGINE_PORT") or "").strip()
    if port.isdigit() and 0 < int(port) < 65536:
        return EngineUrl(f"http://{DEFAULT_ENGINE_HOST}:{int(port)}", "TANDEM_ENGINE_PORT")
    return EngineUrl(f"http://{DEFAULT_ENGINE_HOST}:{DEFAULT_ENGINE_PORT}", "default")


# ── the token ────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class TokenSource:
    """The API token (or None) and, in words, where it came from or where we looked."""

    token: str | None = field(repr=False)
    origin: str

    @property
    def found(self) -> bool:
        return self.token is not None


def tandem_home(env: Mapping[str, str]) -> Path:
    """``resolve_tandem_home_dir``: ``TANDEM_HOME``, else ``TANDEM_STATE_DIR``, else
    ``<platform data dir>/tandem``."""
    for name in ("TANDEM_HOME", "TANDEM_STATE_DIR"):
        value = (env.get(name) or "").strip()
        if value:
            return Path(value).expanduser()
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "tandem"
    xdg = (env.get("XDG_DATA_HOME") or "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base / "tandem"


def engine_token_files(env: Mapping[str, str], runs_file: Path | None = None) -> list[Path]:
    """Where the engine keeps its token file: ``<tandem home>/security/engine_api_token``;
    also beside the state dir a ``.../data/`` runs file belongs to."""
    paths = [tandem_home(env).joinpath(*TOKEN_FILE_PARTS)]
    if runs_file is not None and runs_file.parent.name == "data":
        beside = runs_file.parent.parent.joinpath(*TOKEN_FILE_PARTS)
        if beside not in paths:
            paths.append(beside)
    return paths


def _read_token(path: Path) -> tuple[str | None, str | None]:
    """(token, None), or (None, why not) for a missing, unreadable or empty file."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, "no such file"
    except OSError as error:
        return None, error.strerror or str(error)
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    return (token, None) if token else (None, "empty")


def find_token(token_file: str | os.PathLike[str] | None, env: Mapping[str, str], runs_file: Path | None = None) -> TokenSource:
    """The token and where it came from. An explicit ``--token-file`` wins over the
    environment; a named file that cannot be used is not silently skipped."""
    if token_file is not None:
        path = Path(token_file).expanduser()
        token, why = _read_token(path)
        return TokenSource(token, f"--token-file {path}" + (f" ({why})" if why else ""))
    token = (env.get("TANDEM_API_TOKEN") or "").strip()
    if token:
        return TokenSource(token, "TANDEM_API_TOKEN")
    named = (env.get("TANDEM_API_TOKEN_FILE") or "").strip()
    if named:
        path = Path(named).expanduser()
        token, why = _read_token(path)
        return TokenSource(token, f"TANDEM_API_TOKEN_FILE {path}" + (f" ({why})" if why else ""))
    looked = engine_token_files(env, runs_file)
    for path in looked:
        token, _ = _read_token(path)
        if token:
            return TokenSource(token, f"the engine's token file {path}")
    return TokenSource(None, "no token: none in TANDEM_API_TOKEN, TANDEM_API_TOKEN_FILE or " + ", ".join(map(str, looked)))


# ── the engine lock (≥ 0.6.9) ──────────────────────────────────────────────────


@dataclass(frozen=True)
class LockState:
    """What the engine lock file says. ``live`` is None when there is no (usable) lock
    file or liveness cannot be checked here."""

    path: Path
    present: bool
    live: bool | None
    pid: int | None
    why: str


def process_start_hint(pid: int) -> str | None:
    """``linux-start:<field 22 of /proc/<pid>/stat>``; None when the process is gone.

    Raises ``OSError`` when /proc cannot tell (the engine's "Unknown").
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    after_name = raw.rsplit(")", 1)[-1] if ")" in raw else None
    fields = after_name.split() if after_name is not None else []
    if len(fields) < 20:
        raise OSError(f"/proc/{pid}/stat: unexpected format")
    return f"linux-start:{fields[19]}"  # field 22: starttime, after pid and (comm)


def _pid_exists(pid: int) -> bool | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True


def read_engine_lock(data_dir: Path) -> LockState:
    """Read (never take) the engine lock and judge its owner as the engine does."""
    path = data_dir / ENGINE_LOCK_NAME
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LockState(path, False, None, None, f"no engine lock at {path}")
    except OSError as error:
        return LockState(path, True, None, None, f"engine lock {path} unreadable ({error.strerror or error})")
    try:
        owner = json.loads(raw)
        pid = owner["pid"]
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise ValueError
        hint = owner.get("process_start_hint")
    except (ValueError, KeyError, TypeError):
        return LockState(path, True, None, None, f"engine lock {path} holds no owner")
    known_prefix = isinstance(hint, str) and hint.startswith(("linux-start:", "unix-start:", "windows-start:"))
    if sys.platform.startswith("linux"):
        try:
            identity = process_start_hint(pid)
        except OSError as error:
            return LockState(path, True, None, pid, f"engine lock owner pid {pid}: cannot check ({error})")
        if identity is None:
            return LockState(path, True, False, pid, f"engine lock owner pid {pid} has exited")
        if not known_prefix or hint == identity:
            return LockState(path, True, True, pid, f"engine lock owner pid {pid} is alive")
        return LockState(path, True, False, pid, f"engine lock owner pid {pid} was reused by another process")
    exists = _pid_exists(pid)
    if exists is None:
        return LockState(path, True, None, pid, f"engine lock owner pid {pid}: cannot check")
    if not exists:
        return LockState(path, True, False, pid, f"engine lock owner pid {pid} has exited")
    return LockState(path, True, True, pid, f"engine lock owner pid {pid} is alive")


# ── which store is authoritative ───────────────────────────────────────────────


@dataclass(frozen=True)
class StoreState:
    kind: str
    path: Path
    why: str


def authoritative_store(runs_file: Path) -> StoreState:
    """The SQLite store once the legacy import is complete, else the runs file."""
    database = runs_file.parent / SQLITE_STORE_NAME
    if not database.exists():
        return StoreState(STORE_RUNS_FILE, runs_file, f"no {SQLITE_STORE_NAME} beside the runs file")
    import sqlite3  # only when there is a store to look into (the runs-file case has none)

    try:
        connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error as error:
        return StoreState(STORE_RUNS_FILE, runs_file, f"{database}: cannot open read-only ({error})")
    try:
        row = connection.execute(
            "SELECT status FROM stateful_migrations WHERE migration_id = ?", (LEGACY_MIGRATION_ID,)
        ).fetchone()
    except sqlite3.Error as error:
        return StoreState(STORE_RUNS_FILE, runs_file, f"{database}: no migration record ({error})")
    finally:
        connection.close()
    if row is not None and row[0] == "complete":
        return StoreState(STORE_SQLITE, database, f"{LEGACY_MIGRATION_ID} is complete in {database.name}")
    status = row[0] if row is not None else "absent"
    return StoreState(STORE_RUNS_FILE, runs_file, f"{LEGACY_MIGRATION_ID} is {status} in {database.name}")


# ── health ─────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class HealthProbe:
    """``answered``: an engine answered ``/global/health``. ``listening``: something
    holds the port (a timeout or a non-engine answer), so it cannot be called stopped."""

    answered: bool
    listening: bool
    why: str


def probe_health(url: str, timeout: float = HEALTH_TIMEOUT_S) -> HealthProbe:
    if _refused(url, timeout):
        # The common case (no engine running) without loading httpx: ~0.15 s of a
        # ``status --json`` or an action, whose floor is a parse of the runs file.
        return HealthProbe(False, False, f"nothing answers at {url} (connection refused)")
    import httpx

    from tandem_tui.source.engine.client import tls_verify

    target = f"{url}/global/health"
    try:
        response = httpx.get(target, timeout=timeout, verify=tls_verify(url))
    except httpx.ConnectError:
        return HealthProbe(False, False, f"nothing answers at {url} (connection refused)")
    except httpx.TimeoutException:
        return HealthProbe(False, True, f"{url} did not answer /global/health within {timeout:g} s")
    except (httpx.HTTPError, ValueError) as error:
        return HealthProbe(False, False, f"{url}: {type(error).__name__}: {error}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict) and "healthy" in body:
        return HealthProbe(True, True, f"{url}/global/health answered")
    # Not an engine's health answer: whatever holds the port does not own the runs.
    return HealthProbe(False, False, f"{url} answers, but not as a Tandem engine (HTTP {response.status_code})")


def _refused(url: str, timeout: float) -> bool:
    """Whether a TCP connect to ``url``'s host and port is refused (nothing listens).
    Anything else (it connects, times out, the name does not resolve) is for httpx to
    tell, so every other verdict and message stays its own."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname
    except ValueError:
        return False
    if not host:
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


# ── all of it ──────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Detection:
    runs_file: Path
    store: StoreState
    url: EngineUrl
    health: HealthProbe
    lock: LockState
    token: TokenSource

    @property
    def live(self) -> bool:
        """An engine owns the runs: health answered, the lock's owner lives, or something
        holds the engine's port without answering (we must not write behind it)."""
        return self.health.answered or self.lock.live is True or self.health.listening

    @property
    def reachable(self) -> bool:
        return self.health.answered

    @property
    def how_known(self) -> str:
        if self.health.answered:
            return self.health.why
        if self.lock.live:
            return f"{self.lock.why}; {self.health.why}"
        if self.health.listening:
            return self.health.why
        return f"{self.health.why}; {self.lock.why}"


def detect(
    runs_file: str | os.PathLike[str],
    *,
    engine_url_option: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] = os.environ,
    timeout: float = HEALTH_TIMEOUT_S,
) -> Detection:
    """Everything routing needs, found now (one health probe, one lock read)."""
    runs_file = Path(runs_file)
    url = engine_url(engine_url_option, env)
    return Detection(
        runs_file=runs_file,
        store=authoritative_store(runs_file),
        url=url,
        health=probe_health(url.url, timeout),
        lock=read_engine_lock(runs_file.parent),
        token=find_token(token_file, env, runs_file),
    )
