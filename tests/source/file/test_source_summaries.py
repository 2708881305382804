"""A console's file source holds summaries and gives whole runs on demand.

A console's snapshots hold each run as a ``RunSummary``; ``full_runs`` reads the whole
records again from the file as it is now (the entry alone when the layout allows it,
else the whole file), and ``keep_full`` makes a run's next versions come whole.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import Run, dump_run
from tandem_tui.domain.run_summary import RunSummary
from tandem_tui.source.base import SourceError
from tandem_tui.source.file.source import FileSource
from tandem_tui.source.file.store import read_runs_file, serialize_runs_file_bytes


def source_over(path: Path, now_ms: int, *, console: bool = True) -> FileSource:
    return FileSource(path, clock=ManualClock(now_ms), env={}, console=console)


def test_a_console_source_holds_summaries_and_a_one_shot_read_whole_runs(runs_file, fixture_now_ms):
    console = source_over(runs_file, fixture_now_ms)
    assert all(isinstance(run, RunSummary) for run in console.load().runs.values())
    assert all(isinstance(run, Run) for run in source_over(runs_file, fixture_now_ms, console=False).load().runs.values())
    assert all(isinstance(run, Run) for run in console.read().runs.values())


def test_full_runs_reads_each_summary_again_as_the_whole_record(runs_file, fixture_now_ms):
    source = source_over(runs_file, fixture_now_ms)
    lean = source.load().runs
    whole = source.full_runs(list(lean.values()))
    expected = read_runs_file(runs_file, now_ms=fixture_now_ms)
    assert set(whole) == set(lean)
    for run_id, run in whole.items():
        assert isinstance(run, Run)
        assert dump_run(run) == dump_run(expected[run_id])


def test_full_runs_gives_a_whole_run_back_as_it_is(runs_file, fixture_now_ms):
    source = source_over(runs_file, fixture_now_ms)
    run = next(iter(read_runs_file(runs_file, now_ms=fixture_now_ms).values()))
    assert source.full_runs([run]) == {run.run_id: run}


def test_full_runs_reads_the_file_as_it_is_now_and_leaves_out_a_run_gone(runs_file, fixture_now_ms):
    source = source_over(runs_file, fixture_now_ms)
    lean = source.load().runs
    document = json.loads(runs_file.read_text())
    document["runs"]["run-rn-0142"]["detail"] = "changed after the snapshot"
    del document["runs"]["run-ir-0088"]
    runs_file.write_bytes(serialize_runs_file_bytes(document["runs"]))
    whole = source.full_runs([lean["run-rn-0142"], lean["run-ir-0088"]])
    assert set(whole) == {"run-rn-0142"}
    assert whole["run-rn-0142"].detail == "changed after the snapshot"


def test_a_layout_the_scanner_does_not_read_is_read_whole(runs_file, fixture_now_ms):
    source = source_over(runs_file, fixture_now_ms)
    lean = source.load().runs
    # One line, as a foreign writer might save it: no entry spans to find.
    runs_file.write_text(json.dumps(json.loads(runs_file.read_text())))
    whole = source.full_runs([lean["run-rn-0142"]])
    expected = read_runs_file(runs_file, now_ms=fixture_now_ms)["run-rn-0142"]
    assert dump_run(whole["run-rn-0142"]) == dump_run(expected)


def test_an_unreadable_file_is_one_line_of_source_error(runs_file, fixture_now_ms):
    source = source_over(runs_file, fixture_now_ms)
    lean = source.load().runs
    runs_file.unlink()
    with pytest.raises(SourceError) as raised:
        source.full_runs([lean["run-rn-0142"]])
    assert "\n" not in str(raised.value) and str(runs_file) in str(raised.value)


def test_a_run_kept_full_comes_whole_once_it_changes_and_the_others_stay_summaries(runs_file, fixture_now_ms):
    source = source_over(runs_file, fixture_now_ms)
    stop = threading.Event()
    snapshots = source.follow(stop)
    try:
        first = next(snapshots)
        assert isinstance(first.runs["run-rn-0142"], RunSummary)
        source.keep_full({"run-rn-0142"})
        document = json.loads(runs_file.read_text())
        for run_id in ("run-rn-0142", "run-ir-0088"):
            document["runs"][run_id]["detail"] = "changed"
        runs_file.write_bytes(serialize_runs_file_bytes(document["runs"]))
        deadline = time.monotonic() + 20  # a real file-system watch
        while time.monotonic() < deadline:
            snapshot = next(snapshots)
            if snapshot.runs["run-rn-0142"].detail == "changed":
                break
        assert isinstance(snapshot.runs["run-rn-0142"], Run)
        assert isinstance(snapshot.runs["run-ir-0088"], RunSummary)
        assert snapshot.runs["run-ir-0088"].detail == "changed"
    finally:
        stop.set()
        snapshots.close()
        source.close()


def test_a_key_written_twice_is_read_as_the_full_read_reads_it(runs_file, fixture_now_ms):
    source = source_over(runs_file, fixture_now_ms)
    lean = source.load().runs
    text = runs_file.read_text()
    entry = json.dumps(
        {**json.loads(text)["runs"]["run-rn-0142"], "detail": "the later value"}, indent=2
    ).replace("\n", "\n    ")
    # The same key once more at the end of the map: JSON's later value wins.
    closing = text.rstrip().rindex("\n  }")
    runs_file.write_text(text[:closing] + ',\n    "run-rn-0142": ' + entry + text[closing:])
    whole = source.full_runs([lean["run-rn-0142"]])
    assert whole["run-rn-0142"].detail == "the later value"
    assert dump_run(whole["run-rn-0142"]) == dump_run(read_runs_file(runs_file, now_ms=fixture_now_ms)["run-rn-0142"])


def aged(path: Path) -> Path:
    """``path`` once it has been left alone long enough for its entries to be indexed."""
    from tandem_tui.source.file.watcher import SPANS_MIN_AGE_NS

    time.sleep(SPANS_MIN_AGE_NS / 1e9 + 0.05)
    return path


@contextmanager
def followed(source: FileSource) -> Iterator[dict[str, Any]]:
    """The runs of ``source``'s first followed snapshot; following stops after."""
    stop = threading.Event()
    snapshots = source.follow(stop)
    try:
        yield next(snapshots).runs
    finally:
        stop.set()
        snapshots.close()
        source.close()


