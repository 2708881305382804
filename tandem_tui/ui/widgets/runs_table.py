"""The runs table: one row per run, updated in place as snapshots arrive.

:func:`run_row` turns a run (and the view's queue info for it) into a :class:`RunRow`,
plain data taken at snapshot time, so it can be built off the UI thread. The table
renders rows into cells with the current clock: times in status and retry countdowns
move on without a new snapshot. What a cell says (why waiting, in status, detail) comes
from :mod:`tandem_tui.present`, as in ``tandem-tui runs``.

Live updates never rebuild the table unless the set of visible rows changed a lot: a
changed run updates only the cells that differ (``update_cell``), rows that appear or
leave are added or removed by key, and the cursor stays on the run it was on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist, RowKey
from textual.widgets._data_table import Row

from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.domain.models import QueueReason, Run, RunStatus
from tandem_tui.domain.view import QueueInfo, RunsView
from tandem_tui.present import IN_STATUS, detail_text, in_status_text, retry_text, status_since_ms
from tandem_tui.present import why_text as queue_why_text
from tandem_tui.safe_text import sanitize
from tandem_tui.ui.widgets.status_style import status_text

#: Order of statuses in the default sort: what needs an operator first.
STATUS_ORDER: Mapping[RunStatus, int] = {
    status: index
    for index, status in enumerate(
        (
            RunStatus.RUNNING,
            RunStatus.PAUSING,
            RunStatus.QUEUED,
            RunStatus.AWAITING_APPROVAL,
            RunStatus.PAUSED,
            RunStatus.FAILED,
            RunStatus.BLOCKED,
            RunStatus.CANCELLED,
            RunStatus.COMPLETED,
        )
    )
}

#: Above this many rows entering or leaving at once, rebuilding is cheaper than editing.
REBUILD_THRESHOLD = 200
#: A rebuild draws the cells of this many rows (the top, and around the cursor) at once;
#: the others are filled in chunks after the first frame, so a 10k-run table appears
#: without first building 80k cells.
EAGER_ROWS = 300
FILL_CHUNK = 2000


class StatusFilter(StrEnum):
    """The quick filters on keys 1..5."""

    ALL = "all"
    ACTIVE = "active"
    QUEUED = "queued"
    PAUSED = "paused"
    FAILED = "failed"


STATUS_FILTER_MEMBERS: Mapping[StatusFilter, frozenset[RunStatus] | None] = {
    StatusFilter.ALL: None,
    StatusFilter.ACTIVE: frozenset({RunStatus.RUNNING, RunStatus.PAUSING}),
    StatusFilter.QUEUED: frozenset({RunStatus.QUEUED}),
    StatusFilter.PAUSED: frozenset(
        {RunStatus.PAUSED, RunStatus.PAUSING, RunStatus.AWAITING_APPROVAL}
    ),
    StatusFilter.FAILED: frozenset({RunStatus.FAILED, RunStatus.BLOCKED}),
}


@dataclass(frozen=True)
class RunRow:
    """What the table shows about one run, as plain data taken at snapshot time."""

    run_id: str
    automation_id: str
    status: RunStatus
    why: str
    reason: QueueReason | None
    workspace: str
    #: When the run entered its status (``present.status_since_ms``): the ``in status``
    #: column counts from here.
    since_ms: int
    retry_due_ms: int | None
    nodes_done: int
    nodes_total: int
    detail: str
    updated_at_ms: int
    created_at_ms: int
    #: Position of the status in the default sort (kept here: hashing an enum member
    #: per row per sort is measurable at 10k rows).
    status_rank: int = 99

    @property
    def time_dependent(self) -> bool:
        # Every row's "in status" age moves with the clock, a finished run's too
        # (time since it finished): a finished row frozen at "1s" was issue 13's item 6.
        return True

    def search_text(self) -> str:
        """What the ``/`` filter matches against (lower case)."""
        reason = self.reason.value if self.reason else ""
        return " ".join(
            (self.run_id, self.automation_id, self.status.value, reason, self.why, self.workspace)
        ).lower()


def _node_counts(run: Run) -> tuple[int, int]:
    done = len(run.checkpoint.completed_nodes)
    snapshot = run.automation_snapshot
    flow = snapshot.get("flow") if isinstance(snapshot, dict) else None
    nodes = flow.get("nodes") if isinstance(flow, dict) else None
    if isinstance(nodes, list) and nodes:
        return done, len(nodes)
    checkpoint = run.checkpoint
    return done, done + len(checkpoint.pending_nodes) + len(checkpoint.blocked_nodes)


def run_row(run: Run, queue: QueueInfo | None, now_ms: int) -> RunRow:
    """The row for ``run``; ``queue`` is the view's queue info (``None`` unless queued)."""
    status = RunStatus(run.status)
    retry_due = None
    if queue is not None and queue.retry_remaining_ms:
        retry_due = now_ms + queue.retry_remaining_ms
    done, total = _node_counts(run)
    return RunRow(
        run_id=run.run_id,
        automation_id=run.automation_id,
        status=status,
        why=queue_why_text(queue),
        reason=queue.reason if queue is not None else None,
        workspace=run.workspace_root or "",
        since_ms=status_since_ms(run, queue),
        retry_due_ms=retry_due,
        nodes_done=done,
        nodes_total=total,
        detail=detail_text(run),
        updated_at_ms=run.updated_at_ms,
        created_at_ms=run.created_at_ms,
        status_rank=STATUS_ORDER.get(status, 99),
    )


