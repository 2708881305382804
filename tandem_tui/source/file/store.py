"""The hot runs file, ``automation_v2_runs.json``: parse, recover, serialize, locate.

Ported from the server's run store. Two on-disk forms are read: the v1 envelope
``{"schema_version": 1, "runs": {run_id: record}}`` and the legacy v0 bare map. An empty
file, whitespace or ``{}`` holds no runs. A newer ``schema_version`` is refused, so that
tandem-tui never rewrites a file it does not understand. One corrupt entry does not sink
the file: it is recovered as a ``blocked`` run carrying a ``run_blocked_corrupt_checkpoint``
event, as the server does at startup.

Parsing happens in two levels so writers stay lossless: :func:`parse_runs_document` checks
only the envelope and hands back the raw entries; :func:`parse_run_entry` validates one.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from tandem_tui.domain.core_validation import ValidationError

from tandem_tui.domain import events
from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.domain.models import (
    Checkpoint,
    ExecutionProfile,
    FailureRecord,
    LifecycleRecord,
    Run,
    RunStatus,
    SERDE,
    TenantContext,
    dump_run,
    parse_run_record,
)
from tandem_tui.domain import serde_shape

RUNS_SCHEMA_VERSION = 1
RUNS_FILE_NAME = "automation_v2_runs.json"
CORRUPT_CHECKPOINT_EVENT = events.RUN_BLOCKED_CORRUPT_CHECKPOINT
CORRUPT_CHECKPOINT_NODE = "checkpoint"
CORRUPT_CHECKPOINT_FAILURE_KIND = "checkpoint_recovery_failed"

_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1


class RunsFileError(ValueError):
    """A runs file (or shard) that cannot be used; the message is one line naming why."""


@dataclass
class RunsDocument:
    """A runs file checked at the envelope level: raw entries, not yet validated.

    ``schema_version`` is the version the file was written with (0 for the legacy bare
    map, 1 for an empty file); ``upgraded`` is true when writing it back changes its form.
    """

    entries: dict[str, Any]
    schema_version: int
    upgraded: bool


# --- JSON helpers ------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def decode_utf8(raw: str | bytes, what: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RunsFileError(f"failed to parse {what}: not UTF-8 ({error.reason} at byte {error.start})") from None


#: orjson's wording -> serde_json's, for the errors where the two agree on the verdict.
_SERDE_WORDING = (
    ("number is infinity when parsed as double", "number out of range"),
    ("no low surrogate in string", "unexpected end of hex escape"),
    ("invalid low surrogate in string", "lone leading surrogate in hex escape"),
    ("invalid high surrogate in string", "lone leading surrogate in hex escape"),
    ("UTF-8 byte order mark (BOM) is not supported", "expected value"),
    ("unexpected control character in string", "control character (\\u0000-\\u001F) found while parsing a string"),
    ("trailing comma is not allowed", "trailing comma"),
    ("unexpected character, expected a JSON value", "expected value"),
)
_ORJSON_POSITION = re.compile(r": line (\d+) column (\d+) \(char \d+\)$")
#: ``-0`` not followed by more of a number (a literal-prefix pattern: re finds it at
#: memchr speed; the context check is done by :func:`_has_minus_zero`).
_MINUS_ZERO = re.compile(rb"-0(?![0-9.eE])")
#: 19 digits in a row: maybe an integer beyond 64 bits, which orjson reads as a float.
#: Only a run that starts a number token counts (see :func:`_has_long_integer`): the
#: digits of a hex digest inside a string sent every 10k-run file to the exact parse.
#: Every digit as ``0`` and every other byte as ``.``: a run of 19 digits is then found by
#: ``bytes.find`` (memmem speed; a regex scan of a 60 MB file took 0.5 s or more).
_DIGIT_MAP = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x2E for byte in range(256))
_LONG_RUN = b"0" * 19
_NUMBER_END = frozenset(b".eE,]} \t\r\n")


def _has_long_integer(data: bytes, cut: bool = False) -> bool:
    """A number token of 19 digits or more: the digits follow ``[``, ``,`` or a key's
    ``":`` (with an optional ``-`` and whitespace) and end where a number ends. A false
    positive (such digits inside a string) only costs the slower exact parse; the
    digits of a hex digest in a string (``"sha256:3390148558377838191096b5…"``) used
    to send every big file there. ``cut``: see :func:`orjson_reads_exactly`."""
    digits = data.translate(_DIGIT_MAP)
    end = len(data)
    start = digits.find(_LONG_RUN)
    while start != -1:
        stop = digits.find(b".", start)
        stop = end if stop == -1 else stop
        if _starts_a_number(data, start, cut) and (stop == end or data[stop] in _NUMBER_END):
            return True
        start = digits.find(_LONG_RUN, stop)
    return False


def _starts_a_number(data: bytes, start: int, cut: bool = False) -> bool:
    i = start - 1
    if i >= 0 and data[i] == 0x2D:  # "-"
        i -= 1
    while i >= 0 and data[i] in b" \t\r\n":
        i -= 1
    if i < 0 or data[i] in b"[,":
        return True
    if data[i] != 0x3A:  # ":"
        return False
    # A key's ":" follows its closing quote; "sha256:" inside a string does not.
    i -= 1
    while i >= 0 and data[i] in b" \t\r\n":
        i -= 1
    return (cut and i < 0) or (i >= 0 and data[i] == 0x22)


def _has_minus_zero(data: bytes, cut: bool = False) -> bool:
    """A ``-0`` number token: after ``:``, ``[`` or ``,`` (a false positive inside a
    string only costs the slower exact parse). ``cut``: see :func:`orjson_reads_exactly`."""
    for match in _MINUS_ZERO.finditer(data):
        i = match.start() - 1
        while i >= 0 and data[i] in b" \t\r\n":
            i -= 1
        if (cut and i < 0) or (i >= 0 and data[i] in b":[,"):
            return True
    return False


def orjson_reads_exactly(data: bytes, *, cut: bool = False) -> bool:
    """Whether ``orjson.loads(data)`` reads every number as serde_json does (no ``-0``,
    no integer beyond 64 bits); a false "no" only costs the slower exact parse.

    ``cut``: ``data`` is a window of a longer text whose beginning is cut off, so a token
    whose context lies before the window counts as a number (:class:`ExactReading`).
    """
    return not (_has_minus_zero(data, cut) or _has_long_integer(data, cut))


class ExactReading:
    """:func:`orjson_reads_exactly` of a text read in chunks, each checked as it comes
    (once over the bytes, holding one chunk): :attr:`exact` is false once a chunk holds
    a number orjson reads unlike serde, or may hold one.

    Each chunk is checked after the last :data:`_OVERLAP` bytes of the one before, so a
    ``-0`` across an edge is seen whole, and a 19-digit run across it either whole or
    cut (a cut run counts as a number), as does a token whose context was cut off.
    """

    #: More than a ``-0`` and its look-ahead, or the part of a 19-digit run that can lie
    #: before an edge.
    _OVERLAP = 64

    def __init__(self) -> None:
        self.exact = True
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        if not self.exact or not chunk:
            return
        window = self._tail + chunk
        self.exact = orjson_reads_exactly(window, cut=bool(self._tail))
        self._tail = window[-self._OVERLAP :]


def _serializes_back(value: Any, data: bytes) -> bool:
    """Whether ``data`` is ``value`` pretty-printed as we write it (trailing whitespace
    aside), so that every number in it was read exactly (see :func:`load_json`)."""
    try:
        written = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    except (orjson.JSONEncodeError, TypeError):
        return False
    return data.startswith(written) and not data[len(written) :].strip(_ASCII_WHITESPACE)


def _serde_message(error: Exception) -> str:
    message = _one_line(str(error))
    position = ""
    match = _ORJSON_POSITION.search(message)
    if match:
        message = message[: match.start()]
        position = f" at line {match.group(1)} column {match.group(2)}"
    for orjson_words, serde_words in _SERDE_WORDING:
        if message.startswith(orjson_words):
            message = serde_words
            break
    return message + position


def _serde_int(token: str) -> int | float:
    # serde_json reads ``-0`` as a float. Integers outside i64..u64 it reads as floats
    # too, losing digits; we keep them exact: a typed field refuses them either way (the
    # same verdict), and an unknown field is written back as it was, not rounded.
    if token == "-0":
        return -0.0
    return int(token)


def _serde_float(token: str) -> float:
    value = float(token)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def load_json(raw: str | bytes, what: str, *, exact: bool = True, prove: bool = False) -> Any:
    """JSON as serde_json reads it; errors become one-line RunsFileError.

    orjson gives serde's verdicts (``1e400``, lone surrogates, NaN, BOM and control
    characters refused) with the wording mapped to serde's. Two cases go to the stdlib
    parser: ``-0`` (a float for serde) and integers beyond 64 bits, which serde and orjson
    round to floats but we keep exact, so that a run nobody touched is written back as
    it was (a typed field refuses them either way). Not matched: serde_json refuses nesting deeper than 127
    levels, orjson only beyond 1024 (checking depth would cost a walk of the whole file).

    ``exact=False`` skips the scans for those two cases (a tenth of a parse): the caller
    then holds orjson's reading, ``-0`` as ``0`` and long integers as floats, and must
    prove it exact another way or check :func:`orjson_reads_exactly` before relying on it.
    ``prove=True`` first tries the cheaper proof for a file in the layout we (and the
    server) write: orjson's reading serialized back gives the very bytes read (a ``-0``
    or a long integer read by orjson would not); only a file it fails on is scanned.
    At 10k runs that is one ``orjson.dumps`` and a memcmp (~75 ms) for ~110 ms of scans;
    both hold one more copy of the bytes for a moment.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        if isinstance(raw, bytes):
            decode_utf8(raw, what)  # a UTF-8 error is named as such
        raise RunsFileError(f"failed to parse {what}: {_serde_message(error)}") from None
    if exact and not (prove and _serializes_back(value, data)) and not orjson_reads_exactly(data):
        value = json.loads(
            data.decode("utf-8"), parse_int=_serde_int, parse_float=_serde_float, parse_constant=_reject_constant
        )
    return value


