"""Execution claims and leases behave like the server's (seed 003)."""

import pytest

from tandem_tui.domain.claims import (
    ABANDONED_CLAIM_DETAIL,
    claim_lease_ms,
    claim_next_queued_run,
    claim_run,
    claimable_queued_run_id,
    claimant_id,
    reclaim_abandoned_leases,
    run_has_expired_launch_claim_without_progress,
    run_has_lifecycle_progress_since_claim,
    run_has_unexpired_launch_claim_without_progress,
)
from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.lifecycle import record_lifecycle_event
from tandem_tui.domain.models import (
    ExecutionClaim,
    QueueReason,
    RunStatus,
    SchedulerMetadata,
    dump_run,
    parse_run,
)
from tandem_tui.domain.scheduler import AutomationScheduler

ENV = {"TANDEM_AUTOMATION_RUN_CLAIMANT_ID": "tester"}


def queued_run(run_id: str, created_at_ms: int, **overrides):
    raw = {
        "run_id": run_id,
        "automation_id": "automation-claims",
        "status": "queued",
        "created_at_ms": created_at_ms,
        "updated_at_ms": created_at_ms,
        "checkpoint": {"pending_nodes": ["node-a"]},
        "execution_claim_epoch": 0,
    }
    raw.update(overrides)
    return parse_run(raw)


def with_retry_backoff(run, retry_after_ms: int):
    run.scheduler = SchedulerMetadata(
        queue_reason=QueueReason.RETRY_BACKOFF,
        resource_key=f"automation://{run.automation_id}/runs/{run.run_id}/nodes/node-a",
        queued_at_ms=100,
        retry_node_id="node-a",
        retry_attempt=2,
        retry_backoff_ms=500,
        retry_after_ms=retry_after_ms,
        retry_reason="provider timeout",
    )
    return run


def claimed_running_run(run_id="run-1", *, claimed_at=1_000, lease_until=2_000, **overrides):
    claim = {
        "claim_id": "run-claim-old",
        "claimant_id": "someone",
        "claimed_at_ms": claimed_at,
        "lease_expires_at_ms": lease_until,
        "lease_epoch": 1,
    }
    fields = {"status": "running", "execution_claim": claim, "execution_claim_epoch": 1}
    return queued_run(run_id, 10, **(fields | overrides))


# --- twins of the seed's #[test]s -------------------------------------------------


def test_claimable_queued_run_skips_retry_backoff_before_due_time():
    runs = {"run-backoff": with_retry_backoff(queued_run("run-backoff", 10), 1_500)}
    assert claimable_queued_run_id(runs, 1_499) is None
    assert claimable_queued_run_id(runs, 1_500) == "run-backoff"


def test_claimable_queued_run_can_skip_backoff_and_pick_ready_run():
    runs = {
        "run-backoff": with_retry_backoff(queued_run("run-backoff", 10), 1_500),
        "run-ready": queued_run("run-ready", 20),
    }
    assert claimable_queued_run_id(runs, 1_000) == "run-ready"


# --- choosing a run ---------------------------------------------------------------


def test_the_oldest_queued_run_is_claimable_and_ties_go_to_the_smallest_run_id():
    runs = {
        "b": queued_run("b", 5),
        "a": queued_run("a", 5),
        "old-running": queued_run("old-running", 1, status="running"),
        "c": queued_run("c", 7),
    }
    assert claimable_queued_run_id(runs, 0) == "a"
    assert claimable_queued_run_id(list(runs.values()), 0) == "a"


def test_nothing_is_claimable_without_queued_runs():
    assert claimable_queued_run_id({"p": queued_run("p", 1, status="paused")}, 0) is None


# --- lease and claimant from the environment --------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, 30 * 60 * 1000),
        ("60000", 60_000),
        ("0", 30 * 60 * 1000),
        ("soon", 30 * 60 * 1000),
        ("-5", 30 * 60 * 1000),
        (" 60000", 30 * 60 * 1000),
        ("1", 5_000),
        ("4999", 5_000),
        ("99999999999", 6 * 60 * 60 * 1000),
        ("+7000", 7_000),
    ],
)
def test_claim_lease_defaults_to_thirty_minutes_and_clamps_between_five_seconds_and_six_hours(
    raw, expected
):
    env = {} if raw is None else {"TANDEM_AUTOMATION_RUN_CLAIM_LEASE_MS": raw}
    assert claim_lease_ms(env) == expected


