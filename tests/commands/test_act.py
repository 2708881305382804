"""`tandem-tui pause|resume|requeue|release-lock`: exit codes, output and files, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem_tui.cli import main as cli
from tandem_tui.source.file.audit import read_audit


def record(run_id: str, status: str, **fields) -> dict:
    return {
        "run_id": run_id,
        "automation_id": f"auto-{run_id}",
        "trigger_type": "manual",
        "status": status,
        "checkpoint": {},
        "created_at_ms": 1_000,
        "updated_at_ms": 2_000,
        "automation_snapshot": {"workspace_root": "/srv/ws/a"},
        "x_server_only": [1, 2],
        **fields,
    }


@pytest.fixture
def runs_file(tmp_path: Path) -> Path:
    path = tmp_path / "automation_v2_runs.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "runs": {
                    "r-run": record("r-run", "running"),
                    "r-paused": record("r-paused", "paused", pause_reason="lunch"),
                    "r-failed": record(
                        "r-failed",
                        "failed",
                        finished_at_ms=2_000,
                        checkpoint={"last_failure": {"node_id": "draft", "reason": "boom", "failed_at_ms": 1_900}},
                        automation_snapshot={"flow": {"nodes": [{"node_id": "draft"}]}},
                    ),
                },
            },
            indent=2,
        )
    )
    return path


def runs(path: Path) -> dict:
    return json.loads(path.read_text())["runs"]


def test_pause_prints_a_short_summary_and_exits_zero(runs_file, capsys):
    code = cli(["pause", "r-run", "--runs-file", str(runs_file), "--reason", "deploy", "--actor", "ops"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert "r-run" in out and "running -> paused" in out and "by ops" in out
    assert runs(runs_file)["r-run"]["status"] == "paused"
    assert runs(runs_file)["r-run"]["x_server_only"] == [1, 2]


def test_json_output_carries_the_updated_run(runs_file, capsys):
    code = cli(["resume", "r-paused", "--runs-file", str(runs_file), "--json", "--actor", "ops"])
    out, _ = capsys.readouterr()
    assert code == 0
    payload = json.loads(out)
    assert payload["ok"] is True
    assert (payload["action"], payload["previous_status"], payload["new_status"]) == ("resume", "paused", "queued")
    assert payload["run"] == runs(runs_file)["r-paused"]
    assert payload["run"]["checkpoint"]["lifecycle_history"][-1]["metadata"]["actor"] == "ops"


def test_release_lock_and_requeue_are_wired_to_their_actions(runs_file, capsys):
    assert cli(["release-lock", "r-run", "--runs-file", str(runs_file)]) == 0
    assert cli(["requeue", "r-failed", "--runs-file", str(runs_file)]) == 0
    after = runs(runs_file)
    assert after["r-run"]["stop_kind"] == "operator_stopped"
    assert after["r-failed"]["status"] == "queued"
    assert [e["action"] for e in read_audit(runs_file)] == ["release_lock", "requeue"]


def test_a_refused_action_exits_one_with_one_line_and_changes_nothing(runs_file, capsys):
    before = runs_file.read_bytes()
    code = cli(["resume", "r-run", "--runs-file", str(runs_file)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err == "tandem-tui: cannot resume run r-run: it is running; only a paused run can be resumed\n"
    assert runs_file.read_bytes() == before


def test_a_refusal_with_json_also_prints_the_refusal_object(runs_file, capsys):
    code = cli(["pause", "r-failed", "--runs-file", str(runs_file), "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    assert json.loads(out)["ok"] is False
    assert err.count("\n") == 1


def test_an_unknown_run_exits_one(runs_file, capsys):
    assert cli(["pause", "nope", "--runs-file", str(runs_file)]) == 1
    assert capsys.readouterr().err == "tandem-tui: run nope not found\n"


def test_a_stale_expectation_is_refused(runs_file, capsys):
    before = runs_file.read_bytes()
    assert cli(["pause", "r-run", "--runs-file", str(runs_file), "--expect-updated-at", "1999"]) == 1
    assert "changed since you looked (updated_at_ms 1999 -> 2000, status now running)" in capsys.readouterr().err
    assert runs_file.read_bytes() == before
    assert cli(["pause", "r-run", "--runs-file", str(runs_file), "--expect-updated-at", "2000"]) == 0


@pytest.mark.parametrize(
    "content,expected",
    [(None, "no runs file"), ('{"schema_version": 4, "runs": {}}', "newer than supported"), ("{oops", "failed to parse")],
)
def test_an_unusable_runs_file_exits_two_with_one_line(tmp_path, capsys, content, expected):
    path = tmp_path / "automation_v2_runs.json"
    if content is not None:
        path.write_text(content)
    assert cli(["pause", "r-run", "--runs-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    if content is not None:
        assert path.read_text() == content


def test_a_malformed_expectation_is_a_usage_error(runs_file, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(["pause", "r-run", "--runs-file", str(runs_file), "--expect-updated-at", "soon"])
    assert exit_info.value.code == 2


def test_the_action_sub_commands_are_the_registrys_entries_with_its_help():
    from tandem_tui.cli import build_parser
    from tandem_tui.domain.actions import ACTIONS

    for spec in ACTIONS.values():
        args = build_parser(spec.cli_name).parse_args([spec.cli_name, "r-1"])
        assert args.action_kind == spec.kind
    # The top-level --help lists each action with the registry's help, without importing it.
    parser = build_parser()
    subcommands = next(action for action in parser._actions if action.__class__.__name__ == "_SubParsersAction")
    helps = {choice.dest: choice.help for choice in subcommands._choices_actions}
    assert {spec.cli_name: spec.help for spec in ACTIONS.values()}.items() <= helps.items()
