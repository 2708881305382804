"""Options and errors shared by every sub-command."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNUSABLE = 2


class CommandError(Exception):
    """A one-line failure the CLI prints to stderr and turns into an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_UNUSABLE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_runs_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs-file",
        metavar="PATH",
        type=Path,
        # SUPPRESS: a sub-command's own --runs-file must not reset the top-level one.
        default=argparse.SUPPRESS,
        help="the runs file (default: as the Tandem server resolves it from TANDEM_STATE_DIR)",
    )


def resolve_runs_file(args: argparse.Namespace) -> Path:
    """The runs file named by ``--runs-file``, else the server's default location."""
    from tandem_tui.source.file.store import default_runs_file_path

    if getattr(args, "runs_file", None) is not None:
        return Path(args.runs_file).expanduser()
    return default_runs_file_path(os.environ)
