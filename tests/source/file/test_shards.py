"""History shards: layout in UTC months, reading v0/v1, writing, and the listing-only index."""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tandem_tui.source.file.atomic import temp_prefix
from tandem_tui.domain.models import RunStatus, dump_run, parse_run
from tandem_tui.source.file.shards import (
    MonthCount,
    ShardIndex,
    history_month,
    history_root,
    iter_shard_paths,
    load_all_shards,
    load_shard,
    load_shard_file,
    parse_shard,
    sanitize_path_id,
    serialize_shard,
    shard_path,
    write_shard,
)
from tandem_tui.source.file.store import RunsFileError

SHARDS = Path("automation-runs/automation_v2_runs")
ARCHIVED = {
    "run-rn-0120", "run-ir-0070", "run-etl-0290", "run-etl-0295",
    "run-etl-0296", "run:manual/hotfix#7", "run-sd-0040", "run-rn-0138",
}


def record(run_id="run-1", *, status="completed", created="2026-11-05T10:00:00", updated=None, **fields):
    from datetime import UTC, datetime

    def ms(text):
        return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)

    return {
        "run_id": run_id,
        "automation_id": "auto-1",
        "trigger_type": "scheduled",
        "status": status,
        "created_at_ms": ms(created),
        "updated_at_ms": ms(updated or created),
        "checkpoint": {},
        **fields,
    }


