"""``PostgresSource``: one console over a fleet of engines sharing a PostgreSQL database.

Every engine schema found (:func:`~tandem_tui.source.postgres.store.engine_schemas`) is
read like a SQLite store: its hot rows are live runs, its other rows the archive, its
changed rows re-read by stamp (:mod:`tandem_tui.source.sqlite.hotset`), each in one
short ``REPEATABLE READ`` transaction. Runs are keyed ``<engine>/<run_id>``
(:mod:`.fleet`); :class:`FleetSnapshot` says each run's engine and each engine's state.
An engine whose schema version is not 5 is listed with its refusal and no runs; the
others are still shown. Which engines are live comes from ``pg_locks``.

Actions on a run whose engine is not live are carried out by our core in one
transaction that first takes the engine's own write lock
(``pg_advisory_xact_lock(write_lock_key(schema))``) and checks again that the engine is
not live. Actions on a live engine's run go through that engine's HTTP API when its URL
is known (``engine_urls``: ``--engine-url SCHEMA=URL``; the token as for the other
sources), the same call and refusals as
:func:`~tandem_tui.source.engine.source.act_through_engine`; without a URL they are
refused (read-only), and nothing of ours writes a live engine's schema, ever.
Audit lines go to ``<data dir>/automation-runs/postgres/operator-audit.jsonl`` of the
local Tandem data dir, each naming its engine (``route`` ``engine`` for the API's).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tandem_tui.source.polling import FollowedSource, PollingFollower
from tandem_tui.domain.actions import ActionRequest, ActionResult, apply_action
from tandem_tui.domain.clock import SYSTEM_CLOCK, Clock
from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.domain.models import Run, RunStatus
from tandem_tui.domain.scheduler import max_concurrent_runs_from_env
from tandem_tui.domain.snapshot import Freshness, MetricsSample, MetricsSeries
from tandem_tui.domain.view import RunsView
from tandem_tui.source.base import ArchivedRead, ArchiveEntry, FoundRun, Month, Route, SourceDescription, SourceError
from tandem_tui.source.engine.detect import TokenSource, find_token
from tandem_tui.source.engine.source import act_through_engine, append_engine_audit, engine_audit_entry
from tandem_tui.source.file.store import default_runs_file_path
from tandem_tui.source.postgres import store
from tandem_tui.source.postgres.fleet import EngineInfo, FleetView, fleet_key, split_key
from tandem_tui.source.postgres.keys import write_lock_key
from tandem_tui.source.sqlite.follow import POLL_INTERVAL_MS, StoreSnapshot
from tandem_tui.source.sqlite.hotset import HotSet, read_hot
from tandem_tui.source.sqlite.perform import (
    HOLDING_STATUSES,
    EngineLiveError,
    audited,
    decide_on,
    done,
    normalized_request,
    not_found,
    refused,
    scheduler_from_rows,
)
from tandem_tui.source.sqlite.rows import RUN_COLUMNS, RunRow, StoreError, decode_row, encode_run_json
from tandem_tui.source.sqlite.source import archive_by_month, archived_read, found_run


@dataclass(frozen=True)
class FleetSnapshot(StoreSnapshot):
    """A :class:`StoreSnapshot` of a fleet: ``runs`` keyed ``<engine>/<run_id>``,
    ``engine_of`` each key's engine, ``engines`` each engine's state."""

    engine_of: Mapping[str, str] = field(default_factory=dict)
    engines: Mapping[str, EngineInfo] = field(default_factory=dict)


class _Engine:
    """One engine's hot set and view, as followed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hot = HotSet()
        self.view: RunsView | None = None
        self.runs: dict[str, Run] = {}
        self.error: str | None = None
        self.version: int | None = None


