"""Whole-process CPU of ``--version`` and ``status --json`` beside their floors.

Floors: ``python -c pass`` for ``--version``; for ``status --json``, a bare process that
only parses the same file (``orjson.loads`` of its bytes, the collector off). Beside
them, the least any ``status`` can do: that parse, plus importing the record models and
validating every record as the server's serde reads it (``parse_run_record``), with no
command line, scheduler, figures or output. CPU is user+system of the
child (``RUSAGE_CHILDREN``), median of ``--repeat`` runs. ``--code DIR`` measures
another checkout of the package (e.g. the commit before a change) in the same run.

    python bench/bench_startup.py --file /tmp/runs_1000/automation_v2_runs.json --code /tmp/before
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child_cpu(command: list[str], code: Path, repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(code)}
    samples = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env, cwd=code)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, action="append", default=[], help="runs files for status --json")
    parser.add_argument("--code", type=Path, action="append", default=[], help="other checkouts to measure too")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    floor = child_cpu([py, "-c", "pass"], REPO, args.repeat)
    print(f"floor python -c pass: {floor * 1000:.0f} ms CPU (median of {args.repeat})")
    for code in [REPO, *args.code]:
        version = child_cpu([py, "-m", "tandem_tui", "--version"], code, args.repeat)
        print(f"[{code}] --version: {version * 1000:.0f} ms CPU ({version / floor:.1f}x python -c pass; target < 150 ms)")
    for path in (path.resolve() for path in args.file):  # the children run in each checkout
        # With the collector off, as the tool parses: with it on, orjson.loads of 593 MB
        # took 12 s CPU in collections, a floor anything could beat.
        bare = child_cpu(
            [py, "-c", f"import gc, orjson; gc.disable(); orjson.loads(open({str(path)!r}, 'rb').read())"],
            REPO, args.repeat,
        )
        print(f"{path.parent.name} ({path.stat().st_size / 1e6:.0f} MB): bare read + orjson.loads {bare * 1000:.0f} ms CPU")
        least = child_cpu(
            [py, "-c", (
                f"import gc, orjson; gc.disable(); d = orjson.loads(open({str(path)!r}, 'rb').read())\n"
                "from tandem_tui.domain.models import parse_run_record\n"
                "for r in d['runs'].values(): parse_run_record(r)"
            )],
            REPO, args.repeat,
        )
        print(f"  the least a validating read costs (parse + models + validation): {least * 1000:.0f} ms CPU, {least / bare:.2f}x the floor")
        for code in [REPO, *args.code]:
            status = child_cpu([py, "-m", "tandem_tui", "status", "--json", "--runs-file", str(path)], code, args.repeat)
            print(f"  [{code}] status --json: {status * 1000:.0f} ms CPU, {status / bare:.2f}x the floor (target < 1.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
