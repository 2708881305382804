"""The dashboard: live updates in place, filters, marks, actions through the core, and
what it looks like at 80x24 and 160x48."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from tandem_tui.source.file.atomic import write_text_atomic
from tandem_tui.domain.models import RunStatus
from tandem_tui.ui.screens.dashboard import DashboardScreen
from tandem_tui.ui.widgets.metrics_bar import StaleBanner
from tandem_tui.ui.widgets.runs_table import (
    RunRow,
    RunsTable,
    StatusFilter,
    build_rows,
    column_widths,
    elide_middle,
    row_matches,
    sort_key,
)

from ui.host import Host

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: A live watcher reacts within a debounce; this bounds a test that waits for it.
LIVE_DEADLINE_S = 10.0


# -- helpers ---------------------------------------------------------------------------


def table_of(app: Any) -> RunsTable:
    return app.dashboard.query_one(RunsTable)


def cell_text(table: RunsTable, run_id: str, column: str) -> str:
    value = table.get_cell(run_id, column)
    return value.plain if hasattr(value, "plain") else str(value)


async def wait_until(pilot: Any, predicate: Any, deadline_s: float = LIVE_DEADLINE_S) -> None:
    """Let the app (and its watcher thread) run until ``predicate()`` holds."""
    deadline = time.monotonic() + deadline_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the screen did not catch up before the deadline")
        await pilot.pause(0.05)


def edit_runs_file(path: Path, edit: Any) -> None:
    """Another writer: load, change, write atomically (as the server does)."""
    document = json.loads(path.read_text())
    edit(document["runs"])
    write_text_atomic(path, json.dumps(document, indent=2))


def events_of(path: Path, run_id: str) -> list[dict[str, Any]]:
    record = json.loads(path.read_text())["runs"][run_id]
    return record["checkpoint"]["lifecycle_history"]


# -- pure parts of the table ---------------------------------------------------------------


def fixture_rows(now_ms: int) -> dict[str, RunRow]:
    from tandem_tui.source.file.store import read_runs_file
    from tandem_tui.domain.view import RunsView

    runs = read_runs_file(FIXTURES / "runs_v1.json", now_ms=now_ms)
    return build_rows(runs, RunsView.build(runs, now_ms=now_ms, max_concurrent_runs=8), now_ms)


def test_rows_say_why_queued_runs_wait(fixture_now_ms):
    rows = fixture_rows(fixture_now_ms)
    assert rows["run-da-0019"].why == "lock · run-rn-0142"
    assert rows["run-ir-0089"].why == "rate limit · anthropic"
    assert rows["run-ib-0007"].why.startswith("capacity")
    assert rows["run-rn-0142"].why == ""


def test_the_filter_matches_id_automation_status_reason_and_workspace(fixture_now_ms):
    row = fixture_rows(fixture_now_ms)["run-da-0019"]
    for needle in ("da-0019", "dependency", "queued", "workspace_lock", "docs-site"):
        assert row_matches(row, needle, None), needle
    assert not row_matches(row, "billing", None)
    assert not row_matches(row, "", frozenset({RunStatus.RUNNING}))


def test_the_default_sort_puts_running_runs_first_and_finished_runs_last(fixture_now_ms):
    rows = sorted(fixture_rows(fixture_now_ms).values(), key=sort_key("status"))
    assert rows[0].status == RunStatus.RUNNING
    assert rows[-1].status == RunStatus.COMPLETED


def test_unchanged_runs_keep_their_row_objects_between_snapshots(fixture_now_ms):
    from tandem_tui.source.file.store import read_runs_file
    from tandem_tui.domain.view import RunsView

    runs = read_runs_file(FIXTURES / "runs_v1.json", now_ms=fixture_now_ms)
    view = RunsView.build(runs, now_ms=fixture_now_ms, max_concurrent_runs=8)
    first = build_rows(runs, view, fixture_now_ms)
    second = build_rows(runs, view, fixture_now_ms, previous=first, changed={"run-rn-0142"})
    assert second["run-rn-0139"] is first["run-rn-0139"]
    assert second["run-rn-0142"] is not first["run-rn-0142"]
    # Queued rows are recomputed (their reason depends on other runs) but kept when equal.
    assert second["run-ib-0007"] is first["run-ib-0007"]


def test_columns_fit_a_wide_terminal_and_keep_a_readable_detail_on_a_narrow_one(fixture_now_ms):
    rows = list(fixture_rows(fixture_now_ms).values())
    wide = column_widths(rows, 120, padding=1)
    shown = [width for width in wide.values() if width]
    assert sum(shown) + 2 * len(shown) == 120
    narrow = column_widths(rows, 79, padding=1)
    assert narrow["detail"] >= 12 and narrow["id"] == len("run-etl-0311")


def test_the_id_column_is_as_wide_as_the_longest_id_where_the_terminal_has_room(fixture_now_ms):
    rows = list(fixture_rows(fixture_now_ms).values())
    long_id = "ledger-reconcile-2026-11-29T21:00:00Z-9cff9559"
    rows.append(replace(rows[0], run_id=long_id))
    assert column_widths(rows, 159)["id"] == len(long_id)
    narrow = column_widths(rows, 79)["id"]
    assert 12 <= narrow < len(long_id)


def test_a_long_id_is_elided_in_the_middle_so_its_tail_stays():
    assert elide_middle("ledger-reconcile-2026-11-29-9cff9559", 17) == "ledger-r…9cff9559"
    assert elide_middle("short", 17) == "short"


# -- static app ------------------------------------------------------------------------------


async def test_markup_and_ansi_in_a_runs_detail_render_literally(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        cell = table_of(app).get_cell("run-ir-0085", "detail")
        assert "[bold]oops[/]" in cell.plain
        assert "\x1b" not in cell.plain and "\\x1b[31m" in cell.plain
        assert not any("bold" in str(span.style) for span in cell.spans)


async def test_slash_filters_live_enter_keeps_the_filter_and_escape_clears_it(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = table_of(app)
        await pilot.pause()
        total = table.row_count
        await pilot.press("slash", "i", "n", "v", "o")
        assert app.focused is app.screen.query_one("#filter", Input)
        assert table.row_count == 4  # the auto-invoice-reconcile runs
        await pilot.press("enter")
        assert app.focused is table and table.row_count == 4
        await pilot.press("escape")
        assert table.row_count == total and table.filter_text == ""


async def test_number_keys_switch_the_quick_status_filter(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = table_of(app)
        await pilot.pause()
        await pilot.press("3")
        assert table.status_filter == StatusFilter.QUEUED and table.row_count == 5
        await pilot.press("5")
        assert {cell_text(table, key, "status") for key in table.order} == {"failed", "blocked"}
        await pilot.press("1")
        assert table.row_count == 20


async def test_clicking_a_header_sorts_by_that_column_and_again_reverses(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        await pilot.pause()
        await pilot.click(RunsTable, offset=(4, 0))  # the "run" header
        ids = list(table.order)
        assert table.sort_column == "id" and ids == sorted(ids)
        await pilot.click(RunsTable, offset=(4, 0))
        ids = list(table.order)
        assert ids == sorted(ids, reverse=True)


async def test_s_cycles_the_sort_column_and_shift_s_reverses_it(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        await pilot.pause()
        await pilot.press("s")
        assert table.sort_column == "why"
        first = table.order[0]
        assert cell_text(table, first, "why") != ""
        await pilot.press("S")
        last = table.order[-1]
        assert table.sort_reverse and cell_text(table, last, "why") != ""


async def test_space_marks_rows_and_actions_preview_every_marked_run(app_factory):
    from tandem_tui.ui.screens.confirm import ConfirmActionScreen

    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        await pilot.pause()
        await pilot.press("space", "down", "space")
        assert len(table.marked) == 2
        assert table.get_cell(table.target_run_ids()[0], "mark").marked
        await pilot.press("p")
        assert isinstance(app.screen, ConfirmActionScreen)
        assert {t.run_id for t in app.screen.transitions} == set(table.marked)


async def test_switching_theme_recolours_the_status_cells(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = table_of(app)
        await pilot.pause()
        before = table.get_cell("run-rn-0142", "status").style
        app.theme = "textual-light"
        await pilot.pause()
        after = table.get_cell("run-rn-0142", "status").style
        assert after.color != before.color


async def test_read_only_hides_the_action_keys_and_says_so(app_factory):
    app = app_factory(watch=False, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        shown = {binding.key for (_, binding, enabled, _) in app.screen.active_bindings.values() if enabled}
        assert not {"p", "r", "e", "l"} & shown
        assert "READ-ONLY" in str(app.screen.query_one("#title").render())
        await pilot.press("p")
        assert isinstance(app.screen, DashboardScreen)


async def test_enter_opens_the_run_and_h_opens_history(app_factory):
    from tandem_tui.ui.screens.history import HistoryScreen
    from tandem_tui.ui.screens.run_detail import RunDetailScreen

    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        assert isinstance(app.screen, RunDetailScreen)
        assert app.screen.run.run_id == table_of(app).cursor_run_id
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("h")
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_question_mark_shows_the_keys_and_q_quits(app_factory):
    from textual.widgets import HelpPanel

    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        assert app.screen.query(HelpPanel)
        await pilot.press("question_mark")
        await pilot.pause()
        assert not app.screen.query(HelpPanel)
        await pilot.press("q")
    assert app.return_code == 0


async def test_the_command_palette_goes_to_a_run(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p", *"go to run sd-0054")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert table_of(app).cursor_run_id == "run-sd-0054"
        # "Go to run" is for looking at it: the run opens.
        from tandem_tui.ui.screens.run_detail import RunDetailScreen

        assert isinstance(app.screen, RunDetailScreen) and app.screen.run.run_id == "run-sd-0054"


async def test_a_missing_runs_file_opens_an_empty_state_that_says_where_it_looked(tmp_path, app_factory):
    missing = tmp_path / "nowhere" / "automation_v2_runs.json"
    app = app_factory(missing, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        message = str(app.screen.query_one("#empty").render())
        assert str(missing) in message and "--runs-file PATH" in message and "--demo" in message
        assert not app.screen.query_one(StaleBanner).has_class("-stale")


async def test_a_newer_schema_at_start_shows_the_stale_banner(tmp_path, app_factory):
    path = tmp_path / "automation_v2_runs.json"
    shutil.copyfile(FIXTURES / "runs_newer_schema.json", path)
    app = app_factory(path, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        banner = app.screen.query_one(StaleBanner)
        assert banner.has_class("-stale")
        assert "schema" in str(banner.render()).lower()


async def test_a_big_table_draws_only_the_lines_on_screen_and_a_tick_redraws_only_those(tmp_path, app_factory, clock):
    template = json.loads((FIXTURES / "runs_v1.json").read_text())["runs"]["run-rn-0142"]
    count = 3000
    runs = {f"run-big-{i:04d}": {**template, "run_id": f"run-big-{i:04d}"} for i in range(count)}
    path = tmp_path / "automation_v2_runs.json"
    path.write_text(json.dumps({"schema_version": 1, "runs": runs}))
    app = app_factory(path, watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = table_of(app)
        await wait_until(pilot, lambda: table.row_count == count)
        # ties sort by id
        assert table.order == sorted(runs)
        drawn: list[str] = []
        row_strip = table._row_strip
        table._row_strip = lambda run_id: (drawn.append(run_id), row_strip(run_id))[1]
        clock.advance(1_000)
        app.dashboard.tick()
        await pilot.pause()
        assert drawn and len(set(drawn)) <= table.size.height
        assert set(drawn) <= set(table.order[: table.size.height])


async def test_the_dashboard_posts_requests_up_and_calls_nothing_on_the_app(clock):
    """On the bare test host (no console methods at all) every request is a message."""
    app = Host(DashboardScreen(location="memory://x", summary="", clock=clock, blink=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("h", "p", "l")
        await pilot.pause()
        assert [type(m) for m in app.requests] == [
            DashboardScreen.OpenHistory,
            DashboardScreen.ActionRequested,
            DashboardScreen.ActionRequested,
        ]
        assert [(m.kind, m.run_ids) for m in app.requests[1:]] == [("pause", []), ("release_lock", [])]


async def test_a_read_only_dashboard_posts_no_action_request(clock):
    app = Host(DashboardScreen(location="memory://x", summary="", clock=clock, read_only=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("p", "r", "e", "l")
        await pilot.pause()
        assert app.requests == []


# -- live app on a real file -------------------------------------------------------------------


async def test_pause_with_a_reason_writes_the_file_and_the_row_follows(app_factory, runs_file):
    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        await wait_until(pilot, lambda: table.row_count == 20)
        table.go_to("run-rn-0142")
        await pilot.press("p")
        await pilot.pause()
        await pilot.press(*"maintenance window", "enter")
        await wait_until(pilot, lambda: cell_text(table, "run-rn-0142", "status") == "paused")
        assert table.cursor_run_id == "run-rn-0142"
    record = json.loads(runs_file.read_text())["runs"]["run-rn-0142"]
    assert record["status"] == "paused"
    assert record["pause_reason"] == "maintenance window"
    last = events_of(runs_file, "run-rn-0142")[-1]
    assert last["event"] == "run_paused" and last["reason"] == "maintenance window"


async def test_a_bulk_pause_acts_on_every_marked_run_and_clears_the_marks(app_factory, runs_file):
    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        await wait_until(pilot, lambda: table.row_count == 20)
        for run_id in ("run-ib-0007", "run-ir-0089"):
            table.go_to(run_id)
            await pilot.press("space")
        await pilot.press("p")
        await pilot.pause()
        await pilot.press("enter")  # the default reason
        await wait_until(
            pilot,
            lambda: {cell_text(table, r, "status") for r in ("run-ib-0007", "run-ir-0089")} == {"paused"},
        )
        assert not table.marked
    runs = json.loads(runs_file.read_text())["runs"]
    assert runs["run-ib-0007"]["pause_reason"] == runs["run-ir-0089"]["pause_reason"] == "paused by operator"


async def test_a_refused_action_says_why_and_leaves_the_file_byte_identical(app_factory, runs_file):
    before = runs_file.read_bytes()
    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        await wait_until(pilot, lambda: table.row_count == 20)
        table.go_to("run-rn-0139")  # completed: nothing to pause
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        messages = [n.message for n in app._notifications]
        assert any("run-rn-0139" in m and "completed" in m for m in messages), messages
    assert runs_file.read_bytes() == before


async def test_a_run_whose_status_changed_after_the_preview_is_refused(app_factory, runs_file, clock):
    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        await wait_until(pilot, lambda: table.row_count == 20)
        table.go_to("run-ib-0008")
        await pilot.press("p")
        await pilot.pause()

        def someone_else_pauses(runs: dict[str, Any]) -> None:
            runs["run-ib-0008"]["updated_at_ms"] += 1_000
            runs["run-ib-0008"]["status"] = "paused"

        edit_runs_file(runs_file, someone_else_pauses)
        after_foreign_write = runs_file.read_bytes()
        await pilot.press(*"too late", "enter")
        await wait_until(pilot, lambda: any(n.title == "Refused" for n in app._notifications))
    assert runs_file.read_bytes() == after_foreign_write


async def test_engine_progress_after_the_preview_does_not_block_the_pause(app_factory, runs_file, clock):
    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        await wait_until(pilot, lambda: table.row_count == 20)
        table.go_to("run-rn-0142")
        await pilot.press("p")
        await pilot.pause()

        def engine_progress(runs: dict[str, Any]) -> None:
            runs["run-rn-0142"]["updated_at_ms"] += 1_000
            runs["run-rn-0142"]["detail"] = "running node `draft_notes` attempt 1 (tokens 12k)"

        edit_runs_file(runs_file, engine_progress)
        await pilot.press(*"stuck draft", "enter")
        await wait_until(pilot, lambda: json.loads(runs_file.read_text())["runs"]["run-rn-0142"]["status"] == "paused")
    run = json.loads(runs_file.read_text())["runs"]["run-rn-0142"]
    assert run["pause_reason"] == "stuck draft"
    # Applied to the latest content: the engine's write is kept, not overwritten.
    assert run["detail"] == "running node `draft_notes` attempt 1 (tokens 12k)"


async def test_an_external_write_shows_up_without_a_key_press(app_factory, runs_file):
    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        await wait_until(pilot, lambda: table.row_count == 20)
        table.go_to("run-sd-0054")
        new = json.loads((FIXTURES / "runs_v1.json").read_text())["runs"]["run-ib-0008"]

        def engine_writes(runs: dict[str, Any]) -> None:
            runs["run-rn-0142"]["status"] = "completed"
            runs["run-zz-0001"] = {**new, "run_id": "run-zz-0001", "detail": "[red]new[/red]"}

        edit_runs_file(runs_file, engine_writes)
        await wait_until(pilot, lambda: table.row_count == 21)
        await wait_until(pilot, lambda: cell_text(table, "run-rn-0142", "status") == "completed")
        assert cell_text(table, "run-zz-0001", "detail") == "[red]new[/red]"
        assert table.cursor_run_id == "run-sd-0054"


async def test_an_open_run_detail_follows_external_writes(app_factory, runs_file):
    from tandem_tui.ui.screens.run_detail import RunDetailScreen

    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        await wait_until(pilot, lambda: table.row_count == 20)
        table.go_to("run-sd-0057")
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, RunDetailScreen)

        def settle(runs: dict[str, Any]) -> None:
            runs["run-sd-0057"]["status"] = "paused"

        edit_runs_file(runs_file, settle)
        await wait_until(pilot, lambda: detail.run.status == RunStatus.PAUSED)


async def test_a_runs_file_that_appears_later_replaces_the_empty_state(tmp_path, app_factory):
    path = tmp_path / "automation_v2_runs.json"
    app = app_factory(path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.screen.query_one("#runs-pane")
        await wait_until(pilot, lambda: pane.has_class("-empty") and app.state is not None)
        shutil.copyfile(FIXTURES / "runs_v1.json", path)
        table = table_of(app)
        # Focus moves a moment after the rows show (Widget.focus is applied later).
        await wait_until(pilot, lambda: table.row_count == 20 and app.focused is table)
        assert not pane.has_class("-empty") and app.focused is table


async def test_an_invalid_write_shows_the_stale_banner_and_a_good_one_clears_it(app_factory, runs_file):
    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        banner = app.screen.query_one(StaleBanner)
        await wait_until(pilot, lambda: table.row_count == 20)
        good = runs_file.read_text()
        write_text_atomic(runs_file, good[: len(good) // 2])
        await wait_until(pilot, lambda: banner.has_class("-stale"))
        assert table.row_count == 20
        write_text_atomic(runs_file, good)
        await wait_until(pilot, lambda: not banner.has_class("-stale"))


# -- snapshots ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_dashboard_snapshot(snap_compare, app_factory, relative_runs_file, size):
    assert snap_compare(app_factory(relative_runs_file, watch=False), terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_dashboard_with_a_filter_typed_snapshot(snap_compare, app_factory, relative_runs_file, size):
    app = app_factory(relative_runs_file, watch=False)
    assert snap_compare(app, press=["slash", *"queued"], terminal_size=size)


def test_stale_banner_snapshot(snap_compare, app_factory, relative_runs_file):
    shutil.copyfile(FIXTURES / "runs_newer_schema.json", relative_runs_file)
    assert snap_compare(app_factory(relative_runs_file, watch=False), terminal_size=(80, 24))


# -- header and locks ------------------------------------------------------------------------


def fixture_state(now_ms: int):
    from tandem_tui.source.file.store import read_runs_file
    from tandem_tui.domain.view import RunsView
    from tandem_tui.domain.snapshot import Freshness, Snapshot
    from tandem_tui.ui.screens.dashboard import build_state

    runs = read_runs_file(FIXTURES / "runs_v1.json", now_ms=now_ms)
    snapshot = Snapshot(
        location=str(FIXTURES / "runs_v1.json"),
        runs=runs,
        view=RunsView.build(runs, now_ms=now_ms, max_concurrent_runs=8),
        freshness=Freshness(read_at_ms=now_ms),
    )
    return build_state(snapshot, None, now_ms=now_ms)


def test_the_header_counts_queued_runs_by_reason_like_the_status_report(fixture_now_ms):
    from tandem_tui.ui.widgets.metrics_bar import metrics_content

    state = fixture_state(fixture_now_ms)
    text = metrics_content(state.metrics).plain.replace("\u00a0", " ")
    assert "active 3/8" in text
    assert "queued 5: capacity 1 · lock 1 · rate limit 1 · retry 1 · ready 1" in text


def test_the_locks_panel_names_holders_queued_runs_and_expired_claims(fixture_now_ms):
    from tandem_tui.ui.widgets.locks_panel import locks_content

    lines = locks_content(fixture_state(fixture_now_ms).locks).plain.splitlines()
    billing = lines.index("/srv/tandem/workspaces/billing-api")
    assert "run-ir-0088 running" in lines[billing + 1]
    assert "claim lease expired" in lines[billing + 2]
    docs = lines.index("/srv/tandem/workspaces/docs-site")
    assert "run-rn-0142 running" in lines[docs + 1]
    assert "queued 1: run-da-0019" in lines[docs + 2]
    assert not any("claim lease expired" in line for line in lines[docs : docs + 3])


async def test_lock_holders_with_long_ids_keep_their_distinguishing_tail_at_80_columns(tmp_path, app_factory):
    runs = json.loads((FIXTURES / "runs_v1.json").read_text())["runs"]
    holder = "ledger-reconcile-nightly-2026-11-29-9cff9559"
    runs[holder] = {**runs.pop("run-rn-0142"), "run_id": holder}
    path = tmp_path / "automation_v2_runs.json"
    path.write_text(json.dumps({"schema_version": 1, "runs": runs}))
    app = app_factory(path, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = table_of(app)
        lines = [table.render_line(y).text for y in range(table.size.height)]
        row = next(line for line in lines if "run-da-0019" in line)
        assert "9cff9559" in row  # the queued run's lock holder, elided in the middle
        held = next(line for line in lines if "running" in line and "…" in line)
        assert "9cff9559" in held


# -- the header follows the engine -----------------------------------------------------------


def header_text(app: Any) -> str:
    return str(app.dashboard.query_one("#title").render())


async def test_the_header_says_where_actions_go_and_follows_the_engine_within_2_s(serving_engine, clock):
    """Issue 10 (g): a real serving engine on 127.0.0.1, stopped and started again."""
    from tandem_tui.source.open import file_source
    from tandem_tui.ui.app import make_app

    engine = serving_engine("--pace", "0.1", "--rate", "2", "--max-concurrent", "3", "--seed", "5")
    source = file_source(engine.runs_file, clock=clock, env=engine.env(), console=True)
    app = make_app(source, clock=clock)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: "engine live · actions via API" in header_text(app))
            engine.stop()
            stopped = time.monotonic()
            await wait_until(pilot, lambda: "engine stopped · actions write the runs file" in header_text(app))
            assert time.monotonic() - stopped < 2.0
            again = serving_engine(
                "--pace", "0.1", "--rate", "2", "--max-concurrent", "3", "--seed", "5",
                "--serve", str(engine.port),  # where the console's environment looks
                state_dir=engine.state_dir,
            )
            started = time.monotonic()
            await wait_until(pilot, lambda: "engine live" in header_text(app))
            assert time.monotonic() - started < 2.0
    finally:
        source.close()


# -- an operator's habits (issue 13, items 9 and 10) --------------------------------------------


def title_of(app: Any) -> str:
    from textual.content import Content

    return Content.from_markup(app.screen.query_one("#runs-pane").border_title).plain


async def test_escape_closes_the_key_help(app_factory):
    from textual.widgets import HelpPanel

    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        assert app.screen.query(HelpPanel)
        await pilot.press("escape")
        await pilot.pause()
        assert not app.screen.query(HelpPanel)
        assert isinstance(app.screen, DashboardScreen)


async def test_a_filter_puts_the_cursor_on_the_first_match_and_the_title_follows(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = table_of(app)
        await pilot.pause()
        await pilot.press("end")
        assert table.cursor_row == 19
        await pilot.press("3")
        await pilot.pause()
        assert table.cursor_row == 0 and table.cursor_run_id in table.order[:1]
        assert "runs 5 of 20" in title_of(app)
        await pilot.press("1", "slash", *"etl", "enter")
        await pilot.pause()
        assert table.cursor_run_id == table.order[0] and "etl" in table.cursor_run_id
        await pilot.press("escape")
        await pilot.pause()
        assert title_of(app).startswith("runs 20  sort")


async def test_home_end_g_and_shift_g_jump_to_the_first_and_last_run(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 12)) as pilot:
        table = table_of(app)
        await pilot.pause()
        await pilot.press("G")
        assert table.cursor_row == 19 and table.scroll_y > 0
        await pilot.press("g")
        assert table.cursor_row == 0 and table.scroll_y == 0
        await pilot.press("end")
        assert table.cursor_run_id == table.order[-1]
        await pilot.press("home")
        assert table.cursor_run_id == table.order[0]


async def test_the_runs_table_has_no_horizontal_scrollbar_at_80_columns(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = table_of(app)
        assert not table.show_horizontal_scrollbar
        await pilot.press("right")
        assert table.scroll_x > 0  # automation and detail are a sideways key away


async def test_y_copies_the_selected_run_id(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("down", "y")
        assert app.clipboard == table_of(app).cursor_run_id == table_of(app).order[1]


async def test_o_jumps_from_a_queued_run_to_the_run_holding_its_lock(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = table_of(app)
        await pilot.pause()
        table.go_to("run-da-0019")  # waits for the docs-site lock
        await pilot.press("o")
        assert table.cursor_run_id == "run-rn-0142"


async def test_the_release_lock_toast_says_release_lock(app_factory, runs_file):
    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        await wait_until(pilot, lambda: table.row_count == 20)
        table.go_to("run-ir-0088")  # its claim lease expired
        await pilot.press("l")
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: any(n.title in ("release lock", "release_lock") for n in app._notifications))
        assert [n.title for n in app._notifications if "release" in (n.title or "")] == ["release lock"]


def test_sixteen_colour_terminals_keep_a_distinct_colour_per_status():
    from tandem_tui.ui.widgets.status_style import ANSI_STATUS_COLORS

    from tandem_tui.ui.widgets.runs_table import row_cells

    assert set(ANSI_STATUS_COLORS) == set(RunStatus)
    assert len(set(ANSI_STATUS_COLORS.values())) == len(RunStatus)
    row = fixture_rows(1795446000000)["run-sd-0057"]  # pausing
    cell = row_cells(row, 1795446000000, {"text-accent": "#ffa62b"}, False, ansi16=True)[3]
    assert cell.style.color.name == "cyan"


@pytest.mark.parametrize("column", ["id", "status", "why", "wait", "nodes", "automation", "detail"])
@pytest.mark.parametrize("reverse", [False, True])
def test_the_fast_sort_orders_rows_as_the_sort_key_does(fixture_now_ms, column, reverse):
    from tandem_tui.ui.widgets.runs_table import sorted_rows

    rows = list(fixture_rows(fixture_now_ms).values())
    expected = sorted(rows, key=sort_key(column), reverse=reverse)
    assert [r.run_id for r in sorted_rows(rows, column, reverse)] == [r.run_id for r in expected]


# -- a fleet of engines (issue 12, item 3) ----------------------------------------------------


def fleet_state(now_ms: int):
    from tandem_tui.domain.snapshot import Freshness
    from tandem_tui.domain.view import RunsView
    from tandem_tui.source.file.store import read_runs_file
    from tandem_tui.source.postgres.fleet import EngineInfo, FleetView, fleet_key
    from tandem_tui.source.postgres.source import FleetSnapshot
    from tandem_tui.ui.screens.dashboard import build_state

    runs = read_runs_file(FIXTURES / "runs_v1.json", now_ms=now_ms)
    split = {"tandem_rt_alpha": {}, "tandem_rt_beta": {}}
    for index, (run_id, run) in enumerate(sorted(runs.items())):
        split["tandem_rt_alpha" if index % 2 else "tandem_rt_beta"][run_id] = run
    keyed = {fleet_key(engine, run_id): run for engine, part in split.items() for run_id, run in part.items()}
    views = {engine: RunsView.build(part, now_ms=now_ms, max_concurrent_runs=4) for engine, part in split.items()}
    snapshot = FleetSnapshot(
        location="postgresql://fleet",
        runs=keyed,
        view=FleetView(views, keyed),  # type: ignore[arg-type] - a RunsView look-alike
        freshness=Freshness(read_at_ms=now_ms),
        engines={
            "tandem_rt_alpha": EngineInfo("tandem_rt_alpha", live=True, runs=10),
            "tandem_rt_beta": EngineInfo("tandem_rt_beta", live=False, runs=10),
        },
    )
    return build_state(snapshot, None, now_ms=now_ms)


async def test_a_fleet_shows_an_engine_column_a_filter_by_engine_and_the_fleet_totals(clock, fixture_now_ms):
    screen = DashboardScreen(location="postgresql://fleet", summary="", clock=clock, blink=False)
    app = Host(screen)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        screen.show_state(fleet_state(fixture_now_ms))
        await pilot.pause()
        table = screen.query_one(RunsTable)
        assert table.engines_shown and table.widths["engine"] >= len("tandem_rt")
        header = table.render_line(0).text
        assert "engine" in header
        row = next(table.render_line(y).text for y in range(1, 21) if "run-rn-0142" in table.render_line(y).text)
        assert ("alpha" in row or "beta" in row) and "_beta/run" not in row  # the bare id, the engine beside it
        await pilot.press("f")
        assert table.engine_filter == "tandem_rt_alpha" and table.row_count == 10
        assert all(run_id.startswith("tandem_rt_alpha/") for run_id in table.order)
        assert "engine tandem_rt_alpha" in title_of(app)
        await pilot.press("f", "f")
        assert table.engine_filter == "" and table.row_count == 20
        figures = str(screen.query_one("#figures").render())
        assert "fleet 2 engines · 1 live" in figures.replace("\u00a0", " ")
        assert "active 3/8" in figures.replace("\u00a0", " ")


async def test_one_engine_shows_no_engine_column_and_no_fleet_line(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        table = table_of(app)
        assert not table.engines_shown and "engine" not in table.render_line(0).text
        assert "fleet" not in str(app.screen.query_one("#figures").render())
        await pilot.press("f")
        assert table.engine_filter == ""


async def test_at_60_columns_the_footer_keeps_question_mark_help(app_factory):
    from textual.widgets._footer import FooterKey

    app = app_factory(watch=False)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        [help_key] = [k for k in app.screen.query(FooterKey) if k.action.endswith("toggle_help")]
        assert help_key.region.width > 0 and help_key.region.right <= 60


async def test_release_lock_from_the_locks_panel_acts_on_the_selected_holder(app_factory):
    from tandem_tui.ui.screens.confirm import ConfirmActionScreen
    from tandem_tui.ui.widgets.locks_panel import LocksPanel

    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        panel = app.screen.query_one(LocksPanel)
        panel.focus()
        await pilot.pause()
        assert panel.selected == "run-ir-0088"  # billing-api, the first workspace
        await pilot.press("down")
        assert panel.selected == "run-etl-0311"
        assert "▶run-etl-0311" in str(panel.query_one("#locks-body").render())
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmActionScreen)
        assert [t.run_id for t in app.screen.transitions] == ["run-etl-0311"]
        await pilot.press("escape")
        await pilot.pause()
        panel.focus()
        await pilot.press("enter")
        assert table_of(app).cursor_run_id == "run-etl-0311" and app.focused is table_of(app)


async def test_a_tick_moves_the_ages_of_finished_runs_on_too(app_factory, clock):
    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        table = table_of(app)
        line = 1 + table.order.index("run-rn-0139")  # completed 3d08h ago
        assert "3d08h" in table.render_line(line).text
        clock.advance(2 * 3_600_000)
        app.dashboard.tick()
        await pilot.pause()
        assert "3d10h" in table.render_line(line).text


def test_at_80_columns_the_metrics_line_breaks_between_items_never_inside_one():
    from tandem_tui.ui.widgets.metrics_bar import Metrics, metrics_content

    busy = Metrics(
        active=12, capacity=16, admitted=1234, completed=1200, avg_wait_ms=65_000, p95_wait_ms=85_000,
        queued_by_reason={"capacity": 12, "workspace_lock": 4, "rate_limit": 3, "retry_backoff": 2, "ready": 1},
    )
    lines = metrics_content(busy, 78).plain.replace("\u00a0", " ").split("\n")
    assert len(lines) == 2 and all(len(line) <= 78 for line in lines)
    for item in ("ready 1", "p95 1m25s", "wait avg 1m05s", "rate limit 3", "queued 22:"):
        assert any(item in line for line in lines), item


async def test_a_changed_since_you_looked_refusal_offers_r_to_see_the_run_now_and_retry(app_factory, runs_file):
    from tandem_tui.ui.screens.confirm import ConfirmActionScreen

    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        table = table_of(app)
        await wait_until(pilot, lambda: table.row_count == 20)
        table.go_to("run-ib-0008")  # queued
        await pilot.press("p")
        await pilot.pause()

        def the_engine_starts_it(runs: dict[str, Any]) -> None:
            runs["run-ib-0008"]["updated_at_ms"] += 1_000
            runs["run-ib-0008"]["status"] = "running"

        edit_runs_file(runs_file, the_engine_starts_it)
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("R: see it now" in n.message for n in app._notifications))
        await wait_until(pilot, lambda: cell_text(table, "run-ib-0008", "status") == "running")
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmActionScreen)
        [transition] = app.screen.transitions
        assert transition.run_id == "run-ib-0008" and transition.from_status.value == "running"
