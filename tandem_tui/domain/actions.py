"""Operator actions, the pure half: what pause, resume, requeue, cancel and release-lock do.

:func:`preview` says what an action would do to a run now, or why not (the console's
confirmation), :func:`decide` adds the stale-view guard, and :func:`apply_action` carries
an allowed transition out in place through the lifecycle update rule, with events whose
metadata names the operator. Persisting and auditing belong to a source
(``tandem_tui.source.file.perform`` for the runs file). No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tandem_tui.domain import events, recover, serde_shape
from tandem_tui.domain.claims import ABANDONED_CLAIM_DETAIL, run_has_expired_launch_claim_without_progress
from tandem_tui.domain.clock import Clock
from tandem_tui.domain.lifecycle import apply_run_update, record_lifecycle_event
from tandem_tui.domain.models import (
    QueueReason,
    Run,
    RunStatus,
    StopKind,
    dump_model,
    dump_run,
    workspace_root_of,
)
from tandem_tui.domain.retry import retry_backoff_is_due
from tandem_tui.domain.scheduler import AutomationScheduler


class ActionKind(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    REQUEUE = "requeue"
    CANCEL = "cancel"
    RELEASE_LOCK = "release_lock"

    @property
    def verb(self) -> str:
        return self.value.replace("_", " ")


EVENT_PAUSE_REQUESTED = events.RUN_PAUSE_REQUESTED
EVENT_PAUSED = events.RUN_PAUSED
EVENT_RESUMED = events.RUN_RESUMED
EVENT_RECOVERED = events.RUN_RECOVERED
EVENT_RECOVERED_FROM_PAUSE = events.RUN_RECOVERED_FROM_PAUSE
EVENT_BACKOFF_SKIPPED = events.RUN_RETRY_BACKOFF_SKIPPED_BY_OPERATOR
EVENT_LOCK_RELEASED = events.RUN_LOCK_RELEASED_BY_OPERATOR
EVENT_CLAIM_EXPIRED_REQUEUED = events.RUN_EXECUTION_CLAIM_EXPIRED_REQUEUED
EVENT_STOPPED = events.RUN_STOPPED

#: The statuses the server's cancel handler answers "already terminal" for (not blocked).
_CANCEL_TERMINAL = frozenset({RunStatus.CANCELLED, RunStatus.COMPLETED, RunStatus.FAILED})


@dataclass(frozen=True)
class ActionRequest:
    kind: ActionKind
    run_id: str
    reason: str | None = None
    actor: str | None = None
    #: The ``updated_at_ms`` the operator saw; the action is refused if the run moved on
    #: at all (strict: for scripts that read a run and act on exactly that version).
    expect_updated_at_ms: int | None = None
    #: The :func:`decision_state` the operator saw; the action is refused if what the
    #: decision rests on moved on (the console's guard: see :func:`decision_state`).
    expect_state: DecisionState | None = None


@dataclass(frozen=True)
class Transition:
    """What an allowed action will do to a run."""

    kind: ActionKind
    run_id: str
    from_status: RunStatus
    to_status: RunStatus
    events: tuple[str, ...]
    #: False when the action answers ok and changes nothing (a cancel of a run that is
    #: already terminal and holds no session handles): nothing is written.
    writes: bool = True
    #: The reason recorded when the operator gives none (the server's default for the
    #: status the run is in: a recover from paused has its own).
    default_reason: str = ""

    @property
    def summary(self) -> str:
        """``running -> paused`` (or what changes when the status does not)."""
        if self.kind == ActionKind.REQUEUE and self.events == (EVENT_BACKOFF_SKIPPED,):
            return "queued: retry backoff skipped, due now"
        if self.kind == ActionKind.CANCEL and self.from_status == self.to_status:
            if not self.writes:
                return f"{self.from_status.value}: already terminal, nothing changed"
            return f"{self.from_status.value}: already terminal, session handles cleared"
        if self.from_status == self.to_status:
            return f"{self.from_status.value}: execution claim released"
        return f"{self.from_status.value} -> {self.to_status.value}"


@dataclass(frozen=True)
class Refusal:
    """Why an action is not allowed, in one line."""

    kind: ActionKind
    run_id: str
    message: str


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    kind: ActionKind
    run_id: str
    previous_status: RunStatus | None
    new_status: RunStatus | None
    message: str
    run: Run | None = field(default=None, compare=False)
    archived: bool = False
    #: False for an ok action that changed nothing (nothing was written).
    changed: bool = True
    #: The reason recorded (the operator's, trimmed, or the server's default).
    reason: str | None = None
    #: Not a refusal of the action but of the route: a live engine that cannot be
    #: reached or will not take our token (the CLI's exit 2, not 1).
    unusable: bool = False


# --- the pure rules ----------------------------------------------------------------


def preview(kind: ActionKind, run: Run, now_ms: int) -> Transition | Refusal:
    """What ``kind`` would do to ``run`` now, or why it is refused. Changes nothing."""
    rule = ACTIONS[ActionKind(kind)].rule
    outcome = rule(run, now_ms)
    if isinstance(outcome, str):
        return Refusal(kind=ActionKind(kind), run_id=run.run_id, message=f"cannot {ActionKind(kind).verb} run {run.run_id}: {outcome}")
    spec = ACTIONS[ActionKind(kind)]
    to_status, events = outcome[0], outcome[1]
    writes = outcome[2] if len(outcome) > 2 else True
    return Transition(
        kind=ActionKind(kind),
        run_id=run.run_id,
        from_status=run.status,
        to_status=to_status,
        events=events,
        writes=writes,
        default_reason=spec.default_reason_from.get(run.status, spec.default_reason),
    )


#: A rule's answer: ``(new status, events)`` or ``(new status, events, writes)``, or
#: the refusal in words.
_Rule = Callable[[Run, int], "tuple[RunStatus, tuple[str, ...]] | tuple[RunStatus, tuple[str, ...], bool] | str"]


def _pause_rule(run: Run, now_ms: int) -> tuple[RunStatus, tuple[str, ...]] | str:
    if run.status in (RunStatus.RUNNING, RunStatus.QUEUED):
        return RunStatus.PAUSED, (EVENT_PAUSE_REQUESTED, EVENT_PAUSED)
    return f"it is {run.status.value}; only a running or queued run can be paused"


def _resume_rule(run: Run, now_ms: int) -> tuple[RunStatus, tuple[str, ...]] | str:
    if run.status == RunStatus.PAUSED:
        return RunStatus.QUEUED, (EVENT_RESUMED,)
    return f"it is {run.status.value}; only a paused run can be resumed"


def _requeue_rule(run: Run, now_ms: int) -> tuple[RunStatus, tuple[str, ...]] | str:
    """The server's recover, plus two offline-only cases the engine's handler refuses.

    - **Expired claim** (offline only): a running run whose execution claim lease expired
      before any progress is requeued exactly as the server's own claim sweep
      (``reclaim_abandoned_automation_v2_run_leases``) would at its next pass.
    - **Retry backoff** (offline only): a queued run waiting out a retry backoff is made
      due now (``run_retry_backoff_skipped_by_operator``).
    - Otherwise the server's recover handler decides (:mod:`tandem_tui.domain.recover`).
    """
    status = run.status
    if status == RunStatus.RUNNING:
        return _expired_claim_case(run, now_ms)
    if status == RunStatus.QUEUED:
        return _retry_backoff_case(run, now_ms)
    plan = recover.recover_plan(run)
    if isinstance(plan, str):
        return plan
    return RunStatus.QUEUED, (plan.event,)


def _expired_claim_case(run: Run, now_ms: int) -> tuple[RunStatus, tuple[str, ...]] | str:
    claim = run.execution_claim
    if claim is None:
        return "it is running without an execution claim; release its lock to stop it"
    if not claim.is_expired(now_ms):
        remaining_s = -(-(claim.lease_expires_at_ms - now_ms) // 1000)
        return f"it is running and its execution claim lease is live for another {remaining_s} s"
    if run.active_session_ids or run.active_instance_ids:
        return "it is running with active sessions despite its expired claim; pause it instead"
    if not run_has_expired_launch_claim_without_progress(run, now_ms):
        return "it is running and made progress since its claim; pause it instead"
    return RunStatus.QUEUED, (EVENT_CLAIM_EXPIRED_REQUEUED,)


def _retry_backoff_case(run: Run, now_ms: int) -> tuple[RunStatus, tuple[str, ...]] | str:
    if not retry_backoff_is_due(run, now_ms):
        return RunStatus.QUEUED, (EVENT_BACKOFF_SKIPPED,)
    return recover.refusal_text(recover.NOT_RECOVERABLE, "it is already queued and due")


def _cancel_rule(run: Run, now_ms: int) -> tuple[RunStatus, tuple[str, ...], bool]:
    """The server's cancel: any status but cancelled/completed/failed becomes cancelled.

    An already terminal run answers ok; only its session handles are cleared, and when
    it holds none nothing is written at all. A cancel is never refused.
    """
    if run.status in _CANCEL_TERMINAL:
        return run.status, (), bool(run.active_session_ids or run.active_instance_ids)
    return RunStatus.CANCELLED, (EVENT_STOPPED,), True


def _release_lock_rule(run: Run, now_ms: int) -> tuple[RunStatus, tuple[str, ...]] | str:
    if run.status in (RunStatus.RUNNING, RunStatus.PAUSING):
        return RunStatus.PAUSED, (EVENT_LOCK_RELEASED,)
    if run.execution_claim is not None:
        return run.status, (EVENT_LOCK_RELEASED,)
    return f"it is {run.status.value} and holds no workspace lock or execution claim"


@dataclass(frozen=True)
class DecisionState:
    """What an operator's decision about a run rests on: its status and who holds it.

    A running run's ``updated_at_ms`` moves with every token and node event (several
    times a second on a busy host), so guarding a console action on it would refuse
    almost every pause of a running run. The status (the transition the confirmation
    showed) and the execution claim (whose lease a release-lock judged) are what make a
    decision outdated; node progress is not.
    """

    status: RunStatus
    claim_id: str | None
    lease_expires_at_ms: int | None

    @classmethod
    def of(cls, run: Run) -> DecisionState:
        claim = run.execution_claim
        return cls(
            status=run.status,
            claim_id=claim.claim_id if claim is not None else None,
            lease_expires_at_ms=claim.lease_expires_at_ms if claim is not None else None,
        )

    def describe_change(self, now: DecisionState) -> str:
        if self.status != now.status:
            return f"status {self.status.value} -> {now.status.value}"
        if self.claim_id != now.claim_id:
            return "its execution claim changed hands"
        return "its execution claim lease was renewed"


def stale_view_refusal(request: ActionRequest, run: Run) -> Refusal | None:
    """Refuse when the operator decided on an older version of the run than the file holds."""
    seen = request.expect_state
    if seen is not None and seen != DecisionState.of(run):
        return Refusal(
            kind=request.kind,
            run_id=run.run_id,
            message=(
                f"run {run.run_id} changed since you looked "
                f"({seen.describe_change(DecisionState.of(run))})"
            ),
        )
    expected = request.expect_updated_at_ms
    if expected is None or expected == run.updated_at_ms:
        return None
    return Refusal(
        kind=request.kind,
        run_id=run.run_id,
        message=(
            f"run {run.run_id} changed since you looked (updated_at_ms {expected} -> "
            f"{run.updated_at_ms}, status now {run.status.value})"
        ),
    )


def decide(request: ActionRequest, run: Run, now_ms: int) -> Transition | Refusal:
    """The stale-view guard, then the action's own rule."""
    return stale_view_refusal(request, run) or preview(request.kind, run, now_ms)


