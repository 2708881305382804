"""A run as the dashboard needs it: a few hundred bytes instead of the whole record.

A console on a big host holds every hot run for as long as it runs. The validated record
of a run with its node outputs, automation snapshot and lifecycle history costs about
20 KB in memory (196 MB at 10k runs, 3.3x the file); a :class:`RunSummary` keeps what
the runs table, the locks panel, the figures and :class:`~tandem_tui.domain.view.RunsView`
read, and nothing else (about 2 KB).

Contract:

- :func:`summarize` is built from a run *after* it was validated, so every verdict
  (serde's rules, a corrupt entry recovered as blocked) is the full record's.
  :meth:`Summarizer.from_slim` builds the same summary from the slim record of a raw
  record (:func:`slim_record`) whose verdict was given elsewhere (the parse helper judges
  a console's first read): only for a record ``parse_run_record`` accepts as it stands.
- A summary answers every attribute those readers use exactly as the run does; an
  attribute it does not keep raises ``AttributeError`` rather than answering a default.
  ``tests/domain/test_run_summary.py`` holds the figures, the view, the queue infos and
  the table's row equal between a run and its summary.
- The lifecycle history keeps, in order and with their times, the events the view and
  the figures read: admissions and the ways back into the queue; of the metadata only a
  retry backoff's ``retry_after_ms`` survives.
- A summary is never written, previewed or shown in full: whoever needs the record
  (the run detail, an action's preview) asks the source for it
  (``RunsSource.full_runs``). ``key`` is the run's key in its store, to find it there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tandem_tui.domain import events
from tandem_tui.domain.models import (
    RECOVERED_CONTEXT_TRIGGER,
    SERDE,
    TERMINAL_STATUSES,
    ExecutionClaim,
    FailureRecord,
    Run,
    RunStatus,
    SchedulerMetadata,
    StopKind,
    TenantContext,
    workspace_root_of,
)

#: The one event whose metadata the view reads (``view.queue_entry_at_ms``).
_RETRY_BACKOFF_EVENT = "node_retry_backoff_scheduled"
_CLAIMED = events.RUN_EXECUTION_CLAIMED


class EventSummary:
    """One lifecycle event the view reads: its name, its time, and its metadata's
    ``retry_after_ms`` when it is a retry backoff."""

    __slots__ = ("event", "recorded_at_ms", "metadata")

    def __init__(self, event: str, recorded_at_ms: int, metadata: Any) -> None:
        self.event = event
        self.recorded_at_ms = recorded_at_ms
        self.metadata = metadata


class CheckpointSummary:
    """The checkpoint's node lists (their lengths are counted), last failure and
    lifecycle history (see :class:`EventSummary`)."""

    __slots__ = ("completed_nodes", "pending_nodes", "blocked_nodes", "last_failure", "lifecycle_history")

    def __init__(
        self,
        completed_nodes: list[str],
        pending_nodes: list[str],
        blocked_nodes: list[str],
        last_failure: FailureRecord | None,
        lifecycle_history: list[EventSummary],
    ) -> None:
        self.completed_nodes = completed_nodes
        self.pending_nodes = pending_nodes
        self.blocked_nodes = blocked_nodes
        self.last_failure = last_failure
        self.lifecycle_history = lifecycle_history


class RunSummary:
    """What the dashboard reads of a run (see the module docstring)."""

    __slots__ = (
        "key",
        "run_id",
        "automation_id",
        "tenant_context",
        "trigger_type",
        "status",
        "created_at_ms",
        "updated_at_ms",
        "started_at_ms",
        "finished_at_ms",
        "checkpoint",
        "execution_claim",
        "pause_reason",
        "resume_reason",
        "detail",
        "stop_kind",
        "stop_reason",
        "scheduler",
        "workspace_root",
        "node_counts",
    )

    key: str
    run_id: str
    automation_id: str
    tenant_context: TenantContext
    trigger_type: str
    status: RunStatus
    created_at_ms: int
    updated_at_ms: int
    started_at_ms: int | None
    finished_at_ms: int | None
    checkpoint: CheckpointSummary
    execution_claim: ExecutionClaim | None
    pause_reason: str | None
    resume_reason: str | None
    detail: str | None
    stop_kind: StopKind | None
    stop_reason: str | None
    scheduler: SchedulerMetadata | None
    workspace_root: str | None
    #: (completed nodes, all nodes): the flow's node count when the snapshot has one.
    node_counts: tuple[int, int]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_nonterminal_recovered_context_run(self) -> bool:
        return self.trigger_type == RECOVERED_CONTEXT_TRIGGER and not self.is_terminal

    def __repr__(self) -> str:
        return f"RunSummary(run_id={self.run_id!r}, status={self.status.value!r})"


def node_counts(run: Run | RunSummary) -> tuple[int, int]:
    """(completed nodes, all nodes): all is the automation snapshot's flow when it lists
    nodes, else completed + pending + blocked."""
    if isinstance(run, RunSummary):
        return run.node_counts
    checkpoint = run.checkpoint
    return _node_counts(
        checkpoint.completed_nodes, checkpoint.pending_nodes, checkpoint.blocked_nodes, run.automation_snapshot
    )


def _node_counts(completed: list[Any], pending: list[Any], blocked: list[Any], snapshot: Any) -> tuple[int, int]:
    return _counted(completed, pending, blocked, _flow_nodes(snapshot))


def _flow_nodes(snapshot: Any) -> int | None:
    """How many nodes the automation snapshot's flow lists; ``None`` when it lists none."""
    flow = snapshot.get("flow") if isinstance(snapshot, dict) else None
    nodes = flow.get("nodes") if isinstance(flow, dict) else None
    return len(nodes) if isinstance(nodes, list) and nodes else None