def test_claimant_id_comes_from_the_environment_trimmed_else_names_the_process():
    assert claimant_id({"TANDEM_AUTOMATION_RUN_CLAIMANT_ID": "  node-7 "}) == "node-7"
    assert claimant_id({"TANDEM_AUTOMATION_RUN_CLAIMANT_ID": "   "}, pid=42) == (
        "tandem-server:automation-v2-executor:42"
    )
    assert claimant_id({}, pid=7) == "tandem-server:automation-v2-executor:7"


# --- claiming ---------------------------------------------------------------------


def test_claiming_a_queued_run_starts_it_under_a_new_lease_and_records_the_claim():
    run = queued_run("run-1", 10, execution_claim_epoch=4, scheduler={"queue_reason": "capacity"})
    claim = claim_run(run, now_ms=50_000, env=ENV | {"TANDEM_AUTOMATION_RUN_CLAIM_LEASE_MS": "60000"})
    assert claim is not None
    assert claim.claim_id.startswith("run-claim-")
    assert (claim.claimant_id, claim.claimed_at_ms, claim.lease_expires_at_ms, claim.lease_epoch) == (
        "tester", 50_000, 110_000, 5,
    )
    assert run.status == RunStatus.RUNNING
    assert run.started_at_ms == 50_000
    assert run.updated_at_ms == 50_000
    assert run.scheduler is None
    assert run.execution_claim_epoch == 5
    assert run.execution_claim == claim
    [event] = run.checkpoint.lifecycle_history
    assert event.event == "run_execution_claimed"
    assert event.reason == "automation run claimed by tester"
    assert event.metadata == {
        "claim": {
            "claim_id": claim.claim_id,
            "claimant_id": "tester",
            "claimed_at_ms": 50_000,
            "lease_expires_at_ms": 110_000,
            "lease_epoch": 5,
        },
        "effective_execution_profile": "strict",
    }


def test_the_first_claim_has_epoch_one_and_each_claim_a_fresh_id():
    first, second = queued_run("a", 1), queued_run("b", 1)
    claim_a = claim_run(first, now_ms=1, env=ENV)
    claim_b = claim_run(second, now_ms=1, env=ENV)
    assert claim_a.lease_epoch == 1
    assert claim_a.claim_id != claim_b.claim_id


def test_a_claim_keeps_an_earlier_start_time():
    run = queued_run("run-1", 10, started_at_ms=20)
    claim_run(run, now_ms=99, env=ENV)
    assert run.started_at_ms == 20


@pytest.mark.parametrize("status", ["running", "paused", "pausing", "completed", "failed"])
def test_only_a_queued_run_can_be_claimed_and_a_refusal_changes_nothing(status):
    run = queued_run("run-1", 10, status=status)
    before = dump_run(run)
    assert claim_run(run, now_ms=5, env=ENV) is None
    assert dump_run(run) == before


def test_a_run_in_retry_backoff_cannot_be_claimed_before_it_is_due():
    run = with_retry_backoff(queued_run("run-1", 10), 1_500)
    before = dump_run(run)
    assert claim_run(run, now_ms=1_499, env=ENV) is None
    assert dump_run(run) == before
    assert claim_run(run, now_ms=1_500, env=ENV) is not None


def test_claiming_admits_the_run_to_the_scheduler_and_records_its_wait():
    scheduler = AutomationScheduler(8, ManualClock(2_000))
    run = queued_run("run-1", 10, automation_snapshot={"workspace_root": " /w "})
    scheduler.track_queue_state("run-1", SchedulerMetadata(queued_at_ms=500))
    claim_run(run, now_ms=2_000, scheduler=scheduler, env=ENV)
    assert scheduler.active_runs == {"run-1": "/w"}
    assert scheduler.locked_workspaces == {"/w": "run-1"}
    assert list(scheduler.wait_times) == [1_500]