# --- applying an allowed action to a run -------------------------------------------


def apply_action(
    run: Run,
    transition: Transition,
    *,
    reason: str | None,
    actor: str,
    now_ms: int,
    scheduler: AutomationScheduler | None = None,
) -> None:
    """Carry out ``transition`` on ``run`` in place, through the lifecycle update rule.

    A transition that writes nothing (``writes`` false) leaves the run untouched.
    """
    if not transition.writes:
        return
    reason = normalized_reason(reason) or transition.default_reason or DEFAULT_REASONS[transition.kind]
    operator = {"actor": actor, "source": events.OPERATOR_SOURCE, "reason": reason}
    mutate = ACTIONS[transition.kind].change(transition, reason, operator, now_ms)
    apply_run_update(run, mutate, now_ms=now_ms, scheduler=scheduler)


_Mutation = Callable[[Run], None]


def _event(run: Run, event: str, reason: str, metadata: dict[str, Any], now_ms: int, stop_kind: StopKind | None = None) -> None:
    record_lifecycle_event(run, event, reason, stop_kind, metadata, now_ms=now_ms)


def _pause(transition: Transition, reason: str, operator: dict[str, Any], now_ms: int) -> _Mutation:
    def mutate(run: Run) -> None:
        metadata = {**operator, "previous_status": run.status.value}
        _event(run, EVENT_PAUSE_REQUESTED, reason, metadata, now_ms)
        run.status = RunStatus.PAUSED
        run.pause_reason = reason
        run.active_session_ids.clear()
        run.active_instance_ids.clear()
        _event(run, EVENT_PAUSED, reason, metadata, now_ms)

    return mutate


