"""Change-to-snapshot latency of the watcher's incremental reload vs a bare ``json.loads``.

For each hot file (1k and 10k runs, from ``bench/make_runs.py``): a few runs change, the
file is rewritten atomically, and ``RunsWatcher.load()`` builds the next snapshot. The
same bytes are also parsed with ``json.loads`` in the same process. Prints the median of
both, and their ratio (target: <= 1.5x at 10k); then, live, the median time from the
atomic rename to the snapshot ``iterate()`` yields (debounce included).

    python bench/make_runs.py --shards 0 && python bench/bench_snapshot.py
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import queue
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tandem_tui.source.file.atomic import write_text_atomic  # noqa: E402
from tandem_tui.domain.clock import ManualClock  # noqa: E402
from tandem_tui.source.file.watcher import RunsWatcher  # noqa: E402

from make_runs import NOW_MS, hot_file_path, write_hot_file  # noqa: E402

TARGET_RATIO = 1.5


def bench(count: int, rounds: int, changed_per_round: int, profile: bool) -> tuple[float, float, int]:
    source = hot_file_path(count)
    if not source.exists():
        write_hot_file(count)
    work = source.parent.parent / f"snapshot_{count}" / source.name
    work.parent.mkdir(parents=True, exist_ok=True)
    document = json.loads(source.read_bytes())
    write_text_atomic(work, json.dumps(document, indent=2))
    ids = sorted(document["runs"])

    clock = ManualClock(NOW_MS)
    watcher = RunsWatcher(work, clock=clock, max_concurrent_runs=8)
    watcher.load()

    reload_s: list[float] = []
    loads_s: list[float] = []
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    for round_ in range(rounds):
        document = copy.deepcopy(document) if round_ == 0 else document
        for offset in range(changed_per_round):
            run = document["runs"][ids[(round_ * 7919 + offset * 104729) % len(ids)]]
            run["detail"] = f"bench round {round_} change {offset}"
            run["updated_at_ms"] = NOW_MS + round_
        write_text_atomic(work, json.dumps(document, indent=2))
        clock.advance(1_000)
        raw = work.read_bytes()

        gc.collect()
        started = time.perf_counter()
        json.loads(raw)
        loads_s.append(time.perf_counter() - started)

        gc.collect()
        before = watcher.validations
        if profiler:
            profiler.enable()
        started = time.perf_counter()
        snapshot = watcher.load()
        reload_s.append(time.perf_counter() - started)
        if profiler:
            profiler.disable()
        assert not snapshot.freshness.stale, snapshot.freshness.error
        assert watcher.validations - before <= changed_per_round
    if profiler:
        import pstats

        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    live_s = live_latency(watcher, work, document, ids, rounds, changed_per_round)
    return statistics.median(reload_s), statistics.median(loads_s), len(raw), statistics.median(live_s)


def live_latency(
    watcher: RunsWatcher, work: Path, document: dict, ids: list[str], rounds: int, changed_per_round: int
) -> list[float]:
    """Rename-to-snapshot time through ``iterate()`` (debounce included), per round."""
    snapshots: queue.Queue = queue.Queue()
    stop = threading.Event()

    def follow() -> None:
        for snapshot in watcher.iterate(stop):
            snapshots.put((time.perf_counter(), snapshot))

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(0.5)
    while not snapshots.empty():
        snapshots.get()
    latencies: list[float] = []
    for round_ in range(rounds):
        marker = f"live round {round_}"
        for offset in range(changed_per_round):
            document["runs"][ids[(round_ * 31 + offset * 7) % len(ids)]]["detail"] = marker
        text = json.dumps(document, indent=2)
        write_text_atomic(work, text)
        written = time.perf_counter()  # the rename is the last thing the write does
        while True:
            seen_at, snapshot = snapshots.get(timeout=30)
            if any(run.detail == marker for run in snapshot.runs.values()):
                latencies.append(seen_at - written)
                break
    stop.set()
    thread.join(timeout=10)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, action="append", help="hot file sizes (default: 1000 10000)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--changed", type=int, default=3, help="runs changed per round (default 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile the reloads")
    args = parser.parse_args()
    print(f"{'runs':>6} {'MB':>6} {'reload ms':>10} {'json.loads ms':>14} {'ratio':>6} {'live ms':>8}")
    missed = False
    for count in args.runs or (1_000, 10_000):
        reload_s, loads_s, size, live_s = bench(count, args.rounds, args.changed, args.profile)
        ratio = reload_s / loads_s
        mark = ""
        if count >= 10_000 and ratio > TARGET_RATIO:
            mark, missed = f"  > target {TARGET_RATIO}x", True
        print(f"{count:>6} {size / 1e6:>6.1f} {reload_s * 1000:>10.1f} {loads_s * 1000:>14.1f} {ratio:>5.2f}x"
              f" {live_s * 1000:>8.1f}{mark}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
