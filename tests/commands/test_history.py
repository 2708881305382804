"""`tandem-tui history RUN_ID`: lifecycle history from the hot file or its shards, on real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tandem_tui.cli import main as cli

SHARDS = Path("automation-runs/automation_v2_runs")


@pytest.fixture(autouse=True)
def wide_output(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)


def history_json(runs_file: Path, run_id: str, capsys) -> dict:
    assert cli(["history", run_id, "--runs-file", str(runs_file), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_history_of_a_hot_run_is_a_table_of_events_with_offsets(runs_file, capsys):
    assert cli(["history", "run-ir-0086", "--runs-file", str(runs_file)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "run run-ir-0086 · automation auto-invoice-reconcile · paused · hot · profile strict"
    assert lines[1].split()[:4] == ["time", "(UTC)", "offset", "event"]
    assert lines[2].split()[:4] == ["2026-11-23", "13:40:00", "+0s", "run_created"]
    last = lines[-1]
    assert last.split()[:4] == ["2026-11-23", "14:50:00", "+1h10m", "run_paused_stale_no_provider_activity"]
    assert "no provider activity for 15m" in last and "stale_reaped" in last
    assert '{"node_id": "reconcile", "idle_ms": 900000}' in last
    assert "effective_execution_profile" not in out
    assert len(lines) == 2 + 4


def test_markup_and_escape_sequences_from_the_file_are_shown_literally(runs_file, capsys):
    assert cli(["history", "run-ir-0085", "--runs-file", str(runs_file)]) == 0
    out = capsys.readouterr().out
    assert "reconcile failed: [bold]oops[/] \\x1b[31mred ledger total mismatch" in out
    assert "\x1b" not in out


def test_json_output_carries_the_hot_runs_events_exactly_as_stored(runs_file, capsys):
    stored = json.loads(runs_file.read_text())["runs"]["run-ir-0085"]
    payload = history_json(runs_file, "run-ir-0085", capsys)
    assert payload == {
        "run_id": "run-ir-0085",
        "archived": False,
        "status": "failed",
        "lifecycle_history": stored["checkpoint"]["lifecycle_history"],
    }
    assert payload["lifecycle_history"][-1]["x_future"] == {"severity": "page"}


def test_an_archived_run_is_read_from_its_shard(runs_file, capsys):
    shard = json.loads((runs_file.parent / SHARDS / "2026" / "10" / "run-rn-0120.json").read_text())
    payload = history_json(runs_file, "run-rn-0120", capsys)
    assert payload["archived"] is True
    assert payload["status"] == "completed"
    assert payload["lifecycle_history"] == shard["run"]["checkpoint"]["lifecycle_history"]


def test_an_archived_run_from_a_legacy_v0_shard_is_shown(runs_file, capsys):
    assert cli(["history", "run-etl-0290", "--runs-file", str(runs_file)]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("completed · archived · profile strict")


def test_an_archived_run_whose_id_needed_sanitizing_is_found(runs_file, capsys):
    payload = history_json(runs_file, "run:manual/hotfix#7", capsys)
    assert (payload["run_id"], payload["archived"], payload["status"]) == ("run:manual/hotfix#7", True, "cancelled")


def test_a_run_both_hot_and_archived_is_read_from_the_hot_file(runs_file, capsys):
    assert history_json(runs_file, "run-rn-0138", capsys)["archived"] is False


def test_a_nonterminal_recovered_context_run_in_history_is_not_found(runs_file, capsys):
    assert (runs_file.parent / SHARDS / "2026" / "11" / "run-ctx-0004.json").exists()
    assert cli(["history", "run-ctx-0004", "--runs-file", str(runs_file)]) == 1
    assert "run run-ctx-0004 not found" in capsys.readouterr().err


def test_an_unknown_run_exits_1_with_one_line_and_prints_nothing(runs_file, capsys):
    assert cli(["history", "run-nope", "--runs-file", str(runs_file), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"tandem-tui: run run-nope not found in {runs_file} or its history\n"


def test_a_missing_runs_file_exits_2(tmp_path, capsys):
    missing = tmp_path / "automation_v2_runs.json"
    assert cli(["history", "run-1", "--runs-file", str(missing)]) == 2
    assert capsys.readouterr().err == f"tandem-tui: {missing}: no such file\n"


def test_a_newer_schema_file_exits_2_naming_the_file(tmp_path, fixtures_dir, capsys):
    path = tmp_path / "automation_v2_runs.json"
    shutil.copyfile(fixtures_dir / "runs_newer_schema.json", path)
    assert cli(["history", "run-rn-0139", "--runs-file", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"tandem-tui: {path}: automation_v2_runs.json schema_version 2 is newer than supported version 1\n"
    )


def test_an_invalid_runs_file_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "automation_v2_runs.json"
    path.write_text('{"schema_version": 1, "runs": {"a":')
    assert cli(["history", "a", "--runs-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tandem-tui: {path}: failed to parse automation_v2_runs.json: ")
    assert err.count("\n") == 1


def test_an_unreadable_shard_exits_2_naming_the_shard(runs_file, capsys):
    shard = runs_file.parent / SHARDS / "2026" / "10" / "run-ir-0070.json"
    shard.write_text('{"schema_version": 7, "run": {}}')
    assert cli(["history", "run-ir-0070", "--runs-file", str(runs_file)]) == 2
    assert capsys.readouterr().err == (
        f"tandem-tui: {shard}: automation v2 run history shard schema_version 7 is newer than supported version 1\n"
    )


def test_a_run_without_events_says_so(tmp_path, capsys):
    path = tmp_path / "automation_v2_runs.json"
    record = {
        "run_id": "bare",
        "automation_id": "a",
        "trigger_type": "manual",
        "status": "queued",
        "created_at_ms": 1,
        "updated_at_ms": 1,
        "checkpoint": {},
    }
    path.write_text(json.dumps({"schema_version": 1, "runs": {"bare": record}}))
    assert cli(["history", "bare", "--runs-file", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["no lifecycle events"]
    assert history_json(path, "bare", capsys)["lifecycle_history"] == []


def test_a_recovered_corrupt_entry_shows_its_corrupt_checkpoint_event(tmp_path, fixtures_dir, capsys):
    path = tmp_path / "automation_v2_runs.json"
    shutil.copyfile(fixtures_dir / "runs_corrupt_entry.json", path)
    payload = history_json(path, "run-ir-0084", capsys)
    assert payload["status"] == "blocked"
    assert [e["event"] for e in payload["lifecycle_history"]] == ["run_blocked_corrupt_checkpoint"]


def test_the_command_line_runs_history_from_the_hot_file_or_a_shard(runs_file):
    result = subprocess.run(
        [sys.executable, "-m", "tandem_tui", "history", "run-rn-0120", "--runs-file", str(runs_file), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["archived"] is True
    top_level_option = subprocess.run(
        [sys.executable, "-m", "tandem_tui", "--runs-file", str(runs_file), "history", "run-sd-0054"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert top_level_option.returncode == 0, top_level_option.stderr
    assert top_level_option.stdout.startswith("run run-sd-0054 · automation auto-support-digest · cancelled · hot")
    missing = subprocess.run(
        [sys.executable, "-m", "tandem_tui", "history", "run-nope", "--runs-file", str(runs_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.startswith("tandem-tui: run run-nope not found")
