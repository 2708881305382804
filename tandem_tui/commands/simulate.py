"""`tandem-tui simulate`: drive realistic runs into a state directory until stopped.

The runs file is ``<state dir>/data/automation_v2_runs.json``, where the Tandem server
would keep it with ``TANDEM_STATE_DIR`` set to that directory, so the console pointed at
the same state dir (or ``--runs-file``) watches the simulation live. Like the real
engine it keeps its runs in memory: read at start-up, rewritten on every change, never
re-read. ``--serve PORT`` answers the engine's HTTP API on ``127.0.0.1:PORT`` (0: a free
port), the only way to act on its runs while it lives; the port and URL go to
``<state dir>/engine.json`` and the token to ``<state dir>/security/engine_api_token``
(unless ``TANDEM_API_TOKEN`` / ``TANDEM_API_TOKEN_FILE`` name one). Ctrl-C (or SIGTERM)
stops it between two ticks, never in the middle of a write; the
signal handler only sets a flag (see :class:`SignalStop`).

``--owner-pid PID`` (the console's ``--demo`` passes its own pid; not in ``--help``):
the engine belongs to that process and must not outlive it. It asks the kernel for a
SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)`` on Linux) and checks its
parent between ticks as well (the parent may die before the ``prctl``; other systems
have none). When it stops and its owner is gone — the console was killed with
SIGKILL, or crashed past its own clean-up — it removes the state directory, which
nobody else will.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import signal
import socket
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tandem_tui.commands.options import CommandError
from tandem_tui.domain.scheduler import max_concurrent_runs_from_env


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="drive simulated automation runs into a state directory",
        description="Create and drive realistic automation runs through the scheduler and "
        "lifecycle core, writing the runs file like a Tandem server would.",
    )
    parser.add_argument(
        "--state-dir", metavar="DIR", type=Path, required=True,
        help="the state directory (the runs file goes to DIR/data/automation_v2_runs.json)",
    )
    parser.add_argument(
        "--runs", metavar="N", type=_non_negative_int, default=None,
        help="stop creating runs after N (default: keep creating)",
    )
    parser.add_argument(
        "--rate", metavar="R", type=_non_negative_float, default=1.0,
        help="new runs per second (default: 1)",
    )
    parser.add_argument(
        "--pace", metavar="P", type=_non_negative_float, default=1.0,
        help="how fast runs move through their nodes (1: a node in ~2 s; 0.25: four times slower)",
    )
    parser.add_argument(
        "--max-concurrent", metavar="M", type=_positive_int, default=None,
        help="global cap on running runs (default: TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS or 8)",
    )
    parser.add_argument("--seed", metavar="S", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--duration", metavar="SECONDS", type=_non_negative_float, default=None,
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    parser.add_argument(
        "--store", choices=("file", "sqlite"), default="file",
        help="file: the runs file and shards (Tandem <= 0.6.8); sqlite: the SQLite store "
        "stateful_runtime.sqlite3, the runs file only its hot copy (Tandem >= 0.6.9)",
    )
    parser.add_argument(
        "--serve", metavar="PORT", type=_port, default=None,
        help="answer the engine's HTTP API on 127.0.0.1:PORT (0: a free port, written to DIR/engine.json)",
    )
    parser.add_argument(
        "--keep-history", metavar="N", type=_non_negative_int, default=None,
        help="keep only the newest N history shards this engine wrote (default: all, as the engine does)",
    )
    parser.add_argument("--owner-pid", metavar="PID", type=_positive_int, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: other commands never load the engine.
    from tandem_tui.simulate import Engine, RunsFileError

    max_concurrent = args.max_concurrent or max_concurrent_runs_from_env(os.environ)
    state_dir = Path(args.state_dir).expanduser()
    if state_dir.exists() and not state_dir.is_dir():
        raise CommandError(f"--state-dir {state_dir}: not a directory")
    engine = Engine(
        state_dir,
        seed=args.seed,
        rate=args.rate,
        pace=args.pace,
        max_concurrent=max_concurrent,
        runs_limit=args.runs,
        store=args.store,
        keep_history=args.keep_history,
    )
    duration_ms = None if args.duration is None else int(args.duration * 1000)
    owner = args.owner_pid
    ticks = 0
    try:
        with stop_on_signals() as stop:
            try:
                wait = stop.wait if owner is None else owned_wait(stop, owner)
                if owner is not None and not owner_alive(owner):
                    stop.set()  # the owner died before the engine even started
                engine.start()  # the one read of the runs file: refuse to run on a bad one
                with _serving(engine, state_dir, args.serve):
                    print(
                        f"simulating into {engine.runs_file} (seed {args.seed}, {args.rate:g} runs/s, "
                        f"max {max_concurrent} running); Ctrl-C to stop",
                        file=sys.stderr,
                    )
                    if not stop.is_set():
                        ticks = engine.run(stop, duration_ms=duration_ms, sleep=wait)  # type: ignore[arg-type]
            finally:
                # Still under the flag handlers: a further stop signal (the owner's death
                # can come as more than one) only sets the flag again, never ends the
                # process half-way through the clean-up.
                try:
                    engine.close()
                finally:
                    if owner is not None and not owner_alive(owner):
                        # Orphaned: the owner's clean-up will never run; the directory is
                        # ours to remove, and nobody reads our stderr any more.
                        remove_tree(state_dir)
    except RunsFileError as error:  # the SQLite store's errors (StoreError, lock held) too
        raise CommandError(str(error)) from None
    except sqlite3.Error as error:
        raise CommandError(f"{engine.runs_file.parent}: {' '.join(str(error).split())}") from None
    except OSError as error:
        raise CommandError(f"{engine.runs_file}: {error.strerror or error}") from None
    if owner is not None and not owner_alive(owner):
        return 0
    print(f"stopped after {ticks} ticks; {engine.created} runs created", file=sys.stderr)
    return 0


def remove_tree(path: Path, attempts: int = 5) -> None:
    """Remove ``path`` and everything below it, again if a file landed in it meanwhile
    (a last write of a thread still winding down): ``rmtree`` alone leaves the directory
    when its listing goes stale."""
    for _ in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            return


#: ``prctl`` option: the signal sent to this process when its parent thread dies.
PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``signum`` when this process' parent dies (Linux only;
    ``False`` elsewhere or when ``prctl`` is unavailable). The signal comes when the
    *thread* that started this process ends: the console starts the demo engine from its
    main thread."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


#: ``PF_EXITING`` in the flags of ``/proc/<pid>/stat``: the process is on its way out.
PF_EXITING = 0x4


def owner_alive(owner_pid: int) -> bool:
    """Whether the owner is still this process' parent and not on its way out.

    An orphan is re-parented (to init or a subreaper) only late in its parent's exit:
    the hang-up a dying session leader sends comes before that, so a stop it causes
    would still see the old parent. A parent already exiting counts as gone (Linux:
    the ``PF_EXITING`` flag or a zombie in ``/proc``; elsewhere the parent pid only).
    """
    if os.getppid() != owner_pid:
        return False
    try:
        with open(f"/proc/{owner_pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return True
    try:
        state, flags = fields[0], int(fields[6])
    except (IndexError, ValueError):
        return True
    return state not in (b"Z", b"X") and not flags & PF_EXITING


def owned_wait(stop: SignalStop, owner_pid: int):  # noqa: ANN201 - the engine's sleep
    """``stop.wait`` that also stops the engine once its owner is gone: at once by the
    parent-death signal where there is one, else at the next tick."""
    die_with_parent()

    def wait(timeout: float | None = None) -> bool:
        if stop.wait(timeout):
            return True
        if not owner_alive(owner_pid):
            stop.set()
        return stop.is_set()

    return wait


@contextmanager
def _serving(engine: object, state_dir: Path, port: int | None) -> Iterator[None]:
    """With ``--serve``: the API on loopback, ``engine.json`` and the token file while it runs."""
    if port is None:
        yield
        return
    from tandem_tui.simulate.server import ENGINE_JSON, load_or_create_token, serve, write_engine_json

    try:
        token, token_file = load_or_create_token(state_dir, os.environ)
    except ValueError as error:
        raise CommandError(str(error)) from None
    try:
        server = serve(engine, token, port)  # type: ignore[arg-type]
    except OSError as error:
        raise CommandError(f"cannot serve on 127.0.0.1:{port}: {error.strerror or error}") from None
    try:
        write_engine_json(state_dir, server, token_file)
        print(f"engine API on {server.url}", file=sys.stderr, flush=True)
        yield
    finally:
        server.close()
        (state_dir / ENGINE_JSON).unlink(missing_ok=True)


#: The signals that stop the engine between two ticks (SIGHUP: the terminal went away).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SignalStop:
    """A stop request a signal handler can make safely.

    The handler only sets :attr:`flag` (a plain attribute): it runs in the main thread
    between two bytecodes, possibly while that thread holds a lock — a
    ``threading.Event.set()`` there takes the lock ``Event.wait`` holds on entry and
    deadlocks. :meth:`wait` sleeps in ``select`` on the read end of a socket pair that
    :func:`signal.set_wakeup_fd` writes to at C level, so a signal wakes it at once.
    Also settable from code (:meth:`set`), for the same ``is_set``/``wait`` the engine's
    loop uses.
    """

    def __init__(self) -> None:
        self.flag = False
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def set(self) -> None:
        self.flag = True
        try:
            self._writer.send(b"\0")
        except OSError:
            pass  # full or closed: the flag is what counts

    def is_set(self) -> bool:
        return self.flag

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep up to ``timeout`` s or until a signal (or :meth:`set`); ``True`` if stopped."""
        if not self.flag:
            select.select([self._reader], [], [], timeout)
            try:
                while self._reader.recv(4096):
                    pass
            except OSError:
                pass
        return self.flag

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


@contextmanager
def stop_on_signals(signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[SignalStop]:
    """A :class:`SignalStop` that SIGINT/SIGTERM/SIGHUP set instead of interrupting a
    write half-way; the previous handlers and wakeup fd come back afterwards."""
    stop = SignalStop()

    def handler(signum: int, frame: object) -> None:
        stop.flag = True  # only the flag: see SignalStop

    if threading.current_thread() is not threading.main_thread():
        try:
            yield stop
        finally:
            stop.close()
        return
    previous_fd = signal.set_wakeup_fd(stop._writer.fileno(), warn_on_full_buffer=False)
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(previous_fd)
        stop.close()


def _port(text: str) -> int:
    value = _parse(int, text, "a port number")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def _positive_int(text: str) -> int:
    value = _parse(int, text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = _parse(int, text, "a non-negative integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative integer")
    return value


def _non_negative_float(text: str) -> float:
    value = _parse(float, text, "a non-negative number")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative number")
    return value


def _parse(kind: type, text: str, what: str):  # noqa: ANN202 - int or float
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
