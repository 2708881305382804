"""An action on an archived run whose shard directory cannot be written: one line,
exit 2, an audit line, and the shard untouched (run as an unprivileged user)."""

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
ARCHIVED = "run-ir-0070"  # failed (with its failure), only in the 2026/10 shards of the fixture


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
        before = shard.read_bytes()

        result = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             sys.executable, "-m", "tandem_tui", "requeue", ARCHIVED,
             "--runs-file", str(data / "automation_v2_runs.json")],
            capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": "/tmp", "USER": "op"},
        )

        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "Permission denied" in result.stderr or "permission denied" in result.stderr
        assert shard.read_bytes() == before
        entry = read_audit(data / "automation_v2_runs.json")[-1]
        assert (entry["run_id"], entry["result"]) == (ARCHIVED, "failed")
    finally:
        shutil.rmtree(top)