def _resume(transition: Transition, reason: str, operator: dict[str, Any], now_ms: int) -> _Mutation:
    def mutate(run: Run) -> None:
        run.status = RunStatus.QUEUED
        run.resume_reason = reason
        run.pause_reason = None
        run.stop_kind = None
        run.stop_reason = None
        _event(run, EVENT_RESUMED, reason, {**operator, "previous_status": "paused"}, now_ms)

    return mutate


def _requeue(transition: Transition, reason: str, operator: dict[str, Any], now_ms: int) -> _Mutation:
    if transition.events == (EVENT_BACKOFF_SKIPPED,):
        return _skip_backoff(reason, operator, now_ms)
    if transition.events == (EVENT_CLAIM_EXPIRED_REQUEUED,):
        return _requeue_expired_claim(reason, operator, now_ms)

    def mutate(run: Run) -> None:
        plan = recover.recover_plan(run)
        assert not isinstance(plan, str), plan
        metadata = {**operator, "previous_status": run.status.value}
        if plan.reset_nodes:
            metadata["reset_nodes"] = sorted(plan.reset_nodes)
        recover.apply_recover(run, plan, reason, metadata, now_ms)

    return mutate


def _requeue_expired_claim(reason: str, operator: dict[str, Any], now_ms: int) -> _Mutation:
    """The server's claim sweep on one run, with the operator named in the event."""

    def mutate(run: Run) -> None:
        claim = dump_model(run.execution_claim) if run.execution_claim is not None else None
        run.status = RunStatus.QUEUED
        run.detail = ABANDONED_CLAIM_DETAIL
        run.resume_reason = "abandoned_execution_claim"
        run.stop_kind = None
        run.stop_reason = None
        run.active_session_ids.clear()
        run.latest_session_id = None
        run.active_instance_ids.clear()
        metadata = {**operator, "previous_status": "running", "claim": claim}
        _event(run, EVENT_CLAIM_EXPIRED_REQUEUED, reason, metadata, now_ms)

    return mutate


