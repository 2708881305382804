"""RunsWatcher on real files in tmp_path: incremental reloads, stale reads, live watching."""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES_DIR
from tandem_tui.source.file.atomic import write_text_atomic
from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import RunStatus
from tandem_tui.domain.snapshot import Snapshot
from tandem_tui.source.file.watcher import RunsWatcher

DEADLINE_S = 1.0


def read_entries(path: Path) -> dict:
    return json.loads(path.read_text())["runs"]


def envelope(entries: dict) -> str:
    return json.dumps({"schema_version": 1, "runs": entries}, indent=2)


def write_atomic(path: Path, entries: dict) -> None:
    write_text_atomic(path, envelope(entries))


def write_in_place(path: Path, text: str) -> None:
    with open(path, "r+" if path.exists() else "w") as handle:
        handle.seek(0)
        handle.truncate()
        handle.write(text)


def touch_run(entries: dict, run_id: str, detail: str) -> dict:
    changed = json.loads(json.dumps(entries))
    changed[run_id]["detail"] = detail
    return changed


# ── one read at a time ──────────────────────────────────────────────────────


def test_first_load_validates_every_run_and_reports_them_all_as_changed(runs_file, fixture_now_ms):
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8)

    snapshot = watcher.load()

    entries = read_entries(runs_file)
    assert set(snapshot.runs) == set(entries)
    assert snapshot.changed == frozenset(entries)
    assert watcher.validations == len(entries)
    assert not snapshot.freshness.stale
    assert snapshot.freshness.read_at_ms == fixture_now_ms


def test_a_reload_revalidates_only_the_runs_whose_raw_json_changed(runs_file, fixture_now_ms):
    clock = ManualClock(fixture_now_ms)
    watcher = RunsWatcher(runs_file, clock=clock, max_concurrent_runs=8)
    first = watcher.load()
    entries = read_entries(runs_file)
    before = watcher.validations
    untouched = first.runs["run-etl-0308"]

    changed = touch_run(touch_run(entries, "run-rn-0142", "running node `draft` attempt 2"), "run-sd-0055", "x")
    write_atomic(runs_file, changed)
    clock.advance(1_000)
    second = watcher.load()

    assert watcher.validations == before + 2
    assert second.changed == frozenset({"run-rn-0142", "run-sd-0055"})
    assert second.runs["run-rn-0142"].detail == "running node `draft` attempt 2"
    # Unchanged runs are the very same objects, not re-validated copies.
    assert second.runs["run-etl-0308"] is untouched
    assert second.generation == first.generation + 1


def test_added_and_removed_runs_are_reported_as_changed(runs_file, fixture_now_ms):
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8)
    watcher.load()
    entries = read_entries(runs_file)
    added = json.loads(json.dumps(entries["run-ib-0008"]))
    added["run_id"] = "run-ib-0009"
    entries["run-ib-0009"] = added
    del entries["run-sd-0054"]
    before = watcher.validations

    write_atomic(runs_file, entries)
    snapshot = watcher.load()

    assert snapshot.changed == frozenset({"run-ib-0009", "run-sd-0054"})
    assert "run-sd-0054" not in snapshot.runs
    assert snapshot.runs["run-ib-0009"].status == RunStatus.QUEUED
    assert watcher.validations == before + 1


def test_a_run_leaving_the_queue_for_running_updates_the_view(runs_file, fixture_now_ms):
    clock = ManualClock(fixture_now_ms)
    watcher = RunsWatcher(runs_file, clock=clock, max_concurrent_runs=8)
    first = watcher.load()
    active_before = first.view.metrics().active_runs
    entries = read_entries(runs_file)
    entries["run-ib-0008"]["status"] = "running"
    entries["run-ib-0008"].pop("scheduler", None)

    write_atomic(runs_file, entries)
    clock.advance(5_000)
    snapshot = watcher.load()

    assert snapshot.view.metrics().active_runs == active_before + 1
    assert snapshot.series is not None and len(snapshot.series.samples) == 2
    assert snapshot.series.active()[-1] == active_before + 1


