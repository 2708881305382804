"""The pure action rules answer as the server's handlers do (recover, cancel, resume).

Tests named ``test_automations_v2_run_*`` are twins of the server's own tests of the same
name (tandem-server v0.7.2, ``http/tests/global_parts/part02.rs``, ``part04.rs``,
``part06.rs``): the same run set-up, the same assertions, against our pure rules.
"""

from __future__ import annotations

from typing import Any

import pytest

from tandem_tui.domain.actions import (
    ActionKind,
    Refusal,
    Transition,
    apply_action,
    normalized_reason,
    preview,
)
from tandem_tui.domain.models import Run, RunStatus, StopKind, parse_run

NOW = 1_700_000_000_000


def node(node_id: str, *depends_on: str, **extra: Any) -> dict:
    return {"node_id": node_id, "agent_id": "a", "objective": node_id, "depends_on": list(depends_on), **extra}


#: ``test_automation_v2_spec``: draft -> review -> approval.
LINEAR = [node("draft"), node("review", "draft"), node("approval", "review")]
#: ``branched_test_automation_v2_spec``: research -> (analysis, draft) -> publish.
BRANCHED = [
    node("research"),
    node("analysis", "research"),
    node("draft", "research"),
    node("publish", "analysis", "draft"),
]


def run_of(status: str, nodes: list[dict] | None = LINEAR, **fields: Any) -> Run:
    checkpoint = fields.pop("checkpoint", {})
    raw: dict[str, Any] = {
        "run_id": "run-1",
        "automation_id": "auto-1",
        "trigger_type": "manual",
        "status": status,
        "created_at_ms": NOW - 60_000,
        "updated_at_ms": NOW - 30_000,
        "checkpoint": checkpoint,
        **fields,
    }
    if nodes is not None:
        raw["automation_snapshot"] = {"automation_id": "auto-1", "flow": {"nodes": nodes}}
    return parse_run(raw)


def act(kind: str, run: Run, reason: str | None = None) -> Transition | Refusal:
    outcome = preview(ActionKind(kind), run, NOW)
    if isinstance(outcome, Transition):
        apply_action(run, outcome, reason=reason, actor="op@host", now_ms=NOW)
    return outcome


def recovered(run: Run, reason: str) -> Run:
    outcome = act("requeue", run, reason)
    assert isinstance(outcome, Transition), outcome
    assert run.status == RunStatus.QUEUED
    return run


def events(run: Run) -> list[str]:
    return [e.event for e in run.checkpoint.lifecycle_history]


# --- recover: twins of the server's tests ---------------------------------------------


def test_automations_v2_run_recover_from_pause_preserves_completed_state_and_records_history():
    run = run_of(
        "paused",
        pause_reason="paused for operator review",
        active_session_ids=["session-a"],
        latest_session_id="session-a",
        active_instance_ids=["instance-a"],
        checkpoint={
            "completed_nodes": ["draft"],
            "pending_nodes": ["review", "approval"],
            "node_outputs": {"draft": {"summary": "draft"}},
            "node_attempts": {"draft": 2},
            "awaiting_gate": {"node_id": "approval", "title": "Approval", "requested_at_ms": NOW},
            "blocked_nodes": ["approval"],
        },
    )
    recovered(run, "continue after operator pause")
    cp = run.checkpoint
    assert cp.completed_nodes == ["draft"]
    assert cp.pending_nodes == ["review", "approval"]
    assert "draft" in cp.node_outputs and cp.awaiting_gate is None
    assert cp.blocked_nodes == ["approval"]
    assert cp.node_attempts == {"draft": 2}
    assert run.active_session_ids == [] and run.active_instance_ids == [] and run.latest_session_id is None
    assert run.resume_reason == "continue after operator pause"
    event = next(e for e in cp.lifecycle_history if e.event == "run_recovered_from_pause")
    assert event.reason == "continue after operator pause"


def test_automations_v2_run_recover_from_stale_pause_clears_pending_outputs_and_attempts():
    run = run_of(
        "paused",
        pause_reason="stale_no_provider_activity",
        checkpoint={
            "completed_nodes": ["draft"],
            "pending_nodes": ["review", "approval"],
            "node_outputs": {"draft": {"summary": "draft"}, "review": {"status": "needs_repair"}},
            "node_attempts": {"draft": 2, "review": 2, "approval": 1},
        },
    )
    recovered(run, "recover stale pause")
    cp = run.checkpoint
    assert "draft" in cp.node_outputs and "review" not in cp.node_outputs
    assert cp.node_attempts == {"draft": 2}
    assert run.pause_reason == "stale_no_provider_activity", "recover does not clear pause_reason"


