"""The app factory and the console command: one way to build the app, styles found both
from a checkout and from a wheel, the console's options, and the --demo engine's life."""

from __future__ import annotations

import argparse
import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tandem_tui.commands import console
from tandem_tui.commands.options import CommandError
from tandem_tui.domain.actions import ActionKind, ActionRequest, ActionResult, Refusal, apply_action, decide
from tandem_tui.domain.models import dump_run, parse_run
from tandem_tui.domain.snapshot import Freshness, Snapshot
from tandem_tui.domain.view import RunsView
from tandem_tui.source.base import (
    ArchivedRead,
    ArchiveEntry,
    FoundRun,
    Route,
    SourceDescription,
    SourceError,
)
from tandem_tui.ui.app import TandemApp, make_app, style_paths, styles_dir
from tandem_tui.ui.screens.dashboard import DashboardScreen
from tandem_tui.ui.screens.history import HistoryScreen
from tandem_tui.ui.screens.run_detail import RunDetailScreen
from tandem_tui.ui.widgets.metrics_bar import StaleBanner
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
    assert parser.parse_args(["--state-dir", "st"]).state_dir == Path("st")


@pytest.mark.parametrize("where", [["--runs-file", "x.json"], ["--state-dir", "state"]])
def test_demo_with_a_named_source_is_a_usage_error(where):
    parser = argparse.ArgumentParser()
    console.configure(parser)
    with pytest.raises(CommandError) as raised:
        console.run(parser.parse_args(["--demo", *where]))
    assert raised.value.exit_code == 2
    assert str(raised.value) == f"--demo makes its own runs file; drop {where[0]}"


def test_a_runs_file_and_a_state_dir_together_are_a_usage_error_in_one_line():
    parser = argparse.ArgumentParser()
    console.configure(parser)
    with pytest.raises(CommandError) as raised:
        console.run(parser.parse_args(["--runs-file", "x.json", "--state-dir", "state"]))
    assert raised.value.exit_code == 2 and "\n" not in str(raised.value)


def test_demo_runs_the_engine_in_a_child_process_and_cleans_up(tmp_path):
    with console.demo_state_dir(timeout=20) as demo:
        state_dir = demo.state_dir
        assert demo.url.startswith("http://127.0.0.1:") and demo.token_file.is_file()
        runs_file = state_dir / "data" / "automation_v2_runs.json"
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



@pytest.mark.anyio
async def test_exit_hooks_run_once_as_soon_as_q_is_pressed_before_the_teardown(app_factory):
    app = app_factory(watch=False)
    heard: list[bool] = []
    # What the hook sees: the app still running (its teardown has not begun).
    app.exit_hooks.append(lambda: heard.append(app.is_running))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("q")
        await pilot.pause()
        app.exit()  # a second exit (a signal after q) calls nothing again
    assert heard == [True]

# -- the console talks to a RunsSource only ---------------------------------------------


