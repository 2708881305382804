"""Read-modify-write of the shared runs file, safe beside other writers.

Our own processes (consoles, CLI actions, the simulate engine) take turns through an
advisory lock on the sibling ``<runs file>.lock``, held only around one read-modify-write.
Writers that do not take the lock (the Tandem server) are handled by compare-and-swap:
the file's identity (inode, size, mtime_ns) is taken from the very descriptor the bytes
were read from, and just before the atomic rename the path is checked to still name that
file. If a foreign writer replaced it in between, the change is redone from a fresh read.

Rules that hold for every transaction:

- A file that cannot be parsed, or that has a newer ``schema_version``, is never written:
  :class:`~tandem_tui.source.file.store.RunsFileError` is raised before ``change`` runs.
- If ``change`` raises, nothing is written.
- A ``change`` that leaves the runs as they were writes nothing, not even a reformat.
  By default that is told by serializing the runs before and after ``change``; a caller
  whose ``change`` only assigns, adds or deletes entries of ``document.entries`` (never
  changes an entry's value in place) says so with ``assigns_only=True``, and then only
  the entries it touched are compared: one serialization of the file instead of two,
  none when nothing changed. Such a change reads the entries it looks up with ``[]`` or
  ``get`` exactly as serde_json would; values it reaches by iterating may hold orjson's
  reading of a ``-0`` (``0``) or of an integer beyond 64 bits (a float), so it relies
  only on their strings. (A file in the layout we write is parsed by orjson alone, and
  the bytes prove that reading exact: see :func:`_apply_assigned`.)
- ``change`` may run several times (once per attempt), each time on a fresh document, so
  it must not have side effects outside the document it is given.
- A missing runs file is an error (``no runs file``) unless ``create=True``, which starts
  from an empty document; the engine uses that, operator actions never do.
- Temp files left by writers that died mid-write are removed by the next transaction.
"""

from __future__ import annotations

import ctypes
import fcntl
import errno
import os
import sys
import threading
import time
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson

from tandem_tui.source.file.atomic import (
    adopt_parent_owner,
    fsync_directory,
    remove_stale_temp_files,
    write_durable_temp,
)
from tandem_tui.domain.clock import Clock
from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.one_shot import keep_until_exit
from tandem_tui.source.file.store import (
    RunsDocument,
    RunsFileError,
    orjson_reads_exactly,
    parse_runs_document,
    read_error_line,
    serialize_entry_bytes,
    serialize_runs_file_bytes,
)
from tandem_tui.source.file.regular import file_kind, open_regular

T = TypeVar("T")

DEFAULT_LOCK_TIMEOUT_S = 10.0
#: Extra lock wait per MB of runs file (see :func:`lock_timeout_for`).
LOCK_WAIT_S_PER_MB = 0.5
DEFAULT_MAX_ATTEMPTS = 50


class RunsFileBusy(RunsFileError):
    """The runs file could not be updated: the lock stayed taken or foreign writes kept winning."""


class _Conflict(Exception):
    """The runs file changed between our read and our rename."""