def build_rows(
    runs: Mapping[str, Run],
    view: RunsView,
    now_ms: int,
    *,
    previous: Mapping[str, RunRow] | None = None,
    changed: Iterable[str] | None = None,
) -> dict[str, RunRow]:
    """Rows for every run, rebuilding only ``changed`` ones when ``previous`` is given.

    Queued rows are always rebuilt: why a run waits depends on the other runs.
    """
    if previous is None or changed is None:
        with gc_paused():
            return {
                run_id: run_row(run, view.queue_info(run, now_ms), now_ms)
                for run_id, run in runs.items()
            }
    changed_ids = set(changed)
    rows: dict[str, RunRow] = {}
    for run_id, run in runs.items():
        old = previous.get(run_id)
        if old is None or run_id in changed_ids:
            rows[run_id] = run_row(run, view.queue_info(run, now_ms), now_ms)
        elif run.status == RunStatus.QUEUED:
            # Keep the old object when nothing shows differently: the table redraws
            # only rows whose object changed.
            new = run_row(run, view.queue_info(run, now_ms), now_ms)
            rows[run_id] = old if new == old else new
        else:
            rows[run_id] = old
    return rows


# -- rendering ----------------------------------------------------------------------

#: What an operator needs first comes first: at 80 columns, automation and detail are
#: a sideways scroll away.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("mark", " "),
    ("id", "run"),
    ("status", "status"),
    ("why", "why waiting"),
    ("wait", IN_STATUS),
    ("nodes", "nodes"),
    ("automation", "automation"),
    ("detail", "detail"),
)
SORTABLE = tuple(key for key, _ in COLUMNS if key != "mark")

#: Columns whose width never changes.
FIXED_WIDTHS: Mapping[str, int] = {"mark": 1, "status": 11, "wait": len(IN_STATUS), "nodes": 5}
#: Upper bounds for columns sized to their content.
MAX_WIDTHS: Mapping[str, int] = {"id": 24, "automation": 18, "why": 26}
#: Tighter bounds below 100 columns.
NARROW_MAX_WIDTHS: Mapping[str, int] = {"id": 22, "automation": 16, "why": 20}
MIN_DETAIL_WIDTH = 12


def column_widths(rows: Iterable[RunRow], available: int, padding: int) -> dict[str, int]:
    """Widths that fit ``available`` cells when they can: ids, automations and reasons
    as wide as their longest value (capped), the detail column takes what is left (and
    the table scrolls sideways when even its minimum does not fit)."""
    longest = {"id": 3, "automation": 10, "why": 11}
    for row in rows:
        longest["id"] = max(longest["id"], len(row.run_id))
        longest["automation"] = max(longest["automation"], len(row.automation_id))
        longest["why"] = max(longest["why"], len(row.why))
    widths = dict(FIXED_WIDTHS)
    caps = MAX_WIDTHS if available >= 100 else NARROW_MAX_WIDTHS
    for key, cap in caps.items():
        widths[key] = min(longest[key], cap)
    used = sum(widths.values()) + padding * 2 * len(COLUMNS)
    widths["detail"] = max(MIN_DETAIL_WIDTH, available - used)
    return widths


