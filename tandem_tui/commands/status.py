"""`tandem-tui status`: the scheduler metrics of the runs file.

A summary table, or (``--json``) the server's ``AutomationSchedulerMetrics`` fields plus
``max_concurrent_runs``, ``runs_by_status`` and ``locked_workspaces``. With ``--watch``
it keeps watching the file and prints one line per change (one JSON object per line
with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from tandem_tui.commands.options import CommandError, add_runs_file_option
from tandem_tui.commands.runs import load_runs, output_console, plain
from tandem_tui.core.clock import SYSTEM_CLOCK
from tandem_tui.core.view import RunsView
from tandem_tui.humanize import format_duration_ms


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
    report = RunsView.build(runs, now_ms=now_ms).status_report(runs)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_summary(report)
    return 0


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
        table.add_row("locked", plain(workspace) + Text(" · ") + plain(holder))
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
    try:
        from tandem_tui.watch import RunsWatcher  # noqa: F401
    except ImportError:
        raise CommandError("status --watch is not available in this build") from None
    raise CommandError("status --watch is not available in this build")
