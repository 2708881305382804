"""A small synchronous client for the live engine's HTTP API (httpx).

It calls what the console needs (the engine's routes, frumu-ai/tandem
``routes_routines_automations.rs``): pause, resume, recover and cancel a run with
``{"reason": ...}``, get one run, list runs, and ``/scheduler/metrics``. It maps the
engine's answers:

- 200 -> :class:`EngineReply` with the run the engine returns;
- 409 / 404 -> :class:`EngineReply` carrying the engine's ``code`` and ``error`` message
  (a refusal: the engine is fine, the action is not);
- connection refused, timeout, 401/403, anything else -> :class:`EngineUnavailable`, one
  line naming the cause (for 401/403 also where the token came from).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

#: An action on loopback takes milliseconds; a slow save on a big host a few seconds.
ACTION_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 5.0


class EngineUnavailable(Exception):
    """The engine cannot be used for this call, in one line (the CLI's exit 2).

    ``status``/``code``: the engine's HTTP status and error code when it answered."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class EngineReply:
    """An answer from the engine: 200 with a body, or a refusal (409/404) with its code."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def code(self) -> str | None:
        code = self.body.get("code")
        return code if isinstance(code, str) else None

    @property
    def message(self) -> str:
        error = self.body.get("error")
        return error if isinstance(error, str) and error else f"HTTP {self.status}"

    @property
    def run(self) -> dict[str, Any] | None:
        run = self.body.get("run")
        return run if isinstance(run, dict) else None


def tls_verify(url: str) -> bool:
    """Verify certificates only where there is TLS: building the default SSL context
    costs ~30 ms per client, for nothing on the engine's plain ``http://`` loopback."""
    return not url.lower().startswith("http://")


class EngineClient:
    """One engine at ``url``, with ``token`` whose origin (``token_origin``) names it in errors."""

    def __init__(self, url: str, token: str | None, *, token_origin: str = "no token", timeout: float = ACTION_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.token_origin = token_origin
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, verify=tls_verify(self.url))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ── the calls ────────────────────────────────────────────────────────────

    def action(self, route: str, run_id: str, reason: str | None) -> EngineReply:
        """``POST /automations/v2/runs/{run_id}/{route}``; route is pause|resume|recover|cancel."""
        body = {"reason": reason} if reason else {}
        return self._call("POST", f"/automations/v2/runs/{quote(run_id, safe='')}/{route}", json=body)

    def get_run(self, run_id: str) -> EngineReply:
        return self._call("GET", f"/automations/v2/runs/{quote(run_id, safe='')}", timeout=READ_TIMEOUT_S)

    def list_runs(self, limit: int = 200) -> list[dict[str, Any]]:
        reply = self._call("GET", "/automations/v2/runs", params={"limit": limit}, timeout=READ_TIMEOUT_S)
        runs = reply.body.get("runs") if reply.ok else None
        if not isinstance(runs, list):
            raise EngineUnavailable(f"engine at {self.url}: unexpected answer to listing runs (HTTP {reply.status})")
        return [run for run in runs if isinstance(run, dict)]

    def scheduler_metrics(self) -> dict[str, Any]:
        reply = self._call("GET", "/scheduler/metrics", timeout=READ_TIMEOUT_S)
        if not reply.ok:
            raise EngineUnavailable(f"engine at {self.url}: /scheduler/metrics answered HTTP {reply.status}")
        return reply.body

    # ── one call and its mapping ──────────────────────────────────────────────

    def _call(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> EngineReply:
        try:
            extra = {"timeout": timeout} if timeout is not None else {}
            response = self._http.request(method, path, **kwargs, **extra)
        except httpx.ConnectError:
            raise EngineUnavailable(f"engine at {self.url} refused the connection (it stopped?)") from None
        except httpx.TimeoutException:
            raise EngineUnavailable(f"engine at {self.url} did not answer in time") from None
        except httpx.HTTPError as error:
            raise EngineUnavailable(f"engine at {self.url}: {type(error).__name__}: {error}") from None
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            text = " ".join(response.text.split())[:200]
            body = {"error": text} if text else {}
        if status in (401, 403):
            what = "unauthorized" if status == 401 else "forbidden"
            raise EngineUnavailable(
                f"engine at {self.url} answered {status} {what} with the token from {self.token_origin}"
                + (f": {body['error']}" if body.get("error") else ""),
                status,
                body.get("code") if isinstance(body.get("code"), str) else None,
            )
        if status in (200, 404, 409):
            return EngineReply(status, body)
        error = body.get("error") if isinstance(body.get("error"), str) else ""
        raise EngineUnavailable(
            f"engine at {self.url} answered HTTP {status}" + (f": {error}" if error else ""),
            status,
            body.get("code") if isinstance(body.get("code"), str) else None,
        )
