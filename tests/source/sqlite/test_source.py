"""Reading the engine's SQLite store: hot rows are the view, the rest the archive."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import RunStatus, dump_run
from tandem_tui.source.base import RunsSource, SourceError
from tandem_tui.source.file.source import FileSource
from tandem_tui.source.sqlite.source import SqliteSource
from tests.source.stores import CIPHERTEXT, INSERT, columns, fixture_history, fixture_runs, make_sqlite_store, writer

ENV = {"TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS": "4"}


@pytest.fixture
def store(tmp_path, fixture_now_ms):
    hot = fixture_runs()
    encrypted_hot = {**hot["run-ir-0088"], "run_id": "run-enc-hot", "status": "running"}
    encrypted_old = {**hot["run-rn-0139"], "run_id": "run-enc-old"}
    return make_sqlite_store(
        tmp_path / "data", hot, fixture_history(), encrypted=[(encrypted_hot, True), (encrypted_old, False)]
    )


def source_of(path, now_ms) -> SqliteSource:
    return SqliteSource(path, clock=ManualClock(now_ms), env=ENV)


def test_it_is_a_runs_source(store, fixture_now_ms):
    assert isinstance(source_of(store, fixture_now_ms), RunsSource)


def test_hot_rows_are_the_runs_with_every_field_they_carry(store, fixture_now_ms):
    snapshot = source_of(store, fixture_now_ms).read()
    records = fixture_runs()
    assert set(snapshot.runs) == set(records) | {"run-enc-hot"}
    for run_id, record in records.items():
        assert dump_run(snapshot.runs[run_id]) == record


def test_the_view_matches_the_runs_files_view_of_the_same_runs(store, tmp_path, fixture_now_ms, fixtures_dir):
    runs_file = tmp_path / "automation_v2_runs.json"
    runs_file.write_bytes((fixtures_dir / "runs_v1.json").read_bytes())
    from_file = FileSource(runs_file, clock=ManualClock(fixture_now_ms), env=ENV).read()
    connection = writer(store)
    connection.execute("DELETE FROM automation_runs WHERE run_id LIKE 'run-enc-%'")
    connection.close()
    from_store = source_of(store, fixture_now_ms).read()
    assert from_store.view.status_report(from_store.runs) == from_file.view.status_report(from_file.runs)
    for run in from_file.runs.values():
        assert from_store.view.queue_info(from_store.runs[run.run_id], fixture_now_ms) == from_file.view.queue_info(
            run, fixture_now_ms
        )


def test_an_encrypted_row_is_listed_from_its_columns_and_marked_encrypted(store, fixture_now_ms):
    snapshot = source_of(store, fixture_now_ms).read()
    run = snapshot.runs["run-enc-hot"]
    assert run.status == RunStatus.RUNNING
    assert run.automation_id == fixture_runs()["run-ir-0088"]["automation_id"]
    assert "encrypted" in (run.detail or "")
    assert snapshot.encrypted == frozenset({"run-enc-hot"})
    assert snapshot.opaque == {"run-enc-hot": "encrypted"}
    # A running encrypted run still takes its capacity slot.
    assert snapshot.view.metrics().active_runs == 4


def test_a_bare_legacy_record_and_a_broken_one_are_read_without_a_crash(tmp_path, fixture_now_ms):
    record = fixture_runs()["run-da-0019"]
    path = make_sqlite_store(tmp_path)
    connection = writer(path)
    connection.execute(INSERT, columns(record, is_hot=True, run_json=json.dumps(record)))
    broken = {**record, "run_id": "run-broken"}
    connection.execute(INSERT, columns(broken, is_hot=True, run_json='{"kind": "run", "payload": {'))
    connection.close()
    snapshot = source_of(path, fixture_now_ms).read()
    assert dump_run(snapshot.runs["run-da-0019"]) == record
    assert snapshot.runs["run-broken"].status == RunStatus.QUEUED
    assert snapshot.opaque["run-broken"].startswith("run_json is not JSON")


@pytest.mark.parametrize("version", [4, 6])
def test_another_schema_version_is_refused_by_name(tmp_path, fixture_now_ms, version):
    path = make_sqlite_store(tmp_path, fixture_runs(), schema_version=version)
    source = source_of(path, fixture_now_ms)
    with pytest.raises(SourceError, match=f"schema version {version} is not 5"):
        source.read()
    stale = source.load()
    assert stale.freshness.stale and f"schema version {version}" in stale.freshness.error
    assert stale.runs == {}
    with pytest.raises(SourceError, match=f"schema version {version}"):
        source.archive_months()


def test_a_database_that_is_not_a_tandem_store_is_refused(tmp_path, fixture_now_ms):
    path = tmp_path / "stateful_runtime.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE other (x)").connection.close()
    with pytest.raises(SourceError, match="not a Tandem stateful runtime store"):
        source_of(path, fixture_now_ms).read()


def test_a_missing_store_is_stale_and_missing_never_an_exception(tmp_path, fixture_now_ms):
    source = source_of(tmp_path / "stateful_runtime.sqlite3", fixture_now_ms)
    snapshot = source.load()
    assert snapshot.freshness.stale and snapshot.freshness.missing
    with pytest.raises(SourceError, match="not found"):
        source.read()


def test_history_rows_are_the_archive_by_month(store, fixture_now_ms):
    months = source_of(store, fixture_now_ms).archive_months()
    names = {entry.name for entries in months.values() for entry in entries}
    assert names == set(fixture_history()) | {"run-enc-old"}
    assert list(months) == sorted(months, reverse=True)
    assert {(2026, 10), (2026, 11)} <= set(months)


def test_archived_rows_are_read_on_demand_and_an_encrypted_one_says_so(store, fixture_now_ms):
    source = source_of(store, fixture_now_ms)
    entries = [entry for entries in source.archive_months().values() for entry in entries]
    reads = {read.entry.key: read for read in source.read_archived(entries)}
    history = fixture_history()
    for run_id, record in history.items():
        assert dump_run(reads[run_id].run) == record
    assert reads["run-enc-old"].run is None
    assert "encrypted" in reads["run-enc-old"].error


def test_find_run_looks_in_the_hot_set_then_the_history(store, fixture_now_ms):
    source = source_of(store, fixture_now_ms)
    hot = source.find_run("run-rn-0142")
    assert hot is not None and not hot.archived
    old_id = next(iter(fixture_history()))
    old = source.find_run(old_id)
    assert old is not None and old.archived and old.run.run_id == old_id
    assert source.find_run("run-nope") is None


def test_describe_says_actions_write_the_store_when_no_engine_holds_the_lock(store, fixture_now_ms):
    description = source_of(store, fixture_now_ms).describe()
    assert description.route == "sqlite" and description.engine_live is False


def test_readers_never_write_the_store(store, fixture_now_ms):
    source = source_of(store, fixture_now_ms)
    before = store.read_bytes()
    source.read()
    source.archive_months()
    source.find_run("run-rn-0142")
    assert store.read_bytes() == before


def test_a_data_directory_names_the_store_inside_it(store, fixture_now_ms):
    assert SqliteSource(store.parent).database == store
    assert SqliteSource(store.parent.parent).database == store  # a state dir: its data/


def test_describe_says_when_the_engine_has_not_yet_imported_the_runs_file(tmp_path, fixture_now_ms):
    path = make_sqlite_store(tmp_path, fixture_runs(), migration_complete=False)
    assert "not yet imported" in source_of(path, fixture_now_ms).describe().summary


def test_a_huge_integer_and_nan_are_read_as_json_reads_them(tmp_path, fixture_now_ms):
    record = {**fixture_runs()["run-da-0019"], "future_counter": 123456789012345678901234567890}
    path = make_sqlite_store(tmp_path, [record])
    connection = writer(path)
    nan = {**record, "run_id": "run-nan"}
    connection.execute(INSERT, columns(nan, is_hot=True, run_json=json.dumps({"kind": "run", "payload": nan}).replace("1234567890}", "NaN}")))
    connection.close()
    snapshot = source_of(path, fixture_now_ms).read()
    assert dump_run(snapshot.runs["run-da-0019"])["future_counter"] == 123456789012345678901234567890
    assert "not JSON" in snapshot.opaque["run-nan"]


def test_a_row_that_breaks_the_schema_makes_the_read_stale_not_a_crash(tmp_path, fixture_now_ms):
    path = tmp_path / "stateful_runtime.sqlite3"
    connection = sqlite3.connect(path)
    # Not the engine's DDL: nothing stops a NULL timestamp here.
    connection.executescript(
        "CREATE TABLE schema_metadata (schema_version INTEGER); INSERT INTO schema_metadata VALUES (5);"
        "CREATE TABLE automation_runs (run_id TEXT, automation_id TEXT, org_id TEXT, workspace_id TEXT,"
        " deployment_id TEXT, status TEXT, is_hot INTEGER, run_json TEXT, created_at_ms INTEGER, updated_at_ms INTEGER);"
        "INSERT INTO automation_runs VALUES ('r', 'a', 'local', 'local', NULL, 'queued', 1, '{}', NULL, NULL);"
    )
    connection.close()
    snapshot = source_of(path, fixture_now_ms).load()
    assert snapshot.freshness.stale and "cannot read (TypeError" in snapshot.freshness.error
