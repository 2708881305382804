"""Shared pytest fixtures: the realistic runs files in ``tests/fixtures/``.

``runs_v1.json`` and its ``history/`` tree describe one busy host at
2026-11-23 15:00:00 UTC (``fixture_now_ms``); see ``tests/fixtures/make_fixtures.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"

#: The moment the fixtures were taken: 2026-11-23 15:00:00 UTC.
FIXTURE_NOW_MS = 1_795_446_000_000


@pytest.fixture
def fixtures_dir() -> Path:
    """The read-only fixture directory; copy before writing."""
    return FIXTURES_DIR


@pytest.fixture
def fixture_now_ms() -> int:
    """The "now" the fixtures were written at, for deterministic clocks."""
    return FIXTURE_NOW_MS


@pytest.fixture
def runs_file(tmp_path: Path) -> Path:
    """A writable ``automation_v2_runs.json`` (copy of ``runs_v1.json``) with its history shards."""
    target = tmp_path / "automation_v2_runs.json"
    shutil.copyfile(FIXTURES_DIR / "runs_v1.json", target)
    shutil.copytree(FIXTURES_DIR / "history" / "automation-runs", tmp_path / "automation-runs")
    return target


class ServingEngine:
    """``tandem-tui simulate --serve 0`` in a child process, on 127.0.0.1."""

    def __init__(self, state_dir: Path, *args: str) -> None:
        import json
        import os
        import subprocess
        import sys
        import time

        self.state_dir = state_dir
        self.runs_file = state_dir / "data" / "automation_v2_runs.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tandem_tui", "simulate", "--state-dir", str(state_dir), "--serve", "0", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )
        engine_json = state_dir / "engine.json"
        deadline = time.monotonic() + 20
        # A child process' start-up: wall time is what is waited on.
        while not (engine_json.exists() and self.runs_file.exists()):
            if self.process.poll() is not None:
                raise AssertionError(self.process.stderr.read().decode())
            if time.monotonic() > deadline:
                raise AssertionError("the serving engine did not start")
            time.sleep(0.05)
        info = json.loads(engine_json.read_text())
        self.url: str = info["url"]
        self.port: int = info["port"]
        self.token_file = Path(info["token_file"])
        self.token = self.token_file.read_text().strip()

    def env(self, **extra: str) -> dict[str, str]:
        """An environment that finds this engine (port) and nothing else of the caller's."""
        import os

        base = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
        return {**base, "TANDEM_ENGINE_PORT": str(self.port), **extra}

    def stop(self, *, kill: bool = False) -> None:
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def serving_engine(tmp_path: Path):
    """Start serving engines (``serving_engine(*simulate args)``); all are stopped after the test."""
    started: list[ServingEngine] = []

    def start(*args: str, state_dir: Path | None = None) -> ServingEngine:
        engine = ServingEngine(state_dir or tmp_path / "state", *args)
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.stop(kill=True)
