"""The update rule, lifecycle events and status-to-scheduler sync follow the server."""

import itertools

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.lifecycle import (
    apply_run_update,
    detail_node_id,
    holds_workspace_lock,
    in_progress_node_ids,
    is_bookkeeping_event,
    last_activity_at_ms,
    record_lifecycle_event,
    refresh_stale_running_detail,
    uses_capacity,
    with_execution_profile,
)
from tandem_tui.domain.models import (
    QueueReason,
    RunStatus,
    SchedulerMetadata,
    StopKind,
    dump_run,
    parse_run,
)
from tandem_tui.domain.scheduler import AutomationScheduler

TERMINAL = {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.BLOCKED, RunStatus.CANCELLED}


def make_run(status="running", **overrides):
    raw = {
        "run_id": "run-1",
        "automation_id": "auto-1",
        "status": status,
        "created_at_ms": 1,
        "updated_at_ms": 1,
        "automation_snapshot": {"workspace_root": "/w"},
    }
    raw.update(overrides)
    return parse_run(raw)


def set_status(status):
    def mutate(run):
        run.status = status

    return mutate


# --- twin of the seed's #[test] -----------------------------------------------------


def test_stale_running_detail_moves_to_active_attempt():
    run = make_run(
        started_at_ms=1,
        detail="retrying node `collect` after transient provider failure",
        checkpoint={
            "completed_nodes": ["collect"],
            "pending_nodes": ["draft"],
            "node_attempts": {"draft": 1},
        },
    )
    refresh_stale_running_detail(run)
    assert run.detail == "running node `draft` attempt 1"


# --- status predicates --------------------------------------------------------------


def test_only_running_uses_capacity_and_running_or_pausing_hold_the_lock():
    assert {s for s in RunStatus if uses_capacity(s)} == {RunStatus.RUNNING}
    assert {s for s in RunStatus if holds_workspace_lock(s)} == {RunStatus.RUNNING, RunStatus.PAUSING}


# --- status-to-scheduler sync, every ordered pair ----------------------------------


def scheduler_holding(run_id: str, status: RunStatus) -> AutomationScheduler:
    """A scheduler in the state a run of ``status`` leaves it in."""
    scheduler = AutomationScheduler(8, ManualClock(1_000))
    if uses_capacity(status):
        scheduler.admit_run(run_id, "/w")
    elif holds_workspace_lock(status):
        scheduler.reserve_workspace(run_id, "/w")
    return scheduler


@pytest.mark.parametrize(
    ("previous", "current"),
    list(itertools.product(RunStatus, RunStatus)),
    ids=lambda status: status.value,
)
def test_every_status_transition_leaves_the_scheduler_as_the_design_rule_says(previous, current):
    run = make_run(previous.value)
    scheduler = scheduler_holding(run.run_id, previous)
    admitted_before = scheduler.admitted_total

    apply_run_update(run, set_status(current), now_ms=2_000, scheduler=scheduler)

    assert scheduler.active_runs == ({"run-1": "/w"} if uses_capacity(current) else {})
    assert scheduler.locked_workspaces == ({"/w": "run-1"} if holds_workspace_lock(current) else {})
    gained_capacity = uses_capacity(current) and not uses_capacity(previous)
    lost_capacity = uses_capacity(previous) and not uses_capacity(current)
    assert scheduler.admitted_total == admitted_before + (1 if gained_capacity else 0)
    assert scheduler.completed_total == (1 if lost_capacity else 0)


def test_losing_the_lock_clears_the_runs_queue_state_and_artifacts():
    from tandem_tui.domain.scheduler import ValidatedArtifact

    run = make_run("pausing")
    scheduler = scheduler_holding(run.run_id, RunStatus.PAUSING)
    scheduler.preexisting_registry.register_validated("run-1", "n", ValidatedArtifact("p", "d"))
    scheduler.track_queue_state("run-1", SchedulerMetadata(queued_at_ms=1))
    apply_run_update(run, set_status(RunStatus.PAUSED), now_ms=2, scheduler=scheduler)
    assert scheduler.preexisting_registry.artifacts == {}
    assert scheduler.queue_state == {}


