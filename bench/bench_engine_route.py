"""The engine route's costs: detection with and without an engine, an action through
the engine's API against the same action written to the runs file, and the CLI's
`pause` process through each route. Prints figures; asserts nothing.

    python bench/bench_engine_route.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tandem_tui.domain.actions import ActionKind, ActionRequest  # noqa: E402
from tandem_tui.source.engine.detect import detect  # noqa: E402
from tandem_tui.source.file.source import FileSource  # noqa: E402
from tandem_tui.source.open import file_source  # noqa: E402

ROUNDS = 20


def ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.1f} ms (min {min(samples) * 1000:.1f})"


def timed(fn, rounds: int = ROUNDS) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def start_engine(state_dir: Path) -> tuple[subprocess.Popen, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "tandem_tui", "simulate", "--state-dir", str(state_dir), "--serve", "0",
         "--rate", "0.5", "--pace", "0.05", "--max-concurrent", "50", "--runs", "60"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO,
    )
    engine_json = state_dir / "engine.json"
    while not engine_json.exists():
        time.sleep(0.05)
    return process, json.loads(engine_json.read_text())


def pausable(runs_file: Path, taken: set[str]) -> str:
    for _ in range(100):
        try:
            runs = json.loads(runs_file.read_bytes())["runs"]
            break
        except ValueError:
            time.sleep(0.01)
    return next(k for k, v in sorted(runs.items()) if v["status"] in ("queued", "running") and k not in taken)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    try:
        state_dir = root / "state"
        runs_file = state_dir / "data" / "automation_v2_runs.json"
        quiet = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
        print("detect, no engine (connection refused):", ms(timed(lambda: detect(root / "x.json", env=quiet))))
        process, info = start_engine(state_dir)
        env = {**quiet, "TANDEM_ENGINE_PORT": str(info["port"])}
        try:
            print("detect, engine live:", ms(timed(lambda: detect(runs_file, env=env))))
            source = file_source(runs_file, env=env)
            source.describe()
            taken: set[str] = set()

            def pause_via_engine() -> None:
                run_id = pausable(runs_file, taken)
                taken.add(run_id)
                started = time.perf_counter()
                result = source.perform(ActionRequest(kind=ActionKind.PAUSE, run_id=run_id, actor="bench"))
                samples.append(time.perf_counter() - started)
                assert result.ok, result.message

            samples: list[float] = []
            for _ in range(ROUNDS):
                pause_via_engine()
            print("pause via the engine's API (GET + POST + audit line):", ms(samples))

            cli_samples = []
            for _ in range(5):
                run_id = pausable(runs_file, taken)
                taken.add(run_id)
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "tandem_tui", "pause", run_id, "--state-dir", str(state_dir)],
                               env=env, cwd=REPO, check=True, capture_output=True)
                cli_samples.append(time.perf_counter() - started)
            print("`tandem-tui pause` process via the engine:", ms(cli_samples))
        finally:
            process.send_signal(signal.SIGINT)
            process.wait()

        offline = FileSource(runs_file)
        samples = []
        for _ in range(ROUNDS):
            run_id = pausable(runs_file, taken)
            taken.add(run_id)
            started = time.perf_counter()
            assert offline.perform(ActionRequest(kind=ActionKind.PAUSE, run_id=run_id, actor="bench")).ok
            samples.append(time.perf_counter() - started)
        print("pause written to the runs file (engine stopped):", ms(samples))
        cli_samples = []
        for _ in range(5):
            run_id = pausable(runs_file, taken)
            taken.add(run_id)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tandem_tui", "pause", run_id, "--state-dir", str(state_dir)],
                           env=quiet, cwd=REPO, check=True, capture_output=True)
            cli_samples.append(time.perf_counter() - started)
        print("`tandem-tui pause` process, file route (probe refused, then the file):", ms(cli_samples))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
