"""Finding changed entries, in this process and in a real helper process."""

from __future__ import annotations

import json
import os
import signal

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.file.store import RunsFileError
from tandem_tui.source.file.raw_diff import HelperDiffer, LocalDiffer
from tandem_tui.source.file.watcher import RunsWatcher


def document(**runs: dict) -> bytes:
    return json.dumps({"schema_version": 1, "runs": runs}).encode()


def run(run_id: str, detail: str = "") -> dict:
    return {
        "run_id": run_id,
        "automation_id": "auto",
        "status": "queued",
        "created_at_ms": 1,
        "updated_at_ms": 1,
        "detail": detail,
    }


@pytest.fixture(params=["local", "helper"])
def differ(request):
    made = LocalDiffer() if request.param == "local" else HelperDiffer()
    yield made
    made.close()


def test_a_first_diff_reports_every_entry_and_a_committed_one_only_what_changed(differ):
    first = differ.diff(document(a=run("a"), b=run("b")))
    assert first.keys == ["a", "b"] and set(first.changed) == {"a", "b"}
    differ.commit()
    second = differ.diff(document(a=run("a"), b=run("b", "moved"), c=run("c")))
    assert second.keys == ["a", "b", "c"]
    assert second.changed == {"b": run("b", "moved"), "c": run("c")}


def test_a_rolled_back_diff_leaves_the_baseline_where_it_was(differ):
    differ.diff(document(a=run("a")))
    differ.commit()
    differ.diff(document(a=run("a", "rejected")))
    differ.rollback()
    again = differ.diff(document(a=run("a", "rejected")))
    assert again.changed == {"a": run("a", "rejected")}


def test_an_unusable_file_is_a_runs_file_error_from_either_differ(differ):
    with pytest.raises(RunsFileError, match="newer than supported"):
        differ.diff(b'{"schema_version": 2, "runs": {}}')


def test_a_killed_helper_falls_back_to_this_process_and_misses_nothing():
    differ = HelperDiffer()
    try:
        differ.diff(document(a=run("a")))
        differ.commit()
        os.kill(differ.pid, signal.SIGKILL)
        after = differ.diff(document(a=run("a"), b=run("b")))
        assert not differ.in_helper
        assert set(after.changed) == {"a", "b"}  # an empty baseline: everything, once
    finally:
        differ.close()


def edit_detail(runs_file, run_id: str, detail: str) -> None:
    data = json.loads(runs_file.read_text())
    data["runs"][run_id]["detail"] = detail
    runs_file.write_text(json.dumps(data, indent=2))


def test_a_watcher_parsing_in_a_helper_revalidates_only_changed_runs(runs_file, fixture_now_ms):
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8, parse_in_helper=True)
    try:
        first = watcher.load()
        assert watcher._helper is None, "no helper competes with the first screen"
        validated = watcher.validations
        assert validated == len(first.runs)

        edit_detail(runs_file, "run-rn-0142", "first change: read here, primes the helper")
        watcher.load()
        assert watcher._helper is not None and watcher._helper.in_helper

        edit_detail(runs_file, "run-rn-0142", "seen through the helper")
        second = watcher.load()
        assert watcher._helper.in_helper
        assert second.runs["run-rn-0142"].detail == "seen through the helper"
        assert second.changed == frozenset({"run-rn-0142"})
        assert watcher.validations == validated + 2
        # Untouched runs are the very same objects: nothing else was rebuilt.
        assert second.runs["run-ib-0008"] is first.runs["run-ib-0008"]
    finally:
        watcher.close()


def test_a_watcher_parsing_in_a_helper_holds_a_bad_write_as_stale(runs_file, fixture_now_ms):
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8, parse_in_helper=True)
    try:
        watcher.load()
        edit_detail(runs_file, "run-rn-0142", "now parsed in the helper")
        good = watcher.load()
        assert watcher._helper is not None
        good_text = runs_file.read_text()
        runs_file.write_text(good_text[: len(good_text) // 2])
        stale = watcher.load()
        assert stale.freshness.stale and stale.runs == good.runs
        runs_file.write_text(good_text)
        assert not watcher.load().freshness.stale
    finally:
        watcher.close()


def test_a_watcher_parsing_in_a_helper_leaves_the_reading_to_it_and_still_sees_a_missing_file(
    runs_file, fixture_now_ms
):
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8, parse_in_helper=True)
    try:
        watcher.load()
        edit_detail(runs_file, "run-rn-0142", "primes the helper")
        watcher.load()
        edit_detail(runs_file, "run-rn-0142", "read by the helper")
        seen = watcher.load()
        assert seen.runs["run-rn-0142"].detail == "read by the helper"
        assert watcher._last_bytes is None, "the file's bytes stay in the helper"
        unchanged = watcher.load()
        assert unchanged.changed == frozenset() and not unchanged.freshness.stale
        text = runs_file.read_text()
        runs_file.unlink()
        missing = watcher.load()
        assert missing.freshness.stale and missing.freshness.missing
        assert missing.freshness.error == f"{runs_file.name}: file not found"
        assert missing.runs == seen.runs
        runs_file.write_text(text)
        assert not watcher.load().freshness.stale
    finally:
        watcher.close()
