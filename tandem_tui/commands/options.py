"""What every sub-command shares: exit codes, the one-line error, and its source.

A command never names a file: :func:`source_of` turns the parsed options
(``--runs-file``, ``--state-dir``; :func:`tandem_tui.source.open.add_source_options`)
into a :class:`~tandem_tui.source.base.RunsSource`, with the clock ``cli.main`` was
given, and :func:`read` takes one snapshot of it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

# Light imports only: the CLI builds its parser (--version, --help) from this module
# without loading pydantic-core or rich; the domain and the sources load when a command runs.
from tandem_tui.domain.clock import SYSTEM_CLOCK, Clock
from tandem_tui.one_shot import command_ends_process, keep_until_exit
from tandem_tui.safe_text import sanitize
from tandem_tui.source.open import SourceOptionError, add_source_options, open_source

if TYPE_CHECKING:
    from tandem_tui.domain.snapshot import Snapshot
    from tandem_tui.source.base import RunsSource

__all__ = ["EXIT_OK", "EXIT_REFUSED", "EXIT_UNUSABLE", "CommandError", "add_source_options", "clock_of", "read", "say_on_stderr", "source_of"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNUSABLE = 2


class CommandError(Exception):
    """A one-line failure the CLI prints to stderr and turns into an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_UNUSABLE) -> None:
        # Text from runs (ids, reasons) is data: escapes and bidi controls shown, not acted on.
        super().__init__(sanitize(" ".join(str(message).split())))
        self.exit_code = exit_code


def clock_of(args: argparse.Namespace) -> Clock:
    """The one clock of this invocation (``cli.main(..., clock=)``; the system's otherwise)."""
    return getattr(args, "clock", None) or SYSTEM_CLOCK


def source_of(
    args: argparse.Namespace, *, console: bool = False, on_wait: Callable[[str], None] | None = None
) -> RunsSource:
    """The source the options name; options that name none are a usage error (exit 2).
    ``on_wait`` hears, in one line, that an action waits for another writer's lock."""
    try:
        return open_source(args, clock=clock_of(args), console=console, on_wait=on_wait)
    except SourceOptionError as error:
        raise CommandError(str(error)) from None


def say_on_stderr(line: str) -> None:
    """One line on stderr at once (an action waiting for a lock says so before it waits)."""
    print(sanitize(line), file=sys.stderr, flush=True)


def read(source: RunsSource) -> Snapshot:
    """One snapshot for a one-shot command; an unusable store is one line and exit 2.
    The snapshot is left to the process's end (:mod:`tandem_tui.one_shot`)."""
    from tandem_tui.source.base import SourceError

    command_ends_process()
    try:
        snapshot = source.read()
    except SourceError as error:
        raise CommandError(str(error)) from None
    keep_until_exit(snapshot)
    return snapshot
