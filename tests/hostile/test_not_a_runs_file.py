"""Something other than a regular file at the runs-file path: one line, at once, never a
hang, and no trace left behind."""

import os
import subprocess
import sys

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.file.watcher import RunsWatcher

NOW = 1_795_446_000_000
COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["runs"],
    ["history", "run-1"],
    ["pause", "run-1", "--reason", "x"],
    ["requeue", "run-1"],
]


def run_cli(args, timeout=20):
    """The real command in its own process: a hang shows as a timeout, not a stuck suite."""
    return subprocess.run(
        [sys.executable, "-m", "tandem_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_fifo_at_the_runs_file_path_is_refused_in_one_line_without_hanging(fifo, args):
    result = run_cli([*args, "--runs-file", str(fifo)])

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "named pipe (FIFO), not a regular file" in result.stderr
    assert str(fifo) in result.stderr
    assert "Traceback" not in result.stderr


def test_an_action_on_a_fifo_leaves_no_lock_file_or_temp_file(fifo):
    run_cli(["pause", "run-1", "--runs-file", str(fifo)])
    assert sorted(p.name for p in fifo.parent.iterdir()) == [fifo.name]


def test_the_watcher_reports_a_fifo_as_stale_at_once(fifo):
    snapshot = RunsWatcher(fifo, clock=ManualClock(NOW)).load()
    assert snapshot.freshness.stale
    assert "named pipe (FIFO)" in snapshot.freshness.error
    assert not snapshot.freshness.missing


def test_a_symlink_loop_says_what_it_is(tmp_path):
    loop = tmp_path / "automation_v2_runs.json"
    loop.symlink_to(loop)

    result = run_cli(["status", "--runs-file", str(loop)])

    assert result.returncode == 2
    assert result.stderr == f"tandem-tui: {loop}: a symbolic link loop, not a runs file\n"
    snapshot = RunsWatcher(loop, clock=ManualClock(NOW)).load()
    assert "symbolic link loop" in snapshot.freshness.error
    assert not snapshot.freshness.missing


def test_a_directory_given_as_the_runs_file_suggests_state_dir(tmp_path):
    result = run_cli(["runs", "--runs-file", str(tmp_path)])

    assert result.returncode == 2
    assert result.stderr == f"tandem-tui: {tmp_path}: is a directory, not a runs file; did you mean --state-dir?\n"


def test_an_action_on_a_missing_runs_file_leaves_no_lock_file(tmp_path):
    missing = tmp_path / "automation_v2_runs.json"

    result = run_cli(["resume", "run-1", "--runs-file", str(missing)])

    assert result.returncode == 2
    assert list(tmp_path.iterdir()) == []
