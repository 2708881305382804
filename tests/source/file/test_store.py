"""The runs file: every form the server reads, corrupt-entry recovery, writing, location."""

import json
from pathlib import Path

import pytest

from tandem_tui.domain.models import RunStatus, dump_run
from tandem_tui.source.file.store import (
    RunsFileError,
    default_runs_file_path,
    parse_run_entry,
    parse_runs_document,
    parse_runs_file,
    read_runs_document,
    read_runs_file,
    serialize_runs_file,
)

NOW = 1_795_400_000_000


def record(run_id="run-1", **fields):
    return {
        "run_id": run_id,
        "automation_id": "auto-1",
        "trigger_type": "manual",
        "status": "queued",
        "created_at_ms": 1_795_300_000_000,
        "updated_at_ms": 1_795_300_000_500,
        "checkpoint": {},
        **fields,
    }


# --- envelope forms ----------------------------------------------------------------


def test_a_v1_envelope_parses_its_runs_without_upgrading():
    raw = json.dumps({"schema_version": 1, "runs": {"run-1": record(), "run-2": record("run-2")}})
    runs, upgraded = parse_runs_file(raw, now_ms=NOW)
    assert sorted(runs) == ["run-1", "run-2"]
    assert runs["run-2"].status is RunStatus.QUEUED
    assert upgraded is False


def test_a_legacy_v0_bare_map_parses_and_is_flagged_upgraded():
    raw = json.dumps({"run-1": record()})
    runs, upgraded = parse_runs_file(raw, now_ms=NOW)
    assert list(runs) == ["run-1"]
    assert upgraded is True
    assert parse_runs_document(raw).schema_version == 0


def test_a_v0_envelope_version_is_upgraded():
    document = parse_runs_document(json.dumps({"schema_version": 0, "runs": {}}))
    assert (document.entries, document.schema_version, document.upgraded) == ({}, 0, True)


@pytest.mark.parametrize("raw,upgraded", [("", False), ("  \n\t ", False), ("{}", True), (" {} \n", True)])
def test_empty_whitespace_and_empty_object_hold_no_runs(raw, upgraded):
    assert parse_runs_file(raw, now_ms=NOW) == ({}, upgraded)


def test_bytes_are_accepted_like_text():
    raw = json.dumps({"schema_version": 1, "runs": {"run-1": record(detail="é")}}, ensure_ascii=False)
    runs, _ = parse_runs_file(raw.encode("utf-8"), now_ms=NOW)
    assert runs["run-1"].detail == "é"


def test_a_newer_schema_version_is_refused_with_one_clear_line():
    raw = json.dumps({"schema_version": 2, "runs": {"run-1": record()}})
    with pytest.raises(RunsFileError) as error:
        parse_runs_file(raw, now_ms=NOW)
    assert str(error.value) == "automation_v2_runs.json schema_version 2 is newer than supported version 1"


@pytest.mark.parametrize("version", ["1", -1, 1.0, 1.5, None, True, 2**32, [1]])
def test_a_schema_version_that_is_not_an_unsigned_integer_is_an_error(version):
    raw = json.dumps({"schema_version": version, "runs": {}})
    with pytest.raises(RunsFileError, match="schema_version must be an unsigned integer"):
        parse_runs_document(raw)


def test_a_versioned_file_without_runs_is_an_error():
    with pytest.raises(RunsFileError, match="missing runs object"):
        parse_runs_document('{"schema_version": 1}')


@pytest.mark.parametrize("runs", [[], "x", 3, None])
def test_runs_that_are_not_an_object_are_an_error(runs):
    with pytest.raises(RunsFileError, match="must be a JSON object"):
        parse_runs_document(json.dumps({"schema_version": 1, "runs": runs}))


@pytest.mark.parametrize("raw", ["[1, 2]", '"text"', "42"])
def test_a_top_level_value_that_is_not_an_object_is_an_error(raw):
    with pytest.raises(RunsFileError, match="must be a JSON object"):
        parse_runs_document(raw)


