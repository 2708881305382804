"""The audit trail is complete: a SIGKILL at any point, a busy lock or an unusable file
still leaves one entry per attempt saying how it ended."""

import json
import os
import signal
import subprocess
import sys

from tandem_tui.source.file.audit import read_audit, read_audit_lines

RUN = "run-rn-0142"  # running in the fixture
OTHER = "run-rn-0141"


def act(runs_file, *args, crash_at=None):
    env = {**os.environ, "USER": "op"}
    if crash_at is not None:
        env["TANDEM_TUI_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "tandem_tui", *args, "--runs-file", str(runs_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def status_of(runs_file, run_id):
    return json.loads(runs_file.read_text())["runs"][run_id]["status"]


def test_a_kill_between_the_write_and_the_audit_line_is_recovered_from_the_runs_events(runs_file):
    killed = act(runs_file, "pause", RUN, "--reason", "x", crash_at="before-outcome")

    assert killed.returncode == -signal.SIGKILL
    assert status_of(runs_file, RUN) == "paused"
    assert [e["result"] for e in read_audit(runs_file)] == ["interrupted"]

    act(runs_file, "pause", OTHER)

    first, second = read_audit(runs_file)
    assert (first["run_id"], first["action"], first["result"]) == (RUN, "pause", "ok")
    assert "the run's events show the action was done" in first["message"]
    assert second["run_id"] == OTHER
    assert [line["result"] for line in read_audit_lines(runs_file)][:3] == ["intent", "intent", "ok"]


def test_a_kill_before_the_write_is_recovered_as_failed_and_the_run_is_unchanged(runs_file):
    before = runs_file.read_bytes()

    killed = act(runs_file, "pause", RUN, crash_at="after-intent")

    assert killed.returncode == -signal.SIGKILL
    assert runs_file.read_bytes() == before
    act(runs_file, "pause", OTHER)
    first = read_audit(runs_file)[0]
    assert (first["run_id"], first["result"]) == (RUN, "failed")
    assert "died before changing the run" in first["message"]


def test_an_unusable_runs_file_is_audited_as_failed(runs_file):
    runs_file.write_text('{"schema_version": 1, "runs": {')

    result = act(runs_file, "resume", RUN)

    assert result.returncode == 2
    (entry,) = read_audit(runs_file)
    assert (entry["action"], entry["result"]) == ("resume", "failed")
    assert str(runs_file) in entry["message"]


def test_a_busy_lock_is_audited_as_failed(runs_file):
    hold = (
        "import sys\n"
        "from tandem_tui.source.file.transaction import writer_lock\n"
        "with writer_lock(sys.argv[1]):\n"
        "    print('held', flush=True); sys.stdin.readline()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(runs_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = (
            "import sys\n"
            "from tandem_tui.domain.actions import ActionKind, ActionRequest\n"
            "from tandem_tui.domain.clock import SYSTEM_CLOCK\n"
            "from tandem_tui.source.file.perform import perform\n"
            "from tandem_tui.source.file.transaction import writer_lock\n"
            "from tandem_tui.source.file.store import RunsFileError\n"
            "import tandem_tui.source.file.transaction as t\n"
            "t.DEFAULT_LOCK_TIMEOUT_S = 0.2; t.LOCK_WAIT_S_PER_MB = 0\n"
            "try:\n"
            "    perform(sys.argv[1], ActionRequest(kind=ActionKind.PAUSE, run_id=sys.argv[2], actor='op'), clock=SYSTEM_CLOCK)\n"
            "except RunsFileError as e:\n"
            "    print(e); sys.exit(2)\n"
        )
        busy = subprocess.run([sys.executable, "-c", code, str(runs_file), RUN], capture_output=True, text=True, timeout=60)
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)

    assert busy.returncode == 2, busy.stderr
    (entry,) = read_audit(runs_file)
    assert entry["result"] == "failed" and "held automation_v2_runs.json.lock" in entry["message"]
