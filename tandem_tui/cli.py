"""The `tandem-tui` command line: wires the command modules to argparse.

Without a sub-command it opens the console. Exit codes: 0 ok; 1 action refused or run
not found; 2 usage error or an unreadable / newer-schema file; 70 an internal error,
whose traceback goes to the log file that the one line on stderr names. Errors are one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tandem_tui import __version__
from tandem_tui.commands.options import CommandError
from tandem_tui.domain.clock import SYSTEM_CLOCK, Clock

#: Each module has ``register(subparsers)``; the console module also adds the top-level options.
COMMAND_MODULES = ("runs", "history", "status", "act", "engine", "simulate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tandem-tui",
        description="The operator console for Tandem automation runs.",
    )
    parser.add_argument("--version", action="version", version=f"tandem-tui {__version__}")
    console = importlib.import_module("tandem_tui.commands.console")
    console.configure(parser)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"tandem_tui.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, *, clock: Clock = SYSTEM_CLOCK) -> int:
    """Run one command. ``clock`` is the one "now" every command reads (tests pass a
    ``ManualClock``)."""
    parser = build_parser()
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
