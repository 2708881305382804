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


# -- bulk dialogs: aligned columns and one summary line --------------------------------

LONG_ID = "run-ledger-reconciliation-eu-west-1-2026-11-29-9cff9559"


def bulk_pause_previews() -> list[Transition | Refusal]:
    """Pausing five marked runs: two allowed (one with a long id), three refused for two
    different reasons."""
    runs = [
        parse_run(run_record("run-7f3a9c2e", "running")),
        parse_run(run_record(LONG_ID, "queued")),
        parse_run(run_record("run-c0ffee01", "completed")),
        parse_run(run_record("run-0b5e55ed", "paused")),
        parse_run(run_record("run-de1e7ed0", "completed")),
    ]
    return [preview(ActionKind.PAUSE, run, NOW_MS) for run in runs]


def preview_lines(app: Host) -> list[str]:
    return [shown(w) for w in app.shown.query(".preview-line").results(Static)]


def test_the_summary_counts_what_will_happen_and_why_runs_are_refused():
    from tandem_tui.ui.screens.confirm import summary_line

    assert summary_line(ActionKind.PAUSE, pause_previews()) == "3 runs: 2 will pause, 1 refused (completed)"
    assert summary_line(ActionKind.PAUSE, bulk_pause_previews()) == (
        "5 runs: 2 will pause, 3 refused (2 completed, 1 paused)"
    )
    resume = [preview(ActionKind.RESUME, parse_run(run_record("run-1", "paused")), NOW_MS)] * 2
    assert summary_line(ActionKind.RESUME, resume) == "2 runs: 2 will resume"


def test_the_summary_leaves_many_different_reasons_to_the_lines_above():
    from tandem_tui.ui.screens.confirm import summary_line

    refused = [Refusal(ActionKind.PAUSE, f"run-{i}", f"cannot pause run run-{i}: reason {i}") for i in range(4)]
    assert summary_line(ActionKind.PAUSE, refused) == "4 runs: 4 refused (4 reasons, listed above)"


async def test_a_bulk_dialog_lists_every_run_in_order_in_aligned_columns():
    app = host(ActionKind.PAUSE, bulk_pause_previews())
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        lines = preview_lines(app)
        assert [line.split()[0] for line in lines] == [
            "run-7f3a9c2e", LONG_ID, "run-c0ffee01", "run-0b5e55ed", "run-de1e7ed0"
        ]
        # The second column starts at the same place on every line, and the arrows of
        # the transitions line up ("running" and "queued" differ in length).
        starts = {len(line) - len(line[len(line.split()[0]):].lstrip()) for line in lines}
        assert len(starts) == 1
        assert len({lines[0].index("->"), lines[1].index("->")}) == 1
        assert all("refused: it is" in line for line in lines[2:])


async def test_a_bulk_dialog_ends_with_exactly_one_summary_line():
    app = host(ActionKind.PAUSE, bulk_pause_previews())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        summaries = list(app.shown.query("#confirm-summary").results(Static))
        assert len(summaries) == 1
        assert shown(summaries[0]) == "5 runs: 2 will pause, 3 refused (2 completed, 1 paused)"
        # It comes after every run's line.
        last_line = max(w.region.bottom for w in app.shown.query(".preview-line").results(Static))
        assert summaries[0].region.y >= last_line


async def test_a_single_run_needs_no_summary_line():
    app = host(ActionKind.PAUSE, pause_previews()[:1])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert not app.shown.query("#confirm-summary")


async def test_a_long_id_is_elided_in_the_middle_like_the_runs_table_at_80_columns():
    from tandem_tui.ui.widgets.runs_table import elide_middle

    app = host(ActionKind.PAUSE, bulk_pause_previews())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        line = preview_lines(app)[1]
        shown_id = line.split()[0]
        assert "…" in shown_id and shown_id.endswith("9cff9559") and shown_id.startswith("run-")
        assert shown_id == elide_middle(LONG_ID, len(shown_id))
        assert line.split()[1:4] == ["queued", "->", "paused"]


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_bulk_confirm_snapshot(snap_compare, size):
    app = host(ActionKind.PAUSE, bulk_pause_previews())
    assert snap_compare(app, terminal_size=size, run_before=_no_blink)


async def test_the_reason_and_buttons_stay_on_screen_at_80x24_with_many_runs():
    runs = [parse_run(run_record(f"run-{i:04d}", "running" if i % 2 else "completed")) for i in range(20)]
    app = host(ActionKind.PAUSE, [preview(ActionKind.PAUSE, run, NOW_MS) for run in runs])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.pause()
        dialog = app.shown.query_one("#confirm-dialog")
        for selector in ("#confirm-summary", "#confirm-reason", "#confirm-ok"):
            widget = app.shown.query_one(selector)
            assert widget.region.bottom <= dialog.region.bottom <= 24, selector
        await pilot.click("#confirm-ok")
        await pilot.pause()
        assert app.results == ["paused by operator"]
