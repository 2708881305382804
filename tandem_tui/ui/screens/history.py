"""The history browser: archived runs from the history shards, month by month.

The month list comes from directory listings alone (:class:`ShardIndex`); a month's
shards are read only when the operator opens it, in a thread worker that reads them in
batches and posts each batch back, with a progress bar for big months. ``/`` searches
by run id or automation id: loaded runs by both, shards not read yet by their file name
(the sanitized run id), so finding a run never reads a whole archive. Enter opens the
run's detail, marked ARCHIVED.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, ProgressBar, Tree
from textual.widgets.tree import TreeNode
from textual.worker import get_current_worker

from tandem_tui.domain.clock import Clock
from tandem_tui.domain.models import Run
from tandem_tui.source.file.shards import (
    SHARD_SUFFIX,
    ShardIndex,
    is_nonterminal_recovered_context_run,
    read_shard,
    sanitize_path_id,
)
from tandem_tui.source.file.store import RunsFileError
from tandem_tui.humanize import format_duration_ms, format_timestamp
from tandem_tui.ui.screens.run_detail import STYLES_DIR, RunDetailScreen
from tandem_tui.safe_text import literal, sanitize
from tandem_tui.ui.widgets.record_fields import FieldsPanel, key_field_rows, theme_style
from tandem_tui.ui.widgets.status_style import status_text
from tandem_tui.ui.widgets.timeline import format_offset, timeline_entries

Month = tuple[int, int]

#: Shards read per message back to the screen (each moves the progress bar).
BATCH_SIZE = 50
#: Search hits drawn at most: typing the first letters of an id can match everything.
MAX_SEARCH_ROWS = 200

MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


def month_of(shard: Path) -> Month | None:
    """The (year, month) a shard is filed under, from its ``YYYY/MM`` directories."""
    year, month = shard.parent.parent.name, shard.parent.name
    if year.isdigit() and month.isdigit():
        return (int(year), int(month))
    return None


def group_by_month(index: ShardIndex) -> dict[Month, list[Path]]:
    """Each run's shard (the latest month's when filed twice) grouped by month, newest
    month first."""
    months: dict[Month, list[Path]] = {}
    for path in index.values():
        month = month_of(path)
        if month is not None:
            months.setdefault(month, []).append(path)
    return {month: sorted(months[month]) for month in sorted(months, reverse=True)}


def shard_stem(path: Path) -> str:
    return path.name[: -len(SHARD_SUFFIX)]


@dataclass(frozen=True)
class ShardResult:
    """What reading one shard gave: the run, or the one-line reason it could not."""

    path: Path
    run: Run | None = None
    error: str | None = None
    hidden: bool = False


def read_one(path: Path) -> ShardResult:
    """Read one shard; a bad one becomes a one-line error, never an exception."""
    try:
        run = read_shard(path)
    except RunsFileError as error:
        return ShardResult(path, error=str(error).removeprefix(f"{path}: "))
    except Exception as error:  # noqa: BLE001 - a reader thread must not take the console down
        return ShardResult(path, error=f"cannot read shard ({type(error).__name__}: {error})")
    return ShardResult(path, run=run, hidden=is_nonterminal_recovered_context_run(run))


def matches(query: str, path: Path, result: ShardResult | None) -> bool:
    """Does this shard match the search: run id or automation id once read, file name
    (the sanitized run id) before."""
    needle = query.casefold()
    if result is not None and result.run is not None:
        run = result.run
        return needle in run.run_id.casefold() or needle in run.automation_id.casefold()
    stem = shard_stem(path).casefold()
    return needle in stem or sanitize_path_id(query).casefold() in stem


@dataclass(frozen=True)
class RowStyles:
    """The theme's styles for table rows, resolved once per redraw."""

    theme: Mapping[str, str]
    muted: Style
    error: Style