@pytest.mark.parametrize(
    ("bad_content", "expected"),
    [
        ('{"schema_version": 1, "runs": {"run-a": {"run_id": "run-', "failed to parse"),
        ('{"schema_version": 2, "runs": {}}', "newer than supported"),
        ('{"schema_version": 1}', "missing runs"),
        ('{"schema_version": 1, "runs": {"x": {"run_id": "x"}}}', "missing automation_id"),
    ],
    ids=["truncated", "newer-schema", "no-runs", "unrecoverable-entry"],
)
def test_an_unusable_file_keeps_the_last_good_runs_and_says_why_in_one_line(
    runs_file, fixture_now_ms, bad_content, expected
):
    clock = ManualClock(fixture_now_ms)
    watcher = RunsWatcher(runs_file, clock=clock, max_concurrent_runs=8)
    good = watcher.load()
    good_text = runs_file.read_text()

    write_in_place(runs_file, bad_content)
    clock.advance(2_000)
    stale = watcher.load()

    assert stale.freshness.stale
    assert expected in stale.freshness.error
    assert "\n" not in stale.freshness.error
    assert stale.freshness.error.count(runs_file.name) == 1, "names the file, once"
    assert stale.runs == good.runs
    assert stale.freshness.read_at_ms == fixture_now_ms  # when the runs were last good
    assert stale.changed == frozenset()

    write_in_place(runs_file, good_text)
    clock.advance(2_000)
    recovered = watcher.load()
    assert not recovered.freshness.stale
    assert recovered.freshness.error is None
    assert recovered.freshness.read_at_ms == fixture_now_ms + 4_000


def test_a_missing_file_is_stale_not_an_error_and_recovers_when_created(tmp_path, fixture_now_ms):
    runs_file = tmp_path / "data" / "automation_v2_runs.json"
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8)

    missing = watcher.load()
    assert missing.freshness.stale
    assert missing.freshness.error == "automation_v2_runs.json: file not found"
    assert dict(missing.runs) == {}

    runs_file.parent.mkdir()
    entries = json.loads((FIXTURES_DIR / "runs_v1.json").read_text())["runs"]
    write_atomic(runs_file, entries)
    created = watcher.load()
    assert not created.freshness.stale
    assert set(created.runs) == set(entries)
    # The view is built from the first good read, as if the file had always been there.
    running = sum(1 for entry in entries.values() if entry["status"] == "running")
    assert created.view.metrics().active_runs == running
    assert created.generation == missing.generation + 1


# ── live watching ───────────────────────────────────────────────────────────


class Follower:
    """Runs ``watcher.iterate`` in a thread and hands its snapshots to the test."""

    def __init__(self, watcher: RunsWatcher) -> None:
        self.watcher = watcher
        self.stop = threading.Event()
        self.snapshots: queue.Queue[Snapshot] = queue.Queue()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._follow, daemon=True)

    def _follow(self) -> None:
        try:
            for snapshot in self.watcher.iterate(self.stop):
                self.snapshots.put(snapshot)
        except BaseException as error:  # pragma: no cover - reported by the test
            self.errors.append(error)

    def wait_for(
        self, predicate: Callable[[Snapshot], bool], what: str, deadline_s: float = DEADLINE_S
    ) -> Snapshot:
        deadline = time.monotonic() + deadline_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                snapshot = self.snapshots.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise AssertionError(f"no snapshot within {deadline_s} s: {what}") from None
            if predicate(snapshot):
                return snapshot


