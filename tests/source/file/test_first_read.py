"""A console's first read is made by the parse helper from the console's start: the
helper reads, hashes, checks and validates the file and sends slim records, from which
the console builds its summaries. Whatever the file holds, the first snapshot is the one
the usual read gives; only a file the helper finds valid throughout is read its way."""

from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import Run
from tandem_tui.source.file.raw_diff import HelperDiffer
from tandem_tui.source.file.watcher import SPANS_MIN_AGE_NS, RunsWatcher
from tests.processes import alive, wait_for
from tests.source.file.test_watcher_verdicts import (
    StopAtOnce,
    corrupt_status,
    every_bad_file,
    many_runs,
    summaries_of,
    usual_summaries,
    with_last_entry,
)


def reading(path: Path) -> HelperDiffer:
    """A helper told to read ``path`` at once, as ``FileSource.warm_up`` tells it."""
    return HelperDiffer(warm=True, read_first=path.absolute())


def followed(path: Path, now_ms: int, helper: HelperDiffer) -> RunsWatcher:
    return RunsWatcher(
        path, clock=ManualClock(now_ms), max_concurrent_runs=8, parse_in_helper=True, summaries=True, helper=helper
    )


def snapshots_until_quiet(watcher: RunsWatcher, count: int) -> list:
    """The first ``count`` snapshots of a watch, or fewer if no more come within 10 s."""
    stop = threading.Event()
    got: list = []

    def watch() -> None:
        for snapshot in watcher.iterate(stop):
            got.append(snapshot)
            if len(got) == count:
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    wait_for(lambda: len(got) >= count, seconds=10)
    stop.set()
    thread.join(timeout=10)
    return got


@contextmanager
def following(watcher: RunsWatcher):
    """The watch's first snapshot, the watch (and its helper) kept until the block ends."""
    stop = threading.Event()
    snapshots = watcher.iterate(stop)
    try:
        yield next(snapshots)
    finally:
        stop.set()
        snapshots.close()


def test_a_file_read_by_the_helper_gives_the_usual_read_s_runs_and_the_helper_keeps_following(
    runs_file, fixture_now_ms
):
    helper = reading(runs_file)
    watcher = followed(runs_file, fixture_now_ms, helper)
    with following(watcher) as first:
        assert watcher.helper_read == watcher.validations == 20
        assert summaries_of(first) == usual_summaries(runs_file, fixture_now_ms)
        # Its baseline is the file it read: a write is diffed there, one entry changed.
        assert watcher._helper is helper
        changed = with_last_entry(runs_file, lambda run: run.update(detail="after the first read"))
        validations = watcher.validations
        assert watcher.load().changed == {json.loads(runs_file.read_text())["runs"][changed]["run_id"]}
        assert watcher.validations == validations + 1
    assert wait_for(lambda: not alive(helper.pid), seconds=5)


@every_bad_file
def test_a_file_the_helper_does_not_find_valid_throughout_is_read_the_usual_way(runs_file, fixture_now_ms, change):
    with_last_entry(runs_file, change)
    runs_file.write_text(runs_file.read_text().replace('"MINUS_ZERO"', "-0"))
    watcher = followed(runs_file, fixture_now_ms, reading(runs_file))
    try:
        (snapshot,) = snapshots_until_quiet(watcher, 1)
        assert watcher.helper_read == 0
        assert snapshot.freshness.error is None
        assert summaries_of(snapshot) == usual_summaries(runs_file, fixture_now_ms)
    finally:
        watcher.close()


def test_a_minus_zero_early_in_the_file_is_caught_while_the_batches_come(runs_file, fixture_now_ms):
    many_runs(runs_file, 600)  # three batches: the check keeps pace with them
    document = json.loads(runs_file.read_text())
    document["runs"]["run-00001"]["x_unknown"] = "MINUS_ZERO"
    runs_file.write_text(json.dumps(document, indent=2).replace('"MINUS_ZERO"', "-0"))
    watcher = followed(runs_file, fixture_now_ms, reading(runs_file))
    try:
        (snapshot,) = snapshots_until_quiet(watcher, 1)
        assert watcher.helper_read == 0 and len(snapshot.runs) == 600
        assert summaries_of(snapshot) == usual_summaries(runs_file, fixture_now_ms)
    finally:
        watcher.close()