def test_automations_v2_run_recover_allows_completed_runs_with_blocked_node_evidence():
    run = run_of(
        "completed",
        finished_at_ms=NOW - 1,
        active_session_ids=["session-a"],
        latest_session_id="session-a",
        active_instance_ids=["instance-a"],
        checkpoint={
            "completed_nodes": ["draft", "review"],
            "pending_nodes": ["approval"],
            "node_outputs": {
                "draft": {"status": "completed", "summary": "draft"},
                "review": {"status": "blocked", "summary": "review blocked"},
            },
            "node_attempts": {"review": 2},
        },
    )
    recovered(run, "retry completed run with blocked node evidence")
    cp = run.checkpoint
    assert "draft" in cp.completed_nodes and "review" not in cp.completed_nodes
    assert "draft" in cp.node_outputs and "review" not in cp.node_outputs
    assert "review" not in cp.node_attempts and "review" in cp.pending_nodes
    assert run.latest_session_id is None and run.finished_at_ms is None
    assert run.resume_reason == "retry completed run with blocked node evidence"


def failed_branch(**checkpoint: Any) -> Run:
    base = {
        "completed_nodes": ["research", "analysis", "draft"],
        "pending_nodes": ["publish"],
        "node_outputs": {
            "research": {"summary": "research"},
            "analysis": {"summary": "analysis"},
            "draft": {"summary": "draft"},
        },
        "node_attempts": {"draft": 2},
    }
    return run_of("failed", BRANCHED, checkpoint={**base, **checkpoint})


def test_automations_v2_run_recover_on_failed_branch_preserves_completed_sibling_branch():
    run = failed_branch(last_failure={"node_id": "draft", "reason": "bad draft", "failed_at_ms": NOW})
    run.active_session_ids = ["session-a"]
    recovered(run, "retry only the failed draft branch")
    cp = run.checkpoint
    assert cp.completed_nodes == ["research", "analysis"]
    assert set(cp.node_outputs) == {"research", "analysis"}
    assert cp.pending_nodes == ["draft", "publish"]
    assert "draft" not in cp.node_attempts and cp.last_failure is None
    event = next(e for e in cp.lifecycle_history if e.event == "run_recovered")
    assert event.reason == "retry only the failed draft branch"


def test_automations_v2_run_recover_clears_stale_blocked_nodes_on_failed_run():
    run = failed_branch(
        node_outputs={
            "research": {"summary": "research"},
            "analysis": {"status": "blocked", "summary": "stale blocked analysis"},
            "draft": {"summary": "draft"},
        },
        blocked_nodes=["analysis"],
        node_attempts={"analysis": 3, "draft": 2},
        last_failure={"node_id": "draft", "reason": "bad draft", "failed_at_ms": NOW},
    )
    recovered(run, "recover failed run with stale blocked nodes")
    cp = run.checkpoint
    assert cp.completed_nodes == ["research"]
    assert set(cp.node_outputs) == {"research"}
    assert {"analysis", "draft", "publish"} <= set(cp.pending_nodes)
    assert "analysis" not in cp.blocked_nodes
    assert cp.node_attempts == {} and cp.last_failure is None


def test_automations_v2_run_recover_uses_failed_node_outputs_when_last_failure_missing():
    run = failed_branch(
        node_outputs={
            "research": {"summary": "research"},
            "analysis": {"summary": "analysis"},
            "draft": {"status": "verify_failed", "failure_kind": "verification_failed"},
        }
    )
    recovered(run, "recover from derived failed node")
    assert run.checkpoint.completed_nodes == ["research", "analysis"]
    assert {"draft", "publish"} <= set(run.checkpoint.pending_nodes)


def test_automations_v2_run_recover_uses_blocked_nodes_when_failed_context_missing():
    run = failed_branch(blocked_nodes=["publish"])
    run.detail = "automation run interrupted by server restart"
    recovered(run, "recover interrupted run")
    assert "publish" not in run.checkpoint.blocked_nodes
    assert "publish" in run.checkpoint.pending_nodes
    assert run.checkpoint.last_failure is None


def test_automations_v2_run_recover_uses_runtime_context_missing_failure_detail():
    run = run_of(
        "failed",
        detail="runtime context partition missing for automation run",
        checkpoint={
            "pending_nodes": ["draft"],
            "last_failure": {"node_id": "runtime_context", "reason": "x", "failed_at_ms": NOW},
        },
    )
    recovered(run, "recover runtime context failure")
    assert run.detail == "recover runtime context failure"
    assert "runtime_context" not in run.checkpoint.pending_nodes
    assert run.checkpoint.last_failure is None
    # v0.7.1+: a failed run with nothing reset records run_recovered, not ..._from_pause.
    assert events(run)[-1] == "run_recovered"


