"""The console over time on a changing runs file: RSS growth and how long `q` takes.

Starts the console on a pseudo-terminal of 160x48 — ``--demo`` (the default: the console
and its simulate engine; its host grows, a new run every 2.5 s), ``--plain`` (a console
on a state dir a separate ``simulate`` process rewrites), or ``--steady N`` (a console on
a file of N runs rewritten twice a second with new details and timestamps, never more
runs: what grows there is the console's own) — samples VmRSS of the console from /proc/PID/status every
``--every`` seconds for ``--seconds``, then presses ``q`` and times until the process has
exited. Each sample line is printed (flushed) as it is taken, with the hot runs the
console is showing the host to have (the runs file's entries) and the history shards on
disk, so growth of the console can be told from growth of the host. Then: the slope
(MB/min) after the first fifth of the run, the ratio last/first-fifth, the RSS at 5
minutes and the ratio last/5-minutes (issue 13's target: within 10 %), and the quit
time. ``--quit-after 10,60`` also times ``q`` on fresh consoles after those uptimes.
Linux only; figures, never assertions.

    python bench/bench_memory.py --seconds 240 --quit-after 10,60
    python bench/bench_memory.py --code /tmp/before --seconds 240   # another checkout
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children_rss_mb(pid: int) -> float:
    total = 0.0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                for child in handle.read().split():
                    try:
                        total += rss_mb(int(child))
                    except OSError:
                        pass
    except OSError:
        pass
    return total


def child_pids(pid: int) -> list[int]:
    pids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                pids.extend(int(child) for child in handle.read().split())
    except OSError:
        pass
    return pids


def demo_state_dir(pid: int) -> Path | None:
    """The ``--state-dir`` of the console's demo engine (a child process), if any."""
    for child in child_pids(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as handle:
                argv = handle.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "simulate" in argv and "--state-dir" in argv:
            return Path(argv[argv.index("--state-dir") + 1])
    return None


def host_size(runs_file: Path | None) -> tuple[int, int] | None:
    """(hot runs in the runs file, history shards beside it); None when unknown. The
    file is rewritten in place (truncate-and-write), so a half-written read is retried."""
    if runs_file is None:
        return None
    for _ in range(20):
        try:
            hot = len(json.loads(runs_file.read_bytes())["runs"])
            break
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.01)
    else:
        return None
    shards = sum(1 for _ in (runs_file.parent / "automation-runs").rglob("*.json"))
    return hot, shards


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


