"""Builds real engine stores for tests: SQLite files from the v5 schema, PostgreSQL schemas.

Rows are written as the engine writes them (``upsert_automation_run``): the bound
``run_json`` envelope in compact JSON, the status, tenant and timestamps in their
columns.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tandem_tui.simulate.sqlite_store import schema_sql
from tandem_tui.source.sqlite.rows import DATABASE_FILE_NAME, bound_run_json

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures"

#: A ciphertext as the engine writes it when it encrypts records (opaque to us).
CIPHERTEXT = "tgs1:eyJ2IjoyLCJub25jZSI6IkFBQUEiLCJjdCI6ImNpcGhlcnRleHQifQ"


def fixture_runs() -> dict[str, dict[str, Any]]:
    """The hot runs of ``runs_v1.json``."""
    return json.loads((FIXTURES_DIR / "runs_v1.json").read_text())["runs"]


def fixture_history() -> dict[str, dict[str, Any]]:
    """The archived runs of the fixture's history shards (one record per run id, the
    latest month's when filed twice), minus those still hot."""
    hot = fixture_runs()
    found: dict[str, dict[str, Any]] = {}
    root = FIXTURES_DIR / "history" / "automation-runs" / "automation_v2_runs"
    for shard in sorted(root.glob("*/*/*.json")):
        value = json.loads(shard.read_text())
        record = value.get("run", value) if isinstance(value, dict) and "schema_version" in value else value
        found[record["run_id"]] = record
    return {run_id: record for run_id, record in found.items() if run_id not in hot}


def columns(record: Mapping[str, Any], *, is_hot: bool, run_json: str | None = None) -> tuple[Any, ...]:
    tenant = record.get("tenant_context") or {}
    return (
        record["run_id"],
        record["automation_id"],
        tenant.get("org_id", "local"),
        tenant.get("workspace_id", "local"),
        tenant.get("deployment_id"),
        record["status"],
        1 if is_hot else 0,
        run_json if run_json is not None else bound_run_json(record),
        record["created_at_ms"],
        record["updated_at_ms"],
    )


INSERT = (
    "INSERT INTO automation_runs (run_id, automation_id, org_id, workspace_id, deployment_id, status, "
    "is_hot, run_json, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def make_sqlite_store(
    directory: Path,
    hot: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]] = (),
    history: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]] = (),
    *,
    encrypted: Iterable[tuple[Mapping[str, Any], bool]] = (),
    schema_version: int = 5,
    migration_complete: bool = True,
) -> Path:
    """``directory/stateful_runtime.sqlite3`` in WAL mode, from the v5 DDL, with rows."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / DATABASE_FILE_NAME
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.executescript(schema_sql())
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO schema_metadata (schema_version) VALUES (?)", (schema_version,))
        if migration_complete:
            connection.execute(
                "INSERT INTO stateful_migrations VALUES ('legacy_stateful_runtime_v1', 'complete', 'fp', 0, 1, 2)"
            )
        for records, is_hot in ((hot, True), (history, False)):
            for record in records.values() if isinstance(records, Mapping) else records:
                connection.execute(INSERT, columns(record, is_hot=is_hot))
        for record, is_hot in encrypted:
            connection.execute(INSERT, columns(record, is_hot=is_hot, run_json=CIPHERTEXT))
        connection.execute("COMMIT")
    finally:
        connection.close()
    return path


def writer(path: Path) -> sqlite3.Connection:
    """A connection like the engine's (autocommit; ``BEGIN IMMEDIATE`` for writes)."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=5)
    connection.execute("PRAGMA busy_timeout = 5000")
    return connection


def upsert(connection: Any, record: Mapping[str, Any], *, mark: str = "?", table: str = "automation_runs") -> None:
    """The engine's ``upsert_automation_run``: the row becomes hot with the new record."""
    values = ", ".join([mark] * 6 + ["1"] + [mark] * 3)
    connection.execute(
        f"INSERT INTO {table} (run_id, automation_id, org_id, workspace_id, deployment_id, status, is_hot, "
        f"run_json, created_at_ms, updated_at_ms) VALUES ({values}) "
        "ON CONFLICT(run_id) DO UPDATE SET status = excluded.status, is_hot = 1, run_json = excluded.run_json, "
        f"updated_at_ms = excluded.updated_at_ms WHERE excluded.updated_at_ms >= {table}.updated_at_ms",
        tuple(value for i, value in enumerate(columns(record, is_hot=True)) if i != 6),
    )


#: The tables of upstream's PostgreSQL rendering of schema v5 that the sources read.
POSTGRES_DDL = """
CREATE SCHEMA IF NOT EXISTS "{schema}";
SET search_path TO "{schema}";
CREATE TABLE IF NOT EXISTS schema_metadata (schema_version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS automation_runs (
    run_id TEXT PRIMARY KEY,
    automation_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    deployment_id TEXT,
    status TEXT NOT NULL,
    is_hot BIGINT NOT NULL DEFAULT 1,
    run_json TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_automation_runs_scope_status ON automation_runs (org_id, workspace_id, status);
CREATE TABLE IF NOT EXISTS stateful_migrations (
    migration_id TEXT PRIMARY KEY, status TEXT NOT NULL, source_fingerprint TEXT NOT NULL,
    record_count BIGINT NOT NULL, started_at_ms BIGINT NOT NULL, completed_at_ms BIGINT
);
SET search_path TO DEFAULT;
"""


def make_postgres_engine(
    url: str,
    schema: str,
    hot: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]] = (),
    history: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]] = (),
    *,
    encrypted: Iterable[tuple[Mapping[str, Any], bool]] = (),
    schema_version: int = 5,
) -> None:
    """One engine's schema in the database at ``url``, with rows, as the engine writes them."""
    import psycopg

    insert = INSERT.replace("?", "%s").replace("automation_runs", f'"{schema}".automation_runs')
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(POSTGRES_DDL.format(schema=schema))
        with connection.transaction():
            connection.execute(f'INSERT INTO "{schema}".schema_metadata VALUES (%s)', (schema_version,))
            for records, is_hot in ((hot, True), (history, False)):
                for record in records.values() if isinstance(records, Mapping) else records:
                    connection.execute(insert, columns(record, is_hot=is_hot))
            for record, is_hot in encrypted:
                connection.execute(insert, columns(record, is_hot=is_hot, run_json=CIPHERTEXT))
