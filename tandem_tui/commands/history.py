"""`tandem-tui history RUN_ID`: the lifecycle history of one run, hot or archived.

The source looks the run up (``RunsSource.find_run``: the hot set first, then the
archive). Each event is shown as the console's timeline shows it
(``tandem_tui.present.timeline_rows``): time order, UTC time, offset from the first
event, ``◆`` before an operator's action, then reason, stop kind and metadata; or
(``--json``) ``{"run_id", "archived", "status", "lifecycle_history"}`` in stored order.
Text from the store is shown literally, never as markup.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from tandem_tui.commands.options import EXIT_REFUSED, CommandError, add_source_options, source_of
from tandem_tui.commands.output import output_console
from tandem_tui.domain.models import LifecycleRecord, Run, dump_model
from tandem_tui.one_shot import command_ends_process
from tandem_tui.present import OPERATOR_MARKER, format_timestamp, timeline_rows
from tandem_tui.safe_text import json_text, literal
from tandem_tui.source.base import FoundRun, SourceError

if TYPE_CHECKING:
    from rich.text import Text

#: Present on every event (the server adds it); shown once in the header instead.
_PROFILE_KEY = "effective_execution_profile"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history",
        help="lifecycle history of one run (hot or archived)",
        description="Show the lifecycle history of one run, from the runs file or its history shards.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="the run to show")
    add_source_options(parser)
    parser.add_argument("--json", action="store_true", help="print the history as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    found = find_run(args, args.run_id)
    if args.json:
        print(json_text(as_json(found.run, found.archived)))
    else:
        print_history(found.run, found.archived)
    return 0


def find_run(args: argparse.Namespace, run_id: str) -> FoundRun:
    """The run, hot or archived; an unusable store (2) and an absent run (1) are errors."""
    command_ends_process()
    source = source_of(args)
    try:
        found = source.find_run(run_id)
    except SourceError as error:
        raise CommandError(str(error)) from None
    if found is None:
        where = source.describe().location
        raise CommandError(f"run {run_id} not found in {where} or its history", EXIT_REFUSED)
    return found


def as_json(found: Run, archived: bool) -> dict[str, Any]:
    return {
        "run_id": found.run_id,
        "archived": archived,
        "status": found.status.value,
        "lifecycle_history": [dump_model(record) for record in found.checkpoint.lifecycle_history],
    }


def metadata_text(record: LifecycleRecord) -> str:
    """The event's metadata as compact JSON, without the per-event execution profile."""
    metadata = record.metadata
    if isinstance(metadata, dict):
        metadata = {key: value for key, value in metadata.items() if key != _PROFILE_KEY}
        if not metadata:
            return ""
    elif metadata is None:
        return ""
    return json.dumps(metadata, ensure_ascii=False, separators=(", ", ": "))


def history_rows(found: Run) -> list[tuple[Text, ...]]:
    """One row of cells per lifecycle event (``tandem_tui.present.timeline_rows``: time
    order, offset from the first event, operator actions marked), every value literal."""
    from rich.text import Text  # here: ``history --json`` never loads rich

    cells = []
    for row in timeline_rows(found):
        event = Text(f"{OPERATOR_MARKER} " if row.operator else "  ", style="bold")
        event.append_text(literal(row.event, "bold" if not row.bookkeeping else "dim"))
        cells.append(
            (
                Text(format_timestamp(row.record.recorded_at_ms)),
                Text(row.offset_text, justify="right"),
                event,
                literal(row.reason),
                Text(row.stop_kind),
                literal(metadata_text(row.record), "dim"),
            )
        )
    return cells


def header(found: Run, archived: bool) -> Text:
    from rich.text import Text

    text = Text()
    text.append("run ")
    text.append_text(literal(found.run_id, "bold"))
    text.append(" · automation ")
    text.append_text(literal(found.automation_id))
    text.append(f" · {found.status.value}")
    text.append(f" · {'archived' if archived else 'hot'}")
    text.append(f" · profile {found.effective_execution_profile.value}")
    return text


def print_history(found: Run, archived: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    console = output_console()
    console.print(header(found, archived))
    rows = history_rows(found)
    if not rows:
        console.print(Text("no lifecycle events"))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    # Times, offsets and event names stay whole; reason and metadata wrap to fit.
    for index, name in enumerate(("time (UTC)", "offset", "event")):
        widest = max(len(name), *(row[index].cell_len for row in rows))
        table.add_column(name, no_wrap=True, min_width=widest, justify="right" if name == "offset" else "left")
    table.add_column("reason", overflow="fold", ratio=1)
    table.add_column("stop kind", no_wrap=True)
    table.add_column("metadata", overflow="fold", ratio=2)
    for row in rows:
        table.add_row(*row)
    console.print(table)