def test_automations_v2_run_recover_from_pause_preserves_branched_state():
    run = run_of(
        "paused",
        BRANCHED,
        pause_reason="operator paused branched mission",
        active_session_ids=["session-a"],
        checkpoint={
            "completed_nodes": ["research", "analysis"],
            "pending_nodes": ["draft", "publish"],
            "node_outputs": {"research": {"summary": "research"}, "analysis": {"summary": "analysis"}},
            "blocked_nodes": ["publish"],
        },
    )
    recovered(run, "continue branched mission after pause")
    assert run.checkpoint.completed_nodes == ["research", "analysis"]
    assert run.checkpoint.pending_nodes == ["draft", "publish"]
    assert run.checkpoint.blocked_nodes == ["publish"], "publish still waits for draft"


def all_completed(detail: str) -> Run:
    ids = ["research", "analysis", "draft", "publish"]
    return run_of(
        "failed",
        BRANCHED,
        detail=detail,
        checkpoint={
            "completed_nodes": ids,
            "node_outputs": {i: {"status": "completed", "summary": i} for i in ids},
            "node_attempts": {i: 1 for i in ids},
        },
    )


def test_automations_v2_run_recover_uses_completion_assertion_node_detail():
    run = all_completed("automation run missing successful external action receipt for outbound node `publish`")
    recovered(run, "recover completion assertion failure")
    assert run.checkpoint.completed_nodes == ["research", "analysis", "draft"]
    assert run.checkpoint.pending_nodes == ["publish"]
    assert "publish" not in run.checkpoint.node_outputs and "publish" not in run.checkpoint.node_attempts


def test_automations_v2_run_recover_resets_terminal_node_for_run_level_deliverable_assertion():
    run = all_completed("automation run deliverable `customer.incident_reported` lacks current-run output evidence")
    recovered(run, "reconcile run-level deliverables")
    assert run.checkpoint.completed_nodes == ["research", "analysis", "draft"]
    assert run.checkpoint.node_attempts == {"research": 1, "analysis": 1, "draft": 1}
    assert run.checkpoint.pending_nodes == ["publish"]
    assert "run_recovered" in events(run)


# --- recover: refusals ------------------------------------------------------------------


@pytest.mark.parametrize("status", ["cancelled", "awaiting_approval", "pausing"])
def test_recover_refuses_what_the_server_calls_not_recoverable(status):
    outcome = preview(ActionKind.REQUEUE, run_of(status), NOW)
    assert isinstance(outcome, Refusal)
    assert outcome.message == (
        f"cannot requeue run run-1: Run is not recoverable (AUTOMATION_V2_RUN_NOT_RECOVERABLE): it is {status}"
    )


def test_recover_refuses_a_completed_run_without_blocked_node_evidence():
    outcome = preview(ActionKind.REQUEUE, run_of("completed", checkpoint={"completed_nodes": ["draft"]}), NOW)
    assert isinstance(outcome, Refusal) and "AUTOMATION_V2_RUN_NOT_RECOVERABLE" in outcome.message


def test_recover_refuses_a_failed_run_without_failure_context():
    outcome = preview(ActionKind.REQUEUE, run_of("failed", detail="something else"), NOW)
    assert isinstance(outcome, Refusal)
    assert "Run has no recoverable failed node (AUTOMATION_V2_RUN_FAILURE_CONTEXT_MISSING)" in outcome.message


def test_recover_refuses_a_blocked_run_without_blocked_nodes():
    outcome = preview(ActionKind.REQUEUE, run_of("blocked"), NOW)
    assert isinstance(outcome, Refusal)
    assert "Run has no recoverable blocked node (AUTOMATION_V2_RUN_BLOCKED_CONTEXT_MISSING)" in outcome.message


def test_recover_of_a_failed_run_without_a_snapshot_is_refused_offline():
    run = run_of("failed", None, checkpoint={"last_failure": {"node_id": "d", "reason": "r", "failed_at_ms": 1}})
    outcome = preview(ActionKind.REQUEUE, run, NOW)
    assert isinstance(outcome, Refusal) and "AUTOMATION_V2_NOT_FOUND" in outcome.message


def test_a_blocked_node_is_found_in_node_output_content_status():
    run = run_of("blocked", checkpoint={"node_outputs": {"review": {"content": {"status": " Blocked "}}}})
    recovered(run, "x")
    assert "review" in run.checkpoint.pending_nodes and "approval" in run.checkpoint.pending_nodes


def test_recover_defaults_its_reason_by_the_status_it_recovers_from():
    paused = recovered(run_of("paused"), None)
    assert paused.detail == paused.resume_reason == "recovered from paused state by operator"
    failed = recovered(
        run_of("failed", checkpoint={"last_failure": {"node_id": "draft", "reason": "r", "failed_at_ms": 1}}), "  "
    )
    assert failed.detail == "recovered by operator"


