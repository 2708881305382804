"""An action on an archived run whose shard directory cannot be written: no traceback.
The run comes back into the runs file (the action is done), the old shard stays as it
was, and the result and the audit line say the shard copy was not updated (run as an
unprivileged user)."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

from tandem_tui.source.file.audit import read_audit
from tests.conftest import FIXTURES_DIR

NOBODY = 65534
ARCHIVED = "run-ir-0070"  # failed, only in the 2026/10 shards of the fixture


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to set up another user's files")
def test_an_archived_run_in_a_read_only_month_is_refused_in_one_line_and_audited():
    top = pathlib.Path(tempfile.mkdtemp(prefix="tandem-tui-shard-"))
    try:
        data = top / "data"
        shutil.copytree(FIXTURES_DIR / "history", data)
        shutil.copyfile(FIXTURES_DIR / "runs_v1.json", data / "automation_v2_runs.json")
        # Everything the user's: the runs file, its directory and the audit directory...
        for path in [top, *top.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
        stem = data / "automation-runs" / "automation_v2_runs"
        shard = next(stem.rglob(f"{ARCHIVED}.json"))
        # ...but the month directory holding the shard, which is root's and read-only.
        for directory in (shard.parent, shard.parent.parent):
            os.chown(directory, 0, 0)
            directory.chmod(0o755)
        # Give it the failure context the server's recover needs.
        document = json.loads(shard.read_text())
        document["run"]["checkpoint"]["last_failure"] = {
            "node_id": "reconcile", "reason": "ledger API returned 503", "failed_at_ms": document["run"]["updated_at_ms"],
        }
        shard.write_text(json.dumps(document, indent=2))
        before = shard.read_bytes()

        result = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             sys.executable, "-m", "tandem_tui", "requeue", ARCHIVED,
             "--runs-file", str(data / "automation_v2_runs.json")],
            capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": "/tmp", "USER": "op"},
        )

        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        assert "its shard copy was not updated" in result.stdout and "Permission denied" in result.stdout
        assert shard.read_bytes() == before
        runs = json.loads((data / "automation_v2_runs.json").read_text())["runs"]
        assert runs[ARCHIVED]["status"] == "queued"
        entry = read_audit(data / "automation_v2_runs.json")[-1]
        assert (entry["run_id"], entry["result"]) == (ARCHIVED, "ok")
        assert "its shard copy was not updated" in entry["message"]
    finally:
        shutil.rmtree(top)
