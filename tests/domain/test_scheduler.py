"""The admission scheduler behaves like the server's (seed 000)."""

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import QueueReason, SchedulerMetadata, TenantContext
from tandem_tui.domain.scheduler import (
    WAIT_TIMES_KEPT,
    AutomationScheduler,
    PreexistingArtifactRegistry,
    ValidatedArtifact,
    max_concurrent_runs_from_env,
    p95_index,
    wait_time_stats,
)


def make_scheduler(capacity: int = 8, now_ms: int = 1_000_000) -> AutomationScheduler:
    return AutomationScheduler(capacity, ManualClock(now_ms))


# --- twins of the seed's #[test]s -------------------------------------------------


def test_provider_rate_limit_admission_is_tenant_scoped():
    scheduler = make_scheduler(4)
    tenant_a = TenantContext.explicit("org-a", "workspace", "user-a")
    tenant_b = TenantContext.explicit("org-b", "workspace", "user-b")
    providers = ["openai"]

    scheduler.rate_limits.record_throttle_for_tenant(tenant_a, "openai", 60_000)

    tenant_a_meta = scheduler.can_admit_for_tenant("run-a", None, providers, tenant_a)
    assert tenant_a_meta is not None, "tenant A should be throttled"
    assert tenant_a_meta.queue_reason == QueueReason.RATE_LIMIT
    assert tenant_a_meta.tenant_context == tenant_a
    assert scheduler.can_admit_for_tenant("run-b", None, providers, tenant_b) is None, (
        "tenant B should not inherit tenant A provider throttle"
    )


def test_different_workspace_runs_admit_concurrently():
    scheduler = make_scheduler(8)
    assert scheduler.can_admit("run-a", "/work/repo-a") is None
    scheduler.admit_run("run-a", "/work/repo-a")
    assert scheduler.can_admit("run-b", "/work/repo-b") is None
    scheduler.admit_run("run-b", "/work/repo-b")

    assert scheduler.active_count() == 2
    assert scheduler.locked_workspaces.get("/work/repo-a") == "run-a"
    assert scheduler.locked_workspaces.get("/work/repo-b") == "run-b"


def test_same_workspace_contention_queues_behind_workspace_lock():
    scheduler = make_scheduler(8)
    scheduler.admit_run("run-a", "/work/repo-a")

    queued = scheduler.can_admit("run-b", "/work/repo-a")
    assert queued is not None
    assert queued.queue_reason == QueueReason.WORKSPACE_LOCK
    assert queued.resource_key == "/work/repo-a"
    assert scheduler.active_count() < scheduler.max_concurrent_runs

    scheduler.release_run("run-a")
    assert scheduler.can_admit("run-b", "/work/repo-a") is None


def test_capacity_contention_reports_capacity_reason_and_default_is_eight():
    assert max_concurrent_runs_from_env({}) == 8

    scheduler = make_scheduler(8)
    for idx in range(8):
        run_id, workspace = f"run-{idx}", f"/work/repo-{idx}"
        assert scheduler.can_admit(run_id, workspace) is None
        scheduler.admit_run(run_id, workspace)
    assert scheduler.is_at_capacity()

    queued = scheduler.can_admit("run-9", "/work/repo-9")
    assert queued is not None
    assert queued.queue_reason == QueueReason.CAPACITY
    assert queued.resource_key is None

    scheduler.release_run("run-0")
    assert scheduler.can_admit("run-9", "/work/repo-9") is None


def test_terminal_release_frees_capacity_and_workspace_lock():
    scheduler = make_scheduler(8)
    scheduler.track_queue_state(
        "run-a",
        SchedulerMetadata(
            tenant_context=TenantContext.local_implicit(),
            queue_reason=QueueReason.CAPACITY,
            queued_at_ms=scheduler.clock.now_ms(),
        ),
    )
    scheduler.admit_run("run-a", "/work/repo-a")
    assert scheduler.admitted_total == 1

    scheduler.release_run("run-a")
    assert scheduler.active_count() == 0
    assert scheduler.locked_workspaces == {}
    assert scheduler.completed_total == 1
    assert "run-a" not in scheduler.queue_state
    assert scheduler.can_admit("run-b", "/work/repo-a") is None


def test_capacity_release_without_workspace_release_still_blocks_same_workspace():
    scheduler = make_scheduler(8)
    scheduler.admit_run("run-a", "/work/repo-a")
    scheduler.release_capacity("run-a")

    assert scheduler.active_count() == 0
    queued = scheduler.can_admit("run-b", "/work/repo-a")
    assert queued is not None
    assert queued.queue_reason == QueueReason.WORKSPACE_LOCK

    scheduler.release_workspace("run-a")
    assert scheduler.can_admit("run-b", "/work/repo-a") is None


