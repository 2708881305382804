"""FileSource: the archive of a followed source comes from the watcher's live shard
index, with no second scan of the shard tree."""

from __future__ import annotations

import json
import shutil
import threading
import time

from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.file import shards
from tandem_tui.source.file.source import FileSource


def test_a_followed_source_lists_the_archive_from_its_watcher_without_rescanning(
    runs_file, fixture_now_ms, monkeypatch
):
    scans = []
    real_scan = shards.ShardIndex.scan.__func__

    def counting_scan(cls, path):
        scans.append(path)
        return real_scan(cls, path)

    monkeypatch.setattr(shards.ShardIndex, "scan", classmethod(counting_scan))
    source = FileSource(runs_file, clock=ManualClock(fixture_now_ms), env={})
    stop = threading.Event()
    snapshots = source.follow(stop)
    first_ready = threading.Event()

    def consume():
        for _ in snapshots:
            first_ready.set()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    try:
        assert first_ready.wait(20)
        before = sum(len(entries) for entries in source.archive_months().values())
        # One scan of the tree in all (the watcher's, made after its first snapshot, or
        # the listing's if it came first), then the live index.
        scans_after_start = len(scans)
        assert scans_after_start == 1

        # A shard lands in a brand new month directory while the source is followed.
        root = runs_file.parent / "automation-runs" / runs_file.stem
        existing = next(root.rglob("run-rn-0120.json"))
        document = json.loads(existing.read_text())
        document["run"]["run_id"] = "run-rn-9000"
        target = root / "2026" / "12" / "run-rn-9000.json"
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(document))

        deadline = time.monotonic() + 10  # the watcher is a real file-system watch
        months = source.archive_months()
        while (2026, 12) not in months and time.monotonic() < deadline:
            time.sleep(0.05)
            months = source.archive_months()
        assert [entry.name for entry in months[(2026, 12)]] == ["run-rn-9000"]
        assert sum(len(entries) for entries in months.values()) == before + 1
        assert len(scans) == scans_after_start, "the archive was listed from the live index"
    finally:
        stop.set()
        worker.join(10)


def test_an_unfollowed_source_scans_the_shard_tree(runs_file, fixture_now_ms):
    source = FileSource(runs_file, clock=ManualClock(fixture_now_ms), env={})
    months = source.archive_months()
    assert (2026, 10) in months and (2026, 11) in months
    shutil.rmtree(runs_file.parent / "automation-runs")
    assert source.archive_months() == {}


def test_the_archive_lists_a_run_filed_twice_once_under_its_latest_month(runs_file, fixture_now_ms):
    root = runs_file.parent / "automation-runs" / runs_file.stem
    existing = next(root.rglob("run-rn-0120.json"))
    later = root / "2027" / "01" / "run-rn-0120.json"
    later.parent.mkdir(parents=True)
    shutil.copyfile(existing, later)
    nowhere = root / "2026" / "13" / "run-rn-7777.json"  # no calendar month: not listed
    nowhere.parent.mkdir(parents=True)
    shutil.copyfile(existing, nowhere)

    months = FileSource(runs_file, clock=ManualClock(fixture_now_ms), env={}).archive_months()

    listed = [entry for entries in months.values() for entry in entries]
    named = [entry for entry in listed if entry.name == "run-rn-0120"]
    assert [(entry.key, entry.month) for entry in named] == [(str(later), (2027, 1))]
    assert not any(entry.name == "run-rn-7777" for entry in listed)
    assert list(months) == sorted(months, reverse=True)
    for month, entries in months.items():
        assert [entry.key for entry in entries] == sorted(entry.key for entry in entries)
        assert all(entry.month == month and entry.key.endswith(f"{entry.name}.json") for entry in entries)
