"""The watcher's reload after a save that changed 3 runs, beside ``orjson.loads`` of the file.

For each file: a watcher parsing in a helper process (as the console runs it) loads the
file, then ``--writes`` times 3 runs change (an atomic rename of the whole file, as the
engine saves) and ``watcher.load()`` reads it: read, helper diff, validation of what
changed, view update. That is rename -> snapshot without the watch's debounce. Median
of the writes, beside the median ``orjson.loads`` of the same bytes (wall time; and CPU
time of console and helper together, steadier on a busy machine); then the helper's
resident memory once every save was read (``VmRSS``) and its peak since it started
(``VmHWM``) beside the file's size. ``--code DIR`` runs the same in another checkout (in
a child process) for a before/after in one run.

    python bench/bench_reload.py --file /tmp/runs_10000/automation_v2_runs.json --code /tmp/before
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import queue
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_UPDATED = re.compile(rb'"updated_at_ms": (\d+)')


def memory_kb(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as handle:
        return {line.split(":")[0]: int(line.split()[1]) for line in handle if line.startswith(("VmRSS", "VmHWM"))}


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu_s(pid: int) -> float:
    """:func:`cpu_s` once the process has used none for a while (the helper is primed
    in the background: its first reload must not count that)."""
    last = cpu_s(pid)
    while True:
        time.sleep(0.3)
        now = cpu_s(pid)
        if now == last:
            return now
        last = now


def measure(path: Path, writes: int) -> dict:
    import orjson

    from tandem_tui.domain.clock import SYSTEM_CLOCK
    from tandem_tui.source.file.watcher import RunsWatcher

    work = path.with_name(".bench-reload-" + path.name)
    raw = path.read_bytes()
    work.write_bytes(raw)
    watcher = RunsWatcher(work, clock=SYSTEM_CLOCK, parse_in_helper=True)
    try:
        watcher.load()
        reloads, parses, cpu, parse_cpu = [], [], 0.0, []
        helper_cpu = None
        for step in range(writes + 1):
            raw = _UPDATED.sub(lambda m: b'"updated_at_ms": %d' % (int(m.group(1)) + 1), raw, count=3)
            temp = work.with_name(work.name + ".tmp")
            temp.write_bytes(raw)
            os.replace(temp, work)
            started, started_cpu = time.perf_counter(), time.process_time()
            snapshot = watcher.load()
            elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
            assert not snapshot.freshness.stale, snapshot.freshness.error
            if step:  # the first change starts and primes the helper
                reloads.append(elapsed)
                cpu += elapsed_cpu
                gc.disable()  # the floor is a bare parse: no collections over the watcher's runs
                started, started_cpu = time.perf_counter(), time.process_time()
                orjson.loads(raw)
                parses.append(time.perf_counter() - started)
                parse_cpu.append(time.process_time() - started_cpu)
                gc.enable()
            elif watcher._helper is not None and watcher._helper.in_helper:
                helper_cpu = idle_cpu_s(watcher._helper.pid)  # once primed, before the reloads
        if helper_cpu is not None and watcher._helper is not None and watcher._helper.in_helper:
            cpu += cpu_s(watcher._helper.pid) - helper_cpu
        helper = watcher._helper
        live = []
        snapshots: queue.Queue = queue.Queue()
        stop = threading.Event()
        follower = threading.Thread(target=lambda: [snapshots.put(time.perf_counter()) for _ in watcher.iterate(stop)])
        follower.start()
        snapshots.get(timeout=600)  # the first snapshot iterate() yields (its catch-up read)
        time.sleep(0.5)
        for _ in range(writes):
            raw = _UPDATED.sub(lambda m: b'"updated_at_ms": %d' % (int(m.group(1)) + 1), raw, count=3)
            temp = work.with_name(work.name + ".tmp")
            temp.write_bytes(raw)
            renamed = time.perf_counter()
            os.replace(temp, work)
            live.append(snapshots.get(timeout=30) - renamed)
            time.sleep(1.2)  # past the console's one-reload-a-second pacing (not set here anyway)
        # Steady (now, after every save was read) and peak (since the helper started).
        helper = watcher._helper or helper
        memory = memory_kb(helper.pid) if helper is not None and helper.in_helper else {}
        stop.set()
        follower.join()
        return {"reload": statistics.median(reloads), "orjson": statistics.median(parses),
                "reload_cpu": cpu / writes, "orjson_cpu": statistics.median(parse_cpu),
                "live": statistics.median(live),
                "rss_kb": memory.get("VmRSS"), "hwm_kb": memory.get("VmHWM"), "size": len(raw)}
    finally:
        watcher.close()
        work.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, action="append", required=True)
    parser.add_argument("--code", type=Path, action="append", default=[])
    parser.add_argument("--writes", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps([measure(path, args.writes) for path in args.file]))
        return 0
    for code in [REPO, *args.code]:
        command = [sys.executable, __file__, "--child", "--writes", str(args.writes)]
        for path in args.file:
            command += ["--file", str(path)]
        done = subprocess.run(command, check=True, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(code)}, cwd=code)
        for path, figures in zip(args.file, json.loads(done.stdout.splitlines()[-1])):
            size_mb = figures["size"] / 1e6
            line = (f"[{code}] {path.parent.name} ({size_mb:.0f} MB): reload after 3 runs changed "
                    f"{figures['reload'] * 1000:.0f} ms vs orjson.loads {figures['orjson'] * 1000:.0f} ms: "
                    f"{figures['reload'] / figures['orjson']:.2f}x (target < 0.5x); CPU (console + helper, mean) "
                    f"{figures['reload_cpu'] * 1000:.0f} ms vs {figures['orjson_cpu'] * 1000:.0f} ms: "
                    f"{figures['reload_cpu'] / figures['orjson_cpu']:.2f}x; live rename -> snapshot "
                    f"from iterate() {figures['live'] * 1000:.0f} ms ({figures['live'] / figures['orjson']:.2f}x, "
                    "50-100 ms of it the watch's debounce)")
            if figures["rss_kb"]:
                line += (f"; helper RSS {figures['rss_kb'] / 1024:.0f} MB = {figures['rss_kb'] * 1024 / figures['size']:.2f}x"
                         f" the file, peak {figures['hwm_kb'] / 1024:.0f} MB = {figures['hwm_kb'] * 1024 / figures['size']:.2f}x"
                         " (target < 1.5x)")
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
