"""The multi-run admission scheduler (server seed 000, ``AutomationScheduler``).

A run is admitted when no provider it needs is throttled for its tenant, its workspace
is not locked by another run, and a global capacity slot is free — checked in that
order, so the reason a run waits is the first obstacle it would hit. The scheduler
also keeps the queue metadata of waiting runs, the wait times of the last 1000
admissions, and the registry of node artifacts validated before a restart.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tandem_tui.domain.clock import Clock
from tandem_tui.domain.models import QueueReason, SchedulerMetadata, TenantContext
from tandem_tui.domain.rate_limit import RateLimitManager

#: How many of the most recent admission wait times the metrics are computed over.
WAIT_TIMES_KEPT = 1000

DEFAULT_MAX_CONCURRENT_RUNS = 8
MAX_CONCURRENT_RUNS_ENV = "TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS"
_UNSIGNED_TEXT = re.compile(r"\+?[0-9]+")


def max_concurrent_runs_from_env(env: Mapping[str, str]) -> int:
    """The global run cap: ``TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS``, default 8.

    Surrounding whitespace is ignored; a value that is not a positive integer
    (unparsable, zero, negative) falls back to the default, as on the server, rather
    than freezing every run in the queue.
    """
    raw = (env.get(MAX_CONCURRENT_RUNS_ENV) or "").strip()
    # Only what the server's `str::parse::<usize>` accepts: no sign but "+", no "_".
    if not _UNSIGNED_TEXT.fullmatch(raw) or int(raw) == 0:
        return DEFAULT_MAX_CONCURRENT_RUNS
    return int(raw)


def new_scheduler_metadata(
    *,
    tenant_context: TenantContext,
    queue_reason: QueueReason | None,
    queued_at_ms: int,
    **optional: Any,
) -> SchedulerMetadata:
    """Scheduler metadata as the server writes it: optional fields that are ``None`` are
    left out of the record (serde's ``skip_serializing_if``), ``queue_reason`` never is."""
    present = {name: value for name, value in optional.items() if value is not None}
    return SchedulerMetadata(
        tenant_context=tenant_context.model_copy(deep=True),
        queue_reason=queue_reason,
        queued_at_ms=queued_at_ms,
        **present,
    )


def round_half_away_from_zero(value: float) -> int:
    """Rust's ``f64::round`` for non-negative values (Python's ``round`` is banker's).

    ``x - floor(x)`` is exact in binary floating point, unlike ``floor(x + 0.5)``, which
    rounds 0.49999999999999994 up.
    """
    whole = math.floor(value)
    return whole + 1 if value - whole >= 0.5 else whole


def p95_index(count: int) -> int:
    """Index of the p95 sample in ``count`` sorted samples, as the server computes it."""
    return min(round_half_away_from_zero(count * 0.95), count - 1)


@dataclass(frozen=True)
class ValidatedArtifact:
    """A node output file whose content was validated before the run was interrupted."""

    path: str
    content_digest: str


@dataclass
class PreexistingArtifactRegistry:
    """run_id -> node_id -> artifact validated in an earlier life of the run."""

    artifacts: dict[str, dict[str, ValidatedArtifact]] = field(default_factory=dict)

    def register_validated(self, run_id: str, node_id: str, artifact: ValidatedArtifact) -> None:
        self.artifacts.setdefault(run_id, {})[node_id] = artifact

    def is_artifact_prevalidated(self, run_id: str, node_id: str) -> bool:
        return node_id in self.artifacts.get(run_id, {})

    def get_prevalidated_path(self, run_id: str, node_id: str) -> str | None:
        artifact = self.artifacts.get(run_id, {}).get(node_id)
        return artifact.path if artifact is not None else None

    def clear_run(self, run_id: str) -> None:
        self.artifacts.pop(run_id, None)


@dataclass(frozen=True)
class SchedulerMetrics:
    """The server's ``AutomationSchedulerMetrics``, field for field."""

    active_runs: int
    queued_runs_by_reason: dict[str, int]
    admitted_total: int
    completed_total: int
    avg_wait_ms: int
    p95_wait_ms: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "active_runs": self.active_runs,
            "queued_runs_by_reason": dict(self.queued_runs_by_reason),
            "admitted_total": self.admitted_total,
            "completed_total": self.completed_total,
            "avg_wait_ms": self.avg_wait_ms,
            "p95_wait_ms": self.p95_wait_ms,
        }


def wait_time_stats(wait_times: Iterable[int]) -> tuple[int, int]:
    """``(avg, p95)`` of admission wait times; both 0 when there are none."""
    ordered = sorted(wait_times)
    if not ordered:
        return 0, 0
    return sum(ordered) // len(ordered), ordered[p95_index(len(ordered))]


