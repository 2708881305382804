"""Operator actions from every status: allowed ones land like the server's, refused ones touch nothing."""

import copy
import json
import os
import pwd
import socket
from pathlib import Path

import pytest

from tandem_tui.domain.actions import (
    DecisionState,
    ActionKind,
    ActionRequest,
    Refusal,
    Transition,
    preview,
)
from tandem_tui.source.actor import default_actor
from tandem_tui.source.file.perform import perform
from tandem_tui.source.file.audit import read_audit
from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import RunStatus, parse_run
from tandem_tui.source.file.store import RunsFileError, read_runs_file, serialize_runs_file
from tandem_tui.domain.view import RunsView

NOW = 1_700_000_000_000
ACTOR = "alice@ops-1"
ENV = {"USER": "alice", "TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS": "8"}


def record(run_id: str, status: str, **extra) -> dict:
    """A run carrying unknown fields at every level the model knows."""
    base = {
        "run_id": run_id,
        "automation_id": f"auto-{run_id}",
        "tenant_context": {"org_id": "o", "workspace_id": "w", "source": "explicit", "region": "eu"},
        "trigger_type": "manual",
        "status": status,
        "created_at_ms": NOW - 60_000,
        "updated_at_ms": NOW - 30_000,
        "active_session_ids": ["sess-1"],
        "latest_session_id": "sess-1",
        "active_instance_ids": ["inst-1"],
        "checkpoint": {
            "completed_nodes": ["plan"],
            "pending_nodes": ["draft"],
            "node_outputs": {"plan": {"status": "ok", "attempt_evidence": {"x": 1}}},
            "lifecycle_history": [
                {"event": "run_created", "recorded_at_ms": NOW - 60_000, "server_only": {"k": 1}}
            ],
            "last_failure": {"node_id": "draft", "reason": "boom", "failed_at_ms": NOW - 40_000, "trace": "t"},
            "checkpoint_future": [1, 2],
        },
        "automation_snapshot": {"workspace_root": f"/ws/{run_id}", "flow": {"nodes": [{"node_id": "draft"}]}},
        "effective_execution_profile": "guided",
        "future_top_level": {"nested": [1, {"y": None}]},
    }
    base.update(extra)
    return base


def expired_claim() -> dict:
    return {
        "claim_id": "claim-1",
        "claimant_id": "tandem-server:executor:42",
        "claimed_at_ms": NOW - 50_000,
        "lease_expires_at_ms": NOW - 1_000,
        "lease_epoch": 3,
        "claim_host": "node-a",
    }


def record_in(status: str, run_id: str = "target") -> dict:
    """The run under test in ``status``, with what such a run carries on the server."""
    extra: dict = {}
    if status == "running":
        # Claimed, lease lapsed, no session started: what the server's claim sweep requeues.
        extra.update(
            started_at_ms=NOW - 50_000,
            execution_claim=expired_claim(),
            execution_claim_epoch=3,
            active_session_ids=[],
            active_instance_ids=[],
        )
    if status == "queued":
        extra["scheduler"] = {"queue_reason": "capacity", "queued_at_ms": NOW - 30_000, "shard_hint": 7}
    if status in ("completed", "failed", "blocked", "cancelled"):
        extra.update(finished_at_ms=NOW - 30_000, stop_reason="earlier stop")
    if status == "cancelled":
        extra["stop_kind"] = "cancelled"
    if status == "blocked":
        # The server recovers a blocked run only from its blocked nodes.
        extra["checkpoint"] = {**record("x", status)["checkpoint"], "blocked_nodes": ["draft"]}
    if status in ("paused", "pausing"):
        extra["pause_reason"] = "earlier pause"
    if status == "awaiting_approval":
        extra["checkpoint"] = {**record("x", status)["checkpoint"], "awaiting_gate": {"node_id": "draft", "title": "Approve draft", "requested_at_ms": NOW - 20_000, "gate_extra": 1}}
    return record(run_id, status, **extra)


def bystander() -> dict:
    return record("bystander", "running", execution_claim={**expired_claim(), "lease_expires_at_ms": NOW + 600_000})


ALL_STATUSES = [s.value for s in RunStatus]

