"""Which source the command line names: the one place options become a ``RunsSource``.

``--runs-file PATH`` names the runs file; ``--state-dir DIR`` a Tandem state directory
(its runs file is found as the server finds it); ``--sqlite PATH`` the engine's SQLite
store (``stateful_runtime.sqlite3``, Tandem >= 0.6.9); ``--postgres URL`` a PostgreSQL
database holding a fleet of engines (also chosen, with no other option, when the
environment says the engine stores in PostgreSQL: ``TANDEM_STORAGE_BACKEND=postgres``
and ``TANDEM_STORAGE_POSTGRES_URL``); with none, the server's default location from the
environment. The CLI's argument parsing and this module are the only
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
    _add_store_options(group)


def _add_store_options(group: argparse._ArgumentGroup) -> None:
    """``--sqlite`` and ``--postgres``: the engine's database stores (Tandem >= 0.6.9)."""
    group.add_argument(
        "--sqlite",
        metavar="PATH",
        type=Path,
        default=argparse.SUPPRESS,
        help="the engine's SQLite store, stateful_runtime.sqlite3 (Tandem >= 0.6.9)",
    )
    group.add_argument(
        "--postgres",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="a PostgreSQL database of Tandem engines (default: TANDEM_STORAGE_POSTGRES_URL "
        "when TANDEM_STORAGE_BACKEND=postgres)",
    )


def _store_source(
    args: argparse.Namespace, *, clock: Clock, env: Mapping[str, str], console: bool = False
) -> RunsSource | None:
    """The database store the options (or the engine's storage environment) name, if any."""
    chosen = [name for name in ("runs_file", "state_dir", "sqlite", "postgres") if getattr(args, name, None) is not None]
    if len(chosen) > 1:
        options = " and ".join("--" + name.replace("_", "-") for name in chosen)
        raise SourceOptionError(f"give one source, not {options}")
    if getattr(args, "sqlite", None) is not None:
        from tandem_tui.source.sqlite.source import SqliteSource

        return SqliteSource(Path(args.sqlite).expanduser(), clock=clock, env=env, console=console)
    url = getattr(args, "postgres", None)
    if url is None and not chosen and (env.get("TANDEM_STORAGE_BACKEND") or "").strip().lower() == "postgres":
        url = (env.get("TANDEM_STORAGE_POSTGRES_URL") or "").strip() or None
    if url is not None:
        if not str(url).strip():
            raise SourceOptionError("--postgres needs a URL (postgresql://user@host:port/db)")
        from tandem_tui.source.postgres.source import PostgresSource

        return PostgresSource(str(url).strip(), clock=clock, env=env, console=console)
    return None


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

    store = _store_source(args, clock=clock, env=env, console=console)
    if store is not None:
        return store

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
