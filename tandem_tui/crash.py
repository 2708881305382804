"""What happens when tandem-tui itself fails: one line for the operator, the traceback
in a log file, exit code 70 (EX_SOFTWARE) — never 0 or 1, which mean ok and refused."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path

#: EX_SOFTWARE from sysexits.h: an internal software error.
EXIT_CRASH = 70


def crash_log_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_STATE_HOME/tandem-tui`` (default ``~/.local/state/tandem-tui``)."""
    state = (env.get("XDG_STATE_HOME") or "").strip()
    base = Path(state) if state and Path(state).is_absolute() else Path(env.get("HOME") or Path.home()) / ".local" / "state"
    return base / "tandem-tui"


def write_crash_log(error: BaseException, *, argv: list[str] | None = None, env: Mapping[str, str] = os.environ) -> Path | None:
    """Write the traceback of ``error`` to a new log file; its path, or ``None`` if no
    file could be written (then the traceback goes to stderr instead)."""
    text = "".join(traceback.format_exception(error))
    header = f"tandem-tui crashed at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\nargv: {argv if argv is not None else sys.argv}\n\n"
    for directory in (crash_log_dir(env), Path("/tmp")):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"tandem-tui-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
            with open(path, "x", encoding="utf-8") as handle:
                handle.write(header + text)
            return path
        except OSError:
            continue
    return None


def report_crash(error: BaseException, *, argv: list[str] | None = None) -> int:
    """Log ``error`` and say so in one line on stderr; returns :data:`EXIT_CRASH`."""
    path = write_crash_log(error, argv=argv)
    summary = " ".join(f"{type(error).__name__}: {error}".split())[:300]
    if path is not None:
        print(f"tandem-tui: internal error ({summary}); the traceback is in {path}", file=sys.stderr)
    else:
        print(f"tandem-tui: internal error ({summary}); no log could be written:", file=sys.stderr)
        traceback.print_exception(error, file=sys.stderr)
    return EXIT_CRASH
