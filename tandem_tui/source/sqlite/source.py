"""``SqliteSource``: the engine's SQLite store (Tandem 0.6.9 .. 0.7.2) behind ``RunsSource``.

Hot rows (``is_hot = 1``) are the live view; the other rows are the archive, listed by
month (UTC, from ``max(updated_at_ms, created_at_ms)`` as shards are filed) and read on
demand. Actions are carried out by our core on the store when the engine lock says no
engine is live (:mod:`tandem_tui.source.sqlite.perform`); with a live engine this source
is read-only and :meth:`describe` says so: sending the action to the engine's HTTP API
is the caller's route decision (``tandem_tui.source.engine``), not this source's.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from tandem_tui.source.polling import FollowedSource
from tandem_tui.domain.actions import ActionRequest, ActionResult
from tandem_tui.domain.clock import SYSTEM_CLOCK, Clock
from tandem_tui.domain.scheduler import max_concurrent_runs_from_env
from tandem_tui.source.base import (
    ArchivedRead,
    ArchiveEntry,
    FoundRun,
    Month,
    Route,
    SourceDescription,
    SourceError,
)
from tandem_tui.source.file.shards import is_nonterminal_recovered_context_run, utc_month
from tandem_tui.source.sqlite import store
from tandem_tui.source.sqlite.engine_lock import EngineLockState, engine_lock_state
from tandem_tui.source.sqlite.follow import POLL_INTERVAL_MS, SqliteFollower, StoreSnapshot
from tandem_tui.source.sqlite.rows import DATABASE_FILE_NAME, ENGINE_LOCK_FILE_NAME, DecodedRow, StoreError, decode_row


#: How often (ms) a console re-reads a store committed to many times a second.
CONSOLE_MIN_RELOAD_INTERVAL_MS = 1_000


class SqliteSource(FollowedSource[StoreSnapshot]):
    """One ``stateful_runtime.sqlite3``. ``env`` gives the scheduler cap and the action
    defaults; ``poll_interval_ms`` how often a follower asks ``PRAGMA data_version``;
    ``console=True`` paces re-reads of a busy store."""

    kind = "sqlite"

    def __init__(
        self,
        database: str | os.PathLike[str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        env: Mapping[str, str] = os.environ,
        poll_interval_ms: int = POLL_INTERVAL_MS,
        console: bool = False,
    ) -> None:
        self.database = database_path(database)
        self.console = console
        self.clock = clock
        self.env = env
        self.poll_interval_ms = poll_interval_ms
        self.max_concurrent_runs = max_concurrent_runs_from_env(env)

    @property
    def engine_lock_path(self) -> Path:
        return self.database.parent / ENGINE_LOCK_FILE_NAME

    def engine_state(self) -> EngineLockState:
        return engine_lock_state(self.engine_lock_path)

    # -- what it is -------------------------------------------------------------------

    def describe(self) -> SourceDescription:
        state = self.engine_state()
        if state.live is False:
            summary = "engine stopped · actions write the SQLite store"
            if self._authoritative() is False:
                # The engine merges the runs file into the store at its next start (the
                # newer updated_at_ms wins), so what we write still counts.
                summary += " · legacy runs file not yet imported"
            return SourceDescription(
                kind=self.kind, location=str(self.database), route=Route.SQLITE,
                summary=summary, engine_live=False,
            )
        why = (
            f"an engine is live ({state.why}): actions go through its HTTP API"
            if state.live
            else f"cannot tell whether an engine is live ({state.why})"
        )
        return SourceDescription(
            kind=self.kind, location=str(self.database), route=Route.NONE,
            summary="engine live · read-only" if state.live else "engine unknown · read-only",
            engine_live=state.live, why_read_only=why,
        )

    def _authoritative(self) -> bool | None:
        """Whether the engine's one-time import of the runs file is complete; ``None``
        when the store cannot be read (describe never raises)."""
        try:
            connection = store.connect_read_only(self.database)
        except (OSError, StoreError):
            return None
        try:
            return store.legacy_import_complete(connection)
        finally:
            connection.close()

    # -- reading ----------------------------------------------------------------------

    def follower(self) -> SqliteFollower:
        return SqliteFollower(
            self.database, clock=self.clock, max_concurrent_runs=self.max_concurrent_runs,
            poll_interval_ms=self.poll_interval_ms,
            min_reload_interval_ms=CONSOLE_MIN_RELOAD_INTERVAL_MS if self.console else 0,
        )

    @property
    def location(self) -> str:
        return str(self.database)

    # -- the archive ------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = store.connect_read_only(self.database)
        except FileNotFoundError:
            raise SourceError(f"{self.database}: no such file") from None
        except StoreError as error:
            raise SourceError(str(error)) from None
        try:
            store.check_schema(connection, str(self.database))
        except StoreError as error:
            connection.close()
            raise SourceError(str(error)) from None
        return connection

    def archive_months(self) -> dict[Month, list[ArchiveEntry]]:
        """Every history row, newest month first, from three plain columns."""
        connection = self._connect()
        try:
            with store.read_transaction(connection):
                listing = store.archived_listing(connection)
        except sqlite3.Error as error:
            raise SourceError(f"{self.database}: {error}") from None
        finally:
            connection.close()
        return archive_by_month(listing)

    def read_archived(self, entries: Sequence[ArchiveEntry]) -> list[ArchivedRead]:
        try:
            connection = self._connect()
        except SourceError as error:
            return [ArchivedRead(entry, error=str(error)) for entry in entries]
        try:
            with store.read_transaction(connection):
                rows = {row.run_id: row for row in store.rows_by_id(connection, [e.key for e in entries])}
        except sqlite3.Error as error:
            return [ArchivedRead(entry, error=f"cannot read ({error})") for entry in entries]
        finally:
            connection.close()
        now_ms = self.clock.now_ms()
        return [archived_read(entry, rows.get(entry.key), now_ms) for entry in entries]

    def find_run(self, run_id: str) -> FoundRun | None:
        """The row with this id, hot or history; an unusable store raises."""
        connection = self._connect()
        try:
            with store.read_transaction(connection):
                rows = store.rows_by_id(connection, [run_id])
        except sqlite3.Error as error:
            raise SourceError(f"{self.database}: {error}") from None
        finally:
            connection.close()
        if not rows:
            return None
        return found_run(decode_row(rows[0], now_ms=self.clock.now_ms()))

    # -- acting -----------------------------------------------------------------------

    def perform(self, request: ActionRequest) -> ActionResult:
        from tandem_tui.source.sqlite.perform import perform

        try:
            return perform(self.database, request, clock=self.clock, env=self.env, engine_state=self.engine_state)
        except StoreError as error:
            raise SourceError(" ".join(str(error).split())) from None

    def close(self) -> None:
        """Nothing to release: followers close with their ``follow`` generator."""


def database_path(path: str | os.PathLike[str]) -> Path:
    """The database a ``--sqlite`` path names: the file itself, or the store inside a
    data directory (or a state directory's ``data/``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        for candidate in (path / DATABASE_FILE_NAME, path / "data" / DATABASE_FILE_NAME):
            if candidate.exists():
                return candidate
        return path / DATABASE_FILE_NAME
    return path


def month_of(created_at_ms: int, updated_at_ms: int) -> Month:
    """The (year, month), UTC, a run is filed under: ``max(updated, created)``, as shards."""
    return utc_month(max(created_at_ms, updated_at_ms, 0))


def archive_by_month(listing: Sequence[tuple[str, int, int]]) -> dict[Month, list[ArchiveEntry]]:
    months: dict[Month, list[ArchiveEntry]] = {}
    for run_id, created, updated in listing:
        month = month_of(int(created), int(updated))
        months.setdefault(month, []).append(ArchiveEntry(key=str(run_id), name=str(run_id), month=month))
    return {month: sorted(months[month], key=lambda e: e.key) for month in sorted(months, reverse=True)}


def archived_read(entry: ArchiveEntry, row, now_ms: int) -> ArchivedRead:
    """One history row as an :class:`ArchivedRead`; an unreadable record is an error line."""
    if row is None:
        return ArchivedRead(entry, error="no longer in the store")
    decoded = decode_row(row, now_ms=now_ms)
    if decoded.opaque is not None:
        why = "encrypted record: only its columns can be read" if decoded.encrypted else decoded.opaque
        return ArchivedRead(entry, error=why)
    return ArchivedRead(entry, run=decoded.run, hidden=is_nonterminal_recovered_context_run(decoded.run))


def found_run(decoded: DecodedRow) -> FoundRun | None:
    archived = not decoded.row.is_hot
    if archived and is_nonterminal_recovered_context_run(decoded.run):
        return None
    return FoundRun(decoded.run, archived=archived)
