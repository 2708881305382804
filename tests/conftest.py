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
