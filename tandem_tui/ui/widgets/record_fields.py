"""The run record as labelled panels: key fields, scheduler metadata, claim, checkpoint.

Each ``*_rows`` function is pure: a run and "now" in, ``(label, Text)`` rows out, with
every value from the runs file made literal. :class:`FieldsPanel` draws such rows as a
two-column grid with a border title; the run detail screen stacks or tiles the panels.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.color import Color
from textual.widgets import Static

from tandem_tui.domain.lifecycle import in_progress_node_ids
from tandem_tui.domain.models import Run, RunStatus
from tandem_tui.humanize import format_age, format_duration_ms, format_timestamp
from tandem_tui.safe_text import literal
from tandem_tui.ui.widgets.status_style import status_text

Row = tuple[str, Text]

_NONE = Text("-", style="dim")


def theme_style(
    theme: Mapping[str, str], variable: str, *, bold: bool = False, dim: bool = False
) -> Style:
    """A Rich style coloured by a theme variable (``app.theme_variables``), so Rich text
    follows the theme like CSS does; no colour when the variable is unknown."""
    color: str | None = None
    value = theme.get(variable)
    if value is not None:
        try:
            parsed = Color.parse(value)
        except Exception:
            parsed = None
        if parsed is not None:
            if parsed.a < 1:
                background = Color.parse(theme.get("background", "#000000"))
                parsed = background.blend(parsed.with_alpha(1), parsed.a)
            color = parsed.hex
    return Style(color=color, bold=bold or None, dim=dim or None)


def compact_json(value: Any) -> str:
    """``value`` on one line: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False, default=str)


def _value(value: object) -> Text:
    return _NONE.copy() if value is None or value == "" else literal(value)


def _when(ms: int | None, now_ms: int) -> Text:
    """``2026-11-23 15:50:37  (4m05s ago)``."""
    if ms is None:
        return _NONE.copy()
    text = Text(format_timestamp(ms))
    text.append(f"  {format_age(ms, now_ms)}", style="dim")
    return text


def _countdown(
    deadline_ms: int, now_ms: int, *, overdue: str, overdue_style: Style | str
) -> Text:
    """``in 1m20s`` before the deadline; ``overdue`` (e.g. ``EXPIRED 3m ago``) after it."""
    if deadline_ms > now_ms:
        return Text(f"in {format_duration_ms(deadline_ms - now_ms)}")
    return Text(f"{overdue} {format_age(deadline_ms, now_ms)}", style=overdue_style)


def key_field_rows(run: Run, now_ms: int, theme: Mapping[str, str]) -> list[Row]:
    """What the run is, where it stands, and what it cost."""
    rows: list[Row] = [
        ("run id", literal(run.run_id, style="bold")),
        ("automation", literal(run.automation_id)),
        ("status", status_text(run.status, theme)),
        ("trigger", _trigger(run)),
        ("tenant", _tenant(run)),
        ("created", _when(run.created_at_ms, now_ms)),
        ("started", _when(run.started_at_ms, now_ms)),
        ("updated", _when(run.updated_at_ms, now_ms)),
        ("finished", _when(run.finished_at_ms, now_ms)),
    ]
    if run.started_at_ms is not None:
        end = run.finished_at_ms if run.finished_at_ms is not None else now_ms
        rows.append(("elapsed", Text(format_duration_ms(max(0, end - run.started_at_ms)))))
    rows += [
        ("tokens", _tokens(run)),
        ("cost", Text(f"${run.estimated_cost_usd:,.4f}")),
        ("profile", _profile(run)),
    ]
    optional = (
        ("pause reason", run.pause_reason),
        ("resume reason", run.resume_reason),
        ("stop kind", run.stop_kind.value if run.stop_kind else None),
        ("stop reason", run.stop_reason),
        ("trigger reason", run.trigger_reason),
    )
    rows += [(label, literal(value)) for label, value in optional if value]
    rows += [
        ("detail", _value(run.detail)),
        ("workspace", _value(run.workspace_root)),
    ]
    return rows


def _trigger(run: Run) -> Text:
    return literal(run.trigger_type)


def _tenant(run: Run) -> Text:
    tenant = run.tenant_context
    text = literal(f"{tenant.org_id}/{tenant.workspace_id}")
    if tenant.deployment_id:
        text.append_text(literal(f"/{tenant.deployment_id}"))
    if tenant.actor_id:
        text.append("  actor ", style="dim")
        text.append_text(literal(tenant.actor_id))
    text.append(f"  ({tenant.source.value})", style="dim")
    return text


