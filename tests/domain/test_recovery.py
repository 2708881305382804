"""Startup recovery, stale auto-resume and shutdown behave like the server's (seed 004)."""

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import RunStatus, StopKind, dump_run, parse_run
from tandem_tui.domain.recovery import (
    DEFAULT_STALE_AUTO_RESUME_WINDOW_MS,
    auto_resume_stale_reaped_runs,
    automation_output_validated_artifact,
    fail_running_runs_for_shutdown,
    latest_stale_reap_recorded_at_ms,
    node_max_attempts,
    recover_in_flight_runs,
    stale_auto_resume_max_attempts,
    stale_auto_resume_window_ms,
    stale_reap_is_within_auto_resume_window,
)
from tandem_tui.domain.scheduler import AutomationScheduler, ValidatedArtifact

NOW = 10_000_000
WRITTEN = {
    "status": "completed",
    "attempt_evidence": {
        "artifact": {"status": "written", "path": "out/a.md", "content_digest": "sha256:aa"}
    },
}


def make_run(run_id="run-1", status="running", **overrides):
    raw = {
        "run_id": run_id,
        "automation_id": "auto-1",
        "status": status,
        "created_at_ms": 1,
        "updated_at_ms": 1,
        "automation_snapshot": {"workspace_root": "/w"},
    }
    raw.update(overrides)
    return parse_run(raw)


def stale_reaped_run(run_id="run-1", *, reaped_at=NOW - 60_000, attempts=1, retry_policy=None,
                     output_status="needs_repair", history=None, **overrides):
    node = {"node_id": "draft"}
    if retry_policy is not None:
        node["retry_policy"] = retry_policy
    reap = {
        "event": "run_paused_stale_no_provider_activity",
        "recorded_at_ms": reaped_at,
        "stop_kind": "stale_reaped",
    }
    fields = {
        "stop_kind": "stale_reaped",
        "stop_reason": "stale",
        "pause_reason": "stale_no_provider_activity",
        "detail": "automation run paused after no provider activity",
        "automation_snapshot": {"workspace_root": "/w", "flow": {"nodes": [{"node_id": "collect"}, node]}},
        "checkpoint": {
            "completed_nodes": ["collect"],
            "pending_nodes": ["draft"],
            "node_outputs": {"collect": {"status": "completed"}, "draft": {"status": output_status}},
            "node_attempts": {"collect": 1, "draft": attempts},
            "lifecycle_history": (history or []) + [reap],
        },
    }
    fields.update(overrides)
    return make_run(run_id, "paused", **fields)


# --- twins of the seed's #[test]s -------------------------------------------------


def test_stale_auto_resume_window_allows_fresh_reaped_runs():
    assert stale_reap_is_within_auto_resume_window(10_000, 9_500, 1_000)


def test_stale_auto_resume_window_rejects_old_reaped_runs():
    assert not stale_reap_is_within_auto_resume_window(10_000, 7_000, 1_000)


# --- startup recovery -------------------------------------------------------------


def test_recovery_fails_running_runs_with_a_server_restart_stop():
    scheduler = AutomationScheduler(8, ManualClock(NOW))
    run = make_run(status="running")
    scheduler.admit_run(run.run_id, "/w")
    assert recover_in_flight_runs([run], now_ms=NOW, scheduler=scheduler) == 1
    assert run.status == RunStatus.FAILED
    assert run.detail == run.stop_reason == "automation run interrupted by server restart"
    assert run.stop_kind == StopKind.SERVER_RESTART
    assert run.finished_at_ms == run.updated_at_ms == NOW
    [event] = run.checkpoint.lifecycle_history
    assert (event.event, event.stop_kind, event.recorded_at_ms) == (
        "run_failed_server_restart", StopKind.SERVER_RESTART, NOW,
    )
    assert scheduler.active_runs == {} and scheduler.locked_workspaces == {}


