"""The history screen's month tree over a big archive (issue 13 item 8: < 1 s at 100k).

Opens the console headless (``App.run_test``, 160x48) on ``bench/out/shards`` (a small
hot file and 100k history shards over 24 months: ``python bench/make_runs.py``), presses
``h`` and measures, per sample, in a fresh process:

- ``tree``: from the key to the first frame drawn with the history screen showing its
  month tree (every month listed);
- ``rows``: from the key to the first frame showing rows of the month opened first.

Samples alternate between the checkouts (``--code DIR``, e.g. ``git archive 7269211 |
tar -x -C /tmp/before``, then this one), so a noisy machine weighs on both alike; the
medians of ``--repeat`` samples are printed.

    python bench/bench_history.py [--code DIR] [--repeat 5] [--runs-file F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_FILE = HERE / "out" / "shards" / "automation_v2_runs.json"
NOW_MS = 1_795_446_000_000
TARGET_S = 1.0


async def one(runs_file: Path) -> dict[str, float]:
    """In this process (``tandem_tui`` already importable from the code measured)."""
    from textual.widgets import DataTable, Tree

    from tandem_tui.domain.clock import ManualClock
    from tandem_tui.source.open import file_source
    from tandem_tui.ui.app import make_app
    from tandem_tui.ui.screens.history import HistoryScreen

    clock = ManualClock(NOW_MS)
    source = file_source(runs_file, clock=clock, env={}, console=True)
    app = make_app(source, clock=clock, watch=False)
    marks: dict[str, float] = {}
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            display = app._display

            def recording_display(screen, renderable):  # every frame the app draws
                display(screen, renderable)
                if renderable is None or not isinstance(app.screen, HistoryScreen):
                    return
                now = time.perf_counter()
                history = app.screen
                tree = history.query_one("#history-months", Tree)
                months = sum(len(year.children) for year in tree.root.children)
                if "tree" not in marks and months and months == len(history.months):
                    marks["tree"] = now
                if "rows" not in marks and history.query_one("#history-table", DataTable).row_count:
                    marks["rows"] = now

            app._display = recording_display
            started = time.perf_counter()
            while app.state is None:
                await pilot.pause(0.01)
                if time.perf_counter() - started > 120:
                    raise SystemExit("no first screen within 120 s")
            await pilot.pause(0.5)
            pressed = time.perf_counter()
            await pilot.press("h")
            while "tree" not in marks or "rows" not in marks:
                await pilot.pause(0.005)
                if time.perf_counter() - pressed > 120:
                    raise SystemExit("no month tree within 120 s")
            history = app.screen
            result = {
                "tree": marks["tree"] - pressed,
                "rows": marks["rows"] - pressed,
                "months": len(history.months),
                "entries": sum(len(entries) for entries in history.months.values()),
            }
            # Leave without waiting for the month's reads (they are not measured).
            history.workers.cancel_group(history, "history-shards")
    finally:
        source.close()
    return result


def sample(code: Path, runs_file: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(code))
    output = subprocess.run(
        [sys.executable, __file__, "--one", "--code", str(code), "--runs-file", str(runs_file)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    if output.returncode != 0:
        raise SystemExit(f"{code}: exit {output.returncode}\n{output.stderr[-2000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", action="append", type=Path, default=[],
                        help="another checkout to measure side by side (repeatable)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs-file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        sys.path.insert(0, str(args.code[-1]))
        print(json.dumps(asyncio.run(one(args.runs_file))))
        return
    if not args.runs_file.exists():
        raise SystemExit(f"{args.runs_file} does not exist: run python bench/make_runs.py first")
    codes = [*args.code, HERE.parent]
    samples: dict[Path, list[dict[str, float]]] = {code: [] for code in codes}
    for _ in range(args.repeat):
        for code in codes:
            samples[code].append(sample(code, args.runs_file))
    first = samples[codes[0]][0]
    print(f"history of {args.runs_file}: {first['entries']} shards in {first['months']} months, "
          f"160x48, median of {args.repeat} (each sample a fresh process)")
    for code in codes:
        tree = [s["tree"] for s in samples[code]]
        rows = [s["rows"] for s in samples[code]]
        verdict = "ok" if statistics.median(tree) < TARGET_S else "OVER TARGET"
        print(f"  {code}: key -> month tree {statistics.median(tree) * 1000:.0f} ms "
              f"(min {min(tree) * 1000:.0f}, max {max(tree) * 1000:.0f}; target < {TARGET_S * 1000:.0f} ms: "
              f"{verdict}); key -> first rows {statistics.median(rows) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
