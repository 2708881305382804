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
GIL; :class:`LocalDiffer` does it in-process. The helper keeps its memory near the
interpreter's own, whatever the file's size: it reads the file (and the bytes it is
primed with) in bounded chunks through :class:`~tandem_tui.source.file.entry_scan.ChunkedScan`,
only checks that each changed span is one JSON value, and sends back that value's bytes,
which the console parses (as the full parse would: ``store.load_json``). It does not
import the store (nor pydantic-core and the domain models) until it has to parse a whole
file, which only a layout the scanner does not read (or a bad file) makes it do.

Both are two-phase: :meth:`diff` proposes, and the caller :meth:`commit`\\ s once it has
validated what changed (or :meth:`rollback`\\ s when validation failed), so the baseline
never runs ahead of the runs the caller holds.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import orjson

from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.source.file.entry_scan import CHUNK_SIZE, ChunkedScan, scan_entries

if TYPE_CHECKING:
    import subprocess
    import threading

# The store (and with it pydantic-core and the domain models, two thirds of a bare helper's
# memory) is imported where it is used, so that the helper process never loads it while
# the scanner reads the file.


@dataclass(frozen=True)
class EntryDiff:
    """Every key in file order, and the raw value of each changed or new one."""

    keys: list[str]
    changed: dict[str, Any]


@dataclass(frozen=True)
class RawDiff:
    """What the helper sends back: every key in file order, and for each changed or new
    entry either its value's bytes exactly as they lie in the file (``parsed`` False:
    each is one JSON value, checked) or its parsed value (``parsed`` True, after a full
    parse)."""

    keys: list[str]
    changed: dict[str, Any]
    parsed: bool

    def entry_diff(self) -> EntryDiff:
        """The changed values parsed as the full parse parses them."""
        if self.parsed:
            return EntryDiff(self.keys, self.changed)
        from tandem_tui.source.file.store import RUNS_FILE_NAME, load_json

        return EntryDiff(self.keys, {key: load_json(data, RUNS_FILE_NAME) for key, data in self.changed.items()})


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
#: What a ``keep`` returns for a span that is not one JSON value.
INVALID = object()
#: One member of a scan: ``(key, window, start, end)``, the value being ``window[start:end]``.
Member = tuple[str, bytes, int, int]


def _supported_schema_version() -> int:
    from tandem_tui.source.file.store import RUNS_SCHEMA_VERSION

    return RUNS_SCHEMA_VERSION


