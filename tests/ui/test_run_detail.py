"""The run detail screen: key fields, panels, the timeline, raw JSON and event metadata."""

from __future__ import annotations

import json
from typing import Any

import pytest
from textual.widgets import Static, TextArea

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import Run, dump_run, parse_run
from tandem_tui.ui.screens.run_detail import EventMetadataScreen, RunDetailScreen
from tandem_tui.ui.widgets.record_fields import (
    FieldsPanel,
    claim_rows,
    node_states,
    scheduler_rows,
)
from tandem_tui.ui.widgets.timeline import (
    Timeline,
    format_offset,
    metadata_summary,
    timeline_entries,
)

from ui.host import Host

pytestmark = pytest.mark.anyio

#: 2026-03-14 12:00:00 UTC.
NOW_MS = 1_773_489_600_000
MIN = 60_000


def at(minutes_before_now: float) -> int:
    return int(NOW_MS - minutes_before_now * MIN)


def operator(actor: str = "ops@console-01", **extra: Any) -> dict[str, Any]:
    return {"actor": actor, "source": "tandem-tui", "effective_execution_profile": "guided", **extra}


def rich_run(**overrides: Any) -> dict[str, Any]:
    """A running run that retried a node, was paused and resumed by an operator."""
    record: dict[str, Any] = {
        "run_id": "run-7f3a9c2e",
        "automation_id": "nightly-sales-report",
        "tenant_context": {
            "org_id": "acme",
            "workspace_id": "analytics",
            "deployment_id": "prod-eu",
            "actor_id": None,
            "source": "explicit",
        },
        "trigger_type": "scheduled",
        "status": "running",
        "created_at_ms": at(42),
        "updated_at_ms": at(1.5),
        "started_at_ms": at(41.5),
        "active_session_ids": ["sess-41"],
        "active_instance_ids": [],
        "checkpoint": {
            "completed_nodes": ["fetch_orders", "normalize"],
            "pending_nodes": ["aggregate", "render_pdf", "publish"],
            "node_outputs": {"fetch_orders": {"rows": 1820}},
            "node_attempts": {"fetch_orders": 2, "normalize": 1, "aggregate": 1},
            "blocked_nodes": [],
            "lifecycle_history": [
                {"event": "run_execution_claimed", "recorded_at_ms": at(41.5),
                 "metadata": {"claimant_id": "worker-a", "lease_epoch": 1,
                              "effective_execution_profile": "guided"}},
                {"event": "run_retry_backoff_scheduled", "recorded_at_ms": at(37.4),
                 "reason": "node `fetch_orders` failed: upstream returned HTTP 503",
                 "metadata": {"node_id": "fetch_orders", "attempt": 1, "backoff_ms": 30000,
                              "effective_execution_profile": "guided"}},
                {"event": "run_execution_claimed", "recorded_at_ms": at(36.8),
                 "metadata": {"claimant_id": "worker-b", "lease_epoch": 2,
                              "effective_execution_profile": "guided"}},
                {"event": "run_pause_requested", "recorded_at_ms": at(30),
                 "reason": "warehouse maintenance window",
                 "metadata": operator()},
                {"event": "run_paused", "recorded_at_ms": at(29.9),
                 "reason": "warehouse maintenance window", "stop_kind": "operator_stopped",
                 "metadata": operator()},
                {"event": "run_resumed", "recorded_at_ms": at(12),
                 "reason": "maintenance finished", "metadata": operator()},
                {"event": "run_execution_claimed", "recorded_at_ms": at(11.6),
                 "metadata": {"claimant_id": "worker-a", "lease_epoch": 3,
                              "effective_execution_profile": "guided"}},
            ],
            "last_failure": {
                "node_id": "fetch_orders",
                "reason": "upstream returned HTTP 503",
                "failed_at_ms": at(37.4),
                "failure_kind": "transient",
            },
        },
        "automation_snapshot": {
            "workspace_root": "/srv/tandem/workspaces/analytics",
            "flow": {"nodes": [{"node_id": n} for n in
                               ("fetch_orders", "normalize", "aggregate", "render_pdf", "publish")]},
        },
        "execution_claim": {
            "claim_id": "claim-0c41",
            "claimant_id": "worker-a",
            "claimed_at_ms": at(11.6),
            "lease_expires_at_ms": at(11.6) + 30 * MIN,
            "lease_epoch": 3,
        },
        "execution_claim_epoch": 3,
        "resume_reason": "maintenance finished",
        "detail": "running node `aggregate` attempt 1",
        "prompt_tokens": 48210,
        "completion_tokens": 9120,
        "total_tokens": 57330,
        "estimated_cost_usd": 0.8412,
        "effective_execution_profile": "guided",
        "requested_execution_profile": "strict",
        "x_server_field": {"kept": True},
    }
    record.update(overrides)
    return record


