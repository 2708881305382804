"""Opening a runs file or shard for reading: only a regular file, and never blocking.

A FIFO at the runs-file path used to hang every command (an action while holding the
writer lock) and leave the console "reading…" for ever: ``open()`` of a FIFO waits for a
writer. Opening with ``O_NONBLOCK`` returns at once for every kind of file, and the
type is checked on the descriptor itself (no window between a check and the open).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotARegularFile(OSError):
    """The path names something other than a regular file or a directory."""


def file_kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``open(path, "rb")`` for a regular file; anything else raises at once.

    A directory raises :class:`IsADirectoryError`, any other non-regular file
    :class:`NotARegularFile` (both ``OSError``, ``strerror`` says what it is); a symlink
    loop raises ``OSError`` with ``ELOOP`` as ``open`` does.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise NotARegularFile(errno.EINVAL, f"is {file_kind(mode)}, not a regular file", str(path))
        # Regular files ignore O_NONBLOCK for reads; clear it anyway for plain semantics.
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str]) -> tuple[bytes, int]:
    """The bytes of the regular file at ``path`` and its ``st_mtime_ns``."""
    with open_regular(path) as handle:
        mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
        return handle.read(), mtime_ns


def file_identity(status: os.stat_result) -> tuple[int, int, int, int, int]:
    """Which file, as it was: device, inode, size, and the modification and change
    times. The kernel moves the change time on every write and every ``utime``, and no
    writer can set it back; so, for a file left alone a while before it was identified
    (a later write then falls in a later tick of the clock), an equal identity means the
    same bytes."""
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
