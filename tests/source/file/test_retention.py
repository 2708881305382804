"""Hot-storage retention: compaction of finished runs and archiving them to history shards."""

import json

import pytest

from tandem_tui.source.file.atomic import write_text_atomic
from tandem_tui.domain.models import dump_run, parse_run
from tandem_tui.source.file.retention import (
    DAY_MS,
    archive_terminal_runs,
    compact_runs_for_hot_storage,
    hot_cutoff_ms,
    hot_retention_days,
)
from tandem_tui.source.file.shards import load_shard, shard_path
from tandem_tui.source.file.store import parse_runs_file, read_runs_document, read_runs_file, serialize_runs_file

ENV = "TANDEM_AUTOMATION_V2_RUNS_RETENTION_DAYS"
NOW = 1_795_446_000_000


def run(run_id="r", status="completed", updated=NOW, snapshot_at=100, **fields):
    return parse_run(
        {
            "run_id": run_id,
            "automation_id": "auto-1",
            "trigger_type": "scheduled",
            "status": status,
            "created_at_ms": 1,
            "updated_at_ms": updated,
            "automation_snapshot": {"automation_id": "auto-1", "updated_at_ms": snapshot_at, "workspace_root": "/w"},
            "runtime_context": {"routines": ["r1"]},
            "checkpoint": {"node_outputs": {"n": {"status": "completed"}}},
            **fields,
        }
    )


# --- retention settings ------------------------------------------------------------


@pytest.mark.parametrize(
    "value,days",
    [(None, 7), ("3", 3), (" 14 ", 14), ("0", 0), ("+5", 5), ("-1", 7), ("abc", 7), ("1.5", 7), ("1_0", 7), ("", 7), (str(2**64), 7)],
)
def test_retention_days_come_from_the_environment_with_a_default_of_seven(value, days):
    env = {} if value is None else {ENV: value}
    assert hot_retention_days(env) == days


def test_zero_retention_days_mean_no_cutoff():
    assert hot_cutoff_ms(NOW, {ENV: "0"}) == 0


def test_the_cutoff_is_now_minus_the_retention_days():
    assert hot_cutoff_ms(NOW, {}) == NOW - 7 * DAY_MS
    assert hot_cutoff_ms(NOW, {ENV: "2"}) == NOW - 2 * DAY_MS


def test_a_retention_longer_than_all_of_time_saturates_at_zero():
    assert hot_cutoff_ms(NOW, {ENV: "100000000000"}) == 0


# --- compaction --------------------------------------------------------------------


def test_a_terminal_run_drops_its_snapshot_when_the_canonical_automation_is_as_new():
    runs = {"r": run(snapshot_at=100)}
    compact_runs_for_hot_storage(runs, {"auto-1": {"updated_at_ms": 100}}, cutoff_ms=0)
    assert runs["r"].automation_snapshot is None
    assert runs["r"].checkpoint.node_outputs  # not past the cut-off


def test_a_snapshot_newer_than_the_canonical_automation_is_kept():
    runs = {"a": run("a", snapshot_at=200), "b": run("b", snapshot_at=100)}
    compact_runs_for_hot_storage(runs, {"auto-1": {"updated_at_ms": 150}}, cutoff_ms=0)
    assert runs["a"].automation_snapshot is not None
    assert runs["b"].automation_snapshot is None


def test_a_snapshot_is_kept_when_the_automation_is_not_known():
    runs = {"r": run("r")}
    compact_runs_for_hot_storage(runs, {"other": {"updated_at_ms": 10**15}}, cutoff_ms=0)
    assert runs["r"].automation_snapshot is not None


def test_a_terminal_run_past_the_cutoff_drops_node_outputs_and_runtime_context():
    runs = {"old": run("old", updated=1_000), "edge": run("edge", updated=2_000), "new": run("new", updated=2_001)}
    compact_runs_for_hot_storage(runs, {}, cutoff_ms=2_000)
    for key in ("old", "edge"):
        assert runs[key].checkpoint.node_outputs == {}
        assert runs[key].runtime_context is None
    assert runs["new"].checkpoint.node_outputs == {"n": {"status": "completed"}}
    assert runs["new"].runtime_context == {"routines": ["r1"]}


@pytest.mark.parametrize("status", ["queued", "running", "pausing", "paused", "awaiting_approval"])
def test_a_run_that_is_not_terminal_is_never_compacted(status):
    runs = {"r": run(status=status, updated=1)}
    before = dump_run(runs["r"])
    compact_runs_for_hot_storage(runs, {"auto-1": {"updated_at_ms": 10**15}}, cutoff_ms=NOW)
    assert dump_run(runs["r"]) == before


def test_compacting_the_fixture_with_two_days_retention_trims_only_runs_finished_before_the_21st(fixtures_dir):
    runs, _ = parse_runs_file((fixtures_dir / "runs_v1.json").read_text(), now_ms=NOW)
    compact_runs_for_hot_storage(runs, {}, hot_cutoff_ms(NOW, {ENV: "2"}))
    assert runs["run-rn-0139"].checkpoint.node_outputs == {}
    assert len(runs["run-etl-0308"].checkpoint.node_outputs) == 3
    assert runs["run-rn-0142"].checkpoint.node_outputs  # running


# --- archiving ---------------------------------------------------------------------


def test_archiving_moves_old_terminal_runs_to_shards_losslessly(runs_file):
    document = read_runs_document(runs_file)
    originals = json.loads(runs_file.read_text())["runs"]
    moved = archive_terminal_runs(runs_file, document.entries, now_ms=NOW, env={ENV: "2"})
    assert sorted(moved) == ["run-etl-0310", "run-ib-0006", "run-rn-0138", "run-rn-0139"]
    write_text_atomic(runs_file, serialize_runs_file(document.entries))

    hot = read_runs_file(runs_file, now_ms=NOW)
    assert not set(moved) & set(hot)
    assert len(hot) == 20 - 4
    for run_id in moved:
        archived = load_shard(runs_file, run_id)
        assert dump_run(archived) == originals[run_id]
        assert shard_path(runs_file, archived).exists()


def test_archiving_with_zero_retention_days_moves_nothing(runs_file):
    document = read_runs_document(runs_file)
    assert archive_terminal_runs(runs_file, document.entries, now_ms=NOW, env={ENV: "0"}) == []
    assert len(document.entries) == 20


def test_archiving_leaves_active_runs_and_entries_that_do_not_validate(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    entries = {
        "active": dump_run(run("active", status="paused", updated=1)),
        "broken": {"run_id": "broken", "automation_id": "a", "status": "completed", "updated_at_ms": "yesterday"},
        "done": run("done", updated=1),
    }
    assert archive_terminal_runs(runs_file, entries, now_ms=NOW, env={}) == ["done"]
    assert sorted(entries) == ["active", "broken"]
    assert load_shard(runs_file, "done").run_id == "done"
