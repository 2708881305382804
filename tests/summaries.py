"""What a run summary holds, for tests that compare summaries built different ways."""

from __future__ import annotations

from typing import Any

from tandem_tui.domain.run_summary import RunSummary


def summary_fields(summary: RunSummary) -> list[Any]:
    """Everything a summary holds, nested models with what was set and what is unknown."""

    def model(value: Any) -> Any:
        if value is None:
            return None
        return (type(value).__name__, repr(value), sorted(value.model_fields_set), repr(value.model_extra))

    checkpoint = summary.checkpoint
    return [
        summary.key, summary.run_id, summary.automation_id, model(summary.tenant_context), summary.trigger_type,
        summary.status, summary.created_at_ms, summary.updated_at_ms, summary.started_at_ms,
        summary.finished_at_ms, checkpoint.completed_nodes, checkpoint.pending_nodes, checkpoint.blocked_nodes,
        model(checkpoint.last_failure),
        [(e.event, e.recorded_at_ms, e.metadata) for e in checkpoint.lifecycle_history],
        model(summary.execution_claim), summary.pause_reason, summary.resume_reason, summary.detail,
        summary.stop_kind, summary.stop_reason, model(summary.scheduler), summary.workspace_root,
        summary.node_counts,
    ]
