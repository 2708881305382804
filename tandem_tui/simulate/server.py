"""The simulate engine's HTTP API: the Tandem engine's routes, answers and token, on loopback.

``tandem-tui simulate --serve PORT`` answers what the console uses of a live engine,
with the engine's status codes, error codes and response shapes (frumu-ai/tandem
``http/routines_automations_parts/part04.rs``, ``middleware.rs``, ``global.rs``):

- ``GET /global/health`` (no token) -> ``{"healthy": true, "ready": true}``;
- ``GET /automations/v2/runs?limit=N`` -> ``{"runs": [...], "count": N}``, newest
  first, ``limit`` 50 by default, clamped to 1..200;
- ``GET /automations/v2/runs/{id}`` -> ``{"run", "contextRunID", "linked_context_run_id"}``;
- ``POST /automations/v2/runs/{id}/pause|resume|recover|cancel`` with a JSON body
  ``{"reason": ...}`` -> ``{"ok": true, "run", ...}``, 409 with the engine's code when
  the run's status does not allow it, 404 ``AUTOMATION_V2_RUN_NOT_FOUND``;
- ``GET /scheduler/metrics`` -> the ``AutomationSchedulerMetrics`` fields.

Every route but health needs the token (``Authorization: Bearer``, ``X-Tandem-Token``
or ``X-Agent-Token``), else 401 ``AUTH_REQUIRED``. The action handlers check the
statuses the engine's handlers check, then call OUR domain (``preview``/``decide``/
``apply_action`` through the ``ACTIONS`` registry) on the engine's in-memory run, so the
engine route and the offline file route cannot drift apart.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tandem_tui.domain import events
from tandem_tui.domain.actions import ActionKind, ActionRequest, Refusal, apply_action, decide
from tandem_tui.domain.lifecycle import apply_run_update
from tandem_tui.domain.models import Run, RunStatus, dump_run
from tandem_tui.domain.scheduler import AutomationScheduler
from tandem_tui.simulate.engine import Engine

HOST = "127.0.0.1"
#: Who the operator metadata of an API action names: the engine knows only a token.
API_ACTOR = "engine-api"
RUNS_PREFIX = "/automations/v2/runs"
#: The engine's request body limit (router.rs: 10 MiB).
BODY_LIMIT = 10 * 1024 * 1024

#: Statuses the cancel handler treats as already terminal (``Blocked`` is not one).
_CANCEL_TERMINAL = frozenset({RunStatus.CANCELLED, RunStatus.COMPLETED, RunStatus.FAILED})

_UNAUTHORIZED = {"error": "Unauthorized: missing or invalid API token", "code": "AUTH_REQUIRED", "retryable": False}


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status and a JSON body, or plain text (axum's extractor rejections)."""

    status: int
    body: Any = None
    text: str | None = None


# ── the action handlers ───────────────────────────────────────────────────────


def _conflict(error: str, code: str, run_id: str) -> Answer:
    return Answer(409, {"error": error, "code": code, "runID": run_id})


def _not_found(run_id: str) -> Answer:
    return Answer(404, {"error": "Run not found", "code": "AUTOMATION_V2_RUN_NOT_FOUND", "runID": run_id})


def blocked_node_ids(run: Run) -> list[str]:
    """``automation_v2_blocked_node_ids``: blocked nodes plus outputs whose status is blocked."""
    ids = set(run.checkpoint.blocked_nodes)
    for node_id, output in run.checkpoint.node_outputs.items():
        if not isinstance(output, dict):
            continue
        status = output.get("status")
        if status is None and isinstance(output.get("content"), dict):
            status = output["content"].get("status")
        if isinstance(status, str) and status.strip().lower() == "blocked":
            ids.add(node_id)
    return sorted(ids)


def _pause_gate(run: Run) -> Answer | None:
    if run.status not in (RunStatus.RUNNING, RunStatus.QUEUED):
        return _conflict("Run is not pausable", "AUTOMATION_V2_RUN_NOT_PAUSABLE", run.run_id)
    return None


def _resume_gate(run: Run) -> Answer | None:
    if run.status != RunStatus.PAUSED:
        return _conflict("Run is not paused", "AUTOMATION_V2_RUN_NOT_PAUSED", run.run_id)
    return None


