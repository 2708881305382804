"""`tandem-tui engine`: which store, which engine, live or not, and which route actions take.

It runs the same detection the actions use (``tandem_tui.source.open``): the store
that is authoritative, the engine's URL and where it came from, whether an engine is
live and how that is known (its health answer, its lock file), where the API token came
from (never the token itself), and the route an action would take now. ``--json``
prints the same as one object. Exit 0 whatever it finds; 2 for bad options.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from tandem_tui.commands.options import add_source_options, source_of
from tandem_tui.commands.output import output_console
from tandem_tui.safe_text import json_text, literal
from tandem_tui.source.open import describe_engine


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "engine",
        help="which store, which engine, live or not, which route actions take",
        description="Which store is authoritative, where the engine answers, whether it is live "
        "and how that is known, where the API token comes from, and the route actions take.",
    )
    add_source_options(parser)
    parser.add_argument("--json", action="store_true", help="print it as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    source = source_of(args)
    try:
        detect = getattr(source, "detection", None)
        # The source's own detection, reused by describe(): the route shown is the route taken.
        detection = detect(fresh=True) if detect is not None else describe_engine(args)
        description = source.describe()
    finally:
        source.close()
    report = as_json(detection, description)
    if args.json:
        print(json_text(report))
        return 0
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("store", literal(f"{report['store']['kind']} · {report['store']['path']}"))
    table.add_row("", literal(report["store"]["why"]))
    table.add_row("engine", literal(f"{report['engine']['url']} ({report['engine']['url_from']})"))
    table.add_row("live", literal(("yes · " if report["engine"]["live"] else "no · ") + report["engine"]["how_known"]))
    table.add_row("lock", literal(report["engine"]["lock"]))
    table.add_row("token", literal(report["token"]["from"]))
    table.add_row("actions", literal(f"{report['route']} · {report['summary']}"))
    if report.get("why_read_only"):
        table.add_row("", literal(report["why_read_only"]))
    output_console().print(table)
    return 0


def as_json(detection: Any, description: Any) -> dict[str, Any]:
    return {
        "store": {"kind": detection.store.kind, "path": str(detection.store.path), "why": detection.store.why},
        "runs_file": str(detection.runs_file),
        "engine": {
            "url": detection.url.url,
            "url_from": detection.url.origin,
            "live": detection.live,
            "reachable": detection.reachable,
            "how_known": detection.how_known,
            "lock": detection.lock.why,
        },
        "token": {"found": detection.token.found, "from": detection.token.origin},
        "route": description.route.value,
        "summary": description.summary,
        "why_read_only": description.why_read_only,
    }
