"""The command line and the console show the same figures for the same runs.

One file (``runs_v1.json`` with its shards), one clock (a ``ManualClock`` at the
fixture's "now"): ``status --json``, ``runs --json``, the ``runs`` table and ``history``
are run through ``cli.main``; the console's ``DashboardState`` is built by
``dashboard.build_state`` from a snapshot the same ``FileSource`` gives. Every figure
must agree (docs/architecture.md, "What the figures mean").
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tandem_tui.cli import main as cli
from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.snapshot import Snapshot
from tandem_tui.present import IN_STATUS, OPERATOR_MARKER, figures, format_offset
from tandem_tui.source.open import file_source
from tandem_tui.ui.screens.dashboard import DashboardState, build_state
from tandem_tui.ui.widgets.metrics_bar import metrics_from_snapshot
from tandem_tui.ui.widgets.runs_table import wait_text, why_text
from tandem_tui.ui.widgets.timeline import timeline_entries


@pytest.fixture(autouse=True)
def same_environment(monkeypatch):
    monkeypatch.delenv("TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS", raising=False)
    monkeypatch.setenv("COLUMNS", "400")


@pytest.fixture
def clock(fixture_now_ms) -> ManualClock:
    return ManualClock(fixture_now_ms)


def run_cli(capsys, clock: ManualClock, *argv: str) -> str:
    assert cli(list(argv), clock=clock) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def cli_json(capsys, clock: ManualClock, *argv: str) -> Any:
    return json.loads(run_cli(capsys, clock, *argv, "--json"))


def runs_table(capsys, clock: ManualClock, runs_file: Path) -> dict[str, tuple[str, str, str]]:
    """``run id -> (status, why waiting, in status)`` from the printed ``runs`` table."""
    lines = run_cli(capsys, clock, "runs", "--runs-file", str(runs_file)).splitlines()
    header = lines[0]
    why_at, updated_at, status_at = header.index("why waiting"), header.index("updated"), header.index("status")
    assert IN_STATUS in header[why_at:updated_at]
    table = {}
    for line in lines[1:]:
        # "why waiting" is left-aligned, "in status" right-aligned just before "updated".
        middle = line[why_at:updated_at].rstrip()
        in_status = middle.split()[-1]
        why = middle[: len(middle) - len(in_status)].strip()
        table[line.split()[0]] = (line[status_at:why_at].strip(), why, in_status)
    return table


def console_state(runs_file: Path, clock: ManualClock) -> DashboardState:
    snapshot = file_source(runs_file, clock=clock).read()
    return build_state(snapshot, None, now_ms=clock.now_ms())


def test_status_and_the_console_header_show_the_same_figures(runs_file, clock, capsys):
    report = cli_json(capsys, clock, "status", "--runs-file", str(runs_file))
    metrics = console_state(runs_file, clock).metrics
    assert (report["active_runs"], report["max_concurrent_runs"]) == (metrics.active, metrics.capacity)
    # The ready run counts on both sides: 5 queued, not 4.
    assert {**report["queued_runs_by_reason"], "ready": report["queued_ready"]} == dict(metrics.queued_by_reason)
    assert report["queued_total"] == metrics.queued_total == 5
    assert (report["admitted_total"], report["completed_total"]) == (metrics.admitted, metrics.completed)
    assert (report["avg_wait_ms"], report["p95_wait_ms"]) == (metrics.avg_wait_ms, metrics.p95_wait_ms)
    assert sum(report["runs_by_status"].values()) == metrics.runs_total
    assert len(report["locked_workspaces"]) == metrics.locked_workspaces


def test_status_text_and_the_console_count_the_same_queued_runs(runs_file, clock, capsys):
    out = run_cli(capsys, clock, "status", "--runs-file", str(runs_file))
    queued_line = next(line for line in out.splitlines() if line.startswith("queued"))
    total = console_state(runs_file, clock).metrics.queued_total
    assert queued_line.split()[1] == f"{total}:"
    assert "ready 1" in queued_line


def test_every_run_shows_the_same_status_reason_and_time_in_status(runs_file, clock, capsys):
    listed = {row["run_id"]: row for row in cli_json(capsys, clock, "runs", "--runs-file", str(runs_file))}
    table = runs_table(capsys, clock, runs_file)
    rows = console_state(runs_file, clock).rows
    now = clock.now_ms()
    assert listed.keys() == table.keys() == rows.keys()
    for run_id, row in rows.items():
        assert listed[run_id]["status"] == table[run_id][0] == row.status.value, run_id
        reason = row.reason.value if row.reason is not None else None
        assert listed[run_id]["queue_reason"] == reason, run_id
        assert table[run_id][1] == why_text(row, now).plain, run_id
        assert table[run_id][2] == wait_text(row, now).plain, run_id


def test_a_running_run_is_in_status_since_it_was_admitted_on_both_sides(runs_file, clock, capsys):
    # run-rn-0142 was created 12m00s before "now" and admitted 40 s later.
    table = runs_table(capsys, clock, runs_file)
    row = console_state(runs_file, clock).rows["run-rn-0142"]
    assert table["run-rn-0142"][2] == wait_text(row, clock.now_ms()).plain == "11m20s"


@pytest.mark.parametrize("run_id", ["run-sd-0055", "run-ir-0086", "run-cl-0033", "run-rn-0120"])
def test_history_and_the_console_timeline_show_the_same_rows(runs_file, clock, capsys, run_id):
    source = file_source(runs_file, clock=clock)
    found = source.find_run(run_id)
    assert found is not None
    entries = timeline_entries(found.run)
    stored = cli_json(capsys, clock, "history", run_id, "--runs-file", str(runs_file))
    assert [record["event"] for record in stored["lifecycle_history"]] == [
        record.event for record in found.run.checkpoint.lifecycle_history
    ]
    lines = run_cli(capsys, clock, "history", run_id, "--runs-file", str(runs_file)).splitlines()[2:]
    printed = []
    for line in lines:
        words = line.split()
        if len(words) < 4 or not words[2].startswith("+"):
            continue  # a wrapped continuation of a reason or metadata
        operator = words[3] == OPERATOR_MARKER
        printed.append((words[2], operator, words[4] if operator else words[3]))
    assert printed == [(format_offset(e.offset_ms), e.operator, e.record.event) for e in entries]


def test_history_marks_operator_actions_only_where_the_console_does(runs_file, clock, capsys):
    out = run_cli(capsys, clock, "history", "run-sd-0055", "--runs-file", str(runs_file))
    marked = [line.split()[4] for line in out.splitlines() if f" {OPERATOR_MARKER} " in line]
    assert marked == ["run_pause_requested", "run_paused"]


# ── a console that has been open for a while ──────────────────────────────────


def archive_and_admit(runs_file: Path, now_ms: int) -> None:
    """A completed run leaves the hot file (archived) and the ready run is admitted."""
    document = json.loads(runs_file.read_text())
    runs = document["runs"]
    del runs["run-etl-0308"]
    ready = runs["run-ib-0008"]
    ready["status"] = "running"
    ready["started_at_ms"] = ready["updated_at_ms"] = now_ms
    history = ready.setdefault("checkpoint", {}).setdefault("lifecycle_history", [])
    history.append({"event": "run_execution_claimed", "recorded_at_ms": now_ms})
    temp = runs_file.with_suffix(".tmp")
    temp.write_text(json.dumps(document, indent=2))
    temp.replace(runs_file)


def followed_after_change(runs_file: Path, clock: ManualClock) -> Snapshot:
    """The snapshot a console following the file holds after the change."""
    stop = threading.Event()
    source = file_source(runs_file, clock=clock)
    snapshots = source.follow(stop)
    try:
        first = next(snapshots)
        assert not first.freshness.stale
        clock.advance(60_000)
        archive_and_admit(runs_file, clock.now_ms())
        for snapshot in snapshots:
            if "run-ib-0008" in snapshot.changed:
                return snapshot
        raise AssertionError("the change was not seen")
    finally:
        stop.set()
        snapshots.close()


def test_a_console_open_for_a_while_shows_the_figures_status_prints_now(runs_file, clock, capsys):
    followed = followed_after_change(runs_file, clock)
    report = cli_json(capsys, clock, "status", "--runs-file", str(runs_file))
    shown = figures(followed.runs, followed.view, clock.now_ms())
    assert shown.status_json() == report
    metrics = metrics_from_snapshot(followed, clock.now_ms())
    assert (metrics.admitted, metrics.completed, metrics.avg_wait_ms, metrics.p95_wait_ms) == (
        report["admitted_total"], report["completed_total"], report["avg_wait_ms"], report["p95_wait_ms"],
    )


def test_the_dashboard_state_of_a_followed_file_agrees_with_status(runs_file, clock, capsys):
    followed = followed_after_change(runs_file, clock)
    report = cli_json(capsys, clock, "status", "--runs-file", str(runs_file))
    metrics = build_state(followed, None, now_ms=clock.now_ms()).metrics
    assert (metrics.admitted, metrics.completed, metrics.avg_wait_ms, metrics.p95_wait_ms) == (
        report["admitted_total"], report["completed_total"], report["avg_wait_ms"], report["p95_wait_ms"],
    )

