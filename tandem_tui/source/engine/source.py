"""``EngineRoutedSource``: act through the engine that is running, else through our core.

A live Tandem engine keeps its runs in memory and rewrites the runs file whole at its
next save, so an action written to the file behind its back is silently undone. This
source wraps a reading source (the :class:`~tandem_tui.source.file.source.FileSource`)
and routes :meth:`perform`:

- **engine live** (:mod:`~tandem_tui.source.engine.detect`): one HTTP call to the engine
  (:mod:`~tandem_tui.source.engine.client`); requeue is ``/recover``; release-lock is
  refused (the engine has no such action; pause releases a run's lock when it
  settles). Nothing of ours writes the runs file or the store then, ever: an engine
  that cannot be reached, or refuses our token, is a refusal that says why
  (``ActionResult.unusable``: the CLI's exit 2), never a fallback to the file;
- **engine stopped**: the wrapped source's ``perform`` (our core writes the runs file).

Every attempt appends one audit line with its ``route`` (the file route's line is the
wrapped source's; the engine route's is written here, with the engine's answer).
Reading (``read``, ``follow``, the archive) is the wrapped source's.

A detection is reused for :data:`DETECTION_MAX_AGE_S` (the console asks for
:meth:`describe` on every refresh); a failed call to the engine forgets it, so the next
attempt looks again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tandem_tui.domain.actions import ActionRequest, ActionResult
    from tandem_tui.domain.run_summary import RunSummary
    from tandem_tui.domain.snapshot import Snapshot
    from tandem_tui.source.file.audit import AuditEntry

from tandem_tui.domain.clock import SYSTEM_CLOCK, Clock
from tandem_tui.domain.models import Run, RunStatus, parse_run
from tandem_tui.source.actor import default_actor
from tandem_tui.source.base import (
    ArchivedRead,
    ArchiveEntry,
    FoundRun,
    Month,
    Route,
    RunsSource,
    SourceDescription,
)
from tandem_tui.source.engine.detect import STORE_SQLITE, Detection, TokenSource, detect

#: How long (s) a detection stands before it is made again.
DETECTION_MAX_AGE_S = 2.0

#: Our action -> the engine's route. Release-lock has none.
ENGINE_ROUTES: Mapping[str, str] = {
    "pause": "pause",
    "resume": "resume",
    "requeue": "recover",
    "cancel": "cancel",
}

#: Keys the engine adds to a run it answers (``automation_v2_run_with_context_links``).
DECORATION_KEYS = frozenset(
    {
        "contextRunID",
        "linked_context_run_id",
        "blockedNodeIDs",
        "last_activity_at_ms",
        "lastActivityAtMs",
        "nodeRepairGuidance",
        "needsRepairNodeIDs",
        "nodeAttemptEvidence",
        "stored_status",
        "storedStatus",
        "statusDerivedNote",
    }
)

RELEASE_LOCK_REFUSAL = (
    "the live engine has no release-lock action; pause the run instead "
    "(a run releases its workspace lock when it settles)"
)

Detector = Callable[[], Detection]


class EngineRoutedSource:
    """Reads through ``inner``; acts through the live engine's API, else through ``inner``."""

    def __init__(
        self,
        inner: RunsSource,
        runs_file: str | os.PathLike[str],
        *,
        engine_url: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] = os.environ,
        clock: Clock = SYSTEM_CLOCK,
        detector: Detector | None = None,
    ) -> None:
        self.inner = inner
        self.runs_file = Path(runs_file)
        self.env = env
        self.clock = clock
        self._detector: Detector = detector or (
            lambda: detect(self.runs_file, engine_url_option=engine_url, token_file=token_file, env=env)
        )
        self._detection: Detection | None = None
        self._detected_at = 0.0
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        return getattr(self.inner, "kind", "file")

    # ── detection ─────────────────────────────────────────────────────────────

    def detection(self, *, fresh: bool = False) -> Detection:
        """The current detection (made again when older than :data:`DETECTION_MAX_AGE_S`)."""
        with self._lock:
            # Wall time, not the injectable clock: this paces probes of a real process.
            now = time.monotonic()
            if fresh or self._detection is None or now - self._detected_at > DETECTION_MAX_AGE_S:
                self._detection = self._detector()
                self._detected_at = now
            return self._detection

    def _forget_detection(self) -> None:
        with self._lock:
            self._detection = None

    def describe(self) -> SourceDescription:
        detection = self.detection()
        inner = self.inner.describe()
        if not detection.live:
            if detection.store.kind == STORE_SQLITE and self.kind == "file":
                return SourceDescription(
                    kind=inner.kind,
                    location=inner.location,
                    route=Route.NONE,
                    summary="engine stopped · SQLite store: read-only here",
                    engine_live=False,
                    why_read_only=_sqlite_refusal(detection),
                )
            return SourceDescription(
                kind=inner.kind,
                location=inner.location,
                route=inner.route,
                summary=inner.summary,
                engine_live=False,
            )
        if not detection.token.found:
            return SourceDescription(
                kind=inner.kind,
                location=inner.location,
                route=Route.NONE,
                summary="engine live · no token: read-only",
                engine_live=True,
                why_read_only=_no_token_refusal(detection),
            )
        if not detection.reachable:
            return SourceDescription(
                kind=inner.kind,
                location=inner.location,
                route=Route.NONE,
                summary="engine live · unreachable: read-only",
                engine_live=True,
                why_read_only=f"an engine owns the runs but its API does not answer: {detection.how_known}",
            )
        return SourceDescription(
            kind=inner.kind,
            location=inner.location,
            route=Route.ENGINE,
            summary="engine live · actions via API",
            engine_live=True,
        )

    # ── reading: the wrapped source's ──────────────────────────────────────────

    def read(self) -> Snapshot:
        return self.inner.read()

    def load(self) -> Snapshot:
        return self.inner.load()  # type: ignore[attr-defined]

    def follow(self, stop: threading.Event) -> Iterator[Snapshot]:
        return self.inner.follow(stop)

    def archive_months(self) -> dict[Month, list[ArchiveEntry]]:
        return self.inner.archive_months()

    def read_archived(self, entries: Sequence[ArchiveEntry]) -> list[ArchivedRead]:
        return self.inner.read_archived(entries)

    def find_run(self, run_id: str) -> FoundRun | None:
        return self.inner.find_run(run_id)

    def full_runs(self, runs: Sequence[Run | RunSummary]) -> dict[str, Run]:
        return self.inner.full_runs(runs)

    def keep_full(self, run_ids: Iterable[str]) -> None:
        self.inner.keep_full(run_ids)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # Whatever else the wrapped source offers (``poll``, ``max_concurrent_runs``...).
        if name == "inner":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    # ── the engine's own figures ───────────────────────────────────────────────

    def engine_metrics(self) -> dict[str, Any] | None:
        """The live engine's ``/scheduler/metrics``; None when no engine answers with our token."""
        detection = self.detection()
        if not (detection.reachable and detection.token.found):
            return None
        # Only now: with no engine, ``status --json`` never loads httpx.
        from tandem_tui.source.engine.client import EngineClient, EngineUnavailable

        with EngineClient(detection.url.url, detection.token.token, token_origin=detection.token.origin) as client:
            try:
                return client.scheduler_metrics()
            except EngineUnavailable:
                return None

    # ── acting ────────────────────────────────────────────────────────────────

    def perform(self, request: ActionRequest) -> ActionResult:
        """Route ``request``: the engine's API when one is live, else the wrapped source."""
        detection = self.detection()
        if not detection.live:
            if detection.store.kind == STORE_SQLITE and self.kind == "file":
                return self._engine_audited(
                    request, detection, _refused(request, _sqlite_refusal(detection), unusable=True), None
                )
            return self.inner.perform(request)
        return self._perform_on_engine(request, detection)

    def _perform_on_engine(self, request: ActionRequest, detection: Detection) -> ActionResult:
        request = _normalized(request, self.env)
        if ENGINE_ROUTES.get(request.kind.value) is not None and not detection.token.found:
            return self._engine_audited(request, detection, _refused(request, _no_token_refusal(detection), unusable=True), None)
        result, reply = act_through_engine(request, request.run_id, detection.url.url, detection.token)
        if isinstance(reply, Exception):
            self._forget_detection()  # the next attempt looks again
        return self._engine_audited(request, detection, result, reply)

    def _engine_audited(self, request: ActionRequest, detection: Detection, result: ActionResult, reply: Any) -> ActionResult:
        """One audit line for an attempt that did not go to the file route."""
        entry = engine_audit_entry(request, result, detection.url.url, reply, at_ms=self.clock.now_ms(), env=self.env)
        return append_engine_audit(self.runs_file, entry, result)


