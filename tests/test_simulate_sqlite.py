"""``simulate --store sqlite``: the simulate engine in the Tandem >= 0.6.9 layout, on real files.

The SQLite store ``stateful_runtime.sqlite3`` is authoritative (the legacy import marked
complete), the runs file is its copy of the hot set, history is rows with ``is_hot = 0``,
and the engine holds ``stateful_runtime.engine.lock`` while it runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import TERMINAL_STATUSES, RunStatus
from tandem_tui.simulate import Engine
from tandem_tui.simulate.sqlite_store import EngineLockHeld, schema_sql
from tandem_tui.source.engine.detect import STORE_SQLITE, authoritative_store, read_engine_lock
from tandem_tui.source.file.store import read_runs_document
from tandem_tui.source.open import open_source
from tandem_tui.source.sqlite.engine_lock import engine_lock_state
from tandem_tui.source.sqlite.source import SqliteSource

START_MS = 1_795_446_000_000
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_engine(state_dir: Path, **kwargs) -> tuple[Engine, ManualClock]:
    clock = ManualClock(START_MS)
    engine = Engine(state_dir, seed=3, rate=1.5, max_concurrent=3, clock=clock, archive_after_ms=5_000, store="sqlite", **kwargs)
    return engine, clock


def run_for(engine: Engine, clock: ManualClock, ticks: int) -> None:
    for _ in range(ticks):
        clock.advance(1_000)
        engine.step()


def rows(engine: Engine) -> dict[str, tuple]:
    with sqlite3.connect(engine.runs_file.parent / "stateful_runtime.sqlite3") as connection:
        return {
            row[0]: row[1:]
            for row in connection.execute(
                "SELECT run_id, status, is_hot, run_json, automation_id, org_id, workspace_id, updated_at_ms FROM automation_runs"
            )
        }


def test_the_package_ships_the_v5_schema():
    # The one copy of upstream's schema (shared/upstream/stateful_runtime_schema_v5.sql):
    # the engine, the tests and the benches build stores from it.
    assert "CREATE TABLE automation_runs (" in schema_sql()
    assert "schema_version" in schema_sql()


def test_the_store_is_schema_5_in_wal_mode_and_authoritative_after_the_first_save(tmp_path):
    engine, clock = make_engine(tmp_path)
    run_for(engine, clock, 1)
    database = engine.runs_file.parent / "stateful_runtime.sqlite3"
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT schema_version FROM schema_metadata").fetchall() == [(5,)]
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute(
            "SELECT status FROM stateful_migrations WHERE migration_id = 'legacy_stateful_runtime_v1'"
        ).fetchone() == ("complete",)
    assert authoritative_store(engine.runs_file).kind == STORE_SQLITE
    source = open_source(argparse.Namespace(state_dir=tmp_path), env={"HOME": str(tmp_path)})
    assert source.kind == "sqlite"
    engine.close()


def test_hot_rows_are_the_runs_file_and_each_run_json_is_the_engines_envelope(tmp_path):
    engine, clock = make_engine(tmp_path)
    run_for(engine, clock, 12)
    entries = read_runs_document(engine.runs_file).entries
    stored = rows(engine)
    assert {run_id for run_id, row in stored.items() if row[1] == 1} == set(entries)
    for run_id, value in entries.items():
        status, _, run_json, automation_id, org, workspace, updated = stored[run_id]
        envelope = json.loads(run_json)
        assert list(envelope) == ["tenant_context", "kind", "id", "payload"]
        assert envelope["kind"] == "run" and envelope["id"] == run_id and envelope["payload"] == value
        assert envelope["tenant_context"] == value["tenant_context"]
        assert (status, automation_id, updated) == (value["status"], value["automation_id"], value["updated_at_ms"])
        assert (org, workspace) == (value["tenant_context"]["org_id"], value["tenant_context"]["workspace_id"])
        assert run_json == json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))  # compact, as serde writes
    engine.close()


def test_archived_runs_become_history_rows_and_no_shard_is_written(tmp_path):
    engine, clock = make_engine(tmp_path)
    run_for(engine, clock, 90)
    history = {run_id: row for run_id, row in rows(engine).items() if row[1] == 0}
    assert history, "nothing was archived in 90 s of simulated time"
    assert all(RunStatus(row[0]) in TERMINAL_STATUSES for row in history.values())
    assert not set(history) & set(read_runs_document(engine.runs_file).entries)
    assert not (engine.runs_file.parent / "automation-runs").exists()
    engine.close()
    source = SqliteSource(engine.runs_file.parent / "stateful_runtime.sqlite3", clock=clock, env={})
    listed = {entry.name for entries in source.archive_months().values() for entry in entries}
    assert listed == set(history)


def test_a_restart_loads_the_store_and_never_reads_the_runs_file(tmp_path):
    engine, clock = make_engine(tmp_path)
    run_for(engine, clock, 8)
    hot = {run_id for run_id, row in rows(engine).items() if row[1] == 1}
    engine.close()
    engine.runs_file.write_text("not json at all")  # the file is only a copy now

    again, clock2 = make_engine(tmp_path)
    clock2.set(clock.now_ms())
    again.start()
    assert {run.run_id for run in again.runs()} == hot
    clock2.advance(1_000)
    again.step()
    assert set(read_runs_document(again.runs_file).entries) >= hot - {
        run_id for run_id, row in rows(again).items() if row[1] == 0
    }
    again.close()


def test_the_legacy_runs_file_is_imported_once_losslessly(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(FIXTURES / "runs_v1.json", data / "automation_v2_runs.json")
    legacy = read_runs_document(data / "automation_v2_runs.json").entries
    engine, _ = make_engine(tmp_path, runs_limit=0)
    engine.start()
    stored = rows(engine)
    assert set(legacy) <= set(stored)
    for run_id, value in legacy.items():
        assert json.loads(stored[run_id][2])["payload"] == value  # unknown fields and all
    with sqlite3.connect(data / "stateful_runtime.sqlite3") as connection:
        assert connection.execute("SELECT record_count FROM stateful_migrations").fetchone() == (len(legacy),)
    engine.close()


def test_the_engine_holds_the_engine_lock_as_upstream_does(tmp_path):
    engine, clock = make_engine(tmp_path)
    engine.start()
    lock = engine.runs_file.parent / "stateful_runtime.engine.lock"
    owner = json.loads(lock.read_text())
    assert set(owner) == {"pid", "acquired_at_ms", "process_start_hint"}
    stat = Path(f"/proc/{owner['pid']}/stat").read_text()
    assert owner["process_start_hint"] == f"linux-start:{stat.rsplit(')', 1)[1].split()[19]}"
    assert owner["acquired_at_ms"] == START_MS
    state = engine_lock_state(lock)
    assert state.live and "locked" in state.why  # the kernel lists our flock
    second, _ = make_engine(tmp_path)
    with pytest.raises(EngineLockHeld, match="already owns"):
        second.start()
    engine.close()
    assert lock.exists()  # the file stays, as the engine leaves it


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tandem_tui", *args], capture_output=True, text=True, timeout=60)


def test_a_serving_sqlite_engine_is_live_by_its_lock_acts_through_its_api_and_its_lock_owner_exits(serving_engine):
    engine = serving_engine("--store", "sqlite", "--pace", "0.1", "--rate", "0.5", "--max-concurrent", "3")
    data = engine.runs_file.parent
    assert read_engine_lock(data).live is True
    database = data / "stateful_runtime.sqlite3"
    with sqlite3.connect(database) as connection:
        run_id = connection.execute(
            "SELECT run_id FROM automation_runs WHERE is_hot = 1 AND status IN ('queued', 'running') ORDER BY run_id"
        ).fetchone()[0]
    done = subprocess.run(
        [sys.executable, "-m", "tandem_tui", "pause", run_id, "--state-dir", str(engine.state_dir), "--reason", "x"],
        capture_output=True, text=True, timeout=60, env=engine.env(),
    )
    assert done.returncode == 0, done.stderr
    assert "via the engine" in done.stdout + done.stderr
    deadline = time.monotonic() + 10
    while True:  # the engine saves the action to its store at once
        with sqlite3.connect(database) as connection:
            status = connection.execute("SELECT status FROM automation_runs WHERE run_id = ?", (run_id,)).fetchone()[0]
        if status in ("paused", "pausing") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status in ("paused", "pausing")
    engine.stop()
    assert read_engine_lock(data).live is False


def test_the_demo_with_the_sqlite_store_opens_the_console_source_on_the_live_store():
    from tandem_tui.commands import console
    from tandem_tui.source.base import Route

    parser = argparse.ArgumentParser()
    console.configure(parser)
    assert parser.parse_args(["--demo", "--store", "sqlite"]).store == "sqlite"
    with console.demo_state_dir(timeout=20, store="sqlite") as demo:
        args = argparse.Namespace(state_dir=demo.state_dir, engine_url=demo.url, token_file=demo.token_file)
        source = open_source(args, env={"HOME": str(demo.state_dir)})
        try:
            described = source.describe()
            assert described.kind == "sqlite" and described.route == Route.ENGINE
            assert described.location.endswith("stateful_runtime.sqlite3")
            assert source.read().runs
        finally:
            source.close()