class MarkCell:
    """The first cell: a marker, and the run id the table sorts rows by."""

    __slots__ = ("run_id", "marked")

    def __init__(self, run_id: str, marked: bool) -> None:
        self.run_id = run_id
        self.marked = marked

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MarkCell) and (other.run_id, other.marked) == (
            self.run_id, self.marked
        )

    def __rich__(self) -> Text:
        return Text("●" if self.marked else " ", style="bold", end="")


def _cell(text: str, **kwargs: Any) -> Text:
    return Text(text, no_wrap=True, overflow="ellipsis", end="", **kwargs)


class PendingCell:
    """A cell whose content is being filled in after the first frame (draws blank)."""

    __slots__ = ()

    def __rich__(self) -> Text:
        return Text("", end="")


PENDING = PendingCell()


def wait_text(row: RunRow, now_ms: int) -> Text:
    """The ``in status`` cell, as of ``now_ms``."""
    return _cell(in_status_text(row.since_ms, now_ms), justify="right")


def why_text(row: RunRow, now_ms: int) -> Text:
    if row.retry_due_ms is not None:
        return _cell(retry_text(row.retry_due_ms - now_ms))
    return _cell(sanitize(row.why))


def row_cells(row: RunRow, now_ms: int, variables: Mapping[str, str], marked: bool) -> tuple[Any, ...]:
    """The cells of one row. Every value from the runs file is literal (no markup)."""
    nodes = f"{row.nodes_done}/{row.nodes_total}" if row.nodes_total else "-"
    return (
        MarkCell(row.run_id, marked),
        _cell(sanitize(row.run_id)),
        status_text(row.status, variables),
        why_text(row, now_ms),
        wait_text(row, now_ms),
        _cell(nodes, justify="right"),
        _cell(sanitize(row.automation_id)),
        _cell(sanitize(row.detail)),
    )


def same_cell(old: Any, new: Any) -> bool:
    """Whether a cell would draw the same. (``Text ==`` ignores the base style, which
    is how a status cell is coloured.)"""
    if isinstance(old, Text) and isinstance(new, Text):
        return old.plain == new.plain and old.style == new.style and old.spans == new.spans
    return old == new


def sort_key(column: str) -> Callable[[RunRow], Any]:
    """How rows order under each column; ties fall back to newest update first."""
    keys: dict[str, Callable[[RunRow], Any]] = {
        "id": lambda r: r.run_id,
        "automation": lambda r: r.automation_id,
        "status": lambda r: r.status_rank,
        "why": lambda r: (r.why == "", r.why),
        "wait": lambda r: r.since_ms,
        "nodes": lambda r: (r.nodes_done / r.nodes_total) if r.nodes_total else -1,
        "detail": lambda r: r.detail,
    }
    primary = keys[column]
    return lambda r: (primary(r), -r.updated_at_ms, r.run_id)


def row_matches(row: RunRow, needle: str, statuses: frozenset[RunStatus] | None) -> bool:
    if statuses is not None and row.status not in statuses:
        return False
    return not needle or needle in row.search_text()


