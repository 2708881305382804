"""The simulate engine's SQLite store (``simulate --store sqlite``): the Tandem >= 0.6.9 layout.

Since 0.6.9 the engine keeps its runs in ``stateful_runtime.sqlite3`` beside the runs
file (schema version 5, WAL mode), imports the legacy runs file into it once and marks
``stateful_migrations.legacy_stateful_runtime_v1`` complete, and from then on loads its
hot set from the store, never from the file. The runs file is still rewritten, as the
compacted hot set; history is the store's rows with ``is_hot = 0`` (no shards). While it
runs, the engine holds ``stateful_runtime.engine.lock`` (upstream
``orchestration_store/engine_lock.rs``): an exclusive ``flock``, and the owner
``{"pid", "acquired_at_ms", "process_start_hint": "linux-start:<field 22>"}`` written
into the file, which stays after the engine exits.

Rows are written as the engine's ``upsert_automation_run`` writes them: plain columns
from the record, ``run_json`` the bound envelope ``{"tenant_context", "kind": "run",
"id", "payload"}`` as compact JSON, each save one ``BEGIN IMMEDIATE`` transaction.
The DDL is the package's copy of the v5 schema (``schema_v5.sql``).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from tandem_tui.domain.models import Run, RunStatus, TenantContext
from tandem_tui.source.engine.detect import process_start_hint
from tandem_tui.source.sqlite.rows import (
    DATABASE_FILE_NAME,
    ENGINE_LOCK_FILE_NAME,
    SCHEMA_VERSION,
    StoreError,
)

LEGACY_MIGRATION_ID = "legacy_stateful_runtime_v1"
BUSY_TIMEOUT_MS = 5_000


def schema_sql() -> str:
    """The v5 DDL shipped with the package."""
    return resources.files("tandem_tui.simulate").joinpath("schema_v5.sql").read_text(encoding="utf-8")


class EngineLockHeld(StoreError):
    """Another engine owns this state root."""


class EngineLock:
    """The engine lock, held (flock) for the life of the engine, as upstream holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, now_ms: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise EngineLockHeld(f"another Tandem engine already owns runtime root lock {self.path}") from None
        refusal = _takeover_refusal(self.path)
        if refusal is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise EngineLockHeld(refusal)
        pid = os.getpid()
        owner = {"pid": pid, "acquired_at_ms": now_ms, "process_start_hint": process_start_hint(pid)}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(owner, separators=(",", ":")).encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Unlock; the file and its owner stay behind, as the engine leaves them."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _takeover_refusal(path: Path) -> str | None:
    """Upstream's check of the recorded owner once the flock is ours: a previous owner
    that is still alive (its start time matching the hint), or cannot be checked, wins."""
    try:
        owner = json.loads(path.read_text(encoding="utf-8").strip() or "null")
        pid, hint = owner["pid"], owner.get("process_start_hint")
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # no owner recorded (or not one upstream could read): take it
    if not isinstance(pid, int) or pid == os.getpid():
        return None
    try:
        identity = process_start_hint(pid)
    except OSError:
        return f"refusing stateful engine lock takeover at {path}: recorded owner pid {pid} cannot be checked for liveness"
    if identity is None:
        return None  # exited uncleanly: recovered
    identity_hint = isinstance(hint, str) and hint.startswith(("linux-start:", "unix-start:", "windows-start:"))
    if not identity_hint or hint == identity:
        return f"refusing stateful engine lock takeover at {path}: recorded owner pid {pid} is still alive"
    return None


