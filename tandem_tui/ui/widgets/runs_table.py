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

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bisect import bisect_left, insort
from functools import cached_property, partial
from itertools import islice
from operator import attrgetter

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.domain.models import QueueReason, Run, RunStatus
from tandem_tui.domain.view import QueueInfo, RunsView
from tandem_tui.domain.run_summary import node_counts
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


class _FromRun:
    """A :class:`RunRow` field that, unless given when the row is made, is read from the
    row's run the first time it is asked for (then kept, like any field's value).

    A data descriptor, so the frozen dataclass's ``__init__`` (``object.__setattr__``)
    stores a given value through :meth:`__set__`; its default is the descriptor itself,
    which means "not given". Equality, ``repr`` and ``dataclasses.replace`` read the
    field like any other (and so read it from the run if it was not read yet).
    """

    def __init__(self, name: str, read: Callable[[RunRow], Any]) -> None:
        self.name = name
        self.read = read

    def __get__(self, row: RunRow | None, owner: type | None = None) -> Any:
        if row is None:
            return self
        values = row.__dict__
        try:
            return values[self.name]
        except KeyError:
            value = values[self.name] = self.read(row)
            return value

    def __set__(self, row: RunRow, value: Any) -> None:
        if value is not self:
            row.__dict__[self.name] = value


def _lazy(name: str, read: Callable[[RunRow], Any]) -> Any:
    return field(default=_FromRun(name, read), kw_only=True)


def _since_of(row: RunRow) -> int:
    # status_since_ms with the view's queue entry: a queued run counts from it (a
    # missing or zero one falls back to the run's history).
    if row.queued_at_ms:
        return row.queued_at_ms
    return status_since_ms(row.run, None)


@dataclass(frozen=True)
class RunRow:
    """What the table shows about one run, taken at snapshot time.

    The fields every row needs before anything is drawn (the default sort, the column
    widths, the engine filter) are plain data. ``workspace``, ``since_ms``,
    ``nodes_done``, ``nodes_total`` and ``detail`` may be given (keywords), else they
    are read from ``run`` the first time they are asked for (a line drawn, a sort on
    their column, a filter): a 10k-run first screen draws ~45 lines. Runs are records
    nobody changes in place (a change is a new object), so such a field says what it
    would have said read at once.
    """

    run_id: str
    automation_id: str
    status: RunStatus
    why: str
    reason: QueueReason | None
    workspace: str = _lazy("workspace", lambda row: row.run.workspace_root or "")
    #: When the run entered its status (``present.status_since_ms``): the ``in status``
    #: column counts from here.
    since_ms: int = _lazy("since_ms", _since_of)
    retry_due_ms: int | None
    nodes_done: int = _lazy("nodes_done", lambda row: node_counts(row.run)[0])
    nodes_total: int = _lazy("nodes_total", lambda row: node_counts(row.run)[1])
    #: ``present.detail_text`` (raw: made literal when drawn).
    detail: str = _lazy("detail", lambda row: detail_text(row.run))
    updated_at_ms: int
    created_at_ms: int
    #: Position of the status in the default sort (kept here: hashing an enum member
    #: per row per sort is measurable at 10k rows).
    status_rank: int = 99
    #: The engine the run belongs to, for a fleet source whose keys are
    #: ``<engine>/<run_id>`` (``run_id`` is then that key); empty for one engine.
    engine: str = ""
    #: The run holding the workspace lock a queued run waits for (its key), else "".
    holder: str = ""
    #: The run the fields not given are read from (compared through those fields).
    run: Run | None = field(default=None, kw_only=True, repr=False, compare=False)
    #: When a queued run entered the queue as the view knows it (``QueueInfo.
    #: queued_at_ms``), for ``since_ms``; ``None`` for other runs.
    queued_at_ms: int | None = field(default=None, kw_only=True, repr=False, compare=False)

    @classmethod
    def _of(cls, **fields: Any) -> RunRow:
        """A row of ``fields`` (by name; every field but the ones read from the run),
        without the frozen dataclass's ``__init__``, which sets each field through
        ``object.__setattr__`` (~5 µs a row: 50 ms of a 10k-run first screen)."""
        row = object.__new__(cls)
        row.__dict__.update(fields)
        return row

    @property
    def shown_id(self) -> str:
        """The id as the ``run`` column shows it (without the engine of a fleet key)."""
        return self.run_id[len(self.engine) + 1 :] if self.engine else self.run_id

    @property
    def time_dependent(self) -> bool:
        # Every row's "in status" age moves with the clock, a finished run's too
        # (time since it finished): a finished row frozen at "1s" was issue 13's item 6.
        return True

    @cached_property
    def _search(self) -> str:
        reason = self.reason.value if self.reason else ""
        return " ".join(
            (self.run_id, self.automation_id, self.status.value, reason, self.why, self.workspace)
        ).lower()

    def search_text(self) -> str:
        """What the ``/`` filter matches against (lower case; computed once per row, so
        a filter typed over 10k rows costs a substring search per row)."""
        return self._search

    @cached_property
    def _sort_keys(self) -> dict[str, tuple[Any, int, str]]:
        return {}

    def sort_key_for(self, column: str) -> tuple[Any, int, str]:
        """This row's :func:`sort_key` under ``column``, computed once per row object (a
        row changes by being replaced, so the key lives as long as what it is made of):
        keeping the table sorted as rows change compares keys ~14 times per row."""
        keys = self._sort_keys
        key = keys.get(column)
        if key is None:
            key = keys[column] = (_PRIMARY[column](self), -self.updated_at_ms, self.run_id)
        return key


#: Each status by its value (a ``RunStatus`` member hashes as its value): a dict look-up
#: instead of an enum call per run.
_STATUS_OF: Mapping[str, RunStatus] = {status.value: status for status in RunStatus}


