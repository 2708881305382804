"""Fixtures shared by the console's tests: a clock that stands still at the fixtures'
"now", and an app factory that builds the console exactly as the CLI does (a source
over the runs file, handed to ``make_app``).

``runs_file`` (a copy of ``tests/fixtures/runs_v1.json`` with its history shards in
``tmp_path``) and ``fixture_now_ms`` come from ``tests/conftest.py``. Screens shown on
their own use the one test host app in ``tests/ui/host.py``.

Snapshot tests stay deterministic: the clock is fixed, the app is static (``watch=False``
reads the source once), the filter input does not blink in a static app, and the runs
file is named by a path relative to ``tmp_path`` so no temporary directory reaches the
screen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.base import RunsSource
from tandem_tui.source.open import file_source


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
def source_factory(clock: ManualClock) -> Iterator[Callable[[Path], RunsSource]]:
    """``source_factory(path)``: the console's source over ``path`` (as ``tandem-tui
    --runs-file PATH`` builds it: paced, parsing in a helper process), closed after the
    test."""
    sources: list[RunsSource] = []

    def factory(path: Path) -> RunsSource:
        source = file_source(path, clock=clock, env={}, console=True)
        sources.append(source)
        return source

    yield factory
    for source in sources:
        source.close()


@pytest.fixture
def app_factory(
    request: pytest.FixtureRequest, clock: ManualClock, source_factory: Callable[[Path], RunsSource]
) -> Callable[..., Any]:
    """``app_factory(path=None, **make_app_kwargs)``: the console on a source over
    ``path``, else over the ``runs_file`` fixture (made only then: a test may need its
    ``tmp_path`` without a runs file), with the fixed clock. Pass ``watch=False`` for a
    static app."""
    from tandem_tui.ui.app import make_app

    def factory(path: Path | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("clock", clock)
        if path is None:
            path = request.getfixturevalue("runs_file")
        return make_app(source_factory(path), **kwargs)

    return factory