class LocalDiffer:
    """Find changed entries in this process: scan and hash, parse only what changed.

    ``max_schema_version`` is the newest envelope the store reads (the store's own
    constant when not given; the helper process is told it, so that it need not import
    the store): a file claiming a newer one goes to the full parse, which words the refusal.
    """

    def __init__(self, max_schema_version: int | None = None) -> None:
        self._committed = _EMPTY
        self._pending: _Baseline | None = None
        self._max_schema_version = max_schema_version
        #: How many diffs fell back to parsing the whole file (for tests and benches).
        self.full_parses = 0
        #: How much of a file :meth:`raw_diff_file` and :meth:`prime_stream` read at a time.
        self.chunk_size = CHUNK_SIZE

    def diff(self, raw: bytes) -> EntryDiff:
        diff = self._diff_spans(raw, _value_loader(), parsed=True)
        if diff is None:
            self.full_parses += 1
            diff = self._diff_parsed(raw)
        return diff.entry_diff()

    def raw_diff(self, raw: bytes) -> RawDiff:
        """As :meth:`diff`, with changed values as the file's bytes where the scan read them."""
        diff = self._diff_spans(raw, _checked_bytes, parsed=False)
        if diff is None:
            self.full_parses += 1
            diff = self._diff_parsed(raw)
        return diff

    def raw_diff_file(self, path: str | os.PathLike[str]) -> tuple[int, RawDiff]:
        """Read the regular file at ``path`` in chunks and diff it: ``(mtime_ns, diff)``.

        Holds one chunk and the changed values' bytes, never the whole file, unless the
        scan fails: then the same open file is read again whole and fully parsed (what
        a file rewritten in place says by then is as good a read as any).
        """
        from tandem_tui.source.file.regular import open_regular

        with open_regular(path) as handle:
            fd = handle.fileno()
            mtime_ns = os.fstat(fd).st_mtime_ns
            scan = ChunkedScan(None, self._committed.lengths, self.chunk_size, pread=self._pread_of(fd))
            diff = self._diff_members(lambda: scan.schema_version, scan.entries(), lambda: scan.complete, _checked_bytes)
            del scan
            if diff is None:
                self.full_parses += 1
                handle.seek(0)
                diff = self._diff_parsed(handle.read())
        return mtime_ns, diff

    def _pread_of(self, fd: int) -> Callable[[int, int], bytes]:
        """How the chunked scan reads the open file (a seam for tests that change the file
        between two reads)."""
        return lambda size, offset: os.pread(fd, size, offset)

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
        if not self.prime_stream(_reader_of(raw)):
            self.diff(raw)
            self.commit()

    def prime_stream(self, read: Callable[[int], bytes], *, vouched: bool = False) -> bool:
        """Make the bytes ``read`` gives the committed baseline, reading them in chunks.

        Returns whether it could: when the scanner does not read them (or a span does not
        parse) the baseline is left empty, so the next diff reports every entry, and the
        caller may prime with a full parse instead. Reads only as far as it needs to tell.
        ``vouched``: the sender parsed every span itself (a console's first read), so
        they are hashed without being parsed again here.
        """
        keep = _nothing if vouched else _checked_only
        return self.prime_scan(ChunkedScan(read, chunk_size=self.chunk_size), keep)

    def prime_scan(
        self, scan: ChunkedScan, keep: Callable[[bytes, int, int], Any], members: Iterable[Member] | None = None
    ) -> bool:
        """:meth:`prime_stream` from ``scan``: each member (``scan.entries()``, or
        ``members`` drawn from them) hashed and given to ``keep``, which returns ``None``
        or :data:`INVALID` (see :meth:`_diff_members`). Whether the baseline is made."""
        self._committed = _EMPTY
        self._pending = None
        entries = scan.entries() if members is None else members
        primed = self._diff_members(lambda: scan.schema_version, entries, lambda: scan.complete, keep)
        if primed is None:
            return False
        self.commit()
        return True

    def _diff_spans(self, raw: bytes, keep: Callable[[bytes, int, int], Any], *, parsed: bool) -> RawDiff | None:
        scanned = scan_entries(raw, self._committed.lengths)
        if scanned is None:
            return None
        members = ((key, raw, start, end) for key, start, end in scanned.spans)
        return self._diff_members(lambda: scanned.schema_version, members, lambda: True, keep, parsed=parsed)

    def _diff_members(
        self,
        schema_version: Callable[[], int | None],
        members: Iterable[Member],
        complete: Callable[[], bool],
        keep: Callable[[bytes, int, int], Any],
        *,
        parsed: bool = False,
    ) -> RawDiff | None:
        """Hash each member's value and ``keep`` (check, and keep what it returns for) each
        whose digest is not the committed one; ``None`` when the members are not the file's
        (the scan gave up, a span is not one JSON value, or the version is newer).
        ``parsed``: what ``keep`` returns is the parsed value, not the bytes."""
        previous = self._committed.digests if self._committed.kind == "span" else {}
        digests: dict[str, int] = {}
        lengths: dict[str, int] = {}
        changed: dict[str, Any] = {}
        checked_version = False
        for key, window, start, end in members:
            if not checked_version:
                version = schema_version()
                if version is not None and version > self._max_version():
                    return None  # the full parse words the refusal
                checked_version = True
            digest = hash(memoryview(window)[start:end])
            if previous.get(key) == digest:
                # The same bytes as a span that parsed before. A duplicate key: the later
                # value wins (at the first one's position), and it is this unchanged one.
                changed.pop(key, None)
            else:
                kept = keep(window, start, end)
                if kept is INVALID:
                    return None  # not one JSON value: the scanner cut wrong, or the file is bad
                if kept is not None:
                    changed[key] = kept
            digests[key] = digest
            lengths[key] = end - start
        if not complete():
            return None
        if not checked_version:
            version = schema_version()
            if version is not None and version > self._max_version():
                return None
        self._pending = _Baseline("span", digests, lengths)
        return RawDiff(list(digests), changed, parsed=parsed)

    def _max_version(self) -> int:
        if self._max_schema_version is None:
            self._max_schema_version = _supported_schema_version()
        return self._max_schema_version

    def _diff_parsed(self, raw: bytes) -> RawDiff:
        from tandem_tui.source.file.store import parse_runs_document

        entries = parse_runs_document(raw).entries
        digests = {key: _value_digest(value) for key, value in entries.items()}
        previous = self._committed.digests if self._committed.kind == "value" else {}
        changed = {key: entries[key] for key, digest in digests.items() if previous.get(key) != digest}
        self._pending = _Baseline("value", digests)
        return RawDiff(list(entries), changed, parsed=True)


