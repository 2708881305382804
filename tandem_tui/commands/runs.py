"""`tandem-tui runs`: the run list, with why each queued run waits.

Every run of the source, oldest first, as a table or (``--json``) a stable list of
objects. ``--status`` keeps one status; ``--reason`` keeps queued runs waiting for one
reason (``ready``: queued runs that nothing holds back). The table's columns are the
console's (``tandem_tui.present``): ``why waiting``, ``in status`` (time since the run
entered its current status) and ``updated``. It is printed as fixed-width lines (widths
from the rows shown, cut to the terminal's width): laying out 10k rows with a Rich table
took seconds. Text that comes from the store is shown literally: never read as markup,
control characters and escape sequences made visible instead of acted on.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from typing import Any

from tandem_tui.commands.options import add_source_options, read, source_of
from tandem_tui.commands.output import PIPED_WIDTH, clip, table_lines, terminal_width, write_lines
from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.domain.models import QueueReason, Run, RunStatus
from tandem_tui.domain.view import READY, QueueInfo, RunsView
from tandem_tui.present import (
    IN_STATUS,
    detail_text,
    format_age,
    in_status_text,
    reason_key,
    status_since_ms,
    why_text,
)
from tandem_tui.safe_text import json_text, sanitize

REASON_CHOICES = (*(reason.value for reason in QueueReason), READY)
STATUS_CHOICES = tuple(status.value for status in RunStatus)
HEADERS = ("id", "automation", "status", "why waiting", IN_STATUS, "updated", "detail")
#: The automation name gives way first on a narrow terminal.
AUTOMATION_WIDTH = 28
_IN_STATUS_COLUMN = HEADERS.index(IN_STATUS)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="list runs with why queued runs wait",
        description="List runs, oldest first, with the reason each queued run waits.",
    )
    add_source_options(parser)
    parser.add_argument("--status", choices=STATUS_CHOICES, help="only runs with this status")
    parser.add_argument(
        "--reason",
        choices=REASON_CHOICES,
        help="only queued runs waiting for this reason (ready: nothing holds them back)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    snapshot = read(source_of(args))
    now_ms = snapshot.freshness.read_at_ms
    # One object (or more) per run, none of them cyclic: no collection can free any.
    with gc_paused():
        rows = select(snapshot.runs, snapshot.view, now_ms, status=args.status, reason=args.reason)
        if args.json:
            print(json_text([as_json(run, info) for run, info in rows]))
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
        if reason is not None and (info is None or reason_key(info) != reason):
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


def table_row(run: Run, info: QueueInfo | None, now_ms: int, width: int = PIPED_WIDTH) -> tuple[str, ...]:
    """The table's cells for one run, every value from the store made literal and no
    longer than a line ``width`` cells wide can show (cut first: see ``output.clip``)."""
    return (
        sanitize(clip(run.run_id, width)),
        sanitize(clip(run.automation_id, width)),
        RunStatus(run.status).value,
        sanitize(clip(why_text(info), width)),
        in_status_text(status_since_ms(run, info), now_ms),
        format_age(run.updated_at_ms, now_ms),
        sanitize(clip(detail_text(run), width)),
    )


def print_table(rows: Iterable[tuple[Run, QueueInfo | None]], now_ms: int) -> None:
    width = terminal_width()
    cells = [table_row(run, info, now_ms, width) for run, info in rows]
    if not cells:
        print("no runs")
        return
    write_lines(
        table_lines(
            HEADERS,
            cells,
            width=width,
            max_widths={1: AUTOMATION_WIDTH},
            right=frozenset({_IN_STATUS_COLUMN}),
        )
    )