def test_a_duplicate_key_sends_the_read_the_usual_way(runs_file, fixture_now_ms):
    text = runs_file.read_text()
    document = json.loads(text)
    first_key = sorted(document["runs"])[0]
    # The same key twice, the later value different: serde keeps the later one.
    entry = json.dumps({**document["runs"][first_key], "detail": "the later one"})
    runs_file.write_text(text.replace('"runs": {', '"runs": {' + json.dumps(first_key) + ": " + entry + ",", 1))
    watcher = followed(runs_file, fixture_now_ms, reading(runs_file))
    try:
        (snapshot,) = snapshots_until_quiet(watcher, 1)
        assert watcher.helper_read == 0
        assert summaries_of(snapshot) == usual_summaries(runs_file, fixture_now_ms)
    finally:
        watcher.close()


class ReadBeforeTheWatch(HelperDiffer):
    """A helper whose first read is over before the watch begins: its messages are read
    off the pipe first (so the file can change after its read and before the watch) and
    handed to the watcher as they came."""

    def __init__(self, path: Path) -> None:
        super().__init__(warm=True, read_first=path.absolute())
        self.recorded = list(super().first_read_messages())
        self.first_read_path = str(path.absolute())  # still owed to the watcher

    def first_read_messages(self):
        if self.first_read_path is not None:
            self.first_read_path = None
            yield from self.recorded


def test_a_file_replaced_before_the_watch_began_is_caught_up_with_without_another_write(runs_file, fixture_now_ms):
    helper = ReadBeforeTheWatch(runs_file)
    watcher = followed(runs_file, fixture_now_ms, helper)
    try:
        # Replaced as the engine saves: a new file renamed over the one the helper read.
        written = runs_file.with_name("written.json")
        written.write_bytes(runs_file.read_bytes())
        changed = with_last_entry(written, lambda run: run.update(detail="written before the watch"))
        os.replace(written, runs_file)
        run_id = json.loads(runs_file.read_text())["runs"][changed]["run_id"]
        snapshots = snapshots_until_quiet(watcher, 2)
        assert len(snapshots) == 2, "no snapshot of the file as it is now"
        first, second = snapshots
        assert watcher.helper_read == 20
        assert first.runs[run_id].detail != "written before the watch"
        assert second.runs[run_id].detail == "written before the watch"
        assert summaries_of(second) == usual_summaries(runs_file, fixture_now_ms)
    finally:
        watcher.close()


def test_a_run_wanted_whole_is_read_whole_from_its_span(runs_file, fixture_now_ms):
    document = json.loads(runs_file.read_text())
    key = sorted(document["runs"])[3]
    run_id = document["runs"][key]["run_id"]
    watcher = followed(runs_file, fixture_now_ms, reading(runs_file))
    watcher.keep_full = frozenset({key})
    try:
        (snapshot,) = snapshots_until_quiet(watcher, 1)
        assert watcher.helper_read == 20
        whole = snapshot.runs[run_id]
        assert isinstance(whole, Run) and whole.run_id == run_id
        assert whole.checkpoint.node_outputs == document["runs"][key]["checkpoint"].get("node_outputs", {})
    finally:
        watcher.close()


def test_a_stop_during_the_helper_s_first_read_ends_the_watch_and_the_helper(runs_file, fixture_now_ms):
    many_runs(runs_file, 2_000)
    helper = reading(runs_file)
    watcher = followed(runs_file, fixture_now_ms, helper)
    stop = StopAtOnce()
    snapshots = list(watcher.iterate(stop))  # type: ignore[arg-type]
    assert snapshots == [] and stop.asked >= 1
    assert watcher.validations == 0  # no usual read after it
    assert wait_for(lambda: not alive(helper.pid), seconds=5)


