"""Generate benchmark inputs under bench/out/: hot runs files and a large shard tree.

    python bench/make_runs.py                 # 1k and 10k hot files, 100k shards
    python bench/make_runs.py --runs 5000     # one hot file of 5000 runs
    python bench/make_runs.py --shards 0      # skip the shard tree

Runs are built with the simulate engine's builders (same automations, snapshots and
lifecycle events), in the mix a busy host's hot file holds: mostly terminal runs from the
retention window, a few running (one per workspace, within capacity) and a queue with
every reason. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tandem_tui.source.file.atomic import write_text_atomic  # noqa: E402
from tandem_tui.domain.claims import CLAIMANT_ID_ENV, claim_run  # noqa: E402
from tandem_tui.domain.lifecycle import apply_run_update, record_lifecycle_event  # noqa: E402
from tandem_tui.domain.models import FailureRecord, Run, RunStatus, SchedulerMetadata, StopKind  # noqa: E402
from tandem_tui.source.file.shards import history_root  # noqa: E402
from tandem_tui.source.file.store import serialize_runs_file  # noqa: E402
from tandem_tui.simulate import AUTOMATIONS, MODELS, build_run  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
NOW_MS = 1_795_446_000_000
DAY_MS = 86_400_000
CLAIM_ENV = {CLAIMANT_ID_ENV: "tandem-server:automation-v2-executor:4242"}


def hot_file_path(count: int) -> Path:
    return OUT / f"runs_{count}" / "automation_v2_runs.json"


def _complete_nodes(run: Run, rng: random.Random, count: int, at_ms: int) -> None:
    spec = next(s for s in AUTOMATIONS if s.automation_id == run.automation_id)
    for node in spec.nodes[:count]:
        at_ms += rng.randint(5_000, 120_000)
        attempts = rng.choice((1, 1, 1, 2))
        run.checkpoint.node_attempts[node.node_id] = attempts
        record_lifecycle_event(run, "node_started", f"node `{node.node_id}` attempt {attempts} started",
                               metadata={"node_id": node.node_id, "attempt": attempts}, now_ms=at_ms)
        prompt, completion = rng.randint(800, 6_000), rng.randint(200, 2_000)
        _, prompt_price, completion_price = MODELS[spec.agents[node.agent_id]]
        run.prompt_tokens += prompt
        run.completion_tokens += completion
        run.total_tokens += prompt + completion
        run.estimated_cost_usd = round(
            run.estimated_cost_usd + prompt / 1000 * prompt_price + completion / 1000 * completion_price, 6
        )
        run.checkpoint.completed_nodes.append(node.node_id)
        run.checkpoint.pending_nodes = [n for n in run.checkpoint.pending_nodes if n != node.node_id]
        run.checkpoint.node_outputs[node.node_id] = {
            "status": "completed",
            "summary": f"{node.objective}: done",
            "attempt_evidence": {
                "attempt": attempts,
                "artifact": {
                    "status": "written",
                    "path": f"artifacts/{run.run_id}/{node.node_id}.md",
                    "content_digest": f"sha256:{rng.getrandbits(256):064x}",
                },
            },
        }
        record_lifecycle_event(run, "node_completed", f"node `{node.node_id}` completed",
                               metadata={"node_id": node.node_id}, now_ms=at_ms + 1)


def make_run(index: int, rng: random.Random, status: RunStatus, workspace: str | None, spec) -> Run:
    created = NOW_MS - rng.randint(60_000, 6 * DAY_MS) if status in _TERMINAL else NOW_MS - rng.randint(1_000, 600_000)
    run = build_run(spec, run_id=f"{spec.automation_id}-{index:06d}", workspace_root=workspace, now_ms=created)
    record_lifecycle_event(run, "run_created", "run created by schedule tick", now_ms=created)
    if status == RunStatus.QUEUED:
        return run
    claim_at = created + rng.randint(100, 30_000)
    claim_run(run, now_ms=claim_at, env=CLAIM_ENV, claim_id=f"run-claim-{index:08x}")
    nodes = len(spec.nodes) if status == RunStatus.COMPLETED else rng.randint(0, len(spec.nodes) - 1)
    _complete_nodes(run, rng, nodes, claim_at)
    end = max(record.recorded_at_ms for record in run.checkpoint.lifecycle_history) + 1_000
    if status == RunStatus.RUNNING:
        return run

    def finish(target: Run) -> None:
        target.status = status
        target.execution_claim = None
        if status == RunStatus.FAILED:
            target.checkpoint.last_failure = FailureRecord(
                node_id=spec.nodes[0].node_id, reason="provider timeout; attempts exhausted", failed_at_ms=end
            )
            target.detail = "node failed: provider timeout; attempts exhausted"
        elif status == RunStatus.CANCELLED:
            target.stop_kind = StopKind.CANCELLED
        elif status == RunStatus.BLOCKED:
            target.checkpoint.blocked_nodes.append(spec.nodes[-1].node_id)
        elif status == RunStatus.PAUSED:
            target.stop_kind = StopKind.STALE_REAPED
            target.pause_reason = "no provider activity within the stale window"
        record_lifecycle_event(target, f"run_{status.value}", None, target.stop_kind, now_ms=end)

    apply_run_update(run, finish, now_ms=end)
    if status in _TERMINAL and rng.random() < 0.8:
        # Hot-storage compaction: the server drops the snapshot once the automation it
        # copied has been saved again, which is the common case for older runs.
        run.automation_snapshot = None
    return run


_TERMINAL = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.BLOCKED, RunStatus.CANCELLED)


def make_runs(count: int, seed: int = 1) -> dict[str, Run]:
    """``count`` runs: up to 4 running, a 5% queue with every reason, paused, terminal."""
    rng = random.Random(seed)
    runs: dict[str, Run] = {}
    running_workspaces: set[str] = set()
    queued_budget = max(count // 20, 4)
    reasons = ("capacity", "workspace_lock", "rate_limit", "retry_backoff")
    for index in range(count):
        spec = AUTOMATIONS[index % len(AUTOMATIONS)]
        workspace = rng.choice(spec.workspaces)
        if workspace and workspace not in running_workspaces:
            status = RunStatus.RUNNING
            running_workspaces.add(workspace)
        elif index % 20 == 1 and queued_budget:
            status = RunStatus.QUEUED
            queued_budget -= 1
        elif index % 97 == 0:
            status = RunStatus.PAUSED
        else:
            status = rng.choices(_TERMINAL, weights=(80, 10, 5, 5))[0]
        run = make_run(index, rng, status, workspace, spec)
        if status == RunStatus.QUEUED:
            reason = reasons[queued_budget % len(reasons)]
            run.scheduler = SchedulerMetadata(
                tenant_context=run.tenant_context.model_copy(deep=True),
                queue_reason=reason,
                queued_at_ms=run.created_at_ms,
                resource_key=workspace if reason == "workspace_lock" else None,
                rate_limited_provider="openai" if reason == "rate_limit" else None,
                retry_after_ms=NOW_MS + 60_000 if reason == "retry_backoff" else None,
            )
        runs[run.run_id] = run
    return runs


def write_hot_file(count: int, seed: int = 1) -> Path:
    path = hot_file_path(count)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, serialize_runs_file(make_runs(count, seed)))
    return path


def write_shard_tree(runs_file: Path, count: int) -> Path:
    """``count`` small shard files spread over 24 months (what start-up has to index)."""
    root = history_root(runs_file)
    for index in range(count):
        year, month = 2025 + (index % 24) // 12, (index % 12) + 1
        directory = root / f"{year:04d}" / f"{month:02d}"
        if index < 24:
            directory.mkdir(parents=True, exist_ok=True)
        record = {"run_id": f"archived-{index:07d}", "automation_id": "inbox-digest", "status": "completed",
                  "created_at_ms": NOW_MS - DAY_MS * 30, "updated_at_ms": NOW_MS - DAY_MS * 30}
        with open(directory / f"archived-{index:07d}.json", "w") as handle:
            json.dump({"schema_version": 1, "run": record}, handle)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, action="append", help="hot file sizes (default: 1000 and 10000)")
    parser.add_argument("--shards", type=int, default=100_000, help="shards in the tree (default: 100000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for count in args.runs or (1_000, 10_000):
        started = time.perf_counter()
        path = write_hot_file(count, args.seed)
        print(f"{path.relative_to(OUT.parent)}: {count} runs, {os.path.getsize(path) / 1e6:.1f} MB "
              f"({time.perf_counter() - started:.1f} s)")
    if args.shards:
        runs_file = OUT / "shards" / "automation_v2_runs.json"
        runs_file.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if not history_root(runs_file).exists():
            write_hot_file_to(runs_file)
            write_shard_tree(runs_file, args.shards)
        print(f"{history_root(runs_file).relative_to(OUT.parent)}: {args.shards} shards "
              f"({time.perf_counter() - started:.1f} s)")
    return 0


def write_hot_file_to(runs_file: Path) -> None:
    write_text_atomic(runs_file, serialize_runs_file(make_runs(200, seed=2)))


if __name__ == "__main__":
    raise SystemExit(main())
