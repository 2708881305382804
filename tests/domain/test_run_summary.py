"""A run's summary reads, for everything the dashboard asks of it, exactly as the run.

The runs come from the simulate engine over a few hundred ticks (every status, claims,
retry backoffs, workspace locks, scheduler metadata, failures) plus hand-made edge
cases; each check compares the answer on the whole runs with the answer on their
summaries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import Run, RunStatus, parse_run
from tandem_tui.domain.run_summary import RunSummary, Summarizer, node_counts, summarize
from tandem_tui.domain.view import RunsView, admissions, last_queue_entry_ms
from tandem_tui.present import detail_text, figures, status_since_ms
from tandem_tui.simulate.engine import Engine
from tandem_tui.source.file.store import read_runs_file
from tests.summaries import summary_fields

START_MS = 1_790_000_000_000


def engine_snapshots(tmp_path: Path, ticks: int = 240, every: int = 40) -> list[tuple[int, dict[str, Run]]]:
    clock = ManualClock(START_MS)
    engine = Engine(tmp_path, seed=11, rate=1.5, max_concurrent=3, clock=clock, archive_after_ms=60_000)
    snapshots = []
    for tick in range(1, ticks + 1):
        clock.advance(1_000)
        engine.step()
        if tick % every == 0:
            snapshots.append((clock.now_ms(), read_runs_file(engine.runs_file, now_ms=clock.now_ms())))
    return snapshots


def edge_runs() -> dict[str, Run]:
    """Runs the engine rarely writes: a backoff with and without retry_after_ms, a
    recovered-context run still in flight, a flow without nodes, a failure record."""

    def run(run_id: str, status: str, **fields: Any) -> Run:
        raw = {
            "run_id": run_id,
            "automation_id": "edge",
            "status": status,
            "created_at_ms": START_MS,
            "updated_at_ms": START_MS + 5,
            **fields,
        }
        return parse_run(raw)

    history = [
        {"event": "run_created", "recorded_at_ms": START_MS},
        {"event": "run_execution_claimed", "recorded_at_ms": START_MS + 100, "metadata": {"claim": {"x": 1}}},
        {"event": "node_retry_backoff_scheduled", "recorded_at_ms": START_MS + 200,
         "metadata": {"retry_after_ms": START_MS + 900, "node_id": "a"}},
        {"event": "run_execution_claimed", "recorded_at_ms": START_MS + 1_000},
        {"event": "node_retry_backoff_scheduled", "recorded_at_ms": START_MS + 1_100, "metadata": {"note": 1}},
        {"event": "run_execution_claimed", "recorded_at_ms": START_MS + 1_500},
    ]
    return {
        r.run_id: r
        for r in (
            run("backoff", "queued", checkpoint={"lifecycle_history": history},
                scheduler={"queue_reason": "retry_backoff", "queued_at_ms": START_MS + 1_100,
                           "retry_after_ms": START_MS + 9_000, "retry_node_id": "a"}),
            run("recovered", "queued", trigger_type="recovered_context_run"),
            run("noflow", "running", automation_snapshot={"workspace_root": " /w ", "flow": {}},
                checkpoint={"completed_nodes": ["a"], "pending_nodes": ["b", "c"], "blocked_nodes": ["d"]}),
            run("failed", "failed", checkpoint={"last_failure": {"node_id": "n", "reason": "boom", "failed_at_ms": 1}}),
            run("tenant", "queued", tenant_context={"org_id": "o", "workspace_id": "w", "source": "explicit", "extra": [1]},
                automation_snapshot={"workspace_root": "/w"}),
        )
    }


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[int, dict[str, Run]]]:
    found = engine_snapshots(tmp_path_factory.mktemp("engine"))
    last_now, last_runs = found[-1]
    return [*found, (last_now, {**last_runs, **edge_runs()})]


def summaries_of(runs: dict[str, Run]) -> dict[str, RunSummary]:
    summarizer = Summarizer()
    return {key: summarizer(run, key) for key, run in runs.items()}


def test_the_engine_snapshots_cover_every_status_the_dashboard_groups(snapshots):
    seen = {run.status for _, runs in snapshots for run in runs.values()}
    assert {RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.COMPLETED} <= seen
    assert any(run.execution_claim is not None for _, runs in snapshots for run in runs.values())


def test_figures_of_summaries_are_the_figures_of_the_runs(snapshots):
    for now_ms, runs in snapshots:
        lean = summaries_of(runs)
        full_view = RunsView.build(runs, now_ms=now_ms, max_concurrent_runs=3)
        lean_view = RunsView.build(lean, now_ms=now_ms, max_concurrent_runs=3)
        assert figures(lean, lean_view, now_ms) == figures(runs, full_view, now_ms)
        assert lean_view.status_report(lean) == full_view.status_report(runs)
        assert lean_view.locks(lean, now_ms) == full_view.locks(runs, now_ms)
        assert lean_view.expired_claims(lean, now_ms) == full_view.expired_claims(runs, now_ms)


def test_queue_infos_ages_and_details_of_summaries_are_the_runs(snapshots):
    for now_ms, runs in snapshots:
        lean = summaries_of(runs)
        full_view = RunsView.build(runs, now_ms=now_ms, max_concurrent_runs=3)
        lean_view = RunsView.build(lean, now_ms=now_ms, max_concurrent_runs=3)
        for key, run in runs.items():
            summary = lean[key]
            queue = full_view.queue_info(run, now_ms)
            assert lean_view.queue_info(summary, now_ms) == queue
            assert status_since_ms(summary, queue) == status_since_ms(run, queue)
            assert detail_text(summary) == detail_text(run)
            assert admissions(summary) == admissions(run)
            assert last_queue_entry_ms(summary) == last_queue_entry_ms(run)
            assert node_counts(summary) == node_counts(run)
            assert summary.workspace_root == run.workspace_root
            assert summary.is_terminal == run.is_terminal
            assert summary.is_nonterminal_recovered_context_run == run.is_nonterminal_recovered_context_run


def test_a_view_kept_in_step_over_summaries_stays_the_view_over_runs(snapshots):
    first_now, first = snapshots[0]
    full_view = RunsView.build(first, now_ms=first_now, max_concurrent_runs=3)
    lean_view = RunsView.build(summaries_of(first), now_ms=first_now, max_concurrent_runs=3)
    previous_full, previous_lean = first, summaries_of(first)
    for now_ms, runs in snapshots[1:]:
        lean = summaries_of(runs)
        changed = frozenset(runs) | frozenset(previous_full)
        full_view.observe(previous_full, runs, now_ms=now_ms, changed=changed)
        lean_view.observe(previous_lean, lean, now_ms=now_ms, changed=changed)
        assert figures(lean, lean_view, now_ms) == figures(runs, full_view, now_ms)
        previous_full, previous_lean = runs, lean


def test_a_summary_keeps_no_record_it_was_not_asked_for():
    run = edge_runs()["backoff"]
    summary = summarize(run)
    for missing in ("automation_snapshot", "runtime_context", "active_session_ids", "prompt_tokens"):
        with pytest.raises(AttributeError):
            getattr(summary, missing)
    with pytest.raises(AttributeError):
        getattr(summary.checkpoint, "node_outputs")
    # The admissions and the ways back into the queue, in order; of the metadata only a
    # backoff's retry_after_ms.
    assert [(record.event, record.metadata) for record in summary.checkpoint.lifecycle_history] == [
        ("run_execution_claimed", None),
        ("node_retry_backoff_scheduled", {"retry_after_ms": START_MS + 900}),
        ("run_execution_claimed", None),
        ("node_retry_backoff_scheduled", None),
        ("run_execution_claimed", None),
    ]


def test_summaries_share_equal_tenant_contexts_and_only_those():
    runs = edge_runs()
    summarizer = Summarizer()
    first = summarizer(runs["backoff"])
    second = summarizer(runs["recovered"])
    other = summarizer(runs["tenant"])
    assert first.tenant_context is second.tenant_context
    assert other.tenant_context is not first.tenant_context
    assert other.tenant_context.model_dump(mode="json") == runs["tenant"].tenant_context.model_dump(mode="json")


# --- a summary built from the raw record ---------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def raw_records(tmp_path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Records serde accepts as they stand: every state of a simulated host over four
    minutes, the edge runs, the fixture host, and variations a host may hold (unknown
    fields at every level, tenants that differ only in a value's type)."""
    import orjson

    clock = ManualClock(START_MS)
    engine = Engine(tmp_path, seed=5, rate=1.5, max_concurrent=3, clock=clock, archive_after_ms=60_000)
    found: list[tuple[str, dict[str, Any]]] = []
    for tick in range(1, 241):
        clock.advance(1_000)
        engine.step()
        if tick % 30 == 0:
            found += orjson.loads(engine.runs_file.read_bytes())["runs"].items()
    found += orjson.loads((FIXTURES / "runs_v1.json").read_bytes())["runs"].items()
    base = dict(found[0][1])
    variants = {
        "tenant-int": {**base, "tenant_context": {"org_id": "o", "workspace_id": "w", "x": 1}},
        "tenant-bool": {**base, "tenant_context": {"org_id": "o", "workspace_id": "w", "x": True}},
        "tenant-list": {**base, "tenant_context": {"org_id": "o", "workspace_id": "w", "x": [1]}},
        "tenant-null": {**base, "tenant_context": {"org_id": "o", "workspace_id": "w", "deployment_id": None}},
        "claimed": {**base, "status": "running", "execution_claim": {
            "claim_id": "c", "claimant_id": "n1", "claimed_at_ms": 1, "lease_expires_at_ms": 2, "lease_epoch": 3,
            "x_unknown": {"kept": 1}}},
        "stopped": {**base, "status": "cancelled", "stop_kind": "operator_stopped", "stop_reason": "r",
                    "pause_reason": "p", "resume_reason": "q", "detail": "d", "finished_at_ms": 9},
        "scheduled": {**base, "scheduler": {"queue_reason": "workspace_lock", "resource_key": "k",
                                           "tenant_context": {"org_id": "a", "workspace_id": "b"}, "x": 1}},
    }
    found += variants.items()
    return found


