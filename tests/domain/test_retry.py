"""Durable retry backoff behaves like the server's (seed 002)."""

import json

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import QueueReason, RunStatus, dump_model, dump_run, parse_run
from tandem_tui.domain.retry import (
    RetryDecision,
    apply_retry_backoff,
    queue_run_for_retry_backoff,
    retry_backoff_is_due,
    retry_backoff_remaining_ms,
    retry_backoff_scheduler_metadata,
    truncate_text,
)
from tandem_tui.domain.scheduler import AutomationScheduler


def run_with_retry_after(retry_after_ms: int, **overrides):
    raw = {
        "run_id": "run-retry",
        "automation_id": "automation-retry",
        "tenant_context": {"org_id": "local", "workspace_id": "local", "source": "local_implicit"},
        "trigger_type": "manual",
        "status": "queued",
        "created_at_ms": 1,
        "updated_at_ms": 1,
        "started_at_ms": 1,
        "checkpoint": {"pending_nodes": ["node-a"]},
        "execution_claim_epoch": 0,
        "scheduler": {
            "tenant_context": {"org_id": "local", "workspace_id": "local", "source": "local_implicit"},
            "queue_reason": "retry_backoff",
            "resource_key": "automation://automation-retry/runs/run-retry/nodes/node-a",
            "queued_at_ms": 100,
            "retry_node_id": "node-a",
            "retry_attempt": 2,
            "retry_backoff_ms": 500,
            "retry_after_ms": retry_after_ms,
            "retry_reason": "provider timeout",
        },
        "effective_execution_profile": "strict",
    }
    raw.update(overrides)
    return parse_run(raw)


def transient_decision(**overrides) -> RetryDecision:
    fields = {
        "version": 1,
        "policy_version_id": "policy",
        "decision": "retry_scheduled",
        "failure_class": "provider_transient",
        "reason": "provider timeout",
        "attempt": 1,
        "max_attempts": 3,
        "retryable": True,
        "terminal": False,
        "next_retry_at_ms": 1_500,
        "backoff_ms": 500,
        "manual_override_allowed": True,
    }
    fields.update(overrides)
    return RetryDecision(**fields)


# --- twins of the seed's #[test]s -------------------------------------------------


def test_retry_backoff_due_checks_scheduler_due_time():
    run = run_with_retry_after(1_500)
    assert not retry_backoff_is_due(run, 1_499)
    assert retry_backoff_remaining_ms(run, 1_000) == 500
    assert retry_backoff_is_due(run, 1_500)
    assert retry_backoff_remaining_ms(run, 1_600) == 0


def test_retry_backoff_metadata_survives_json_roundtrip():
    run = run_with_retry_after(1_500)
    decoded = parse_run(json.loads(json.dumps(dump_run(run))))
    scheduler = decoded.scheduler
    assert scheduler is not None
    assert scheduler.queue_reason == QueueReason.RETRY_BACKOFF
    assert scheduler.retry_node_id == "node-a"
    assert scheduler.retry_attempt == 2
    assert scheduler.retry_backoff_ms == 500
    assert scheduler.retry_after_ms == 1_500
    assert scheduler.retry_reason == "provider timeout"


def test_queue_run_for_retry_backoff_records_durable_retry_state():
    run = run_with_retry_after(100, status="running", scheduler=None, active_session_ids=["session-a"])
    expected_epoch = run.execution_claim_epoch

    metadata = queue_run_for_retry_backoff(
        run, "node-a", 1, 3, transient_decision(), "provider timeout", expected_epoch, 1_000
    )

    assert metadata is not None
    assert run.status == RunStatus.QUEUED
    assert run.active_session_ids == []
    assert metadata.retry_after_ms == 1_500
    assert metadata.retry_attempt == 2
    assert run.scheduler == metadata
    assert any(
        event.event == "node_retry_backoff_scheduled" for event in run.checkpoint.lifecycle_history
    )
    assert dump_run(run)["scheduler"]["queue_reason"] == "retry_backoff"


def test_queue_run_for_retry_backoff_does_not_resurrect_stopped_run():
    run = run_with_retry_after(100, status="cancelled", scheduler=None)
    before = dump_run(run)
    expected_epoch = run.execution_claim_epoch

    assert (
        queue_run_for_retry_backoff(
            run, "node-a", 1, 3, transient_decision(), "provider timeout", expected_epoch, 1_000
        )
        is None
    )
    assert run.status == RunStatus.CANCELLED
    assert run.scheduler is None
    assert dump_run(run) == before


# --- due / remaining ------------------------------------------------------------


def test_a_run_without_scheduler_metadata_or_in_another_queue_is_always_due():
    plain = run_with_retry_after(10_000, scheduler=None)
    assert retry_backoff_is_due(plain, 0)
    assert retry_backoff_remaining_ms(plain, 0) is None
    capacity = run_with_retry_after(10_000)
    capacity.scheduler.queue_reason = QueueReason.CAPACITY
    assert retry_backoff_is_due(capacity, 0)
    assert retry_backoff_remaining_ms(capacity, 0) is None


def test_retry_backoff_without_a_due_time_is_due_and_has_no_remaining_time():
    run = run_with_retry_after(1)
    run.scheduler.retry_after_ms = None
    assert retry_backoff_is_due(run, 0)
    assert retry_backoff_remaining_ms(run, 0) is None


# --- metadata -------------------------------------------------------------------