def test_claim_next_claims_the_oldest_due_run():
    runs = {"new": queued_run("new", 20), "old": queued_run("old", 10)}
    claimed = claim_next_queued_run(runs, now_ms=100, env=ENV)
    assert claimed is runs["old"]
    assert runs["old"].status == RunStatus.RUNNING
    assert runs["new"].status == RunStatus.QUEUED


def test_claim_next_reclaims_an_abandoned_lease_when_nothing_is_queued():
    runs = {"stuck": claimed_running_run("stuck", claimed_at=1_000, lease_until=2_000)}
    claimed = claim_next_queued_run(runs, now_ms=2_000, env=ENV, claim_id="run-claim-new")
    assert claimed is runs["stuck"]
    assert claimed.status == RunStatus.RUNNING
    assert claimed.execution_claim.claim_id == "run-claim-new"
    assert claimed.execution_claim_epoch == 2
    assert [e.event for e in claimed.checkpoint.lifecycle_history] == [
        "run_execution_claim_expired_requeued",
        "run_execution_claimed",
    ]


def test_claim_next_returns_nothing_when_nothing_is_queued_or_reclaimable():
    runs = {"live": claimed_running_run("live", lease_until=10_000)}
    before = dump_run(runs["live"])
    assert claim_next_queued_run(runs, now_ms=5_000, env=ENV) is None
    assert dump_run(runs["live"]) == before


# --- progress and abandoned leases ------------------------------------------------


def test_bookkeeping_events_are_not_progress_since_a_claim():
    run = claimed_running_run(claimed_at=1_000)
    claim = run.execution_claim
    run.checkpoint.lifecycle_history = []
    record_lifecycle_event(run, "run_execution_claimed", now_ms=1_000)
    record_lifecycle_event(run, "run_execution_claim_expired_requeued", now_ms=1_500)
    record_lifecycle_event(run, "node_started", now_ms=999)
    assert not run_has_lifecycle_progress_since_claim(run, claim)
    record_lifecycle_event(run, "node_started", now_ms=1_000)
    assert run_has_lifecycle_progress_since_claim(run, claim)


def test_a_claim_is_expired_without_progress_only_for_an_idle_running_run_past_its_lease():
    run = claimed_running_run(lease_until=2_000)
    assert not run_has_expired_launch_claim_without_progress(run, 1_999)
    assert run_has_unexpired_launch_claim_without_progress(run, 1_999)
    assert run_has_expired_launch_claim_without_progress(run, 2_000)
    assert not run_has_unexpired_launch_claim_without_progress(run, 2_000)

    with_session = claimed_running_run(active_session_ids=["s"])
    with_instance = claimed_running_run(active_instance_ids=["i"])
    paused = claimed_running_run(status="paused")
    unclaimed = queued_run("x", 1, status="running")
    for other in (with_session, with_instance, paused, unclaimed):
        assert not run_has_expired_launch_claim_without_progress(other, 10_000)
        assert not run_has_unexpired_launch_claim_without_progress(other, 0)


def test_reclaim_requeues_only_runs_whose_expired_claim_saw_no_progress():
    idle = claimed_running_run("idle", claimed_at=1_000, lease_until=2_000)
    busy = claimed_running_run(
        "busy",
        claimed_at=1_000,
        lease_until=2_000,
        checkpoint={"lifecycle_history": [{"event": "node_started", "recorded_at_ms": 1_200}]},
    )
    live = claimed_running_run("live", claimed_at=1_000, lease_until=9_000)
    runs = {run.run_id: run for run in (idle, busy, live)}
    busy_before, live_before = dump_run(busy), dump_run(live)

    assert reclaim_abandoned_leases(runs, now_ms=3_000) == ["idle"]

    assert dump_run(busy) == busy_before and dump_run(live) == live_before
    assert idle.status == RunStatus.QUEUED
    assert idle.detail == ABANDONED_CLAIM_DETAIL
    assert idle.resume_reason == "abandoned_execution_claim"
    assert idle.updated_at_ms == 3_000
    [event] = idle.checkpoint.lifecycle_history
    assert event.event == "run_execution_claim_expired_requeued"
    assert event.metadata["previous_status"] == "running"
    assert event.metadata["claim"]["claim_id"] == "run-claim-old"


