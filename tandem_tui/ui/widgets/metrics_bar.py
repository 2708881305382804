"""The header strip: title, scheduler metrics, file freshness, and the STALE banner.

:func:`metrics_from_report` reads the same ``status_report`` object the ``status --json``
command prints, so the console and the CLI never disagree about a figure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tandem_tui.domain.snapshot import Freshness, Snapshot
from tandem_tui.present import READY, REASON_ORDER, Figures, figures, format_duration_ms
from tandem_tui.safe_text import sanitize

#: The header's short label for each queue reason (``present.REASON_ORDER``).
SHORT_LABELS = {"workspace_lock": "lock", "rate_limit": "rate limit", "retry_backoff": "retry"}
REASON_LABELS: tuple[tuple[str, str], ...] = tuple((key, SHORT_LABELS.get(key, key)) for key in REASON_ORDER)


@dataclass(frozen=True)
class Metrics:
    """The figures in the header (``present.Figures``); ``queued_by_reason`` includes ``ready``."""

    active: int = 0
    capacity: int = 0
    queued_by_reason: Mapping[str, int] = field(default_factory=dict)
    admitted: int = 0
    completed: int = 0
    avg_wait_ms: int = 0
    p95_wait_ms: int = 0
    runs_total: int = 0
    locked_workspaces: int = 0
    #: A fleet source (PostgreSQL): how many engines, and how many are live; 0 for one
    #: engine (the header then says nothing of engines).
    engines: int = 0
    engines_live: int = 0

    @property
    def queued_total(self) -> int:
        return sum(self.queued_by_reason.values())


def metrics_from_figures(shown: Figures) -> Metrics:
    return Metrics(
        active=shown.active,
        capacity=shown.capacity,
        queued_by_reason=dict(shown.queued_by_reason),
        admitted=shown.admitted,
        completed=shown.completed,
        avg_wait_ms=shown.avg_wait_ms,
        p95_wait_ms=shown.p95_wait_ms,
        runs_total=shown.runs_total,
        locked_workspaces=len(shown.locked_workspaces),
    )


def metrics_from_snapshot(snapshot: Snapshot, now_ms: int) -> Metrics:
    """The header's figures for a snapshot: ``tandem-tui status``'s, on the same runs
    (a fleet's view adds its engines' figures up), and a fleet's engine count."""
    view = snapshot.view
    if hasattr(view, "scheduler"):
        metrics = metrics_from_figures(figures(snapshot.runs, view, now_ms))
    else:
        # A fleet's view (``FleetView``) has a scheduler per engine, not one: its
        # ``status --json``-shaped report holds the fleet's totals.
        metrics = metrics_from_report(view.status_report(snapshot.runs))
    engines = getattr(snapshot, "engines", None)
    if engines:
        live = sum(1 for info in engines.values() if getattr(info, "live", False))
        metrics = replace(metrics, engines=len(engines), engines_live=live)
    return metrics


def metrics_from_report(report: Mapping[str, Any]) -> Metrics:
    """The figures of a ``status --json``-shaped object (``Figures.status_json`` or the
    view's ``status_report``): queued runs no reason holds back count as ``ready``."""
    by_status = report.get("runs_by_status", {})
    queued_by_reason = dict(report.get("queued_runs_by_reason", {}))
    queued = int(by_status.get("queued", 0))
    held = sum(queued_by_reason.values())
    if queued > held:
        queued_by_reason[READY] = queued - held
    return Metrics(
        active=int(report.get("active_runs", 0)),
        capacity=int(report.get("max_concurrent_runs", 0)),
        queued_by_reason=queued_by_reason,
        admitted=int(report.get("admitted_total", 0)),
        completed=int(report.get("completed_total", 0)),
        avg_wait_ms=int(report.get("avg_wait_ms", 0)),
        p95_wait_ms=int(report.get("p95_wait_ms", 0)),
        runs_total=sum(int(v) for v in by_status.values()),
        locked_workspaces=len(report.get("locked_workspaces", {})),
    )


