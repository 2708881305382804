"""The `tandem-tui` command line: wires the command modules to argparse.

Without a sub-command it opens the console. Exit codes: 0 ok; 1 action refused or run
not found; 2 usage error or an unreadable / newer-schema file; 70 an internal error,
whose traceback goes to the log file that the one line on stderr names. Errors are one
line on stderr, never a traceback.

Start-up imports only what the chosen command needs. :data:`COMMANDS` names every
sub-command with its module and one-line help, so the top-level parser (``--version``,
``--help``, choosing a command) is built without importing any command module; only the
chosen command's module is imported, to register its own options. A command module may
import rich, pydantic-core or textual; ``--version`` and ``--help`` import none of them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple

from tandem_tui import __version__
from tandem_tui.commands.options import CommandError
from tandem_tui.domain.clock import SYSTEM_CLOCK, Clock


class Command(NamedTuple):
    """A sub-command: its name, the module under ``tandem_tui.commands`` that registers it
    (``register(subparsers)``), and the help line the top-level ``--help`` shows (the
    same line the module registers; a test holds them equal)."""

    name: str
    module: str
    help: str


#: Every sub-command, in the order ``--help`` lists them. A module may register several
#: names (``act`` registers one per operator action); each name has its own row.
COMMANDS: tuple[Command, ...] = (
    Command("runs", "runs", "list runs with why queued runs wait"),
    Command("history", "history", "lifecycle history of one run (hot or archived)"),
    Command("status", "status", "scheduler metrics: active, queued by reason, wait times"),
    # The operator actions: one row per entry of domain.actions.ACTIONS (its cli_name and
    # help; tests/test_cli.py holds them equal: the registry stays the one declaration,
    # this table only spares --help the import of the domain).
    Command("pause", "act", "pause a running or queued run"),
    Command("resume", "act", "resume a paused run (back to the queue)"),
    Command(
        "requeue",
        "act",
        "recover a failed/blocked/paused run as the server does, requeue a running one whose "
        "claim expired, or skip a retry backoff",
    ),
    Command("cancel", "act", "cancel a run that is not finished (operator_stopped); a finished one is left as it is"),
    Command(
        "release-lock",
        "act",
        "release the workspace lock or execution claim a run holds (running/pausing -> paused)",
    ),
    Command("engine", "engine", "which store, which engine, live or not, which route actions take"),
    Command("simulate", "simulate", "drive simulated automation runs into a state directory"),
)

#: The command modules, each once, in table order.
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(command.module for command in COMMANDS))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with ``command``'s module registering its own sub-parser(s).

    Every other sub-command is a stand-in that takes anything (its help line comes from
    :data:`COMMANDS`): enough to list it in ``--help`` and to recognise it as the choice.
    ``command=None`` builds the parser of stand-ins only, which parses the top-level
    options and tells which command was chosen.
    """
    parser = argparse.ArgumentParser(
        prog="tandem-tui",
        description="The operator console for Tandem automation runs.",
    )
    parser.add_argument("--version", action="version", version=f"tandem-tui {__version__}")
    console = importlib.import_module("tandem_tui.commands.console")
    console.configure(parser)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    registered: set[str] = set()
    chosen = next((entry for entry in COMMANDS if entry.name == command), None)
    for entry in COMMANDS:
        if entry.name in registered:
            continue
        if chosen is not None and entry.module == chosen.module:
            before = set(subparsers.choices)
            importlib.import_module(f"tandem_tui.commands.{entry.module}").register(subparsers)
            registered |= set(subparsers.choices) - before
        else:
            # No -h of its own: "tandem-tui status -h" must reach the real status parser.
            subparsers.add_parser(entry.name, help=entry.help, add_help=False)
            registered.add(entry.name)
    return parser


def chosen_command(argv: Sequence[str] | None) -> str | None:
    """The sub-command ``argv`` names, or None for the console.

    Parses with the stand-ins only, so ``--version``, ``--help`` and top-level usage
    errors are answered here without importing any command module.
    """
    namespace, _ = build_parser().parse_known_args(argv)
    return namespace.command


def main(argv: Sequence[str] | None = None, *, clock: Clock = SYSTEM_CLOCK) -> int:
    """Run one command. ``clock`` is the one "now" every command reads (tests pass a
    ``ManualClock``)."""
    parser = build_parser(chosen_command(argv))
    args = parser.parse_args(argv)
    args.clock = clock
    try:
        return int(args.handler(args) or 0)
    except CommandError as error:
        print(f"tandem-tui: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as error:  # noqa: BLE001 - the catch-all: one line and a log, exit 70
        from tandem_tui.crash import report_crash

        return report_crash(error, argv=list(argv) if argv is not None else None)


def run() -> int:
    """The program: ``main()`` in a process that ends with the command (the ``tandem-tui``
    script and ``python -m tandem_tui``), so a one-shot command may leave what it read to
    the process's end (:mod:`tandem_tui.one_shot`)."""
    from tandem_tui import one_shot

    one_shot.started_from_command_line()
    return main()
