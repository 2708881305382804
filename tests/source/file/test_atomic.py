"""Atomic replacement: readers see the old file or the new one, and leftovers get cleaned."""

import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from tandem_tui.source.file.atomic import remove_stale_temp_files, temp_prefix, write_text_atomic


def leftovers(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(temp_prefix(path)))


def test_a_write_creates_the_file_with_the_text_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "runs.json"
    write_text_atomic(target, '{"é": 1}')
    assert target.read_text(encoding="utf-8") == '{"é": 1}'
    assert leftovers(target) == []


def test_a_write_replaces_the_existing_file_and_keeps_its_permissions(tmp_path):
    target = tmp_path / "runs.json"
    target.write_text("old")
    target.chmod(0o600)
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_before_replace_runs_while_the_target_still_holds_the_old_text(tmp_path):
    target = tmp_path / "runs.json"
    target.write_text("old")
    seen = []
    write_text_atomic(target, "new", before_replace=lambda: seen.append((target.read_text(), leftovers(target))))
    assert seen[0][0] == "old"
    assert len(seen[0][1]) == 1 and seen[0][1][0].startswith(f".runs.json.tmp-{os.getpid()}-")
    assert target.read_text() == "new"


def test_a_before_replace_that_raises_leaves_the_target_untouched_and_no_temp_file(tmp_path):
    target = tmp_path / "runs.json"
    target.write_bytes(b"old bytes")
    before = target.stat()

    def refuse():
        raise RuntimeError("file changed under us")

    with pytest.raises(RuntimeError, match="changed under us"):
        write_text_atomic(target, "new", before_replace=refuse)
    assert target.read_bytes() == b"old bytes"
    assert target.stat().st_ino == before.st_ino
    assert leftovers(target) == []


def test_a_writer_killed_mid_write_leaves_the_old_file_and_a_temp_file_a_later_writer_removes(tmp_path):
    target = tmp_path / "runs.json"
    target.write_text("old")
    code = textwrap.dedent(
        f"""
        import sys, time
        from tandem_tui.source.file.atomic import write_text_atomic
        def stall():
            print("ready", flush=True)
            time.sleep(60)
        write_text_atomic({str(target)!r}, "half of the new", before_replace=stall)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    stale = leftovers(target)
    assert stale and stale[0].startswith(f".runs.json.tmp-{child.pid}-")
    assert target.read_text() == "old"

    mine = tmp_path / f".runs.json.tmp-{os.getpid()}-abc123"
    mine.write_text("a live writer's temp file")
    unrelated = tmp_path / ".other.json.tmp-1-abc"
    unrelated.write_text("not ours")

    removed = remove_stale_temp_files(target)
    assert [p.name for p in removed] == stale
    assert leftovers(target) == [mine.name]
    assert unrelated.exists()
