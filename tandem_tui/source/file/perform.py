"""Operator actions carried out on the runs file (or a run's history shard), audited.

The decision and the change are the domain's (:mod:`tandem_tui.domain.actions`); this
module persists them: validate -> change the run through the lifecycle core -> persist
through a locked compare-and-swap transaction -> audit. A refused action changes no byte
of the runs file or of any shard; it is still audited, and so is an ok action that
changes nothing (a cancel of a finished run): its audit line says "nothing written". A
run that only lives in a history shard (archived) is brought back into the runs file by
a change, and its shard keeps a copy. A run the file names two ways (a key that differs
from its record's run_id, or two entries with one run_id) is refused, changing nothing.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
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
from tandem_tui.domain.models import Run, UnwritableRecord, dump_run
from tandem_tui.domain.scheduler import max_concurrent_runs_from_env
from tandem_tui.source.actor import default_actor
from tandem_tui.domain import events
from tandem_tui.source.file.audit import AuditEntry, append_audit, audit_log_path, interrupted_attempts
from tandem_tui.source.file.store import RunsDocument, RunsFileError, parse_run_entry, read_runs_document
from tandem_tui.source.file.transaction import transact, writer_lock

def perform(
    runs_file: str | os.PathLike[str],
    request: ActionRequest,
    *,
    clock: Clock,
    env: Mapping[str, str] = os.environ,
    on_wait: Callable[[str], None] | None = None,
) -> ActionResult:
    """Carry out ``request`` on the run in ``runs_file`` (or its shard) and audit it.

    Never raises for a refusal (the result says why); raises
    :class:`~tandem_tui.source.file.store.RunsFileError` when the runs file is missing,
    unreadable, invalid, of a newer schema, or stays busy.

    The audit trail is complete: the intent is logged before anything is touched (if it
    cannot be, nothing is done), the outcome after, and a failure is logged as
    ``failed``. An attempt killed in between is recovered by the next action on this
    runs file from the run's own events (see :mod:`tandem_tui.source.file.audit`).
    """
    runs_file = Path(runs_file)
    request = ActionRequest(
        kind=ActionKind(request.kind),
        run_id=request.run_id,
        reason=normalized_reason(request.reason),
        actor=(request.actor or "").strip() or default_actor(env),
        expect_updated_at_ms=request.expect_updated_at_ms,
        expect_state=request.expect_state,
    )
    max_runs = max_concurrent_runs_from_env(env)

    def change(document: RunsDocument) -> ActionResult:
        return _act_on_document(runs_file, document, request, clock=clock, max_concurrent_runs=max_runs)

    attempt = uuid.uuid4().hex
    intended = _log_intent(runs_file, request, attempt, clock)
    crash_point("after-intent", env)
    try:
        # One lock around the hot file, the shard copy and the audit line, so the
        # audit log lists outcomes in the order they reached the files.
        with writer_lock(runs_file, on_wait=on_wait):
            try:
                _recover_interrupted(runs_file, clock)
                # The change only assigns the acted-on entry (see _act_on_document): the
                # transaction compares that entry, and serializes the file once.
                result = transact(runs_file, change, clock=clock, assigns_only=True)
                if result.ok and result.archived and result.changed and result.run is not None:
                    result = _refresh_shard(runs_file, result)
            except OSError as error:
                # A full disk, a directory we may not write: one line, never a traceback.
                where = error.filename or runs_file
                raise RunsFileError(f"{where}: cannot write ({error.strerror or error})") from None
            crash_point("before-outcome", env)
            return _audited(runs_file, request, result, clock, attempt)
    except BaseException as error:
        if intended:
            _log_failure(runs_file, request, attempt, clock, error)
        raise


def crash_point(name: str, env: Mapping[str, str]) -> None:
    """Fault injection for the crash tests: SIGKILL this process at the named point when
    ``TANDEM_TUI_CRASH_AT`` names it (a real kill, at an exact place)."""
    if env.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


CRASH_ENV = "TANDEM_TUI_CRASH_AT"


def _log_intent(runs_file: Path, request: ActionRequest, attempt: str, clock: Clock) -> bool:
    """Log the attempt before touching anything; ``False`` when there is nothing to act
    on (no runs file: the refusal that follows must leave no trace)."""
    if not runs_file.is_file():
        return False
    entry = _attempt_line(request, attempt, clock, "intent", f"{ActionKind(request.kind).verb} requested")
    try:
        append_audit(runs_file, replace(entry, pid=os.getpid()))
    except OSError as error:
        raise RunsFileError(
            f"{audit_log_path(runs_file)}: cannot write the audit log "
            f"({error.strerror or error}); nothing done"
        ) from None
    return True


def _log_failure(runs_file: Path, request: ActionRequest, attempt: str, clock: Clock, error: BaseException) -> None:
    message = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, RunsFileError):
        message = f"unexpected {type(error).__name__}: {message}"
    try:
        append_audit(runs_file, _attempt_line(request, attempt, clock, "failed", message))
    except OSError:
        pass  # the intent stays, and reads as interrupted: still not silent


def _attempt_line(request: ActionRequest, attempt: str, clock: Clock, result: str, message: str) -> AuditEntry:
    """An audit line of an attempt that has no run outcome (its intent, or its failure)."""
    return AuditEntry(
        at_ms=clock.now_ms(),
        actor=request.actor or "",
        action=request.kind.value,
        run_id=request.run_id,
        previous_status=None,
        new_status=None,
        reason=request.reason,
        result=result,  # type: ignore[arg-type]
        message=message,
        attempt=attempt,
    )


def _recover_interrupted(runs_file: Path, clock: Clock) -> None:
    """Write the outcome of attempts whose process died after their intent, from the
    run's own lifecycle events (under the writer lock, so none is still running)."""
    interrupted = interrupted_attempts(runs_file)
    if not interrupted:
        return
    try:
        entries = read_runs_document(runs_file).entries
    except RunsFileError:
        entries = {}
    for intent in interrupted:
        run_id = intent.get("run_id")
        record = _record_of(runs_file, entries, run_id if isinstance(run_id, str) else "")
        done = record is not None and _has_operator_event_since(record, intent)
        append_audit(
            runs_file,
            AuditEntry(
                at_ms=clock.now_ms(),
                actor=str(intent.get("actor") or ""),
                action=str(intent.get("action") or ""),
                run_id=str(run_id),
                previous_status=None,
                new_status=record.get("status") if done and isinstance(record, dict) else None,
                reason=intent.get("reason"),
                result="ok" if done else "failed",
                message=(
                    "recovered after a crash: the run's events show the action was done"
                    if done
                    else "recovered after a crash: the process died before changing the run"
                ),
                attempt=str(intent.get("attempt")),
            ),
        )


