"""Workspace locks: each locked workspace, the run holding it, and the runs queued
behind it; holders whose execution claim lease has expired are flagged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from textual.containers import VerticalScroll
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


def locks_content(data: LocksData) -> Content:
    if not data.locks and not data.expired_claims:
        return Content.styled("No workspace is locked.", "$text-muted")
    lines: list[Content] = []
    for lock in data.locks:
        lines.append(Content.styled(sanitize(lock.workspace), "bold"))
        lines.append(
            Content.assemble(
                ("  └ ", "$text-muted"), sanitize(lock.holder_run_id), " ", _status(lock.holder_status)
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
            lines.append(Content.assemble("  ", sanitize(run_id), " ", _status(status)))
    return Content("\n").join(lines)


class LocksPanel(VerticalScroll):
    """The locks, scrollable; data comes in through ``data``."""

    data: reactive[LocksData] = reactive(LocksData, init=False)

    def compose(self):
        yield Static(locks_content(self.data), id="locks-body", markup=False)

    def _watch_data(self, data: LocksData) -> None:
        self.border_title = f"workspace locks · {len(data.locks)}"
        self.query_one("#locks-body", Static).update(locks_content(data))


def expired_claim_rows(
    run_ids: Sequence[str], statuses: Mapping[str, RunStatus], locks: Sequence[LockInfo]
) -> tuple[tuple[str, RunStatus], ...]:
    """Expired claims not already flagged on a lock holder line."""
    holders = {lock.holder_run_id for lock in locks}
    return tuple((r, statuses[r]) for r in run_ids if r not in holders and r in statuses)
