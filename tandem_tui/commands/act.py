"""`tandem-tui pause|resume|requeue|release-lock RUN_ID`: operator actions from the shell.

The sub-commands are the entries of :data:`tandem_tui.domain.actions.ACTIONS` (name,
help, kind). Each goes to the source's :meth:`~tandem_tui.source.base.RunsSource.perform`,
like the console's: through a live engine's HTTP API when one is live, else our core's
locked compare-and-swap write of the runs file; lifecycle events naming the operator,
and the attempt audited either way.
Exit 0 with the updated run (a short summary, or ``--json``: ``{"ok": true, "action",
"run_id", "previous_status", "new_status", "archived", "message", "run"}``); exit 1 when
the action is refused or the run is not found (one line on stderr; with ``--json`` the
same object with ``"ok": false`` is printed on stdout too); exit 2 for an unusable runs
file, bad arguments, or a live engine that cannot be reached or refuses the token.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

# What an action needs and no more: the figures and views of present.py, the console's
# output helpers and rich load only where a terminal is written to (print_summary).
from tandem_tui.commands.options import EXIT_REFUSED, EXIT_UNUSABLE, CommandError, add_source_options, say_on_stderr, source_of
from tandem_tui.domain.actions import ACTIONS, ActionRequest, ActionResult
from tandem_tui.domain.models import dump_run
from tandem_tui.one_shot import command_ends_process
from tandem_tui.safe_text import json_text, sanitize
from tandem_tui.source.base import SourceError


def register(subparsers: argparse._SubParsersAction) -> None:
    """One sub-command per entry of the action registry (``domain.actions.ACTIONS``)."""
    for spec in ACTIONS.values():
        summary = spec.help
        parser = subparsers.add_parser(
            spec.cli_name, help=summary, description=summary[0].upper() + summary[1:] + "."
        )
        parser.add_argument("run_id", metavar="RUN_ID", help="the run to act on")
        add_source_options(parser)
        parser.add_argument("--reason", metavar="TEXT", help="why (recorded in the run's events and the audit log)")
        parser.add_argument("--actor", metavar="NAME", help="who acts (default: $USER@hostname)")
        parser.add_argument(
            "--expect-updated-at",
            metavar="MS",
            type=_non_negative_int,
            dest="expect_updated_at_ms",
            help="refuse if the run's updated_at_ms is no longer MS (it changed since you looked)",
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.set_defaults(handler=run, action_kind=spec.kind)


def _non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return number


def run(args: argparse.Namespace) -> int:
    command_ends_process()
    source = source_of(args, on_wait=say_on_stderr)
    request = ActionRequest(
        kind=args.action_kind,
        run_id=args.run_id,
        reason=args.reason,
        actor=args.actor,
        expect_updated_at_ms=args.expect_updated_at_ms,
    )
    try:
        result = source.perform(request)
    except SourceError as error:
        raise CommandError(str(error)) from None
    finally:
        source.close()
    if args.json:
        print(json_text(as_json(result)))
    if not result.ok:
        raise CommandError(" ".join(result.message.split()), EXIT_UNUSABLE if result.unusable else EXIT_REFUSED)
    if not args.json:
        print_summary(result)
    return 0


def as_json(result: ActionResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "action": result.kind.value,
        "run_id": result.run_id,
        "previous_status": result.previous_status.value if result.previous_status else None,
        "new_status": result.new_status.value if result.new_status else None,
        "archived": result.archived,
        "message": result.message,
        "run": dump_run(result.run) if result.run is not None else None,
    }


def summary_parts(result: ActionResult) -> list[tuple[str, str]]:
    """The summary as (text, style) pieces, every text from the run made literal."""
    run = result.run
    parts = [
        (f"{result.kind.value.replace('_', ' ')} ", "bold"),
        (sanitize(result.run_id), "bold"),
        (": ", ""),
        (sanitize(result.message.split(": ", 1)[-1]), ""),
    ]
    if run is not None and run.checkpoint.lifecycle_history:
        last = run.checkpoint.lifecycle_history[-1]
        parts += [("\n  event ", ""), (sanitize(last.event), "")]
        if last.reason:
            parts += [(" · ", ""), (sanitize(last.reason), "")]
        metadata = last.metadata if isinstance(last.metadata, dict) else {}
        if metadata.get("actor"):
            parts += [(" · by ", ""), (sanitize(metadata["actor"]), "")]
    return parts


def print_summary(result: ActionResult) -> None:
    """The summary; styled on a terminal, plain text (no rich to load) into a pipe."""
    parts = summary_parts(result)
    if not sys.stdout.isatty():
        print("".join(text for text, _ in parts))
        return
    from rich.text import Text

    from tandem_tui.commands.output import output_console

    text = Text()
    for piece, style in parts:
        text.append(piece, style=style)
    output_console().print(text)
