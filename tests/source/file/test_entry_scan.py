"""Finding each entry's byte span without parsing, and diffing by those spans."""

from __future__ import annotations

import json

import orjson
import pytest

from tandem_tui.source.file.entry_scan import scan_entries
from tandem_tui.source.file.raw_diff import LocalDiffer
from tandem_tui.source.file.store import RunsFileError, parse_runs_document


def pretty(value: object) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2)


def versioned(**runs: object) -> bytes:
    return pretty({"schema_version": 1, "runs": runs})


def spans_as_values(raw: bytes) -> list[tuple[str, object]]:
    scanned = scan_entries(raw)
    assert scanned is not None
    return [(key, json.loads(raw[start:end])) for key, start, end in scanned.spans]


TRICKY = {
    "braces": "} {\n    \"fake\": {",
    "quotes": 'say "hi" \\ and \\"',
    "escapes": "tab\t nl\n cr\r \u0000 \u2028 é 🙂",
    "nested": {"a": [1, {"b": {"c": "}"}}], "d": []},
    "number": 1.5e300,
}


def test_a_pretty_versioned_file_gives_every_entry_s_key_and_exact_value_span():
    runs = {"r1": {"run_id": "r1", **TRICKY}, "r2": {"run_id": "r2"}, "r 3\"\\": {"x": None}}
    raw = versioned(**runs)
    scanned = scan_entries(raw)
    assert scanned is not None and scanned.schema_version == 1
    assert spans_as_values(raw) == list(runs.items())


@pytest.mark.parametrize(
    "layout",
    [
        lambda doc: json.dumps(doc, indent=2).encode(),  # serde_json's pretty printer: no trailing newline
        lambda doc: json.dumps(doc, indent=4).encode() + b"\n\n",
        lambda doc: json.dumps(doc, indent=2).replace("\n", "\r\n").encode(),
        lambda doc: json.dumps(doc, indent=2, ensure_ascii=False).encode(),
    ],
    ids=["serde-style", "indent-4-trailing-blank-lines", "crlf", "utf-8-unescaped"],
)
def test_whitespace_variations_of_the_pretty_layout_scan_alike(layout):
    runs = {"a": {"run_id": "a", **TRICKY}, "é": {"run_id": "é"}}
    assert spans_as_values(layout({"schema_version": 1, "runs": runs})) == list(runs.items())


def test_a_v0_bare_map_scans_without_a_schema_version():
    runs = {"a": {"run_id": "a"}, "b": {"run_id": "b", "nested": {"c": 1}}}
    raw = pretty(runs)
    scanned = scan_entries(raw)
    assert scanned is not None and scanned.schema_version is None
    assert spans_as_values(raw) == list(runs.items())


def test_a_bare_map_with_a_schema_version_key_anywhere_is_left_to_the_full_parse():
    assert scan_entries(pretty({"runs": {"a": {}}, "schema_version": 1})) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   \n",
        b"{}",
        b'{"schema_version": 1, "runs": {"a": {"run_id": "a"}}}',  # compact: no line per entry
        b'{\n\t"schema_version": 1,\n\t"runs": {\n\t\t"a": {}\n\t}\n}',  # tabs
        b"[1, 2]",
        b'\xef\xbb\xbf{\n  "a": {}\n}',  # a byte-order mark
    ],
    ids=["empty", "blank", "empty-object", "compact", "tabs", "array", "bom"],
)
def test_layouts_it_does_not_read_give_none(raw):
    spans = scan_entries(raw)
    assert spans is None or spans.spans == []


def test_duplicate_keys_are_all_reported_in_file_order():
    raw = b'{\n  "schema_version": 1,\n  "runs": {\n    "a": {"v": 1},\n    "b": {},\n    "a": {"v": 2}\n  }\n}'
    assert spans_as_values(raw) == [("a", {"v": 1}), ("b", {}), ("a", {"v": 2})]


# --- the differ on top of the scanner: always the full parse's verdict -------------


def full_parse(raw: bytes) -> dict:
    return parse_runs_document(raw).entries


