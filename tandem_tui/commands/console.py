"""The console: what `tandem-tui` runs without a sub-command.

``--demo`` needs nothing else: it makes a temporary state directory, starts the
simulate engine on it in a child process (``python -m tandem_tui simulate``), waits for
the engine's first write, opens the console on that state directory (as
``--state-dir`` would), and stops the engine and removes the directory when the console
closes.

A runs file that does not exist yet is not an error: the console opens, says where it
looked and how to point it elsewhere, and shows the runs as soon as the file appears.

The console is handed a :class:`~tandem_tui.source.base.RunsSource` built here from the
options (``open_source(args, console=True)``), never a path.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tandem_tui.commands.options import CommandError, add_source_options, source_of
from tandem_tui.source.base import RunsSource

DEMO_SEED = 7
#: The demo's engine: a run takes about half a minute and a new one comes every few
#: seconds, slow enough to open a run, read it and act on it before it finishes.
DEMO_ENGINE_ARGS = ("--pace", "0.25", "--rate", "0.4")
#: How long (s) --demo waits for the engine's first runs file.
DEMO_START_TIMEOUT = 15.0


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the console's options to the top-level parser and make it the default command."""
    add_source_options(parser)
    parser.add_argument(
        "--read-only", action="store_true", help="watch only: no pause/resume/requeue/release"
    )
    parser.add_argument(
        "--poll", action="store_true", help="poll for changes (runs files on network filesystems)"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the console on a live simulated host in a temporary directory",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.demo:
        for option in ("runs_file", "state_dir"):
            if getattr(args, option, None) is not None:
                flag = "--" + option.replace("_", "-")
                raise CommandError(f"--demo makes its own runs file; drop {flag}")
        with demo_state_dir() as state_dir:
            args.state_dir = state_dir
            return open_console(source_of(args, console=True), read_only=args.read_only)
    return open_console(source_of(args, console=True), read_only=args.read_only)


def open_console(source: RunsSource, *, read_only: bool) -> int:
    """Run the console on ``source`` until the operator quits; the source is closed after."""
    from tandem_tui.ui.app import make_app

    try:
        make_app(source, read_only=read_only).run()
    finally:
        source.close()
    return 0


@contextmanager
def demo_state_dir(*, seed: int = DEMO_SEED, timeout: float = DEMO_START_TIMEOUT) -> Iterator[Path]:
    """A live state directory driven by the simulate engine in a child process."""
    from tandem_tui.simulate import runs_file_for_state_dir

    with tempfile.TemporaryDirectory(prefix="tandem-tui-demo-") as state_dir:
        # The engine's own store: the first thing it writes.
        written = runs_file_for_state_dir(state_dir)
        engine = subprocess.Popen(
            [sys.executable, "-m", "tandem_tui", "simulate", "--state-dir", state_dir,
             "--seed", str(seed), *DEMO_ENGINE_ARGS],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for(written, engine, timeout)
            yield Path(state_dir)
        finally:
            _stop(engine)


def _wait_for(written: Path, engine: subprocess.Popen[bytes], timeout: float) -> None:
    # Polling a child process' first write: wall time is what is being waited on.
    deadline = time.monotonic() + timeout
    while not written.exists():
        if engine.poll() is not None:
            error = (engine.stderr.read() if engine.stderr else b"").decode(errors="replace")
            last = error.strip().splitlines()[-1] if error.strip() else f"exit code {engine.returncode}"
            raise CommandError(f"the demo engine stopped before writing a runs file: {last}")
        if time.monotonic() > deadline:
            raise CommandError(f"the demo engine wrote no runs file within {timeout:.0f}s")
        time.sleep(0.05)


def _stop(engine: subprocess.Popen[bytes]) -> None:
    if engine.poll() is None:
        engine.terminate()
        try:
            engine.wait(timeout=5)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait()
    if engine.stderr is not None:
        engine.stderr.close()
