"""The console starts reading runs while its dashboard is being composed (issue 13 item
8: the file's bytes come off the disk meanwhile); a first state ready before the
dashboard is mounted is shown as soon as it is, never dropped."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tandem_tui.ui.screens.dashboard import DashboardScreen
from tandem_tui.ui.widgets.runs_table import RunsTable

pytestmark = pytest.mark.anyio


async def test_a_first_state_ready_before_the_dashboard_is_mounted_is_shown(app_factory, monkeypatch):
    seen_while_composing: list[bool] = []
    compose = DashboardScreen.compose

    def slow_compose(screen: DashboardScreen) -> Any:
        # Hold the dashboard back until the watch worker has its first state (or 10 s).
        app = screen.app
        deadline = time.monotonic() + 10
        while app._pending is None and time.monotonic() < deadline:
            time.sleep(0.01)
        seen_while_composing.append(app._pending is not None)
        return compose(screen)

    monkeypatch.setattr(DashboardScreen, "compose", slow_compose)
    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        deadline = time.monotonic() + 15
        while (app.state is None or app.dashboard.query_one(RunsTable).row_count == 0) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert seen_while_composing == [True]
        table = app.dashboard.query_one(RunsTable)
        assert table.row_count == len(app.state.snapshot.runs) > 0


async def test_the_collector_held_off_through_start_up_is_on_once_the_first_state_is_out(app_factory):
    # The console command holds the collector off from before its imports; the app
    # must turn it on (a console left without it would keep every cycle of a day).
    import gc

    app = app_factory()
    gc.disable()
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            deadline = time.monotonic() + 15
            while app.state is None and time.monotonic() < deadline:
                await pilot.pause(0.05)
            assert app.state is not None
            await pilot.pause(0.1)
            assert gc.isenabled()
    finally:
        gc.enable()


async def test_the_source_is_asked_for_more_only_after_the_first_rows_are_drawn(
    runs_file, source_factory, clock
):
    # A console's file source starts its parse helper when asked for the next snapshot:
    # that must not take the GIL from the first screen being drawn.
    from tandem_tui.ui.app import make_app

    source = source_factory(runs_file)
    follow = source.follow
    drawn_when_resumed: list[bool] = []
    holder: dict[str, Any] = {}

    def watched_follow(stop: Any) -> Any:
        snapshots = follow(stop)
        first = next(snapshots, None)
        if first is None:
            return
        yield first
        table = holder["app"].dashboard.query_one(RunsTable)
        drawn_when_resumed.append(bool(table._finished))
        yield from snapshots

    source.follow = watched_follow
    app = make_app(source, clock=clock)
    holder["app"] = app
    async with app.run_test(size=(160, 48)) as pilot:
        deadline = time.monotonic() + 15
        while not drawn_when_resumed and time.monotonic() < deadline:
            await pilot.pause(0.05)
    assert drawn_when_resumed == [True]