def test_recover_records_a_newly_opened_barrier_phase_and_blocks_later_phases():
    phases = [{"phase_id": "p1", "execution_mode": "barrier"}, {"phase_id": "p2"}]
    nodes = [
        node("a", metadata={"builder": {"phase_id": "p1"}}),
        node("b", metadata={"builder": {"phase_id": "p2"}}),
    ]
    run = run_of("blocked", nodes, checkpoint={"blocked_nodes": ["a"], "pending_nodes": ["b"]})
    run.automation_snapshot["metadata"] = {"mission": {"phases": phases}}
    recovered(run, "go")
    assert run.checkpoint.blocked_nodes == ["b"]
    opened = run.checkpoint.lifecycle_history[-1]
    assert opened.event == "phase_opened" and opened.reason == "phase `p1` is now open"
    assert opened.metadata["phase_id"] == "p1" and opened.metadata["execution_mode"] == "barrier"


def test_reasons_are_trimmed_as_rust_trims_and_otherwise_kept():
    assert normalized_reason("  night   maintenance \n") == "night   maintenance"
    assert normalized_reason("\u3000x\u2028") == "x"
    # Python's strip() would take U+001F; Rust's trim does not.
    assert normalized_reason("\x1fx") == "\x1fx"
    assert normalized_reason(" \t ") is None


# --- cancel ------------------------------------------------------------------------------


def test_automations_v2_run_cancel_records_operator_stop_kind_and_clears_active_ids():
    run = run_of("running", active_session_ids=["session-a", "session-b"], active_instance_ids=["instance-a"])
    outcome = act("cancel", run, "kill switch triggered by operator")
    assert isinstance(outcome, Transition)
    assert run.status == RunStatus.CANCELLED
    assert run.stop_kind == StopKind.OPERATOR_STOPPED
    assert run.stop_reason == run.detail == "kill switch triggered by operator"
    assert run.active_session_ids == [] and run.active_instance_ids == []
    stop = next(e for e in run.checkpoint.lifecycle_history if e.event == "run_stopped")
    assert stop.stop_kind == StopKind.OPERATOR_STOPPED
    assert stop.reason == "kill switch triggered by operator"
    assert run.finished_at_ms == NOW


def test_automations_v2_run_cancel_is_idempotent_for_terminal_runs():
    run = run_of(
        "completed",
        detail="completed before operator cleanup",
        active_session_ids=["session-terminal-a", "session-terminal-b"],
        latest_session_id="session-terminal-b",
        active_instance_ids=["instance-terminal-a"],
    )
    outcome = act("cancel", run)
    assert isinstance(outcome, Transition) and outcome.writes
    assert run.status == RunStatus.COMPLETED
    assert run.detail == "completed before operator cleanup"
    assert run.active_session_ids == [] and run.active_instance_ids == [] and run.latest_session_id is None
    assert events(run) == []


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_cancel_of_a_finished_run_without_handles_changes_nothing(status):
    run = run_of(status)
    before = run.model_dump(mode="json")
    outcome = act("cancel", run)
    assert isinstance(outcome, Transition) and not outcome.writes
    assert run.model_dump(mode="json") == before


def test_cancel_of_a_blocked_run_cancels_it_keeping_its_finish_time():
    run = run_of("blocked", finished_at_ms=NOW - 5)
    act("cancel", run)
    assert run.status == RunStatus.CANCELLED and run.finished_at_ms == NOW - 5


def test_cancel_of_a_paused_run_keeps_its_pause_reason_and_drops_its_claim():
    run = run_of("paused", pause_reason="earlier")
    act("cancel", run)
    assert run.pause_reason == "earlier" and run.execution_claim is None


# --- resume and the update rule ----------------------------------------------------------


def test_resume_clears_pause_reason_as_the_server_does_from_v0_6_5():
    run = run_of("paused", pause_reason="maintenance", stop_kind="operator_stopped", stop_reason="x")
    act("resume", run)
    assert run.status == RunStatus.QUEUED
    assert run.pause_reason is None and run.stop_kind is None and run.stop_reason is None


def test_leaving_running_clears_the_execution_claim():
    claim = {"claim_id": "c", "claimant_id": "x", "claimed_at_ms": 1, "lease_expires_at_ms": NOW + 60_000, "lease_epoch": 1}
    run = run_of("running", execution_claim=claim, execution_claim_epoch=1)
    act("pause", run)
    assert run.status == RunStatus.PAUSED and run.execution_claim is None
    assert run.execution_claim_epoch == 1