def test_a_run_without_workspace_root_takes_a_slot_but_no_lock():
    run = make_run("queued", automation_snapshot={"workspace_root": "   "})
    scheduler = AutomationScheduler(8, ManualClock(0))
    apply_run_update(run, set_status(RunStatus.RUNNING), now_ms=2, scheduler=scheduler)
    assert scheduler.active_runs == {"run-1": ""}
    assert scheduler.locked_workspaces == {}


def test_an_admission_records_the_wait_since_the_tracked_queue_entry():
    run = make_run("queued")
    scheduler = AutomationScheduler(8, ManualClock(5_000))
    scheduler.track_queue_state("run-1", SchedulerMetadata(queued_at_ms=4_000))
    apply_run_update(run, set_status(RunStatus.RUNNING), now_ms=5_000, scheduler=scheduler)
    assert list(scheduler.wait_times) == [1_000]


# --- the update rule ------------------------------------------------------------


@pytest.mark.parametrize("status", list(RunStatus), ids=lambda s: s.value)
def test_scheduler_metadata_survives_an_update_only_on_a_queued_run(status):
    run = make_run("queued", scheduler={"queue_reason": "capacity", "queued_at_ms": 3})
    apply_run_update(run, set_status(status), now_ms=9)
    if status == RunStatus.QUEUED:
        assert run.scheduler is not None and run.scheduler.queue_reason == QueueReason.CAPACITY
    else:
        assert run.scheduler is None


def test_every_update_stamps_updated_at_and_returns_the_previous_status():
    run = make_run("queued")
    previous = apply_run_update(run, lambda r: None, now_ms=77)
    assert previous == RunStatus.QUEUED
    assert run.updated_at_ms == 77


@pytest.mark.parametrize("status", list(RunStatus), ids=lambda s: s.value)
def test_finished_at_is_stamped_only_on_terminal_statuses(status):
    run = make_run("running")
    apply_run_update(run, set_status(status), now_ms=50)
    assert run.finished_at_ms == (50 if status in TERMINAL else None)


def test_finished_at_is_set_once_and_never_moved():
    run = make_run("running")
    apply_run_update(run, set_status(RunStatus.FAILED), now_ms=50)
    apply_run_update(run, set_status(RunStatus.CANCELLED), now_ms=90)
    assert run.finished_at_ms == 50
    assert run.updated_at_ms == 90


def test_the_update_refreshes_a_stale_running_detail():
    run = make_run(
        "running",
        detail="running node `collect` attempt 2",
        checkpoint={"completed_nodes": ["collect"], "pending_nodes": ["draft"], "node_attempts": {"draft": 3}},
    )
    apply_run_update(run, lambda r: None, now_ms=5)
    assert run.detail == "running node `draft` attempt 3"


def test_a_stale_detail_without_an_attempted_pending_node_says_the_node_completed():
    run = make_run(
        "running",
        detail="running node `collect` attempt 2",
        checkpoint={
            "completed_nodes": ["collect", "done"],
            "blocked_nodes": ["stuck"],
            "pending_nodes": ["done", "stuck", "fresh"],
            "node_attempts": {"done": 1, "stuck": 2},
        },
    )
    refresh_stale_running_detail(run)
    assert run.detail == "completed node `collect`; continuing"


@pytest.mark.parametrize(
    ("status", "detail"),
    [
        ("paused", "running node `collect` attempt 2"),
        ("running", "running node `draft` attempt 2"),
        ("running", "no node here"),
        ("running", None),
    ],
)
def test_a_detail_that_is_not_stale_or_not_running_is_left_alone(status, detail):
    run = make_run(
        status,
        detail=detail,
        checkpoint={"completed_nodes": ["collect"], "pending_nodes": ["draft"], "node_attempts": {"draft": 1}},
    )
    refresh_stale_running_detail(run)
    assert run.detail == detail


