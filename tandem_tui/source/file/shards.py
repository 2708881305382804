"""History shards: one file per archived run, beside the hot runs file.

Layout (as the server writes it)::

    <dir of runs file>/automation-runs/<runs file stem>/YYYY/MM/<sanitized run_id>.json

The server's name can be shared by distinct runs (``job.42``, ``job_42`` and ``job/42``
all become ``job_42.json``), can be too long for the file system, or empty. Where that
would lose a run we write under a name of our own (:func:`shard_name`) and every reader
checks the ``run_id`` inside a shard; see ``docs/shards.md``.

with year and month taken from ``max(updated_at_ms, created_at_ms)`` in UTC. A shard is
``{"schema_version": 1, "run": record}`` or, from older servers, the bare record (v0).
Non-terminal runs triggered as ``recovered_context_run`` never live in history: writing
one removes its shard, and readers skip any they find.

:class:`ShardIndex` finds shards from directory listings alone, so a history of
thousands of runs is indexed without opening a single file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from tandem_tui.domain.core_validation import ValidationError

from tandem_tui.source.file.atomic import make_dirs, write_text_atomic
from tandem_tui.source.file.regular import read_regular
from tandem_tui.domain.models import Run, dump_run, parse_run_record
from tandem_tui.source.file.store import (
    pretty_json,
    RUNS_SCHEMA_VERSION,
    RunsFileError,
    load_json,
    schema_version_of,
    validation_error_line,
)

HISTORY_DIR_NAME = "automation-runs"
RECOVERED_CONTEXT_TRIGGER = "recovered_context_run"
SHARD_SUFFIX = ".json"
_SHARD_WHAT = "automation v2 run history shard"
_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9_-]")


#: The longest shard stem we write: a name plus the atomic writer's temp-file decoration
#: (``.<name>.tmp-<pid>-<hex>``) must stay under NAME_MAX (255 bytes).
MAX_STEM_BYTES = 200
#: Marks a stem of our own; the server's sanitized names never contain it.
OWN_NAME_MARK = "~"


def sanitize_path_id(value: str) -> str:
    """``value`` safe as a file name: every char outside ``[A-Za-z0-9_-]`` becomes ``_``."""
    return _UNSAFE_PATH_CHARS.sub("_", value)


def own_stem(run_id: str) -> str:
    """A stem no other run id maps to: the sanitized id, cut short, then a digest of the id."""
    digest = hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{sanitize_path_id(run_id)[:100]}{OWN_NAME_MARK}{digest}"


def server_stem_is_usable(run_id: str) -> bool:
    """Whether the server's name for ``run_id`` can name only this run and fits on disk."""
    stem = sanitize_path_id(run_id)
    return bool(stem) and len(stem.encode()) <= MAX_STEM_BYTES


def candidate_stems(run_id: str) -> list[str]:
    """The stems a shard of ``run_id`` may be filed under, the server's first."""
    stems = [own_stem(run_id)]
    if server_stem_is_usable(run_id):
        stems.insert(0, sanitize_path_id(run_id))
    return stems


def is_nonterminal_recovered_context_run(run: Run) -> bool:
    """Runs the server keeps out of history: recovered-context runs still in flight."""
    return run.is_nonterminal_recovered_context_run


# --- layout ------------------------------------------------------------------------


def history_root(runs_file: str | os.PathLike[str]) -> Path:
    """``<dir>/automation-runs/<stem>`` for the runs file at ``runs_file``."""
    path = Path(runs_file)
    stem = path.stem if path.stem.strip() else "runs"
    return path.parent / HISTORY_DIR_NAME / stem


def is_month_dir(year: str, month: str) -> bool:
    """Whether ``year/month`` names a month a shard can be filed under (``2026/11``;
    not ``2026/13``, ``0000/00`` or non-ASCII digits)."""
    return (
        year.isascii() and year.isdigit() and month.isascii() and month.isdigit()
        and 1 <= int(year) <= 9999 and 1 <= int(month) <= 12
    )


def history_month(run: Run) -> tuple[int, int]:
    """The UTC (year, month) a run is filed under: its latest of updated/created."""
    return utc_month(max(run.updated_at_ms, run.created_at_ms))