def test_recovery_settles_pausing_runs_to_paused_keeping_an_existing_pause_reason():
    without_reason = make_run("a", "pausing")
    with_reason = make_run("b", "pausing", pause_reason="operator asked")
    assert recover_in_flight_runs({"a": without_reason, "b": with_reason}, now_ms=NOW) == 2
    assert without_reason.status == with_reason.status == RunStatus.PAUSED
    assert without_reason.pause_reason == "automation run settled to paused after server restart"
    assert with_reason.pause_reason == "operator asked"
    assert without_reason.checkpoint.lifecycle_history[-1].event == "run_pausing_settled_on_restart"
    assert without_reason.finished_at_ms is None


@pytest.mark.parametrize("status", ["paused", "awaiting_approval"])
def test_recovery_registers_validated_artifacts_of_paused_and_awaiting_runs_without_counting(status):
    scheduler = AutomationScheduler(8, ManualClock(NOW))
    run = make_run(
        status=status,
        checkpoint={
            "node_outputs": {
                "a": WRITTEN,
                "b": {"attempt_evidence": {"artifact": {"status": "rejected", "path": "x", "content_digest": "d"}}},
                "c": {"status": "completed"},
            }
        },
    )
    before = dump_run(run)
    assert recover_in_flight_runs([run], now_ms=NOW, scheduler=scheduler) == 0
    assert dump_run(run) == before
    assert scheduler.preexisting_registry.artifacts == {
        "run-1": {"a": ValidatedArtifact(path="out/a.md", content_digest="sha256:aa")}
    }
    assert scheduler.locked_workspaces == {}


@pytest.mark.parametrize("status", ["queued", "completed", "failed", "blocked", "cancelled"])
def test_recovery_leaves_other_statuses_untouched(status):
    scheduler = AutomationScheduler(8, ManualClock(NOW))
    run = make_run(status=status, checkpoint={"node_outputs": {"a": WRITTEN}})
    before = dump_run(run)
    assert recover_in_flight_runs([run], now_ms=NOW, scheduler=scheduler) == 0
    assert dump_run(run) == before
    assert scheduler.preexisting_registry.artifacts == {}


# --- validated artifacts and max attempts -------------------------------------------


@pytest.mark.parametrize(
    ("artifact", "expected"),
    [
        ({"status": "written", "path": "p", "content_digest": "d"}, ValidatedArtifact("p", "d")),
        ({"status": "reused_valid", "path": "p", "content_digest": "d"}, ValidatedArtifact("p", "d")),
        ({"status": "WRITTEN", "path": "p", "content_digest": "d"}, None),
        ({"status": "written", "path": 3, "content_digest": "d"}, None),
        ({"status": "written", "path": "p"}, None),
        ({"path": "p", "content_digest": "d"}, None),
    ],
)
def test_a_validated_artifact_needs_a_valid_status_and_string_path_and_digest(artifact, expected):
    assert automation_output_validated_artifact({"attempt_evidence": {"artifact": artifact}}) == expected


@pytest.mark.parametrize("output", [None, "text", [], {}, {"attempt_evidence": "x"}])
def test_outputs_without_attempt_evidence_hold_no_validated_artifact(output):
    assert automation_output_validated_artifact(output) is None


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"node_id": "n"}, 3),
        ({"node_id": "n", "retry_policy": {"max_attempts": 5}}, 5),
        ({"node_id": "n", "retry_policy": {"max_attempts": 0}}, 1),
        ({"node_id": "n", "retry_policy": {"max_attempts": 50}}, 10),
        ({"node_id": "n", "retry_policy": {"max_attempts": "5"}}, 3),
        ({"node_id": "n", "retry_policy": {"max_attempts": True}}, 3),
        ({"node_id": "n", "retry_policy": {"max_attempts": -1}}, 3),
        ({"node_id": "n", "retry_policy": None}, 3),
        # v0.6.5+ RetryPolicy: the camelCase key too, the first present key wins.
        ({"node_id": "n", "retry_policy": {"maxAttempts": 4}}, 4),
        ({"node_id": "n", "retry_policy": {"max_attempts": "x", "maxAttempts": 4}}, 3),
        # ``as u32`` cuts before the clamp: 2**32 becomes 0, then 1; 2**32 + 7 becomes 7.
        ({"node_id": "n", "retry_policy": {"max_attempts": 2**32}}, 1),
        ({"node_id": "n", "retry_policy": {"max_attempts": 2**32 + 7}}, 7),
        # JSON -0 is a float to serde: no max_attempts, the default.
        ({"node_id": "n", "retry_policy": {"max_attempts": -0.0}}, 3),
    ],
)
def test_node_max_attempts_comes_from_the_retry_policy_else_the_default(node, expected):
    assert node_max_attempts(node) == expected


