"""The runs file is read as the server's serde_json reads it: same verdict, entry by entry.

Each test names the server behaviour it pins (tandem-server ``automation_v2_run_store.rs``,
``parse_automation_v2_runs_file`` / ``recover_corrupt_automation_v2_run_entry``, and the
record types of ``tandem-automation/src/types.rs`` at v0.7.2): a field serde would refuse
makes the entry a recovered, blocked run; JSON serde_json refuses rejects the whole file.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tandem_tui.domain.models import RunStatus, TenantSource, dump_run
from tandem_tui.source.file.store import RunsFileError, parse_runs_document, parse_runs_file, serialize_runs_file

NOW = 1_795_400_000_000


def record(**fields: Any) -> dict[str, Any]:
    base = {
        "run_id": "run-1",
        "automation_id": "auto-1",
        "trigger_type": "manual",
        "status": "queued",
        "created_at_ms": 1_795_300_000_000,
        "updated_at_ms": 1_795_300_000_500,
        "checkpoint": {},
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def load_text(text: str):
    runs, _ = parse_runs_file(text, now_ms=NOW)
    return runs["run-1"]


def load(entry: dict[str, Any]):
    return load_text(json.dumps({"schema_version": 1, "runs": {"run-1": entry}}))


def parse_error(run) -> str:
    assert run.status == RunStatus.BLOCKED
    event = run.checkpoint.lifecycle_history[0]
    assert event.event == "run_blocked_corrupt_checkpoint"
    return event.metadata["parse_error"]


def with_checkpoint(**checkpoint: Any) -> dict[str, Any]:
    return record(checkpoint=checkpoint)


# --- required fields without a serde default --------------------------------------------


def test_an_entry_missing_trigger_type_is_recovered_as_blocked_like_the_server():
    run = load(record(trigger_type=_DROP))
    assert parse_error(run) == "record: missing field `trigger_type`"
    assert run.trigger_type == "recovered"


def test_an_entry_missing_its_checkpoint_is_recovered_as_blocked_like_the_server():
    assert parse_error(load(record(checkpoint=_DROP))) == "record: missing field `checkpoint`"


def test_a_present_tenant_context_without_its_ids_is_recovered_with_the_local_tenant():
    run = load(record(tenant_context={"org_id": "acme", "source": "explicit"}))
    assert "missing field `workspace_id`" in parse_error(run)
    assert (run.tenant_context.org_id, run.tenant_context.source) == ("local", TenantSource.LOCAL_IMPLICIT)


def test_an_absent_tenant_context_is_the_local_implicit_one():
    run = load(record())
    assert run.status == RunStatus.QUEUED and run.tenant_context.org_id == "local"


# --- numbers as serde reads them --------------------------------------------------------


def test_a_u64_beyond_its_range_is_refused_like_serde():
    # serde_json reads 2**64 as a float, which a u64 field refuses.
    text = json.dumps({"schema_version": 1, "runs": {"run-1": record()}}).replace(
        "1795300000500", "18446744073709551616"
    )
    assert "updated_at_ms" in parse_error(load_text(text))


def test_the_largest_u64_is_accepted():
    assert load(record(total_tokens=2**64 - 1)).total_tokens == 2**64 - 1


def test_u32_node_attempts_beyond_their_range_are_refused_like_serde():
    assert "node_attempts" in parse_error(load(with_checkpoint(node_attempts={"n": 2**32})))
    assert load(with_checkpoint(node_attempts={"n": 2**32 - 1})).status == RunStatus.QUEUED


def test_minus_zero_into_a_u64_is_refused_because_serde_reads_it_as_a_float():
    text = json.dumps({"schema_version": 1, "runs": {"run-1": record(prompt_tokens=7)}}).replace(": 7", ": -0")
    assert "prompt_tokens" in parse_error(load_text(text))


def test_minus_zero_in_an_untyped_value_is_written_back_as_serde_writes_it():
    text = json.dumps({"schema_version": 1, "runs": {"run-1": record(x_extra=7)}}).replace(": 7", ": -0")
    run = load_text(text)
    assert run.status == RunStatus.QUEUED
    assert '"x_extra": -0.0' in serialize_runs_file({"run-1": run})


def test_a_string_where_a_number_is_expected_is_not_coerced():
    assert "estimated_cost_usd" in parse_error(load(record(estimated_cost_usd="1.5")))
    assert "prompt_tokens" in parse_error(load(record(prompt_tokens="15")))


def test_an_integer_cost_is_an_f64_like_serde():
    assert load(record(estimated_cost_usd=2)).estimated_cost_usd == 2


def test_a_non_string_workflow_definition_version_is_refused():
    assert "workflow_definition_version" in parse_error(load(record(workflow_definition_version=3)))


# --- nested structs the server types -------------------------------------------------------


def test_a_pending_gate_without_its_title_is_recovered_as_blocked():
    gate = {"node_id": "publish", "requested_at_ms": 1}
    assert "missing field `title`" in parse_error(load(with_checkpoint(awaiting_gate=gate)))


def test_a_well_formed_pending_gate_with_unknown_fields_survives():
    gate = {"node_id": "publish", "title": "Publish", "requested_at_ms": 1, "x_future": [1]}
    run = load(with_checkpoint(awaiting_gate=gate))
    assert dump_run(run)["checkpoint"]["awaiting_gate"] == gate


def test_a_gate_decision_decided_by_a_bare_name_is_recovered_as_blocked():
    decision = {"node_id": "p", "decision": "approve", "decided_at_ms": 1, "decided_by": "maria@ops-01"}
    error = parse_error(load(with_checkpoint(gate_history=[decision])))
    assert 'invalid type: string "maria@ops-01", expected struct GovernanceActorRef' in error


def test_a_gate_decision_by_an_unknown_actor_kind_is_recovered_as_blocked():
    decision = {"node_id": "p", "decision": "approve", "decided_at_ms": 1, "decided_by": {"kind": "robot"}}
    assert "unknown variant `robot`" in parse_error(load(with_checkpoint(gate_history=[decision])))


def test_attempt_verdicts_that_are_not_a_list_are_recovered_as_blocked():
    assert "node_attempt_verdicts" in parse_error(load(with_checkpoint(node_attempt_verdicts={"n": {"v": 1}})))


def test_a_malformed_learning_summary_is_recovered_as_blocked_and_not_salvaged():
    run = load(record(learning_summary={"generated_candidate_ids": "c-1"}))
    assert "expected a sequence" in parse_error(run)
    assert run.learning_summary is None


def test_a_learning_summary_with_unknown_fields_is_kept():
    summary = {"lessons": ["x"], "post_run_metrics": {"sample_size": 3, "completion_rate": 1}}
    assert load(record(learning_summary=summary)).learning_summary == summary


@pytest.mark.parametrize(
    "claim",
    [
        {"claim_id": "c", "claimant_id": "x", "claimed_at_ms": 1, "lease_expires_at_ms": 2},
        {"claim_id": "c", "claimant_id": "x", "claimed_at_ms": 1, "lease_expires_at_ms": 2, "lease_epoch": -1},
        "claim-1",
    ],
)
def test_a_malformed_execution_claim_recovers_the_run_as_blocked_with_no_claim(claim):
    run = load(record(status="running", execution_claim=claim, execution_claim_epoch=4))
    assert "execution_claim" in parse_error(run)
    assert run.execution_claim is None and run.execution_claim_epoch == 0


def test_a_recovered_entry_salvages_the_workflow_definition_and_names_the_failure_kind():
    run = load(
        record(
            trigger_type=_DROP,
            workflow_definition_version="7",
            workflow_definition_snapshot_hash="abc",
        )
    )
    assert (run.workflow_definition_version, run.workflow_definition_snapshot_hash) == ("7", "abc")
    assert run.checkpoint.last_failure.failure_kind == "checkpoint_recovery_failed"


# --- JSON serde_json refuses: the whole file -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"schema_version": 1, "runs": {"x": {"cost": 1e400}}}', "number out of range"),
        ('{"schema_version": 1, "runs": {"x": {"s": "\\ud800"}}}', "unexpected end of hex escape"),
        ('{"schema_version": 1, "runs": {"x": {"s": "\\udc00"}}}', "lone leading surrogate in hex escape"),
        ('{"schema_version": 1, "runs": {"x": {"n": NaN}}}', "expected value"),
    ],
)
def test_json_serde_json_refuses_rejects_the_whole_file_in_one_line(text, message):
    with pytest.raises(RunsFileError) as raised:
        parse_runs_document(text)
    assert str(raised.value).startswith(f"failed to parse automation_v2_runs.json: {message} at line 1 column ")
    assert "\n" not in str(raised.value)



# --- twins of the server's run-store tests (tests/automations_parts/part01.rs) -------------

AWAITING = {
    "run_id": "run-awaiting",
    "automation_id": "automation-a",
    "trigger_type": "manual",
    "status": "awaiting_approval",
    "created_at_ms": 1,
    "updated_at_ms": 2,
    "checkpoint": {
        "completed_nodes": ["compose"],
        "pending_nodes": ["gate", "send"],
        "node_attempts": {"compose": 1},
        "awaiting_gate": {"node_id": "gate", "title": "Review", "requested_at_ms": 2, "decisions": ["approve"]},
    },
}


def test_automation_v2_run_store_legacy_fixture_loads_and_rewrites_versioned_envelope(tmp_path):
    from tandem_tui.source.file.transaction import transact

    path = tmp_path / "automation_v2_runs.json"
    path.write_text(json.dumps({"run-awaiting": AWAITING}))
    runs, upgraded = parse_runs_file(path.read_bytes(), now_ms=NOW)
    run = runs["run-awaiting"]
    assert upgraded and run.status == RunStatus.AWAITING_APPROVAL
    assert run.checkpoint.awaiting_gate["node_id"] == "gate"
    assert "send" in run.checkpoint.pending_nodes
    # Any write goes out in the versioned envelope.
    transact(path, lambda document: document.entries["run-awaiting"].update(detail="touched"))
    persisted = json.loads(path.read_text())
    assert persisted["schema_version"] == 1 and "run-awaiting" in persisted["runs"]


def test_automation_v2_run_store_current_fixture_loads_without_upgrade():
    runs, upgraded = parse_runs_file(json.dumps({"schema_version": 1, "runs": {"run-awaiting": AWAITING}}), now_ms=NOW)
    assert not upgraded and "run-awaiting" in runs


def test_automation_v2_run_store_rejects_future_schema_without_overwrite(tmp_path):
    from tandem_tui.source.file.transaction import transact

    path = tmp_path / "automation_v2_runs.json"
    future = '{"schema_version":999,"runs":{}}'
    path.write_text(future)
    with pytest.raises(RunsFileError, match="newer than supported"):
        transact(path, lambda document: document.entries.clear())
    assert path.read_text() == future


def test_only_what_rusts_trim_strips_makes_a_file_empty():
    assert parse_runs_document(" \n\u2028\u3000").entries == {}
    with pytest.raises(RunsFileError, match="failed to parse"):
        parse_runs_document("\x1c")  # Python's strip() would call this empty; the server does not
