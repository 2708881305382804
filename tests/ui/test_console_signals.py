"""The console ended by a signal, in a real terminal (tmux) with real processes: the
terminal leaves the alternate screen, the demo's engine stops, its directory goes.

Only a terminal shows the alternate screen, so these run the console in a private tmux
server (``tmux -L``), keep the pane after the console exits (``remain-on-exit``) and ask
tmux whether the pane is still in the alternate screen.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.processes import alive, children_of, wait_for

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


class Tmux:
    def __init__(self) -> None:
        self.socket = f"tandem-test-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        return done.stdout.strip()

    def kill_server(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_restores_the_terminal_stops_the_demo_engine_and_removes_its_directory(signum, tmp_path):
    tmux = Tmux()
    # The shell keeps the console's exit status (tmux does not always reap a pane's
    # process in time to report it).
    status_file = tmp_path / "status"
    command = (f"cd {REPO}; env PYTHONPATH={REPO} TERM=xterm-256color {sys.executable} -m tandem_tui --demo; "
               f"echo $? > {status_file}")
    try:
        tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", "console", command)
        tmux("set-option", "-t", "console", "remain-on-exit", "on")
        shell = int(tmux("display-message", "-p", "-t", "console", "#{pane_pid}"))
        assert wait_for(lambda: bool(children_of(shell)))
        pid = children_of(shell)[0]
        assert wait_for(lambda: tmux("display-message", "-p", "-t", "console", "#{alternate_on}") == "1")

        def engine_pids() -> list[int]:
            return [child for child in children_of(pid)
                    if b"simulate" in Path(f"/proc/{child}/cmdline").read_bytes()]

        assert wait_for(lambda: bool(engine_pids()))
        engine = engine_pids()[0]
        arguments = Path(f"/proc/{engine}/cmdline").read_bytes().split(b"\0")
        state_dir = Path(arguments[arguments.index(b"--state-dir") + 1].decode())
        assert state_dir.is_dir()
        assert wait_for(lambda: "runs" in tmux("capture-pane", "-p", "-t", "console"))

        os.kill(pid, signum)

        assert wait_for(status_file.exists, 15), "the console did not end"
        assert status_file.read_text().strip() == str(128 + signum)
        assert tmux("display-message", "-p", "-t", "console", "#{alternate_on}") == "0"
        assert wait_for(lambda: not alive(engine), 10), "the demo engine outlived the console"
        assert not state_dir.exists(), "the demo's directory was left behind"
    finally:
        tmux.kill_server()
