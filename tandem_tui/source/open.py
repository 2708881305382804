"""Which source the command line names: the one place options become a ``RunsSource``.

``--runs-file PATH`` names the runs file; ``--state-dir DIR`` a Tandem state directory
(its runs file is found as the server finds it); with neither, the server's default
location from the environment. The CLI's argument parsing and this module are the only
places a path turns into a source.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

from tandem_tui.domain.clock import SYSTEM_CLOCK, Clock
from tandem_tui.source.base import RunsSource


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """``--runs-file`` and ``--state-dir``, on the top-level parser and each sub-command."""
    group = parser.add_argument_group("where runs live")
    # SUPPRESS: a sub-command's own option must not reset the top-level one.
    group.add_argument(
        "--runs-file",
        metavar="PATH",
        type=Path,
        default=argparse.SUPPRESS,
        help="the runs file (default: as the Tandem server resolves it from TANDEM_STATE_DIR)",
    )
    group.add_argument(
        "--state-dir",
        metavar="DIR",
        type=Path,
        default=argparse.SUPPRESS,
        help="a Tandem state directory (its data/automation_v2_runs.json)",
    )


def runs_file_of(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> Path:
    """The runs file the options name, else the server's default location."""
    from tandem_tui.source.file.store import default_runs_file_path

    runs_file = getattr(args, "runs_file", None)
    state_dir = getattr(args, "state_dir", None)
    if runs_file is not None and state_dir is not None:
        raise SourceOptionError("give --runs-file or --state-dir, not both")
    if runs_file is not None:
        return Path(runs_file).expanduser()
    if state_dir is not None:
        return default_runs_file_path({**env, "TANDEM_STATE_DIR": str(Path(state_dir).expanduser())})
    return default_runs_file_path(env)


class SourceOptionError(ValueError):
    """Options that name no usable source, in one line."""


def open_source(
    args: argparse.Namespace,
    *,
    clock: Clock = SYSTEM_CLOCK,
    env: Mapping[str, str] = os.environ,
    console: bool = False,
) -> RunsSource:
    """The source the parsed options name. ``console=True`` tunes it for the console
    (paced re-reads, parsing in a helper process)."""
    from tandem_tui.source.file.source import FileSource

    return FileSource(
        runs_file_of(args, env),
        clock=clock,
        env=env,
        poll=bool(getattr(args, "poll", False)),
        console=console,
    )


def file_source(
    runs_file: str | os.PathLike[str],
    *,
    clock: Clock = SYSTEM_CLOCK,
    env: Mapping[str, str] = os.environ,
    poll: bool = False,
    console: bool = False,
) -> RunsSource:
    """A source over one runs file (tests, ``--demo``)."""
    from tandem_tui.source.file.source import FileSource

    return FileSource(runs_file, clock=clock, env=env, poll=poll, console=console)
