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


# -- the palette and the run finder ---------------------------------------------------------


def many_runs_file(tmp_path: Any, count: int) -> Any:
    """A runs file of ``count`` copies of one fixture run under distinct ids."""
    import json
    from pathlib import Path

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    template = json.loads((fixtures / "runs_v1.json").read_text())["runs"]["run-rn-0139"]
    runs = {}
    for index in range(count):
        run_id = f"run-many-{index:05d}"
        runs[run_id] = {**template, "run_id": run_id}
    path = tmp_path / "many" / "automation_v2_runs.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"schema_version": 1, "runs": runs}))
    return path


@pytest.mark.anyio
async def test_enter_on_an_erased_palette_query_never_acts_on_runs(app_factory):
    from tandem_tui.ui.screens.confirm import ConfirmActionScreen

    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("space")  # a marked run: an action would have a target
        # A query typed then erased: the palette lists its discovery hits again, the
        # first one highlighted, so Enter runs it.
        await pilot.press("ctrl+p", "p", "backspace")
        await pilot.pause(0.8)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert not any(isinstance(screen, ConfirmActionScreen) for screen in app.screen_stack)


@pytest.mark.anyio
async def test_a_palette_search_offers_a_bounded_number_of_runs_on_a_big_host(tmp_path, app_factory):
    from textual.command import CommandList

    app = app_factory(many_runs_file(tmp_path, 3000), watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert len(app.run_ids()) == 3000
        await pilot.press("ctrl+p", *"go to run 0")
        await pilot.pause(1.0)
        options = app.screen.query_one(CommandList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        runs = [label for label in labels if label.startswith("Go to run run-")]
        assert 0 < len(runs) <= 20  # ui.commands.MAX_RUN_HITS


@pytest.mark.anyio
async def test_go_to_run_opens_the_finder_and_enter_selects_the_run(tmp_path, app_factory):
    from tandem_tui.ui.screens.run_finder import RunFinderScreen

    app = app_factory(many_runs_file(tmp_path, 3000), watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        app.find_run()
        await pilot.pause()
        assert isinstance(app.screen, RunFinderScreen)
        await pilot.press(*"02999")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, RunFinderScreen)
        assert table_of(app).cursor_run_id == "run-many-02999"


def test_the_finder_lists_prefix_matches_first_and_at_most_its_limit():
    from tandem_tui.ui.screens.run_finder import find_runs

    ids = [f"run-{i:05d}" for i in range(10_000)] + ["0042-first"]
    shown, total = find_runs(ids, "0042", limit=5)
    assert shown[0] == "0042-first" and len(shown) == 5 and total == 12
    assert find_runs(ids, "", limit=3) == (ids[:3], len(ids))


# -- memory over a day -------------------------------------------------------------------


@pytest.mark.anyio
async def test_cyclic_garbage_made_while_snapshots_are_shown_stays_collectable(app_factory, runs_file):
    """Freezing the heap after every snapshot put each reload's cyclic garbage out of
    the collector's reach: the console grew all day and `q` slowed with uptime."""
    import gc
    import json
    import weakref

    class Cycle:
        pass

    app = app_factory(runs_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.state is not None)
        run_id = next(iter(app.state.snapshot.runs))
        was_enabled = gc.isenabled()
        gc.disable()  # no automatic collection may take the cycle before a snapshot is shown
        try:
            garbage = Cycle()
            garbage.itself = garbage
            alive = weakref.ref(garbage)
            del garbage
            document = json.loads(runs_file.read_text())
            document["runs"][run_id]["detail"] = "changed while the console watched"
            runs_file.write_text(json.dumps(document))
            await wait_until(
                pilot, lambda: app.state.snapshot.runs[run_id].detail == "changed while the console watched"
            )
            await pilot.pause(1.2)  # shown on the heartbeat
            gc.collect()
            assert alive() is None
        finally:
            if was_enabled:
                gc.enable()


# -- typed-ahead keys ----------------------------------------------------------------------


def type_ahead(app: Any, *keys: str) -> None:
    """Post ``keys`` to the app at once, as a terminal delivers keys typed faster than
    the app answers (Pilot's ``press`` waits for the app to be idle after each key)."""
    from textual import events

    characters = {"slash": "/", "escape": None, "enter": "\r"}
    for key in keys:
        app.post_message(events.Key(key, characters.get(key, key if len(key) == 1 else None)))


@pytest.mark.anyio
async def test_keys_typed_ahead_of_history_opening_reach_history_never_the_dashboard(app_factory):
    from textual.widgets import Input

    from tandem_tui.ui.screens.history import HistoryScreen

    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        type_ahead(app, "h", "slash", "q")
        # The `q` lands in history's search (it would quit on the dashboard); waiting
        # for it, not for a fixed time, keeps a loaded machine from failing the test.
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen)
                         and getattr(app.screen.focused, "value", None) == "q")
        assert app.is_running and app.return_code is None
        dashboard_filter = app.dashboard.query_one("#filter", Input)
        assert not dashboard_filter.has_class("-shown") and dashboard_filter.value == ""


@pytest.mark.anyio
async def test_a_key_typed_ahead_of_history_is_not_lost(app_factory):
    from textual.widgets import Input

    from tandem_tui.ui.screens.history import HistoryScreen

    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        type_ahead(app, "h", "slash", "x")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen)
                         and getattr(app.screen.focused, "value", None) == "x")
        search = app.screen.focused
        assert isinstance(search, Input) and search.value == "x"


# -- q asks first when quitting would lose something -------------------------------------------


@pytest.mark.anyio
async def test_q_with_marked_runs_asks_and_n_stays(app_factory):
    from tandem_tui.ui.screens.quit import QuitScreen

    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("space", "q")
        await pilot.pause()
        assert isinstance(app.screen, QuitScreen)
        assert "1 marked run will be unmarked" in app.screen.losses
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running and len(table_of(app).marked) == 1


@pytest.mark.anyio
async def test_q_with_marked_runs_then_y_quits(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("space", "q", "y")
        await pilot.pause()
    assert app.return_code == 0


@pytest.mark.anyio
async def test_q_without_marks_or_a_dialog_quits_at_once(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
    assert app.return_code == 0


@pytest.mark.anyio
async def test_quitting_over_an_open_dialog_asks_first(app_factory):
    """In a dialog `q` is the dialog's (typed into the reason, or unbound: Textual stops
    at a modal screen's bindings); ctrl+q, the priority quit, reaches the app from there."""
    from tandem_tui.ui.screens.quit import QuitScreen

    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("p")  # pause the run under the cursor: the confirmation opens
        await pilot.pause()
        dialog = app.screen
        assert dialog.is_modal
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, QuitScreen)
        assert "the open dialog will be closed" in app.screen.losses
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is dialog and app.is_running


@pytest.mark.anyio
async def test_go_to_run_opens_the_detail_screen_of_the_chosen_run(tmp_path, app_factory):
    from tandem_tui.ui.screens.run_detail import RunDetailScreen

    app = app_factory(many_runs_file(tmp_path, 300), watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p", *"go to run", "enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunFinderScreen", 5.0)
        await pilot.press(*"y-00123")
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, RunDetailScreen), 5.0)
        assert app.screen.run.run_id == "run-many-00123"
        # Escape goes back to the dashboard, the cursor on that run.
        await pilot.press("escape")
        await pilot.pause()
        assert table_of(app).cursor_run_id == "run-many-00123"
