"""The simulate engine's HTTP API answers like the Tandem engine: routes, status codes,
error codes, response shapes and the token. A real serving process on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest

ENGINE_ARGS = ("--pace", "0.1", "--rate", "2", "--max-concurrent", "3", "--seed", "3")


@pytest.fixture
def engine(serving_engine):
    return serving_engine(*ENGINE_ARGS)


@pytest.fixture
def api(engine):
    with httpx.Client(base_url=engine.url, headers={"Authorization": f"Bearer {engine.token}"}, timeout=10) as client:
        yield client


def a_run(api, *statuses: str) -> dict:
    runs = api.get("/automations/v2/runs", params={"limit": 200}).json()["runs"]
    return next(run for run in runs if run["status"] in statuses)


def test_health_answers_without_a_token(engine):
    response = httpx.get(f"{engine.url}/global/health")
    assert (response.status_code, response.json()) == (200, {"healthy": True, "ready": True})


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer tk_wrong"}, {"X-Tandem-Token": "tk_wrong"}])
def test_every_other_route_needs_the_token(engine, headers):
    for path in ("/automations/v2/runs", "/scheduler/metrics", "/automations/v2/runs/x", "/nowhere"):
        response = httpx.get(f"{engine.url}{path}", headers=headers)
        assert response.status_code == 401
        assert response.json() == {
            "error": "Unauthorized: missing or invalid API token", "code": "AUTH_REQUIRED", "retryable": False,
        }


@pytest.mark.parametrize("header", ["X-Tandem-Token", "X-Agent-Token"])
def test_the_token_is_also_taken_from_the_engines_other_headers(engine, header):
    assert httpx.get(f"{engine.url}/scheduler/metrics", headers={header: engine.token}).status_code == 200


def test_listing_runs_is_newest_first_with_a_count_and_a_clamped_limit(api):
    body = api.get("/automations/v2/runs").json()
    assert set(body) == {"runs", "count"} and body["count"] == len(body["runs"]) <= 50
    created = [run["created_at_ms"] for run in body["runs"]]
    assert created == sorted(created, reverse=True)
    assert api.get("/automations/v2/runs", params={"limit": 0}).json()["count"] == 1
    assert api.get("/automations/v2/runs", params={"limit": "abc"}).status_code == 400


def test_one_run_comes_with_its_context_links_and_an_unknown_one_is_the_engines_404(api):
    run = a_run(api, "queued", "running")
    body = api.get(f"/automations/v2/runs/{run['run_id']}").json()
    assert set(body) == {"run", "contextRunID", "linked_context_run_id"}
    assert body["contextRunID"] == f"automation-v2-{run['run_id']}" == body["run"]["contextRunID"]
    assert {"blockedNodeIDs", "lastActivityAtMs", "needsRepairNodeIDs"} <= set(body["run"])
    missing = api.get("/automations/v2/runs/no-such-run")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Run not found", "code": "AUTOMATION_V2_RUN_NOT_FOUND", "runID": "no-such-run"}


def test_pause_then_resume_answer_the_engines_shapes_and_409_codes(api):
    run_id = a_run(api, "queued", "running")["run_id"]

    paused = api.post(f"/automations/v2/runs/{run_id}/pause", json={"reason": "  look  "})
    assert paused.status_code == 200
    body = paused.json()
    assert set(body) == {"ok", "run", "contextRunID", "linked_context_run_id"} and body["ok"] is True
    assert body["run"]["status"] == "paused" and body["run"]["pause_reason"] == "look"
    assert [e["event"] for e in body["run"]["checkpoint"]["lifecycle_history"][-2:]] == ["run_pause_requested", "run_paused"]

    again = api.post(f"/automations/v2/runs/{run_id}/pause", json={})
    assert (again.status_code, again.json()) == (
        409, {"error": "Run is not pausable", "code": "AUTOMATION_V2_RUN_NOT_PAUSABLE", "runID": run_id},
    )
    resumed = api.post(f"/automations/v2/runs/{run_id}/resume", json={})
    assert resumed.status_code == 200 and resumed.json()["run"]["status"] == "queued"
    assert resumed.json()["run"]["resume_reason"] == "resumed by operator"  # blank reason: the default
    not_paused = api.post(f"/automations/v2/runs/{run_id}/resume", json={})
    assert not_paused.status_code == 409 and not_paused.json()["code"] == "AUTOMATION_V2_RUN_NOT_PAUSED"


def test_recover_of_a_run_that_is_not_failed_paused_or_blocked_is_refused_with_the_engines_code(api):
    run_id = a_run(api, "queued", "running")["run_id"]
    response = api.post(f"/automations/v2/runs/{run_id}/recover", json={})
    assert response.status_code == 409
    assert response.json() == {"error": "Run is not recoverable", "code": "AUTOMATION_V2_RUN_NOT_RECOVERABLE", "runID": run_id}


def test_recover_of_a_paused_run_queues_it_again(api):
    run_id = a_run(api, "queued", "running")["run_id"]
    assert api.post(f"/automations/v2/runs/{run_id}/pause", json={}).status_code == 200
    response = api.post(f"/automations/v2/runs/{run_id}/recover", json={"reason": "again"})
    assert response.status_code == 200 and response.json()["run"]["status"] == "queued"


def test_an_action_needs_a_json_body_as_the_engines_extractor_does(api):
    run_id = a_run(api, "queued", "running")["run_id"]
    path = f"/automations/v2/runs/{run_id}/pause"
    assert api.post(path, content=b"{}").status_code == 415
    assert api.post(path, content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    assert api.post(path, json={"reason": 5}).status_code == 422
    assert api.get(path).status_code == 405


def test_scheduler_metrics_has_the_engines_fields(api):
    body = api.get("/scheduler/metrics").json()
    assert set(body) == {"active_runs", "queued_runs_by_reason", "admitted_total", "completed_total", "avg_wait_ms", "p95_wait_ms"}
    assert body["active_runs"] <= 3


def test_the_engine_writes_its_port_and_url_and_a_private_token_file(engine):
    assert engine.url == f"http://127.0.0.1:{engine.port}"
    assert engine.token.startswith("tk_") and len(engine.token) == 35
    assert engine.token_file == engine.state_dir / "security" / "engine_api_token"
    assert engine.token_file.stat().st_mode & 0o777 == 0o600


def test_a_clean_stop_removes_engine_json(engine):
    engine.stop()
    assert engine.process.returncode == 0
    assert not (engine.state_dir / "engine.json").exists()


def test_cancel_of_a_finished_run_is_an_idempotent_200_that_records_nothing(serving_engine, tmp_path):
    import json

    from tandem_tui.domain.models import dump_run
    from tandem_tui.simulate import AUTOMATIONS, build_run

    state_dir = tmp_path / "seeded"
    (state_dir / "data").mkdir(parents=True)
    now_ms = int(__import__("time").time() * 1000)
    done = build_run(AUTOMATIONS[0], run_id="finished-run", workspace_root=None, now_ms=now_ms)
    record = {**dump_run(done), "status": "completed", "finished_at_ms": now_ms}
    (state_dir / "data" / "automation_v2_runs.json").write_text(
        json.dumps({"schema_version": 1, "runs": {"finished-run": record}})
    )
    engine = serving_engine("--rate", "0", state_dir=state_dir)
    with httpx.Client(base_url=engine.url, headers={"X-Tandem-Token": engine.token}) as api:
        response = api.post("/automations/v2/runs/finished-run/cancel", json={"reason": "stop"})

    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["alreadyTerminal"] is True
    assert body["run"]["status"] == "completed"
    assert body["run"]["checkpoint"]["lifecycle_history"] == record["checkpoint"]["lifecycle_history"]
