"""Queries on a PostgreSQL database shared by several Tandem engines (one schema each).

Upstream ``stateful_runtime/backend/postgres.rs`` (v0.7.2): each engine root maps to its
own schema (named in the root's ``stateful_runtime.pg_schema`` marker, by default
``tandem_rt_`` + 16 hex digits), holding the v5 tables. An engine is found here by its
tables, whatever its schema's name: a schema with ``automation_runs`` and
``schema_metadata``. Whether it is live is read from ``pg_locks`` (its session advisory
lock), never by taking the lock.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from tandem_tui.source.postgres.keys import SCHEMA_NAME, engine_lock_key, pg_locks_ids
from tandem_tui.source.sqlite.rows import RUN_COLUMNS, SCHEMA_VERSION, RunRow, StoreError

#: The URL's environment variable, as the engine reads it.
URL_ENV = "TANDEM_STORAGE_POSTGRES_URL"
#: Rows fetched per ``= ANY(...)`` query.
BATCH = 1_000
#: A row's stamp (:mod:`tandem_tui.source.sqlite.hotset`). ``octet_length`` reads a
#: TOASTed value's size without decompressing it (``length`` would: 4x slower).
STAMP_COLUMNS = "run_id, updated_at_ms, status, octet_length(run_json)"


def connect(url: str) -> psycopg.Connection:
    """An autocommit connection (each read opens its own short transaction)."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="tandem-tui")
    except psycopg.Error as error:
        raise StoreError(f"{redacted(url)}: cannot connect ({one_line(error)})") from None


def redacted(url: str) -> str:
    """The URL without its password, for messages and headers."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "<postgres url>"
    host, port, db, user = (info.get(k) for k in ("host", "port", "dbname", "user"))
    who = f"{user}@" if user else ""
    where = f"{host or 'localhost'}{':' + str(port) if port else ''}"
    return f"postgresql://{who}{where}/{db or ''}"


def one_line(error: object) -> str:
    return " ".join(str(error).split())


def table(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def engine_schemas(connection: psycopg.Connection) -> list[str]:
    """Every schema holding an engine's run table and schema version, sorted."""
    rows = connection.execute(
        "SELECT table_schema FROM information_schema.tables "
        "WHERE table_name IN ('automation_runs', 'schema_metadata') "
        "AND table_schema NOT IN ('pg_catalog', 'information_schema') "
        "GROUP BY table_schema HAVING count(DISTINCT table_name) = 2 ORDER BY table_schema"
    ).fetchall()
    return [name for (name,) in rows if SCHEMA_NAME.fullmatch(name)]


def live_engines(connection: psycopg.Connection, schemas: Iterable[str]) -> set[str]:
    """The schemas whose engine session lock is held now, from ``pg_locks``."""
    held = {
        (int(classid), int(objid))
        for classid, objid in connection.execute(
            "SELECT classid::bigint, objid::bigint FROM pg_locks "
            "WHERE locktype = 'advisory' AND objsubid = 1 AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
    }
    return {schema for schema in schemas if pg_locks_ids(engine_lock_key(schema)) in held}


def schema_version(connection: psycopg.Connection, schema: str) -> int | None:
    row = connection.execute(
        sql.SQL("SELECT schema_version FROM {} LIMIT 1").format(table(schema, "schema_metadata"))
    ).fetchone()
    return None if row is None else int(row[0])


def check_schema(connection: psycopg.Connection, schema: str) -> None:
    version = schema_version(connection, schema)
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"engine schema {schema}: schema version {version} is not {SCHEMA_VERSION}, the version "
            f"tandem-tui reads (Tandem 0.6.9 .. 0.7.2); refusing to read it"
        )


def hot_stamps(connection: psycopg.Connection, schema: str) -> list[tuple[str, int, str, int]]:
    return connection.execute(
        sql.SQL(f"SELECT {STAMP_COLUMNS} FROM {{}} WHERE is_hot = 1").format(table(schema, "automation_runs"))
    ).fetchall()


def rows_by_id(connection: psycopg.Connection, schema: str, run_ids: Iterable[str], *, for_update: bool = False) -> list[RunRow]:
    ids = list(run_ids)
    out: list[RunRow] = []
    lock = " FOR UPDATE" if for_update else ""
    query = sql.SQL(f"SELECT {RUN_COLUMNS} FROM {{}} WHERE run_id = ANY(%s){lock}").format(
        table(schema, "automation_runs")
    )
    for start in range(0, len(ids), BATCH):
        out.extend(RunRow.of(values) for values in connection.execute(query, (ids[start : start + BATCH],)))
    return out


def archived_listing(connection: psycopg.Connection, schema: str) -> list[tuple[str, int, int]]:
    return connection.execute(
        sql.SQL("SELECT run_id, created_at_ms, updated_at_ms FROM {} WHERE is_hot = 0").format(
            table(schema, "automation_runs")
        )
    ).fetchall()
