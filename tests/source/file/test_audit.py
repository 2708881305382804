"""The operator audit log appends whole JSON lines, even from several processes at once."""

import json
import subprocess
import sys

from tandem_tui.source.file.audit import AuditEntry, append_audit, audit_log_path, read_audit


def _entry(n: int = 1, result: str = "ok") -> AuditEntry:
    return AuditEntry(
        at_ms=1_000 + n,
        actor="ops@host",
        action="pause",
        run_id=f"run-{n}",
        previous_status="running",
        new_status="paused" if result == "ok" else "running",
        reason="maintenance",
        result=result,
        message="running -> paused",
    )


def test_the_log_lives_beside_the_history_shards_of_the_runs_file(tmp_path):
    runs_file = tmp_path / "data" / "automation_v2_runs.json"
    assert audit_log_path(runs_file) == (
        tmp_path / "data" / "automation-runs" / "automation_v2_runs" / "operator-audit.jsonl"
    )


def test_an_appended_entry_is_one_line_with_every_field_and_the_source(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    path = append_audit(runs_file, _entry(1))
    append_audit(runs_file, _entry(2, result="refused"))
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first == {
        "at_ms": 1001,
        "actor": "ops@host",
        "action": "pause",
        "run_id": "run-1",
        "previous_status": "running",
        "new_status": "paused",
        "reason": "maintenance",
        "result": "ok",
        "message": "running -> paused",
        "source": "tandem-tui",
        "route": "file",
    }
    assert [e["result"] for e in read_audit(runs_file)] == ["ok", "refused"]


def test_reading_a_missing_log_gives_no_entries(tmp_path):
    assert read_audit(tmp_path / "automation_v2_runs.json") == []


def test_a_torn_last_line_is_skipped_when_reading(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    path = append_audit(runs_file, _entry(1))
    with open(path, "a") as handle:
        handle.write('{"at_ms": 5, "act')
    assert [e["run_id"] for e in read_audit(runs_file)] == ["run-1"]


def test_lines_appended_by_concurrent_processes_never_interleave(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    code = (
        "import sys\n"
        "from tandem_tui.source.file.audit import append_audit\n"
        "runs_file, tag = sys.argv[1], sys.argv[2]\n"
        "for i in range(150):\n"
        "    append_audit(runs_file, {'at_ms': i, 'actor': tag, 'action': 'pause', 'run_id': tag + str(i),\n"
        "        'previous_status': None, 'new_status': None, 'reason': 'x' * 3000, 'result': 'ok', 'message': ''})\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(runs_file), f"w{n}"]) for n in range(4)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    lines = audit_log_path(runs_file).read_text().splitlines()
    assert len(lines) == 600
    parsed = [json.loads(line) for line in lines]
    assert sorted(e["run_id"] for e in parsed) == sorted(f"w{n}{i}" for n in range(4) for i in range(150))
