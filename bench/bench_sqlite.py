"""The SQLite store source on a busy host: 10k hot rows, 100k history rows.

    python bench/bench_sqlite.py               # 10k hot, 100k history
    python bench/bench_sqlite.py --hot 1000 --history 10000

Builds ``bench/out/sqlite_<hot>_<history>/stateful_runtime.sqlite3`` from the v5 schema
(runs from ``make_runs``; history rows are copies of them under new ids), then prints:
first load vs a bare ``SELECT run_json`` + ``json.loads`` of every hot row; a poll with
no commit; a poll after an engine commit touching 3 rows (and how many rows it decoded);
the archive listing by month; reading 50 archived rows; one action (pause) end to end.
Figures only, nothing asserted.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.make_runs import NOW_MS, OUT, make_runs  # noqa: E402
from tandem_tui.domain.actions import ActionKind, ActionRequest  # noqa: E402
from tandem_tui.domain.clock import ManualClock  # noqa: E402
from tandem_tui.domain.models import dump_run  # noqa: E402
from tandem_tui.simulate.sqlite_store import schema_sql  # noqa: E402
from tandem_tui.source.sqlite.follow import SqliteFollower  # noqa: E402
from tandem_tui.source.sqlite.rows import bound_run_json  # noqa: E402
from tandem_tui.source.sqlite.source import SqliteSource  # noqa: E402

INSERT = (
    "INSERT INTO automation_runs (run_id, automation_id, org_id, workspace_id, deployment_id, status, "
    "is_hot, run_json, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def row(record: dict, is_hot: int, run_json: str) -> tuple:
    tenant = record.get("tenant_context") or {}
    return (record["run_id"], record["automation_id"], tenant.get("org_id", "local"), tenant.get("workspace_id", "local"),
            tenant.get("deployment_id"), record["status"], is_hot, run_json, record["created_at_ms"], record["updated_at_ms"])


def build(hot: int, history: int) -> Path:
    path = OUT / f"sqlite_{hot}_{history}" / "stateful_runtime.sqlite3"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [dump_run(run) for run in make_runs(hot).values()]
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.executescript(schema_sql())
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO schema_metadata VALUES (5)")
    connection.executemany(INSERT, (row(r, 1, bound_run_json(r)) for r in records))
    terminal = [r for r in records if r["status"] in ("completed", "failed", "cancelled", "blocked")]
    for i in range(history):
        source = dict(terminal[i % len(terminal)])
        source["run_id"] = f"old-{i:06d}"
        source["updated_at_ms"] = source["created_at_ms"] = NOW_MS - (i + 1) * 60_000
        connection.execute(INSERT, row(source, 0, bound_run_json(source)))
    connection.execute("COMMIT")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path


def best(fn, repeat=5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hot", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=100_000)
    args = parser.parse_args()
    path = build(args.hot, args.history)
    size = path.stat().st_size / 1e6
    clock = ManualClock(NOW_MS)
    print(f"store: {args.hot} hot + {args.history} history rows, {size:.0f} MB")

    def bare():
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        for (text,) in connection.execute("SELECT run_json FROM automation_runs WHERE is_hot = 1"):
            json.loads(text)
        connection.close()

    print(f"bare SELECT + json.loads of the hot rows: {best(bare, 3):.0f} ms")

    def first():
        follower = SqliteFollower(path, clock=clock, max_concurrent_runs=8)
        follower.load()
        follower.close()

    print(f"first load (decode + validate + view): {best(first, 3):.0f} ms")
    follower = SqliteFollower(path, clock=clock, max_concurrent_runs=8)
    follower.load()
    print(f"poll, no commit (PRAGMA data_version): {best(follower.load, 20):.2f} ms")

    writer = sqlite3.connect(path, isolation_level=None, timeout=5)
    ids = [r for (r,) in writer.execute("SELECT run_id FROM automation_runs WHERE is_hot = 1 LIMIT 3")]
    samples = []
    for round_ in range(5):
        writer.execute("BEGIN IMMEDIATE")
        for run_id in ids:
            writer.execute("UPDATE automation_runs SET updated_at_ms = updated_at_ms + 1 WHERE run_id = ?", (run_id,))
        writer.execute("COMMIT")
        before = follower.decoded_rows
        start = time.perf_counter()
        snapshot = follower.load()
        samples.append((time.perf_counter() - start) * 1000)
        assert len(snapshot.changed) == 3 and follower.decoded_rows - before == 3
    print(f"poll after a commit touching 3 rows: median {statistics.median(samples):.0f} ms (3 rows decoded)")
    follower.close()

    source = SqliteSource(path, clock=clock, env={"USER": "bench"})
    months: dict = {}

    def listing():
        months.update(source.archive_months())

    print(f"archive_months over {args.history} history rows: {best(listing, 3):.0f} ms ({len(months)} months)")
    entries = [entry for month in months.values() for entry in month][:50]
    print(f"read_archived of 50 rows: {best(lambda: source.read_archived(entries), 3):.1f} ms")
    running = writer.execute("SELECT run_id FROM automation_runs WHERE is_hot = 1 AND status = 'running' LIMIT 1").fetchone()
    writer.close()
    if running:
        start = time.perf_counter()
        result = source.perform(ActionRequest(ActionKind.PAUSE, running[0], actor="bench"))
        print(f"pause one run (BEGIN IMMEDIATE .. COMMIT + audit): {(time.perf_counter() - start) * 1000:.0f} ms ({result.ok})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
