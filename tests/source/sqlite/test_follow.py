"""Following a SQLite store: a change re-reads only the changed rows, and never holds
a read transaction that would stop the engine's WAL checkpoint."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.sqlite.follow import SqliteFollower
from tests.source.stores import fixture_runs, make_sqlite_store, upsert, writer


@pytest.fixture
def store(tmp_path):
    return make_sqlite_store(tmp_path, fixture_runs())


def follower_of(path, now_ms, **kwargs) -> SqliteFollower:
    return SqliteFollower(path, clock=ManualClock(now_ms), max_concurrent_runs=4, **kwargs)


def test_a_change_re_reads_only_the_changed_rows(store, fixture_now_ms):
    follower = follower_of(store, fixture_now_ms)
    first = follower.load()
    active_before = first.view.metrics().active_runs
    assert follower.decoded_rows == len(fixture_runs())
    record = {**fixture_runs()["run-da-0019"], "status": "running", "updated_at_ms": fixture_now_ms}
    connection = writer(store)
    upsert(connection, record)
    connection.close()
    second = follower.load()
    assert second.changed == frozenset({"run-da-0019"})
    assert follower.decoded_rows == len(fixture_runs()) + 1
    assert second.runs["run-da-0019"].status == "running"
    assert second.view.metrics().active_runs == active_before + 1
    assert second.runs["run-rn-0142"] is first.runs["run-rn-0142"]
    follower.close()


def test_no_commit_means_no_read(store, fixture_now_ms):
    follower = follower_of(store, fixture_now_ms)
    follower.load()
    reads = follower.reads
    for _ in range(3):
        assert follower.load().changed == frozenset()
    assert follower.reads == reads
    follower.close()


def test_a_row_going_cold_leaves_the_view(store, fixture_now_ms):
    follower = follower_of(store, fixture_now_ms)
    follower.load()
    connection = writer(store)
    connection.execute("UPDATE automation_runs SET is_hot = 0 WHERE run_id = 'run-rn-0142'")
    connection.close()
    snapshot = follower.load()
    assert snapshot.changed == frozenset({"run-rn-0142"})
    assert "run-rn-0142" not in snapshot.runs
    follower.close()


def test_a_schema_change_makes_it_stale_and_the_next_good_read_recovers(store, fixture_now_ms):
    follower = follower_of(store, fixture_now_ms)
    good = follower.load()
    connection = writer(store)
    connection.execute("UPDATE schema_metadata SET schema_version = 6")
    stale = follower.load()
    assert stale.freshness.stale and "schema version 6" in stale.freshness.error
    assert stale.runs == good.runs
    connection.execute("UPDATE schema_metadata SET schema_version = 5")
    connection.close()
    assert not follower.load().freshness.stale
    follower.close()


def test_follow_yields_a_snapshot_per_commit(store, fixture_now_ms):
    follower = follower_of(store, fixture_now_ms, poll_interval_ms=10)
    stop = threading.Event()
    seen = []

    def consume():
        for snapshot in follower.iterate(stop):
            seen.append(snapshot)
            if len(seen) == 2:
                stop.set()

    thread = threading.Thread(target=consume)
    thread.start()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    connection = writer(store)
    upsert(connection, {**fixture_runs()["run-ib-0008"], "status": "paused", "updated_at_ms": fixture_now_ms})
    connection.close()
    thread.join(5)
    stop.set()
    assert len(seen) == 2 and seen[1].changed == frozenset({"run-ib-0008"})
    follower.close()


WRITER = textwrap.dedent(
    """
    import json, sqlite3, sys, time
    path, rounds, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    connection = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    results = []
    for i in range(rounds):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE automation_runs SET updated_at_ms = updated_at_ms + 1 WHERE run_id = 'run-rn-0142'")
        connection.execute("COMMIT")
        time.sleep(0.02)
        results.append(connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
    print(json.dumps(results))
    """
)


def checkpoints(path, rounds=20, busy_timeout_s=5.0):
    """Run the engine-like writer; each checkpoint waits up to ``busy_timeout_s`` for readers."""
    out = subprocess.run(
        [sys.executable, "-c", WRITER, str(path), str(rounds), str(busy_timeout_s)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    import json

    return json.loads(out.stdout)


def test_the_engine_checkpoint_completes_while_the_source_follows(store, fixture_now_ms):
    follower = follower_of(store, fixture_now_ms, poll_interval_ms=1)
    stop = threading.Event()
    snapshots = []
    thread = threading.Thread(target=lambda: snapshots.extend(s.generation for s in follower.iterate(stop)))
    thread.start()
    try:
        results = checkpoints(store)
    finally:
        stop.set()
        thread.join(5)
        follower.close()
    # (busy, log frames, checkpointed frames): never busy, everything checkpointed.
    assert all(busy == 0 for busy, _, _ in results), results
    assert len(snapshots) > 1
    assert (store.parent / (store.name + "-wal")).stat().st_size == 0


def test_a_read_transaction_left_open_would_stop_it(store):
    # The control for the test above: the checkpoint does report a lingering reader.
    import sqlite3

    reader = sqlite3.connect(f"file:{store}?mode=ro", uri=True, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM automation_runs").fetchone()
    try:
        results = checkpoints(store, rounds=2, busy_timeout_s=0.2)
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert any(busy == 1 for busy, _, _ in results), results


def test_a_busy_store_is_re_read_at_most_once_per_interval_and_the_change_is_not_lost(store, fixture_now_ms):
    follower = follower_of(store, fixture_now_ms, min_reload_interval_ms=300)
    follower.load()
    connection = writer(store)
    upsert(connection, {**fixture_runs()["run-ib-0008"], "status": "paused", "updated_at_ms": fixture_now_ms})
    connection.close()
    assert follower.load().changed == frozenset()  # too soon after the first read
    time.sleep(0.35)
    assert follower.load().changed == frozenset({"run-ib-0008"})
    follower.close()