@pytest.mark.parametrize(
    ("contract", "expected"),
    [
        ({"kind": " Brief "}, 5),
        ({"kind": "report", "validator": "research_brief"}, 5),
        ({"kind": "brief", "validator": "standup_update", "enforcement": {"required_tools": ["web"]}}, 3),
        ({"kind": "report", "enforcement": {"required_tools": ["mcp.github.create_issue"]}}, 5),
        ({"kind": "review"}, 3),
        (None, 3),
    ],
)
def test_node_max_attempts_default_follows_the_node_kind_like_the_server(contract, expected):
    node = {"node_id": "n", "output_contract": contract}
    assert node_max_attempts(node) == expected
    assert node_max_attempts({**node, "retry_policy": {"max_attempts": 2}}) == 2


# --- stale auto-resume ------------------------------------------------------------


def test_a_freshly_stale_reaped_run_with_a_repairable_node_is_queued_again():
    run = stale_reaped_run()
    assert auto_resume_stale_reaped_runs([run], now_ms=NOW, env={}) == 1
    assert run.status == RunStatus.QUEUED
    assert (run.pause_reason, run.detail, run.stop_kind, run.stop_reason) == (None,) * 4
    assert run.updated_at_ms == NOW
    event = run.checkpoint.lifecycle_history[-1]
    assert event.event == "run_auto_resumed"
    assert event.reason == "auto_resume_after_stale_reap"
    assert event.metadata == {
        "auto_resume_window_ms": DEFAULT_STALE_AUTO_RESUME_WINDOW_MS,
        "stale_reaped_at_ms": NOW - 60_000,
        "effective_execution_profile": "strict",
    }


def test_auto_resume_respects_the_window_from_the_environment():
    run = stale_reaped_run(reaped_at=NOW - 5_000)
    before = dump_run(run)
    env = {"TANDEM_STALE_AUTO_RESUME_WINDOW_MS": "4999"}
    assert auto_resume_stale_reaped_runs([run], now_ms=NOW, env=env) == 0
    assert dump_run(run) == before
    env = {"TANDEM_STALE_AUTO_RESUME_WINDOW_MS": "5000"}
    assert auto_resume_stale_reaped_runs([run], now_ms=NOW, env=env) == 1


def test_a_run_reaped_longer_ago_than_twenty_minutes_is_not_auto_resumed():
    run = stale_reaped_run(reaped_at=NOW - DEFAULT_STALE_AUTO_RESUME_WINDOW_MS - 1)
    assert auto_resume_stale_reaped_runs([run], now_ms=NOW, env={}) == 0
    assert run.status == RunStatus.PAUSED


@pytest.mark.parametrize(("raw", "expected"), [("0", 1_200_000), ("x", 1_200_000), ("7", 7), (None, 1_200_000)])
def test_the_auto_resume_window_is_a_positive_integer_else_twenty_minutes(raw, expected):
    env = {} if raw is None else {"TANDEM_STALE_AUTO_RESUME_WINDOW_MS": raw}
    assert stale_auto_resume_window_ms(env) == expected


def test_a_run_is_auto_resumed_at_most_twice():
    resumed = {"event": "run_auto_resumed", "recorded_at_ms": NOW - 90_000}
    once = stale_reaped_run("once", history=[resumed])
    twice = stale_reaped_run("twice", history=[resumed, resumed])
    assert auto_resume_stale_reaped_runs([once, twice], now_ms=NOW, env={}) == 1
    assert once.status == RunStatus.QUEUED
    assert twice.status == RunStatus.PAUSED


def test_the_auto_resume_cap_comes_from_the_environment():
    resumed = {"event": "run_auto_resumed", "recorded_at_ms": NOW - 90_000}
    twice = stale_reaped_run("twice", history=[resumed, resumed])
    env = {"TANDEM_STALE_AUTO_RESUME_MAX_ATTEMPTS": "3"}
    assert auto_resume_stale_reaped_runs([twice], now_ms=NOW, env=env) == 1


