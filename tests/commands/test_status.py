"""`tandem-tui status`: scheduler metrics of a runs file, once or watched, on real files."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.commands.test_runs import cli, record, write_runs

WS = "/srv/ws"


def claimed(at: int) -> dict[str, Any]:
    return {"event": "run_execution_claimed", "recorded_at_ms": at}


@pytest.fixture
def metrics_file(tmp_path: Path) -> Path:
    return write_runs(
        tmp_path / "automation_v2_runs.json",
        # waited 1000 -> 3000: 2000
        record("a", "running", 1000, workspace=f"{WS}/a", checkpoint={"lifecycle_history": [claimed(3000)]}),
        # waited 500, then requeued by an expired claim at 9000 and claimed at 9100: 100
        record(
            "b",
            "running",
            2000,
            workspace=f"{WS}/b",
            checkpoint={
                "lifecycle_history": [
                    claimed(2500),
                    {"event": "run_execution_claim_expired_requeued", "recorded_at_ms": 9000},
                    claimed(9100),
                ]
            },
        ),
        record("c", "pausing", 3000, workspace=f"{WS}/c", checkpoint={"lifecycle_history": [claimed(10_000)]}),
        record("d", "completed", 0, checkpoint={"lifecycle_history": [claimed(9000)]}),
        record("q1", "queued", 4000, workspace=f"{WS}/a"),
        record("q2", "queued", 5000, scheduler={"queue_reason": "rate_limit", "rate_limited_provider": "openai"}),
        record("p", "paused", 6000, workspace=f"{WS}/a"),
    )


def test_status_json_reports_the_hand_computed_metrics(metrics_file, capsys, monkeypatch):
    monkeypatch.setenv("TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS", "4")
    assert cli(["status", "--runs-file", str(metrics_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # Waits: a 2000, b 500 and 100, c 7000, d 9000 -> sorted [100, 500, 2000, 7000, 9000];
    # avg 18600 // 5 = 3720; p95 index min(round(4.75), 4) = 4 -> 9000.
    assert report == {
        "active_runs": 2,
        "queued_runs_by_reason": {"rate_limit": 1, "workspace_lock": 1},
        "admitted_total": 5,
        "completed_total": 3,
        "avg_wait_ms": 3720,
        "p95_wait_ms": 9000,
        "max_concurrent_runs": 4,
        "queued_ready": 0,
        "queued_total": 2,
        "runs_by_status": {
            "queued": 2,
            "running": 2,
            "pausing": 1,
            "paused": 1,
            "awaiting_approval": 0,
            "completed": 1,
            "blocked": 0,
            "failed": 0,
            "cancelled": 0,
        },
        "locked_workspaces": {f"{WS}/a": "a", f"{WS}/b": "b", f"{WS}/c": "c"},
    }


def test_status_summary_shows_active_queued_and_wait_times(metrics_file, capsys, monkeypatch):
    monkeypatch.setenv("TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS", "4")
    assert cli(["status", "--runs-file", str(metrics_file)]) == 0
    # Two columns, at least two spaces apart.
    rows = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in capsys.readouterr().out.splitlines())
    assert rows["active"] == "2 / 4"
    # In the order the scheduler checks reasons; queued runs nothing holds back would be "ready".
    assert rows["queued"] == "2: workspace_lock 1, rate_limit 1"
    assert rows["admitted"] == "5"
    assert rows["completed"] == "3"
    assert rows["avg wait"] == "3s"
    assert rows["p95 wait"] == "9s"
    assert rows["runs"] == "queued 2, running 2, pausing 1, paused 1, completed 1"


def test_status_json_on_the_fixture_file_equals_the_hand_computed_report(fixtures_dir, capsys, monkeypatch):
    monkeypatch.delenv("TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS", raising=False)
    assert cli(["status", "--runs-file", str(fixtures_dir / "runs_v1.json"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # Every claim in runs_v1.json, waited since creation unless noted:
    #   rn-0139 1500, ib-0006 300, etl-0310 1000, rn-0138 900, etl-0308 800,
    #   ir-0085 2000, da-0018 500, sd-0054 700, rn-0140 2000, sd-0055 1000,
    #   ir-0086 4000, ir-0088 300000, cl-0033 3000 then 60000 (claim expired and
    #   requeued 60 s before the second claim), etl-0311 5000, sd-0057 2000, rn-0142 40000.
    # 17 admissions, sum 424700 -> avg 24982; p95 index min(round(16.15), 16) = 16 -> 300000.
    # Running: ir-0088, etl-0311, rn-0142 -> completed 17 - 3 = 14.
    # Queued with metadata: cl-0033 retry_backoff, ir-0089 rate_limit, da-0019
    # workspace_lock, ib-0007 capacity; ib-0008 has none and nothing holds it back:
    # ready, counted in queued_total but not among the server's reasons.
    ws = "/srv/tandem/workspaces"
    assert report == {
        "active_runs": 3,
        "queued_runs_by_reason": {"capacity": 1, "rate_limit": 1, "retry_backoff": 1, "workspace_lock": 1},
        "admitted_total": 17,
        "completed_total": 14,
        "avg_wait_ms": 24982,
        "p95_wait_ms": 300000,
        "max_concurrent_runs": 8,
        "queued_ready": 1,
        "queued_total": 5,
        "runs_by_status": {
            "queued": 5,
            "running": 3,
            "pausing": 1,
            "paused": 2,
            "awaiting_approval": 1,
            "completed": 4,
            "blocked": 1,
            "failed": 2,
            "cancelled": 1,
        },
        "locked_workspaces": {
            f"{ws}/billing-api": "run-ir-0088",
            f"{ws}/data-pipeline": "run-etl-0311",
            f"{ws}/docs-site": "run-rn-0142",
            f"{ws}/support-bot": "run-sd-0057",
        },
    }


# ── --watch, in a real process ────────────────────────────────────────────────

def replace_atomically(path: Path, *records: dict[str, Any]) -> None:
    temp = path.with_suffix(".tmp")
    write_runs(temp, *records)
    os.replace(temp, path)


class LineReader:
    """Lines from a child's stdout, each awaited for a bounded time."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.selector = selectors.DefaultSelector()
        assert process.stdout is not None
        self.selector.register(process.stdout, selectors.EVENT_READ)
        self.buffer = b""

    def next(self, timeout_s: float = 10.0) -> str:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.selector.select(remaining):
                raise AssertionError(f"no line within {timeout_s}s; got {self.buffer!r}")
            chunk = os.read(self.process.stdout.fileno(), 65536)  # type: ignore[union-attr]
            if not chunk:
                raise AssertionError(f"stdout closed; stderr: {self.process.stderr.read()!r}")  # type: ignore[union-attr]
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