def _record_of(runs_file: Path, entries: Mapping[str, Any], run_id: str) -> dict[str, Any] | None:
    for record in entries.values():
        if isinstance(record, dict) and record.get("run_id") == run_id:
            return record
    from tandem_tui.source.file.shards import load_shard_file

    found = load_shard_file(runs_file, run_id)
    return dump_run(found[1]) if found is not None else None


def _has_operator_event_since(record: dict[str, Any], intent: Mapping[str, Any]) -> bool:
    """Did this console record an event for this actor on the run at or after the intent?"""
    checkpoint = record.get("checkpoint")
    history = checkpoint.get("lifecycle_history") if isinstance(checkpoint, dict) else None
    at_ms = intent.get("at_ms")
    for event in history if isinstance(history, list) else []:
        metadata = event.get("metadata") if isinstance(event, dict) else None
        if (
            isinstance(metadata, dict)
            and metadata.get("source") == events.OPERATOR_SOURCE
            and metadata.get("actor") == intent.get("actor")
            and isinstance(event.get("recorded_at_ms"), int)
            and isinstance(at_ms, int)
            and event["recorded_at_ms"] >= at_ms
        ):
            return True
    return False


def _record_id(key: str, record: Any) -> str:
    """The id every view shows for an entry: its record's ``run_id`` (the key for a record
    without one, as a corrupt entry is recovered)."""
    run_id = record.get("run_id") if isinstance(record, dict) else None
    return run_id if isinstance(run_id, str) else key