def _value_loader() -> Callable[[bytes, int, int], Any]:
    """``keep`` for :meth:`LocalDiffer._diff_members`: the span's value, parsed as the full
    parse would, or ``INVALID`` if it is not one value."""
    from tandem_tui.source.file.store import RUNS_FILE_NAME, load_json

    def load(window: bytes, start: int, end: int) -> Any:
        try:
            return load_json(window[start:end], RUNS_FILE_NAME)
        except ValueError:  # RunsFileError is one
            return INVALID

    return load


def _checked_bytes(window: bytes, start: int, end: int) -> Any:
    """The span's bytes if they are one JSON value (``load_json`` accepts exactly what
    orjson does), else ``INVALID``."""
    data = window[start:end]
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return INVALID
    return data


def _checked_only(window: bytes, start: int, end: int) -> Any:
    """``None`` (nothing to keep) if the span is one JSON value, else ``INVALID``."""
    try:
        orjson.loads(memoryview(window)[start:end])
    except orjson.JSONDecodeError:
        return INVALID
    return None


def _nothing(window: bytes, start: int, end: int) -> Any:
    """``keep`` for a vouched prime: nothing kept, nothing checked."""
    return None


def _reader_of(raw: bytes) -> Callable[[int], bytes]:
    """``read(n)`` over ``raw``, handing out slices of it (each a copy of at most ``n`` bytes)."""
    view = memoryview(raw)
    position = 0

    def read(size: int) -> bytes:
        nonlocal position
        chunk = bytes(view[position : position + size])
        position += len(chunk)
        return chunk

    return read


def read_with_mtime(path: str | os.PathLike[str]) -> tuple[bytes, int]:
    """The file's bytes and the mtime of the very file they were read from (a regular
    file only: a FIFO put at the path must not hang the helper)."""
    from tandem_tui.source.file.regular import read_regular

    return read_regular(path)


def _value_digest(value: Any) -> int:
    try:
        data = orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits: orjson does not write those
        import json

        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return hash(data)