@pytest.mark.parametrize(("raw", "expected"), [(None, 2), ("3", 3), ("+4", 4), ("0", 2), (" 3", 2), ("x", 2)])
def test_the_auto_resume_cap_is_a_positive_integer_else_two(raw, expected):
    env = {} if raw is None else {"TANDEM_STALE_AUTO_RESUME_MAX_ATTEMPTS": raw}
    assert stale_auto_resume_max_attempts(env) == expected


def test_the_disable_switch_turns_auto_resume_off_even_when_empty():
    run = stale_reaped_run()
    assert auto_resume_stale_reaped_runs([run], now_ms=NOW, env={"TANDEM_DISABLE_STALE_AUTO_RESUME": ""}) == 0
    assert run.status == RunStatus.PAUSED


def test_only_paused_runs_stopped_by_the_stale_reaper_are_candidates():
    operator_paused = stale_reaped_run("op", stop_kind="operator_stopped")
    not_paused = stale_reaped_run("q")
    not_paused.status = RunStatus.FAILED
    assert auto_resume_stale_reaped_runs([operator_paused, not_paused], now_ms=NOW, env={}) == 0


def test_a_run_without_a_recorded_reap_is_not_auto_resumed():
    run = stale_reaped_run()
    run.checkpoint.lifecycle_history = []
    assert latest_stale_reap_recorded_at_ms(run) is None
    assert auto_resume_stale_reaped_runs([run], now_ms=NOW, env={}) == 0


def test_the_latest_reap_counts_and_a_stale_reaped_stop_kind_marks_one():
    run = stale_reaped_run(reaped_at=100)
    run.checkpoint.lifecycle_history.append(
        run.checkpoint.lifecycle_history[0].model_copy(update={"event": "other", "recorded_at_ms": 300})
    )
    assert latest_stale_reap_recorded_at_ms(run) == 300


@pytest.mark.parametrize(
    ("kwargs", "resumed"),
    [
        ({}, 1),
        ({"output_status": "NEEDS_REPAIR"}, 1),
        ({"output_status": "completed"}, 0),
        ({"attempts": 3}, 0),
        ({"attempts": 3, "retry_policy": {"max_attempts": 4}}, 1),
        ({"attempts": 1, "retry_policy": {"max_attempts": 1}}, 0),
        ({"automation_snapshot": None}, 0),
        ({"automation_snapshot": {"flow": "broken"}}, 0),
    ],
)
def test_auto_resume_needs_a_node_waiting_for_repair_with_attempts_left(kwargs, resumed):
    run = stale_reaped_run(**kwargs)
    assert auto_resume_stale_reaped_runs([run], now_ms=NOW, env={}) == resumed


def test_a_completed_node_is_never_repairable():
    run = stale_reaped_run()
    run.checkpoint.completed_nodes.append("draft")
    assert auto_resume_stale_reaped_runs([run], now_ms=NOW, env={}) == 0


def test_a_node_without_output_is_not_repairable():
    run = stale_reaped_run()
    del run.checkpoint.node_outputs["draft"]
    assert auto_resume_stale_reaped_runs([run], now_ms=NOW, env={}) == 0


# --- shutdown ---------------------------------------------------------------------


def test_shutdown_fails_every_running_run_and_nothing_else():
    scheduler = AutomationScheduler(8, ManualClock(NOW))
    running = make_run("r", "running")
    paused = make_run("p", "paused")
    scheduler.admit_run("r", "/w")
    paused_before = dump_run(paused)
    assert fail_running_runs_for_shutdown({"r": running, "p": paused}, now_ms=NOW, scheduler=scheduler) == 1
    assert running.status == RunStatus.FAILED
    assert running.stop_kind == StopKind.SHUTDOWN
    assert running.detail == running.stop_reason == "automation run stopped during server shutdown"
    assert running.finished_at_ms == NOW
    [event] = running.checkpoint.lifecycle_history
    assert (event.event, event.stop_kind) == ("run_failed_shutdown", StopKind.SHUTDOWN)
    assert dump_run(paused) == paused_before
    assert scheduler.active_count() == 0 and scheduler.completed_total == 1
