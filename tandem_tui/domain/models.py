"""The Tandem automation run record, mirrored from the server's `AutomationV2RunRecord`.

Every model keeps the fields it does not know (``extra="allow"``) and is written back with
:func:`dump_run`, which emits exactly the fields that were read or deliberately set. A
record read and written back is therefore JSON-equal to its input, apart from what an
action changed on purpose: unknown fields survive, absent optional fields stay absent.

Integers the server stores as ``u64``/``u32`` are strict: a float, a string, a negative
number or one beyond the type's range is a parse error (the store then recovers the entry
as a corrupt checkpoint, like the server), never a silent rewrite of the value.

:func:`parse_run_record` reads a record as the server's serde does: besides the types,
the fields serde requires (``trigger_type``, ``checkpoint``, a present tenant context's
ids) must be there, and the nested structs the server types (pending gate, gate
decisions, attempt verdicts, learning summary) must have their shape. The models keep
defaults for those so that code can still build a run in memory.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from tandem_tui.domain.core_validation import PydanticSerializationError

from tandem_tui.domain import serde_shape
from tandem_tui.domain.record_model import Check, Constraints, Factory, RecordModel, verdict_validator

#: A non-negative integer that must be an integer in the JSON, as serde's ``u64``.
U64 = Annotated[int, Constraints(ge=0, le=2**64 - 1, strict=True)]
#: serde's ``u32`` (node attempts, a retry attempt).
U32 = Annotated[int, Constraints(ge=0, le=2**32 - 1, strict=True)]
#: serde's ``f64``: any JSON number, never a string.
F64 = Annotated[float, Constraints(strict=True)]

#: The validation context under which models apply serde's required-field rules.
SERDE = {"serde": True}


def _shaped(spec: Any) -> Check:
    def check(value: Any) -> Any:
        serde_shape.check(value, spec)
        return value

    return Check(check)


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    BLOCKED = "blocked"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: ``trigger_type`` of runs the server rebuilt from a context run at startup.
RECOVERED_CONTEXT_TRIGGER = "recovered_context_run"

TERMINAL_STATUSES: frozenset[RunStatus] = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.BLOCKED, RunStatus.CANCELLED}
)


class StopKind(StrEnum):
    CANCELLED = "cancelled"
    OPERATOR_STOPPED = "operator_stopped"
    GUARDRAIL_STOPPED = "guardrail_stopped"
    PANIC = "panic"
    SHUTDOWN = "shutdown"
    SERVER_RESTART = "server_restart"
    STALE_REAPED = "stale_reaped"


class QueueReason(StrEnum):
    CAPACITY = "capacity"
    WORKSPACE_LOCK = "workspace_lock"
    RATE_LIMIT = "rate_limit"
    RETRY_BACKOFF = "retry_backoff"


class ExecutionProfile(StrEnum):
    STRICT = "strict"
    GUIDED = "guided"
    YOLO = "yolo"


class TenantSource(StrEnum):
    LOCAL_IMPLICIT = "local_implicit"
    EXPLICIT = "explicit"


class LosslessModel(RecordModel):
    """Base for every record model: keeps unknown fields and writes back only what it read.

    A known field that was neither in the input nor assigned since is written only when
    its value differs from its default: an untouched record dumps to exactly its input,
    and a list that was absent but has since been appended to (a first lifecycle event)
    is written.
    """

    lossless = True

    def __setattr__(self, name: str, value: Any) -> None:
        # Setting a field that was never read to the value it already has (clearing an
        # absent optional) must not make it "set", or it would appear on disk as null.
        if (
            name not in self.__pydantic_fields_set__
            and name in type(self).model_fields
            and getattr(self, name) == value
        ):
            return
        super().__setattr__(name, value)


class TenantContext(LosslessModel):
    #: serde's "missing field" for the ids the model defaults only for in-memory use.
    required_by_serde = ("org_id", "workspace_id")

    org_id: str = "local"
    workspace_id: str = "local"
    deployment_id: str | None = None
    actor_id: str | None = None
    source: TenantSource = TenantSource.LOCAL_IMPLICIT

    @classmethod
    def local_implicit(cls) -> TenantContext:
        return cls(org_id="local", workspace_id="local", source=TenantSource.LOCAL_IMPLICIT)

    @classmethod
    def explicit(cls, org_id: str, workspace_id: str, actor_id: str | None = None) -> TenantContext:
        return cls(
            org_id=org_id, workspace_id=workspace_id, actor_id=actor_id, source=TenantSource.EXPLICIT
        )

    def scope_key(self) -> tuple[str, str, str | None]:
        """The identity a tenant-scoped limit is keyed by."""
        return (self.org_id, self.workspace_id, self.deployment_id)


class SchedulerMetadata(LosslessModel):
    tenant_context: TenantContext = Factory(TenantContext.local_implicit)
    queue_reason: QueueReason | None = None
    resource_key: str | None = None
    rate_limited_provider: str | None = None
    queued_at_ms: U64 = 0
    retry_node_id: str | None = None
    retry_attempt: U32 | None = None
    retry_backoff_ms: U64 | None = None
    retry_after_ms: U64 | None = None
    retry_reason: str | None = None


class ExecutionClaim(LosslessModel):
    claim_id: str
    claimant_id: str
    claimed_at_ms: U64
    lease_expires_at_ms: U64
    lease_epoch: U64

    def is_expired(self, now_ms: int) -> bool:
        return self.lease_expires_at_ms <= now_ms


class LifecycleRecord(LosslessModel):
    event: str
    recorded_at_ms: U64
    reason: str | None = None
    stop_kind: StopKind | None = None
    metadata: Any = None


class FailureRecord(LosslessModel):
    node_id: str
    reason: str
    failed_at_ms: U64
    failure_kind: str | None = None
    metadata: Any = None


class Checkpoint(LosslessModel):
    completed_nodes: list[str] = Factory(list)
    pending_nodes: list[str] = Factory(list)
    node_outputs: dict[str, Any] = Factory(dict)
    node_attempts: dict[str, U32] = Factory(dict)
    node_attempt_verdicts: dict[str, list[Any]] = Factory(dict)
    blocked_nodes: list[str] = Factory(list)
    awaiting_gate: Annotated[Any, _shaped(serde_shape.OPTIONAL_PENDING_GATE)] = None
    gate_history: list[Annotated[Any, _shaped(serde_shape.GATE_DECISION)]] = Factory(list)
    lifecycle_history: list[LifecycleRecord] = Factory(list)
    last_failure: FailureRecord | None = None


class Run(LosslessModel):
    """One automation run: the server's ``AutomationV2RunRecord``."""

    #: Required by serde, defaulted for runs built in memory. Checked after the field
    #: checks, as serde names a missing field only once every present one has deserialized.
    required_by_serde = ("trigger_type", "checkpoint")

    run_id: str
    automation_id: str
    tenant_context: TenantContext = Factory(TenantContext.local_implicit)
    trigger_type: str = "manual"
    status: RunStatus
    created_at_ms: U64
    updated_at_ms: U64
    started_at_ms: U64 | None = None
    finished_at_ms: U64 | None = None
    active_session_ids: list[str] = Factory(list)
    latest_session_id: str | None = None
    active_instance_ids: list[str] = Factory(list)
    checkpoint: Checkpoint = Factory(Checkpoint)
    runtime_context: Any = None
    automation_snapshot: dict[str, Any] | None = None
    workflow_definition_version: str | None = None
    workflow_definition_snapshot_hash: str | None = None
    execution_claim: ExecutionClaim | None = None
    execution_claim_epoch: U64 = 0
    pause_reason: str | None = None
    resume_reason: str | None = None
    detail: str | None = None
    stop_kind: StopKind | None = None
    stop_reason: str | None = None
    prompt_tokens: U64 = 0
    completion_tokens: U64 = 0
    total_tokens: U64 = 0
    estimated_cost_usd: F64 = 0.0
    scheduler: SchedulerMetadata | None = None
    trigger_reason: str | None = None
    consumed_handoff_id: str | None = None
    learning_summary: Annotated[Any, _shaped(serde_shape.OPTIONAL_LEARNING_SUMMARY)] = None
    effective_execution_profile: ExecutionProfile = ExecutionProfile.STRICT
    requested_execution_profile: ExecutionProfile | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_nonterminal_recovered_context_run(self) -> bool:
        """A recovered-context run still in flight: the server drops it from the hot set
        at load and keeps it out of history."""
        return self.trigger_type == RECOVERED_CONTEXT_TRIGGER and not self.is_terminal

    @property
    def workspace_root(self) -> str | None:
        """``automation_snapshot.workspace_root``, trimmed; ``None`` when absent or blank."""
        return workspace_root_of(self.automation_snapshot)