class HelperDiffer:
    """Scan and compare in a child process; only changed entries cross the pipe.

    Raises :class:`~tandem_tui.source.file.store.RunsFileError` for an unusable file,
    like :class:`LocalDiffer`. If the helper dies, the next :meth:`diff` falls back to an
    in-process differ (whose empty baseline reports every entry changed, so nothing is
    missed). A plain subprocess speaking length-prefixed pickles over its stdin and
    stdout: it needs nothing from the parent (multiprocessing's spawn trips over a
    Textual app's fds). The changed entries come back as their bytes, parsed here.
    """

    def __init__(self, *, warm: bool = False, read_first: str | os.PathLike[str] | None = None) -> None:
        """Start the helper. ``warm``: it loads the models at once, for the first read that
        is to come (``read_first``) while this process is busy with something else (a
        console's start: the helper's imports happen meanwhile).

        ``read_first``: the helper makes a console's first read of this runs file at
        once (:mod:`~tandem_tui.source.file.first_read`), from the file opened here and
        handed to it (:attr:`first_read_file`: both processes read the very same file);
        its messages are then owed (:meth:`first_read_messages`). A file that cannot be
        opened is not read: the usual read says why."""
        import subprocess

        handle: BinaryIO | None = None
        if read_first is not None:
            from tandem_tui.source.file.regular import open_regular

            try:
                handle = open_regular(read_first)
            except OSError:
                handle = None
        self._process: subprocess.Popen[bytes] = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from tandem_tui.source.file.raw_diff import serve; "
                f"serve(max_schema_version={_supported_schema_version()}, warm={bool(warm)})",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            pass_fds=() if handle is None else (handle.fileno(),),
        )
        self._fallback: LocalDiffer | None = None
        #: The thread writing the bytes :meth:`prime` was given (the helper scans them as
        #: they arrive); every other message waits for it.
        self._priming: threading.Thread | None = None
        self._priming_failed = False
        #: The path of the first read the helper was told to make, while its messages
        #: are owed: they come before any other reply.
        self.first_read_path: str | None = None
        #: The runs file the first read reads, open here too (the helper has it under the
        #: same number); the one who takes the first read closes it (:meth:`close` does too).
        self.first_read_file = handle
        if handle is not None and read_first is not None:
            try:
                _send(self._process.stdin, ("first_read", (os.fspath(read_first), handle.fileno())))
            except OSError:
                self._fall_back()
            else:
                self.first_read_path = os.fspath(read_first)

    @property
    def in_helper(self) -> bool:
        return self._fallback is None

    @property
    def pid(self) -> int:
        return self._process.pid

    def diff(self, raw: bytes) -> EntryDiff:
        if self._fallback is None:
            try:
                self._await_prime()
                self._drop_owed()
                _send(self._process.stdin, ("diff", raw))
                kind, payload, values = _receive_reply(self._process.stdout)
            except (EOFError, OSError):
                self._fall_back()
            else:
                return _reply_diff(kind, payload, values)[1]
        assert self._fallback is not None
        return self._fallback.diff(raw)

    def diff_file(self, path: str | os.PathLike[str]) -> tuple[int, EntryDiff]:
        """Read ``path`` in the helper and diff it: ``(mtime_ns, diff)`` of what was read.

        The file's bytes never enter this process (only the changed values' do). Raises
        the ``OSError`` the read raised, or ``RunsFileError`` for an unusable file, like
        :meth:`diff`.
        """
        if self._fallback is None:
            try:
                self._await_prime()
                self._drop_owed()
                _send(self._process.stdin, ("diff_file", os.fspath(path)))
                kind, payload, values = _receive_reply(self._process.stdout)
            except (EOFError, OSError):
                self._fall_back()
            else:
                return _reply_diff(kind, payload, values)
        raw, mtime_ns = read_with_mtime(path)
        return mtime_ns, self.diff(raw)

    def prime(self, raw: bytes) -> None:
        """Make ``raw`` the helper's baseline without a reply (the caller read it itself).

        The helper reads ``raw`` from the pipe in chunks as it scans, and a thread here
        writes it, so this returns at once (the next message waits until the helper has
        it all; ``raw`` is held until then). If the helper's scanner does not read
        ``raw``, its baseline stays empty and its next diff reports every entry.
        """
        if self._fallback is not None:
            return  # the fallback starts empty: it reports everything once
        try:
            self._await_prime()
            self._drop_owed()
        except (OSError, EOFError):
            self._fall_back()
            return
        stdin = self._process.stdin

        def write() -> None:
            try:
                _send(stdin, ("prime", raw))
            except (OSError, ValueError):  # ValueError: the pipe was closed here meanwhile
                self._priming_failed = True

        import threading

        self._priming = threading.Thread(target=write, name="helper-prime", daemon=True)
        self._priming.start()

    def prime_feed(self, size: int) -> PrimeFeed:
        """Make the ``size`` bytes the caller is about to read the helper's baseline, as
        it reads them (:class:`PrimeFeed`): the caller holds one chunk at a time, never
        the whole file, and the helper's digests are of exactly the bytes it read.
        """
        if self._fallback is None:
            try:
                self._await_prime()
                self._drop_owed()
                stdin = self._process.stdin
                if stdin is None:
                    raise OSError("helper pipe closed")
                stdin.flush()
                feed = PrimeFeed(size, stdin.fileno())
            except (OSError, ValueError, EOFError):  # ValueError: the pipe was closed here meanwhile
                self._fall_back()
            else:
                return feed
        return PrimeFeed(size, None)  # the fallback starts empty: it reports everything once

    def first_read_messages(self) -> Iterator[tuple[str, Any, bytes | None]]:
        """The owed first read's messages as they come: batches, then its end (see
        :mod:`~tandem_tui.source.file.first_read`); nothing when none is owed. Stops
        early if the helper dies (it is then replaced by the fallback)."""
        from tandem_tui.source.file.first_read import END

        while self.first_read_path is not None and self._fallback is None:
            try:
                message = _receive_reply(self._process.stdout)
            except (EOFError, OSError):
                self.first_read_path = None
                self._fall_back()
                return
            if message[0] == END:
                self.first_read_path = None
            yield message

    def _drop_owed(self) -> None:
        """Read a first read nobody asked for, so that the next reply is the next
        request's."""
        for _ in self.first_read_messages():
            pass
        if self._fallback is not None:
            raise OSError("helper gone")

    def _await_prime(self, timeout: float | None = None) -> None:
        """Wait until :meth:`prime`'s bytes are all in the pipe; ``OSError`` if they cannot be."""
        thread = self._priming
        if thread is None:
            return
        thread.join(timeout)
        if thread.is_alive():
            raise OSError("helper not reading")
        self._priming = None
        if self._priming_failed:
            raise OSError("helper pipe closed")

    def commit(self) -> None:
        self._tell("commit")

    def rollback(self) -> None:
        self._tell("rollback")

    def close(self) -> None:
        import subprocess

        if self.first_read_file is not None:
            self.first_read_file.close()
            self.first_read_file = None
        if self._fallback is None:
            try:
                # A helper still taking a prime has nothing worth a wait: stopped at once,
                # the prime's write fails and its thread ends. Nor has one still making a
                # first read (at 100k runs it would take seconds to read a stop).
                if self.first_read_path is not None:
                    raise OSError("helper busy with a first read")
                self._await_prime(timeout=0)
                _send(self._process.stdin, ("stop", None))
            except OSError:
                self._process.kill()
                self._await_prime_end()
        for stream in (self._process.stdin, self._process.stdout):
            try:
                if stream is not None:
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
            self._await_prime()
            self._drop_owed()
            _send(self._process.stdin, (what, payload))
        except (OSError, EOFError):
            self._fall_back()

    def _fall_back(self) -> None:
        self._fallback = LocalDiffer()
        self._process.kill()
        self._process.wait()
        self._await_prime_end()

    def _await_prime_end(self) -> None:
        """Join the prime's thread once the helper is gone (its write then fails at once)."""
        if self._priming is not None:
            self._priming.join()
            self._priming = None