def test_a_first_read_of_many_runs_comes_in_many_batches_and_misses_none(runs_file, fixture_now_ms):
    many_runs(runs_file, 2_000)
    watcher = followed(runs_file, fixture_now_ms, reading(runs_file))
    try:
        (snapshot,) = snapshots_until_quiet(watcher, 1)
        assert len(snapshot.runs) == 2_000 and watcher.helper_read == 2_000
        assert summaries_of(snapshot) == usual_summaries(runs_file, fixture_now_ms)
    finally:
        watcher.close()


def test_a_missing_file_is_reported_as_the_usual_read_reports_it(tmp_path, fixture_now_ms):
    missing = tmp_path / "automation_v2_runs.json"
    watcher = followed(missing, fixture_now_ms, reading(missing))
    try:
        (snapshot,) = snapshots_until_quiet(watcher, 1)
        assert watcher.helper_read == 0
        assert snapshot.freshness.missing and snapshot.runs == {}
    finally:
        watcher.close()


def test_spans_of_a_file_left_alone_point_at_each_entry(runs_file, fixture_now_ms):
    # Spans are kept only for a file unchanged for a while (SPANS_MIN_AGE_NS).
    assert wait_for(lambda: time.time_ns() - runs_file.stat().st_ctime_ns > SPANS_MIN_AGE_NS, seconds=5)
    watcher = followed(runs_file, fixture_now_ms, reading(runs_file))
    try:
        (snapshot,) = snapshots_until_quiet(watcher, 1)
        spans = watcher.entry_spans()
        assert spans is not None and len(spans.spans) == 20
        raw = runs_file.read_bytes()
        document = json.loads(raw)
        for key, (start, end) in spans.spans.items():
            assert json.loads(raw[start:end]) == document["runs"][key]
    finally:
        watcher.close()


def test_a_console_s_source_has_its_helper_reading_the_file_before_it_is_built(runs_file, fixture_now_ms):
    import argparse

    from tandem_tui.source.open import add_source_options, open_source

    parser = argparse.ArgumentParser()
    add_source_options(parser)
    args = parser.parse_args(["--runs-file", str(runs_file)])
    console = open_source(args, env={}, console=True)
    inner = console.inner
    try:
        helper = inner._warm_helper
        assert helper is not None and helper.first_read_path == str(runs_file.absolute())
        watcher = inner._watcher(followed=True)
        (snapshot,) = snapshots_until_quiet(watcher, 1)
        assert watcher.helper_read == 20
    finally:
        console.close()
    # Any other command's source starts none.
    assert open_source(args, env={}).inner._warm_helper is None


def test_after_a_refused_first_read_the_usual_read_primes_the_same_helper(runs_file, fixture_now_ms):
    with_last_entry(runs_file, corrupt_status)
    helper = reading(runs_file)
    watcher = followed(runs_file, fixture_now_ms, helper)
    with following(watcher) as first:
        assert summaries_of(first) == usual_summaries(runs_file, fixture_now_ms)
        assert watcher.helper_read == 0
        # The helper that read it stays, to take the usual read's bytes as its baseline.
        assert watcher._helper is helper and alive(helper.pid) and watcher._unprimed is not None


def test_every_follow_has_its_first_read_made_by_the_helper(runs_file, fixture_now_ms):
    from tandem_tui.source.file.source import FileSource

    # status --watch's source: no console, no helper started beforehand.
    source = FileSource(runs_file, clock=ManualClock(fixture_now_ms), env={})
    stop = threading.Event()
    snapshots = source.follow(stop)
    try:
        first = next(snapshots)
        assert source._following is not None and source._following.helper_read == 20
        assert summaries_of(first) == usual_summaries(runs_file, fixture_now_ms)
    finally:
        stop.set()
        snapshots.close()
        source.close()


def test_a_helper_that_dies_during_the_first_read_leaves_the_usual_read(runs_file, fixture_now_ms):
    many_runs(runs_file, 2_000)
    helper = reading(runs_file)
    helper._process.kill()  # before or while it reads: its messages end early
    watcher = followed(runs_file, fixture_now_ms, helper)
    try:
        (snapshot,) = snapshots_until_quiet(watcher, 1)
        assert watcher.helper_read == 0 and len(snapshot.runs) == 2_000
        assert summaries_of(snapshot) == usual_summaries(runs_file, fixture_now_ms)
    finally:
        watcher.close()
