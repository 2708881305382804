"""Operator actions: pause, resume, requeue and release a lock, with the server's semantics.

Every action is decided by a pure rule (:func:`preview` says what would happen, or why
not, for the console's confirmation modal) and carried out by :func:`perform`:

validate -> change the run through the lifecycle core (:func:`apply_run_update`, with a
scheduler rebuilt from the file so slots and locks follow the status) -> record lifecycle
events whose metadata names the operator -> persist through a locked compare-and-swap
transaction -> append one line to the operator audit log.

A refused action changes no byte of the runs file or of any shard; it is still audited.
A run that only lives in a history shard (archived) is changed in its shard.
"""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from tandem_tui.core.audit import AUDIT_SOURCE, AuditEntry, append_audit
from tandem_tui.core.clock import Clock
from tandem_tui.core.lifecycle import apply_run_update, record_lifecycle_event
from tandem_tui.core.models import (
    QueueReason,
    Run,
    RunStatus,
    StopKind,
    dump_model,
    dump_run,
)
from tandem_tui.core.retry import retry_backoff_is_due
from tandem_tui.core.scheduler import AutomationScheduler, max_concurrent_runs_from_env
from tandem_tui.core.store import RunsDocument, parse_run_entry
from tandem_tui.core.transaction import transact, writer_lock


