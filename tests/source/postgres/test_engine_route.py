"""Acting on a live engine of a PostgreSQL fleet: through its HTTP API, or not at all.

A real PostgreSQL (tests/source/conftest.py) holds two engine schemas; a real serving
simulate engine (``tandem-tui simulate --serve 0``) on 127.0.0.1 stands in as the live
engine of schema A: its runs are copied into A, and a test connection holds A's session
advisory lock, which is how an engine is seen to be live (``pg_locks``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tandem_tui.domain.actions import ActionKind, ActionRequest
from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import RunStatus
from tandem_tui.source.base import Route
from tandem_tui.source.file.audit import read_audit
from tandem_tui.source.postgres.keys import engine_lock_key
from tandem_tui.source.postgres.source import PostgresSource
from tests.source.stores import fixture_runs, make_postgres_engine

A, B = "tandem_rt_00000000000000aa", "tandem_rt_00000000000000bb"
#: Slow runs, few new ones: a run picked now is still pausable a moment later.
ENGINE_ARGS = ("--pace", "0.1", "--rate", "0.5", "--max-concurrent", "3", "--seed", "7")


def engine_entries(runs_file: Path) -> dict:
    # The engine's plain rewrite can be caught half-way: read until a whole file is seen.
    for _ in range(100):
        try:
            return json.loads(runs_file.read_bytes())["runs"]
        except (ValueError, KeyError):
            time.sleep(0.01)
    raise AssertionError("the runs file never parsed")


@pytest.fixture
def live_fleet(postgres_url, serving_engine, fixture_now_ms):
    """(url, engine, a pausable run id of the engine, the test connection holding A's lock)."""
    engine = serving_engine(*ENGINE_ARGS)
    runs = engine_entries(engine.runs_file)
    make_postgres_engine(postgres_url, A, runs)
    make_postgres_engine(postgres_url, B, fixture_runs())
    session = psycopg.connect(postgres_url, autocommit=True)
    assert session.execute("SELECT pg_try_advisory_lock(%s)", (engine_lock_key(A),)).fetchone()[0]
    run_id = sorted(key for key, value in runs.items() if value["status"] in ("queued", "running"))[0]
    yield postgres_url, engine, run_id, session
    session.close()


def source_of(url, engine, tmp_path, now_ms, *, urls=None, token=None) -> PostgresSource:
    env = {"USER": "alice"}
    if token is not False:
        env["TANDEM_API_TOKEN"] = token or engine.token
    return PostgresSource(
        url, clock=ManualClock(now_ms), env=env, audit_owner=tmp_path / "postgres",
        engine_urls={A: engine.url} if urls is None else urls,
    )


def row_of(url: str, schema: str, run_id: str) -> tuple[str, str]:
    with psycopg.connect(url) as connection:
        return connection.execute(
            f'SELECT status, run_json FROM "{schema}".automation_runs WHERE run_id = %s', (run_id,)
        ).fetchone()


def engine_run(engine, run_id: str) -> dict:
    answer = httpx.get(f"{engine.url}/automations/v2/runs/{run_id}", headers={"Authorization": f"Bearer {engine.token}"})
    assert answer.status_code == 200
    return answer.json()["run"]


def test_a_live_engines_run_is_paused_through_its_api_and_its_schema_is_not_written(live_fleet, tmp_path, fixture_now_ms):
    url, engine, run_id, _ = live_fleet
    before = row_of(url, A, run_id)
    source = source_of(url, engine, tmp_path, fixture_now_ms)

    result = source.perform(ActionRequest(ActionKind.PAUSE, f"{A}/{run_id}", reason="fleet maintenance", actor="ops@test"))

    assert result.ok, result.message
    assert f"via the engine at {engine.url}" in result.message
    assert result.new_status in (RunStatus.PAUSED, RunStatus.PAUSING)
    assert engine_run(engine, run_id)["status"] in ("paused", "pausing")
    assert row_of(url, A, run_id) == before  # the engine owns its schema: not one byte of ours
    line = read_audit(tmp_path / "postgres")[-1]
    assert line["route"] == "engine" and line["engine"] == A and line["engine_url"] == engine.url
    assert line["result"] == "ok" and line["engine_status"] == 200 and line["reason"] == "fleet maintenance"


def test_a_refusal_from_the_live_engine_reaches_the_user_as_its_message(live_fleet, tmp_path, fixture_now_ms):
    url, engine, run_id, _ = live_fleet
    result = source_of(url, engine, tmp_path, fixture_now_ms).perform(ActionRequest(ActionKind.RESUME, f"{A}/{run_id}"))
    assert not result.ok and not result.unusable
    assert "Run is not paused" in result.message and "AUTOMATION_V2_RUN_NOT_PAUSED" in result.message
    line = read_audit(tmp_path / "postgres")[-1]
    assert line["result"] == "refused" and line["engine_status"] == 409 and line["engine_code"] == "AUTOMATION_V2_RUN_NOT_PAUSED"


def test_a_live_engine_whose_url_is_not_known_is_read_only_in_one_line(live_fleet, tmp_path, fixture_now_ms):
    url, engine, run_id, _ = live_fleet
    before = row_of(url, A, run_id)
    source = source_of(url, engine, tmp_path, fixture_now_ms, urls={})
    result = source.perform(ActionRequest(ActionKind.PAUSE, f"{A}/{run_id}"))
    assert not result.ok and result.unusable and "\n" not in result.message
    assert f"--engine-url {A}=URL" in result.message
    assert engine_run(engine, run_id)["status"] in ("queued", "running")
    assert row_of(url, A, run_id) == before
    line = read_audit(tmp_path / "postgres")[-1]
    assert line["route"] == "engine" and line["result"] == "failed" and line["engine"] == A


def test_a_wrong_token_is_refused_naming_where_the_token_came_from(live_fleet, tmp_path, fixture_now_ms):
    url, engine, run_id, _ = live_fleet
    result = source_of(url, engine, tmp_path, fixture_now_ms, token="not-the-token").perform(
        ActionRequest(ActionKind.PAUSE, f"{A}/{run_id}")
    )
    assert not result.ok and result.unusable
    assert "401" in result.message and "TANDEM_API_TOKEN" in result.message
    assert engine_run(engine, run_id)["status"] in ("queued", "running")


def test_no_token_is_a_refusal_and_no_call(live_fleet, tmp_path, fixture_now_ms, monkeypatch):
    url, engine, run_id, _ = live_fleet
    monkeypatch.setenv("HOME", str(tmp_path))  # no engine token file of the caller's
    result = source_of(url, engine, tmp_path, fixture_now_ms, token=False).perform(
        ActionRequest(ActionKind.PAUSE, f"{A}/{run_id}")
    )
    assert not result.ok and result.unusable and "no API token" in result.message


def test_an_engine_that_stopped_answering_is_a_refusal_and_nothing_is_written(live_fleet, tmp_path, fixture_now_ms):
    url, engine, run_id, _ = live_fleet
    before = row_of(url, A, run_id)
    engine.stop(kill=True)  # its session lock is still held: the fleet still calls it live
    result = source_of(url, engine, tmp_path, fixture_now_ms).perform(ActionRequest(ActionKind.PAUSE, f"{A}/{run_id}"))
    assert not result.ok and result.unusable
    assert "refused the connection" in result.message and "nothing was written" in result.message
    assert row_of(url, A, run_id) == before


def test_a_stopped_engine_of_the_same_fleet_is_still_acted_on_by_our_core(live_fleet, tmp_path, fixture_now_ms):
    url, engine, _, _ = live_fleet
    source = source_of(url, engine, tmp_path, fixture_now_ms)
    result = source.perform(ActionRequest(ActionKind.PAUSE, f"{B}/run-rn-0142", reason="core"))
    assert result.ok, result.message
    assert row_of(url, B, "run-rn-0142")[0] == "paused"
    assert read_audit(tmp_path / "postgres")[-1].get("route", "file") == "file"


def test_the_header_says_which_engines_act_through_their_api(live_fleet, tmp_path, fixture_now_ms):
    url, engine, _, session = live_fleet
    described = source_of(url, engine, tmp_path, fixture_now_ms).describe()
    assert described.route == Route.POSTGRES and "1 live (1 via API)" in described.summary
    session.execute("SELECT pg_advisory_lock(%s)", (engine_lock_key(B),))
    described = source_of(url, engine, tmp_path, fixture_now_ms).describe()
    assert described.route == Route.ENGINE and "where the URL is known" in described.summary
    described = source_of(url, engine, tmp_path, fixture_now_ms, urls={}).describe()
    assert described.route == Route.NONE and "--engine-url SCHEMA=URL" in described.why_read_only


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tandem_tui", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_the_cli_pauses_through_the_engine_named_by_schema_and_refuses_without_it(live_fleet, tmp_path):
    url, engine, run_id, _ = live_fleet
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update(TANDEM_STATE_DIR=str(tmp_path / "local"), TANDEM_API_TOKEN=engine.token)

    without = cli("pause", f"{A}/{run_id}", "--postgres", url, env=env)
    assert without.returncode == 2 and without.stderr.strip().count("\n") == 0
    assert f"--engine-url {A}=URL" in without.stderr

    plain = cli("pause", f"{A}/{run_id}", "--postgres", url, "--engine-url", engine.url, env=env)
    assert plain.returncode == 2 and f"--engine-url SCHEMA={engine.url}" in plain.stderr

    done = cli(
        "pause", f"{A}/{run_id}", "--postgres", url, "--engine-url", f"{B}=http://127.0.0.1:9",
        "--engine-url", f"{A}={engine.url}", "--reason", "x", env=env,
    )
    assert done.returncode == 0, done.stderr
    assert engine_run(engine, run_id)["status"] in ("paused", "pausing")


def test_engine_urls_by_schema_are_for_a_fleet_and_a_plain_one_for_the_other_sources(tmp_path):
    import argparse

    from tandem_tui.source.open import SourceOptionError, add_source_options, engine_urls_of, open_source

    parser = argparse.ArgumentParser()
    add_source_options(parser)
    args = parser.parse_args(
        ["--engine-url", f"{A}=http://127.0.0.1:1", "--engine-url", "http://127.0.0.1:2", "--engine-url", f"{B}=http://127.0.0.1:3/"]
    )
    assert engine_urls_of(args) == ("http://127.0.0.1:2", {A: "http://127.0.0.1:1", B: "http://127.0.0.1:3/"})
    with pytest.raises(SourceOptionError, match="--postgres"):
        open_source(parser.parse_args(["--state-dir", str(tmp_path), "--engine-url", f"{A}=http://127.0.0.1:1"]), env={})
