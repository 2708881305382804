"""Which source the command line names: the one place options become a ``RunsSource``.

``--runs-file PATH`` names the runs file; ``--state-dir DIR`` a Tandem state directory
(its runs file is found as the server finds it); ``--sqlite PATH`` the engine's SQLite
store (``stateful_runtime.sqlite3``, Tandem >= 0.6.9, also chosen on its own when it is
the authoritative store beside the runs file: the legacy import marked complete);
``--postgres URL`` a PostgreSQL database holding a fleet of engines (also chosen, with
no other option, when the environment says the engine stores in PostgreSQL:
``TANDEM_STORAGE_BACKEND=postgres`` and ``TANDEM_STORAGE_POSTGRES_URL``); with none, the
server's default location from the environment. ``--engine-url URL`` and ``--token-file
PATH`` say where a live engine answers and which token to use (else as
:mod:`tandem_tui.source.engine.detect` finds them); with ``--postgres``, ``--engine-url
SCHEMA=URL`` (repeatable) names each live engine's API by its schema. The CLI's argument parsing and this
module are the only places a path turns into a source; every file or SQLite source is
wrapped in :class:`~tandem_tui.source.engine.source.EngineRoutedSource`, so a live
engine's runs are only ever changed through its API.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tandem_tui.domain.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from tandem_tui.source.base import RunsSource
    from tandem_tui.source.file.raw_diff import HelperDiffer


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
    engine = parser.add_argument_group("a live engine")
    engine.add_argument(
        "--engine-url",
        metavar="[SCHEMA=]URL",
        action="append",
        default=argparse.SUPPRESS,
        help="the engine's API (default: $TANDEM_ENGINE_URL, else http://127.0.0.1:$TANDEM_ENGINE_PORT, port 39731); "
        "with --postgres, SCHEMA=URL per live engine (repeatable)",
    )
    engine.add_argument(
        "--token-file",
        metavar="PATH",
        type=Path,
        default=argparse.SUPPRESS,
        help="the engine's API token (default: $TANDEM_API_TOKEN, $TANDEM_API_TOKEN_FILE, "
        "else <tandem home>/security/engine_api_token)",
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

        plain, per_schema = engine_urls_of(args)
        if plain is not None:
            raise SourceOptionError(f"with --postgres, name the engine's schema: --engine-url SCHEMA={plain}")
        return PostgresSource(
            str(url).strip(), clock=clock, env=env, console=console,
            engine_urls=per_schema, token_file=getattr(args, "token_file", None),
        )
    if engine_urls_of(args)[1]:
        raise SourceOptionError("--engine-url SCHEMA=URL names an engine of a --postgres fleet; give --postgres URL")
    return None


#: ``SCHEMA=URL``: a schema name as the engine accepts it, then ``=``.
_SCHEMA_URL = re.compile(r"([a-z_][a-z0-9_]{0,62})=(\S+)")


def engine_urls_of(args: argparse.Namespace) -> tuple[str | None, dict[str, str]]:
    """``--engine-url`` values: the plain URL (the last one given) and the ``SCHEMA=URL``
    ones by schema. A value may be a string (set by code, as ``--demo`` does) or a list."""
    values = getattr(args, "engine_url", None)
    if values is None:
        return None, {}
    plain: str | None = None
    per_schema: dict[str, str] = {}
    for value in [values] if isinstance(values, str) else values:
        match = _SCHEMA_URL.fullmatch(str(value).strip())
        if match:
            per_schema[match.group(1)] = match.group(2)
        elif str(value).strip():
            plain = str(value).strip()
    return plain, per_schema


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
    on_wait: Callable[[str], None] | None = None,
) -> RunsSource:
    """The source the parsed options name, routed through a live engine when there is
    one. ``console=True`` tunes it for the console (paced re-reads) and starts a runs
    file's parse helper at once (see :func:`_reading_helper`); ``on_wait`` is told, in
    one line, when an action must wait for another writer's lock on the runs file."""
    env = env_for(args, env)
    store = _store_source(args, clock=clock, env=env, console=console)
    if store is not None and getattr(args, "sqlite", None) is not None:
        # Beside the engine's runs file, lock file and token: a live engine owns it.
        sibling = Path(args.sqlite).expanduser().parent / "automation_v2_runs.json"
        return routed(store, sibling, args=args, clock=clock, env=env)
    if store is not None:
        return store
    runs_file = runs_file_of(args, env)
    if _sqlite_is_authoritative(runs_file):
        # Tandem >= 0.6.9 after its one-time import: the runs file is only a copy of the
        # hot set, never read again; the SQLite store is what the engine loads.
        from tandem_tui.source.sqlite.source import SqliteSource

        database = runs_file.parent / "stateful_runtime.sqlite3"
        inner = SqliteSource(database, clock=clock, env=env, console=console)
    else:
        helper = _reading_helper(runs_file) if console else None
        from tandem_tui.source.file.source import FileSource

        inner = FileSource(
            runs_file,
            clock=clock,
            env=env,
            poll=bool(getattr(args, "poll", False)),
            console=console,
            on_wait=on_wait,
            helper=helper,
        )
    return routed(inner, runs_file, args=args, clock=clock, env=env)


