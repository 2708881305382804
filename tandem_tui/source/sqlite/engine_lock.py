"""Is an engine live on this store? Read from ``stateful_runtime.engine.lock``, never taken.

Upstream ``orchestration_store/engine_lock.rs`` (0.6.9 .. 0.7.2): the engine holds an
exclusive ``flock`` on the file for its whole life and writes
``{"pid", "acquired_at_ms", "process_start_hint": "linux-start:<ticks>"}`` into it; the
file stays after the engine exits. An engine is live when the kernel lists a lock on
the file (``/proc/locks``), or when the recorded pid exists and its start time (field 22
of ``/proc/<pid>/stat``) matches the hint, the engine's own ``is_alive`` rule. This is
the small check the SQLite source needs for its route; the console's wider engine
detection (``/global/health``) belongs to ``tandem_tui.source.engine``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

_HINT_PREFIXES = ("linux-start:", "unix-start:", "windows-start:")


@dataclass(frozen=True)
class EngineLockState:
    """``live`` is ``None`` when it cannot be told (actions are then refused)."""

    live: bool | None
    why: str
    pid: int | None = None


def engine_lock_state(lock_path: str | os.PathLike[str], *, proc: str | os.PathLike[str] = "/proc") -> EngineLockState:
    path = Path(lock_path)
    try:
        raw = path.read_bytes()
        st = path.stat()
    except FileNotFoundError:
        return EngineLockState(False, "no engine lock file")
    except OSError as error:
        return EngineLockState(None, f"cannot read {path.name}: {error.strerror or error}")
    if _flock_held(st, Path(proc)):
        return EngineLockState(True, f"{path.name} is locked by a running engine", _pid_of(raw))
    try:
        owner = json.loads(raw.decode("utf-8"))
        pid = owner["pid"]
        hint = owner.get("process_start_hint")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise ValueError("pid")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
        if not raw.strip():
            return EngineLockState(False, f"{path.name} is empty and not locked")
        return EngineLockState(None, f"{path.name} holds no owner tandem-tui can read")
    try:
        stat = (Path(proc) / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return EngineLockState(False, f"engine pid {pid} has exited", pid)
    except OSError as error:
        return EngineLockState(None, f"cannot check engine pid {pid}: {error.strerror or error}", pid)
    after_name = stat.rsplit(")", 1)[-1].split()
    identity = f"linux-start:{after_name[19]}" if len(after_name) > 19 else None
    if not isinstance(hint, str) or not hint.startswith(_HINT_PREFIXES) or hint == identity:
        return EngineLockState(True, f"engine pid {pid} is running", pid)
    return EngineLockState(False, f"pid {pid} now belongs to another process", pid)


def _pid_of(raw: bytes) -> int | None:
    try:
        pid = json.loads(raw.decode("utf-8")).get("pid")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) else None


def _flock_held(st: os.stat_result, proc: Path) -> bool:
    """Whether ``/proc/locks`` lists a lock on this inode (Linux; elsewhere: not known)."""
    try:
        text = (proc / "locks").read_text()
    except OSError:
        return False
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in text.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:123456 0 EOF"; blocked waiters carry "->".
        if "->" in fields:
            continue
        if len(fields) >= 6 and fields[5] == wanted:
            return True
    return False