class PipeBacklog:
    """Writes to a pipe without waiting for its reader: what the pipe cannot take yet
    waits here, up to :data:`FEED_BACKLOG` bytes, beyond which the writer waits for the
    reader rather than piling a whole file up. The pipe is made non-blocking meanwhile
    and blocking again by :meth:`finish`, which hands over the rest. :attr:`failed`:
    the reader is gone (what was not written is dropped)."""

    def __init__(self, fd: int | None) -> None:
        self.failed = fd is None
        self._fd = fd
        self._backlog: deque[memoryview] = deque()
        self._waiting = 0
        if fd is not None:
            _widen_pipe(fd)
            os.set_blocking(fd, False)

    def write(self, data: bytes) -> None:
        if self.failed or not data:
            return
        self._backlog.append(memoryview(data))
        self._waiting += len(data)
        self._push(block=self._waiting > FEED_BACKLOG)

    def send(self, command: str, payload: Any, data: bytes | None = None) -> None:
        """One message as :func:`_send` frames it (``data`` travels raw after it)."""
        head = pickle.dumps((command, payload), protocol=pickle.HIGHEST_PROTOCOL)
        self.write(_HEADER.pack(len(head), _NO_RAW if data is None else len(data)) + head)
        if data is not None:
            self.write(data)

    def finish(self) -> None:
        if self._fd is None:
            return
        self._push(block=True)
        try:
            os.set_blocking(self._fd, True)
        except OSError:
            self.failed = True
        self._fd = None

    def _push(self, *, block: bool) -> None:
        fd = self._fd
        while self._backlog and not self.failed and fd is not None:
            head = self._backlog[0]
            try:
                written = os.write(fd, head)
            except BlockingIOError:
                if not block:
                    return
                select.select([], [fd], [])
                continue
            except OSError:  # the reader is gone: what is left is dropped
                self.failed = True
                self._backlog.clear()
                self._waiting = 0
                return
            self._waiting -= written
            if written == len(head):
                self._backlog.popleft()
            else:
                self._backlog[0] = head[written:]


