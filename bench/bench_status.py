"""Whole-process ``status --json`` on the 10k-run file vs a bare ``json.load``; start-up with 100k shards.

1. Best of N wall-clock times of ``python -m tandem_tui status --json --runs-file F``
   and of ``python -c "import json; json.load(open(F))"`` (target ratio <= 2.0x).
2. Start-up of the console with a 100k-shard history: ``ShardIndex.scan`` plus the
   watcher's first snapshot (target < 1 s).

    python bench/make_runs.py && python bench/bench_status.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tandem_tui.domain.clock import ManualClock  # noqa: E402
from tandem_tui.source.file.watcher import RunsWatcher  # noqa: E402

from make_runs import NOW_MS, OUT, hot_file_path, write_hot_file, write_hot_file_to, write_shard_tree  # noqa: E402

STATUS_TARGET = 2.0
STARTUP_TARGET_S = 1.0


def best_of(command: list[str], repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env, cwd=REPO)
        best = min(best, time.perf_counter() - started)
    return best


def bench_status(count: int, repeat: int) -> bool:
    path = hot_file_path(count)
    if not path.exists():
        write_hot_file(count)
    status = best_of([sys.executable, "-m", "tandem_tui", "status", "--json", "--runs-file", str(path)], repeat)
    bare = best_of([sys.executable, "-c", f"import json; json.load(open({str(path)!r}))"], repeat)
    ratio = status / bare
    ok = ratio <= STATUS_TARGET
    print(f"status --json, {count} runs ({path.stat().st_size / 1e6:.1f} MB), best of {repeat}:")
    print(f"  tandem-tui status --json  {status * 1000:8.0f} ms")
    print(f"  bare json.load            {bare * 1000:8.0f} ms")
    print(f"  ratio                     {ratio:8.2f}x  (target <= {STATUS_TARGET}x){'' if ok else '  MISSED'}")
    return ok


def bench_startup(shards: int, repeat: int) -> bool:
    runs_file = OUT / "shards" / "automation_v2_runs.json"
    if not runs_file.exists():
        runs_file.parent.mkdir(parents=True, exist_ok=True)
        write_hot_file_to(runs_file)
        write_shard_tree(runs_file, shards)
    best_scan = best_snapshot = best_total = float("inf")
    indexed = 0
    for _ in range(repeat):
        started = time.perf_counter()
        watcher = RunsWatcher(runs_file, clock=ManualClock(NOW_MS), max_concurrent_runs=8)
        indexed = len(watcher.shard_index)  # the start-up scan (ShardIndex.scan)
        scanned = time.perf_counter()
        snapshot = watcher.load()
        finished = time.perf_counter()
        assert not snapshot.freshness.stale, snapshot.freshness.error
        best_scan = min(best_scan, scanned - started)
        best_snapshot = min(best_snapshot, finished - scanned)
        best_total = min(best_total, finished - started)
    ok = best_total < STARTUP_TARGET_S
    print(f"start-up with {indexed} shards and {len(snapshot.runs)} hot runs, best of {repeat}:")
    print(f"  shard index scan           {best_scan * 1000:8.0f} ms")
    print(f"  first snapshot             {best_snapshot * 1000:8.0f} ms")
    print(f"  total                      {best_total * 1000:8.0f} ms  (target < {STARTUP_TARGET_S * 1000:.0f} ms)"
          f"{'' if ok else '  MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ok = bench_status(args.runs, args.repeat)
    ok = bench_startup(args.shards, args.repeat) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
