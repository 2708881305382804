"""Which entries of a runs file changed between two reads, here or in a helper process.

The watcher re-validates only entries whose raw JSON changed. The engine rewrites the
whole file on every save, so finding them is the main cost of following a busy file.
:class:`LocalDiffer` finds them from the bytes: :func:`~tandem_tui.source.file.entry_scan.scan_entries`
gives each entry's byte span, each span is hashed, and only spans whose hash differs
from the last committed read are parsed. It keeps no parsed copy of the previous file,
only one hash per entry. When the scanner does not read the layout, or a span it found
does not parse, the whole file is parsed as before, so every verdict (and every error
message) is the full parse's.

:class:`HelperDiffer` does the same in a child process and hands back only the changed
entries (a few kilobytes on a typical write), so that nothing of it holds the console's
GIL; :class:`LocalDiffer` does it in-process.

Both are two-phase: :meth:`diff` proposes, and the caller :meth:`commit`\\ s once it has
validated what changed (or :meth:`rollback`\\ s when validation failed), so the baseline
never runs ahead of the runs the caller holds.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import orjson

from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.source.file.entry_scan import scan_entries
from tandem_tui.source.file.store import (
    RUNS_FILE_NAME,
    RUNS_SCHEMA_VERSION,
    RunsFileError,
    load_json,
    parse_runs_document,
)


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


@dataclass(frozen=True)
class _Baseline:
    """One digest per entry, and what was hashed: the value's bytes as they lie in the
    file (``"span"``, and only of spans that parsed as one JSON value) or its compact
    re-serialization after a full parse (``"value"``). Digests of different kinds are
    never compared (all entries count as changed once). A digest is Python's keyed
    64-bit SipHash of the bytes: twice as fast as sha1 here, an accidental equal digest
    for a changed entry is a 2**-64 chance, and digests are only compared within the
    process that made them."""

    kind: str
    digests: dict[str, int]
    #: Each value's length in bytes (``"span"`` only): the scanner's hints for the next read.
    lengths: dict[str, int] | None = None


_EMPTY = _Baseline("span", {})


class LocalDiffer:
    """Find changed entries in this process: scan and hash, parse only what changed."""

    def __init__(self) -> None:
        self._committed = _EMPTY
        self._pending: _Baseline | None = None
        #: How many diffs fell back to parsing the whole file (for tests and benches).
        self.full_parses = 0

    def diff(self, raw: bytes) -> EntryDiff:
        diff = self._diff_spans(raw)
        if diff is None:
            self.full_parses += 1
            diff = self._diff_parsed(raw)
        return diff

    def commit(self) -> None:
        if self._pending is not None:
            self._committed, self._pending = self._pending, None

    def rollback(self) -> None:
        self._pending = None

    def close(self) -> None:
        self._committed = _EMPTY
        self._pending = None

    def prime(self, raw: bytes) -> None:
        """Make ``raw`` the committed baseline without building a diff of it.

        Each span is still parsed (a baseline digest vouches that its bytes are one JSON
        value), but one at a time and dropped at once: the memory of one entry, not of
        the file's every value. A layout the scanner does not read gets a full parse.
        """
        scanned = scan_entries(raw)
        if (
            scanned is None
            or (scanned.schema_version or 0) > RUNS_SCHEMA_VERSION
            or any(_parse_span(raw, start, end) is _INVALID for _, start, end in scanned.spans)
        ):
            self.diff(raw)
        else:
            view = memoryview(raw)
            self._pending = _Baseline(
                "span",
                {key: hash(view[start:end]) for key, start, end in scanned.spans},
                {key: end - start for key, start, end in scanned.spans},
            )
        self.commit()

    def _diff_spans(self, raw: bytes) -> EntryDiff | None:
        scanned = scan_entries(raw, self._committed.lengths)
        if scanned is None:
            return None
        if scanned.schema_version is not None and scanned.schema_version > RUNS_SCHEMA_VERSION:
            return None  # the full parse words the refusal
        view = memoryview(raw)
        digests: dict[str, int] = {}
        for key, start, end in scanned.spans:
            digests[key] = hash(view[start:end])  # a later duplicate wins
        previous = self._committed.digests if self._committed.kind == "span" else {}
        last = {key: (start, end) for key, start, end in scanned.spans}
        if len(last) < len(scanned.spans):
            # A duplicate key: its last value wins, but every earlier one must be JSON too.
            for key, start, end in scanned.spans:
                if last[key] != (start, end) and _parse_span(raw, start, end) is _INVALID:
                    return None
        changed: dict[str, Any] = {}
        for key, digest in digests.items():
            if previous.get(key) == digest:
                continue  # the same bytes as a span that parsed before
            value = _parse_span(raw, *last[key])
            if value is _INVALID:
                return None  # not one JSON value: the scanner cut wrong, or the file is bad
            changed[key] = value
        self._pending = _Baseline("span", digests, {key: end - start for key, (start, end) in last.items()})
        return EntryDiff(list(digests), changed)

    def _diff_parsed(self, raw: bytes) -> EntryDiff:
        entries = parse_runs_document(raw).entries
        digests = {key: _value_digest(value) for key, value in entries.items()}
        previous = self._committed.digests if self._committed.kind == "value" else {}
        changed = {key: entries[key] for key, digest in digests.items() if previous.get(key) != digest}
        self._pending = _Baseline("value", digests)
        return EntryDiff(list(entries), changed)


_INVALID = object()


def _parse_span(raw: bytes, start: int, end: int) -> Any:
    """The span's value, parsed as the full parse would; ``_INVALID`` if it is not one value."""
    try:
        return load_json(raw[start:end], RUNS_FILE_NAME)
    except (RunsFileError, ValueError):
        return _INVALID


