"""Diffing a runs file read in chunks: the helper never holds the whole file, and every
verdict is still the full parse's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson
import pytest

from tandem_tui.source.file.raw_diff import HelperDiffer, LocalDiffer
from tandem_tui.source.file.store import RunsFileError, parse_runs_document
from tests.processes import wait_for

EDGY = {
    "braces": "}}}{{{ } {\n    \"fake\": {" * 3,
    "quotes": '"""\\"\\\\"' * 5,
    "backslashes": "\\" * 17 + '"' + "\\" * 4,
}


def run(run_id: str, detail: str = "") -> dict:
    return {"run_id": run_id, "status": "queued", "detail": detail, **EDGY}


def pretty(runs: dict) -> bytes:
    return orjson.dumps({"schema_version": 1, "runs": runs}, option=orjson.OPT_INDENT_2)


def many(count: int = 40) -> dict:
    return {f"r{i}": run(f"r{i}") for i in range(count)}


def small_chunks() -> LocalDiffer:
    differ = LocalDiffer()
    differ.chunk_size = 257  # edges land inside keys, strings and escapes
    return differ


def test_a_file_diffed_in_chunks_reports_what_a_diff_of_its_bytes_reports(tmp_path):
    path = tmp_path / "runs.json"
    runs = many()
    chunked, whole = small_chunks(), LocalDiffer()
    for edit in (
        lambda runs: runs,
        lambda runs: {**runs, "r7": run("r7", "moved"), "new": run("new")},
        lambda runs: {key: value for key, value in runs.items() if key != "r0"},
        lambda runs: {**runs, "r39": run("r39", "the last one, longer")},
    ):
        runs = edit(runs)
        path.write_bytes(pretty(runs))
        mtime_ns, raw_diff = chunked.raw_diff_file(path)
        diff = whole.diff(path.read_bytes())
        assert mtime_ns == os.stat(path).st_mtime_ns
        assert raw_diff.keys == diff.keys == list(runs)
        assert raw_diff.entry_diff().changed == diff.changed
        assert not raw_diff.parsed and all(isinstance(data, bytes) for data in raw_diff.changed.values())
        chunked.commit()
        whole.commit()
    assert chunked.full_parses == whole.full_parses == 0


def test_changed_entries_come_back_as_bytes_and_parse_as_the_store_parses_them(tmp_path):
    path = tmp_path / "runs.json"
    text = pretty({"a": run("a")}).decode().replace('"detail": ""', '"detail": -0, "big": 18446744073709551616')
    path.write_text(text)
    _, raw_diff = small_chunks().raw_diff_file(path)
    assert raw_diff.entry_diff().changed == parse_runs_document(text.encode()).entries
    value = raw_diff.entry_diff().changed["a"]
    assert value["big"] == 2**64 and str(value["detail"]) == "-0.0"


class _RewritingDiffer(LocalDiffer):
    """Rewrites the file in place after its first chunk was read (a writer that does not
    rename): what the chunked read then sees is a torn read, as a plain read's would be."""

    def __init__(self, path: Path, rewrite) -> None:
        super().__init__()
        self.chunk_size = 1024
        self._path = path
        self._rewrite = rewrite

    def _pread_of(self, fd: int):
        reads = 0

        def pread(size: int, offset: int) -> bytes:
            nonlocal reads
            reads += 1
            if reads == 2:
                self._rewrite(self._path)
            return os.pread(fd, size, offset)

        return pread


