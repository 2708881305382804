"""A run's lifecycle history as a timeline: one row per event, oldest first.

The rows (time order, offsets, which events are operator actions and which are claim
bookkeeping) are :func:`tandem_tui.present.timeline_rows`, the same as ``tandem-tui
history``; :class:`Timeline` is a ``DataTable`` that draws them, with operator actions
highlighted and bookkeeping dimmed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from tandem_tui.domain.models import Run
from tandem_tui.present import (
    OPERATOR_MARKER,
    TimelineRow,
    format_event_time,
    format_offset,
    is_operator_event,
    spans_days,
    timeline_rows,
)
from tandem_tui.safe_text import literal, sanitize
from tandem_tui.ui.widgets.record_fields import theme_style
from tandem_tui.ui.widgets.table_columns import size_columns

#: The timeline's rows are present's (kept under the names the screens import).
TimelineEntry = TimelineRow
timeline_entries = timeline_rows

__all__ = [
    "Timeline",
    "TimelineEntry",
    "format_event_time",
    "format_offset",
    "is_operator_event",
    "metadata_summary",
    "pretty_metadata",
    "spans_days",
    "timeline_entries",
]

#: Metadata keys left out of the one-line summary: every event carries the profile.
_SUMMARY_SKIPPED_KEYS = frozenset({"effective_execution_profile", "source"})

SUMMARY_WIDTH = 72
MIN_SUMMARY_WIDTH = 24
REASON_WIDTH = 56


def metadata_summary(metadata: Any, width: int = SUMMARY_WIDTH) -> str:
    """One line: ``actor=ops@host, previous_status=running`` (the profile left out)."""
    if metadata is None:
        return ""
    if isinstance(metadata, dict):
        keys = sorted(metadata, key=lambda key: key != "actor")
        parts = [
            f"{key}={_compact(metadata[key])}" for key in keys if key not in _SUMMARY_SKIPPED_KEYS
        ]
        text = ", ".join(parts)
    else:
        text = _compact(metadata)
    return _clip(sanitize(text), width)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def pretty_metadata(metadata: Any) -> Text:
    """The full metadata as indented JSON, every line literal."""
    if metadata is None:
        return Text("no metadata", style="dim")
    dumped = json.dumps(metadata, indent=2, ensure_ascii=False, default=str)
    return Text("\n".join(sanitize(line) for line in dumped.splitlines()))


class Timeline(DataTable):
    """The lifecycle events of one run; ``j``/``k`` and the arrows move, Enter selects."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("enter", "select_cursor", "Event metadata"),
    ]

    COLUMNS = ("time", "offset", "event", "reason", "stop kind", "metadata")

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(
            id=id, classes=classes, cursor_type="row", zebra_stripes=False, show_cursor=True
        )
        self._entries: list[TimelineEntry] = []
        self._run: Run | None = None
        self._theme: Mapping[str, str] = {}
        self._shown_width = 0

    def on_mount(self) -> None:
        for label in self.COLUMNS:
            self.add_column(label, key=label)

    @property
    def entries(self) -> list[TimelineEntry]:
        return list(self._entries)

    def entry_at_cursor(self) -> TimelineEntry | None:
        if not self._entries or not 0 <= self.cursor_row < len(self._entries):
            return None
        return self._entries[self.cursor_row]

    def show(self, run: Run, theme: Mapping[str, str]) -> None:
        """Replace the rows with ``run``'s history, keeping the cursor where it was."""
        self._run, self._theme = run, theme
        row = self.cursor_row
        self._entries = timeline_entries(run)
        with_date = spans_days(self._entries)
        rows = [self._cells(entry, with_date, theme) for entry in self._entries]
        self._fit_metadata(rows)
        self.clear()
        size_columns(self, rows)
        for entry, cells in zip(self._entries, rows, strict=True):
            self.add_row(*cells, key=str(entry.index))
        self._shown_width = self.size.width
        if self._entries:
            self.move_cursor(row=min(max(row, 0), len(self._entries) - 1))

    def _fit_metadata(self, rows: list[list[Text]]) -> None:
        """Clip the metadata summaries to the width the other columns leave free, so the
        table only scrolls sideways when even that is too narrow."""
        fixed = sum(
            max([len(label), *(cells[i].cell_len for cells in rows)]) + 2 * self.cell_padding
            for i, label in enumerate(self.COLUMNS[:-1])
        )
        free = self.size.width - fixed - 2 * self.cell_padding - 1
        width = max(MIN_SUMMARY_WIDTH, min(SUMMARY_WIDTH, free))
        for cells in rows:
            summary = cells[-1]
            if summary.cell_len > width:
                summary.truncate(width - 1)
                summary.append("…")

    def on_resize(self) -> None:
        if self._run is not None and self.size.width != self._shown_width:
            self.show(self._run, self._theme)

    def _cells(
        self, entry: TimelineEntry, with_date: bool, theme: Mapping[str, str]
    ) -> list[Text]:
        record = entry.record
        if entry.operator:
            style = theme_style(theme, "text-accent", bold=True)
            marker = f"{OPERATOR_MARKER} "
        elif entry.bookkeeping:
            style = theme_style(theme, "foreground-muted", dim=True)
            marker = "  "
        else:
            style = Style()
            marker = "  "
        muted = style if entry.bookkeeping else theme_style(theme, "foreground-muted")
        event = Text(marker, style=style)
        event.append_text(literal(record.event, style=style))
        return [
            Text(format_event_time(record.recorded_at_ms, with_date=with_date), style=muted),
            Text(format_offset(entry.offset_ms), style=muted, justify="right"),
            event,
            Text(
                _clip(sanitize(record.reason or ""), REASON_WIDTH),
                style=style if entry.bookkeeping else "",
            ),
            Text(record.stop_kind.value if record.stop_kind else "", style=style),
            Text(metadata_summary(record.metadata), style=muted),
        ]
