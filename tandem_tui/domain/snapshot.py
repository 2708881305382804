"""What one consistent read of a runs source looks like to its consumers.

Sources (``tandem_tui.source``) produce :class:`Snapshot` objects; the console and
``status --watch`` consume them. Kept in the domain so tests and benchmarks can build
one without reading anything.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tandem_tui.domain.models import Run

if TYPE_CHECKING:
    from tandem_tui.domain.scheduler import SchedulerMetrics
    from tandem_tui.domain.view import RunsView


@dataclass(frozen=True)
class Freshness:
    """How current a snapshot is.

    ``read_at_ms`` is when the runs it holds were last read successfully. ``stale`` is
    set when the latest attempt failed (``error`` says why, in one line: a parse error,
    a newer schema, the file missing) and the runs are the last good ones.
    """

    read_at_ms: int
    stale: bool = False
    error: str | None = None
    source_mtime_ns: int | None = None
    #: The store does not exist (yet): the console says where it looked instead of
    #: showing an error.
    missing: bool = False


@dataclass(frozen=True)
class MetricsSample:
    at_ms: int
    active_runs: int
    queued_by_reason: Mapping[str, int]
    p95_wait_ms: int

    @classmethod
    def of(cls, at_ms: int, metrics: SchedulerMetrics) -> MetricsSample:
        """The sparklines' sample of a view's metrics at ``at_ms``."""
        return cls(
            at_ms=at_ms,
            active_runs=metrics.active_runs,
            queued_by_reason=dict(metrics.queued_runs_by_reason),
            p95_wait_ms=metrics.p95_wait_ms,
        )


@dataclass
class MetricsSeries:
    """A short rolling history of the metrics, for the console's sparklines."""

    max_samples: int = 120
    samples: deque[MetricsSample] = field(default_factory=deque)

    def add(self, sample: MetricsSample) -> None:
        self.samples.append(sample)
        while len(self.samples) > self.max_samples:
            self.samples.popleft()

    def active(self) -> list[int]:
        return [s.active_runs for s in self.samples]

    def queued(self, reason: str | None = None) -> list[int]:
        if reason is None:
            return [sum(s.queued_by_reason.values()) for s in self.samples]
        return [s.queued_by_reason.get(reason, 0) for s in self.samples]

    def p95_wait(self) -> list[int]:
        return [s.p95_wait_ms for s in self.samples]


@dataclass(frozen=True)
class Snapshot:
    """One consistent view of the runs file.

    ``changed`` holds the ids of runs added, changed or removed since the previous
    snapshot (all ids for the first one). ``generation`` counts snapshots from 1.
    """

    #: Where the runs were read from, for display (a path, a database URL).
    location: str
    runs: Mapping[str, Run]
    view: RunsView
    freshness: Freshness
    changed: frozenset[str] = frozenset()
    generation: int = 1
    series: MetricsSeries | None = None