def test_queue_metrics_count_reasons_and_record_wait_times():
    scheduler = make_scheduler(1)
    scheduler.admit_run("run-a", "/work/repo-a")

    queued = scheduler.can_admit("run-b", "/work/repo-b")
    assert queued is not None, "capacity 1 queues the second run"
    scheduler.track_queue_state("run-b", queued)

    metrics = scheduler.metrics()
    assert metrics.active_runs == 1
    assert metrics.queued_runs_by_reason.get("capacity") == 1

    scheduler.release_run("run-a")
    scheduler.admit_run("run-b", "/work/repo-b")
    metrics = scheduler.metrics()
    assert metrics.admitted_total == 2
    assert metrics.queued_runs_by_reason == {}


# --- admission order and queue metadata --------------------------------------------


def test_a_throttled_provider_is_reported_before_a_locked_workspace_and_full_capacity():
    scheduler = make_scheduler(1)
    scheduler.admit_run("run-a", "/work/repo")
    scheduler.rate_limits.record_throttle("OpenAI", 1_000)

    by_rate = scheduler.can_admit("run-b", "/work/repo", ["openai"])
    assert by_rate is not None
    assert by_rate.queue_reason == QueueReason.RATE_LIMIT
    assert by_rate.rate_limited_provider == "openai"
    assert by_rate.resource_key is None

    by_lock = scheduler.can_admit("run-b", "/work/repo", ["anthropic"])
    assert by_lock is not None and by_lock.queue_reason == QueueReason.WORKSPACE_LOCK

    by_capacity = scheduler.can_admit("run-b", "/work/other", ["anthropic"])
    assert by_capacity is not None and by_capacity.queue_reason == QueueReason.CAPACITY


def test_queued_at_comes_from_tracked_queue_state_else_from_the_clock():
    scheduler = make_scheduler(1, now_ms=5_000)
    scheduler.admit_run("run-a", None)
    fresh = scheduler.can_admit("run-b", None)
    assert fresh is not None and fresh.queued_at_ms == 5_000

    scheduler.track_queue_state("run-b", fresh)
    scheduler.clock.advance(700)
    again = scheduler.can_admit("run-b", None)
    assert again is not None and again.queued_at_ms == 5_000
    other = scheduler.can_admit("run-c", None)
    assert other is not None and other.queued_at_ms == 5_700


def test_admitting_a_tracked_run_records_its_wait_and_forgets_its_queue_state():
    scheduler = make_scheduler(8, now_ms=10_000)
    scheduler.track_queue_state(
        "run-a", SchedulerMetadata(queue_reason=QueueReason.CAPACITY, queued_at_ms=9_000)
    )
    scheduler.admit_run("run-a", "/w")
    assert list(scheduler.wait_times) == [1_000]
    assert "run-a" not in scheduler.queue_state


def test_admitting_an_untracked_run_records_no_wait_time():
    scheduler = make_scheduler()
    scheduler.admit_run("run-a", "/w")
    assert list(scheduler.wait_times) == []
    assert scheduler.admitted_total == 1


def test_a_run_without_workspace_root_takes_capacity_but_locks_nothing():
    scheduler = make_scheduler()
    scheduler.admit_run("run-a", None)
    scheduler.admit_run("run-b", "")
    assert scheduler.active_runs == {"run-a": "", "run-b": ""}
    assert scheduler.locked_workspaces == {}


def test_reserve_workspace_locks_without_using_capacity_and_ignores_empty_roots():
    scheduler = make_scheduler()
    scheduler.reserve_workspace("run-a", "/w")
    scheduler.reserve_workspace("run-b", "")
    scheduler.reserve_workspace("run-c", None)
    assert scheduler.locked_workspaces == {"/w": "run-a"}
    assert scheduler.active_count() == 0
    assert scheduler.admitted_total == 0


def test_release_capacity_counts_a_completion_only_for_an_active_run():
    scheduler = make_scheduler()
    scheduler.release_capacity("never-admitted")
    assert scheduler.completed_total == 0
    scheduler.admit_run("run-a", "/w")
    scheduler.release_capacity("run-a")
    scheduler.release_capacity("run-a")
    assert scheduler.completed_total == 1


def test_release_workspace_drops_only_the_runs_locks_artifacts_and_queue_state():
    scheduler = make_scheduler()
    scheduler.reserve_workspace("run-a", "/a")
    scheduler.reserve_workspace("run-a", "/a2")
    scheduler.reserve_workspace("run-b", "/b")
    artifact = ValidatedArtifact(path="out.md", content_digest="sha256:1")
    scheduler.preexisting_registry.register_validated("run-a", "n1", artifact)
    scheduler.preexisting_registry.register_validated("run-b", "n1", artifact)
    scheduler.track_queue_state("run-a", SchedulerMetadata(queued_at_ms=1))

    scheduler.release_workspace("run-a")

    assert scheduler.locked_workspaces == {"/b": "run-b"}
    assert not scheduler.preexisting_registry.is_artifact_prevalidated("run-a", "n1")
    assert scheduler.preexisting_registry.is_artifact_prevalidated("run-b", "n1")
    assert "run-a" not in scheduler.queue_state


# --- metrics --------------------------------------------------------------------


