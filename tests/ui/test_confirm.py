"""The action confirmation dialog: what it shows, and what it dismisses with."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Button, Input, Static

from tandem_tui.domain.actions import ACTIONS, ActionKind, Refusal, Transition, preview
from tandem_tui.domain.models import RunStatus, parse_run
from tandem_tui.ui.screens.confirm import ConfirmActionScreen

from ui.host import Host

pytestmark = pytest.mark.anyio

NOW_MS = 1_773_489_600_000


def run_record(run_id: str, status: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "automation_id": "nightly-sales-report",
        "status": status,
        "created_at_ms": NOW_MS - 600_000,
        "updated_at_ms": NOW_MS - 60_000,
    }


def pause_previews() -> list[Transition | Refusal]:
    """Pausing a running, a queued and a completed run (the last one is refused)."""
    runs = [
        parse_run(run_record("run-7f3a9c2e", "running")),
        parse_run(run_record("run-19b0d4aa", "queued")),
        parse_run(run_record("run-c0ffee01", "completed")),
    ]
    return [preview(ActionKind.PAUSE, run, NOW_MS) for run in runs]


def host(kind: ActionKind, previews: list[Transition | Refusal]) -> Host:
    """The dialog on the test host, which keeps what it dismissed with."""
    return Host(ConfirmActionScreen(kind, previews, actor="ops@console-01"))


def shown(widget: Static) -> str:
    """What the widget puts on screen, as plain text."""
    lines = widget.render_lines(widget.region.reset_offset)
    return "\n".join(line.text.rstrip() for line in lines)


def test_the_previews_really_contain_a_refusal():
    kinds = [type(p) for p in pause_previews()]
    assert kinds == [Transition, Transition, Refusal]


async def test_escape_cancels_with_none():
    app = host(ActionKind.PAUSE, pause_previews())
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("m", "x", "escape")
        await pilot.pause()
        assert app.results == [None]


async def test_enter_confirms_with_the_typed_reason():
    app = host(ActionKind.PAUSE, pause_previews())
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press(*"db up", "enter")
        await pilot.pause()
        assert app.results == ["db up"]


async def test_an_empty_reason_confirms_with_the_action_default():
    failed = run_record("run-1", "failed") | {
        "checkpoint": {"last_failure": {"node_id": "draft", "reason": "boom", "failed_at_ms": NOW_MS - 60_000}},
        "automation_snapshot": {"flow": {"nodes": [{"node_id": "draft"}]}},
    }
    app = host(ActionKind.REQUEUE, [preview(ActionKind.REQUEUE, parse_run(failed), NOW_MS)])
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.shown.query_one(Input).placeholder == "recovered by operator"
        await pilot.press("space", "enter")
        await pilot.pause()
        assert app.results == ["recovered by operator"]


async def test_the_buttons_work_with_the_mouse():
    for button, expected in (("#confirm-ok", "paused by operator"), ("#confirm-cancel", None)):
        app = host(ActionKind.PAUSE, pause_previews())
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.click(button)
            await pilot.pause()
            assert app.results == [expected]


async def test_transitions_and_refusals_are_both_listed():
    app = host(ActionKind.PAUSE, pause_previews())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        transitions = [shown(w) for w in app.shown.query(".transition").results(Static)]
        refusals = [shown(w) for w in app.shown.query(".refusal").results(Static)]
        assert [t.split()[:4] for t in transitions] == [
            ["run-7f3a9c2e", "running", "->", "paused"],
            ["run-19b0d4aa", "queued", "->", "paused"],
        ]
        assert len(refusals) == 1 and refusals[0].startswith("run-c0ffee01")
        assert "it is completed" in refusals[0] and "cannot pause" not in refusals[0]


async def test_nothing_to_confirm_when_every_run_is_refused():
    refused = [Refusal(ActionKind.RESUME, "run-1", "cannot resume run run-1: it is running")]
    app = host(ActionKind.RESUME, refused)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.shown.query_one("#confirm-ok", Button).disabled
        await pilot.press("enter")
        await pilot.pause()
        assert app.results == [None]


async def test_run_ids_with_markup_are_shown_literally():
    hostile = Transition(ActionKind.PAUSE, "[b]run[/b]\x1b[2J", RunStatus.RUNNING,
                         RunStatus.PAUSED, ("run_paused",))
    app = host(ActionKind.PAUSE, [hostile])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        line = shown(app.shown.query_one(".transition", Static))
        assert line.startswith("[b]run[/b]\\x1b[2J")


def _no_blink(pilot) -> None:
    pilot.app.screen.query_one(Input).cursor_blink = False


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_confirm_snapshot(snap_compare, size):
    app = host(ActionKind.PAUSE, pause_previews())
    assert snap_compare(app, terminal_size=size, run_before=_no_blink)


@pytest.mark.parametrize("kind", list(ACTIONS), ids=lambda kind: kind.value)
async def test_every_action_is_confirmed_with_its_registry_label_and_default_reason(kind):
    spec = ACTIONS[kind]
    allowed = Transition(kind, "run-1", RunStatus.RUNNING, RunStatus.PAUSED, ())
    app = host(kind, [allowed])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.shown.query_one(Input).placeholder == spec.default_reason
        assert str(app.shown.query_one("#confirm-ok", Button).label) == f"{spec.label} 1 run"
        await pilot.press("enter")
        await pilot.pause()
        assert app.results == [spec.default_reason]


async def test_a_recover_from_paused_offers_the_servers_own_default():
    app = host(ActionKind.REQUEUE, [preview(ActionKind.REQUEUE, parse_run(run_record("run-1", "paused")), NOW_MS)])
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.shown.query_one(Input).placeholder == "recovered from paused state by operator"
