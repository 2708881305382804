"""A value nested hundreds of levels deep inside a record: an action on that run changes
nothing and says why in one line; actions on other runs write it back exactly."""

import json

from tandem_tui.cli import main as cli


def nested(depth):
    value = "bottom"
    for _ in range(depth):
        value = {"x": value}
    return value


def write(path, runs):
    path.write_text(json.dumps({"schema_version": 1, "runs": runs}, indent=2))


def record(run_id, **extra):
    return {
        "run_id": run_id,
        "automation_id": "auto",
        "trigger_type": "manual",
        "status": "running",
        "created_at_ms": 1,
        "updated_at_ms": 1,
        "checkpoint": {},
        **extra,
    }


def test_an_action_on_a_run_with_a_300_deep_value_is_refused_and_changes_nothing(tmp_path, capsys):
    path = tmp_path / "automation_v2_runs.json"
    write(path, {"deep": record("deep", learning_notes=nested(300))})
    before = path.read_bytes()

    assert cli(["pause", "deep", "--runs-file", str(path), "--actor", "op"]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nested too deep" in err and "nothing changed" in err
    assert path.read_bytes() == before


def test_an_action_on_another_run_keeps_the_deep_value_exactly(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    write(path, {"deep": record("deep", learning_notes=nested(300)), "plain": record("plain")})

    assert cli(["pause", "plain", "--runs-file", str(path), "--actor", "op"]) == 0

    runs = json.loads(path.read_text())["runs"]
    assert runs["deep"]["learning_notes"] == nested(300)
    assert runs["plain"]["status"] == "paused"
