"""A foreign writer for the concurrency tests: rewrites the runs file like the server would.

Usage: foreign_writer.py RUNS_FILE RUN_ID

Prints ``ready``, waits for a line on stdin, then until stdin closes: reads the file,
increments ``counter`` in its own run, writes its own temp file and renames it over the
runs file. It never takes the advisory lock. Prints the number of writes at the end.
"""

import json
import os
import sys
import threading


def main() -> None:
    runs_file, run_id = sys.argv[1], sys.argv[2]
    temp = f"{runs_file}.foreign-tmp"
    stop = threading.Event()
    print("ready", flush=True)
    sys.stdin.readline()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    writes = 0
    while not stop.is_set():
        with open(runs_file, "rb") as handle:
            document = json.loads(handle.read())
        run = document["runs"][run_id]
        run["counter"] = run.get("counter", 0) + 1
        with open(temp, "w") as handle:
            json.dump(document, handle, indent=2)
        os.replace(temp, runs_file)
        writes += 1
        stop.wait(0.01)
    print(json.dumps({"writes": writes}), flush=True)


if __name__ == "__main__":
    main()
