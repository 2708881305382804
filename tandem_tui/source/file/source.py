"""``FileSource``: the runs file and its history shards behind the ``RunsSource`` seam."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tandem_tui.domain.clock import SYSTEM_CLOCK, Clock
from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.domain.scheduler import max_concurrent_runs_from_env
from tandem_tui.one_shot import keep_until_exit
from tandem_tui.source.base import (
    ArchivedRead,
    ArchiveEntry,
    FoundRun,
    Month,
    Route,
    SourceDescription,
    SourceError,
)
from tandem_tui.source.file.shards import (
    SHARD_SUFFIX,
    ShardIndex,
    is_month_dir,
    is_nonterminal_recovered_context_run,
    read_shard,
)
from tandem_tui.source.file.store import RunsFileError, read_runs_file

if TYPE_CHECKING:
    from tandem_tui.domain.actions import ActionRequest, ActionResult
    from tandem_tui.domain.models import Run
    from tandem_tui.domain.run_summary import RunSummary
    from tandem_tui.domain.snapshot import Snapshot
    from tandem_tui.source.file.raw_diff import HelperDiffer
    from tandem_tui.source.file.watcher import RunsWatcher

#: How often (ms) a console re-reads a file that is rewritten many times a second.
CONSOLE_MIN_RELOAD_INTERVAL_MS = 1_000


class FileSource:
    """The runs file (≤ 0.6.8 layout): one-shot reads, following, shards, actions.

    ``env`` supplies the scheduler's global cap and the action defaults (actor, cap),
    read once here so the domain never reads the environment. ``poll`` follows by
    polling (network filesystems); ``console=True`` paces re-reads of a busy file.
    Following (:meth:`follow`) parses in a helper process, so a big file's parse never
    holds the follower's GIL, and its snapshots hold run summaries.
    """

    kind = "file"

    def __init__(
        self,
        runs_file: str | os.PathLike[str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        env: Mapping[str, str] = os.environ,
        poll: bool = False,
        console: bool = False,
        on_wait: Callable[[str], None] | None = None,
        helper: HelperDiffer | None = None,
    ) -> None:
        """``helper``: a parse helper started earlier for the console's follow (as
        :meth:`warm_up` starts one), closed by :meth:`close` if no follow takes it."""
        self.runs_file = Path(runs_file)
        self.clock = clock
        self.env = env
        self.poll = poll
        self.console = console
        #: Told, in one line, when an action has to wait for another writer's lock.
        self.on_wait = on_wait
        self._following: RunsWatcher | None = None
        self.max_concurrent_runs = max_concurrent_runs_from_env(env)
        self._watchers: list[object] = []
        self._keep_full: frozenset[str] = frozenset()
        #: Runs read whole from their span alone (:meth:`full_runs`), not by a scan.
        self.span_reads = 0
        #: The parse helper started for a follow (:meth:`warm_up`), until one takes it.
        self._warm_helper: HelperDiffer | None = helper

    def warm_up(self) -> None:
        """Start the parse helper now, for the console's first read to come, and have it
        read the file at once (``source.file.first_read``): its start, its imports and
        the read then happen while the console imports and starts Textual. Closed by
        :meth:`close` if no follow takes it."""
        if self._warm_helper is None:
            from tandem_tui.source.file.raw_diff import HelperDiffer

            self._warm_helper = HelperDiffer(warm=True, read_first=self.runs_file.absolute())

    # -- what it is -------------------------------------------------------------------

    def describe(self) -> SourceDescription:
        return SourceDescription(
            kind=self.kind,
            location=str(self.runs_file),
            route=Route.FILE,
            summary="engine stopped · actions write the runs file",
            engine_live=None,
        )

    # -- reading ----------------------------------------------------------------------

    def read(self) -> Snapshot:
        """One read for a one-shot command; an unusable file raises :class:`SourceError`."""
        # Here, not at the top: an action on the file never builds a view (~5 ms).
        from tandem_tui.domain.snapshot import Freshness, Snapshot
        from tandem_tui.domain.view import RunsView

        now_ms = self.clock.now_ms()
        try:
            # The runs live until this one-shot command exits: freeze them so the
            # collections that the view's allocations trigger don't walk them again.
            with gc_paused(freeze=True):
                runs = read_runs_file(self.runs_file, now_ms=now_ms)
                view = RunsView.build(runs, now_ms=now_ms, max_concurrent_runs=self.max_concurrent_runs)
        except RunsFileError as error:
            raise SourceError(_one_line(error)) from None
        return Snapshot(
            location=str(self.runs_file),
            runs=runs,
            view=view,
            freshness=Freshness(read_at_ms=now_ms),
            changed=frozenset(runs),
        )

    def _watcher(self, *, followed: bool):
        # A console's one-off read (its static mode) holds summaries too; following
        # always does, for a console and for ``status --watch``.
        # Imported here: one-shot commands never load watchfiles.
        from tandem_tui.source.file.watcher import RunsWatcher

        if followed:
            # Its first read is made by the helper (``source.file.first_read``): the one
            # started earlier (a console's), else one started now (``status --watch``'s).
            self.warm_up()
        return RunsWatcher(
            self.runs_file,
            clock=self.clock,
            poll=self.poll,
            max_concurrent_runs=self.max_concurrent_runs,
            min_reload_interval_ms=CONSOLE_MIN_RELOAD_INTERVAL_MS if self.console else 0,
            parse_in_helper=followed or self.console,
            summaries=followed or self.console,
            helper=self._take_warm_helper() if followed else None,
        )

    def _take_warm_helper(self) -> HelperDiffer | None:
        helper, self._warm_helper = self._warm_helper, None
        return helper

    def load(self) -> Snapshot:
        """One read that never raises: a stale snapshot says why the file is unusable."""
        return self._watcher(followed=False).load()

    def follow(self, stop: threading.Event) -> Iterator[Snapshot]:
        """Snapshots hold summaries of the runs not kept whole (:meth:`keep_full`), and
        the file is parsed in a helper process, for a console and for ``status --watch``
        alike: what follows a big host for hours holds what it shows, not every record
        and the file's bytes (10k runs: 298 MB before, see bench/README.md)."""
        watcher = self._watcher(followed=True)
        watcher.keep_full = self._keep_full
        # While it follows, its shard index (kept current from the shard tree's events)
        # is what the archive is listed from: no second scan of the tree.
        self._following = watcher
        try:
            yield from watcher.iterate(stop)
        finally:
            self._following = None
            watcher.close()

    def keep_full(self, run_ids: Iterable[str]) -> None:
        """Snapshots from now on hold these runs whole, as soon as they change (the run
        a detail screen shows); every other run of followed snapshots is a summary."""
        self._keep_full = frozenset(run_ids)
        following = self._following
        if following is not None:
            following.keep_full = self._keep_full

    def full_runs(self, runs: Sequence[Run | RunSummary]) -> dict[str, Run]:
        """The whole records of hot runs a snapshot holds, by run id: a run already whole
        as it is, a :class:`RunSummary` read again from the file as it is now (its entry
        alone: read from its span while the file is the one first read, else the file
        is scanned in chunks and only the wanted entries' bytes are kept; the whole file
        is read only when its layout needs it). A run no longer in the hot set is left
        out; an unusable file raises :class:`SourceError`."""
        # Here, not at the top: only followed snapshots hold summaries.
        from tandem_tui.domain.run_summary import RunSummary
        from tandem_tui.source.file.entry_scan import ChunkedScan
        from tandem_tui.source.file.regular import open_regular
        from tandem_tui.source.file.store import RUNS_SCHEMA_VERSION

        found: dict[str, Run] = {}
        wanted: dict[str, RunSummary] = {}
        for run in runs:
            if isinstance(run, RunSummary):
                wanted[run.run_id] = run
            else:
                found[run.run_id] = run
        if not wanted:
            return found
        now_ms = self.clock.now_ms()
        try:
            with gc_paused():
                self._read_by_spans(wanted, found, now_ms)
        except OSError:
            pass  # the scan below reads again, and says why it cannot
        if not wanted:
            return found
        keys = {summary.key for summary in wanted.values()}
        try:
            with gc_paused():
                entries: dict[str, bytes] = {}
                doubled = False
                with open_regular(self.runs_file) as handle:
                    scan = ChunkedScan(handle.read)
                    for key, window, start, end in scan.entries():
                        if key in keys:
                            doubled = doubled or key in entries
                            entries[key] = window[start:end]
                # A key written twice: the full read decides which value stands.
                if scan.complete and not doubled and (scan.schema_version or 0) <= RUNS_SCHEMA_VERSION:
                    _take_entries(wanted, found, entries.get, now_ms)
                del entries
                if wanted:
                    hot = read_runs_file(self.runs_file, now_ms=now_ms)
                    found.update((run_id, hot[run_id]) for run_id in wanted if run_id in hot)
        except OSError as error:
            raise SourceError(f"{self.runs_file}: cannot read ({error.strerror or error})") from None
        except RunsFileError as error:
            raise SourceError(_one_line(error)) from None
        return found

    def _read_by_spans(self, wanted: dict[str, RunSummary], found: dict[str, Run], now_ms: int) -> None:
        """Move to ``found`` the wanted runs read from where their entries lay in the
        file the followed first read streamed, while the file is that same file (no
        scan: at 100k runs one took 1.2 s). Anything else is left to the scan."""
        from tandem_tui.source.file.regular import file_identity, open_regular

        following = self._following
        spans = following.entry_spans() if following is not None else None
        if spans is None:
            return
        with open_regular(self.runs_file) as handle:
            if file_identity(os.fstat(handle.fileno())) != spans.identity:
                return
            fd = handle.fileno()

            def data_of(key: str) -> bytes | None:
                span = spans.spans.get(key)
                return None if span is None else os.pread(fd, span[1] - span[0], span[0])

            self.span_reads += _take_entries(wanted, found, data_of, now_ms)

    # -- the archive ------------------------------------------------------------------

    def archive_months(self) -> dict[Month, list[ArchiveEntry]]:
        """Each archived run's shard (the latest month's when filed twice), newest month
        first, from directory listings alone: the followed shard index when this source
        is being followed, else one scan of the shard tree."""
        following = self._following
        if following is not None:
            listing, root = following.shard_month_stems(), following.shard_root
        else:
            index = ShardIndex.scan(self.runs_file)
            listing, root = index.month_stems(), index.root
        # Keys are built as text, not Paths: at 100k shards a Path per entry was most
        # of the history screen's 7-8 s before its month tree showed (issue 13 item 8).
        root_text = os.fspath(root)
        months: dict[Month, list[ArchiveEntry]] = {}
        merged: set[Month] = set()
        for (year, month_dir), stems in listing.items():
            if not stems or not is_month_dir(year, month_dir):
                continue
            month = (int(year), int(month_dir))
            prefix = os.path.join(root_text, year, month_dir, "")
            start, end = len(prefix), -len(SHARD_SUFFIX)
            keys = sorted([prefix + stem + SHARD_SUFFIX for stem in stems])
            entries = [ArchiveEntry(key=key, name=key[start:end], month=month) for key in keys]
            if month in months:  # "2026/1" and "2026/01" name the same month
                merged.add(month)
                months[month].extend(entries)
            else:
                months[month] = entries
        for month in merged:
            months[month].sort(key=lambda entry: entry.key)
        return {month: months[month] for month in sorted(months, reverse=True)}

    def read_archived(self, entries: Sequence[ArchiveEntry]) -> list[ArchivedRead]:
        return [_read_entry(entry) for entry in entries]

    def find_run(self, run_id: str) -> FoundRun | None:
        """The run in the hot file, else in its shard; an unusable hot file raises."""
        snapshot = self.read()
        keep_until_exit(snapshot)  # a one-shot `history` leaves the rest to its end
        run = snapshot.runs.get(run_id)
        if run is not None:
            return FoundRun(run, archived=False)
        shard = ShardIndex.scan(self.runs_file).path_for(run_id)
        if shard is None:
            return None
        try:
            archived = read_shard(shard)
        except RunsFileError as error:
            raise SourceError(_one_line(error)) from None
        if archived.run_id != run_id or is_nonterminal_recovered_context_run(archived):
            return None
        return FoundRun(archived, archived=True)

    # -- acting -----------------------------------------------------------------------

    def perform(self, request: ActionRequest) -> ActionResult:
        from tandem_tui.source.file.perform import perform

        try:
            return perform(self.runs_file, request, clock=self.clock, env=self.env, on_wait=self.on_wait)
        except RunsFileError as error:
            raise SourceError(_one_line(error)) from None

    def close(self) -> None:
        """The parse helper :meth:`warm_up` started, if no follow took it; watchers end
        with their ``follow`` generator."""
        helper = self._take_warm_helper()
        if helper is not None:
            helper.close()


