"""The scheduler's view of a runs file: queue reasons, locks and wait-time metrics.

The runs file holds run records, not the server's in-memory scheduler. :class:`RunsView`
rebuilds an :class:`AutomationScheduler` from one snapshot of the file, then keeps it in
step with later snapshots through the same status-to-scheduler sync the lifecycle core
uses, so the console and the CLI show what the server's scheduler would hold.

How a scheduler is rebuilt from a snapshot (:meth:`RunsView.build`):

- ``running`` runs are admitted with their workspace root; ``pausing`` runs reserve
  their workspace (they keep the lock while they settle). No wait time is recorded for
  these admissions: how long they waited comes from their history (below).
- ``queued`` runs with persisted ``scheduler`` metadata are tracked with it as is.
  Queued runs without metadata are tracked with what admission says now (reason
  ``None`` when they are admissible), queued since they last entered the queue. Rate
  limits are not in the file, so a computed reason is never ``rate_limit``.
- Wait times are backfilled from lifecycle histories. An admission is a
  ``run_execution_claimed`` event; its wait is the time since the run last entered the
  queue before it — its creation, or a ``run_resumed``, ``run_recovered*``,
  ``run_auto_resumed`` or ``run_execution_claim_expired_requeued`` event, or, after a
  ``node_retry_backoff_scheduled`` event, the moment the backoff ended (the event's
  ``retry_after_ms``). Two admissions with no re-entry between them both measure from
  that same entry, as stated. Waits are never negative. The last 1000 admissions by
  admission time are kept, like the server's window.
- ``admitted_total`` is the number of admissions found, and at least the number of
  running runs (a run can be running without a recorded claim). ``completed_total`` is
  ``admitted_total`` minus the runs holding a capacity slot now, never below zero: every
  admitted run that no longer runs gave its slot back, which is what the server counts.

Live transitions between snapshots (:meth:`RunsView.observe`) go through
:func:`~tandem_tui.domain.lifecycle.sync_scheduler_for_transition`; a ``queued`` →
``running`` transition is an admission whose wait is ``now - queued_at``, recorded
once. A run seen for the first time arrives from nowhere (no slot, no lock); a run
that vanished gives back whatever it held. Computed queue reasons are judged again
only when their workspace becomes locked or free, or when capacity fills up or frees,
so the counts never go stale and an update costs the changed runs plus the runs whose
reason really changed, not the whole file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from tandem_tui.domain import events
from tandem_tui.domain.clock import Clock, ManualClock
from tandem_tui.domain.lifecycle import sync_scheduler_for_transition
from tandem_tui.domain.models import (
    LifecycleRecord,
    QueueReason,
    Run,
    RunStatus,
    SchedulerMetadata,
)
from tandem_tui.domain.retry import retry_backoff_remaining_ms
from tandem_tui.domain.scheduler import (
    WAIT_TIMES_KEPT,
    AutomationScheduler,
    SchedulerMetrics,
    DEFAULT_MAX_CONCURRENT_RUNS,
)

RETRY_BACKOFF_EVENT = "node_retry_backoff_scheduled"

#: The ``--reason`` value for queued runs that nothing holds back.
READY = "ready"


# ── pure rules over one run's history ─────────────────────────────────────────


def queue_entry_at_ms(record: LifecycleRecord) -> int | None:
    """When the event put the run (back) in the queue, or ``None`` if it did not."""
    event = record.event
    if event in events.REQUEUE_EVENTS or event.startswith(events.RUN_RECOVERED_PREFIX):
        return record.recorded_at_ms
    if event == RETRY_BACKOFF_EVENT:
        metadata = record.metadata
        retry_after = metadata.get("retry_after_ms") if isinstance(metadata, dict) else None
        # bool is an int in Python; a flag is not a timestamp.
        if isinstance(retry_after, int) and not isinstance(retry_after, bool) and retry_after >= 0:
            return retry_after
        return record.recorded_at_ms
    return None


@dataclass(frozen=True)
class Admission:
    """One admission found in a run's history."""

    run_id: str
    admitted_at_ms: int
    wait_ms: int


