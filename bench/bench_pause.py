"""Whole-process CPU of ``tandem-tui pause RUN`` beside a bare read + parse + write.

The floor is a bare process that reads the file, parses it with ``orjson.loads`` (the
collector off), writes
it back with ``orjson.dumps(OPT_INDENT_2)`` to a temp file, fsyncs it and renames it over
the original. Each run works on a fresh copy of the file (the copy is not measured).
CPU is user+system of the child, median of ``--repeat`` runs; ``--code DIR`` measures
another checkout too.

    python bench/bench_pause.py --file /tmp/runs_10000/automation_v2_runs.json --code /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BARE = """
import gc, os, sys, orjson
gc.disable()  # as the transaction parses (with it on, collections dominate a big file)
path = sys.argv[1]
with open(path, "rb") as handle:
    value = orjson.loads(handle.read())
value["runs"][sys.argv[2]]["status"] = "paused"
temp = path + ".tmp"
with open(temp, "wb") as handle:
    handle.write(orjson.dumps(value, option=orjson.OPT_INDENT_2))
    handle.flush()
    os.fsync(handle.fileno())
os.replace(temp, path)
"""


def pausable_run(path: Path) -> str:
    runs = json.loads(path.read_bytes())["runs"]
    return next(key for key, run in runs.items() if run.get("status") in ("queued", "running"))


def child_cpu(make_command, source: Path, code: Path, repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(code), "USER": "bench"}
    samples = []
    with tempfile.TemporaryDirectory(prefix="bench-pause-") as directory:
        target = Path(directory) / source.name
        for _ in range(repeat):
            shutil.copyfile(source, target)
            # The copy's dirty pages would otherwise be written back inside the measured
            # fsync (ext4's journal commit flushes them): 0.2-0.36 s of system time that
            # moved from run to run with the writeback, not with the code.
            os.sync()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(make_command(target), check=True, stdout=subprocess.DEVNULL, env=env, cwd=code)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            samples.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, action="append", required=True)
    parser.add_argument("--code", type=Path, action="append", default=[])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    for path in args.file:
        run_id = pausable_run(path)
        bare = child_cpu(lambda target: [py, "-c", BARE, str(target), run_id], path, REPO, args.repeat)
        print(f"{path.parent.name} ({path.stat().st_size / 1e6:.0f} MB): bare read+parse+write+fsync+rename "
              f"{bare * 1000:.0f} ms CPU")
        for code in [REPO, *args.code]:
            pause = child_cpu(
                lambda target: [py, "-m", "tandem_tui", "pause", run_id, "--runs-file", str(target)],
                path, code, args.repeat,
            )
            print(f"  [{code}] pause: {pause * 1000:.0f} ms CPU, {pause / bare:.2f}x the floor (target < 1.3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