@dataclass(frozen=True)
class FileIdentity:
    """What tells one version of the file from another without re-reading it."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, result: os.stat_result) -> FileIdentity:
        return cls(result.st_ino, result.st_size, result.st_mtime_ns)


@dataclass(frozen=True)
class TransactionOutcome(Generic[T]):
    """What ``change`` returned, whether the file was rewritten, and after how many reads."""

    value: T
    written: bool
    attempts: int


def lock_path(runs_file: str | os.PathLike[str]) -> Path:
    runs_file = Path(runs_file)
    return runs_file.with_name(runs_file.name + ".lock")


@contextmanager
def writer_lock(
    runs_file: str | os.PathLike[str],
    *,
    timeout_s: float | None = None,
    create: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the advisory writer lock of ``runs_file``; re-entrant within one thread.

    Callers that need several reads and writes to be one step (an action on an archived
    run reads the hot file, then its shard) hold it around all of them; :func:`transact`
    inside then re-enters it. The holder's pid is written into the lock file; a writer
    that has to wait calls ``on_wait`` with one line saying who holds it and for how
    long it will wait (``timeout_s``, default :func:`lock_timeout_for` the file), then
    raises :class:`RunsFileBusy` if it is still held.
    """
    path = lock_path(runs_file)
    if not path.parent.is_dir():
        # Taking the lock would create the directory: an action on a runs file that
        # does not exist must leave no trace.
        raise RunsFileError(f"{runs_file}: no runs file (no directory {path.parent})")
    if not create:
        # Nor a lock file beside a runs file that is not there (or is a FIFO, a
        # directory...): the action is refused below anyway, so refuse it here first.
        _require_regular_file(Path(runs_file))
    if timeout_s is None:
        timeout_s = lock_timeout_for(Path(runs_file))
    held = _held_locks()
    key = os.path.abspath(path)
    if key in held:
        # Re-entered in the same thread: a second flock of the same file would deadlock.
        fd, depth = held[key]
        held[key] = (fd, depth + 1)
        try:
            yield
        finally:
            held[key] = (fd, held[key][1] - 1)
        return
    fd = _acquire(path, Path(runs_file), timeout_s=timeout_s, on_wait=on_wait)
    held[key] = (fd, 1)
    try:
        yield
    finally:
        del held[key]
        _release(fd)


_local = threading.local()


def _held_locks() -> dict[str, tuple[int, int]]:
    """This thread's writer locks: lock path -> (descriptor, nesting depth)."""
    held = getattr(_local, "held", None)
    if held is None:
        held = _local.held = {}
    return held


def lock_timeout_for(runs_file: Path) -> float:
    """How long to wait for the writer lock: longer for a bigger file, whose every
    read-modify-write takes longer (four actions queued on a 100 MB file need ~a minute)."""
    try:
        size = os.stat(runs_file).st_size
    except OSError:
        size = 0
    return DEFAULT_LOCK_TIMEOUT_S + LOCK_WAIT_S_PER_MB * size / 1_000_000


