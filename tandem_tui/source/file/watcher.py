"""Turns the runs file and its history shards into a stream of :class:`Snapshot` objects.

The watcher reads the hot runs file incrementally: it keeps the raw JSON of every entry
from the last good read and re-validates only the entries whose raw value changed, so
a write that touches three runs out of ten thousand costs one ``json.loads`` plus three
pydantic-core validations. A file that cannot be read (half-written, truncated, invalid, a
newer schema, missing) never raises and never replaces the last good runs: the snapshot
keeps them and says, in one line, why it is stale. The next good write recovers.

What changed on disk is :mod:`tandem_tui.source.file.notify`'s business (which
directories are watched, how a replaced directory is noticed); this module turns what it
reports into snapshots and keeps the shard index current for the archive
(:meth:`RunsWatcher.shard_index`, which a following :class:`FileSource` lists the
archive from instead of scanning the shard tree again).

No UI here: the console runs :meth:`RunsWatcher.iterate` in a worker thread, and parsing
happens in whichever thread calls it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tandem_tui.domain.clock import Clock
from tandem_tui.domain.models import Run
from tandem_tui.domain.run_summary import Summarizer
from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.source.file.shards import ShardIndex, history_root
from tandem_tui.domain.snapshot import Freshness, MetricsSample, MetricsSeries, Snapshot
from tandem_tui.source.file.entry_scan import CHUNK_SIZE, ChunkedScan, scan_entries
from tandem_tui.source.file.first_read import BATCH as FIRST_READ_BATCH
from tandem_tui.source.file.first_read import END as FIRST_READ_END
from tandem_tui.source.file.first_read import FirstReadEnd, NumbersCheck, content_of, decode_batch
from tandem_tui.source.file.store import (
    RUNS_FILE_NAME,
    RUNS_SCHEMA_VERSION,
    RunsFileError,
    load_json,
    orjson_reads_exactly,
    parse_run_entry,
    read_error_line,
)
from tandem_tui.source.file.regular import file_identity, open_regular, read_regular
from tandem_tui.source.file.raw_diff import Differ, EntryDiff, HelperDiffer, LocalDiffer
from tandem_tui.source.file.notify import STEP_MS, AnyEvent, DirectoryWatch, subdirs
from tandem_tui.domain.view import RunsView


#: How long a file must have been left alone for its entries' spans to be kept: a later
#: write then falls in a later tick of the file system's clock (see ``file_identity``).
SPANS_MIN_AGE_NS = 1_000_000_000


@dataclass(frozen=True)
class EntrySpans:
    """Each entry's value as ``(start, end)`` byte offsets in the file of ``identity``."""

    identity: tuple[int, int, int, int, int]
    spans: dict[str, tuple[int, int]]


class _Stopped(Exception):
    """Told to stop during a followed first read (see :meth:`RunsWatcher.iterate`)."""


#: A followed first read checks for a stop every this many entries (a 100k-run file's
#: first read takes seconds; q meanwhile should not wait for it).
_STOP_CHECK_EVERY = 256