def schema_version_of(value: Any, what: str) -> int:
    """The envelope's ``schema_version`` as serde reads a ``u32``; refuses newer versions."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U32_MAX:
        raise RunsFileError(f"{what} schema_version must be an unsigned integer, not {json.dumps(value)}")
    if value > RUNS_SCHEMA_VERSION:
        raise RunsFileError(
            f"{what} schema_version {value} is newer than supported version {RUNS_SCHEMA_VERSION}"
        )
    return value


def is_u64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U64_MAX


# --- parsing -----------------------------------------------------------------------


def parse_runs_document(raw: str | bytes, *, exact: bool = True, prove: bool = False) -> RunsDocument:
    """Check the envelope of a runs file and return its raw entries (``exact`` and
    ``prove``: see :func:`load_json`)."""
    stripped = _trimmed_ascii_ends(raw)
    if stripped is None:
        # Rust's trim, not Python's strip: U+001C..U+001F are not whitespace to the server.
        stripped = serde_shape.rust_trim(decode_utf8(raw, RUNS_FILE_NAME))
    if not stripped:
        return RunsDocument(entries={}, schema_version=RUNS_SCHEMA_VERSION, upgraded=False)
    if stripped in ("{}", b"{}"):
        return RunsDocument(entries={}, schema_version=0, upgraded=True)
    value = load_json(raw, RUNS_FILE_NAME, exact=exact, prove=prove)
    if not isinstance(value, dict) or "schema_version" not in value:
        return RunsDocument(entries=_entries_object(value, "legacy v0 map"), schema_version=0, upgraded=True)
    version = schema_version_of(value["schema_version"], RUNS_FILE_NAME)
    if "runs" not in value:
        raise RunsFileError(f"versioned {RUNS_FILE_NAME} missing runs object")
    entries = _entries_object(value["runs"], "runs")
    return RunsDocument(entries=entries, schema_version=version, upgraded=version < RUNS_SCHEMA_VERSION)


#: The ASCII bytes Rust's ``char::is_whitespace`` holds (the rest are not ASCII).
_ASCII_WHITESPACE = b"\t\n\x0b\x0c\r "


def _trimmed_ascii_ends(raw: str | bytes) -> bytes | None:
    """``raw`` trimmed as Rust trims it, without decoding it, when both ends (after ASCII
    whitespace) are ASCII and not whitespace: every other whitespace Rust trims is
    non-ASCII, so trimming stops there too. ``None`` otherwise (decode and trim then):
    decoding a 60 MB file only to look at its ends cost 0.06 s of each action."""
    if not isinstance(raw, bytes):
        return None
    stripped = raw.strip(_ASCII_WHITESPACE)
    if not stripped or stripped[0] >= 0x80 or stripped[-1] >= 0x80:
        return None
    return stripped


def _entries_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        kind = "an array" if isinstance(value, list) else json.dumps(value)[:40]
        raise RunsFileError(f"{RUNS_FILE_NAME} {where} must be a JSON object of runs, not {kind}")
    return value


def validation_error_line(error: ValidationError) -> str:
    """A pydantic validation error as one line: ``field.path: message; ...``."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "record"
        # serde's own words, for the checks that give them (not "Value error, ...").
        message = item["msg"].removeprefix("Value error, ")
        part = f"{location}: {message}"
        value = item.get("input")
        if item["type"] != "missing" and (value is None or isinstance(value, str | int | float | bool)):
            shown = json.dumps(value, ensure_ascii=False)
            part += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
        parts.append(part)
    return _one_line("; ".join(parts))