def utc_month(timestamp_ms: int) -> tuple[int, int]:
    """The UTC (year, month) of ``timestamp_ms``; never raises: a moment beyond what a
    calendar date can hold (any u64 after year 9999) is the last month representable,
    ``(9999, 12)`` (the server files it under the current month instead)."""
    try:
        moment = datetime.fromtimestamp(max(timestamp_ms, 0) / 1000, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return (9999, 12)
    return (moment.year, moment.month)


def month_dir(runs_file: str | os.PathLike[str], run: Run) -> Path:
    """The ``YYYY/MM`` directory ``run`` is filed under."""
    year, month = history_month(run)
    return history_root(runs_file) / f"{year:04d}" / f"{month:02d}"


def shard_path(runs_file: str | os.PathLike[str], run: Run) -> Path:
    """Where the shard for ``run`` is written: the server's name unless another run holds
    it (or it cannot be a file name), then a name of our own (:func:`own_stem`)."""
    directory = month_dir(runs_file, run)
    if server_stem_is_usable(run.run_id):
        path = directory / f"{sanitize_path_id(run.run_id)}{SHARD_SUFFIX}"
        if _holder_of(path) in (None, run.run_id):
            return path
    return directory / f"{own_stem(run.run_id)}{SHARD_SUFFIX}"


def _holder_of(path: Path) -> str | None:
    """The ``run_id`` in the shard at ``path``; ``None`` when there is no file there.

    A file we cannot read or parse holds *something*: it is never overwritten.
    """
    if not path.exists() and not path.is_symlink():
        return None
    try:
        return read_shard(path).run_id
    except RunsFileError:
        return "\x00unreadable"


# --- parse and serialize -----------------------------------------------------------


def parse_shard(raw: str | bytes) -> Run:
    """The run in a shard file, v1 envelope or bare v0 record."""
    value = load_json(raw, _SHARD_WHAT)
    if not isinstance(value, dict) or "schema_version" not in value:
        return _validate(value, f"failed to parse legacy {_SHARD_WHAT}")
    schema_version_of(value["schema_version"], _SHARD_WHAT)
    if "run" not in value:
        raise RunsFileError(f"failed to parse versioned {_SHARD_WHAT}: missing run")
    return _validate(value["run"], f"failed to parse versioned {_SHARD_WHAT}")


def _validate(value: Any, context: str) -> Run:
    try:
        return parse_run_record(value)
    except ValidationError as error:
        raise RunsFileError(f"{context}: {validation_error_line(error)}") from None


def serialize_shard(run: Run) -> str:
    """The v1 shard envelope, pretty-printed like the server."""
    return pretty_json({"schema_version": RUNS_SCHEMA_VERSION, "run": dump_run(run)})


def read_shard(path: str | os.PathLike[str]) -> Run:
    """The run in the shard at ``path``; errors are ``<path>: <reason>``."""
    try:
        raw, _ = read_regular(path)
    except OSError as error:
        raise RunsFileError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        return parse_shard(raw)
    except RunsFileError as error:
        raise RunsFileError(f"{path}: {error}") from None


# --- write and load ----------------------------------------------------------------


def write_shard(runs_file: str | os.PathLike[str], run: Run) -> Path:
    """Archive ``run`` to its shard atomically and return the path.

    On return the shard at that path holds this run (read back and checked), so a
    caller may drop the run from the hot file; any failure raises (``OSError``,
    :class:`RunsFileError`) and then the caller must keep it. A non-terminal
    recovered-context run is not archived; a shard of its own that it had is removed.
    """
    if is_nonterminal_recovered_context_run(run):
        for path in _existing_shards_of(runs_file, run.run_id, [month_dir(runs_file, run)]):
            path.unlink(missing_ok=True)
        return shard_path(runs_file, run)
    path = shard_path(runs_file, run)
    make_dirs(path.parent)
    text = serialize_shard(run)
    write_text_atomic(path, text)
    if path.read_text(encoding="utf-8") != text:
        raise RunsFileError(f"{path}: the shard written does not read back as written")
    return path


def _existing_shards_of(
    runs_file: str | os.PathLike[str], run_id: str, month_dirs: list[Path] | None = None
) -> list[Path]:
    """Shards that hold ``run_id``, in the given month directories (default: every month,
    latest first)."""
    dirs = month_dirs if month_dirs is not None else list(reversed(_month_dirs(history_root(runs_file))))
    found = []
    for directory in dirs:
        for stem in candidate_stems(run_id):
            path = directory / f"{stem}{SHARD_SUFFIX}"
            if path.is_file() and _holder_of(path) == run_id:
                found.append(path)
    return found


def _load_visible(path: str | os.PathLike[str]) -> Run | None:
    """The run in a shard, or ``None`` if it is unreadable, invalid or kept out of history."""
    try:
        run = read_shard(path)
    except RunsFileError:
        return None
    return None if is_nonterminal_recovered_context_run(run) else run


def load_shard_file(runs_file: str | os.PathLike[str], run_id: str) -> tuple[Path, Run] | None:
    """The archived run ``run_id`` and the shard it was read from; ``None`` when not archived.

    Every month is searched, latest first, for the names this run may be filed under
    (:func:`candidate_stems`); only a shard whose ``run_id`` is this run counts, so a
    run sharing its sanitized name with another is never mistaken for it. A shard that
    does not parse, or holds an in-flight recovered-context run, counts as not archived.
    """
    for month in reversed(_month_dirs(history_root(runs_file))):
        for stem in candidate_stems(run_id):
            path = month / f"{stem}{SHARD_SUFFIX}"
            if not path.is_file():
                continue
            run = _load_visible(path)
            if run is not None and run.run_id == run_id:
                return path, run
    return None


def load_shard(runs_file: str | os.PathLike[str], run_id: str) -> Run | None:
    """The archived run ``run_id`` (see :func:`load_shard_file`), or ``None``."""
    found = load_shard_file(runs_file, run_id)
    return None if found is None else found[1]


def iter_shard_paths(runs_file: str | os.PathLike[str]) -> Iterator[Path]:
    """Every shard file under the history root, oldest month first (listings only)."""
    for month_dir in _month_dirs(history_root(runs_file)):
        yield from _shard_files(month_dir)


def load_all_shards(runs_file: str | os.PathLike[str]) -> list[Run]:
    """Every readable archived run; unreadable shards and in-flight recovered runs skipped."""
    runs = (_load_visible(path) for path in iter_shard_paths(runs_file))
    return [run for run in runs if run is not None]


def _subdirs(directory: Path) -> list[Path]:
    try:
        with os.scandir(directory) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir())
    except OSError:
        return []


