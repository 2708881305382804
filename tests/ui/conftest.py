"""Fixtures shared by the console's tests: a clock that stands still, a realistic runs
file in ``tmp_path``, and an app factory that builds the console exactly as the CLI does.

Snapshot tests stay deterministic: the clock is fixed, the app is static (``watch=False``
loads the file once), the cursor does not blink, and the runs file is named by a path
relative to ``tmp_path`` so no temporary directory name reaches the screen.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tandem_tui.core.clock import ManualClock

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FIXTURE_RUNS = FIXTURES / "runs_v1.json"
RUNS_FILE_NAME = "automation_v2_runs.json"


def fixture_now_ms() -> int:
    """A fixed "now" one minute after the newest timestamp in the fixture file.

    Derived from the data (not from the wall clock) so every run of the suite sees the
    same ages, waits and lease expiries.
    """
    document = json.loads(FIXTURE_RUNS.read_text())
    runs = document.get("runs", document)
    newest = 0
    for record in runs.values():
        if not isinstance(record, dict):
            continue
        for key in ("updated_at_ms", "created_at_ms"):
            value = record.get(key)
            if isinstance(value, int):
                newest = max(newest, value)
    # Round to the minute so the figure is easy to reason about in a failing test.
    return (newest // 60_000 + 1) * 60_000


@pytest.fixture
def clock() -> ManualClock:
    if not FIXTURE_RUNS.exists():
        pytest.skip("tests/fixtures/runs_v1.json is not there yet")
    return ManualClock(fixture_now_ms())


def copy_fixture_tree(destination: Path) -> Path:
    """Copy the fixture runs file (and its history shards, if any) into ``destination``
    under the server's file name; returns the new runs file."""
    runs_file = destination / RUNS_FILE_NAME
    shutil.copyfile(FIXTURE_RUNS, runs_file)
    shards = FIXTURES / "automation-runs" / FIXTURE_RUNS.stem
    if shards.is_dir():
        shutil.copytree(shards, destination / "automation-runs" / runs_file.stem)
    return runs_file


@pytest.fixture
def runs_file(tmp_path: Path, clock: ManualClock) -> Path:
    """A realistic runs file (absolute path) in ``tmp_path``, with its history tree."""
    return copy_fixture_tree(tmp_path)


@pytest.fixture
def relative_runs_file(runs_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The same runs file named relative to the working directory (``tmp_path``), so
    snapshots that show the path are identical on every machine."""
    monkeypatch.chdir(runs_file.parent)
    return Path(runs_file.name)


@pytest.fixture
def app_factory(runs_file: Path, clock: ManualClock) -> Callable[..., Any]:
    """``app_factory(path=None, **make_app_kwargs)``: the console on ``runs_file`` (or
    ``path``) with the fixed clock. Pass ``watch=False`` for a static app."""
    from tandem_tui.ui.app import make_app

    def factory(path: Path | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("clock", clock)
        return make_app(path if path is not None else runs_file, **kwargs)

    return factory
