"""The run record reads and writes back losslessly."""

import pytest
from pydantic_core import ValidationError

from tandem_tui.domain.models import LifecycleRecord, RunStatus, dump_run, parse_run

MINIMAL = {
    "run_id": "run-1",
    "automation_id": "auto-1",
    "status": "queued",
    "created_at_ms": 1,
    "updated_at_ms": 2,
}


def test_unknown_fields_at_every_level_survive_a_round_trip():
    raw = {
        **MINIMAL,
        "future_field": {"nested": [1, 2, {"x": None}]},
        "tenant_context": {"org_id": "o", "workspace_id": "w", "source": "explicit", "region": "eu"},
        "checkpoint": {
            "lifecycle_history": [{"event": "e", "recorded_at_ms": 3, "new": True}],
            "last_failure": {"node_id": "n", "reason": "r", "failed_at_ms": 4, "extra": "kept"},
            "another": 1,
        },
        "execution_claim": {
            "claim_id": "c", "claimant_id": "me", "claimed_at_ms": 1,
            "lease_expires_at_ms": 2, "lease_epoch": 1, "host": "h",
        },
        "scheduler": {"queue_reason": "capacity", "queued_at_ms": 5, "shard": 3},
    }
    assert dump_run(parse_run(raw)) == raw


def test_absent_optional_fields_stay_absent_and_nulls_stay_null():
    raw = {**MINIMAL, "detail": None}
    run = parse_run(raw)
    run.pause_reason = None
    assert dump_run(run) == raw


def test_a_first_event_on_a_record_without_checkpoint_is_written():
    run = parse_run(MINIMAL)
    run.checkpoint.lifecycle_history.append(LifecycleRecord(event="x", recorded_at_ms=9))
    assert dump_run(run)["checkpoint"] == {"lifecycle_history": [{"event": "x", "recorded_at_ms": 9}]}


@pytest.mark.parametrize("field,value", [("created_at_ms", 1.5), ("created_at_ms", -1), ("status", "exploded")])
def test_values_the_server_would_reject_are_parse_errors(field, value):
    with pytest.raises(ValidationError):
        parse_run({**MINIMAL, field: value})


def test_workspace_root_is_the_trimmed_snapshot_root():
    assert parse_run({**MINIMAL, "automation_snapshot": {"workspace_root": "  /w/a "}}).workspace_root == "/w/a"
    assert parse_run({**MINIMAL, "automation_snapshot": {"workspace_root": "  "}}).workspace_root is None
    assert parse_run(MINIMAL).status is RunStatus.QUEUED