def _reading_helper(runs_file: Path) -> HelperDiffer:
    """A console's parse helper, already making its first read of ``runs_file``
    (``source.file.first_read``): started before the file source's modules are
    imported, as it is the first screen's critical path (at 10k runs it reads for 0.5 s)."""
    from tandem_tui.source.file.raw_diff import HelperDiffer

    return HelperDiffer(warm=True, read_first=runs_file.absolute())


def _sqlite_is_authoritative(runs_file: Path) -> bool:
    from tandem_tui.source.engine.detect import STORE_SQLITE, authoritative_store

    return authoritative_store(runs_file).kind == STORE_SQLITE


def env_for(args: argparse.Namespace, env: Mapping[str, str]) -> Mapping[str, str]:
    """``env`` as the engine would see it: ``--state-dir`` stands for ``TANDEM_STATE_DIR``
    (where its token file is found too)."""
    state_dir = getattr(args, "state_dir", None)
    if state_dir is None:
        return env
    return {**env, "TANDEM_STATE_DIR": str(Path(state_dir).expanduser())}


def routed(
    inner: RunsSource,
    runs_file: str | os.PathLike[str],
    *,
    args: argparse.Namespace | None = None,
    clock: Clock = SYSTEM_CLOCK,
    env: Mapping[str, str] = os.environ,
) -> RunsSource:
    """``inner`` with its actions routed through a live engine (``--engine-url``,
    ``--token-file`` from ``args``)."""
    from tandem_tui.source.engine.source import EngineRoutedSource

    return EngineRoutedSource(
        inner,
        runs_file,
        engine_url=engine_urls_of(args)[0] if args is not None else None,
        token_file=getattr(args, "token_file", None),
        env=env,
        clock=clock,
    )


def describe_engine(args: argparse.Namespace, env: Mapping[str, str] = os.environ):  # noqa: ANN201
    """What ``tandem-tui engine`` shows: the detection for the options' runs file."""
    from tandem_tui.source.engine.detect import detect

    env = env_for(args, env)
    return detect(
        runs_file_of(args, env),
        engine_url_option=engine_urls_of(args)[0],
        token_file=getattr(args, "token_file", None),
        env=env,
    )


def file_source(
    runs_file: str | os.PathLike[str],
    *,
    clock: Clock = SYSTEM_CLOCK,
    env: Mapping[str, str] = os.environ,
    poll: bool = False,
    console: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> RunsSource:
    """A source over one runs file (tests, ``--demo``), routed through a live engine."""
    from tandem_tui.source.file.source import FileSource

    inner = FileSource(runs_file, clock=clock, env=env, poll=poll, console=console, on_wait=on_wait)
    return routed(inner, runs_file, clock=clock, env=env)
