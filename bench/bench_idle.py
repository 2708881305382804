"""CPU an idle watcher burns: ``status --watch`` and the console on a file nobody writes.

Starts each process on the runs file, waits until it has read the file and settled, then
reads utime+stime of it and its children from /proc/<pid>/stat over ``--seconds``
(default 30) and prints the share of one core (target < 1%). Linux only. The console
runs on a pseudo-terminal of 120x40.

    python bench/bench_idle.py --runs 10000
"""

from __future__ import annotations

import argparse
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from make_runs import hot_file_path, write_hot_file  # noqa: E402

TARGET = 0.01
TICKS = os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The pids of ``pid``'s live children (none once it is gone)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(child) for child in handle.read().split()]
    except OSError:
        pass
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live children (the console's parse helper)."""
    total = 0.0
    for each in [pid, *children_of(pid)]:
        try:
            with open(f"/proc/{each}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def idle_share(command: list[str], settle_s: float, seconds: float, *, terminal: bool, code: Path = REPO) -> float:
    env = {**os.environ, "PYTHONPATH": str(code), "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    if terminal:
        leader, follower = pty.openpty()
        os.set_blocking(leader, False)
        process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, env=env,
                                   cwd=code, start_new_session=True)
        os.close(follower)
    else:
        leader = None
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=code)
    try:
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:  # keep the terminal drained while it starts
            _drain(leader)
            time.sleep(0.1)
        before, started = cpu_seconds(process.pid), time.monotonic()
        while time.monotonic() - started < seconds:
            _drain(leader)
            time.sleep(0.5)
        return (cpu_seconds(process.pid) - before) / (time.monotonic() - started)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if leader is not None:
            os.close(leader)


def _drain(fd: int | None) -> None:
    if fd is None:
        return
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, action="append", help="hot file sizes (default 1000 and 10000)")
    parser.add_argument("--file", type=Path, action="append", help="a runs file to use instead")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=8.0, help="seconds to let it read the file first")
    parser.add_argument("--skip-console", action="store_true")
    parser.add_argument("--code", type=Path, action="append", default=[], help="other checkouts to measure too")
    args = parser.parse_args()
    paths = list(args.file or [])
    for count in args.runs or ([] if paths else [1_000, 10_000]):
        path = hot_file_path(count)
        if not path.exists():
            write_hot_file(count)
        paths.append(path)
    ok = True
    for path in paths:
        size = path.stat().st_size / 1e6
        cases = [("status --watch", [sys.executable, "-m", "tandem_tui", "status", "--watch", "--runs-file", str(path)], False)]
        if not args.skip_console:
            cases.append(("console", [sys.executable, "-m", "tandem_tui", "--read-only", "--runs-file", str(path)], True))
        for code in [REPO, *args.code]:
            for name, command, terminal in cases:
                share = idle_share(command, args.settle, args.seconds, terminal=terminal, code=code)
                met = share < TARGET
                ok = ok and met
                print(f"[{code}] idle {name:15s} {path.parent.name} ({size:.0f} MB), {args.seconds:.0f} s: "
                      f"{share * 100:5.2f}% of a core (target < {TARGET * 100:.0f}%){'' if met else '  MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