@pytest.mark.parametrize(
    ("detail", "node_id"),
    [
        ("running node `draft` attempt 1", "draft"),
        ("node ` x `", " x "),
        ("node `   `", None),
        ("node `unterminated", None),
        ("nothing", None),
    ],
)
def test_detail_node_id_reads_the_backquoted_node(detail, node_id):
    assert detail_node_id(detail) == node_id


def test_an_update_that_changes_nothing_else_keeps_unknown_fields():
    run = make_run("queued", future={"kept": True})
    apply_run_update(run, set_status(RunStatus.RUNNING), now_ms=5)
    data = dump_run(run)
    assert data["future"] == {"kept": True}
    assert data["status"] == "running" and data["updated_at_ms"] == 5


# --- lifecycle events -------------------------------------------------------------


def test_an_event_is_appended_with_the_time_reason_and_stop_kind():
    run = make_run("running")
    record = record_lifecycle_event(run, "run_paused", "why", StopKind.OPERATOR_STOPPED, now_ms=42)
    assert run.checkpoint.lifecycle_history == [record]
    assert (record.event, record.recorded_at_ms, record.reason, record.stop_kind) == (
        "run_paused", 42, "why", StopKind.OPERATOR_STOPPED,
    )


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (None, {"effective_execution_profile": "yolo"}),
        ({"actor": "ops"}, {"actor": "ops", "effective_execution_profile": "yolo"}),
        ({"effective_execution_profile": "strict"}, {"effective_execution_profile": "yolo"}),
        ("text", {"value": "text", "effective_execution_profile": "yolo"}),
        ([1, 2], {"value": [1, 2], "effective_execution_profile": "yolo"}),
        (0, {"value": 0, "effective_execution_profile": "yolo"}),
    ],
)
def test_event_metadata_always_carries_the_runs_execution_profile(metadata, expected):
    run = make_run("running", effective_execution_profile="yolo")
    record = record_lifecycle_event(run, "e", metadata=metadata, now_ms=1)
    assert record.metadata == expected


def test_merging_the_profile_does_not_modify_the_callers_metadata():
    original = {"actor": "ops"}
    merged = with_execution_profile(original, "guided")
    assert original == {"actor": "ops"}
    assert merged == {"actor": "ops", "effective_execution_profile": "guided"}


def test_claim_bookkeeping_events_are_recognised():
    assert is_bookkeeping_event("run_execution_claimed")
    assert is_bookkeeping_event("run_execution_claim_expired_requeued")
    assert not is_bookkeeping_event("run_resumed")


def test_last_activity_ignores_bookkeeping_and_falls_back_to_start_then_creation():
    run = make_run("running", created_at_ms=5)
    assert last_activity_at_ms(run) == 5
    run.started_at_ms = 7
    assert last_activity_at_ms(run) == 7
    record_lifecycle_event(run, "run_execution_claimed", now_ms=100)
    assert last_activity_at_ms(run) == 7
    record_lifecycle_event(run, "node_started", now_ms=60)
    record_lifecycle_event(run, "run_execution_claim_expired_requeued", now_ms=200)
    assert last_activity_at_ms(run) == 60


def test_in_progress_nodes_are_attempted_pending_nodes_not_completed_or_blocked():
    run = make_run(
        "running",
        checkpoint={
            "pending_nodes": ["a", "b", "c", "d"],
            "completed_nodes": ["b"],
            "blocked_nodes": ["c"],
            "node_attempts": {"a": 1, "b": 1, "c": 1, "d": 0},
        },
    )
    assert in_progress_node_ids(run) == ["a"]


def test_an_event_without_reason_or_stop_kind_is_written_without_those_keys():
    run = make_run("running")
    record_lifecycle_event(run, "run_resumed", now_ms=3)
    record_lifecycle_event(run, "run_failed", "boom", StopKind.PANIC, now_ms=4)
    assert dump_run(run)["checkpoint"]["lifecycle_history"] == [
        {"event": "run_resumed", "recorded_at_ms": 3, "metadata": {"effective_execution_profile": "strict"}},
        {
            "event": "run_failed",
            "recorded_at_ms": 4,
            "reason": "boom",
            "stop_kind": "panic",
            "metadata": {"effective_execution_profile": "strict"},
        },
    ]
