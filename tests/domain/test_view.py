"""RunsView: the scheduler rebuilt from a runs-file snapshot and kept in step with later ones."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import QueueReason, Run, RunStatus, parse_run
from tandem_tui.domain.view import (
    LockInfo,
    QueueInfo,
    RunsView,
    admissions,
    format_countdown,
    last_queue_entry_ms,
)

NOW = 1_000_000


def event(name: str, at: int, **metadata: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"event": name, "recorded_at_ms": at}
    if metadata:
        record["metadata"] = metadata
    return record


def make_run(
    run_id: str,
    status: str,
    *,
    created: int = 0,
    workspace: str | None = None,
    history: list[dict[str, Any]] | None = None,
    scheduler: dict[str, Any] | None = None,
    claim_expires: int | None = None,
    detail: str | None = None,
) -> Run:
    raw: dict[str, Any] = {
        "run_id": run_id,
        "automation_id": f"auto-{run_id}",
        "status": status,
        "created_at_ms": created,
        "updated_at_ms": created,
    }
    if workspace is not None:
        raw["automation_snapshot"] = {"workspace_root": workspace}
    if history is not None:
        raw["checkpoint"] = {"lifecycle_history": history}
    if scheduler is not None:
        raw["scheduler"] = {"queued_at_ms": created, **scheduler}
    if claim_expires is not None:
        raw["execution_claim"] = {
            "claim_id": f"claim-{run_id}",
            "claimant_id": "worker-1",
            "claimed_at_ms": claim_expires - 30_000,
            "lease_expires_at_ms": claim_expires,
            "lease_epoch": 1,
        }
    if detail is not None:
        raw["detail"] = detail
    return parse_run(raw)


def by_id(*runs: Run) -> dict[str, Run]:
    return {run.run_id: run for run in runs}


def with_status(run: Run, status: str, **changes: Any) -> Run:
    """A later snapshot of the same run (snapshots never share run objects)."""
    return run.model_copy(update={"status": RunStatus(status), **changes}, deep=True)


# ── rebuilding from a snapshot ────────────────────────────────────────────────


def test_rebuild_admits_running_runs_with_their_workspace_roots():
    runs = by_id(
        make_run("run-a", "running", workspace="/work/repo-a"),
        make_run("run-b", "running"),
        make_run("run-c", "completed", workspace="/work/repo-c"),
    )
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    assert view.scheduler.active_runs == {"run-a": "/work/repo-a", "run-b": ""}
    assert view.scheduler.locked_workspaces == {"/work/repo-a": "run-a"}
    assert list(view.scheduler.wait_times) == []


def test_a_pausing_run_holds_its_workspace_lock_without_a_capacity_slot():
    runs = by_id(make_run("run-p", "pausing", workspace="/work/repo-p"))
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    assert view.scheduler.active_runs == {}
    assert view.scheduler.locked_workspaces == {"/work/repo-p": "run-p"}


def test_persisted_queue_metadata_is_counted_by_reason():
    runs = by_id(
        make_run("q1", "queued", scheduler={"queue_reason": "capacity"}),
        make_run("q2", "queued", scheduler={"queue_reason": "capacity"}),
        make_run("q3", "queued", scheduler={"queue_reason": "rate_limit", "rate_limited_provider": "openai"}),
        make_run("q4", "queued", scheduler={"queue_reason": "retry_backoff", "retry_after_ms": NOW + 5}),
    )
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    assert view.metrics().queued_runs_by_reason == {"capacity": 2, "rate_limit": 1, "retry_backoff": 1}


def test_queued_runs_without_metadata_are_tracked_with_what_admission_says_now():
    runs = by_id(
        make_run("holder", "running", workspace="/work/shared"),
        make_run("behind", "queued", created=100, workspace="/work/shared"),
        make_run("free", "queued", created=200, workspace="/work/other"),
    )
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    assert view.metrics().queued_runs_by_reason == {"workspace_lock": 1}
    assert view.scheduler.queue_state["behind"].resource_key == "/work/shared"
    # Admissible now, but still waiting to be claimed: tracked without a reason.
    assert view.scheduler.queue_state["free"].queue_reason is None
    assert view.scheduler.queue_state["free"].queued_at_ms == 200


def test_a_queued_run_is_tracked_as_queued_since_it_last_entered_the_queue():
    run = make_run(
        "q",
        "queued",
        created=100,
        history=[event("run_execution_claimed", 150), event("run_paused", 300), event("run_resumed", 700)],
    )
    assert last_queue_entry_ms(run) == 700
    view = RunsView.build(by_id(run), now_ms=NOW, max_concurrent_runs=8)
    assert view.scheduler.queue_state["q"].queued_at_ms == 700


def test_queued_runs_at_capacity_wait_for_capacity():
    runs = by_id(
        make_run("r1", "running", workspace="/w/1"),
        make_run("r2", "running", workspace="/w/2"),
        make_run("q", "queued", workspace="/w/3"),
    )
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=2)
    assert view.metrics().queued_runs_by_reason == {"capacity": 1}


def test_the_global_cap_is_the_servers_default_when_not_given_whatever_the_environment(monkeypatch):
    # The domain reads no environment: the source passes the configured cap in.
    monkeypatch.setenv("TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS", "3")
    assert RunsView.build({}, now_ms=NOW).max_concurrent_runs == 8


# ── wait-time backfill ────────────────────────────────────────────────────────


def backfill_runs() -> dict[str, Run]:
    return by_id(
        # created 1000, claimed 4000: waited 3000
        make_run("a", "running", created=1000, history=[event("run_execution_claimed", 4000)]),
        # 500 before the first claim; the expired claim requeues it at 10000: 100 more
        make_run(
            "b",
            "running",
            created=2000,
            history=[
                event("run_execution_claimed", 2500),
                event("run_execution_claim_expired_requeued", 10_000),
                event("run_execution_claimed", 10_100),
            ],
        ),
        # claimed at 1000 after creation at 0 (1000); backoff scheduled at 5000 until
        # 8000, claimed at 9000 (1000); a second backoff until 12000 claimed early at 11000 (0)
        make_run(
            "c",
            "completed",
            created=0,
            history=[
                event("run_execution_claimed", 1000),
                event("node_retry_backoff_scheduled", 5000, retry_after_ms=8000),
                event("run_execution_claimed", 9000),
                event("node_retry_backoff_scheduled", 10_000, retry_after_ms=12_000),
                event("run_execution_claimed", 11_000),
            ],
        ),
        # paused, then resumed at 20000, claimed at 26000: 6000
        make_run(
            "d",
            "failed",
            created=15_000,
            history=[event("run_paused", 16_000), event("run_resumed", 20_000), event("run_execution_claimed", 26_000)],
        ),
        # recovered from pause at 30000 (a run_recovered* event), claimed at 32000: 2000
        make_run(
            "e",
            "completed",
            created=29_000,
            history=[event("run_recovered_from_pause", 30_000), event("run_execution_claimed", 32_000)],
        ),
    )


def test_admissions_measure_the_wait_since_the_run_last_entered_the_queue():
    runs = backfill_runs()
    assert [a.wait_ms for a in admissions(runs["b"])] == [500, 100]
    assert [a.wait_ms for a in admissions(runs["c"])] == [1000, 1000, 0]
    assert [a.wait_ms for a in admissions(runs["d"])] == [6000]
    assert [a.wait_ms for a in admissions(runs["e"])] == [2000]


def test_admissions_of_a_snapshot_rereads_only_the_runs_that_changed():
    runs = backfill_runs()
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    first = view.admissions_of(runs.values())
    assert first == [a for run in runs.values() for a in admissions(run)]
    # The next snapshot shares "b"'s object and replaces "c" with a new one.
    changed = {**runs, "c": runs["c"].model_copy(deep=True)}
    second = view.admissions_of(changed.values())
    by_run = {run_id: [a for a in second if a.run_id == run_id] for run_id in changed}
    kept_b = [a for a in first if a.run_id == "b"]
    assert all(x is y for x, y in zip(by_run["b"], kept_b, strict=True))
    first_c = [a for a in first if a.run_id == "c"]
    assert by_run["c"] == first_c and all(x is not y for x, y in zip(by_run["c"], first_c, strict=True))
    # A run gone from the snapshot is gone from what is remembered.
    del changed["b"]
    assert [a for a in view.admissions_of(changed.values()) if a.run_id == "b"] == []


def test_wait_times_are_backfilled_from_claim_events():
    view = RunsView.build(backfill_runs(), now_ms=NOW, max_concurrent_runs=8)
    # Admission order: c@1000 (1000), b@2500 (500), a@4000 (3000), c@9000 (1000),
    # b@10100 (100), c@11000 (0), d@26000 (6000), e@32000 (2000).
    assert list(view.scheduler.wait_times) == [1000, 500, 3000, 1000, 100, 0, 6000, 2000]
    metrics = view.metrics()
    # sum 13600 over 8 -> 1700; sorted [0,100,500,1000,1000,2000,3000,6000],
    # p95 index min(round(7.6), 7) = 7 -> 6000
    assert metrics.avg_wait_ms == 1700
    assert metrics.p95_wait_ms == 6000
    assert metrics.admitted_total == 8
    assert metrics.active_runs == 2
    assert metrics.completed_total == 6


def test_only_the_last_1000_admissions_by_admission_time_are_kept():
    runs = {}
    # The earliest admission waited 1_000_000 ms; the 1000 after it waited 10 ms each.
    runs["old"] = make_run("old", "completed", created=0, history=[event("run_execution_claimed", 1_000_000)])
    for i in range(1000):
        created = 2_000_000 + i
        run_id = f"r{i:04d}"
        runs[run_id] = make_run(run_id, "completed", created=created, history=[event("run_execution_claimed", created + 10)])
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    metrics = view.metrics()
    assert len(view.scheduler.wait_times) == 1000
    assert metrics.avg_wait_ms == 10
    assert metrics.p95_wait_ms == 10
    assert metrics.admitted_total == 1001
    assert metrics.completed_total == 1001


def test_admitted_total_is_at_least_the_number_of_running_runs():
    runs = by_id(make_run("r1", "running"), make_run("r2", "running"), make_run("r3", "pausing"))
    metrics = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8).metrics()
    assert metrics.admitted_total == 2
    assert metrics.completed_total == 0
    assert metrics.avg_wait_ms == 0 and metrics.p95_wait_ms == 0


# ── queue reasons ─────────────────────────────────────────────────────────────


def test_a_run_that_is_not_queued_has_no_queue_info():
    run = make_run("r", "running")
    view = RunsView.build(by_id(run), now_ms=NOW, max_concurrent_runs=8)
    assert view.queue_info(run, NOW) is None


def test_capacity_queue_info_shows_slots_used_of_the_cap():
    runs = by_id(make_run("r1", "running"), make_run("r2", "running"), make_run("q", "queued", created=10))
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=2)
    info = view.queue_info(runs["q"], NOW)
    assert info == QueueInfo(
        reason=QueueReason.CAPACITY,
        text="capacity 2/2",
        slots_used=2,
        capacity=2,
        persisted=False,
        queued_at_ms=10,
    )


def test_workspace_lock_queue_info_names_the_holder_run():
    runs = by_id(
        make_run("run-abc", "running", workspace="/work/repo"),
        make_run(
            "q",
            "queued",
            created=50,
            workspace="/work/repo",
            scheduler={"queue_reason": "workspace_lock", "resource_key": "/work/repo"},
        ),
    )
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    info = view.queue_info(runs["q"], NOW)
    assert info is not None
    assert info.reason == QueueReason.WORKSPACE_LOCK
    assert info.text == "workspace lock · run-abc"
    assert info.holder_run_id == "run-abc"
    assert info.persisted is True
    assert info.queued_at_ms == 50


def test_persisted_workspace_lock_whose_lock_is_gone_says_the_workspace_is_free():
    runs = by_id(
        make_run("done", "completed", workspace="/work/repo"),
        make_run(
            "q",
            "queued",
            workspace="/work/repo",
            scheduler={"queue_reason": "workspace_lock", "resource_key": "/work/repo"},
        ),
    )
    info = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8).queue_info(runs["q"], NOW)
    assert info is not None
    assert (info.reason, info.text, info.holder_run_id) == (
        QueueReason.WORKSPACE_LOCK,
        "workspace lock · free now",
        None,
    )


def test_workspace_lock_is_computed_for_a_queued_run_without_metadata():
    runs = by_id(make_run("holder", "pausing", workspace="/w"), make_run("q", "queued", workspace="/w"))
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    info = view.queue_info(runs["q"], NOW)
    assert info is not None
    assert (info.reason, info.text, info.persisted) == (QueueReason.WORKSPACE_LOCK, "workspace lock · holder", False)


def test_rate_limit_queue_info_names_the_provider():
    run = make_run("q", "queued", scheduler={"queue_reason": "rate_limit", "rate_limited_provider": "openai"})
    view = RunsView.build(by_id(run), now_ms=NOW, max_concurrent_runs=8)
    info = view.queue_info(run, NOW)
    assert info is not None
    assert (info.reason, info.text, info.provider) == (QueueReason.RATE_LIMIT, "rate limit · openai", "openai")


def test_retry_backoff_queue_info_counts_down_then_says_due():
    run = make_run("q", "queued", scheduler={"queue_reason": "retry_backoff", "retry_after_ms": NOW + 12_000})
    view = RunsView.build(by_id(run), now_ms=NOW, max_concurrent_runs=8)
    waiting = view.queue_info(run, NOW)
    assert waiting is not None
    assert (waiting.text, waiting.retry_remaining_ms) == ("retry backoff · 12s", 12_000)
    almost = view.queue_info(run, NOW + 11_500)
    assert almost is not None and almost.text == "retry backoff · 1s"
    due = view.queue_info(run, NOW + 12_000)
    assert due is not None
    assert (due.reason, due.text, due.retry_remaining_ms) == (QueueReason.RETRY_BACKOFF, "retry due", 0)


def test_a_queued_run_nothing_holds_back_is_ready():
    run = make_run("q", "queued", workspace="/w")
    view = RunsView.build(by_id(run), now_ms=NOW, max_concurrent_runs=8)
    info = view.queue_info(run, NOW)
    assert info is not None
    assert (info.reason, info.text, info.persisted) == (None, "ready", False)


def test_countdowns_round_up_to_whole_seconds():
    assert format_countdown(1) == "1s"
    assert format_countdown(59_000) == "59s"
    assert format_countdown(245_000) == "4m05s"
    assert format_countdown(3 * 3_600_000 + 7 * 60_000) == "3h07m"
    assert format_countdown(52 * 3_600_000) == "2d04h"


# ── observing later snapshots ─────────────────────────────────────────────────


def test_queued_to_running_is_one_admission_waiting_since_queued_at():
    queued = make_run("q", "queued", created=1000, workspace="/w")
    view = RunsView.build(by_id(queued), now_ms=2000, max_concurrent_runs=8)
    running = with_status(queued, "running")
    view.observe(by_id(queued), by_id(running), now_ms=5000)
    assert list(view.scheduler.wait_times) == [4000]
    assert view.scheduler.active_runs == {"q": "/w"}
    assert view.scheduler.locked_workspaces == {"/w": "q"}
    assert view.metrics().admitted_total == 1
    assert view.metrics().queued_runs_by_reason == {}
    # The same running run seen again is not a second admission.
    view.observe(by_id(running), by_id(with_status(running, "running")), now_ms=6000)
    assert list(view.scheduler.wait_times) == [4000]
    assert view.metrics().admitted_total == 1


def test_an_admission_uses_the_persisted_queued_at():
    queued = make_run("q", "queued", created=1000, scheduler={"queue_reason": "capacity", "queued_at_ms": 3000})
    view = RunsView.build(by_id(queued), now_ms=4000, max_concurrent_runs=8)
    view.observe(by_id(queued), by_id(with_status(queued, "running", scheduler=None)), now_ms=9000)
    assert list(view.scheduler.wait_times) == [6000]


def test_running_to_completed_releases_the_slot_and_the_lock():
    running = make_run("r", "running", workspace="/w")
    waiting = make_run("q", "queued", created=5, workspace="/w")
    view = RunsView.build(by_id(running, waiting), now_ms=NOW, max_concurrent_runs=8)
    assert view.queue_info(waiting, NOW).text == "workspace lock · r"  # type: ignore[union-attr]
    view.observe(by_id(running, waiting), by_id(with_status(running, "completed"), waiting), now_ms=NOW)
    assert view.scheduler.active_runs == {}
    assert view.scheduler.locked_workspaces == {}
    assert view.metrics().completed_total == 1
    assert view.queue_info(waiting, NOW).text == "ready"  # type: ignore[union-attr]
    # The waiting run's tracked reason was re-judged too, so the counts agree.
    assert view.metrics().queued_runs_by_reason == {}


def test_running_to_pausing_frees_the_slot_but_keeps_the_lock_until_paused():
    running = make_run("r", "running", workspace="/w")
    view = RunsView.build(by_id(running), now_ms=NOW, max_concurrent_runs=8)
    pausing = with_status(running, "pausing")
    view.observe(by_id(running), by_id(pausing), now_ms=NOW)
    assert view.scheduler.active_runs == {}
    assert view.scheduler.locked_workspaces == {"/w": "r"}
    view.observe(by_id(pausing), by_id(with_status(pausing, "paused")), now_ms=NOW)
    assert view.scheduler.locked_workspaces == {}


def test_a_vanished_running_run_releases_what_it_held():
    running = make_run("r", "running", workspace="/w")
    queued = make_run("q", "queued", scheduler={"queue_reason": "capacity"})
    view = RunsView.build(by_id(running, queued), now_ms=NOW, max_concurrent_runs=8)
    view.observe(by_id(running, queued), {}, now_ms=NOW)
    assert view.scheduler.active_runs == {}
    assert view.scheduler.locked_workspaces == {}
    assert view.scheduler.queue_state == {}
    assert view.metrics().completed_total == 1


def test_new_runs_are_admitted_reserved_or_tracked_by_status():
    view = RunsView.build({}, now_ms=NOW, max_concurrent_runs=8)
    current = by_id(
        make_run("r", "running", workspace="/w/r"),
        make_run("p", "pausing", workspace="/w/p"),
        make_run("q", "queued", workspace="/w/r"),
    )
    view.observe({}, current, now_ms=NOW)
    assert view.scheduler.active_runs == {"r": "/w/r"}
    assert view.scheduler.locked_workspaces == {"/w/r": "r", "/w/p": "p"}
    assert view.metrics().queued_runs_by_reason == {"workspace_lock": 1}
    assert list(view.scheduler.wait_times) == []


def test_a_run_leaving_the_queue_without_running_is_untracked():
    queued = make_run("q", "queued", scheduler={"queue_reason": "capacity"})
    view = RunsView.build(by_id(queued), now_ms=NOW, max_concurrent_runs=8)
    view.observe(by_id(queued), by_id(with_status(queued, "paused", scheduler=None)), now_ms=NOW)
    assert view.scheduler.queue_state == {}
    assert view.metrics().admitted_total == 0


def test_a_run_requeued_for_retry_backoff_gives_back_its_slot_and_is_tracked():
    running = make_run("r", "running", workspace="/w")
    view = RunsView.build(by_id(running), now_ms=NOW, max_concurrent_runs=8)
    requeued = with_status(running, "queued")
    requeued.scheduler = make_run("x", "queued", scheduler={"queue_reason": "retry_backoff", "retry_after_ms": NOW + 1}).scheduler
    view.observe(by_id(running), by_id(requeued), now_ms=NOW)
    assert view.scheduler.active_runs == {}
    assert view.metrics().queued_runs_by_reason == {"retry_backoff": 1}


def test_observe_looks_only_at_the_changed_ids_when_given():
    running = make_run("r", "running", workspace="/w")
    other = make_run("o", "running", workspace="/o")
    view = RunsView.build(by_id(running, other), now_ms=NOW, max_concurrent_runs=8)
    after = by_id(with_status(running, "completed"), with_status(other, "completed"))
    view.observe(by_id(running, other), after, now_ms=NOW, changed=["r"])
    assert view.scheduler.active_runs == {"o": "/o"}


# ── locks, claims, status report ──────────────────────────────────────────────


def test_locks_list_holders_and_the_queued_runs_behind_them_oldest_first():
    runs = by_id(
        make_run("holder-b", "pausing", workspace="/w/b", claim_expires=NOW - 1),
        make_run("holder-a", "running", workspace="/w/a", claim_expires=NOW + 1),
        make_run("late", "queued", created=30, workspace="/w/a"),
        make_run("early", "queued", created=10, workspace="/w/a"),
        make_run("elsewhere", "queued", created=5, workspace="/w/c"),
    )
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    assert view.locks(runs, NOW) == [
        LockInfo("/w/a", "holder-a", RunStatus.RUNNING, ("early", "late"), claim_expired=False),
        LockInfo("/w/b", "holder-b", RunStatus.PAUSING, (), claim_expired=True),
    ]


def test_expired_claims_are_listed_earliest_expiry_first():
    runs = by_id(
        make_run("fresh", "running", claim_expires=NOW + 1),
        make_run("at-now", "running", claim_expires=NOW),
        make_run("older", "running", claim_expires=NOW - 500),
        make_run("unclaimed", "running"),
    )
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    assert view.expired_claims(runs, NOW) == ["older", "at-now"]


def test_the_status_report_has_the_server_fields_then_ours_in_a_stable_order():
    runs = by_id(
        make_run("r", "running", workspace="/w/r", created=0, history=[event("run_execution_claimed", 400)]),
        make_run("p", "pausing", workspace="/w/p"),
        make_run("q1", "queued", scheduler={"queue_reason": "rate_limit", "rate_limited_provider": "openai"}),
        make_run("q2", "queued", scheduler={"queue_reason": "capacity"}),
        make_run("done", "completed", history=[event("run_execution_claimed", 100)]),
    )
    report = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=4).status_report(runs)
    assert list(report) == [
        "active_runs",
        "queued_runs_by_reason",
        "admitted_total",
        "completed_total",
        "avg_wait_ms",
        "p95_wait_ms",
        "max_concurrent_runs",
        "runs_by_status",
        "locked_workspaces",
    ]
    assert report == {
        "active_runs": 1,
        "queued_runs_by_reason": {"capacity": 1, "rate_limit": 1},
        "admitted_total": 2,
        "completed_total": 1,
        "avg_wait_ms": 250,
        "p95_wait_ms": 400,
        "max_concurrent_runs": 4,
        "runs_by_status": {
            "queued": 2,
            "running": 1,
            "pausing": 1,
            "paused": 0,
            "awaiting_approval": 0,
            "completed": 1,
            "blocked": 0,
            "failed": 0,
            "cancelled": 0,
        },
        "locked_workspaces": {"/w/p": "p", "/w/r": "r"},
    }


def test_a_view_built_with_a_clock_uses_it():
    clock = ManualClock(NOW)
    view = RunsView.build({}, now_ms=NOW, max_concurrent_runs=8, clock=clock)
    assert view.scheduler.clock is clock
    view.observe({}, {}, now_ms=NOW + 5)
    assert clock.now_ms() == NOW  # someone else's clock is never moved


def test_a_view_without_a_clock_keeps_its_own_at_the_latest_snapshot():
    view = RunsView.build({}, now_ms=NOW, max_concurrent_runs=8)
    assert view.scheduler.clock.now_ms() == NOW
    view.observe({}, {}, now_ms=NOW + 5)
    assert view.scheduler.clock.now_ms() == NOW + 5


@pytest.mark.parametrize("status", ["paused", "awaiting_approval", "completed", "failed", "blocked", "cancelled"])
def test_runs_that_neither_run_nor_wait_hold_nothing(status):
    run = make_run("x", status, workspace="/w")
    view = RunsView.build(by_id(run), now_ms=NOW, max_concurrent_runs=8)
    assert (view.scheduler.active_runs, view.scheduler.locked_workspaces, view.scheduler.queue_state) == ({}, {}, {})


def test_computed_reasons_follow_capacity_filling_and_freeing():
    r1, q = make_run("r1", "running", workspace="/w/1"), make_run("q", "queued", created=5, workspace="/w/q")
    view = RunsView.build(by_id(r1, q), now_ms=NOW, max_concurrent_runs=2)
    assert view.metrics().queued_runs_by_reason == {}
    r2 = make_run("r2", "running", workspace="/w/2")
    view.observe(by_id(r1, q), by_id(r1, q, r2), now_ms=NOW)
    assert view.metrics().queued_runs_by_reason == {"capacity": 1}
    view.observe(by_id(r1, q, r2), by_id(r1, q), now_ms=NOW)
    assert view.metrics().queued_runs_by_reason == {}


def test_a_lock_passing_between_holders_keeps_the_waiting_run_behind_it():
    a, b = make_run("a", "running", workspace="/w"), make_run("b", "pausing", workspace="/w/b")
    q = make_run("q", "queued", created=5, workspace="/w")
    view = RunsView.build(by_id(a, b, q), now_ms=NOW, max_concurrent_runs=8)
    # a finishes and a new run takes /w in the same snapshot.
    c = make_run("c", "running", workspace="/w")
    view.observe(by_id(a, b, q), by_id(with_status(a, "completed"), b, q, c), now_ms=NOW)
    assert view.metrics().queued_runs_by_reason == {"workspace_lock": 1}
    assert view.queue_info(q, NOW).text == "workspace lock · c"  # type: ignore[union-attr]


def test_a_view_kept_up_by_observe_agrees_with_one_built_from_the_latest_snapshot():
    rng = random.Random(20261123)
    workspaces = [f"/w/{i}" for i in range(4)] + [None]
    statuses = ["queued", "running", "pausing", "paused", "completed", "failed"]
    reasons = [None, None, {"queue_reason": "rate_limit", "rate_limited_provider": "openai"}]

    def random_snapshot(step: int) -> dict[str, Run]:
        runs: dict[str, Run] = {}
        held: set[str] = set()
        for number in sorted(rng.sample(range(16), rng.randint(0, 12))):
            run_id = f"run-{number}"
            workspace = workspaces[number % len(workspaces)]  # a run never changes workspace
            status = rng.choice(statuses)
            # One holder per workspace, as the scheduler guarantees.
            if status in ("running", "pausing") and workspace is not None:
                if workspace in held:
                    status = "queued"
                held.add(workspace)
            scheduler = rng.choice(reasons) if status == "queued" else None
            runs[run_id] = make_run(run_id, status, created=number, workspace=workspace, scheduler=scheduler)
        return runs

    previous = random_snapshot(0)
    view = RunsView.build(previous, now_ms=NOW, max_concurrent_runs=3)
    for step in range(1, 300):
        current = random_snapshot(step)
        changed = {
            run_id
            for run_id in previous.keys() | current.keys()
            if previous.get(run_id) is None
            or current.get(run_id) is None
            or previous[run_id].model_dump() != current[run_id].model_dump()
        }
        view.observe(previous, current, now_ms=NOW + step, changed=changed)
        fresh = RunsView.build(current, now_ms=NOW + step, max_concurrent_runs=3)
        assert set(view.scheduler.active_runs) == set(fresh.scheduler.active_runs), step
        assert view.scheduler.locked_workspaces == fresh.scheduler.locked_workspaces, step
        assert view.metrics().queued_runs_by_reason == fresh.metrics().queued_runs_by_reason, step
        assert {
            run_id: view.queue_info(run, NOW).text for run_id, run in current.items() if run.status == "queued"
        } == {run_id: fresh.queue_info(run, NOW).text for run_id, run in current.items() if run.status == "queued"}, step
        previous = current