def _find_entry(entries: Mapping[str, Any], run_id: str) -> str | None | _Ambiguous:
    """The key of the one entry whose record is run ``run_id``; :class:`_Ambiguous` when
    the file names it two ways (a key that differs from its record's ``run_id``, or two
    entries with this ``run_id``), so an action could change another run than the one
    every view calls ``run_id``."""
    keys = []
    for key, record in entries.items():  # _record_id inlined: a call per entry was most of this loop
        found = record.get("run_id") if isinstance(record, dict) else None
        if (found if isinstance(found, str) else key) == run_id:
            keys.append(key)
    if len(keys) > 1:
        shown = ", ".join(repr(key) for key in keys[:3])
        return _Ambiguous(f"{len(keys)} entries of the runs file carry this run_id (keys {shown})")
    if keys and keys[0] != run_id:
        return _Ambiguous(f"it is filed under the key {keys[0]!r}, which differs from its run_id")
    if not keys and run_id in entries:
        holder = _record_id(run_id, entries[run_id])
        return _Ambiguous(f"the entry keyed {run_id!r} holds run {holder!r}")
    return keys[0] if keys else None


@dataclass(frozen=True)
class _Ambiguous:
    why: str


def _act_on_document(
    runs_file: Path, document: RunsDocument, request: ActionRequest, *, clock: Clock, max_concurrent_runs: int
) -> ActionResult:
    key = _find_entry(document.entries, request.run_id)
    if key is None:
        return _act_on_archived(runs_file, document, request, clock=clock, max_concurrent_runs=max_concurrent_runs)
    if isinstance(key, _Ambiguous):
        return _no_run(
            request,
            f"cannot {ActionKind(request.kind).verb} run {request.run_id}: {key.why}; "
            "refusing to act until key and run_id agree",
        )
    now_ms = clock.now_ms()
    run = parse_run_entry(key, document.entries[key], now_ms=now_ms)
    if run.is_nonterminal_recovered_context_run:
        # The server drops it from its runs at load: it would answer "not found".
        return _no_run(
            request,
            f"run {request.run_id} not found (an in-flight recovered context run; the engine drops it at load)",
        )
    outcome = decide(request, run, now_ms)
    if isinstance(outcome, Refusal):
        return _refused(request, outcome, run, archived=False)
    scheduler = scheduler_from_entries(document.entries, max_concurrent_runs=max_concurrent_runs, clock=clock)
    apply_action(run, outcome, reason=request.reason, actor=request.actor or "", now_ms=now_ms, scheduler=scheduler)
    if outcome.writes:
        try:
            document.entries[key] = dump_run(run)
        except UnwritableRecord as error:
            return _unwritable(request, outcome, error)
    return _done(request, outcome, run, archived=False)


def _act_on_archived(
    runs_file: Path, document: RunsDocument, request: ActionRequest, *, clock: Clock, max_concurrent_runs: int
) -> ActionResult:
    """A run found only in a history shard: a change brings it back into the hot set.

    As the server's update does: the changed run goes into the runs file (in this same
    transaction, so an engine started next loads it) and its shard keeps a copy (written
    by :func:`perform` once the runs file is committed).
    """
    from tandem_tui.source.file.shards import load_shard_file

    found = load_shard_file(runs_file, request.run_id)
    # Distinct ids can share a sanitized file name; only the run itself counts.
    if found is None or found[1].run_id != request.run_id:
        return _no_run(request, f"run {request.run_id} not found")
    _, run = found
    now_ms = clock.now_ms()
    outcome = decide(request, run, now_ms)
    if isinstance(outcome, Refusal):
        return _refused(request, outcome, run, archived=True)
    try:
        entries = {**document.entries, run.run_id: dump_run(run)}
    except UnwritableRecord as error:
        return _unwritable(request, outcome, error)
    scheduler = scheduler_from_entries(entries, max_concurrent_runs=max_concurrent_runs, clock=clock)
    apply_action(run, outcome, reason=request.reason, actor=request.actor or "", now_ms=now_ms, scheduler=scheduler)
    if outcome.writes:
        try:
            document.entries[run.run_id] = dump_run(run)
        except UnwritableRecord as error:
            return _unwritable(request, outcome, error)
    return _done(request, outcome, run, archived=True)