def _normalized(request: ActionRequest, env: Mapping[str, str]) -> ActionRequest:
    # Action rules load with the first action, not with every read.
    from tandem_tui.domain.actions import ActionKind, ActionRequest, normalized_reason
    return ActionRequest(
        kind=ActionKind(request.kind),
        run_id=request.run_id,
        reason=normalized_reason(request.reason),
        actor=(request.actor or "").strip() or default_actor(env),
        expect_updated_at_ms=request.expect_updated_at_ms,
        expect_state=request.expect_state,
    )


def act_through_engine(request: ActionRequest, engine_run_id: str, url: str, token: TokenSource) -> tuple[ActionResult, Any]:
    """``request`` (normalized) carried out by the live engine at ``url`` on its run
    ``engine_run_id``: ``(result, answer)``, the answer being the engine's last
    :class:`~tandem_tui.source.engine.client.EngineReply`, the
    :class:`~tandem_tui.source.engine.client.EngineUnavailable` that stopped it, or
    None (refused before any call). Never falls back to writing anything."""
    # Action rules load with the first action, not with every read.
    from tandem_tui.domain.actions import ActionKind, ActionResult, stale_view_refusal
    from tandem_tui.source.engine.client import EngineClient, EngineReply, EngineUnavailable

    route = ENGINE_ROUTES.get(ActionKind(request.kind).value)
    if route is None:
        return _refused(request, RELEASE_LOCK_REFUSAL), None
    if not token.found:
        return _refused(request, _no_token_message(token.origin), unusable=True), None
    reply: EngineReply
    with EngineClient(url, token.token, token_origin=token.origin) as client:
        try:
            # The run as the engine holds it: its status before, and the stale-view guard.
            current = client.get_run(engine_run_id)
            if not current.ok:
                return _engine_refusal(request, current, None), current
            before = _run_of(current.run)
            if before is not None:
                stale = stale_view_refusal(request, before)
                if stale is not None:
                    return _refused(request, stale.message, run=before), current
            reply = client.action(route, engine_run_id, request.reason)
        except EngineUnavailable as error:
            message = f"{error}; nothing was written (an engine owns these runs)"
            return _refused(request, message, unusable=True), error
    if not reply.ok:
        return _engine_refusal(request, reply, before), reply
    after = _run_of(reply.run)
    previous = before.status if before is not None else None
    new = after.status if after is not None else _status_of(reply.run)
    if reply.body.get("alreadyTerminal"):
        summary = f"already {new.value if new else 'terminal'}; nothing to cancel"
    else:
        summary = f"{previous.value if previous else '?'} -> {new.value if new else '?'}"
    result = ActionResult(
        ok=True,
        kind=request.kind,
        run_id=request.run_id,
        previous_status=previous,
        new_status=new,
        message=f"run {request.run_id}: {summary} (via the engine at {url})",
        run=after,
    )
    return result, reply


