"""The console: what `tandem-tui` runs without a sub-command.

``--demo`` needs nothing else: it makes a temporary state directory, starts the
simulate engine on it in a child process (``python -m tandem_tui simulate``), waits for
the engine's first write, opens the console on that state directory (as
``--state-dir`` would), and stops the engine and removes the directory when the console
closes — also when the console is ended by SIGTERM, SIGHUP (the terminal or ssh
session went away) or SIGINT: the terminal is restored, the engine stopped, the
directory removed, and the exit status is 128 + the signal's number. A console killed
outright (SIGKILL) runs no clean-up at all: the engine is started as owned by it
(``simulate --owner-pid``), stops when it is gone and removes the directory itself.

A runs file that does not exist yet is not an error: the console opens, says where it
looked and how to point it elsewhere, and shows the runs as soon as the file appears.

The console is handed a :class:`~tandem_tui.source.base.RunsSource` built here from the
options (``open_source(args, console=True)``), never a path.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from tandem_tui.commands.options import CommandError, add_source_options, source_of

if TYPE_CHECKING:
    import subprocess

    from tandem_tui.source.base import RunsSource

DEMO_SEED = 7
#: The demo's engine: a run takes about half a minute and a new one comes every few
#: seconds, slow enough to open a run, read it and act on it before it finishes.
#: It keeps the newest 1000 archived runs (about 45 minutes of them): a demo left open
#: all day stays the same size, on disk and in the console (and `q` does not wait on
#: the removal of a day's shards).
DEMO_ENGINE_ARGS = ("--pace", "0.25", "--rate", "0.4", "--keep-history", "1000")
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
    parser.add_argument(
        "--store", choices=("file", "sqlite"), default="file",
        help="with --demo: the host keeps its runs in the runs file (Tandem <= 0.6.8) or in the "
        "SQLite store (>= 0.6.9)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    with _ended_by_signals():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.demo:
        for option in ("runs_file", "state_dir"):
            if getattr(args, option, None) is not None:
                flag = "--" + option.replace("_", "-")
                raise CommandError(f"--demo makes its own runs file; drop {flag}")
        with demo_state_dir(store=getattr(args, "store", "file")) as demo:
            args.state_dir, args.engine_url, args.token_file = demo.state_dir, demo.url, demo.token_file
            return open_console(source_of(args, console=True), read_only=args.read_only, on_exit=demo.stop_soon)
    return open_console(source_of(args, console=True), read_only=args.read_only)


def open_console(source: RunsSource, *, read_only: bool, on_exit: Callable[[], None] | None = None) -> int:
    """Run the console on ``source`` until the operator quits; the source is closed after.
    ``on_exit`` is called as soon as the console begins to exit (before its teardown)."""
    import gc

    # Start-up (the app's imports, Textual's start, the first read) allocates ~1M
    # objects that live on: collections meanwhile walk them in vain (~30 ms of a first
    # screen). The app's watch worker turns the collector on once the first state is
    # handed over (TandemApp._watch_runs).
    gc.disable()
    # A source with a parse helper starts it now: its start overlaps Textual's.
    warm_up = getattr(source, "warm_up", None)
    if callable(warm_up):
        warm_up()
    from tandem_tui.ui.app import make_app

    app = make_app(source, read_only=read_only, exit_on_signals=True)
    if on_exit is not None:
        app.exit_hooks.append(on_exit)
    try:
        app.run()
    finally:
        source.close()
        # Everything still alive is about to go with the process: the interpreter's
        # last collection need not walk it (seconds for a big host's runs).
        gc.freeze()
    if app.ended_by_signal is not None:
        return 128 + app.ended_by_signal
    return 0


class Terminated(SystemExit):
    """A TERM/HUP/INT outside the app's event loop (demo start-up, clean-up)."""


@contextmanager
def _ended_by_signals() -> Iterator[None]:
    """TERM, HUP and INT end the command by an exception (exit 128+signal), so every
    ``finally`` runs: the demo engine is stopped and its directory removed. While the
    app runs, the app's own loop handlers take over (``TandemApp.exit_on_signals``)."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise Terminated(128 + signum)

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def demo_state_dir(
    *, seed: int = DEMO_SEED, timeout: float = DEMO_START_TIMEOUT, store: str = "file"
) -> Iterator[DemoEngine]:
    """A live state directory driven by the simulate engine in a child process.

    The engine serves its HTTP API on a free loopback port (``--serve 0``), as a real
    engine does: while the console is open, its actions go through that API (the
    engine rewrites the runs file from memory, so a write to the file would be undone).
    Its URL and token file are read from the ``engine.json`` it writes.
    """
    # Here, not at the top: every sub-command imports this module for its options.
    import json
    import os
    import subprocess
    import tempfile

    from tandem_tui.simulate import runs_file_for_state_dir

    with tempfile.TemporaryDirectory(prefix="tandem-tui-demo-") as state_dir:
        # The engine's own store: the first thing it writes.
        written = runs_file_for_state_dir(state_dir)
        engine_json = Path(state_dir) / "engine.json"
        engine = subprocess.Popen(
            [sys.executable, "-m", "tandem_tui", "simulate", "--state-dir", state_dir,
             "--seed", str(seed), "--serve", "0", "--store", store, *DEMO_ENGINE_ARGS,
             # Not to outlive the console, even one killed with SIGKILL (see simulate).
             "--owner-pid", str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # The demo's token is the engine's own file, not one from the caller's environment.
            env={k: v for k, v in os.environ.items() if k not in ("TANDEM_API_TOKEN", "TANDEM_API_TOKEN_FILE")},
        )
        try:
            _wait_for(written, engine, timeout)
            _wait_for(engine_json, engine, timeout)
            info = json.loads(engine_json.read_text(encoding="utf-8"))
            yield DemoEngine(Path(state_dir), url=info["url"], token_file=Path(info["token_file"]),
                             stop_soon=partial(_stop_soon, engine))
        finally:
            _stop(engine)


@dataclass(frozen=True)
class DemoEngine:
    """Where the demo engine keeps its runs, and how to reach its API."""

    state_dir: Path
    url: str
    token_file: Path
    #: Ask the engine to stop now, without waiting (the console calls it as it begins to
    #: exit, so the engine stops while the console's own teardown runs; ``q`` waits for
    #: the slower of the two, not for both).
    stop_soon: Callable[[], None] = lambda: None


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


def _stop_soon(engine: subprocess.Popen[bytes]) -> None:
    if engine.poll() is None:
        try:
            engine.terminate()
        except OSError:
            pass  # gone already: _stop reaps it


def _stop(engine: subprocess.Popen[bytes]) -> None:
    import subprocess

    if engine.poll() is None:
        engine.terminate()
        try:
            engine.wait(timeout=5)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait()
    if engine.stderr is not None:
        engine.stderr.close()