def test_a_run_is_read_whole_from_its_span_while_the_file_is_the_one_first_read(runs_file, fixture_now_ms):
    source = source_over(aged(runs_file), fixture_now_ms)
    with followed(source) as lean:
        whole = source.full_runs(list(lean.values()))
    expected = read_runs_file(runs_file, now_ms=fixture_now_ms)
    assert set(whole) == set(lean)
    assert all(dump_run(run) == dump_run(expected[run_id]) for run_id, run in whole.items())
    assert source.span_reads == len(whole)  # no scan of the file


@pytest.mark.parametrize("how", ["in place, same size", "replaced"])
def test_a_file_changed_after_the_first_read_is_scanned_not_read_by_its_old_spans(runs_file, fixture_now_ms, how):
    source = source_over(aged(runs_file), fixture_now_ms)
    with followed(source) as lean:
        raw = runs_file.read_bytes()
        # The same size (one byte in, one out): only the identity can tell the old
        # spans no longer hold the entries.
        changed = raw.replace(b'"detail": "', b'"detail": "X', 1).replace(b'"checkpoint": {', b'"checkpoint":{', 1)
        assert len(changed) == len(raw) and changed != raw
        if how == "replaced":
            runs_file.with_suffix(".tmp").write_bytes(changed)
            os.replace(runs_file.with_suffix(".tmp"), runs_file)
        else:
            with open(runs_file, "r+b") as handle:
                handle.write(changed)
        whole = source.full_runs(list(lean.values()))
    expected = read_runs_file(runs_file, now_ms=fixture_now_ms)
    assert all(dump_run(run) == dump_run(expected[run_id]) for run_id, run in whole.items())
    assert any(run.detail and run.detail.startswith("X") for run in whole.values())
    assert source.span_reads == 0


def test_a_file_first_read_moments_after_a_write_is_not_indexed(runs_file, fixture_now_ms):
    # Two writes in place within one tick of the file system's clock could leave the
    # file the same identity: a file written less than a second ago is always scanned.
    source = source_over(runs_file, fixture_now_ms)
    with followed(source) as lean:
        assert len(source.full_runs(list(lean.values()))) == len(lean)
    assert source.span_reads == 0