def _counted(completed: list[Any], pending: list[Any], blocked: list[Any], flow_nodes: int | None) -> tuple[int, int]:
    done = len(completed)
    return done, flow_nodes if flow_nodes is not None else done + len(pending) + len(blocked)


#: What the view and the figures read of an event, by its name: nothing (_SKIP), the
#: event (_KEEP: an admission, ``run_execution_claimed``, or a way back into the queue,
#: ``view.queue_entry_at_ms``), or the event and a retry backoff's ``retry_after_ms``
#: (_BACKOFF). Filled as names are met: a host has a few dozen, its runs ~8 events each.
_SKIP, _KEEP, _BACKOFF = 0, 1, 2
_EVENT_KINDS: dict[str, int] = {}
_EVENT_KINDS_KEPT = 4096  # names beyond these are judged each time (a hostile file's)


def _event_kind(event: str) -> int:
    kind = _EVENT_KINDS.get(event)
    if kind is None:
        if event == _CLAIMED or event in events.REQUEUE_EVENTS or event.startswith(events.RUN_RECOVERED_PREFIX):
            kind = _KEEP
        elif event == _RETRY_BACKOFF_EVENT:
            kind = _BACKOFF
        else:
            kind = _SKIP
        if len(_EVENT_KINDS) < _EVENT_KINDS_KEPT:
            _EVENT_KINDS[event] = kind
    return kind


def _backoff_metadata(metadata: Any) -> Any:
    """Of a retry backoff's metadata, what the view reads: its ``retry_after_ms``."""
    if isinstance(metadata, dict) and "retry_after_ms" in metadata:
        return {"retry_after_ms": metadata["retry_after_ms"]}
    return None


def _history(events_: Iterable[tuple[str, int, Any]]) -> list[EventSummary]:
    """Of a run's lifecycle events ``(event, recorded_at_ms, metadata)``, the ones the
    view and the figures read (:func:`_event_kind`), in order."""
    kept: list[EventSummary] = []
    kinds = _EVENT_KINDS
    for event, recorded_at_ms, metadata in events_:
        kind = kinds.get(event)
        if kind is None:
            kind = _event_kind(event)
        if kind:
            # Interned: a few event names stand for hundreds of thousands of events.
            kept.append(
                EventSummary(sys.intern(event), recorded_at_ms, _backoff_metadata(metadata) if kind == _BACKOFF else None)
            )
    return kept


