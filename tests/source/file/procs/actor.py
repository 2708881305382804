"""A console-like process for the concurrency tests: performs operator actions on one runs file.

Usage: actor.py RUNS_FILE NAME COUNT SEED RUN_ID...

Prints ``ready``, waits for a line on stdin, then performs COUNT actions chosen at
random (pause, resume, requeue, release_lock on the given runs). Each action carries a
unique reason so the test can find its events. Prints one JSON line: the successes
(reason, kind, run id) and the number of refusals.
"""

import json
import random
import sys

from tandem_tui.domain.actions import ActionKind, ActionRequest
from tandem_tui.source.file.perform import perform
from tandem_tui.domain.clock import SystemClock


def main() -> None:
    runs_file, name, count, seed, *run_ids = sys.argv[1:]
    rng = random.Random(int(seed))
    clock = SystemClock()
    print("ready", flush=True)
    sys.stdin.readline()
    successes, refused = [], 0
    for n in range(int(count)):
        kind = rng.choice([ActionKind.PAUSE, ActionKind.RESUME, ActionKind.RESUME, ActionKind.REQUEUE, ActionKind.RELEASE_LOCK])
        run_id = rng.choice(run_ids)
        reason = f"{name}#{n}"
        result = perform(
            runs_file,
            ActionRequest(kind=kind, run_id=run_id, reason=reason, actor=name),
            clock=clock,
            env={"USER": name},
        )
        if result.ok:
            successes.append({"reason": reason, "kind": kind.value, "run_id": run_id})
        else:
            refused += 1
    print(json.dumps({"successes": successes, "refused": refused}), flush=True)


if __name__ == "__main__":
    main()