def batches(items: Sequence[Path], size: int) -> Iterable[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
    """Archived runs, grouped by month, read lazily."""

    CSS_PATH = [STYLES_DIR / "history.tcss"]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash", "search", "Search"),
        Binding("r", "rescan", "Rescan"),
    ]

    class IndexScanned(Message):
        """The shard index was (re)built from directory listings."""

        def __init__(self, months: dict[Month, list[Path]]) -> None:
            super().__init__()
            self.months = months

    class ShardsRead(Message):
        """One batch of a month's shards was read (``read`` of ``total`` so far)."""

        def __init__(self, month: Month, results: list[ShardResult], read: int, total: int) -> None:
            super().__init__()
            self.month = month
            self.results = results
            self.read = read
            self.total = total

    class ShardRead(Message):
        """One shard read on demand (a search hit in a month not opened)."""

        def __init__(self, result: ShardResult) -> None:
            super().__init__()
            self.result = result

    def __init__(self, runs_file: Path, *, clock: Clock) -> None:
        super().__init__()
        self.runs_file = Path(runs_file)
        self.clock = clock
        self.months: dict[Month, list[Path]] = {}
        self.results: dict[Path, ShardResult] = {}
        self.loaded_months: set[Month] = set()
        self.loading: dict[Month, tuple[int, int]] = {}
        #: Every shard this screen has opened, in order (what laziness is judged by).
        self.shards_read: list[Path] = []
        self.month: Month | None = None
        self.query_text = ""
        self._rows: list[Path] = []
        self._matches = 0
        self._cell_cache: dict[Path, tuple[ShardResult | None, Mapping[str, str], list[Text]]] = {}
        self._open_after_read: Path | None = None

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
        yield Footer()

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
        index = ShardIndex.scan(self.runs_file)
        self.post_message(self.IndexScanned(group_by_month(index)))

    @work(thread=True, group="history-shards")
    def _read_month(self, month: Month, paths: list[Path]) -> None:
        worker = get_current_worker()
        read = 0
        for batch in batches(paths, BATCH_SIZE):
            if worker.is_cancelled:
                return
            results = []
            for path in batch:
                self.shards_read.append(path)
                results.append(read_one(path))
            read += len(batch)
            self.post_message(self.ShardsRead(month, results, read, len(paths)))

    @work(thread=True, group="history-shards")
    def _read_single(self, path: Path) -> None:
        self.shards_read.append(path)
        self.post_message(self.ShardRead(read_one(path)))

    # --- messages back on the UI thread ---------------------------------------------

    def on_history_screen_index_scanned(self, message: IndexScanned) -> None:
        self.months = message.months
        self.results = {p: r for p, r in self.results.items() if r.path in self._all_paths()}
        self._fill_tree()
        total = sum(len(paths) for paths in self.months.values())
        self.query_one("#history-summary", Label).update(
            f"{total} archived run{'s' if total != 1 else ''} in {len(self.months)} "
            f"month{'s' if len(self.months) != 1 else ''}"
        )
        if self.month not in self.months:
            self.month = next(iter(self.months), None)
        if self.month is not None:
            self.open_month(self.month)
        else:
            self._show_rows()

    def on_history_screen_shards_read(self, message: ShardsRead) -> None:
        for result in message.results:
            self.results[result.path] = result
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
        self.results[message.result.path] = message.result
        self._show_rows()
        if self._open_after_read == message.result.path:
            self._open_after_read = None
            self._open_result(message.result)

    # --- months ---------------------------------------------------------------------

    def _all_paths(self) -> set[Path]:
        return {path for paths in self.months.values() for path in paths}

    def _fill_tree(self) -> None:
        tree: Tree[Month | None] = self.query_one("#history-months", Tree)
        tree.clear()
        years: dict[int, TreeNode[Month | None]] = {}
        for (year, month), paths in self.months.items():
            if year not in years:
                years[year] = tree.root.add(Text(str(year), style="bold"), data=None, expand=True)
            node = years[year].add_leaf(self._month_label((year, month)), data=(year, month))
            if (year, month) == self.month:
                self.call_after_refresh(tree.move_cursor, node)

    def _month_label(self, month: Month) -> Text:
        """``Nov    12``: how many runs the month holds (exact once it has been read)."""
        paths = self.months.get(month, [])
        count = sum(1 for p in paths if not (p in self.results and self.results[p].hidden))
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
        """Show ``month``; read its shards (in a thread) the first time it is opened."""
        self.month = month
        paths = self.months.get(month, [])
        unread = [path for path in paths if path not in self.results]
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

    def visible_paths(self) -> list[Path]:
        """The open month's shards, or, while searching, every matching shard."""
        if self.query_text:
            candidates = [p for paths in self.months.values() for p in paths]
            found = [p for p in candidates if matches(self.query_text, p, self.results.get(p))]
        else:
            found = list(self.months.get(self.month, [])) if self.month else []
        shown = [p for p in found if not (p in self.results and self.results[p].hidden)]
        return sorted(shown, key=self._sort_key, reverse=True)

    def _sort_key(self, path: Path) -> tuple[int, str]:
        result = self.results.get(path)
        run = result.run if result is not None else None
        if run is None:
            month = month_of(path) or (0, 0)
            return (0, f"{month[0]:04d}{month[1]:02d}{shard_stem(path)}")
        finished = run.finished_at_ms if run.finished_at_ms is not None else run.updated_at_ms
        return (finished, run.run_id)

    def visible_runs(self) -> list[Run]:
        """The runs (read so far) the table shows, top to bottom."""
        return [r.run for p in self._rows if (r := self.results.get(p)) and r.run is not None]

    def _show_rows(self) -> None:
        table = self.query_one("#history-table", DataTable)
        # Follow the run under the cursor as rows reorder, unless it sits on the top row:
        # then stay on top (the newest run) while a month fills in.
        current = self._rows[table.cursor_row] if 0 < table.cursor_row < len(self._rows) else None
        rows = self.visible_paths()
        self._matches = len(rows)
        if self.query_text and len(rows) > MAX_SEARCH_ROWS:
            rows = rows[:MAX_SEARCH_ROWS]
        self._rows = rows
        styles = self._row_styles()
        table.clear()
        for path in self._rows:
            table.add_row(*self._cells(path, styles), key=str(path))
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

    def _cells(self, path: Path, styles: RowStyles) -> list[Text]:
        """The row for one shard, built once per read result (rows are redrawn often)."""
        result = self.results.get(path)
        cached = self._cell_cache.get(path)
        if cached is not None and cached[0] is result and cached[1] is styles.theme:
            return cached[2]
        cells = self._build_cells(path, result, styles)
        self._cell_cache[path] = (result, styles.theme, cells)
        return cells

    @staticmethod
    def _build_cells(path: Path, result: ShardResult | None, styles: RowStyles) -> list[Text]:
        muted = styles.muted
        blanks = [Text("") for _ in range(5)]
        if result is None:
            return [literal(shard_stem(path), style=muted), Text("…", style=muted), Text("…", style=muted), *blanks]
        if result.run is None:
            reason = sanitize(result.error or "unreadable")
            return [
                literal(shard_stem(path)),
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
        result = self.results.get(self._rows[row]) if 0 <= row < len(self._rows) else None
        if result is None or result.run is None:
            note = "not read yet: Enter reads it" if result is None else "unreadable shard"
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
            text.append("  (unread shards match by file name)", style="dim")
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
        path = self._rows[event.cursor_row]
        result = self.results.get(path)
        if result is None:
            self._open_after_read = path
            self._read_single(path)
        else:
            self._open_result(result)

    def _open_result(self, result: ShardResult) -> None:
        if result.run is None:
            self.notify(sanitize(f"{shard_stem(result.path)}: {result.error}"), severity="error")
            return
        self.app.push_screen(RunDetailScreen(result.run, clock=self.clock, archived=True))

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
