"""A command whose process ends when it is done leaves what it read to the process's end.

``tandem-tui status``, ``runs``, ``history`` and the actions read a whole runs file,
print, and exit. Freeing what they read is work nobody needs: the process's end gives
the memory back at once. At 10k runs it was 115 ms of ``status --json``'s ~930 ms of CPU
(10k validated runs and their raw records) and 60 ms of ``pause``'s ~540 ms (the parsed
file). So such a command hands that data to :func:`keep_until_exit`, which holds it and
moves it out of the cyclic collector's sight (:func:`gc.freeze`): it is never freed one
object at a time, nor walked again by a collection.

Two conditions, so that nothing is held in a process that goes on:

- the process is the program (:func:`started_from_command_line`, called by
  ``tandem_tui.cli.run``: the ``tandem-tui`` script and ``python -m tandem_tui``), not a
  test or another program calling ``cli.main``;
- the command said it ends the process (:func:`command_ends_process`): the console and
  ``status --watch`` never say so, and their reads and actions free as usual.
"""

from __future__ import annotations

import gc
from typing import Any

_program = False
_ending = False
#: What the command read, held until the process exits.
_kept: list[Any] = []


def started_from_command_line() -> None:
    """This process is the ``tandem-tui`` program: it exits when its command returns."""
    global _program
    _program = True


def command_ends_process() -> None:
    """The running command is one-shot: its process ends when it returns (a no-op unless
    :func:`started_from_command_line`)."""
    global _ending
    _ending = _program


def keep_until_exit(data: Any) -> None:
    """Hold ``data`` until the process exits, out of the collector's sight, when the
    process ends with this command; otherwise do nothing (it is freed as usual)."""
    if _ending:
        _kept.append(data)
        gc.freeze()


def holding() -> bool:
    """Whether :func:`keep_until_exit` holds what it is given in this process."""
    return _ending


def held() -> tuple[Any, ...]:
    """What is held so far, oldest first."""
    return tuple(_kept)