def engine_audit_entry(
    request: ActionRequest, result: ActionResult, url: str, reply: Any, *, at_ms: int, env: Mapping[str, str]
) -> AuditEntry:
    """The audit line (route ``engine``) of an attempt through a live engine."""
    # Action rules load with the first action, not with every read.
    from tandem_tui.domain.actions import ActionKind
    from tandem_tui.source.file.audit import AuditEntry
    return AuditEntry(
        at_ms=at_ms,
        actor=request.actor or default_actor(env),
        action=ActionKind(request.kind).value,
        run_id=request.run_id,
        previous_status=result.previous_status.value if result.previous_status else None,
        new_status=result.new_status.value if result.ok and result.new_status else None,
        reason=request.reason,
        result="ok" if result.ok else ("failed" if result.unusable else "refused"),
        message=result.message,
        route="engine",
        engine_url=url,
        engine_status=getattr(reply, "status", None),
        engine_code=getattr(reply, "code", None),
    )


def append_engine_audit(
    log_owner: str | os.PathLike[str], entry: AuditEntry, result: ActionResult, extra: Mapping[str, Any] | None = None
) -> ActionResult:
    """Append ``entry`` (plus ``extra`` fields) to the audit log of ``log_owner``; a failed
    append is said in the result's message, never hides the action."""
    # Action rules load with the first action, not with every read.
    from tandem_tui.domain.actions import ActionResult
    from tandem_tui.source.file.audit import append_audit
    try:
        append_audit(log_owner, {**entry.as_dict(), **(extra or {})} if extra else entry)
    except OSError as error:
        return ActionResult(
            **{**result.__dict__, "message": f"{result.message} (audit log not written: {error.strerror or error})"}
        )
    return result


