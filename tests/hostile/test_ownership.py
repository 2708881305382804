"""A write keeps the runs file's owner and mode, or refuses: the engine that owns the
file must still be able to write it afterwards."""

import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import FIXTURES_DIR

NOBODY = 65534
RUN = "run-rn-0142"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")


def act(runs_file, *, as_nobody=False):
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if as_nobody else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "tandem_tui", "pause", RUN, "--runs-file", str(runs_file), "--reason", "x"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": "/tmp"},
    )


@pytest.fixture
def shared_dir():
    # Not under pytest's tmp_path: its parents are private to root.
    top = tempfile.mkdtemp(prefix="tandem-tui-owner-")
    directory = os.path.join(top, "data")
    os.mkdir(directory)
    # World-writable and searchable: another user can create files (and rename) here.
    for path in (top, directory):
        os.chmod(path, 0o777)
    shutil.copyfile(FIXTURES_DIR / "runs_v1.json", os.path.join(directory, "automation_v2_runs.json"))
    yield pathlib.Path(directory)
    shutil.rmtree(top)


@needs_root
def test_a_root_action_on_a_file_owned_by_another_user_keeps_its_owner_and_mode(shared_dir):
    runs_file = shared_dir / "automation_v2_runs.json"
    os.chown(runs_file, NOBODY, NOBODY)
    runs_file.chmod(0o640)

    result = act(runs_file)

    assert result.returncode == 0, result.stderr
    after = runs_file.stat()
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == (NOBODY, NOBODY, 0o640)
    assert json.loads(runs_file.read_text())["runs"][RUN]["status"] == "paused"


@needs_root
def test_another_unprivileged_user_is_refused_in_one_line_and_the_file_is_untouched(shared_dir):
    runs_file = shared_dir / "automation_v2_runs.json"
    runs_file.chmod(0o666)  # writable by all, still owned by root
    before = runs_file.read_bytes()

    result = act(runs_file, as_nobody=True)

    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "belongs to uid 0" in result.stderr and "Traceback" not in result.stderr
    assert runs_file.read_bytes() == before
    assert runs_file.stat().st_uid == 0
    assert [p.name for p in shared_dir.iterdir() if ".tmp-" in p.name] == []


@needs_root
def test_files_a_root_action_creates_in_another_users_data_directory_are_that_users(shared_dir):
    """The lock file, the audit log and its directories: root-owned 644/755 files there
    would lock the engine's user out of its own data directory."""
    os.chmod(shared_dir, 0o755)
    for path in (shared_dir, shared_dir / "automation_v2_runs.json"):
        os.chown(path, NOBODY, NOBODY)

    result = act(shared_dir / "automation_v2_runs.json")

    assert result.returncode == 0, result.stderr
    created = [path for path in shared_dir.rglob("*")]
    assert {path.name for path in created} >= {"automation_v2_runs.json.lock", "operator-audit.jsonl"}
    assert [str(path) for path in created if path.lstat().st_uid != NOBODY or path.lstat().st_gid != NOBODY] == []


@needs_root
def test_a_shard_root_archives_into_another_users_tree_is_that_users(shared_dir):
    from tandem_tui.domain.models import parse_run
    from tandem_tui.source.file.shards import write_shard

    os.chown(shared_dir, NOBODY, NOBODY)
    runs_file = shared_dir / "automation_v2_runs.json"
    record = json.loads(runs_file.read_text())["runs"]["run-rn-0139"]

    path = write_shard(runs_file, parse_run(record))

    made = [path, *(p for p in path.parents if shared_dir in p.parents)]
    assert len(made) == 5  # automation-runs/<stem>/YYYY/MM/<run>.json
    assert [str(p) for p in made if (p.lstat().st_uid, p.lstat().st_gid) != (NOBODY, NOBODY)] == []