def _tokens(run: Run) -> Text:
    text = Text(f"{run.total_tokens:,}")
    text.append(
        f"  ({run.prompt_tokens:,} prompt + {run.completion_tokens:,} completion)", style="dim"
    )
    return text


def _profile(run: Run) -> Text:
    text = Text(run.effective_execution_profile.value)
    requested = run.requested_execution_profile
    if requested is not None and requested != run.effective_execution_profile:
        text.append(f"  (requested {requested.value})", style="dim")
    return text


def scheduler_rows(
    run: Run, now_ms: int, theme: Mapping[str, str], lock_holder: str | None = None
) -> list[Row]:
    """Why a queued run waits; empty when the run carries no scheduler metadata and no
    run holds a lock it waits for. ``lock_holder`` is the run holding the workspace lock
    it waits for (the view's answer, shown whole: ids are what tell runs apart)."""
    meta = run.scheduler
    if meta is None:
        if lock_holder:
            return [("lock held by", literal(lock_holder, style=theme_style(theme, "text-warning", bold=True)))]
        return []
    reason = meta.queue_reason.value if meta.queue_reason else None
    rows: list[Row] = [
        (
            "queue reason",
            Text(reason, style=theme_style(theme, "text-primary", bold=True))
            if reason
            else _NONE.copy(),
        ),
        ("queued at", _when(meta.queued_at_ms or None, now_ms)),
    ]
    if meta.resource_key:
        rows.append(("resource", literal(meta.resource_key)))
    if lock_holder:
        rows.append(("lock held by", literal(lock_holder, style=theme_style(theme, "text-warning", bold=True))))
    if meta.rate_limited_provider:
        rows.append(("provider", literal(meta.rate_limited_provider)))
    if meta.retry_node_id is not None:
        rows.append(("retry node", literal(meta.retry_node_id)))
    if meta.retry_attempt is not None:
        rows.append(("retry attempt", Text(str(meta.retry_attempt))))
    if meta.retry_backoff_ms is not None:
        rows.append(("backoff", Text(format_duration_ms(meta.retry_backoff_ms))))
    if meta.retry_after_ms is not None:
        when = Text(format_timestamp(meta.retry_after_ms) + "  ")
        when.append_text(
            _countdown(meta.retry_after_ms, now_ms, overdue="due", overdue_style="bold")
        )
        rows.append(("retry after", when))
    if meta.retry_reason:
        rows.append(("retry reason", literal(meta.retry_reason)))
    return rows


def claim_rows(run: Run, now_ms: int, theme: Mapping[str, str]) -> list[Row]:
    """Who holds the execution claim and for how long; empty when nobody does."""
    claim = run.execution_claim
    if claim is None:
        return []
    lease = Text(format_timestamp(claim.lease_expires_at_ms) + "  ")
    lease.append_text(
        _countdown(
            claim.lease_expires_at_ms, now_ms, overdue="EXPIRED",
            overdue_style=theme_style(theme, "text-error", bold=True),
        )
    )
    return [
        ("claimant", literal(claim.claimant_id)),
        ("claim id", literal(claim.claim_id)),
        ("epoch", Text(f"{claim.lease_epoch} (run epoch {run.execution_claim_epoch})")),
        ("claimed", _when(claim.claimed_at_ms, now_ms)),
        ("lease", lease),
    ]


def failure_rows(run: Run, now_ms: int) -> list[Row]:
    """The checkpoint's last failure; empty when there is none."""
    failure = run.checkpoint.last_failure
    if failure is None:
        return []
    rows: list[Row] = [
        ("node", literal(failure.node_id)),
        ("reason", literal(failure.reason)),
        ("failed", _when(failure.failed_at_ms, now_ms)),
    ]
    if failure.failure_kind:
        rows.append(("kind", literal(failure.failure_kind)))
    if failure.metadata is not None:
        rows.append(("metadata", literal(compact_json(failure.metadata))))
    return rows


@dataclass(frozen=True)
class NodeState:
    """One flow node as the checkpoint sees it."""

    node_id: str
    state: str
    attempts: int