def _run_of(value: dict[str, Any] | None) -> Run | None:
    """The engine's decorated run as our model (its decoration removed), or None."""
    if not isinstance(value, dict):
        return None
    record = {key: item for key, item in value.items() if key not in DECORATION_KEYS}
    try:
        return parse_run(record)
    except Exception:  # noqa: BLE001 - a run we cannot model still leaves the answer usable
        return None


def _status_of(value: dict[str, Any] | None) -> RunStatus | None:
    status = value.get("status") if isinstance(value, dict) else None
    try:
        return RunStatus(status)
    except ValueError:
        return None


def _refused(request: ActionRequest, message: str, *, unusable: bool = False, run: Run | None = None) -> ActionResult:
    # Action rules load with the first action, not with every read.
    from tandem_tui.domain.actions import ActionKind, ActionResult
    return ActionResult(
        ok=False,
        kind=ActionKind(request.kind),
        run_id=request.run_id,
        previous_status=run.status if run is not None else None,
        new_status=run.status if run is not None else None,
        message=message,
        run=run,
        unusable=unusable,
    )


def _engine_refusal(request: ActionRequest, reply: Any, run: Run | None) -> ActionResult:
    """A 409/404 from the engine: its message and code, as the user's one line."""
    # Action rules load with the first action, not with every read.
    from tandem_tui.domain.actions import ActionKind
    if reply.status == 404 and reply.code == "AUTOMATION_V2_RUN_NOT_FOUND":
        message = f"run {request.run_id} not found by the engine ({reply.code})"
    else:
        verb = ActionKind(request.kind).verb
        message = f"cannot {verb} run {request.run_id}: the engine says {reply.message}" + (
            f" ({reply.code})" if reply.code else ""
        )
    return _refused(request, message, run=run)


def _no_token_refusal(detection: Detection) -> str:
    return (
        f"an engine is live ({detection.how_known}) but there is no API token to act through it "
        f"({detection.token.origin}); give --token-file or TANDEM_API_TOKEN. Nothing was written."
    )


def _no_token_message(origin: str) -> str:
    return f"an engine is live but there is no API token to act through it ({origin}); give --token-file or TANDEM_API_TOKEN. Nothing was written."


def _sqlite_refusal(detection: Detection) -> str:
    return (
        f"the SQLite store is authoritative ({detection.store.why}); writing the runs file would be "
        "ignored at the engine's next start. Nothing was written."
    )
