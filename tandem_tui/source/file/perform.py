"""Operator actions carried out on the runs file (or a run's history shard), audited.

The decision and the change are the domain's (:mod:`tandem_tui.domain.actions`); this
module persists them: validate -> change the run through the lifecycle core -> persist
through a locked compare-and-swap transaction -> append one line to the operator audit
log. A refused action changes no byte of the runs file or of any shard; it is still
audited, and so is an ok action that changes nothing (a cancel of a finished run): its
audit line says "nothing written". A run that only lives in a history shard (archived)
is brought back into the runs file by a change, and its shard keeps a copy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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
from tandem_tui.domain.models import Run, dump_run
from tandem_tui.domain.scheduler import max_concurrent_runs_from_env
from tandem_tui.source.actor import default_actor
from tandem_tui.source.file.audit import AuditEntry, append_audit
from tandem_tui.source.file.store import RunsDocument, parse_run_entry
from tandem_tui.source.file.transaction import transact, writer_lock

def perform(
    runs_file: str | os.PathLike[str],
    request: ActionRequest,
    *,
    clock: Clock,
    env: Mapping[str, str] = os.environ,
) -> ActionResult:
    """Carry out ``request`` on the run in ``runs_file`` (or its shard) and audit it.

    Never raises for a refusal (the result says why); raises
    :class:`~tandem_tui.source.file.store.RunsFileError` when the runs file is missing,
    unreadable, invalid, of a newer schema, or stays busy.
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

    # One lock around the hot file, the shard copy and the audit line, so the audit
    # log lists actions in the order they reached the files.
    with writer_lock(runs_file):
        result = transact(runs_file, change, clock=clock)
        if result.ok and result.archived and result.changed and result.run is not None:
            _refresh_shard(runs_file, result.run)
        return _audited(runs_file, request, result, clock)


def _find_entry(entries: Mapping[str, Any], run_id: str) -> str | None:
    if run_id in entries:
        return run_id
    for key, record in entries.items():
        if isinstance(record, dict) and record.get("run_id") == run_id:
            return key
    return None


def _act_on_document(
    runs_file: Path, document: RunsDocument, request: ActionRequest, *, clock: Clock, max_concurrent_runs: int
) -> ActionResult:
    key = _find_entry(document.entries, request.run_id)
    if key is None:
        return _act_on_archived(runs_file, document, request, clock=clock, max_concurrent_runs=max_concurrent_runs)
    now_ms = clock.now_ms()
    run = parse_run_entry(key, document.entries[key], now_ms=now_ms)
    if run.is_nonterminal_recovered_context_run:
        # The server drops it from its runs at load: it would answer "not found".
        return ActionResult(
            ok=False,
            kind=request.kind,
            run_id=request.run_id,
            previous_status=None,
            new_status=None,
            message=f"run {request.run_id} not found (an in-flight recovered context run; the engine drops it at load)",
        )
    outcome = decide(request, run, now_ms)
    if isinstance(outcome, Refusal):
        return _refused(request, outcome, run, archived=False)
    scheduler = scheduler_from_entries(document.entries, max_concurrent_runs=max_concurrent_runs, clock=clock)
    apply_action(run, outcome, reason=request.reason, actor=request.actor or "", now_ms=now_ms, scheduler=scheduler)
    if outcome.writes:
        document.entries[key] = dump_run(run)
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
        return ActionResult(
            ok=False,
            kind=request.kind,
            run_id=request.run_id,
            previous_status=None,
            new_status=None,
            message=f"run {request.run_id} not found",
        )
    _, run = found
    now_ms = clock.now_ms()
    outcome = decide(request, run, now_ms)
    if isinstance(outcome, Refusal):
        return _refused(request, outcome, run, archived=True)
    entries = {**document.entries, run.run_id: dump_run(run)}
    scheduler = scheduler_from_entries(entries, max_concurrent_runs=max_concurrent_runs, clock=clock)
    apply_action(run, outcome, reason=request.reason, actor=request.actor or "", now_ms=now_ms, scheduler=scheduler)
    if outcome.writes:
        document.entries[run.run_id] = dump_run(run)
    return _done(request, outcome, run, archived=True)


def _refresh_shard(runs_file: Path, run: Run) -> None:
    """The shard's copy of a run brought back from history, in the month it now belongs to."""
    from tandem_tui.source.file.shards import load_shard_file, write_shard

    found = load_shard_file(runs_file, run.run_id)
    new_path = write_shard(runs_file, run)
    # The shard's month follows updated_at_ms: a run touched in a later month moves.
    if found is not None and Path(found[0]) != Path(new_path):
        Path(found[0]).unlink(missing_ok=True)


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


def _audited(runs_file: Path, request: ActionRequest, result: ActionResult, clock: Clock) -> ActionResult:
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
    )
    try:
        append_audit(runs_file, entry)
    except OSError as error:
        # The action itself is done (or refused); failing to log it must not hide that.
        return ActionResult(
            **{**result.__dict__, "message": f"{result.message} (audit log not written: {error.strerror or error})"}
        )
    return result
