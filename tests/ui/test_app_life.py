"""The console in a day of use (issue 13): ages move on every second, typed-ahead keys
never act on the screen below, `q` asks first when marks or a modal would be lost, and
the palette's run finder stays bounded and never makes an action the default hit."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tandem_tui.domain.models import RunStatus
from tandem_tui.ui.widgets.runs_table import RunsTable


def table_of(app: Any) -> RunsTable:
    return app.dashboard.query_one(RunsTable)


def cell_text(table: RunsTable, run_id: str, column: str) -> str:
    value = table.get_cell(run_id, column)
    return value.plain if hasattr(value, "plain") else str(value)


async def wait_until(pilot: Any, predicate: Any, deadline_s: float = 15.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not predicate() and time.monotonic() < deadline:
        await pilot.pause(0.05)
    assert predicate()


@pytest.mark.anyio
async def test_the_in_status_age_of_a_finished_run_moves_on_with_the_heartbeat(app_factory, clock):
    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.state is not None and table_of(app).row_count > 0)
        table = table_of(app)
        finished = [r.run_id for r in app.state.snapshot.runs.values()
                    if r.status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)]
        assert finished
        run_id = finished[0]
        before = cell_text(table, run_id, "wait")
        clock.advance(3 * 3600 * 1000)
        await wait_until(pilot, lambda: cell_text(table, run_id, "wait") != before, 5.0)
        from tandem_tui.present import in_status_text

        row = table.rows_by_id[run_id]
        assert cell_text(table, run_id, "wait").strip() == in_status_text(row.since_ms, clock.now_ms())
