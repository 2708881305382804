"""The dashboard: metrics, trends, the runs table and the workspace locks, live.

:func:`build_state` turns a :class:`Snapshot` into a :class:`DashboardState` — plain data
the widgets show. The app builds it in its watch worker thread (off the UI thread, and
while the source is not touching the view), then hands it to this screen
(:meth:`DashboardScreen.show_state`), which sets its widgets' reactive attributes.

Messages up, attributes down: what the screen is told (where runs live, the clock,
read-only) comes in through its constructor and :meth:`~DashboardScreen.show_state`;
what the operator asks for (an action, a run, the history) goes up as a message for the
app to handle. The screen never calls the app.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, Static
from textual.widgets._footer import FooterKey

from tandem_tui.domain.clock import Clock
from tandem_tui.domain.models import RunStatus
from tandem_tui.domain.snapshot import Freshness, Snapshot
from tandem_tui.safe_text import sanitize
from tandem_tui.ui.action_keys import ACTION_BINDINGS
from tandem_tui.ui.widgets.footer import SteadyFooter
from tandem_tui.ui.widgets.locks_panel import LocksData, LocksPanel, expired_claim_rows
from tandem_tui.ui.widgets.metrics_bar import Metrics, MetricsBar, StaleBanner, metrics_from_snapshot
from tandem_tui.ui.widgets.runs_table import (
    StatusFilter,
    RunRow,
    RunsTable,
    build_rows,
)
from tandem_tui.ui.widgets.trends import TrendData, Trends, trend_data


#: A typed filter that would look at more rows than this (a first key over 100k runs)
#: waits until typing pauses for ``FILTER_PAUSE_S``, or Enter: keys typed faster than
#: such a filter applies cost one pass, not one each. Cheaper filters apply at once.
FILTER_COALESCE_ROWS = 20_000
FILTER_PAUSE_S = 0.06
#: A filter waiting for typing to pause applies after this long anyway.
FILTER_MAX_WAIT_S = 0.3
#: Rows whose filter texts are computed per turn of the event loop after ``/`` (about
#: 10 ms of work: keys typed meanwhile are not held up).
FILTER_WARM_CHUNK = 5000


@dataclass(frozen=True)
class DashboardState:
    """Everything the dashboard shows about one snapshot."""

    snapshot: Snapshot
    rows: dict[str, RunRow]
    metrics: Metrics
    locks: LocksData
    trends: TrendData
    file_missing: bool = False
    ever_read: bool = True
    changed: frozenset[str] = field(default_factory=frozenset)


def build_state(
    snapshot: Snapshot, previous: DashboardState | None, *, now_ms: int
) -> DashboardState:
    """The dashboard's data for ``snapshot``; rows of unchanged runs are reused."""
    view = snapshot.view
    runs = snapshot.runs
    rows = build_rows(
        runs,
        view,
        now_ms,
        previous=previous.rows if previous is not None else None,
        changed=snapshot.changed if previous is not None else None,
    )
    locks = view.locks(runs, now_ms)
    expired_ids = view.expired_claims(runs, now_ms)
    statuses = {run_id: RunStatus(runs[run_id].status) for run_id in expired_ids}
    expired = expired_claim_rows(expired_ids, statuses, locks)
    ever_read = (previous is not None and previous.ever_read) or not snapshot.freshness.stale
    return DashboardState(
        snapshot=snapshot,
        rows=rows,
        metrics=metrics_from_snapshot(snapshot, now_ms),
        locks=LocksData(tuple(locks), expired),
        trends=trend_data(snapshot.series),
        file_missing=snapshot.freshness.missing,
        ever_read=ever_read,
        changed=snapshot.changed,
    )


def empty_content(location: str, state: DashboardState | None) -> Content:
    """What the runs pane says when there is nothing to list; ``location`` is where the
    source looks (its ``describe().location``)."""
    if state is None:
        return Content.styled("Reading runs…", "$text-muted")
    if state.file_missing:
        return Content.assemble(
            ("No runs here yet:\n", "bold"),
            (sanitize(location), "$text-accent"),
            "\n\nThe console is watching it and will show runs as soon as they appear.\n"
            "Point it elsewhere with ",
            ("tandem-tui --runs-file PATH", "bold"),
            ", or try ",
            ("tandem-tui --demo", "bold"),
            " for a live demo.",
        )
    if state.snapshot.runs:
        return Content.styled("No run matches the filter. Escape clears it.", "$text-muted")
    if not state.ever_read:
        return Content.assemble(
            ("Nothing to show: ", "bold"),
            (sanitize(location), "$text-accent"),
            " could not be read (see the banner above). The console keeps trying.",
        )
    return Content.assemble(
        ("No runs in ", "$text-muted"), (sanitize(location), "$text-accent"), (".", "$text-muted")
    )


