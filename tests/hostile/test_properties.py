"""Properties of the parser and the write path over generated files: only the project's
own error types escape, an accepted file round-trips, and an action changes no run but
its own."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem_tui.domain.actions import ActionKind, ActionRequest
from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.file.perform import perform
from tandem_tui.source.file.store import (
    RunsFileError,
    parse_runs_document,
    runs_of,
    serialize_runs_file,
)

NOW = 1_795_446_000_000
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Any JSON value (finite floats: JSON has no NaN or infinity).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)

STATUSES = ["queued", "running", "pausing", "paused", "awaiting_approval", "completed", "blocked", "failed", "cancelled"]


@st.composite
def records(draw, run_id: str) -> dict:
    """A run record that may be valid, carry unknown fields, or have any field broken."""
    record = {
        "run_id": run_id,
        "automation_id": draw(st.sampled_from(["auto-1", "auto-2"])),
        "trigger_type": "manual",
        "status": draw(st.sampled_from(STATUSES)),
        "created_at_ms": draw(st.integers(min_value=0, max_value=NOW)),
        "updated_at_ms": draw(st.integers(min_value=0, max_value=NOW)),
        "checkpoint": {},
    }
    for name in draw(st.lists(st.text(min_size=1, max_size=10), max_size=3)):
        record.setdefault(name, draw(json_values))
    if draw(st.booleans()):
        broken = draw(st.sampled_from(sorted(record)))
        record[broken] = draw(json_values)
    return record


@st.composite
def documents(draw) -> dict:
    ids = draw(st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=5, unique=True))
    return {"schema_version": 1, "runs": {run_id: draw(records(run_id)) for run_id in ids}}


def _finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_fail_with_a_runs_file_error(raw):
    try:
        runs_of(parse_runs_document(raw), now_ms=NOW)
    except RunsFileError:
        pass


@SETTINGS
@given(documents())
def test_a_generated_file_parses_or_fails_with_a_runs_file_error_and_an_accepted_one_round_trips(document):
    raw = json.dumps(document).encode()
    try:
        parsed = parse_runs_document(raw)
        runs_of(parsed, now_ms=NOW)
    except RunsFileError:
        return
    again = parse_runs_document(serialize_runs_file(parsed.entries).encode())
    assert again.entries == parsed.entries


@SETTINGS
@given(documents(), st.sampled_from(list(ActionKind)), st.data())
def test_an_action_raises_only_our_errors_and_changes_no_other_run(document, kind, data):
    run_id = data.draw(st.sampled_from(sorted(document["runs"])))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "automation_v2_runs.json"
        path.write_text(json.dumps(document, indent=2))
        try:
            result = perform(path, ActionRequest(kind=kind, run_id=run_id, actor="op"), clock=ManualClock(NOW))
        except RunsFileError:
            return
        after = json.loads(path.read_text())["runs"]
    assert set(after) == set(document["runs"])
    for key, record in document["runs"].items():
        if key != run_id or not result.ok:
            assert after[key] == record, key
