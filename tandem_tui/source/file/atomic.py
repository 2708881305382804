"""Atomic file replacement: a reader sees the old file or the new one, never a mix.

The text goes to a temp file in the target's own directory (so the rename stays on one
file system), is flushed and fsynced, then renamed over the target, and the directory is
fsynced so the rename itself survives a crash. Temp files are named
``.<name>.tmp-<pid>-<random>``: a later writer recognises the leftovers of a writer that
died mid-write by their pid and removes them with :func:`remove_stale_temp_files`.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

_DEFAULT_MODE = 0o644


def temp_prefix(path: Path) -> str:
    """The name every temp file for ``path`` starts with, before the pid."""
    return f".{path.name}.tmp-"


def temp_path_for(path: Path, pid: int | None = None) -> Path:
    """A fresh temp path next to ``path``, tagged with the writing process's pid."""
    pid = os.getpid() if pid is None else pid
    return path.with_name(f"{temp_prefix(path)}{pid}-{secrets.token_hex(6)}")


def write_text_atomic(
    path: str | os.PathLike[str],
    text: str,
    *,
    before_replace: Callable[[], None] | None = None,
) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically and durably.

    ``before_replace`` runs after the new content is on disk and just before the rename;
    a compare-and-swap uses it to check the target is still the file it read. If it
    raises, the temp file is removed, the target is untouched, and the exception
    propagates.
    """
    target = Path(path)
    temp = write_durable_temp(target, text)
    try:
        if before_replace is not None:
            before_replace()
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


def write_durable_temp(target: Path, text: str | bytes) -> Path:
    """``text`` (or its UTF-8 bytes, as given) written and fsynced to a fresh temp file
    beside ``target``; its path.

    The temp file keeps the permissions and the owner of the file it will replace (a
    new file gets the umask's say): the engine that owns a runs file must still be able
    to write it after we replaced it. When the owner cannot be kept (we are another,
    unprivileged user), :class:`OwnerNotKept` is raised before anything is replaced.
    On any failure the temp file is removed and the exception propagates.
    """
    data = text.encode("utf-8") if isinstance(text, str) else text
    temp = temp_path_for(target)
    try:
        before = target.stat()
    except FileNotFoundError:
        before = None
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _DEFAULT_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            if before is not None:
                _keep_owner(handle.fileno(), target, before)
                os.fchmod(handle.fileno(), stat.S_IMODE(before.st_mode))
            else:
                adopt_parent_owner(temp, handle.fileno())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def make_dirs(directory: Path) -> None:
    """``mkdir -p directory``, each directory made given its parent's owner
    (:func:`adopt_parent_owner`)."""
    missing = []
    path = Path(directory)
    while not path.is_dir() and path.parent != path:
        missing.append(path)
        path = path.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        adopt_parent_owner(path)


def adopt_parent_owner(path: Path, fd: int | None = None) -> None:
    """Give a file or directory we just created the owner of the directory it is in.

    Only root acts for another user: a lock file, an audit log, a shard or a month
    directory that root leaves root's own (mode 644/755) in an engine user's data
    directory can no longer be written by that engine, nor by its operator's
    ``tandem-tui``. Anyone else creates files as themselves, as the server would.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    try:
        parent = os.stat(Path(path).parent)
        mine = os.fstat(fd) if fd is not None else os.lstat(path)
        if (mine.st_uid, mine.st_gid) == (parent.st_uid, parent.st_gid):
            return
        if fd is not None:
            os.fchown(fd, parent.st_uid, parent.st_gid)
        else:
            os.lchown(path, parent.st_uid, parent.st_gid)
    except OSError:
        return  # best effort: the file is still usable by root and by its readers


class OwnerNotKept(PermissionError):
    """Replacing the file would give it another owner; nothing was replaced."""


def _keep_owner(fd: int, target: Path, before: os.stat_result) -> None:
    """Give the temp file at ``fd`` the owner and group of ``target`` (as read in ``before``)."""
    now = os.fstat(fd)
    if (now.st_uid, now.st_gid) == (before.st_uid, before.st_gid):
        return
    try:
        os.fchown(fd, before.st_uid, before.st_gid)
    except PermissionError:
        raise OwnerNotKept(
            errno.EPERM,
            f"it belongs to uid {before.st_uid} (gid {before.st_gid}) and replacing it as uid "
            f"{os.geteuid()} would change its owner; act as its owner",
            str(target),
        ) from None


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def pid_is_alive(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0 checks without sending)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(path: str | os.PathLike[str]) -> list[Path]:
    """Delete temp files for ``path`` left by writers that are no longer running.

    Temp files of live processes (including this one) are left alone: they may be
    mid-write. Returns the paths removed.
    """
    target = Path(path)
    pattern = re.compile(re.escape(temp_prefix(target)) + r"(\d+)-[0-9A-Za-z]+\Z")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or pid_is_alive(int(match.group(1))):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed.append(Path(entry.path))
    return removed
