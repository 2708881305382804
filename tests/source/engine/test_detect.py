"""Detection as the engine itself decides: its lock file (real processes), its SQLite
migration row (a real database), its token precedence, its URL."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tandem_tui.source.engine.detect import (
    ENGINE_LOCK_NAME,
    STORE_RUNS_FILE,
    STORE_SQLITE,
    authoritative_store,
    engine_url,
    find_token,
    process_start_hint,
    read_engine_lock,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/stat")


@pytest.fixture
def other_process():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def write_lock(data_dir: Path, pid: int, hint: str | None) -> Path:
    path = data_dir / ENGINE_LOCK_NAME
    path.write_text(json.dumps({"pid": pid, "acquired_at_ms": 1, "process_start_hint": hint}, separators=(",", ":")))
    return path


@linux_only
def test_a_lock_whose_pid_lives_with_the_recorded_start_time_says_live(tmp_path, other_process):
    path = write_lock(tmp_path, other_process.pid, process_start_hint(other_process.pid))
    before = path.read_bytes()
    state = read_engine_lock(tmp_path)
    assert state.live is True and state.pid == other_process.pid
    assert path.read_bytes() == before  # read, never taken or rewritten


@linux_only
def test_a_lock_whose_pid_was_reused_by_another_process_says_not_live(tmp_path, other_process):
    write_lock(tmp_path, other_process.pid, "linux-start:1")
    state = read_engine_lock(tmp_path)
    assert state.live is False and "reused" in state.why


def test_a_lock_left_by_an_engine_that_exited_says_not_live(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_lock(tmp_path, int(finished.stdout), "linux-start:12345")
    assert read_engine_lock(tmp_path).live is False


@linux_only
def test_a_lock_without_a_known_hint_trusts_a_live_pid_as_the_engine_does(tmp_path, other_process):
    write_lock(tmp_path, other_process.pid, None)
    assert read_engine_lock(tmp_path).live is True


def test_no_lock_file_or_a_garbled_one_decides_nothing(tmp_path):
    assert read_engine_lock(tmp_path).live is None
    (tmp_path / ENGINE_LOCK_NAME).write_text("{not json")
    assert read_engine_lock(tmp_path).live is None


def make_store(data_dir: Path, status: str | None) -> Path:
    database = data_dir / "stateful_runtime.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute(
            "CREATE TABLE stateful_migrations (migration_id TEXT PRIMARY KEY, status TEXT NOT NULL, "
            "source_fingerprint TEXT NOT NULL, record_count INTEGER NOT NULL, started_at_ms INTEGER NOT NULL, "
            "completed_at_ms INTEGER)"
        )
        if status is not None:
            connection.execute(
                "INSERT INTO stateful_migrations VALUES ('legacy_stateful_runtime_v1', ?, 'fp', 3, 1, 2)", (status,)
            )
    connection.close()
    return database


def test_the_sqlite_store_is_authoritative_once_the_legacy_import_is_complete(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    database = make_store(tmp_path, "complete")
    before = database.read_bytes()
    store = authoritative_store(runs_file)
    assert (store.kind, store.path) == (STORE_SQLITE, database)
    assert database.read_bytes() == before  # opened read-only


@pytest.mark.parametrize("status", ["in_progress", None])
def test_the_runs_file_stays_authoritative_while_the_import_is_not_complete(tmp_path, status):
    make_store(tmp_path, status)
    assert authoritative_store(tmp_path / "automation_v2_runs.json").kind == STORE_RUNS_FILE


def test_without_a_database_the_runs_file_is_authoritative(tmp_path):
    assert authoritative_store(tmp_path / "automation_v2_runs.json").kind == STORE_RUNS_FILE


def test_the_engine_url_comes_from_the_option_then_the_environment_then_the_default_port():
    assert engine_url("http://127.0.0.1:1234/", {"TANDEM_ENGINE_PORT": "9"}).url == "http://127.0.0.1:1234"
    assert engine_url(None, {"TANDEM_ENGINE_PORT": "4100"}) .url == "http://127.0.0.1:4100"
    assert engine_url(None, {}).url == "http://127.0.0.1:39731"
    assert engine_url(None, {"TANDEM_ENGINE_PORT": "not-a-port"}).origin == "default"


def test_the_token_comes_from_the_option_the_environment_then_the_engines_file_and_says_where(tmp_path):
    home = tmp_path / "home"
    engine_file = home / "security" / "engine_api_token"
    engine_file.parent.mkdir(parents=True)
    engine_file.write_text("tk_from_the_engine\n")
    named = tmp_path / "named"
    named.write_text("tk_named")
    option = tmp_path / "option"
    option.write_text(" tk_option ")
    env = {"TANDEM_HOME": str(home)}

    assert (find_token(None, env).token, find_token(None, env).origin) == (
        "tk_from_the_engine", f"the engine's token file {engine_file}",
    )
    assert find_token(None, {**env, "TANDEM_API_TOKEN_FILE": str(named)}).token == "tk_named"
    assert find_token(None, {**env, "TANDEM_API_TOKEN": "tk_env", "TANDEM_API_TOKEN_FILE": str(named)}).origin == "TANDEM_API_TOKEN"
    assert find_token(option, {**env, "TANDEM_API_TOKEN": "tk_env"}).token == "tk_option"
    missing = find_token(tmp_path / "absent", env)
    assert missing.token is None and "no such file" in missing.origin
    empty_home = find_token(None, {"TANDEM_HOME": str(tmp_path / "nowhere")})
    assert empty_home.token is None and "no token" in empty_home.origin