def host(run: Run, *, archived: bool = False, actions: bool = False, now_ms: int = NOW_MS) -> Host:
    """One run detail screen on the test host, at a clock standing still at ``now_ms``."""
    return Host(RunDetailScreen(run, clock=ManualClock(now_ms), archived=archived, actions=actions))


# --- the pure parts -----------------------------------------------------------------


def test_timeline_offsets_count_from_the_first_event():
    entries = timeline_entries(parse_run(rich_run()))
    assert [format_offset(e.offset_ms) for e in entries][:3] == ["+0s", "+4m06s", "+4m42s"]


def test_operator_actions_and_claim_bookkeeping_are_told_apart():
    entries = timeline_entries(parse_run(rich_run()))
    operator_events = [e.record.event for e in entries if e.operator]
    bookkeeping = [e.record.event for e in entries if e.bookkeeping]
    assert operator_events == ["run_pause_requested", "run_paused", "run_resumed"]
    assert bookkeeping == ["run_execution_claimed"] * 3


def test_only_the_operator_marker_makes_an_operator_action_never_the_event_name():
    history = [
        {"event": "run_lock_released_by_operator", "recorded_at_ms": at(3)},
        # An engine guardrail pauses runs too: not an operator's action.
        {"event": "run_pause_requested", "recorded_at_ms": at(2), "metadata": {"source": "guardrail"}},
        {"event": "run_paused", "recorded_at_ms": at(1), "metadata": {"source": "tandem-tui", "actor": "ops"}},
    ]
    run = parse_run(rich_run(checkpoint={"lifecycle_history": history}))
    assert [e.operator for e in timeline_entries(run)] == [False, False, True]


def test_out_of_order_events_are_shown_in_time_order():
    history = [
        {"event": "second", "recorded_at_ms": at(1)},
        {"event": "first", "recorded_at_ms": at(2)},
    ]
    run = parse_run(rich_run(checkpoint={"lifecycle_history": history}))
    assert [e.record.event for e in timeline_entries(run)] == ["first", "second"]


def test_metadata_summary_puts_the_actor_first_and_drops_the_profile():
    summary = metadata_summary(operator(previous_status="running"))
    assert summary == "actor=ops@console-01, previous_status=running"


def test_metadata_summary_is_clipped_to_one_line():
    summary = metadata_summary({"note": "x" * 200 + "\nsecond line"})
    assert len(summary) == 72 and summary.endswith("…") and "\n" not in summary


def test_nodes_follow_flow_order_with_their_state_and_attempts():
    states = [(n.node_id, n.state, n.attempts) for n in node_states(parse_run(rich_run()))]
    assert states == [
        ("fetch_orders", "completed", 2),
        ("normalize", "completed", 1),
        ("aggregate", "running", 1),
        ("render_pdf", "pending", 0),
        ("publish", "pending", 0),
    ]


def test_the_failed_node_of_a_stopped_run_is_failed_not_running():
    run = parse_run(rich_run(status="failed", checkpoint={
        "completed_nodes": ["fetch_orders"],
        "pending_nodes": ["normalize", "aggregate"],
        "node_attempts": {"fetch_orders": 1, "normalize": 3, "aggregate": 1},
        "last_failure": {"node_id": "normalize", "reason": "bad rows", "failed_at_ms": at(5)},
    }))
    states = {n.node_id: n.state for n in node_states(run)}
    assert states["normalize"] == "failed"
    assert states["aggregate"] == "pending"  # attempted, but nothing runs in a failed run


def test_an_expired_claim_is_flagged_with_how_long_ago_it_expired():
    claim = {"claim_id": "c", "claimant_id": "w", "claimed_at_ms": at(40),
             "lease_expires_at_ms": at(3), "lease_epoch": 1}
    rows = dict(claim_rows(parse_run(rich_run(execution_claim=claim)), NOW_MS, {}))
    assert rows["lease"].plain.endswith("EXPIRED 3m00s ago")


def test_a_live_claim_counts_down_to_its_lease_expiry():
    rows = dict(claim_rows(parse_run(rich_run()), NOW_MS, {}))
    assert rows["lease"].plain.endswith("in 18m24s")


