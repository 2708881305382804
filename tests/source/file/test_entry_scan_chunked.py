"""The entry scan over a file read in bounded chunks: the same spans as over the whole bytes."""

from __future__ import annotations

import io
import json
import os

import orjson
import pytest

from tandem_tui.source.file.entry_scan import ChunkedScan, scan_entries

#: Small enough that chunk edges fall everywhere in a small file; larger than its header.
LOOKAHEAD = 64


def pretty(value: object) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2)


def versioned(**runs: object) -> bytes:
    return pretty({"schema_version": 1, "runs": runs})


#: Strings whose braces, quotes, backslashes and lookalike key lines fall across chunk edges.
EDGY = {
    "braces": "}}}{{{ } {\n    \"fake\": {" * 3,
    "quotes": '"""\\"\\\\"' * 5,
    "backslashes": "\\" * 17 + '"' + "\\" * 4,
    "key_line": '\n    "r1": {"not": "a key"},\n    "r2": ',
    "nested": {"a": [1, {"b": {"c": "}"}}], "d": [], "e": {"f": "\\u0000 é 🙂"}},
}


def whole(raw: bytes, lengths: dict[str, int] | None = None) -> tuple | None:
    scanned = scan_entries(raw, lengths)
    if scanned is None:
        return None
    return scanned.schema_version, [(key, raw[start:end]) for key, start, end in scanned.spans]


def chunked(raw: bytes, lengths: dict[str, int] | None = None, chunk_size: int = 7, *, pread: bool = False):
    if pread:
        scan = ChunkedScan(None, lengths, chunk_size, pread=lambda size, at: raw[at : at + size], lookahead=LOOKAHEAD)
    else:
        scan = ChunkedScan(io.BytesIO(raw).read, lengths, chunk_size, lookahead=LOOKAHEAD)
    members = [(key, bytes(window[start:end])) for key, window, start, end in scan.entries()]
    return (scan.schema_version, members) if scan.complete else None


def runs_of(count: int) -> dict[str, dict]:
    return {f"r{i}": {"run_id": f"r{i}", "n": i, **EDGY} for i in range(count)}


def lengths_of(raw: bytes) -> dict[str, int]:
    scanned = scan_entries(raw)
    assert scanned is not None
    return {key: end - start for key, start, end in scanned.spans}


@pytest.mark.parametrize("pread", [False, True], ids=["read", "pread"])
def test_every_chunk_size_finds_the_spans_the_whole_scan_finds(pread):
    raw = versioned(**runs_of(3))
    expected = whole(raw)
    assert expected is not None and [key for key, _ in expected[1]] == ["r0", "r1", "r2"]
    for chunk_size in range(1, len(raw) + 2):
        assert chunked(raw, None, chunk_size, pread=pread) == expected, chunk_size


@pytest.mark.parametrize("pread", [False, True], ids=["read", "pread"])
def test_hints_change_nothing_wherever_the_chunks_are_cut(pread):
    runs = runs_of(4)
    hints = lengths_of(versioned(**runs))
    edits = [
        runs,
        {**runs, "r1": {**runs["r1"], "n": "longer now"}},
        {**runs, "r3": {"run_id": "r3"}},  # the last one shorter
        {key: value for key, value in runs.items() if key != "r3"},
        {"new": {"run_id": "new"}, **runs},
        {**runs, "r1": {**runs["r1"], "n": 10}, "r2": {**runs["r2"], "n": 20}},  # same lengths
    ]
    for edited in edits:
        raw = versioned(**edited)
        for chunk_size in (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987):
            assert chunked(raw, hints, chunk_size, pread=pread) == whole(raw), chunk_size


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"schema_version": 1, "runs": runs_of(2)}, indent=4).encode() + b"\n\n",
        json.dumps({"schema_version": 1, "runs": runs_of(2)}, indent=2).replace("\n", "\r\n").encode(),
        pretty(runs_of(2)),  # a v0 bare map
        b'{\n  "schema_version": 1,\n  "runs": {}\n}',
        b'{\n  "schema_version": 1,\n  "runs": {\n    "a": {"v": 1},\n    "b": {},\n    "a": {"v": 2}\n  }\n}',
    ],
    ids=["indent-4", "crlf", "bare-map", "no-entries", "duplicates"],
)
def test_the_layouts_the_whole_scan_reads_read_alike_in_chunks(raw):
    expected = whole(raw)
    assert expected is not None
    for chunk_size in (1, 4, 16, 64, 256):
        assert chunked(raw, None, chunk_size) == expected


