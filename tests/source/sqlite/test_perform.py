"""Actions on the SQLite store with no engine live: our core, one BEGIN IMMEDIATE
transaction, the same outcome as on the runs file, refusals that change nothing."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from tandem_tui.domain.actions import ActionKind, ActionRequest
from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.base import SourceError
from tandem_tui.source.file.audit import read_audit
from tandem_tui.source.file.perform import perform as perform_on_file
from tandem_tui.source.file.store import RUNS_FILE_NAME, read_runs_document
from tandem_tui.source.sqlite.engine_lock import engine_lock_state
from tandem_tui.source.sqlite.perform import EngineLiveError
from tandem_tui.source.sqlite.source import SqliteSource
from tests.source.stores import CIPHERTEXT, fixture_history, fixture_runs, make_sqlite_store, writer

ENV = {"USER": "alice", "TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS": "4"}


@pytest.fixture
def store(tmp_path):
    hot = fixture_runs()
    encrypted = {**hot["run-ir-0086"], "run_id": "run-enc"}
    return make_sqlite_store(tmp_path / "data", hot, fixture_history(), encrypted=[(encrypted, True)])


def row(path, run_id):
    connection = sqlite3.connect(path)
    try:
        return connection.execute(
            "SELECT status, is_hot, run_json, updated_at_ms FROM automation_runs WHERE run_id = ?", (run_id,)
        ).fetchone()
    finally:
        connection.close()


def table(path):
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT * FROM automation_runs ORDER BY run_id").fetchall()
    finally:
        connection.close()


def act(path, now_ms, kind, run_id, **kwargs):
    source = SqliteSource(path, clock=ManualClock(now_ms), env=ENV)
    return source.perform(ActionRequest(kind=kind, run_id=run_id, reason="ops test", actor="alice@ops", **kwargs))


@pytest.mark.parametrize(
    "kind, run_id",
    [
        (ActionKind.PAUSE, "run-rn-0142"),
        (ActionKind.RESUME, "run-ir-0086"),
        (ActionKind.REQUEUE, "run-ir-0085"),
        (ActionKind.RELEASE_LOCK, "run-sd-0057"),
    ],
)
def test_an_action_changes_the_row_exactly_as_it_changes_the_runs_file(store, tmp_path, fixture_now_ms, fixtures_dir, kind, run_id):
    runs_file = tmp_path / "file" / RUNS_FILE_NAME
    runs_file.parent.mkdir()
    shutil.copyfile(fixtures_dir / "runs_v1.json", runs_file)
    on_file = perform_on_file(
        runs_file,
        ActionRequest(kind=kind, run_id=run_id, reason="ops test", actor="alice@ops"),
        clock=ManualClock(fixture_now_ms),
        env=ENV,
    )
    result = act(store, fixture_now_ms, kind, run_id)
    assert result.ok and on_file.ok, (result.message, on_file.message)
    assert (result.previous_status, result.new_status, result.message) == (
        on_file.previous_status,
        on_file.new_status,
        on_file.message,
    )
    status, is_hot, run_json, updated_at_ms = row(store, run_id)
    stored = json.loads(run_json)
    assert stored["payload"] == read_runs_document(runs_file).entries[run_id]
    assert (status, is_hot, updated_at_ms) == (stored["payload"]["status"], 1, stored["payload"]["updated_at_ms"])
    assert {k: v for k, v in stored.items() if k != "payload"} == {
        "tenant_context": fixture_runs()[run_id].get("tenant_context", {"org_id": "local", "workspace_id": "local", "source": "local_implicit"}),
        "kind": "run",
        "id": run_id,
    }


def test_the_envelopes_unknown_fields_survive_an_action(store, fixture_now_ms):
    connection = writer(store)
    status, _, run_json, _ = row(store, "run-rn-0142")
    value = json.loads(run_json)
    value["engine_future"] = {"x": [1, None]}
    value["payload"]["payload_future"] = "kept"
    connection.execute("UPDATE automation_runs SET run_json = ? WHERE run_id = 'run-rn-0142'", (json.dumps(value),))
    connection.close()
    assert act(store, fixture_now_ms, ActionKind.PAUSE, "run-rn-0142").ok
    after = json.loads(row(store, "run-rn-0142")[2])
    assert after["engine_future"] == {"x": [1, None]}
    assert after["payload"]["payload_future"] == "kept"


def test_a_refused_action_changes_no_byte_and_is_audited(store, fixture_now_ms):
    before = (store.read_bytes(), table(store))
    result = act(store, fixture_now_ms, ActionKind.RESUME, "run-rn-0142")
    assert not result.ok and "cannot resume" in result.message
    assert (store.read_bytes(), table(store)) == before
    audit = read_audit(store.parent / RUNS_FILE_NAME)
    assert audit[-1]["result"] == "refused" and audit[-1]["run_id"] == "run-rn-0142"
    assert (store.parent / "automation-runs" / "automation_v2_runs" / "operator-audit.jsonl").is_file()


def test_an_encrypted_row_is_refused_and_left_untouched(store, fixture_now_ms):
    before = table(store)
    result = act(store, fixture_now_ms, ActionKind.RESUME, "run-enc")
    assert not result.ok and "encrypted" in result.message
    assert table(store) == before
    assert row(store, "run-enc")[2] == CIPHERTEXT


def test_an_unknown_run_is_not_found(store, fixture_now_ms):
    result = act(store, fixture_now_ms, ActionKind.PAUSE, "run-nope")
    assert not result.ok and result.message == "run run-nope not found"


def test_an_archived_run_comes_back_into_the_hot_set(store, fixture_now_ms):
    run_id, record = next((k, v) for k, v in fixture_history().items() if v["status"] in ("failed", "blocked"))
    assert row(store, run_id)[1] == 0
    result = act(store, fixture_now_ms, ActionKind.REQUEUE, run_id)
    assert result.ok and result.archived, result.message
    status, is_hot, _, _ = row(store, run_id)
    assert (status, is_hot) == ("queued", 1)


def test_the_stale_view_guard_refuses_a_run_that_moved_on(store, fixture_now_ms):
    result = act(store, fixture_now_ms, ActionKind.PAUSE, "run-rn-0142", expect_updated_at_ms=1)
    assert not result.ok and "changed since you looked" in result.message


def test_another_schema_version_is_refused_before_any_write(tmp_path, fixture_now_ms):
    path = make_sqlite_store(tmp_path, fixture_runs(), schema_version=4)
    before = table(path)
    with pytest.raises(SourceError, match="schema version 4"):
        act(path, fixture_now_ms, ActionKind.PAUSE, "run-rn-0142")
    assert table(path) == before


# -- the engine lock ------------------------------------------------------------------

HOLD_LOCK = """
import fcntl, json, os, sys, time
path = sys.argv[1]
handle = open(path, "a+")
fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
stat = open(f"/proc/{os.getpid()}/stat").read().rsplit(")", 1)[1].split()
handle.truncate(0)
handle.write(json.dumps({"pid": os.getpid(), "acquired_at_ms": 1, "process_start_hint": f"linux-start:{stat[19]}"}, separators=(",", ":")))
handle.flush()
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def live_engine(store):
    lock = store.parent / "stateful_runtime.engine.lock"
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    yield process
    process.kill()
    process.wait()


