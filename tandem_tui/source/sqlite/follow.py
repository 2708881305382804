"""Follows a SQLite store into :class:`Snapshot` objects, re-reading only changed rows.

One read-only connection is kept for the follower's life, because ``PRAGMA
data_version`` only tells a connection about *other* connections' commits: while it
stands still, a poll costs that one pragma. When it moves, one short read transaction
lists the hot rows' stamps and fetches the rows whose stamp changed
(:mod:`tandem_tui.source.sqlite.hotset`). Between polls no transaction is open, so the
engine's WAL checkpoints always complete. A read that fails (file gone, locked past the
busy timeout, another schema version) never raises: the snapshot keeps the last good
runs and says why it is stale.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tandem_tui.source.polling import PollingFollower
from tandem_tui.domain.clock import Clock
from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.domain.models import Run
from tandem_tui.domain.snapshot import Freshness, MetricsSample, MetricsSeries, Snapshot
from tandem_tui.domain.view import RunsView
from tandem_tui.source.sqlite import store
from tandem_tui.source.sqlite.hotset import HotSet, read_hot
from tandem_tui.source.sqlite.rows import StoreError

#: How often (ms) a follower asks ``PRAGMA data_version``.
POLL_INTERVAL_MS = 250


@dataclass(frozen=True)
class StoreSnapshot(Snapshot):
    """A :class:`Snapshot` of a database store.

    ``encrypted`` names the hot runs whose record is a ciphertext (listed from their
    plain columns); ``opaque`` says, per run id, why a record could not be read
    (``"encrypted"``, or the parse error). Such runs are never acted on.
    """

    encrypted: frozenset[str] = frozenset()
    opaque: Mapping[str, str] = field(default_factory=dict)


class SqliteFollower(PollingFollower[StoreSnapshot]):
    """Reads the hot set of one ``stateful_runtime.sqlite3`` into snapshots."""

    def __init__(
        self,
        database: str | os.PathLike[str],
        *,
        clock: Clock,
        max_concurrent_runs: int,
        poll_interval_ms: int = POLL_INTERVAL_MS,
        min_reload_interval_ms: int = 0,
    ) -> None:
        self.database = Path(database)
        #: A store committed to several times a second is re-read at most this often
        #: (the first commit after a quiet spell is read at once): with a large history
        #: each re-read scans the table, and a console shows one state a second.
        self.min_reload_interval_ms = max(int(min_reload_interval_ms), 0)
        self._last_read_at: float | None = None
        self.clock = clock
        self.max_concurrent_runs = max_concurrent_runs
        self.poll_interval_ms = max(int(poll_interval_ms), 1)
        self.hot = HotSet()
        self.series = MetricsSeries()
        #: Full reads done (a ``data_version`` that moved, or a retry after an error).
        self.reads = 0
        self._connection: sqlite3.Connection | None = None
        self._data_version: int | None = None
        self._view: RunsView | None = None
        self._runs: dict[str, Run] = {}
        self._read_at_ms: int | None = None
        self._error: str | None = None
        self._missing = False
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def decoded_rows(self) -> int:
        return self.hot.decoded_rows

    # -- reading ----------------------------------------------------------------------

    def load(self) -> StoreSnapshot:
        """Read now (if anything changed) and return a snapshot; never raises."""
        with self._lock:
            changed, _ = self._poll()
            return self._snapshot(changed)

    def _poll(self) -> tuple[frozenset[str], bool]:
        # Decoding rows and rebuilding the view allocate many acyclic objects: collections
        # they would trigger walk them all in vain (as in the runs-file watcher).
        with gc_paused():
            return self._poll_paused()

    def _poll_paused(self) -> tuple[frozenset[str], bool]:
        now_ms = self.clock.now_ms()
        try:
            connection = self._connect()
            version = store.data_version(connection)
            if version == self._data_version and self._error is None:
                return frozenset(), False
            if self._too_soon():
                return frozenset(), False  # the version stays unseen: read at a later poll
            self._last_read_at = time.monotonic()
            self.reads += 1
            with store.read_transaction(connection):
                store.check_schema(connection, str(self.database))
                changed = read_hot(
                    self.hot,
                    lambda: store.hot_stamps(connection),
                    lambda ids: store.rows_by_id(connection, ids),
                    now_ms=now_ms,
                )
            self._data_version = version
        except FileNotFoundError:
            self._drop_connection()
            self._missing = True
            return self._stale(f"{self.database.name}: file not found", now_ms)
        except StoreError as error:
            self._drop_connection()
            return self._stale(_one_line(str(error)), now_ms)
        except sqlite3.Error as error:
            self._drop_connection()
            return self._stale(_one_line(f"{self.database.name}: {error}"), now_ms)
        except Exception as error:  # noqa: BLE001 - a follower never takes the console down
            self._drop_connection()
            return self._stale(_one_line(f"{self.database.name}: cannot read ({type(error).__name__}: {error})"), now_ms)
        self._missing = False
        return self._apply(changed, now_ms)

    def _apply(self, changed: frozenset[str], now_ms: int) -> tuple[frozenset[str], bool]:
        previous = self._runs
        current = self.hot.runs
        first = self._view is None or self._read_at_ms is None
        if first:
            self._view = RunsView.build(current, now_ms=now_ms, max_concurrent_runs=self.max_concurrent_runs)
            changed = frozenset(current) | changed
        elif changed:
            assert self._view is not None
            self._view.observe(previous, current, now_ms=now_ms, changed=changed)
        was_stale = self._error is not None
        self._runs = current
        self._read_at_ms = now_ms
        self._error = None
        self._record_sample(now_ms)
        return changed, bool(changed) or was_stale or first

    def _too_soon(self) -> bool:
        if not self.min_reload_interval_ms or self._last_read_at is None or self._error is not None:
            return False
        return (time.monotonic() - self._last_read_at) * 1000 < self.min_reload_interval_ms

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = store.connect_read_only(self.database)
            self._data_version = None
        return self._connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except sqlite3.Error:
                pass
        self._connection = None
        self._data_version = None

    def _stale(self, error: str, now_ms: int) -> tuple[frozenset[str], bool]:
        news = error != self._error or self._view is None
        self._error = error
        if self._view is None:
            self._view = RunsView.build({}, now_ms=now_ms, max_concurrent_runs=self.max_concurrent_runs)
        return frozenset(), news

    def _record_sample(self, now_ms: int) -> None:
        assert self._view is not None
        metrics = self._view.metrics()
        self.series.add(MetricsSample.of(now_ms, metrics))

    def _snapshot(self, changed: frozenset[str] = frozenset()) -> StoreSnapshot:
        assert self._view is not None
        self._generation += 1
        return StoreSnapshot(
            location=str(self.database),
            runs=self._runs,
            view=self._view,
            freshness=Freshness(
                read_at_ms=self._read_at_ms if self._read_at_ms is not None else self.clock.now_ms(),
                stale=self._error is not None,
                error=self._error,
                missing=self._missing,
            ),
            changed=changed,
            generation=self._generation,
            series=self.series,
            encrypted=self.hot.encrypted,
            opaque=self.hot.opaque,
        )

    # -- following --------------------------------------------------------------------



def _one_line(text: str) -> str:
    return " ".join(text.split())

