"""Waiting for another writer's lock is said at once, with its pid and how long we wait."""

import json
import os
import select
import subprocess
import sys

from tandem_tui.domain.actions import ActionKind, ActionRequest
from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.file.perform import perform
from tandem_tui.source.file.transaction import DEFAULT_LOCK_TIMEOUT_S, lock_path, lock_timeout_for

HOLD = (
    "import sys\n"
    "from tandem_tui.source.file.transaction import writer_lock\n"
    "with writer_lock(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.readline()\n"
)


def test_an_action_that_must_wait_says_who_holds_the_lock_before_it_waits(runs_file, fixture_now_ms):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(runs_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    told: list[str] = []

    def on_wait(line: str) -> None:
        told.append(line)
        # Only now let the holder go: the line came while the lock was still held.
        holder.stdin.write("go\n")
        holder.stdin.flush()

    try:
        assert holder.stdout.readline().strip() == "held"
        assert lock_path(runs_file).read_text().strip() == str(holder.pid)
        request = ActionRequest(kind=ActionKind.PAUSE, run_id="run-rn-0142", reason="x", actor="op")
        result = perform(runs_file, request, clock=ManualClock(fixture_now_ms), on_wait=on_wait)
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)

    assert result.ok, result.message
    assert len(told) == 1
    assert f"another writer (pid {holder.pid}) holds automation_v2_runs.json.lock" in told[0]
    assert "waiting up to" in told[0]
    assert json.loads(runs_file.read_text())["runs"]["run-rn-0142"]["status"] == "paused"


def test_the_lock_wait_grows_with_the_file(tmp_path):
    small, big = tmp_path / "small.json", tmp_path / "big.json"
    small.write_text("{}")
    big.write_bytes(b" " * 100_000_000)
    assert lock_timeout_for(small) < DEFAULT_LOCK_TIMEOUT_S + 1
    assert lock_timeout_for(big) >= 50


def _tandem_tui(*args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    # No engine answers here: the action takes the writer lock itself.
    env["TANDEM_ENGINE_URL"] = "http://127.0.0.1:9"
    return subprocess.Popen(
        [sys.executable, "-m", "tandem_tui", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _line_within(stream, seconds: float) -> str | None:
    ready, _, _ = select.select([stream], [], [], seconds)
    return stream.readline() if ready else None


def test_pause_from_the_shell_says_at_once_on_stderr_who_holds_the_lock(runs_file):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(runs_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        action = _tandem_tui("pause", "run-rn-0142", "--runs-file", str(runs_file), "--reason", "x", "--actor", "op")
        # Said while the lock is still held (well before the 10 s wait would end).
        line = _line_within(action.stderr, 8)
        assert line is not None, "no word on stderr while waiting for the lock"
        assert f"another writer (pid {holder.pid}) holds automation_v2_runs.json.lock" in line
        assert "waiting up to" in line
        assert action.poll() is None
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    out, err = action.communicate(timeout=30)
    assert action.returncode == 0, err
    assert "pause" in out
    assert json.loads(runs_file.read_text())["runs"]["run-rn-0142"]["status"] == "paused"


def test_an_action_that_need_not_wait_says_nothing_about_a_lock(runs_file):
    action = _tandem_tui("pause", "run-rn-0142", "--runs-file", str(runs_file), "--reason", "x", "--actor", "op")
    out, err = action.communicate(timeout=30)
    assert action.returncode == 0, err
    assert "holds" not in err and "waiting" not in err
