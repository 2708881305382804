"""Workspace locks: each locked workspace, the run holding it, and the runs queued
behind it; holders whose execution claim lease has expired are flagged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from textual import events
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tandem_tui.domain.models import RunStatus
from tandem_tui.domain.view import LockInfo
from tandem_tui.safe_text import sanitize
from tandem_tui.ui.widgets.status_style import STATUS_COLOR_VARIABLE

#: Queued runs listed by id under a lock before the rest are summarised as "+N".
QUEUED_SHOWN = 3


@dataclass(frozen=True)
class LocksData:
    locks: Sequence[LockInfo] = field(default_factory=tuple)
    #: Runs with an expired execution claim that hold no workspace lock.
    expired_claims: Sequence[tuple[str, RunStatus]] = field(default_factory=tuple)


def _status(status: RunStatus | None) -> tuple[str, str]:
    if status is None:
        return ("gone", "$text-muted")
    return (status.value, f"${STATUS_COLOR_VARIABLE[RunStatus(status)]}")


def holder_ids(data: LocksData) -> list[str]:
    """The runs the panel lists as holders, in its order (what its cursor selects)."""
    return [lock.holder_run_id for lock in data.locks] + [run_id for run_id, _ in data.expired_claims]


def locks_content(data: LocksData, selected: str | None = None) -> Content:
    """The panel's text; ``selected`` (a holder's run id) is drawn highlighted."""

    def holder(run_id: str) -> Content | str:
        text = sanitize(run_id)
        return Content.styled(f"▶{text}", "bold reverse") if run_id == selected else text

    if not data.locks and not data.expired_claims:
        return Content.styled("No workspace is locked.", "$text-muted")
    lines: list[Content] = []
    for lock in data.locks:
        lines.append(Content.styled(sanitize(lock.workspace), "bold"))
        lines.append(
            Content.assemble(
                ("  └ ", "$text-muted"), holder(lock.holder_run_id), " ", _status(lock.holder_status)
            )
        )
        if lock.claim_expired:
            lines.append(Content.assemble("    ", (" claim lease expired ", "bold $text-error reverse")))
        if lock.queued_run_ids:
            shown = ", ".join(sanitize(r) for r in lock.queued_run_ids[:QUEUED_SHOWN])
            more = len(lock.queued_run_ids) - QUEUED_SHOWN
            tail = f" +{more}" if more > 0 else ""
            lines.append(
                Content.assemble(
                    ("    queued ", "$text-muted"),
                    (str(len(lock.queued_run_ids)), "bold $text-primary"),
                    (": ", "$text-muted"),
                    shown + tail,
                )
            )
    if data.expired_claims:
        lines.append(Content.styled("expired claims", "bold $text-error"))
        for run_id, status in data.expired_claims:
            lines.append(Content.assemble("  ", holder(run_id), " ", _status(status)))
    return Content("\n").join(lines)


class LocksPanel(VerticalScroll, can_focus=True):
    """The locks, scrollable; data comes in through ``data``. Focused (Tab), up/down
    select a holder: an action key then acts on it, Enter shows it in the runs table."""

    BINDINGS = [
        Binding("up,k", "select(-1)", "Previous holder", show=False),
        Binding("down,j", "select(1)", "Next holder", show=False),
        Binding("enter", "open_holder", "Show holder", show=False),
    ]

    data: reactive[LocksData] = reactive(LocksData, init=False)
    #: The selected holder's run id (kept across updates while it still holds).
    selected: reactive[str | None] = reactive(None, init=False)

    class HolderChosen(Message):
        """Enter on a holder: show it in the runs table."""

        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    def compose(self):
        yield Static(locks_content(self.data), id="locks-body", markup=False)

    @property
    def selected_holder(self) -> str | None:
        """The selected holder, when the panel has focus (what an action acts on)."""
        return self.selected if self.has_focus else None

    def _watch_data(self, data: LocksData) -> None:
        self.border_title = f"workspace locks · {len(data.locks)}"
        holders = holder_ids(data)
        if self.selected not in holders:
            self.selected = holders[0] if holders else None
        self._redraw()

    def _watch_selected(self) -> None:
        self._redraw()

    def _on_focus(self, event: events.Focus) -> None:
        self._redraw()

    def _on_blur(self, event: events.Blur) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if self.is_mounted:
            shown = self.selected if self.has_focus else None
            self.query_one("#locks-body", Static).update(locks_content(self.data, shown))

    def action_select(self, step: int) -> None:
        holders = holder_ids(self.data)
        if not holders:
            return
        index = holders.index(self.selected) if self.selected in holders else -step
        self.selected = holders[min(max(index + step, 0), len(holders) - 1)]

    def action_open_holder(self) -> None:
        if self.selected is not None:
            self.post_message(self.HolderChosen(self.selected))


def expired_claim_rows(
    run_ids: Sequence[str], statuses: Mapping[str, RunStatus], locks: Sequence[LockInfo]
) -> tuple[tuple[str, RunStatus], ...]:
    """Expired claims not already flagged on a lock holder line."""
    holders = {lock.holder_run_id for lock in locks}
    return tuple((r, statuses[r]) for r in run_ids if r not in holders and r in statuses)