def _cancel(transition: Transition, reason: str, operator: dict[str, Any], now_ms: int) -> _Mutation:
    def mutate(run: Run) -> None:
        if transition.from_status in _CANCEL_TERMINAL:
            # Already terminal: the server only drops the session handles (no event).
            run.active_session_ids.clear()
            run.active_instance_ids.clear()
            run.latest_session_id = None
            return
        metadata = {**operator, "previous_status": run.status.value}
        run.status = RunStatus.CANCELLED
        run.detail = reason
        run.stop_kind = StopKind.OPERATOR_STOPPED
        run.stop_reason = reason
        run.active_session_ids.clear()
        run.active_instance_ids.clear()
        _event(run, EVENT_STOPPED, reason, metadata, now_ms, StopKind.OPERATOR_STOPPED)

    return mutate


def _skip_backoff(reason: str, operator: dict[str, Any], now_ms: int) -> _Mutation:
    def mutate(run: Run) -> None:
        scheduler = run.scheduler
        assert scheduler is not None and scheduler.queue_reason == QueueReason.RETRY_BACKOFF
        metadata = {
            **operator,
            "retry_node_id": scheduler.retry_node_id,
            "previous_retry_after_ms": scheduler.retry_after_ms,
        }
        scheduler.retry_after_ms = now_ms
        _event(run, EVENT_BACKOFF_SKIPPED, reason, metadata, now_ms)

    return mutate


def _release_lock(transition: Transition, reason: str, operator: dict[str, Any], now_ms: int) -> _Mutation:
    def mutate(run: Run) -> None:
        previous = run.status
        claim = run.execution_claim
        metadata = {
            **operator,
            "workspace_root": run.workspace_root,
            "claim": dump_model(claim) if claim is not None else None,
            "previous_status": previous.value,
        }
        stop_kind = None
        if previous == RunStatus.RUNNING:
            stop_kind = StopKind.OPERATOR_STOPPED
            run.stop_kind = stop_kind
            run.stop_reason = reason
            run.pause_reason = reason
        elif previous == RunStatus.PAUSING:
            run.pause_reason = run.pause_reason or reason
        if previous in (RunStatus.RUNNING, RunStatus.PAUSING):
            run.status = RunStatus.PAUSED
            run.active_session_ids.clear()
            run.active_instance_ids.clear()
        run.execution_claim = None
        _event(run, EVENT_LOCK_RELEASED, reason, metadata, now_ms, stop_kind)

    return mutate


_Change = Callable[[Transition, str, dict[str, Any], int], _Mutation]


# --- the registry: one declaration per action ----------------------------------------


