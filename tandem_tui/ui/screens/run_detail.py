"""Everything about one run: key fields, scheduler, claim, checkpoint and its timeline.

The app pushes it for a hot run the dashboard opened and for an archived run the
history browser opened (``archived=True`` adds a badge and stops the countdown refresh:
nothing there moves). ``v`` swaps the panels for the record's raw JSON; Enter on a
timeline event shows its full metadata; Escape goes back.

Messages up, attributes down: an action key posts :class:`RunDetailScreen.ActionRequested`
for the app to preview, confirm and perform; the screen follows its run one way only,
through :meth:`RunDetailScreen.update_run`, which the app calls with each newer version.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import ContentSwitcher, DataTable, Input, Label, Static, TextArea

from tandem_tui.domain.clock import Clock
from tandem_tui.domain.models import Run, dump_run
from tandem_tui.humanize import format_timestamp
from tandem_tui.safe_text import literal, sanitize
from tandem_tui.ui.action_keys import ACTION_BINDINGS
from tandem_tui.ui.widgets.footer import SteadyFooter
from tandem_tui.ui.widgets.record_fields import (
    FieldsPanel,
    checkpoint_table,
    claim_rows,
    failure_rows,
    key_field_rows,
    scheduler_rows,
)
from tandem_tui.ui.widgets.status_style import status_class
from tandem_tui.ui.widgets.timeline import Timeline, TimelineEntry, pretty_metadata


def _styles_dir() -> Path:
    """``tandem_tui/styles`` in a wheel (force-included there), else the repo's ``styles/``."""
    package = Path(__file__).resolve().parents[2]
    installed = package / "styles"
    return installed if installed.is_dir() else package.parent / "styles"


STYLES_DIR = _styles_dir()

#: Seconds between redraws of the countdowns (lease, retry) of a hot run.
COUNTDOWN_REFRESH_S = 1.0


def raw_json(run: Run) -> str:
    """The record as the runs file holds it, pretty-printed; every line made printable."""
    dumped = json.dumps(dump_run(run), indent=2, ensure_ascii=False)
    return "\n".join(sanitize(line) for line in dumped.splitlines())