class Console:
    """A console process on its own pseudo-terminal."""

    def __init__(self, command: list[str], code: Path, *, cols: int = 160, rows: int = 48) -> None:
        env = {**os.environ, "PYTHONPATH": str(code), "TERM": "xterm-256color"}
        self.leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.set_blocking(self.leader, False)
        self.process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower,
                                        env=env, cwd=code, start_new_session=True)
        os.close(follower)
        self.started = time.monotonic()

    def wait_while_draining(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            _drain(self.leader)
            time.sleep(0.05)

    def quit_seconds(self, timeout: float = 60.0) -> float:
        """Press ``q`` (nothing is marked: the console does not ask) and time until the
        process is gone."""
        pressed = time.monotonic()
        os.write(self.leader, b"q")
        while self.process.poll() is None and time.monotonic() - pressed < timeout:
            _drain(self.leader)
            time.sleep(0.005)
        took = time.monotonic() - pressed
        self.close()
        return took

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        os.close(self.leader)


STEADY_WRITER = """
import json, os, sys, time
path, count = sys.argv[1], int(sys.argv[2])
template = json.loads(open(sys.argv[3]).read())["runs"]["run-rn-0139"]
tick = 0
while True:
    now = int(time.time() * 1000)
    runs = {}
    for index in range(count):
        run_id = f"run-steady-{index:04d}"
        runs[run_id] = {**template, "run_id": run_id, "updated_at_ms": now - index * 997,
                        "detail": f"tick {tick} of run {index}" if index % 4 == tick % 4 else template.get("detail")}
    with open(path + ".tmp", "w") as handle:
        json.dump({"schema_version": 1, "runs": runs}, handle)
    os.replace(path + ".tmp", path)
    tick += 1
    time.sleep(0.5)
"""


def runs_file_of(mode: str, console: Console, workdir: Path) -> Path | None:
    if mode == "steady":
        return workdir / "automation_v2_runs.json"
    state = demo_state_dir(console.process.pid) if mode == "demo" else workdir / "state"
    return None if state is None else state / "data" / "automation_v2_runs.json"


def start(mode: str, code: Path, workdir: Path, steady: int = 40) -> tuple[Console, subprocess.Popen[bytes] | None]:
    python = sys.executable
    if mode == "steady":
        runs_file = workdir / "automation_v2_runs.json"
        writer = subprocess.Popen(
            [python, "-c", STEADY_WRITER, str(runs_file), str(steady), str(REPO / "tests" / "fixtures" / "runs_v1.json")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        return Console([python, "-m", "tandem_tui", "--read-only", "--runs-file", str(runs_file)], code), writer
    if mode == "demo":
        return Console([python, "-m", "tandem_tui", "--demo"], code), None
    state = workdir / "state"
    writer = subprocess.Popen(
        [python, "-m", "tandem_tui", "simulate", "--state-dir", str(state), "--seed", "7",
         "--pace", "0.25", "--rate", "0.4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=code,
        env={**os.environ, "PYTHONPATH": str(code)},
    )
    time.sleep(2.0)
    return Console([python, "-m", "tandem_tui", "--read-only", "--state-dir", str(state)], code), writer


def stop(writer: subprocess.Popen[bytes] | None) -> None:
    if writer is not None and writer.poll() is None:
        writer.terminate()
        writer.wait(timeout=10)


def memory_run(mode: str, code: Path, seconds: float, every: float, steady: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as workdir:
        console, writer = start(mode, code, Path(workdir), steady)
        samples: list[tuple[float, float, float]] = []
        try:
            console.wait_while_draining(5.0)
            runs_file = runs_file_of(mode, console, Path(workdir))
            while time.monotonic() - console.started < seconds and console.process.poll() is None:
                uptime = time.monotonic() - console.started
                sample = (uptime, rss_mb(console.process.pid), children_rss_mb(console.process.pid))
                samples.append(sample)
                size = host_size(runs_file)
                host = "" if size is None else f"  hot runs {size[0]:4d}  shards {size[1]:6d}"
                print(f"  t={sample[0]:6.0f}s  console RSS {sample[1]:7.1f} MB  children {sample[2]:6.1f} MB{host}",
                      flush=True)
                console.wait_while_draining(every)
            quit_s = console.quit_seconds()
        finally:
            stop(writer)
            console.close() if console.process.poll() is None else None
    early_index = max(0, len(samples) // 5)
    tail = samples[early_index:]
    if len(tail) >= 2:
        xs = [t / 60 for t, _, _ in tail]
        ys = [r for _, r, _ in tail]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
        print(f"[{code}] {mode}: RSS {samples[early_index][1]:.1f} MB at {samples[early_index][0]:.0f}s -> "
              f"{samples[-1][1]:.1f} MB at {samples[-1][0]:.0f}s; slope {slope:+.2f} MB/min; "
              f"ratio late/early {samples[-1][1] / samples[early_index][1]:.3f}")
    at_5min = next((sample for sample in samples if sample[0] >= 300), None)
    if at_5min is not None and samples[-1][0] >= 600:
        print(f"[{code}] {mode}: RSS {at_5min[1]:.1f} MB at {at_5min[0]:.0f}s (5 min) -> {samples[-1][1]:.1f} MB "
              f"at {samples[-1][0]:.0f}s; ratio {samples[-1][1] / at_5min[1]:.3f} (target <= 1.10)")
    print(f"[{code}] {mode}: q after {samples[-1][0] if samples else 0:.0f}s of uptime took {quit_s:.2f}s")


def quit_run(mode: str, code: Path, uptime: float, steady: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as workdir:
        console, writer = start(mode, code, Path(workdir), steady)
        try:
            console.wait_while_draining(uptime)
            took = console.quit_seconds()
        finally:
            stop(writer)
    print(f"[{code}] {mode}: q after {uptime:.0f}s of uptime took {took:.2f}s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain", action="store_true", help="a console on a simulate-driven state dir, not --demo")
    parser.add_argument("--steady", type=int, default=0, metavar="N",
                        help="a console on a file of N runs rewritten twice a second")
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--every", type=float, default=15.0)
    parser.add_argument("--quit-after", default="", help="comma-separated uptimes (s) to time `q` at")
    parser.add_argument("--code", type=Path, action="append", default=[], help="other checkouts to measure too")
    args = parser.parse_args()
    mode = "steady" if args.steady else "plain" if args.plain else "demo"
    # This checkout, then the others (as every bench script's --code: "too", not "instead").
    for code in [REPO, *[c for c in args.code if c.resolve() != REPO]]:
        for uptime in [float(u) for u in args.quit_after.split(",") if u.strip()]:
            quit_run(mode, code, uptime, args.steady)
        if args.seconds > 0:
            memory_run(mode, code, args.seconds, args.every, args.steady)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
