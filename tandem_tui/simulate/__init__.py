"""The simulate engine: a stand-in Tandem host for the demo, the tests and the benchmarks.

- :mod:`~tandem_tui.simulate.catalogue`: the automations it runs and :func:`build_run`;
- :mod:`~tandem_tui.simulate.engine`: :class:`Engine`, runs in memory, ticks, the
  server's plain rewrite of the runs file;
- :mod:`~tandem_tui.simulate.sqlite_store`: with ``store="sqlite"`` (``--store
  sqlite``), the Tandem >= 0.6.9 layout: the v5 SQLite store (``schema_v5.sql``)
  authoritative, the engine lock held, the runs file only the hot copy;
- :mod:`~tandem_tui.simulate.server`: its HTTP API on loopback (``--serve PORT``), with
  the engine's routes, status codes, error codes and token.
"""

from tandem_tui.simulate.catalogue import (
    ACME,
    AUTOMATIONS,
    AUTOMATIONS_BY_ID,
    MODELS,
    WORKSPACES,
    AutomationSpec,
    NodeSpec,
    build_run,
    required_providers,
)
from tandem_tui.simulate.engine import (
    ARCHIVE_AFTER_MS,
    ENGINE_SOURCE,
    TICK_MS,
    Engine,
    TickReport,
    runs_file_for_state_dir,
)
# The error a runs file the engine cannot start on raises (for the command's one line).
from tandem_tui.source.file.store import RunsFileError

__all__ = [
    "ACME",
    "ARCHIVE_AFTER_MS",
    "AUTOMATIONS",
    "AUTOMATIONS_BY_ID",
    "ENGINE_SOURCE",
    "MODELS",
    "TICK_MS",
    "WORKSPACES",
    "AutomationSpec",
    "Engine",
    "NodeSpec",
    "RunsFileError",
    "TickReport",
    "build_run",
    "required_providers",
    "runs_file_for_state_dir",
]
