"""Connections to the engine's SQLite store, ``stateful_runtime.sqlite3``, and its queries.

Readers open the file read-only (``mode=ro`` URI and ``PRAGMA query_only``) with a busy
timeout, and keep every read transaction short: the engine runs in WAL mode and a read
transaction left open stops its ``wal_checkpoint(TRUNCATE)`` from finishing. Writers
(our actions, when no engine is live) use one ``BEGIN IMMEDIATE`` transaction, as the
engine's own store does. A store whose ``schema_metadata.schema_version`` is not 5 is
refused, read or write.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from tandem_tui.source.sqlite.hotset import STAMP_COLUMNS
from tandem_tui.source.sqlite.rows import RUN_COLUMNS, SCHEMA_VERSION, RunRow, StoreError

#: How long (ms) a statement waits for the engine's write lock before giving up.
BUSY_TIMEOUT_MS = 5_000
#: Rows fetched per ``IN (...)`` query (below SQLite's parameter limit).
BATCH = 500


def _uri(path: Path, mode: str) -> str:
    return f"file:{quote(str(path.absolute()))}?mode={mode}"


def connect_read_only(path: str | os.PathLike[str], *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A read-only connection in autocommit mode (no transaction stays open between reads)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        connection = sqlite3.connect(
            _uri(path, "ro"), uri=True, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        connection.execute("PRAGMA query_only = ON")
    except sqlite3.Error as error:
        raise StoreError(f"{path}: cannot open ({error})") from None
    return connection


def connect_writer(path: str | os.PathLike[str], *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A read-write connection (never creates the file), set up as the engine's are."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    try:
        connection = sqlite3.connect(
            _uri(path, "rw"), uri=True, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        connection.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as error:
        raise StoreError(f"{path}: cannot open for writing ({error})") from None
    return connection


@contextmanager
def read_transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One short, consistent read: ``BEGIN`` ... ``COMMIT``, ended even on error."""
    connection.execute("BEGIN")
    try:
        yield connection
    finally:
        connection.execute("COMMIT")


def check_schema(connection: sqlite3.Connection, where: str) -> None:
    """Refuse a store that is not a Tandem stateful store of schema version 5."""
    try:
        row = connection.execute("SELECT schema_version FROM schema_metadata LIMIT 1").fetchone()
    except sqlite3.DatabaseError as error:
        if "no such table" in str(error):
            raise StoreError(f"{where}: not a Tandem stateful runtime store (no schema_metadata table)") from None
        raise StoreError(f"{where}: cannot read ({error})") from None
    if row is None:
        raise StoreError(f"{where}: schema_metadata holds no schema version")
    if row[0] != SCHEMA_VERSION:
        raise StoreError(
            f"{where}: schema version {row[0]} is not {SCHEMA_VERSION}, the version tandem-tui reads "
            f"(Tandem 0.6.9 .. 0.7.2); refusing to read it"
        )


def data_version(connection: sqlite3.Connection) -> int:
    """``PRAGMA data_version``: moves when another connection commits to the file."""
    return int(connection.execute("PRAGMA data_version").fetchone()[0])


def hot_stamps(connection: sqlite3.Connection) -> list[tuple[str, int, str, int]]:
    return connection.execute(f"SELECT {STAMP_COLUMNS} FROM automation_runs WHERE is_hot = 1").fetchall()


def rows_by_id(connection: sqlite3.Connection, run_ids: Iterable[str]) -> list[RunRow]:
    ids = list(run_ids)
    out: list[RunRow] = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT {RUN_COLUMNS} FROM automation_runs WHERE run_id IN ({marks})"
        out.extend(RunRow.of(values) for values in connection.execute(query, chunk))
    return out


def archived_listing(connection: sqlite3.Connection) -> list[tuple[str, int, int]]:
    """``(run_id, created_at_ms, updated_at_ms)`` of every history (``is_hot = 0``) row."""
    return connection.execute(
        "SELECT run_id, created_at_ms, updated_at_ms FROM automation_runs WHERE is_hot = 0"
    ).fetchall()


def legacy_import_complete(connection: sqlite3.Connection) -> bool | None:
    """Whether the engine treats this store as authoritative (its legacy JSON import is
    complete; upstream ``legacy_runtime_migration_complete``); ``None`` when unknown."""
    try:
        row = connection.execute(
            "SELECT status FROM stateful_migrations WHERE migration_id = 'legacy_stateful_runtime_v1'"
        ).fetchone()
    except sqlite3.DatabaseError:
        return None
    return row is not None and row[0] == "complete"