def workspace_root_of(snapshot: Any) -> str | None:
    """An automation snapshot's ``workspace_root``, trimmed; ``None`` when absent or blank
    (or the snapshot is not an object)."""
    root = snapshot.get("workspace_root") if isinstance(snapshot, dict) else None
    if not isinstance(root, str) or not root.strip():
        return None
    return root.strip()


def parse_run(value: Any) -> Run:
    """Validate one raw record, with the models' in-memory defaults (raises ``ValidationError``)."""
    return Run.model_validate(value)


def parse_run_record(value: Any) -> Run:
    """Validate one record as the server's serde reads it (raises ``ValidationError``).

    Required fields must be present and typed nested structs must have their shape;
    see the module docstring.
    """
    return Run.model_validate(value, context=SERDE)


def judge_run_record(value: Any) -> None:
    """Raise ``ValidationError`` exactly when :func:`parse_run_record` would, without
    building the run (a verdict alone; the error's wording may differ, see
    ``record_model.verdict_validator``)."""
    verdict_validator(Run).validate_python(value, context=SERDE)


class UnwritableRecord(ValueError):
    """A record that cannot be written back exactly (a value nested deeper than the
    serializer goes); whatever would have rewritten it must change nothing instead."""


def dump_run(run: Run) -> dict[str, Any]:
    """The record as JSON-ready data, lossless (see :class:`LosslessModel`).

    Raises :class:`UnwritableRecord` rather than losing a value it cannot serialize.
    """
    try:
        return run.model_dump(mode="json")
    except PydanticSerializationError as error:
        raise UnwritableRecord(
            f"run {run.run_id} holds a value nested too deep to be written back exactly "
            f"({' '.join(str(error).split())[:120]})"
        ) from None


def dump_model(model: LosslessModel) -> dict[str, Any]:
    """Any nested record model (claim, scheduler metadata, ...) as lossless JSON data."""
    return model.model_dump(mode="json")
