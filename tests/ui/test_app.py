"""The app factory and the console command: one way to build the app, styles found both
from a checkout and from a wheel, the console's options, and the --demo engine's life."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest

from tandem_tui.commands import console
from tandem_tui.commands.options import CommandError
from tandem_tui.ui.app import TandemApp, make_app, style_paths, styles_dir
from tandem_tui.ui.widgets.runs_table import RunsTable

REPO = Path(__file__).resolve().parents[2]


def test_styles_come_from_the_checkout_when_not_installed_as_a_wheel():
    assert styles_dir() == REPO / "styles"
    assert [p.name for p in style_paths()] == ["app.tcss", "dashboard.tcss"]


def test_the_console_options_live_on_the_top_level_parser():
    parser = argparse.ArgumentParser()
    console.configure(parser)
    args = parser.parse_args(["--runs-file", "x.json", "--read-only", "--poll"])
    assert args.handler is console.run
    assert (args.runs_file, args.read_only, args.poll, args.demo) == (Path("x.json"), True, True, False)
    assert not hasattr(parser.parse_args([]), "runs_file")  # default comes from the env


def test_demo_with_a_runs_file_is_a_usage_error():
    parser = argparse.ArgumentParser()
    console.configure(parser)
    with pytest.raises(CommandError) as raised:
        console.run(parser.parse_args(["--demo", "--runs-file", "x.json"]))
    assert raised.value.exit_code == 2


def test_demo_runs_the_engine_in_a_child_process_and_cleans_up(tmp_path):
    with console.demo_runs_file(timeout=20) as runs_file:
        state_dir = runs_file.parent.parent
        assert runs_file.exists()
        first = runs_file.stat().st_mtime_ns
        deadline = time.monotonic() + 10
        while runs_file.stat().st_mtime_ns == first and time.monotonic() < deadline:
            time.sleep(0.05)  # the engine is a real process: give it time to write again
        assert runs_file.stat().st_mtime_ns != first
    assert not state_dir.exists()


@pytest.mark.anyio
async def test_a_given_snapshot_makes_a_static_app_without_a_watcher(runs_file, clock, source_factory):
    source = source_factory(runs_file)
    snapshot = source.read()
    app = make_app(source, clock=clock, snapshot=snapshot)
    assert isinstance(app, TandemApp) and app.static
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.dashboard.query_one(RunsTable).row_count == len(snapshot.runs)
        assert not app.watching.is_set()
        assert not [w for w in app.workers if w.group == "watch"]


@pytest.mark.anyio
async def test_the_watch_worker_stops_when_the_app_exits(app_factory):
    app = app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 10
        while not app.watching.is_set() and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert app.watching.is_set()
    deadline = time.monotonic() + 5
    while app.watching.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not app.watching.is_set()
