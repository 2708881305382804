"""What the console and the command line show about runs, computed once.

Every figure both surfaces show comes from here, so ``tandem-tui status``, ``runs``,
``history`` and the console agree on the same snapshot (docs/architecture.md, "What the
figures mean", states the semantics; tests/test_agreement.py holds every surface to it):

- **durations and timestamps**: :func:`format_duration_ms`, :func:`format_age`,
  :func:`format_timestamp` (never raises, whatever the number), :func:`format_offset`;
- **time in status** (the ``in status`` column): :func:`status_since_ms`;
- **why a queued run waits**: :func:`reason_key` (a queue reason or ``ready``) and
  :func:`why_text`;
- **the figures** of a snapshot (:class:`Figures`, :func:`figures`): active, queued by
  reason including ``ready``, admitted, completed, wait times, runs by status, locks;
- **timeline rows** of a run's history (:func:`timeline_rows`) with the operator marker;
- **one-line errors** (:func:`one_line`).

Pure: no textual, no rich, no I/O. Text from runs is returned as is; making it literal
on screen is :mod:`tandem_tui.safe_text`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tandem_tui.domain import events
from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.domain.lifecycle import is_bookkeeping_event
from tandem_tui.domain.models import LifecycleRecord, QueueReason, Run, RunStatus
from tandem_tui.domain.scheduler import WAIT_TIMES_KEPT, wait_time_stats
from tandem_tui.domain.view import (
    READY,
    QueueInfo,
    RunsView,
    format_countdown,
    last_queue_entry_ms,
    seconds_text,
)

__all__ = [
    "IN_STATUS",
    "READY",
    "REASON_ORDER",
    "Figures",
    "TimelineRow",
    "figures",
    "format_age",
    "format_countdown",
    "format_duration_ms",
    "format_event_time",
    "format_offset",
    "format_timestamp",
    "detail_text",
    "in_status_text",
    "is_operator_event",
    "one_line",
    "reason_key",
    "status_since_ms",
    "timeline_rows",
    "why_text",
]

# ── durations and timestamps ──────────────────────────────────────────────────


def format_duration_ms(ms: int | None) -> str:
    """A compact duration: ``850ms``, ``12s``, ``4m05s``, ``3h07m``, ``2d04h``; ``-`` for None."""
    if ms is None:
        return "-"
    if ms < 0:
        return "-" + format_duration_ms(-ms)
    if ms < 1000:
        return f"{ms}ms"
    return seconds_text(ms // 1000)


def format_age(then_ms: int | None, now_ms: int) -> str:
    """How long ago ``then_ms`` was, e.g. ``4m05s ago``; ``-`` when unknown."""
    if then_ms is None:
        return "-"
    return f"{format_duration_ms(max(0, now_ms - then_ms))} ago"


def _utc(ms: int) -> datetime | None:
    """The UTC moment, or ``None`` when no calendar date has it (year > 9999, NaN...)."""
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _out_of_range(ms: int) -> str:
    return f"{ms}ms (out of range)"


def format_timestamp(ms: int | None) -> str:
    """UTC wall time as ``2026-11-23 15:50:37``; ``-`` when unknown.

    Never raises: a number no calendar can show (a year after 9999) prints as the
    number itself, ``<ms>ms (out of range)``.
    """
    if ms is None:
        return "-"
    moment = _utc(ms)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else _out_of_range(ms)


def format_event_time(ms: int, *, with_date: bool) -> str:
    """A timeline's time column: ``15:50:37``, or ``11-23 15:50:37`` when events span days."""
    moment = _utc(ms)
    if moment is None:
        return _out_of_range(ms)
    return moment.strftime("%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def format_offset(offset_ms: int) -> str:
    """``+0s``, ``+850ms``, ``+4m05s``: time since a run's first event (whole seconds
    from one second on)."""
    if offset_ms == 0:
        return "+0s"
    if offset_ms >= 1000:
        offset_ms -= offset_ms % 1000
    return "+" + format_duration_ms(offset_ms)


def one_line(error: object) -> str:
    """An error message as one line: every run of whitespace (newlines too) one space."""
    return " ".join(str(error).split())


# ── time in status ────────────────────────────────────────────────────────────

#: The column header of :func:`status_since_ms`, on every surface.
IN_STATUS = "in status"

_ACTIVE = frozenset({RunStatus.RUNNING, RunStatus.PAUSING})


def _last_admission_ms(run: Run) -> int | None:
    for record in reversed(run.checkpoint.lifecycle_history):
        if record.event == events.RUN_EXECUTION_CLAIMED:
            return record.recorded_at_ms
    return None


def status_since_ms(run: Run, queue: QueueInfo | None) -> int:
    """When the run entered the status it has now: the start of its "in status" time.

    - ``queued``: when it last entered the queue (the view's queue entry; a missing or
      zero one falls back to the run's history: its latest re-entry, else creation);
    - ``running``, ``pausing``: when it was last admitted (its latest
      ``run_execution_claimed``), else ``started_at_ms``, else ``updated_at_ms``;
    - finished (completed, failed, blocked, cancelled): ``finished_at_ms``, else
      ``updated_at_ms``;
    - ``paused``, ``awaiting_approval``: ``updated_at_ms`` (its last change).
    """
    status = run.status
    if status == RunStatus.QUEUED:
        if queue is not None and queue.queued_at_ms:
            return queue.queued_at_ms
        return last_queue_entry_ms(run)
    if status in _ACTIVE:
        admitted = _last_admission_ms(run)
        if admitted is not None:
            return admitted
        return run.started_at_ms or run.updated_at_ms
    if run.is_terminal:
        return run.finished_at_ms or run.updated_at_ms
    return run.updated_at_ms


def in_status_text(since_ms: int, now_ms: int) -> str:
    """The ``in status`` cell: time since ``since_ms`` (never negative)."""
    return format_duration_ms(max(0, now_ms - since_ms))


def detail_text(run: Run) -> str:
    """The ``detail`` column: the run's detail, else why it stopped, paused or resumed,
    else its last failure (raw: make it literal before showing it)."""
    for text in (run.detail, run.stop_reason, run.pause_reason, run.resume_reason):
        if text:
            return text
    failure = run.checkpoint.last_failure
    return failure.reason if failure is not None and failure.reason else ""


# ── why a queued run waits ────────────────────────────────────────────────────

#: Queue reasons in the order the scheduler checks them, then ``ready``.
REASON_ORDER: tuple[str, ...] = (
    QueueReason.CAPACITY.value,
    QueueReason.WORKSPACE_LOCK.value,
    QueueReason.RATE_LIMIT.value,
    QueueReason.RETRY_BACKOFF.value,
    READY,
)


def reason_key(queue: QueueInfo) -> str:
    """The queue reason's value, or ``ready`` when nothing holds the run back."""
    return QueueReason(queue.reason).value if queue.reason is not None else READY


def why_text(queue: QueueInfo | None) -> str:
    """Why a queued run waits, short enough for a table (the ``why waiting`` column):
    the view's text, with a lock's holder first (it must survive 80 columns)."""
    if queue is None:
        return ""
    if queue.reason == QueueReason.WORKSPACE_LOCK and queue.holder_run_id:
        return f"lock · {queue.holder_run_id}"
    return queue.text


def retry_text(remaining_ms: int) -> str:
    """``retry backoff · 42s`` while a backoff runs, ``retry due`` once it ended."""
    return f"retry backoff · {format_countdown(remaining_ms)}" if remaining_ms > 0 else "retry due"


# ── the figures of a snapshot ─────────────────────────────────────────────────


@dataclass(frozen=True)
class Figures:
    """What the header of the console and ``tandem-tui status`` show about a snapshot.

    A pure function of the runs in the snapshot (and the view's verdicts on them), never
    of how long a console has been watching: see docs/architecture.md, "What the
    figures mean".
    """

    #: Runs holding a capacity slot (status ``running``).
    active: int
    capacity: int
    #: Queued runs by why they wait, in :data:`REASON_ORDER`, zero counts left out;
    #: ``ready`` counts queued runs nothing holds back.
    queued_by_reason: Mapping[str, int]
    #: Admissions (``run_execution_claimed`` events) recorded in the runs of the
    #: snapshot, at least the number of active runs.
    admitted: int
    #: ``admitted`` minus ``active``: admitted runs that gave their slot back.
    completed: int
    avg_wait_ms: int
    p95_wait_ms: int
    runs_by_status: Mapping[str, int] = field(default_factory=dict)
    locked_workspaces: Mapping[str, str] = field(default_factory=dict)

    @property
    def queued_total(self) -> int:
        return sum(self.queued_by_reason.values())

    @property
    def queued_held(self) -> dict[str, int]:
        """Queued counts for the scheduler's reasons only (``ready`` left out)."""
        return {key: n for key, n in self.queued_by_reason.items() if key != READY}

    @property
    def runs_total(self) -> int:
        return sum(self.runs_by_status.values())

    def status_json(self) -> dict[str, Any]:
        """The ``status --json`` object: the server's ``AutomationSchedulerMetrics``
        fields (``queued_runs_by_reason`` holds the scheduler's reasons, sorted), then ours."""
        return {
            "active_runs": self.active,
            "queued_runs_by_reason": dict(sorted(self.queued_held.items())),
            "admitted_total": self.admitted,
            "completed_total": self.completed,
            "avg_wait_ms": self.avg_wait_ms,
            "p95_wait_ms": self.p95_wait_ms,
            "max_concurrent_runs": self.capacity,
            "queued_ready": self.queued_by_reason.get(READY, 0),
            "queued_total": self.queued_total,
            "runs_by_status": dict(self.runs_by_status),
            "locked_workspaces": dict(sorted(self.locked_workspaces.items())),
        }


def queued_counts(queue_infos: Iterable[QueueInfo]) -> dict[str, int]:
    """Counts by :func:`reason_key`, in :data:`REASON_ORDER`, zeros left out."""
    counts: dict[str, int] = {}
    for info in queue_infos:
        key = reason_key(info)
        counts[key] = counts.get(key, 0) + 1
    ordered = {key: counts.pop(key) for key in REASON_ORDER if key in counts}
    return {**ordered, **dict(sorted(counts.items()))}


def figures(runs: Mapping[str, Run], view: RunsView, now_ms: int) -> Figures:
    """The figures of one snapshot (see :class:`Figures`).

    Queued counts come from the same :meth:`RunsView.queue_info` verdicts the run lists
    show, so a total always equals the rows it counts. Admissions and wait times come
    from the runs' histories, as :meth:`RunsView.build` backfills them. The collector
    is held off meanwhile: the pass allocates one object per event.
    """
    with gc_paused():
        return _figures(runs, view, now_ms)


def _figures(runs: Mapping[str, Run], view: RunsView, now_ms: int) -> Figures:
    by_status = {status.value: 0 for status in RunStatus}
    queued: list[QueueInfo] = []
    active = 0
    for run in runs.values():
        status = run.status
        if type(status) is not RunStatus:  # a validated run holds a member already
            status = RunStatus(status)
        by_status[status.value] += 1
        if status == RunStatus.QUEUED:
            info = view.queue_info(run, now_ms)
            if info is not None:
                queued.append(info)
        elif status == RunStatus.RUNNING:
            active += 1
    # The view remembers each unchanged run's admissions from the last snapshot: at
    # 10k runs reading every history again was most of a console's cost per change.
    found = view.admissions_in_order(runs.values())
    avg, p95 = wait_time_stats(a.wait_ms for a in found[-WAIT_TIMES_KEPT:])
    admitted = max(len(found), active)
    return Figures(
        active=active,
        capacity=view.max_concurrent_runs,
        queued_by_reason=queued_counts(queued),
        admitted=admitted,
        completed=max(admitted - active, 0),
        avg_wait_ms=avg,
        p95_wait_ms=p95,
        runs_by_status=by_status,
        locked_workspaces=dict(sorted(view.scheduler.locked_workspaces.items())),
    )


# ── a run's lifecycle history ─────────────────────────────────────────────────


def is_operator_event(record: LifecycleRecord) -> bool:
    """An action an operator took through tandem-tui: its metadata's ``source`` is
    :data:`~tandem_tui.domain.events.OPERATOR_SOURCE`. The event's name says nothing
    about who acted: the engine pauses runs too (guardrails, spend caps)."""
    return events.is_operator_event(record.metadata)


@dataclass(frozen=True)
class TimelineRow:
    """One lifecycle event as every timeline shows it.

    ``index`` is the event's position in the stored history; rows are in time order
    (ties keep stored order), ``offset_ms`` counts from the earliest event.
    """

    index: int
    record: LifecycleRecord
    offset_ms: int
    operator: bool
    bookkeeping: bool

    @property
    def event(self) -> str:
        return self.record.event

    @property
    def reason(self) -> str:
        return self.record.reason or ""

    @property
    def offset_text(self) -> str:
        return format_offset(self.offset_ms)

    @property
    def stop_kind(self) -> str:
        return self.record.stop_kind.value if self.record.stop_kind is not None else ""


#: Put before an operator action's event name, on every timeline.
OPERATOR_MARKER = "◆"


def timeline_rows(run: Run) -> list[TimelineRow]:
    """The run's lifecycle history in time order, offsets from the first event."""
    records = sorted(enumerate(run.checkpoint.lifecycle_history), key=lambda item: item[1].recorded_at_ms)
    if not records:
        return []
    first = records[0][1].recorded_at_ms
    return [
        TimelineRow(
            index=index,
            record=record,
            offset_ms=record.recorded_at_ms - first,
            operator=is_operator_event(record),
            bookkeeping=is_bookkeeping_event(record.event),
        )
        for index, record in records
    ]


def spans_days(rows: Iterable[TimelineRow]) -> bool:
    """Whether the events fall on more than one UTC day (the time column then has dates)."""
    days = {moment.date() for row in rows if (moment := _utc(row.record.recorded_at_ms)) is not None}
    return len(days) > 1
