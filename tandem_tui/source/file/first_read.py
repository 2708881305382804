"""A console's first read, made by the parse helper from the console's very start.

At 10k runs a console's first read had two processes scan and parse the whole file: the
console, to build its summaries, and the helper, to judge every entry and hash it for
the diffs to come (1.4 s of CPU on 2 cores before the first screen, the console's part
of it while Textual was still being set up). Now the console opens the runs file before
it imports Textual and starts the helper with it (``FileSource.warm_up``,
``HelperDiffer(read_first=...)``), and the helper reads it at once. In one pass it:

- scans it (:class:`~tandem_tui.source.file.entry_scan.ChunkedScan`) and hashes each
  entry: its baseline for the diffs to come, as a prime would make it;
- parses each entry and judges it as the server reads it, as orjson reads it
  (``judge_run_record``: ``parse_run_record``'s verdict, without building the run);
- sends, batch by batch as it goes, each entry's key, span and slim record
  (:func:`~tandem_tui.domain.run_summary.slim_record`), as JSON.

Meanwhile the console checks that orjson reads every number of the same open file as
serde does (:class:`NumbersCheck`, as far as the batches reach), and builds its summaries from the batches
as they come (``Summarizer.from_slim``): it never holds the file, nor scans or parses
its entries. The batches count only on the end message's word (:class:`FirstReadEnd`)
that the whole file was read as a layout the scanner knows and that every entry is
valid as it stands, with no duplicate key, and on the console's check; on any other word
the console reads the file the usual way, whose verdicts, recoveries and messages it keeps.

The helper writes without waiting for the console (:class:`~tandem_tui.source.file.raw_diff.PipeBacklog`):
the console reads the batches only once Textual is up, so up to
:data:`~tandem_tui.source.file.raw_diff.FEED_BACKLOG` bytes of them wait in the helper.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.source.file.entry_scan import ChunkedScan

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tandem_tui.source.file.raw_diff import LocalDiffer, Member, PipeBacklog

#: Entries per batch: a batch is ~0.25 MB of slim records at 10k hot runs, and a console
#: waiting for a stop (``q`` during the read) looks once per batch.
BATCH_ENTRIES = 256

#: How much of the file the console checks at a time (:class:`NumbersCheck`).
NUMBERS_CHUNK = 1 << 20

BATCH = "first_read_batch"
END = "first_read_end"


@dataclass(frozen=True)
class FirstReadEnd:
    """The helper's last word on a first read.

    ``plain``: the whole file was read as a layout the scanner knows, and every entry
    is valid as it stands and is in a batch (see the module docstring); ``validations``:
    how many entries it validated; ``identity``, ``content`` and ``mtime_ns``: the file
    it read as it was when the read began (``regular.file_identity``,
    :func:`content_of`); its content was the same when the read ended, else ``plain``
    is false.
    """

    plain: bool
    validations: int
    identity: tuple[int, int, int, int, int] | None
    content: tuple[int, int, int, int] | None
    mtime_ns: int | None


def content_of(status: os.stat_result) -> tuple[int, int, int, int]:
    """Which file, with which bytes, for two reads of one open file at the same time:
    device, inode, size and modification time. Not the change time, unlike
    ``regular.file_identity``: it moves when the file is renamed over (the engine saves
    several times a second, so mostly while a big file's first read is under way),
    which leaves its bytes as they were."""
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def read_first(differ: LocalDiffer, path: str, fd: int, out: PipeBacklog) -> None:
    """The helper's side: read the runs file open as ``fd`` (``path``, handed over by the
    console, see ``HelperDiffer``; closed here), make it ``differ``'s committed baseline
    (an empty one if the scanner does not read it), and send the batches and the end to
    ``out``."""
    from tandem_tui.domain.models import judge_run_record
    from tandem_tui.domain.run_summary import slim_record
    from tandem_tui.source.file.raw_diff import INVALID
    from tandem_tui.source.file.regular import file_identity

    differ.close()  # every entry is new to an empty baseline: each one is judged
    try:
        status = os.fstat(fd)
        scan = ChunkedScan(None, chunk_size=differ.chunk_size, pread=lambda size, offset: os.pread(fd, size, offset))
        batch: list[tuple[str, int, int, dict[str, Any]]] = []
        seen: set[str] = set()
        plain = True
        validations = 0
        at: list[Any] = [None, 0]  # the member being judged: its key, its window's offset

        def members() -> Iterator[Member]:
            for member in scan.entries():
                at[0], at[1] = member[0], scan.window_offset
                yield member

        def judge(window: bytes, start: int, end: int) -> Any:
            nonlocal plain, validations
            try:
                value = orjson.loads(memoryview(window)[start:end])
            except orjson.JSONDecodeError:
                return INVALID  # not one JSON value: the scanner cut wrong, or the file is bad
            key = at[0]
            if not plain:
                return None  # one refusal is the word; the rest is only hashed
            if key in seen:
                plain = False  # a duplicate key: the usual read words what serde does
                return None
            seen.add(key)
            try:
                judge_run_record(value)  # parse_run_record's verdict, without the run
            except ValueError:  # pydantic-core's ValidationError is one
                plain = False
                return None
            validations += 1
            offset = at[1]
            batch.append((key, offset + start, offset + end, slim_record(value)))
            if len(batch) >= BATCH_ENTRIES:
                out.send(BATCH, None, orjson.dumps(batch))
                batch.clear()
            return None

        with gc_paused():
            primed = differ.prime_scan(scan, judge, members())
        if batch:
            out.send(BATCH, None, orjson.dumps(batch))
        unchanged = content_of(os.fstat(fd)) == content_of(status)
    finally:
        os.close(fd)
    plain = plain and primed and unchanged
    out.send(END, FirstReadEnd(plain, validations, file_identity(status), content_of(status), status.st_mtime_ns))


class NumbersCheck:
    """The console's side of a first read's checks, made while the helper reads the same
    open file: that orjson reads every number in it as serde does (no ``-0``, no integer
    beyond 64 bits, :class:`~tandem_tui.source.file.store.ExactReading`), as the helper's
    judgements are of orjson's reading.

    The console checks the file as far as the batches it has taken reach
    (:meth:`upto`), so the check keeps pace with the helper and the helper's batches
    never pile up behind it; :meth:`finish` checks the rest.
    """

    def __init__(self, handle: BinaryIO) -> None:
        from tandem_tui.source.file.store import ExactReading

        self._fd = handle.fileno()
        self._content = content_of(os.fstat(self._fd))
        self._exactness = ExactReading()
        self._checked = 0

    def upto(self, offset: int) -> None:
        """Check the file's bytes up to ``offset`` (a chunk at a time)."""
        while self._checked < offset and self._exactness.exact:
            chunk = os.pread(self._fd, min(NUMBERS_CHUNK, offset - self._checked), self._checked)
            if not chunk:
                break
            self._exactness.feed(chunk)
            self._checked += len(chunk)

    def finish(self) -> tuple[int, int, int, int] | None:
        """Check the rest: the file's :func:`content_of` if every number is read exactly and
        the file did not change meanwhile; ``None`` otherwise (or if it may not be)."""
        self.upto(self._content[2])
        if not self._exactness.exact or content_of(os.fstat(self._fd)) != self._content:
            return None
        return self._content


def decode_batch(data: bytes) -> list[tuple[str, int, int, dict[str, Any]]]:
    """A batch as the helper sent it: ``(key, start, end, slim record)`` per entry."""
    return orjson.loads(data)