@pytest.mark.parametrize(
    "mutate",
    [
        lambda raw: raw[: len(raw) // 2],
        lambda raw: raw[: raw.rindex(b"}")],
        lambda raw: raw[: raw.index(b'    "r2"')],
        lambda raw: raw[:-1] + b"}}",
        lambda raw: raw.replace(b'},\n    "r1"', b'}\n    "r1"'),
        lambda raw: raw.replace(b'"r1": {', b'"r1" {'),
        lambda raw: raw.replace(b"  }\n}", b'  },\n  "extra": {}\n}'),
        lambda raw: b"",
        lambda raw: raw.replace(b'"r1": {', b'"r1": NaN, "r1b": {'),
        lambda raw: raw.replace(b'"schema_version": 1', b'"schema_version": 01'),
    ],
    ids=["half", "last-brace", "at-entry", "extra-brace", "missing-comma", "missing-colon", "member-after-runs",
         "empty", "nan", "leading-zero-version"],
)
def test_a_damaged_file_scans_in_chunks_exactly_as_whole(mutate):
    raw = mutate(versioned(**runs_of(3)))
    for chunk_size in (1, 7, 64, 1024):
        assert chunked(raw, None, chunk_size) == whole(raw), chunk_size


def test_what_the_whole_scan_does_not_read_the_chunked_scan_does_not_complete():
    raw = versioned(**runs_of(3))
    for cut in (raw[: len(raw) // 2], raw[: raw.index(b'    "r2"')], b"", b"{", b"[]"):
        assert whole(cut) is None
        for chunk_size in (1, 7, 64, 1024):
            assert chunked(cut, None, chunk_size) is None


def test_a_header_longer_than_the_lookahead_is_left_to_the_full_parse():
    raw = versioned(**runs_of(2)).replace(b'{\n  "schema_version": 1,', b"{\n\n" + b" " * 200 + b'"schema_version": 1,')
    assert whole(raw) is not None
    assert chunked(raw, None, 16) is None


def test_an_entry_far_longer_than_a_chunk_is_one_span_and_the_window_stays_near_one_entry():
    runs = {f"r{i}": {"run_id": f"r{i}", "blob": "x" * (3000 if i != 5 else 200_000)} for i in range(300)}
    raw = versioned(**runs)
    scan = ChunkedScan(io.BytesIO(raw).read, None, 1024, lookahead=LOOKAHEAD)
    widest = 0
    members = []
    for key, window, start, end in scan.entries():
        widest = max(widest, len(window))
        members.append((key, bytes(window[start:end])))
    assert scan.complete and (scan.schema_version, members) == whole(raw)
    # One chunk and the longest entry (twice, while the window doubles), never the file.
    assert widest <= 2 * (200_100 + 1024 + LOOKAHEAD) < len(raw)
    short = ChunkedScan(io.BytesIO(versioned(r0=runs["r0"], r1=runs["r1"])).read, None, 1024, lookahead=LOOKAHEAD)
    assert max(len(window) for _, window, _, _ in short.entries()) <= 2 * (3100 + 1024 + LOOKAHEAD)


def test_a_file_cut_short_while_it_is_read_scans_as_the_bytes_it_then_holds(tmp_path):
    path = tmp_path / "runs.json"
    raw = versioned(**runs_of(30))
    path.write_bytes(raw)
    with open(path, "rb") as handle:
        reads = 0

        def pread(size: int, offset: int) -> bytes:
            nonlocal reads
            reads += 1
            if reads == 2:
                os.truncate(path, len(raw) // 2)  # rewritten in place, shorter, mid-read
            return os.pread(handle.fileno(), size, offset)

        scan = ChunkedScan(None, None, 1024, pread=pread, lookahead=LOOKAHEAD)
        members = [(key, bytes(window[start:end])) for key, window, start, end in scan.entries()]
    assert reads > 2
    # As the whole scan of what the file held: here its cut lands after two '}', so the
    # scan completes, and its last span is no JSON value (the differ parses the file).
    assert ((scan.schema_version, members) if scan.complete else None) == whole(raw[: len(raw) // 2])
    if scan.complete:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(members[-1][1])


def test_a_file_that_grows_while_it_is_read_is_read_to_its_new_end(tmp_path):
    path = tmp_path / "runs.json"
    before = versioned(**runs_of(30))
    after = versioned(**runs_of(40))  # the same first 30 entries' bytes, then 10 more
    path.write_bytes(before)
    with open(path, "rb") as handle:
        reads = 0

        def pread(size: int, offset: int) -> bytes:
            nonlocal reads
            reads += 1
            if reads == 2:
                with open(path, "r+b") as writer:  # in place, longer
                    writer.write(after)
            return os.pread(handle.fileno(), size, offset)

        scan = ChunkedScan(None, None, 1024, pread=pread, lookahead=LOOKAHEAD)
        members = [(key, bytes(window[start:end])) for key, window, start, end in scan.entries()]
    assert scan.complete and (scan.schema_version, members) == whole(after)
