"""Real OS processes writing one runs file: no lost updates, foreign writers respected, crashes harmless."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tandem_tui.source.file.atomic import temp_prefix
from tandem_tui.source.file.audit import read_audit
from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.file.store import read_runs_file, serialize_runs_file
from tandem_tui.source.file.transaction import transact

PROCS = Path(__file__).resolve().parent / "procs"
NOW = 1_700_000_000_000

#: The lifecycle events each kind of successful action records.
EVENTS_BY_KIND = {
    "pause": [["run_pause_requested", "run_paused"]],
    "resume": [["run_resumed"]],
    "requeue": [["run_recovered"], ["run_recovered_from_pause"], ["run_retry_backoff_skipped_by_operator"]],
    "release_lock": [["run_lock_released_by_operator"]],
}


def _run(run_id: str, status: str, **extra) -> dict:
    return {
        "run_id": run_id,
        "automation_id": f"auto-{run_id}",
        "trigger_type": "manual",
        "status": status,
        "checkpoint": {},
        "created_at_ms": NOW,
        "updated_at_ms": NOW,
        "automation_snapshot": {"workspace_root": f"/ws/{run_id}"},
        "server_extension": {"keep": run_id},
        **extra,
    }


def _spawn(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(PROCS / script), *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _await_line(proc: subprocess.Popen, expected: str) -> None:
    line = proc.stdout.readline().strip()
    assert line == expected, f"{line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"


def _start_together(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        _await_line(proc, "ready")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()


def _report(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _operator_events(runs_file: Path) -> list[tuple[str, dict]]:
    runs = json.loads(runs_file.read_text())["runs"]
    return [
        (record["event"], record["metadata"])
        for run in runs.values()
        for record in run.get("checkpoint", {}).get("lifecycle_history", [])
        if isinstance(record.get("metadata"), dict) and record["metadata"].get("source") == "tandem-tui"
    ]


def test_concurrent_actors_lose_no_update(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    run_ids = [f"r{i}" for i in range(6)]
    statuses = ["running", "queued", "paused", "failed", "running", "paused"]
    runs_file.write_text(serialize_runs_file({i: _run(i, s) for i, s in zip(run_ids, statuses)}))
    actors = [_spawn("actor.py", runs_file, f"actor{n}", 80, n, *run_ids) for n in range(4)]
    _start_together(actors)
    reports = {f"actor{n}": _report(proc) for n, proc in enumerate(actors)}

    successes = [s for report in reports.values() for s in report["successes"]]
    assert len(successes) + sum(r["refused"] for r in reports.values()) == 320
    assert len(successes) >= 50, "the ping-pong must actually change runs"
    events = _operator_events(runs_file)
    by_reason: dict[str, list[str]] = {}
    for event, metadata in events:
        by_reason.setdefault(metadata["reason"], []).append(event)
    for success in successes:
        assert by_reason.get(success["reason"]) in EVENTS_BY_KIND[success["kind"]], success
    expected_total = sum(len(EVENTS_BY_KIND[s["kind"]][0]) for s in successes)
    assert len(events) == expected_total
    assert set(by_reason) == {s["reason"] for s in successes}

    audit = read_audit(runs_file)
    assert len(audit) == 320
    assert Counter(e["result"] for e in audit)["ok"] == len(successes)
    runs = read_runs_file(runs_file, now_ms=NOW)
    assert all(runs[i].model_extra["server_extension"] == {"keep": i} for i in run_ids)


ACTIONS_PER_ACTOR = 150


def test_a_foreign_writer_without_the_lock_never_loses_a_write_to_us(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    run_ids = [f"r{i}" for i in range(4)]
    records = {i: _run(i, "running") for i in run_ids}
    records["foreign"] = _run("foreign", "running", counter=0)
    runs_file.write_text(serialize_runs_file(records))
    foreign = _spawn("foreign_writer.py", runs_file, "foreign")
    actors = [_spawn("actor.py", runs_file, f"actor{n}", ACTIONS_PER_ACTOR, 100 + n, *run_ids) for n in range(3)]
    _start_together([foreign, *actors])
    reports = [_report(proc) for proc in actors]
    writes = _report(foreign)["writes"]

    # The foreign writer runs exactly as long as the actors do, so its count follows how
    # fast they act: 69-76 with 150 actions each on an idle machine (29 with 60, which
    # left too little margin); twenty rewrites inside their window are real competition.
    assert writes >= 20, "the foreign writer must really compete"
    final = json.loads(runs_file.read_text())
    assert final["runs"]["foreign"]["counter"] == writes
    assert sum(len(r["successes"]) for r in reports) > 0
    assert len(read_audit(runs_file)) == 3 * ACTIONS_PER_ACTOR


def _temp_files(runs_file: Path, pid: int) -> list[Path]:
    return sorted(runs_file.parent.glob(f"{temp_prefix(runs_file)}{pid}-*"))


def _generation(runs_file: Path) -> int:
    """The file's generation, after checking it is one whole write and not a mix of two."""
    run = json.loads(runs_file.read_text())["runs"]["crash"]
    generation = run.get("generation", 0)
    assert run.get("padding", "") == (str(generation % 10) * PAD if generation else "")
    assert run["server_extension"] == {"keep": "crash"}
    return generation


PAD = 200_000
KILLS = 30


def test_a_writer_killed_at_any_moment_leaves_the_old_or_the_new_file(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    runs_file.write_text(serialize_runs_file({"crash": _run("crash", "running")}))
    rng = random.Random(7)
    generation = 0
    left_temp_files = 0
    previous_pid = None
    forker = _spawn("crash_writer.py", runs_file, PAD)
    try:
        _await_line(forker, "ready")
        for _ in range(KILLS):
            _send(forker, "fork")
            # The parent's "child" and the writer's "writing" lines may come in either order.
            lines = dict(forker.stdout.readline().split() for _ in range(2))
            pid = int(lines["child"])
            assert lines["writing"] == str(pid)
            if previous_pid is not None:
                assert _temp_files(runs_file, previous_pid) == [], "the next write cleans up after the dead"
            time.sleep(rng.uniform(0.0, 0.03))  # a random moment to die at, not a clock
            os.kill(pid, signal.SIGKILL)
            _send(forker, f"reap {pid}")
            assert _read_word(forker, "reaped") == f"{pid} {int(signal.SIGKILL)}"
            left_temp_files += bool(_temp_files(runs_file, pid))
            now = _generation(runs_file)
            assert now >= generation + 1, "the first write before 'writing' must have landed"
            generation = now
            previous_pid = pid
    finally:
        forker.kill()
        forker.wait()
    transact(runs_file, lambda doc: None, clock=ManualClock(NOW))
    assert _temp_files(runs_file, previous_pid) == []
    print(f"{left_temp_files} of {KILLS} kills left a temp file behind")
    assert left_temp_files > 0, "some kills must land mid-write for this test to mean anything"


def _send(proc: subprocess.Popen, line: str) -> None:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def _read_word(proc: subprocess.Popen, keyword: str) -> str:
    """The rest of the next line, which must start with ``keyword``."""
    line = proc.stdout.readline().strip()
    word, _, rest = line.partition(" ")
    assert word == keyword, f"{line!r}"
    return rest