def test_metrics_are_zero_when_nothing_was_admitted():
    metrics = make_scheduler().metrics()
    assert metrics.as_dict() == {
        "active_runs": 0,
        "queued_runs_by_reason": {},
        "admitted_total": 0,
        "completed_total": 0,
        "avg_wait_ms": 0,
        "p95_wait_ms": 0,
    }


def test_average_wait_is_floor_division_of_the_sum():
    assert wait_time_stats([1, 2]) == (1, 2)
    assert wait_time_stats([10, 20, 40])[0] == 23


@pytest.mark.parametrize(
    ("count", "index"),
    [(1, 0), (2, 1), (10, 9), (20, 19), (30, 29), (100, 95), (1000, 950)],
)
def test_p95_index_rounds_half_away_from_zero_and_clamps_to_the_last_sample(count, index):
    assert p95_index(count) == index


def test_p95_of_thirty_samples_uses_rust_rounding_where_python_round_differs():
    # 30 * 0.95 = 28.5: Rust rounds to 29, Python's banker's round would give 28.
    assert round(28.5) == 28
    waits = list(range(100, 3100, 100))
    avg, p95 = wait_time_stats(reversed(waits))
    assert p95 == 3000
    assert avg == sum(waits) // 30


def test_p95_of_ten_samples_clamps_the_rounded_index_to_the_last_sample():
    avg, p95 = wait_time_stats([5, 1, 4, 2, 3, 10, 9, 8, 7, 6])
    assert (avg, p95) == (5, 10)


def test_metrics_count_queue_reasons_from_tracked_queue_state():
    scheduler = make_scheduler()
    scheduler.track_queue_state("a", SchedulerMetadata(queue_reason=QueueReason.CAPACITY))
    scheduler.track_queue_state("b", SchedulerMetadata(queue_reason=QueueReason.CAPACITY))
    scheduler.track_queue_state("c", SchedulerMetadata(queue_reason=QueueReason.RETRY_BACKOFF))
    scheduler.track_queue_state("d", SchedulerMetadata(queue_reason=None))
    assert scheduler.metrics().queued_runs_by_reason == {"capacity": 2, "retry_backoff": 1}


def test_only_the_last_thousand_wait_times_are_kept():
    scheduler = make_scheduler()
    for wait in range(WAIT_TIMES_KEPT + 5):
        scheduler.record_wait_time(wait)
    assert len(scheduler.wait_times) == 1000
    assert scheduler.wait_times[0] == 5
    metrics = scheduler.metrics()
    assert metrics.avg_wait_ms == sum(range(5, 1005)) // 1000
    assert metrics.p95_wait_ms == 5 + 950


def test_admissions_beyond_a_thousand_push_out_the_oldest_wait():
    scheduler = make_scheduler(capacity=2000, now_ms=0)
    for idx in range(1001):
        scheduler.track_queue_state(f"r{idx}", SchedulerMetadata(queued_at_ms=0))
        scheduler.clock.set(idx)
        scheduler.admit_run(f"r{idx}", None)
    assert len(scheduler.wait_times) == 1000
    assert scheduler.wait_times[0] == 1
    assert scheduler.wait_times[-1] == 1000


# --- env and artifact registry ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3", 3),
        (" 12 ", 12),
        ("+4", 4),
        ("0", 8),
        ("-2", 8),
        ("many", 8),
        ("", 8),
        ("2.5", 8),
        ("1_000", 8),
        ("٣", 8),
    ],
)
def test_max_concurrent_runs_from_env_accepts_only_positive_integers(raw, expected):
    assert max_concurrent_runs_from_env({"TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS": raw}) == expected


def test_artifact_registry_answers_per_run_and_node_and_clears_a_run():
    registry = PreexistingArtifactRegistry()
    registry.register_validated("r", "n", ValidatedArtifact(path="a.md", content_digest="d"))
    assert registry.is_artifact_prevalidated("r", "n")
    assert not registry.is_artifact_prevalidated("r", "other")
    assert registry.get_prevalidated_path("r", "n") == "a.md"
    assert registry.get_prevalidated_path("x", "n") is None
    registry.clear_run("r")
    assert not registry.is_artifact_prevalidated("r", "n")


def test_queue_metadata_leaves_out_absent_optional_fields_like_the_server():
    from tandem_tui.domain.models import dump_model

    scheduler = make_scheduler(1, now_ms=42)
    scheduler.admit_run("run-a", None)
    queued = scheduler.can_admit("run-b", None)
    assert queued is not None
    assert dump_model(queued) == {
        "tenant_context": {"org_id": "local", "workspace_id": "local", "source": "local_implicit"},
        "queue_reason": "capacity",
        "queued_at_ms": 42,
    }


def test_rounding_is_half_away_from_zero_and_exact_just_below_a_half():
    from tandem_tui.domain.scheduler import round_half_away_from_zero

    assert [round_half_away_from_zero(x) for x in (0.0, 0.5, 1.5, 2.5, 9.5, 28.5, 2.4)] == [
        0, 1, 2, 3, 10, 29, 2,
    ]
    assert round_half_away_from_zero(0.49999999999999994) == 0
