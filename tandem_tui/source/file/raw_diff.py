"""Which entries of a runs file changed between two reads, here or in a helper process.

The watcher re-validates only entries whose raw JSON changed. Finding them means parsing
the whole file, and a 59 MB parse holds the GIL for about half a second: in the console
that is half a second in which no key press is answered. :class:`HelperDiffer` does the
parse and the comparison in a child process and hands back only the changed entries
(a few kilobytes on a typical write); :class:`LocalDiffer` does the same in-process.

Both are two-phase: :meth:`diff` proposes, and the caller :meth:`commit`\\ s once it has
validated what changed (or :meth:`rollback`\\ s when validation failed), so the baseline
never runs ahead of the runs the caller holds.
"""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.source.file.store import RunsFileError, parse_runs_document


@dataclass(frozen=True)
class EntryDiff:
    """Every key in file order, and the raw value of each changed or new one."""

    keys: list[str]
    changed: dict[str, Any]


class Differ(Protocol):
    def diff(self, raw: bytes) -> EntryDiff: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class LocalDiffer:
    """Parse and compare in this process."""

    def __init__(self) -> None:
        self._committed: dict[str, Any] = {}
        self._pending: dict[str, Any] | None = None

    def diff(self, raw: bytes) -> EntryDiff:
        entries = parse_runs_document(raw).entries
        self._pending = entries
        return _compare(self._committed, entries)

    def commit(self) -> None:
        if self._pending is not None:
            self._committed, self._pending = self._pending, None

    def rollback(self) -> None:
        self._pending = None

    def close(self) -> None:
        self._committed = {}


class HelperDiffer:
    """Parse and compare in a child process; only changed entries cross the pipe.

    Raises :class:`RunsFileError` for an unusable file, like :class:`LocalDiffer`. If
    the helper dies, the next :meth:`diff` falls back to an in-process differ (whose
    empty baseline reports every entry changed, so nothing is missed). A plain
    subprocess speaking length-prefixed pickles over its stdin and stdout: it needs
    nothing from the parent (multiprocessing's spawn trips over a Textual app's fds).
    """

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from tandem_tui.source.file.raw_diff import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._fallback: LocalDiffer | None = None

    @property
    def in_helper(self) -> bool:
        return self._fallback is None

    @property
    def pid(self) -> int:
        return self._process.pid

    def diff(self, raw: bytes) -> EntryDiff:
        if self._fallback is None:
            try:
                _send(self._process.stdin, ("diff", raw))
                kind, payload = _receive(self._process.stdout)
            except (EOFError, OSError):
                self._fall_back()
            else:
                if kind == "error":
                    raise RunsFileError(payload)
                return payload
        assert self._fallback is not None
        return self._fallback.diff(raw)

    def prime(self, raw: bytes) -> None:
        """Make ``raw`` the helper's baseline without a reply (the caller read it itself)."""
        self._tell("prime", raw)

    def commit(self) -> None:
        self._tell("commit")

    def rollback(self) -> None:
        self._tell("rollback")

    def close(self) -> None:
        if self._fallback is None:
            try:
                _send(self._process.stdin, ("stop", None))
            except OSError:
                pass
        for stream in (self._process.stdin, self._process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _tell(self, what: str, payload: Any = None) -> None:
        if self._fallback is not None:
            if what != "prime":  # the fallback starts empty: it reports everything once
                getattr(self._fallback, what)()
            return
        try:
            _send(self._process.stdin, (what, payload))
        except OSError:
            self._fall_back()

    def _fall_back(self) -> None:
        self._fallback = LocalDiffer()
        self._process.kill()
        self._process.wait()


def _compare(previous: dict[str, Any], entries: dict[str, Any]) -> EntryDiff:
    changed = {key: value for key, value in entries.items() if previous.get(key, _MISSING) != value}
    return EntryDiff(list(entries), changed)


_MISSING = object()


def serve(stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """The helper's loop: one :class:`LocalDiffer`, driven over stdin and stdout."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    differ = LocalDiffer()
    while True:
        try:
            command, payload = _receive(stdin)
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if command == "stop":
            return
        if command == "prime":
            try:
                with gc_paused():
                    differ.diff(payload)
                differ.commit()
            except (RunsFileError, ValueError):
                differ.rollback()  # an empty baseline: the next diff reports everything
        elif command == "commit":
            differ.commit()
        elif command == "rollback":
            differ.rollback()
        elif command == "diff":
            try:
                with gc_paused():
                    reply: tuple[str, Any] = ("ok", differ.diff(payload))
            except (RunsFileError, ValueError) as error:
                reply = ("error", str(error))
            _send(stdout, reply)


_LENGTH = struct.Struct(">Q")


def _send(stream: BinaryIO | None, message: Any) -> None:
    if stream is None:
        raise OSError("helper pipe closed")
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: BinaryIO | None) -> Any:
    if stream is None:
        raise EOFError
    header = _read_exactly(stream, _LENGTH.size)
    return pickle.loads(_read_exactly(stream, _LENGTH.unpack(header)[0]))


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) < size:
        raise EOFError("helper pipe closed")
    return data