def run_row(run: Run, queue: QueueInfo | None, now_ms: int, key: str | None = None) -> RunRow:
    """The row for ``run``; ``queue`` is the view's queue info (``None`` unless queued).

    ``key`` is the run's key in its source when that is not its id: a fleet source keys
    runs ``<engine>/<run_id>``, and the row then carries that key and the engine."""
    status = _STATUS_OF.get(run.status) or RunStatus(run.status)
    key = key or run.run_id
    engine = key.partition("/")[0] if key != run.run_id and "/" in key else ""
    if queue is None:
        why, reason, retry_due, queued_at, holder = "", None, None, None, ""
    else:
        why, reason, queued_at = queue_why_text(queue), queue.reason, queue.queued_at_ms
        retry_due = now_ms + queue.retry_remaining_ms if queue.retry_remaining_ms else None
        holder = _holder_key(key, queue.holder_run_id) if queue.holder_run_id else ""
    return RunRow._of(
        run_id=key,
        automation_id=run.automation_id,
        status=status,
        why=why,
        reason=reason,
        retry_due_ms=retry_due,
        updated_at_ms=run.updated_at_ms,
        created_at_ms=run.created_at_ms,
        run=run,
        queued_at_ms=queued_at,
        status_rank=STATUS_ORDER.get(status, 99),
        engine=engine,
        holder=holder,
    )


def _holder_key(key: str, holder: str) -> str:
    """The holder's key in the same source as ``key`` (a fleet key names the engine)."""
    engine, slash, _ = key.partition("/")
    if slash and "/" not in holder:
        return f"{engine}/{holder}"
    return holder


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
    queued = RunStatus.QUEUED
    if previous is None or changed is None:
        with gc_paused():
            # Only queued runs have queue info: the others skip the call.
            return {
                run_id: run_row(run, view.queue_info(run, now_ms) if run.status == queued else None, now_ms, run_id)
                for run_id, run in runs.items()
            }
    changed_ids = set(changed)
    rows: dict[str, RunRow] = {}
    for run_id, run in runs.items():
        old = previous.get(run_id)
        if old is None or run_id in changed_ids:
            rows[run_id] = run_row(run, view.queue_info(run, now_ms), now_ms, run_id)
        elif run.status == RunStatus.QUEUED:
            # Keep the old object when nothing shows differently: the table redraws
            # only rows whose object changed.
            new = run_row(run, view.queue_info(run, now_ms), now_ms, run_id)
            rows[run_id] = old if new == old else new
        else:
            rows[run_id] = old
    return rows


# -- rendering ----------------------------------------------------------------------

#: What an operator needs first comes first: at 80 columns, automation and detail are
#: a sideways scroll away (left/right).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("mark", " "),
    ("engine", "engine"),
    ("id", "run"),
    ("status", "status"),
    ("why", "why waiting"),
    ("wait", IN_STATUS),
    ("nodes", "nodes"),
    ("automation", "automation"),
    ("detail", "detail"),
)
SORTABLE_ALL = tuple(key for key, _ in COLUMNS if key != "mark")
#: The sort cycle of a single-engine source (no engine column).
SORTABLE = tuple(key for key in SORTABLE_ALL if key != "engine")

#: Columns whose width never changes.
FIXED_WIDTHS: Mapping[str, int] = {"mark": 1, "status": 11, "wait": len(IN_STATUS), "nodes": 5}
#: Upper bounds for columns sized to their content (the id column has none: it takes
#: what the first columns leave, see :func:`column_widths`).
MAX_WIDTHS: Mapping[str, int] = {"automation": 18, "why": 26, "engine": 16}
#: Tighter bounds below 100 columns.
NARROW_MAX_WIDTHS: Mapping[str, int] = {"automation": 16, "why": 20, "engine": 10}
MIN_DETAIL_WIDTH = 12
#: The id column never gets narrower than this (an elided id still shows 5+1+6).
MIN_ID_WIDTH = 12
PADDING = 1
#: Columns right-aligned in their cell.
RIGHT = frozenset({"wait", "nodes"})
#: Columns elided in the middle: the distinguishing tail of an id stays.
MIDDLE = frozenset({"id", "engine"})
#: A "why waiting" naming the lock holder: its id is elided in the middle.
LOCK_PREFIX = "lock · "


