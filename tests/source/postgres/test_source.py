"""One console over a fleet of engines in PostgreSQL (a real server, started by the tests)."""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest

from tandem_tui.domain.actions import ActionKind, ActionRequest
from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import RunStatus, dump_run
from tandem_tui.source.base import RunsSource, SourceError
from tandem_tui.source.file.audit import read_audit
from tandem_tui.source.postgres.keys import engine_lock_key, pg_locks_ids, write_lock_key
from tandem_tui.source.postgres.source import PostgresSource
from tests.source.stores import fixture_history, fixture_runs, make_postgres_engine, upsert

ENV = {"USER": "alice", "TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS": "4"}
A, B = "tandem_rt_00000000000000aa", "tandem_rt_00000000000000bb"


@pytest.fixture
def fleet(postgres_url):
    """Engine A holds the fixture's runs and history; engine B a few runs whose ids
    collide with A's, and an encrypted one."""
    runs = fixture_runs()
    make_postgres_engine(postgres_url, A, runs, fixture_history())
    b_runs = {run_id: runs[run_id] for run_id in ("run-rn-0142", "run-da-0019", "run-ir-0085")}
    make_postgres_engine(postgres_url, B, b_runs, encrypted=[({**runs["run-ir-0088"], "run_id": "run-enc"}, True)])
    return postgres_url


def source_of(url, now_ms, tmp_path) -> PostgresSource:
    return PostgresSource(url, clock=ManualClock(now_ms), env=ENV, poll_interval_ms=10, audit_owner=tmp_path / "postgres")


def test_it_is_a_runs_source(fleet, fixture_now_ms, tmp_path):
    assert isinstance(source_of(fleet, fixture_now_ms, tmp_path), RunsSource)


def test_the_lock_keys_are_the_engines(fleet):
    # sha256("tandem-stateful-engine-lock:<schema>")[:8] as a big-endian i64, computed here independently.
    import hashlib

    digest = hashlib.sha256(f"tandem-stateful-engine-lock:{A}".encode()).digest()
    assert engine_lock_key(A) == int.from_bytes(digest[:8], "big", signed=True)
    assert engine_lock_key(A) != write_lock_key(A)
    with psycopg.connect(fleet, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (engine_lock_key(A),))
        row = connection.execute(
            "SELECT classid::bigint, objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
        ).fetchone()
    assert tuple(row) == pg_locks_ids(engine_lock_key(A))


def test_every_engine_is_found_and_ids_from_two_engines_never_collide(fleet, fixture_now_ms, tmp_path):
    snapshot = source_of(fleet, fixture_now_ms, tmp_path).read()
    assert set(snapshot.engines) == {A, B}
    assert f"{A}/run-rn-0142" in snapshot.runs and f"{B}/run-rn-0142" in snapshot.runs
    assert snapshot.engine_of[f"{B}/run-da-0019"] == B
    assert len(snapshot.runs) == len(fixture_runs()) + 4
    for run_id, record in fixture_runs().items():
        assert dump_run(snapshot.runs[f"{A}/{run_id}"]) == record
    assert snapshot.encrypted == frozenset({f"{B}/run-enc"})


def test_fleet_totals_add_up_each_engines_own_capacity(fleet, fixture_now_ms, tmp_path):
    snapshot = source_of(fleet, fixture_now_ms, tmp_path).read()
    report = snapshot.view.status_report(snapshot.runs)
    engines = report["engines"]
    assert report["max_concurrent_runs"] == 8 and engines[A]["max_concurrent_runs"] == 4
    assert report["active_runs"] == engines[A]["active_runs"] + engines[B]["active_runs"]
    assert engines[B]["active_runs"] == 2  # run-rn-0142 and the encrypted running run
    assert sum(report["runs_by_status"].values()) == len(snapshot.runs)
    queued = snapshot.runs[f"{B}/run-da-0019"]
    info = snapshot.view.queue_info(queued, fixture_now_ms)
    assert info is not None and info.text == snapshot.view.views[B].queue_info(queued, fixture_now_ms).text