@pytest.fixture(params=[False, True], ids=["notify", "poll"])
def follow(request) -> Iterator[Callable[[RunsWatcher], Follower]]:
    followers: list[Follower] = []

    def start(watcher: RunsWatcher) -> Follower:
        watcher.poll = request.param
        follower = Follower(watcher)
        followers.append(follower)
        follower.thread.start()
        # Let the watch settle before the test writes.
        time.sleep(0.2)
        return follower

    yield start
    for follower in followers:
        follower.stop.set()
        follower.thread.join(timeout=5)
        assert not follower.thread.is_alive(), "iterate() did not return after stop"
        assert follower.errors == []


def test_atomic_renames_and_in_place_writes_are_both_seen(runs_file, fixture_now_ms, follow):
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8)
    watcher.load()
    entries = read_entries(runs_file)
    follower = follow(watcher)

    write_atomic(runs_file, touch_run(entries, "run-rn-0142", "renamed over"))
    follower.wait_for(lambda s: s.runs["run-rn-0142"].detail == "renamed over", "atomic rename")

    # A second rename: a watch on the file itself would be blind by now.
    write_atomic(runs_file, touch_run(entries, "run-rn-0142", "renamed again"))
    follower.wait_for(lambda s: s.runs["run-rn-0142"].detail == "renamed again", "second rename")

    write_in_place(runs_file, envelope(touch_run(entries, "run-rn-0142", "written in place")))
    seen = follower.wait_for(lambda s: s.runs["run-rn-0142"].detail == "written in place", "in place")
    assert seen.changed == frozenset({"run-rn-0142"})


def test_a_burst_of_writes_is_reread_at_most_once_per_interval_and_ends_on_the_latest(
    runs_file, fixture_now_ms, follow
):
    watcher = RunsWatcher(
        runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8, min_reload_interval_ms=500
    )
    watcher.load()
    entries = read_entries(runs_file)
    follower = follow(watcher)

    started = time.monotonic()
    for n in range(20):  # 20 writes over ~1 s: a busy engine
        write_atomic(runs_file, touch_run(entries, "run-rn-0142", f"write {n}"))
        time.sleep(0.05)
    follower.wait_for(lambda s: s.runs["run-rn-0142"].detail == "write 19", "the last write")
    elapsed_s = time.monotonic() - started

    # At most one read per half second of the burst (plus the first, read at once).
    assert watcher.reloads <= int(elapsed_s / 0.5) + 2
    assert watcher.reloads < 20


def test_a_truncated_write_is_held_as_stale_then_recovers(runs_file, fixture_now_ms, follow):
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8)
    good = watcher.load()
    entries = read_entries(runs_file)
    follower = follow(watcher)

    text = envelope(touch_run(entries, "run-ib-0008", "second version"))
    write_in_place(runs_file, text[: len(text) // 2])
    stale = follower.wait_for(lambda s: s.freshness.stale, "stale after truncation")
    assert stale.runs["run-ib-0008"].detail == good.runs["run-ib-0008"].detail
    assert "failed to parse" in stale.freshness.error

    write_in_place(runs_file, text)
    recovered = follower.wait_for(lambda s: not s.freshness.stale, "recovery")
    assert recovered.runs["run-ib-0008"].detail == "second version"


def test_deleting_and_recreating_the_runs_file_is_followed(runs_file, fixture_now_ms, follow):
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8)
    watcher.load()
    entries = read_entries(runs_file)
    follower = follow(watcher)

    runs_file.unlink()
    gone = follower.wait_for(lambda s: s.freshness.stale, "stale after deletion")
    assert "file not found" in gone.freshness.error
    assert len(gone.runs) == len(entries)

    write_atomic(runs_file, {"run-ib-0008": entries["run-ib-0008"]})
    back = follower.wait_for(lambda s: not s.freshness.stale, "re-created file")
    assert set(back.runs) == {"run-ib-0008"}


def test_a_shard_landing_in_a_brand_new_month_directory_appears_in_the_shard_index(
    runs_file, fixture_now_ms, follow
):
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8)
    watcher.load()
    shards_before = len(watcher.shard_index)
    follower = follow(watcher)

    month = watcher.shard_root / "2027" / "01"
    month.mkdir(parents=True)
    # Written at once, before the watch can have seen the new directories.
    record = read_entries(runs_file)["run-etl-0308"]
    record = {**record, "run_id": "run-etl-0400"}
    (month / "run-etl-0400.json").write_text(json.dumps({"schema_version": 1, "run": record}))

    seen = follower.wait_for(lambda s: "run-etl-0400" in watcher.shard_index, "new shard indexed")
    assert len(watcher.shard_index) == shards_before + 1
    assert seen.shard_generation > 1