def elide_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut in the middle (``ledger-r…9cff9559``)."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    # The tail distinguishes ids (a hash, a counter): keep up to 8 of it even when the
    # head gets less than half.
    tail = max((width - 1) - (width - 1) // 2, min(8, width - 2))
    head = width - 1 - tail
    return text[:head] + "…" + (text[-tail:] if tail else "")


def longest_values(rows: Iterable[RunRow]) -> dict[str, int]:
    """The longest id, automation, reason and engine of ``rows`` (and the headers)."""
    rows = list(rows)
    return {
        "id": max((len(row.run_id) - (len(row.engine) + 1 if row.engine else 0) for row in rows), default=3),
        "automation": max(10, max((len(row.automation_id) for row in rows), default=0)),
        "why": max(11, max((len(row.why) for row in rows), default=0)),
        "engine": max(6, max((len(row.engine) for row in rows), default=0)),
    }


def column_widths(
    rows: Iterable[RunRow] | Mapping[str, int],
    available: int,
    padding: int = PADDING,
    *,
    engines: bool = False,
) -> dict[str, int]:
    """Widths for a table ``available`` cells wide showing ``rows``.

    Automations, reasons and engines are as wide as their longest value (capped). The id
    column is as wide as the longest id shown, within what the columns an operator reads
    first (marker to nodes) leave of the terminal, never below ``MIN_ID_WIDTH``; longer
    ids are elided in the middle. The detail column takes what is left (and the table
    scrolls sideways when even its minimum does not fit). ``engine`` is 0 unless
    ``engines``. ``rows`` may be given as their :func:`longest_values`."""
    longest = dict(rows) if isinstance(rows, Mapping) else longest_values(rows)
    longest["id"] = max(3, longest["id"])
    widths = dict(FIXED_WIDTHS)
    caps = MAX_WIDTHS if available >= 100 else NARROW_MAX_WIDTHS
    for key, cap in caps.items():
        widths[key] = min(longest[key], cap)
    if not engines:
        widths["engine"] = 0
    shown = [key for key, _ in COLUMNS if widths.get(key, 1) or key in ("id", "detail")]
    first = ("mark", "engine", "status", "why", "wait", "nodes")
    first_used = sum(widths[key] for key in first) + padding * 2 * (
        sum(1 for key in first if widths[key]) + 1
    )
    widths["id"] = min(longest["id"], max(MIN_ID_WIDTH, available - first_used))
    used = sum(widths[key] for key in widths if key != "detail") + padding * 2 * len(shown)
    widths["detail"] = max(MIN_DETAIL_WIDTH, available - used)
    return widths


class MarkCell:
    """The first cell: a marker for runs marked for a bulk action."""

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

    @property
    def plain(self) -> str:
        return "●" if self.marked else " "


def _cell(text: str, **kwargs: Any) -> Text:
    return Text(text, no_wrap=True, overflow="ellipsis", end="", **kwargs)


def wait_text(row: RunRow, now_ms: int) -> Text:
    """The ``in status`` cell, as of ``now_ms``."""
    return _cell(in_status_text(row.since_ms, now_ms), justify="right")


def why_text(row: RunRow, now_ms: int) -> Text:
    if row.retry_due_ms is not None:
        return _cell(retry_text(row.retry_due_ms - now_ms))
    return _cell(sanitize(row.why))


def time_texts(row: RunRow, now_ms: int) -> tuple[str, str | None]:
    """What the time-dependent cells of ``row`` read at ``now_ms`` (in status, a retry
    countdown): a line is redrawn on a tick only when these change."""
    retry = retry_text(row.retry_due_ms - now_ms) if row.retry_due_ms is not None else None
    return in_status_text(row.since_ms, now_ms), retry


def row_cells(
    row: RunRow, now_ms: int, variables: Mapping[str, str], marked: bool, ansi16: bool = False
) -> tuple[Any, ...]:
    """The cells of one row, in ``COLUMNS`` order. Every value from the runs file is
    literal (no markup)."""
    nodes = f"{row.nodes_done}/{row.nodes_total}" if row.nodes_total else "-"
    return (
        MarkCell(row.run_id, marked),
        _cell(sanitize(row.engine)),
        _cell(sanitize(row.shown_id)),
        status_text(row.status, variables, ansi16=ansi16),
        why_text(row, now_ms),
        wait_text(row, now_ms),
        _cell(nodes, justify="right"),
        _cell(sanitize(row.automation_id)),
        _cell(sanitize(row.detail)),
    )


def sort_key(column: str) -> Callable[[RunRow], Any]:
    """How rows order under each column; ties fall back to newest update first."""
    keys: dict[str, Callable[[RunRow], Any]] = {
        "id": lambda r: r.run_id,
        "engine": lambda r: r.engine,
        "automation": lambda r: r.automation_id,
        "status": lambda r: r.status_rank,
        "why": lambda r: (r.why == "", r.why),
        "wait": lambda r: r.since_ms,
        "nodes": lambda r: (r.nodes_done / r.nodes_total) if r.nodes_total else -1,
        "detail": lambda r: r.detail,
    }
    primary = keys[column]
    return lambda r: (primary(r), -r.updated_at_ms, r.run_id)


_PRIMARY: Mapping[str, Callable[[RunRow], Any]] = {
    "id": attrgetter("run_id"),
    "engine": attrgetter("engine"),
    "automation": attrgetter("automation_id"),
    "status": attrgetter("status_rank"),
    "why": lambda r: (r.why == "", r.why),
    "wait": attrgetter("since_ms"),
    "nodes": lambda r: (r.nodes_done / r.nodes_total) if r.nodes_total else -1,
    "detail": attrgetter("detail"),
}


def sorted_rows(rows: Iterable[RunRow], column: str, reverse: bool = False) -> list[RunRow]:
    """``rows`` in the order of :func:`sort_key` (reversed if asked), by three stable
    passes on plain attributes: about three times faster than one pass on a tuple key,
    which counts at 10k rows."""
    ordered = list(rows)
    ordered.sort(key=attrgetter("run_id"), reverse=reverse)
    ordered.sort(key=attrgetter("updated_at_ms"), reverse=not reverse)
    ordered.sort(key=_PRIMARY[column], reverse=reverse)
    return ordered


def row_matches(row: RunRow, needle: str, statuses: frozenset[RunStatus] | None) -> bool:
    if statuses is not None and row.status not in statuses:
        return False
    return not needle or needle in row.search_text()


#: Above this many rows changed (or gone) in one snapshot, the order is rebuilt rather
#: than edited (each edit is a binary search and a list insert or delete).
INCREMENTAL_LIMIT = 256
#: Filtered results kept (per status and engine filter and needle) so that a needle
#: typed further, typed back (Backspace) or typed again narrows a kept result rather
#: than every row; dropped when the rows or the sort column change.
KEPT_RESULTS = 16
#: Id lists kept with the results they list (see ``RowOrder._ids_of``).
KEPT_IDS = 6


def _base_key(row: RunRow) -> tuple[int, str]:
    return (-row.updated_at_ms, row.run_id)


def _remove(ordered: list[RunRow], row: RunRow, key: Callable[[RunRow], Any]) -> None:
    index = bisect_left(ordered, key(row), key=key)
    if index < len(ordered) and ordered[index] is row:
        del ordered[index]


class RowOrder:
    """The table's rows in sort order, filtered, kept up to date as snapshots arrive.

    Three lists, each sorted ascending by a key that is unique per row (it ends with
    the run id), so a row is found by binary search:

    - ``base``: by :func:`_base_key` (newest update first, then id), whatever the
      column: a new sort column is one stable sort of it on the column's primary key;
    - ``ascending``: by the column's :meth:`RunRow.sort_key_for`;
    - ``shown``: the rows of ``ascending`` the filters let through (``ascending``
      itself when nothing is filtered).

    A reversed sort is ``ascending`` read backwards (the keys are unique, so this is
    exactly :func:`sorted_rows` with ``reverse=True``). A new set of rows in which few
    changed (a snapshot on a busy host changes a handful of runs a second) edits the
    three lists in place, instead of sorting and filtering every row again on the UI
    thread while a key may be waiting.

    A filter is applied from the fewest rows it can be: results are kept per filter
    (``KEPT_RESULTS`` of them, until the rows or the column change), so a needle typed
    further narrows the result of its prefix, one typed back (Backspace) or again is
    the kept result, and clearing every filter (Escape) is ``ascending`` as it is kept,
    never a sort. Whichever rows it starts from, the result is exactly what filtering
    every row gives.
    """

    def __init__(self) -> None:
        self.rows: Mapping[str, RunRow] = {}
        self.base: list[RunRow] = []
        self.column: str | None = None
        self.ascending: list[RunRow] = []
        self.filters: tuple[str, frozenset[RunStatus] | None, str] | None = None
        self.shown: list[RunRow] = []
        self._kept: list[tuple[tuple[str, frozenset[RunStatus] | None, str], list[RunRow]]] = []
        self._ids: list[tuple[list[RunRow], bool, list[str]]] = []
        self._fresh: tuple[Mapping[str, RunRow], Mapping[str, RunRow], list[RunRow]] | None = None

    def note_fresh(self, old: Mapping[str, RunRow], new: Mapping[str, RunRow], fresh: list[RunRow]) -> None:
        """``fresh`` are the rows of ``new`` that are not the same objects in ``old``
        (the table finds them anyway): spares :meth:`order` a second pass over 10k."""
        self._fresh = (old, new, fresh)

    def order(
        self,
        rows: Mapping[str, RunRow],
        column: str,
        reverse: bool,
        needle: str = "",
        statuses: frozenset[RunStatus] | None = None,
        engine: str = "",
    ) -> list[str]:
        """The ids of ``rows`` that pass the filters, in the order of
        :func:`sorted_rows` (``column``, ``reverse``)."""
        filters = (needle, statuses, engine)
        if rows is not self.rows:
            self._take(rows, column, filters)
        if column != self.column:
            self.ascending = sorted(self.base, key=_PRIMARY[column])
            self.column = column
            self.filters = None
            self._kept = []
            self._ids = []
        if filters != self.filters:
            self._filter(filters)
        return self._ids_of(self.shown, reverse)

    def _ids_of(self, shown: list[RunRow], reverse: bool) -> list[str]:
        """The ids of ``shown`` (read backwards if ``reverse``), kept with the list
        they are of until the rows or the column change: Escape, or Backspace to a kept
        result, hands back a kept list instead of walking 100k rows. The ids of every
        row (what Escape shows) are kept however many filters come between. The lists
        returned are shared: not to be changed."""
        for of, reversed_, ids in self._ids:
            if of is shown and reversed_ == reverse:
                return ids
        ids = [row.run_id for row in (reversed(shown) if reverse else shown)]
        entry = (shown, reverse, ids)
        every = [e for e in self._ids if e[0] is self.ascending]
        others = [e for e in self._ids if e[0] is not self.ascending]
        if shown is self.ascending:
            every.append(entry)
        else:
            others = [*others[-(KEPT_IDS - 1) :], entry]
        self._ids = every + others
        return ids

    def _take(self, rows: Mapping[str, RunRow], column: str, filters: tuple[Any, ...]) -> None:
        self._ids = []
        delta = self._delta(rows)
        self.rows = rows
        if delta is None:
            ordered = sorted(rows.values(), key=attrgetter("run_id"))
            ordered.sort(key=attrgetter("updated_at_ms"), reverse=True)
            self.base = ordered
            self.column = self.filters = None
            self._kept = []
            return
        gone, fresh = delta
        lists: list[tuple[list[RunRow], Callable[[RunRow], Any], Callable[[RunRow], bool]]] = [
            (self.base, _base_key, _always)
        ]
        if self.column is not None:
            key = partial(RunRow.sort_key_for, column=self.column)
            lists.append((self.ascending, key, _always))
            if self.filters is not None and self.shown is not self.ascending:
                lists.append((self.shown, key, _matcher(*self.filters)))
        for ordered, key, keep in lists:
            for row in gone:
                _remove(ordered, row, key)
            for row in fresh:
                if keep(row):
                    insort(ordered, row, key=key)
        # Kept results are of the rows before; the one shown was edited with the rest.
        shown_kept = self.filters is not None and self.shown is not self.ascending
        self._kept = [(self.filters, self.shown)] if shown_kept else []

    def _delta(self, rows: Mapping[str, RunRow]) -> tuple[list[RunRow], list[RunRow]] | None:
        """``(rows to take out, rows to put in)`` going from ``self.rows`` to ``rows``,
        or ``None`` when so many changed that sorting anew is cheaper."""
        old = self.rows
        if not old or not self.base:
            return None
        hint, self._fresh = self._fresh, None
        if hint is not None and hint[0] is old and hint[1] is rows:
            fresh = hint[2]
        else:
            fresh = [row for run_id, row in rows.items() if old.get(run_id) is not row]
        if len(fresh) > INCREMENTAL_LIMIT:
            return None
        gone = [old[row.run_id] for row in fresh if row.run_id in old]
        if len(old) - len(gone) != len(rows) - len(fresh):  # some runs left
            gone += [row for run_id, row in old.items() if run_id not in rows]
            if len(gone) > INCREMENTAL_LIMIT:
                return None
        return gone, fresh

    def _filter(self, filters: tuple[str, frozenset[RunStatus] | None, str]) -> None:
        needle, statuses, engine = filters
        if not needle and statuses is None and not engine:
            # Nothing filtered (Escape): the sorted rows as they are kept, no pass.
            self.shown = self.ascending
        else:
            source, source_filters = self._source(filters)
            if source_filters == filters:
                self.shown = source
            elif source_filters is not None:
                # Kept under the same status and engine filters, for a needle this one
                # extends: only the needle is left to check.
                self.shown = _scan(source, needle, None, "")
            else:
                self.shown = _scan(source, needle, statuses, engine)
            self._keep(filters, self.shown)
        self.filters = filters

    def _source(
        self, filters: tuple[str, frozenset[RunStatus] | None, str]
    ) -> tuple[list[RunRow], tuple[str, frozenset[RunStatus] | None, str] | None]:
        """The fewest rows a filter can be taken from, and the filters they were kept
        under (``None``: every row). A kept result qualifies when its status and engine
        filters are the same and its needle is a prefix of ``filters``' needle: a row
        whose text contains the longer needle contains every prefix of it, so the rows
        the longer needle keeps are among the ones the prefix kept."""
        needle = filters[0]
        best: tuple[list[RunRow], tuple[str, frozenset[RunStatus] | None, str] | None] = (self.ascending, None)
        for kept_filters, kept in self._kept:
            if kept_filters[1:] == filters[1:] and needle.startswith(kept_filters[0]):
                if kept_filters == filters:
                    return kept, kept_filters
                if len(kept) < len(best[0]):
                    best = (kept, kept_filters)
        return best

    def filter_cost(
        self,
        rows: Mapping[str, RunRow],
        column: str,
        needle: str = "",
        statuses: frozenset[RunStatus] | None = None,
        engine: str = "",
    ) -> int:
        """How many rows :meth:`order` would look at to apply these filters: 0 when
        nothing is filtered or the result is kept, the rows of the narrowest kept result
        the filter extends, else every row."""
        filters = (needle, statuses, engine)
        if rows is not self.rows or column != self.column:
            return len(rows)
        if filters == self.filters or (not needle and statuses is None and not engine):
            return 0
        source, source_filters = self._source(filters)
        return 0 if source_filters == filters else len(source)

    def _keep(self, filters: tuple[str, frozenset[RunStatus] | None, str], shown: list[RunRow]) -> None:
        kept = [entry for entry in self._kept if entry[0] != filters]
        kept.append((filters, shown))
        self._kept = kept[-KEPT_RESULTS:]


def _scan(
    rows: list[RunRow], needle: str, statuses: frozenset[RunStatus] | None, engine: str
) -> list[RunRow]:
    """The rows of ``rows`` (in order, as a new list) that :func:`_matcher` keeps: one
    comprehension per filter and no call per row (at 100k rows the calls of a
    per-row predicate cost more than the substring searches)."""
    out = rows
    if engine:
        out = [row for row in out if row.engine == engine]
    if statuses is not None:
        out = [row for row in out if row.status in statuses]
    if needle:
        # ``_search`` is what ``search_text()`` returns (read directly: no call).
        out = [row for row in out if needle in row._search]
    return out if out is not rows else list(rows)


def _always(_row: RunRow) -> bool:
    return True


def _matcher(
    needle: str, statuses: frozenset[RunStatus] | None, engine: str
) -> Callable[[RunRow], bool]:
    def keep(row: RunRow) -> bool:
        return (not engine or row.engine == engine) and row_matches(row, needle, statuses)

    return keep


def _fit(cell: Any, width: int, column: str) -> list[Segment]:
    """One cell's segments, exactly ``width`` cells plus its padding."""
    if isinstance(cell, MarkCell):
        text = cell.__rich__()
    else:
        text = cell
    plain = text.plain
    if column in MIDDLE and cell_len(plain) > width:
        text = Text(elide_middle(plain, width), style=text.style, end="")
    elif column == "why" and plain.startswith(LOCK_PREFIX) and cell_len(plain) > width:
        holder = elide_middle(plain[len(LOCK_PREFIX) :], max(1, width - len(LOCK_PREFIX)))
        text = Text((LOCK_PREFIX + holder)[:width], style=text.style, end="")
    else:
        text = text.copy()
        text.truncate(width, overflow="ellipsis")
    gap = width - text.cell_len
    if gap > 0:
        if column in RIGHT:
            text = Text.assemble(" " * gap, text, end="")
        else:
            text.append(" " * gap)
    pad = Segment(" " * PADDING)
    segments = [pad]
    for start, end, style in _spans_of(text):
        segments.append(Segment(plain_slice(text, start, end), style))
    segments.append(pad)
    return segments


def plain_slice(text: Text, start: int, end: int) -> str:
    return text.plain[start:end]


def _spans_of(text: Text) -> Iterable[tuple[int, int, Style | None]]:
    """(start, end, style) runs of ``text``: its base style with its spans on top."""
    base = text.style if isinstance(text.style, Style) else (Style.parse(text.style) if text.style else None)
    if not text.spans:
        yield 0, len(text.plain), base
        return
    # Few cells carry spans (none from the runs file): the simple way is fast enough.
    for segment_start, segment_end, style in _styled_runs(text, base):
        yield segment_start, segment_end, style


def _styled_runs(text: Text, base: Style | None) -> Iterable[tuple[int, int, Style | None]]:
    length = len(text.plain)
    styles: list[Style | None] = [base] * length
    for span in text.spans:
        span_style = span.style if isinstance(span.style, Style) else Style.parse(span.style)
        for index in range(max(0, span.start), min(length, span.end)):
            styles[index] = (styles[index] or Style()) + span_style
    start = 0
    for index in range(1, length + 1):
        if index == length or styles[index] != styles[start]:
            yield start, index, styles[start]
            start = index


class RunsTable(ScrollView, can_focus=True):
    """The runs, filtered and sorted; marks rows for bulk actions.

    Rendered through Textual's line API: only the lines on screen are drawn, each from
    its :class:`RunRow` (rendered lines are cached per row while the row object, its
    mark, the column widths and — for rows whose cells count time — the second stay the
    same). Filtering and sorting work on the rows in memory; a clock tick redraws the
    visible lines only, and only when one of them shows a time.
    """

    COMPONENT_CLASSES = {
        "runs-table--header",
        "runs-table--cursor",
        "runs-table--even-row",
    }

    DEFAULT_CSS = """
    RunsTable {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        scrollbar-size-horizontal: 0;
    }
    RunsTable > .runs-table--header {
        text-style: bold;
        background: $panel;
        color: $foreground;
    }
    RunsTable > .runs-table--cursor {
        background: $block-cursor-blurred-background;
        text-style: bold;
    }
    RunsTable:focus > .runs-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
    }
    RunsTable > .runs-table--even-row {
        background: $surface-lighten-1 40%;
    }
    """

    BINDINGS = [
        Binding("enter", "select_cursor", "Open run", show=False),
        Binding("space", "toggle_mark", "Mark", show=False),
        Binding("s", "cycle_sort", "Sort", show=False),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,g", "first", "First run", show=False),
        Binding("end,G", "last", "Last run", show=False),
        Binding("left", "sideways(-1)", "Scroll left", show=False),
        Binding("right", "sideways(1)", "Scroll right", show=False),
    ]

    filter_text: reactive[str] = reactive("", init=False)
    status_filter: reactive[StatusFilter] = reactive(StatusFilter.ALL, init=False)
    engine_filter: reactive[str] = reactive("", init=False)
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
        super().__init__(id=id)
        self._now = clock_ms
        self.rows_by_id: dict[str, RunRow] = {}
        self.marked: set[str] = set()
        #: The visible run ids, in table order.
        self.order: list[str] = []
        self.cursor_row = 0
        self.widths: dict[str, int] = column_widths((), 80)
        self._x: list[tuple[str, int, int]] = []
        self._lines: dict[str, tuple[tuple[Any, ...], Strip]] = {}
        #: A row's strip as last drawn on screen (background, sideways scroll, width).
        self._finished: dict[str, tuple[Strip, tuple[Any, ...], Strip]] = {}
        self._pass_styles: tuple[Style, Style] | None = None
        #: Each row's fitted cells, for redrawing only its time cells on a tick.
        self._parts: dict[str, tuple[tuple[Any, ...], list[list[Segment]]]] = {}
        self._generation = 0
        self._engines = False
        #: Longest values over every run (not just the filtered ones: a filter typed
        #: at 10k runs should not remeasure them, and columns should not jump).
        self._longest = longest_values(())
        self._order = RowOrder()
        #: The rows whose filter texts ``warm_search`` computes, and how far it got.
        self._warming: tuple[dict[str, RunRow], Iterator[RunRow]] | None = None

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._redraw_all)
        self._fit_columns()

    def _redraw_all(self, _theme: object = None) -> None:
        """Status colours are resolved from the theme when lines are drawn: draw anew."""
        self._lines.clear()
        self._parts.clear()
        self._generation += 1
        self.refresh()

    def on_resize(self) -> None:
        self._fit_columns()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()
        self._parts.clear()
        self._generation += 1

    # -- geometry ---------------------------------------------------------------------

    @property
    def engines_shown(self) -> bool:
        """Whether the engine column shows (a fleet source: rows carry an engine)."""
        return self._engines

    def _fit_columns(self) -> None:
        # One column of the width is the vertical scrollbar.
        available = max(1, self.size.width - 1)
        widths = column_widths(self._longest, available, engines=self._engines)
        if widths != self.widths or not self._x:
            self.widths = widths
            self._x = []
            x = 0
            for key, _ in COLUMNS:
                width = widths.get(key, 0)
                if key != "mark" and width == 0:
                    continue
                self._x.append((key, x, x + width + 2 * PADDING))
                x += width + 2 * PADDING
            self._lines.clear()
            self._parts.clear()
            self._generation += 1
        self._update_virtual_size()
        self.refresh()

    def _update_virtual_size(self) -> None:
        width = self._x[-1][2] if self._x else 0
        self.virtual_size = Size(width, len(self.order) + 1)

    @property
    def row_count(self) -> int:
        return len(self.order)

    @property
    def visible_count(self) -> int:
        return len(self.order)

    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    # -- data in ----------------------------------------------------------------------

    def set_rows(self, rows: dict[str, RunRow]) -> None:
        """Take a new set of rows; lines of rows that are the same objects as before
        are not redrawn."""
        self.marked &= rows.keys()
        previous = self.rows_by_id
        if previous and len(rows) >= len(previous):
            # Only new row objects can make a column wider (a run that left may leave
            # it wide until the next rebuild: columns do not jump as runs finish).
            fresh = [row for run_id, row in rows.items() if previous.get(run_id) is not row]
            self._order.note_fresh(previous, rows, fresh)
            grown = longest_values(fresh)
            self._longest = {key: max(self._longest[key], grown[key]) for key in self._longest}
        else:
            self._longest = longest_values(rows.values())
        self.rows_by_id = rows
        engines = any(row.engine for row in _first(rows.values()))
        if engines != self._engines:
            self._engines = engines
            if not engines:
                self.engine_filter = ""
        self._sync()

    def tick(self) -> None:
        """Time moved on: redraw the visible lines whose times read differently now
        (``11m20s`` → ``11m21s``; a day-old run's ``1d07h`` stays put for an hour)."""
        top = int(self.scroll_y)
        now_ms = self._now()
        rows = self.rows_by_id
        for offset, run_id in enumerate(self.order[top : top + self._page]):
            cached = self._lines.get(run_id)
            if cached is None or cached[0][3] != time_texts(rows[run_id], now_ms):
                self.refresh_line(offset + 1)

    # -- the current selection --------------------------------------------------------

    @property
    def cursor_run_id(self) -> str | None:
        if 0 <= self.cursor_row < len(self.order):
            return self.order[self.cursor_row]
        return None

    def target_run_ids(self) -> list[str]:
        """Marked runs (in table order) if any, else the run under the cursor."""
        if self.marked:
            in_order = [run_id for run_id in self.order if run_id in self.marked]
            hidden = sorted(self.marked - set(in_order))
            return in_order + hidden
        run_id = self.cursor_run_id
        return [run_id] if run_id is not None else []

    def go_to(self, run_id: str) -> bool:
        """Put the cursor on ``run_id``, clearing filters that hide it."""
        if run_id not in self.rows_by_id:
            return False
        if run_id not in self.order:
            self.set_reactive(RunsTable.filter_text, "")
            self.set_reactive(RunsTable.status_filter, StatusFilter.ALL)
            self.set_reactive(RunsTable.engine_filter, "")
            self._sync()
        try:
            index = self.order.index(run_id)
        except ValueError:
            return False
        self.move_cursor(row=index)
        return True

    def move_cursor(self, *, row: int, scroll: bool = True, animate: bool = False) -> None:
        """Put the cursor on line ``row`` of the visible runs (clamped)."""
        row = min(max(row, 0), max(0, len(self.order) - 1))
        if row != self.cursor_row:
            old, self.cursor_row = self.cursor_row, row
            # Only the two lines change (a scroll, if any, redraws the rest).
            top = int(self.scroll_y)
            for index in (old, row):
                if top <= index < top + self._page:
                    self.refresh_line(index - top + 1)
        if scroll:
            self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_y)
        page = self._page
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + page:
            self.scroll_to(y=self.cursor_row - page + 1, animate=False, immediate=True)

    def get_cell(self, run_id: str, column: str) -> Any:
        """The cell ``column`` of ``run_id`` as it is drawn now (a ``Text``, or the
        ``MarkCell``)."""
        index = [key for key, _ in COLUMNS].index(column)
        return self._cells_for(run_id, self._now())[index]

    # -- actions ----------------------------------------------------------------------

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.scroll_to(y=max(0, int(self.scroll_y) - self._page), animate=False, immediate=True)
        self.move_cursor(row=self.cursor_row - self._page)

    def action_page_down(self) -> None:
        self.scroll_to(y=int(self.scroll_y) + self._page, animate=False, immediate=True)
        self.move_cursor(row=self.cursor_row + self._page)

    def action_sideways(self, direction: int) -> None:
        """Left/right: the columns past the terminal's edge (there is no horizontal
        scrollbar to take a line from the table)."""
        step = max(8, self.scrollable_content_region.width // 3)
        self.scroll_x = min(max(0, self.scroll_x + direction * step), self.max_scroll_x)
        self.refresh()

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=len(self.order) - 1)

    def action_select_cursor(self) -> None:
        run_id = self.cursor_run_id
        if run_id is not None:
            self.post_message(self.RunSelected(run_id))

    def action_toggle_mark(self) -> None:
        run_id = self.cursor_run_id
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.discard(run_id)
        else:
            self.marked.add(run_id)
        self.refresh()
        self.post_message(self.ViewChanged())

    def clear_marks(self) -> None:
        self.marked.clear()
        self.refresh()
        self.post_message(self.ViewChanged())

    def action_cycle_sort(self) -> None:
        cycle = SORTABLE_ALL if self._engines else SORTABLE
        index = cycle.index(self.sort_column) if self.sort_column in cycle else -1
        self.sort_column = cycle[(index + 1) % len(cycle)]

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        event.stop()
        if offset.y == 0:
            x = offset.x + int(self.scroll_x)
            for key, start, end in self._x:
                if start <= x < end and key in SORTABLE_ALL:
                    if key == self.sort_column:
                        self.sort_reverse = not self.sort_reverse
                    else:
                        self.sort_column = key
                    return
            return
        row = int(self.scroll_y) + offset.y - 1
        if not 0 <= row < len(self.order):
            return
        if row == self.cursor_row:
            self.action_select_cursor()
        else:
            self.move_cursor(row=row, scroll=False)

    def _watch_filter_text(self) -> None:
        self._sync(to_first=True)

    def _watch_status_filter(self) -> None:
        self._sync(to_first=True)

    def _watch_engine_filter(self) -> None:
        self._sync(to_first=True)

    def _watch_sort_column(self) -> None:
        self._sync()

    def _watch_sort_reverse(self) -> None:
        self._sync()

    # -- keeping the table in step ------------------------------------------------------

    def warm_search(self, count: int) -> bool:
        """Compute the ``/`` filter's text (:meth:`RunRow.search_text`) of up to
        ``count`` more rows, ahead of the first key typed: over 100k runs the texts
        take longer than the filter itself. Returns whether rows are left."""
        if self._warming is None or self._warming[0] is not self.rows_by_id:
            self._warming = (self.rows_by_id, iter(self.rows_by_id.values()))
        done = 0
        with gc_paused():
            for row in islice(self._warming[1], count):
                row.search_text()
                done += 1
        return done == count

    def filter_cost(self, text: str) -> int:
        """How many rows applying ``text`` as the ``/`` filter would look at (0: none,
        the result is kept): the dashboard applies a costly filter once typing pauses."""
        return self._order.filter_cost(
            self.rows_by_id,
            self.sort_column,
            text.strip().lower(),
            STATUS_FILTER_MEMBERS[self.status_filter],
            self.engine_filter,
        )

    def _visible_order(self) -> list[str]:
        # Sorted once per set of rows and sort column, edited in place when a snapshot
        # changes few rows; a filter only scans (see RowOrder).
        return self._order.order(
            self.rows_by_id,
            self.sort_column,
            self.sort_reverse,
            self.filter_text.strip().lower(),
            STATUS_FILTER_MEMBERS[self.status_filter],
            self.engine_filter,
        )

    def _cells_for(self, run_id: str, now_ms: int) -> tuple[Any, ...]:
        return row_cells(
            self.rows_by_id[run_id],
            now_ms,
            self.app.theme_variables,
            run_id in self.marked,
            # A headless app (tests, screenshots) renders in true colour whatever TERM is.
            ansi16=not self.app.is_headless and self.app.console.color_system in ("standard", "windows"),
        )

    def _sync(self, *, to_first: bool = False) -> None:
        """Show ``_visible_order()``: the cursor stays on its run (or, after a filter
        change, goes to the first match), and the view keeps its place."""
        cursor_id = self.cursor_run_id
        with gc_paused():
            self.order = self._visible_order()
        if to_first:
            self.cursor_row = 0
            self.scroll_to(y=0, animate=False, immediate=True)
        elif cursor_id is not None and cursor_id in self.rows_by_id:
            try:
                self.cursor_row = self.order.index(cursor_id)
            except ValueError:
                self.cursor_row = min(self.cursor_row, max(0, len(self.order) - 1))
        else:
            self.cursor_row = min(self.cursor_row, max(0, len(self.order) - 1))
        if len(self._lines) > 4 * max(50, self.size.height):
            self._lines.clear()
            self._parts.clear()
        if self.is_mounted:
            self._fit_columns()
            if cursor_id is not None and cursor_id == self.cursor_run_id:
                self._scroll_to_cursor()
        self.post_message(self.ViewChanged())

    # -- drawing ----------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's style, once per pass rather than once a line (it walks the DOM).
        base = self.rich_style
        self._pass_styles = (base, base + self.get_component_rich_style("runs-table--even-row"))
        try:
            return super().render_lines(crop)
        finally:
            self._pass_styles = None

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x = int(self.scroll_x)
        base, even = self._pass_styles or (
            self.rich_style, self.rich_style + self.get_component_rich_style("runs-table--even-row")
        )
        if y == 0:
            strip = self._header_strip()
            style = self.get_component_rich_style("runs-table--header")
        else:
            index = int(self.scroll_y) + y - 1
            if not 0 <= index < len(self.order):
                return Strip.blank(width, base)
            strip = self._row_strip(self.order[index])
            if index == self.cursor_row:
                style = self.get_component_rich_style("runs-table--cursor")
            elif index % 2:
                style = even
            else:
                style = base
        if y:
            key = (style, scroll_x, width)
            run_id = self.order[int(self.scroll_y) + y - 1]
            finished = self._finished.get(run_id)
            if finished is not None and finished[0] is strip and finished[1] == key:
                return finished[2]
        line = strip.apply_style(style).crop(scroll_x, scroll_x + width).extend_cell_length(width, style)
        if y:
            if len(self._finished) > 4 * max(50, self.size.height):
                self._finished.clear()
            self._finished[run_id] = (strip, key, line)
        return line

    def _header_strip(self) -> Strip:
        segments: list[Segment] = []
        arrow = "↓" if self.sort_reverse else "↑"
        labels = dict(COLUMNS)
        for key, start, end in self._x:
            label = labels[key]
            if key == self.sort_column:
                label = f"{label} {arrow}"
            segments += _fit(_cell(label, justify="right" if key in RIGHT else "left"), end - start - 2 * PADDING, key)
        return Strip(segments)

    def _row_strip(self, run_id: str) -> Strip:
        row = self.rows_by_id[run_id]
        now_ms = self._now()
        times = time_texts(row, now_ms)
        signature = (row, run_id in self.marked, self._generation, times)
        cached = self._lines.get(run_id)
        if cached is not None and cached[0][0] is row and cached[0][1:] == signature[1:]:
            return cached[1]
        # A new time on an unchanged row: only its time cells are fitted again.
        parts = self._parts.get(run_id)
        if parts is None or parts[0][0] is not row or parts[0][1:] != signature[1:3]:
            cells = self._cells_for(run_id, now_ms)
            keys = [key for key, _ in COLUMNS]
            fitted = [_fit(cells[keys.index(key)], end - start - 2 * PADDING, key) for key, start, end in self._x]
            parts = (signature[:3], fitted)
            self._parts[run_id] = parts
        else:
            fitted = list(parts[1])
            for index, (key, start, end) in enumerate(self._x):
                if key == "wait":
                    fitted[index] = _fit(wait_text(row, now_ms), end - start - 2 * PADDING, key)
                elif key == "why" and row.retry_due_ms is not None:
                    fitted[index] = _fit(why_text(row, now_ms), end - start - 2 * PADDING, key)
        strip = Strip([segment for cell in fitted for segment in cell])
        self._lines[run_id] = (signature, strip)
        return strip


def _first(values: Iterable[RunRow], count: int = 1) -> list[RunRow]:
    out: list[RunRow] = []
    for value in values:
        out.append(value)
        if len(out) >= count:
            break
    return out
