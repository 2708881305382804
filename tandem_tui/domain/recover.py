"""The server's recover handler, the pure half: which nodes a recover resets, and why not.

Ported from ``automations_v2_run_recover`` (tandem-server v0.7.2,
``http/routines_automations_parts/part04.rs``) and its helpers in ``part01.rs``
(``automation_v2_blocked_node_ids``, ``automation_v2_failed_node_ids``,
``automation_v2_recoverable_failure_node_id``, the run-level completion fallback) and in
``app/state/automation/logic_parts/part01.rs`` (``collect_automation_descendants``,
``refresh_automation_runtime_state``). The automation is the run's
``automation_snapshot`` (offline there is no live definition to prefer).
No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tandem_tui.domain import events
from tandem_tui.domain.lifecycle import record_lifecycle_event
from tandem_tui.domain.models import Run, RunStatus

#: The server's refusals, code and message as its 409 body carries them.
NOT_RECOVERABLE = ("AUTOMATION_V2_RUN_NOT_RECOVERABLE", "Run is not recoverable")
FAILURE_CONTEXT_MISSING = ("AUTOMATION_V2_RUN_FAILURE_CONTEXT_MISSING", "Run has no recoverable failed node")
BLOCKED_CONTEXT_MISSING = ("AUTOMATION_V2_RUN_BLOCKED_CONTEXT_MISSING", "Run has no recoverable blocked node")
AUTOMATION_NOT_FOUND = ("AUTOMATION_V2_NOT_FOUND", "Automation not found")

RUNTIME_CONTEXT_MISSING_DETAIL = "runtime context partition missing for automation run"
STALE_NO_PROVIDER_ACTIVITY = "stale_no_provider_activity"
DEFAULT_REASON = "recovered by operator"
DEFAULT_REASON_FROM_PAUSE = "recovered from paused state by operator"

_RECEIPT_PREFIXES = (
    "automation run missing successful external action receipt for outbound node `",
    "automation run missing successful email delivery receipt for node `",
)
_RUN_LEVEL_ASSERTION_PREFIXES = (
    "automation run deliverable `",
    "automation run missing required deliverable `",
)


@dataclass(frozen=True)
class FlowNode:
    node_id: str
    depends_on: tuple[str, ...]
    metadata: Any


@dataclass(frozen=True)
class RecoverPlan:
    """What an allowed recover does: the nodes it resets and the event it records."""

    reset_nodes: frozenset[str]
    from_pause: bool
    runtime_context_failure: bool
    #: The automation's flow (``None``: the run carries no snapshot; nothing to refresh).
    flow: tuple[FlowNode, ...] | None
    mission: Any

    @property
    def event(self) -> str:
        if not self.reset_nodes and self.from_pause:
            return events.RUN_RECOVERED_FROM_PAUSE
        return events.RUN_RECOVERED

    @property
    def default_reason(self) -> str:
        return DEFAULT_REASON_FROM_PAUSE if self.from_pause else DEFAULT_REASON


def refusal_text(error: tuple[str, str], why: str) -> str:
    code, message = error
    return f"{message} ({code}): {why}"


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def flow_of(run: Run) -> tuple[FlowNode, ...] | None:
    """The flow nodes of the run's automation snapshot, or ``None`` without a snapshot."""
    snapshot = run.automation_snapshot
    if not isinstance(snapshot, dict):
        return None
    flow = snapshot.get("flow")
    nodes = flow.get("nodes") if isinstance(flow, dict) else None
    out: list[FlowNode] = []
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict) or not isinstance(node.get("node_id"), str):
            continue
        deps = node.get("depends_on")
        out.append(
            FlowNode(
                node_id=node["node_id"],
                depends_on=tuple(d for d in deps if isinstance(d, str)) if isinstance(deps, list) else (),
                metadata=node.get("metadata"),
            )
        )
    return tuple(out)


def node_output_status(output: Any) -> str:
    """``output.status``, else ``output.content.status``; trimmed, ASCII-lowercased."""
    if not isinstance(output, dict):
        return ""
    direct = _str(output.get("status")).strip()
    if direct:
        return direct.lower()
    content = output.get("content")
    return _str(content.get("status") if isinstance(content, dict) else None).strip().lower()


def blocked_node_ids(run: Run) -> list[str]:
    """``checkpoint.blocked_nodes`` plus every node output whose status is ``blocked``; sorted."""
    checkpoint = run.checkpoint
    ids = set(checkpoint.blocked_nodes)
    ids.update(node_id for node_id, output in checkpoint.node_outputs.items() if node_output_status(output) == "blocked")
    return sorted(ids)