def metrics_content(metrics: Metrics, width: int | None = None) -> Content:
    """``active 3/8  queued 12: capacity 5 · lock 4 …  admitted …  wait avg …  p95 …``.

    With ``width``, lines are broken between items only, never inside one (``p95
    1m25s``, ``ready 1``): the items are packed here, because Textual's wrapping breaks
    at non-breaking spaces too."""
    nb = "\u00a0"
    items: list[list[Any]] = []
    if metrics.engines:
        items.append([
            (f"fleet{nb}", "$text-muted"),
            (f"{metrics.engines}{nb}engine{'s' if metrics.engines != 1 else ''}", "bold"),
            (f"{nb}·{nb}{metrics.engines_live}{nb}live", "$text-muted"),
        ])
    items.append(
        [(f"active{nb}", "$text-muted"), (f"{metrics.active}/{metrics.capacity}", "bold $text-success")]
    )
    queued: list[Any] = [(f"queued{nb}", "$text-muted"), (str(metrics.queued_total), "bold $text-primary")]
    reasons = [(label, metrics.queued_by_reason.get(key, 0)) for key, label in REASON_LABELS]
    shown = [f"{label} {count}".replace(" ", nb) for label, count in reasons if count]
    items.append(queued)
    for index, reason in enumerate(shown):
        lead = ":" if index == 0 else "·"
        if index == 0:
            queued.append((lead, "$text-primary"))
            items.append([(reason, "$text-primary")])
        else:
            items.append([(f"· {reason}".replace(" ", nb, 1), "$text-primary")])
    items += [
        [(f"admitted{nb}", "$text-muted"), str(metrics.admitted)],
        [(f"completed{nb}", "$text-muted"), str(metrics.completed)],
        [(f"wait{nb}avg{nb}", "$text-muted"), format_duration_ms(metrics.avg_wait_ms)],
        [(f"p95{nb}", "$text-muted"), (format_duration_ms(metrics.p95_wait_ms), "bold $text-warning")],
    ]
    position = items.index(queued)
    items_after_queue = items[position + 1] if position + 1 < len(items) else None
    parts: list[Any] = []
    column = 0
    for index, item in enumerate(items):
        piece = Content.assemble(*item)
        if index:
            # Reasons follow their "queued N:" with one space; other items with two.
            joined_to_queue = item[0][0].startswith(("·",)) or (item is items_after_queue and shown)
            gap = " " if joined_to_queue else "  "
            if width is not None and column + len(gap) + piece.cell_length > width:
                parts.append("\n")
                column = 0
            else:
                parts.append(gap)
                column += len(gap)
        parts.append(piece)
        column += piece.cell_length
    return Content.assemble(*parts)