def test_a_file_truncated_while_it_is_read_gets_the_full_parse_s_verdict_on_what_it_then_holds(tmp_path):
    path = tmp_path / "runs.json"
    raw = pretty(many())
    path.write_bytes(raw)
    for cut in (len(raw) // 2, raw.index(b'    "r20"'), len(raw) - 1, 3000):
        path.write_bytes(raw)
        differ = _RewritingDiffer(path, lambda path, cut=cut: os.truncate(path, cut))
        with pytest.raises(RunsFileError) as error:
            parse_runs_document(raw[:cut])
        with pytest.raises(RunsFileError) as diffed:
            differ.raw_diff_file(path)
        assert str(diffed.value) == str(error.value)


def test_a_file_that_grows_while_it_is_read_is_diffed_as_the_bytes_it_then_holds(tmp_path):
    path = tmp_path / "runs.json"
    before, after = many(40), many(60)  # the same first 40 entries' bytes
    path.write_bytes(pretty(before))
    differ = _RewritingDiffer(path, lambda path: path.write_bytes(pretty(after)))
    _, diff = differ.raw_diff_file(path)
    assert diff.keys == list(after) and diff.entry_diff().changed == after


def test_duplicate_keys_in_a_chunked_read_are_the_json_reading(tmp_path):
    path = tmp_path / "runs.json"
    raw = b'{\n  "schema_version": 1,\n  "runs": {\n    "a": {"v": 1},\n    "b": {},\n    "a": {"v": 2}\n  }\n}'
    path.write_bytes(raw)
    differ = small_chunks()
    _, diff = differ.raw_diff_file(path)
    assert diff.keys == ["a", "b"] and diff.entry_diff().changed == {"a": {"v": 2}, "b": {}}
    differ.commit()
    path.write_bytes(raw.replace(b'"a": {"v": 1}', b'"a": {"v": 3}'))
    _, again = differ.raw_diff_file(path)
    assert again.changed == {}  # the winning value is the same bytes as before
    path.write_bytes(raw.replace(b'"a": {"v": 1}', b'"a": {"v": tru}'))
    with pytest.raises(RunsFileError):
        differ.raw_diff_file(path)


@pytest.fixture
def helper():
    made = HelperDiffer()
    yield made
    made.close()


def test_a_helper_primed_through_the_pipe_in_chunks_reports_only_what_changed_next(helper):
    runs = {f"r{i}": run(f"r{i}", "x" * 2000) for i in range(300)}  # > 1 MB: many chunks
    helper.prime(pretty(runs))
    runs["r150"] = run("r150", "moved")
    diff = helper.diff(pretty(runs))
    assert helper.in_helper
    assert diff.keys == list(runs) and diff.changed == {"r150": runs["r150"]}


@pytest.mark.parametrize("count", [5, 400], ids=["small", "many-chunks"])
def test_a_helper_primed_with_a_layout_it_does_not_scan_reports_everything_once_as_the_full_parse(helper, count):
    runs = {f"r{i}": run(f"r{i}", "x" * 2000) for i in range(count)}
    compact = json.dumps({"schema_version": 1, "runs": runs}).encode()
    helper.prime(compact)
    first = helper.diff(compact)
    assert first.changed == runs  # an empty baseline: every entry, as the full parse reads it
    helper.commit()
    assert helper.diff(compact).changed == {}


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc")
def test_the_helper_loads_no_models_until_a_file_needs_the_full_parse(helper, tmp_path):
    path = tmp_path / "runs.json"
    path.write_bytes(pretty(many()))
    helper.prime(path.read_bytes())
    path.write_bytes(pretty({**many(), "r3": run("r3", "moved")}))
    _, diff = helper.diff_file(path)
    assert diff.changed == {"r3": run("r3", "moved")}
    assert "pydantic_core" not in _maps(helper.pid)
    path.write_bytes(json.dumps({"schema_version": 1, "runs": many()}).encode())  # compact: not scanned
    _, diff = helper.diff_file(path)
    assert diff.keys == list(many())
    assert "pydantic_core" in _maps(helper.pid)


def test_a_helper_killed_while_it_is_primed_falls_back_and_misses_nothing():
    runs = {f"r{i}": run(f"r{i}", "x" * 2000) for i in range(300)}
    differ = HelperDiffer()
    try:
        differ.commit()  # the helper is up
        os.kill(differ.pid, 9)
        differ.prime(pretty(runs))  # returns at once; its write then fails
        diff = differ.diff(pretty(runs))
        assert not differ.in_helper
        assert diff.changed == runs  # an empty baseline: everything, once
    finally:
        differ.close()


def test_closing_a_helper_still_taking_a_prime_stops_it_at_once():
    runs = {f"r{i}": run(f"r{i}", "x" * 2000) for i in range(3000)}  # ~10 MB
    differ = HelperDiffer()
    differ.prime(pretty(runs))
    differ.close()
    assert differ._process.poll() is not None
    assert differ._priming is None


# --- a console's first read, made by the helper ------------------------------------

FIXTURE_RUNS = json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "runs_v1.json").read_text())["runs"]


def test_a_first_read_nobody_takes_does_not_stand_in_for_the_next_reply(tmp_path):
    runs_file = tmp_path / "automation_v2_runs.json"
    runs_file.write_bytes(pretty(FIXTURE_RUNS))
    helper = HelperDiffer(read_first=runs_file)  # its batches and end are never read
    try:
        changed = {**FIXTURE_RUNS, "run-rn-0142": {**FIXTURE_RUNS["run-rn-0142"], "detail": "moved"}}
        diff = helper.diff(pretty(changed))
        assert helper.in_helper
        # Against the baseline the first read made: the one changed entry.
        assert diff.changed == {"run-rn-0142": changed["run-rn-0142"]}
        assert helper.first_read_path is None  # none owed any more
    finally:
        helper.close()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc")
def test_a_warm_helper_loads_the_models_before_any_prime():
    helper, cold = HelperDiffer(warm=True), HelperDiffer()
    try:
        assert wait_for(lambda: "pydantic_core" in _maps(helper.pid), seconds=10)
        helper.diff(pretty(many()))  # a reply: the cold one has started and read its imports too
        cold.diff(pretty(many()))
        assert "pydantic_core" not in _maps(cold.pid)
    finally:
        helper.close()
        cold.close()
