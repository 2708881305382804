"""Start-up of the SQLite source reads the hot set, never the history (issue 12, item 5).

The counter is the kernel's: ``rchar`` of ``/proc/self/io``, the bytes this process
read through read()/pread() (SQLite reads its file that way; it does not mmap it by
default). History rows carry big records, so that reading them could not go unseen.
"""

from __future__ import annotations

import os
from pathlib import Path

from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.sqlite.source import SqliteSource
from tests.source.stores import fixture_history, fixture_runs, make_sqlite_store

HISTORY_ROWS = 600
#: Bytes of random hex per history record: it lives in SQLite overflow pages.
PADDING = 48_000


def bytes_read() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def big_history() -> list[dict]:
    template = next(iter(fixture_history().values()))
    return [
        {**template, "run_id": f"{template['run_id']}-{i:04d}", "x_padding": os.urandom(PADDING // 2).hex()}
        for i in range(HISTORY_ROWS)
    ]


def test_start_up_reads_the_hot_rows_and_not_the_history(tmp_path, fixture_now_ms):
    database = make_sqlite_store(tmp_path, fixture_runs(), big_history())
    history_bytes = HISTORY_ROWS * PADDING
    source = SqliteSource(database, clock=ManualClock(fixture_now_ms), env={})

    before = bytes_read()
    snapshot = source.load()
    start_up = bytes_read() - before

    assert len(snapshot.runs) == len(fixture_runs())
    assert start_up < history_bytes / 8, f"start-up read {start_up} bytes; the history holds {history_bytes}"

    # The counter sees history when it is read: the archive, opened on purpose.
    entries = [entry for month in source.archive_months().values() for entry in month]
    before = bytes_read()
    reads = source.read_archived(entries)
    assert len(reads) == HISTORY_ROWS
    assert bytes_read() - before > history_bytes
