"""Start-up of the PostgreSQL source reads each engine's hot set, never its history
(issue 12, item 5).

The counter is the server's: ``pg_statio_user_tables.toast_blks_read + toast_blks_hit``
of an engine's ``automation_runs``, the TOAST blocks its queries touched. History rows
carry big records (stored out of line, in TOAST), hot rows small ones, so any read of
the history's records shows up; the stamps the source scans (``octet_length``) read a
TOAST pointer only.
"""

from __future__ import annotations

import os
import time

import psycopg

from tandem_tui.domain.clock import ManualClock
from tandem_tui.source.postgres.source import PostgresSource
from tests.source.stores import fixture_history, fixture_runs, make_postgres_engine

A = "tandem_rt_00000000000000aa"
HISTORY_ROWS = 300
PADDING = 48_000


def toast_blocks(url: str, previous: int | None = None) -> int:
    """The TOAST blocks read so far; waits for the server's statistics to settle (a
    backend flushes its counters when it exits or goes idle)."""
    deadline = time.monotonic() + 5
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            connection.execute("SELECT pg_stat_clear_snapshot()")
            value = connection.execute(
                "SELECT coalesce(toast_blks_read, 0) + coalesce(toast_blks_hit, 0) FROM pg_statio_user_tables "
                "WHERE schemaname = %s AND relname = 'automation_runs'",
                (A,),
            ).fetchone()[0]
            if previous is None or value != previous or time.monotonic() > deadline:
                return int(value)
            time.sleep(0.1)


def test_start_up_reads_the_hot_rows_and_not_the_history(postgres_url, fixture_now_ms):
    template = next(iter(fixture_history().values()))
    history = [
        {**template, "run_id": f"{template['run_id']}-{i:04d}", "x_padding": os.urandom(PADDING // 2).hex()}
        for i in range(HISTORY_ROWS)
    ]
    make_postgres_engine(postgres_url, A, fixture_runs(), history)
    source = PostgresSource(postgres_url, clock=ManualClock(fixture_now_ms), env={})
    time.sleep(0.6)  # let the inserting backend's counters land first
    baseline = toast_blocks(postgres_url)

    snapshot = source.load()  # its connection closes: its counters are flushed
    after_start_up = toast_blocks(postgres_url)

    assert len(snapshot.runs) == len(fixture_runs())
    history_blocks = HISTORY_ROWS * PADDING // 8192
    assert after_start_up - baseline < history_blocks / 10, (after_start_up - baseline, history_blocks)

    # The counter sees history when it is read: the archive, opened on purpose.
    entries = [entry for month in source.archive_months().values() for entry in month]
    assert len(source.read_archived(entries)) == HISTORY_ROWS
    assert toast_blocks(postgres_url, after_start_up) - after_start_up >= history_blocks / 2