def slimmed(record: dict[str, Any]) -> dict[str, Any]:
    """A record's slim record as the helper sends it: JSON bytes, read back by orjson."""
    import orjson

    from tandem_tui.domain.run_summary import slim_record

    return orjson.loads(orjson.dumps(slim_record(record)))


def test_a_summary_from_the_slim_record_sent_over_the_pipe_is_the_summary_of_its_validated_run(tmp_path):
    from tandem_tui.domain.models import parse_run_record

    records = raw_records(tmp_path)
    assert len(records) > 100
    from_models, from_slim = Summarizer(), Summarizer()
    statuses = set()
    kept_events = 0
    for key, record in records:
        expected = from_models(parse_run_record(record), key)
        slim = slimmed(record)
        got = from_slim.from_slim(slim, key)
        assert summary_fields(got) == summary_fields(expected), key
        # Shared exactly where the models' summaries share.
        assert got.tenant_context is from_slim.from_slim(slimmed(record), key).tenant_context
        statuses.add(got.status)
        kept_events += len(got.checkpoint.lifecycle_history)
        # Only what the summary reads crosses: never the outputs or the snapshot.
        assert "automation_snapshot" not in slim and "node_outputs" not in slim["checkpoint"]
    assert len(statuses) >= 6 and kept_events > 100