def test_the_differ_reads_duplicates_as_json_does_last_value_at_the_first_position():
    raw = b'{\n  "schema_version": 1,\n  "runs": {\n    "a": {"v": 1},\n    "b": {},\n    "a": {"v": 2}\n  }\n}'
    differ = LocalDiffer()
    diff = differ.diff(raw)
    assert differ.full_parses == 0
    assert diff.keys == list(full_parse(raw)) == ["a", "b"]
    assert diff.changed == full_parse(raw) == {"a": {"v": 2}, "b": {}}


def test_a_duplicate_whose_earlier_value_is_not_json_is_the_full_parse_s_error():
    raw = b'{\n  "schema_version": 1,\n  "runs": {\n    "a": {"v": tru},\n    "a": {"v": 2}\n  }\n}'
    with pytest.raises(RunsFileError) as full:
        full_parse(raw)
    with pytest.raises(RunsFileError) as diffed:
        LocalDiffer().diff(raw)
    assert str(diffed.value) == str(full.value)


def test_after_a_commit_only_the_changed_span_is_parsed_and_reported():
    runs = {f"r{i}": {"run_id": f"r{i}", "n": i, **TRICKY} for i in range(50)}
    differ = LocalDiffer()
    assert set(differ.diff(versioned(**runs)).changed) == set(runs)
    differ.commit()
    runs["r7"] = {**runs["r7"], "n": "moved"}
    runs["new"] = {"run_id": "new"}
    del runs["r3"]
    diff = differ.diff(versioned(**runs))
    assert differ.full_parses == 0
    assert diff.keys == list(runs)
    assert diff.changed == {"r7": runs["r7"], "new": runs["new"]}


def test_a_layout_change_is_parsed_in_full_once_and_reports_every_entry():
    runs = {"a": {"run_id": "a"}, "b": {"run_id": "b"}}
    differ = LocalDiffer()
    differ.diff(json.dumps({"schema_version": 1, "runs": runs}).encode())
    differ.commit()
    assert differ.full_parses == 1
    diff = differ.diff(versioned(**runs))
    assert set(diff.changed) == {"a", "b"}


def test_a_line_inside_a_value_that_looks_like_an_entry_key_falls_back_to_the_full_parse():
    raw = (
        b'{\n  "schema_version": 1,\n  "runs": {\n    "a": {"x": 1,\n    "y": {"z": 2}},\n'
        b'    "b": {}\n  }\n}'
    )
    differ = LocalDiffer()
    diff = differ.diff(raw)
    assert differ.full_parses == 1
    assert diff.changed == full_parse(raw) == {"a": {"x": 1, "y": {"z": 2}}, "b": {}}


def good_then(mutate) -> tuple[LocalDiffer, bytes]:
    runs = {f"r{i}": {"run_id": f"r{i}", **TRICKY} for i in range(5)}
    raw = versioned(**runs)
    differ = LocalDiffer()
    differ.diff(raw)
    differ.commit()
    return differ, mutate(raw)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda raw: raw[: len(raw) // 2],  # a truncated write
        lambda raw: raw[: raw.rindex(b"}")],  # truncated at the last brace
        lambda raw: raw[: raw.index(b'    "r3"')],  # truncated at an entry boundary
        lambda raw: raw.replace(b'},\n    "r2"', b'}\n    "r2"'),  # a missing comma between unchanged entries
        lambda raw: raw.replace(b'},\n    "r2"', b'},,\n    "r2"'),
        lambda raw: raw.replace(b'"r2": {', b'"r2" {'),  # a missing colon
        lambda raw: raw.replace(b'"r2": {', b'"r2\x01": {'),  # a raw control character in a key
        lambda raw: raw.replace(b'"r2": {', b'"r2": NaN, "r2b": {'),
        lambda raw: raw.replace(b'"schema_version": 1', b'"schema_version": 2'),
        lambda raw: raw.replace(b'"schema_version": 1', b'"schema_version": 01'),
        lambda raw: raw.replace(b"  }\n}", b'  },\n  "extra": {}\n}'),  # a member after runs
        lambda raw: raw.replace(b"  }\n}", b'  },\n  "runs": {}\n}'),  # a second runs object
        lambda raw: raw + b"}",
        lambda raw: raw.replace(b'"run_id": "r4"', b'"run_id": "r4\xff"'),  # not UTF-8
        lambda raw: raw.replace(b'"run_id": "r4"', b'"run_id": "r4\n"'),  # a raw newline in a string
    ],
    ids=[
        "truncated-half", "truncated-last-brace", "truncated-at-entry", "missing-comma", "double-comma",
        "missing-colon", "control-char-key", "nan", "newer-schema", "leading-zero-version",
        "member-after-runs", "second-runs", "trailing-brace", "not-utf8", "raw-newline",
    ],
)
def test_an_invalid_file_gets_the_full_parse_s_error_word_for_word(mutate):
    differ, raw = good_then(mutate)
    try:
        expected = full_parse(raw)
    except RunsFileError as error:
        with pytest.raises(RunsFileError) as diffed:
            differ.diff(raw)
        assert str(diffed.value) == str(error)
    else:  # still valid JSON with another meaning: the same entries as the full parse
        diff = differ.diff(raw)
        assert diff.keys == list(expected)