class Summarizer:
    """Builds summaries, sharing what many runs hold equal (tenant contexts, names).

    Shared objects are never changed: the view copies a tenant context before it keeps
    one (``model_copy``), and nothing writes a summary.
    """

    def __init__(self) -> None:
        self._tenants: dict[tuple[Any, ...], TenantContext] = {}
        #: Raw tenant contexts (by their repr) to the shared model built from them:
        #: most runs of a host hold one of a handful.
        self._raw_tenants: dict[str, TenantContext] = {}

    def __call__(self, run: Run, key: str | None = None) -> RunSummary:
        summary = RunSummary()
        summary.key = key if key is not None else run.run_id
        summary.run_id = run.run_id
        summary.automation_id = sys.intern(run.automation_id)
        summary.tenant_context = self._tenant(run.tenant_context)
        summary.trigger_type = sys.intern(run.trigger_type)
        summary.status = run.status
        summary.created_at_ms = run.created_at_ms
        summary.updated_at_ms = run.updated_at_ms
        summary.started_at_ms = run.started_at_ms
        summary.finished_at_ms = run.finished_at_ms
        checkpoint = run.checkpoint
        summary.checkpoint = CheckpointSummary(
            completed_nodes=checkpoint.completed_nodes,
            pending_nodes=checkpoint.pending_nodes,
            blocked_nodes=checkpoint.blocked_nodes,
            last_failure=checkpoint.last_failure,
            lifecycle_history=_history((r.event, r.recorded_at_ms, r.metadata) for r in checkpoint.lifecycle_history),
        )
        summary.execution_claim = run.execution_claim
        summary.pause_reason = run.pause_reason
        summary.resume_reason = run.resume_reason
        summary.detail = run.detail
        summary.stop_kind = run.stop_kind
        summary.stop_reason = run.stop_reason
        summary.scheduler = run.scheduler
        summary.workspace_root = run.workspace_root
        summary.node_counts = node_counts(run)
        return summary

    def from_slim(self, slim: dict[str, Any], key: str) -> RunSummary:
        """``self(parse_run_record(record), key)`` for ``slim = slim_record(record)`` (the
        parse helper sends these, see :func:`slim_record`), without building the run's
        models (only the few nested ones a summary keeps, validated as the run's would be).

        Anything may come of a record that does not validate, from a wrong summary to
        any exception: the caller must have that verdict from elsewhere before it uses
        the summary (see the module docstring).
        """
        get = slim.get
        summary = RunSummary()
        summary.key = key
        summary.run_id = slim["run_id"]
        summary.automation_id = sys.intern(slim["automation_id"])
        summary.tenant_context = self._raw_tenant(get("tenant_context"))
        summary.trigger_type = sys.intern(slim["trigger_type"])
        summary.status = RunStatus(slim["status"])
        summary.created_at_ms = slim["created_at_ms"]
        summary.updated_at_ms = slim["updated_at_ms"]
        summary.started_at_ms = get("started_at_ms")
        summary.finished_at_ms = get("finished_at_ms")
        checkpoint = slim["checkpoint"]
        completed = checkpoint.get("completed_nodes", [])
        pending = checkpoint.get("pending_nodes", [])
        blocked = checkpoint.get("blocked_nodes", [])
        failure = checkpoint.get("last_failure")
        summary.checkpoint = CheckpointSummary(
            completed_nodes=completed,
            pending_nodes=pending,
            blocked_nodes=blocked,
            last_failure=None if failure is None else FailureRecord.model_validate(failure, context=SERDE),
            lifecycle_history=_history(slim["history"]),
        )
        claim = get("execution_claim")
        summary.execution_claim = None if claim is None else ExecutionClaim.model_validate(claim, context=SERDE)
        summary.pause_reason = get("pause_reason")
        summary.resume_reason = get("resume_reason")
        summary.detail = get("detail")
        stop_kind = get("stop_kind")
        summary.stop_kind = None if stop_kind is None else StopKind(stop_kind)
        summary.stop_reason = get("stop_reason")
        scheduler = get("scheduler")
        summary.scheduler = None if scheduler is None else SchedulerMetadata.model_validate(scheduler, context=SERDE)
        summary.workspace_root = slim["workspace_root"]
        summary.node_counts = _counted(completed, pending, blocked, slim["flow_nodes"])
        return summary

    def _raw_tenant(self, raw: Any) -> TenantContext:
        """The shared model of a raw tenant context (:meth:`_tenant`), built once per
        distinct raw context; ``None`` (absent) is the models' default context."""
        # repr, not the items: 1, 1.0 and true are equal keys but not equal contexts, and
        # an unknown field may hold a list.
        raw_key = repr(raw)
        shared = self._raw_tenants.get(raw_key)
        if shared is None:
            built = TenantContext.local_implicit() if raw is None else TenantContext.model_validate(raw, context=SERDE)
            shared = self._raw_tenants[raw_key] = self._tenant(built)
        return shared

    def _tenant(self, tenant: TenantContext) -> TenantContext:
        # Keyed by every field, set or not, and the unknown ones: only equal contexts
        # are shared.
        extra = tenant.__pydantic_extra__
        key = (
            tenant.org_id,
            tenant.workspace_id,
            tenant.deployment_id,
            tenant.actor_id,
            tenant.source,
            frozenset(tenant.model_fields_set),
            repr(extra) if extra else None,
        )
        shared = self._tenants.get(key)
        if shared is None:
            shared = self._tenants[key] = tenant
        return shared