def failed_node_ids(run: Run) -> list[str]:
    """Node outputs whose status is failed/verify_failed or failure kind verification/run failed."""
    failed = []
    for node_id, output in run.checkpoint.node_outputs.items():
        if not isinstance(output, dict):
            continue
        status = _str(output.get("status")).strip().lower()
        kind = _str(output.get("failure_kind")).strip().lower()
        if status in ("failed", "verify_failed") or kind in ("verification_failed", "run_failed"):
            failed.append(node_id)
    return sorted(set(failed))


def recoverable_failure_node_id(run: Run) -> str | None:
    """The node a failed run failed at, as the server finds it (first rule that applies)."""
    if run.checkpoint.last_failure is not None:
        return run.checkpoint.last_failure.node_id
    failed = failed_node_ids(run)
    if failed:
        return failed[0]
    detail = run.detail
    if detail is not None:
        for prefix in _RECEIPT_PREFIXES:
            if detail.startswith(prefix):
                node_id, sep, _ = detail[len(prefix):].partition("`")
                if sep and node_id.strip():
                    return node_id.strip()
    if run.status == RunStatus.FAILED and detail == RUNTIME_CONTEXT_MISSING_DETAIL:
        return "runtime_context"
    return None


def _run_level_completion_recovery_node_ids(flow: tuple[FlowNode, ...]) -> set[str]:
    # The server first takes the nodes that can write the automation's declared output
    # targets (a heuristic over publish specs and objectives, not ported); it falls back
    # to the leaf nodes, which is what is taken here.
    depended_on = {dep for node in flow for dep in node.depends_on}
    return {node.node_id for node in flow if node.node_id not in depended_on}


def collect_descendants(flow: tuple[FlowNode, ...], roots: set[str]) -> set[str]:
    """``roots`` and every node that depends on one of them, transitively."""
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for node in flow:
            if node.node_id not in found and any(dep in found for dep in node.depends_on):
                found.add(node.node_id)
                changed = True
    return found


def recover_plan(run: Run) -> RecoverPlan | str:
    """The server's recover decision for ``run``: the plan, or its refusal (code and message)."""
    status = run.status
    blocked = blocked_node_ids(run)
    blocked_recoverable = status == RunStatus.BLOCKED or (status == RunStatus.COMPLETED and bool(blocked))
    if status not in (RunStatus.FAILED, RunStatus.PAUSED) and not blocked_recoverable:
        why = f"it is {status.value}"
        if status == RunStatus.COMPLETED:
            why += " with no blocked node"
        return refusal_text(NOT_RECOVERABLE, why)
    flow = flow_of(run)
    snapshot = run.automation_snapshot if isinstance(run.automation_snapshot, dict) else {}
    mission = snapshot.get("metadata", {}).get("mission") if isinstance(snapshot.get("metadata"), dict) else None
    if status != RunStatus.PAUSED and flow is None:
        return refusal_text(
            AUTOMATION_NOT_FOUND,
            "the run carries no automation_snapshot, so the flow to reset is unknown offline "
            "(the engine would use its live definition)",
        )
    roots: set[str] = set()
    if status == RunStatus.FAILED:
        roots = set(blocked)
        failure_node = recoverable_failure_node_id(run)
        if failure_node is not None:
            roots.add(failure_node)
        if not roots and run.detail is not None and run.detail.startswith(_RUN_LEVEL_ASSERTION_PREFIXES):
            roots = _run_level_completion_recovery_node_ids(flow or ())
        if not roots:
            return refusal_text(FAILURE_CONTEXT_MISSING, "it failed without a last failure or a failed node")
    elif blocked_recoverable:
        if not blocked:
            return refusal_text(BLOCKED_CONTEXT_MISSING, "it is blocked without a blocked node")
        roots = set(blocked)
    reset: set[str] = set()
    if roots and flow is not None:
        flow_ids = {node.node_id for node in flow}
        reset = {node_id for node_id in collect_descendants(flow, roots) if node_id in flow_ids}
    return RecoverPlan(
        reset_nodes=frozenset(reset),
        from_pause=status == RunStatus.PAUSED,
        runtime_context_failure=status == RunStatus.FAILED and run.detail == RUNTIME_CONTEXT_MISSING_DETAIL,
        flow=flow,
        mission=mission,
    )


