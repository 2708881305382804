"""`tandem-tui status`: the figures of the runs source (``tandem_tui.present.Figures``).

A summary table, or (``--json``) the server's ``AutomationSchedulerMetrics`` fields plus
``max_concurrent_runs``, ``queued_ready``, ``queued_total``, ``runs_by_status`` and
``locked_workspaces``. With ``--watch`` it follows the source and prints one line per
change (one JSON object per line with ``--json``). The figures are the console's, on
the same snapshot (docs/architecture.md, "What the figures mean").
"""

from __future__ import annotations

import argparse
import threading
from typing import TYPE_CHECKING, Any

from tandem_tui.commands.options import CommandError, add_source_options, read, source_of
from tandem_tui.present import Figures, figures, format_duration_ms, format_timestamp
from tandem_tui.safe_text import json_text, literal, sanitize

if TYPE_CHECKING:
    from tandem_tui.domain.snapshot import Snapshot
    from tandem_tui.source.base import RunsSource


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="scheduler metrics: active, queued by reason, wait times",
        description="Scheduler metrics of the runs file.",
    )
    add_source_options(parser)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument(
        "--watch", action="store_true", help="keep watching; print one line per change"
    )
    parser.set_defaults(handler=run)


def snapshot_figures(snapshot: Snapshot) -> Figures:
    """The figures of a snapshot, as of when it was read."""
    return figures(snapshot.runs, snapshot.view, snapshot.freshness.read_at_ms)


def run(args: argparse.Namespace) -> int:
    if args.watch:
        return watch(args)
    source = source_of(args)
    try:
        return _report(args, source)
    finally:
        source.close()


def _report(args: argparse.Namespace, source: RunsSource) -> int:
    shown = snapshot_figures(read(source))
    if args.json:
        report = shown.status_json()
        # With a live engine, its own /scheduler/metrics beside ours (they differ: the
        # engine counts from its memory, ours are derived from the runs file).
        engine_metrics = _engine_metrics(source)
        if engine_metrics is not None:
            report = {**report, "engine_metrics": engine_metrics}
        print(json_text(report))
    else:
        print_summary(shown)
    return 0


def _engine_metrics(source: RunsSource) -> dict[str, Any] | None:
    """The live engine's own scheduler metrics, or None (no engine, or none reachable)."""
    metrics = getattr(source, "engine_metrics", None)
    return metrics() if metrics is not None else None


def queued_text(shown: Figures, *, separator: str = ", ", joiner: str = " ") -> str:
    """``5: capacity 1, workspace_lock 1, ready 3`` (or ``0``)."""
    if not shown.queued_total:
        return "0"
    parts = separator.join(f"{reason}{joiner}{count}" for reason, count in shown.queued_by_reason.items())
    return f"{shown.queued_total}: {parts}"


def print_summary(shown: Figures) -> None:
    from rich.table import Table
    from rich.text import Text

    from tandem_tui.commands.output import output_console

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column("metric", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("active", f"{shown.active} / {shown.capacity}")
    table.add_row("queued", queued_text(shown))
    table.add_row("admitted", str(shown.admitted))
    table.add_row("completed", str(shown.completed))
    table.add_row("avg wait", format_duration_ms(shown.avg_wait_ms))
    table.add_row("p95 wait", format_duration_ms(shown.p95_wait_ms))
    present = {status: n for status, n in shown.runs_by_status.items() if n}
    table.add_row("runs", ", ".join(f"{s} {n}" for s, n in present.items()) or "0")
    for workspace, holder in sorted(shown.locked_workspaces.items()):
        table.add_row("locked", literal(workspace) + Text(" · ") + literal(holder))
    output_console().print(table)


def summary_line(shown: Figures) -> str:
    """The figures in one line, for ``--watch``."""
    return (
        f"active {shown.active}/{shown.capacity}"
        f" · queued {queued_text(shown, separator=' ', joiner='=')}"
        f" · admitted {shown.admitted} completed {shown.completed}"
        f" · wait avg {format_duration_ms(shown.avg_wait_ms)}"
        f" p95 {format_duration_ms(shown.p95_wait_ms)}"
        f" · locks {len(shown.locked_workspaces)}"
    )


def watch(args: argparse.Namespace) -> int:
    """Print the figures now, then one line per change until interrupted.

    The source must be usable at the start (else exit 2, like ``status``); later a bad
    write prints a stale line and the watch carries on with the last good runs.
    """
    source = source_of(args)
    stop = threading.Event()
    snapshots = source.follow(stop)
    shown: tuple[bool, str | None] | None = None
    try:
        for snapshot in snapshots:
            freshness = snapshot.freshness
            state = (freshness.stale, freshness.error)
            if shown is None:
                if freshness.stale:
                    raise CommandError(freshness.error or "the runs source is unusable")
            # A snapshot with no run changed and no news about the store (a shard
            # landing, the watch starting) is not a change to report.
            elif not snapshot.changed and state == shown:
                continue
            shown = state
            print(watch_line(snapshot, as_json=args.json), flush=True)
    finally:
        stop.set()
        snapshots.close()
        source.close()
    return 0


def watch_line(snapshot: Snapshot, *, as_json: bool) -> str:
    """One ``--watch`` line: the figures when read, and whether they are stale."""
    shown = snapshot_figures(snapshot)
    freshness = snapshot.freshness
    if as_json:
        report: dict[str, Any] = shown.status_json()
        return json_text(
            {
                **report,
                "read_at_ms": freshness.read_at_ms,
                "stale": freshness.stale,
                "error": freshness.error,
                "changed_runs": len(snapshot.changed),
            },
            indent=None,
        )
    line = f"{format_timestamp(freshness.read_at_ms)}  {summary_line(shown)}"
    if freshness.stale:
        line += f" · STALE: {sanitize(freshness.error or 'unreadable')}"
    return line
