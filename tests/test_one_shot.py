"""A one-shot command leaves what it read to its process's end; nothing else holds data.

The program is run as a real process (``cli.run``, what ``tandem-tui`` and ``python -m
tandem_tui`` call) and asked afterwards what it holds."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import pytest

from tandem_tui import cli, one_shot
from tandem_tui.domain.actions import ActionKind, ActionRequest
from tandem_tui.source.file.source import FileSource

RUNNING = "run-rn-0142"  # running in the fixture

#: The program, then what it holds once its command returned (the last line).
PROGRAM = """
import gc, sys
from tandem_tui import cli, one_shot
sys.argv = ["tandem-tui", *sys.argv[1:]]
code = cli.run()
kinds = sorted({type(data).__name__ for data in one_shot.held()})
print("HELD", code, one_shot.holding(), kinds, gc.get_freeze_count() > 0)
"""


def program(*args: str, errors: str = "") -> tuple[str, str]:
    """What the program printed, and what it held after; ``errors`` is its whole stderr."""
    done = subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, timeout=60)
    assert done.stderr == errors
    output, _, held = done.stdout.rstrip("\n").rpartition("\n")
    return output, held


@pytest.fixture
def fresh_state(monkeypatch):
    """This test process as if nothing had set the flags yet, restored afterwards."""
    monkeypatch.setattr(one_shot, "_program", False)
    monkeypatch.setattr(one_shot, "_ending", False)
    monkeypatch.setattr(one_shot, "_kept", [])


def test_status_run_as_the_program_prints_in_full_and_holds_its_snapshot(runs_file):
    output, held = program("status", "--json", "--runs-file", str(runs_file))

    assert json.loads(output)["runs_by_status"]["running"] >= 1
    assert held == "HELD 0 True ['Snapshot'] True"


def test_pause_run_as_the_program_holds_the_parsed_file_and_writes_it(runs_file):
    output, held = program("pause", RUNNING, "--reason", "x", "--runs-file", str(runs_file))

    assert output.startswith(f"pause {RUNNING}: running -> paused")
    assert held == "HELD 0 True ['RunsDocument'] True"
    assert json.loads(runs_file.read_text())["runs"][RUNNING]["status"] == "paused"


def test_history_run_as_the_program_holds_the_snapshot_it_searched(runs_file):
    output, held = program("history", RUNNING, "--json", "--runs-file", str(runs_file))

    assert json.loads(output)["run_id"] == RUNNING
    assert held == "HELD 0 True ['Snapshot'] True"


def test_a_refused_action_run_as_the_program_exits_as_before(runs_file):
    before = runs_file.read_bytes()

    refusal = f"tandem-tui: cannot resume run {RUNNING}: it is running; only a paused run can be resumed\n"
    output, held = program("resume", RUNNING, "--runs-file", str(runs_file), errors=refusal)

    assert output == ""
    assert held == "HELD 1 True ['RunsDocument'] True"
    assert runs_file.read_bytes() == before


def test_main_called_in_a_longer_process_holds_nothing(runs_file, fresh_state, capsys):
    assert cli.main(["status", "--json", "--runs-file", str(runs_file)]) == 0

    assert not one_shot.holding()
    assert one_shot.held() == ()


def test_an_action_of_a_process_that_goes_on_is_not_held(runs_file, fresh_state):
    # The console is started as the program, but its actions must free what they parse:
    # it never says its command ends the process.
    one_shot.started_from_command_line()
    source = FileSource(runs_file)

    result = source.perform(ActionRequest(kind=ActionKind.PAUSE, run_id=RUNNING, reason="x"))

    assert result.ok
    assert not one_shot.holding()
    assert one_shot.held() == ()


def test_keep_holds_only_once_the_program_says_its_command_ends_it(fresh_state):
    class Data:
        pass

    one_shot.command_ends_process()  # not the program yet: still nothing held
    one_shot.keep_until_exit(Data())
    assert one_shot.held() == ()

    one_shot.started_from_command_line()
    one_shot.command_ends_process()
    frozen_before = gc.get_freeze_count()
    one_shot.keep_until_exit(Data())

    assert [type(data) for data in one_shot.held()] == [Data]
    assert gc.get_freeze_count() > frozen_before
    gc.unfreeze()  # back into this test process's collections