class FleetFollower(PollingFollower[FleetSnapshot]):
    """Reads every engine schema of one database into fleet snapshots."""

    def __init__(self, url: str, *, clock: Clock, max_concurrent_runs: int, poll_interval_ms: int = POLL_INTERVAL_MS) -> None:
        self.url = url
        self.clock = clock
        self.max_concurrent_runs = max_concurrent_runs
        self.poll_interval_ms = max(int(poll_interval_ms), 1)
        self.series = MetricsSeries()
        self._engines: dict[str, _Engine] = {}
        self._live: set[str] = set()
        self._connection: psycopg.Connection | None = None
        self._runs: dict[str, Run] = {}
        self._read_at_ms: int | None = None
        self._error: str | None = None
        self._generation = 0
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    @property
    def decoded_rows(self) -> int:
        return sum(engine.hot.decoded_rows for engine in self._engines.values())

    def load(self) -> FleetSnapshot:
        with self._lock:
            changed, _ = self._poll()
            return self._snapshot(changed)

    def _poll(self) -> tuple[frozenset[str], bool]:
        with gc_paused():
            return self._poll_paused()

    def _poll_paused(self) -> tuple[frozenset[str], bool]:
        now_ms = self.clock.now_ms()
        changed: set[str] = set()
        try:
            if self._connection is None or self._connection.closed:
                self._connection = store.connect(self.url)
            connection = self._connection
            schemas = store.engine_schemas(connection)
            live = store.live_engines(connection, schemas)
            news = live != self._live or set(schemas) != set(self._engines)
            self._live = live
            for gone in set(self._engines) - set(schemas):
                changed |= {fleet_key(gone, run_id) for run_id in self._engines.pop(gone).runs}
            for schema in schemas:
                engine = self._engines.setdefault(schema, _Engine(schema))
                engine_changed, engine_news = self._poll_engine(connection, engine, now_ms)
                changed |= {fleet_key(schema, run_id) for run_id in engine_changed}
                news = news or engine_news
        except Exception as error:  # noqa: BLE001 - psycopg's, ours, or a bad row: never raised
            # Engines read before the failure have moved on: their changes are said with
            # the next good snapshot.
            self._pending |= changed
            self._drop_connection()
            message = store.one_line(error if isinstance(error, (StoreError, psycopg.Error)) else f"cannot read ({type(error).__name__}: {error})")
            stale_news = message != self._error or self._read_at_ms is None
            self._error = message
            return frozenset(), stale_news
        first = self._read_at_ms is None
        was_stale = self._error is not None
        self._runs = {
            fleet_key(name, run_id): run for name, engine in sorted(self._engines.items()) for run_id, run in engine.runs.items()
        }
        self._read_at_ms = now_ms
        self._error = None
        self._record_sample(now_ms)
        if first:
            changed |= set(self._runs)
        changed |= self._pending
        self._pending = set()
        return frozenset(changed), bool(changed) or news or first or was_stale

    def _poll_engine(self, connection: psycopg.Connection, engine: _Engine, now_ms: int) -> tuple[frozenset[str], bool]:
        previous_error = engine.error
        try:
            with connection.transaction():
                connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                engine.version = store.schema_version(connection, engine.name)
                store.check_schema(connection, engine.name)
                changed = read_hot(
                    engine.hot,
                    lambda: store.hot_stamps(connection, engine.name),
                    lambda ids: store.rows_by_id(connection, engine.name, ids),
                    now_ms=now_ms,
                )
        except StoreError as error:
            engine.error = store.one_line(error)
            # Never shown as if readable: a refused engine's runs leave the view.
            gone = frozenset(engine.runs)
            engine.hot = HotSet()
            engine.runs = {}
            engine.view = RunsView.build({}, now_ms=now_ms, max_concurrent_runs=self.max_concurrent_runs)
            return gone, engine.error != previous_error
        engine.error = None
        previous, current = engine.runs, engine.hot.runs
        if engine.view is None:
            engine.view = RunsView.build(current, now_ms=now_ms, max_concurrent_runs=self.max_concurrent_runs)
            changed = frozenset(current) | changed
        elif changed:
            engine.view.observe(previous, current, now_ms=now_ms, changed=changed)
        engine.runs = current
        return changed, bool(changed) or previous_error is not None

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except psycopg.Error:
                pass
        self._connection = None

    def _view(self) -> FleetView:
        views = {
            name: engine.view
            for name, engine in self._engines.items()
            if engine.view is not None
        }
        return FleetView(views, self._runs)

    def _record_sample(self, now_ms: int) -> None:
        metrics = self._view().metrics()
        self.series.add(MetricsSample.of(now_ms, metrics))

    def _snapshot(self, changed: frozenset[str] = frozenset()) -> FleetSnapshot:
        self._generation += 1
        encrypted = frozenset(
            fleet_key(name, run_id) for name, engine in self._engines.items() for run_id in engine.hot.encrypted
        )
        opaque = {
            fleet_key(name, run_id): why for name, engine in self._engines.items() for run_id, why in engine.hot.opaque.items()
        }
        engines = {
            name: EngineInfo(
                name=name, live=name in self._live, runs=len(engine.runs), error=engine.error, schema_version=engine.version
            )
            for name, engine in sorted(self._engines.items())
        }
        return FleetSnapshot(
            location=store.redacted(self.url),
            runs=self._runs,
            view=self._view(),  # type: ignore[arg-type] - a RunsView look-alike
            freshness=Freshness(
                read_at_ms=self._read_at_ms if self._read_at_ms is not None else self.clock.now_ms(),
                stale=self._error is not None,
                error=self._error,
            ),
            changed=changed,
            generation=self._generation,
            series=self.series,
            encrypted=encrypted,
            opaque=opaque,
            engine_of={key: split_key(key)[0] for key in self._runs},
            engines=engines,
        )



