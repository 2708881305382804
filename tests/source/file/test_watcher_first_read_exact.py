"""A console's first read scans the whole file once for numbers orjson reads unlike serde
(``-0``, integers beyond 64 bits) and, if it finds none, parses entries without a scan
each: wherever such a number stands, the runs are those of the usual read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.file.watcher import RunsWatcher

BIG = 18446744073709551616  # 2**64: orjson reads it as a float, serde keeps it exact here


def watchers(path: Path, now_ms: int) -> tuple[RunsWatcher, RunsWatcher]:
    console = RunsWatcher(path, clock=ManualClock(now_ms), max_concurrent_runs=8, parse_in_helper=True)
    return console, RunsWatcher(path, clock=ManualClock(now_ms), max_concurrent_runs=8)


@pytest.mark.parametrize(
    "extra",
    [
        f'"big": {BIG}',
        '"negative_zero": -0',
        '"digits_in_a_string": "sha256:33901485583778381910963"',
        f'"nested": {{"list": [1, {BIG}, -0]}}',
    ],
    ids=["long-integer", "minus-zero", "digits-in-a-string", "nested"],
)
def test_a_console_first_read_keeps_unusual_numbers_as_the_usual_read(runs_file, fixture_now_ms, extra):
    document = json.loads(runs_file.read_text())
    last = sorted(document["runs"])[-1]
    document["runs"][last]["placeholder"] = "PLACEHOLDER"
    runs_file.write_text(json.dumps(document, indent=2).replace('"placeholder": "PLACEHOLDER"', extra))
    console, plain = watchers(runs_file, fixture_now_ms)
    try:
        streamed, usual = console.load(), plain.load()
        assert streamed.freshness.error is None and usual.freshness.error is None
        assert streamed.runs == usual.runs
        extras = streamed.runs[last].model_extra
        # repr, not ==: 2**64 == float(2**64) and -0.0 == 0 in Python.
        assert repr(extras) == repr(usual.runs[last].model_extra)
        if "big" in extras:
            assert extras["big"] == BIG and isinstance(extras["big"], int)
        if "negative_zero" in extras:
            assert isinstance(extras["negative_zero"], float)
    finally:
        console.close()
