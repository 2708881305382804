"""The one seam between where runs live and what shows or changes them: ``RunsSource``.

The console (``tandem_tui.ui``) and every command (``tandem_tui.commands``) talk to a
``RunsSource`` and to nothing else; each place runs live is one package below
``tandem_tui.source`` implementing it (``file/`` for the runs file and its history
shards; the SQLite store and PostgreSQL later). ``engine/`` wraps a source and routes
its actions through a live engine's HTTP API (``EngineRoutedSource``). A test runs
the same contract against every source (``tests/source/test_contract.py``).

What a source promises:

- :meth:`RunsSource.describe` says what it is, cheaply and without raising: kind,
  location, whether an engine is live, and the route an action would take.
- :meth:`RunsSource.read` is one consistent read for a one-shot command; an unusable
  store raises :class:`SourceError` with a one-line message.
- :meth:`RunsSource.load` is one read that never raises, for a console that opens
  once without following: what cannot be read comes back as a *stale* snapshot saying
  why (``Snapshot.freshness``), like :meth:`follow`'s.
- :meth:`RunsSource.follow` yields a first snapshot, then one per change, until ``stop``
  is set; it never raises for bad data: a snapshot that cannot be taken is *stale* and
  keeps the last good runs (``Snapshot.freshness``).
- The archive (runs no longer in the hot set) is listed by month from cheap metadata
  (:meth:`archive_months`), read in batches on demand (:meth:`read_archived`), and
  looked up by id (:meth:`find_run` looks in the hot set first).
- Followed snapshots (a console's, ``status --watch``'s) may hold runs as summaries
  (:class:`~tandem_tui.domain.run_summary.RunSummary`: what the dashboard reads, not
  the whole record). :meth:`full_runs` gives the whole records, as the store holds them
  now; :meth:`keep_full` names the runs whose next versions come whole (an open run
  detail). A source whose snapshots hold whole runs returns them as they are.
- :meth:`perform` carries out one :class:`~tandem_tui.domain.actions.ActionRequest`
  by the route :meth:`describe` names, audits it, and never raises for a refusal (the
  result says why); an unusable store raises :class:`SourceError`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    # Names in annotations only: importing this module (every command does, for
    # SourceError) must not load the action rules or the models it does not use.
    from tandem_tui.domain.actions import ActionRequest, ActionResult
    from tandem_tui.domain.models import Run
    from tandem_tui.domain.run_summary import RunSummary
    from tandem_tui.domain.snapshot import Snapshot

#: (year, month), UTC.
Month = tuple[int, int]


class SourceError(Exception):
    """A store that cannot be used, in one line (the CLI's exit 2)."""


class Route(StrEnum):
    """Where an action goes."""

    #: Our core writes the runs file (and shards): no engine is live.
    FILE = "file"
    #: Our core writes the SQLite store: no engine is live.
    SQLITE = "sqlite"
    #: Our core writes a PostgreSQL engine schema: its engine is not live.
    POSTGRES = "postgres"
    #: The live engine's HTTP API.
    ENGINE = "engine"
    #: Nothing may act (read-only, or a live engine we cannot reach).
    NONE = "none"


@dataclass(frozen=True)
class SourceDescription:
    """What a source is, for the console's header and ``tandem-tui engine``.

    ``summary`` is the few words the header shows (``engine stopped · actions write the
    runs file``); ``why_read_only`` is set when :attr:`route` is ``Route.NONE``.
    """

    kind: str
    location: str
    route: Route
    summary: str
    engine_live: bool | None = None
    why_read_only: str | None = None


@dataclass(frozen=True)
class ArchiveEntry:
    """One archived run as listed, before it is read.

    ``key`` names it for :meth:`RunsSource.read_archived` (a shard path, a row id);
    ``name`` is what a search can match before reading it (the sanitized run id of a
    shard file, the run id of a database row).
    """

    key: str
    name: str
    month: Month


@dataclass(frozen=True)
class ArchivedRead:
    """Reading one archive entry: the run, or the one-line reason it could not be read.

    ``hidden`` marks a run the server would not show (a non-terminal
    ``recovered_context_run``).
    """

    entry: ArchiveEntry
    run: Run | None = None
    error: str | None = None
    hidden: bool = False


@dataclass(frozen=True)
class FoundRun:
    """A run looked up by id: where it was found."""

    run: Run
    archived: bool


@runtime_checkable
class RunsSource(Protocol):
    """A place runs live. See the module docstring for the contract."""

    def describe(self) -> SourceDescription: ...

    def read(self) -> Snapshot: ...

    def load(self) -> Snapshot: ...

    def follow(self, stop: threading.Event) -> Iterator[Snapshot]: ...

    def archive_months(self) -> dict[Month, list[ArchiveEntry]]: ...

    def read_archived(self, entries: Sequence[ArchiveEntry]) -> list[ArchivedRead]: ...

    def find_run(self, run_id: str) -> FoundRun | None: ...

    def full_runs(self, runs: Sequence[Run | RunSummary]) -> dict[str, Run]: ...

    def keep_full(self, run_ids: Iterable[str]) -> None: ...

    def perform(self, request: ActionRequest) -> ActionResult: ...

    def close(self) -> None: ...
