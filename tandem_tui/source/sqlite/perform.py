"""Operator actions carried out on a SQLite store, when no engine is live, audited.

The decision and the change are the domain's (:func:`decide`, :func:`apply_action`),
with a scheduler rebuilt from the hot rows holding a slot or a lock, as for the runs
file. Everything happens in one ``BEGIN IMMEDIATE`` transaction (the engine's own write
discipline): check the engine lock again, read the row, decide, and update the row's
``run_json``, ``status`` and ``updated_at_ms`` (and ``is_hot = 1``: changing a run brings
it back into the hot set, as the engine's upsert does). ``run_json`` keeps the form it
had (the bound envelope and its unknown fields; the record lossless). A refusal rolls
back and changes nothing; an encrypted or unreadable record is refused. One line goes to
the operator audit log, ``automation-runs/automation_v2_runs/operator-audit.jsonl``
beside the database, the same log as the runs file's.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tandem_tui.domain.actions import (
    DEFAULT_REASONS,
    ActionKind,
    ActionRequest,
    ActionResult,
    Refusal,
    Transition,
    apply_action,
    decide,
    normalized_reason,
    scheduler_from_entries,
)
from tandem_tui.domain.clock import Clock
from tandem_tui.domain.models import Run, RunStatus
from tandem_tui.domain.scheduler import AutomationScheduler, max_concurrent_runs_from_env
from tandem_tui.source.actor import default_actor
from tandem_tui.source.base import SourceError
from tandem_tui.source.file.audit import AuditEntry, append_audit
from tandem_tui.source.file.store import RUNS_FILE_NAME
from tandem_tui.source.sqlite import store
from tandem_tui.source.sqlite.engine_lock import EngineLockState, engine_lock_state
from tandem_tui.source.sqlite.rows import (
    ENGINE_LOCK_FILE_NAME,
    RUN_COLUMNS,
    DecodedRow,
    RunRow,
    StoreError,
    decode_row,
    encode_run_json,
)

#: Statuses whose runs hold a slot (running) or a workspace lock (pausing).
HOLDING_STATUSES = (RunStatus.RUNNING.value, RunStatus.PAUSING.value)


class EngineLiveError(SourceError):
    """An engine is live (or may be) on this store: actions go through its API only."""


def normalized_request(request: ActionRequest, env: Mapping[str, str]) -> ActionRequest:
    return ActionRequest(
        kind=ActionKind(request.kind),
        run_id=request.run_id,
        reason=normalized_reason(request.reason),
        actor=(request.actor or "").strip() or default_actor(env),
        expect_updated_at_ms=request.expect_updated_at_ms,
        expect_state=request.expect_state,
    )


def perform(
    database: str | os.PathLike[str],
    request: ActionRequest,
    *,
    clock: Clock,
    env: Mapping[str, str] = os.environ,
    engine_state: Callable[[], EngineLockState] | None = None,
) -> ActionResult:
    """Carry out ``request`` on the run's row and audit it.

    Raises :class:`EngineLiveError` when the engine lock says an engine is (or may be)
    live, and :class:`~tandem_tui.source.sqlite.rows.StoreError` when the store cannot be
    used (missing, another schema version, busy past the timeout).
    """
    database = Path(database)
    request = normalized_request(request, env)
    lock_state = engine_state or (lambda: engine_lock_state(database.parent / ENGINE_LOCK_FILE_NAME))
    refuse_if_live(lock_state(), database)
    connection = store.connect_writer(database)
    try:
        try:
            store.check_schema(connection, str(database))
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StoreError(f"{database}: {' '.join(str(error).split())}") from None
        try:
            # Again under the write lock: an engine that started meanwhile wins.
            refuse_if_live(lock_state(), database)
            result = _act(connection, request, clock=clock, max_concurrent_runs=max_concurrent_runs_from_env(env))
            connection.execute("COMMIT" if result.ok else "ROLLBACK")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    except sqlite3.Error as error:
        raise StoreError(f"{database}: {' '.join(str(error).split())}") from None
    finally:
        connection.close()
    return audited(database.parent / RUNS_FILE_NAME, request, result, clock)


def refuse_if_live(state: EngineLockState, database: Path) -> None:
    if state.live is False:
        return
    if state.live:
        raise EngineLiveError(f"an engine is live on {database} ({state.why}): act through its HTTP API")
    raise EngineLiveError(f"cannot tell whether an engine is live on {database} ({state.why}); not writing")


def _act(connection: sqlite3.Connection, request: ActionRequest, *, clock: Clock, max_concurrent_runs: int) -> ActionResult:
    values = connection.execute(
        f"SELECT {RUN_COLUMNS} FROM automation_runs WHERE run_id = ?", (request.run_id,)
    ).fetchone()
    if values is None:
        return not_found(request)
    now_ms = clock.now_ms()
    decoded = decode_row(RunRow.of(values), now_ms=now_ms)
    outcome = decide_on(decoded, request, now_ms)
    if isinstance(outcome, ActionResult):
        return outcome
    holders = connection.execute(
        f"SELECT {RUN_COLUMNS} FROM automation_runs WHERE is_hot = 1 AND status IN (?, ?)", HOLDING_STATUSES
    ).fetchall()
    scheduler = scheduler_from_rows((RunRow.of(v) for v in holders), max_concurrent_runs=max_concurrent_runs, clock=clock)
    run = decoded.run
    apply_action(run, outcome, reason=request.reason, actor=request.actor or "", now_ms=now_ms, scheduler=scheduler)
    connection.execute(
        "UPDATE automation_runs SET run_json = ?, status = ?, updated_at_ms = ?, is_hot = 1 WHERE run_id = ?",
        (encode_run_json(decoded, run), RunStatus(run.status).value, run.updated_at_ms, decoded.row.run_id),
    )
    return done(request, outcome, run, archived=not decoded.row.is_hot)


def decide_on(decoded: DecodedRow, request: ActionRequest, now_ms: int) -> Transition | ActionResult:
    """The transition to apply, or the refusal as a result (unreadable rows included)."""
    if decoded.opaque is not None:
        what = "its record is encrypted" if decoded.encrypted else f"its record cannot be read ({decoded.opaque})"
        return refused(
            request,
            Refusal(request.kind, request.run_id, f"cannot {request.kind.verb} run {request.run_id}: {what}"),
            decoded.run,
            archived=not decoded.row.is_hot,
        )
    outcome = decide(request, decoded.run, now_ms)
    if isinstance(outcome, Refusal):
        return refused(request, outcome, decoded.run, archived=not decoded.row.is_hot)
    return outcome


def scheduler_from_rows(rows: Iterable[RunRow], *, max_concurrent_runs: int, clock: Clock) -> AutomationScheduler:
    """The slots and locks the hot rows hold (an encrypted holder takes a slot, no lock)."""
    entries: dict[str, Any] = {}
    for row in rows:
        record: Any = {"run_id": row.run_id, "status": row.status}
        if not row.encrypted:
            try:
                value = json.loads(row.run_json)
                payload = value.get("payload", value) if isinstance(value, dict) else None
                if isinstance(payload, dict):
                    record = {**payload, "run_id": row.run_id, "status": row.status}
            except (ValueError, RecursionError):
                pass
        entries[row.run_id] = record
    return scheduler_from_entries(entries, max_concurrent_runs=max_concurrent_runs, clock=clock)


def not_found(request: ActionRequest) -> ActionResult:
    return ActionResult(
        ok=False, kind=request.kind, run_id=request.run_id, previous_status=None, new_status=None,
        message=f"run {request.run_id} not found",
    )


def refused(request: ActionRequest, refusal: Refusal, run: Run, *, archived: bool) -> ActionResult:
    return ActionResult(
        ok=False, kind=request.kind, run_id=run.run_id, previous_status=run.status, new_status=run.status,
        message=refusal.message, run=run, archived=archived,
    )


def done(request: ActionRequest, transition: Transition, run: Run, *, archived: bool, where: str = "") -> ActionResult:
    note = " (archived run, back in the hot set)" if archived else ""
    return ActionResult(
        ok=True, kind=request.kind, run_id=run.run_id, previous_status=transition.from_status,
        new_status=run.status, message=f"run {run.run_id}: {transition.summary}{note}{where}", run=run, archived=archived,
    )


def audited(
    log_owner: Path, request: ActionRequest, result: ActionResult, clock: Clock, extra: Mapping[str, Any] | None = None
) -> ActionResult:
    """Append the audit line (to the log of the runs file ``log_owner``); a failed append
    is said in the result's message, never hides the action."""
    entry = AuditEntry(
        at_ms=clock.now_ms(),
        actor=request.actor or "",
        action=request.kind.value,
        run_id=request.run_id,
        previous_status=result.previous_status.value if result.previous_status else None,
        new_status=result.new_status.value if result.ok and result.new_status else None,
        reason=(request.reason or DEFAULT_REASONS[request.kind]) if result.ok else request.reason,
        result="ok" if result.ok else "refused",
        message=result.message,
    )
    try:
        append_audit(log_owner, {**entry.as_dict(), **(extra or {})})
    except OSError as error:
        return ActionResult(
            **{**result.__dict__, "message": f"{result.message} (audit log not written: {error.strerror or error})"}
        )
    return result
