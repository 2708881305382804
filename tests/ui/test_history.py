"""The history browser: months from the source's listing, runs read only when a month is
opened, and a chosen run posted up for the app to open."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, ProgressBar

from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.base import ArchiveEntry
from tandem_tui.source.file.shards import history_root
from tandem_tui.source.open import file_source
from tandem_tui.ui.screens.history import HistoryScreen

from ui.host import Host

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE_NOW_MS = 1_795_446_000_000  # 2026-11-23 15:00:00 UTC, see tests/fixtures/README.md

NOVEMBER = (2026, 11)
OCTOBER = (2026, 10)


def month_dir(runs_file: Path, month: tuple[int, int]) -> Path:
    return history_root(runs_file) / f"{month[0]:04d}" / f"{month[1]:02d}"


def shard(run_id: str, finished_ms: int, **extra: Any) -> str:
    record = {
        "run_id": run_id,
        "automation_id": "bulk-import",
        "trigger_type": "scheduled",
        "status": "completed",
        "checkpoint": {},
        "created_at_ms": finished_ms - 60_000,
        "updated_at_ms": finished_ms,
        "started_at_ms": finished_ms - 50_000,
        "finished_at_ms": finished_ms,
        **extra,
    }
    return json.dumps({"schema_version": 1, "run": record})


class RecordingHistory(HistoryScreen):
    """The real screen, noting the size of every batch it is sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[tuple[int, int]] = []

    def on_history_screen_shards_read(self, message: HistoryScreen.ShardsRead) -> None:
        self.batches.append((message.read, message.total))
        super().on_history_screen_shards_read(message)


def host(runs_file: Path) -> Host:
    """The history browser over the archive of ``runs_file``, on the test host."""
    return Host(RecordingHistory(file_source(runs_file, env={}), clock=ManualClock(FIXTURE_NOW_MS)))


def months_read(screen: HistoryScreen) -> set[tuple[int, int]]:
    return {entry.month for entry in screen.shards_read}


def entry_named(screen: HistoryScreen, name: str) -> ArchiveEntry:
    return next(e for entries in screen.months.values() for e in entries if e.name == name)


def _month_shown(screen: object) -> bool:
    """The open month's runs are all read and nothing is loading (vacuously true for a
    screen that is not the history, or an archive that lists no month)."""
    if not isinstance(screen, HistoryScreen) or screen.month is None:
        return True
    entries = screen.months.get(screen.month, [])
    return not screen.loading and all(entry.key in screen.results for entry in entries)


