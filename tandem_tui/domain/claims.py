"""Execution claims and leases on queued runs (server seed 003, ``automation_v2_run_claims``).

An executor claims the oldest queued run whose retry backoff is due: the run becomes
``running`` under a new claim with a lease. A claim whose lease expired before the run
showed any progress is abandoned: the run is requeued so another executor can take it.
Claim bookkeeping events themselves are not progress.

Left out on purpose: the server also fails a claimed run whose automation needs a
runtime context partition it cannot compute, and holds a run whose agent reached its
weekly spend cap. Both need server state (automation registry, spend ledger) that a
runs file does not carry, so here a claim always proceeds once the run is queued and due.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from tandem_tui.domain import events
from tandem_tui.domain.lifecycle import (
    apply_run_update,
    is_bookkeeping_event,
    record_lifecycle_event,
)
from tandem_tui.domain.models import ExecutionClaim, Run, RunStatus, dump_model
from tandem_tui.domain.retry import retry_backoff_is_due
from tandem_tui.domain.scheduler import AutomationScheduler

DEFAULT_CLAIM_LEASE_MS = 30 * 60 * 1000
MIN_CLAIM_LEASE_MS = 5 * 1000
MAX_CLAIM_LEASE_MS = 6 * 60 * 60 * 1000
CLAIM_LEASE_ENV = "TANDEM_AUTOMATION_RUN_CLAIM_LEASE_MS"
CLAIMANT_ID_ENV = "TANDEM_AUTOMATION_RUN_CLAIMANT_ID"

ABANDONED_CLAIM_DETAIL = (
    "automation run requeued after execution claim lease expired before work began"
)

#: What Rust's ``u64::from_str`` accepts: digits, with an optional leading ``+``.
_U64_TEXT = re.compile(r"\+?[0-9]+")

Runs = Mapping[str, Run] | Iterable[Run]


def _parse_u64(raw: str | None) -> int | None:
    if raw is None or not _U64_TEXT.fullmatch(raw):
        return None
    return int(raw)


def claim_lease_ms(env: Mapping[str, str]) -> int:
    """Lease length: the env value when a positive integer, else 30 min; clamped 5 s .. 6 h."""
    value = _parse_u64(env.get(CLAIM_LEASE_ENV))
    if not value:
        value = DEFAULT_CLAIM_LEASE_MS
    return min(max(value, MIN_CLAIM_LEASE_MS), MAX_CLAIM_LEASE_MS)


def claimant_id(env: Mapping[str, str], pid: int | None = None) -> str:
    """Who claims: ``TANDEM_AUTOMATION_RUN_CLAIMANT_ID`` (trimmed), else the server's form."""
    configured = (env.get(CLAIMANT_ID_ENV) or "").strip()
    if configured:
        return configured
    return f"tandem-server:automation-v2-executor:{os.getpid() if pid is None else pid}"


#: The environment when a caller passes none: every setting at its default.
NO_ENV: Mapping[str, str] = MappingProxyType({})


def _iter_runs(runs: Runs) -> Iterable[Run]:
    return runs.values() if isinstance(runs, Mapping) else runs


def claimable_queued_run_id(runs: Runs, now_ms: int) -> str | None:
    """The oldest queued run whose retry backoff is due (ties: smallest run id)."""
    candidates = [
        run
        for run in _iter_runs(runs)
        if run.status == RunStatus.QUEUED and retry_backoff_is_due(run, now_ms)
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda run: (run.created_at_ms, run.run_id)).run_id


def run_has_lifecycle_progress_since_claim(run: Run, claim: ExecutionClaim) -> bool:
    """Any real (non-bookkeeping) event recorded at or after the claim."""
    return any(
        record.recorded_at_ms >= claim.claimed_at_ms and not is_bookkeeping_event(record.event)
        for record in run.checkpoint.lifecycle_history
    )


def _has_launch_claim_without_progress(run: Run, now_ms: int, *, expired: bool) -> bool:
    if run.status != RunStatus.RUNNING or run.active_session_ids or run.active_instance_ids:
        return False
    claim = run.execution_claim
    if claim is None:
        return False
    return claim.is_expired(now_ms) == expired and not run_has_lifecycle_progress_since_claim(
        run, claim
    )