class PrimeFeed:
    """The bytes of a prime, handed over chunk by chunk (:meth:`HelperDiffer.prime_feed`).

    The caller :meth:`feed`s each chunk as it reads it and calls :meth:`finish` at the
    end; they go into the helper's pipe as one ``prime`` message of the announced
    ``size``. Written from the caller's thread without blocking (a writer thread took
    ~0.2 s of a 10k-run first read in GIL hand-overs, one per chunk): see
    :class:`PipeBacklog`. Fewer bytes than announced (the
    file shrank while read) are made up with spaces: that baseline is of bytes the caller
    did not read, so the caller must not rely on it (it reads the file again and primes
    anew, which replaces it). The helper takes the spans as *vouched* (hashed, not parsed
    again): the caller must likewise prime anew unless it parsed every span it was fed.
    :attr:`failed` says the helper could not take them (it died).
    """

    def __init__(self, size: int, fd: int | None) -> None:
        self.size = size
        self.fed = 0
        self._pipe = PipeBacklog(fd)
        if fd is not None:
            # Vouched: the caller parses every span it reads and primes again from a
            # checked read if any does not parse (RunsWatcher._stream_first_read_from_file).
            data = pickle.dumps(("prime", "vouched"), protocol=pickle.HIGHEST_PROTOCOL)
            self._pipe.write(_HEADER.pack(len(data), size) + data)

    @property
    def failed(self) -> bool:
        return self._pipe.failed

    def feed(self, chunk: bytes) -> None:
        if self.failed or not chunk:
            return
        chunk = chunk[: self.size - self.fed]
        self.fed += len(chunk)
        self._pipe.write(chunk)

    def finish(self) -> None:
        """Hand over the rest and make the pipe blocking again (the next messages wait
        for nothing: the whole prime is in the pipe)."""
        if self.fed < self.size:
            self.feed(b" " * (self.size - self.fed))
        self._pipe.finish()


#: Bytes a :class:`PipeBacklog` lets wait for its pipe before the writer waits.
FEED_BACKLOG = 8 * 1024 * 1024

#: Linux's ``F_SETPIPE_SZ``: a pipe of 1 MiB (the unprivileged maximum) lets the helper
#: fall a few chunks behind without anything waiting here.
_F_SETPIPE_SZ = 1031


def _widen_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, 1 << 20)
    except (ImportError, OSError):
        pass  # another system, or a lower limit: the backlog waits a little more


def _reply_diff(kind: str, payload: Any, values: bytes | None) -> tuple[int, EntryDiff]:
    """A diff reply as ``(mtime_ns, diff)``; the helper's errors raised as they were.

    Changed values that come as bytes lie one after the other in ``values``; the reply
    says each one's key and length.
    """
    if kind == "error":
        from tandem_tui.source.file.store import RunsFileError

        raise RunsFileError(payload)
    if kind == "oserror":
        raise OSError(*payload)
    mtime_ns, keys, changed, parsed = payload
    if not parsed:
        assert values is not None
        sized, changed, offset = changed, {}, 0
        for key, size in sized:
            changed[key] = values[offset : offset + size]
            offset += size
    return mtime_ns, RawDiff(keys, changed, parsed).entry_diff()


