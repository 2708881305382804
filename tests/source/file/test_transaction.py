"""Transactions on the runs file: locked, compare-and-swap, never writing what they cannot parse."""

import json
import os
import subprocess
import sys

import pytest

from tandem_tui.source.file.atomic import temp_prefix
from tandem_tui.source.file.store import RunsFileError, serialize_runs_file
from tandem_tui.source.file.transaction import (
    RunsFileBusy,
    lock_path,
    transact,
    transact_outcome,
    writer_lock,
)


def _record(run_id: str, **extra) -> dict:
    return {
        "run_id": run_id,
        "automation_id": "auto",
        "status": "queued",
        "created_at_ms": 1,
        "updated_at_ms": 1,
        **extra,
    }


@pytest.fixture
def runs_file(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    path.write_text(serialize_runs_file({"a": _record("a", mystery={"keep": [1, 2]}), "b": _record("b")}))
    return path


def _foreign_replace(path, text: str) -> None:
    """Replace the file the way a writer that ignores our lock does: own temp + rename."""
    temp = path.with_name("foreign.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def test_a_change_is_persisted_and_its_value_returned(runs_file):
    def change(doc):
        doc.entries["a"]["status"] = "paused"
        return "done"

    outcome = transact_outcome(runs_file, change)
    assert (outcome.value, outcome.written, outcome.attempts) == ("done", True, 1)
    runs = json.loads(runs_file.read_text())["runs"]
    assert runs["a"]["status"] == "paused"
    assert runs["a"]["mystery"] == {"keep": [1, 2]}
    assert runs["b"] == _record("b")


def test_a_change_that_changes_nothing_writes_nothing(runs_file):
    before = runs_file.stat()
    outcome = transact_outcome(runs_file, lambda doc: len(doc.entries))
    assert (outcome.value, outcome.written) == (2, False)
    after = runs_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_an_unchanged_legacy_file_is_not_rewritten_into_the_new_layout(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    legacy = json.dumps({"a": _record("a")})  # v0 bare map, compact layout
    path.write_text(legacy)
    assert transact_outcome(path, lambda doc: doc.schema_version).written is False
    assert path.read_text() == legacy


def test_a_change_to_a_legacy_file_writes_the_v1_envelope(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    path.write_text(json.dumps({"a": _record("a")}))
    transact(path, lambda doc: doc.entries["a"].update(status="paused"))
    written = json.loads(path.read_text())
    assert written["schema_version"] == 1
    assert written["runs"]["a"]["status"] == "paused"


def test_a_change_that_raises_writes_nothing(runs_file):
    before = runs_file.read_bytes()

    def change(doc):
        doc.entries["a"]["status"] = "paused"
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        transact(runs_file, change)
    assert runs_file.read_bytes() == before


@pytest.mark.parametrize(
    "content,expected",
    [
        ('{"schema_version": 1, "runs": {', "failed to parse"),
        ('{"schema_version": 2, "runs": {}}', "newer than supported"),
        ('{"schema_version": 1}', "missing runs"),
    ],
)
def test_a_file_that_cannot_be_parsed_is_never_written_and_change_never_runs(tmp_path, content, expected):
    path = tmp_path / "automation_v2_runs.json"
    path.write_text(content)
    calls = []
    with pytest.raises(RunsFileError, match=expected) as error:
        transact(path, calls.append)
    assert calls == []
    assert path.read_text() == content
    assert "\n" not in str(error.value)


def test_a_missing_runs_file_is_an_error_for_actions(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    with pytest.raises(RunsFileError, match="no runs file"):
        transact(path, lambda doc: None)
    assert not path.exists()


def test_a_runs_file_in_a_missing_directory_leaves_no_trace(tmp_path):
    path = tmp_path / "nowhere" / "automation_v2_runs.json"
    with pytest.raises(RunsFileError, match="no runs file"):
        transact(path, lambda doc: None)
    assert not (tmp_path / "nowhere").exists()


def test_create_starts_a_missing_file_from_an_empty_document(tmp_path):
    path = tmp_path / "state" / "data" / "automation_v2_runs.json"
    seen = []

    def change(doc):
        seen.append(dict(doc.entries))
        doc.entries["a"] = _record("a")

    assert transact_outcome(path, change, create=True).written is True
    assert seen == [{}]
    assert json.loads(path.read_text()) == {"schema_version": 1, "runs": {"a": _record("a")}}


def test_create_with_nothing_to_add_leaves_the_file_absent(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    assert transact_outcome(path, lambda doc: None, create=True).written is False
    assert not path.exists()


def test_a_foreign_write_between_read_and_rename_is_redone_from_the_fresh_file(runs_file):
    calls = []

    def change(doc):
        calls.append(doc.entries["b"].get("counter"))
        if len(calls) == 1:
            # The server rewrites the file while we are mid-change.
            _foreign_replace(runs_file, serialize_runs_file({**doc.entries, "b": _record("b", counter=1)}))
        doc.entries["a"]["status"] = "paused"

    outcome = transact_outcome(runs_file, change)
    assert outcome.attempts == 2
    assert calls == [None, 1]
    runs = json.loads(runs_file.read_text())["runs"]
    assert runs["b"]["counter"] == 1
    assert runs["a"]["status"] == "paused"


def test_a_foreign_writer_that_always_wins_exhausts_the_attempts_and_nothing_is_written(runs_file):
    count = 0

    def change(doc):
        nonlocal count
        count += 1
        _foreign_replace(runs_file, serialize_runs_file({**doc.entries, "b": _record("b", counter=count)}))
        doc.entries["a"]["status"] = "paused"

    with pytest.raises(RunsFileBusy, match="each of 5 attempts"):
        transact(runs_file, change, max_attempts=5)
    runs = json.loads(runs_file.read_text())["runs"]
    assert runs["b"]["counter"] == 5
    assert runs["a"]["status"] == "queued"


def test_a_file_created_by_someone_else_meanwhile_is_not_overwritten(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    calls = []

    def change(doc):
        calls.append(dict(doc.entries))
        if len(calls) == 1:
            _foreign_replace(path, serialize_runs_file({"b": _record("b")}))
        doc.entries["a"] = _record("a")

    transact(path, change, create=True)
    assert calls[1] == {"b": _record("b")}
    assert set(json.loads(path.read_text())["runs"]) == {"a", "b"}


def test_a_rewritten_file_keeps_its_permissions(runs_file):
    runs_file.chmod(0o600)
    transact(runs_file, lambda doc: doc.entries["a"].update(status="paused"))
    assert runs_file.stat().st_mode & 0o777 == 0o600


def test_a_file_deleted_after_the_read_is_a_conflict_not_a_resurrection(runs_file):
    calls = []

    def change(doc):
        calls.append(1)
        if len(calls) == 1:
            runs_file.unlink()
        doc.entries["a"] = _record("a", status="paused")

    with pytest.raises(RunsFileError, match="no runs file"):
        transact(runs_file, change)
    assert not runs_file.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_files_of_dead_writers_are_removed_by_the_next_transaction(runs_file):
    dead = runs_file.with_name(f"{temp_prefix(runs_file)}{_dead_pid()}-abc123")
    dead.write_text("half a fi")
    alive = runs_file.with_name(f"{temp_prefix(runs_file)}{os.getpid()}-def456")
    alive.write_text("mid-write")
    transact(runs_file, lambda doc: None)
    assert not dead.exists()
    assert alive.exists()


def test_writer_lock_is_reentrant_within_one_thread(runs_file):
    with writer_lock(runs_file):
        transact(runs_file, lambda doc: doc.entries["a"].update(status="paused"))
    assert json.loads(runs_file.read_text())["runs"]["a"]["status"] == "paused"


def test_a_lock_held_by_another_process_times_out_with_one_clear_line(runs_file):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from tandem_tui.source.file.transaction import writer_lock\n"
            "with writer_lock(sys.argv[1]):\n"
            "    print('held', flush=True); sys.stdin.read()",
            str(runs_file),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        before = runs_file.read_bytes()
        with pytest.raises(RunsFileBusy, match="held automation_v2_runs.json.lock"):
            transact(runs_file, lambda doc: doc.entries.clear(), lock_timeout_s=0.2)
        assert runs_file.read_bytes() == before
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    transact(runs_file, lambda doc: doc.entries.clear())
    assert json.loads(runs_file.read_text())["runs"] == {}


@pytest.fixture
def without_atomic_swap(monkeypatch):
    """The portable path: as on a kernel or file system without renameat2."""
    from tandem_tui.source.file import transaction

    monkeypatch.setattr(transaction, "_renameat2", None)


def test_without_an_atomic_swap_a_foreign_write_is_still_redone(runs_file, without_atomic_swap):
    test_a_foreign_write_between_read_and_rename_is_redone_from_the_fresh_file(runs_file)


def test_without_an_atomic_swap_a_file_created_meanwhile_is_still_kept(tmp_path, without_atomic_swap):
    test_a_file_created_by_someone_else_meanwhile_is_not_overwritten(tmp_path)


def test_without_an_atomic_swap_a_plain_change_is_written(runs_file, without_atomic_swap):
    test_a_change_is_persisted_and_its_value_returned(runs_file)


def test_a_change_that_puts_back_equal_values_writes_nothing(runs_file):
    from tandem_tui.domain.models import parse_run

    before = runs_file.read_bytes()
    stat_before = runs_file.stat()

    def put_back_as_a_run(document):
        # The same record, round-tripped through the model: equal as written.
        for key, record in list(document.entries.items()):
            document.entries[key] = parse_run(record)

    outcome = transact_outcome(runs_file, put_back_as_a_run)

    assert outcome.written is False
    assert runs_file.read_bytes() == before
    assert runs_file.stat().st_ino == stat_before.st_ino


# --- assigns_only: the change only assigns, adds or deletes entries -----------------

_LAYOUTS = {
    "v1 as the server writes it": lambda: serialize_runs_file({"a": _record("a", mystery={"keep": [1, 2]}), "b": _record("b")}),
    "v0 bare map, compact": lambda: json.dumps({"a": _record("a", mystery={"keep": [1, 2]}), "b": _record("b")}),
    "v1 with a foreign layout": lambda: json.dumps(
        {"schema_version": 1, "runs": {"a": _record("a", note="caf\u00e9"), "b": _record("b")}}, indent=4
    ),
}


def _assign_a_changed_record(document):
    document.entries["a"] = {**document.entries["a"], "status": "paused"}


def _assign_an_equal_record(document):
    document.entries["a"] = dict(document.entries["a"])


def _assign_the_same_record_as_a_run(document):
    from tandem_tui.domain.models import parse_run

    document.entries["b"] = parse_run(document.entries["b"])


def _only_read(document):
    return document.entries["a"]["status"], document.entries.get("missing")


def _add_a_record(document):
    document.entries["c"] = _record("c")


def _delete_a_record(document):
    del document.entries["a"]


def _move_a_record_to_the_end(document):
    document.entries["a"] = document.entries.pop("a")


def _pop_and_put_back_the_last_record(document):
    key, value = document.entries.popitem()
    document.entries[key] = value


def _update_with_an_equal_record(document):
    document.entries.update(b=dict(document.entries["b"]))


def _clear_all(document):
    document.entries.clear()


_ASSIGNING_CHANGES = [
    _assign_a_changed_record,
    _assign_an_equal_record,
    _assign_the_same_record_as_a_run,
    _only_read,
    _add_a_record,
    _delete_a_record,
    _move_a_record_to_the_end,
    _pop_and_put_back_the_last_record,
    _update_with_an_equal_record,
    _clear_all,
]


@pytest.mark.parametrize("layout", sorted(_LAYOUTS))
@pytest.mark.parametrize("change", _ASSIGNING_CHANGES, ids=lambda change: change.__name__.strip("_"))
def test_assigns_only_writes_exactly_what_comparing_the_whole_file_writes(tmp_path, layout, change):
    results = {}
    for assigns_only in (False, True):
        path = tmp_path / str(assigns_only) / "automation_v2_runs.json"
        path.parent.mkdir()
        path.write_text(_LAYOUTS[layout]())
        outcome = transact_outcome(path, change, assigns_only=assigns_only)
        results[assigns_only] = (outcome.written, path.read_bytes())
    assert results[True] == results[False]


def test_assigns_only_remembers_an_entry_as_it_was_read_not_as_it_was_left(runs_file):
    # The value handed out by [] is the entry itself: changing it and assigning it back
    # still counts as a change.
    def change_through_the_read_value(document):
        record = document.entries["a"]
        record["status"] = "paused"
        document.entries["a"] = record

    assert transact_outcome(runs_file, change_through_the_read_value, assigns_only=True).written is True
    assert json.loads(runs_file.read_text())["runs"]["a"]["status"] == "paused"


def test_assigns_only_with_nothing_changed_leaves_the_file_untouched(runs_file):
    before = runs_file.stat()
    outcome = transact_outcome(runs_file, _assign_an_equal_record, assigns_only=True)
    after = runs_file.stat()
    assert outcome.written is False
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_assigns_only_on_create_with_nothing_added_leaves_the_file_absent(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    assert transact_outcome(path, _only_read_missing, create=True, assigns_only=True).written is False
    assert not path.exists()


def _only_read_missing(document):
    return document.entries.get("a")


# --- assigns_only reads a file in our layout with orjson alone, and proves it exact --


def _canonical(**records) -> str:
    return serialize_runs_file({key: _record(key, **extra) for key, extra in records.items()})


def _with(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1
    return text.replace(old, new)


_PROVED_LAYOUTS = {
    "ours": lambda: _canonical(a={"mystery": 7}, b={"other": 8}),
    "-0 in the entry acted on": lambda: _with(_canonical(a={"mystery": 7}, b={}), '"mystery": 7', '"mystery": -0'),
    "-0 in another entry": lambda: _with(_canonical(a={}, b={"other": 8}), '"other": 8', '"other": -0'),
    "long integer in the entry acted on": lambda: _with(
        _canonical(a={"mystery": 7}, b={}), '"mystery": 7', '"mystery": 18446744073709551616'
    ),
    "long integer in another entry": lambda: _with(
        _canonical(a={}, b={"other": 8}), '"other": 8', '"other": -123456789012345678901'
    ),
    "an escaped character in another entry": lambda: _with(
        _canonical(a={}, b={"other": "caf"}), '"other": "caf"', '"other": "caf\\u00e9"'
    ),
    "a float not written shortest in another entry": lambda: _with(
        _canonical(a={}, b={"other": 8}), '"other": 8', '"other": 0.10000000000000001'
    ),
    "our head, a compact entry": lambda: _with(
        _canonical(a={}, b={}), json.dumps(_record("a"), indent=2).replace("\n", "\n    "), json.dumps(_record("a"))
    ),
    "our head, a compact entry after": lambda: _with(
        _canonical(a={}, b={}), json.dumps(_record("b"), indent=2).replace("\n", "\n    "), json.dumps(_record("b"))
    ),
    "two entries with one key": lambda: _with(
        _canonical(a={"mystery": 1}, b={}), '  "runs": {\n', '  "runs": {\n    "a": {"run_id": "a", "mystery": 0},\n'
    ),
    "not an object": lambda: _with(_canonical(a={}, b={}), json.dumps(_record("b"), indent=2).replace("\n", "\n    "), "-0"),
}


def _return_the_record(document):
    return document.entries["a"]


def _pause_a(document):
    record = dict(document.entries["a"])
    document.entries["a"] = {**record, "status": "paused", "updated_at_ms": 2}
    return record


def _pause_b_reading_all(document):
    statuses = [record.get("status") for record in document.entries.values() if isinstance(record, dict)]
    if isinstance(document.entries["b"], dict):
        document.entries["b"] = {**document.entries["b"], "status": "paused"}
    return statuses


@pytest.mark.parametrize("layout", sorted(_PROVED_LAYOUTS))
@pytest.mark.parametrize(
    "change",
    [_return_the_record, _pause_a, _pause_b_reading_all, _only_read, _assign_an_equal_record, _add_a_record],
    ids=lambda change: change.__name__.strip("_"),
)
def test_assigns_only_on_our_layout_gives_what_the_exact_parse_gives(tmp_path, layout, change):
    results = {}
    for assigns_only in (False, True):
        path = tmp_path / str(assigns_only) / "automation_v2_runs.json"
        path.parent.mkdir()
        path.write_text(_PROVED_LAYOUTS[layout]())
        outcome = transact_outcome(path, change, assigns_only=assigns_only)
        # repr: -0.0 == 0 and 2**64 == 2.0**64 in Python, not in the file.
        results[assigns_only] = (repr(outcome.value), outcome.written, path.read_bytes())
    assert results[True] == results[False]


@pytest.fixture
def no_scan(monkeypatch):
    from tandem_tui.source.file import transaction

    def refuse(data):
        raise AssertionError("scanned the file for -0 and long integers")

    monkeypatch.setattr(transaction, "orjson_reads_exactly", refuse)


@pytest.mark.parametrize("change", [_pause_a, _only_read, _return_the_record], ids=lambda change: change.__name__.strip("_"))
def test_assigns_only_on_our_layout_needs_no_scan_of_the_file(tmp_path, no_scan, change):
    path = tmp_path / "automation_v2_runs.json"
    path.write_text(_PROVED_LAYOUTS["ours"]())
    expected_written = change is _pause_a
    assert transact_outcome(path, change, assigns_only=True).written is expected_written