def test_raw_tenants_that_differ_only_in_a_value_s_type_are_not_shared(tmp_path):
    records = dict(raw_records(tmp_path))
    summarizer = Summarizer()
    one = summarizer.from_slim(slimmed(records["tenant-int"]), "a").tenant_context
    true = summarizer.from_slim(slimmed(records["tenant-bool"]), "b").tenant_context
    assert one.model_extra == {"x": 1} and true.model_extra == {"x": True}
    assert repr(one.model_extra) != repr(true.model_extra)


def _mutations(value: Any, path: tuple = ()) -> Any:
    """``(path, replacement)`` for every value of a record down to four levels: each
    replaced by values of other types and edges, and each object key dropped."""
    odd = (None, "x", -1, 1.5, True, [], {}, 2**64, -(2**63) - 1, "running")
    if len(path) <= 4:
        if isinstance(value, dict):
            for key, item in value.items():
                yield path + (key,), _DROP
                yield from _mutations(item, path + (key,))
        elif isinstance(value, list):
            for index, item in enumerate(value[:2]):
                yield from _mutations(item, path + (index,))
    if path:
        for replacement in odd:
            yield path, replacement


_DROP = object()


def _mutated(record: dict[str, Any], path: tuple, replacement: Any) -> dict[str, Any]:
    import copy

    changed = copy.deepcopy(record)
    target = changed
    for step in path[:-1]:
        target = target[step]
    if replacement is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = replacement
    return changed


def test_the_helper_s_verdict_refuses_exactly_the_records_parse_run_record_refuses(tmp_path):
    # The helper judges each entry of a console's first read without building the run
    # (judge_run_record); a record it accepts wrongly would be shown as the server
    # would not load it. Every field of records in many states, broken every way.
    from tandem_tui.domain.models import judge_run_record, parse_run_record

    records = raw_records(tmp_path)
    picked = {record["status"]: (key, record) for key, record in records}  # one per status
    picked.update((key, (key, record)) for key, record in records if key in ("claimed", "scheduled", "stopped"))
    refused = accepted = 0
    for key, record in picked.values():
        for path, replacement in _mutations(record):
            case = _mutated(record, path, replacement)
            try:
                parse_run_record(case)
                expected = True
            except ValueError:
                expected = False
            try:
                judge_run_record(case)
                judged = True
            except ValueError:
                judged = False
            assert judged == expected, (key, path, replacement)
            refused += not expected
            accepted += expected
    assert refused > 1000 and accepted > 1000