ALLOWED = {
    ("pause", "running"): "paused",
    ("pause", "queued"): "paused",
    ("resume", "paused"): "queued",
    ("requeue", "failed"): "queued",
    ("requeue", "blocked"): "queued",
    ("requeue", "paused"): "queued",
    ("requeue", "running"): "queued",  # offline only: its claim lease expired before any progress
    ("cancel", "queued"): "cancelled",
    ("cancel", "running"): "cancelled",
    ("cancel", "pausing"): "cancelled",
    ("cancel", "paused"): "cancelled",
    ("cancel", "awaiting_approval"): "cancelled",
    ("cancel", "blocked"): "cancelled",  # the server's cancel does not count blocked as terminal
    # Already terminal: ok, status kept, only the session handles are dropped.
    ("cancel", "completed"): "completed",
    ("cancel", "failed"): "failed",
    ("cancel", "cancelled"): "cancelled",
    ("release_lock", "running"): "paused",
    ("release_lock", "pausing"): "paused",
}

EVENTS = {
    ("pause", "running"): ["run_pause_requested", "run_paused"],
    ("pause", "queued"): ["run_pause_requested", "run_paused"],
    ("resume", "paused"): ["run_resumed"],
    ("requeue", "paused"): ["run_recovered_from_pause"],
    ("requeue", "running"): ["run_execution_claim_expired_requeued"],
    ("cancel", "completed"): [],
    ("cancel", "failed"): [],
    ("cancel", "cancelled"): [],
    ("release_lock", "running"): ["run_lock_released_by_operator"],
    ("release_lock", "pausing"): ["run_lock_released_by_operator"],
}


def write_runs(path: Path, *records: dict) -> None:
    path.write_text(serialize_runs_file({r["run_id"]: r for r in records}))


def shard_file(runs_file: Path, raw: dict, year: str = "2023", month: str = "11") -> Path:
    path = runs_file.parent / "automation-runs" / runs_file.stem / year / month / f"{raw['run_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema_version": 1, "run": raw}, indent=2))
    return path


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the audit log (it records refusals) and the empty lock file."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "operator-audit.jsonl" and not p.name.endswith(".lock")
    }


@pytest.fixture
def runs_file(tmp_path) -> Path:
    return tmp_path / "data" / "automation_v2_runs.json"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


def act(runs_file, kind, run_id="target", clock=None, **request):
    return perform(
        runs_file,
        ActionRequest(kind=ActionKind(kind), run_id=run_id, actor=request.pop("actor", ACTOR), **request),
        clock=clock or ManualClock(NOW),
        env=ENV,
    )


def assert_unknown_fields_survive(after: dict, before: dict) -> None:
    assert after["future_top_level"] == before["future_top_level"]
    assert after["tenant_context"] == before["tenant_context"]
    assert after["automation_snapshot"] == before["automation_snapshot"]
    checkpoint = after["checkpoint"]
    assert checkpoint["checkpoint_future"] == [1, 2]
    if checkpoint.get("last_failure") is not None:
        assert checkpoint["last_failure"]["trace"] == "t"
    assert checkpoint["node_outputs"] == before["checkpoint"]["node_outputs"]
    assert checkpoint["lifecycle_history"][0] == before["checkpoint"]["lifecycle_history"][0]
    for new, old in zip(checkpoint["lifecycle_history"], before["checkpoint"]["lifecycle_history"]):
        assert new == old
    if after.get("execution_claim") is not None:
        assert after["execution_claim"] == before["execution_claim"]
    if after.get("scheduler") is not None:
        assert after["scheduler"] == before["scheduler"]


