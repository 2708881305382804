"""Timestamps beyond year 9999 (valid u64s): every surface shows them (as the number, out
of range) and none raises: ``history``, ``runs``, ``status``, an action, the archive's
month list, the history screen and a run's detail in the console."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem_tui.cli import main as cli
from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.file.shards import history_root, utc_month
from tandem_tui.source.open import file_source
from tandem_tui.source.sqlite.source import month_of

#: The largest u64 the server accepts for a timestamp: year ~584 million.
FAR = 2**64 - 1
FAR_SHOWN = f"{FAR}ms (out of range)"


def far_record(run_id: str) -> dict:
    return {
        "run_id": run_id,
        "automation_id": "far-future",
        "trigger_type": "scheduled",
        "status": "completed",
        "checkpoint": {"lifecycle_history": [
            {"event": "run_created", "recorded_at_ms": 1_000, "reason": "early"},
            {"event": "run_completed", "recorded_at_ms": FAR, "reason": "late"},
        ]},
        "created_at_ms": 1_000,
        "updated_at_ms": FAR,
        "started_at_ms": 2_000,
        "finished_at_ms": FAR,
    }


@pytest.fixture
def far_file(runs_file: Path) -> Path:
    """The fixture with ``run-rn-0142``'s update and events at :data:`FAR`, a completed
    far-future shard filed under ``9999/12``, and a stray ``2026/13`` directory."""
    document = json.loads(runs_file.read_text())
    run = document["runs"]["run-rn-0142"]
    run["updated_at_ms"] = FAR
    for record in run["checkpoint"]["lifecycle_history"]:
        record["recorded_at_ms"] = FAR
    runs_file.write_text(json.dumps(document))
    for year, month, run_id in (("9999", "12", "run-far-1"), ("2026", "13", "run-far-13")):
        directory = history_root(runs_file) / year / month
        directory.mkdir(parents=True)
        (directory / f"{run_id}.json").write_text(json.dumps({"schema_version": 1, "run": far_record(run_id)}))
    return runs_file


def _run(capsys, now_ms: int, *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv), clock=ManualClock(now_ms))
    out, err = capsys.readouterr()
    return code, out, err


def test_history_of_a_run_with_events_after_year_9999_shows_the_numbers(far_file, capsys, fixture_now_ms):
    code, out, err = _run(capsys, fixture_now_ms, "history", "run-rn-0142", "--runs-file", str(far_file))
    assert (code, err) == (0, "")
    assert FAR_SHOWN in out
    code, out, err = _run(capsys, fixture_now_ms, "history", "run-far-1", "--runs-file", str(far_file), "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["lifecycle_history"][1]["recorded_at_ms"] == FAR


@pytest.mark.parametrize("argv", [("runs",), ("runs", "--json"), ("status",), ("status", "--json")])
def test_listings_and_figures_with_a_far_timestamp_do_not_raise(far_file, capsys, fixture_now_ms, argv):
    code, _, err = _run(capsys, fixture_now_ms, *argv, "--runs-file", str(far_file))
    assert (code, err) == (0, "")


def test_an_action_on_a_run_updated_after_year_9999_works(far_file, capsys, fixture_now_ms):
    code, _, err = _run(
        capsys, fixture_now_ms, "pause", "run-rn-0142", "--runs-file", str(far_file), "--actor", "op", "--reason", "x"
    )
    assert (code, err) == (0, "")
    assert json.loads(far_file.read_text())["runs"]["run-rn-0142"]["status"] == "paused"


def test_the_archive_lists_the_last_month_and_skips_a_directory_no_month_is_named_by(far_file):
    source = file_source(far_file, env={})
    months = source.archive_months()
    assert next(iter(months)) == (9999, 12)
    assert [entry.name for entry in months[(9999, 12)]] == ["run-far-1"]
    assert all(1 <= month <= 12 for _, month in months)
    (history_root(far_file) / "2026" / "²").mkdir()
    source.archive_months()


def test_a_month_beyond_any_calendar_is_the_last_one_representable():
    assert utc_month(FAR) == (9999, 12)
    assert month_of(1_000, FAR) == (9999, 12)
    assert utc_month(1_795_446_000_000) == (2026, 11)


@pytest.mark.anyio
async def test_the_history_screen_and_a_far_runs_detail_open_in_the_console(far_file, fixture_now_ms):
    from textual.widgets import DataTable

    from tandem_tui.ui.app import make_app
    from tandem_tui.ui.screens.history import HistoryScreen
    from tandem_tui.ui.screens.run_detail import EventMetadataScreen, RunDetailScreen

    clock = ManualClock(fixture_now_ms)
    source = file_source(far_file, clock=clock, env={}, console=True)
    app = make_app(source, clock=clock, watch=False)
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.pause()
            app.open_run("run-rn-0142")
            await pilot.pause()
            assert isinstance(app.screen, RunDetailScreen)
            await pilot.press("j", "enter")
            await pilot.pause()
            assert isinstance(app.screen, EventMetadataScreen)
            await pilot.press("escape", "escape", "h")
            for _ in range(3):
                await app.workers.wait_for_complete()
                await pilot.pause()
            screen = app.screen
            assert isinstance(screen, HistoryScreen)
            assert screen.month == (9999, 12)
            table = screen.query_one("#history-table", DataTable)
            assert table.get_row_at(0)[0].plain == "run-far-1"
            await pilot.press("enter")
            await pilot.pause()
            await pilot.pause()
            assert isinstance(app.screen, RunDetailScreen)
            assert app.screen.run.run_id == "run-far-1"
        assert app.return_code in (None, 0)
    finally:
        source.close()