def _refresh_shard(runs_file: Path, result: ActionResult) -> ActionResult:
    """The shard's copy of a run brought back from history, in the month it now belongs to.

    The action is done once the runs file is committed; a shard copy that cannot be
    written is said in the result's message, never reported as a failed action.
    """
    from tandem_tui.source.file.shards import load_shard_file, write_shard

    run = result.run
    assert run is not None
    try:
        found = load_shard_file(runs_file, run.run_id)
        new_path = write_shard(runs_file, run)
        # The shard's month follows updated_at_ms: a run touched in a later month moves.
        if found is not None and Path(found[0]) != Path(new_path):
            Path(found[0]).unlink(missing_ok=True)
    except (OSError, RunsFileError) as error:
        detail = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        where = getattr(error, "filename", None) or "its shard"
        note = f" (its shard copy was not updated: {where}: {' '.join(str(detail).split())})"
        return ActionResult(**{**result.__dict__, "message": result.message + note})
    return result


def _no_run(request: ActionRequest, message: str) -> ActionResult:
    """A refusal before any run was decided on (not found, or named two ways)."""
    return ActionResult(
        ok=False, kind=request.kind, run_id=request.run_id, previous_status=None, new_status=None, message=message
    )


def _unwritable(request: ActionRequest, outcome: Transition, error: UnwritableRecord) -> ActionResult:
    """The run cannot be written back exactly: refused, and the entry is left as read, so
    the transaction writes nothing."""
    return ActionResult(
        ok=False,
        kind=request.kind,
        run_id=request.run_id,
        previous_status=outcome.from_status,
        new_status=outcome.from_status,
        message=f"cannot {ActionKind(request.kind).verb} run {request.run_id}: {error}; nothing changed",
    )


def _refused(request: ActionRequest, refusal: Refusal, run: Run, *, archived: bool) -> ActionResult:
    return ActionResult(
        ok=False,
        kind=request.kind,
        run_id=run.run_id,
        previous_status=run.status,
        new_status=run.status,
        message=refusal.message,
        run=run,
        archived=archived,
    )


def _done(request: ActionRequest, transition: Transition, run: Run, *, archived: bool) -> ActionResult:
    if not transition.writes:
        where = " (nothing written)"
    elif archived:
        where = " (archived run, back in the runs file; its shard keeps a copy)"
    else:
        where = ""
    return ActionResult(
        ok=True,
        kind=request.kind,
        run_id=run.run_id,
        previous_status=transition.from_status,
        new_status=run.status,
        message=f"run {run.run_id}: {transition.summary}{where}",
        run=run,
        archived=archived,
        changed=transition.writes,
        reason=(request.reason or transition.default_reason or DEFAULT_REASONS[request.kind]) if transition.writes else request.reason,
    )


def _audited(
    runs_file: Path, request: ActionRequest, result: ActionResult, clock: Clock, attempt: str
) -> ActionResult:
    entry = AuditEntry(
        at_ms=clock.now_ms(),
        actor=request.actor or "",
        action=request.kind.value,
        run_id=request.run_id,
        previous_status=result.previous_status.value if result.previous_status else None,
        new_status=result.new_status.value if result.ok and result.new_status else None,
        reason=result.reason if result.ok else request.reason,
        result="ok" if result.ok else "refused",
        message=result.message,
        attempt=attempt,
    )
    try:
        append_audit(runs_file, entry)
    except OSError as error:
        # The action itself is done (or refused); failing to log it must not hide that.
        return ActionResult(
            **{**result.__dict__, "message": f"{result.message} (audit log not written: {error.strerror or error})"}
        )
    return result
