"""`tandem-tui status`: the scheduler metrics of the runs file.

A summary table, or (``--json``) the server's ``AutomationSchedulerMetrics`` fields plus
``max_concurrent_runs``, ``runs_by_status`` and ``locked_workspaces``. With ``--watch``
it keeps watching the file and prints one line per change (one JSON object per line
with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from tandem_tui.commands.options import CommandError, add_runs_file_option, resolve_runs_file
from tandem_tui.commands.runs import load_runs, output_console
from tandem_tui.safe_text import literal, sanitize
from tandem_tui.domain.clock import SYSTEM_CLOCK
from tandem_tui.domain.snapshot import Snapshot
from tandem_tui.domain.scheduler import max_concurrent_runs_from_env
from tandem_tui.domain.view import RunsView
from tandem_tui.humanize import format_duration_ms, format_timestamp


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="scheduler metrics: active, queued by reason, wait times",
        description="Scheduler metrics of the runs file.",
    )
    add_runs_file_option(parser)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument(
        "--watch", action="store_true", help="keep watching; print one line per change"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.watch:
        return watch(args)
    now_ms = SYSTEM_CLOCK.now_ms()
    runs = load_runs(args, now_ms)
    report = RunsView.build(
        runs, now_ms=now_ms, max_concurrent_runs=max_concurrent_runs_from_env(os.environ)
    ).status_report(runs)
    if args.json:
        # With a live engine, its own /scheduler/metrics beside ours (engine issue 10).
        engine_metrics = _engine_metrics(args)
        if engine_metrics is not None:
            report = {**report, "engine_metrics": engine_metrics}
        print(json.dumps(report, indent=2))
    else:
        print_summary(report)
    return 0


def _engine_metrics(args: argparse.Namespace) -> dict[str, Any] | None:
    """The live engine's own scheduler metrics, or None (no engine, no token, bad options)."""
    from tandem_tui.source.open import SourceOptionError, open_source

    try:
        source = open_source(args)
    except SourceOptionError:
        return None
    try:
        metrics = getattr(source, "engine_metrics", None)
        return metrics() if metrics is not None else None
    finally:
        source.close()


def print_summary(report: Mapping[str, Any]) -> None:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column("metric", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("active", f"{report['active_runs']} / {report['max_concurrent_runs']}")
    queued = report["queued_runs_by_reason"]
    table.add_row(
        "queued",
        ", ".join(f"{reason} {count}" for reason, count in queued.items()) if queued else "0",
    )
    table.add_row("admitted", str(report["admitted_total"]))
    table.add_row("completed", str(report["completed_total"]))
    table.add_row("avg wait", format_duration_ms(report["avg_wait_ms"]))
    table.add_row("p95 wait", format_duration_ms(report["p95_wait_ms"]))
    present = {status: n for status, n in report["runs_by_status"].items() if n}
    table.add_row("runs", ", ".join(f"{s} {n}" for s, n in present.items()) or "0")
    for workspace, holder in report["locked_workspaces"].items():
        table.add_row("locked", literal(workspace) + Text(" · ") + literal(holder))
    output_console().print(table)


def summary_line(report: Mapping[str, Any]) -> str:
    """The report in one line, for ``--watch``."""
    queued = report["queued_runs_by_reason"]
    queued_text = " ".join(f"{reason}={count}" for reason, count in queued.items()) or "0"
    return (
        f"active {report['active_runs']}/{report['max_concurrent_runs']}"
        f" · queued {queued_text}"
        f" · admitted {report['admitted_total']} completed {report['completed_total']}"
        f" · wait avg {format_duration_ms(report['avg_wait_ms'])}"
        f" p95 {format_duration_ms(report['p95_wait_ms'])}"
        f" · locks {len(report['locked_workspaces'])}"
    )


def watch(args: argparse.Namespace) -> int:
    """Print the report now, then one line per change until interrupted.

    The file must be usable at the start (else exit 2, like ``status``); later a bad
    write prints a stale line and the watch carries on with the last good runs.
    """
    from tandem_tui.source.file.watcher import RunsWatcher

    watcher = RunsWatcher(resolve_runs_file(args), clock=SYSTEM_CLOCK)
    first = watcher.load()
    if first.freshness.stale:
        raise CommandError(first.freshness.error or "the runs file is unusable")
    print(watch_line(first, as_json=args.json), flush=True)
    shown = (first.freshness.stale, first.freshness.error)
    try:
        for snapshot in watcher.iterate():
            state = (snapshot.freshness.stale, snapshot.freshness.error)
            # A snapshot with no run changed and no news about the file (a shard
            # landing, the watch starting) is not a change to report.
            if not snapshot.changed and state == shown:
                continue
            shown = state
            print(watch_line(snapshot, as_json=args.json), flush=True)
    finally:
        watcher.stop()
    return 0


def watch_line(snapshot: Snapshot, *, as_json: bool) -> str:
    """One ``--watch`` line: the report when it was read, and whether it is stale."""
    report = snapshot.view.status_report(snapshot.runs)
    freshness = snapshot.freshness
    if as_json:
        return json.dumps(
            {
                **report,
                "read_at_ms": freshness.read_at_ms,
                "stale": freshness.stale,
                "error": freshness.error,
                "changed_runs": len(snapshot.changed),
            }
        )
    line = f"{format_timestamp(freshness.read_at_ms)}  {summary_line(report)}"
    if freshness.stale:
        line += f" · STALE: {sanitize(freshness.error or 'unreadable')}"
    return line