@pytest.mark.parametrize("status", ALL_STATUSES)
@pytest.mark.parametrize("kind", [k.value for k in ActionKind])
def test_each_action_from_each_status_lands_or_is_refused_without_touching_a_byte(
    runs_file, tmp_path, clock, kind, status
):
    runs_file.parent.mkdir(parents=True)
    target, other = record_in(status), bystander()
    write_runs(runs_file, target, other)
    archived = shard_file(runs_file, record("archived", "completed", finished_at_ms=NOW - 90_000))
    before_file, before_tree = runs_file.read_bytes(), tree_bytes(tmp_path)
    clock.advance(5_000)
    now = clock.now_ms()

    result = act(runs_file, kind, clock=clock, reason="  night   maintenance ")

    expected = ALLOWED.get((kind, status))
    audit = read_audit(runs_file)
    assert len(audit) == 1
    assert audit[0]["actor"] == ACTOR and audit[0]["action"] == kind and audit[0]["run_id"] == "target"
    assert audit[0]["source"] == "tandem-tui"
    if expected is None:
        assert result.ok is False
        assert result.previous_status == status
        assert result.message.startswith(f"cannot {kind.replace('_', ' ')} run target:")
        assert "\n" not in result.message
        assert runs_file.read_bytes() == before_file
        assert tree_bytes(tmp_path) == before_tree
        assert audit[0]["result"] == "refused"
        return

    assert result.ok is True, result.message
    assert (result.previous_status, result.new_status) == (status, expected)
    assert audit[0]["result"] == "ok" and audit[0]["new_status"] == expected
    # Trimmed as the server trims; inner whitespace is the operator's.
    assert audit[0]["reason"] == "night   maintenance"
    written = json.loads(runs_file.read_text())["runs"]
    assert written["bystander"] == other, "an untouched run is written back exactly"
    assert archived.read_bytes() == before_tree[str(archived.relative_to(tmp_path))]
    after = written["target"]
    assert after["status"] == expected
    assert after["updated_at_ms"] == now
    assert_unknown_fields_survive(after, target)

    new_events = after["checkpoint"]["lifecycle_history"][len(target["checkpoint"]["lifecycle_history"]):]
    default_event = "run_stopped" if kind == "cancel" else "run_recovered"
    assert [e["event"] for e in new_events] == EVENTS.get((kind, status), [default_event])
    for event in new_events:
        assert event["recorded_at_ms"] == now
        assert event["reason"] == "night   maintenance"
        assert event["metadata"]["actor"] == ACTOR
        assert event["metadata"]["source"] == "tandem-tui"
        assert event["metadata"]["reason"] == "night   maintenance"
        assert event["metadata"]["previous_status"] == status
        assert event["metadata"]["effective_execution_profile"] == "guided"

    if expected != "queued":
        assert "scheduler" not in after or after["scheduler"] is None
    if expected != "running":
        assert after.get("execution_claim") is None, "leaving running drops the claim (v0.6.5+)"
    if kind == "pause":
        assert after["pause_reason"] == "night   maintenance"
        assert after["active_session_ids"] == [] and after["active_instance_ids"] == []
    if kind == "resume":
        assert after["resume_reason"] == "night   maintenance"
        assert after["pause_reason"] is None and after.get("stop_kind") is None
    if kind == "requeue":
        if status == "running":
            assert after["resume_reason"] == "abandoned_execution_claim"
            assert new_events[0]["metadata"]["claim"] == target["execution_claim"]
        else:
            assert after["detail"] == after["resume_reason"] == "night   maintenance"
            assert after.get("finished_at_ms") is None
            assert after["checkpoint"].get("awaiting_gate") is None
        assert after.get("stop_kind") is None and after.get("stop_reason") is None
        assert after["latest_session_id"] is None
        assert after["active_session_ids"] == [] and after["active_instance_ids"] == []
    if kind == "cancel" and status != expected:
        assert after["detail"] == after["stop_reason"] == "night   maintenance"
        assert after["stop_kind"] == "operator_stopped"
        assert new_events[0]["stop_kind"] == "operator_stopped"
        assert after["active_session_ids"] == [] and after["active_instance_ids"] == []
        assert after["latest_session_id"] == "sess-1", "the server's cancel keeps latest_session_id"
        assert after["finished_at_ms"] == target.get("finished_at_ms", now)
    if kind == "cancel" and status == expected:
        assert after["active_session_ids"] == [] and after["active_instance_ids"] == []
        assert after["latest_session_id"] is None
        assert after.get("stop_reason") == target.get("stop_reason")
    if kind == "release_lock":
        metadata = new_events[0]["metadata"]
        assert metadata["workspace_root"] == "/ws/target"
        assert metadata["claim"] == target.get("execution_claim")
        assert after.get("execution_claim") is None
        if status == "running":
            assert after["stop_kind"] == "operator_stopped"
            assert after["stop_reason"] == after["pause_reason"] == "night   maintenance"
        else:
            assert after["pause_reason"] == "earlier pause"