async def settle(pilot: Pilot) -> None:
    """Let the listing and the reading threads finish and their messages land (the open
    month's table is filled just after the month tree is drawn, on a timer: on a loaded
    machine that can come after any fixed pause, so wait for the state, up to 10 s)."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.1)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    for _ in range(200):
        if _month_shown(pilot.app.screen):
            break
        await pilot.pause(0.05)
        await pilot.app.workers.wait_for_complete()
    # The table sizes its columns to the new rows on its next idle, not when they are
    # added: a snapshot taken before that shows header-wide columns (a clean-clone CI
    # run caught one after a fixed 0.1 s pause), so wait for the widths, up to 10 s.
    screen = pilot.app.screen
    if isinstance(screen, HistoryScreen):
        table = screen.query_one("#history-table", DataTable)
        for _ in range(200):
            if columns_fit(table):
                break
            await pilot.pause(0.05)
    await pilot.pause()


def column_widths(table: DataTable) -> list[int]:
    return [column.content_width for column in table.ordered_columns]


def widest_cells(table: DataTable) -> list[int]:
    """Per column, its widest cell, its header included."""
    rows = [table.get_row_at(row) for row in range(table.row_count)]
    return [
        max([column.label.cell_len, *(cells[index].cell_len for cells in rows)])
        for index, column in enumerate(table.ordered_columns)
    ]


def columns_fit(table: DataTable) -> bool:
    """Every column is at least as wide as its widest cell (its header included)."""
    return all(w >= need for w, need in zip(column_widths(table), widest_cells(table)))


def shown_ids(screen: HistoryScreen) -> list[str]:
    table = screen.query_one("#history-table", DataTable)
    return [table.get_row_at(row)[0].plain for row in range(table.row_count)]


async def test_the_newest_month_opens_with_its_archived_runs(runs_file):
    app = host(runs_file)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.shown
        assert screen.month == NOVEMBER
        ids = sorted(shown_ids(screen))
        # run-ctx-0004 is a recovered-context run still in flight: readers skip it.
        assert ids == ["run-etl-0296", "run-rn-0138", "run-sd-0040", "run:manual/hotfix#7"]


async def test_months_that_are_not_opened_are_never_read(runs_file):
    trap = month_dir(runs_file, OCTOBER) / "run-broken-0001.json"
    trap.write_text("{ this is not json")
    app = host(runs_file)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.shown
        assert screen.shards_read and months_read(screen) == {NOVEMBER}
        assert all(r.error is None for r in screen.results.values())
        # The trap is live: opening October reads it and shows it as unreadable.
        screen.open_month(OCTOBER)
        await settle(pilot)
        assert "run-broken-0001" in [e.name for e in screen.shards_read]
        assert screen.results[entry_named(screen, "run-broken-0001").key].error is not None
        table = screen.query_one("#history-table", DataTable)
        row = table.get_row_at(shown_ids(screen).index("run-broken-0001"))
        assert row[2].plain == "unreadable"


async def test_opening_a_month_from_the_month_list_reads_it(runs_file):
    app = host(runs_file)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.shown
        screen.query_one("#history-months").focus()
        await pilot.press("down", "down", "down", "enter")  # 2026 > November, October
        await settle(pilot)
        assert screen.month == OCTOBER
        assert sorted(shown_ids(screen)) == [
            "run-etl-0290", "run-etl-0295", "run-ir-0070", "run-rn-0120"
        ]
        assert screen.query_one("#history-table").has_focus


async def test_a_big_month_is_read_in_batches_behind_a_progress_bar(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    runs_file.write_text('{"schema_version": 1, "runs": {}}')
    month = month_dir(runs_file, NOVEMBER)
    month.mkdir(parents=True)
    for n in range(120):
        (month / f"run-bulk-{n:04d}.json").write_text(shard(f"run-bulk-{n:04d}", FIXTURE_NOW_MS - n * 1000))
    app = host(runs_file)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.shown
        assert screen.batches == [(50, 120), (100, 120), (120, 120)]
        assert len(shown_ids(screen)) == 120
        assert shown_ids(screen)[0] == "run-bulk-0000"  # newest first
        assert not screen.query_one("#history-progress", ProgressBar).display


async def test_a_search_matching_too_many_runs_draws_only_the_first_ones(tmp_path, monkeypatch):
    monkeypatch.setattr("tandem_tui.ui.screens.history.MAX_SEARCH_ROWS", 50)
    runs_file = tmp_path / "automation_v2_runs.json"
    runs_file.write_text('{"schema_version": 1, "runs": {}}')
    month = month_dir(runs_file, NOVEMBER)
    month.mkdir(parents=True)
    for n in range(80):
        (month / f"run-bulk-{n:04d}.json").write_text(shard(f"run-bulk-{n:04d}", FIXTURE_NOW_MS - n))
    app = host(runs_file)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"bulk")
        await pilot.pause()
        screen = app.shown
        assert len(shown_ids(screen)) == 50
        label = str(screen.query_one("#history-month-label").render())
        assert label.startswith("80 matches (first 50 shown) for bulk")


async def test_search_narrows_by_run_id_or_automation_id(runs_file):
    app = host(runs_file)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.shown
        await pilot.press("slash", *"l/h")
        await pilot.pause()
        assert screen.query_one("#history-search", Input).value == "l/h"
        assert shown_ids(screen) == ["run:manual/hotfix#7"]
        automation = screen.results[entry_named(screen, "run-rn-0138").key].run
        assert automation is not None
        screen.query_one("#history-search", Input).value = automation.automation_id
        await pilot.pause()
        assert "run-rn-0138" in shown_ids(screen) and len(shown_ids(screen)) < 4


async def test_search_finds_runs_in_unread_months_by_file_name_without_reading_them(runs_file):
    app = host(runs_file)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.shown
        await pilot.press("slash", *"0120")
        await pilot.pause()
        assert shown_ids(screen) == ["run-rn-0120"]
        assert months_read(screen) == {NOVEMBER}
        await pilot.press("enter", "enter")  # leave the search box, open the run
        await settle(pilot)
        [request] = app.requests
        assert isinstance(request, HistoryScreen.OpenRun)
        assert request.run.run_id == "run-rn-0120"
        october_read = [e for e in screen.shards_read if e.month == OCTOBER]
        assert [e.name for e in october_read] == ["run-rn-0120"]


async def test_enter_posts_the_highlighted_archived_run_up_to_the_app(runs_file):
    app = host(runs_file)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        first = app.shown.visible_runs()[0]
        await pilot.press("enter")
        await pilot.pause()
        assert [type(m) for m in app.requests] == [HistoryScreen.OpenRun]
        assert app.requests[0].run is first
        assert app.screen is app.shown


async def test_opening_an_unreadable_shard_says_why_in_one_line(runs_file):
    (month_dir(runs_file, NOVEMBER) / "run-broken-0002.json").write_text('{"schema_version": 1}')
    app = host(runs_file)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.shown
        table = screen.query_one("#history-table", DataTable)
        table.move_cursor(row=shown_ids(screen).index("run-broken-0002"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        messages = [n.message for n in app._notifications]
        assert len(messages) == 1 and "\n" not in messages[0]
        assert messages[0].startswith("run-broken-0002: ") and "missing run" in messages[0]


async def test_columns_fit_their_rows_as_soon_as_the_rows_are_shown(runs_file):
    # The table alone measures new rows on its next idle, and a frame drawn before that
    # kept header-wide columns for good: the widths must be right with the rows.
    app = host(runs_file)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.shown
        table = screen.query_one("#history-table", DataTable)
        screen.open_month(OCTOBER)
        await pilot.app.workers.wait_for_complete()
        for _ in range(200):
            if screen.month == OCTOBER and OCTOBER in screen.loaded_months:
                break
            await pilot.pause(0.05)
        screen.open_month(NOVEMBER)  # read already: shown at once, no idle in between
        assert column_widths(table) == widest_cells(table)
        # ... and they narrow again after a month with wider cells.
        screen.open_month(OCTOBER)
        assert column_widths(table) == widest_cells(table)


async def test_escape_clears_the_search_before_leaving(runs_file):
    app = host(runs_file)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.shown
        await pilot.press("slash", *"etl", "escape")
        await pilot.pause()
        assert app.screen is screen and screen.query_text == ""
        assert len(shown_ids(screen)) == 4
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen


async def test_no_history_at_all_is_said_plainly(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    runs_file.write_text('{"schema_version": 1, "runs": {}}')
    app = host(runs_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.shown
        assert screen.month is None and shown_ids(screen) == []
        assert str(screen.query_one("#history-month-label").render()) == "no archived runs"


def _settled(pilot: Pilot):
    return settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_history_snapshot(snap_compare, runs_file, size):
    assert snap_compare(host(runs_file), terminal_size=size, run_before=_settled)