#: How each node state is drawn: (theme variable, bold).
NODE_STATE_STYLE: Mapping[str, tuple[str, bool]] = {
    "completed": ("text-success", False),
    "running": ("text-accent", True),
    "blocked": ("text-error", True),
    "failed": ("text-error", True),
    "pending": ("foreground", False),
    "attempted": ("text-warning", False),
    "not started": ("foreground-muted", False),
}


def flow_node_ids(run: Run) -> list[str]:
    """The node ids of ``automation_snapshot.flow.nodes`` in flow order (empty if absent)."""
    snapshot = run.automation_snapshot
    flow = snapshot.get("flow") if isinstance(snapshot, dict) else None
    nodes = flow.get("nodes") if isinstance(flow, dict) else None
    if not isinstance(nodes, list):
        return []
    return [
        node["node_id"]
        for node in nodes
        if isinstance(node, dict) and isinstance(node.get("node_id"), str)
    ]


def node_states(run: Run) -> list[NodeState]:
    """Every node the flow or the checkpoint knows, in flow order, then checkpoint order.

    A node is ``blocked`` or ``completed`` as the checkpoint says; ``failed`` when it is
    the last failure's node; ``running`` when attempted and still pending in a run that
    is executing; ``pending``; ``attempted`` when tried but in no list; else
    ``not started``.
    """
    checkpoint = run.checkpoint
    completed = set(checkpoint.completed_nodes)
    blocked = set(checkpoint.blocked_nodes)
    pending = set(checkpoint.pending_nodes)
    executing = run.status in (RunStatus.RUNNING, RunStatus.PAUSING)
    running = set(in_progress_node_ids(run)) if executing else set()
    failed = checkpoint.last_failure.node_id if checkpoint.last_failure else None
    ordered = _unique(
        [
            *flow_node_ids(run),
            *checkpoint.completed_nodes,
            *checkpoint.pending_nodes,
            *checkpoint.blocked_nodes,
            *checkpoint.node_attempts,
        ]
    )

    def state(node_id: str) -> str:
        if node_id in blocked:
            return "blocked"
        if node_id in completed:
            return "completed"
        if node_id == failed:
            return "failed"
        if node_id in running:
            return "running"
        if node_id in pending:
            return "pending"
        if checkpoint.node_attempts.get(node_id, 0) > 0:
            return "attempted"
        return "not started"

    return [
        NodeState(node_id, state(node_id), checkpoint.node_attempts.get(node_id, 0))
        for node_id in ordered
    ]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def checkpoint_table(run: Run, theme: Mapping[str, str]) -> RenderableType:
    """The checkpoint's nodes as a small table (node, state, attempts)."""
    states = node_states(run)
    if not states:
        return Text("no nodes recorded", style="dim")
    table = Table.grid(padding=(0, 2))
    table.add_column("node", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    for node in states:
        variable, bold = NODE_STATE_STYLE.get(node.state, ("foreground", False))
        table.add_row(
            literal(node.node_id),
            Text(node.state, style=theme_style(theme, variable, bold=bold)),
            Text(f"×{node.attempts}" if node.attempts else "", style="dim"),
        )
    gate = run.checkpoint.awaiting_gate
    if gate is not None:
        table.add_row(Text("awaiting gate", style="bold"), _gate_summary(gate), "")
    return table


def _gate_summary(gate: Any) -> Text:
    if isinstance(gate, dict):
        for key in ("node_id", "gate_id", "title"):
            if isinstance(gate.get(key), str):
                return literal(gate[key])
    return literal(gate)


def rows_table(rows: Sequence[Row]) -> RenderableType:
    """``label  value`` rows as a grid: labels dim and right-aligned, values folding."""
    table = Table.grid(padding=(0, 1))
    table.add_column("label", style="dim", justify="right", no_wrap=True)
    table.add_column("value", overflow="fold")
    for label, value in rows:
        table.add_row(label, value)
    return table


class FieldsPanel(Static):
    """A bordered panel showing labelled rows (or any renderable) under a title."""

    DEFAULT_CSS = """
    FieldsPanel {
        height: auto;
        border: round $foreground 30%;
        padding: 0 1;
    }
    """

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.border_title = title

    def show_rows(self, rows: Sequence[Row], *, empty: str = "none") -> None:
        self.update(rows_table(rows) if rows else Text(empty, style="dim"))
