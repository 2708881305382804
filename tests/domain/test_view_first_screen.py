"""What a first screen asks of the view twice is worked out once (issue 13 item 8): the
build's sorted admissions serve the first figures, and are never served stale."""

from __future__ import annotations

from pathlib import Path

from tandem_tui.domain import events
from tandem_tui.domain.view import (
    RunsView,
    admissions,
    in_admission_order,
    queue_entry_at_ms,
)
from tandem_tui.present import figures
from tandem_tui.source.file.store import read_runs_file

from domain.test_view import NOW, backfill_runs, event, make_run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def admissions_one_call_per_record(run):
    """:func:`admissions` as the module docstring states it, one
    :func:`queue_entry_at_ms` per record (how it was written before it skipped calls)."""
    entered = run.created_at_ms
    found = []
    for record in run.checkpoint.lifecycle_history:
        entry = queue_entry_at_ms(record)
        if entry is not None:
            entered = entry
        elif record.event == events.RUN_EXECUTION_CLAIMED:
            found.append((run.run_id, record.recorded_at_ms, max(record.recorded_at_ms - entered, 0)))
    return found


def as_tuples(found):
    return [(a.run_id, a.admitted_at_ms, a.wait_ms) for a in found]


def test_admissions_are_what_one_call_per_record_finds(fixture_now_ms):
    runs = {**backfill_runs(), **read_runs_file(FIXTURES / "runs_v1.json", now_ms=fixture_now_ms)}
    odd = make_run(
        "odd",
        "running",
        history=[
            event("run_recovered_after_crash", 100),
            event("run_execution_claimed", 400),
            event("node_retry_backoff_scheduled", 500, retry_after_ms=900),
            event("node_retry_backoff_scheduled", 600, retry_after_ms=True),
            event("run_execution_claimed", 1000),
            event("run_execution_claim_expired_requeued", 1200),
            event("run_execution_claimed", 1100),
        ],
    )
    runs["odd"] = odd
    assert as_tuples(admissions(odd)) == [("odd", 400, 300), ("odd", 1000, 400), ("odd", 1100, 0)]
    for run in runs.values():
        assert as_tuples(admissions(run)) == admissions_one_call_per_record(run), run.run_id


def test_the_first_figures_reuse_the_builds_sorted_admissions():
    runs = backfill_runs()
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    ordered = view.admissions_in_order(runs.values())
    assert ordered == in_admission_order([a for run in runs.values() for a in admissions(run)])
    assert view.admissions_in_order(list(runs.values())) is ordered
    assert figures(runs, view, NOW).admitted == len(ordered)


def test_sorted_admissions_follow_a_changed_a_new_and_a_gone_run():
    runs = backfill_runs()
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    before = view.admissions_in_order(runs.values())
    claimed_again = runs["b"].model_copy(deep=True)
    claimed_again.checkpoint.lifecycle_history.append(
        claimed_again.checkpoint.lifecycle_history[-1].model_copy(update={"recorded_at_ms": 50_000})
    )
    changed = {**runs, "b": claimed_again}
    after = view.admissions_in_order(changed.values())
    assert len(after) == len(before) + 1 and after[-1].admitted_at_ms == 50_000
    fewer = {run_id: run for run_id, run in changed.items() if run_id != "c"}
    assert [a for a in view.admissions_in_order(fewer.values()) if a.run_id == "c"] == []
    assert view.admissions_in_order(runs.values()) == before


def test_the_same_run_twice_is_not_taken_for_the_runs_last_seen():
    runs = backfill_runs()
    view = RunsView.build(runs, now_ms=NOW, max_concurrent_runs=8)
    view.admissions_in_order(runs.values())
    values = list(runs.values())
    doubled = [values[0]] * len(values)
    expected = in_admission_order([a for run in doubled for a in admissions(run)])
    assert view.admissions_in_order(doubled) == expected