class PostgresSource(FollowedSource[FleetSnapshot]):
    """Every engine schema in the database at ``url`` (``--postgres URL``)."""

    kind = "postgres"

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        env: Mapping[str, str] = os.environ,
        poll_interval_ms: int = POLL_INTERVAL_MS,
        audit_owner: str | os.PathLike[str] | None = None,
        console: bool = False,
        engine_urls: Mapping[str, str] | None = None,
        token_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.url = url
        #: Each live engine's API, by schema (``--engine-url SCHEMA=URL``).
        self.engine_urls = {schema: u.strip().rstrip("/") for schema, u in (engine_urls or {}).items()}
        self.token_file = token_file
        # A console polls once a second: each poll scans every engine's hot stamps.
        if console:
            poll_interval_ms = max(poll_interval_ms, 1_000)
        self.clock = clock
        self.env = env
        self.poll_interval_ms = poll_interval_ms
        self.max_concurrent_runs = max_concurrent_runs_from_env(env)
        #: The audit log is this "runs file"'s: ``<dir>/automation-runs/postgres/...``.
        self.audit_owner = Path(audit_owner) if audit_owner else default_runs_file_path(env).with_name("postgres")

    def describe(self) -> SourceDescription:
        location = store.redacted(self.url)
        try:
            connection = store.connect(self.url)
        except StoreError as error:
            return SourceDescription(
                kind=self.kind, location=location, route=Route.NONE, summary="database unreachable",
                why_read_only=str(error),
            )
        try:
            schemas = store.engine_schemas(connection)
            live = store.live_engines(connection, schemas)
        except psycopg.Error as error:
            return SourceDescription(
                kind=self.kind, location=location, route=Route.NONE, summary="database unreadable",
                why_read_only=store.one_line(error),
            )
        finally:
            connection.close()
        stopped = len(schemas) - len(live)
        via_api = sorted(schema for schema in live if schema in self.engine_urls)
        token = self.token() if via_api else TokenSource(None, "not needed")
        summary = f"{len(schemas)} engines · {len(live)} live"
        if via_api and token.found:
            summary += f" ({len(via_api)} via API)"
        if stopped:
            return SourceDescription(
                kind=self.kind, location=location, route=Route.POSTGRES,
                summary=f"{summary} · actions on stopped engines write their schema",
                engine_live=None if live else False,
            )
        if via_api and token.found:
            return SourceDescription(
                kind=self.kind, location=location, route=Route.ENGINE,
                summary=f"{summary} · actions via API" + ("" if len(via_api) == len(live) else " where the URL is known"),
                engine_live=True,
            )
        why = "no engine schema found"
        if schemas and via_api:
            why = f"every engine is live and there is no API token ({token.origin})"
        elif schemas:
            why = "every engine is live and no engine URL is known: give --engine-url SCHEMA=URL"
        return SourceDescription(
            kind=self.kind, location=location, route=Route.NONE, summary=f"{summary} · read-only",
            engine_live=True if schemas else None, why_read_only=why,
        )

    def token(self) -> TokenSource:
        """The API token for the live engines, found as for the other sources."""
        return find_token(self.token_file, self.env)

    def follower(self) -> FleetFollower:
        return FleetFollower(
            self.url, clock=self.clock, max_concurrent_runs=self.max_concurrent_runs, poll_interval_ms=self.poll_interval_ms
        )

    @property
    def location(self) -> str:
        return store.redacted(self.url)

    # -- the archive ------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        try:
            return store.connect(self.url)
        except StoreError as error:
            raise SourceError(str(error)) from None

    def _readable_schemas(self, connection: psycopg.Connection) -> list[str]:
        out = []
        for schema in store.engine_schemas(connection):
            try:
                store.check_schema(connection, schema)
            except StoreError:
                continue
            out.append(schema)
        return out

    def archive_months(self) -> dict[Month, list[ArchiveEntry]]:
        """Every engine's history rows, keyed ``<engine>/<run_id>``, newest month first."""
        connection = self._connect()
        try:
            listing = [
                (fleet_key(schema, run_id), created, updated)
                for schema in self._readable_schemas(connection)
                for run_id, created, updated in store.archived_listing(connection, schema)
            ]
        except psycopg.Error as error:
            raise SourceError(store.one_line(error)) from None
        finally:
            connection.close()
        return archive_by_month(listing)

    def read_archived(self, entries: Sequence[ArchiveEntry]) -> list[ArchivedRead]:
        try:
            connection = self._connect()
        except SourceError as error:
            return [ArchivedRead(entry, error=str(error)) for entry in entries]
        wanted: dict[str, list[str]] = {}
        for entry in entries:
            engine, run_id = split_key(entry.key)
            wanted.setdefault(engine, []).append(run_id)
        rows: dict[str, RunRow] = {}
        try:
            for engine, ids in wanted.items():
                for row in store.rows_by_id(connection, engine, ids):
                    rows[fleet_key(engine, row.run_id)] = row
        except psycopg.Error as error:
            return [ArchivedRead(entry, error=f"cannot read ({store.one_line(error)})") for entry in entries]
        finally:
            connection.close()
        now_ms = self.clock.now_ms()
        return [archived_read(entry, rows.get(entry.key), now_ms) for entry in entries]

    def find_run(self, run_id: str) -> FoundRun | None:
        """``<engine>/<run_id>``, or a bare run id found in exactly one engine."""
        connection = self._connect()
        try:
            located = self._locate(connection, run_id)
            if not isinstance(located, tuple):
                return None
            schema, bare = located
            rows = store.rows_by_id(connection, schema, [bare])
        except psycopg.Error as error:
            raise SourceError(store.one_line(error)) from None
        finally:
            connection.close()
        return found_run(decode_row(rows[0], now_ms=self.clock.now_ms())) if rows else None

    def _locate(self, connection: psycopg.Connection, run_id: str) -> tuple[str, str] | list[str]:
        """The (engine, run id) a key names; else the engines holding that bare id."""
        schemas = self._readable_schemas(connection)
        engine, _, bare = run_id.partition("/")
        if bare and engine in schemas:
            return engine, bare
        holders = [s for s in schemas if store.rows_by_id(connection, s, [run_id])]
        return (holders[0], run_id) if len(holders) == 1 else holders

    # -- acting -----------------------------------------------------------------------

    def perform(self, request: ActionRequest) -> ActionResult:
        """The run's engine, when live, acts through its API; else our core acts on its schema."""
        request = normalized_request(request, self.env)
        try:
            connection = store.connect(self.url)
        except StoreError as error:
            raise SourceError(str(error)) from None
        try:
            located = self._locate(connection, request.run_id)
            if isinstance(located, list):
                if not located:
                    return audited(self.audit_owner, request, not_found(request), self.clock)
                result = ActionResult(
                    ok=False, kind=request.kind, run_id=request.run_id, previous_status=None, new_status=None,
                    message=f"run {request.run_id} is in engines {', '.join(located)}: name it <engine>/{request.run_id}",
                )
                return audited(self.audit_owner, request, result, self.clock)
            schema, run_id = located
            live = bool(store.live_engines(connection, [schema]))
            if not live:
                try:
                    result = self._act(connection, schema, run_id, request)
                except EngineLiveError as error:  # it started meanwhile: no write was made
                    return self._engine_audited(request, schema, refused_live(request, str(error)), None, None)
        except psycopg.Error as error:
            raise SourceError(f"{store.redacted(self.url)}: {store.one_line(error)}") from None
        finally:
            connection.close()
        if live:
            return self._perform_on_engine(request, schema, run_id)
        return audited(self.audit_owner, request, result, self.clock, extra={"engine": schema})

    def _perform_on_engine(self, request: ActionRequest, schema: str, run_id: str) -> ActionResult:
        """A live engine's run: through its HTTP API, or refused when its URL is not known."""
        url = self.engine_urls.get(schema)
        if url is None:
            message = (
                f"engine {schema} is live (it holds its PostgreSQL engine lock) and its API URL is not known: "
                f"give --engine-url {schema}=URL. Nothing was written."
            )
            return self._engine_audited(request, schema, refused_live(request, message), None, None)
        result, reply = act_through_engine(request, run_id, url, self.token())
        return self._engine_audited(request, schema, result, url, reply)

    def _engine_audited(
        self, request: ActionRequest, schema: str, result: ActionResult, url: str | None, reply: object
    ) -> ActionResult:
        entry = engine_audit_entry(request, result, url or "", reply, at_ms=self.clock.now_ms(), env=self.env)
        extra = {"engine": schema, "engine_url": url}
        return append_engine_audit(self.audit_owner, entry, result, extra)

    def _act(self, connection: psycopg.Connection, schema: str, run_id: str, request: ActionRequest) -> ActionResult:
        self._refuse_if_live(connection, schema)
        with connection.transaction():
            # The engine's own write lock: no engine write interleaves with ours.
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (write_lock_key(schema),))
            self._refuse_if_live(connection, schema)
            try:
                store.check_schema(connection, schema)
            except StoreError as error:
                raise SourceError(str(error)) from None
            rows = store.rows_by_id(connection, schema, [run_id], for_update=True)
            if not rows:
                return not_found(request)
            now_ms = self.clock.now_ms()
            decoded = decode_row(rows[0], now_ms=now_ms)
            outcome = decide_on(decoded, request, now_ms)
            if isinstance(outcome, ActionResult):
                return outcome
            holders = connection.execute(
                store.sql.SQL(f"SELECT {RUN_COLUMNS} FROM {{}} WHERE is_hot = 1 AND status = ANY(%s)").format(
                    store.table(schema, "automation_runs")
                ),
                (list(HOLDING_STATUSES),),
            ).fetchall()
            scheduler = scheduler_from_rows(
                (RunRow.of(v) for v in holders), max_concurrent_runs=self.max_concurrent_runs, clock=self.clock
            )
            run = decoded.run
            apply_action(run, outcome, reason=request.reason, actor=request.actor or "", now_ms=now_ms, scheduler=scheduler)
            connection.execute(
                store.sql.SQL(
                    "UPDATE {} SET run_json = %s, status = %s, updated_at_ms = %s, is_hot = 1 WHERE run_id = %s"
                ).format(store.table(schema, "automation_runs")),
                (encode_run_json(decoded, run), RunStatus(run.status).value, run.updated_at_ms, run_id),
            )
            return done(request, outcome, run, archived=not decoded.row.is_hot, where=f" (engine {schema})")

    def _refuse_if_live(self, connection: psycopg.Connection, schema: str) -> None:
        if store.live_engines(connection, [schema]):
            raise EngineLiveError(
                f"engine {schema} is live (it holds its PostgreSQL engine lock): act through its HTTP API"
            )

    def close(self) -> None:
        """Nothing to release: followers close with their ``follow`` generator."""


def refused_live(request: ActionRequest, message: str) -> ActionResult:
    """A refusal because a live engine owns the run and cannot be used (the CLI's exit 2)."""
    return ActionResult(
        ok=False, kind=request.kind, run_id=request.run_id, previous_status=None, new_status=None,
        message=message, unusable=True,
    )