def _recover_gate(run: Run) -> Answer | None:
    blocked = bool(blocked_node_ids(run))
    recoverable = run.status in (RunStatus.FAILED, RunStatus.PAUSED, RunStatus.BLOCKED) or (
        run.status == RunStatus.COMPLETED and blocked
    )
    if not recoverable:
        return _conflict("Run is not recoverable", "AUTOMATION_V2_RUN_NOT_RECOVERABLE", run.run_id)
    return None


def _recover_refusal(run: Run) -> Answer:
    """The engine's 409 for a recover our domain refuses after the status gate."""
    if run.status == RunStatus.FAILED:
        return _conflict("Run has no recoverable failed node", "AUTOMATION_V2_RUN_FAILURE_CONTEXT_MISSING", run.run_id)
    if run.status in (RunStatus.BLOCKED, RunStatus.COMPLETED):
        return _conflict("Run has no recoverable blocked node", "AUTOMATION_V2_RUN_BLOCKED_CONTEXT_MISSING", run.run_id)
    return _conflict("Run is not recoverable", "AUTOMATION_V2_RUN_NOT_RECOVERABLE", run.run_id)


def _cancel_gate(run: Run) -> Answer | None:
    return None  # a cancel never answers 409; terminal runs are handled before the domain


def _update_failed(run: Run) -> Answer:
    return Answer(500, {"error": "Run update failed", "code": "AUTOMATION_V2_RUN_UPDATE_FAILED"})


@dataclass(frozen=True)
class _Route:
    """One action route: the domain's action kind (None: not in this domain yet), the
    engine's status gate, and the engine's answer should the domain refuse after it."""

    kind: ActionKind | None
    gate: Callable[[Run], Answer | None]
    refusal: Callable[[Run], Answer]


#: The four action routes. ``cancel`` maps to the domain's CANCEL only where the domain
#: has one (another branch adds it); without it the route answers 501.
ROUTES: dict[str, _Route] = {
    "pause": _Route(ActionKind.PAUSE, _pause_gate, _update_failed),
    "resume": _Route(ActionKind.RESUME, _resume_gate, _update_failed),
    "recover": _Route(ActionKind.REQUEUE, _recover_gate, _recover_refusal),
    "cancel": _Route(getattr(ActionKind, "CANCEL", None), _cancel_gate, _update_failed),
}


def decorated_run(run: Run) -> dict[str, Any]:
    """The run as the engine answers it (``automation_v2_run_with_context_links``)."""
    value = dump_run(run)
    context_id = f"automation-v2-{run.run_id}"
    activity = [
        record.recorded_at_ms
        for record in run.checkpoint.lifecycle_history
        if record.event not in events.CLAIM_BOOKKEEPING_EVENTS
    ]
    last_activity = max(activity) if activity else (run.started_at_ms or run.created_at_ms)
    blocked = blocked_node_ids(run)
    value["checkpoint"] = {**value.get("checkpoint", {}), "blocked_nodes": blocked}
    value.update(
        {
            "contextRunID": context_id,
            "linked_context_run_id": context_id,
            "blockedNodeIDs": blocked,
            "last_activity_at_ms": last_activity,
            "lastActivityAtMs": last_activity,
            "nodeRepairGuidance": {},
            "needsRepairNodeIDs": [],
            "nodeAttemptEvidence": {},
        }
    )
    return value


def _run_answer(run: Run, **extra: Any) -> Answer:
    context_id = f"automation-v2-{run.run_id}"
    return Answer(
        200,
        {**extra, "run": decorated_run(run), "contextRunID": context_id, "linked_context_run_id": context_id},
    )


def run_action(engine: Engine, action: str, run_id: str, reason: str | None) -> Answer:
    """``POST /automations/v2/runs/{run_id}/{action}`` on the engine's in-memory run."""
    route = ROUTES[action]
    reason = (reason or "").strip() or None  # reason_or_default: blank is the default

    def handle(run: Run, now_ms: int, scheduler: AutomationScheduler) -> tuple[Answer, bool]:
        if action == "cancel" and run.status in _CANCEL_TERMINAL:
            return _already_terminal(run, now_ms, scheduler)
        gated = route.gate(run)
        if gated is not None:
            return gated, False
        if route.kind is None:
            return Answer(501, {"error": f"{action} is not in this simulator's domain", "code": "NOT_IMPLEMENTED"}), False
        request = ActionRequest(kind=route.kind, run_id=run.run_id, reason=reason, actor=API_ACTOR)
        outcome = decide(request, run, now_ms)
        if isinstance(outcome, Refusal):
            return route.refusal(run), False
        apply_action(run, outcome, reason=reason, actor=API_ACTOR, now_ms=now_ms, scheduler=scheduler)
        return _run_answer(run, ok=True), True

    answer = engine.act(run_id, handle)
    return answer if answer is not None else _not_found(run_id)