def test_a_shard_root_created_after_the_watch_started_is_picked_up(tmp_path, fixture_now_ms, follow):
    runs_file = tmp_path / "automation_v2_runs.json"
    write_atomic(runs_file, {})
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8)
    watcher.load()
    assert len(watcher.shard_index) == 0
    follower = follow(watcher)

    month = watcher.shard_root / "2026" / "11"
    month.mkdir(parents=True)
    entries = json.loads((FIXTURES_DIR / "runs_v1.json").read_text())["runs"]
    (month / "run-sd-0054.json").write_text(json.dumps({"schema_version": 1, "run": entries["run-sd-0054"]}))

    follower.wait_for(lambda s: "run-sd-0054" in watcher.shard_index, "shard under a new root")


#: A replaced directory is noticed at the next wake-up: within the idle re-check (1 s).
REPLACED_DEADLINE_S = 5.0


@pytest.fixture
def data_dir(runs_file: Path) -> Path:
    """``<tmp>/data`` holding the runs file and its shard tree, as a state directory has."""
    data = runs_file.parent / "data"
    data.mkdir()
    runs_file.rename(data / runs_file.name)
    (runs_file.parent / "automation-runs").rename(data / "automation-runs")
    return data


def test_a_replaced_data_directory_is_followed_not_the_old_one(data_dir, fixture_now_ms, follow):
    runs_file = data_dir / "automation_v2_runs.json"
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8)
    watcher.load()
    entries = read_entries(runs_file)
    follower = follow(watcher)

    # mv data data.old; mkdir data; cp -a data.old/. data/
    old = data_dir.with_name("data.old")
    data_dir.rename(old)
    shutil.copytree(old, data_dir)
    time.sleep(0.3)
    write_atomic(old / runs_file.name, touch_run(entries, "run-rn-0142", "written in the old directory"))
    write_atomic(runs_file, touch_run(entries, "run-ib-0008", "written in the new directory"))

    seen = follower.wait_for(
        lambda s: s.runs["run-ib-0008"].detail == "written in the new directory", "the new directory",
        REPLACED_DEADLINE_S,
    )
    assert not seen.freshness.stale
    assert seen.runs["run-rn-0142"].detail != "written in the old directory"

    # Shards landing in the new directory's tree are seen too.
    month = watcher.shard_root / "2027" / "02"
    month.mkdir(parents=True)
    record = {**entries["run-etl-0308"], "run_id": "run-etl-0500"}
    (month / "run-etl-0500.json").write_text(json.dumps({"schema_version": 1, "run": record}))
    follower.wait_for(lambda s: "run-etl-0500" in watcher.shard_index, "a shard in the new tree", REPLACED_DEADLINE_S)


def test_a_data_directory_renamed_away_is_stale_until_it_comes_back(data_dir, fixture_now_ms, follow):
    runs_file = data_dir / "automation_v2_runs.json"
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8)
    watcher.load()
    entries = read_entries(runs_file)
    follower = follow(watcher)

    data_dir.rename(data_dir.with_name("data.old"))
    gone = follower.wait_for(lambda s: s.freshness.stale, "stale once the directory is gone", REPLACED_DEADLINE_S)
    assert "file not found" in gone.freshness.error
    assert len(gone.runs) == len(entries)

    data_dir.mkdir()
    write_atomic(runs_file, {"run-ib-0008": entries["run-ib-0008"]})
    back = follower.wait_for(lambda s: not s.freshness.stale, "the directory back", REPLACED_DEADLINE_S)
    assert set(back.runs) == {"run-ib-0008"}