#: What an event name means to :func:`admissions`: an admission, or a (possible) queue
#: entry (:func:`queue_entry_at_ms` says when); other names, but for the recovered
#: prefix, mean nothing to it.
_CLAIM, _ENTRY = 1, 2
_EVENT_KINDS: dict[str, int] = {
    events.RUN_EXECUTION_CLAIMED: _CLAIM,
    RETRY_BACKOFF_EVENT: _ENTRY,
    **{event: _ENTRY for event in events.REQUEUE_EVENTS},
}


def _admission(run_id: str, admitted_at_ms: int, wait_ms: int) -> Admission:
    # Without the frozen dataclass's __init__ (a setattr per field): a 10k-run file
    # has ~10k admissions, read at every first screen.
    admission = object.__new__(Admission)
    admission.__dict__.update(run_id=run_id, admitted_at_ms=admitted_at_ms, wait_ms=wait_ms)
    return admission


def admissions(run: Run) -> list[Admission]:
    """Every ``run_execution_claimed`` event of the run, with its wait (see module doc)."""
    entered = run.created_at_ms
    found: list[Admission] = []
    kinds = _EVENT_KINDS
    prefix = events.RUN_RECOVERED_PREFIX
    # The same walk as queue_entry_at_ms on every record, without a call per record:
    # most events (node_started, node_completed, ...) are neither kind.
    for record in run.checkpoint.lifecycle_history:
        event = record.event
        kind = kinds.get(event)
        if kind == _CLAIM:
            recorded = record.recorded_at_ms
            found.append(_admission(run.run_id, recorded, max(recorded - entered, 0)))
        elif kind == _ENTRY or event.startswith(prefix):
            entry = queue_entry_at_ms(record)
            if entry is not None:
                entered = entry
    return found


def last_queue_entry_ms(run: Run) -> int:
    """When the run last entered the queue: its latest re-entry event, else its creation."""
    entered = run.created_at_ms
    for record in run.checkpoint.lifecycle_history:
        entry = queue_entry_at_ms(record)
        if entry is not None:
            entered = entry
    return entered


def in_admission_order(found: list[Admission]) -> list[Admission]:
    """``found`` sorted in place into admission order (oldest first), and returned."""
    found.sort(key=_ADMISSION_ORDER)
    return found


# Sort keys as C-level getters (no Python call per item: 10k items a first screen).
_ADMISSION_ORDER = attrgetter("admitted_at_ms", "run_id")
#: Oldest first, as the claim path picks queued runs.
_CLAIM_ORDER = attrgetter("created_at_ms", "run_id")


def format_countdown(ms: int) -> str:
    """Remaining time rounded up to whole seconds: ``12s``, ``4m05s``, ``3h07m``, ``2d04h``."""
    return seconds_text(max(math.ceil(ms / 1000), 0))


def seconds_text(seconds: int) -> str:
    """Whole seconds, compact: ``12s``, ``4m05s``, ``3h07m``, ``2d04h`` (two units at most)."""
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


# ── what the view reports ─────────────────────────────────────────────────────


@dataclass(frozen=True)
class QueueInfo:
    """Why a queued run waits, as data and as a short text for a table column.

    ``persisted`` is true when the reason comes from the run's own ``scheduler``
    metadata, false when it is what admission says now. ``queued_at_ms`` is when the
    run entered the queue, as far as the view knows.
    """

    reason: QueueReason | None
    text: str
    holder_run_id: str | None = None
    provider: str | None = None
    retry_remaining_ms: int | None = None
    slots_used: int | None = None
    capacity: int | None = None
    persisted: bool = False
    queued_at_ms: int | None = None


