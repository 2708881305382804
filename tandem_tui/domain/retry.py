"""Durable retry backoff (server seed 002, ``retry_backoff_queue``).

When a node fails transiently and its retry policy asks for a delay, the run goes back
to ``queued`` with scheduler metadata of reason ``retry_backoff`` that says which node
retries, which attempt comes next and when it is due. The claim path skips such a run
until ``retry_after_ms``. Only a run that is still running under the claim epoch that
decided the retry is queued: a run stopped (or re-claimed) meanwhile is left alone.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from tandem_tui.domain.lifecycle import apply_run_update, record_lifecycle_event
from tandem_tui.domain.models import QueueReason, Run, RunStatus, SchedulerMetadata
from tandem_tui.domain.record_model import Constraints, Factory, RecordModel
from tandem_tui.domain.scheduler import AutomationScheduler, new_scheduler_metadata

#: How much of the failure detail the scheduler metadata keeps (``retry_reason``).
RETRY_REASON_MAX_BYTES = 500
TRUNCATION_MARKER = "...<truncated>"

U64 = Annotated[int, Constraints(ge=0, strict=True)]


def truncate_text(text: str, max_bytes: int) -> str:
    """The server's ``truncate_text``: keep whole characters within ``max_bytes`` of UTF-8.

    Text that fits is returned as is; longer text keeps the longest prefix of whole
    characters whose encoding fits and is marked with ``...<truncated>``.
    """
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    kept, used = [], 0
    for char in text:
        size = len(char.encode("utf-8"))
        if used + size > max_bytes:
            break
        kept.append(char)
        used += size
    return "".join(kept) + TRUNCATION_MARKER


class RetryTerminalMode(StrEnum):
    FAIL_RUN = "fail_run"
    PAUSE_FOR_REVIEW = "pause_for_review"
    DEAD_LETTER = "dead_letter"


class RetryTerminalBehavior(RecordModel):
    mode: RetryTerminalMode = RetryTerminalMode.FAIL_RUN
    dead_letter: bool = False


class RetryDecision(RecordModel):
    """The retry policy's verdict on one failed attempt (``tandem_automation::RetryDecision``).

    Unknown fields survive :meth:`as_json`; ``next_retry_at_ms`` and ``backoff_ms`` are
    left out when absent, as the server writes them.
    """

    version: U64
    policy_version_id: str
    decision: str
    failure_class: str
    reason: str
    attempt: U64
    max_attempts: U64
    retryable: bool
    terminal: bool
    next_retry_at_ms: U64 | None = None
    backoff_ms: U64 | None = None
    terminal_behavior: RetryTerminalBehavior = Factory(RetryTerminalBehavior)
    manual_override_allowed: bool

    def as_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        for name in ("next_retry_at_ms", "backoff_ms"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


def _in_retry_backoff(run: Run) -> SchedulerMetadata | None:
    metadata = run.scheduler
    if metadata is None or metadata.queue_reason != QueueReason.RETRY_BACKOFF:
        return None
    return metadata


def retry_backoff_is_due(run: Run, now_ms: int) -> bool:
    """True unless the run waits in retry backoff whose ``retry_after_ms`` is still ahead."""
    metadata = _in_retry_backoff(run)
    if metadata is None or metadata.retry_after_ms is None:
        return True
    return metadata.retry_after_ms <= now_ms


def retry_backoff_remaining_ms(run: Run, now_ms: int) -> int | None:
    """Milliseconds until the retry is due (0 once due); ``None`` when not in retry backoff."""
    metadata = _in_retry_backoff(run)
    if metadata is None or metadata.retry_after_ms is None:
        return None
    return max(metadata.retry_after_ms - now_ms, 0)


def retry_resource_key(run: Run, node_id: str) -> str:
    return f"automation://{run.automation_id}/runs/{run.run_id}/nodes/{node_id}"


def retry_backoff_scheduler_metadata(
    run: Run,
    node_id: str,
    attempts: int,
    decision: RetryDecision,
    detail: str,
    now_ms: int,
) -> SchedulerMetadata | None:
    """The queue metadata for retrying ``node_id``; ``None`` when the decision has no backoff."""
    backoff_ms = decision.backoff_ms
    if backoff_ms is None:
        return None
    retry_after_ms = (
        decision.next_retry_at_ms if decision.next_retry_at_ms is not None else now_ms + backoff_ms
    )
    return new_scheduler_metadata(
        tenant_context=run.tenant_context,
        queue_reason=QueueReason.RETRY_BACKOFF,
        queued_at_ms=now_ms,
        resource_key=retry_resource_key(run, node_id),
        retry_node_id=node_id,
        retry_attempt=attempts + 1,
        retry_backoff_ms=backoff_ms,
        retry_after_ms=retry_after_ms,
        retry_reason=truncate_text(detail, RETRY_REASON_MAX_BYTES),
    )


def can_queue_for_retry_backoff(run: Run, expected_execution_claim_epoch: int) -> bool:
    """Only a running run still under the claim that decided the retry may be queued."""
    return (
        run.status == RunStatus.RUNNING
        and run.execution_claim_epoch == expected_execution_claim_epoch
    )


def queue_run_for_retry_backoff(
    run: Run,
    node_id: str,
    attempts: int,
    max_attempts: int,
    decision: RetryDecision,
    detail: str,
    expected_execution_claim_epoch: int,
    now_ms: int,
) -> SchedulerMetadata | None:
    """Put a running run back in the queue until its node's retry is due, in place.

    This is the mutation the server applies inside its update rule; call it through
    :func:`apply_retry_backoff` (or as the ``mutate`` of ``apply_run_update``) so the
    scheduler follows. Returns the metadata, or ``None`` when nothing was changed.
    """
    if not can_queue_for_retry_backoff(run, expected_execution_claim_epoch):
        return None
    metadata = retry_backoff_scheduler_metadata(run, node_id, attempts, decision, detail, now_ms)
    if metadata is None:
        return None
    backoff_ms = metadata.retry_backoff_ms or 0
    retry_after_ms = (
        metadata.retry_after_ms if metadata.retry_after_ms is not None else metadata.queued_at_ms
    )
    next_attempt = attempts + 1
    run.status = RunStatus.QUEUED
    run.scheduler = metadata
    run.finished_at_ms = None
    run.stop_kind = None
    run.stop_reason = None
    run.pause_reason = None
    run.resume_reason = "retry_backoff_scheduled"
    run.active_session_ids.clear()
    run.active_instance_ids.clear()
    run.detail = (
        f"retrying node `{node_id}` after transient provider failure; queued for retry in "
        f"{backoff_ms} ms before attempt {next_attempt}/{max_attempts}: {detail}"
    )
    record_lifecycle_event(
        run,
        "node_retry_backoff_scheduled",
        f"node `{node_id}` retry scheduled after {backoff_ms} ms",
        None,
        {
            "node_id": node_id,
            "attempt": attempts,
            "next_attempt": next_attempt,
            "max_attempts": max_attempts,
            "backoff_ms": backoff_ms,
            "retry_after_ms": retry_after_ms,
            "reason": detail,
            "retry_decision": decision.as_json(),
        },
        now_ms=now_ms,
    )
    return metadata


def apply_retry_backoff(
    run: Run,
    node_id: str,
    attempts: int,
    max_attempts: int,
    decision: RetryDecision,
    detail: str,
    expected_execution_claim_epoch: int,
    *,
    now_ms: int,
    scheduler: AutomationScheduler | None = None,
) -> SchedulerMetadata | None:
    """:func:`queue_run_for_retry_backoff` through the update rule; a refusal changes nothing."""
    if not can_queue_for_retry_backoff(run, expected_execution_claim_epoch):
        return None
    if decision.backoff_ms is None:
        return None
    queued: list[SchedulerMetadata | None] = []

    def mutate(target: Run) -> None:
        queued.append(
            queue_run_for_retry_backoff(
                target,
                node_id,
                attempts,
                max_attempts,
                decision,
                detail,
                expected_execution_claim_epoch,
                now_ms,
            )
        )

    apply_run_update(run, mutate, now_ms=now_ms, scheduler=scheduler)
    return queued[0]