def _month_dirs(root: Path) -> list[Path]:
    return [month for year in _subdirs(root) for month in _subdirs(year)]


def _shard_files(month_dir: Path) -> list[Path]:
    try:
        with os.scandir(month_dir) as entries:
            return sorted(
                Path(e.path)
                for e in entries
                if _is_shard_name(e.name) and e.is_file()
            )
    except OSError:
        return []


# --- the index ---------------------------------------------------------------------


class MonthCount(NamedTuple):
    year: int
    month: int
    count: int


class ShardIndex(Mapping[str, Path]):
    """Sanitized run id -> shard path, built from directory listings only.

    No shard is opened until :meth:`load` asks for one. When the same id is filed under
    several months, the latest month wins. Entries are kept as names grouped by month
    directory, and paths are built only when asked for: 100k shards index in the time
    of the directory listings themselves.
    """

    def __init__(self, runs_file: str | os.PathLike[str]) -> None:
        self.runs_file = Path(runs_file)
        self.root = history_root(runs_file)
        # (year dir, month dir) -> shard stems, and stem -> the months filing it.
        self._months: dict[tuple[str, str], set[str]] = {}
        self._homes: dict[str, set[tuple[str, str]]] = {}

    @classmethod
    def scan(cls, runs_file: str | os.PathLike[str]) -> ShardIndex:
        index = cls(runs_file)
        index.refresh_dir(index.root)
        return index

    # Mapping: each id's preferred (latest month) shard.
    def __getitem__(self, key: str) -> Path:
        year, month = max(self._homes[key])
        return self.root / year / month / f"{key}{SHARD_SUFFIX}"

    def __iter__(self) -> Iterator[str]:
        return iter(self._homes)

    def __len__(self) -> int:
        return len(self._homes)

    def month_stems(self) -> dict[tuple[str, str], list[str]]:
        """``(year dir, month dir) -> stems`` of the shards each id is listed by (its
        latest month's): the archive from names alone (a ``Path`` per shard, as
        iterating the mapping builds, costs seconds at 100k shards)."""
        homes = self._homes
        return {
            home: [stem for stem in stems if len(homes[stem]) == 1 or max(homes[stem]) == home]
            for home, stems in self._months.items()
        }

    def refresh_dir(self, path: str | os.PathLike[str]) -> None:
        """Re-list ``path`` (the root, a year or a month directory) and everything below it.

        Entries under ``path`` that are gone from disk are dropped; new ones are added.
        A parent of the root re-lists the whole root; any other path outside it is ignored.
        """
        directory = Path(path)
        if directory != self.root and self.root.is_relative_to(directory):
            # A parent of the root appeared (the first shard ever creates them all at once).
            directory = self.root
        try:
            parts = directory.relative_to(self.root).parts
        except ValueError:
            return
        if len(parts) > 2:
            return
        for month in [m for m in self._months if m[: len(parts)] == parts]:
            self._forget_month(month)
        root = os.fspath(self.root)
        years = [parts[0]] if parts else _subdir_names(root)
        for year in years:
            year_dir = os.path.join(root, year)
            months = [parts[1]] if len(parts) == 2 else _subdir_names(year_dir)
            for month in months:
                stems = _shard_stems(os.path.join(year_dir, month))
                if stems:
                    self._months[(year, month)] = stems
                    for stem in stems:
                        self._homes.setdefault(stem, set()).add((year, month))

    def refresh_file(self, path: str | os.PathLike[str]) -> None:
        """Note that one shard file appeared, changed or disappeared."""
        shard = Path(path)
        try:
            parts = shard.relative_to(self.root).parts
        except ValueError:
            return
        if len(parts) != 3 or not _is_shard_name(shard.name):
            return
        month, stem = (parts[0], parts[1]), shard.name[: -len(SHARD_SUFFIX)]
        if shard.is_file():
            self._months.setdefault(month, set()).add(stem)
            self._homes.setdefault(stem, set()).add(month)
        else:
            self._discard(month, stem)

    def months(self) -> list[MonthCount]:
        """Each (year, month) holding shards, oldest first, with how many it holds."""
        counts: dict[tuple[int, int], int] = {}
        for (year, month), stems in self._months.items():
            # ASCII digits naming a calendar month ("²".isdigit() is true, int() of it raises).
            if stems and is_month_dir(year, month):
                key = (int(year), int(month))
                counts[key] = counts.get(key, 0) + len(stems)
        return [MonthCount(year, month, count) for (year, month), count in sorted(counts.items())]

    def paths_for(self, run_id: str) -> list[Path]:
        """Every shard that may hold ``run_id``, latest month first (listings only)."""
        paths = []
        for stem in candidate_stems(run_id):
            for year, month in sorted(self._homes.get(stem, ()), reverse=True):
                paths.append((year, month, self.root / year / month / f"{stem}{SHARD_SUFFIX}"))
        return [path for _, _, path in sorted(paths, key=lambda item: item[:2], reverse=True)]

    def path_for(self, run_id: str) -> Path | None:
        """The shard that holds ``run_id`` (opening candidates until one does), or ``None``.

        A candidate that cannot be read or parsed is returned too: it may be this run's,
        and reading it again tells the caller why it cannot be shown.
        """
        for path in self.paths_for(run_id):
            try:
                run = read_shard(path)
            except RunsFileError:
                return path
            if run.run_id == run_id and not is_nonterminal_recovered_context_run(run):
                return path
        return None

    def load(self, run_id: str) -> Run | None:
        """The archived run ``run_id``, or ``None``. Opens only the shards named for it."""
        found = self._find(run_id)
        return None if found is None else found[1]

    def _find(self, run_id: str) -> tuple[Path, Run] | None:
        for path in self.paths_for(run_id):
            run = _load_visible(path)
            if run is not None and run.run_id == run_id:
                return path, run
        return None

    def _forget_month(self, month: tuple[str, str]) -> None:
        for stem in self._months.pop(month, ()):
            homes = self._homes.get(stem)
            if homes is not None:
                homes.discard(month)
                if not homes:
                    del self._homes[stem]

    def _discard(self, month: tuple[str, str], stem: str) -> None:
        stems = self._months.get(month)
        if stems is not None:
            stems.discard(stem)
            if not stems:
                del self._months[month]
        homes = self._homes.get(stem)
        if homes is not None:
            homes.discard(month)
            if not homes:
                del self._homes[stem]


def _subdir_names(directory: str) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            return [e.name for e in entries if e.is_dir()]
    except OSError:
        return []


def _shard_stems(month_dir: str) -> set[str]:
    try:
        with os.scandir(month_dir) as entries:
            return {
                e.name[: -len(SHARD_SUFFIX)]
                for e in entries
                if _is_shard_name(e.name) and e.is_file()
            }
    except OSError:
        return set()


def _is_shard_name(name: str) -> bool:
    return name.endswith(SHARD_SUFFIX) and not name.startswith(".")