def test_which_engines_are_live_comes_from_their_session_lock(fleet, fixture_now_ms, tmp_path):
    source = source_of(fleet, fixture_now_ms, tmp_path)
    assert not any(info.live for info in source.read().engines.values())
    with psycopg.connect(fleet, autocommit=True) as engine_session:
        assert engine_session.execute("SELECT pg_try_advisory_lock(%s)", (engine_lock_key(A),)).fetchone()[0]
        engines = source.read().engines
        assert engines[A].live and not engines[B].live
        description = source.describe()
        assert description.route == "postgres" and "1 live" in description.summary
    assert not source.read().engines[A].live


def test_an_engine_of_another_schema_version_is_refused_by_name_and_the_rest_shown(fleet, fixture_now_ms, tmp_path):
    make_postgres_engine(fleet, "tandem_rt_00000000000000cc", fixture_runs(), schema_version=6)
    snapshot = source_of(fleet, fixture_now_ms, tmp_path).read()
    refused = snapshot.engines["tandem_rt_00000000000000cc"]
    assert refused.runs == 0 and "schema version 6 is not 5" in refused.error
    assert not any(key.startswith("tandem_rt_00000000000000cc/") for key in snapshot.runs)
    assert snapshot.engines[A].runs == len(fixture_runs())


def test_a_change_re_reads_only_the_changed_rows(fleet, fixture_now_ms, tmp_path):
    follower = source_of(fleet, fixture_now_ms, tmp_path).follower()
    follower.load()
    decoded = follower.decoded_rows
    with psycopg.connect(fleet, autocommit=True) as connection:
        upsert(connection, {**fixture_runs()["run-da-0019"], "status": "paused", "updated_at_ms": fixture_now_ms},
               mark="%s", table=f'"{B}".automation_runs')
    snapshot = follower.load()
    assert snapshot.changed == frozenset({f"{B}/run-da-0019"})
    assert follower.decoded_rows == decoded + 1
    assert snapshot.runs[f"{B}/run-da-0019"].status == RunStatus.PAUSED
    assert snapshot.runs[f"{A}/run-da-0019"].status == RunStatus.QUEUED
    follower.close()


def test_follow_sees_a_change(fleet, fixture_now_ms, tmp_path):
    source = source_of(fleet, fixture_now_ms, tmp_path)
    stop = threading.Event()
    seen = []

    def consume():
        for snapshot in source.follow(stop):
            seen.append(snapshot)
            if len(seen) == 2:
                stop.set()

    thread = threading.Thread(target=consume)
    thread.start()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    with psycopg.connect(fleet, autocommit=True) as connection:
        connection.execute(f'UPDATE "{A}".automation_runs SET is_hot = 0 WHERE run_id = %s', ("run-sd-0054",))
    thread.join(10)
    stop.set()
    assert len(seen) == 2 and seen[1].changed == frozenset({f"{A}/run-sd-0054"})


def test_the_archive_spans_every_engine(fleet, fixture_now_ms, tmp_path):
    source = source_of(fleet, fixture_now_ms, tmp_path)
    entries = [entry for entries in source.archive_months().values() for entry in entries]
    assert {entry.key for entry in entries} == {f"{A}/{run_id}" for run_id in fixture_history()}
    reads = source.read_archived(entries)
    assert all(read.run is not None for read in reads)
    old = next(iter(fixture_history()))
    found = source.find_run(f"{A}/{old}")
    assert found is not None and found.archived
    assert source.find_run(old).run.run_id == old  # a bare id held by one engine
    assert source.find_run("run-rn-0142") is None  # held by two engines: name one


def test_an_action_on_a_stopped_engine_is_done_by_our_core_under_the_engines_write_lock(fleet, fixture_now_ms, tmp_path):
    source = source_of(fleet, fixture_now_ms, tmp_path)
    # An engine write in progress holds the write lock: our action waits for it.
    with psycopg.connect(fleet) as engine_write:
        engine_write.execute("SELECT pg_advisory_xact_lock(%s)", (write_lock_key(B),))
        results = []
        thread = threading.Thread(
            target=lambda: results.append(source.perform(ActionRequest(ActionKind.PAUSE, f"{B}/run-rn-0142", reason="fleet")))
        )
        thread.start()
        thread.join(0.5)
        assert thread.is_alive() and not results
        engine_write.rollback()
    thread.join(10)
    result = results[0]
    assert result.ok, result.message
    assert result.new_status == RunStatus.PAUSED and B in result.message
    with psycopg.connect(fleet) as connection:
        status, run_json = connection.execute(
            f'SELECT status, run_json FROM "{B}".automation_runs WHERE run_id = %s', ("run-rn-0142",)
        ).fetchone()
        assert status == "paused" and json.loads(run_json)["payload"]["status"] == "paused"
        untouched = connection.execute(
            f'SELECT status FROM "{A}".automation_runs WHERE run_id = %s', ("run-rn-0142",)
        ).fetchone()
        assert untouched == ("running",)
    audit = read_audit(tmp_path / "postgres")
    assert audit[-1]["engine"] == B and audit[-1]["result"] == "ok"


