"""The history browser: archived runs, month by month, from the source's archive.

The month list comes from the source's cheap listing (``archive_months()``: directory
listings for the runs file's history shards); a month's runs are read only when the
operator opens it, in a thread worker that asks the source for them in batches
(``read_archived``) and posts each batch back, with a progress bar for big months.
``/`` searches by run id or automation id: loaded runs by both, entries not read yet by
their listed name (``ArchiveEntry.name``, compared loosely on punctuation: a shard's
name is its sanitized run id), so finding a run never reads a whole archive. Enter
posts :class:`HistoryScreen.OpenRun`; the app opens the run's detail, marked ARCHIVED.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, ProgressBar, Tree
from textual.widgets.tree import TreeNode
from textual.worker import get_current_worker

from tandem_tui.domain.clock import Clock
from tandem_tui.domain.models import Run
from tandem_tui.humanize import format_duration_ms, format_timestamp
from tandem_tui.source.base import ArchivedRead, ArchiveEntry, Month, RunsSource, SourceError
from tandem_tui.ui.screens.run_detail import STYLES_DIR
from tandem_tui.safe_text import literal, sanitize
from tandem_tui.ui.widgets.footer import SteadyFooter
from tandem_tui.ui.widgets.record_fields import FieldsPanel, key_field_rows, theme_style
from tandem_tui.ui.widgets.status_style import status_text
from tandem_tui.ui.widgets.table_columns import size_columns
from tandem_tui.ui.widgets.timeline import format_offset, timeline_entries

#: Archived runs read per message back to the screen (each moves the progress bar).
BATCH_SIZE = 50
#: How long the month tree is on screen alone before the open month's table is filled.
TREE_FIRST_S = 0.05
#: Search hits drawn at most: typing the first letters of an id can match everything.
MAX_SEARCH_ROWS = 200

MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


_PUNCTUATION = re.compile(r"[^0-9a-z_-]")


def _loose(text: str) -> str:
    """``text`` casefolded, every character outside ``[0-9a-z_-]`` made ``_``: how a
    listed name (a shard's sanitized run id) and a typed run id are compared."""
    return _PUNCTUATION.sub("_", text.casefold())


def matches(query: str, entry: ArchiveEntry, result: ArchivedRead | None) -> bool:
    """Does this archive entry match the search: run id or automation id once read, its
    listed name before."""
    needle = query.casefold()
    if result is not None and result.run is not None:
        run = result.run
        return needle in run.run_id.casefold() or needle in run.automation_id.casefold()
    return needle in entry.name.casefold() or _loose(query) in _loose(entry.name)


@dataclass(frozen=True)
class RowStyles:
    """The theme's styles for table rows, resolved once per redraw."""

    theme: Mapping[str, str]
    muted: Style
    error: Style


def batches(items: Sequence[ArchiveEntry], size: int) -> Iterable[Sequence[ArchiveEntry]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def read_batch(source: RunsSource, batch: Sequence[ArchiveEntry]) -> list[ArchivedRead]:
    """The source's reads of ``batch``; a source that fails outright makes every entry
    unreadable with its one-line reason (a reader thread must not take the console
    down)."""
    try:
        return list(source.read_archived(batch))
    except SourceError as error:
        reason = str(error)
    except Exception as error:  # noqa: BLE001 - see above
        reason = f"cannot read the archive ({type(error).__name__}: {error})"
    return [ArchivedRead(entry, error=reason) for entry in batch]


def lifecycle_summary(run: Run, theme: Mapping[str, str], limit: int = 14) -> Table | Text:
    """The latest ``limit`` lifecycle events as ``offset  event  reason`` lines."""
    entries = timeline_entries(run)
    if not entries:
        return Text("no lifecycle events", style="dim")
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column("offset", justify="right", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("reason", overflow="ellipsis", no_wrap=True, ratio=1)
    muted = theme_style(theme, "foreground-muted")
    for entry in entries[-limit:]:
        if entry.operator:
            style = theme_style(theme, "text-accent", bold=True)
        elif entry.bookkeeping:
            style = theme_style(theme, "foreground-muted", dim=True)
        else:
            style = Style()
        table.add_row(
            Text(format_offset(entry.offset_ms), style=muted),
            literal(entry.record.event, style=style),
            Text(
                sanitize(entry.record.reason or ""), style=muted, no_wrap=True, overflow="ellipsis"
            ),
        )
    return table


class HistoryScreen(Screen[None]):
    """Archived runs, grouped by month, read lazily from ``source``."""

    CSS_PATH = [STYLES_DIR / "history.tcss"]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash", "search", "Search"),
        Binding("r", "rescan", "Rescan"),
    ]

    class IndexScanned(Message):
        """The archive was (re)listed."""

        def __init__(self, months: dict[Month, list[ArchiveEntry]], error: str | None = None) -> None:
            super().__init__()
            self.months = months
            self.error = error

    class ShardsRead(Message):
        """One batch of a month's runs was read (``read`` of ``total`` so far)."""

        def __init__(self, month: Month, results: list[ArchivedRead], read: int, total: int) -> None:
            super().__init__()
            self.month = month
            self.results = results
            self.read = read
            self.total = total

    class ShardRead(Message):
        """One archived run read on demand (a search hit in a month not opened)."""

        def __init__(self, result: ArchivedRead) -> None:
            super().__init__()
            self.result = result

    class OpenRun(Message):
        """The operator chose an archived run to open (the app shows it, ARCHIVED)."""

        def __init__(self, run: Run) -> None:
            super().__init__()
            self.run = run

    def __init__(self, source: RunsSource, *, clock: Clock) -> None:
        super().__init__()
        self.source = source
        self.clock = clock
        self.months: dict[Month, list[ArchiveEntry]] = {}
        #: What reading each entry gave, by ``ArchiveEntry.key``.
        self.results: dict[str, ArchivedRead] = {}
        self.loaded_months: set[Month] = set()
        self.loading: dict[Month, tuple[int, int]] = {}
        #: Every entry this screen has asked the source to read, in order (what
        #: laziness is judged by).
        self.shards_read: list[ArchiveEntry] = []
        self.month: Month | None = None
        self.query_text = ""
        self._rows: list[ArchiveEntry] = []
        self._matches = 0
        self._cell_cache: dict[str, tuple[ArchivedRead | None, Mapping[str, str], list[Text]]] = {}
        self._open_after_read: str | None = None

    # --- layout ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="history-title"):
            yield Label("History", id="history-heading")
            yield Label("", id="history-summary")
        with Horizontal(id="history-body"):
            tree: Tree[Month | None] = Tree("archive", id="history-months")
            tree.show_root = False
            tree.border_title = "Months"
            yield tree
            with Vertical(id="history-runs"):
                yield Input(
                    placeholder="/  search run id or automation", id="history-search", compact=True
                )
                with Horizontal(id="history-status"):
                    yield Label("", id="history-month-label")
                    yield ProgressBar(id="history-progress", show_eta=False)
                yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
                with Horizontal(id="history-preview"):
                    yield FieldsPanel("Run", id="preview-run")
                    yield FieldsPanel("Lifecycle", id="preview-lifecycle")
        yield SteadyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#history-table", DataTable)
        for label in ("run id", "automation", "status", "trigger", "finished", "took", "cost", "events"):
            table.add_column(label, key=label)
        self.query_one("#history-progress").display = False
        self.query_one("#history-table").focus()
        self._scan()

    # --- index and reading (threads) ------------------------------------------------

    @work(thread=True, exclusive=True, group="history-index")
    def _scan(self) -> None:
        try:
            months, error = self.source.archive_months(), None
        except Exception as error_:  # noqa: BLE001 - SourceError or worse: one line, no crash
            months, error = {}, " ".join(str(error_).split()) or type(error_).__name__
        self.post_message(self.IndexScanned(months, error))

    @work(thread=True, group="history-shards")
    def _read_month(self, month: Month, entries: list[ArchiveEntry]) -> None:
        worker = get_current_worker()
        read = 0
        for batch in batches(entries, BATCH_SIZE):
            if worker.is_cancelled:
                return
            self.shards_read.extend(batch)
            results = read_batch(self.source, batch)
            read += len(batch)
            self.post_message(self.ShardsRead(month, results, read, len(entries)))

    @work(thread=True, group="history-shards")
    def _read_single(self, entry: ArchiveEntry) -> None:
        self.shards_read.append(entry)
        self.post_message(self.ShardRead(read_batch(self.source, [entry])[0]))

    # --- messages back on the UI thread ---------------------------------------------

    def on_history_screen_index_scanned(self, message: IndexScanned) -> None:
        if message.error is not None:
            self.notify(sanitize(f"cannot list the archive: {message.error}"), severity="error")
        self.months = message.months
        if self.results:
            keys = self._all_keys()
            self.results = {k: r for k, r in self.results.items() if k in keys}
        self._fill_tree()
        total = sum(len(entries) for entries in self.months.values())
        self.query_one("#history-summary", Label).update(
            f"{total} archived run{'s' if total != 1 else ''} in {len(self.months)} "
            f"month{'s' if len(self.months) != 1 else ''}"
        )
        if self.month not in self.months:
            self.month = next(iter(self.months), None)
        # The month tree is drawn first, the month's table after: filling a table of a
        # 4k-run month costs more than listing 100k shards, and the months are what the
        # operator looks at first (issue 13 item 8: the tree in < 1 s at 100k shards).
        # (A timer, not call_after_refresh: that runs before the frame is drawn.)
        self.set_timer(TREE_FIRST_S, self._open_current_month)

    def _open_current_month(self) -> None:
        if self.month is not None:
            self.open_month(self.month)
        else:
            self._show_rows()

    def on_history_screen_shards_read(self, message: ShardsRead) -> None:
        for result in message.results:
            self.results[result.entry.key] = result
        done = message.read >= message.total
        if done:
            self.loading.pop(message.month, None)
            self.loaded_months.add(message.month)
            self._relabel_month(message.month)
        else:
            self.loading[message.month] = (message.read, message.total)
        self._show_progress()
        # Redrawing a big table per batch would cost more than reading: show the first
        # batch at once, then only the progress bar until the month is complete.
        first = message.read <= len(message.results)
        if (message.month == self.month or self.query_text) and (first or done):
            self._show_rows()

    def on_history_screen_shard_read(self, message: ShardRead) -> None:
        self.results[message.result.entry.key] = message.result
        self._show_rows()
        if self._open_after_read == message.result.entry.key:
            self._open_after_read = None
            self._open_result(message.result)

    # --- months ---------------------------------------------------------------------

    def _all_keys(self) -> set[str]:
        return {entry.key for entries in self.months.values() for entry in entries}

    def _fill_tree(self) -> None:
        tree: Tree[Month | None] = self.query_one("#history-months", Tree)
        tree.clear()
        years: dict[int, TreeNode[Month | None]] = {}
        for year, month in self.months:
            if year not in years:
                years[year] = tree.root.add(Text(str(year), style="bold"), data=None, expand=True)
            node = years[year].add_leaf(self._month_label((year, month)), data=(year, month))
            if (year, month) == self.month:
                self.call_after_refresh(tree.move_cursor, node)

    def _month_label(self, month: Month) -> Text:
        """``Nov    12``: how many runs the month holds (exact once it has been read)."""
        entries = self.months.get(month, [])
        # Nothing read yet (the first listing): every entry counts, no lookup per entry.
        count = sum(1 for e in entries if not self._hidden(e)) if self.results else len(entries)
        label = Text(f"{MONTH_NAMES[month[1] - 1][:3]} ")
        label.append(f"{count:>6}", style="dim")
        return label

    def _relabel_month(self, month: Month) -> None:
        tree: Tree[Month | None] = self.query_one("#history-months", Tree)
        for year_node in tree.root.children:
            for node in year_node.children:
                if node.data == month:
                    node.set_label(self._month_label(month))

    def open_month(self, month: Month) -> None:
        """Show ``month``; read its runs (in a thread) the first time it is opened."""
        self.month = month
        entries = self.months.get(month, [])
        unread = [entry for entry in entries if entry.key not in self.results]
        if unread and month not in self.loading:
            self.loading[month] = (0, len(unread))
            self._read_month(month, unread)
        self._show_progress()
        self._show_rows()

    def on_tree_node_selected(self, event: Tree.NodeSelected[Month | None]) -> None:
        event.stop()
        if event.node.data is not None:
            self.open_month(event.node.data)
            self.query_one("#history-table").focus()

    # --- the table ------------------------------------------------------------------

    def _hidden(self, entry: ArchiveEntry) -> bool:
        result = self.results.get(entry.key)
        return result is not None and result.hidden

    def visible_entries(self) -> list[ArchiveEntry]:
        """The open month's entries, or, while searching, every matching entry."""
        if self.query_text:
            candidates = [e for entries in self.months.values() for e in entries]
            found = [e for e in candidates if matches(self.query_text, e, self.results.get(e.key))]
        else:
            found = list(self.months.get(self.month, [])) if self.month else []
        shown = [e for e in found if not self._hidden(e)]
        return sorted(shown, key=self._sort_key, reverse=True)

    def _sort_key(self, entry: ArchiveEntry) -> tuple[int, str]:
        result = self.results.get(entry.key)
        run = result.run if result is not None else None
        if run is None:
            year, month = entry.month
            return (0, f"{year:04d}{month:02d}{entry.name}")
        finished = run.finished_at_ms if run.finished_at_ms is not None else run.updated_at_ms
        return (finished, run.run_id)

    def visible_runs(self) -> list[Run]:
        """The runs (read so far) the table shows, top to bottom."""
        return [r.run for e in self._rows if (r := self.results.get(e.key)) and r.run is not None]

    def _show_rows(self) -> None:
        table = self.query_one("#history-table", DataTable)
        # Follow the run under the cursor as rows reorder, unless it sits on the top row:
        # then stay on top (the newest run) while a month fills in.
        current = self._rows[table.cursor_row] if 0 < table.cursor_row < len(self._rows) else None
        rows = self.visible_entries()
        self._matches = len(rows)
        if self.query_text and len(rows) > MAX_SEARCH_ROWS:
            rows = rows[:MAX_SEARCH_ROWS]
        self._rows = rows
        styles = self._row_styles()
        rows_cells = [self._cells(entry, styles) for entry in self._rows]
        table.clear()
        size_columns(table, rows_cells)
        for entry, cells in zip(self._rows, rows_cells):
            table.add_row(*cells, key=entry.key)
        if current in self._rows:
            table.move_cursor(row=self._rows.index(current), animate=False)
        self._show_month_label()
        self._show_preview()

    def _row_styles(self) -> RowStyles:
        theme = self.app.theme_variables
        return RowStyles(
            theme=theme,
            muted=theme_style(theme, "foreground-muted"),
            error=theme_style(theme, "text-error", bold=True),
        )

    def _cells(self, entry: ArchiveEntry, styles: RowStyles) -> list[Text]:
        """The row for one entry, built once per read result (rows are redrawn often)."""
        result = self.results.get(entry.key)
        cached = self._cell_cache.get(entry.key)
        if cached is not None and cached[0] is result and cached[1] is styles.theme:
            return cached[2]
        cells = self._build_cells(entry, result, styles)
        self._cell_cache[entry.key] = (result, styles.theme, cells)
        return cells

    @staticmethod
    def _build_cells(entry: ArchiveEntry, result: ArchivedRead | None, styles: RowStyles) -> list[Text]:
        muted = styles.muted
        blanks = [Text("") for _ in range(5)]
        if result is None:
            return [literal(entry.name, style=muted), Text("…", style=muted), Text("…", style=muted), *blanks]
        if result.run is None:
            reason = sanitize(result.error or "unreadable")
            return [
                literal(entry.name),
                Text(reason[:60] + ("…" if len(reason) > 60 else ""), style=muted),
                Text("unreadable", style=styles.error),
                *blanks,
            ]
        run = result.run
        finished = run.finished_at_ms if run.finished_at_ms is not None else run.updated_at_ms
        took = (
            format_duration_ms(finished - run.started_at_ms)
            if run.started_at_ms is not None and finished >= run.started_at_ms
            else "-"
        )
        return [
            literal(run.run_id, style="bold"),
            literal(run.automation_id),
            status_text(run.status, styles.theme),
            literal(run.trigger_type, style=muted),
            Text(format_timestamp(finished)[:16]),
            Text(took, justify="right"),
            Text(f"${run.estimated_cost_usd:,.2f}", justify="right"),
            Text(str(len(run.checkpoint.lifecycle_history)), justify="right"),
        ]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_preview()

    def _show_preview(self) -> None:
        """The highlighted run's key fields and lifecycle (wide terminals show them)."""
        table = self.query_one("#history-table", DataTable)
        run_panel = self.query_one("#preview-run", FieldsPanel)
        lifecycle_panel = self.query_one("#preview-lifecycle", FieldsPanel)
        row = table.cursor_row
        result = self.results.get(self._rows[row].key) if 0 <= row < len(self._rows) else None
        if result is None or result.run is None:
            note = "not read yet: Enter reads it" if result is None else "unreadable"
            empty = Text(note if 0 <= row < len(self._rows) else "no run", style="dim")
            run_panel.update(empty)
            lifecycle_panel.update(Text(""))
            lifecycle_panel.border_title = "Lifecycle"
            return
        run, theme = result.run, self.app.theme_variables
        run_panel.show_rows(key_field_rows(run, self.clock.now_ms(), theme))
        lifecycle_panel.update(lifecycle_summary(run, theme))
        count = len(run.checkpoint.lifecycle_history)
        lifecycle_panel.border_title = f"Lifecycle · {count} event{'s' if count != 1 else ''}"

    def _show_month_label(self) -> None:
        label = self.query_one("#history-month-label", Label)
        if self.query_text:
            found = self._matches
            text = Text(f"{found} match{'es' if found != 1 else ''}")
            if found > len(self._rows):
                text.append(f" (first {len(self._rows)} shown)", style="bold")
            text.append(" for ")
            text.append_text(literal(self.query_text, style="bold"))
            text.append("  (runs not read yet match by name)", style="dim")
        elif self.month is None:
            text = Text("no archived runs", style="dim")
        else:
            year, month = self.month
            text = Text(f"{MONTH_NAMES[month - 1]} {year}", style="bold")
            text.append(f"  {len(self._rows)} run{'s' if len(self._rows) != 1 else ''}")
        label.update(text)

    def _show_progress(self) -> None:
        bar = self.query_one("#history-progress", ProgressBar)
        if self.month in self.loading:
            read, total = self.loading[self.month]
            bar.update(total=total, progress=read)
            bar.display = True
        else:
            bar.display = False

    # --- opening a run --------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if not 0 <= event.cursor_row < len(self._rows):
            return
        entry = self._rows[event.cursor_row]
        result = self.results.get(entry.key)
        if result is None:
            self._open_after_read = entry.key
            self._read_single(entry)
        else:
            self._open_result(result)

    def _open_result(self, result: ArchivedRead) -> None:
        if result.run is None:
            self.notify(sanitize(f"{result.entry.name}: {result.error}"), severity="error")
            return
        self.post_message(self.OpenRun(result.run))

    # --- search and keys ------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_text = event.value.strip()
        self._show_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#history-table").focus()

    def action_search(self) -> None:
        self.query_one("#history-search", Input).focus()

    def action_rescan(self) -> None:
        self._scan()

    def action_back(self) -> None:
        search = self.query_one("#history-search", Input)
        if search.has_focus or search.value:
            search.value = ""
            self.query_text = ""
            self._show_rows()
            self.query_one("#history-table").focus()
            return
        self.workers.cancel_group(self, "history-shards")
        self.dismiss(None)
