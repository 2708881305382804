"""`tandem-tui runs`: the run list with live queue reasons, on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tandem_tui.cli import main as cli

WS = "/srv/ws"


def record(run_id: str, status: str, created: int, *, workspace: str | None = None, **fields: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "run_id": run_id,
        "automation_id": f"auto-{run_id}",
        "trigger_type": "scheduled",
        "status": status,
        "created_at_ms": created,
        "updated_at_ms": created + 5,
        "checkpoint": {},
    }
    if workspace is not None:
        raw["automation_snapshot"] = {"workspace_root": workspace, "x_unknown": True}
    raw.update(fields)
    return raw


def write_runs(path: Path, *records: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"schema_version": 1, "runs": {r["run_id"]: r for r in records}}, indent=2))
    return path


@pytest.fixture
def busy_file(tmp_path: Path) -> Path:
    """One runner holding /srv/ws/a, runs queued behind it and for other reasons."""
    return write_runs(
        tmp_path / "automation_v2_runs.json",
        record("holder", "running", 1000, workspace=f"{WS}/a", detail="running node `draft` attempt 1"),
        record("behind", "queued", 2000, workspace=f"{WS}/a"),
        record(
            "limited",
            "queued",
            3000,
            workspace=f"{WS}/b",
            scheduler={"queue_reason": "rate_limit", "rate_limited_provider": "openai", "queued_at_ms": 3000},
        ),
        record(
            "backoff",
            "queued",
            4000,
            workspace=f"{WS}/c",
            scheduler={"queue_reason": "retry_backoff", "retry_after_ms": 4500, "queued_at_ms": 4000},
        ),
        record("free", "queued", 5000, workspace=f"{WS}/d"),
        record("old", "completed", 500, detail="done"),
    )


def test_runs_json_lists_every_run_oldest_first_with_its_queue_reason(busy_file, capsys):
    assert cli(["runs", "--runs-file", str(busy_file), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["run_id"] for row in listed] == ["old", "holder", "behind", "limited", "backoff", "free"]
    assert listed[2] == {
        "run_id": "behind",
        "automation_id": "auto-behind",
        "status": "queued",
        "queue_reason": "workspace_lock",
        "queue_detail": "workspace lock · holder",
        "workspace_root": f"{WS}/a",
        "created_at_ms": 2000,
        "updated_at_ms": 2005,
        "detail": None,
    }
    by_id = {row["run_id"]: row for row in listed}
    assert (by_id["limited"]["queue_reason"], by_id["limited"]["queue_detail"]) == ("rate_limit", "rate limit · openai")
    # retry_after_ms is long past: due.
    assert (by_id["backoff"]["queue_reason"], by_id["backoff"]["queue_detail"]) == ("retry_backoff", "retry due")
    assert (by_id["free"]["queue_reason"], by_id["free"]["queue_detail"]) == (None, "ready")
    assert (by_id["holder"]["queue_reason"], by_id["holder"]["queue_detail"]) == (None, None)
    assert by_id["old"]["workspace_root"] is None


def test_runs_reason_filter_keeps_only_queued_runs_waiting_for_that_reason(busy_file, capsys):
    assert cli(["runs", "--runs-file", str(busy_file), "--reason", "workspace_lock", "--json"]) == 0
    assert [row["run_id"] for row in json.loads(capsys.readouterr().out)] == ["behind"]
    assert cli(["runs", "--runs-file", str(busy_file), "--reason", "ready", "--json"]) == 0
    assert [row["run_id"] for row in json.loads(capsys.readouterr().out)] == ["free"]
    assert cli(["runs", "--runs-file", str(busy_file), "--reason", "capacity", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_runs_status_filter_keeps_only_that_status(busy_file, capsys):
    assert cli(["runs", "--runs-file", str(busy_file), "--status", "running", "--json"]) == 0
    assert [row["run_id"] for row in json.loads(capsys.readouterr().out)] == ["holder"]
    assert cli(["runs", "--runs-file", str(busy_file), "--status", "queued", "--reason", "rate_limit", "--json"]) == 0
    assert [row["run_id"] for row in json.loads(capsys.readouterr().out)] == ["limited"]


@pytest.mark.parametrize("option", [["--status", "sleeping"], ["--reason", "boredom"]])
def test_an_unknown_status_or_reason_is_a_usage_error(busy_file, capsys, option):
    with pytest.raises(SystemExit) as exit_info:
        cli(["runs", "--runs-file", str(busy_file), *option])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_the_table_shows_why_each_queued_run_waits(busy_file, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert cli(["runs", "--runs-file", str(busy_file)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["id", "automation", "status", "why", "waiting", "in", "status", "updated", "detail"]
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "lock · holder" in lines["behind"]
    assert "rate limit · openai" in lines["limited"]
    assert "retry due" in lines["backoff"]
    assert "ready" in lines["free"]
    assert "running node `draft` attempt 1" in lines["holder"]


def test_text_from_the_file_is_shown_literally_never_as_markup_or_escapes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    hostile = "[bold red]boom[/] \x1b[2J\x1b]0;pwned\x07 bell\x07 line\nbreak"
    path = write_runs(tmp_path / "runs.json", record("r1", "failed", 1000, detail=hostile))
    assert cli(["runs", "--runs-file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "[bold red]boom[/]" in out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J" in out
    assert "line break" in out


def test_an_empty_file_lists_no_runs(tmp_path, capsys):
    path = tmp_path / "runs.json"
    path.write_text("")
    assert cli(["runs", "--runs-file", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "no runs"
    assert cli(["runs", "--runs-file", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    "content",
    [None, "{not json", json.dumps({"schema_version": 2, "runs": {}}), json.dumps({"schema_version": 1})],
    ids=["missing", "invalid-json", "newer-schema", "no-runs-key"],
)
@pytest.mark.parametrize("command", ["runs", "status"])
def test_an_unusable_file_is_one_line_and_exit_2(tmp_path, capsys, content, command):
    path = tmp_path / "automation_v2_runs.json"
    if content is not None:
        path.write_text(content)
    assert cli([command, "--runs-file", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tandem-tui: ")
    assert "Traceback" not in captured.err


def test_runs_on_the_fixture_file_say_why_each_queued_run_waits(fixtures_dir, capsys, monkeypatch):
    monkeypatch.delenv("TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS", raising=False)
    assert cli(["runs", "--runs-file", str(fixtures_dir / "runs_v1.json"), "--status", "queued", "--json"]) == 0
    details = {row["run_id"]: (row["queue_reason"], row["queue_detail"]) for row in json.loads(capsys.readouterr().out)}
    retry = details.pop("run-cl-0033")
    assert retry[0] == "retry_backoff"
    # Due one minute after the fixture's "now"; a countdown only on a clock set before it.
    assert retry[1] == "retry due" or retry[1].startswith("retry backoff · ")
    assert details == {
        "run-ir-0089": ("rate_limit", "rate limit · anthropic"),
        "run-da-0019": ("workspace_lock", "workspace lock · run-rn-0142"),
        "run-ib-0007": ("capacity", "capacity 3/8"),
        "run-ib-0008": (None, "ready"),
    }


def tandem_tui(*argv: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-m", "tandem_tui", *argv], capture_output=True, text=True, cwd=root, timeout=60
    )


def test_python_m_tandem_tui_runs_and_status_read_the_file_named_before_or_after_the_command(busy_file):
    listed = tandem_tui("runs", "--runs-file", str(busy_file), "--reason", "rate_limit", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["run_id"] for row in json.loads(listed.stdout)] == ["limited"]
    status = tandem_tui("--runs-file", str(busy_file), "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert (report["active_runs"], report["queued_runs_by_reason"]) == (1, {"rate_limit": 1, "retry_backoff": 1, "workspace_lock": 1})


def test_python_m_tandem_tui_on_a_missing_file_says_so_in_one_line_and_exits_2(tmp_path):
    for command in ("runs", "status"):
        done = tandem_tui(command, "--runs-file", str(tmp_path / "absent.json"))
        assert done.returncode == 2
        assert done.stdout == ""
        assert done.stderr.splitlines() == [f"tandem-tui: {tmp_path / 'absent.json'}: no such file"]


def test_the_table_is_cut_to_the_terminal_width_without_trailing_spaces(busy_file, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    assert cli(["runs", "--runs-file", str(busy_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7
    assert all(len(line) <= 60 and line == line.rstrip() for line in lines)
    assert lines[2].endswith("…")  # the holder's detail did not fit


def test_wide_characters_are_measured_in_terminal_cells(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    path = write_runs(
        tmp_path / "runs.json",
        record("宽宽", "failed", 1000, detail="x"),
        record("ab", "failed", 2000, detail="y"),
    )
    assert cli(["runs", "--runs-file", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # "宽宽" takes four cells like "ab  ": the next column starts at the same cell.
    assert lines[1].index("auto-") + 2 == lines[2].index("auto-")


def test_a_state_directory_names_the_runs_file_as_the_server_finds_it(busy_file, tmp_path, capsys):
    state_dir = tmp_path / "state"
    (state_dir / "data").mkdir(parents=True)
    busy_file.rename(state_dir / "data" / "automation_v2_runs.json")
    assert cli(["runs", "--state-dir", str(state_dir), "--reason", "ready", "--json"]) == 0
    assert [row["run_id"] for row in json.loads(capsys.readouterr().out)] == ["free"]


def test_a_runs_file_and_a_state_directory_together_are_one_line_and_exit_2(busy_file, tmp_path, capsys):
    assert cli(["status", "--runs-file", str(busy_file), "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "tandem-tui: give one source, not --runs-file and --state-dir\n"