def test_reclaim_clears_execution_handles_and_stop_state_and_frees_the_scheduler():
    run = claimed_running_run(
        "idle",
        lease_until=2_000,
        latest_session_id="s-1",
        stop_kind="panic",
        stop_reason="x",
        automation_snapshot={"workspace_root": "/w"},
    )
    scheduler = AutomationScheduler(8, ManualClock(0))
    scheduler.admit_run("idle", "/w")
    reclaim_abandoned_leases([run], now_ms=3_000, scheduler=scheduler)
    assert (run.latest_session_id, run.stop_kind, run.stop_reason) == (None, None, None)
    assert scheduler.active_runs == {} and scheduler.locked_workspaces == {}


def test_abandoned_run_claim_requeues_for_resume():
    """Twin of the server's ``abandoned_run_claim_requeues_for_resume`` (v0.6.5+)."""
    run = queued_run("run-claim-requeue", 500)
    claimed = claim_run(run, now_ms=1_000, env={"TANDEM_AUTOMATION_RUN_CLAIM_LEASE_MS": "5000"})
    assert claimed is not None and run.execution_claim is not None
    run.execution_claim.lease_expires_at_ms = 5_000

    assert reclaim_abandoned_leases([run], now_ms=6_000) == ["run-claim-requeue"]
    assert run.status == RunStatus.QUEUED
    assert run.execution_claim is None
    assert run.execution_claim_epoch == 1
    assert run.resume_reason == "abandoned_execution_claim"
    assert any(e.event == "run_execution_claim_expired_requeued" for e in run.checkpoint.lifecycle_history)

    reclaimed = claim_run(run, now_ms=7_000)
    assert run.execution_claim_epoch == 2
    assert reclaimed is not None and reclaimed.lease_epoch == 2


# --- twins of the server's run_claim_leases.rs tests (v0.7.2) ------------------------------


def test_run_claim_records_durable_execution_claim():
    run = queued_run("run-claim-record", 500)
    claim = claim_run(run, now_ms=1_000)
    assert claim is not None and run.status == RunStatus.RUNNING
    assert claim.lease_epoch == 1
    assert claim.claim_id.startswith("run-claim-")
    assert claim.claimant_id.startswith("tandem-server:automation-v2-executor:")
    assert claim.lease_expires_at_ms > claim.claimed_at_ms
    assert any(e.event == "run_execution_claimed" for e in run.checkpoint.lifecycle_history)
    assert run.execution_claim == claim and run.execution_claim_epoch == 1
    assert claim_run(run, now_ms=1_001) is None


def test_run_claim_allows_single_claimant():
    run = queued_run("run-claim-single", 500)
    claimed = [c for c in (claim_run(run, now_ms=1_000), claim_run(run, now_ms=1_000)) if c is not None]
    assert len(claimed) == 1
    assert run.execution_claim_epoch == 1


def test_abandoned_run_claim_with_active_handles_is_not_requeued():
    run = claimed_running_run("active", lease_until=2_000, active_session_ids=["session-still-running"])
    run.latest_session_id = "session-still-running"
    assert reclaim_abandoned_leases([run], now_ms=3_000) == []
    assert run.status == RunStatus.RUNNING and run.execution_claim is not None


def test_expired_run_claim_after_lifecycle_progress_is_not_requeued():
    run = claimed_running_run("progressed", claimed_at=1, lease_until=2)
    record_lifecycle_event(run, "node_started", "node `progressed` started", None, {"node_id": "progressed"}, now_ms=3)
    assert reclaim_abandoned_leases([run], now_ms=10) == []
    assert run.status == RunStatus.RUNNING and run.execution_claim is not None
