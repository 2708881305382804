"""Looking at real processes from tests (Linux ``/proc``): children, liveness, waiting."""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def children_of(pid: int) -> list[int]:
    """The pids of ``pid``'s children (none once it is gone)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(child) for child in handle.read().split()]
    except OSError:
        pass
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate: Callable[[], bool], seconds: float = 20.0) -> bool:
    """Poll ``predicate`` until it holds or ``seconds`` pass; its last answer."""
    # Waiting on other processes: wall time is what is being waited on.
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()