def _already_terminal(run: Run, now_ms: int, scheduler: AutomationScheduler) -> tuple[Answer, bool]:
    """Cancel of a finished run: 200 ``alreadyTerminal``; only leftover handles are cleared."""
    changed = bool(run.active_session_ids or run.active_instance_ids)
    if changed:

        def clear(run: Run) -> None:
            run.active_session_ids.clear()
            run.active_instance_ids.clear()
            run.latest_session_id = None

        apply_run_update(run, clear, now_ms=now_ms, scheduler=scheduler)
    return _run_answer(run, ok=True, alreadyTerminal=True), changed


def list_runs(engine: Engine, query: dict[str, list[str]]) -> Answer:
    raw = query.get("limit", [None])[-1]
    if raw is None:
        limit = 50
    else:
        try:
            limit = int(raw)
            if limit < 0:
                raise ValueError
        except ValueError:
            return Answer(400, text="Failed to deserialize query string: limit: invalid digit found in string")
    limit = min(max(limit, 1), 200)
    runs = sorted(engine.runs(), key=lambda run: run.created_at_ms, reverse=True)[:limit]
    return Answer(200, {"runs": [decorated_run(run) for run in runs], "count": len(runs)})


def get_run(engine: Engine, run_id: str) -> Answer:
    run = next((run for run in engine.runs() if run.run_id == run_id), None)
    if run is None:
        return _not_found(run_id)
    context_id = f"automation-v2-{run.run_id}"
    return Answer(200, {"run": decorated_run(run), "contextRunID": context_id, "linked_context_run_id": context_id})


# ── HTTP ─────────────────────────────────────────────────────────────────────


def _token_of(headers: Any) -> str | None:
    """``extract_request_token``: X-Agent-Token, X-Tandem-Token, then Authorization: Bearer."""
    for name in ("X-Agent-Token", "X-Tandem-Token"):
        value = (headers.get(name) or "").strip()
        if value:
            return value
    authorization = (headers.get("Authorization") or "").strip()
    for prefix in ("Bearer ", "bearer "):
        if authorization.startswith(prefix):
            token = authorization[len(prefix):].strip()
            return token or None
    return None


