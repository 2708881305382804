"""Writers for the crash test to SIGKILL: a parent that forks one writer process per request.

Usage: crash_writer.py RUNS_FILE PAD_BYTES

Imports once, prints ``ready``, then serves lines on stdin:

- ``fork``: fork a writer and print ``child PID``. The writer loops on transactions,
  each bumping ``generation`` in the ``crash`` run and rewriting ``padding`` to match it
  (so a file mixing two writes is detectable, and big enough for a kill to land
  mid-write); it prints ``writing PID`` after its first transaction.
- ``reap PID``: wait for that (killed) writer and print ``reaped PID SIGNAL``, so its pid
  is really gone before the test checks that its temp files get cleaned up.

Forking from an already-imported parent makes each writer cost milliseconds, not an
interpreter start-up; each writer is still its own OS process, killed by a real signal.
"""

import os
import sys

from tandem_tui.domain.clock import SystemClock
from tandem_tui.source.file.transaction import transact


def write_forever(runs_file: str, pad: int) -> None:
    clock = SystemClock()

    def bump(document):
        run = document.entries["crash"]
        run["generation"] = run.get("generation", 0) + 1
        run["padding"] = str(run["generation"] % 10) * pad
        return run["generation"]

    transact(runs_file, bump, clock=clock)
    os.write(1, f"writing {os.getpid()}\n".encode())
    while True:
        transact(runs_file, bump, clock=clock)


def main() -> None:
    runs_file, pad = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "fork":
            pid = os.fork()
            if pid == 0:
                try:
                    write_forever(runs_file, pad)
                finally:
                    os._exit(1)
            print(f"child {pid}", flush=True)
        elif command == "reap":
            pid = int(rest[0])
            _, status = os.waitpid(pid, 0)
            print(f"reaped {pid} {os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0}", flush=True)


if __name__ == "__main__":
    main()
