"""Waiting for another writer's lock is said at once, with its pid and how long we wait."""

import json
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