class RunsTable(DataTable):
    """The runs, filtered and sorted; marks rows for bulk actions."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Open run", show=False),
        Binding("space", "toggle_mark", "Mark", show=False),
        Binding("s", "cycle_sort", "Sort", show=False),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
    ]

    filter_text: reactive[str] = reactive("", init=False)
    status_filter: reactive[StatusFilter] = reactive(StatusFilter.ALL, init=False)
    sort_column: reactive[str] = reactive("status", init=False)
    sort_reverse: reactive[bool] = reactive(False, init=False)

    class RunSelected(Message):
        """Enter (or a click on the selected row) on a run."""

        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    class ViewChanged(Message):
        """The visible rows, marks, filter or sort changed (for the title)."""

    def __init__(self, *, clock_ms: Callable[[], int], id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._now = clock_ms
        self.rows_by_id: dict[str, RunRow] = {}
        self.marked: set[str] = set()
        self._order: list[str] = []
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._shown: dict[str, RunRow] = {}
        self.pending_fill: list[str] = []

    def on_mount(self) -> None:
        widths = column_widths((), self.size.width, self.cell_padding)
        for key, label in COLUMNS:
            self.add_column(label, key=key, width=widths[key])
        self.app.theme_changed_signal.subscribe(self, self._redraw_all)

    def _redraw_all(self, _theme: object = None) -> None:
        """Status colours are resolved from the theme when cells are built: rebuild them."""
        self._shown.clear()
        self._sync()

    def on_resize(self) -> None:
        self._fit_columns()

    def _fit_columns(self) -> None:
        # One column of the width is the vertical scrollbar.
        available = self.size.width - 1
        widths = column_widths(self.rows_by_id.values(), available, self.cell_padding)
        changed = False
        for key, column in self.columns.items():
            width = widths[str(key.value)]
            if column.width != width:
                column.width = width
                column.auto_width = False
                changed = True
        if changed:
            self._require_update_dimensions = True
            self.refresh(layout=True)

    # -- data in ----------------------------------------------------------------------

    def set_rows(self, rows: dict[str, RunRow]) -> None:
        """Take a new set of rows; rows that are the same objects as before are not redrawn."""
        self.rows_by_id = rows
        self.marked &= rows.keys()
        self._fit_columns()
        self._sync()

    def tick(self) -> None:
        """Time moved on: refresh the cells that depend on "now"."""
        self._sync(time_only=True)

    # -- the current selection --------------------------------------------------------

    @property
    def cursor_run_id(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except CellDoesNotExist:
            return None

    def target_run_ids(self) -> list[str]:
        """Marked runs (in table order) if any, else the run under the cursor."""
        if self.marked:
            in_order = [run_id for run_id in self._order if run_id in self.marked]
            hidden = sorted(self.marked - set(in_order))
            return in_order + hidden
        run_id = self.cursor_run_id
        return [run_id] if run_id is not None else []

    @property
    def visible_count(self) -> int:
        return len(self._order)

    def go_to(self, run_id: str) -> bool:
        """Put the cursor on ``run_id``, clearing filters that hide it."""
        if run_id not in self.rows_by_id:
            return False
        if run_id not in self._order:
            self.filter_text = ""
            self.status_filter = StatusFilter.ALL
            self._sync()
        try:
            self.move_cursor(row=self.get_row_index(run_id))
        except RowDoesNotExist:
            return False
        return True

    # -- actions ----------------------------------------------------------------------

    def action_toggle_mark(self) -> None:
        run_id = self.cursor_run_id
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.discard(run_id)
        else:
            self.marked.add(run_id)
        self._sync({run_id})
        self.post_message(self.ViewChanged())

    def clear_marks(self) -> None:
        changed = set(self.marked)
        self.marked.clear()
        self._sync(changed)
        self.post_message(self.ViewChanged())

    def action_cycle_sort(self) -> None:
        index = SORTABLE.index(self.sort_column) if self.sort_column in SORTABLE else -1
        self.sort_column = SORTABLE[(index + 1) % len(SORTABLE)]

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        column = event.column_key.value
        if column not in SORTABLE:
            return
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column = column

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.RunSelected(event.row_key.value))

    def _watch_filter_text(self) -> None:
        self._sync()

    def _watch_status_filter(self) -> None:
        self._sync()

    def _watch_sort_column(self) -> None:
        self._sync()

    def _watch_sort_reverse(self) -> None:
        self._sync()

    # -- keeping the table in step ------------------------------------------------------

    def _visible_order(self) -> list[str]:
        needle = self.filter_text.strip().lower()
        statuses = STATUS_FILTER_MEMBERS[self.status_filter]
        visible = [row for row in self.rows_by_id.values() if row_matches(row, needle, statuses)]
        visible.sort(key=sort_key(self.sort_column), reverse=self.sort_reverse)
        return [row.run_id for row in visible]

    def _cells_for(self, run_id: str, now_ms: int) -> tuple[Any, ...]:
        return row_cells(
            self.rows_by_id[run_id], now_ms, self.app.theme_variables, run_id in self.marked
        )

    def _sync(self, extra: set[str] | None = None, *, time_only: bool = False) -> None:
        """Make the table show ``_visible_order()`` with as few edits as possible.

        A row is redrawn when its :class:`RunRow` is a new object, when it is in
        ``extra`` (marks), or, on a clock tick, when its cells depend on the time; only
        the cells that differ are written.
        """
        if not self.is_mounted:
            return
        now_ms = self._now()
        cursor_id = self.cursor_run_id
        scroll_y = self.scroll_y
        order = self._order if time_only else self._visible_order()
        current = set(self._order)
        wanted = set(order)
        added = [run_id for run_id in order if run_id not in current]
        removed = current - wanted
        rebuild = not self._order or len(added) + len(removed) > REBUILD_THRESHOLD
        rows = self.rows_by_id

        if rebuild:
            self.clear()
            focus = order.index(cursor_id) if cursor_id in wanted else 0
            half = EAGER_ROWS // 2
            eager = order[:EAGER_ROWS] + order[max(0, focus - half) : focus + half]
            with gc_paused():
                self._cells = {run_id: self._cells_for(run_id, now_ms) for run_id in eager}
                self._fill(order)
            self.pending_fill = [run_id for run_id in order if run_id not in self._cells]
            if self.pending_fill:
                self.call_after_refresh(self._fill_pending)
        else:
            for run_id in removed:
                self.remove_row(run_id)
                self._cells.pop(run_id, None)
            for run_id in added:
                self._cells[run_id] = cells = self._cells_for(run_id, now_ms)
                self.add_row(*cells, key=run_id)
            shown = self._shown
            refresh = {run_id for run_id in order if shown.get(run_id) is not rows[run_id]}
            if extra:
                refresh |= extra & wanted
            if time_only:
                refresh |= {run_id for run_id in order if rows[run_id].time_dependent}
            for run_id in refresh.difference(added):
                self._update_row(run_id, now_ms)
            if order != self._order_after_edits(added, removed):
                position = {run_id: index for index, run_id in enumerate(order)}
                self.sort("mark", key=lambda cell: position[cell.run_id])
        self._order = order
        self._shown = {run_id: rows[run_id] for run_id in order}

        if cursor_id is not None and cursor_id in wanted:
            index = self.get_row_index(cursor_id)
            if index != self.cursor_row:
                self.move_cursor(row=index, scroll=False)
        if self.scroll_y != scroll_y:
            self.scroll_to(y=scroll_y, animate=False, immediate=True)
        if not time_only:
            self.post_message(self.ViewChanged())

    def _fill(self, order: list[str]) -> None:
        """Append many rows at once.

        ``add_row`` costs ~0.2 ms a row (it revalidates the cursor and re-sorts the
        columns each time), which is seconds for a 10k-run file; every row here is one
        line high with no label, so the bookkeeping is filled directly.
        """
        column_keys = [column.key for column in self.ordered_columns]
        locations = self._row_locations
        start = len(locations)
        blanks = (PENDING,) * (len(column_keys) - 1)
        for offset, run_id in enumerate(order):
            row_key = RowKey(run_id)
            locations[row_key] = start + offset
            cells = self._cells.get(run_id)
            if cells is None:
                cells = (MarkCell(run_id, run_id in self.marked), *blanks)
            self._data[row_key] = dict(zip(column_keys, cells))
            self.rows[row_key] = Row(row_key, 1, None, False)
        self._require_update_dimensions = True
        self._update_count += 1
        self.cursor_coordinate = self.cursor_coordinate
        self.check_idle()
        self.refresh()

    def _fill_pending(self) -> None:
        """Draw the next chunk of rows a rebuild left blank, then yield to the UI."""
        if not self.pending_fill or not self.is_mounted:
            return
        chunk = self.pending_fill[:FILL_CHUNK]
        del self.pending_fill[:FILL_CHUNK]
        now_ms = self._now()
        column_keys = [column.key for column in self.ordered_columns]
        with gc_paused():
            for run_id in chunk:
                data = self._data.get(RowKey(run_id))
                # Drawn meanwhile (a live update or a tick), or gone from the table.
                if run_id in self._cells or data is None or run_id not in self.rows_by_id:
                    continue
                cells = self._cells[run_id] = self._cells_for(run_id, now_ms)
                data.update(zip(column_keys, cells))
        self._update_count += 1
        self.refresh()
        if self.pending_fill:
            self.call_after_refresh(self._fill_pending)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # Every column has a fixed width and every row is one line: measuring each new
        # cell (what DataTable does for auto-sized columns) would only cost time.
        super()._update_dimensions(())

    def _order_after_edits(self, added: list[str], removed: set[str]) -> list[str]:
        """The row order the DataTable has after removals and appends (before sorting)."""
        return [run_id for run_id in self._order if run_id not in removed] + added

    def _update_row(self, run_id: str, now_ms: int) -> None:
        new = self._cells_for(run_id, now_ms)
        old = self._cells.get(run_id)
        for index, (key, _) in enumerate(COLUMNS):
            if old is None or not same_cell(old[index], new[index]):
                self.update_cell(run_id, key, new[index])
        self._cells[run_id] = new