def header_content(
    location: str, summary: str, read_only: bool, fresh: Content, short: Content, width: int
) -> Content:
    """The header's first line in ``width`` cells: ``tandem-tui <location>  <summary>``
    on the left, freshness on the right. The summary (where actions go) is always whole;
    the location is elided in the middle to make room, then the run count."""
    badge = "  READ-ONLY " if read_only else ""
    name = "tandem-tui"
    summary = sanitize(summary)
    fixed = len(name) + len(badge) + (len(summary) + 2 if summary else 0)
    if width - fixed - fresh.cell_length - 2 < 12:
        fresh = short
    room = width - fixed - fresh.cell_length - 2 - 1
    location = sanitize(location)
    if room < 4:
        location = ""
    elif len(location) > room:
        head = max(1, room // 3)
        location = location[:head] + "…" + location[-(room - head - 1) :]
    parts: list[Any] = [(name, "bold $text-accent")]
    if location:
        parts += [" ", (location, "$text-muted")]
    if read_only:
        parts += ["  ", (" READ-ONLY ", "bold $text-warning reverse")]
    if summary:
        parts += ["  ", (summary, "$text-accent")]
    left = Content.assemble(*parts)
    gap = max(2, width - left.cell_length - fresh.cell_length)
    return Content.assemble(left, " " * gap, fresh)


def freshness_content(
    freshness: Freshness | None, now_ms: int, runs_total: int, ever_read: bool = True,
    short: bool = False,
) -> Content:
    if freshness is None:
        return Content.styled("reading…", "$text-muted")
    if not ever_read:
        return Content.styled("not read", "bold $text-error")
    age_ms = max(0, now_ms - freshness.read_at_ms)
    read = "read just now" if age_ms < 1000 else f"read {format_duration_ms(age_ms)} ago"
    style = "bold $text-error" if freshness.stale else "$text-muted"
    if short:
        return Content.styled(read, style)
    return Content.assemble((f"{runs_total} runs · ", "$text-muted"), (read, style))


def stale_content(freshness: Freshness, now_ms: int, ever_read: bool) -> Content:
    """The banner: what is wrong with the file, and how old the runs shown are."""
    error = sanitize(freshness.error or "the runs file could not be read")
    if ever_read:
        age = format_duration_ms(max(0, now_ms - freshness.read_at_ms))
        tail = f" — showing the last good read, {age} old"
    else:
        tail = " — nothing read yet"
    return Content.assemble((" STALE ", "bold reverse"), " ", (error, "bold"), tail)


class MetricsBar(Horizontal):
    """Title, figures and freshness. Data comes in through the reactive attributes."""

    metrics: reactive[Metrics] = reactive(Metrics, init=False)
    freshness: reactive[Freshness | None] = reactive(None, init=False)
    ever_read: reactive[bool] = reactive(True, init=False)

    #: The source's ``describe().summary`` (``engine live · actions via API``): always
    #: shown whole, the location gives way to it.
    summary: reactive[str] = reactive("", init=False)

    def __init__(
        self,
        *,
        title: str,
        read_only: bool,
        clock_ms: Callable[[], int],
        summary: str = "",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._title = title
        self._read_only = read_only
        self._now = clock_ms
        self.set_reactive(MetricsBar.summary, summary)

    def compose(self) -> ComposeResult:
        yield Static(self._header(), id="title", markup=False)
        yield Static(metrics_content(self.metrics), id="figures", markup=False)

    def _figures_width(self) -> int | None:
        return self.content_region.width if self.is_mounted and self.size.width else None

    def _header(self) -> Content:
        fresh = freshness_content(self.freshness, self._now(), self.metrics.runs_total, self.ever_read)
        short = freshness_content(
            self.freshness, self._now(), self.metrics.runs_total, self.ever_read, short=True
        )
        width = self.content_region.width if self.is_mounted and self.size.width else 80
        return header_content(self._title, self.summary, self._read_only, fresh, short, width)

    def on_resize(self) -> None:
        self._refresh_header()
        self.query_one("#figures", Static).update(metrics_content(self.metrics, self._figures_width()))

    def _refresh_header(self) -> None:
        if self.is_mounted:
            # One line, always: no layout pass (the once-a-second age would otherwise
            # lay the whole screen out again every second).
            self.query_one("#title", Static).update(self._header(), layout=False)

    def _watch_summary(self) -> None:
        self._refresh_header()

    def _watch_metrics(self, metrics: Metrics) -> None:
        self.query_one("#figures", Static).update(metrics_content(metrics, self._figures_width()))
        self.tick()

    def _watch_freshness(self) -> None:
        self.tick()

    def _watch_ever_read(self) -> None:
        self.tick()

    def tick(self) -> None:
        """Time moved on: the "read N ago" age."""
        self._refresh_header()


class StaleBanner(Static):
    """Shown (class ``-stale``) while the runs file cannot be read."""

    freshness: reactive[Freshness | None] = reactive(None, init=False)

    def __init__(self, *, clock_ms: Callable[[], int], id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self._now = clock_ms
        self.ever_read = False

    def _watch_freshness(self) -> None:
        self.tick()

    def tick(self) -> None:
        freshness = self.freshness
        stale = freshness is not None and freshness.stale
        self.set_class(stale, "-stale")
        if stale and freshness is not None:
            self.update(stale_content(freshness, self._now(), self.ever_read))
