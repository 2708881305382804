"""The console on a 10k-run file that changes several times a second.

Measures, in a headless app of 160x48 (Textual's pilot):

- time to first screen: from ``make_app`` to the first frame showing all 10k rows
  (target < 2 s);
- key-press to render latency: from pressing ``down`` to the first frame drawn with
  the cursor on the next row, while another process rewrites the file (a few runs
  change per write) ``--rate`` times a second;
- how many snapshots reached the screen during the run;
- filter, sort and status filter applied: from the key (or the last typed letter of a
  ``/`` filter) to the first frame drawn with the new rows, under the same writer;
- idle CPU: the app's process CPU time over ``--idle`` seconds with no writer while
  the clock moves one second a second (the 1 s tick), as a share of one core (target
  < 2 %; the pilot harness itself is included, so this is an upper bound).

    python bench/bench_ui.py [--runs 10000] [--rate 5] [--presses 60] [--code DIR] [--idle 0]

``--code DIR`` measures another checkout (``git archive <commit> | tar -x -C DIR``) with
this script, for before/after figures on the same machine; ``--idle 0`` skips the idle
measure.

The writer is a separate process, so its JSON encoding does not compete with the app
for the GIL — like the real engine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import shutil
import statistics
import sys
import time
from pathlib import Path


def _code_dir() -> str:
    """The checkout measured: ``--code DIR`` (read before ``tandem_tui`` is imported),
    else this one."""
    for index, arg in enumerate(sys.argv):
        if arg == "--code" and index + 1 < len(sys.argv):
            return str(Path(sys.argv[index + 1]).resolve())
        if arg.startswith("--code="):
            return str(Path(arg.split("=", 1)[1]).resolve())
    return str(Path(__file__).resolve().parents[1])


sys.path.insert(0, _code_dir())

from tandem_tui.source.file.atomic import write_text_atomic  # noqa: E402
from tandem_tui.domain.clock import ManualClock  # noqa: E402
from tandem_tui.source.open import file_source  # noqa: E402
from tandem_tui.ui.app import make_app  # noqa: E402
from tandem_tui.ui.widgets.runs_table import RunsTable  # noqa: E402
from tandem_tui.source.file.watcher import RunsWatcher  # noqa: E402

from make_runs import NOW_MS, hot_file_path, write_hot_file  # noqa: E402

TARGET_FIRST_SCREEN_S = 2.0


SLOTS = 30


def writer(path: str, rate: float, stop: multiprocessing.Event, counter: multiprocessing.Value) -> None:
    """Rewrite the runs file ``rate`` times a second, changing the detail of 3 runs.

    Re-encoding 60 MB of JSON takes seconds, so the file is encoded once with marker
    details in a few runs and each write swaps markers in the text.
    """
    rng = random.Random(7)
    document = json.loads(Path(path).read_text())
    ids = sorted(document["runs"])[:: max(1, len(document["runs"]) // SLOTS)][:SLOTS]
    for slot, run_id in enumerate(ids):
        document["runs"][run_id]["detail"] = f"bench-slot-{slot:02d}-v00000"
    text = json.dumps(document, indent=2)
    versions = [0] * len(ids)
    while not stop.is_set():
        started = time.monotonic()
        for slot in rng.sample(range(len(ids)), 3):
            old = f"bench-slot-{slot:02d}-v{versions[slot]:05d}"
            versions[slot] += 1
            text = text.replace(old, f"bench-slot-{slot:02d}-v{versions[slot]:05d}", 1)
        write_text_atomic(Path(path), text)
        with counter.get_lock():
            counter.value += 1
        time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))


def view_of(table: RunsTable) -> tuple:
    """What a filter, sort or status-filter key changes on screen."""
    return (table.row_count, table.sort_column, table.sort_reverse, str(table.status_filter),
            table.filter_text)


async def timed_keys(pilot, table, views, keys: list[str]) -> tuple[float, float]:
    """Seconds from pressing the last of ``keys`` to the first frame showing its effect,
    and the CPU time the app's thread spent meanwhile (what other processes on a busy
    machine do not inflate)."""
    if len(keys) > 1:
        await pilot.press(*keys[:-1])
        await pilot.pause(0.05)
    before = view_of(table)
    pressed, cpu = time.perf_counter(), time.thread_time()
    await pilot.press(keys[-1])
    while True:
        drawn = [(t, c) for t, c, view in views if t > pressed and view != before]
        if drawn:
            return drawn[0][0] - pressed, drawn[0][1] - cpu
        await pilot.pause(0.001)
        if time.perf_counter() - pressed > 30:
            raise SystemExit(f"{keys} was not drawn within 30 s")


async def measure_views(pilot, table, views, rounds: int) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {"filter": [], "sort": [], "status filter": []}
    for index in range(rounds):
        out["status filter"].append(await timed_keys(pilot, table, views, [("3", "5", "2")[index % 3]]))
        out["status filter"].append(await timed_keys(pilot, table, views, ["1"]))
        out["sort"].append(await timed_keys(pilot, table, views, ["s"]))
        out["sort"].append(await timed_keys(pilot, table, views, ["S"]))
        needle = ("rn-0", "etl", "invoice")[index % 3]
        out["filter"].append(await timed_keys(pilot, table, views, ["slash", *needle]))
        out["filter"].append(await timed_keys(pilot, table, views, ["escape"]))
        await pilot.pause(0.05)
    return out


async def measure_idle(app, pilot, clock, seconds: float) -> float:
    """Share of one core the app's process uses with nothing changing but the clock."""
    await pilot.pause(1.0)
    cpu = time.process_time()
    wall = time.perf_counter()
    while time.perf_counter() - wall < seconds:
        await pilot.pause(1.0)
        clock.advance(1_000)
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


