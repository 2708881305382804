"""Typing a ``/`` filter over many runs (issue 13 item 8): a filter that would look at
many rows waits for typing to pause, so keys typed faster than it applies cost one pass;
Enter applies it at once; Escape shows the rows as they were. Small tables filter at
every key, so these tests make the dashboard coalesce every filter (and wait long
enough for a loaded machine)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input

from ui.test_dashboard import table_of, title_of, wait_until

pytestmark = pytest.mark.anyio

#: Longer than a loaded machine takes between two keys pressed by the pilot.
PAUSE_S = 1.0


def coalescing(app: Any) -> list[str]:
    """Make the dashboard coalesce every filter; returns the filters the table applies,
    in order, as they apply."""
    screen = app.dashboard
    screen.filter_coalesce_rows = 0
    screen.filter_pause_s = PAUSE_S
    screen.filter_max_wait_s = 10 * PAUSE_S
    applied: list[str] = []
    screen.watch(table_of(app), "filter_text", lambda value: applied.append(value), init=False)
    return applied


async def test_keys_typed_faster_than_a_filter_applies_cost_one_pass_and_end_in_the_rows_typed_slowly(app_factory):
    slow = app_factory(watch=False)
    async with slow.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        for key in "etl":
            await pilot.press(key)
            await pilot.pause()
        slow_order, slow_title = list(table_of(slow).order), title_of(slow)
    assert 0 < len(slow_order) < 20 and "/etl" in slow_title

    fast = app_factory(watch=False)
    async with fast.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        applied = coalescing(fast)
        table = table_of(fast)
        await pilot.press("slash", *"etl")
        # The input shows every key at once; the rows wait for typing to pause.
        assert fast.screen.query_one("#filter", Input).value == "etl"
        assert table.filter_text == "" and table.row_count == 20
        await wait_until(pilot, lambda: table.filter_text == "etl")
        await pilot.pause()
        assert applied == ["etl"], "one pass for three keys"
        assert table.order == slow_order and table.cursor_row == 0
        assert title_of(fast) == slow_title


async def test_enter_applies_a_waiting_filter_at_once_with_every_key_typed_ahead(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        applied = coalescing(app)
        table = table_of(app)
        await pilot.press("end")
        await pilot.press("slash", *"et")
        assert table.filter_text == ""
        await pilot.press("l", "enter")
        assert applied == ["etl"] and table.filter_text == "etl"
        assert app.focused is table
        assert table.cursor_row == 0 and "etl" in table.cursor_run_id
        assert title_of(app).startswith(f"runs {table.row_count} of 20") and "/etl" in title_of(app)
        # Nothing applies later: the waiting filter was the one Enter applied.
        await pilot.pause(PAUSE_S + 0.2)
        assert applied == ["etl"]


async def test_escape_shows_the_rows_in_the_order_they_had_before_the_filter(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = table_of(app)
        await pilot.press("S")
        before = list(table.order)
        await pilot.press("slash", *"etl", "enter")
        assert 0 < table.row_count < 20
        await pilot.press("escape")
        assert table.order == before and table.filter_text == ""
        assert title_of(app).startswith("runs 20  sort status ↓")


async def test_escape_while_a_filter_waits_clears_it_and_nothing_applies_later(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        applied = coalescing(app)
        table = table_of(app)
        before = list(table.order)
        await pilot.press("slash", *"etl")
        await pilot.press("escape")
        assert table.filter_text == "" and table.order == before
        await pilot.pause(PAUSE_S + 0.2)
        assert applied == [] and table.order == before
        assert title_of(app).startswith("runs 20  sort")


async def test_slash_computes_the_rows_filter_texts_before_the_first_key(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = table_of(app)
        assert table.warm_search(5), "rows are left before the filter opens"
        await pilot.press("slash")
        await pilot.pause()
        assert not table.warm_search(5), "every row's text is computed"