def read_with_mtime(path: str | os.PathLike[str]) -> tuple[bytes, int]:
    """The file's bytes and the mtime of the very file they were read from (a regular
    file only: a FIFO put at the path must not hang the helper)."""
    from tandem_tui.source.file.regular import read_regular

    return read_regular(path)


def _value_digest(value: Any) -> int:
    try:
        data = orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits: orjson does not write those
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return hash(data)


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

    def diff_file(self, path: str | os.PathLike[str]) -> tuple[int, EntryDiff]:
        """Read ``path`` in the helper and diff it: ``(mtime_ns, diff)`` of what was read.

        The file's bytes never enter this process. Raises the ``OSError`` the read
        raised, or :class:`RunsFileError` for an unusable file, like :meth:`diff`.
        """
        if self._fallback is None:
            try:
                _send(self._process.stdin, ("diff_file", os.fspath(path)))
                kind, payload = _receive(self._process.stdout)
            except (EOFError, OSError):
                self._fall_back()
            else:
                if kind == "error":
                    raise RunsFileError(payload)
                if kind == "oserror":
                    raise OSError(*payload)
                return payload
        raw, mtime_ns = read_with_mtime(path)
        return mtime_ns, self.diff(raw)

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
                    differ.prime(payload)
            except (RunsFileError, ValueError):
                differ.rollback()  # an empty baseline: the next diff reports everything
        elif command == "commit":
            differ.commit()
        elif command == "rollback":
            differ.rollback()
        elif command in ("diff", "diff_file"):
            try:
                with gc_paused():
                    if command == "diff":
                        reply: tuple[str, Any] = ("ok", differ.diff(payload))
                    else:
                        payload, mtime_ns = read_with_mtime(payload)
                        reply = ("ok", (mtime_ns, differ.diff(payload)))
            except OSError as error:
                reply = ("oserror", (error.errno, error.strerror))
            except (RunsFileError, ValueError) as error:
                reply = ("error", str(error))
            _send(stdout, reply)
            del reply
        payload = None  # the file's bytes are not kept between requests


#: Each message: the lengths of its pickled ``(command, payload)`` and of a raw payload
#: that follows it unpickled (``_NO_RAW`` if none). A file's bytes travel raw: pickling
#: them would copy a big file once more on each side of the pipe.
_HEADER = struct.Struct(">QQ")
_NO_RAW = 2**64 - 1


def _send(stream: BinaryIO | None, message: tuple[str, Any]) -> None:
    if stream is None:
        raise OSError("helper pipe closed")
    command, payload = message
    raw = payload if isinstance(payload, bytes) else None
    data = pickle.dumps((command, None if raw is not None else payload), protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data), len(raw) if raw is not None else _NO_RAW))
    stream.write(data)
    if raw is not None:
        stream.write(raw)
    stream.flush()


def _receive(stream: BinaryIO | None) -> tuple[str, Any]:
    if stream is None:
        raise EOFError
    size, raw_size = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    command, payload = pickle.loads(_read_exactly(stream, size))
    if raw_size != _NO_RAW:
        payload = _read_exactly(stream, raw_size)
    return command, payload


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) < size:
        raise EOFError("helper pipe closed")
    return data