@pytest.mark.parametrize("raw", ['{"schema_version": 1, "runs": {', '{"a": NaN}', "{'a': 1}", b'{"\xff": 1}'])
def test_invalid_json_is_one_line_naming_the_file(raw):
    with pytest.raises(RunsFileError) as error:
        parse_runs_document(raw)
    message = str(error.value)
    assert message.startswith("failed to parse automation_v2_runs.json: ")
    assert "\n" not in message


def test_entries_are_keyed_by_each_records_own_run_id():
    raw = json.dumps({"schema_version": 1, "runs": {"stale-key": record("real-id")}})
    runs, _ = parse_runs_file(raw, now_ms=NOW)
    assert list(runs) == ["real-id"]


# --- corrupt entries ---------------------------------------------------------------


def test_a_corrupt_entry_is_recovered_as_a_blocked_run_with_the_exact_fields():
    corrupt = {
        "run_id": "run-bad",
        "automation_id": "auto-7",
        "status": "exploded",
        "created_at_ms": 1_795_000_000_000,
        "started_at_ms": 1_795_000_001_000,
        "trigger_type": "cron",
        "tenant_context": {"org_id": "acme", "workspace_id": "ops", "source": "explicit"},
        "automation_snapshot": {"workspace_root": "/srv/ws", "flow": {"nodes": []}},
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "estimated_cost_usd": 0.25,
        "trigger_reason": "nightly",
        "consumed_handoff_id": "handoff-1",
        "effective_execution_profile": "guided",
        "requested_execution_profile": "yolo",
        "checkpoint": {"node_outputs": {"n": {}}},
        "x_future": 1,
    }
    run = parse_run_entry("key-bad", corrupt, now_ms=NOW)
    parse_error = run.checkpoint.lifecycle_history[0].metadata["parse_error"]
    assert parse_error.startswith("status: Input should be 'queued'")
    assert "or 'cancelled' (got \"exploded\"); updated_at_ms: Field required" in parse_error
    assert "\n" not in parse_error
    detail = f"automation run checkpoint could not be parsed during startup: {parse_error}"
    assert dump_run(run) == {
        "run_id": "run-bad",
        "automation_id": "auto-7",
        "tenant_context": {"org_id": "acme", "workspace_id": "ops", "source": "explicit"},
        "trigger_type": "cron",
        "status": "blocked",
        "created_at_ms": 1_795_000_000_000,
        "updated_at_ms": NOW,
        "started_at_ms": 1_795_000_001_000,
        "finished_at_ms": NOW,
        "checkpoint": {
            "blocked_nodes": ["checkpoint"],
            "lifecycle_history": [
                {
                    "event": "run_blocked_corrupt_checkpoint",
                    "recorded_at_ms": NOW,
                    "reason": detail,
                    "metadata": {"run_id_key": "key-bad", "parse_error": parse_error},
                }
            ],
            "last_failure": {
                "node_id": "checkpoint",
                "reason": detail,
                "failed_at_ms": NOW,
                "failure_kind": "checkpoint_recovery_failed",
            },
        },
        "automation_snapshot": {"workspace_root": "/srv/ws", "flow": {"nodes": []}},
        "detail": detail,
        "stop_reason": detail,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "estimated_cost_usd": 0.25,
        "trigger_reason": "nightly",
        "consumed_handoff_id": "handoff-1",
        "effective_execution_profile": "guided",
        "requested_execution_profile": "yolo",
    }
    assert run.is_terminal