def _take_entries(
    wanted: dict[str, RunSummary], found: dict[str, Run], data_of: Callable[[str], bytes | None], now_ms: int
) -> int:
    """Move to ``found`` each wanted run whose entry (``data_of(key)``, ``None``: not
    found) parses into that same hot run; how many moved. An entry that does not parse
    or is another run stays wanted: the full read gives the verdict and its words."""
    from tandem_tui.source.file.store import RUNS_FILE_NAME, load_json, parse_run_entry

    taken = 0
    for run_id, summary in list(wanted.items()):
        data = data_of(summary.key)
        if data is None:
            continue
        try:
            run = parse_run_entry(summary.key, load_json(data, RUNS_FILE_NAME), now_ms=now_ms)
        except (RunsFileError, ValueError):
            continue
        if run.run_id == run_id and not run.is_nonterminal_recovered_context_run:
            found[run_id] = run
            del wanted[run_id]
            taken += 1
    return taken


def _read_entry(entry: ArchiveEntry) -> ArchivedRead:
    """Read one shard; a bad one becomes a one-line error, never an exception."""
    try:
        run = read_shard(entry.key)
    except RunsFileError as error:
        return ArchivedRead(entry, error=str(error).removeprefix(f"{entry.key}: "))
    except Exception as error:  # noqa: BLE001 - a reader thread must not take the console down
        return ArchivedRead(entry, error=f"cannot read shard ({type(error).__name__}: {error})")
    return ArchivedRead(entry, run=run, hidden=is_nonterminal_recovered_context_run(run))


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
