"""The simulate engine on real files: coverage of every state, invariants, determinism, and
the real engine's habits: runs in memory, a plain rewrite, nothing re-read."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from tandem_tui.domain.actions import ActionKind, ActionRequest
from tandem_tui.source.file.perform import perform
from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import TERMINAL_STATUSES, QueueReason, Run, RunStatus, dump_run
from tandem_tui.source.file.shards import ShardIndex, history_root, load_all_shards
from tandem_tui.source.file.store import read_runs_file
from tandem_tui.domain.view import RunsView
from tandem_tui.simulate import AUTOMATIONS, Engine, build_run, required_providers, runs_file_for_state_dir

START_MS = 1_795_446_000_000
TICK_MS = 1_000
MAX_CONCURRENT = 3


def make_engine(state_dir: Path, seed: int = 4) -> tuple[Engine, ManualClock]:
    clock = ManualClock(START_MS)
    engine = Engine(
        state_dir, seed=seed, rate=1.5, max_concurrent=MAX_CONCURRENT, clock=clock, archive_after_ms=5_000
    )
    return engine, clock


def tick(engine: Engine, clock: ManualClock) -> dict[str, Run]:
    clock.advance(TICK_MS)
    engine.step()
    return read_runs_file(engine.runs_file, now_ms=clock.now_ms())


def assert_invariants(runs: dict[str, Run], now_ms: int) -> None:
    for run in runs.values():
        assert not (run.status == RunStatus.QUEUED and run.execution_claim is not None), (
            f"{run.run_id} is queued and holds a claim"
        )
        if run.status != RunStatus.QUEUED:
            assert run.scheduler is None, f"{run.run_id} is {run.status} with queue metadata"
    running = [run for run in runs.values() if run.status == RunStatus.RUNNING]
    assert len(running) <= MAX_CONCURRENT
    holders = [r.workspace_root for r in runs.values() if r.status in (RunStatus.RUNNING, RunStatus.PAUSING) and r.workspace_root]
    assert len(holders) == len(set(holders)), f"two lock holders in one workspace: {sorted(holders)}"
    view = RunsView.build(runs, now_ms=now_ms, max_concurrent_runs=MAX_CONCURRENT)
    assert view.metrics().active_runs == len(running)
    assert sorted(view.scheduler.locked_workspaces) == sorted(holders)


def test_the_runs_file_lives_where_the_server_puts_it_for_the_state_dir(tmp_path):
    assert runs_file_for_state_dir(tmp_path) == tmp_path.resolve() / "data" / "automation_v2_runs.json"
    # A state dir named data holds the file directly, if it exists (else the server
    # falls back to <state dir>/data, as for any state dir it cannot validate).
    assert runs_file_for_state_dir(tmp_path / "data") == tmp_path / "data" / "data" / "automation_v2_runs.json"
    (tmp_path / "data").mkdir()
    assert runs_file_for_state_dir(tmp_path / "data") == tmp_path.resolve() / "data" / "automation_v2_runs.json"


def test_every_automation_names_its_workspace_flow_and_providers():
    workspaces = {root for spec in AUTOMATIONS for root in spec.workspaces if root}
    assert 3 <= len(AUTOMATIONS) <= 4
    assert 3 <= len(workspaces) <= 5
    for spec in AUTOMATIONS:
        snapshot = spec.snapshot(spec.workspaces[0], START_MS)
        nodes = snapshot["flow"]["nodes"]
        assert [n["node_id"] for n in nodes] == [n.node_id for n in spec.nodes]
        assert all({"agent_id", "objective", "retry_policy"} <= n.keys() for n in nodes)
        providers = {a["model_policy"]["default_model"]["provider_id"] for a in snapshot["agents"]}
        assert providers == set(spec.agents.values())


def test_a_seeded_simulation_reaches_every_queue_reason_and_terminal_status_within_the_invariants(tmp_path):
    engine, clock = make_engine(tmp_path)
    reasons: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    wanted = {status.value for status in TERMINAL_STATUSES} | {"awaiting_approval", "paused", "pausing"}
    for _ in range(240):
        runs = tick(engine, clock)
        assert_invariants(runs, clock.now_ms())
        for run in runs.values():
            statuses[run.status.value] += 1
            if run.status == RunStatus.QUEUED and run.scheduler and run.scheduler.queue_reason:
                reasons[QueueReason(run.scheduler.queue_reason).value] += 1
        if set(reasons) == set(QueueReason) and wanted <= set(statuses):
            break

    assert set(reasons) == {reason.value for reason in QueueReason}, reasons
    assert wanted <= set(statuses), statuses
    # Old terminal runs went to history shards, and the shards parse.
    archived = load_all_shards(engine.runs_file)
    assert archived and all(run.is_terminal for run in archived)
    assert len(ShardIndex.scan(engine.runs_file)) == len(archived)
    assert history_root(engine.runs_file).is_relative_to(tmp_path / "data")


def test_rate_limited_runs_name_a_provider_their_automation_uses(tmp_path):
    engine, clock = make_engine(tmp_path)
    seen = 0
    for _ in range(120):
        for run in tick(engine, clock).values():
            metadata = run.scheduler
            if run.status == RunStatus.QUEUED and metadata and metadata.queue_reason == QueueReason.RATE_LIMIT:
                assert metadata.rate_limited_provider in required_providers(run)
                seen += 1
        if seen:
            break
    assert seen


def test_running_runs_record_node_progress_tokens_and_artifacts(tmp_path):
    engine, clock = make_engine(tmp_path)
    for _ in range(40):
        runs = tick(engine, clock)
    progressed = [run for run in runs.values() if run.checkpoint.completed_nodes]
    assert progressed
    for run in progressed:
        events = [record.event for record in run.checkpoint.lifecycle_history]
        assert "run_execution_claimed" in events and "node_started" in events and "node_completed" in events
        assert run.total_tokens == run.prompt_tokens + run.completion_tokens > 0
        assert run.estimated_cost_usd > 0
        for node_id in run.checkpoint.completed_nodes:
            if node_id == "approve":
                continue  # a gate: decided, not produced
            artifact = run.checkpoint.node_outputs[node_id]["attempt_evidence"]["artifact"]
            assert artifact["status"] == "written" and artifact["path"] and artifact["content_digest"]
            assert run.checkpoint.node_attempts[node_id] >= 1


def file_digest(engine: Engine) -> str:
    digest = hashlib.sha256(engine.runs_file.read_bytes())
    for path in sorted(history_root(engine.runs_file).rglob("*.json")):
        digest.update(str(path.relative_to(engine.state_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_the_same_seed_and_clock_give_the_same_files(tmp_path):
    first, first_clock = make_engine(tmp_path / "a", seed=3)
    second, second_clock = make_engine(tmp_path / "b", seed=3)
    other, other_clock = make_engine(tmp_path / "c", seed=6)
    for _ in range(40):
        tick(first, first_clock)
        tick(second, second_clock)
        tick(other, other_clock)
    assert file_digest(first) == file_digest(second)
    assert file_digest(first) != file_digest(other)


def pause_through_the_engine(engine: Engine, run_id: str, reason: str = "looking into it"):
    """What the API's pause route does: the engine's gate, then our domain, in memory."""
    from tandem_tui.simulate.server import run_action

    return run_action(engine, "pause", run_id, reason)


def test_the_engine_never_moves_a_run_an_operator_paused(tmp_path):
    engine, clock = make_engine(tmp_path)
    paused: list[str] = []
    for _ in range(60):
        runs = tick(engine, clock)
        for run in sorted(runs.values(), key=lambda r: r.run_id):
            if run.status in (RunStatus.RUNNING, RunStatus.QUEUED) and len(paused) < 3 and run.run_id not in paused:
                answer = pause_through_the_engine(engine, run.run_id)
                assert answer.status == 200, answer.body
                paused.append(run.run_id)
        if len(paused) == 3:
            break
    assert len(paused) == 3
    held = {run_id: runs_entry(engine, run_id) for run_id in paused}

    for _ in range(30):
        tick(engine, clock)

    for run_id, before in held.items():
        assert runs_entry(engine, run_id) == before, f"the engine moved {run_id}"


def runs_entry(engine: Engine, run_id: str) -> dict:
    return json.loads(engine.runs_file.read_text())["runs"][run_id]


def test_an_operator_resume_puts_the_run_back_in_the_engines_hands(tmp_path):
    from tandem_tui.simulate.server import run_action

    engine, clock = make_engine(tmp_path)
    for _ in range(10):
        runs = tick(engine, clock)
    target = next(run for run in sorted(runs.values(), key=lambda r: r.run_id) if run.status == RunStatus.QUEUED)
    assert pause_through_the_engine(engine, target.run_id).status == 200
    assert run_action(engine, "resume", target.run_id, None).status == 200

    for _ in range(120):
        runs = tick(engine, clock)
        run = runs.get(target.run_id)
        if run is None or run.status != RunStatus.QUEUED:
            break
    else:
        pytest.fail("the resumed run was never claimed")
    events = [
        record.event
        for record in (run.checkpoint.lifecycle_history if run else [])
    ]
    assert run is None or "run_execution_claimed" in events[events.index("run_resumed"):]


def test_an_action_written_to_the_file_behind_the_engine_is_gone_at_its_next_save(tmp_path):
    """Why actions go through the API while an engine lives: it never re-reads the file."""
    engine, clock = make_engine(tmp_path)
    for _ in range(5):
        runs = tick(engine, clock)
    target = next(run for run in sorted(runs.values(), key=lambda r: r.run_id) if run.status == RunStatus.QUEUED)
    result = perform(
        engine.runs_file,
        ActionRequest(kind=ActionKind.PAUSE, run_id=target.run_id, reason="behind its back", actor="ops@test"),
        clock=clock,
    )
    assert result.ok and runs_entry(engine, target.run_id)["status"] == "paused"

    saves = engine.saves
    while engine.saves == saves:
        tick(engine, clock)

    entry = runs_entry(engine, target.run_id)
    assert entry["status"] != "paused"
    assert "behind its back" not in json.dumps(entry)


def test_the_engine_saves_with_a_plain_rewrite_not_an_atomic_rename(tmp_path):
    engine, clock = make_engine(tmp_path)
    tick(engine, clock)
    inode = engine.runs_file.stat().st_ino
    for _ in range(5):
        tick(engine, clock)
    assert engine.runs_file.stat().st_ino == inode  # truncate-and-write keeps the inode
    assert not any(".tmp-" in path.name for path in engine.runs_file.parent.iterdir())


def test_foreign_runs_corrupt_entries_and_unknown_fields_loaded_at_start_up_survive_the_engine(tmp_path, fixtures_dir):
    engine, clock = make_engine(tmp_path)
    engine.runs_file.parent.mkdir(parents=True)
    corrupt = json.loads((fixtures_dir / "runs_corrupt_entry.json").read_text())
    foreign = json.loads((fixtures_dir / "runs_v1.json").read_text())["runs"]
    queued_foreign = {key: value for key, value in foreign.items() if value["status"] == "queued"}
    entries = {**queued_foreign, **corrupt.get("runs", corrupt)}
    ours_before = build_run(AUTOMATIONS[0], run_id="inbox-digest-noted", workspace_root=None, now_ms=START_MS)
    noted = {**dump_run(ours_before), "x_operator_note": {"kept": True}}
    engine.runs_file.write_text(
        json.dumps({"schema_version": 1, "runs": {**entries, "inbox-digest-noted": noted}}, indent=2)
    )

    for _ in range(20):
        tick(engine, clock)

    after = json.loads(engine.runs_file.read_text())["runs"]
    index = ShardIndex.scan(engine.runs_file)
    for key, value in entries.items():
        if key in after:
            assert after[key] == value, f"the engine changed {key}"
        else:  # an old terminal run: archived as it was
            assert value["status"] in {s.value for s in TERMINAL_STATUSES}
            assert dump_run(index.load(key)) == value
    assert "run-ir-0084" in after  # the corrupt entry, kept byte for byte above
    ours = "inbox-digest-noted"
    if ours in after:
        assert after[ours]["x_operator_note"] == {"kept": True}
    else:
        archived = index.load(ours)
        assert archived is not None and archived.model_extra["x_operator_note"] == {"kept": True}


def test_a_stale_reaped_run_is_auto_resumed_by_the_cores_rule(tmp_path):
    engine, clock = make_engine(tmp_path)
    for _ in range(120):
        runs = tick(engine, clock)
        resumed = [
            run for run in runs.values()
            if any(record.event == "run_auto_resumed" for record in run.checkpoint.lifecycle_history)
        ]
        if resumed:
            break
    else:
        pytest.fail("no stale-reaped run was auto-resumed")
    run = resumed[0]
    events = [record.event for record in run.checkpoint.lifecycle_history]
    reaped = events.index("run_paused_stale_no_provider_activity")
    resumed_at = events.index("run_auto_resumed")
    assert resumed_at > reaped
    assert run.checkpoint.lifecycle_history[resumed_at].reason == "auto_resume_after_stale_reap"
    history = run.checkpoint.lifecycle_history
    assert history[resumed_at].recorded_at_ms - history[reaped].recorded_at_ms >= 3_000


def test_run_ticks_every_tick_ms_until_the_duration_has_passed(tmp_path):
    clock = ManualClock(START_MS)
    engine = Engine(tmp_path, seed=1, clock=clock)

    def sleep(seconds: float) -> bool:
        clock.advance(round(seconds * 1000))
        return False  # not stopped

    ticks = engine.run(duration_ms=5_000, tick_ms=250, sleep=sleep)

    assert ticks == 21  # at 0, 250, ..., 5000 ms
    assert clock.now_ms() == START_MS + 5_000
    assert read_runs_file(engine.runs_file, now_ms=clock.now_ms())


def test_run_returns_once_the_stop_event_is_set(tmp_path):
    import threading

    engine = Engine(tmp_path, seed=1, clock=ManualClock(START_MS))
    stop = threading.Event()
    calls = []

    def sleep(seconds: float) -> bool:
        calls.append(seconds)
        if len(calls) == 3:
            stop.set()
        return stop.is_set()

    assert engine.run(stop, sleep=sleep) == 3


def _nodes_completed_after(state_dir: Path, pace: float, ticks: int) -> int:
    clock = ManualClock(START_MS)
    engine = Engine(state_dir, seed=4, rate=0.5, pace=pace, max_concurrent=MAX_CONCURRENT, clock=clock)
    for _ in range(ticks):
        clock.advance(250)
        engine.step()
    runs = read_runs_file(engine.runs_file, now_ms=clock.now_ms())
    shards = load_all_shards(engine.runs_file)
    return sum(len(run.checkpoint.completed_nodes) for run in [*runs.values(), *shards])


def test_a_slower_pace_moves_runs_through_fewer_nodes_in_the_same_time(tmp_path):
    brisk = _nodes_completed_after(tmp_path / "brisk", pace=1.0, ticks=240)
    slow = _nodes_completed_after(tmp_path / "slow", pace=0.25, ticks=240)
    assert brisk > 0
    assert slow < brisk / 2


def test_every_record_the_engine_writes_is_one_the_servers_serde_accepts(tmp_path):
    from tandem_tui.domain.models import parse_run_record
    from tandem_tui.source.file.shards import iter_shard_paths
    from tandem_tui.source.file.store import read_runs_document

    engine, clock = make_engine(tmp_path)
    for _ in range(300):
        clock.advance(TICK_MS)
        engine.step()
        for key, value in read_runs_document(engine.runs_file).entries.items():
            parse_run_record(value)  # raises on anything serde would refuse
    shards = list(iter_shard_paths(engine.runs_file))
    assert shards
    for path in shards:
        parse_run_record(json.loads(path.read_text())["run"])


def demo_engine(state_dir: Path, clock: ManualClock, keep_history: int | None = None) -> Engine:
    """The engine as ``--demo`` runs it (its pace and rate, the default archive age)."""
    return Engine(state_dir, seed=7, pace=0.25, rate=0.4, clock=clock, keep_history=keep_history)


def run_minutes(engine: Engine, clock: ManualClock, minutes: int) -> list[int]:
    """Tick every second of clock time (the odds scale with the time a tick stands for)
    for ``minutes``; the hot run count after each minute."""
    counts: list[int] = []
    for _ in range(minutes):
        for _ in range(60):
            clock.advance(1_000)
            engine.step()
        counts.append(len(json.loads(engine.runs_file.read_text())["runs"]))
    return counts


def test_the_demo_hosts_hot_set_reaches_a_steady_state_over_an_hour(tmp_path):
    clock = ManualClock(START_MS)
    engine = demo_engine(tmp_path, clock)
    counts = run_minutes(engine, clock, 60)
    # A new run every 2.5 s (1440 in the hour); terminal runs leave the hot file for
    # their shards, so it holds what is in flight, never the hour's runs.
    assert engine.created > 1000
    assert max(counts[10:]) <= 2 * max(counts[:10])
    assert max(counts) < 80
    assert len(ShardIndex.scan(engine.runs_file)) > 900


def test_keep_history_keeps_only_the_newest_shards_the_engine_wrote(tmp_path):
    clock = ManualClock(START_MS)
    engine = demo_engine(tmp_path, clock, keep_history=100)
    run_minutes(engine, clock, 10)
    index = ShardIndex.scan(engine.runs_file)
    assert len(index) == 100
    # the newest: every shard left was finished no earlier than any shard removed
    kept = load_all_shards(engine.runs_file)
    assert min(run.finished_at_ms or run.updated_at_ms for run in kept) > START_MS + 3 * 60_000
