"""`tandem-tui runs`: the run list, with why each queued run waits.

Every run in the runs file, oldest first, as a table or (``--json``) a stable list of
objects. ``--status`` keeps one status; ``--reason`` keeps queued runs waiting for one
reason (``ready``: queued runs that nothing holds back). Text that comes from the file
is shown literally: never read as markup, control characters and escape sequences made
visible instead of acted on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tandem_tui.commands.options import CommandError, add_runs_file_option, resolve_runs_file
from tandem_tui.domain.clock import SYSTEM_CLOCK
from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.domain.models import QueueReason, Run, RunStatus
from tandem_tui.source.file.store import RunsFileError, read_runs_file
from tandem_tui.domain.scheduler import max_concurrent_runs_from_env
from tandem_tui.domain.view import READY, QueueInfo, RunsView
from tandem_tui.humanize import format_age, format_duration_ms
from tandem_tui.safe_text import literal

REASON_CHOICES = (*(reason.value for reason in QueueReason), READY)
STATUS_CHOICES = tuple(status.value for status in RunStatus)
#: Line width for output that goes to a pipe or a file rather than a terminal.
PIPED_WIDTH = 1000


def load_runs(args: argparse.Namespace, now_ms: int) -> dict[str, Run]:
    """The runs in the file the arguments name; an unusable file is a one-line error."""
    path = resolve_runs_file(args)
    try:
        # The runs live until this one-shot command exits: freeze them so the
        # collections that the view's allocations trigger don't walk them again.
        with gc_paused(freeze=True):
            return read_runs_file(path, now_ms=now_ms)
    except RunsFileError as error:
        raise CommandError(" ".join(str(error).splitlines())) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="list runs with why queued runs wait",
        description="List runs, oldest first, with the reason each queued run waits.",
    )
    add_runs_file_option(parser)
    parser.add_argument("--status", choices=STATUS_CHOICES, help="only runs with this status")
    parser.add_argument(
        "--reason",
        choices=REASON_CHOICES,
        help="only queued runs waiting for this reason (ready: nothing holds them back)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    now_ms = SYSTEM_CLOCK.now_ms()
    runs = load_runs(args, now_ms)
    view = RunsView.build(runs, now_ms=now_ms, max_concurrent_runs=max_concurrent_runs_from_env(os.environ))
    rows = select(runs, view, now_ms, status=args.status, reason=args.reason)
    if args.json:
        print(json.dumps([as_json(run, info) for run, info in rows], indent=2))
    else:
        print_table(rows, now_ms)
    return 0


def select(
    runs: Mapping[str, Run],
    view: RunsView,
    now_ms: int,
    *,
    status: str | None = None,
    reason: str | None = None,
) -> list[tuple[Run, QueueInfo | None]]:
    """The runs to show with their queue info, oldest first."""
    rows = []
    for run in sorted(runs.values(), key=lambda r: (r.created_at_ms, r.run_id)):
        if status is not None and run.status != status:
            continue
        info = view.queue_info(run, now_ms)
        if reason is not None:
            if info is None:
                continue
            actual = info.reason.value if info.reason is not None else READY
            if actual != reason:
                continue
        rows.append((run, info))
    return rows


def as_json(run: Run, info: QueueInfo | None) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "automation_id": run.automation_id,
        "status": RunStatus(run.status).value,
        "queue_reason": info.reason.value if info is not None and info.reason is not None else None,
        "queue_detail": info.text if info is not None else None,
        "workspace_root": run.workspace_root,
        "created_at_ms": run.created_at_ms,
        "updated_at_ms": run.updated_at_ms,
        "detail": run.detail,
    }


def wait_or_age(run: Run, info: QueueInfo | None, now_ms: int) -> str:
    """Time in the queue for a queued run, else the run's age."""
    since = info.queued_at_ms if info is not None and info.queued_at_ms is not None else run.created_at_ms
    return format_duration_ms(max(now_ms - since, 0))


def output_console() -> Console:
    """A console on stdout; piped output is not cut to 80 columns (grep wants whole lines)."""
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(file=sys.stdout, highlight=False, width=PIPED_WIDTH if wide else None)


def print_table(rows: Iterable[tuple[Run, QueueInfo | None]], now_ms: int) -> None:
    cells = [
        (
            literal(run.run_id),
            literal(run.automation_id),
            Text(RunStatus(run.status).value),
            literal(info.text) if info is not None else Text(""),
            Text(wait_or_age(run, info, now_ms)),
            Text(format_age(run.updated_at_ms, now_ms)),
            literal(run.detail or ""),
        )
        for run, info in rows
    ]
    console = output_console()
    if not cells:
        console.print(Text("no runs"))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    headers = ("id", "automation", "status", "why waiting", "wait/age", "updated")
    for index, header in enumerate(headers):
        # On a narrow terminal the automation name and the detail give way first.
        widest = max(len(header), *(row[index].cell_len for row in cells))
        if header == "automation":
            table.add_column(header, no_wrap=True, overflow="ellipsis", max_width=28)
        else:
            table.add_column(header, no_wrap=True, min_width=widest)
    table.add_column("detail", overflow="fold", ratio=1)
    for row in cells:
        table.add_row(*row)
    console.print(table)