class MemorySource:
    """A ``RunsSource`` holding its runs in memory: proof that the console needs nothing
    of a file. It has no ``load``: a static console on it reads once with ``read``. ``perform`` applies the domain's rules and publishes the result through
    ``follow``, as a real store's next snapshot would; ``fail_with`` makes every action
    fail as an unusable store does."""

    def __init__(self, runs_file: Path, now_ms: int, *, route: Route = Route.FILE, archive=None):
        document = json.loads(Path(runs_file).read_text())
        self.runs = {run_id: parse_run(record) for run_id, record in document["runs"].items()}
        self.now_ms = now_ms
        self.route = route
        self.archive: dict = archive or {}
        self.requests: list[ActionRequest] = []
        self.fail_with: str | None = None
        self.archive_reads: list[ArchiveEntry] = []
        self._changes: queue.Queue[frozenset[str]] = queue.Queue()
        self.closed = False

    def describe(self) -> SourceDescription:
        return SourceDescription(
            kind="memory",
            location="memory://test",
            route=self.route,
            summary="in memory · actions change a dict",
            why_read_only="nothing may act here" if self.route == Route.NONE else None,
        )

    def _snapshot(self, changed: frozenset[str]) -> Snapshot:
        runs = dict(self.runs)
        return Snapshot(
            location="memory://test",
            runs=runs,
            view=RunsView.build(runs, now_ms=self.now_ms, max_concurrent_runs=8),
            freshness=Freshness(read_at_ms=self.now_ms),
            changed=changed,
        )

    def read(self) -> Snapshot:
        return self._snapshot(frozenset(self.runs))

    def follow(self, stop: threading.Event) -> Iterator[Snapshot]:
        yield self.read()
        while not stop.is_set():
            try:
                changed = self._changes.get(timeout=0.02)
            except queue.Empty:
                continue
            yield self._snapshot(changed)

    def archive_months(self) -> dict:
        return {month: [read.entry for read in reads] for month, reads in self.archive.items()}

    def read_archived(self, entries) -> list[ArchivedRead]:
        self.archive_reads.extend(entries)
        by_key = {read.entry.key: read for reads in self.archive.values() for read in reads}
        return [by_key[entry.key] for entry in entries]

    def find_run(self, run_id: str) -> FoundRun | None:
        run = self.runs.get(run_id)
        return FoundRun(run, archived=False) if run is not None else None

    def full_runs(self, runs):
        return {run.run_id: run for run in runs}

    def keep_full(self, run_ids) -> None:
        pass

    def perform(self, request: ActionRequest) -> ActionResult:
        self.requests.append(request)
        if self.fail_with is not None:
            raise SourceError(self.fail_with)
        run = parse_run(dump_run(self.runs[request.run_id]))
        decision = decide(request, run, self.now_ms)
        if isinstance(decision, Refusal):
            return ActionResult(False, request.kind, run.run_id, run.status, None, decision.message)
        previous = run.status
        apply_action(run, decision, reason=request.reason, actor=request.actor or "?", now_ms=self.now_ms)
        self.runs = {**self.runs, run.run_id: run}
        self._changes.put(frozenset({run.run_id}))
        return ActionResult(True, request.kind, run.run_id, previous, run.status, "ok", run=run)

    def close(self) -> None:
        self.closed = True