def test_stop_ends_iterate_promptly(runs_file, fixture_now_ms):
    watcher = RunsWatcher(runs_file, clock=ManualClock(fixture_now_ms), max_concurrent_runs=8)
    watcher.load()
    done = threading.Event()

    def follow_until_stopped() -> None:
        for _ in watcher.iterate():
            pass
        done.set()

    thread = threading.Thread(target=follow_until_stopped, daemon=True)
    thread.start()
    time.sleep(0.1)
    watcher.stop()
    assert done.wait(timeout=3), "iterate() kept running after stop()"
    assert os.path.exists(runs_file)


def test_following_a_live_engine_never_shows_a_stale_snapshot(tmp_path, fixture_now_ms):
    from tandem_tui.simulate import Engine

    clock = ManualClock(fixture_now_ms)
    engine = Engine(tmp_path, seed=3, rate=4, max_concurrent=4, clock=clock)
    engine.step()
    watcher = RunsWatcher(engine.runs_file, clock=clock, max_concurrent_runs=4)
    watcher.load()
    stop = threading.Event()
    snapshots: list[Snapshot] = []

    def follow() -> None:
        for snapshot in watcher.iterate(stop):
            snapshots.append(snapshot)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    time.sleep(0.2)
    # The engine writes a tick at a time; the sleeps only give the real watch its turn.
    for _ in range(12):
        clock.advance(250)
        engine.step()
        time.sleep(0.08)
    time.sleep(0.3)
    stop.set()
    follower.join(timeout=5)

    assert len(snapshots) >= 3
    assert not any(snapshot.freshness.stale for snapshot in snapshots)
    last = snapshots[-1]
    assert set(last.runs) == set(read_entries(engine.runs_file))
    # Incremental: far fewer validations than re-reading every run on every snapshot.
    assert watcher.validations < sum(len(s.runs) for s in snapshots)


# ── a console's watcher (parsing in a helper process) ──────────────────────────


def console_watcher(path: Path, now_ms: int) -> RunsWatcher:
    return RunsWatcher(path, clock=ManualClock(now_ms), max_concurrent_runs=8, parse_in_helper=True)


def plain_watcher(path: Path, now_ms: int) -> RunsWatcher:
    return RunsWatcher(path, clock=ManualClock(now_ms), max_concurrent_runs=8)


def test_a_console_first_read_gives_the_same_runs_as_the_usual_read(runs_file, fixture_now_ms):
    console, plain = console_watcher(runs_file, fixture_now_ms), plain_watcher(runs_file, fixture_now_ms)
    try:
        streamed, usual = console.load(), plain.load()
        assert list(streamed.runs) == list(usual.runs)
        assert streamed.runs == usual.runs
        assert streamed.changed == usual.changed
        assert console.validations == plain.validations == len(usual.runs)
        assert streamed.view.metrics() == usual.view.metrics()
    finally:
        console.close()


