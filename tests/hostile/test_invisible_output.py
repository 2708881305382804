"""Every surface of the command line shows invisible, bidi and C1 characters from a run
escaped: ``--json`` (runs, history, status, status --watch, an action) carries them as
``\\uXXXX`` escapes that decode to the same text, and tables and refusals on stderr show
them as visible escapes. ``run-a`` and ``run-\\u200ba`` never look alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tandem_tui.cli import main as cli
from tandem_tui.domain.clock import ManualClock
from tandem_tui.safe_text import sanitize

#: A CSI introducer (C1), a right-to-left override and a zero-width space.
HOSTILE_ID = "run-\u009b31m-\u202eevil-\u200ba"
HOSTILE_REASON = "why \u009b2J \u202egnp.exe \u200bhere"
RAW = ("\u009b", "\u202e", "\u200b")
SHOWN = ("\\u009b", "\\u202e", "\\u200b")


@pytest.fixture
def hostile_file(runs_file: Path) -> Path:
    """The fixture with ``run-rn-0142`` (running, holding a workspace lock) renamed to
    :data:`HOSTILE_ID` and carrying :data:`HOSTILE_REASON` in its detail and first event."""
    document = json.loads(runs_file.read_text())
    run = document["runs"].pop("run-rn-0142")
    run["run_id"] = HOSTILE_ID
    run["detail"] = HOSTILE_REASON
    run["checkpoint"]["lifecycle_history"][0]["reason"] = HOSTILE_REASON
    document["runs"][HOSTILE_ID] = run
    runs_file.write_text(json.dumps(document), encoding="utf-8")
    return runs_file


def _run(capsys, now_ms, *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv), clock=ManualClock(now_ms))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_escaped(text: str) -> None:
    for raw in RAW:
        assert raw not in text
    assert any(shown in text for shown in SHOWN)


@pytest.mark.parametrize(
    "argv",
    [
        ("runs", "--json"),
        ("history", HOSTILE_ID, "--json"),
        ("status", "--json"),
    ],
)
def test_json_output_carries_invisible_characters_as_escapes_of_the_same_text(hostile_file, capsys, fixture_now_ms, argv):
    code, out, _ = _run(capsys, fixture_now_ms, *argv, "--runs-file", str(hostile_file))
    assert code == 0
    _assert_escaped(out)
    assert HOSTILE_ID in json.dumps(json.loads(out), ensure_ascii=False)


@pytest.mark.parametrize("argv", [("runs",), ("history", HOSTILE_ID), ("status",)])
def test_tables_show_invisible_characters_as_visible_escapes(hostile_file, capsys, fixture_now_ms, argv):
    code, out, _ = _run(capsys, fixture_now_ms, *argv, "--runs-file", str(hostile_file))
    assert code == 0
    _assert_escaped(out)
    assert sanitize(HOSTILE_ID) == "run-\\x9b31m-\\u202eevil-\\u200ba"
    assert sanitize(HOSTILE_ID) in out


def test_an_action_shows_the_id_escaped_in_its_json_and_in_its_refusal(hostile_file, capsys, fixture_now_ms):
    code, out, err = _run(
        capsys, fixture_now_ms, "resume", HOSTILE_ID, "--runs-file", str(hostile_file), "--actor", "op", "--json"
    )
    assert code == 1  # a running run cannot be resumed
    _assert_escaped(out)
    _assert_escaped(err)
    assert json.loads(out)["run_id"] == HOSTILE_ID


def test_status_watch_json_lines_carry_invisible_characters_as_escapes(hostile_file):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    watch = subprocess.Popen(
        [sys.executable, "-m", "tandem_tui", "status", "--watch", "--json", "--runs-file", str(hostile_file)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        line = watch.stdout.readline().decode("utf-8")
    finally:
        watch.kill()
        watch.wait(timeout=10)
    _assert_escaped(line)
    assert HOSTILE_ID in json.loads(line)["locked_workspaces"].values()