class ActionKind(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    REQUEUE = "requeue"
    RELEASE_LOCK = "release_lock"

    @property
    def verb(self) -> str:
        return self.value.replace("_", " ")


DEFAULT_REASONS: Mapping[ActionKind, str] = {
    ActionKind.PAUSE: "paused by operator",
    ActionKind.RESUME: "resumed by operator",
    ActionKind.REQUEUE: "recovered by operator",
    ActionKind.RELEASE_LOCK: "lock released by operator",
}

EVENT_PAUSE_REQUESTED = "run_pause_requested"
EVENT_PAUSED = "run_paused"
EVENT_RESUMED = "run_resumed"
EVENT_RECOVERED = "run_recovered"
EVENT_RECOVERED_FROM_PAUSE = "run_recovered_from_pause"
EVENT_BACKOFF_SKIPPED = "run_retry_backoff_skipped_by_operator"
EVENT_LOCK_RELEASED = "run_lock_released_by_operator"

_REQUEUEABLE = frozenset({RunStatus.FAILED, RunStatus.BLOCKED, RunStatus.CANCELLED})


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

    @property
    def summary(self) -> str:
        """``running -> paused`` (or what changes when the status does not)."""
        if self.kind == ActionKind.REQUEUE and self.events == (EVENT_BACKOFF_SKIPPED,):
            return "queued: retry backoff skipped, due now"
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


# --- the pure rules ----------------------------------------------------------------


def preview(kind: ActionKind, run: Run, now_ms: int) -> Transition | Refusal:
    """What ``kind`` would do to ``run`` now, or why it is refused. Changes nothing."""
    rule = _RULES[ActionKind(kind)]
    outcome = rule(run, now_ms)
    if isinstance(outcome, str):
        return Refusal(kind=ActionKind(kind), run_id=run.run_id, message=f"cannot {ActionKind(kind).verb} run {run.run_id}: {outcome}")
    to_status, events = outcome
    return Transition(
        kind=ActionKind(kind), run_id=run.run_id, from_status=run.status, to_status=to_status, events=events
    )


_Rule = Callable[[Run, int], "tuple[RunStatus, tuple[str, ...]] | str"]


def _pause_rule(run: Run, now_ms: int) -> tuple[RunStatus, tuple[str, ...]] | str:
    if run.status in (RunStatus.RUNNING, RunStatus.QUEUED):
        return RunStatus.PAUSED, (EVENT_PAUSE_REQUESTED, EVENT_PAUSED)
    return f"it is {run.status.value}; only a running or queued run can be paused"


def _resume_rule(run: Run, now_ms: int) -> tuple[RunStatus, tuple[str, ...]] | str:
    if run.status == RunStatus.PAUSED:
        return RunStatus.QUEUED, (EVENT_RESUMED,)
    return f"it is {run.status.value}; only a paused run can be resumed"


def _requeue_rule(run: Run, now_ms: int) -> tuple[RunStatus, tuple[str, ...]] | str:
    status = run.status
    if status in _REQUEUEABLE:
        return RunStatus.QUEUED, (EVENT_RECOVERED,)
    if status == RunStatus.PAUSED:
        return RunStatus.QUEUED, (EVENT_RECOVERED_FROM_PAUSE,)
    if status == RunStatus.RUNNING:
        claim = run.execution_claim
        if claim is None:
            return "it is running without an execution claim; release its lock to stop it"
        if not claim.is_expired(now_ms):
            remaining_s = -(-(claim.lease_expires_at_ms - now_ms) // 1000)
            return f"it is running and its execution claim lease is live for another {remaining_s} s"
        return RunStatus.QUEUED, (EVENT_RECOVERED,)
    if status == RunStatus.QUEUED:
        if not retry_backoff_is_due(run, now_ms):
            return RunStatus.QUEUED, (EVENT_BACKOFF_SKIPPED,)
        return "it is already queued and due"
    return f"it is {status.value}; requeue needs a failed, blocked, cancelled or paused run, or a running one whose claim expired"


def _release_lock_rule(run: Run, now_ms: int) -> tuple[RunStatus, tuple[str, ...]] | str:
    if run.status in (RunStatus.RUNNING, RunStatus.PAUSING):
        return RunStatus.PAUSED, (EVENT_LOCK_RELEASED,)
    if run.execution_claim is not None:
        return run.status, (EVENT_LOCK_RELEASED,)
    return f"it is {run.status.value} and holds no workspace lock or execution claim"


_RULES: Mapping[ActionKind, _Rule] = {
    ActionKind.PAUSE: _pause_rule,
    ActionKind.RESUME: _resume_rule,
    ActionKind.REQUEUE: _requeue_rule,
    ActionKind.RELEASE_LOCK: _release_lock_rule,
}


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
    """Carry out ``transition`` on ``run`` in place, through the lifecycle update rule."""
    reason = normalized_reason(reason) or DEFAULT_REASONS[transition.kind]
    operator = {"actor": actor, "source": AUDIT_SOURCE, "reason": reason}
    mutate = _MUTATIONS[transition.kind](transition, reason, operator, now_ms)
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

    def mutate(run: Run) -> None:
        metadata = {**operator, "previous_status": run.status.value}
        if run.execution_claim is not None:
            metadata["claim"] = dump_model(run.execution_claim)
        run.status = RunStatus.QUEUED
        run.finished_at_ms = None
        run.stop_kind = None
        run.stop_reason = None
        run.pause_reason = None
        run.checkpoint.awaiting_gate = None
        run.active_session_ids.clear()
        run.latest_session_id = None
        run.active_instance_ids.clear()
        run.execution_claim = None
        run.detail = reason
        run.resume_reason = reason
        _event(run, transition.events[0], reason, metadata, now_ms)

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


_MUTATIONS: Mapping[ActionKind, Callable[[Transition, str, dict[str, Any], int], _Mutation]] = {
    ActionKind.PAUSE: _pause,
    ActionKind.RESUME: _resume,
    ActionKind.REQUEUE: _requeue,
    ActionKind.RELEASE_LOCK: _release_lock,
}


def normalized_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    reason = " ".join(reason.split())
    return reason or None


def default_actor(env: Mapping[str, str] = os.environ) -> str:
    """``$USER@hostname``, the operator named in events and the audit log by default.

    Without ``$USER``/``$LOGNAME`` (cron, some ssh setups) the OS account name stands in:
    an audit line must name someone.
    """
    user = (env.get("USER") or env.get("LOGNAME") or "").strip() or _account_name()
    return f"{user}@{socket.gethostname()}"


def _account_name() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        return "unknown"


# --- the scheduler a transition is synced with -------------------------------------


def _raw_workspace_root(record: Any) -> str | None:
    snapshot = record.get("automation_snapshot") if isinstance(record, dict) else None
    root = snapshot.get("workspace_root") if isinstance(snapshot, dict) else None
    if not isinstance(root, str) or not root.strip():
        return None
    return root.strip()


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


# --- performing against the files --------------------------------------------------


def perform(
    runs_file: str | os.PathLike[str],
    request: ActionRequest,
    *,
    clock: Clock,
    env: Mapping[str, str] = os.environ,
) -> ActionResult:
    """Carry out ``request`` on the run in ``runs_file`` (or its shard) and audit it.

    Never raises for a refusal (the result says why); raises
    :class:`~tandem_tui.core.store.RunsFileError` when the runs file is missing,
    unreadable, invalid, of a newer schema, or stays busy.
    """
    runs_file = Path(runs_file)
    request = ActionRequest(
        kind=ActionKind(request.kind),
        run_id=request.run_id,
        reason=normalized_reason(request.reason),
        actor=(request.actor or "").strip() or default_actor(env),
        expect_updated_at_ms=request.expect_updated_at_ms,
        expect_state=request.expect_state,
    )
    max_runs = max_concurrent_runs_from_env(env)

    def change(document: RunsDocument) -> ActionResult | None:
        return _act_on_document(document, request, clock=clock, max_concurrent_runs=max_runs)

    # One lock around the hot file, the shard fallback and the audit line, so the audit
    # log lists actions in the order they reached the files.
    with writer_lock(runs_file):
        result = transact(runs_file, change, clock=clock)
        if result is None:
            result = _act_on_shard(runs_file, request, clock=clock, max_concurrent_runs=max_runs)
        return _audited(runs_file, request, result, clock)


def _find_entry(entries: Mapping[str, Any], run_id: str) -> str | None:
    if run_id in entries:
        return run_id
    for key, record in entries.items():
        if isinstance(record, dict) and record.get("run_id") == run_id:
            return key
    return None


def _act_on_document(
    document: RunsDocument, request: ActionRequest, *, clock: Clock, max_concurrent_runs: int
) -> ActionResult | None:
    key = _find_entry(document.entries, request.run_id)
    if key is None:
        return None
    now_ms = clock.now_ms()
    run = parse_run_entry(key, document.entries[key], now_ms=now_ms)
    outcome = decide(request, run, now_ms)
    if isinstance(outcome, Refusal):
        return _refused(request, outcome, run, archived=False)
    scheduler = scheduler_from_entries(document.entries, max_concurrent_runs=max_concurrent_runs, clock=clock)
    apply_action(run, outcome, reason=request.reason, actor=request.actor or "", now_ms=now_ms, scheduler=scheduler)
    document.entries[key] = dump_run(run)
    return _done(request, outcome, run, archived=False)


def _act_on_shard(
    runs_file: Path, request: ActionRequest, *, clock: Clock, max_concurrent_runs: int
) -> ActionResult:
    from tandem_tui.core.shards import load_shard_file, write_shard

    found = load_shard_file(runs_file, request.run_id)
    # Distinct ids can share a sanitized file name; only the run itself counts.
    if found is None or found[1].run_id != request.run_id:
        return ActionResult(
            ok=False,
            kind=request.kind,
            run_id=request.run_id,
            previous_status=None,
            new_status=None,
            message=f"run {request.run_id} not found",
        )
    old_path, run = found
    now_ms = clock.now_ms()
    outcome = decide(request, run, now_ms)
    if isinstance(outcome, Refusal):
        return _refused(request, outcome, run, archived=True)
    scheduler = scheduler_from_entries(
        {run.run_id: dump_run(run)}, max_concurrent_runs=max_concurrent_runs, clock=clock
    )
    apply_action(run, outcome, reason=request.reason, actor=request.actor or "", now_ms=now_ms, scheduler=scheduler)
    new_path = write_shard(runs_file, run)
    # The shard's month follows updated_at_ms: a run touched in a later month moves.
    if Path(new_path) != Path(old_path):
        Path(old_path).unlink(missing_ok=True)
    return _done(request, outcome, run, archived=True)


def _refused(request: ActionRequest, refusal: Refusal, run: Run, *, archived: bool) -> ActionResult:
    return ActionResult(
        ok=False,
        kind=request.kind,
        run_id=run.run_id,
        previous_status=run.status,
        new_status=run.status,
        message=refusal.message,
        run=run,
        archived=archived,
    )


def _done(request: ActionRequest, transition: Transition, run: Run, *, archived: bool) -> ActionResult:
    where = " (archived run, shard updated)" if archived else ""
    return ActionResult(
        ok=True,
        kind=request.kind,
        run_id=run.run_id,
        previous_status=transition.from_status,
        new_status=run.status,
        message=f"run {run.run_id}: {transition.summary}{where}",
        run=run,
        archived=archived,
    )


def _audited(runs_file: Path, request: ActionRequest, result: ActionResult, clock: Clock) -> ActionResult:
    entry = AuditEntry(
        at_ms=clock.now_ms(),
        actor=request.actor or "",
        action=request.kind.value,
        run_id=request.run_id,
        previous_status=result.previous_status.value if result.previous_status else None,
        new_status=result.new_status.value if result.ok and result.new_status else None,
        reason=(request.reason or DEFAULT_REASONS[request.kind]) if result.ok else request.reason,
        result="ok" if result.ok else "refused",
        message=result.message,
    )
    try:
        append_audit(runs_file, entry)
    except OSError as error:
        # The action itself is done (or refused); failing to log it must not hide that.
        return ActionResult(
            **{**result.__dict__, "message": f"{result.message} (audit log not written: {error.strerror or error})"}
        )
    return result
