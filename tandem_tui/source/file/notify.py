"""File-system notification for the runs file and its shard tree: which paths changed.

This module only says *what changed* (the runs file, shard files, shard directories to
list again); turning bytes into snapshots is :mod:`tandem_tui.source.file.watcher`'s.

Watching uses ``watchfiles`` on directories, never on the runs file itself (a watch on a
file goes blind after the first atomic rename replaces its inode). Every directory of
the shard tree is watched non-recursively, so nothing else under the data directory
costs a watch; when a directory appears the watch is rebuilt and the new directory is
reported for a rescan, because a shard can land in a new month directory before the
watch on it exists. A watch follows a directory's inode, not its name: a data directory
renamed away (or replaced by another at the same path) sends no event about the path we
read, so the (device, inode) of both directories is compared on every wake-up.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from watchfiles import Change
from watchfiles._rust_notify import RustNotify  # the public watch() cannot rebuild its path list

#: How often (ms) the watch wakes without events to re-check a stale file and the stop flag.
IDLE_RECHECK_MS = 1_000
#: How often (ms) the notifier checks the stop flag while waiting. A step only costs
#: wake-ups (each one takes the GIL to ask the flag): 50 ms, the default debounce, keeps an
#: idle watch near 0.3 % of a core (0.45 % at 20 ms). A save is then seen 50-100 ms after
#: it lands; the console draws once a second anyway.
STEP_MS = 50
#: How often (ms) ``--poll`` scans the watched directories.
POLL_DELAY_MS = 250


@dataclass
class Changes:
    """What one wake-up saw.

    ``runs_touched``: the runs file (or, when polling, its directory) changed, or the
    watched directories were replaced; ``shard_files``: shard files added, changed or
    removed; ``shard_dirs``: shard-tree directories to list again (new, replaced, or
    changed under a poller); ``idle``: no event at all (a time-out).
    """

    runs_touched: bool = False
    shard_files: set[Path] = field(default_factory=set)
    shard_dirs: set[Path] = field(default_factory=set)
    idle: bool = False


class AnyEvent:
    """Set when any of the given events is set (what ``RustNotify.watch`` polls)."""

    def __init__(self, *events: threading.Event | None) -> None:
        self._events = [event for event in events if event is not None]

    def is_set(self) -> bool:
        return any(event.is_set() for event in self._events)


class DirectoryWatch:
    """Watches the runs file's directory and every directory of its shard tree.

    Use as a context manager; :meth:`changes` yields a :class:`Changes` per wake-up
    until ``stop`` is set. :attr:`watched` is the current set of watched directories
    (for a caller that lists them, such as the first shard scan).
    """

    def __init__(self, runs_file: Path, shard_root: Path, *, poll: bool = False, debounce_ms: int = 50) -> None:
        self.runs_file = runs_file
        self.shard_root = shard_root
        self.poll = poll
        self.debounce_ms = max(int(debounce_ms), STEP_MS)
        # Taken before the watch is made: a directory replaced in between is caught.
        self._identities = self._current_identities()
        self.watched = self._watch_paths()
        self._notify = self._make_notify(self.watched)

    def __enter__(self) -> DirectoryWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._notify.close()

    def shard_dirs(self) -> set[Path]:
        """The watched directories that belong to the shard tree."""
        return {path for path in self.watched if _is_within(path, self.shard_root)}

    def changes(self, stop: AnyEvent) -> Iterator[Changes]:
        """One :class:`Changes` per wake-up (an event burst, or an idle time-out) until
        ``stop`` is set; a signal in the notifier raises ``KeyboardInterrupt``."""
        idle_ms = POLL_DELAY_MS if self.poll else IDLE_RECHECK_MS
        while not stop.is_set():
            raw = self._notify.watch(self.debounce_ms, STEP_MS, idle_ms, stop)
            if raw == "stop" or stop.is_set():
                return
            if raw == "signal":
                raise KeyboardInterrupt
            idle = raw == "timeout"
            changes, rewatch = self._classify(set() if idle else raw)
            changes.idle = idle
            if idle and self.poll:
                # A poller misses what changed before its first scan: the caller checks
                # the runs file and the shard directories by hand.
                changes.runs_touched = True
            now = self._current_identities()
            replaced = now != self._identities
            if replaced:
                self._identities = now
                rewatch = changes.runs_touched = True
                changes.shard_dirs.add(self.shard_root)  # list the whole shard tree again
            if rewatch:
                new_watched = self._watch_paths()
                if new_watched != self.watched or replaced:
                    self._notify.close()
                    self._notify = self._make_notify(new_watched)
                    # Anything that landed in a new directory before its watch existed.
                    fresh = new_watched if replaced else new_watched - self.watched
                    changes.shard_dirs |= {path for path in fresh if _is_within(path, self.shard_root)}
                    self.watched = new_watched
            yield changes

    def _make_notify(self, watched: set[Path]) -> RustNotify:
        return RustNotify(
            sorted(str(path) for path in watched),
            False,  # debug
            self.poll,  # force_polling
            POLL_DELAY_MS,
            False,  # recursive: every directory we care about is listed explicitly
            True,  # ignore_permission_denied
        )

    def _current_identities(self) -> tuple[tuple[int, int] | None, ...]:
        """(device, inode) of the runs file's directory and of the shard root (None
        when missing): what a watch is really bound to."""
        return (_identity(self.runs_file.parent), _identity(self.shard_root))

    def _watch_paths(self) -> set[Path]:
        """The runs file's directory, and every directory of the shard tree that exists.

        A missing directory is stood in for by its nearest existing ancestor, whose
        events say when to rebuild the watch.
        """
        paths = {_nearest_existing(self.runs_file.parent)}
        root = self.shard_root
        if not root.is_dir():
            paths.add(_nearest_existing(root))
            return paths
        paths.add(root)
        for year in subdirs(root):
            paths.add(year)
            paths.update(subdirs(year))
        return paths

    def _classify(self, events: set[tuple[int, str]]) -> tuple[Changes, bool]:
        """What the events say changed, and whether the watch needs rebuilding."""
        changes = Changes()
        rewatch = False
        runs_file = str(self.runs_file)
        # Polling may report an atomic rename only as a change of the directory.
        runs_dir = str(self.runs_file.parent)
        root = self.shard_root
        for change, raw_path in events:
            if raw_path == runs_file or raw_path == runs_dir and change == Change.modified:
                changes.runs_touched = True
                continue
            path = Path(raw_path)
            if path in self.watched and change == Change.deleted:
                rewatch = True
            if change == Change.modified and path in self.watched and _is_within(path, root):
                changes.shard_dirs.add(path)  # polling again: entries came or went, names unknown
                continue
            # Temp files of atomic writes (".name.tmp-...") are not shards.
            if path.name.startswith(".") or not (_is_within(path, root) or _is_within(root, path)):
                continue
            if path.suffix == ".json":
                changes.shard_files.add(path)
            elif change == Change.added and path.is_dir() or change == Change.deleted:
                rewatch = True
                if _is_within(path, root):
                    changes.shard_dirs.add(path)
        return changes, rewatch


def _nearest_existing(path: Path) -> Path:
    while not path.is_dir() and path.parent != path:
        path = path.parent
    return path


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def subdirs(path: Path) -> list[Path]:
    """The directories directly in ``path`` (not following links); none if unreadable."""
    try:
        with os.scandir(path) as entries:
            return [Path(entry.path) for entry in entries if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
