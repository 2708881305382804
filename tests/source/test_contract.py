"""Every source keeps the same contract: the same runs give the same snapshot, follow
sees a change, the archive answers by id, an action has the same outcome and the same
refusal. Each store is built from ``runs_v1.json`` and its history shards."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tandem_tui.domain.actions import ActionKind, ActionRequest
from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import RunStatus, dump_run
from tandem_tui.source.base import RunsSource
from tandem_tui.source.file.source import FileSource
from tandem_tui.source.file.store import serialize_runs_file
from tandem_tui.source.postgres.source import PostgresSource
from tandem_tui.source.sqlite.source import SqliteSource
from tests.source.stores import fixture_history, fixture_runs, make_postgres_engine, make_sqlite_store, upsert, writer

ENV = {"USER": "alice", "TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS": "4"}
ENGINE = "tandem_rt_0123456789abcdef"
METRICS = ("active_runs", "queued_runs_by_reason", "admitted_total", "completed_total", "avg_wait_ms",
           "p95_wait_ms", "max_concurrent_runs", "runs_by_status")


@dataclass
class Store:
    """A source over the fixture runs, and how the engine would change one of them."""

    source: RunsSource
    key: Callable[[str], str]
    engine_writes: Callable[[dict[str, Any]], None]


@pytest.fixture(params=["file", "sqlite", "postgres"])
def store(request, tmp_path, fixture_now_ms) -> Store:
    clock = ManualClock(fixture_now_ms)
    if request.param == "file":
        runs_file = request.getfixturevalue("runs_file")

        def rewrite(record):
            entries = json.loads(runs_file.read_text())["runs"]
            entries[record["run_id"]] = record
            runs_file.write_text(serialize_runs_file(entries))

        return Store(FileSource(runs_file, clock=clock, env=ENV), lambda run_id: run_id, rewrite)
    if request.param == "sqlite":
        path = make_sqlite_store(tmp_path / "data", fixture_runs(), fixture_history())

        def upsert_row(record):
            connection = writer(path)
            upsert(connection, record)
            connection.close()

        return Store(SqliteSource(path, clock=clock, env=ENV, poll_interval_ms=10), lambda run_id: run_id, upsert_row)
    url = request.getfixturevalue("postgres_url")
    make_postgres_engine(url, ENGINE, fixture_runs(), fixture_history())

    def upsert_pg(record):
        with psycopg.connect(url, autocommit=True) as connection:
            upsert(connection, record, mark="%s", table=f'"{ENGINE}".automation_runs')

    source = PostgresSource(url, clock=clock, env=ENV, poll_interval_ms=10, audit_owner=tmp_path / "postgres")
    return Store(source, lambda run_id: f"{ENGINE}/{run_id}", upsert_pg)


@pytest.fixture
def file_snapshot(tmp_path, fixtures_dir, fixture_now_ms):
    runs_file = tmp_path / "reference" / "automation_v2_runs.json"
    runs_file.parent.mkdir()
    runs_file.write_bytes((fixtures_dir / "runs_v1.json").read_bytes())
    return FileSource(runs_file, clock=ManualClock(fixture_now_ms), env=ENV).read()


def test_the_same_runs_give_the_same_snapshot(store, file_snapshot, fixture_now_ms):
    snapshot = store.source.read()
    assert {key: dump_run(run) for key, run in snapshot.runs.items()} == {
        store.key(run_id): dump_run(run) for run_id, run in file_snapshot.runs.items()
    }
    report = snapshot.view.status_report(snapshot.runs)
    reference = file_snapshot.view.status_report(file_snapshot.runs)
    assert {name: report[name] for name in METRICS} == {name: reference[name] for name in METRICS}
    for run_id, run in file_snapshot.runs.items():
        mine = snapshot.view.queue_info(snapshot.runs[store.key(run_id)], fixture_now_ms)
        theirs = file_snapshot.view.queue_info(run, fixture_now_ms)
        assert (mine and mine.text) == (theirs and theirs.text), run_id
    assert not snapshot.freshness.stale


def test_follow_sees_a_change(store, fixture_now_ms):
    stop = threading.Event()
    seen = []

    def consume():
        for snapshot in store.source.follow(stop):
            seen.append(snapshot)
            if any(store.key("run-ib-0008") in s.changed and s.generation > 1 for s in seen[1:]):
                stop.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    store.engine_writes({**fixture_runs()["run-ib-0008"], "status": "paused", "updated_at_ms": fixture_now_ms})
    thread.join(10)
    stop.set()
    thread.join(5)
    last = seen[-1]
    assert store.key("run-ib-0008") in last.changed
    assert last.runs[store.key("run-ib-0008")].status == RunStatus.PAUSED


def test_the_archive_answers_by_month_and_by_id(store):
    source = store.source
    months = source.archive_months()
    entries = [entry for month in months.values() for entry in month]
    assert {(2026, 10), (2026, 11)} <= set(months)
    reads = {read.run.run_id: read for read in source.read_archived(entries) if read.run is not None}
    assert {"run-etl-0290", "run:manual/hotfix#7", "run-ir-0070"} <= set(reads)
    assert reads["run-ctx-0004"].hidden  # a recovered-context run still in flight
    found = source.find_run(store.key("run-ir-0070"))
    assert found is not None and found.archived and found.run.status == RunStatus.FAILED
    hot = source.find_run(store.key("run-rn-0142"))
    assert hot is not None and not hot.archived
    assert source.find_run(store.key("run-ctx-0004")) is None
    assert source.find_run(store.key("run-none")) is None


def test_an_action_has_the_same_outcome_everywhere(store):
    result = store.source.perform(ActionRequest(ActionKind.PAUSE, store.key("run-rn-0142"), reason="contract", actor="alice"))
    assert result.ok, result.message
    assert (result.previous_status, result.new_status) == (RunStatus.RUNNING, RunStatus.PAUSED)
    assert result.message.startswith("run run-rn-0142: running -> paused")
    after = store.source.read()
    assert after.runs[store.key("run-rn-0142")].status == RunStatus.PAUSED
    events = [r.event for r in after.runs[store.key("run-rn-0142")].checkpoint.lifecycle_history]
    assert events[-1] == "run_paused"


def test_a_refusal_is_the_same_everywhere_and_changes_nothing(store):
    before = store.source.read()
    result = store.source.perform(ActionRequest(ActionKind.RESUME, store.key("run-rn-0142"), actor="alice"))
    assert not result.ok
    assert result.message.startswith("cannot resume run run-rn-0142")
    after = store.source.read()
    assert {k: dump_run(r) for k, r in after.runs.items()} == {k: dump_run(r) for k, r in before.runs.items()}


def test_an_archived_run_is_acted_on_and_comes_back(store):
    result = store.source.perform(ActionRequest(ActionKind.REQUEUE, store.key("run-ir-0070"), actor="alice"))
    assert result.ok and result.archived, result.message
    found = store.source.find_run(store.key("run-ir-0070"))
    assert found is not None and found.run.status == RunStatus.QUEUED