def test_a_live_engine_makes_the_store_read_only(store, fixture_now_ms, live_engine):
    before = table(store)
    source = SqliteSource(store, clock=ManualClock(fixture_now_ms), env=ENV)
    description = source.describe()
    assert description.route == "none" and description.engine_live is True
    with pytest.raises(EngineLiveError, match="engine is live"):
        act(store, fixture_now_ms, ActionKind.PAUSE, "run-rn-0142")
    assert table(store) == before


def test_a_lock_file_left_by_an_engine_that_exited_frees_the_store(store, fixture_now_ms, live_engine):
    live_engine.kill()
    live_engine.wait()
    state = engine_lock_state(store.parent / "stateful_runtime.engine.lock")
    assert state.live is False, state
    assert act(store, fixture_now_ms, ActionKind.PAUSE, "run-rn-0142").ok


def test_a_recorded_pid_now_owned_by_another_process_is_not_an_engine(store, fixture_now_ms):
    lock = store.parent / "stateful_runtime.engine.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "acquired_at_ms": 1, "process_start_hint": "linux-start:1"}))
    assert engine_lock_state(lock).live is False
    lock.write_text(json.dumps({"pid": os.getpid(), "acquired_at_ms": 1, "process_start_hint": None}))
    assert engine_lock_state(lock).live is True


def test_an_unreadable_lock_file_refuses_actions(store, fixture_now_ms):
    (store.parent / "stateful_runtime.engine.lock").write_text("{not json")
    with pytest.raises(EngineLiveError, match="cannot tell"):
        act(store, fixture_now_ms, ActionKind.PAUSE, "run-rn-0142")
