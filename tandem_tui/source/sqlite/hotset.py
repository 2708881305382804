"""The hot set of one ``automation_runs`` table, kept up to date by re-reading changed rows.

Shared by the SQLite and PostgreSQL sources. Each poll lists the hot rows' cheap
columns (``run_id``, ``updated_at_ms``, ``status``, the length of ``run_json``); only the
rows whose stamp differs from the last read are fetched whole and decoded, so a write
touching three runs out of ten thousand costs three decodes. The engine's upsert only
moves ``updated_at_ms`` forward (``WHERE excluded.updated_at_ms >= ...``); the status and
length catch a rewrite at the same millisecond.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from tandem_tui.domain.models import Run
from tandem_tui.source.sqlite.rows import DecodedRow, RunRow, decode_row

#: ``SELECT`` list of a row's stamp in SQLite: what tells a changed row without decoding
#: it (PostgreSQL's, ``octet_length``, is in ``source.postgres.store``).
STAMP_COLUMNS = "run_id, updated_at_ms, status, length(run_json)"

Stamp = tuple[int, str, int]


@dataclass(frozen=True)
class HotChange:
    """What one poll changed: run ids added, changed or gone from the hot set."""

    changed: frozenset[str]


class HotSet:
    """The decoded hot rows of one table, and their stamps.

    ``decoded_rows`` counts rows decoded (a test asserts only changed rows are).
    """

    def __init__(self) -> None:
        self.rows: dict[str, DecodedRow] = {}
        self.stamps: dict[str, Stamp] = {}
        self.decoded_rows = 0
        # Rebuilt only when a poll changed something; never mutated once handed out
        # (a snapshot holding the previous maps is compared with the new ones).
        self.runs: dict[str, Run] = {}
        self.opaque: dict[str, str] = {}
        self.encrypted: frozenset[str] = frozenset()

    def to_fetch(self, stamps: Iterable[tuple[str, int, str, int]]) -> tuple[dict[str, Stamp], list[str]]:
        """The new stamps, and the ids whose rows must be fetched whole."""
        current = {str(run_id): (int(updated), str(status), int(length or 0)) for run_id, updated, status, length in stamps}
        fetch = [run_id for run_id, stamp in current.items() if self.stamps.get(run_id) != stamp]
        return current, fetch

    def apply(self, stamps: Mapping[str, Stamp], fetched: Iterable[RunRow], *, now_ms: int) -> frozenset[str]:
        """Take the fetched rows and the new stamps; returns the run ids that changed."""
        changed: set[str] = set()
        new_rows = dict(self.rows)
        for row in fetched:
            if row.run_id not in stamps:
                continue  # went cold between the two queries of a non-atomic read
            new_rows[row.run_id] = decode_row(row, now_ms=now_ms)
            self.decoded_rows += 1
            changed.add(row.run_id)
        for run_id in list(new_rows):
            if run_id not in stamps:
                del new_rows[run_id]
                changed.add(run_id)
        # A row listed but not fetched (deleted in between) keeps no stale stamp.
        self.stamps = {run_id: stamp for run_id, stamp in stamps.items() if run_id in new_rows}
        self.rows = new_rows
        if changed:
            self.runs = {run_id: decoded.run for run_id, decoded in new_rows.items()}
            self.opaque = {run_id: d.opaque for run_id, d in new_rows.items() if d.opaque is not None}
            self.encrypted = frozenset(run_id for run_id, d in new_rows.items() if d.encrypted)
        return frozenset(changed)


def read_hot(
    hot: HotSet,
    list_stamps: Callable[[], Iterable[tuple[str, int, str, int]]],
    fetch_rows: Callable[[list[str]], Iterable[RunRow]],
    *,
    now_ms: int,
) -> frozenset[str]:
    """One poll of a hot set through the given queries (run inside one read transaction)."""
    stamps, fetch = hot.to_fetch(list_stamps())
    fetched = list(fetch_rows(fetch)) if fetch else []
    return hot.apply(stamps, fetched, now_ms=now_ms)