def test_retry_metadata_names_the_node_resource_and_the_next_attempt():
    run = run_with_retry_after(0, status="running", scheduler=None)
    metadata = retry_backoff_scheduler_metadata(
        run, "node-b", 2, transient_decision(next_retry_at_ms=None, backoff_ms=700), "boom", 5_000
    )
    assert metadata is not None
    assert dump_model(metadata) == {
        "tenant_context": {"org_id": "local", "workspace_id": "local", "source": "local_implicit"},
        "queue_reason": "retry_backoff",
        "resource_key": "automation://automation-retry/runs/run-retry/nodes/node-b",
        "queued_at_ms": 5_000,
        "retry_node_id": "node-b",
        "retry_attempt": 3,
        "retry_backoff_ms": 700,
        "retry_after_ms": 5_700,
        "retry_reason": "boom",
    }


def test_a_decision_without_backoff_yields_no_metadata_and_queues_nothing():
    run = run_with_retry_after(0, status="running", scheduler=None)
    before = dump_run(run)
    decision = transient_decision(backoff_ms=None, next_retry_at_ms=None)
    assert retry_backoff_scheduler_metadata(run, "node-a", 1, decision, "x", 0) is None
    assert queue_run_for_retry_backoff(run, "node-a", 1, 3, decision, "x", 0, 0) is None
    assert dump_run(run) == before


def test_retry_reason_is_truncated_to_500_bytes_at_a_character_boundary():
    run = run_with_retry_after(0, status="running", scheduler=None)
    detail = "é" * 300  # 600 bytes
    metadata = retry_backoff_scheduler_metadata(run, "n", 1, transient_decision(), detail, 0)
    assert metadata is not None
    assert metadata.retry_reason == "é" * 250 + "...<truncated>"


def test_truncate_text_keeps_short_text_and_never_splits_a_character():
    assert truncate_text("short", 500) == "short"
    assert truncate_text("x" * 500, 500) == "x" * 500
    assert truncate_text("x" * 501, 500) == "x" * 500 + "...<truncated>"
    assert truncate_text("a€b", 3) == "a...<truncated>"


# --- queueing -------------------------------------------------------------------


def test_queueing_clears_stop_and_pause_state_and_explains_the_retry_in_detail():
    run = run_with_retry_after(
        0,
        status="running",
        scheduler=None,
        finished_at_ms=9,
        stop_kind="panic",
        stop_reason="x",
        pause_reason="y",
        active_instance_ids=["i-1"],
    )
    queue_run_for_retry_backoff(run, "node-a", 1, 3, transient_decision(), "provider timeout", 0, 1_000)
    assert (run.finished_at_ms, run.stop_kind, run.stop_reason, run.pause_reason) == (None,) * 4
    assert run.resume_reason == "retry_backoff_scheduled"
    assert run.active_instance_ids == []
    assert run.detail == (
        "retrying node `node-a` after transient provider failure; queued for retry in 500 ms "
        "before attempt 2/3: provider timeout"
    )


def test_the_retry_event_carries_the_decision_and_the_execution_profile():
    run = run_with_retry_after(0, status="running", scheduler=None)
    queue_run_for_retry_backoff(run, "node-a", 1, 3, transient_decision(), "provider timeout", 0, 1_000)
    [event] = run.checkpoint.lifecycle_history
    assert event.recorded_at_ms == 1_000
    assert event.reason == "node `node-a` retry scheduled after 500 ms"
    assert event.metadata == {
        "node_id": "node-a",
        "attempt": 1,
        "next_attempt": 2,
        "max_attempts": 3,
        "backoff_ms": 500,
        "retry_after_ms": 1_500,
        "reason": "provider timeout",
        "retry_decision": {
            "version": 1,
            "policy_version_id": "policy",
            "decision": "retry_scheduled",
            "failure_class": "provider_transient",
            "reason": "provider timeout",
            "attempt": 1,
            "max_attempts": 3,
            "retryable": True,
            "terminal": False,
            "next_retry_at_ms": 1_500,
            "backoff_ms": 500,
            "terminal_behavior": {"mode": "fail_run", "dead_letter": False},
            "manual_override_allowed": True,
        },
        "effective_execution_profile": "strict",
    }


def test_a_run_reclaimed_under_a_newer_epoch_is_not_queued_by_a_stale_decision():
    run = run_with_retry_after(0, status="running", scheduler=None, execution_claim_epoch=3)
    before = dump_run(run)
    assert queue_run_for_retry_backoff(run, "node-a", 1, 3, transient_decision(), "x", 2, 0) is None
    assert dump_run(run) == before


def test_retry_decision_round_trips_unknown_fields_and_omits_absent_backoff():
    raw = transient_decision().as_json() | {"future": {"x": 1}}
    assert RetryDecision.model_validate(raw).as_json() == raw
    lean = transient_decision(next_retry_at_ms=None, backoff_ms=None).as_json()
    assert "next_retry_at_ms" not in lean and "backoff_ms" not in lean


def test_applying_a_retry_backoff_releases_the_runs_slot_and_lock_through_the_update_rule():
    scheduler = AutomationScheduler(8, ManualClock(1_000))
    run = run_with_retry_after(
        0, status="running", scheduler=None, automation_snapshot={"workspace_root": "/w"}
    )
    scheduler.admit_run(run.run_id, "/w")
    metadata = apply_retry_backoff(
        run, "node-a", 1, 3, transient_decision(), "x", 0, now_ms=1_000, scheduler=scheduler
    )
    assert metadata is not None and run.scheduler == metadata
    assert run.updated_at_ms == 1_000
    assert scheduler.active_runs == {} and scheduler.locked_workspaces == {}
    assert scheduler.completed_total == 1


def test_applying_a_refused_retry_backoff_changes_no_byte():
    run = run_with_retry_after(0, status="paused", scheduler=None)
    before = dump_run(run)
    assert apply_retry_backoff(run, "node-a", 1, 3, transient_decision(), "x", 0, now_ms=5) is None
    assert dump_run(run) == before
