"""``status --watch`` on a big host: time to its first line, and its CPU and memory then.

Starts ``python -m tandem_tui status --watch --runs-file F`` (stdout a pipe), measures
the wall time from the start to its first line, and the CPU (utime+stime) and RSS of it
and its children (the parse helper) from /proc at that moment; then stops it with SIGINT. Beside it the floor,
a bare ``orjson.loads`` process of the same file (the collector off). Median of
``--repeat`` runs; ``--code DIR`` measures other checkouts too, taking turns with this
one. Linux only; figures, never assertions.

    python bench/bench_watch.py --file bench/out/runs_10000/automation_v2_runs.json --code /tmp/before
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_idle import children_of, cpu_seconds  # noqa: E402


def rss_mb(pid: int) -> float:
    total = 0
    for each in (pid, *children_of(pid)):
        try:
            with open(f"/proc/{each}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def first_line(command: list[str], code: Path) -> tuple[float, float, float]:
    """(seconds to the first line, CPU seconds and RSS in MB of the process and its
    children then)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=code)
    try:
        assert process.stdout is not None
        process.stdout.readline()
        took = time.perf_counter() - started
        cpu = cpu_seconds(process.pid)
        rss = rss_mb(process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return took, cpu, rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, action="append", required=True)
    parser.add_argument("--code", type=Path, action="append", default=[], help="other checkouts to measure too")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    for path in (path.resolve() for path in args.file):
        floors = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            subprocess.run(
                [py, "-c", f"import gc, orjson; gc.disable(); orjson.loads(open({str(path)!r}, 'rb').read())"],
                check=True,
            )
            floors.append(time.perf_counter() - started)
        floor = statistics.median(floors)
        print(f"{path.parent.name} ({path.stat().st_size / 1e6:.0f} MB): bare orjson.loads process {floor * 1000:.0f} ms")
        codes = [REPO, *args.code]
        samples: dict[Path, list[tuple[float, float, float]]] = {code: [] for code in codes}
        for round_ in range(args.repeat):
            # Turns: whoever goes first in a round pays for a colder page cache and CPU.
            for code in codes[round_ % len(codes) :] + codes[: round_ % len(codes)]:
                command = [py, "-m", "tandem_tui", "status", "--watch", "--runs-file", str(path)]
                samples[code].append(first_line(command, code))
        for code in codes:
            took = statistics.median(sample[0] for sample in samples[code])
            cpu = statistics.median(sample[1] for sample in samples[code])
            rss = statistics.median(sample[2] for sample in samples[code])
            runs = ", ".join(f"{sample[0] * 1000:.0f}" for sample in samples[code])
            print(f"  [{code}] first line: median {took * 1000:.0f} ms ({runs}) = {took / floor:.2f}x the floor; "
                  f"CPU then {cpu * 1000:.0f} ms, RSS {rss:.0f} MB (with its helper)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