def test_a_corrupt_entry_falls_back_to_the_key_local_tenant_and_now():
    corrupt = {
        "automation_id": "auto-7",
        "run_id": "  ",
        "created_at_ms": -5,
        "tenant_context": "nonsense",
        "effective_execution_profile": "reckless",
        "estimated_cost_usd": "cheap",
        "prompt_tokens": 1.5,
    }
    run = parse_run_entry("key-only", corrupt, now_ms=NOW)
    assert run.run_id == "key-only"
    assert run.created_at_ms == NOW
    assert run.trigger_type == "recovered"
    assert dump_run(run)["tenant_context"] == {"org_id": "local", "workspace_id": "local", "source": "local_implicit"}
    assert run.effective_execution_profile.value == "strict"
    assert run.requested_execution_profile is None
    assert (run.estimated_cost_usd, run.prompt_tokens) == (0.0, 0)
    assert "started_at_ms" not in dump_run(run)


def test_one_corrupt_entry_does_not_sink_the_file():
    raw = json.dumps(
        {"schema_version": 1, "runs": {"run-1": record(), "run-2": record("run-2", status="exploded")}}
    )
    runs, _ = parse_runs_file(raw, now_ms=NOW)
    assert runs["run-1"].status is RunStatus.QUEUED
    assert runs["run-2"].status is RunStatus.BLOCKED
    assert runs["run-2"].checkpoint.lifecycle_history[0].event == "run_blocked_corrupt_checkpoint"


@pytest.mark.parametrize("automation_id", [None, "", "   ", 7])
def test_a_corrupt_entry_without_an_automation_id_is_an_error(automation_id):
    entry = {"run_id": "run-x", "status": "exploded"}
    if automation_id is not None:
        entry["automation_id"] = automation_id
    raw = json.dumps({"schema_version": 1, "runs": {"run-x": entry}})
    with pytest.raises(RunsFileError, match='entry "run-x" is missing automation_id'):
        parse_runs_file(raw, now_ms=NOW)


@pytest.mark.parametrize("entry", [[1], "run", 3, None])
def test_an_entry_that_is_not_an_object_is_an_error(entry):
    with pytest.raises(RunsFileError, match="not recoverable: not a JSON object"):
        parse_run_entry("run-x", entry, now_ms=NOW)


# --- writing -----------------------------------------------------------------------


def test_serializing_writes_a_v1_envelope_pretty_printed_like_the_server():
    runs, _ = parse_runs_file(json.dumps({"run-1": record(detail="naïve")}), now_ms=NOW)
    text = serialize_runs_file(runs)
    assert text.startswith('{\n  "schema_version": 1,\n  "runs": {\n    "run-1": {\n      "run_id": "run-1",')
    assert "naïve" in text
    assert json.loads(text) == {"schema_version": 1, "runs": {"run-1": record(detail="naïve")}}


def test_raw_entries_are_written_exactly_as_given():
    raw_entry = {"anything": ["goes", {"here": None}], "status": "not even valid"}
    runs, _ = parse_runs_file(json.dumps({"run-1": record()}), now_ms=NOW)
    text = serialize_runs_file({**runs, "raw": raw_entry})
    assert json.loads(text)["runs"] == {"run-1": record(), "raw": raw_entry}


def test_an_empty_store_serializes_to_an_empty_v1_envelope():
    assert json.loads(serialize_runs_file({})) == {"schema_version": 1, "runs": {}}


# --- reading from disk -------------------------------------------------------------