def test_reasons_default_to_what_the_server_writes(runs_file):
    runs_file.parent.mkdir(parents=True)
    write_runs(
        runs_file,
        record_in("running", "r"),
        record_in("paused", "p"),
        record_in("failed", "f"),
        record_in("pausing", "g"),
    )
    assert act(runs_file, "pause", "r").ok
    assert act(runs_file, "resume", "p").ok
    assert act(runs_file, "requeue", "f").ok
    assert act(runs_file, "release_lock", "g").ok
    runs = json.loads(runs_file.read_text())["runs"]
    assert runs["r"]["pause_reason"] == "paused by operator"
    assert runs["p"]["resume_reason"] == "resumed by operator"
    assert runs["f"]["detail"] == "recovered by operator"
    assert runs["g"]["checkpoint"]["lifecycle_history"][-1]["reason"] == "lock released by operator"
    write_runs(runs_file, record_in("paused", "p2"), record_in("queued", "q"))
    assert act(runs_file, "requeue", "p2").ok
    assert act(runs_file, "cancel", "q").ok
    runs = json.loads(runs_file.read_text())["runs"]
    assert runs["p2"]["detail"] == "recovered from paused state by operator"
    assert runs["q"]["stop_reason"] == "cancelled by operator"


def test_the_default_actor_is_user_at_hostname():
    assert default_actor({"USER": "bob"}) == f"bob@{socket.gethostname()}"
    # Without USER/LOGNAME the OS account (root here, whoever runs the suite) stands in.
    assert default_actor({}) == f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"


def test_without_an_actor_the_environment_names_the_operator(runs_file):
    runs_file.parent.mkdir(parents=True)
    write_runs(runs_file, record_in("running"))
    result = perform(runs_file, ActionRequest(kind=ActionKind.PAUSE, run_id="target"), clock=ManualClock(NOW), env={"USER": "carol"})
    event = result.run.checkpoint.lifecycle_history[-1]
    assert event.metadata["actor"] == default_actor({"USER": "carol"})


def test_requeue_refuses_a_running_run_whose_claim_is_still_live(runs_file):
    runs_file.parent.mkdir(parents=True)
    live = record_in("running")
    live["execution_claim"]["lease_expires_at_ms"] = NOW + 90_500
    write_runs(runs_file, live)
    before = runs_file.read_bytes()
    result = act(runs_file, "requeue")
    assert not result.ok
    assert "lease is live for another 91 s" in result.message
    assert runs_file.read_bytes() == before


def test_requeue_refuses_a_running_run_without_a_claim(runs_file):
    runs_file.parent.mkdir(parents=True)
    unclaimed = record_in("running")
    del unclaimed["execution_claim"]
    write_runs(runs_file, unclaimed)
    result = act(runs_file, "requeue")
    assert not result.ok and "without an execution claim" in result.message


def test_requeue_makes_a_run_in_retry_backoff_due_now(runs_file, clock):
    runs_file.parent.mkdir(parents=True)
    backoff = {
        "tenant_context": {"org_id": "o", "workspace_id": "w", "source": "explicit"},
        "queue_reason": "retry_backoff",
        "resource_key": "automation://auto-target/runs/target/nodes/draft",
        "queued_at_ms": NOW - 1_000,
        "retry_node_id": "draft",
        "retry_attempt": 2,
        "retry_backoff_ms": 60_000,
        "retry_after_ms": NOW + 59_000,
        "retry_reason": "provider 529",
        "scheduler_future": "kept",
    }
    write_runs(runs_file, record("target", "queued", scheduler=backoff))
    view_before = RunsView.build(read_runs_file(runs_file, now_ms=NOW), now_ms=NOW, max_concurrent_runs=8)
    assert view_before.queue_info(read_runs_file(runs_file, now_ms=NOW)["target"], NOW).retry_remaining_ms == 59_000

    result = act(runs_file, "requeue", clock=clock)

    assert result.ok and (result.previous_status, result.new_status) == ("queued", "queued")
    after = json.loads(runs_file.read_text())["runs"]["target"]
    assert after["scheduler"] == {**backoff, "retry_after_ms": NOW}
    event = after["checkpoint"]["lifecycle_history"][-1]
    assert event["event"] == "run_retry_backoff_skipped_by_operator"
    assert event["metadata"]["previous_retry_after_ms"] == NOW + 59_000
    assert event["metadata"]["actor"] == ACTOR
    run = read_runs_file(runs_file, now_ms=NOW)["target"]
    view = RunsView.build({"target": run}, now_ms=NOW, max_concurrent_runs=8)
    assert not view.queue_info(run, NOW).retry_remaining_ms


