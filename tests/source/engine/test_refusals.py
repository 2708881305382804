"""An engine that owns the runs but cannot be used is a refusal that changes no byte:
an engine lock whose owner lives (API elsewhere), a port that accepts and never
answers, a SQLite store the engine reads instead of the runs file. Real processes,
real sockets on 127.0.0.1, a real database."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys

import pytest

from tandem_tui.domain.actions import ActionKind, ActionRequest
from tandem_tui.source.base import Route
from tandem_tui.source.engine.detect import ENGINE_LOCK_NAME, process_start_hint
from tandem_tui.source.file.audit import read_audit
from tandem_tui.source.open import file_source

def queued_run_id(runs_file) -> str:
    runs = json.loads(runs_file.read_text())["runs"]
    return sorted(key for key, value in runs.items() if value["status"] in ("queued", "running"))[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def engine_process():
    """A process standing in for an engine that holds the lock (its API is elsewhere)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/stat")
def test_a_live_engine_lock_without_an_answering_api_refuses_and_writes_nothing(runs_file, engine_process):
    (runs_file.parent / ENGINE_LOCK_NAME).write_text(json.dumps(
        {"pid": engine_process.pid, "acquired_at_ms": 1, "process_start_hint": process_start_hint(engine_process.pid)}
    ))
    env = {"TANDEM_ENGINE_PORT": str(free_port()), "TANDEM_API_TOKEN": "tk_x", "HOME": str(runs_file.parent)}
    source = file_source(runs_file, env=env)
    before = runs_file.read_bytes()

    description = source.describe()
    result = source.perform(ActionRequest(kind=ActionKind.PAUSE, run_id=queued_run_id(runs_file), actor="ops@test"))

    assert description.engine_live is True and description.route == Route.NONE
    assert "is alive" in description.why_read_only
    assert not result.ok and result.unusable and "refused the connection" in result.message
    assert runs_file.read_bytes() == before


def test_a_port_that_accepts_but_never_answers_is_an_engine_we_must_not_write_behind(runs_file):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts connections in the backlog, never answers
        env = {"TANDEM_ENGINE_PORT": str(listener.getsockname()[1]), "TANDEM_API_TOKEN": "tk_x", "HOME": str(runs_file.parent)}
        source = file_source(runs_file, env=env)
        before = runs_file.read_bytes()

        description = source.describe()

        assert description.engine_live is True and description.route == Route.NONE
        assert "did not answer" in description.why_read_only
        assert runs_file.read_bytes() == before


def test_with_the_sqlite_store_authoritative_the_runs_file_is_not_written_behind_a_stopped_engine(runs_file):
    with sqlite3.connect(runs_file.parent / "stateful_runtime.sqlite3") as connection:
        connection.execute("CREATE TABLE stateful_migrations (migration_id TEXT PRIMARY KEY, status TEXT NOT NULL)")
        connection.execute("INSERT INTO stateful_migrations VALUES ('legacy_stateful_runtime_v1', 'complete')")
    connection.close()
    env = {"TANDEM_ENGINE_PORT": str(free_port()), "HOME": str(runs_file.parent)}
    source = file_source(runs_file, env=env)
    before = runs_file.read_bytes()

    result = source.perform(ActionRequest(kind=ActionKind.PAUSE, run_id=queued_run_id(runs_file), actor="ops@test"))

    assert source.describe().route == Route.NONE
    assert not result.ok and "SQLite store is authoritative" in result.message
    assert runs_file.read_bytes() == before
    assert read_audit(runs_file)[-1]["result"] == "failed"
