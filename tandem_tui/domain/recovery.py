"""Startup recovery, stale-run auto-resume and shutdown (server seed 004).

After a restart nothing is executing any more: running runs are failed (stop kind
``server_restart``), pausing runs settle to paused, and paused or awaiting-approval runs
hand the node artifacts they already validated to the scheduler's registry so a
resumed run does not redo them. A run the stale reaper paused is queued again
automatically when it was reaped recently, has a node waiting for repair with attempts
left, and has not been auto-resumed ``TANDEM_STALE_AUTO_RESUME_MAX_ATTEMPTS`` (default 2)
times already. On shutdown running runs fail with
stop kind ``shutdown``.

Each sweep changes runs only through the update rule and returns how many runs it
changed, as the server does. Where the server looks an automation up in its registry
before falling back to the run's ``automation_snapshot``, only the snapshot exists here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from tandem_tui.domain import events
from tandem_tui.domain.lifecycle import apply_run_update, record_lifecycle_event
from tandem_tui.domain.models import Run, RunStatus, StopKind
from tandem_tui.domain.scheduler import AutomationScheduler, ValidatedArtifact

DEFAULT_STALE_AUTO_RESUME_WINDOW_MS = 20 * 60 * 1000
STALE_AUTO_RESUME_WINDOW_ENV = "TANDEM_STALE_AUTO_RESUME_WINDOW_MS"
DISABLE_STALE_AUTO_RESUME_ENV = "TANDEM_DISABLE_STALE_AUTO_RESUME"
#: ``TANDEM_STALE_AUTO_RESUME_MAX_ATTEMPTS`` when unset, zero or not an integer.
MAX_AUTO_RESUMES = 2
STALE_AUTO_RESUME_MAX_ATTEMPTS_ENV = "TANDEM_STALE_AUTO_RESUME_MAX_ATTEMPTS"
#: The server's default when a node's retry policy names no ``max_attempts``...
DEFAULT_NODE_MAX_ATTEMPTS = 3
#: ...and for research briefs and nodes that must call tools.
TOOL_OR_BRIEF_NODE_MAX_ATTEMPTS = 5
MAX_NODE_ATTEMPTS_CAP = 10

STALE_REAP_EVENT = events.RUN_PAUSED_STALE_NO_PROVIDER_ACTIVITY
RESTART_DETAIL = "automation run interrupted by server restart"
PAUSING_SETTLED_DETAIL = "automation run settled to paused after server restart"
SHUTDOWN_DETAIL = "automation run stopped during server shutdown"
VALIDATED_ARTIFACT_STATUSES = frozenset({"written", "reused_valid"})

_U64_TEXT = re.compile(r"\+?[0-9]+")

Runs = Mapping[str, Run] | Iterable[Run]


def _iter_runs(runs: Runs) -> Iterator[Run]:
    values = runs.values() if isinstance(runs, Mapping) else runs
    return iter(list(values))


def stale_auto_resume_window_ms(env: Mapping[str, str]) -> int:
    """``TANDEM_STALE_AUTO_RESUME_WINDOW_MS`` when a positive integer, else 20 minutes."""
    raw = env.get(STALE_AUTO_RESUME_WINDOW_ENV)
    if raw is not None and _U64_TEXT.fullmatch(raw) and int(raw) > 0:
        return int(raw)
    return DEFAULT_STALE_AUTO_RESUME_WINDOW_MS


def stale_auto_resume_max_attempts(env: Mapping[str, str]) -> int:
    """``TANDEM_STALE_AUTO_RESUME_MAX_ATTEMPTS`` when a positive integer, else 2.

    Parsed as the server parses a ``usize`` (no trimming, a leading ``+`` allowed).
    """
    raw = env.get(STALE_AUTO_RESUME_MAX_ATTEMPTS_ENV)
    if raw is not None and _U64_TEXT.fullmatch(raw) and 0 < int(raw) <= 2**64 - 1:
        return int(raw)
    return MAX_AUTO_RESUMES


def latest_stale_reap_recorded_at_ms(run: Run) -> int | None:
    """When the stale reaper last stopped the run, from its lifecycle history."""
    for record in reversed(run.checkpoint.lifecycle_history):
        if record.event == STALE_REAP_EVENT or record.stop_kind == StopKind.STALE_REAPED:
            return record.recorded_at_ms
    return None


def stale_reap_is_within_auto_resume_window(
    now_ms: int, stale_reaped_at_ms: int, auto_resume_window_ms: int
) -> bool:
    return max(now_ms - stale_reaped_at_ms, 0) <= auto_resume_window_ms


def automation_output_validated_artifact(output: Any) -> ValidatedArtifact | None:
    """The artifact a node output proved valid: ``attempt_evidence.artifact`` with status
    ``written`` or ``reused_valid`` and string ``path`` and ``content_digest``."""
    artifact = _get(_get(output, "attempt_evidence"), "artifact")
    if _get(artifact, "status") not in VALIDATED_ARTIFACT_STATUSES:
        return None
    path, digest = _get(artifact, "path"), _get(artifact, "content_digest")
    if not isinstance(path, str) or not isinstance(digest, str):
        return None
    return ValidatedArtifact(path=path, content_digest=digest)


def _validator_kind(node: Any) -> str:
    """The server's ``automation_output_validator_kind``, from the node's output contract."""
    contract = _get(node, "output_contract")
    validator = _get(contract, "validator")
    if isinstance(validator, str):
        return validator
    kind = _get(contract, "kind")
    kind = kind.strip().lower() if isinstance(kind, str) else ""
    return {"brief": "research_brief", "review": "review_decision", "structured_json": "structured_json"}.get(
        kind, "generic_artifact"
    )


def _required_tools(node: Any) -> list[str]:
    tools = _get(_get(_get(node, "output_contract"), "enforcement"), "required_tools")
    return [t for t in tools if isinstance(t, str) and t.strip()] if isinstance(tools, list) else []


def default_node_max_attempts(node: Any) -> int:
    """3, or 5 for a research brief or a node that must call tools (a standup update: 3)."""
    kind = _validator_kind(node)
    if kind == "standup_update":
        return DEFAULT_NODE_MAX_ATTEMPTS
    if kind == "research_brief" or _required_tools(node):
        return TOOL_OR_BRIEF_NODE_MAX_ATTEMPTS
    return DEFAULT_NODE_MAX_ATTEMPTS


def node_max_attempts(node: Any) -> int:
    """The server's ``automation_node_max_attempts`` (v0.6.5+ ``RetryPolicy``).

    ``retry_policy.max_attempts``, else ``maxAttempts`` (the first key present wins, even
    when it is not an unsigned integer), cut to u32 as Rust's ``as u32`` does, then
    clamped to 1..10; without one, :func:`default_node_max_attempts`. Required tools are
    read from ``output_contract.enforcement.required_tools`` only (the server also infers
    them from legacy hints and the objective's wording).
    """
    policy = _get(node, "retry_policy")
    if isinstance(policy, dict):
        key = next((k for k in ("max_attempts", "maxAttempts") if k in policy), None)
        value = policy.get(key) if key is not None else None
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**64 - 1:
            return min(max(value % 2**32, 1), MAX_NODE_ATTEMPTS_CAP)
    return default_node_max_attempts(node)


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _flow_nodes(automation: Any) -> list[dict[str, Any]]:
    nodes = _get(_get(automation, "flow"), "nodes")
    if not isinstance(nodes, list):
        return []
    return [node for node in nodes if isinstance(_get(node, "node_id"), str)]


def node_is_repairable(run: Run, node: dict[str, Any]) -> bool:
    """Not completed, its output asks for repair, and it has attempts left."""
    node_id = node["node_id"]
    checkpoint = run.checkpoint
    if node_id in checkpoint.completed_nodes or node_id not in checkpoint.node_outputs:
        return False
    status = _get(checkpoint.node_outputs[node_id], "status")
    if not isinstance(status, str) or status.lower() != "needs_repair":
        return False
    return checkpoint.node_attempts.get(node_id, 0) < node_max_attempts(node)


def has_repairable_nodes(run: Run) -> bool:
    return any(node_is_repairable(run, node) for node in _flow_nodes(run.automation_snapshot))


def auto_resume_count(run: Run) -> int:
    return sum(1 for record in run.checkpoint.lifecycle_history if record.event == events.RUN_AUTO_RESUMED)


def register_validated_artifacts(scheduler: AutomationScheduler, run: Run) -> int:
    """Record every validated node-output artifact of the run; returns how many."""
    registered = 0
    for node_id, output in run.checkpoint.node_outputs.items():
        artifact = automation_output_validated_artifact(output)
        if artifact is not None:
            scheduler.preexisting_registry.register_validated(run.run_id, node_id, artifact)
            registered += 1
    return registered


def recover_in_flight_runs(
    runs: Runs, *, now_ms: int, scheduler: AutomationScheduler | None = None
) -> int:
    """Startup: fail running runs, settle pausing ones, register validated artifacts.

    Returns how many runs changed status. (Paused and awaiting-approval runs hold no
    workspace lock, so the server's lock branch for them never applies.)
    """
    recovered = 0
    for run in _iter_runs(runs):
        if run.status == RunStatus.RUNNING:
            apply_run_update(run, _fail_for_restart(now_ms), now_ms=now_ms, scheduler=scheduler)
            recovered += 1
        elif run.status == RunStatus.PAUSING:
            apply_run_update(run, _settle_pausing(now_ms), now_ms=now_ms, scheduler=scheduler)
            recovered += 1
        elif run.status in (RunStatus.PAUSED, RunStatus.AWAITING_APPROVAL):
            if scheduler is not None:
                register_validated_artifacts(scheduler, run)
    return recovered


def _fail_for_restart(now_ms: int) -> Callable[[Run], None]:
    def fail(run: Run) -> None:
        run.status = RunStatus.FAILED
        run.detail = RESTART_DETAIL
        run.stop_kind = StopKind.SERVER_RESTART
        run.stop_reason = RESTART_DETAIL
        record_lifecycle_event(
            run, events.RUN_FAILED_SERVER_RESTART, RESTART_DETAIL, StopKind.SERVER_RESTART, now_ms=now_ms
        )

    return fail


def _settle_pausing(now_ms: int) -> Callable[[Run], None]:
    def settle(run: Run) -> None:
        run.status = RunStatus.PAUSED
        if run.pause_reason is None:
            run.pause_reason = PAUSING_SETTLED_DETAIL
        record_lifecycle_event(
            run, events.RUN_PAUSING_SETTLED_ON_RESTART, PAUSING_SETTLED_DETAIL, now_ms=now_ms
        )

    return settle


def auto_resume_stale_reaped_runs(
    runs: Runs,
    *,
    now_ms: int,
    env: Mapping[str, str],
    scheduler: AutomationScheduler | None = None,
) -> int:
    """Queue again stale-reaped paused runs that can still repair a node; returns how many."""
    if DISABLE_STALE_AUTO_RESUME_ENV in env:
        return 0
    window_ms = stale_auto_resume_window_ms(env)
    max_resumes = stale_auto_resume_max_attempts(env)
    resumed = 0
    for run in _iter_runs(runs):
        if run.status != RunStatus.PAUSED or run.stop_kind != StopKind.STALE_REAPED:
            continue
        reaped_at_ms = latest_stale_reap_recorded_at_ms(run)
        if reaped_at_ms is None:
            continue
        if not stale_reap_is_within_auto_resume_window(now_ms, reaped_at_ms, window_ms):
            continue
        if auto_resume_count(run) >= max_resumes:
            continue
        if not has_repairable_nodes(run):
            continue

        def resume(target: Run, reaped_at_ms: int = reaped_at_ms) -> None:
            target.status = RunStatus.QUEUED
            target.pause_reason = None
            target.detail = None
            target.stop_kind = None
            target.stop_reason = None
            record_lifecycle_event(
                target,
                events.RUN_AUTO_RESUMED,
                "auto_resume_after_stale_reap",
                None,
                {"auto_resume_window_ms": window_ms, "stale_reaped_at_ms": reaped_at_ms},
                now_ms=now_ms,
            )

        apply_run_update(run, resume, now_ms=now_ms, scheduler=scheduler)
        resumed += 1
    return resumed


def fail_running_runs_for_shutdown(
    runs: Runs, *, now_ms: int, scheduler: AutomationScheduler | None = None
) -> int:
    """Shutdown: every running run fails with stop kind ``shutdown``; returns how many."""
    failed = 0
    for run in _iter_runs(runs):
        if run.status != RunStatus.RUNNING:
            continue

        def stop(target: Run) -> None:
            target.status = RunStatus.FAILED
            target.detail = SHUTDOWN_DETAIL
            target.stop_kind = StopKind.SHUTDOWN
            target.stop_reason = SHUTDOWN_DETAIL
            record_lifecycle_event(
                target, events.RUN_FAILED_SHUTDOWN, SHUTDOWN_DETAIL, StopKind.SHUTDOWN, now_ms=now_ms
            )

        apply_run_update(run, stop, now_ms=now_ms, scheduler=scheduler)
        failed += 1
    return failed