def parse_run_entry(key: str, value: Any, *, now_ms: int) -> Run:
    """Validate one entry of the runs map, recovering a corrupt one like the server.

    Raises :class:`RunsFileError` when the entry cannot be recovered: it is not an
    object, or it has no non-blank string ``automation_id``.
    """
    try:
        return parse_run_record(value)
    except ValidationError as error:
        return recover_corrupt_run_entry(key, value, validation_error_line(error), now_ms=now_ms)


def _string_field(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    return value if isinstance(value, str) else None


def _u64_field(record: Mapping[str, Any], name: str) -> int | None:
    value = record.get(name)
    return value if is_u64(value) else None


def _tenant_field(record: Mapping[str, Any]) -> TenantContext:
    try:
        return TenantContext.model_validate(record.get("tenant_context"), context=SERDE)
    except ValidationError:
        return TenantContext.local_implicit()


def _learning_summary_field(record: Mapping[str, Any]) -> Any:
    value = record.get("learning_summary")
    try:
        serde_shape.check(value, serde_shape.LEARNING_SUMMARY)
    except ValueError:
        return None
    return value


def _profile_field(record: Mapping[str, Any], name: str) -> ExecutionProfile | None:
    value = record.get(name)
    if isinstance(value, str) and value in ExecutionProfile._value2member_map_:
        return ExecutionProfile(value)
    return None


def recover_corrupt_run_entry(key: str, value: Any, parse_error: str, *, now_ms: int) -> Run:
    """A blocked run standing in for an entry that failed to parse (the server's recovery).

    Identity, tenant, snapshot, timing start, tokens, cost, learning summary and the
    workflow definition version and hash are salvaged when they are well-formed;
    everything else (the checkpoint, handles, scheduler, claim) is replaced by a blocked
    checkpoint explaining why, with the failure kind ``checkpoint_recovery_failed``.
    """
    if not isinstance(value, dict):
        raise RunsFileError(f"corrupt automation v2 run entry {json.dumps(key)} is not recoverable: not a JSON object")
    run_id = _string_field(value, "run_id")
    if run_id is None or not run_id.strip():
        run_id = key
    automation_id = _string_field(value, "automation_id")
    if automation_id is None or not automation_id.strip():
        raise RunsFileError(f"corrupt automation v2 run entry {json.dumps(key)} is missing automation_id")
    created_at_ms = _u64_field(value, "created_at_ms")
    detail = f"automation run checkpoint could not be parsed during startup: {parse_error}"
    snapshot = value.get("automation_snapshot")
    cost = value.get("estimated_cost_usd")
    salvaged_optional = {
        "started_at_ms": _u64_field(value, "started_at_ms"),
        "automation_snapshot": snapshot if isinstance(snapshot, dict) else None,
        "trigger_reason": _string_field(value, "trigger_reason"),
        "consumed_handoff_id": _string_field(value, "consumed_handoff_id"),
        "learning_summary": _learning_summary_field(value),
        "requested_execution_profile": _profile_field(value, "requested_execution_profile"),
        "workflow_definition_version": _string_field(value, "workflow_definition_version"),
        "workflow_definition_snapshot_hash": _string_field(value, "workflow_definition_snapshot_hash"),
    }
    return Run(
        **{name: field for name, field in salvaged_optional.items() if field is not None},
        run_id=run_id,
        automation_id=automation_id,
        tenant_context=_tenant_field(value),
        trigger_type=_string_field(value, "trigger_type") or "recovered",
        status=RunStatus.BLOCKED,
        created_at_ms=now_ms if created_at_ms is None else created_at_ms,
        updated_at_ms=now_ms,
        finished_at_ms=now_ms,
        checkpoint=Checkpoint(
            blocked_nodes=[CORRUPT_CHECKPOINT_NODE],
            lifecycle_history=[
                LifecycleRecord(
                    event=CORRUPT_CHECKPOINT_EVENT,
                    recorded_at_ms=now_ms,
                    reason=detail,
                    metadata={"run_id_key": key, "parse_error": parse_error},
                )
            ],
            last_failure=FailureRecord(
                node_id=CORRUPT_CHECKPOINT_NODE,
                reason=detail,
                failed_at_ms=now_ms,
                failure_kind=CORRUPT_CHECKPOINT_FAILURE_KIND,
            ),
        ),
        detail=detail,
        stop_reason=detail,
        prompt_tokens=_u64_field(value, "prompt_tokens") or 0,
        completion_tokens=_u64_field(value, "completion_tokens") or 0,
        total_tokens=_u64_field(value, "total_tokens") or 0,
        estimated_cost_usd=float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else 0.0,
        effective_execution_profile=_profile_field(value, "effective_execution_profile") or ExecutionProfile.STRICT,
    )


def parse_runs_file(raw: str | bytes, *, now_ms: int) -> tuple[dict[str, Run], bool]:
    """Every run in a runs file keyed by its ``run_id``, and whether the file was upgraded."""
    document = parse_runs_document(raw)
    return runs_of(document, now_ms=now_ms), document.upgraded


def runs_of(document: RunsDocument, *, now_ms: int) -> dict[str, Run]:
    """The validated runs of a document, keyed by each record's own ``run_id``.

    As the server's load: a recovered-context run still in flight is dropped from the
    hot set; when two entries carry the same ``run_id`` the one whose key sorts last
    wins (serde_json's map iterates its keys in sorted order).
    """
    runs: dict[str, Run] = {}
    for key in sorted(document.entries):
        run = parse_run_entry(key, document.entries[key], now_ms=now_ms)
        if run.is_nonterminal_recovered_context_run:
            continue
        runs[run.run_id] = run
    return runs


# --- writing -----------------------------------------------------------------------


def pretty_json(value: Any) -> str:
    """``value`` as the server writes it: serde_json's ``to_string_pretty`` (2-space indent, UTF-8).

    orjson's output is byte-identical to ``json.dumps(indent=2, ensure_ascii=False)``,
    ~50x faster on a large runs file (the stdlib drops to its pure-Python encoder as
    soon as an indent is asked for); the stdlib remains the fallback for what orjson
    refuses (integers beyond 64 bits).
    """
    return pretty_json_bytes(value).decode()


def pretty_json_bytes(value: Any) -> bytes:
    """:func:`pretty_json` as UTF-8 bytes, never decoded to text on the way (a 60 MB
    file spent 0.1 s decoding and 0.3 s encoding back)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8")


def serialize_runs_file(entries: Mapping[str, Run | dict[str, Any]]) -> str:
    """The v1 envelope, pretty-printed like the server; raw dicts are written untouched."""
    return serialize_runs_file_bytes(entries).decode()


def serialize_runs_file_bytes(entries: Mapping[str, Run | dict[str, Any]]) -> bytes:
    """:func:`serialize_runs_file` as the UTF-8 bytes that are written."""
    runs = {key: dump_run(value) if isinstance(value, Run) else value for key, value in entries.items()}
    return pretty_json_bytes({"schema_version": RUNS_SCHEMA_VERSION, "runs": runs})


def serialize_entry_bytes(value: Run | Any) -> bytes:
    """One entry of the runs map as :func:`serialize_runs_file_bytes` lays it out (up to its
    indentation): equal bytes here mean equal bytes in the file."""
    return pretty_json_bytes(dump_run(value) if isinstance(value, Run) else value)


# --- reading from disk -------------------------------------------------------------


def read_runs_bytes(path: str | os.PathLike[str]) -> bytes:
    """The raw content of a runs file; failures become ``<path>: <reason>``."""
    from tandem_tui.source.file.regular import read_regular

    try:
        return read_regular(path)[0]
    except OSError as error:
        raise RunsFileError(read_error_line(path, error)) from None


def read_error_line(path: str | os.PathLike[str], error: OSError) -> str:
    """Why the runs file at ``path`` cannot be read, in one line naming it."""
    if isinstance(error, FileNotFoundError):
        return f"{path}: no such file"
    if isinstance(error, IsADirectoryError):
        return f"{path}: is a directory, not a runs file; did you mean --state-dir?"
    if isinstance(error, PermissionError):
        return f"{path}: permission denied"
    if error.errno == errno.ELOOP:
        return f"{path}: a symbolic link loop, not a runs file"
    return f"{path}: cannot read ({error.strerror or error})"


def read_runs_document(path: str | os.PathLike[str], *, prove: bool = False) -> RunsDocument:
    """The envelope-level document of the runs file at ``path``; errors name the file
    (``prove``: see :func:`load_json`)."""
    raw = read_runs_bytes(path)
    try:
        return parse_runs_document(raw, prove=prove)
    except RunsFileError as error:
        raise RunsFileError(f"{path}: {error}") from None


def read_runs_file(path: str | os.PathLike[str], *, now_ms: int) -> dict[str, Run]:
    """Every run in the runs file at ``path``; errors name the file."""
    with gc_paused():
        document = read_runs_document(path, prove=True)
        try:
            return runs_of(document, now_ms=now_ms)
        except RunsFileError as error:
            raise RunsFileError(f"{path}: {error}") from None


# --- location ----------------------------------------------------------------------


#: Canonical prefixes the server refuses for ``TANDEM_STATE_DIR`` (a plain string prefix).
_UNSAFE_STATE_DIR_PREFIXES = ("/etc", "/sys", "/proc", "/root", "/boot", "/dev", "/var/www")


def _valid_state_dir(raw: str) -> Path | None:
    """The server's ``validate_env_path``: the canonical directory, or ``None`` if refused.

    Refused: empty, containing ``..`` anywhere, relative, missing (it must canonicalize),
    or under a system prefix.
    """
    value = raw.strip()
    if not value or ".." in value or not Path(value).is_absolute():
        return None
    try:
        canonical = Path(value).resolve(strict=True)
    except OSError:
        return None
    if str(canonical).startswith(_UNSAFE_STATE_DIR_PREFIXES):
        return None
    return canonical


def default_runs_file_path(env: Mapping[str, str]) -> Path:
    """Where the Tandem server keeps its runs file, resolved from ``env`` as it does.

    The server's ``resolve_canonical_data_file_path``: a valid ``TANDEM_STATE_DIR`` (an
    existing absolute directory, see :func:`_valid_state_dir`) wins, canonicalized, and
    holds the file directly when it is named ``data`` in any letter case, else in its
    ``data/``. Otherwise the file is in ``<tandem home>/data/``, where the tandem home
    is ``TANDEM_HOME``, else ``TANDEM_STATE_DIR`` as given (even an invalid one), else
    the platform data dir's ``tandem/`` (``$XDG_DATA_HOME`` or ``~/.local/share`` on
    Linux). Values are trimmed; ``~`` is not expanded (the server does not).
    """
    state_dir = env.get("TANDEM_STATE_DIR")
    if state_dir is not None:
        base = _valid_state_dir(state_dir)
        if base is not None:
            data_dir = base if base.name.lower() == "data" else base / "data"
            return data_dir / RUNS_FILE_NAME
    return _tandem_home(env) / "data" / RUNS_FILE_NAME


def _tandem_home(env: Mapping[str, str]) -> Path:
    """The server's ``resolve_tandem_home_dir``."""
    for name in ("TANDEM_HOME", "TANDEM_STATE_DIR"):
        value = (env.get(name) or "").strip()
        if value:
            return Path(value)
    return _platform_data_dir(env) / "tandem"


def _platform_data_dir(env: Mapping[str, str]) -> Path:
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support"
    if sys.platform == "win32" and env.get("APPDATA"):
        return Path(env["APPDATA"])
    xdg = (env.get("XDG_DATA_HOME") or "").strip()
    # The XDG spec ignores relative values.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg)
    return home / ".local" / "share"