# --- hints: the previous read's value lengths change the speed, never the answer ----


def lengths_of(raw: bytes) -> dict[str, int]:
    scanned = scan_entries(raw)
    assert scanned is not None
    return {key: end - start for key, start, end in scanned.spans}


@pytest.mark.parametrize(
    "edit",
    [
        lambda runs: runs,
        lambda runs: {**runs, "r2": {**runs["r2"], "n": "longer now"}},
        lambda runs: {**runs, "r2": {"run_id": "r2"}},  # shorter
        lambda runs: {key: value for key, value in runs.items() if key != "r0"},
        lambda runs: {key: value for key, value in runs.items() if key != "r4"},  # the last one
        lambda runs: {"new": {"run_id": "new"}, **runs},
        lambda runs: {**runs, "new": {"run_id": "new"}},
        lambda runs: dict(reversed(list(runs.items()))),
        lambda runs: {**runs, "r1": {**runs["r1"], "n": 10}, "r3": {**runs["r3"], "n": 30}},  # same length
        lambda runs: {},
    ],
    ids=["same", "longer", "shorter", "first-removed", "last-removed", "added-first", "added-last",
         "reordered", "same-length-changes", "emptied"],
)
def test_a_hinted_scan_finds_the_same_spans_as_an_unhinted_one(edit):
    runs = {f"r{i}": {"run_id": f"r{i}", "n": i, **TRICKY} for i in range(5)}
    hints = lengths_of(versioned(**runs))
    raw = versioned(**edit(runs))
    assert scan_entries(raw, hints) == scan_entries(raw)


def test_a_hint_that_lands_on_a_comma_and_a_key_inside_a_longer_value_still_gives_the_parse_s_answer():
    before = b'{\n  "schema_version": 1,\n  "runs": {\n    "a": {"k": 12},\n    "b": {}\n  }\n}'
    # "a" grew, and its old length (9 bytes) now ends just before ',\n    "x": ' inside it.
    after = b'{\n  "schema_version": 1,\n  "runs": {\n    "a": {"k": [1],\n    "x": 2},\n    "b": {}\n  }\n}'
    hinted = scan_entries(after, lengths_of(before))
    assert hinted is not None and hinted.spans[0][0] == "a" and hinted.spans[1][0] == "x"  # cut wrong...
    differ = LocalDiffer()
    differ.diff(before)
    differ.commit()
    diff = differ.diff(after)
    assert differ.full_parses == 1  # ...so the span did not parse and the whole file was
    assert diff.keys == ["a", "b"] and diff.changed == full_parse(after)  # all, once: a full parse's baseline


def test_a_primed_baseline_vouches_only_for_spans_that_parsed():
    # Valid JSON the scanner cuts wrong: a nested key sits at the entries' indent.
    raw = b'{\n  "schema_version": 1,\n  "runs": {\n    "a": {"x": 1,\n    "y": {"z": 2}},\n    "b": {}\n  }\n}'
    differ = LocalDiffer()
    differ.prime(raw)
    diff = differ.diff(raw)
    assert diff.keys == list(full_parse(raw)) == ["a", "b"]
