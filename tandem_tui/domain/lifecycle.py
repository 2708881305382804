"""The run lifecycle: recording events, the run update rule, and status-to-scheduler sync.

Ported from the server's `update_automation_v2_run`, `refresh_stale_running_detail`,
`record_automation_lifecycle_event_with_metadata` and
`sync_automation_scheduler_for_run_transition`. Every status change in tandem-tui goes
through :func:`apply_run_update`, so the scheduler and the record never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from tandem_tui.domain import events
from tandem_tui.domain.models import (
    TERMINAL_STATUSES,
    LifecycleRecord,
    Run,
    RunStatus,
    StopKind,
)

if TYPE_CHECKING:
    from tandem_tui.domain.scheduler import AutomationScheduler



def is_terminal(status: RunStatus) -> bool:
    return status in TERMINAL_STATUSES


def uses_capacity(status: RunStatus) -> bool:
    """Only a running run occupies one of the global capacity slots."""
    return status == RunStatus.RUNNING


def holds_workspace_lock(status: RunStatus) -> bool:
    """A running run holds its workspace, and a pausing one keeps it while it settles."""
    return status in (RunStatus.RUNNING, RunStatus.PAUSING)


def is_bookkeeping_event(event: str) -> bool:
    return event in events.CLAIM_BOOKKEEPING_EVENTS


def with_execution_profile(metadata: Any, profile: str) -> dict[str, Any]:
    """Event metadata always names the run's effective execution profile."""
    if metadata is None:
        return {"effective_execution_profile": profile}
    if isinstance(metadata, dict):
        return {**metadata, "effective_execution_profile": profile}
    return {"value": metadata, "effective_execution_profile": profile}


def record_lifecycle_event(
    run: Run,
    event: str,
    reason: str | None = None,
    stop_kind: StopKind | None = None,
    metadata: Any = None,
    *,
    now_ms: int,
) -> LifecycleRecord:
    """Append one event to the run's lifecycle history and return it."""
    # As the server writes it: an absent reason or stop kind is left out, not null.
    optional: dict[str, Any] = {}
    if reason is not None:
        optional["reason"] = reason
    if stop_kind is not None:
        optional["stop_kind"] = stop_kind
    record = LifecycleRecord(
        event=event,
        recorded_at_ms=now_ms,
        metadata=with_execution_profile(metadata, run.effective_execution_profile.value),
        **optional,
    )
    run.checkpoint.lifecycle_history.append(record)
    return record


def detail_node_id(detail: str) -> str | None:
    """The node named in a detail such as "running node `draft` attempt 1"."""
    _, sep, tail = detail.partition("node `")
    if not sep:
        return None
    node_id, sep, _ = tail.partition("`")
    if not sep or not node_id.strip():
        return None
    return node_id


def refresh_stale_running_detail(run: Run) -> None:
    """A running run whose detail names an already completed node gets a current detail."""
    if run.status != RunStatus.RUNNING or run.detail is None:
        return
    stale_node_id = detail_node_id(run.detail)
    checkpoint = run.checkpoint
    if stale_node_id is None or stale_node_id not in checkpoint.completed_nodes:
        return
    for node_id in checkpoint.pending_nodes:
        if node_id in checkpoint.completed_nodes or node_id in checkpoint.blocked_nodes:
            continue
        attempt = checkpoint.node_attempts.get(node_id, 0)
        if attempt > 0:
            run.detail = f"running node `{node_id}` attempt {attempt}"
            return
    run.detail = f"completed node `{stale_node_id}`; continuing"


def sync_scheduler_for_transition(
    scheduler: AutomationScheduler, previous: RunStatus, run: Run
) -> None:
    """Make the scheduler's slots and locks follow a run's status change.

    The server's ``sync_automation_scheduler_for_run_transition``: a run that keeps
    neither slot nor lock is released whole; otherwise what it lost is released and
    what it gained is taken (a run gaining its lock together with a slot is admitted,
    one gaining only the lock reserves the workspace).
    """
    had_capacity, has_capacity = uses_capacity(previous), uses_capacity(run.status)
    had_lock, has_lock = holds_workspace_lock(previous), holds_workspace_lock(run.status)
    run_id = run.run_id
    if (had_capacity or had_lock) and not has_capacity and not has_lock:
        scheduler.release_run(run_id)
        return
    if had_capacity and not has_capacity:
        scheduler.release_capacity(run_id)
    if had_lock and not has_lock:
        scheduler.release_workspace(run_id)
    if not had_lock and has_lock:
        if has_capacity:
            scheduler.admit_run(run_id, run.workspace_root)
        else:
            scheduler.reserve_workspace(run_id, run.workspace_root)
        return
    if not had_capacity and has_capacity:
        scheduler.admit_run(run_id, run.workspace_root)


def apply_run_update(
    run: Run,
    mutate: Callable[[Run], None],
    *,
    now_ms: int,
    scheduler: AutomationScheduler | None = None,
) -> RunStatus:
    """The server's update rule, in place. Returns the status the run had before.

    Apply the change, refresh a stale "running node" detail, drop scheduler metadata
    unless the run is queued, drop the execution claim unless the run is running (v0.6.5+),
    stamp ``updated_at_ms``, stamp ``finished_at_ms`` once on a terminal status, and sync
    the scheduler (when one is given).
    """
    previous = run.status
    mutate(run)
    refresh_stale_running_detail(run)
    if run.status != RunStatus.QUEUED:
        run.scheduler = None
    if run.status != RunStatus.RUNNING:
        run.execution_claim = None
    run.updated_at_ms = now_ms
    if is_terminal(run.status) and run.finished_at_ms is None:
        run.finished_at_ms = now_ms
    if scheduler is not None:
        sync_scheduler_for_transition(scheduler, previous, run)
    return previous


def last_activity_at_ms(run: Run) -> int:
    """When the run last did something real: its latest non-bookkeeping event, else its start."""
    latest = max(
        (
            record.recorded_at_ms
            for record in run.checkpoint.lifecycle_history
            if not is_bookkeeping_event(record.event)
        ),
        default=None,
    )
    if latest is not None:
        return latest
    return run.started_at_ms if run.started_at_ms is not None else run.created_at_ms


def in_progress_node_ids(run: Run) -> list[str]:
    """Pending nodes that have been attempted and are neither completed nor blocked."""
    checkpoint = run.checkpoint
    done: Iterable[str] = set(checkpoint.completed_nodes) | set(checkpoint.blocked_nodes)
    return [
        node_id
        for node_id in checkpoint.pending_nodes
        if node_id not in done and checkpoint.node_attempts.get(node_id, 0) > 0
    ]