def test_reading_a_file_returns_its_runs(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    path.write_text(json.dumps({"schema_version": 1, "runs": {"run-1": record()}}))
    assert list(read_runs_file(path, now_ms=NOW)) == ["run-1"]


def test_reading_a_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(RunsFileError) as error:
        read_runs_file(path, now_ms=NOW)
    assert str(error.value) == f"{path}: no such file"


def test_reading_a_directory_names_the_path(tmp_path):
    with pytest.raises(RunsFileError, match="is a directory"):
        read_runs_document(tmp_path)


def test_reading_a_newer_schema_file_prefixes_the_path(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    path.write_text('{"schema_version": 9, "runs": {}}')
    with pytest.raises(RunsFileError) as error:
        read_runs_file(path, now_ms=NOW)
    assert str(error.value) == f"{path}: automation_v2_runs.json schema_version 9 is newer than supported version 1"


def test_reading_an_unrecoverable_entry_prefixes_the_path(tmp_path):
    path = tmp_path / "automation_v2_runs.json"
    path.write_text('{"schema_version": 1, "runs": {"r": {"status": "x"}}}')
    with pytest.raises(RunsFileError, match=f"^{path}: corrupt automation v2 run entry"):
        read_runs_file(path, now_ms=NOW)


def test_reading_an_unreadable_file_says_permission_denied(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "automation_v2_runs.json"
    path.write_text("{}")
    path.chmod(0)
    with pytest.raises(RunsFileError, match="permission denied"):
        read_runs_file(path, now_ms=NOW)


# --- location ----------------------------------------------------------------------


def test_a_valid_state_dir_holds_the_runs_file_in_its_data_dir(tmp_path):
    env = {"TANDEM_STATE_DIR": f" {tmp_path} ", "TANDEM_HOME": "/elsewhere", "HOME": "/home/op"}
    assert default_runs_file_path(env) == tmp_path.resolve() / "data" / "automation_v2_runs.json"


@pytest.mark.parametrize("name", ["data", "Data", "DATA"])
def test_a_state_dir_named_data_in_any_case_holds_the_runs_file_directly(tmp_path, name):
    (tmp_path / name).mkdir()
    env = {"TANDEM_STATE_DIR": str(tmp_path / name)}
    assert default_runs_file_path(env) == tmp_path.resolve() / name / "automation_v2_runs.json"


def test_a_state_dir_is_canonicalized_like_the_server(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    env = {"TANDEM_STATE_DIR": str(tmp_path / "link")}
    assert default_runs_file_path(env) == (tmp_path / "real").resolve() / "data" / "automation_v2_runs.json"


@pytest.mark.parametrize("state_dir", ["/no/such/dir/data", "relative/dir", "/tmp/../tmp", "/etc"])
def test_an_invalid_state_dir_gives_way_to_tandem_home(state_dir):
    env = {"TANDEM_STATE_DIR": state_dir, "TANDEM_HOME": " /srv/tandem-home ", "HOME": "/home/op"}
    assert default_runs_file_path(env) == Path("/srv/tandem-home/data/automation_v2_runs.json")


def test_an_invalid_state_dir_without_tandem_home_is_the_home_and_always_gets_data_appended():
    # The server's resolve_tandem_home_dir takes the raw value; shared paths append data/.
    env = {"TANDEM_STATE_DIR": "/no/such/dir/data", "HOME": "/home/op"}
    assert default_runs_file_path(env) == Path("/no/such/dir/data/data/automation_v2_runs.json")


def test_tandem_home_without_a_state_dir_holds_the_runs_file_in_its_data_dir():
    env = {"TANDEM_HOME": "/srv/th", "HOME": "/home/op"}
    assert default_runs_file_path(env) == Path("/srv/th/data/automation_v2_runs.json")


def test_without_a_state_dir_the_xdg_data_home_is_used(monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    env = {"XDG_DATA_HOME": "/data/xdg", "HOME": "/home/op", "TANDEM_STATE_DIR": "  "}
    assert default_runs_file_path(env) == Path("/data/xdg/tandem/data/automation_v2_runs.json")


def test_without_state_dir_or_xdg_the_linux_default_is_under_home(monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    env = {"HOME": "/home/op", "XDG_DATA_HOME": "relative/ignored"}
    assert default_runs_file_path(env) == Path("/home/op/.local/share/tandem/data/automation_v2_runs.json")


# --- the realistic fixtures --------------------------------------------------------

RUNS_FIXTURES = ["runs_v1.json", "runs_v0.json", "runs_corrupt_entry.json", "runs_empty.json"]


@pytest.mark.parametrize("name", RUNS_FIXTURES)
def test_every_fixture_survives_parse_serialize_parse(fixtures_dir, name):
    raw = (fixtures_dir / name).read_text(encoding="utf-8")
    runs, _ = parse_runs_file(raw, now_ms=NOW)
    again, upgraded = parse_runs_file(serialize_runs_file(runs), now_ms=NOW + 1)
    assert upgraded is False
    assert {k: dump_run(v) for k, v in again.items()} == {k: dump_run(v) for k, v in runs.items()}


@pytest.mark.parametrize("name", ["runs_v1.json", "runs_v0.json"])
def test_a_fixture_written_back_is_json_equal_to_its_input_apart_from_the_envelope(fixtures_dir, name):
    original = json.loads((fixtures_dir / name).read_text(encoding="utf-8"))
    runs, _ = parse_runs_file(json.dumps(original), now_ms=NOW)
    written = json.loads(serialize_runs_file(runs))
    assert written["schema_version"] == 1
    assert written["runs"] == original.get("runs", original)


def test_the_v1_fixture_written_back_is_byte_identical(fixtures_dir):
    raw = (fixtures_dir / "runs_v1.json").read_text(encoding="utf-8")
    document = parse_runs_document(raw)
    assert serialize_runs_file(document.entries) == raw


def test_the_corrupt_fixture_recovers_one_entry_and_keeps_the_other(fixtures_dir):
    runs, _ = parse_runs_file((fixtures_dir / "runs_corrupt_entry.json").read_bytes(), now_ms=NOW)
    assert runs["run-etl-0308"].status is RunStatus.COMPLETED
    recovered = runs["run-ir-0084"]
    assert recovered.status is RunStatus.BLOCKED
    assert recovered.checkpoint.blocked_nodes == ["checkpoint"]
    assert recovered.checkpoint.lifecycle_history[-1].metadata["run_id_key"] == "run-ir-0084"
    assert recovered.total_tokens == 68_110
    assert recovered.workspace_root == "/srv/tandem/workspaces/billing-api"


def test_the_newer_schema_fixture_is_refused_naming_the_file(fixtures_dir):
    path = fixtures_dir / "runs_newer_schema.json"
    with pytest.raises(RunsFileError, match=r"schema_version 2 is newer than supported version 1$"):
        read_runs_file(path, now_ms=NOW)


def test_the_runs_file_fixture_holds_every_status(runs_file):
    runs = read_runs_file(runs_file, now_ms=NOW)
    assert {run.status for run in runs.values()} == set(RunStatus)
    assert len(runs) == 20


# --- what the server keeps out of its hot set at load ---------------------------------


@pytest.mark.parametrize(("status", "kept"), [("queued", False), ("paused", False), ("running", False), ("completed", True), ("blocked", True)])
def test_a_recovered_context_run_still_in_flight_is_dropped_at_load_like_the_server(status, kept):
    entry = record("ctx", trigger_type="recovered_context_run", status=status)
    runs, _ = parse_runs_file(json.dumps({"schema_version": 1, "runs": {"ctx": entry, "run-1": record()}}), now_ms=NOW)
    assert ("ctx" in runs) is kept
    assert "run-1" in runs


def test_two_entries_with_one_run_id_resolve_to_the_key_that_sorts_last_like_serde():
    raw = {"b-key": record("same", detail="from b"), "a-key": record("same", detail="from a")}
    runs, _ = parse_runs_file(json.dumps({"schema_version": 1, "runs": raw}), now_ms=NOW)
    assert runs["same"].detail == "from b"


# --- integers beyond 64 bits: found as number tokens, not as digits in strings -------


@pytest.mark.parametrize(
    "document",
    [
        b'{"a": 123456789012345678901}',
        b'{"a" :\n  -123456789012345678901}',
        b'{"a": [1,\n  123456789012345678901]}',
        b"123456789012345678901",
    ],
)
def test_an_integer_beyond_64_bits_is_read_exact_wherever_it_stands(document):
    from tandem_tui.source.file.store import load_json

    assert "123456789012345678901" in json.dumps(load_json(document, "t"))


@pytest.mark.parametrize(
    "document",
    [
        b'{"digest": "sha256:3390148558377838191096b5690031"}',
        b'{"note": "x, 1234567890123456789012"}',
        b'{"a": 1.5, "b": "12345678901234567890123456"}',
    ],
)
def test_long_digit_runs_inside_strings_are_not_taken_for_numbers(document):
    from tandem_tui.source.file.store import _has_long_integer

    assert not _has_long_integer(document)


def test_a_transaction_writes_the_servers_bytes(runs_file):
    from tandem_tui.source.file.store import serialize_runs_file
    from tandem_tui.source.file.transaction import transact

    def rename_detail(document):
        document.entries["run-rn-0142"]["detail"] = "naïve ✓ \u00e9"

    transact(runs_file, rename_detail)
    written = runs_file.read_bytes()
    entries = json.loads(written)["runs"]
    assert written == serialize_runs_file(entries).encode("utf-8")
    assert "naïve ✓".encode() in written


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"schema_version": 1, "runs": {"a": "\xff"}}', "not UTF-8"),
        (b"\xa0{}", "not UTF-8"),
    ],
)
def test_bytes_that_are_not_utf8_are_named_so_whatever_their_ends(raw, message):
    with pytest.raises(RunsFileError, match=message):
        parse_runs_document(raw)


@pytest.mark.parametrize("raw", ["{}\u00a0".encode(), "\u3000{}".encode(), b" \r\n{} \t"])
def test_a_file_holding_only_braces_and_rust_whitespace_is_an_empty_legacy_map(raw):
    document = parse_runs_document(raw)
    assert (document.entries, document.schema_version, document.upgraded) == ({}, 0, True)


# --- the read path proves orjson's reading exact by serializing it back ---------------


def _pretty_runs(**extra) -> bytes:
    from tandem_tui.source.file.store import serialize_runs_file

    record = {"run_id": "a", "automation_id": "auto", "status": "queued", "created_at_ms": 1, "updated_at_ms": 1}
    return serialize_runs_file({"a": {**record, **extra}}).encode()


@pytest.mark.parametrize(
    "raw",
    [
        _pretty_runs(),
        _pretty_runs() + b"\n",
        _pretty_runs(mystery=7).replace(b'"mystery": 7', b'"mystery": -0'),
        _pretty_runs(mystery=7).replace(b'"mystery": 7', b'"mystery": 123456789012345678901'),
        _pretty_runs(created_at_ms=7).replace(b'"created_at_ms": 7', b'"created_at_ms": -0'),
        _pretty_runs(created_at_ms=7).replace(b'"created_at_ms": 7', b'"created_at_ms": 18446744073709551616'),
        b'{"schema_version": 1, "runs": {"a": {"run_id": "a", "automation_id": "x", "created_at_ms": -0}}}',
    ],
    ids=["ours", "trailing newline", "-0", "long integer", "-0 typed", "long integer typed", "compact -0"],
)
def test_reading_a_file_gives_the_runs_the_exact_parse_gives(tmp_path, raw):
    from tandem_tui.source.file.store import parse_runs_file, read_runs_file

    path = tmp_path / "automation_v2_runs.json"
    path.write_bytes(raw)
    read = read_runs_file(path, now_ms=5)
    parsed, _ = parse_runs_file(raw, now_ms=5)
    assert {key: repr(dump_run(run)) for key, run in read.items()} == {
        key: repr(dump_run(run)) for key, run in parsed.items()
    }


def test_a_file_in_our_layout_is_read_without_the_scans(tmp_path, monkeypatch):
    from tandem_tui.source.file import store

    def refuse(data):
        raise AssertionError("scanned the file for -0 and long integers")

    monkeypatch.setattr(store, "orjson_reads_exactly", refuse)
    path = tmp_path / "automation_v2_runs.json"
    path.write_bytes(_pretty_runs() + b"\n")
    assert list(store.read_runs_file(path, now_ms=5)) == ["a"]
