"""Whole-process ``tandem-tui runs`` (the table) on a 10k-run file vs a bare ``json.load``.

Prints the best of N wall-clock times of ``python -m tandem_tui runs --runs-file F``
(stdout to a pipe, 200 columns) and of ``python -c "import json; json.load(open(F))"``,
and their ratio (target < 2.0x). ``--json`` times ``runs --json`` as well.

    python bench/make_runs.py --runs 10000 --shards 0 && python bench/bench_runs_cli.py
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

from make_runs import hot_file_path, write_hot_file  # noqa: E402

TARGET = 2.0


def best_of(command: list[str], repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.PIPE, env=env, cwd=REPO)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also time runs --json")
    args = parser.parse_args()
    path = hot_file_path(args.runs)
    if not path.exists():
        write_hot_file(args.runs)
    table = best_of([sys.executable, "-m", "tandem_tui", "runs", "--runs-file", str(path)], args.repeat)
    bare = best_of([sys.executable, "-c", f"import json; json.load(open({str(path)!r}))"], args.repeat)
    ratio = table / bare
    print(f"runs, {args.runs} runs ({path.stat().st_size / 1e6:.1f} MB), best of {args.repeat}:")
    print(f"  tandem-tui runs (table)   {table:8.3f} s")
    if args.json:
        as_json = best_of(
            [sys.executable, "-m", "tandem_tui", "runs", "--json", "--runs-file", str(path)], args.repeat
        )
        print(f"  tandem-tui runs --json    {as_json:8.3f} s")
    print(f"  bare json.load            {bare:8.3f} s")
    ok = ratio < TARGET
    print(f"  ratio                     {ratio:8.2f}x  (target < {TARGET}x){'' if ok else '  MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
