"""The console holds summaries; what needs a whole run gets one.

The dashboard's snapshots hold each run as a ``RunSummary`` (a console's memory); the
run detail and an action's preview read the whole record from the source, and a detail
that stays open is kept whole by the source as its run changes.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tandem_tui.domain.actions import ActionKind, Transition, preview
from tandem_tui.domain.models import Run, dump_run
from tandem_tui.domain.run_summary import RunSummary
from tandem_tui.source.file.source import FileSource
from tandem_tui.source.file.store import read_runs_file, serialize_runs_file_bytes
from tandem_tui.ui.app import make_app
from tandem_tui.ui.screens.confirm import ConfirmActionScreen
from tandem_tui.ui.screens.dashboard import DashboardScreen
from tandem_tui.ui.screens.run_detail import RunDetailScreen

from ui.test_app_life import wait_until


@pytest.mark.anyio
async def test_a_run_opened_from_a_summary_shows_its_whole_record(app_factory, runs_file, fixture_now_ms):
    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.state is not None)
        assert isinstance(app.state.snapshot.runs["run-ir-0085"], RunSummary)
        app.call_later(app.open_run, "run-ir-0085")
        await wait_until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.pause()  # mounted: the run is read whole in a thread, then pushed
        shown = app.screen.run
        assert isinstance(shown, Run)
        expected = read_runs_file(runs_file, now_ms=fixture_now_ms)["run-ir-0085"]
        assert dump_run(shown) == dump_run(expected)
        assert shown.checkpoint.node_outputs  # what a summary does not keep


@pytest.mark.anyio
async def test_a_requeue_is_previewed_on_the_whole_run(app_factory, runs_file, fixture_now_ms, clock):
    # Requeueing a failed run is the server's recover: it reads node outputs and the
    # flow, which a summary does not hold.
    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.state is not None)
        app.call_later(app.request_action, ActionKind.REQUEUE.value, ["run-ir-0085"])
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmActionScreen))
        expected = preview(
            ActionKind.REQUEUE, read_runs_file(runs_file, now_ms=fixture_now_ms)["run-ir-0085"], clock.now_ms()
        )
        assert isinstance(expected, Transition)
        assert app.screen.previews == [expected]


@pytest.mark.anyio
async def test_an_open_detail_follows_its_run_whole_while_the_file_changes(app_factory, runs_file):
    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.state is not None and "run-rn-0142" in app.state.snapshot.runs)
        app.call_later(app.open_run, "run-rn-0142")
        await wait_until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.pause()  # mounted: the run is read whole in a thread, then pushed
        document = json.loads(runs_file.read_text())
        document["runs"]["run-rn-0142"]["detail"] = "changed while open"
        document["runs"]["run-rn-0142"]["updated_at_ms"] += 1
        runs_file.write_bytes(serialize_runs_file_bytes(document["runs"]))
        await wait_until(pilot, lambda: app.screen.run.detail == "changed while open")
        assert isinstance(app.screen.run, Run)
        latest = app.state.snapshot.runs["run-rn-0142"]
        assert isinstance(latest, Run)  # the source kept it whole, no second read needed


class GatedFileSource(FileSource):
    """The console's real file source, whose whole-record reads wait for ``release``
    (a read of a big file, held as long as the test needs)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading = threading.Event()
        self.release = threading.Event()
        self.reads = 0

    def full_runs(self, runs: Any) -> dict[str, Run]:
        self.reads += 1
        self.reading.set()
        self.release.wait(timeout=20)
        return super().full_runs(runs)


@pytest.mark.anyio
async def test_the_screen_keeps_drawing_while_a_run_is_read_whole_and_the_keys_typed_meanwhile_go_to_its_detail(
    runs_file, clock
):
    # At 100k runs reading one run whole is a 1.2 s scan of the file; it used to block
    # the screen, and the keys typed meanwhile then went to the detail it opened.
    source = GatedFileSource(runs_file, clock=clock, env={}, console=True)
    app = make_app(source, watch=False, clock=clock)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_until(pilot, lambda: app.state is not None)
            app.screen.go_to_run("run-rn-0142", open_run=False)
            await pilot.pause()
            await pilot.press("enter", "p")
            await wait_until(pilot, source.reading.is_set)
            answered = threading.Event()
            app.call_later(answered.set)
            await wait_until(pilot, answered.is_set, deadline_s=5)  # the app answers
            assert isinstance(app.screen, DashboardScreen)  # `p` is held, not sent below
            runs = app.screen.query_one("#runs")
            await wait_until(pilot, lambda: runs.loading, deadline_s=5)  # and says it reads
            source.release.set()
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmActionScreen))
            assert not runs.loading
            assert isinstance(app.screen_stack[-2], RunDetailScreen)
            assert app.screen_stack[-2].run.run_id == "run-rn-0142"
            assert [p.run_id for p in app.screen.previews] == ["run-rn-0142"]
    finally:
        source.release.set()
        source.close()


@pytest.mark.anyio
async def test_an_open_detail_catches_up_with_one_read_however_many_states_come_meanwhile(runs_file, clock):
    # At 100k runs a whole read takes longer than a tick: each state used to start one.
    source = GatedFileSource(runs_file, clock=clock, env={}, console=True)
    source.release.set()
    app = make_app(source, watch=False, clock=clock)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_until(pilot, lambda: app.state is not None)
            app.call_later(app.open_run, "run-rn-0142")
            await wait_until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
            await pilot.pause()
            detail = app.screen
            latest = app.state.snapshot.runs["run-rn-0142"]
            assert isinstance(latest, RunSummary)
            # The detail shows an older version than the snapshot's summary: it catches up.
            detail.run = detail.run.model_copy(update={"updated_at_ms": latest.updated_at_ms - 1})
            source.release.clear()
            source.reading.clear()
            reads = source.reads
            for _ in range(3):
                app._follow_open_runs(app.state)
                await pilot.pause()
            await wait_until(pilot, source.reading.is_set)
            assert source.reads == reads + 1
            source.release.set()
            await wait_until(pilot, lambda: detail.run.updated_at_ms == latest.updated_at_ms)
            assert isinstance(detail.run, Run)
    finally:
        source.release.set()
        source.close()
