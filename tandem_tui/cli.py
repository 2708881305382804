"""The `tandem-tui` command line: wires the command modules to argparse.

Without a sub-command it opens the console. Exit codes: 0 ok; 1 action refused or run
not found; 2 usage error or an unreadable / newer-schema file. Errors are one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tandem_tui import __version__
from tandem_tui.commands.options import CommandError

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CommandError as error:
        print(f"tandem-tui: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