def lock_holder(path: Path) -> int | None:
    """The pid the lock file records as holding it (the holder writes it), if any."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _acquire(path: Path, runs_file: Path, *, timeout_s: float, on_wait: Callable[[str], None] | None) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise RunsFileError(f"{path}: cannot take the writer lock ({error.strerror or error})") from None
    try:
        adopt_parent_owner(path, fd)
        if not _try_flock(fd):
            holder = lock_holder(path)
            who = f"another writer (pid {holder})" if holder else "another writer"
            if on_wait is not None:
                on_wait(f"{runs_file}: {who} holds {path.name}; waiting up to {timeout_s:.0f} s")
            # Waiting on another process: wall time is what is being waited for.
            deadline = time.monotonic() + timeout_s
            delay = 0.005
            while not _try_flock(fd):
                if time.monotonic() >= deadline:
                    raise RunsFileBusy(
                        f"{runs_file}: {who} held {path.name} for more than {timeout_s:g} s; nothing written"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        # Say who holds it, for anyone who has to wait.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _release(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)
    except OSError:
        pass
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _require_regular_file(path: Path) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise RunsFileError(f"{path}: no runs file") from None
    except OSError as error:
        raise RunsFileError(read_error_line(path, error)) from None
    if stat.S_ISDIR(mode):
        raise RunsFileError(read_error_line(path, IsADirectoryError(errno.EISDIR, "is a directory")))
    if not stat.S_ISREG(mode):
        raise RunsFileError(f"{path}: is {file_kind(mode)}, not a regular file")


def transact(
    runs_file: str | os.PathLike[str],
    change: Callable[[RunsDocument], T],
    *,
    clock: Clock | None = None,
    lock_timeout_s: float | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    create: bool = False,
    assigns_only: bool = False,
) -> T:
    """Apply ``change`` to the latest content of ``runs_file`` and persist it; returns its value.

    ``clock`` is accepted so that callers pass the same clock they give ``change``; the
    transaction itself needs no time. See the module docstring for the rules (and for
    ``assigns_only``).
    """
    return transact_outcome(
        runs_file,
        change,
        clock=clock,
        lock_timeout_s=lock_timeout_s,
        max_attempts=max_attempts,
        create=create,
        assigns_only=assigns_only,
    ).value


def transact_outcome(
    runs_file: str | os.PathLike[str],
    change: Callable[[RunsDocument], T],
    *,
    clock: Clock | None = None,
    lock_timeout_s: float | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    create: bool = False,
    assigns_only: bool = False,
) -> TransactionOutcome[T]:
    """:func:`transact`, also saying whether the file was written and how many reads it took."""
    del clock  # part of the interface; time is the business of ``change``
    path = Path(runs_file)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    with writer_lock(path, timeout_s=lock_timeout_s, create=create):
        remove_stale_temp_files(path)
        for attempt in range(1, max(max_attempts, 1) + 1):
            try:
                value, written = _attempt(path, change, create=create, assigns_only=assigns_only)
            except _Conflict:
                continue
            return TransactionOutcome(value=value, written=written, attempts=attempt)
    raise RunsFileBusy(
        f"{path}: another writer replaced the file during each of {max_attempts} attempts; nothing written"
    )


def _attempt(
    path: Path, change: Callable[[RunsDocument], T], *, create: bool, assigns_only: bool
) -> tuple[T, bool]:
    try:
        handle = open_regular(path)  # held open until the rename, see below
    except FileNotFoundError:
        if not create:
            raise RunsFileError(f"{path}: no runs file") from None
        return _apply(path, change, raw=b"", read_identity=None, assigns_only=assigns_only)
    except OSError as error:
        raise RunsFileError(read_error_line(path, error)) from None
    # Keeping the descriptor open pins the inode we read: it cannot be freed and reused by
    # a foreign writer's new file, so an equal inode at check time really is our file.
    with handle:
        identity = FileIdentity.of(os.fstat(handle.fileno()))
        raw = handle.read()
        return _apply(path, change, raw=raw, read_identity=identity, assigns_only=assigns_only)


def _apply(
    path: Path,
    change: Callable[[RunsDocument], T],
    *,
    raw: bytes,
    read_identity: FileIdentity | None,
    assigns_only: bool = False,
) -> tuple[T, bool]:
    # Parsing a big file allocates millions of acyclic dicts and strings; with the cyclic
    # collector on, the collections they trigger walk all of them in vain (at 10k runs
    # 1.49 s of an action's 3.36 s; 0.58 s with the collector paused).
    with gc_paused():
        return _apply_parsed(path, change, raw=raw, read_identity=read_identity, assigns_only=assigns_only)


def _apply_parsed(
    path: Path,
    change: Callable[[RunsDocument], T],
    *,
    raw: bytes,
    read_identity: FileIdentity | None,
    assigns_only: bool,
) -> tuple[T, bool]:
    if assigns_only:
        return _apply_assigned(path, change, raw=raw, read_identity=read_identity, exact=not raw.startswith(_HEAD))
    document = _parse(path, raw)
    # The entries as they would be written, before and after the change: equal bytes
    # mean unchanged runs. The "after" is what is written, so two serializations in
    # all (a compact fingerprint on each side cost a third, 0.1 s of a 10k action).
    before = serialize_runs_file_bytes(document.entries)
    value = change(document)
    data = serialize_runs_file_bytes(document.entries)
    if data == before:
        # Unchanged runs: no write, not even to re-lay-out a legacy or foreign file.
        return value, False
    _write(path, data, read_identity)
    return value, True


def _apply_assigned(
    path: Path,
    change: Callable[[RunsDocument], T],
    *,
    raw: bytes,
    read_identity: FileIdentity | None,
    exact: bool,
) -> tuple[T, bool]:
    """The ``assigns_only`` transaction. A file that starts as we write it is first read by
    orjson alone (``exact=False``): the scans for ``-0`` and long integers cost a third
    of the parse at 10k runs. That reading is then proved exact by the bytes: the
    entries the change looked up, serialized, are what the file holds; and a written
    file equals the one read outside the one entry that changed (a ``-0`` or a long
    integer read by orjson would serialize as other bytes). What cannot be proved so is
    scanned for as before; if the scan finds one, the change is redone from the exact
    parse (a change may run several times, see the module docstring)."""
    document = _parse(path, raw, exact=exact)
    entries = _TrackedEntries(document.entries)
    document.entries = entries
    value = change(document)
    kept = document.entries is entries
    if kept and not entries.changed():
        # Unchanged runs: no write, not even to re-lay-out a legacy or foreign file.
        if exact or entries.read_exactly(raw) or orjson_reads_exactly(raw):
            return value, False
        return _apply_assigned(path, change, raw=raw, read_identity=read_identity, exact=True)
    data = serialize_runs_file_bytes(document.entries)
    if not exact and not (kept and entries.written_exactly(raw, data)) and not orjson_reads_exactly(raw):
        return _apply_assigned(path, change, raw=raw, read_identity=read_identity, exact=True)
    _write(path, data, read_identity)
    return value, True


def _write(path: Path, data: bytes, read_identity: FileIdentity | None) -> None:
    try:
        _replace_if_unchanged(path, data, read_identity)
    except _Conflict:
        raise
    except OSError as error:
        raise RunsFileError(f"{path}: cannot write ({error.strerror or error}); nothing written") from None


#: How the runs file we write begins (the server's serde_json ``to_string_pretty`` too).
_HEAD = b'{\n  "schema_version": 1,\n  "runs": {'


def _key_line(key: str) -> bytes:
    """Where an entry starts in the file we write: its key at four spaces (only the runs'
    keys sit there; a newline in the file is always layout, JSON strings escape theirs)."""
    return b"\n    " + orjson.dumps(key) + b": "


def _entry_text(key: str, value_bytes: bytes) -> bytes:
    """An entry as it stands in the file we write: its key line and its serialization
    indented two levels."""
    return _key_line(key) + value_bytes.replace(b"\n", b"\n    ")


_ABSENT = b""  # no entry: no entry serializes to no bytes


class _TrackedEntries(dict):
    """The entries of a document, remembering the serialization each touched entry had.

    An entry is touched when it is read with ``[]`` or ``get`` or written in any way; its
    bytes are taken at that first touch, before ``change`` could alter it through the
    value it was handed. Values reached by iterating (``items()``, ``values()``) are not
    remembered: under ``assigns_only`` they are read, never changed in place.
    """

    def __init__(self, entries: dict[str, Any]) -> None:
        super().__init__(entries)
        self._order = list(entries)
        self._before: dict[Any, bytes] = {}
        self._after: dict[Any, bytes] = {}

    def _touch(self, key: Any) -> None:
        if key not in self._before:
            self._before[key] = serialize_entry_bytes(dict.__getitem__(self, key)) if key in self else _ABSENT

    def changed(self) -> bool:
        """Whether serializing the entries now gives other bytes than before ``change``."""
        if list(self) != self._order:  # an entry added, removed, or moved to the end
            return True
        self._after = {
            key: serialize_entry_bytes(dict.__getitem__(self, key)) if key in self else _ABSENT
            for key in self._before
        }
        return any(self._after[key] != before for key, before in self._before.items())

    def read_exactly(self, raw: bytes) -> bool:
        """Whether every entry looked up stands in ``raw`` as its serialization, so it was
        read exactly (``raw`` begins as we write the file, so only the runs' keys sit at
        four spaces)."""
        if not raw.startswith(_HEAD):
            return False
        for key, before in self._before.items():
            if before == _ABSENT:
                continue
            text = _entry_text(key, before)
            at = raw.find(_key_line(key))
            if at < 0 or not raw.startswith(text, at) or raw[at + len(text) : at + len(text) + 1] not in (b",", b"\n"):
                return False
        return True

    def written_exactly(self, raw: bytes, data: bytes) -> bool:
        """Whether ``data`` (the entries serialized after the change, which ran after
        :meth:`changed`) is ``raw`` with one entry's text replaced, that text being the
        serialization of the entry as it was read: then every entry was read exactly and
        ``raw`` was in our layout. Compared without copying either (memcmp)."""
        if list(self) != self._order:
            return False
        differing = [key for key, before in self._before.items() if self._after.get(key) != before]
        if len(differing) != 1:
            return False
        key = differing[0]
        before, after = self._before[key], self._after[key]
        if before == _ABSENT or after == _ABSENT:
            return False
        old, new = _entry_text(key, before), _entry_text(key, after)
        at = data.find(_key_line(key))
        if at < 0 or len(raw) - len(old) != len(data) - len(new):
            return False
        view = memoryview(data)
        return (
            raw.startswith(view[:at])
            and raw.startswith(old, at)
            and raw.endswith(view[at + len(new) :])
        )

    def __getitem__(self, key: Any) -> Any:
        self._touch(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._touch(key)
        return super().get(key, default)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._touch(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self._touch(key)
        super().__delitem__(key)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._touch(key)
        return super().setdefault(key, default)

    def pop(self, key: Any, *default: Any) -> Any:
        self._touch(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[Any, Any]:
        key, value = super().popitem()
        self._before.setdefault(key, serialize_entry_bytes(value))
        return key, value

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> _TrackedEntries:
        self.update(other)
        return self

    def clear(self) -> None:
        for key in list(self):
            self._touch(key)
        super().clear()


def _parse(path: Path, raw: bytes, *, exact: bool = True) -> RunsDocument:
    try:
        document = parse_runs_document(raw, exact=exact)
    except RunsFileError as error:
        raise RunsFileError(f"{path}: {error}; nothing written") from None
    # An action's process ends with it: the parsed file is left to that end (60 ms of
    # a 10k-run pause was freeing it); a longer process (the console) frees it as usual.
    keep_until_exit(document)
    return document


# --- the swap ----------------------------------------------------------------------
#
# A check-then-rename leaves a window between the check and the rename in which a
# foreign rename is silently overwritten. Where the kernel can swap two names atomically
# (Linux renameat2 RENAME_EXCHANGE), we check, swap, and check the file we displaced: if
# it is not the one we read, a foreign write got in after the first check, and we swap
# it straight back. What remains is second order: a foreign writer that *reads* in the
# instant between the two swaps builds on our discarded content. Elsewhere the plain
# check-then-rename applies.

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _load_renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()


def _rename2(source: Path, target: Path, flags: int) -> bool:
    """renameat2 with ``flags``; False when this kernel or file system cannot do it."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(target))


