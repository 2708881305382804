"""A runs-file key that differs from its record's run_id: every view names the run by
its run_id, so an action by that name must never change another run."""

import json

from tandem_tui.cli import main as cli

NOW_RECORD = {
    "automation_id": "auto",
    "trigger_type": "manual",
    "created_at_ms": 1,
    "updated_at_ms": 1,
    "checkpoint": {},
}


def write(path, runs):
    path.write_text(json.dumps({"schema_version": 1, "runs": runs}, indent=2))


def record(run_id, status="running"):
    return {"run_id": run_id, "status": status, **NOW_RECORD}


def test_an_action_by_the_name_views_show_is_refused_when_the_key_differs(tmp_path, capsys):
    path = tmp_path / "automation_v2_runs.json"
    write(path, {"run-rn-0142": record("run-sd-0055"), "run-sd-0099": record("run-sd-0099")})
    before = path.read_bytes()

    assert cli(["pause", "run-sd-0055", "--runs-file", str(path)]) == 1
    assert "filed under the key 'run-rn-0142'" in capsys.readouterr().err
    assert cli(["pause", "run-rn-0142", "--runs-file", str(path)]) == 1
    assert "the entry keyed 'run-rn-0142' holds run 'run-sd-0055'" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_two_entries_with_one_run_id_are_refused_naming_both_keys(tmp_path, capsys):
    path = tmp_path / "automation_v2_runs.json"
    write(path, {"a": record("same"), "b": record("same")})
    before = path.read_bytes()

    assert cli(["pause", "same", "--runs-file", str(path)]) == 1
    assert "2 entries of the runs file carry this run_id (keys 'a', 'b')" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_a_run_whose_key_and_run_id_agree_is_acted_on(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    write(path, {"run-1": record("run-1"), "k": record("other")})

    assert cli(["pause", "run-1", "--runs-file", str(path), "--actor", "op"]) == 0
    assert json.loads(path.read_text())["runs"]["run-1"]["status"] == "paused"
