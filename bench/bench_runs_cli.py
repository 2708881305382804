"""Whole-process ``tandem-tui runs`` (the table) beside a bare parse of the same file.

For each ``--file`` (default: the 10k-run file ``make_runs`` builds) prints the CPU
(user+system of the child, ``RUSAGE_CHILDREN``, median of ``--repeat``) and the wall time
of ``python -m tandem_tui runs --runs-file F`` with stdout to a pipe and 200 columns,
beside two floors: a bare ``json.load`` process and a bare ``orjson.loads`` process (the
collector off) of the same file, and the ratios (target < 2.0x ``json.load``).
``--json`` times ``runs --json`` as well; ``--code DIR`` measures another checkout of
the package (e.g. the commit before a change) in the same run.

    python bench/make_runs.py && python bench/bench_runs_cli.py --file bench/out/runs_1000/automation_v2_runs.json \
        --file bench/out/runs_10000/automation_v2_runs.json --code /tmp/before
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from make_runs import hot_file_path, write_hot_file  # noqa: E402

TARGET = 2.0


def measure(command: list[str], code: Path, repeat: int) -> tuple[float, float]:
    """Median CPU seconds and median wall seconds of ``repeat`` runs of ``command``."""
    env = {**os.environ, "PYTHONPATH": str(code), "COLUMNS": "200"}
    cpu, wall = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.PIPE, env=env, cwd=code)
        wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(cpu), statistics.median(wall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, action="append", default=[], help="runs files (default: 10k runs)")
    parser.add_argument("--code", type=Path, action="append", default=[], help="other checkouts to measure too")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also time runs --json")
    args = parser.parse_args()
    files = args.file
    if not files:
        files = [hot_file_path(10_000)]
        if not files[0].exists():
            write_hot_file(10_000)
    py = sys.executable
    missed = False
    for path in files:
        json_floor = measure([py, "-c", f"import json; json.load(open({str(path)!r}))"], REPO, args.repeat)
        orjson_floor = measure(
            [py, "-c", f"import gc, orjson; gc.disable(); orjson.loads(open({str(path)!r}, 'rb').read())"],
            REPO, args.repeat,
        )
        print(f"{path.parent.name} ({path.stat().st_size / 1e6:.1f} MB), median of {args.repeat}, CPU / wall:")
        print(f"  floor bare json.load         {json_floor[0] * 1000:8.0f} ms / {json_floor[1] * 1000:6.0f} ms")
        print(f"  floor bare orjson.loads      {orjson_floor[0] * 1000:8.0f} ms / {orjson_floor[1] * 1000:6.0f} ms")
        for code in [REPO, *args.code]:
            table = measure([py, "-m", "tandem_tui", "runs", "--runs-file", str(path)], code, args.repeat)
            ratio = table[0] / json_floor[0]
            missed |= ratio >= TARGET
            print(
                f"  [{code}] runs (table)  {table[0] * 1000:8.0f} ms / {table[1] * 1000:6.0f} ms:"
                f" {ratio:.2f}x json.load, {table[0] / orjson_floor[0]:.2f}x orjson (target < {TARGET}x)"
            )
            if args.json:
                as_json = measure([py, "-m", "tandem_tui", "runs", "--json", "--runs-file", str(path)], code, args.repeat)
                print(
                    f"  [{code}] runs --json   {as_json[0] * 1000:8.0f} ms / {as_json[1] * 1000:6.0f} ms:"
                    f" {as_json[0] / json_floor[0]:.2f}x json.load"
                )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