def test_requeue_refuses_a_queued_run_that_is_already_due(runs_file):
    runs_file.parent.mkdir(parents=True)
    write_runs(runs_file, record("target", "queued", scheduler={"queue_reason": "retry_backoff", "queued_at_ms": 1, "retry_after_ms": NOW}))
    before = runs_file.read_bytes()
    result = act(runs_file, "requeue")
    assert not result.ok and "already queued" in result.message
    assert runs_file.read_bytes() == before


def test_release_lock_clears_the_claim_of_a_run_that_holds_no_workspace(runs_file, clock):
    runs_file.parent.mkdir(parents=True)
    write_runs(runs_file, record("target", "paused", execution_claim=expired_claim()))
    result = act(runs_file, "release_lock", clock=clock)
    assert result.ok and result.new_status == "paused"
    assert "execution claim released" in result.message
    after = json.loads(runs_file.read_text())["runs"]["target"]
    assert after["execution_claim"] is None
    assert after["checkpoint"]["lifecycle_history"][-1]["metadata"]["claim"] == expired_claim()


def test_release_lock_frees_the_workspace_for_a_queued_run_waiting_on_it(runs_file, clock):
    runs_file.parent.mkdir(parents=True)
    shared = {"workspace_root": "/ws/shared"}
    holder = record("holder", "running", automation_snapshot=shared, execution_claim=expired_claim())
    waiter = record("waiter", "queued", automation_snapshot=shared)
    write_runs(runs_file, holder, waiter)

    def view_of_file():
        runs = read_runs_file(runs_file, now_ms=clock.now_ms())
        return runs, RunsView.build(runs, now_ms=clock.now_ms(), max_concurrent_runs=8)

    runs, view = view_of_file()
    before = view.queue_info(runs["waiter"], clock.now_ms())
    assert before.reason == "workspace_lock" and before.holder_run_id == "holder"

    assert act(runs_file, "release_lock", "holder", clock=clock).ok

    runs, view = view_of_file()
    after = view.queue_info(runs["waiter"], clock.now_ms())
    assert after.reason is None
    assert view.scheduler.can_admit("waiter", "/ws/shared") is None
    assert view.locks(runs, clock.now_ms()) == []
    assert runs["holder"].status == RunStatus.PAUSED


def test_a_stale_view_is_refused_and_changes_nothing(runs_file, tmp_path):
    runs_file.parent.mkdir(parents=True)
    write_runs(runs_file, record_in("running"))
    before = runs_file.read_bytes()
    seen = NOW - 45_000
    result = act(runs_file, "pause", expect_updated_at_ms=seen)
    assert not result.ok
    assert result.message == (
        f"run target changed since you looked (updated_at_ms {seen} -> {NOW - 30_000}, status now running)"
    )
    assert runs_file.read_bytes() == before
    assert read_audit(runs_file)[-1]["result"] == "refused"


def test_a_current_view_passes_the_guard(runs_file):
    runs_file.parent.mkdir(parents=True)
    write_runs(runs_file, record_in("running"))
    assert act(runs_file, "pause", expect_updated_at_ms=NOW - 30_000).ok


def test_progress_on_a_running_run_does_not_outdate_the_decision_to_pause_it(runs_file):
    runs_file.parent.mkdir(parents=True)
    seen = DecisionState.of(parse_run(record_in("running")))
    # Since the operator looked, the run finished a node: newer updated_at, same decision.
    progressed = record_in("running")
    progressed["updated_at_ms"] = NOW - 1_000
    progressed["checkpoint"]["completed_nodes"] = ["fetch"]
    write_runs(runs_file, progressed)
    assert act(runs_file, "pause", expect_state=seen).ok