def summarize(run: Run, key: str | None = None) -> RunSummary:
    """One run's summary (a fresh :class:`Summarizer`: nothing shared with others)."""
    return Summarizer()(run, key)



#: The fields of a raw record a summary keeps as they are: its slots but those it derives.
_SLIM_FIELDS = tuple(
    name for name in RunSummary.__slots__ if name not in ("key", "checkpoint", "workspace_root", "node_counts")
)
_SLIM_CHECKPOINT_FIELDS = ("completed_nodes", "pending_nodes", "blocked_nodes", "last_failure")


def slim_record(record: dict[str, Any]) -> dict[str, Any]:
    """Of a raw record ``parse_run_record`` accepts, what its summary is built from, as
    JSON-ready data (a tenth of the record or less): the parse helper sends these for a
    console's first read (``source.file.first_read``), and
    ``Summarizer().from_slim(slim_record(record), key)`` is
    ``Summarizer()(parse_run_record(record), key)``.

    Absent fields stay absent; the lifecycle history keeps the events the view reads
    (``[event, recorded_at_ms, metadata]``, metadata only as :func:`_history` keeps it);
    the automation snapshot is reduced to its workspace root and its flow's node count.
    """
    slim = {name: record[name] for name in _SLIM_FIELDS if name in record}
    checkpoint = record["checkpoint"]
    slim["checkpoint"] = {name: checkpoint[name] for name in _SLIM_CHECKPOINT_FIELDS if name in checkpoint}
    history = []
    kinds = _EVENT_KINDS
    for event in checkpoint.get("lifecycle_history", ()):
        name = event["event"]
        kind = kinds.get(name)
        if kind is None:
            kind = _event_kind(name)
        if kind:
            metadata = _backoff_metadata(event.get("metadata")) if kind == _BACKOFF else None
            history.append((name, event["recorded_at_ms"], metadata))
    slim["history"] = history
    snapshot = record.get("automation_snapshot")
    slim["workspace_root"] = workspace_root_of(snapshot)
    slim["flow_nodes"] = _flow_nodes(snapshot)
    return slim