async def wait_for(pilot, predicate, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not predicate():
        assert time.monotonic() < deadline, "the screen did not catch up before the deadline"
        await pilot.pause(0.05)


@pytest.mark.anyio
async def test_the_header_names_the_sources_location_and_summary(runs_file, clock, fixture_now_ms):
    app = make_app(MemorySource(runs_file, fixture_now_ms), clock=clock, watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        title = str(app.screen.query_one("#title").render())
        assert "memory://test" in title and "in memory · actions change a dict" in title


@pytest.mark.anyio
async def test_a_confirmed_action_goes_to_source_perform_and_comes_back_through_follow(
    runs_file, clock, fixture_now_ms
):
    source = MemorySource(runs_file, fixture_now_ms)
    app = make_app(source, clock=clock)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.dashboard.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 20)
        table.go_to("run-rn-0142")
        await pilot.press("p")
        await pilot.pause()
        await pilot.press(*"db upgrade", "enter")
        await wait_for(pilot, lambda: str(table.get_cell("run-rn-0142", "status").plain) == "paused")
    [request] = source.requests
    assert (request.kind, request.run_id, request.reason) == (ActionKind.PAUSE, "run-rn-0142", "db upgrade")
    assert request.expect_state is not None and request.actor


@pytest.mark.anyio
async def test_an_unusable_store_fails_an_action_in_one_line(runs_file, clock, fixture_now_ms):
    source = MemorySource(runs_file, fixture_now_ms)
    source.fail_with = "cannot lock the store:\n  permission denied"
    app = make_app(source, clock=clock, watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        app.dashboard.query_one(RunsTable).go_to("run-rn-0142")
        await pilot.press("p")
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(n.title == "Failed" for n in app._notifications))
        [failed] = [n.message for n in app._notifications if n.title == "Failed"]
        assert failed == "run-rn-0142: cannot lock the store: permission denied"


@pytest.mark.anyio
async def test_a_source_that_routes_no_action_makes_the_console_read_only(runs_file, clock, fixture_now_ms):
    source = MemorySource(runs_file, fixture_now_ms, route=Route.NONE)
    app = make_app(source, clock=clock, watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert app.read_only
        assert "READ-ONLY" in str(app.screen.query_one("#title").render())
        assert any("nothing may act here" in n.message for n in app._notifications)
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen) and source.requests == []


@pytest.mark.anyio
async def test_a_static_console_on_a_source_without_load_reads_it_once(runs_file, clock, fixture_now_ms):
    source = MemorySource(runs_file, fixture_now_ms)
    assert not hasattr(source, "load")
    app = make_app(source, clock=clock, watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.dashboard.query_one(RunsTable).row_count == 20


@pytest.mark.anyio
async def test_a_static_console_on_an_unreadable_source_shows_why_and_no_traceback(
    runs_file, clock, fixture_now_ms
):
    class Unreadable(MemorySource):
        def read(self) -> Snapshot:
            raise SourceError("the store speaks schema 9;\nthis console reads up to 1")

    app = make_app(Unreadable(runs_file, fixture_now_ms), clock=clock, watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        banner = app.screen.query_one(StaleBanner)
        assert banner.has_class("-stale")
        assert "the store speaks schema 9; this console reads up to 1" in str(banner.render())


@pytest.mark.anyio
async def test_history_lists_and_reads_the_sources_archive_and_opens_a_run_archived(
    runs_file, clock, fixture_now_ms
):
    hot = MemorySource(runs_file, fixture_now_ms)
    old = parse_run({**dump_run(hot.runs["run-rn-0139"]), "run_id": "run-old-0001"})
    entries = [ArchiveEntry(key=f"row-{n}", name=f"run-old-000{n}", month=(2026, 10)) for n in (1, 2)]
    archive = {
        (2026, 10): [
            ArchivedRead(entries[0], run=old),
            ArchivedRead(entries[1], error="row 2 is not a run"),
        ]
    }
    source = MemorySource(runs_file, fixture_now_ms, archive=archive)
    app = make_app(source, clock=clock, watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("h")
        await wait_for(pilot, lambda: len(source.archive_reads) == 2 and app.screen.visible_runs())
        assert isinstance(app.screen, HistoryScreen)
        assert [r.run_id for r in app.screen.visible_runs()] == ["run-old-0001"]
        app.screen.query_one("#history-table").move_cursor(row=0)
        await pilot.press("enter")
        await pilot.pause()
        detail = app.screen
        assert isinstance(detail, RunDetailScreen)
        assert detail.archived and detail.run is old
        assert len(detail.query("#archived-badge")) == 1
        await pilot.press("p")
        await pilot.pause()
        assert source.requests == []  # an archived run offers no action


@pytest.mark.anyio
async def test_an_archived_run_opened_from_the_runs_files_history_carries_its_badge(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("h")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await wait_for(pilot, lambda: bool(history.visible_runs()))
        first = history.visible_runs()[0]
        history.query_one("#history-table").move_cursor(row=0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.pause()  # mounted: the run is read whole in a thread, then pushed
        assert app.screen.archived and app.screen.run.run_id == first.run_id
        assert len(app.screen.query("#archived-badge")) == 1
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is history


@pytest.mark.anyio
async def test_an_archive_that_cannot_be_listed_is_one_line_and_an_empty_history(
    runs_file, clock, fixture_now_ms
):
    class NoArchive(MemorySource):
        def archive_months(self) -> dict:
            raise SourceError("archive table missing:\n  relation does not exist")

    app = make_app(NoArchive(runs_file, fixture_now_ms), clock=clock, watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("h")
        await wait_for(pilot, lambda: any("archive" in n.message for n in app._notifications))
        [message] = [n.message for n in app._notifications]
        assert message == "cannot list the archive: archive table missing: relation does not exist"
        assert str(app.screen.query_one("#history-month-label").render()) == "no archived runs"