def test_a_status_change_since_the_operator_looked_is_refused_and_changes_nothing(runs_file):
    runs_file.parent.mkdir(parents=True)
    seen = DecisionState.of(parse_run(record_in("running")))
    write_runs(runs_file, record_in("queued"))
    before = runs_file.read_bytes()
    result = act(runs_file, "pause", expect_state=seen)
    assert not result.ok
    assert result.message == "run target changed since you looked (status running -> queued)"
    assert runs_file.read_bytes() == before


def test_a_renewed_claim_lease_refuses_a_release_judged_on_the_old_lease(runs_file):
    runs_file.parent.mkdir(parents=True)
    seen = DecisionState.of(parse_run(record_in("running")))
    renewed = record_in("running")
    renewed["execution_claim"]["lease_expires_at_ms"] = NOW + 1_800_000
    write_runs(runs_file, renewed)
    before = runs_file.read_bytes()
    result = act(runs_file, "release_lock", expect_state=seen)
    assert not result.ok
    assert result.message.endswith("(its execution claim lease was renewed)")
    assert runs_file.read_bytes() == before


def test_an_unknown_run_is_refused_as_not_found(runs_file, tmp_path):
    runs_file.parent.mkdir(parents=True)
    write_runs(runs_file, record_in("running"))
    shard_file(runs_file, record("archived", "completed"))
    before = tree_bytes(tmp_path)
    result = act(runs_file, "pause", run_id="ghost")
    assert not result.ok and result.message == "run ghost not found"
    assert result.previous_status is None and result.run is None
    assert tree_bytes(tmp_path) == before
    assert read_audit(runs_file)[-1]["result"] == "refused"


def test_a_missing_or_unusable_runs_file_raises_instead_of_refusing(runs_file):
    with pytest.raises(RunsFileError, match="no runs file"):
        act(runs_file, "pause")
    runs_file.parent.mkdir(parents=True)
    runs_file.write_text('{"schema_version": 9, "runs": {}}')
    with pytest.raises(RunsFileError, match="newer"):
        act(runs_file, "pause")
    assert runs_file.read_text() == '{"schema_version": 9, "runs": {}}'


def test_a_file_keyed_differently_from_run_id_is_refused_naming_the_key(runs_file):
    # Views name the run by its run_id, the engine by its key: which run is meant is
    # not certain, so nothing is changed (issue 14: the wrong run was paused).
    runs_file.parent.mkdir(parents=True)
    runs_file.write_text(json.dumps({"legacy-key": record_in("running")}))
    before = runs_file.read_bytes()
    result = act(runs_file, "pause")
    assert not result.ok
    assert "filed under the key 'legacy-key'" in result.message
    assert runs_file.read_bytes() == before


def test_changing_an_archived_run_brings_it_back_into_the_runs_file_and_its_shard_keeps_a_copy(runs_file, clock):
    runs_file.parent.mkdir(parents=True)
    hot = record_in("running")
    write_runs(runs_file, hot)
    old = record_in("failed", "old-run")
    old.update(created_at_ms=1_600_000_000_000, updated_at_ms=1_600_000_100_000, finished_at_ms=1_600_000_100_000)
    old_shard = shard_file(runs_file, old, "2020", "09")

    result = act(runs_file, "requeue", "old-run", clock=clock)

    assert result.ok and result.archived
    runs = json.loads(runs_file.read_text())["runs"]
    assert runs["target"] == hot
    after = runs["old-run"]
    assert after["status"] == "queued"
    assert after["checkpoint"]["lifecycle_history"][-1]["event"] == "run_recovered"
    assert_unknown_fields_survive(after, old)
    # The shard's copy moves to the month of the new updated_at_ms.
    assert not old_shard.exists()
    new_shard = runs_file.parent / "automation-runs" / runs_file.stem / "2023" / "11" / "old-run.json"
    assert json.loads(new_shard.read_text())["run"] == after