@dataclass(frozen=True)
class LockInfo:
    """A locked workspace: who holds it, and the queued runs for it (oldest first)."""

    workspace: str
    holder_run_id: str
    holder_status: RunStatus | None
    queued_run_ids: tuple[str, ...]
    claim_expired: bool


class RunsView:
    """A scheduler rebuilt from runs-file snapshots (see the module docstring)."""

    def __init__(self, scheduler: AutomationScheduler) -> None:
        self.scheduler = scheduler
        # Queued runs tracked with a computed (not persisted) reason, indexed by what
        # can change their verdict: a lock on their workspace, or capacity filling up
        # or freeing (which only matters to runs judged "capacity" or admissible).
        self._judged: dict[str, Run] = {}
        self._judged_on_workspace: dict[str, set[str]] = {}
        self._judged_by_reason: dict[QueueReason | None, set[str]] = {}
        # The clock the view made for itself follows the snapshots' "now".
        self._own_clock: ManualClock | None = None
        # Each run's admissions, by id, with the run object they were read from: a
        # snapshot shares the objects of runs that did not change, so the figures of a
        # snapshot re-read only the histories that changed (see admissions_of).
        self._admissions: dict[str, tuple[Run, list[Admission]]] = {}
        # Those admissions in admission order, once asked for (admissions_in_order).
        self._ordered: list[Admission] | None = None

    @property
    def max_concurrent_runs(self) -> int:
        return self.scheduler.max_concurrent_runs

    @classmethod
    def build(
        cls,
        runs: Mapping[str, Run],
        *,
        now_ms: int,
        max_concurrent_runs: int | None = None,
        clock: Clock | None = None,
    ) -> RunsView:
        if max_concurrent_runs is None:
            max_concurrent_runs = DEFAULT_MAX_CONCURRENT_RUNS
        own_clock = None
        if clock is None:
            clock = own_clock = ManualClock(now_ms)
        view = cls(AutomationScheduler(max_concurrent_runs, clock))
        view._own_clock = own_clock
        scheduler = view.scheduler
        ordered = sorted(runs.values(), key=_CLAIM_ORDER)
        for run in ordered:
            if run.status == RunStatus.RUNNING:
                scheduler.admit_run(run.run_id, run.workspace_root)
            elif run.status == RunStatus.PAUSING:
                scheduler.reserve_workspace(run.run_id, run.workspace_root)
        # Queued runs are judged against the holders above, never against each other:
        # a queued run holds no slot and no lock.
        for run in ordered:
            if run.status == RunStatus.QUEUED:
                view._track(run, queued_at_ms=last_queue_entry_ms(run))
        # Through the view's memo, so the snapshot's figures do not read every history again.
        found = view.admissions_in_order(ordered)
        for admission in found[-WAIT_TIMES_KEPT:]:
            scheduler.record_wait_time(admission.wait_ms)
        scheduler.admitted_total = max(len(found), scheduler.active_count())
        scheduler.completed_total = max(scheduler.admitted_total - scheduler.active_count(), 0)
        return view

    # ── keeping up with later snapshots ──────────────────────────────────────

    def observe(
        self,
        previous: Mapping[str, Run],
        current: Mapping[str, Run],
        *,
        now_ms: int,
        changed: Iterable[str] | None = None,
    ) -> None:
        """Apply the transitions between two snapshots.

        ``changed`` names the run ids added, changed or removed; only those are looked
        at, so the cost follows the change, not the file. Without it every id in either
        snapshot is compared. Runs leaving the queue are handled before runs entering
        it, so a newly queued run is judged against this snapshot's holders.
        """
        scheduler = self.scheduler
        if self._own_clock is not None:
            self._own_clock.set(now_ms)
        ids = sorted(previous.keys() | current.keys() if changed is None else set(changed))
        was_at_capacity = scheduler.is_at_capacity()
        # Only the workspaces of changed runs can have been locked or released.
        workspaces = {
            run.workspace_root
            for run_id in ids
            for run in (previous.get(run_id), current.get(run_id))
            if run is not None and run.workspace_root is not None
        }
        was_locked = {root: root in scheduler.locked_workspaces for root in workspaces}
        queued: list[tuple[Run | None, Run, int]] = []
        for run_id in ids:
            before, after = previous.get(run_id), current.get(run_id)
            if after is None:
                if before is not None:
                    self._forget(run_id)
                    scheduler.release_run(run_id)
            elif after.status == RunStatus.QUEUED:
                queued.append((before, after, self._queue_entry(before, after, now_ms)))
            else:
                self._forget(run_id)
                self._observe_leaving_or_moving(before, after, now_ms)
        # Every slot and lock has moved by now: judge the queued runs against the end
        # state, never against a half-applied one.
        for before, after, queued_at in queued:
            self._track(after, queued_at_ms=queued_at)
        self._rejudge(
            [root for root, locked in was_locked.items() if (root in scheduler.locked_workspaces) != locked],
            capacity_flipped=scheduler.is_at_capacity() != was_at_capacity,
        )

    def _rejudge(self, workspaces: Iterable[str], *, capacity_flipped: bool) -> None:
        """Judge again the runs whose computed reason the last changes may have changed.

        A verdict changes only when the run's workspace becomes locked or free, or when
        capacity fills up or frees (for runs not held by a lock): a lock passing from
        one holder to another changes nothing.
        """
        stale: set[str] = set()
        for workspace in workspaces:
            stale |= self._judged_on_workspace.get(workspace, set())
        if capacity_flipped:
            stale |= self._judged_by_reason.get(QueueReason.CAPACITY, set())
            stale |= self._judged_by_reason.get(None, set())
        for run_id in stale:
            queued_at = self.scheduler.queue_state[run_id].queued_at_ms
            self._track(self._judged[run_id], queued_at_ms=queued_at)

    def _queue_entry(self, before: Run | None, after: Run, now_ms: int) -> int:
        """Sync a run that is queued now; return since when it has been queued."""
        tracked = self.scheduler.queue_state.get(after.run_id)
        if before is not None and before.status == RunStatus.QUEUED:
            return tracked.queued_at_ms if tracked is not None else last_queue_entry_ms(after)
        if before is not None:
            # Giving up a slot or a lock (retry backoff, requeue) happens now.
            sync_scheduler_for_transition(self.scheduler, before.status, after)
        # It entered the queue between the two snapshots; its history may say when.
        entered = last_queue_entry_ms(after)
        if before is not None and entered <= before.updated_at_ms:
            entered = now_ms
        return entered

    def _observe_leaving_or_moving(self, before: Run | None, after: Run, now_ms: int) -> None:
        scheduler = self.scheduler
        # A run seen for the first time comes from nowhere: no slot, no lock, like a
        # queued run. Leaving the queue, its tracked state goes, and becomes a wait
        # time if it was admitted: recorded here, once, whatever the scheduler's clock.
        tracked = scheduler.queue_state.pop(after.run_id, None)
        if before is None:
            sync_scheduler_for_transition(scheduler, RunStatus.QUEUED, after)
            return
        if before.status == after.status:
            return
        sync_scheduler_for_transition(scheduler, before.status, after)
        if before.status == RunStatus.QUEUED and after.status == RunStatus.RUNNING and tracked is not None:
            scheduler.record_wait_time(now_ms - tracked.queued_at_ms)

    def _track(self, run: Run, *, queued_at_ms: int) -> None:
        """Track a queued run: its persisted metadata, else what admission says now."""
        scheduler = self.scheduler
        self._forget(run.run_id)
        if run.scheduler is not None:
            scheduler.track_queue_state(run.run_id, run.scheduler.model_copy(deep=True))
            return
        # Judge without the run's own stale entry, so the verdict's queued_at is ours.
        scheduler.queue_state.pop(run.run_id, None)
        verdict = scheduler.can_admit_for_tenant(run.run_id, run.workspace_root, (), run.tenant_context)
        if verdict is None:
            verdict = SchedulerMetadata(tenant_context=run.tenant_context.model_copy(deep=True))
        verdict.queued_at_ms = queued_at_ms
        scheduler.track_queue_state(run.run_id, verdict)
        self._judged[run.run_id] = run
        if run.workspace_root is not None:
            self._judged_on_workspace.setdefault(run.workspace_root, set()).add(run.run_id)
        self._judged_by_reason.setdefault(verdict.queue_reason, set()).add(run.run_id)

    def _forget(self, run_id: str) -> None:
        """Drop a run from the judged indexes (not from the scheduler's queue state)."""
        run = self._judged.pop(run_id, None)
        if run is None:
            return
        root = run.workspace_root
        if root is not None:
            self._judged_on_workspace[root].discard(run_id)
            if not self._judged_on_workspace[root]:
                del self._judged_on_workspace[root]
        for ids in self._judged_by_reason.values():
            ids.discard(run_id)

    # ── questions about runs ─────────────────────────────────────────────────

    def admissions_of(self, runs: Iterable[Run]) -> list[Admission]:
        """Every admission in ``runs`` (unordered): :func:`admissions` of each run.

        A run object seen by the last call is not read again; the memo then holds
        exactly the runs of this call, so it never outgrows one snapshot. Runs are
        records nobody mutates in place (a change is a new object), which is what makes
        identity a safe key.
        """
        return self._collect(runs)[0]

    def admissions_in_order(self, runs: Iterable[Run]) -> list[Admission]:
        """``in_admission_order(self.admissions_of(runs))``, not sorted again when
        ``runs`` are the very objects of the last call (the view's build and the first
        figures of the same snapshot both ask). The list is shared: read it, never
        change it."""
        if self._ordered is not None:
            runs = list(runs)
            if self._same_runs(runs):
                return self._ordered
        found, same = self._collect(runs)
        if not same or self._ordered is None:
            self._ordered = in_admission_order(found)
        return self._ordered

    def _same_runs(self, runs: list[Run]) -> bool:
        """Whether ``runs`` are exactly the run objects the memo was made of."""
        previous = self._admissions
        if len(runs) != len(previous):
            return False
        for run in runs:
            cached = previous.get(run.run_id)
            if cached is None or cached[0] is not run:
                return False
        return len({run.run_id for run in runs}) == len(previous)

    def _collect(self, runs: Iterable[Run]) -> tuple[list[Admission], bool]:
        """:meth:`admissions_of`, and whether ``runs`` were exactly the run objects of
        the last call (every one found in the memo, and as many)."""
        previous = self._admissions
        memo: dict[str, tuple[Run, list[Admission]]] = {}
        found: list[Admission] = []
        hits = misses = 0
        for run in runs:
            cached = previous.get(run.run_id)
            if cached is not None and cached[0] is run:
                entry = cached
                hits += 1
            else:
                entry = (run, admissions(run) if run.checkpoint.lifecycle_history else [])
                misses += 1
            memo[run.run_id] = entry
            found.extend(entry[1])
        same = not misses and hits == len(memo) == len(previous)
        if not same:
            self._ordered = None
        self._admissions = memo
        return found, same

    def queue_info(self, run: Run, now_ms: int) -> QueueInfo | None:
        """Why a queued run waits: its persisted metadata, else what admission says now."""
        if run.status != RunStatus.QUEUED:
            return None
        scheduler = self.scheduler
        tracked = scheduler.queue_state.get(run.run_id)
        queued_at = tracked.queued_at_ms if tracked is not None else None
        metadata = run.scheduler
        persisted = metadata is not None and metadata.queue_reason is not None
        if not persisted:
            metadata = scheduler.can_admit_for_tenant(
                run.run_id, run.workspace_root, (), run.tenant_context
            )
        elif queued_at is None:
            queued_at = metadata.queued_at_ms
        reason = QueueReason(metadata.queue_reason) if metadata is not None and metadata.queue_reason else None
        base = {"reason": reason, "persisted": persisted, "queued_at_ms": queued_at}
        if metadata is None or reason is None:
            return QueueInfo(text=READY, **base)
        if reason == QueueReason.CAPACITY:
            used, cap = scheduler.active_count(), scheduler.max_concurrent_runs
            return QueueInfo(text=f"capacity {used}/{cap}", slots_used=used, capacity=cap, **base)
        if reason == QueueReason.WORKSPACE_LOCK:
            workspace = metadata.resource_key or run.workspace_root
            holder = scheduler.locked_workspaces.get(workspace) if workspace else None
            # Persisted metadata outlives the lock it names (an operator released it,
            # the holder finished): say the workspace is free rather than imply a holder.
            text = f"workspace lock · {holder}" if holder else "workspace lock · free now"
            return QueueInfo(text=text, holder_run_id=holder, **base)
        if reason == QueueReason.RATE_LIMIT:
            provider = metadata.rate_limited_provider
            text = f"rate limit · {provider}" if provider else "rate limit"
            return QueueInfo(text=text, provider=provider, **base)
        remaining = retry_backoff_remaining_ms(run, now_ms)
        if remaining:
            text = f"retry backoff · {format_countdown(remaining)}"
        else:
            text = "retry due"
        return QueueInfo(text=text, retry_remaining_ms=remaining, **base)

    def locks(self, runs: Mapping[str, Run], now_ms: int) -> list[LockInfo]:
        """Every locked workspace, sorted by workspace."""
        waiting: dict[str, list[Run]] = {}
        locked = self.scheduler.locked_workspaces
        for run in runs.values():
            # The status first: a workspace root is read (and trimmed) for queued runs only.
            if run.status == RunStatus.QUEUED:
                root = run.workspace_root
                if root in locked:
                    waiting.setdefault(root, []).append(run)
        out: list[LockInfo] = []
        for workspace, holder_id in sorted(self.scheduler.locked_workspaces.items()):
            holder = runs.get(holder_id)
            claim = holder.execution_claim if holder is not None else None
            queued = tuple(r.run_id for r in sorted(waiting.get(workspace, ()), key=_CLAIM_ORDER))
            out.append(
                LockInfo(
                    workspace=workspace,
                    holder_run_id=holder_id,
                    holder_status=holder.status if holder is not None else None,
                    queued_run_ids=queued,
                    claim_expired=claim is not None and claim.is_expired(now_ms),
                )
            )
        return out

    def expired_claims(self, runs: Mapping[str, Run], now_ms: int) -> list[str]:
        """Runs whose execution claim lease has expired, earliest expiry first."""
        expired = [
            run
            for run in runs.values()
            if run.execution_claim is not None and run.execution_claim.is_expired(now_ms)
        ]
        expired.sort(key=lambda r: (r.execution_claim.lease_expires_at_ms, r.run_id))  # type: ignore[union-attr]
        return [run.run_id for run in expired]

    def metrics(self) -> SchedulerMetrics:
        return self.scheduler.metrics()

    def status_report(self, runs: Mapping[str, Run]) -> dict[str, Any]:
        """The ``status --json`` object: the server's metrics fields, then ours."""
        metrics = self.metrics().as_dict()
        metrics["queued_runs_by_reason"] = dict(sorted(metrics["queued_runs_by_reason"].items()))
        by_status = {status.value: 0 for status in RunStatus}
        for run in runs.values():
            by_status[RunStatus(run.status).value] += 1
        return {
            **metrics,
            "max_concurrent_runs": self.scheduler.max_concurrent_runs,
            "runs_by_status": by_status,
            "locked_workspaces": dict(sorted(self.scheduler.locked_workspaces.items())),
        }
