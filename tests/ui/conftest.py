"""Fixtures shared by the console's tests: a clock that stands still at the fixtures'
"now", and an app factory that builds the console exactly as the CLI does.

``runs_file`` (a copy of ``tests/fixtures/runs_v1.json`` with its history shards in
``tmp_path``) and ``fixture_now_ms`` come from ``tests/conftest.py``.

Snapshot tests stay deterministic: the clock is fixed, the app is static (``watch=False``
reads the file once), the filter input does not blink in a static app, and the runs file
is named by a path relative to ``tmp_path`` so no temporary directory reaches the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tandem_tui.domain.clock import ManualClock


@pytest.fixture
def clock(fixture_now_ms: int) -> ManualClock:
    return ManualClock(fixture_now_ms)


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