def start_watch(path: Path, *extra: str) -> subprocess.Popen[bytes]:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "TANDEM_SCHEDULER_MAX_CONCURRENT_RUNS": "4"}
    return subprocess.Popen(
        [sys.executable, "-m", "tandem_tui", "status", "--runs-file", str(path), "--watch", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=root,
    )


def test_status_watch_prints_one_json_line_per_change(tmp_path):
    path = write_runs(tmp_path / "automation_v2_runs.json", record("a", "queued", 1000, workspace=f"{WS}/a"))
    process = start_watch(path, "--json")
    try:
        lines = LineReader(process)
        first = json.loads(lines.next())
        assert (first["active_runs"], first["queued_runs_by_reason"], first["stale"]) == (0, {}, False)
        # Admitted as the server records it: a claim event (figures come from the file).
        admitted = {"checkpoint": {"lifecycle_history": [claimed(1500)]}}
        replace_atomically(path, record("a", "running", 1000, workspace=f"{WS}/a", **admitted), record("b", "queued", 2000, workspace=f"{WS}/a"))
        second = json.loads(lines.next())
        assert second["active_runs"] == 1
        assert second["queued_runs_by_reason"] == {"workspace_lock": 1}
        assert second["locked_workspaces"] == {f"{WS}/a": "a"}
        assert second["changed_runs"] == 2
        path.write_text("{ half a write")
        third = json.loads(lines.next())
        assert third["stale"] is True and third["error"]
        assert third["active_runs"] == 1  # the last good runs
        replace_atomically(path, record("a", "completed", 1000, workspace=f"{WS}/a", **admitted), record("b", "queued", 2000, workspace=f"{WS}/a"))
        fourth = json.loads(lines.next())
        assert (fourth["stale"], fourth["active_runs"], fourth["completed_total"]) == (False, 0, 1)
        assert (fourth["queued_ready"], fourth["queued_total"]) == (1, 1)
        assert fourth["queued_runs_by_reason"] == {}
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
    assert code == 130
    assert b"Traceback" not in process.stderr.read()  # type: ignore[union-attr]


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found += [int(child) for child in handle.read().split()]
    return found


def test_status_watch_parses_in_a_helper_process_and_leaves_none_behind(tmp_path):
    # The file's bytes and its whole records stay out of the watching process (at 10k
    # runs it held 298 MB; see bench/README.md): a helper parses, as for the console.
    path = write_runs(tmp_path / "automation_v2_runs.json", record("a", "queued", 1000, workspace=f"{WS}/a"))
    process = start_watch(path, "--json")
    helpers: list[int] = []
    try:
        lines = LineReader(process)
        assert json.loads(lines.next())["stale"] is False
        helpers = [
            child for child in children_of(process.pid)
            if b"raw_diff" in Path(f"/proc/{child}/cmdline").read_bytes()
        ]
        assert len(helpers) == 1
        replace_atomically(path, record("a", "running", 1000, workspace=f"{WS}/a"), record("b", "queued", 2000))
        assert json.loads(lines.next())["changed_runs"] == 2
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in helpers)


def test_status_watch_text_lines_summarise_each_change(tmp_path):
    admitted = {"checkpoint": {"lifecycle_history": [claimed(1500)]}}
    path = write_runs(tmp_path / "automation_v2_runs.json", record("a", "running", 1000, workspace=f"{WS}/a", **admitted))
    process = start_watch(path)
    try:
        lines = LineReader(process)
        assert "active 1/4" in lines.next()
        replace_atomically(path, record("a", "completed", 1000, workspace=f"{WS}/a", **admitted))
        second = lines.next()
        assert "active 0/4" in second and "completed 1" in second and "STALE" not in second
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


def test_status_watch_on_an_unusable_file_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    path.write_text(json.dumps({"schema_version": 7, "runs": {}}))
    process = start_watch(path)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 2
    assert out == b""
    assert len(err.decode().splitlines()) == 1