def _identity_at(path: Path) -> FileIdentity | None:
    try:
        return FileIdentity.of(os.stat(path))
    except FileNotFoundError:
        return None


def _replace_if_unchanged(path: Path, text: str | bytes, read_identity: FileIdentity | None) -> None:
    """Atomically put ``text`` at ``path`` if ``path`` is still the file that was read.

    Raises :class:`_Conflict`, leaving ``path`` as the other writer left it, otherwise.
    """
    temp = write_durable_temp(path, text)
    try:
        if read_identity is None:
            committed = _create_if_absent(temp, path)
        else:
            committed = _swap_if_unchanged(temp, path, read_identity)
        if not committed:
            raise _Conflict
    finally:
        # After a swap the temp name holds the displaced old file; either way it goes.
        temp.unlink(missing_ok=True)
    fsync_directory(path.parent)


def _create_if_absent(temp: Path, path: Path) -> bool:
    try:
        if _rename2(temp, path, _RENAME_NOREPLACE):
            return True
    except FileExistsError:
        return False
    if _identity_at(path) is not None:
        return False
    os.replace(temp, path)
    return True


def _swap_if_unchanged(temp: Path, path: Path, read_identity: FileIdentity) -> bool:
    # Most foreign writes land during our (slow, fsynced) temp write: catch those with a
    # plain check, so a swap, and the instant in which readers could see our stale
    # content before we swap back, only happens for writes inside the last microseconds.
    if _identity_at(path) != read_identity:
        return False
    try:
        swapped = _rename2(temp, path, _RENAME_EXCHANGE)
    except FileNotFoundError:
        return False  # the file we read was deleted
    if not swapped:
        if _identity_at(path) != read_identity:
                return False
        os.replace(temp, path)
        return True
    if _identity_at(temp) == read_identity:
        return True
    _rename2(temp, path, _RENAME_EXCHANGE)
    return False
