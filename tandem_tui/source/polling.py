"""What the database stores share: following by polling, and a source over a follower.

SQLite (``PRAGMA data_version``) and PostgreSQL (row stamps) are both followed by
asking the store at an interval; a follower says what one poll found, and these two
classes turn that into the ``RunsSource`` reading contract once for both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from tandem_tui.domain.snapshot import Snapshot
from tandem_tui.source.base import SourceError

if TYPE_CHECKING:
    from tandem_tui.domain.models import Run

S = TypeVar("S", bound=Snapshot)


class PollingFollower(Generic[S]):
    """Follows a store by polling it every ``poll_interval_ms``.

    A subclass provides ``_lock``, ``poll_interval_ms``, ``_poll() -> (changed, news)``,
    ``_snapshot(changed) -> S`` and ``_drop_connection()``.
    """

    _lock: threading.Lock
    poll_interval_ms: int

    def iterate(self, stop: threading.Event) -> Iterator[S]:
        """A first snapshot, then one per change (or per new error), until ``stop``."""
        with self._lock:
            changed, _ = self._poll()
            first = self._snapshot(changed)
        yield first
        while not stop.wait(self.poll_interval_ms / 1000):
            with self._lock:
                changed, news = self._poll()
                snapshot = self._snapshot(changed) if news else None
            if snapshot is not None:
                yield snapshot

    def close(self) -> None:
        with self._lock:
            self._drop_connection()

    def _poll(self) -> tuple[frozenset[str], bool]:
        raise NotImplementedError

    def _snapshot(self, changed: frozenset[str] = frozenset()) -> S:
        raise NotImplementedError

    def _drop_connection(self) -> None:
        raise NotImplementedError


class _Follower(Protocol[S]):
    def load(self) -> S: ...

    def iterate(self, stop: threading.Event) -> Iterator[S]: ...

    def close(self) -> None: ...


class FollowedSource(Generic[S]):
    """``read``, ``load`` and ``follow`` of a source whose ``follower()`` makes a fresh
    follower; ``location`` names the store in a one-line error. Its snapshots hold
    whole runs, so ``full_runs`` and ``keep_full`` have nothing to read or keep."""

    def follower(self) -> _Follower[S]:
        raise NotImplementedError

    @property
    def location(self) -> str:
        raise NotImplementedError

    def read(self) -> S:
        """One read for a one-shot command; an unusable store raises :class:`SourceError`."""
        snapshot = self.load()
        if snapshot.freshness.stale:
            raise SourceError(snapshot.freshness.error or f"{self.location}: cannot read")
        return snapshot

    def load(self) -> S:
        """One read that never raises: a stale snapshot says why the store is unusable."""
        follower = self.follower()
        try:
            return follower.load()
        finally:
            follower.close()

    def follow(self, stop: threading.Event) -> Iterator[S]:
        follower = self.follower()
        try:
            yield from follower.iterate(stop)
        finally:
            follower.close()

    def full_runs(self, runs: Sequence[Run]) -> dict[str, Run]:
        """Its snapshots hold whole runs: each as it is, by run id."""
        return {run.run_id: run for run in runs}

    def keep_full(self, run_ids: Iterable[str]) -> None:
        """Nothing to do: its snapshots hold whole runs."""