def test_a_refused_action_on_an_archived_run_touches_no_shard(runs_file, tmp_path):
    runs_file.parent.mkdir(parents=True)
    write_runs(runs_file)
    shard_file(runs_file, record_in("completed", "old-run"))
    before = tree_bytes(tmp_path)
    result = act(runs_file, "pause", "old-run")
    assert not result.ok and result.archived
    assert tree_bytes(tmp_path) == before


@pytest.mark.parametrize("status", ALL_STATUSES)
@pytest.mark.parametrize("kind", [k.value for k in ActionKind])
def test_preview_agrees_with_perform_and_changes_nothing(kind, status):
    run = parse_run(record_in(status))
    before = copy.deepcopy(run.model_dump(mode="json"))
    outcome = preview(ActionKind(kind), run, NOW)
    assert run.model_dump(mode="json") == before
    expected = ALLOWED.get((kind, status))
    if expected is None:
        assert isinstance(outcome, Refusal)
    elif expected == status:
        assert isinstance(outcome, Transition)
        assert outcome.summary == f"{status}: already terminal, session handles cleared"
    else:
        assert isinstance(outcome, Transition)
        assert outcome.summary == f"{status} -> {expected}"


def test_cancelling_a_finished_run_without_handles_answers_ok_and_writes_nothing(runs_file, tmp_path):
    runs_file.parent.mkdir(parents=True)
    write_runs(runs_file, record("target", "completed", active_session_ids=[], active_instance_ids=[], finished_at_ms=NOW - 1))
    before = tree_bytes(tmp_path)
    result = act(runs_file, "cancel")
    assert result.ok and not result.changed
    assert (result.previous_status, result.new_status) == ("completed", "completed")
    assert result.message == "run target: completed: already terminal, nothing changed (nothing written)"
    assert tree_bytes(tmp_path) == before
    line = read_audit(runs_file)[-1]
    assert line["result"] == "ok" and "nothing written" in line["message"]
    assert line["reason"] is None


def test_cancelling_a_finished_archived_run_leaves_it_in_history(runs_file, tmp_path):
    runs_file.parent.mkdir(parents=True)
    write_runs(runs_file)
    shard_file(runs_file, record("old-run", "cancelled", active_session_ids=[], active_instance_ids=[]))
    before = tree_bytes(tmp_path)
    result = act(runs_file, "cancel", "old-run")
    assert result.ok and result.archived and not result.changed
    assert tree_bytes(tmp_path) == before


def test_requeue_refusals_carry_the_servers_code_and_message(runs_file):
    runs_file.parent.mkdir(parents=True)
    no_context = record_in("failed", "f")
    del no_context["checkpoint"]["last_failure"]
    write_runs(runs_file, record_in("cancelled", "c"), no_context, record_in("completed", "d"))
    before = runs_file.read_bytes()
    assert act(runs_file, "requeue", "c").message == (
        "cannot requeue run c: Run is not recoverable (AUTOMATION_V2_RUN_NOT_RECOVERABLE): it is cancelled"
    )
    assert "Run has no recoverable failed node (AUTOMATION_V2_RUN_FAILURE_CONTEXT_MISSING)" in act(runs_file, "requeue", "f").message
    assert "(AUTOMATION_V2_RUN_NOT_RECOVERABLE): it is completed with no blocked node" in act(runs_file, "requeue", "d").message
    assert runs_file.read_bytes() == before


def test_requeue_of_a_running_run_that_made_progress_since_its_claim_is_refused(runs_file):
    runs_file.parent.mkdir(parents=True)
    busy = record_in("running")
    busy["checkpoint"]["lifecycle_history"].append({"event": "node_started", "recorded_at_ms": NOW - 10_000})
    write_runs(runs_file, busy)
    before = runs_file.read_bytes()
    result = act(runs_file, "requeue")
    assert not result.ok and "made progress since its claim" in result.message
    assert runs_file.read_bytes() == before


def test_an_in_flight_recovered_context_run_is_not_found_as_the_engine_drops_it(runs_file, tmp_path):
    runs_file.parent.mkdir(parents=True)
    write_runs(runs_file, record_in("paused") | {"trigger_type": "recovered_context_run"})
    before = tree_bytes(tmp_path)
    result = act(runs_file, "resume")
    assert not result.ok and result.message.startswith("run target not found")
    assert tree_bytes(tmp_path) == before