def test_a_run_in_retry_backoff_shows_node_attempt_and_countdown():
    scheduler = {
        "queue_reason": "retry_backoff",
        "resource_key": "automation://nightly-sales-report/runs/run-7f3a9c2e/nodes/fetch_orders",
        "queued_at_ms": at(1),
        "retry_node_id": "fetch_orders",
        "retry_attempt": 2,
        "retry_backoff_ms": 120_000,
        "retry_after_ms": at(1) + 120_000,
    }
    rows = dict(scheduler_rows(parse_run(rich_run(status="queued", scheduler=scheduler)), NOW_MS, {}))
    assert rows["queue reason"].plain == "retry_backoff"
    assert rows["retry node"].plain == "fetch_orders"
    assert rows["retry attempt"].plain == "2"
    assert rows["backoff"].plain == "2m00s"
    assert rows["retry after"].plain.endswith("in 1m00s")


# --- the screen ----------------------------------------------------------------------


def _static_text(widget: Static) -> str:
    content = widget.render()
    return content.plain if hasattr(content, "plain") else str(content)


async def test_markup_and_ansi_from_the_runs_file_render_literally():
    hostile = "[bold red]pwned[/] \x1b[31mred\x1b[0m [link=http://x]click[/link]"
    history = [{"event": "run_paused", "recorded_at_ms": at(2), "reason": hostile,
                "metadata": {"note": hostile, "source": "tandem-tui"}}]
    run = parse_run(rich_run(detail=hostile, checkpoint={"lifecycle_history": history}))
    app = host(run)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        screen = app.shown
        run_panel = screen.query_one("#panel-run", FieldsPanel)
        shown = "".join(
            str(strip.text) for strip in run_panel.render_lines(run_panel.content_region.reset_offset)
        )
        assert "[bold red]pwned[/]" in shown
        assert "\\x1b[31mred" in shown
        timeline = screen.query_one(Timeline)
        row = timeline.get_row_at(0)
        assert row[3].plain.startswith("[bold red]pwned[/] \\x1b[31mred")
        assert row[5].plain.startswith("note=[bold red]pwned[/]")
        assert all(span.style == "" or "link" not in str(span.style) for span in row[3].spans)
        await pilot.press("enter")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, EventMetadataScreen)
        metadata = modal.query_one("#event-metadata-json", Static)
        assert "[bold red]pwned[/] \\u001b[31mred" in _static_text(metadata)


async def test_enter_on_an_event_shows_its_full_metadata_and_escape_closes_it():
    app = host(parse_run(rich_run()))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("j", "j", "j", "enter")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, EventMetadataScreen)
        assert modal.entry.record.event == "run_pause_requested"
        shown = json.loads(_static_text(modal.query_one("#event-metadata-json", Static)))
        assert shown["actor"] == "ops@console-01"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.shown


async def test_k_moves_back_up_the_timeline():
    app = host(parse_run(rich_run()))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("j", "j", "down", "k")
        assert app.shown.query_one(Timeline).cursor_row == 2


async def test_v_shows_the_raw_record_losslessly_and_v_again_hides_it():
    run = parse_run(rich_run())
    app = host(run)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("v")
        await pilot.pause()
        raw = app.shown.query_one("#raw-json", TextArea)
        assert raw.display and raw.has_focus
        assert json.loads(raw.text) == dump_run(run)
        assert json.loads(raw.text)["x_server_field"] == {"kept": True}
        await pilot.press("v")
        await pilot.pause()
        assert not raw.display
        assert app.shown.query_one(Timeline).has_focus


async def test_escape_leaves_raw_json_first_then_the_screen():
    app = host(parse_run(rich_run()))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("v", "escape")
        await pilot.pause()
        assert app.screen is app.shown and not app.shown.showing_raw
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not app.shown


async def test_archived_runs_carry_a_badge_and_hot_runs_do_not():
    for archived in (True, False):
        app = host(parse_run(rich_run(status="completed")), archived=archived)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert len(app.shown.query("#archived-badge")) == int(archived)


async def test_panels_without_data_are_hidden():
    run = parse_run(rich_run(execution_claim=None, checkpoint={}))
    app = host(run)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        screen = app.shown
        assert not screen.query_one("#panel-claim").display
        assert not screen.query_one("#panel-failure").display
        assert not screen.query_one("#panel-scheduler").display


async def test_update_run_redraws_status_and_timeline():
    app = host(parse_run(rich_run()))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        newer = rich_run(status="paused")
        newer["checkpoint"]["lifecycle_history"].append(
            {"event": "run_paused", "recorded_at_ms": at(0.5), "metadata": operator()}
        )
        app.shown.update_run(parse_run(newer))
        await pilot.pause()
        assert len(app.shown.query_one(Timeline).entries) == 8
        assert app.shown.query_one("#title-status").has_class("status-paused")