@pytest.fixture
def new_york_local_time(monkeypatch):
    """Run with a local time zone west of UTC, so a local-time bug would file runs a month early."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --- layout ------------------------------------------------------------------------


def test_the_history_root_sits_beside_the_runs_file_under_its_stem(tmp_path):
    assert history_root(tmp_path / "automation_v2_runs.json") == tmp_path / "automation-runs" / "automation_v2_runs"
    assert history_root(tmp_path / " .json") == tmp_path / "automation-runs" / "runs"


def test_a_run_is_filed_under_the_utc_month_of_its_latest_timestamp(tmp_path, new_york_local_time):
    # 00:20 UTC on 1 November is still 31 October in New York.
    run = parse_run(record(created="2026-10-31T23:50:00", updated="2026-11-01T00:20:00"))
    assert history_month(run) == (2026, 11)
    assert shard_path(tmp_path / "automation_v2_runs.json", run) == tmp_path / SHARDS / "2026" / "11" / "run-1.json"


def test_a_run_finished_just_before_midnight_utc_stays_in_its_month(new_york_local_time):
    assert history_month(parse_run(record(created="2026-10-31T23:10:00", updated="2026-10-31T23:59:59"))) == (2026, 10)


def test_created_at_counts_when_it_is_later_than_updated_at():
    assert history_month(parse_run(record(created="2027-01-01T00:00:00", updated="2026-12-31T23:00:00"))) == (2027, 1)


def test_months_before_october_are_zero_padded(tmp_path):
    run = parse_run(record("r", created="2026-03-02T00:00:00"))
    assert shard_path(tmp_path / "a.json", run).parts[-3:] == ("2026", "03", "r.json")


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("run-abc_123", "run-abc_123"),
        ("run:manual/hotfix#7", "run_manual_hotfix_7"),
        ("../../etc/passwd", "______etc_passwd"),
        ("ünï côdé", "_n__c_d_"),
        ("a.b", "a_b"),
    ],
)
def test_sanitize_replaces_every_char_outside_letters_digits_dash_and_underscore(raw, expected):
    assert sanitize_path_id(raw) == expected


# --- parse and serialize -----------------------------------------------------------


def test_a_v1_shard_parses_its_run():
    raw = json.dumps({"schema_version": 1, "run": record(x_future=[1])})
    run = parse_shard(raw)
    assert run.run_id == "run-1" and dump_run(run)["x_future"] == [1]


def test_a_v0_shard_is_a_bare_record():
    assert parse_shard(json.dumps(record("legacy"))).run_id == "legacy"


def test_a_shard_with_a_newer_schema_is_refused():
    with pytest.raises(RunsFileError) as error:
        parse_shard(json.dumps({"schema_version": 3, "run": record()}))
    assert str(error.value) == "automation v2 run history shard schema_version 3 is newer than supported version 1"


@pytest.mark.parametrize(
    "raw,message",
    [
        ('{"schema_version": "1", "run": {}}', "schema_version must be an unsigned integer"),
        ('{"schema_version": 1}', "missing run"),
        ('{"schema_version": 1, "run": {"run_id": "x"}}', "failed to parse versioned automation v2 run history shard: automation_id"),
        ('{"run_id": "x"}', "failed to parse legacy automation v2 run history shard"),
        ("[]", "failed to parse legacy"),
        ('{"schema_version": 1, ', "failed to parse automation v2 run history shard:"),
    ],
)
def test_a_bad_shard_is_one_clear_line(raw, message):
    with pytest.raises(RunsFileError, match=message) as error:
        parse_shard(raw)
    assert "\n" not in str(error.value)


def test_every_v1_fixture_shard_serializes_back_byte_for_byte(fixtures_dir):
    root = fixtures_dir / "history" / SHARDS
    v1 = [p for p in root.rglob("*.json") if '"schema_version"' in p.read_text()[:40]]
    assert len(v1) >= 5
    for path in v1:
        raw = path.read_text(encoding="utf-8")
        assert serialize_shard(parse_shard(raw)) == raw, path.name


def test_a_v0_fixture_shard_is_written_back_as_a_v1_envelope_of_the_same_record(fixtures_dir):
    path = fixtures_dir / "history" / SHARDS / "2026" / "10" / "run-etl-0290.json"
    original = json.loads(path.read_text())
    assert "schema_version" not in original
    assert json.loads(serialize_shard(parse_shard(path.read_bytes()))) == {"schema_version": 1, "run": original}


# --- write and load ----------------------------------------------------------------


def test_writing_a_shard_creates_its_month_directory_and_leaves_no_temp_file(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    run = parse_run(record("run:x/1", updated="2026-12-01T00:00:01"))
    path = write_shard(runs_file, run)
    assert path == tmp_path / SHARDS / "2026" / "12" / "run_x_1.json"
    assert json.loads(path.read_text()) == {"schema_version": 1, "run": dump_run(run)}
    assert [p.name for p in path.parent.iterdir()] == ["run_x_1.json"]
    assert load_shard(runs_file, "run:x/1").run_id == "run:x/1"


def test_writing_a_shard_over_an_old_one_replaces_it(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    write_shard(runs_file, parse_run(record(detail="first")))
    path = write_shard(runs_file, parse_run(record(detail="second")))
    assert parse_shard(path.read_text()).detail == "second"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(temp_prefix(path))]


def test_writing_a_nonterminal_recovered_context_run_removes_its_shard(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    terminal = parse_run(record(trigger_type="recovered_context_run", status="completed"))
    path = write_shard(runs_file, terminal)
    assert path.exists()
    in_flight = parse_run(record(trigger_type="recovered_context_run", status="paused"))
    assert write_shard(runs_file, in_flight) == path
    assert not path.exists()


def test_loading_a_shard_searches_every_month_by_run_id(runs_file):
    assert load_shard(runs_file, "run-rn-0120").status is RunStatus.COMPLETED
    assert load_shard(runs_file, "run-etl-0296").status is RunStatus.COMPLETED
    assert load_shard(runs_file, "run:manual/hotfix#7").stop_kind.value == "cancelled"
    assert load_shard(runs_file, "run-nope") is None


def test_loading_a_shard_file_also_says_where_it_was_read_from(runs_file):
    path, run = load_shard_file(runs_file, "run-etl-0295")
    assert path == runs_file.parent / SHARDS / "2026" / "10" / "run-etl-0295.json"
    assert run.run_id == "run-etl-0295"
    assert load_shard_file(runs_file, "run-ctx-0004") is None
    assert load_shard_file(runs_file, "run-nope") is None


def test_a_nonterminal_recovered_context_run_is_not_loaded_from_history(runs_file):
    assert (runs_file.parent / SHARDS / "2026" / "11" / "run-ctx-0004.json").exists()
    assert load_shard(runs_file, "run-ctx-0004") is None
    assert "run-ctx-0004" not in {run.run_id for run in load_all_shards(runs_file)}


def test_a_shard_that_does_not_parse_loads_as_nothing(runs_file):
    (runs_file.parent / SHARDS / "2026" / "11" / "run-broken.json").write_text('{"schema_version": 1, "run": {')
    assert load_shard(runs_file, "run-broken") is None
    assert len(load_all_shards(runs_file)) == len(ARCHIVED)


def test_loading_all_shards_reads_v0_and_v1_and_skips_temp_files(runs_file):
    assert {run.run_id for run in load_all_shards(runs_file)} == ARCHIVED
    names = [p.name for p in iter_shard_paths(runs_file)]
    assert not [n for n in names if n.startswith(".")]
    assert len(names) == len(ARCHIVED) + 1  # + the in-flight recovered-context shard


def test_without_a_history_directory_there_are_no_shards(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    assert load_all_shards(runs_file) == []
    assert load_shard(runs_file, "x") is None
    assert len(ShardIndex.scan(runs_file)) == 0


# --- the index ---------------------------------------------------------------------


def test_the_index_maps_sanitized_ids_to_paths_and_counts_months(runs_file):
    index = ShardIndex.scan(runs_file)
    assert set(index) == {sanitize_path_id(r) for r in ARCHIVED} | {"run-ctx-0004"}
    assert index["run_manual_hotfix_7"] == runs_file.parent / SHARDS / "2026" / "11" / "run_manual_hotfix_7.json"
    assert index.months() == [MonthCount(2026, 10, 4), MonthCount(2026, 11, 5)]


def test_building_the_index_opens_no_shard(runs_file):
    opened = []
    watching = [True]

    def hook(event, args):
        if watching[0] and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            opened.append(os.fsdecode(args[0]))

    sys.addaudithook(hook)
    try:
        index = ShardIndex.scan(runs_file)
        index.refresh_dir(index.root / "2026")
        index.months()
    finally:
        watching[0] = False
    assert len(index) == 9
    assert [p for p in opened if p.endswith(".json")] == []


def test_the_index_loads_one_run_by_its_id(runs_file):
    index = ShardIndex.scan(runs_file)
    assert index.load("run:manual/hotfix#7").run_id == "run:manual/hotfix#7"
    assert index.load("run-ctx-0004") is None
    assert index.load("run-nope") is None


def test_a_month_directory_that_appears_later_is_picked_up_by_refreshing_it(runs_file):
    index = ShardIndex.scan(runs_file)
    run = parse_run(record("run-late", created="2026-12-02T08:00:00"))
    path = write_shard(runs_file, run)
    assert "run-late" not in index
    index.refresh_dir(path.parent)
    assert index["run-late"] == path
    assert index.months()[-1] == MonthCount(2026, 12, 1)


def test_a_year_directory_that_appears_later_is_picked_up_by_refreshing_it(runs_file):
    index = ShardIndex.scan(runs_file)
    path = write_shard(runs_file, parse_run(record("run-2027", created="2027-01-02T08:00:00")))
    index.refresh_dir(path.parent.parent)
    assert index.path_for("run-2027") == path


def test_a_history_tree_created_after_the_scan_is_picked_up_by_refreshing_its_top_directory(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    index = ShardIndex.scan(runs_file)
    assert len(index) == 0
    path = write_shard(runs_file, parse_run(record("run-first")))
    index.refresh_dir(tmp_path / "automation-runs")
    assert index["run-first"] == path


def test_refreshing_a_directory_drops_shards_that_are_gone(runs_file):
    index = ShardIndex.scan(runs_file)
    october = index.root / "2026" / "10"
    (october / "run-rn-0120.json").unlink()
    index.refresh_dir(october)
    assert "run-rn-0120" not in index
    assert "run-ir-0070" in index and "run-rn-0138" in index


def test_refreshing_one_file_adds_or_removes_it(runs_file):
    index = ShardIndex.scan(runs_file)
    path = write_shard(runs_file, parse_run(record("run-new", created="2026-11-20T00:00:00")))
    index.refresh_file(path)
    assert index["run-new"] == path
    path.unlink()
    index.refresh_file(path)
    assert "run-new" not in index


def test_when_a_run_is_filed_under_two_months_the_latest_wins_and_the_other_remains(runs_file):
    index = ShardIndex.scan(runs_file)
    older = index["run-rn-0120"]
    newer = write_shard(runs_file, parse_run(record("run-rn-0120", created="2026-11-21T00:00:00", detail="moved")))
    index.refresh_file(newer)
    assert index["run-rn-0120"] == newer
    assert index.load("run-rn-0120").detail == "moved"
    newer.unlink()
    index.refresh_file(newer)
    assert index["run-rn-0120"] == older


def test_paths_outside_the_history_root_are_ignored(runs_file, tmp_path):
    index = ShardIndex.scan(runs_file)
    before = dict(index)
    elsewhere = tmp_path / "elsewhere" / "2026" / "11"
    elsewhere.mkdir(parents=True)
    (elsewhere / "run-stray.json").write_text("{}")
    index.refresh_dir(elsewhere)
    index.refresh_dir(tmp_path / "elsewhere")
    index.refresh_file(elsewhere / "run-stray.json")
    index.refresh_file(tmp_path / "automation_v2_runs.json")
    assert dict(index) == before