class SqliteRunsStore:
    """``<data dir>/stateful_runtime.sqlite3`` as the simulate engine's authoritative store."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / DATABASE_FILE_NAME
        self.lock = EngineLock(data_dir / ENGINE_LOCK_FILE_NAME)
        self._connection: sqlite3.Connection | None = None
        #: run id -> the run_json last written (a save writes only what changed).
        self._written: dict[str, str] = {}

    # ── start-up ─────────────────────────────────────────────────────────────

    def open(self, *, now_ms: int, legacy_entries: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
        """Take the engine lock, open (or create) the store, and return its hot entries.

        ``legacy_entries()`` gives the runs file's content, called (and imported) only
        while the legacy import is not complete; after that the store alone is read.
        """
        self.lock.acquire(now_ms)
        try:
            return self._open(now_ms=now_ms, legacy_entries=legacy_entries)
        except BaseException:
            self.close()
            raise

    def _open(self, *, now_ms: int, legacy_entries: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
        fresh = not self.path.exists()
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        self._connection = connection
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        if fresh:
            connection.executescript(schema_sql())
            connection.execute("INSERT INTO schema_metadata (schema_version) VALUES (?)", (SCHEMA_VERSION,))
        row = connection.execute("SELECT schema_version FROM schema_metadata LIMIT 1").fetchone()
        if row is None or int(row[0]) != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {row[0] if row else None} is not {SCHEMA_VERSION}")
        migrated = connection.execute(
            "SELECT status FROM stateful_migrations WHERE migration_id = ?", (LEGACY_MIGRATION_ID,)
        ).fetchone()
        if migrated is None or migrated[0] != "complete":
            self._import(dict(legacy_entries()), now_ms)
        hot: dict[str, Any] = {}
        for run_id, run_json in connection.execute("SELECT run_id, run_json FROM automation_runs WHERE is_hot = 1"):
            value = json.loads(run_json)
            hot[run_id] = value["payload"] if isinstance(value, dict) and value.get("kind") == "run" else value
            self._written[run_id] = run_json
        return dict(sorted(hot.items()))

    def _import(self, entries: dict[str, Any], now_ms: int) -> None:
        """The one-time legacy import: every runs-file entry becomes a hot row."""
        connection = self._require()
        connection.execute("BEGIN IMMEDIATE")
        try:
            for key, value in entries.items():
                self._upsert(connection, key, value, None)
            connection.execute(
                "INSERT OR REPLACE INTO stateful_migrations VALUES (?, 'complete', ?, ?, ?, ?)",
                (LEGACY_MIGRATION_ID, f"tandem-tui-simulate:{len(entries)}", len(entries), now_ms, now_ms),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    # ── saving ───────────────────────────────────────────────────────────────

    def save(self, entries: Mapping[str, Any], runs: Mapping[str, Run], archived: Iterable[str] = ()) -> int:
        """Upsert the hot entries that changed and mark ``archived`` ones history, in one
        ``BEGIN IMMEDIATE`` transaction; returns how many rows were written."""
        connection = self._require()
        written = 0
        connection.execute("BEGIN IMMEDIATE")
        try:
            for key, value in entries.items():
                written += self._upsert(connection, key, value, runs.get(key))
            for key in archived:
                connection.execute("UPDATE automation_runs SET is_hot = 0 WHERE run_id = ?", (key,))
                self._written.pop(key, None)
                written += 1
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return written

    def _upsert(self, connection: sqlite3.Connection, key: str, value: Any, run: Run | None) -> int:
        run_json = bound_run_json(key, value, run)
        if self._written.get(key) == run_json:
            return 0
        record = value if isinstance(value, dict) else {}
        tenant = _tenant(record, run)
        status = run.status.value if run is not None else str(record.get("status") or RunStatus.BLOCKED.value)
        created = _int(record.get("created_at_ms"), run.created_at_ms if run else 0)
        updated = _int(record.get("updated_at_ms"), run.updated_at_ms if run else created)
        automation_id = str(record.get("automation_id") or (run.automation_id if run else ""))
        connection.execute(
            "INSERT INTO automation_runs (run_id, automation_id, org_id, workspace_id, deployment_id, status, "
            "is_hot, run_json, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?) "
            "ON CONFLICT(run_id) DO UPDATE SET automation_id = excluded.automation_id, status = excluded.status, "
            "is_hot = 1, run_json = excluded.run_json, updated_at_ms = excluded.updated_at_ms",
            (key, automation_id, tenant.org_id, tenant.workspace_id, tenant.deployment_id, status, run_json, created, updated),
        )
        self._written[key] = run_json
        return 1

    def _require(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreError(f"{self.path}: not open")
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # a reader holds a snapshot: the next start checkpoints
            self._connection.close()
            self._connection = None
        self.lock.release()


def bound_run_json(key: str, value: Any, run: Run | None) -> str:
    """``protected_records::encode`` in plaintext: the record bound to its tenant and id."""
    record = value if isinstance(value, dict) else {}
    tenant = record.get("tenant_context")
    if not isinstance(tenant, dict):
        tenant = (run.tenant_context if run is not None else TenantContext.local_implicit()).model_dump(mode="json")
    return json.dumps(
        {"tenant_context": tenant, "kind": "run", "id": key, "payload": value},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _tenant(record: Mapping[str, Any], run: Run | None) -> TenantContext:
    if run is not None:
        return run.tenant_context
    try:
        return TenantContext.model_validate(record.get("tenant_context"))
    except Exception:  # noqa: BLE001 - a corrupt entry's tenant: the local one
        return TenantContext.local_implicit()


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else int(default)