async def test_the_timeline_columns_fit_a_new_event_as_soon_as_it_is_shown():
    # The table alone measures new rows on its next idle, and a frame drawn before that
    # kept the old widths for good: the widths must be right with the rows.
    app = host(parse_run(rich_run()))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        timeline = app.shown.query_one(Timeline)
        newer = rich_run()
        newer["checkpoint"]["lifecycle_history"].append(
            {"event": "run_paused_by_a_much_longer_event_name", "recorded_at_ms": at(0.5)}
        )
        app.shown.update_run(parse_run(newer))
        widths = [column.content_width for column in timeline.ordered_columns]
        rows = [timeline.get_row_at(row) for row in range(timeline.row_count)]
        widest = [
            max([column.label.cell_len, *(cells[i].cell_len for cells in rows)])
            for i, column in enumerate(timeline.ordered_columns)
        ]
        assert widths == widest and widths[2] >= len("run_paused_by_a_much_longer_event_name")


async def test_action_keys_post_the_request_up_for_the_app():
    app = host(parse_run(rich_run()), actions=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("p", "l")
        await pilot.pause()
        requested = [(m.kind, m.run_ids) for m in app.requests]
        assert requested == [("pause", ["run-7f3a9c2e"]), ("release_lock", ["run-7f3a9c2e"])]
        assert all(isinstance(m, RunDetailScreen.ActionRequested) for m in app.requests)


async def test_archived_runs_and_a_console_without_actions_offer_none():
    for archived, actions in ((True, True), (False, False)):
        app = host(parse_run(rich_run()), archived=archived, actions=actions)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("p", "e")
            await pilot.pause()
            assert app.requests == []


# --- snapshots -----------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_run_detail_snapshot(snap_compare, size):
    assert snap_compare(host(parse_run(rich_run())), terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_raw_json_snapshot(snap_compare, size):
    assert snap_compare(host(parse_run(rich_run())), press=["v"], terminal_size=size)


def test_event_metadata_snapshot(snap_compare):
    assert snap_compare(
        host(parse_run(rich_run())), press=["j", "j", "j", "enter"], terminal_size=(80, 24)
    )


def test_archived_run_snapshot(snap_compare):
    run = parse_run(rich_run(status="completed", finished_at_ms=at(1), execution_claim=None))
    assert snap_compare(host(run, archived=True), terminal_size=(80, 24))


async def test_the_scheduler_panel_names_the_run_holding_the_lock_a_queued_run_waits_for(app_factory):
    """Issue 13 item 7: at 80-120 columns every ``lock · ledger-recon…`` looked the same."""
    from tandem_tui.ui.widgets.runs_table import RunsTable

    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.dashboard.query_one(RunsTable).go_to("run-da-0019")
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunDetailScreen)
        panel = screen.query_one("#panel-scheduler")
        assert panel.display
        text = "\n".join(strip.text for strip in panel.render_lines(panel.region.reset_offset))
        assert "lock held by" in text and "run-rn-0142" in text


async def test_at_120_columns_the_checkpoint_panel_gets_room_for_node_names(app_factory):
    from tandem_tui.ui.widgets.runs_table import RunsTable

    app = app_factory(watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.dashboard.query_one(RunsTable).go_to("run-da-0019")
        await pilot.press("enter")
        await pilot.pause()
        panel = app.screen.query_one("#panel-checkpoint")
        lines = [strip.text for strip in panel.render_lines(panel.region.reset_offset)]
        assert panel.size.width >= 30
        assert any("audit_lockfile" in line for line in lines)  # one line, not wrapped


async def test_the_raw_record_goes_to_its_ends_with_g_and_shift_g_and_searches_with_slash():
    app = host(parse_run(rich_run()))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("v", "G")
        raw = app.shown.query_one("#raw-json", TextArea)
        assert raw.cursor_location[0] == raw.document.line_count - 1
        await pilot.press("g")
        assert raw.cursor_location == (0, 0)
        await pilot.press("slash", *"x_server", "enter")
        await pilot.pause()
        assert raw.has_focus and raw.selected_text.lower() == "x_server"
        row = raw.selection.start[0]
        assert "x_server_field" in raw.document.get_line(row)
        await pilot.press("n")  # the only match: it wraps round to itself
        assert raw.selection.start[0] == row
        await pilot.press("escape")
        assert not app.shown.showing_raw


async def test_escape_closes_the_key_help_before_leaving_the_run():
    from textual.widgets import HelpPanel

    app = host(parse_run(rich_run()))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.action_show_help_panel()
        await pilot.pause()
        assert app.screen.query(HelpPanel)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.shown and not app.screen.query(HelpPanel)