def run_has_expired_launch_claim_without_progress(run: Run, now_ms: int) -> bool:
    """A running run, idle (no sessions or instances), whose claim lapsed before any progress."""
    return _has_launch_claim_without_progress(run, now_ms, expired=True)


def run_has_unexpired_launch_claim_without_progress(run: Run, now_ms: int) -> bool:
    """A freshly claimed, idle running run whose lease is still live."""
    return _has_launch_claim_without_progress(run, now_ms, expired=False)


def claim_run(
    run: Run,
    *,
    now_ms: int,
    scheduler: AutomationScheduler | None = None,
    env: Mapping[str, str] = NO_ENV,
    claim_id: str | None = None,
    pid: int | None = None,
) -> ExecutionClaim | None:
    """Claim a queued, due run for execution; ``None`` (and no change) otherwise."""
    if run.status != RunStatus.QUEUED or not retry_backoff_is_due(run, now_ms):
        return None
    epoch = max(run.execution_claim_epoch + 1, 1)
    claim = ExecutionClaim(
        claim_id=claim_id or f"run-claim-{uuid.uuid4()}",
        claimant_id=claimant_id(env, pid),
        claimed_at_ms=now_ms,
        lease_expires_at_ms=now_ms + claim_lease_ms(env),
        lease_epoch=epoch,
    )

    def mutate(target: Run) -> None:
        target.status = RunStatus.RUNNING
        if target.started_at_ms is None:
            target.started_at_ms = now_ms
        target.scheduler = None
        target.execution_claim_epoch = epoch
        target.execution_claim = claim
        record_lifecycle_event(
            target,
            events.RUN_EXECUTION_CLAIMED,
            f"automation run claimed by {claim.claimant_id}",
            None,
            {"claim": dump_model(claim)},
            now_ms=now_ms,
        )

    apply_run_update(run, mutate, now_ms=now_ms, scheduler=scheduler)
    return claim


def reclaim_abandoned_leases(
    runs: Runs, *, now_ms: int, scheduler: AutomationScheduler | None = None
) -> list[str]:
    """Requeue every run whose claim expired before it made progress; returns their ids.

    The update rule drops the expired claim from the record as the run leaves
    ``running`` (v0.6.5+); the requeue event carries a copy.
    """
    reclaimed: list[str] = []
    for run in list(_iter_runs(runs)):
        if not run_has_expired_launch_claim_without_progress(run, now_ms):
            continue
        claim_json: dict[str, Any] | None = (
            dump_model(run.execution_claim) if run.execution_claim is not None else None
        )

        def mutate(target: Run, claim_json: dict[str, Any] | None = claim_json) -> None:
            target.status = RunStatus.QUEUED
            target.detail = ABANDONED_CLAIM_DETAIL
            target.resume_reason = "abandoned_execution_claim"
            target.stop_kind = None
            target.stop_reason = None
            target.active_session_ids.clear()
            target.latest_session_id = None
            target.active_instance_ids.clear()
            record_lifecycle_event(
                target,
                events.RUN_EXECUTION_CLAIM_EXPIRED_REQUEUED,
                ABANDONED_CLAIM_DETAIL,
                None,
                {"previous_status": "running", "claim": claim_json},
                now_ms=now_ms,
            )

        apply_run_update(run, mutate, now_ms=now_ms, scheduler=scheduler)
        reclaimed.append(run.run_id)
    return reclaimed


def claim_next_queued_run(
    runs: Mapping[str, Run],
    *,
    now_ms: int,
    scheduler: AutomationScheduler | None = None,
    env: Mapping[str, str] = NO_ENV,
    claim_id: str | None = None,
    pid: int | None = None,
) -> Run | None:
    """Claim the next claimable run; when there is none, first reclaim abandoned leases."""
    run_id = claimable_queued_run_id(runs, now_ms)
    if run_id is None:
        if not reclaim_abandoned_leases(runs, now_ms=now_ms, scheduler=scheduler):
            return None
        run_id = claimable_queued_run_id(runs, now_ms)
        if run_id is None:
            return None
    run = runs[run_id]
    claim = claim_run(
        run, now_ms=now_ms, scheduler=scheduler, env=env, claim_id=claim_id, pid=pid
    )
    return run if claim is not None else None
