"""present.py: what the console and the command line show, computed once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.events import OPERATOR_SOURCE
from tandem_tui.domain.models import Run, parse_run
from tandem_tui.domain.view import QueueInfo, RunsView
from tandem_tui.present import (
    IN_STATUS,
    Figures,
    detail_text,
    figures,
    format_age,
    format_duration_ms,
    format_event_time,
    format_offset,
    format_timestamp,
    one_line,
    queued_counts,
    reason_key,
    status_since_ms,
    timeline_rows,
    why_text,
)
from tandem_tui.source.open import file_source

NOW = 10_000_000
WS = "/srv/ws"


def make_run(run_id: str, status: str, *, created: int = 1_000, **fields: Any) -> Run:
    raw: dict[str, Any] = {
        "run_id": run_id,
        "automation_id": f"auto-{run_id}",
        "status": status,
        "created_at_ms": created,
        "updated_at_ms": created + 500,
    }
    workspace = fields.pop("workspace", None)
    if workspace is not None:
        raw["automation_snapshot"] = {"workspace_root": workspace}
    history = fields.pop("history", None)
    if history is not None:
        raw["checkpoint"] = {"lifecycle_history": history}
    raw.update(fields)
    return parse_run(raw)


def event(name: str, at: int, **metadata: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"event": name, "recorded_at_ms": at}
    if metadata:
        record["metadata"] = metadata
    return record


def by_id(*runs: Run) -> dict[str, Run]:
    return {run.run_id: run for run in runs}


# ── durations and timestamps ──────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("ms", "text"),
    [(None, "-"), (850, "850ms"), (12_000, "12s"), (245_000, "4m05s"), (11_220_000, "3h07m"),
     (187_200_000, "2d04h"), (-12_000, "-12s")],
)
def test_durations_are_compact(ms, text):
    assert format_duration_ms(ms) == text


def test_an_age_is_never_negative_and_unknown_is_a_dash():
    assert format_age(NOW - 65_000, NOW) == "1m05s ago"
    assert format_age(NOW + 5_000, NOW) == "0ms ago"
    assert format_age(None, NOW) == "-"


def test_a_timestamp_is_utc_wall_time():
    assert format_timestamp(1_795_446_000_000) == "2026-11-23 15:00:00"
    assert format_timestamp(None) == "-"


@pytest.mark.parametrize("ms", [253_402_300_800_000, 10**18, -(10**18)])
def test_a_timestamp_no_calendar_can_show_prints_the_number_instead_of_raising(ms):
    assert format_timestamp(ms) == f"{ms}ms (out of range)"
    assert format_event_time(ms, with_date=True) == f"{ms}ms (out of range)"


def test_offsets_count_whole_seconds_from_one_second_on():
    assert [format_offset(ms) for ms in (0, 850, 1_999, 246_500)] == ["+0s", "+850ms", "+1s", "+4m06s"]


def test_an_error_is_one_line():
    assert one_line("bad\n  file:\tgone \r\n") == "bad file: gone"


# ── time in status ────────────────────────────────────────────────────────────


def queued_since(at: int) -> QueueInfo:
    return QueueInfo(reason=None, text="ready", queued_at_ms=at)


def test_a_queued_run_is_in_status_since_it_last_entered_the_queue():
    run = make_run("q", "queued", history=[event("run_resumed", 5_000)])
    assert status_since_ms(run, queued_since(7_000)) == 7_000
    # A persisted queued_at of 0 (the field's default) is no time: the history says when.
    assert status_since_ms(run, queued_since(0)) == 5_000
    assert status_since_ms(make_run("q2", "queued"), None) == 1_000


def test_a_running_run_is_in_status_since_it_was_last_admitted_not_since_it_was_created():
    requeued = make_run(
        "r",
        "running",
        started_at_ms=2_000,
        history=[event("run_execution_claimed", 2_000), event("run_execution_claim_expired_requeued", 8_000),
                 event("run_execution_claimed", 9_000)],
    )
    assert status_since_ms(requeued, None) == 9_000
    assert status_since_ms(make_run("r2", "running", started_at_ms=1_400), None) == 1_400
    assert status_since_ms(make_run("r3", "pausing"), None) == 1_500


def test_a_finished_run_is_in_status_since_it_finished_and_a_paused_one_since_its_last_change():
    assert status_since_ms(make_run("c", "completed", finished_at_ms=4_000), None) == 4_000
    assert status_since_ms(make_run("f", "failed"), None) == 1_500
    assert status_since_ms(make_run("p", "paused", updated_at_ms=6_000), None) == 6_000
    assert status_since_ms(make_run("a", "awaiting_approval", updated_at_ms=6_500), None) == 6_500
    assert IN_STATUS == "in status"


# ── why a queued run waits, and how many wait ─────────────────────────────────


def test_why_waiting_puts_the_lock_holder_first_and_is_empty_for_a_run_that_is_not_queued():
    holder = make_run("holder", "running", workspace=f"{WS}/a")
    behind = make_run("behind", "queued", workspace=f"{WS}/a")
    runs = by_id(holder, behind)
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=4)
    info = view.queue_info(behind, NOW)
    assert info is not None and info.text == "workspace lock · holder"
    assert why_text(info) == "lock · holder"
    assert why_text(view.queue_info(holder, NOW)) == ""


def test_queued_counts_follow_the_schedulers_order_then_ready_and_leave_zeros_out():
    infos = [
        QueueInfo(reason=None, text="ready"),
        QueueInfo(reason="retry_backoff", text="retry due"),
        QueueInfo(reason="capacity", text="capacity 8/8"),
        QueueInfo(reason=None, text="ready"),
    ]
    counts = queued_counts(infos)
    assert list(counts.items()) == [("capacity", 1), ("retry_backoff", 1), ("ready", 2)]


def test_the_detail_falls_back_to_why_the_run_stopped_paused_resumed_or_failed():
    assert detail_text(make_run("d", "running", detail="node 2")) == "node 2"
    assert detail_text(make_run("s", "paused", pause_reason="lunch")) == "lunch"
    failed = make_run(
        "f", "failed",
        checkpoint={"last_failure": {"node_id": "n", "reason": "boom", "failed_at_ms": 3}},
    )
    assert detail_text(failed) == "boom"
    assert detail_text(make_run("e", "queued")) == ""


# ── the figures of a snapshot ─────────────────────────────────────────────────


def test_the_fixtures_figures_count_the_ready_run_among_the_queued(fixtures_dir, fixture_now_ms, monkeypatch):
    monkeypatch.delenv("TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS", raising=False)
    snapshot = file_source(fixtures_dir / "runs_v1.json", clock=ManualClock(fixture_now_ms)).read()
    shown = figures(snapshot.runs, snapshot.view, fixture_now_ms)
    assert dict(shown.queued_by_reason) == {
        "capacity": 1, "workspace_lock": 1, "rate_limit": 1, "retry_backoff": 1, "ready": 1,
    }
    assert (shown.queued_total, shown.active, shown.capacity) == (5, 3, 8)
    assert (shown.admitted, shown.completed, shown.avg_wait_ms, shown.p95_wait_ms) == (17, 14, 24982, 300000)
    report = shown.status_json()
    assert report["queued_runs_by_reason"] == {"capacity": 1, "rate_limit": 1, "retry_backoff": 1, "workspace_lock": 1}
    assert (report["queued_ready"], report["queued_total"]) == (1, 5)


def test_queued_counts_are_the_reasons_the_run_list_shows_even_for_metadata_without_a_reason():
    # Persisted scheduler metadata with no reason: the view judges the run again for the
    # list (its workspace is locked) but its scheduler tracks it reasonless.
    holder = make_run("holder", "running", workspace=f"{WS}/a")
    odd = make_run("odd", "queued", workspace=f"{WS}/a", scheduler={"queued_at_ms": 1_000})
    runs = by_id(holder, odd)
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=4)
    listed = Counter(reason_key(view.queue_info(run, NOW)) for run in runs.values() if run.status == "queued")
    assert dict(figures(runs, view, NOW).queued_by_reason) == dict(listed) == {"workspace_lock": 1}


def test_the_figures_of_a_snapshot_do_not_depend_on_what_the_view_watched_before():
    claimed = [event("run_execution_claimed", 2_000)]
    first = by_id(
        make_run("done", "completed", history=claimed),
        make_run("run", "running", workspace=f"{WS}/a", history=claimed),
        make_run("next", "queued", created=3_000),
    )
    watched = RunsView.build(first, now_ms=NOW, max_concurrent_runs=4)
    # "done" is archived (gone from the hot set); "next" is admitted and claimed.
    second = {
        "run": first["run"],
        "next": make_run("next", "running", created=3_000, history=[event("run_execution_claimed", NOW)]),
    }
    watched.observe(first, second, now_ms=NOW)
    fresh = RunsView.build(second, now_ms=NOW, max_concurrent_runs=4)
    assert figures(second, watched, NOW) == figures(second, fresh, NOW)
    shown = figures(second, fresh, NOW)
    assert (shown.active, shown.admitted, shown.completed) == (2, 2, 0)


def test_figures_of_no_runs_are_zeros():
    view = RunsView.build({}, now_ms=NOW, max_concurrent_runs=8)
    assert figures({}, view, NOW) == Figures(
        active=0, capacity=8, queued_by_reason={}, admitted=0, completed=0, avg_wait_ms=0, p95_wait_ms=0,
        runs_by_status={status: 0 for status in (
            "queued", "running", "pausing", "paused", "awaiting_approval", "completed", "blocked", "failed",
            "cancelled",
        )},
        locked_workspaces={},
    )


# ── timeline rows ─────────────────────────────────────────────────────────────


def test_an_event_is_an_operators_action_only_when_its_metadata_says_tandem_tui_wrote_it():
    run = make_run(
        "r",
        "paused",
        history=[
            event("run_created", 1_000),
            # The engine's guardrail pause: its name says nothing about who acted.
            event("run_pause_requested", 2_000, source="spend_guardrail"),
            event("run_lock_released_by_operator", 3_000),
            event("run_paused", 4_000, source=OPERATOR_SOURCE, actor="ops@host"),
        ],
    )
    assert [(row.event, row.operator) for row in timeline_rows(run)] == [
        ("run_created", False),
        ("run_pause_requested", False),
        ("run_lock_released_by_operator", False),
        ("run_paused", True),
    ]


def test_timeline_rows_are_in_time_order_with_offsets_from_the_first_event():
    run = make_run(
        "r",
        "running",
        history=[event("late", 70_000), event("run_execution_claimed", 5_000), event("first", 4_000)],
    )
    rows = timeline_rows(run)
    assert [(row.index, row.event, row.offset_text, row.bookkeeping) for row in rows] == [
        (2, "first", "+0s", False),
        (1, "run_execution_claimed", "+1s", True),
        (0, "late", "+1m06s", False),
    ]
    assert timeline_rows(make_run("e", "queued")) == []
