"""Opening a run on a big host: how long until its detail shows, and how long the
console stops answering meanwhile.

A headless console (Textual's pilot, 160x48) on a runs file holds run summaries; Enter
on a row reads that run's whole record from the file. Measured per press, median of
``--presses``:

- open: from pressing Enter to the detail screen mounted;
- stall: the longest gap between two ticks of a 10 ms timer of the app during the
  open (a UI thread blocked by the read shows up here; ~10-20 ms is an idle app).

The console follows the file (live), as it runs for an operator; the file is not
written meanwhile (an engine stopped), so a run can be read from where its entry lay.

    python bench/bench_open_run.py --file bench/out/runs_10000/automation_v2_runs.json --code /tmp/before

``--code DIR`` measures another checkout too (run as a child process with
``PYTHONPATH=DIR``), on the same file in the same run.
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

REPO = Path(__file__).resolve().parents[1]


async def measure(path: Path, presses: int) -> dict[str, list[float]]:
    from tandem_tui.domain.clock import ManualClock
    from tandem_tui.source.open import file_source
    from tandem_tui.ui.app import make_app

    run_ids = list(json.loads(path.read_bytes())["runs"])[:presses]
    source = file_source(path, clock=ManualClock(int(time.time() * 1000)), env={}, console=True)
    app = make_app(source)  # live, as the console runs: it follows the file
    opens: list[float] = []
    stalls: list[float] = []
    async with app.run_test(size=(160, 48)) as pilot:
        deadline = time.monotonic() + 300
        while app.state is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        ticks: list[float] = []
        app.set_interval(0.01, lambda: ticks.append(time.perf_counter()))
        for run_id in run_ids:
            app.screen.go_to_run(run_id, open_run=False)
            await pilot.pause(0.1)
            ticks.clear()
            started = time.perf_counter()
            await pilot.press("enter")
            while not (type(app.screen).__name__ == "RunDetailScreen" and app.screen.is_mounted):
                await asyncio.sleep(0.001)
            ended = time.perf_counter()
            opens.append(ended - started)
            stamps = [started, *[t for t in ticks if started <= t <= ended], ended]
            stalls.append(max(b - a for a, b in zip(stamps, stamps[1:])))
            await pilot.press("escape")
            await pilot.pause(0.1)
    span_reads = getattr(source, "span_reads", None)  # runs read by their span, no scan
    source.close()
    return {"open": opens, "stall": stalls, "span_reads": span_reads}


def child(path: Path, presses: int) -> None:
    print(json.dumps(asyncio.run(measure(path, presses))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--code", type=Path, action="append", default=[])
    parser.add_argument("--presses", type=int, default=10)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.file.resolve(), args.presses)
        return 0
    size_mb = args.file.stat().st_size / 1e6
    print(f"{args.file} ({size_mb:.0f} MB), {args.presses} presses, medians (max)")
    for code in [REPO, *args.code]:
        env = {**os.environ, "PYTHONPATH": str(code)}
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--file", str(args.file.resolve()), "--presses", str(args.presses)],
            env=env, cwd=code, check=True, capture_output=True, text=True,
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        opens, stalls = figures["open"], figures["stall"]
        spans = figures.get("span_reads")
        print(
            f"  [{code}] open {statistics.median(opens) * 1000:.0f} ms ({max(opens) * 1000:.0f}),"
            f" stall {statistics.median(stalls) * 1000:.0f} ms ({max(stalls) * 1000:.0f})"
            + (f", {spans} of {len(opens)} runs read by their span" if spans is not None else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