def serve(
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    *,
    max_schema_version: int | None = None,
    warm: bool = False,
) -> None:
    """The helper's loop: one :class:`LocalDiffer`, driven over stdin and stdout.

    It imports the models when a first read judges entries (``warm``: at once) and the
    store only when a file must be parsed whole; ``max_schema_version`` is the store's
    supported version, passed in so that it need not.
    """
    if warm:
        import tandem_tui.domain.run_summary  # noqa: F401  # and the models: a first read's
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    differ = LocalDiffer(max_schema_version)
    while True:
        try:
            command, payload, raw_size = _receive_head(stdin)
            if command == "prime":
                # Scanned as it arrives: the file's bytes are never all in this process.
                read = _bounded_reader(stdin, raw_size)
                try:
                    with gc_paused():
                        differ.prime_stream(read, vouched=payload == "vouched")
                except ValueError:
                    differ.close()  # an empty baseline: the next diff reports everything
                finally:
                    while read(1 << 20):
                        pass  # what the scan did not need (it gave up early)
                continue
            if raw_size != _NO_RAW:
                payload = _read_exactly(stdin, raw_size)
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if command == "stop":
            return
        if command == "first_read":
            from tandem_tui.source.file.first_read import read_first

            stdout.flush()
            out = PipeBacklog(stdout.fileno())
            path, fd = payload
            try:
                read_first(differ, path, fd, out)
            except (OSError, ValueError):  # a read that failed, or went wrong in a way no check foresaw
                from tandem_tui.source.file.first_read import END, FirstReadEnd

                differ.close()  # an empty baseline: the next diff reports everything
                out.send(END, FirstReadEnd(False, 0, None, None, None))
            out.finish()
            if out.failed:
                return  # the console is gone
            payload = None
            _release_freed_memory()
            continue
        if command == "commit":
            differ.commit()
        elif command == "rollback":
            differ.rollback()
        elif command in ("diff", "diff_file"):
            full_parses = differ.full_parses
            try:
                with gc_paused():
                    if command == "diff":
                        mtime_ns, diff = None, differ.raw_diff(payload)
                    else:
                        mtime_ns, diff = differ.raw_diff_file(payload)
                if diff.parsed:
                    reply: tuple[str, Any] = ("ok", (mtime_ns, diff.keys, diff.changed, True))
                    values: list[bytes] = []
                else:
                    # The values' bytes follow the reply unpickled: a pickle would copy
                    # them all once more (the whole file's worth when every entry changed).
                    sized = [(key, len(data)) for key, data in diff.changed.items()]
                    reply = ("ok", (mtime_ns, diff.keys, sized, False))
                    values = list(diff.changed.values())
            except OSError as error:
                reply, values = ("oserror", (error.errno, error.strerror)), []
            except ValueError as error:  # RunsFileError is one
                reply, values = ("error", str(error)), []
            payload = diff = None  # the changed values are not kept between requests
            big = sum(map(len, values)) > _TRIM_AFTER or differ.full_parses > full_parses
            _send(stdout, reply, values)
            del reply, values
            if big:
                _release_freed_memory()
        payload = None  # the file's bytes are not kept between requests


#: After a reply with more changed bytes than this (or a full parse), the freed memory is
#: handed back to the system: thousands of freed values lie between the baseline's
#: strings, which malloc does not give back on its own (a 10k-run file whose entries all
#: changed left the helper at 76 MB resident; 17 MB after a trim).
_TRIM_AFTER = 8 * 1024 * 1024


def _release_freed_memory() -> None:
    """``malloc_trim(0)`` where the C library has it (glibc); nothing elsewhere."""
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (ImportError, OSError, AttributeError):
        return
    trim(0)


#: Each message: the lengths of its pickled ``(command, payload)`` and of a raw payload
#: that follows it unpickled (``_NO_RAW`` if none). A file's bytes travel raw: pickling
#: them would copy a big file once more on each side of the pipe.
_HEADER = struct.Struct(">QQ")
_NO_RAW = 2**64 - 1


def _send(stream: BinaryIO | None, message: tuple[str, Any], parts: list[bytes] | None = None) -> None:
    """Write ``message``; a ``bytes`` payload, or ``parts``, travel raw after it."""
    if stream is None:
        raise OSError("helper pipe closed")
    command, payload = message
    if parts is None and isinstance(payload, bytes):
        parts, payload = [payload], None
    data = pickle.dumps((command, payload), protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data), sum(map(len, parts)) if parts is not None else _NO_RAW))
    stream.write(data)
    for part in parts or ():
        stream.write(part)
    stream.flush()


def _receive_head(stream: BinaryIO | None) -> tuple[str, Any, int]:
    """A message's command and pickled payload, and the size of the raw bytes that follow
    (``_NO_RAW`` if none), which are left in the stream."""
    if stream is None:
        raise EOFError
    size, raw_size = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    command, payload = pickle.loads(_read_exactly(stream, size))
    return command, payload, raw_size


def _receive_reply(stream: BinaryIO | None) -> tuple[str, Any, bytes | None]:
    """A message's command, pickled payload and raw bytes (``None`` if none)."""
    command, payload, raw_size = _receive_head(stream)
    if raw_size == _NO_RAW:
        return command, payload, None
    assert stream is not None
    return command, payload, _read_exactly(stream, raw_size)


def _bounded_reader(stream: BinaryIO, size: int) -> Callable[[int], bytes]:
    """``read(n)`` over the next ``size`` bytes of ``stream``; ``EOFError`` if it ends first."""
    left = 0 if size == _NO_RAW else size

    def read(count: int) -> bytes:
        nonlocal left
        if left <= 0:
            return b""
        chunk = _read_exactly(stream, min(count, left))
        left -= len(chunk)
        return chunk

    return read


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) < size:
        raise EOFError("helper pipe closed")
    return data