def apply_recover(run: Run, plan: RecoverPlan, reason: str, metadata: dict[str, Any], now_ms: int) -> None:
    """The server's recover update closure, in place (run through the update rule by the caller)."""
    run.status = RunStatus.QUEUED
    run.finished_at_ms = None
    run.detail = reason
    run.resume_reason = reason
    run.stop_kind = None
    run.stop_reason = None
    checkpoint = run.checkpoint
    checkpoint.awaiting_gate = None
    run.active_session_ids.clear()
    run.latest_session_id = None
    run.active_instance_ids.clear()
    reset = plan.reset_nodes
    if run.pause_reason == STALE_NO_PROVIDER_ACTIVITY and not reset:
        for node_id in list(checkpoint.pending_nodes):
            checkpoint.node_outputs.pop(node_id, None)
            checkpoint.node_attempts.pop(node_id, None)
    if reset:
        for node_id in reset:
            checkpoint.node_outputs.pop(node_id, None)
            checkpoint.node_attempts.pop(node_id, None)
        checkpoint.blocked_nodes = [n for n in checkpoint.blocked_nodes if n not in reset]
        checkpoint.completed_nodes = [n for n in checkpoint.completed_nodes if n not in reset]
        checkpoint.pending_nodes = sorted(set(checkpoint.pending_nodes) | reset)
        checkpoint.last_failure = None
    elif plan.runtime_context_failure:
        checkpoint.last_failure = None
    record_lifecycle_event(run, plan.event, reason, None, metadata, now_ms=now_ms)
    if plan.flow is not None:
        refresh_runtime_state(run, plan.flow, plan.mission, now_ms)


# --- refresh_automation_runtime_state ------------------------------------------------


def _phase_id(node: FlowNode) -> str | None:
    metadata = node.metadata
    builder = metadata.get("builder") if isinstance(metadata, dict) else None
    value = builder.get("phase_id") if isinstance(builder, dict) else None
    return value if isinstance(value, str) else None


def _phases(mission: Any) -> list[Any]:
    phases = mission.get("phases") if isinstance(mission, dict) else None
    return phases if isinstance(phases, list) else []


def _phase_ranks(mission: Any) -> dict[str, int]:
    ranks: dict[str, int] = {}
    for index, phase in enumerate(_phases(mission)):
        if isinstance(phase, dict) and isinstance(phase.get("phase_id"), str):
            ranks[phase["phase_id"]] = index
    return ranks


def _phase_modes(mission: Any) -> dict[str, str]:
    modes: dict[str, str] = {}
    for phase in _phases(mission):
        if not isinstance(phase, dict) or not isinstance(phase.get("phase_id"), str):
            continue
        phase_id = phase["phase_id"].strip()
        if not phase_id:
            continue
        mode = _str(phase.get("execution_mode")).strip()
        modes[phase_id] = mode or "soft"
    return modes


def current_open_phase(run: Run, flow: tuple[FlowNode, ...], mission: Any) -> tuple[str, int, str] | None:
    """The lowest-ranked phase that still has an uncompleted node: (id, rank, mode)."""
    ranks = _phase_ranks(mission)
    if not ranks:
        return None
    completed = set(run.checkpoint.completed_nodes)
    best: tuple[str, int] | None = None
    for node in flow:
        if node.node_id in completed:
            continue
        phase_id = _phase_id(node)
        if phase_id is None or phase_id not in ranks:
            continue
        if best is None or ranks[phase_id] < best[1]:
            best = (phase_id, ranks[phase_id])
    if best is None:
        return None
    return best[0], best[1], _phase_modes(mission).get(best[0], "soft")


def refresh_runtime_state(run: Run, flow: tuple[FlowNode, ...], mission: Any, now_ms: int) -> None:
    """Recompute ``checkpoint.blocked_nodes`` and record a newly opened phase, as the server does.

    A pending node is blocked when a dependency is not completed, or when the open phase
    is a barrier and the node's phase ranks above it. (The server also blocks nodes whose
    plan-package routine dependencies are incomplete; not ported.)
    """
    checkpoint = run.checkpoint
    completed = set(checkpoint.completed_nodes)
    pending = set(checkpoint.pending_nodes)
    ranks = _phase_ranks(mission)
    open_phase = current_open_phase(run, flow, mission)
    blocked: list[str] = []
    for node in flow:
        if node.node_id not in pending:
            continue
        if any(dep not in completed for dep in node.depends_on):
            blocked.append(node.node_id)
            continue
        if open_phase is None or open_phase[2] != "barrier":
            continue
        phase_id = _phase_id(node)
        if phase_id is not None and phase_id in ranks and ranks[phase_id] > open_phase[1]:
            blocked.append(node.node_id)
    checkpoint.blocked_nodes = blocked
    if open_phase is None:
        return
    phase_id, rank, mode = open_phase
    last = next((r for r in reversed(checkpoint.lifecycle_history) if r.event == events.PHASE_OPENED), None)
    last_id = last.metadata.get("phase_id") if last is not None and isinstance(last.metadata, dict) else None
    if last_id == phase_id:
        return
    record_lifecycle_event(
        run,
        events.PHASE_OPENED,
        f"phase `{phase_id}` is now open",
        None,
        {"phase_id": phase_id, "phase_rank": rank, "execution_mode": mode},
        now_ms=now_ms,
    )
