"""`tandem-tui history RUN_ID`: the lifecycle history of one run, hot or archived.

The run is looked up in the hot runs file first, then in its history shards. Each event
is shown with its UTC time, its offset from the first event, the event name, reason,
stop kind and metadata, as a table or (``--json``) as
``{"run_id", "archived", "status", "lifecycle_history"}``. Text from the file is shown
literally, never as markup.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from tandem_tui.commands.options import EXIT_REFUSED, CommandError, add_runs_file_option, resolve_runs_file
from tandem_tui.commands.runs import output_console
from tandem_tui.safe_text import literal
from tandem_tui.domain.clock import SYSTEM_CLOCK
from tandem_tui.domain.models import LifecycleRecord, Run, dump_model
from tandem_tui.source.file.shards import ShardIndex, is_nonterminal_recovered_context_run, read_shard
from tandem_tui.source.file.store import RunsFileError, read_runs_file
from tandem_tui.humanize import format_duration_ms, format_timestamp

#: Present on every event (the server adds it); shown once in the header instead.
_PROFILE_KEY = "effective_execution_profile"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history",
        help="lifecycle history of one run (hot or archived)",
        description="Show the lifecycle history of one run, from the runs file or its history shards.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="the run to show")
    add_runs_file_option(parser)
    parser.add_argument("--json", action="store_true", help="print the history as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    path = resolve_runs_file(args)
    found, archived = find_run(path, args.run_id, now_ms=SYSTEM_CLOCK.now_ms())
    if args.json:
        print(json.dumps(as_json(found, archived), indent=2, ensure_ascii=False))
    else:
        print_history(found, archived)
    return 0


def find_run(path: Path, run_id: str, *, now_ms: int) -> tuple[Run, bool]:
    """The run and whether it came from history; unusable files and absent runs are errors."""
    try:
        hot = read_runs_file(path, now_ms=now_ms)
    except RunsFileError as error:
        raise CommandError(_one_line(error)) from None
    if run_id in hot:
        return hot[run_id], False
    shard = ShardIndex.scan(path).path_for(run_id)
    if shard is not None:
        try:
            archived = read_shard(shard)
        except RunsFileError as error:
            raise CommandError(_one_line(error)) from None
        if archived.run_id == run_id and not is_nonterminal_recovered_context_run(archived):
            return archived, True
    raise CommandError(f"run {run_id} not found in {path} or its history", EXIT_REFUSED)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


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
    """One row of cells per lifecycle event, every file-borne value literal."""
    history = found.checkpoint.lifecycle_history
    if not history:
        return []
    first = history[0].recorded_at_ms
    return [
        (
            Text(format_timestamp(record.recorded_at_ms)),
            Text("+" + format_duration_ms(record.recorded_at_ms - first)),
            literal(record.event, "bold"),
            literal(record.reason or ""),
            Text(record.stop_kind.value if record.stop_kind is not None else ""),
            literal(metadata_text(record), "dim"),
        )
        for record in history
    ]


def header(found: Run, archived: bool) -> Text:
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
        table.add_column(name, no_wrap=True, min_width=widest)
    table.add_column("reason", overflow="fold", ratio=1)
    table.add_column("stop kind", no_wrap=True)
    table.add_column("metadata", overflow="fold", ratio=2)
    for row in rows:
        table.add_row(*row)
    console.print(table)