class RunsWatcher:
    """Reads the runs file into snapshots and follows it (and the shard tree) for changes.

    ``validations`` counts pydantic-core validations of run entries (a test asserts that only
    changed entries are re-validated); ``shard_generation`` goes up each time the shard
    index changes.
    """

    def __init__(
        self,
        runs_file: Path | str,
        *,
        clock: Clock,
        poll: bool = False,
        debounce_ms: int = 50,
        max_concurrent_runs: int | None = None,
        min_reload_interval_ms: int = 0,
        parse_in_helper: bool = False,
        summaries: bool = False,
        helper: HelperDiffer | None = None,
    ) -> None:
        """``helper``: a parse helper started earlier (``HelperDiffer(warm=True)``), for
        the streamed first read to use instead of starting one; closed with the watcher
        if unused."""
        self.runs_file = Path(runs_file).absolute()
        self._spare_helper = helper
        #: With ``summaries`` the snapshots hold each run as a
        #: :class:`~tandem_tui.domain.run_summary.RunSummary` (a console's memory: about
        #: a tenth of the validated record), except the runs in :attr:`keep_full`.
        self._summarize = Summarizer() if summaries else None
        #: Run ids whose next versions are kept whole (a run detail that is open); set
        #: from another thread, so always replaced, never changed in place.
        self.keep_full: frozenset[str] = frozenset()
        #: A followed console reads its first snapshot in chunks, priming the helper as
        #: it goes (``iterate`` sets it: a one-off ``load`` starts no helper).
        self._stream_first = False
        #: Where each entry's value lay in the file that read streamed, and which file
        #: that was (see :meth:`entry_spans`); dropped at the next read.
        self._spans: EntrySpans | None = None
        self.clock = clock
        self.poll = poll
        self.debounce_ms = max(int(debounce_ms), STEP_MS)
        #: A file rewritten several times a second is re-read at most this often (the
        #: first change after a quiet spell is read at once): each read of a large file
        #: holds the GIL for its whole parse, and a console shows one state a second.
        self.min_reload_interval_ms = max(int(min_reload_interval_ms), 0)
        self.reloads = 0
        self._last_reload_at: float | None = None
        self.max_concurrent_runs = (
            max_concurrent_runs if max_concurrent_runs is not None else _max_concurrent_from_env()
        )
        self.validations = 0
        #: Entries of a first read the helper made itself (:meth:`_first_read_from_helper`);
        #: they count in ``validations`` too.
        self.helper_read = 0
        self.shard_generation = 0
        self.series = MetricsSeries()
        #: Finds the entries whose raw JSON changed. With ``parse_in_helper`` a helper
        #: process parses every read after the first change, so a big file's parse never
        #: holds this process' GIL; it is started (and primed with the file as read
        #: here) only then, so that it does not compete with building the first screen.
        self._local = LocalDiffer()
        self._parse_in_helper = parse_in_helper
        self._helper: HelperDiffer | None = None
        self._helper_primed = False
        #: The bytes of the last good read, kept only until the helper takes them as its
        #: baseline (a console's first read keeps no baseline of its own, see
        #: :meth:`_stream_first_read`); the helper is primed right after the first
        #: snapshot has been handed out, or at the next read.
        self._unprimed: bytes | None = None
        #: Whether every run's ``run_id`` is its key (then no duplicate ids: a reload
        #: can update the hot set by key instead of rebuilding it).
        self._ids_are_keys = False
        self._runs_by_key: dict[str, Run] = {}
        self._runs: dict[str, Run] = {}
        self._last_bytes: bytes | None = None
        self._view: RunsView | None = None
        self._generation = 0
        self._read_at_ms: int | None = None
        self._mtime_ns: int | None = None
        self._error: str | None = None
        self._missing = False
        self._shard_index: ShardIndex | None = None
        self._dir_mtimes: dict[Path, int | None] = {}
        #: The identity of the file a first read made before the watch was set up
        #: read, until :meth:`iterate` has checked that the path still names it.
        self._read_before_watch: tuple[int, ...] | None = None
        self._stop = threading.Event()
        #: What ends the current ``iterate`` (its first read checks it as it goes).
        self._stopping: AnyEvent | None = None
        self._lock = threading.Lock()

    # -- reading --------------------------------------------------------------------

    @property
    def shard_index(self) -> ShardIndex:
        """The shard index, scanned on first use (directory listings only)."""
        if self._shard_index is None:
            root = self.shard_root
            # Directory mtimes first: a shard added during the scan moves them past this.
            self._remember_mtimes(root)
            self._shard_index = ShardIndex.scan(self.runs_file)
            self.shard_generation += 1
        return self._shard_index

    def shard_paths(self) -> list[Path]:
        """Every indexed shard (the latest month's for a run filed twice), read under the
        lock the follow loop updates the index with: safe from another thread."""
        with self._lock:
            return list(self.shard_index.values())

    def shard_month_stems(self) -> dict[tuple[str, str], list[str]]:
        """:meth:`ShardIndex.month_stems` of the followed index, under the same lock."""
        with self._lock:
            return self.shard_index.month_stems()

    @property
    def shard_root(self) -> Path:
        return history_root(self.runs_file)

    def load(self) -> Snapshot:
        """Read the runs file now and return a snapshot (stale on failure, never raising)."""
        with self._lock:
            changed, _ = self._reload()
            return self._snapshot(changed)

    def _reload(self) -> tuple[frozenset[str], bool]:
        """One read: the run ids it changed, and whether it says anything new."""
        now_ms = self.clock.now_ms()
        self._spans = None  # they were of the file as first read
        self._prime_helper()
        if self._helper is not None and self._helper_primed:
            return self._reload_in_helper(now_ms)
        if self._stream_first and self._helper is None and not self._runs_by_key:
            self._stream_first = False  # one try: after it, reads go the usual ways
            streamed = self._first_read_from_helper(now_ms)
            if streamed is None and self._helper is None:  # no first read was made there
                streamed = self._stream_first_read_from_file(now_ms)
            if streamed is not None:
                return streamed
        try:
            raw, mtime_ns = _read_bytes(self.runs_file)
        except OSError as error:
            return self._unreadable(error, now_ms)
        self._missing = False
        if raw == self._last_bytes and self._error is None:
            return frozenset(), False
        # Parsing, validating and (on a first read) rebuilding the view allocate millions
        # of acyclic objects; collections they trigger walk them all in vain (on 10k runs
        # the view's rebuild took 1.5 s with the collector on, most of it collections).
        with gc_paused():
            return self._apply(raw, mtime_ns, now_ms)

    def _reload_in_helper(self, now_ms: int) -> tuple[frozenset[str], bool]:
        """One read done by the helper: the file's bytes never enter this process."""
        assert self._helper is not None
        self._last_bytes = None  # not kept here: the helper's hashes say what is new
        with gc_paused():
            try:
                mtime_ns, diff = self._helper.diff_file(self.runs_file)
            except OSError as error:
                return self._unreadable(error, now_ms)
            except (RunsFileError, ValueError) as error:
                self._missing = False
                return self._stale(self._error_line(error), now_ms)
            self._missing = False
            if not diff.changed and self._error is None and diff.keys == list(self._runs_by_key):
                self._helper.commit()
                return frozenset(), False  # the same runs, as a read of the same bytes
            return self._apply(None, mtime_ns, now_ms, diff=diff)

    def _unreadable(self, error: OSError, now_ms: int) -> tuple[frozenset[str], bool]:
        self._missing = isinstance(error, FileNotFoundError)
        return self._stale(_one_line_os_error(self.runs_file, error), now_ms)

    def _error_line(self, error: Exception) -> str:
        message = str(error)
        # Envelope errors already name the file, in the server's own words.
        if self.runs_file.name not in message:
            message = f"{self.runs_file.name}: {message}"
        return _one_line(message)

    def _apply(
        self,
        raw: bytes | None,
        mtime_ns: int,
        now_ms: int,
        *,
        diff: EntryDiff | None = None,
        streamed: dict[str, Run] | None = None,
    ) -> tuple[frozenset[str], bool]:
        """Make a read the current state."""
        # Until a first good read, the view knows nothing worth keeping.
        first = self._read_at_ms is None or self._view is None
        try:
            if streamed is None and raw is not None and diff is None and self._parse_in_helper and not self._runs_by_key:
                streamed = self._stream_first_read(raw, now_ms)
            if streamed is not None:
                runs_by_key, changed_keys = streamed, set(streamed)
            else:
                runs_by_key, changed_keys = self._revalidate(raw, now_ms, diff)
        except (RunsFileError, ValueError) as error:
            return self._stale(self._error_line(error), now_ms)
        previous = self._runs
        current = self._hot_set(runs_by_key, changed_keys, first)
        if first:
            changed = frozenset(current) | frozenset(run.run_id for run in runs_by_key.values())
            if self._runs_by_key:
                changed |= frozenset(run.run_id for run in self._runs_by_key.values())
            self._view = RunsView.build(current, now_ms=now_ms, max_concurrent_runs=self.max_concurrent_runs)
        else:
            changed = self._changed_run_ids(changed_keys, runs_by_key)
            if changed:
                assert self._view is not None
                self._view.observe(previous, current, now_ms=now_ms, changed=changed)
        was_stale = self._error is not None
        self._runs_by_key = runs_by_key
        self._runs = current
        if self._parse_in_helper and not self._helper_primed and raw is not None:
            self._unprimed = raw
        self._last_bytes = raw if not self._helper_primed else None
        self._mtime_ns = mtime_ns
        self._read_at_ms = now_ms
        self._error = None
        self._record_sample(now_ms)
        return changed, bool(changed) or was_stale or first

    def _hot_set(self, runs_by_key: dict[str, Run], changed_keys: set[str], first: bool) -> dict[str, Run]:
        """The hot runs by id, as the server's load: sorted keys (the last one wins a
        duplicate run_id), and recovered-context runs still in flight are not in it.

        While every run's id is its key, a reload that only changed or removed runs
        updates a copy of the previous set (same order) instead of sorting every key
        again: O(changed), not O(runs), on each save of a big file.
        """
        previous = self._runs
        if not first and self._ids_are_keys and len(changed_keys) <= max(64, len(previous) // 8):
            current = dict(previous)
            for key in changed_keys:
                run = runs_by_key.get(key)
                if run is None or run.is_nonterminal_recovered_context_run:
                    current.pop(key, None)
                elif key in current and run.run_id == key:
                    current[key] = run
                else:
                    break  # a new run, or an id that is not its key: placed by a full rebuild
            else:
                return current
        self._ids_are_keys = all(run.run_id == key for key, run in runs_by_key.items())
        return {
            run.run_id: run
            for _, run in sorted(runs_by_key.items())
            if not run.is_nonterminal_recovered_context_run
        }

    def _stream_first_read(self, raw: bytes, now_ms: int) -> dict[str, Run] | None:
        """A console's first read: each entry parsed and validated in turn, its parsed
        value dropped at once, so the file's dicts never all exist together (at 100k runs
        they took 1.4 GB beside the models, and the freed arenas stayed in the RSS).

        No baseline is kept here: the helper process takes these bytes as its baseline
        (:meth:`_prime_helper`). Anything unusual (a layout the scanner does not read, a
        newer schema, a duplicate key, an entry that does not parse or validate) returns
        ``None`` and the read goes the usual way, whose verdicts and messages it keeps.
        """
        scanned = scan_entries(raw)
        if scanned is None or (scanned.schema_version or 0) > RUNS_SCHEMA_VERSION:
            return None
        # One scan of the whole file for a number orjson would not read as serde does
        # (-0, an integer beyond 64 bits) instead of one per entry: any such token of an
        # entry is one of the file (an entry starts with "{" and ends with "}"), so a
        # file without one has entries without one. Only a file with one (or something
        # that looks like one) is checked entry by entry, as before.
        exact = not orjson_reads_exactly(raw)
        members = ((key, raw, start, end) for key, start, end in scanned.spans)
        runs = self._validated_members(members, now_ms, exact=exact)
        if runs is None:
            return None
        self._local = LocalDiffer()  # no baseline: the helper gets one from these bytes
        return runs

    def _validated_members(
        self, members: Iterable[tuple[str, bytes, int, int]], now_ms: int, *, exact: bool = True
    ) -> dict[str, Run] | None:
        """Each member ``(key, window, start, end)`` parsed and validated in turn, or
        ``None`` at the first duplicate key or entry that does not parse or validate.
        ``exact=False``: the caller proved the members hold no ``-0`` or integer beyond
        64 bits, so orjson's reading is serde's (see ``store.load_json``)."""
        runs: dict[str, Run] = {}
        validations = 0
        for key, window, start, end in members:
            if key in runs:
                return None
            try:
                value = load_json(window[start:end], RUNS_FILE_NAME, exact=exact)
                runs[key] = self._lean(key, parse_run_entry(key, value, now_ms=now_ms))
            except (RunsFileError, ValueError):
                return None
            validations += 1
        self.validations += validations
        return runs

    def _stream_first_read_from_file(self, now_ms: int) -> tuple[frozenset[str], bool] | None:
        """A followed first read (a console's, ``status --watch``'s), from the file in
        chunks: this process never holds the file's bytes (at 10k runs they were a third
        of its peak memory), and the helper process, started now, takes each chunk as its
        baseline as it is read. Each entry's span is noted (:meth:`entry_spans`). A
        follow whose helper made the first read itself (:meth:`_first_read_from_helper`)
        comes here only when that helper could not open the file.

        ``None`` when anything is unusual (see :meth:`_stream_first_read`): the read is
        then made again the usual way (whose verdicts, recoveries and messages it keeps),
        and the helper primed again from it.
        """
        try:
            handle = open_regular(self.runs_file)
        except OSError:
            return None  # the usual read says why, in its words
        with handle:
            status = os.fstat(handle.fileno())
            helper, self._spare_helper = self._spare_helper or HelperDiffer(), None
            feed = helper.prime_feed(status.st_size)
            left = status.st_size

            def read(size: int) -> bytes:
                # Only the bytes the helper is told of: a file grown meanwhile is a
                # prefix that does not scan, not a mismatch between the two.
                nonlocal left
                chunk = handle.read(min(size, left)) if left > 0 else b""
                left -= len(chunk)
                feed.feed(chunk)
                return chunk

            spans: dict[str, tuple[int, int]] = {}
            stopping = self._stopping

            def members() -> Iterator[tuple[str, bytes, int, int]]:
                for count, (key, window, start, end) in enumerate(scan.entries(), 1):
                    if stopping is not None and count % _STOP_CHECK_EVERY == 0 and stopping.is_set():
                        raise _Stopped
                    offset = scan.window_offset
                    spans[key] = (offset + start, offset + end)
                    yield key, window, start, end

            stopped = False
            try:
                with gc_paused():
                    scan = ChunkedScan(read)
                    runs = self._validated_members(members(), now_ms)
                    while read(CHUNK_SIZE):
                        pass  # the helper is owed the rest
            except _Stopped:
                stopped = True
                raise
            except OSError:
                runs = None
            finally:
                if stopped:
                    helper.close()  # not the rest of the file: the console is going
                else:
                    feed.finish()
        self._helper = helper
        if runs is None or not scan.complete or (scan.schema_version or 0) > RUNS_SCHEMA_VERSION or feed.failed:
            return None  # the helper is primed again from the usual read
        self._helper_primed = True
        self._local = LocalDiffer()
        self._missing = False
        # A file changed in the last second is not indexed: two writes in place within
        # one tick of the file system's clock could leave it the same identity; so is a
        # polled (network) file, whose times come from another clock.
        if not self.poll and time.time_ns() - status.st_ctime_ns > SPANS_MIN_AGE_NS:
            self._spans = EntrySpans(file_identity(status), spans)
        with gc_paused():
            return self._apply(None, status.st_mtime_ns, now_ms, streamed=runs)

    def _first_read_from_helper(self, now_ms: int) -> tuple[frozenset[str], bool] | None:
        """A followed first read the spare helper made from the console's start
        (:mod:`~tandem_tui.source.file.first_read`): the summaries are built from its
        batches as they come, and kept on its word that every entry is valid as it
        stands. ``None`` when there is none of this file, or on any other word: then
        the helper, its first read's messages read, becomes the watcher's, to be primed
        by the usual read (a file it refused, the streamed read would refuse too)."""
        helper = self._spare_helper
        if helper is None or self._summarize is None or helper.first_read_path != str(self.runs_file):
            return None
        from_slim = self._summarize.from_slim
        runs: dict[str, Run] = {}
        spans: dict[str, tuple[int, int]] = {}
        end: FirstReadEnd | None = None
        stopping = self._stopping
        handle, helper.first_read_file = helper.first_read_file, None
        self._spare_helper, self._helper = None, helper  # primed only if the read is kept
        try:
            numbers = NumbersCheck(handle) if handle is not None else None
            with gc_paused():
                for kind, payload, data in helper.first_read_messages():
                    if stopping is not None and stopping.is_set():
                        raise _Stopped
                    if kind == FIRST_READ_END:
                        end = payload if isinstance(payload, FirstReadEnd) else None
                    elif kind == FIRST_READ_BATCH and data is not None and end is None:
                        end_offset = 0
                        for key, start, end_offset, slim in decode_batch(data):
                            runs[key] = from_slim(slim, key)  # type: ignore[assignment]  # reads as a Run
                            spans[key] = (start, end_offset)
                        if numbers is not None:
                            numbers.upto(end_offset)  # as far as the helper has read
            checked = numbers.finish() if numbers is not None else None
            if end is None or not end.plain or end.identity is None or end.mtime_ns is None or checked != end.content:
                return None
            if handle is None or not self._read_whole(runs, spans, handle, end.content, now_ms):
                return None
        except _Stopped:
            helper.close()  # the console is going: not the rest of the file
            self._helper = None
            raise
        except (KeyError, TypeError, ValueError, AttributeError):
            # A slim record the summary cannot be built from (the helper validated it:
            # this is a bug, not the file's fault): the file is read the usual way.
            for _ in helper.first_read_messages():
                pass
            return None
        finally:
            if handle is not None:
                handle.close()
        self._helper_primed = True
        self._local = LocalDiffer()
        self._missing = False
        self.validations += end.validations
        self.helper_read += len(runs)
        # Read before the watch was set up: a change meanwhile is caught up with once
        # the first snapshot is out (:meth:`iterate`).
        self._read_before_watch = end.identity
        if not self.poll and time.time_ns() - end.identity[4] > SPANS_MIN_AGE_NS:
            self._spans = EntrySpans(end.identity, spans)
        with gc_paused():
            return self._apply(None, end.mtime_ns, now_ms, streamed=runs)

    def _read_whole(
        self,
        runs: dict[str, Run],
        spans: Mapping[str, tuple[int, int]],
        handle: BinaryIO,
        content: tuple[int, int, int, int],
        now_ms: int,
    ) -> bool:
        """Make the runs wanted whole (:attr:`keep_full`) whole in ``runs``, each read
        again from its span in the file the helper read (``handle``, of ``content``);
        false if that file changed since."""
        keep_full = self.keep_full
        wanted = [key for key, run in runs.items() if run.run_id in keep_full]
        if not wanted:
            return True
        fd = handle.fileno()
        try:
            if content_of(os.fstat(fd)) != content:
                return False
            for key in wanted:
                start, end = spans[key]
                value = load_json(os.pread(fd, end - start, start), RUNS_FILE_NAME)
                runs[key] = parse_run_entry(key, value, now_ms=now_ms)
                self.validations += 1
        except (OSError, RunsFileError, ValueError):
            return False
        return True

    def entry_spans(self) -> EntrySpans | None:
        """Where the entries lay in the file the first snapshot was read from (a
        streamed or helper-made first read only), until the next read: a run can be read whole again
        from its span alone while the file is that same file (:func:`file_identity`)."""
        return self._spans

    def _lean(self, key: str, run: Run) -> Run:
        """The run as the snapshots hold it: its summary, unless whole runs are wanted."""
        summarize = self._summarize
        if summarize is None or run.run_id in self.keep_full:
            return run
        return summarize(run, key)  # type: ignore[return-value]  # reads as a Run

    def _prime_helper(self) -> None:
        """Hand the bytes of the last good read to the helper as its baseline and drop
        them here: from now on the file is read and compared there."""
        raw = self._unprimed
        if raw is None:
            return
        self._unprimed = None
        if not self._parse_in_helper or self._helper_primed:
            return
        if self._helper is None:
            self._helper = HelperDiffer()
        self._helper.prime(raw)
        self._helper_primed = True
        self._last_bytes = None
        self._local.close()  # the helper holds the baseline now; free ours

    def _revalidate(
        self, raw: bytes | None, now_ms: int, diff: EntryDiff | None = None
    ) -> tuple[dict[str, Run], set[str]]:
        """Validate only the entries whose raw value differs from the last good read.

        ``diff`` is one the helper already made of the file it read (``raw`` is then None).
        """
        differ: Differ = self._helper if self._helper is not None and self._helper_primed else self._local
        if diff is None:
            assert raw is not None
            diff = differ.diff(raw)
        previous_runs = self._runs_by_key
        runs_by_key: dict[str, Run] = {}
        changed: set[str] = set()
        try:
            for key in diff.keys:
                old = previous_runs.get(key)
                if old is not None and key not in diff.changed:
                    runs_by_key[key] = old
                    continue
                if key not in diff.changed:
                    # The differ's baseline and our runs disagree: start over from a full
                    # parse here rather than guess.
                    differ.rollback()
                    self._reset_baseline()
                    if raw is None:
                        try:
                            raw, _ = _read_bytes(self.runs_file)
                        except OSError as error:
                            raise RunsFileError(_one_line_os_error(self.runs_file, error)) from None
                    return self._revalidate(raw, now_ms)
                # Popped: each parsed value is freed as soon as its run is built.
                runs_by_key[key] = self._lean(key, parse_run_entry(key, diff.changed.pop(key), now_ms=now_ms))
                self.validations += 1
                changed.add(key)
        except BaseException:
            differ.rollback()
            raise
        differ.commit()
        changed.update(key for key in previous_runs if key not in runs_by_key)
        return runs_by_key, changed

    def _reset_baseline(self) -> None:
        self._runs_by_key = {}
        self._local = LocalDiffer()
        self._helper_primed = False

    def close(self) -> None:
        """Stop the helper process, if any (``iterate`` does this when it returns)."""
        if self._spare_helper is not None:
            self._spare_helper.close()
            self._spare_helper = None
        if self._helper is not None:
            self._helper.close()
            self._helper = None
        self._parse_in_helper = False
        self._unprimed = None
        if self._helper_primed:
            # Our own baseline was freed when the helper took over: start afresh.
            self._helper_primed = False
            self._local = LocalDiffer()
            self._runs_by_key = {}

    def _changed_run_ids(self, changed_keys: set[str], runs_by_key: Mapping[str, Run]) -> frozenset[str]:
        ids: set[str] = set()
        for key in changed_keys:
            for run in (self._runs_by_key.get(key), runs_by_key.get(key)):
                if run is not None:
                    ids.add(run.run_id)
        return frozenset(ids)

    def _stale(self, error: str, now_ms: int) -> tuple[frozenset[str], bool]:
        news = error != self._error or self._view is None
        self._error = error
        # A later good read must not be skipped as "same bytes as last time".
        self._last_bytes = None
        if self._view is None:
            self._view = RunsView.build(
                {}, now_ms=now_ms, max_concurrent_runs=self.max_concurrent_runs
            )
        return frozenset(), news

    def _record_sample(self, now_ms: int) -> None:
        assert self._view is not None
        metrics = self._view.metrics()
        self.series.add(MetricsSample.of(now_ms, metrics))

    def _snapshot(self, changed: frozenset[str] = frozenset()) -> Snapshot:
        assert self._view is not None
        self._generation += 1
        freshness = Freshness(
            read_at_ms=self._read_at_ms if self._read_at_ms is not None else self.clock.now_ms(),
            stale=self._error is not None,
            error=self._error,
            source_mtime_ns=self._mtime_ns,
            missing=self._missing,
        )
        return ShardAwareSnapshot(
            location=str(self.runs_file),
            runs=self._runs,
            view=self._view,
            freshness=freshness,
            changed=changed,
            generation=self._generation,
            series=self.series,
            shard_generation=self.shard_generation,
        )

    # -- watching -------------------------------------------------------------------

    def stop(self) -> None:
        """Make a running :meth:`iterate` return at its next wake-up (within ~a step)."""
        self._stop.set()

    def iterate(self, stop_event: threading.Event | None = None) -> Iterator[Snapshot]:
        """Yield a snapshot after each change to the runs file or the shard tree.

        Blocks between changes; returns when ``stop_event`` (or :meth:`stop`) is set.
        The watch is set up before anything is read, so a change that happened since
        :meth:`load` (or the shard scan) is caught by the read and rescan right after.
        The first scan of the shard tree is made right after the first snapshot.
        """
        stop = AnyEvent(self._stop, stop_event)
        self._stopping = stop
        self._stream_first = self._parse_in_helper and self._helper is None and not self._runs_by_key
        with DirectoryWatch(self.runs_file, self.shard_root, poll=self.poll, debounce_ms=self.debounce_ms) as watch:
            try:
                with self._lock:
                    # A first scan of the shard tree waits until the first snapshot is
                    # out: nothing on the first screen needs it (100k shards: ~0.4 s).
                    first_scan = self._shard_index is None
                    shard_news = first_scan or self._catch_up_shards(watch.shard_dirs())
                    try:
                        changed, news = self._reload()
                    except _Stopped:
                        return
                    snapshot = self._snapshot(changed) if news or shard_news else None
                if snapshot is not None:
                    yield snapshot
                with self._lock:
                    # The first snapshot is out: the helper takes over the file's bytes
                    # now (off this process' GIL while the first screen is drawn), not at
                    # the first change, which may never come.
                    self._prime_helper()
                    if first_scan:
                        self._catch_up_shards(watch.shard_dirs())
                    snapshot = None
                    if self._changed_before_watch():
                        changed, news = self._reload()
                        snapshot = self._snapshot(changed) if news else None
                if snapshot is not None:
                    yield snapshot
                for seen in watch.changes(stop):
                    shard_dirs = set(seen.shard_dirs)
                    if seen.idle and self.poll:
                        shard_dirs |= self._dirs_changed_since_listed(watch.shard_dirs())
                    # An idle wake-up re-reads only a stale file: a writer may have
                    # finished without an event we could see.
                    reload = seen.runs_touched or self._error is not None
                    if reload and self._hold_off(stop):
                        return
                    with self._lock:
                        shard_news = self._refresh_shards(seen.shard_files, shard_dirs)
                        changed, news = frozenset(), False
                        if reload:
                            changed, news = self._reload()
                        snapshot = self._snapshot(changed) if news or shard_news else None
                    if snapshot is not None:
                        yield snapshot
            finally:
                self.close()

    def _changed_before_watch(self) -> bool:
        """Whether the file a first read made before the watch was set up is no longer
        the file at the path (once; the watch reports every change after it)."""
        identity, self._read_before_watch = self._read_before_watch, None
        if identity is None:
            return False
        try:
            return file_identity(os.stat(self.runs_file)) != identity
        except OSError:
            return True  # gone: the read says so

    def _hold_off(self, stop: AnyEvent) -> bool:
        """Wait out what is left of ``min_reload_interval_ms``; True if told to stop meanwhile.

        Pacing, not domain time, so it uses the monotonic clock and not ``self.clock``.
        Writes landing while it waits are read by the one reload that follows.
        """
        if self.min_reload_interval_ms and self._last_reload_at is not None:
            due = self._last_reload_at + self.min_reload_interval_ms / 1000
            while (remaining := due - time.monotonic()) > 0:
                if stop.is_set():
                    return True
                time.sleep(min(remaining, STEP_MS / 1000))
        self._last_reload_at = time.monotonic()
        self.reloads += 1
        return False

    def _catch_up_shards(self, shard_dirs: set[Path]) -> bool:
        """Scan the shard tree, or rescan directories that changed since the last scan.

        A directory's mtime moves whenever an entry is added or removed in it, so only
        the directories that really changed are listed again.
        """
        if self._shard_index is None:
            self.shard_index  # noqa: B018 - scans
            return True
        return self._refresh_shards(set(), self._dirs_changed_since_listed(shard_dirs))

    def _dirs_changed_since_listed(self, shard_dirs: set[Path]) -> set[Path]:
        return {path for path in shard_dirs if _mtime_ns(path) != self._dir_mtimes.get(path)}

    def _refresh_shards(self, files: set[Path], dirs: set[Path]) -> bool:
        if not files and not dirs:
            return False
        index = self.shard_index
        before = len(index)
        # Refreshing a directory refreshes everything below it: the outermost suffice.
        outermost = {d for d in dirs if not any(o != d and _is_within(d, o) for o in dirs)}
        for directory in sorted(outermost):
            self._remember_mtimes(directory)
            index.refresh_dir(directory)
        for path in sorted(files):
            if not any(_is_within(path, d) for d in outermost):
                index.refresh_file(path)
        self.shard_generation += 1
        return bool(outermost) or bool(files) or len(index) != before

    def _remember_mtimes(self, directory: Path) -> None:
        for path in [directory, *subdirs(directory)]:
            self._dir_mtimes[path] = _mtime_ns(path)
            if path != directory:
                for sub in subdirs(path):
                    self._dir_mtimes[sub] = _mtime_ns(sub)


@dataclass(frozen=True)
class ShardAwareSnapshot(Snapshot):
    """A :class:`Snapshot` that also says which shard-index generation it saw.

    ``shard_generation`` goes up each time the watcher's shard index changed, so a
    consumer knows when archived runs appeared or disappeared.
    """

    shard_generation: int = 0


def _read_bytes(path: Path) -> tuple[bytes, int]:
    return read_regular(path)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _one_line_os_error(path: Path, error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return f"{path.name}: file not found"
    return _one_line(read_error_line(path.name, error))


def _mtime_ns(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _max_concurrent_from_env() -> int:
    from tandem_tui.domain.scheduler import max_concurrent_runs_from_env

    return max_concurrent_runs_from_env(os.environ)