class KeysFooter(SteadyFooter):
    """The footer, with ``? Help`` first: on a narrow terminal the keys at the end are
    cut, never the one that lists them all."""

    def compose(self) -> ComposeResult:
        widgets = list(super().compose())
        first = [w for w in widgets if isinstance(w, FooterKey) and w.action.endswith("toggle_help")]
        yield from first
        yield from (w for w in widgets if w not in first)


class DashboardScreen(Screen[None]):
    """The console's main screen."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]

    BINDINGS = [
        *ACTION_BINDINGS,
        Binding("slash", "filter", "Filter"),
        Binding("h", "history", "History"),
        Binding("escape", "clear", "Clear filter/marks", show=False),
        Binding("1", "status_filter('all')", "All runs", show=False),
        Binding("2", "status_filter('active')", "Active runs", show=False),
        Binding("3", "status_filter('queued')", "Queued runs", show=False),
        Binding("4", "status_filter('paused')", "Paused runs", show=False),
        Binding("5", "status_filter('failed')", "Failed runs", show=False),
        Binding("w", "toggle_panel('locks')", "Toggle locks panel", show=False),
        Binding("t", "toggle_panel('trends')", "Toggle trends", show=False),
        Binding("y", "copy_id", "Copy run id", show=False),
        Binding("o", "go_to_holder", "Go to the lock holder", show=False),
        Binding("f", "cycle_engine", "Filter by engine (fleet)", show=False),
    ]

    class ActionRequested(Message):
        """The operator asked for ``kind`` on ``run_ids`` (the marked runs, else the one
        under the cursor)."""

        def __init__(self, kind: str, run_ids: list[str]) -> None:
            super().__init__()
            self.kind = kind
            self.run_ids = run_ids

    class OpenRun(Message):
        """The operator chose a run to open."""

        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    class OpenHistory(Message):
        """The operator asked for the archive."""

    #: See ``FILTER_COALESCE_ROWS`` (per screen, so a test can coalesce a small table
    #: and wait longer than a loaded machine takes between two keys).
    filter_coalesce_rows: int = FILTER_COALESCE_ROWS
    filter_pause_s: float = FILTER_PAUSE_S
    filter_max_wait_s: float = FILTER_MAX_WAIT_S
    _filter_timer: Timer | None = None
    _filter_deadline: Timer | None = None

    def __init__(
        self,
        *,
        location: str,
        summary: str,
        clock: Clock,
        read_only: bool = False,
        blink: bool = True,
    ) -> None:
        """``location`` and ``summary`` are the source's ``describe()`` (the header shows
        both); ``blink=False`` keeps the filter's cursor still (snapshot tests)."""
        super().__init__(id="dashboard")
        self.location = location
        self.summary = summary
        self.clock = clock
        self.read_only = read_only
        self.blink = blink
        self.state: DashboardState | None = None

    def compose(self) -> ComposeResult:
        now = self.clock.now_ms
        yield MetricsBar(
            title=self.location, summary=self.summary, read_only=self.read_only, clock_ms=now, id="metrics"
        )
        yield StaleBanner(clock_ms=now, id="stale")
        yield Trends(id="trends")
        with Horizontal(id="main"):
            with Vertical(id="runs-pane"):
                yield RunsTable(clock_ms=now, id="runs")
                yield Static(empty_content(self.location, None), id="empty", markup=False)
            yield LocksPanel(id="locks")
        yield Input(placeholder="filter: id, automation, status, reason, workspace", id="filter")
        # ctrl+p is listed by "?"; at 80 columns its footer slot is worth more to "?".
        yield KeysFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(RunsTable).focus()
        # A blinking cursor would make snapshots of a static app differ run to run.
        self.query_one("#filter", Input).cursor_blink = self.blink
        self._update_caption()

    # -- data in ----------------------------------------------------------------------

    def show_state(self, state: DashboardState) -> None:
        """Hand the widgets the data of a new snapshot (attributes down)."""
        self.state = state
        snapshot = self.state.snapshot
        bar = self.query_one(MetricsBar)
        bar.ever_read = state.ever_read
        bar.metrics = state.metrics
        bar.freshness = snapshot.freshness
        banner = self.query_one(StaleBanner)
        banner.ever_read = state.ever_read
        banner.freshness = _banner_freshness(snapshot.freshness, state)
        self.query_one(Trends).data = state.trends
        self.query_one(LocksPanel).data = state.locks
        self.query_one(RunsTable).set_rows(state.rows)
        self._update_empty()

    def show_summary(self, summary: str) -> None:
        """The source's ``describe().summary`` changed (an engine started or stopped)."""
        self.summary = summary
        self.query_one(MetricsBar).summary = summary

    def tick(self) -> None:
        """Time moved on (live mode, once a second)."""
        self.query_one(MetricsBar).tick()
        self.query_one(StaleBanner).tick()
        self.query_one(RunsTable).tick()

    def _update_empty(self) -> None:
        table = self.query_one(RunsTable)
        empty = table.visible_count == 0
        content = empty_content(self.location, self.state)
        if empty and content != getattr(self, "_empty_shown", None):
            # Only while shown, and only when it says something new: updating a Static
            # lays the screen out again, which costs a frame at every filter key.
            self._empty_shown = content
            self.query_one("#empty", Static).update(content)
        self.query_one("#runs-pane").set_class(empty, "-empty")
        if not empty and self.focused is None:
            table.focus()

    # -- the caption over the table -------------------------------------------------

    def on_runs_table_view_changed(self) -> None:
        self._update_caption()
        if self.state is not None:
            self._update_empty()

    def _update_caption(self) -> None:
        table = self.query_one(RunsTable)
        total = len(table.rows_by_id)
        parts: list = [("runs ", "bold"), f"{table.visible_count}"]
        if table.visible_count != total:
            parts.append((f" of {total}", "$text-muted"))
        if table.status_filter != StatusFilter.ALL:
            parts += ["  ", (f"[{table.status_filter.value}]", "bold $text-accent")]
        if table.engine_filter:
            parts += ["  ", ("engine ", "$text-muted"), (sanitize(table.engine_filter), "bold $text-accent")]
        if table.filter_text:
            parts += ["  ", ("/", "$text-muted"), (sanitize(table.filter_text), "bold $text-accent")]
        arrow = "↓" if table.sort_reverse else "↑"
        parts += ["  ", (f"sort {table.sort_column} {arrow}", "$text-muted")]
        if table.marked:
            parts += ["  ", (f"● {len(table.marked)} marked", "bold $text-warning")]
        self.query_one("#runs-pane").border_title = Content.assemble(*parts)

    # -- keys -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act" and self.read_only:
            return False
        return True

    def action_filter(self) -> None:
        field_ = self.query_one("#filter", Input)
        field_.add_class("-shown")
        field_.focus()
        self._warm_filter()

    def _warm_filter(self) -> None:
        """The rows' filter texts, a chunk at a time, while the operator starts typing:
        the first key over 100k runs then costs the filter, not the texts."""
        if self.query_one(RunsTable).warm_search(FILTER_WARM_CHUNK):
            self.set_timer(0.001, self._warm_filter, name="filter-warm")

    def action_cycle_engine(self) -> None:
        """A fleet source: show one engine's runs, the next, …, then all again."""
        table = self.query_one(RunsTable)
        engines = sorted({row.engine for row in table.rows_by_id.values() if row.engine})
        if not engines:
            return
        cycle = ["", *engines]
        index = cycle.index(table.engine_filter) if table.engine_filter in cycle else 0
        table.engine_filter = cycle[(index + 1) % len(cycle)]

    def action_copy_id(self) -> None:
        """Copy the selected run's id (OSC 52: the terminal's clipboard, also over ssh)."""
        run_id = self.query_one(RunsTable).cursor_run_id
        if run_id is None:
            return
        self.app.copy_to_clipboard(run_id)
        self.notify(f"Copied {sanitize(run_id)}", timeout=2)

    def action_go_to_holder(self) -> None:
        """From a run waiting for a workspace lock, to the run holding it."""
        table = self.query_one(RunsTable)
        run_id = table.cursor_run_id
        row = table.rows_by_id.get(run_id) if run_id is not None else None
        if row is None or not row.holder:
            self.notify("This run waits for no workspace lock.", severity="warning", timeout=3)
            return
        if not table.go_to(row.holder):
            self.notify(f"{sanitize(row.holder)} is not among the hot runs.", severity="warning")

    def action_clear(self) -> None:
        if self.query("HelpPanel"):
            # Escape closes the key help first (as in k9s, htop, lazygit).
            self.query("HelpPanel").remove()
            return
        table = self.query_one(RunsTable)
        field_ = self.query_one("#filter", Input)
        if field_.has_class("-shown") or table.filter_text:
            field_.value = ""
            field_.remove_class("-shown")
            # At once, and whatever key was still waiting to apply: the rows as kept.
            self._apply_filter()
            table.focus()
        elif table.marked:
            table.clear_marks()
        elif table.status_filter != StatusFilter.ALL:
            table.status_filter = StatusFilter.ALL
        elif table.engine_filter:
            table.engine_filter = ""

    def on_input_changed(self, event: Input.Changed) -> None:
        """The filter input shows every key at once; the table follows at once when the
        filter is cheap, else when typing pauses (``filter_pause_s``), on Enter, or
        ``filter_max_wait_s`` after the first key that waits. What applies is always
        the input's value then, so a key typed ahead is never lost."""
        if event.input.id != "filter":
            return
        if self.query_one(RunsTable).filter_cost(event.input.value) <= self.filter_coalesce_rows:
            self._apply_filter()
            return
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(self.filter_pause_s, self._apply_filter, name="filter-pause")
        if self._filter_deadline is None:
            self._filter_deadline = self.set_timer(self.filter_max_wait_s, self._apply_filter, name="filter-deadline")

    def _apply_filter(self) -> None:
        """Show the rows of what the filter input says now (its every key so far)."""
        for timer in (self._filter_timer, self._filter_deadline):
            if timer is not None:
                timer.stop()
        self._filter_timer = self._filter_deadline = None
        self.query_one(RunsTable).filter_text = self.query_one("#filter", Input).value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            # Enter applies what is typed without waiting for the pause.
            self._apply_filter()
            if not event.value:
                event.input.remove_class("-shown")
            self.query_one(RunsTable).focus()

    def action_status_filter(self, name: str) -> None:
        self.query_one(RunsTable).status_filter = StatusFilter(name)

    def action_toggle_panel(self, name: str) -> None:
        self.query_one(f"#{name}").toggle_class("-hidden")

    def action_history(self) -> None:
        self.post_message(self.OpenHistory())

    def action_act(self, kind: str) -> None:
        """On the marked runs (else the one under the cursor), or, from the locks panel,
        on the holder selected there."""
        holder = self.query_one(LocksPanel).selected_holder
        targets = [holder] if holder is not None else self.query_one(RunsTable).target_run_ids()
        self.post_message(self.ActionRequested(kind, targets))

    def on_locks_panel_holder_chosen(self, event: LocksPanel.HolderChosen) -> None:
        event.stop()
        self.go_to_run(event.run_id, open_run=False)

    def on_runs_table_run_selected(self, event: RunsTable.RunSelected) -> None:
        event.stop()
        self.post_message(self.OpenRun(event.run_id))

    def clear_marks(self) -> None:
        table = self.query_one(RunsTable)
        if table.marked:
            table.clear_marks()

    def go_to_run(self, run_id: str, *, open_run: bool = True) -> None:
        """Put the cursor on ``run_id`` (clearing filters that hide it) and, unless
        ``open_run=False``, open it: "Go to run" is for looking at the run."""
        table = self.query_one(RunsTable)
        if table.go_to(run_id):
            table.focus()
            if open_run:
                self.post_message(self.OpenRun(run_id))


def _banner_freshness(freshness: Freshness, state: DashboardState) -> Freshness | None:
    """A missing file is the empty state, not an alarm; anything else unreadable is."""
    if state.file_missing and not state.snapshot.runs:
        return None
    return freshness

