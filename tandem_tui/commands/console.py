"""The console: what `tandem-tui` runs without a sub-command.

``--demo`` needs nothing else: it makes a temporary state directory, starts the
simulate engine on it in a child process (``python -m tandem_tui simulate``), waits for
the first runs file, opens the console on it, and stops the engine and removes the
directory when the console closes.

A runs file that does not exist yet is not an error: the console opens, says where it
looked and how to point it elsewhere, and shows the runs as soon as the file appears.
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

from tandem_tui.commands.options import CommandError, add_runs_file_option, resolve_runs_file

DEMO_SEED = 7
#: The demo's engine: a run takes about half a minute and a new one comes every few
#: seconds, slow enough to open a run, read it and act on it before it finishes.
DEMO_ENGINE_ARGS = ("--pace", "0.25", "--rate", "0.4")
#: How long (s) --demo waits for the engine's first runs file.
DEMO_START_TIMEOUT = 15.0


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the console's options to the top-level parser and make it the default command."""
    add_runs_file_option(parser)
    parser.add_argument(
        "--read-only", action="store_true", help="watch only: no pause/resume/requeue/release"
    )
    parser.add_argument(
        "--poll", action="store_true", help="poll the runs file (for network filesystems)"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the console on a live simulated host in a temporary directory",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.demo:
        if getattr(args, "runs_file", None) is not None:
            raise CommandError("--demo makes its own runs file; drop --runs-file")
        with demo_runs_file() as runs_file:
            return open_console(runs_file, read_only=args.read_only, poll=args.poll)
    return open_console(resolve_runs_file(args), read_only=args.read_only, poll=args.poll)


def open_console(runs_file: Path, *, read_only: bool, poll: bool) -> int:
    from tandem_tui.ui.app import make_app

    make_app(runs_file, read_only=read_only, poll=poll).run()
    return 0


@contextmanager
def demo_runs_file(*, seed: int = DEMO_SEED, timeout: float = DEMO_START_TIMEOUT) -> Iterator[Path]:
    """A live runs file driven by the simulate engine in a child process.

    The engine serves its HTTP API on a free loopback port (``--serve 0``), as a real
    engine does: while the console is open, its actions go through that API (the
    engine rewrites the runs file from memory, so a write to the file would be undone).
    The engine's URL and token file reach the console's source through
    ``TANDEM_ENGINE_URL`` and ``TANDEM_API_TOKEN_FILE``, restored when the demo ends.
    """
    import json
    import os

    from tandem_tui.simulate import runs_file_for_state_dir

    with tempfile.TemporaryDirectory(prefix="tandem-tui-demo-") as state_dir:
        runs_file = runs_file_for_state_dir(state_dir)
        engine_json = Path(state_dir) / "engine.json"
        engine = subprocess.Popen(
            [sys.executable, "-m", "tandem_tui", "simulate", "--state-dir", state_dir,
             "--seed", str(seed), "--serve", "0", *DEMO_ENGINE_ARGS],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # The demo's token is the engine's own file, not one from the caller's environment.
            env={k: v for k, v in os.environ.items() if k not in ("TANDEM_API_TOKEN", "TANDEM_API_TOKEN_FILE")},
        )
        saved = {name: os.environ.get(name) for name in ("TANDEM_ENGINE_URL", "TANDEM_API_TOKEN_FILE", "TANDEM_API_TOKEN")}
        try:
            _wait_for(runs_file, engine, timeout)
            _wait_for(engine_json, engine, timeout)
            info = json.loads(engine_json.read_text(encoding="utf-8"))
            os.environ["TANDEM_ENGINE_URL"] = info["url"]
            os.environ["TANDEM_API_TOKEN_FILE"] = info["token_file"]
            os.environ.pop("TANDEM_API_TOKEN", None)
            yield runs_file
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            _stop(engine)


def _wait_for(runs_file: Path, engine: subprocess.Popen[bytes], timeout: float) -> None:
    # Polling a child process' first write: wall time is what is being waited on.
    deadline = time.monotonic() + timeout
    while not runs_file.exists():
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