class EventMetadataScreen(ModalScreen[None]):
    """One lifecycle event in full: time, reason, stop kind and all of its metadata."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("enter", "close", "Close", show=False),
    ]

    def __init__(self, entry: TimelineEntry) -> None:
        super().__init__(classes="event-metadata")
        self.entry = entry

    def compose(self) -> ComposeResult:
        record = self.entry.record
        with Vertical(id="event-dialog", classes="dialog") as dialog:
            dialog.border_title = "Lifecycle event"
            yield Label(literal(record.event, style="bold"), id="event-name")
            when = Text(format_timestamp(record.recorded_at_ms))
            if self.entry.operator:
                when.append("   operator action", style="bold")
            if self.entry.bookkeeping:
                when.append("   claim bookkeeping", style="dim")
            yield Label(when, id="event-when")
            if record.reason:
                yield Label(Text("reason  ", style="dim") + literal(record.reason), id="event-reason")
            if record.stop_kind:
                yield Label(Text("stop kind  ", style="dim") + Text(record.stop_kind.value))
            with VerticalScroll(id="event-metadata"):
                yield Static(pretty_metadata(record.metadata), id="event-metadata-json")
            yield Label(Text("Escape to close", style="dim"), id="event-hint")

    def action_close(self) -> None:
        self.dismiss(None)


class RawJsonView(TextArea):
    """The record's raw JSON, read-only: g/G and Home/End to its ends, ``/`` to search
    (the screen shows the search field), ``n`` for the next match."""

    BINDINGS = [
        Binding("g,home,ctrl+home", "top", "Top", show=False),
        Binding("G,end,ctrl+end", "bottom", "Bottom", show=False),
        Binding("slash", "search", "Search"),
        Binding("n", "next_match", "Next match", show=False),
    ]

    class SearchRequested(Message):
        """``/`` in the raw view: the screen shows its search field."""

    needle: str = ""

    def action_top(self) -> None:
        self.move_cursor((0, 0))
        self.scroll_home(animate=False)

    def action_bottom(self) -> None:
        last = self.document.line_count - 1
        self.move_cursor((last, 0))
        self.scroll_end(animate=False)

    def action_search(self) -> None:
        self.post_message(self.SearchRequested())

    def action_next_match(self) -> None:
        self.find(self.needle)

    def find(self, needle: str) -> bool:
        """Select the next occurrence of ``needle`` (case-insensitive) after the cursor,
        wrapping round; whether there is one."""
        from textual.widgets.text_area import Selection

        self.needle = needle
        if not needle:
            return False
        lines = self.text.split("\n")
        row, column = self.selection.end
        lowered = needle.lower()
        count = len(lines)
        for step in range(count + 1):
            index = (row + step) % count
            line = lines[index].lower()
            start = line.find(lowered, column if step == 0 else 0)
            if step == count and start >= column:
                start = -1
            if start >= 0:
                self.selection = Selection((index, start), (index, start + len(needle)))
                self.scroll_cursor_visible(center=True, animate=False)
                return True
        return False


class RunDetailScreen(Screen[None]):
    """One run in full, hot or archived."""

    CSS_PATH = [STYLES_DIR / "detail.tcss", STYLES_DIR / "modal.tcss"]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("v", "toggle_raw", "Raw JSON"),
        *ACTION_BINDINGS,
    ]

    class ActionRequested(Message):
        """The operator pressed an action key: ``kind`` on this screen's run."""

        def __init__(self, kind: str, run_ids: list[str]) -> None:
            super().__init__()
            self.kind = kind
            self.run_ids = run_ids

    def __init__(
        self,
        run: Run,
        *,
        clock: Clock,
        archived: bool = False,
        actions: bool = False,
        lock_holder: str | None = None,
    ) -> None:
        """``actions`` offers the operator-action keys (the console passes it unless it
        is read-only); an archived run never offers them. ``lock_holder`` is the run
        holding the workspace lock this run waits for (the scheduler panel names it)."""
        super().__init__(classes="archived" if archived else None)
        self.run = run
        self.lock_holder = lock_holder
        self.clock = clock
        self.archived = archived
        self.actions = actions and not archived

    def compose(self) -> ComposeResult:
        with Horizontal(id="detail-title"):
            yield Label(literal(self.run.run_id), id="title-run-id")
            yield Label("", id="title-status")
            if self.archived:
                yield Label("ARCHIVED", id="archived-badge")
            yield Label(literal(self.run.automation_id), id="title-automation")
        with ContentSwitcher(initial="detail-view", id="detail-switcher"):
            with Vertical(id="detail-view"):
                with VerticalScroll(id="detail-fields"):
                    yield FieldsPanel("Run", id="panel-run")
                    with Vertical(id="detail-side"):
                        yield FieldsPanel("Scheduler", id="panel-scheduler")
                        yield FieldsPanel("Execution claim", id="panel-claim")
                        yield FieldsPanel("Last failure", id="panel-failure")
                    yield FieldsPanel("Checkpoint", id="panel-checkpoint")
                with Vertical(id="timeline-panel") as panel:
                    panel.border_subtitle = "◆ operator action · dim: claim bookkeeping"
                    yield Timeline(id="timeline")
            raw = RawJsonView(
                "",
                id="raw-json",
                read_only=True,
                soft_wrap=False,
                show_line_numbers=True,
                highlight_cursor_line=False,
            )
            raw.cursor_blink = False
            raw.border_title = "Raw record (v to close, / to search)"
            yield raw
        yield Input(placeholder="search the raw record", id="raw-search")
        yield SteadyFooter()

    def on_mount(self) -> None:
        self.show_run(self.run)
        self.query_one(Timeline).focus()
        if not self.archived:
            self.set_interval(COUNTDOWN_REFRESH_S, self.tick)

    def tick(self) -> None:
        """Move the countdowns on (a newer version of the run comes through
        :meth:`update_run`)."""
        self._refresh_fields()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Operator actions only for hot runs, in a console that can perform them."""
        if action == "act":
            return self.actions
        return True

    def action_act(self, kind: str) -> None:
        """Hand the action up to the app, which previews it, confirms and performs it."""
        self.post_message(self.ActionRequested(kind, [self.run.run_id]))

    def update_run(self, run: Run, *, lock_holder: str | None = None) -> None:
        """Show a newer version of the same run: the one way in for it (the app calls
        this when a snapshot holds a newer version, with the lock holder as of then)."""
        self.run = run
        self.lock_holder = lock_holder
        if self.is_mounted:
            self.show_run(run)

    def show_run(self, run: Run) -> None:
        status = self.query_one("#title-status", Label)
        status.update(run.status.value)
        status.set_classes(status_class(run.status))
        self._refresh_fields()
        timeline = self.query_one(Timeline)
        timeline.show(run, self.app.theme_variables)
        panel = self.query_one("#timeline-panel")
        count = len(timeline.entries)
        panel.border_title = f"Lifecycle · {count} event{'s' if count != 1 else ''}"
        self.query_one("#raw-json", TextArea).load_text(raw_json(run))

    def _refresh_fields(self) -> None:
        run, now_ms, theme = self.run, self.clock.now_ms(), self.app.theme_variables
        self.query_one("#panel-run", FieldsPanel).show_rows(key_field_rows(run, now_ms, theme))
        for panel_id, rows in (
            ("#panel-scheduler", scheduler_rows(run, now_ms, theme, self.lock_holder)),
            ("#panel-claim", claim_rows(run, now_ms, theme)),
            ("#panel-failure", failure_rows(run, now_ms)),
        ):
            panel = self.query_one(panel_id, FieldsPanel)
            panel.display = bool(rows)
            if rows:
                panel.show_rows(rows)
        self.query_one("#panel-checkpoint", FieldsPanel).update(checkpoint_table(run, theme))

    @property
    def showing_raw(self) -> bool:
        return self.query_one(ContentSwitcher).current == "raw-json"

    def action_toggle_raw(self) -> None:
        switcher = self.query_one(ContentSwitcher)
        if self.showing_raw:
            switcher.current = "detail-view"
            self.query_one(Timeline).focus()
        else:
            switcher.current = "raw-json"
            self.query_one("#raw-json", TextArea).focus()

    def on_raw_json_view_search_requested(self, event: RawJsonView.SearchRequested) -> None:
        event.stop()
        search = self.query_one("#raw-search", Input)
        search.add_class("-shown")
        search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "raw-search":
            return
        event.stop()
        raw = self.query_one("#raw-json", RawJsonView)
        event.input.remove_class("-shown")  # n finds the next match
        if not raw.find(event.value):
            self.notify(f"Not found: {sanitize(event.value)}", severity="warning", timeout=3)
        raw.focus()

    def action_back(self) -> None:
        search = self.query_one("#raw-search", Input)
        if self.query("HelpPanel"):
            # Escape closes the key help first.
            self.query("HelpPanel").remove()
        elif search.has_class("-shown"):
            search.remove_class("-shown")
            self.query_one("#raw-json").focus()
        elif self.showing_raw:
            self.action_toggle_raw()
        else:
            self.dismiss(None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if not isinstance(event.data_table, Timeline):
            return
        event.stop()
        entry = event.data_table.entry_at_cursor()
        if entry is not None:
            self.app.push_screen(EventMetadataScreen(entry))