@pytest.mark.parametrize(
    "text",
    [
        # Compact JSON: a layout the entry scanner does not read.
        json.dumps({"schema_version": 1, "runs": {"a": {"run_id": "a", "status": "queued"}}}),
        # An entry that cannot be recovered (no automation_id) after a good one.
        envelope({"a": {"run_id": "a", "automation_id": "x", "status": "queued"}, "b": {"run_id": "b"}}),
        # The same key twice: the later value wins, as in the usual read.
        '{\n  "schema_version": 1,\n  "runs": {\n    "a": {"run_id": "a", "automation_id": "x"},\n'
        '    "a": {"run_id": "a", "automation_id": "y"}\n  }\n}',
        # A newer schema than this reader knows.
        envelope({}).replace('"schema_version": 1', '"schema_version": 99'),
    ],
    ids=["compact", "unrecoverable-entry", "duplicate-key", "newer-schema"],
)
def test_a_console_first_read_of_an_unusual_file_keeps_the_usual_verdict(tmp_path, fixture_now_ms, text):
    path = tmp_path / "automation_v2_runs.json"
    path.write_text(text)
    console, plain = console_watcher(path, fixture_now_ms), plain_watcher(path, fixture_now_ms)
    try:
        streamed, usual = console.load(), plain.load()
        assert streamed.freshness.error == usual.freshness.error
        assert streamed.runs == usual.runs
    finally:
        console.close()


def test_a_console_watcher_hands_the_bytes_to_the_helper_right_after_the_first_snapshot(
    runs_file, fixture_now_ms, follow
):
    watcher = console_watcher(runs_file, fixture_now_ms)
    follower = follow(watcher)
    first = follower.wait_for(lambda s: bool(s.runs), "first snapshot", deadline_s=5.0)
    deadline = time.monotonic() + 10.0
    while not watcher._helper_primed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert watcher._helper_primed, "the helper took the baseline without waiting for a change"
    assert watcher._last_bytes is None and watcher._unprimed is None, "the file's bytes left this process"

    validated = watcher.validations
    write_atomic(runs_file, touch_run(read_entries(runs_file), "run-rn-0142", "seen through the helper"))
    seen = follower.wait_for(
        lambda s: s.runs["run-rn-0142"].detail == "seen through the helper", "a change", deadline_s=5.0
    )
    assert seen.changed == frozenset({"run-rn-0142"})
    assert watcher.validations == validated + 1
    assert seen.runs["run-ib-0008"] is first.runs["run-ib-0008"]


def test_reloads_keep_the_hot_set_a_full_read_would_give(runs_file, fixture_now_ms):
    watcher = plain_watcher(runs_file, fixture_now_ms)
    watcher.load()
    entries = read_entries(runs_file)
    steps = []
    changed = touch_run(entries, "run-rn-0142", "changed")
    steps.append(changed)
    removed = {key: value for key, value in changed.items() if key != "run-etl-0311"}
    steps.append(removed)
    added = {**removed, "run-aa-0001": {**removed["run-rn-0142"], "run_id": "run-aa-0001"}}
    steps.append(added)
    # A key whose run carries another id: that id, once, as the server's load.
    renamed = {**added, "zz-key": {**added["run-sd-0057"], "detail": "a later key wins"}}
    steps.append(renamed)
    back = {**renamed}
    del back["zz-key"]
    steps.append(back)
    for step in steps:
        write_atomic(runs_file, step)
        reloaded = watcher.load()
        fresh = plain_watcher(runs_file, fixture_now_ms).load()
        assert list(reloaded.runs) == list(fresh.runs)
        assert reloaded.runs == fresh.runs


def test_the_first_snapshot_does_not_wait_for_the_shard_tree_scan(runs_file, fixture_now_ms, monkeypatch):
    from tandem_tui.source.file import shards

    scans = []
    real_scan = shards.ShardIndex.scan.__func__

    def counting_scan(cls, path):
        scans.append(path)
        return real_scan(cls, path)

    monkeypatch.setattr(shards.ShardIndex, "scan", classmethod(counting_scan))
    watcher = plain_watcher(runs_file, fixture_now_ms)
    stop = threading.Event()
    snapshots = watcher.iterate(stop)
    first = next(snapshots)
    assert first.runs and scans == [], "the runs came first"
    stop.set()
    assert next(snapshots, None) is None
    assert len(scans) == 1, "the shard tree was indexed right after"
    assert len(watcher.shard_paths()) > 0


