"""Sparklines of the recent past: queue depth, active runs and p95 admission wait."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Sparkline, Static

from tandem_tui.domain.snapshot import MetricsSeries
from tandem_tui.humanize import format_duration_ms


@dataclass(frozen=True)
class TrendData:
    """Copies of the series (the watcher keeps appending to its own)."""

    queued: Sequence[int] = field(default_factory=tuple)
    active: Sequence[int] = field(default_factory=tuple)
    p95_wait_ms: Sequence[int] = field(default_factory=tuple)


def trend_data(series: MetricsSeries | None) -> TrendData:
    if series is None:
        return TrendData()
    return TrendData(tuple(series.queued()), tuple(series.active()), tuple(series.p95_wait()))


def _label(name: str, values: Sequence[int], fmt=str) -> Content:
    latest = fmt(values[-1]) if values else "-"
    peak = fmt(max(values)) if values else "-"
    return Content.assemble((name, "bold"), " ", latest, (f"  max {peak}", "$text-muted"))


class Trend(Vertical):
    """One labelled sparkline."""

    def __init__(self, name: str, *, id: str, fmt=str) -> None:
        super().__init__(id=id, classes="trend")
        self._name = name
        self._fmt = fmt

    def compose(self) -> ComposeResult:
        yield Static(_label(self._name, (), self._fmt), classes="trend-label", markup=False)
        yield Sparkline([], summary_function=max)

    def show(self, values: Sequence[int]) -> None:
        self.query_one(".trend-label", Static).update(_label(self._name, values, self._fmt))
        # A flat line needs two points to draw; one sample is still a level.
        self.query_one(Sparkline).data = list(values) if len(values) > 1 else list(values) * 2


class Trends(Horizontal):
    """The three trends side by side; data comes in through ``data``."""

    data: reactive[TrendData] = reactive(TrendData, init=False)

    def compose(self) -> ComposeResult:
        yield Trend("queued", id="trend-queued")
        yield Trend("active", id="trend-active")
        yield Trend("p95 wait", id="trend-p95", fmt=format_duration_ms)

    def _watch_data(self, data: TrendData) -> None:
        self.query_one("#trend-queued", Trend).show(data.queued)
        self.query_one("#trend-active", Trend).show(data.active)
        self.query_one("#trend-p95", Trend).show(data.p95_wait_ms)
