"""The operator audit log: one JSON line per operator action, allowed or refused.

The log lives next to the history shards, at
``<runs file dir>/automation-runs/<runs file stem>/operator-audit.jsonl``. Each line is
appended with a single ``O_APPEND`` write and fsynced, so lines from concurrent consoles
never interleave and a line reported written survives a crash.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

AUDIT_FILE_NAME = "operator-audit.jsonl"
AUDIT_SOURCE = "tandem-tui"

#: ``failed``: the route could not be used (a live engine unreachable, or refusing our token).
AuditResult = Literal["ok", "refused", "failed"]
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
    route: AuditRoute = "file"
    #: With the engine route: the engine's URL and answer (HTTP status, error code).
    engine_url: str | None = None
    engine_status: int | None = None
    engine_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.route == "file":
            # The file route's lines stay as they were, plus the route.
            for name in ("engine_url", "engine_status", "engine_code"):
                data.pop(name)
        return data


def audit_log_path(runs_file: str | os.PathLike[str]) -> Path:
    """Where the audit log of this runs file lives (beside its history shards)."""
    runs_file = Path(runs_file)
    return runs_file.parent / "automation-runs" / runs_file.stem / AUDIT_FILE_NAME


def append_audit(runs_file: str | os.PathLike[str], entry: AuditEntry | Mapping[str, Any]) -> Path:
    """Append one line for ``entry`` to the runs file's audit log; returns the log's path."""
    path = audit_log_path(runs_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = entry.as_dict() if isinstance(entry, AuditEntry) else dict(entry)
    data.setdefault("source", AUDIT_SOURCE)
    line = (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        # One write call per line: O_APPEND makes it land whole at the end of the file.
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_audit(runs_file: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every audit line of this runs file, oldest first; an absent log is empty.

    A torn last line (a crash mid-append on a file system without atomic appends) is
    skipped rather than failing the whole read.
    """
    path = audit_log_path(runs_file)
    try:
        raw = path.read_text(encoding="utf-8")
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
