"""The PostgreSQL fleet source: 4 engines, 10k hot and 100k history rows in all.

    python bench/bench_postgres.py                     # 4 engines x (2.5k hot + 25k history)
    python bench/bench_postgres.py --engines 2 --hot 1000 --history 10000

Starts a temporary PostgreSQL server (the machine's binaries, as the tests do), fills one
schema per engine with ``make_runs`` rows (history rows are copies under new ids), then
prints: the fleet's first load; a poll with no change; a poll after one engine commits 3
rows (and how many rows it decoded); the archive listing; one action. Figures only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from bench.make_runs import NOW_MS, make_runs  # noqa: E402
from tandem_tui.domain.actions import ActionKind, ActionRequest  # noqa: E402
from tandem_tui.domain.clock import ManualClock  # noqa: E402
from tandem_tui.domain.models import dump_run  # noqa: E402
from tandem_tui.source.postgres.source import PostgresSource  # noqa: E402
from tests.source.conftest import running_server  # noqa: E402
from tests.source.stores import make_postgres_engine  # noqa: E402


def best(fn, repeat=3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", type=int, default=4)
    parser.add_argument("--hot", type=int, default=2_500, help="hot rows per engine")
    parser.add_argument("--history", type=int, default=25_000, help="history rows per engine")
    args = parser.parse_args()
    records = [dump_run(run) for run in make_runs(args.hot).values()]
    terminal = [r for r in records if r["status"] in ("completed", "failed", "cancelled", "blocked")]
    history = []
    for i in range(args.history):
        record = dict(terminal[i % len(terminal)])
        record["run_id"] = f"old-{i:06d}"
        record["updated_at_ms"] = record["created_at_ms"] = NOW_MS - (i + 1) * 60_000
        history.append(record)
    with running_server() as url:
        engines = [f"tandem_rt_{i:016x}" for i in range(args.engines)]
        start = time.perf_counter()
        for schema in engines:
            make_postgres_engine(url, schema, records, history)
        print(f"fleet: {args.engines} engines x ({args.hot} hot + {args.history} history) rows, "
              f"built in {time.perf_counter() - start:.0f} s")
        source = PostgresSource(url, clock=ManualClock(NOW_MS), env={"USER": "bench"}, audit_owner=Path("/tmp/bench-pg-audit"))

        def first():
            follower = source.follower()
            follower.load()
            follower.close()

        print(f"first load (every engine: decode + validate + view): {best(first):.0f} ms")
        follower = source.follower()
        follower.load()
        print(f"poll, no change (stamps of every engine): {best(follower.load, 5):.0f} ms")
        samples = []
        with psycopg.connect(url, autocommit=True) as writer:
            ids = [r["run_id"] for r in records[:3]]
            for _ in range(5):
                writer.execute(
                    f'UPDATE "{engines[0]}".automation_runs SET updated_at_ms = updated_at_ms + 1 WHERE run_id = ANY(%s)',
                    (ids,),
                )
                before = follower.decoded_rows
                start = time.perf_counter()
                snapshot = follower.load()
                samples.append((time.perf_counter() - start) * 1000)
                assert len(snapshot.changed) == 3 and follower.decoded_rows - before == 3
        print(f"poll after one engine commits 3 rows: median {statistics.median(samples):.0f} ms (3 rows decoded)")
        follower.close()
        months: dict = {}
        print(f"archive_months over {args.engines * args.history} history rows: "
              f"{best(lambda: months.update(source.archive_months())):.0f} ms")
        running = next(r["run_id"] for r in records if r["status"] == "running")
        start = time.perf_counter()
        result = source.perform(ActionRequest(ActionKind.PAUSE, f"{engines[0]}/{running}", actor="bench"))
        print(f"pause one run (write lock, transaction, audit): {(time.perf_counter() - start) * 1000:.0f} ms ({result.ok})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