class _Handler(BaseHTTPRequestHandler):
    server: EngineHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, the second waits for the
    # client's delayed ACK (~40 ms per answer on loopback).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Quiet: the engine's stderr is for its own lines."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        try:
            answer = self._answer(method)
        except Exception as error:  # noqa: BLE001 - a handler bug is a 500, not a dead server
            answer = Answer(500, {"error": f"internal error: {type(error).__name__}", "code": "INTERNAL"})
        self._send(answer, head=method == "HEAD")

    def _answer(self, method: str) -> Answer:
        parts = urlsplit(self.path)
        path = parts.path
        length = int(self.headers.get("Content-Length") or 0)
        if length > BODY_LIMIT:
            return Answer(413, text="length limit exceeded")
        body = self.rfile.read(length) if length else b""
        if path == "/global/health" and method in ("GET", "HEAD"):
            return Answer(200, {"healthy": True, "ready": True})
        token = _token_of(self.headers)
        expected = self.server.token
        if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
            return Answer(401, _UNAUTHORIZED)
        engine = self.server.engine
        if path == "/scheduler/metrics":
            return Answer(200, engine.metrics().as_dict()) if method in ("GET", "HEAD") else Answer(405)
        if path == RUNS_PREFIX:
            return list_runs(engine, parse_qs(parts.query)) if method in ("GET", "HEAD") else Answer(405)
        if path.startswith(RUNS_PREFIX + "/"):
            rest = [unquote(segment) for segment in path[len(RUNS_PREFIX) + 1:].split("/")]
            if len(rest) == 1 and rest[0]:
                return get_run(engine, rest[0]) if method in ("GET", "HEAD") else Answer(405)
            if len(rest) == 2 and rest[0] and rest[1] in ROUTES:
                if method != "POST":
                    return Answer(405)
                reason = _reason_from(self.headers.get("Content-Type"), body)
                if isinstance(reason, Answer):
                    return reason
                return run_action(engine, rest[1], rest[0], reason)
        return Answer(404)

    def _send(self, answer: Answer, *, head: bool) -> None:
        if answer.text is not None:
            payload, content_type = answer.text.encode(), "text/plain; charset=utf-8"
        elif answer.body is not None:
            payload, content_type = json.dumps(answer.body).encode(), "application/json"
        else:
            payload, content_type = b"", None
        self.send_response(answer.status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if not head:
            self.wfile.write(payload)


def _reason_from(content_type: str | None, body: bytes) -> str | None | Answer:
    """The ``Json<RoutineRunDecisionInput>`` extractor: 415, 400 or 422 like axum's."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if not (mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))):
        return Answer(415, text="Expected request with `Content-Type: application/json`")
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        return Answer(400, text=f"Failed to parse the request body as JSON: {error}")
    if not isinstance(value, dict):
        return Answer(422, text="Failed to deserialize the JSON body into the target type: expected a map")
    reason = value.get("reason")
    if reason is not None and not isinstance(reason, str):
        return Answer(422, text="Failed to deserialize the JSON body into the target type: reason: expected a string")
    return reason


#: How often (s) the serving thread looks for a shutdown request.
SHUTDOWN_POLL_S = 0.05


class EngineHTTPServer(ThreadingHTTPServer):
    """The engine's API on ``127.0.0.1``; one thread per connection."""

    daemon_threads = True

    def __init__(self, engine: Engine, token: str, port: int = 0) -> None:
        self.engine = engine
        self.token = token
        super().__init__((HOST, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> EngineHTTPServer:
        # serve_forever looks at a shutdown request only between two polls: its default
        # 0.5 s made every stop of the engine (and so every `q` of the demo) wait for it.
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S}, name="engine-api", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def serve(engine: Engine, token: str, port: int = 0) -> EngineHTTPServer:
    """Start answering the engine's API on ``127.0.0.1:port`` (0: a free port) in a thread."""
    return EngineHTTPServer(engine, token, port).start()


# ── the files a serving engine leaves for its clients ──────────────────────────

#: ``<state dir>/engine.json``: where the serving simulator listens (its own file; the
#: real engine writes none, clients find it by URL).
ENGINE_JSON = "engine.json"


def token_file_for_state_dir(state_dir: str | os.PathLike[str]) -> Path:
    """``<state dir>/security/engine_api_token``: the engine's token file when the state
    dir is the Tandem home (``TANDEM_STATE_DIR`` stands in for it upstream)."""
    return Path(state_dir) / "security" / "engine_api_token"


def load_or_create_token(state_dir: str | os.PathLike[str], env: Mapping[str, str]) -> tuple[str, Path | None]:
    """The token, by the engine's precedence: ``TANDEM_API_TOKEN``, the file named by
    ``TANDEM_API_TOKEN_FILE``, else the token file (created ``tk_<32 hex>``, mode 0600).

    Returns the token and the file it is in (None when it came from the environment).
    Raises ``ValueError`` for an empty or unreadable ``TANDEM_API_TOKEN_FILE``, as the
    engine refuses to start then.
    """
    token = (env.get("TANDEM_API_TOKEN") or "").strip()
    if token:
        return token, None
    named = (env.get("TANDEM_API_TOKEN_FILE") or "").strip()
    if named:
        try:
            token = Path(named).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ValueError(f"TANDEM_API_TOKEN_FILE {named}: {error.strerror or error}") from None
        if not token:
            raise ValueError(f"TANDEM_API_TOKEN_FILE {named}: empty")
        return token, Path(named)
    path = token_file_for_state_dir(state_dir)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token, path
    token = f"tk_{uuid.uuid4().hex}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token)
    return token, path


def write_engine_json(state_dir: str | os.PathLike[str], server: EngineHTTPServer, token_file: Path | None) -> Path:
    """Write ``<state dir>/engine.json`` (port, url, pid, token file) atomically."""
    from tandem_tui.source.file.atomic import write_text_atomic

    path = Path(state_dir) / ENGINE_JSON
    info = {
        "port": server.port,
        "url": server.url,
        "pid": os.getpid(),
        "token_file": str(token_file) if token_file is not None else None,
    }
    write_text_atomic(path, json.dumps(info, indent=2) + "\n")
    return path