@dataclass(frozen=True)
class ActionSpec:
    """Everything about one action, declared once.

    The CLI sub-commands, the key bindings of every screen that acts on runs, the
    command palette, the confirmation screen and the footer are all built from
    :data:`ACTIONS`; adding an action is one entry here plus its rule, change and tests.

    ``rule(run, now_ms)`` says what the action would do (the new status and the events)
    or why not (a string); ``change(transition, reason, operator, now_ms)`` returns the
    in-place mutation that :func:`apply_action` runs through the lifecycle update rule.
    """

    kind: ActionKind
    #: The sub-command (``tandem-tui release-lock RUN``).
    cli_name: str
    #: The key on the dashboard and the run detail screen.
    key: str
    #: The footer's word for it.
    label: str
    #: The palette's entry (it acts on the marked or selected runs).
    palette_label: str
    #: One line: what it does, from which statuses (CLI help, palette help).
    help: str
    #: The reason recorded when the operator gives none.
    default_reason: str
    rule: _Rule
    change: _Change
    #: A different default reason from some statuses (the server's recover from paused).
    default_reason_from: Mapping[RunStatus, str] = field(default_factory=dict)


ACTIONS: Mapping[ActionKind, ActionSpec] = {
    spec.kind: spec
    for spec in (
        ActionSpec(
            kind=ActionKind.PAUSE,
            cli_name="pause",
            key="p",
            label="Pause",
            palette_label="Pause selected runs",
            help="pause a running or queued run",
            default_reason="paused by operator",
            rule=_pause_rule,
            change=_pause,
        ),
        ActionSpec(
            kind=ActionKind.RESUME,
            cli_name="resume",
            key="r",
            label="Resume",
            palette_label="Resume selected runs",
            help="resume a paused run (back to the queue)",
            default_reason="resumed by operator",
            rule=_resume_rule,
            change=_resume,
        ),
        ActionSpec(
            kind=ActionKind.REQUEUE,
            cli_name="requeue",
            key="e",
            label="Requeue",
            palette_label="Requeue selected runs",
            help=(
                "recover a failed/blocked/paused run as the server does, requeue a running one "
                "whose claim expired, or skip a retry backoff"
            ),
            default_reason=recover.DEFAULT_REASON,
            default_reason_from={RunStatus.PAUSED: recover.DEFAULT_REASON_FROM_PAUSE},
            rule=_requeue_rule,
            change=_requeue,
        ),
        ActionSpec(
            kind=ActionKind.CANCEL,
            cli_name="cancel",
            key="c",
            label="Cancel",
            palette_label="Cancel selected runs",
            help="cancel a run that is not finished (operator_stopped); a finished one is left as it is",
            default_reason="cancelled by operator",
            rule=_cancel_rule,
            change=_cancel,
        ),
        ActionSpec(
            kind=ActionKind.RELEASE_LOCK,
            cli_name="release-lock",
            key="l",
            label="Release",
            palette_label="Release lock of selected runs",
            help="release the workspace lock or execution claim a run holds (running/pausing -> paused)",
            default_reason="lock released by operator",
            rule=_release_lock_rule,
            change=_release_lock,
        ),
    )
}

#: The reason recorded when the operator gives none, per action.
DEFAULT_REASONS: Mapping[ActionKind, str] = {kind: spec.default_reason for kind, spec in ACTIONS.items()}


def normalized_reason(reason: str | None) -> str | None:
    """The server's ``reason_or_default`` before the default: trimmed, blank -> ``None``.

    Only the ends are trimmed (as Rust's ``str::trim``); inner whitespace is kept.
    """
    if reason is None:
        return None
    return serde_shape.rust_trim(reason) or None


# --- the scheduler a transition is synced with -------------------------------------


def _raw_workspace_root(record: Any) -> str | None:
    return workspace_root_of(record.get("automation_snapshot") if isinstance(record, dict) else None)


def scheduler_from_entries(
    entries: Mapping[str, Any], *, max_concurrent_runs: int, clock: Clock
) -> AutomationScheduler:
    """The slots and locks the file's runs hold, read from raw entries without validating them."""
    scheduler = AutomationScheduler(max_concurrent_runs, clock)
    for key, record in entries.items():
        if not isinstance(record, dict):
            continue
        run_id = record.get("run_id") if isinstance(record.get("run_id"), str) else key
        status = record.get("status")
        if status == RunStatus.RUNNING:
            scheduler.admit_run(run_id, _raw_workspace_root(record))
        elif status == RunStatus.PAUSING:
            scheduler.reserve_workspace(run_id, _raw_workspace_root(record))
    return scheduler
