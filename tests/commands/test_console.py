"""The console killed outright (SIGKILL, issue 13 item 5): it runs no clean-up of its
own, yet nothing it started outlives it — the demo engine stops within seconds and
removes the demo's directory, and the parse helper ends with its pipe. Real processes on
a pseudo-terminal. (TERM, HUP and INT, which the console handles itself, are tested in a
real terminal in tests/ui/test_console_signals.py.)"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.processes import alive, children_of, wait_for

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_a_killed_demo_console_leaves_no_engine_no_helper_and_no_directory():
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    os.set_blocking(leader, False)
    console = subprocess.Popen(
        [sys.executable, "-m", "tandem_tui", "--demo"], stdin=follower, stdout=follower, stderr=follower,
        env={**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color"}, cwd=REPO, start_new_session=True,
    )
    os.close(follower)

    def drain() -> None:
        try:
            while os.read(leader, 65536):
                pass
        except OSError:
            pass

    def engine_pids() -> list[int]:
        drain()
        return [child for child in children_of(console.pid)
                if b"simulate" in Path(f"/proc/{child}/cmdline").read_bytes()]

    started: list[int] = []
    try:
        assert wait_for(lambda: bool(engine_pids()) and len(children_of(console.pid)) >= 2, 30), \
            "the demo did not start its engine and parse helper"
        started = children_of(console.pid)
        engine = engine_pids()[0]
        arguments = Path(f"/proc/{engine}/cmdline").read_bytes().split(b"\0")
        state_dir = Path(arguments[arguments.index(b"--state-dir") + 1].decode())
        assert wait_for(lambda: (state_dir / "data" / "automation_v2_runs.json").exists(), 15)

        console.kill()
        console.wait()

        assert wait_for(lambda: not alive(engine), 5), "the demo engine outlived the console (orphaned)"
        assert wait_for(lambda: not state_dir.exists(), 5), (
            f"the demo's directory was left behind: {sorted(str(p) for p in state_dir.rglob('*'))}"
        )
        assert wait_for(lambda: not any(alive(pid) for pid in started), 5), "a child of the console lives on"
    finally:
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if console.poll() is None:
            console.kill()
            console.wait()
        os.close(leader)