def test_an_ambiguous_bare_id_is_refused_and_names_the_engines(fleet, fixture_now_ms, tmp_path):
    result = source_of(fleet, fixture_now_ms, tmp_path).perform(ActionRequest(ActionKind.PAUSE, "run-rn-0142"))
    assert not result.ok and A in result.message and B in result.message


def test_a_live_engines_runs_are_never_written(fleet, fixture_now_ms, tmp_path):
    source = source_of(fleet, fixture_now_ms, tmp_path)
    with psycopg.connect(fleet, autocommit=True) as engine_session:
        engine_session.execute("SELECT pg_advisory_lock(%s)", (engine_lock_key(A),))
        result = source.perform(ActionRequest(ActionKind.PAUSE, f"{A}/run-rn-0142"))
    assert not result.ok and result.unusable
    assert f"engine {A} is live" in result.message and f"--engine-url {A}=URL" in result.message
    assert "\n" not in result.message
    with psycopg.connect(fleet) as connection:
        assert connection.execute(
            f'SELECT status FROM "{A}".automation_runs WHERE run_id = %s', ("run-rn-0142",)
        ).fetchone() == ("running",)


def test_an_encrypted_row_is_refused(fleet, fixture_now_ms, tmp_path):
    result = source_of(fleet, fixture_now_ms, tmp_path).perform(ActionRequest(ActionKind.PAUSE, f"{B}/run-enc"))
    assert not result.ok and "encrypted" in result.message


def test_an_unreachable_database_is_stale_and_a_one_line_error(fixture_now_ms, tmp_path):
    source = PostgresSource("postgresql://nobody@127.0.0.1:1/none", clock=ManualClock(fixture_now_ms), env=ENV)
    snapshot = source.load()
    assert snapshot.freshness.stale and "cannot connect" in snapshot.freshness.error
    assert "\n" not in snapshot.freshness.error
    with pytest.raises(SourceError):
        source.read()


def test_locks_and_expired_claims_name_their_engine(fleet, fixture_now_ms, tmp_path):
    snapshot = source_of(fleet, fixture_now_ms, tmp_path).read()
    locks = snapshot.view.locks(snapshot.runs, fixture_now_ms)
    assert locks and all(lock.workspace.split(":", 1)[0] in (A, B) for lock in locks)
    for lock in locks:
        engine = lock.workspace.split(":", 1)[0]
        assert lock.holder_run_id.startswith(f"{engine}/") and lock.holder_run_id in snapshot.runs
    a_locks = {lock.workspace.split(":", 1)[1] for lock in locks if lock.workspace.startswith(A)}
    assert a_locks == set(snapshot.view.views[A].scheduler.locked_workspaces)
    for key in snapshot.view.expired_claims(snapshot.runs, fixture_now_ms):
        assert key in snapshot.runs


def test_a_lost_connection_is_stale_then_the_next_poll_reconnects(fleet, fixture_now_ms, tmp_path):
    follower = source_of(fleet, fixture_now_ms, tmp_path).follower()
    good = follower.load()
    with psycopg.connect(fleet, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'tandem-tui' AND pid <> pg_backend_pid()"
        )
        upsert(admin, {**fixture_runs()["run-ib-0008"], "status": "paused", "updated_at_ms": fixture_now_ms},
               mark="%s", table=f'"{A}".automation_runs')
    stale = follower.load()
    assert stale.freshness.stale and stale.runs == good.runs
    fresh = follower.load()
    assert not fresh.freshness.stale
    assert fresh.changed == frozenset({f"{A}/run-ib-0008"})
    follower.close()
