"""Typing a ``/`` filter in the runs table at 10k and 100k hot runs (issue 13 item 8).

For each runs file and each checkout, one process loads the runs in-process (the
bytes, the parse, the view and the rows, as the console's watch worker does) and then
measures, on those rows:

- ``RowOrder``: the table's filter alone, per key, the rows' filter texts computed
  first: each prefix of ``--query`` applied in turn (``order()`` with the new needle),
  then two Backspaces, then Escape (the filter cleared): what each key costs the UI
  thread;
- the console (the real app on the same snapshot, headless, 160x48, Textual's
  pilot; what it read frozen out of the collector's way, as the console does after
  its first snapshot): ``/`` then the query typed one key at a time, each key waited
  for until the table shows its rows (key -> rows applied, as an operator typing
  slowly sees it);
  the same query typed at once (every key queued before the first is handled, as
  keys typed faster than a filter applies are): first key -> the final rows; the
  longest the UI thread was busy in one go meanwhile (a key typed then waits that long
  to show in the input); Escape -> the unfiltered rows.

Each measure is repeated ``--repeat`` times; p50/p95 are over every key of every
repeat. ``--code DIR`` measures another checkout with this script (its package is
put first on ``sys.path``), for before/after figures side by side in one run:

    python bench/bench_filter.py --code /tmp/before4 \\
        --file /work/main/bench/out/runs_10000/automation_v2_runs.json \\
        --file /work/main/bench/out/runs_100000/automation_v2_runs.json

Figures on a shared 2-core machine are noisy: compare the checkouts of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# -- the measuring process ------------------------------------------------------------------


def load_state(path: str, now_ms: int):
    from tandem_tui.domain.gc_pause import gc_paused
    from tandem_tui.domain.snapshot import Freshness, Snapshot
    from tandem_tui.domain.view import RunsView
    from tandem_tui.source.file.raw_diff import LocalDiffer
    from tandem_tui.source.file.regular import read_regular
    from tandem_tui.source.file.store import parse_run_entry
    from tandem_tui.ui.screens.dashboard import build_state

    with gc_paused(freeze=True):
        raw, _ = read_regular(path)
        diff = LocalDiffer().diff(raw)
        runs = {key: parse_run_entry(key, value, now_ms=now_ms) for key, value in diff.changed.items()}
        del diff, raw
        view = RunsView.build(runs, now_ms=now_ms)
        snapshot = Snapshot(
            location=path, runs=runs, view=view, freshness=Freshness(read_at_ms=now_ms), changed=frozenset(runs)
        )
        return snapshot, build_state(snapshot, None, now_ms=now_ms)


def keys_of(query: str) -> list[str]:
    return ["minus" if ch == "-" else ch for ch in query]


def order_keys(rows, query: str) -> dict[str, list[float]]:
    """Per-key cost of ``RowOrder.order`` (the filter alone), GC paused as the table
    pauses it."""
    from tandem_tui.domain.gc_pause import gc_paused
    from tandem_tui.ui.widgets.runs_table import RowOrder

    order = RowOrder()
    order.order(rows, "status", False)
    typed, back, escape = [], [], []
    with gc_paused():
        # The texts first (the console computes them after "/" now): the filter alone.
        for row in rows.values():
            row.search_text()
        for end in range(1, len(query) + 1):
            started = time.perf_counter()
            order.order(rows, "status", False, query[:end])
            typed.append(time.perf_counter() - started)
        for end in (len(query) - 1, len(query) - 2):
            started = time.perf_counter()
            order.order(rows, "status", False, query[:end])
            back.append(time.perf_counter() - started)
        started = time.perf_counter()
        order.order(rows, "status", False, "")
        escape.append(time.perf_counter() - started)
    return {"order_key": typed, "order_backspace": back, "order_escape": escape}


class Stalls:
    """The longest gaps between ticks of a 2 ms heartbeat task: how long the UI
    thread's loop was busy in one go."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task | None = None

    async def _beat(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def start(self) -> None:
        self.longest = 0.0
        self._task = asyncio.get_running_loop().create_task(self._beat())

    def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
        return self.longest


async def console_keys(path: str, snapshot, query: str, now_ms: int) -> dict[str, list[float]]:
    from tandem_tui.domain.clock import ManualClock
    from tandem_tui.source.open import file_source
    from tandem_tui.ui.app import make_app
    from tandem_tui.ui.widgets.runs_table import RunsTable

    clock = ManualClock(now_ms)
    source = file_source(path, clock=clock, env={})
    app = make_app(source, clock=clock, watch=False, snapshot=snapshot)
    out: dict[str, list[float]] = {"slow_key": [], "burst_total": [], "burst_stall": [], "escape": []}
    total = len(snapshot.runs)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            table = app.screen.query_one(RunsTable)
            while len(table.rows_by_id) < total:
                await asyncio.sleep(0.05)
            await pilot.pause()
            # As the console does after its first snapshot (ui/app.py): the runs and
            # rows read at start are frozen out of the collector's passes.
            gc.freeze()

            async def until(predicate, deadline: float = 120.0) -> None:
                limit = time.perf_counter() + deadline
                while not predicate():
                    if time.perf_counter() > limit:
                        raise TimeoutError("the table never showed the filter")
                    await asyncio.sleep(0.001)

            def applied(text: str):
                return lambda: table.filter_text == text

            def cleared():
                return table.filter_text == "" and table.visible_count == total

            from textual import events

            def send(key: str) -> None:
                character = {"minus": "-", "escape": "\x1b"}.get(key, key)
                event = events.Key(key, character)
                event.set_sender(app)
                app._driver.send_message(event)

            # Slowly: each key waited for.
            await pilot.press("slash")
            await pilot.pause()
            for end, key in enumerate(keys_of(query), start=1):
                started = time.perf_counter()
                send(key)
                await until(applied(query[:end]))
                out["slow_key"].append(time.perf_counter() - started)
                await asyncio.sleep(0.1)
            started = time.perf_counter()
            send("escape")
            await until(cleared)
            out["escape"].append(time.perf_counter() - started)
            await pilot.pause()

            # At once: every key queued before the first is handled.
            await pilot.press("slash")
            await pilot.pause()
            stalls = Stalls()
            stalls.start()
            started = time.perf_counter()
            for key in keys_of(query):
                send(key)
            await until(applied(query))
            out["burst_total"].append(time.perf_counter() - started)
            await asyncio.sleep(0.2)
            out["burst_stall"].append(stalls.stop())
            assert table.filter_text == query, table.filter_text
            started = time.perf_counter()
            send("escape")
            await until(cleared)
            out["escape"].append(time.perf_counter() - started)
    finally:
        source.close()
    return out


def child(path: str, query: str, repeat: int) -> None:
    sys.path.insert(0, os.getcwd())
    now_ms = 1_795_446_000_000
    started = time.perf_counter()
    snapshot, state = load_state(path, now_ms)
    loaded = time.perf_counter() - started
    results: dict[str, list[float]] = {}
    for _ in range(repeat):
        # Fresh rows each time: the first filter over a row computes its search text.
        from tandem_tui.ui.screens.dashboard import build_state

        rows = build_state(snapshot, None, now_ms=now_ms).rows
        for name, values in order_keys(rows, query).items():
            results.setdefault(name, []).extend(values)
    profile = os.environ.get("BENCH_FILTER_PROFILE")
    if profile:
        import cProfile

        cProfile.runctx("asyncio.run(console_keys(path, snapshot, query, now_ms))", globals(), locals(), profile)
    for _ in range(repeat):
        for name, values in asyncio.run(console_keys(path, snapshot, query, now_ms)).items():
            results.setdefault(name, []).extend(values)
    print(json.dumps({"runs": len(state.rows), "load_s": loaded, **results}))


# -- the driver -----------------------------------------------------------------------------


def measure(code: Path, path: Path, query: str, repeat: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(
        [sys.executable, str(HERE), "--child", str(path), "--query", query, "--repeat", str(repeat)],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


ROWS = (
    ("order_key", "RowOrder: one typed key (texts known)"),
    ("order_backspace", "RowOrder: Backspace"),
    ("order_escape", "RowOrder: Escape (cleared)"),
    ("slow_key", "console: key -> its rows (typed slowly)"),
    ("burst_total", "console: query typed at once -> rows"),
    ("burst_stall", "console: longest busy spell meanwhile"),
    ("escape", "console: Escape -> all rows"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, action="append", default=[], help="runs files (absolute paths)")
    parser.add_argument("--code", type=Path, action="append", default=[], help="other checkouts to measure")
    parser.add_argument("--query", default="reconcile-0004", help="what is typed")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.query, args.repeat)
        return 0
    files = args.file or [
        Path("/work/main/bench/out/runs_10000/automation_v2_runs.json"),
        Path("/work/main/bench/out/runs_100000/automation_v2_runs.json"),
    ]
    codes = [HERE.parents[1], *args.code]
    for path in files:
        print(f"{path} (query {args.query!r}, {args.repeat} repeats; ms p50 / p95 / max)")
        results = []
        for code in codes:
            for tree in (code,):
                subprocess.run([sys.executable, "-m", "compileall", "-q", "tandem_tui"], cwd=tree, check=False)
            results.append((code, measure(code.resolve(), path.resolve(), args.query, args.repeat)))
        for code, result in results:
            if "error" in result:
                print(f"  {code}: failed: {result['error']}")
                continue
            print(f"  {code}: {result['runs']} runs, loaded in {result['load_s']:.1f} s")
            for key, label in ROWS:
                values = [1000 * v for v in result.get(key, [])]
                if values:
                    print(
                        f"    {label:42s} {statistics.median(values):8.1f} {_pct(values, 0.95):8.1f}"
                        f" {max(values):8.1f}   (n={len(values)})"
                    )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
