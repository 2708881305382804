"""A followed first read without a helper that read the file itself (one that could not
open it, or a watcher given none) is streamed: read in chunks, each entry validated here
and its bytes handed to the helper as its baseline. Whatever the file holds, the first
snapshot is the one the usual read gives."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.run_summary import Summarizer
from tandem_tui.source.file.raw_diff import HelperDiffer
from tandem_tui.source.file.source import FileSource
from tandem_tui.source.file.watcher import RunsWatcher
from tests.processes import alive, wait_for
from tests.summaries import summary_fields


def followed(path: Path, now_ms: int, helper: HelperDiffer | None = None) -> RunsWatcher:
    return RunsWatcher(
        path, clock=ManualClock(now_ms), max_concurrent_runs=8, parse_in_helper=True, summaries=True, helper=helper
    )


def first_snapshot(watcher: RunsWatcher):
    stop = threading.Event()
    try:
        return next(iter(watcher.iterate(stop)))
    finally:
        stop.set()


def usual_summaries(path: Path, now_ms: int) -> dict[str, list]:
    """The runs of the usual read (each entry validated here, recovered if corrupt), as
    summaries of the whole runs."""
    usual = RunsWatcher(path, clock=ManualClock(now_ms), max_concurrent_runs=8).load()
    assert usual.freshness.error is None
    summarize = Summarizer()
    return {run_id: summary_fields(summarize(run, run_id)) for run_id, run in usual.runs.items()}


def summaries_of(snapshot) -> dict[str, list]:
    return {run_id: summary_fields(run) for run_id, run in snapshot.runs.items()}


def with_last_entry(runs_file: Path, change) -> str:
    document = json.loads(runs_file.read_text())
    last = sorted(document["runs"])[-1]
    change(document["runs"][last])
    runs_file.write_text(json.dumps(document, indent=2))
    return last


def test_a_streamed_first_read_gives_the_usual_read_s_runs(runs_file, fixture_now_ms):
    watcher = followed(runs_file, fixture_now_ms)
    try:
        snapshot = first_snapshot(watcher)
        assert watcher.validations == len(snapshot.runs) == 20
        assert summaries_of(snapshot) == usual_summaries(runs_file, fixture_now_ms)
    finally:
        watcher.close()


def corrupt_status(run: dict) -> None:
    run["status"] = "sleeping"


def minus_zero_time(run: dict) -> None:
    run["created_at_ms"] = "MINUS_ZERO"


def serde_missing_trigger(run: dict) -> None:
    del run["trigger_type"]


def unknown_minus_zero(run: dict) -> None:
    run["x_unknown"] = "MINUS_ZERO"


def float_time(run: dict) -> None:
    run["created_at_ms"] = 1.5  # a summary takes it as it stands; serde refuses a float


def negative_attempts(run: dict) -> None:
    run.setdefault("checkpoint", {})["node_attempts"] = {"n": -1}  # a field no summary reads


#: Files no first read may take as they stand: each test of one runs on every kind.
every_bad_file = pytest.mark.parametrize(
    "change",
    [corrupt_status, minus_zero_time, serde_missing_trigger, unknown_minus_zero, float_time, negative_attempts],
    ids=[
        "corrupt-entry",
        "minus-zero-in-a-u64",
        "missing-field-serde-requires",
        "minus-zero-unknown-field",
        "float-in-a-u64",
        "invalid-field-no-summary-reads",
    ],
)


@every_bad_file
def test_a_file_the_streamed_read_cannot_take_is_read_the_usual_way(runs_file, fixture_now_ms, change):
    with_last_entry(runs_file, change)
    runs_file.write_text(runs_file.read_text().replace('"MINUS_ZERO"', "-0"))
    watcher = followed(runs_file, fixture_now_ms)
    try:
        snapshot = first_snapshot(watcher)
        assert snapshot.freshness.error is None
        assert summaries_of(snapshot) == usual_summaries(runs_file, fixture_now_ms)
    finally:
        watcher.close()


def test_a_dead_helper_leaves_the_read_to_this_process(runs_file, fixture_now_ms):
    helper = HelperDiffer(warm=True)
    helper._process.kill()
    helper._process.wait()
    watcher = followed(runs_file, fixture_now_ms, helper=helper)
    try:
        snapshot = first_snapshot(watcher)
        assert summaries_of(snapshot) == usual_summaries(runs_file, fixture_now_ms)
    finally:
        watcher.close()


def test_a_helper_started_early_is_the_one_the_first_read_uses(runs_file, fixture_now_ms):
    helper = HelperDiffer(warm=True)
    watcher = followed(runs_file, fixture_now_ms, helper=helper)
    stop = threading.Event()
    snapshots = watcher.iterate(stop)
    try:
        next(snapshots)
        assert watcher._helper is helper and watcher.validations == 20
    finally:
        stop.set()
        snapshots.close()
    assert wait_for(lambda: not alive(helper.pid), seconds=5)


def test_a_console_source_warms_its_helper_up_and_stops_it_if_nothing_follows(runs_file, fixture_now_ms):
    source = FileSource(runs_file, clock=ManualClock(fixture_now_ms), env={}, console=True)
    source.warm_up()
    pid = source._warm_helper.pid
    assert alive(pid)
    source.close()
    assert wait_for(lambda: not alive(pid), seconds=5)


class StopAtOnce:
    """A stop that is already set when the watch first asks (q pressed during the first
    read of a big file)."""

    def __init__(self) -> None:
        self.asked = 0

    def is_set(self) -> bool:
        self.asked += 1
        return True


def many_runs(runs_file: Path, count: int) -> None:
    document = json.loads(runs_file.read_text())
    template = next(iter(document["runs"].values()))
    document["runs"] = {f"run-{i:05d}": {**template, "run_id": f"run-{i:05d}"} for i in range(count)}
    runs_file.write_text(json.dumps(document, indent=2))


def test_a_stop_during_the_first_read_ends_the_watch_without_reading_on(runs_file, fixture_now_ms):
    many_runs(runs_file, 2_000)
    helper = HelperDiffer(warm=True)
    watcher = followed(runs_file, fixture_now_ms, helper=helper)
    stop = StopAtOnce()
    snapshots = list(watcher.iterate(stop))  # type: ignore[arg-type]
    assert snapshots == [] and stop.asked >= 1
    assert watcher.validations == 0  # the read went no further: no usual read after it
    assert wait_for(lambda: not alive(helper.pid), seconds=5)


def test_a_first_read_nobody_stops_reads_every_run(runs_file, fixture_now_ms):
    many_runs(runs_file, 2_000)
    watcher = followed(runs_file, fixture_now_ms)
    try:
        assert len(first_snapshot(watcher).runs) == 2_000 and watcher.validations == 2_000
    finally:
        watcher.close()