async def measure(path: Path, rate: float, presses: int, idle_s: float = 10.0) -> dict[str, float]:
    frames: list[tuple[float, int, int, float]] = []
    views: list[tuple[float, tuple]] = []
    # Counted before the clock starts: parsing 59 MB here would compete with the app.
    expected_rows = count_runs(path)
    started = time.perf_counter()
    clock = ManualClock(NOW_MS)
    # As the CLI builds it: paced re-reads, parsing in a helper process.
    app = make_app(file_source(path, clock=clock, console=True), clock=clock)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.dashboard.query_one(RunsTable)
        display = app._display

        def recording_display(screen, renderable):  # every frame the app draws
            display(screen, renderable)
            if renderable is not None:
                frames.append((time.perf_counter(), table.row_count, table.cursor_row, time.thread_time()))
                views.append((time.perf_counter(), time.thread_time(), view_of(table)))

        app._display = recording_display
        while not any(rows >= expected_rows for _, rows, _, _ in frames):
            await pilot.pause(0.01)
            if time.perf_counter() - started > 60:
                raise SystemExit("no first screen within 60 s")
        first_screen = next(t for t, rows, _, _ in frames if rows >= expected_rows) - started

        stop = multiprocessing.Event()
        writes = multiprocessing.Value("i", 0)
        process = multiprocessing.Process(target=writer, args=(str(path), rate, stop, writes))
        process.start()
        shown_before = app.dashboard.state.snapshot.generation if app.dashboard.state else 0
        latencies: list[float] = []
        key_cpu: list[float] = []
        try:
            await pilot.pause(0.5)
            for _ in range(presses):
                target = table.cursor_row + 1
                pressed, cpu = time.perf_counter(), time.thread_time()
                await pilot.press("down")
                while not any(t > pressed and row == target for t, _, row, _ in frames):
                    await pilot.pause(0.001)
                    if time.perf_counter() - pressed > 10:
                        raise SystemExit("a key press was not drawn within 10 s")
                drawn, drawn_cpu = next((t, c) for t, _, row, c in frames if t > pressed and row == target)
                latencies.append(drawn - pressed)
                key_cpu.append(drawn_cpu - cpu)
                await pilot.pause(0.05)
            view_latencies = await measure_views(pilot, table, views, rounds=max(2, presses // 10))
        finally:
            stop.set()
            process.join(timeout=10)
        shown_after = app.dashboard.state.snapshot.generation
        await pilot.pause(2.0)  # the last write reaches the screen
        idle = await measure_idle(app, pilot, clock, idle_s) if idle_s > 0 else float("nan")
    return {
        "views": view_latencies,
        "idle_cpu": idle,
        "first_screen_s": first_screen,
        "latencies": latencies,
        "key_cpu": key_cpu,
        "writes": writes.value,
        "snapshots_shown": shown_after - shown_before,
    }


def percentile(values: list[float], share: float) -> float:
    """``values`` sorted: the value at ``share`` (nearest rank)."""
    return values[min(round(len(values) * share), len(values) - 1)]


_counts: dict[Path, int] = {}


def orjson_process_seconds(path: Path, repeat: int = 3) -> float:
    """Median wall time of a bare process that reads and parses ``path`` with orjson
    (the floor issue 13 states the first screen against)."""
    import subprocess

    script = "import sys, orjson\nwith open(sys.argv[1], 'rb') as f:\n    orjson.loads(f.read())\n"
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", script, str(path)], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def count_runs(path: Path) -> int:
    if path not in _counts:
        _counts[path] = len(json.loads(path.read_text())["runs"])
    return _counts[path]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=5.0, help="file writes per second")
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle to measure (0: skip)")
    parser.add_argument("--code", type=Path, help="the checkout to measure (default: this one)")
    args = parser.parse_args()

    source = hot_file_path(args.runs)
    if not source.exists():
        write_hot_file(args.runs)
    work = source.parent.parent / f"ui_{args.runs}" / source.name
    if work.parent.exists():
        shutil.rmtree(work.parent)
    work.parent.mkdir(parents=True)
    shutil.copyfile(source, work)

    floor_s = orjson_process_seconds(work)
    result = asyncio.run(measure(work, args.rate, args.presses, args.idle))
    started = time.perf_counter()
    RunsWatcher(work, clock=ManualClock(NOW_MS)).load()
    first_read = time.perf_counter() - started
    latencies = sorted(result["latencies"])
    p95 = percentile(latencies, 0.95)
    verdict = "ok" if result["first_screen_s"] < TARGET_FIRST_SCREEN_S else "OVER TARGET"
    import tandem_tui

    print(f"code: {Path(tandem_tui.__file__).parent.parent}")
    print(f"runs file: {count_runs(work)} runs, {work.stat().st_size / 1e6:.1f} MB")
    print(f"time to first screen: {result['first_screen_s'] * 1000:.0f} ms "
          f"(target < {TARGET_FIRST_SCREEN_S * 1000:.0f} ms: {verdict})")
    print(f"  for scale: RunsWatcher.load of the same file alone, collector on: "
          f"{first_read * 1000:.0f} ms; a bare `orjson.loads` process of it: {floor_s * 1000:.0f} ms "
          f"(first screen = {result['first_screen_s'] / floor_s:.1f}x that; the pilot app starts "
          f"in this process, already imported: bench_bighost.py times the real console)")
    print(f"key press -> render, {len(latencies)} presses while the file changes "
          f"{args.rate:g}x/s: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {p95 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    cpu = sorted(result["key_cpu"])
    print(f"  app thread CPU meanwhile: median {statistics.median(cpu) * 1000:.1f} ms, "
          f"p95 {percentile(cpu, 0.95) * 1000:.1f} ms")
    for name, pairs in result["views"].items():
        values = sorted(wall for wall, _ in pairs)
        cpu = sorted(spent for _, spent in pairs)
        print(f"{name} applied -> drawn, {len(values)} keys: median "
              f"{statistics.median(values) * 1000:.1f} ms, p95 {percentile(values, 0.95) * 1000:.1f} ms "
              f"(target < 150 ms), max {values[-1] * 1000:.1f} ms; app thread CPU median "
              f"{statistics.median(cpu) * 1000:.1f} ms, p95 {percentile(cpu, 0.95) * 1000:.1f} ms")
    print(f"idle CPU (no writes, 1 s tick, clock moving): {result['idle_cpu'] * 100:.1f} % "
          f"of a core (target < 2 %)")
    print(f"file writes: {result['writes']}, snapshots the watcher produced meanwhile: "
          f"{result['snapshots_shown']} (the screen takes the newest once a second)")


if __name__ == "__main__":
    main()
