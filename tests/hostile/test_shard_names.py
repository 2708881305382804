"""Run ids that the server's shard naming cannot keep apart, or cannot name at all,
lose no run: each is archived in a shard that holds it, and found again by its id."""

import os

import pytest

from tandem_tui.domain.models import dump_run, parse_run
from tandem_tui.source.file.retention import archive_terminal_runs
from tandem_tui.source.file.shards import (
    MAX_STEM_BYTES,
    ShardIndex,
    history_root,
    load_shard,
    load_shard_file,
    read_shard,
    write_shard,
)

NOW = 1_795_446_000_000
DAY_MS = 86_400_000
#: 2026-10-05, a month before NOW's.
OCTOBER = NOW - 49 * DAY_MS


def finished(run_id: str, *, updated: int = NOW - 30 * DAY_MS, detail: str = "done"):
    return parse_run(
        {
            "run_id": run_id,
            "automation_id": "auto-1",
            "trigger_type": "manual",
            "status": "completed",
            "created_at_ms": 1,
            "updated_at_ms": updated,
            "detail": detail,
            "checkpoint": {},
        }
    )


@pytest.fixture
def runs_file(tmp_path):
    return tmp_path / "data" / "automation_v2_runs.json"


def test_ids_that_sanitize_to_one_name_are_archived_in_shards_of_their_own(runs_file):
    ids = ["job.42", "job_42", "job/42"]
    entries = {run_id: dump_run(finished(run_id, detail=f"detail of {run_id}")) for run_id in ids}

    moved = archive_terminal_runs(runs_file, entries, now_ms=NOW, env={})

    assert sorted(moved) == sorted(ids)
    assert entries == {}
    for run_id in ids:
        found = load_shard(runs_file, run_id)
        assert found is not None and found.run_id == run_id
        assert found.detail == f"detail of {run_id}"
    shards = sorted(path for path in history_root(runs_file).rglob("*.json"))
    assert len(shards) == 3
    assert sorted(read_shard(path).run_id for path in shards) == sorted(ids)


def test_the_first_run_keeps_the_servers_name_and_only_the_others_differ(runs_file):
    write_shard(runs_file, finished("job_42"))
    other = write_shard(runs_file, finished("job.42"))

    assert load_shard_file(runs_file, "job_42")[0].name == "job_42.json"
    assert other.name != "job_42.json" and other.name.startswith("job_42~")


def test_a_run_id_too_long_for_a_file_name_is_archived_under_a_short_one(runs_file):
    run_id = "ledger-reconciliation-" + "x" * 300
    entries = {run_id: dump_run(finished(run_id))}

    assert archive_terminal_runs(runs_file, entries, now_ms=NOW, env={}) == [run_id]

    path, run = load_shard_file(runs_file, run_id)
    assert run.run_id == run_id
    assert len(path.name.encode()) <= MAX_STEM_BYTES + len(".json")
    assert len(os.fsencode(path.name)) < 255


def test_an_empty_run_id_is_archived_under_a_name_readers_list(runs_file):
    entries = {"": dump_run(finished(""))}

    assert archive_terminal_runs(runs_file, entries, now_ms=NOW, env={}) == [""]

    index = ShardIndex.scan(runs_file)
    assert len(index) == 1
    assert not next(iter(index.values())).name.startswith(".")
    assert index.load("").run_id == ""


def test_an_older_month_shard_is_not_shadowed_by_a_later_one_of_the_same_name(runs_file):
    write_shard(runs_file, finished("job.7", updated=OCTOBER))
    write_shard(runs_file, finished("job_7"))

    assert load_shard(runs_file, "job.7").updated_at_ms == OCTOBER
    assert load_shard(runs_file, "job_7").updated_at_ms == NOW - 30 * DAY_MS
    index = ShardIndex.scan(runs_file)
    assert index.load("job.7").run_id == "job.7"
    assert index.load("job_7").run_id == "job_7"


def test_a_shard_named_by_the_server_for_another_run_is_never_overwritten(runs_file):
    theirs = write_shard(runs_file, finished("job/9", detail="the server's"))
    before = theirs.read_bytes()

    write_shard(runs_file, finished("job_9", detail="ours"))

    assert theirs.read_bytes() == before
    assert load_shard(runs_file, "job/9").detail == "the server's"
    assert load_shard(runs_file, "job_9").detail == "ours"


def test_a_run_is_kept_in_the_hot_file_when_its_shard_cannot_be_written(runs_file):
    runs_file.parent.mkdir(parents=True)
    root = history_root(runs_file)
    # A file where the history directory should be: no shard can be written below it.
    root.parent.mkdir(parents=True)
    root.write_text("not a directory")
    entries = {"job-1": dump_run(finished("job-1"))}

    with pytest.raises(OSError):
        archive_terminal_runs(runs_file, entries, now_ms=NOW, env={})

    assert list(entries) == ["job-1"]