class AutomationScheduler:
    """Capacity slots, workspace locks, queue state and admission metrics."""

    def __init__(self, max_concurrent_runs: int, clock: Clock) -> None:
        self.max_concurrent_runs = max_concurrent_runs
        self.clock = clock
        #: run_id -> workspace root ("" when the run has none)
        self.active_runs: dict[str, str] = {}
        #: workspace root -> run_id holding it
        self.locked_workspaces: dict[str, str] = {}
        self.rate_limits = RateLimitManager(clock)
        self.preexisting_registry = PreexistingArtifactRegistry()
        self.admitted_total = 0
        self.completed_total = 0
        #: run_id -> why and since when it waits
        self.queue_state: dict[str, SchedulerMetadata] = {}
        self.wait_times: deque[int] = deque(maxlen=WAIT_TIMES_KEPT)

    def can_admit(
        self,
        run_id: str,
        workspace_root: str | None,
        required_providers: Iterable[str] = (),
    ) -> SchedulerMetadata | None:
        """``None`` when the run may start now, else the metadata saying why it waits."""
        return self.can_admit_for_tenant(
            run_id, workspace_root, required_providers, TenantContext.local_implicit()
        )

    def can_admit_for_tenant(
        self,
        run_id: str,
        workspace_root: str | None,
        required_providers: Iterable[str],
        tenant_context: TenantContext,
    ) -> SchedulerMetadata | None:
        for provider in required_providers:
            if self.rate_limits.is_provider_throttled_for_tenant(tenant_context, provider):
                return self._queued(
                    run_id, tenant_context, QueueReason.RATE_LIMIT, rate_limited_provider=provider
                )
        if workspace_root is not None and workspace_root in self.locked_workspaces:
            return self._queued(
                run_id, tenant_context, QueueReason.WORKSPACE_LOCK, resource_key=workspace_root
            )
        if self.is_at_capacity():
            return self._queued(run_id, tenant_context, QueueReason.CAPACITY)
        return None

    def _queued(
        self,
        run_id: str,
        tenant_context: TenantContext,
        reason: QueueReason,
        *,
        resource_key: str | None = None,
        rate_limited_provider: str | None = None,
    ) -> SchedulerMetadata:
        return new_scheduler_metadata(
            tenant_context=tenant_context,
            queue_reason=reason,
            resource_key=resource_key,
            rate_limited_provider=rate_limited_provider,
            queued_at_ms=self._queued_at(run_id),
        )

    def _queued_at(self, run_id: str) -> int:
        tracked = self.queue_state.get(run_id)
        return tracked.queued_at_ms if tracked is not None else self.clock.now_ms()

    def track_queue_state(self, run_id: str, metadata: SchedulerMetadata) -> None:
        self.queue_state[run_id] = metadata

    def admit_run(self, run_id: str, workspace_root: str | None) -> None:
        """Give the run a capacity slot and its workspace lock; record how long it waited."""
        root = workspace_root or ""
        if root:
            self.locked_workspaces[root] = run_id
        self.active_runs[run_id] = root
        self.admitted_total += 1
        tracked = self.queue_state.pop(run_id, None)
        if tracked is not None:
            self.record_wait_time(max(self.clock.now_ms() - tracked.queued_at_ms, 0))

    def record_wait_time(self, wait_ms: int) -> None:
        """Add one admission wait (also used to backfill a scheduler rebuilt from a file)."""
        self.wait_times.append(max(wait_ms, 0))

    def reserve_workspace(self, run_id: str, workspace_root: str | None) -> None:
        """Lock the workspace for the run without giving it a capacity slot."""
        if workspace_root:
            self.locked_workspaces[workspace_root] = run_id

    def release_capacity(self, run_id: str) -> None:
        if self.active_runs.pop(run_id, None) is not None:
            self.completed_total += 1

    def release_workspace(self, run_id: str) -> None:
        """Drop every lock the run holds, its validated artifacts and its queue state."""
        self.locked_workspaces = {
            root: holder for root, holder in self.locked_workspaces.items() if holder != run_id
        }
        self.preexisting_registry.clear_run(run_id)
        self.queue_state.pop(run_id, None)

    def release_run(self, run_id: str) -> None:
        self.release_capacity(run_id)
        self.release_workspace(run_id)

    def metrics(self) -> SchedulerMetrics:
        reasons: dict[str, int] = {}
        for metadata in self.queue_state.values():
            if metadata.queue_reason is not None:
                key = QueueReason(metadata.queue_reason).value
                reasons[key] = reasons.get(key, 0) + 1
        avg, p95 = wait_time_stats(self.wait_times)
        return SchedulerMetrics(
            active_runs=len(self.active_runs),
            queued_runs_by_reason=reasons,
            admitted_total=self.admitted_total,
            completed_total=self.completed_total,
            avg_wait_ms=avg,
            p95_wait_ms=p95,
        )

    def active_count(self) -> int:
        return len(self.active_runs)

    def is_at_capacity(self) -> bool:
        return len(self.active_runs) >= self.max_concurrent_runs
