"""Acting on the runs of a live engine: real engine processes on 127.0.0.1, the real CLI.

The engine (``tandem-tui simulate --serve 0``) keeps its runs in memory and rewrites
the runs file whole at every save, as the Tandem engine does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tandem_tui.domain.actions import ActionKind, ActionRequest
from tandem_tui.source.base import Route
from tandem_tui.source.file.audit import read_audit
from tandem_tui.source.file.source import FileSource
from tandem_tui.source.open import file_source

#: Slow runs, few new ones: a run picked now is still pausable a moment later.
ENGINE_ARGS = ("--pace", "0.1", "--rate", "2", "--max-concurrent", "3", "--seed", "5")


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tandem_tui", *args], capture_output=True, text=True, env=env, timeout=60
    )


def whole_bytes(runs_file: Path) -> bytes:
    # The engine's plain rewrite can be caught half-way: read until a whole file is seen.
    for _ in range(100):
        data = runs_file.read_bytes()
        try:
            json.loads(data)["runs"]
        except (ValueError, KeyError):
            time.sleep(0.01)
        else:
            return data
    raise AssertionError("the runs file never parsed")


def entries(runs_file: Path) -> dict:
    return json.loads(whole_bytes(runs_file))["runs"]


def pausable(runs_file: Path) -> str:
    runs = entries(runs_file)
    return sorted(key for key, value in runs.items() if value["status"] in ("queued", "running"))[0]


def wait_for_saves(runs_file: Path, count: int, timeout: float = 30) -> list[dict]:
    """Each of the next ``count`` distinct contents the engine saves, parsed."""
    seen: list[dict] = []
    last = runs_file.stat().st_mtime_ns
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        assert time.monotonic() < deadline, f"only {len(seen)} saves seen"
        mtime = runs_file.stat().st_mtime_ns
        if mtime != last:
            last = mtime
            seen.append(entries(runs_file))
        time.sleep(0.02)
    return seen


def test_the_old_way_an_action_written_to_the_file_behind_a_live_engine_is_gone_after_its_next_save(serving_engine):
    engine = serving_engine(*ENGINE_ARGS)
    run_id = pausable(engine.runs_file)
    request = ActionRequest(kind=ActionKind.PAUSE, run_id=run_id, reason="behind its back", actor="ops@test")

    result = FileSource(engine.runs_file).perform(request)  # our core writes the file directly
    assert result.ok, result.message

    saves = wait_for_saves(engine.runs_file, 2)
    assert saves[-1][run_id]["status"] != "paused"
    assert "behind its back" not in json.dumps(saves[-1][run_id])


def test_a_pause_through_the_cli_lands_in_the_engine_and_stays_after_ten_saves(serving_engine):
    engine = serving_engine(*ENGINE_ARGS)
    run_id = pausable(engine.runs_file)

    done = cli("pause", run_id, "--state-dir", str(engine.state_dir), "--reason", "x", "--actor", "ops@test", env=engine.env())

    assert done.returncode == 0, done.stderr
    assert "via the engine" in done.stdout
    for saved in wait_for_saves(engine.runs_file, 10):
        assert saved[run_id]["status"] == "paused"
        assert saved[run_id]["pause_reason"] == "x"
    [line] = read_audit(engine.runs_file)
    assert (line["route"], line["result"], line["engine_status"], line["actor"]) == ("engine", "ok", 200, "ops@test")


def test_an_engine_that_goes_down_between_detection_and_the_action_is_a_refusal_that_writes_nothing(serving_engine):
    engine = serving_engine(*ENGINE_ARGS)
    source = file_source(engine.runs_file, env=engine.env())
    assert source.describe().route == Route.ENGINE  # detected live
    run_id = pausable(engine.runs_file)
    engine.stop(kill=True)
    before = engine.runs_file.read_bytes()

    result = source.perform(ActionRequest(kind=ActionKind.PAUSE, run_id=run_id, actor="ops@test"))

    assert not result.ok and result.unusable
    assert "refused the connection" in result.message and "nothing was written" in result.message
    assert engine.runs_file.read_bytes() == before
    [line] = read_audit(engine.runs_file)
    assert (line["route"], line["result"]) == ("engine", "failed")
    # Looked at again, the engine is gone: the next action takes the file route.
    assert source.describe().route == Route.FILE


def test_a_wrong_token_is_refused_naming_where_the_token_came_from_with_exit_2(serving_engine, tmp_path):
    engine = serving_engine(*ENGINE_ARGS)
    wrong = tmp_path / "wrong-token"
    wrong.write_text("tk_not_the_engines\n")
    run_id = pausable(engine.runs_file)

    done = cli("pause", run_id, "--state-dir", str(engine.state_dir), "--token-file", str(wrong), env=engine.env())

    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "401" in line and f"--token-file {wrong}" in line and "tk_not_the_engines" not in line
    [audit] = read_audit(engine.runs_file)
    assert (audit["route"], audit["result"], audit["engine_status"]) == ("engine", "failed", 401)


def test_the_engines_409_reaches_the_user_as_its_message_with_exit_1(serving_engine):
    engine = serving_engine(*ENGINE_ARGS)
    run_id = pausable(engine.runs_file)
    assert cli("pause", run_id, "--state-dir", str(engine.state_dir), env=engine.env()).returncode == 0

    again = cli("pause", run_id, "--state-dir", str(engine.state_dir), env=engine.env())

    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"tandem-tui: cannot pause run {run_id}: the engine says Run is not pausable (AUTOMATION_V2_RUN_NOT_PAUSABLE)"
    )
    lines = read_audit(engine.runs_file)
    assert [(line["result"], line["engine_status"], line["engine_code"]) for line in lines] == [
        ("ok", 200, None),
        ("refused", 409, "AUTOMATION_V2_RUN_NOT_PAUSABLE"),
    ]


def test_release_lock_on_a_live_engine_is_refused_suggesting_pause(serving_engine):
    engine = serving_engine(*ENGINE_ARGS)
    run_id = pausable(engine.runs_file)

    done = cli("release-lock", run_id, "--state-dir", str(engine.state_dir), env=engine.env())

    assert done.returncode == 1
    assert "no release-lock action" in done.stderr and "pause" in done.stderr


def test_a_live_engine_without_a_token_is_read_only_and_an_action_exits_2(serving_engine, tmp_path):
    engine = serving_engine(*ENGINE_ARGS)
    # The runs file copied elsewhere: no token file beside it, none in the environment.
    elsewhere = tmp_path / "elsewhere" / "automation_v2_runs.json"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(whole_bytes(engine.runs_file))  # not a copy caught mid-save
    env = engine.env(HOME=str(tmp_path / "home"))
    source = file_source(elsewhere, env=env)
    assert source.describe().summary == "engine live · no token: read-only"

    done = cli("pause", pausable(elsewhere), "--runs-file", str(elsewhere), env=env)

    assert done.returncode == 2
    assert "no API token" in done.stderr


def test_with_the_engine_stopped_actions_take_the_file_route_as_before(serving_engine):
    engine = serving_engine(*ENGINE_ARGS)
    engine.stop()  # a clean stop: the last save is whole
    run_id = pausable(engine.runs_file)

    done = cli("pause", run_id, "--state-dir", str(engine.state_dir), "--reason", "offline", env=engine.env())

    assert done.returncode == 0, done.stderr
    assert entries(engine.runs_file)[run_id]["status"] == "paused"
    [line] = read_audit(engine.runs_file)
    assert (line["route"], line["result"]) == ("file", "ok")


def test_status_json_adds_the_engines_own_metrics_beside_ours(serving_engine):
    engine = serving_engine(*ENGINE_ARGS)

    done = cli("status", "--json", "--runs-file", str(engine.runs_file), env=engine.env())

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["engine_metrics"]) == {
        "active_runs", "queued_runs_by_reason", "admitted_total", "completed_total", "avg_wait_ms", "p95_wait_ms",
    }
    assert "active_runs" in report  # ours, beside


def test_status_json_has_no_engine_metrics_without_a_live_engine(runs_file):
    done = cli("status", "--json", "--runs-file", str(runs_file), env={"PATH": "/usr/bin:/bin", "HOME": str(runs_file.parent)})
    assert done.returncode == 0, done.stderr
    assert "engine_metrics" not in json.loads(done.stdout)


def test_the_engine_command_says_live_how_it_knows_where_the_token_came_from_and_the_route(serving_engine):
    engine = serving_engine(*ENGINE_ARGS)

    done = cli("engine", "--json", "--state-dir", str(engine.state_dir), env=engine.env())

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["engine"]["live"] is True and report["engine"]["url"] == engine.url
    assert report["engine"]["how_known"].endswith("/global/health answered")
    assert report["token"] == {"found": True, "from": f"the engine's token file {engine.token_file}"}
    assert (report["route"], report["summary"]) == ("engine", "engine live · actions via API")
    assert engine.token not in done.stdout
