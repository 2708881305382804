"""``tandem-tui runs`` (the table) on a file whose one run has a huge ``detail``.

Issue 14 item 12: a 16 MB detail took 55 s at 80 columns and over 300 s at 160; 200 MB
never finished. Prints, per detail size and terminal width, the wall time of the whole
process and of a bare ``json.load`` of the same file, and their ratio. The detail mixes
ASCII with wide and invisible characters (the slow paths of measuring and escaping).

    python bench/bench_long_detail.py [--sizes-mb 16 200] [--widths 80 160] [--code DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "runs_v1.json"
#: One chunk of the detail: ASCII, a wide character, an accent, a zero-width space.
CHUNK = "step ok, 状態 naïve\u200b · "


def write_file(path: Path, size_mb: int) -> None:
    document = json.loads(FIXTURE.read_text())
    run = document["runs"]["run-rn-0142"]
    chunk_bytes = len(CHUNK.encode())
    run["detail"] = CHUNK * (size_mb * 1_000_000 // chunk_bytes)
    with path.open("w", encoding="utf-8") as out:
        json.dump(document, out, ensure_ascii=False)


def timed(command: list[str], code: Path, columns: int, timeout_s: float) -> float | None:
    env = {**os.environ, "PYTHONPATH": str(code), "COLUMNS": str(columns)}
    env = {k: v for k, v in env.items() if not k.startswith("TANDEM_")}
    env["TANDEM_ENGINE_URL"] = "http://127.0.0.1:9"
    started = time.perf_counter()
    try:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env, cwd=code, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[16, 200])
    parser.add_argument("--widths", type=int, nargs="+", default=[80, 160])
    parser.add_argument("--code", type=Path, default=REPO, help="the tandem_tui checkout to time")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-long-detail-"))
    try:
        for size_mb in args.sizes_mb:
            path = work / "automation_v2_runs.json"
            write_file(path, size_mb)
            bare = timed([sys.executable, "-c", f"import json; json.load(open({str(path)!r}))"], REPO, 80, 600)
            print(f"detail {size_mb} MB (file {path.stat().st_size / 1e6:.0f} MB); bare json.load {bare:.2f} s")
            for width in args.widths:
                took = timed(
                    [sys.executable, "-m", "tandem_tui", "runs", "--runs-file", str(path)], args.code, width, args.timeout
                )
                shown = f"{took:7.2f} s  {took / bare:5.1f}x" if took is not None else f"> {args.timeout:.0f} s (stopped)"
                print(f"  runs at {width:3d} columns   {shown}")
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
