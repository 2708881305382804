"""A huge field (a 16 MB ``detail``) is cut before it is escaped, measured or laid out:
``runs`` shows its start, cut with ``…`` to the line, and never walks the rest (the
time it takes is in bench/bench_long_detail.py; a test states what is shown)."""

from __future__ import annotations

import json

from tandem_tui.cli import main as cli
from tandem_tui.commands.output import cell_width, clip
from tandem_tui.commands.runs import table_row
from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import parse_run

CHUNK = "step ok, 状態 naïve\u200b · "


def test_clip_keeps_short_text_and_cuts_long_text_with_an_ellipsis():
    assert clip("short", 80) == "short"
    assert clip("x" * 81, 80) == "x" * 80 + "…"


def test_a_huge_detail_becomes_a_cell_no_longer_than_the_line(runs_file, fixture_now_ms):
    record = json.loads(runs_file.read_text())["runs"]["run-rn-0142"]
    record["detail"] = CHUNK * 1_000_000
    run = parse_run(record)
    detail = table_row(run, None, fixture_now_ms, 160)[-1]
    # 160 characters kept, escapes made visible (each at most 6 cells), then "…".
    assert detail.endswith("…")
    assert detail.startswith("step ok, 状態 naïve\\u200b · step ok")
    assert cell_width(detail) <= 160 * 6 + 1


def test_runs_shows_the_start_of_a_16_mb_detail_cut_to_the_terminal(runs_file, fixture_now_ms, capsys, monkeypatch):
    document = json.loads(runs_file.read_text())
    document["runs"]["run-rn-0142"]["detail"] = CHUNK * (16_000_000 // len(CHUNK.encode()))
    runs_file.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("COLUMNS", "160")

    assert cli(["runs", "--runs-file", str(runs_file)], clock=ManualClock(fixture_now_ms)) == 0

    lines = capsys.readouterr().out.splitlines()
    (line,) = [line for line in lines if line.startswith("run-rn-0142")]
    assert "step ok, 状態 naïve\\u200b" in line and line.endswith("…")
    assert max(cell_width(line) for line in lines) <= 160
