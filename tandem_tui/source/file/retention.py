"""Hot-storage retention: how long finished runs stay whole in the hot runs file.

Ported from the server's compaction: a terminal run drops its automation snapshot once
the canonical automation is at least as new, and once it is older than the retention
cut-off (``TANDEM_AUTOMATION_V2_RUNS_RETENTION_DAYS``, default 7, 0 = keep everything)
it also drops its node outputs and runtime context. :func:`archive_terminal_runs` goes
one step further for the engine side: it moves such runs out of the hot file into their
history shards.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from tandem_tui.domain.core_validation import ValidationError

from tandem_tui.domain.models import Run, parse_run
from tandem_tui.source.file.shards import write_shard

RETENTION_DAYS_ENV = "TANDEM_AUTOMATION_V2_RUNS_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 7
DAY_MS = 24 * 60 * 60 * 1000
_U64_MAX = 2**64 - 1
# What Rust's u64 parser accepts: an optional plus sign and ASCII digits.
_UNSIGNED = re.compile(r"\+?[0-9]+")


def hot_retention_days(env: Mapping[str, str]) -> int:
    """Retention in days from the environment; the default when unset or not a u64."""
    raw = env.get(RETENTION_DAYS_ENV)
    if raw is None or not _UNSIGNED.fullmatch(raw.strip()):
        return DEFAULT_RETENTION_DAYS
    days = int(raw.strip())
    return days if days <= _U64_MAX else DEFAULT_RETENTION_DAYS


def hot_cutoff_ms(now_ms: int, env: Mapping[str, str]) -> int:
    """Runs last updated at or before this moment are past retention; 0 disables it."""
    days = hot_retention_days(env)
    if days == 0:
        return 0
    return max(0, now_ms - min(days * DAY_MS, _U64_MAX))


def _updated_at(spec: Any) -> Any:
    if isinstance(spec, Mapping):
        return spec.get("updated_at_ms")
    return getattr(spec, "updated_at_ms", None)


def compact_runs_for_hot_storage(runs: Mapping[str, Run], automations: Mapping[str, Any], cutoff_ms: int) -> None:
    """Shrink terminal runs in place, as the server does before writing the hot file.

    ``automations`` maps automation id to its canonical spec (a dict or an object with
    ``updated_at_ms``).
    """
    for run in runs.values():
        if not run.is_terminal:
            continue
        snapshot = run.automation_snapshot
        if snapshot is not None:
            canonical_at = _updated_at(automations.get(run.automation_id))
            snapshot_at = _updated_at(snapshot)
            if isinstance(canonical_at, int) and isinstance(snapshot_at, int) and canonical_at >= snapshot_at:
                run.automation_snapshot = None
        if run.updated_at_ms <= cutoff_ms:
            run.checkpoint.node_outputs.clear()
            run.runtime_context = None


def archive_terminal_runs(
    runs_file: str | os.PathLike[str],
    entries: MutableMapping[str, Run | dict[str, Any]],
    *,
    now_ms: int,
    env: Mapping[str, str],
) -> list[str]:
    """Move terminal runs past the retention cut-off from ``entries`` into history shards.

    ``entries`` is the hot file's map (``Run`` objects or raw dicts, as in
    ``RunsDocument.entries``). Each archived run's shard is written first, then the run
    is removed from ``entries``; the caller persists the hot file afterwards, so a crash
    in between leaves the run in both places, never in neither. Entries that do not
    validate are left where they are. Returns the keys moved, in map order.
    """
    cutoff = hot_cutoff_ms(now_ms, env)
    if cutoff == 0:
        return []
    moved: list[str] = []
    for key, entry in list(entries.items()):
        try:
            run = entry if isinstance(entry, Run) else parse_run(entry)
        except ValidationError:
            continue
        if run.is_terminal and run.updated_at_ms <= cutoff:
            write_shard(runs_file, run)
            del entries[key]
            moved.append(key)
    return moved