def test_a_followed_console_reads_its_first_snapshot_in_chunks_priming_the_helper_as_it_goes(
    runs_file, fixture_now_ms, follow, monkeypatch
):
    from tandem_tui.source.file import watcher as watcher_module

    whole_reads = []
    real_read = watcher_module._read_bytes
    monkeypatch.setattr(watcher_module, "_read_bytes", lambda path: whole_reads.append(path) or real_read(path))
    watcher = console_watcher(runs_file, fixture_now_ms)
    follower = follow(watcher)
    first = follower.wait_for(lambda s: bool(s.runs), "first snapshot", deadline_s=5.0)
    assert whole_reads == []  # the file's bytes were never all in this process
    # Primed by the first read itself: no copy of the file's bytes was kept for later.
    assert watcher._helper is not None and watcher._helper_primed
    assert watcher._last_bytes is None and watcher._unprimed is None
    assert first.runs == plain_watcher(runs_file, fixture_now_ms).load().runs

    # The helper's baseline is the bytes the first read validated: a change, written in
    # place or by rename, revalidates that run alone.
    validated = watcher.validations
    write_in_place(runs_file, envelope(touch_run(read_entries(runs_file), "run-rn-0142", "in place")))
    seen = follower.wait_for(lambda s: s.runs["run-rn-0142"].detail == "in place", "an in-place write")
    assert seen.changed == frozenset({"run-rn-0142"}) and watcher.validations == validated + 1
    write_atomic(runs_file, touch_run(read_entries(runs_file), "run-ir-0088", "renamed"))
    seen = follower.wait_for(lambda s: s.runs["run-ir-0088"].detail == "renamed", "a rename")
    assert seen.changed == frozenset({"run-ir-0088"}) and watcher.validations == validated + 2


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"schema_version": 1, "runs": {"a": {"run_id": "a", "automation_id": "x", "status": "queued",
                                                         "created_at_ms": 1, "updated_at_ms": 1}}}),
        '{\n  "schema_version": 1,\n  "runs": {\n    "a": {"run_id": "a", "automation_id": "x"},\n'
        '    "a": {"run_id": "a", "automation_id": "y"}\n  }\n}',
        envelope({}).replace('"schema_version": 1', '"schema_version": 99'),
        envelope({"a": {"run_id": "a", "automation_id": "x", "status": "queued"}})[:-9],
        # A span the scanner cuts but that is not JSON (the helper took it as vouched).
        '{\n  "schema_version": 1,\n  "runs": {\n    "a": {"run_id": "a" "automation_id": "x"}\n  }\n}',
    ],
    ids=["compact", "duplicate-key", "newer-schema", "truncated", "span-not-json"],
)
def test_a_followed_console_first_read_of_an_unusual_file_keeps_the_usual_verdict_and_later_reads(
    tmp_path, fixture_now_ms, follow, text
):
    path = tmp_path / "automation_v2_runs.json"
    path.write_text(text)
    usual = plain_watcher(path, fixture_now_ms).load()
    watcher = console_watcher(path, fixture_now_ms)
    follower = follow(watcher)
    first = follower.wait_for(lambda s: True, "first snapshot", deadline_s=5.0)
    assert (first.freshness.error, first.runs) == (usual.freshness.error, usual.runs)
    # Then a good file: whatever baseline the helper took from the unusual one, the
    # snapshot is what a fresh read gives.
    write_atomic(path, {"b": {"run_id": "b", "automation_id": "y", "status": "queued",
                              "created_at_ms": 1, "updated_at_ms": 1}})
    later = follower.wait_for(lambda s: "b" in s.runs, "a good file")
    assert later.runs == plain_watcher(path, fixture_now_ms).load().runs


def test_a_one_off_load_of_a_console_watcher_starts_no_helper(runs_file, fixture_now_ms):
    watcher = console_watcher(runs_file, fixture_now_ms)
    try:
        assert watcher.load().runs
        assert watcher._helper is None
    finally:
        watcher.close()
