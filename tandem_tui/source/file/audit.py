"""The operator audit log: every operator action attempted, and how it ended.

The log lives next to the history shards, at
``<runs file dir>/automation-runs/<runs file stem>/operator-audit.jsonl``. Each line is
appended with a single ``O_APPEND`` write and fsynced, so lines from concurrent consoles
never interleave and a line reported written survives a crash.

An attempt writes two lines sharing an ``attempt`` id: its *intent* before anything is
touched, and its *outcome* (``ok``, ``refused`` or ``failed``) after. A process killed
in between leaves an intent alone; the next action on the same runs file recovers its
outcome from the run's own lifecycle events (:func:`interrupted_attempts`), and
:func:`read_audit` shows one entry per attempt either way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from tandem_tui.source.file.atomic import adopt_parent_owner, make_dirs

AUDIT_FILE_NAME = "operator-audit.jsonl"
AUDIT_SOURCE = "tandem-tui"

#: ``failed``: the attempt could not be carried out (an unusable store, a live engine
#: unreachable or refusing our token); ``intent`` and ``interrupted``: see the module
#: docstring.
AuditResult = Literal["intent", "ok", "refused", "failed", "interrupted"]
#: Results that end an attempt.
OUTCOMES = frozenset({"ok", "refused", "failed"})
#: How much of the log's end is searched for interrupted attempts.
RECENT_BYTES = 256 * 1024
#: ``file``: our core wrote the runs file; ``engine``: the live engine's HTTP API.
AuditRoute = Literal["file", "engine"]


@dataclass(frozen=True)
class AuditEntry:
    """One operator action as the audit log records it."""

    at_ms: int
    actor: str
    action: str
    run_id: str
    previous_status: str | None
    new_status: str | None
    reason: str | None
    result: AuditResult
    message: str
    source: str = AUDIT_SOURCE
    #: Where the action went: ``file`` (our core wrote the runs file) or ``engine``.
    route: AuditRoute = "file"
    #: With the engine route: the engine's URL and answer (HTTP status, error code).
    engine_url: str | None = None
    engine_status: int | None = None
    engine_code: str | None = None
    #: Shared by an attempt's intent and outcome lines.
    attempt: str | None = None
    #: The process that made the attempt (an intent of a live process is in progress).
    pid: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # Fields that say nothing for this line are left out: a file-route line has no
        # engine answer, a line without an attempt id no attempt or pid.
        if self.route == "file":
            for key in ("engine_url", "engine_status", "engine_code"):
                del data[key]
        for key in ("attempt", "pid"):
            if data[key] is None:
                del data[key]
        return data


def audit_log_path(runs_file: str | os.PathLike[str]) -> Path:
    """Where the audit log of this runs file lives (beside its history shards)."""
    runs_file = Path(runs_file)
    return runs_file.parent / "automation-runs" / runs_file.stem / AUDIT_FILE_NAME


def append_audit(runs_file: str | os.PathLike[str], entry: AuditEntry | Mapping[str, Any]) -> Path:
    """Append one line for ``entry`` to the runs file's audit log; returns the log's path."""
    path = audit_log_path(runs_file)
    make_dirs(path.parent)
    data = entry.as_dict() if isinstance(entry, AuditEntry) else dict(entry)
    data.setdefault("source", AUDIT_SOURCE)
    line = (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        adopt_parent_owner(path, fd)
        # One write call per line: O_APPEND makes it land whole at the end of the file.
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_audit_lines(runs_file: str | os.PathLike[str], *, tail_bytes: int | None = None) -> list[dict[str, Any]]:
    """Every line of this runs file's audit log (or of its last ``tail_bytes``), oldest
    first; an absent log is empty.

    A torn line (a crash mid-append on a file system without atomic appends, or the cut
    of ``tail_bytes``) is skipped rather than failing the whole read.
    """
    path = audit_log_path(runs_file)
    try:
        with open(path, "rb") as handle:
            if tail_bytes is not None:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(max(size - tail_bytes, 0))
            raw = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    entries: list[dict[str, Any]] = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            entries.append(value)
    return entries


def read_audit(runs_file: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One entry per attempt, oldest first: its outcome line, or its intent with result
    ``interrupted`` when it has none (and its process is gone). Lines written before
    attempts had ids are returned as they are."""
    return _merge(read_audit_lines(runs_file))


def interrupted_attempts(runs_file: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Recent intents with no outcome whose process is gone: killed mid-action."""
    return [
        entry
        for entry in _merge(read_audit_lines(runs_file, tail_bytes=RECENT_BYTES))
        if entry.get("result") == "interrupted"
    ]


def _merge(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: list[dict[str, Any]] = []
    by_attempt: dict[str, int] = {}
    for line in lines:
        attempt = line.get("attempt")
        if not isinstance(attempt, str):
            merged.append(line)
            continue
        if attempt in by_attempt:
            if line.get("result") in OUTCOMES:
                merged[by_attempt[attempt]] = line
            continue
        by_attempt[attempt] = len(merged)
        merged.append(line)
    for index in by_attempt.values():
        entry = merged[index]
        if entry.get("result") == "intent" and not _alive(entry.get("pid")):
            merged[index] = {**entry, "result": "interrupted"}
    return merged


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
