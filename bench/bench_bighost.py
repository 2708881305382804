"""The console on a big host: first screen, memory, keys and idle CPU of the real process.

Starts ``python -m tandem_tui --read-only --runs-file F`` on a pseudo-terminal (160x48)
while a writer process rewrites F ``--rate`` times a second (30 runs get a new
``updated_at_ms`` of the same width, written to a temporary file and renamed over F,
as the engine saves), and measures:

- first screen: from the console's start to the first run id drawn on the terminal
  (escape sequences stripped from the byte stream, ids matched against the file's);
- RSS of the console and of its children (the parse helper), from /proc: at the first
  screen, the highest sampled while the writer runs, and after it stops;
- key to screen: ``j`` (cursor down) to the next bytes the console writes, sent after a
  quiet spell (a tick can answer first: an upper bound); a ``/`` filter for one run
  typed after the first screen, to the moment that run's id is drawn; Escape to the
  moment another id is drawn again;
- idle CPU: utime+stime of the console and its children over ``--idle`` seconds with
  the writer stopped (after a settling spell);
- how long ``q`` takes to end the process.

The floor is a bare ``orjson.loads`` process of the same file (start-up + read + parse),
with the cyclic collector on (as a plain script) and off, median of ``--repeat`` runs, measured in
the same run. ``--code DIR`` measures other checkouts side by side (e.g. ``git archive
7269211 | tar -x -C /tmp/before``); ``--stages`` also prints, per checkout, the CPU time
and RSS after each stage of a first read done in one process (imports, read, parse,
validation, view, dashboard rows), then the console's own first read (a file source's
watcher: each entry parsed and validated in turn) and its first dashboard state. Linux
only; figures, never assertions.

    python bench/bench_bighost.py --file bench/out/runs_10000/automation_v2_runs.json \\
        --code /tmp/before-bighost --stages
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_idle import children_of, cpu_seconds  # noqa: E402  (/proc: children; utime+stime with them)
COLS, ROWS = 160, 48

#: CSI, OSC and charset sequences: what is left is the text the terminal shows.
_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")
_ID = re.compile(rb"[a-z][a-z0-9]*(?:-[a-z0-9]+)*-\d{6}")


# -- /proc ------------------------------------------------------------------------------


def _status_mb(pid: int, field: str) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def rss_mb(pid: int) -> tuple[float, float]:
    """VmRSS of ``pid`` and the sum of its children's (a child forked but not yet
    exec'd, which shows the parent's pages, is not counted)."""
    own = _cmdline(pid)
    children = [child for child in children_of(pid) if _cmdline(child) != own]
    return _status_mb(pid, "VmRSS"), sum(_status_mb(child, "VmRSS") for child in children)


# -- the floor --------------------------------------------------------------------------

FLOOR = """import gc, sys, orjson
if sys.argv[2] == "off":
    gc.disable()
with open(sys.argv[1], 'rb') as f:
    orjson.loads(f.read())
with open('/proc/self/status') as f:
    print(next(int(line.split()[1]) for line in f if line.startswith('VmHWM:')) / 1024)
"""


def floor(path: Path, repeat: int, collector: str = "on") -> tuple[float, float, float]:
    """Median wall (s), CPU (s) and max RSS (MB) of a bare ``orjson.loads`` process,
    with the cyclic collector ``"on"`` (a plain script) or ``"off"``."""
    walls, cpus, rss = [], [], []
    for _ in range(repeat):
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", FLOOR, str(path), collector], stdout=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        walls.append(time.perf_counter() - started)
        cpus.append(usage.ru_utime + usage.ru_stime)
        # Its own VmHWM: ru_maxrss would count this process' pages the fork shared.
        rss.append(float(process.stdout.read() or 0))
        process.stdout.close()
        process.returncode = os.waitstatus_to_exitcode(status)
    return statistics.median(walls), statistics.median(cpus), statistics.median(rss)


# -- the writer -------------------------------------------------------------------------

WRITER = r"""
import os, re, sys, time
path, rate = sys.argv[1], float(sys.argv[2])
data = bytearray(open(path, 'rb').read())
spots = [m.start(1) for m in re.finditer(rb'"updated_at_ms": (\d{13})', data)]
spots = spots[:: max(1, len(spots) // 30)][:30]
tick = 0
while True:
    started = time.monotonic()
    tick += 1
    for spot in spots:
        value = int(data[spot:spot + 13]) + 1
        data[spot:spot + 13] = b'%013d' % value
    tmp = path + '.bench-tmp'
    with open(tmp, 'wb') as handle:
        handle.write(data)
    os.replace(tmp, path)
    print(tick, flush=True)
    time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
"""


class Writer:
    def __init__(self, path: Path, rate: float) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(rate)],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.started = time.monotonic()
        os.set_blocking(self.process.stdout.fileno(), False)
        self.writes = 0

    def count(self) -> int:
        try:
            chunk = self.process.stdout.read()
        except (OSError, TypeError):
            chunk = None
        if chunk:
            self.writes = int(chunk.split()[-1])
        return self.writes

    def stop(self) -> float:
        """Stop; the achieved rate (writes a second)."""
        self.count()
        self.process.terminate()
        self.process.wait(timeout=10)
        return self.writes / max(1e-9, time.monotonic() - self.started)


# -- the console on a pty -----------------------------------------------------------------


class Console:
    def __init__(self, path: Path, code: Path, ids: set[bytes]) -> None:
        env = {**os.environ, "PYTHONPATH": str(code), "TERM": "xterm-256color"}
        self.ids = ids
        self.leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        os.set_blocking(self.leader, False)
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tandem_tui", "--read-only", "--runs-file", str(path)],
            stdin=follower, stdout=follower, stderr=follower, env=env, cwd=code, start_new_session=True,
        )
        os.close(follower)
        self.tail = b""
        self.last_output = time.perf_counter()
        self.peak = (0.0, 0.0)

    def pump(self) -> list[tuple[float, bytes]]:
        """Read what the console wrote: (when, run ids seen in it)."""
        seen: list[tuple[float, bytes]] = []
        while True:
            try:
                chunk = os.read(self.leader, 1 << 16)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            now = time.perf_counter()
            self.last_output = now
            text = _ESCAPES.sub(b"", self.tail + chunk)
            for match in _ID.finditer(text):
                if match.group() in self.ids:
                    seen.append((now, match.group()))
            self.tail = (self.tail + chunk)[-256:]
        return seen

    def sample(self) -> tuple[float, float]:
        rss = rss_mb(self.process.pid)
        self.peak = (max(self.peak[0], rss[0]), max(self.peak[1], rss[1]), )
        return rss

    def wait(self, seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            self.pump()
            self.sample()
            time.sleep(0.02)

    def first_ids(self, timeout: float) -> tuple[float, tuple[float, float]]:
        """Seconds from start to the first run id on screen, and RSS then."""
        while time.perf_counter() - self.started < timeout:
            if self.process.poll() is not None:
                raise SystemExit(f"the console exited ({self.process.returncode}) before showing runs")
            seen = self.pump()
            rss = self.sample()
            if seen:
                self.cpu_first = cpu_seconds(self.process.pid)
                return seen[0][0] - self.started, rss
            time.sleep(0.005)
        raise SystemExit(f"no run id on screen within {timeout:.0f} s")

    def press(self, data: bytes) -> float:
        os.write(self.leader, data)
        return time.perf_counter()

    def key_to_output(self, key: bytes, quiet: float = 0.15, timeout: float = 10.0) -> float:
        deadline = time.perf_counter() + 30
        while time.perf_counter() - self.last_output < quiet and time.perf_counter() < deadline:
            self.pump()
            time.sleep(0.005)
        pressed = self.press(key)
        before = self.last_output
        while time.perf_counter() - pressed < timeout:
            self.pump()
            if self.last_output > before and self.last_output >= pressed:
                return self.last_output - pressed
            time.sleep(0.001)
        return float("nan")

    def until_id(self, pressed: float, wanted, timeout: float = 60.0) -> float:
        while time.perf_counter() - pressed < timeout:
            for when, run_id in self.pump():
                if wanted(run_id):
                    return when - pressed
            self.sample()
            time.sleep(0.001)
        return float("nan")

    def quit_seconds(self, timeout: float = 60.0) -> float:
        pressed = self.press(b"q")
        while self.process.poll() is None and time.perf_counter() - pressed < timeout:
            self.pump()
            time.sleep(0.005)
        return time.perf_counter() - pressed

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        os.close(self.leader)


def _settle(console: Console, limit: float, window: float = 6.0) -> float:
    """Wait until the console uses < 5 % of a core over ``window`` seconds (or ``limit``
    s): the last snapshot of the writer's saves may still be on its way (the console
    rests between big snapshots)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        before = cpu_seconds(console.process.pid)
        console.wait(window)
        if cpu_seconds(console.process.pid) - before < 0.05 * window:
            break
    return time.perf_counter() - started


def measure(path: Path, code: Path, ids: list[bytes], args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-bighost-", dir=args.tmp) as work:
        runs_file = Path(work) / path.name
        shutil.copyfile(path, runs_file)
        writer = Writer(runs_file, args.rate) if args.rate > 0 else None
        console = Console(runs_file, code, set(ids))
        out: dict[str, object] = {}
        try:
            first, rss = console.first_ids(args.timeout)
            out["first_screen_s"], out["rss_first"] = first, rss
            out["cpu_first"] = console.cpu_first
            console.wait(2.0)
            # A run far down the table: typing its number filters the table to it.
            needle = ids[-1]
            digits = needle.rsplit(b"-", 1)[1]
            downs = [console.key_to_output(b"j") for _ in range(args.presses)]
            out["down_s"] = downs
            filters, escapes = [], []
            for _ in range(args.filters):
                console.press(b"/")
                console.wait(0.3)
                for byte in digits[:-1]:
                    console.press(bytes([byte]))
                    console.wait(0.05)
                pressed = console.press(digits[-1:])
                filters.append(console.until_id(pressed, lambda run_id: run_id == needle))
                console.wait(0.3)
                pressed = console.press(b"\x1b")
                escapes.append(console.until_id(pressed, lambda run_id: run_id != needle))
                console.wait(0.3)
            out["filter_s"], out["escape_s"] = filters, escapes
            if writer is not None:
                console.wait(max(0.0, args.writer_seconds - (time.perf_counter() - console.started)))
                out["writes_per_s"] = writer.stop()
                out["rss_peak_writer"] = console.peak
                writer = None
            settled = _settle(console, args.settle)
            out["settled_after_s"] = settled
            before, started = cpu_seconds(console.process.pid), time.perf_counter()
            console.wait(args.idle)
            out["idle_share"] = (cpu_seconds(console.process.pid) - before) / (time.perf_counter() - started)
            out["rss_idle"] = console.sample()
            out["rss_peak"] = console.peak
            out["hwm_console"] = _status_mb(console.process.pid, "VmHWM")
            out["quit_s"] = console.quit_seconds()
        finally:
            if writer is not None:
                writer.stop()
            console.close()
    return out


# -- stages in one process -------------------------------------------------------------

STAGES = r"""
import gc, sys, time
T0 = time.perf_counter()
_last = [time.process_time(), time.perf_counter()]
def rss():
    with open('/proc/self/status') as handle:
        for line in handle:
            if line.startswith('VmRSS'):
                return int(line.split()[1]) / 1024
def mark(name):
    cpu, wall = time.process_time(), time.perf_counter()
    print(f"    {name:36s} cpu {1000 * (cpu - _last[0]):6.0f} ms  wall {1000 * (wall - _last[1]):6.0f} ms  RSS {rss():6.0f} MB", flush=True)
    _last[:] = [time.process_time(), time.perf_counter()]
path = sys.argv[1]
import pydantic, orjson
mark('import pydantic, orjson')
import tandem_tui.domain.models
mark('import domain.models')
import textual.app
mark('import textual.app')
import tandem_tui.ui.app
mark('import tandem_tui.ui.app (the rest)')
from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.domain.snapshot import Freshness, Snapshot
from tandem_tui.domain.view import RunsView
from tandem_tui.source.file.raw_diff import LocalDiffer
from tandem_tui.source.file.regular import read_regular
from tandem_tui.source.file.store import parse_run_entry
from tandem_tui.ui.screens.dashboard import build_state
now = int(time.time() * 1000)
with gc_paused():
    raw, _ = read_regular(path)
    mark('read the bytes')
    diff = LocalDiffer().diff(raw)
    mark('scan + parse every entry')
    runs = {key: parse_run_entry(key, value, now_ms=now) for key, value in diff.changed.items()}
    mark('validate every entry (pydantic)')
    del diff
    mark('drop the parsed dicts')
    del raw
    mark('drop the bytes')
    view = RunsView.build(runs, now_ms=now)
    mark('RunsView.build')
    snapshot = Snapshot(location=path, runs=runs, view=view, freshness=Freshness(read_at_ms=now), changed=frozenset(runs))
    state = build_state(snapshot, None, now_ms=now)
    mark('build_state (rows, metrics, locks)')
gc.collect()
mark('one full collection')
print(f"    total cpu {1000 * time.process_time():.0f} ms, wall {1000 * (time.perf_counter() - T0):.0f} ms (after start-up)")
del state, snapshot, view, runs
gc.collect()
# The console's own first read (RunsWatcher with a parse helper, as --runs-file builds
# it): the bytes, each entry parsed and validated in turn, the hot set and the view.
from tandem_tui.domain.clock import SYSTEM_CLOCK
from tandem_tui.source.file.watcher import RunsWatcher
watcher = RunsWatcher(path, clock=SYSTEM_CLOCK, parse_in_helper=True, min_reload_interval_ms=1000)
mark('(the above freed)')
with gc_paused():
    changed, _ = watcher._reload()
    mark('console: first read, view included')
    first = watcher._snapshot(changed)
    build_state(first, None, now_ms=now)
    mark('console: first build_state')
watcher.close()
"""


def stages(path: Path, code: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(code)}
    subprocess.run([sys.executable, "-c", STAGES, str(path.resolve())], env=env, cwd=code, check=False)


# -- main ----------------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    good = sorted(v for v in values if v == v)
    if not good:
        return "n/a"
    p95 = good[min(len(good) - 1, round(0.95 * (len(good) - 1)))]
    lost = len(values) - len(good)
    return f"median {statistics.median(good) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms" + (
        f" ({lost} unanswered)" if lost else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, action="append", required=True, help="runs files to open")
    parser.add_argument("--code", type=Path, action="append", default=[], help="other checkouts to measure")
    parser.add_argument("--repeat", type=int, default=3, help="consoles (and floors) per checkout")
    parser.add_argument("--rate", type=float, default=5.0, help="writes a second while the console starts (0: none)")
    parser.add_argument("--writer-seconds", type=float, default=20.0, help="how long the writer runs after start")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU to measure")
    parser.add_argument("--settle", type=float, default=60.0, help="at most this long to settle before idle")
    parser.add_argument("--presses", type=int, default=10)
    parser.add_argument("--filters", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for a first screen")
    parser.add_argument("--stages", action="store_true", help="also time a first read stage by stage")
    parser.add_argument("--tmp", default=None, help="where the copies the writer rewrites go")
    args = parser.parse_args()
    for path in args.file:
        raw = path.read_bytes()
        ids = sorted(set(re.findall(rb'"run_id": "([a-z0-9-]+)"', raw)))
        size_mb = len(raw) / 1e6
        del raw
        print(f"== {path} ({size_mb:.0f} MB, {len(ids)} run ids), console {COLS}x{ROWS}, writer {args.rate:g}/s")
        codes = [REPO, *args.code]
        if args.stages:
            for code in codes:
                print(f"  [{code}] stages of a first read, one process:")
                stages(path, code)
        results: dict[Path, list[dict[str, object]]] = {code: [] for code in codes}
        floors, floors_off = [], []
        for round_ in range(args.repeat):
            floors.append(floor(path, 1))
            floors_off.append(floor(path, 1, "off"))
            # Interleaved, so that the machine's load hits all alike, and in turns: the
            # console right after the floors' 300 MB processes started ~0.1 s slower
            # than the next one, whichever code it was (same code in both places: 1194
            # against 1131 ms).
            turn = round_ % len(codes)
            for code in codes[turn:] + codes[:turn]:
                results[code].append(measure(path, code, ids, args))
        wall = statistics.median(f[0] for f in floors)
        wall_off = statistics.median(f[0] for f in floors_off)
        cpu_floor = statistics.median(f[1] for f in floors)
        for name, each in (("collector on", floors), ("collector off", floors_off)):
            print(f"  floor, bare orjson.loads process, {name}: wall {statistics.median(f[0] for f in each) * 1000:.0f} ms "
                  f"(runs {', '.join(f'{f[0] * 1000:.0f}' for f in each)}), CPU {statistics.median(f[1] for f in each) * 1000:.0f} ms, "
                  f"max RSS {statistics.median(f[2] for f in each):.0f} MB")
        for code, runs in results.items():
            firsts = [r["first_screen_s"] for r in runs]
            first = statistics.median(firsts)
            print(f"  [{code}]")
            print(f"    first screen: median {first * 1000:.0f} ms ({', '.join(f'{f * 1000:.0f}' for f in firsts)}) "
                  f"= {first / wall:.2f}x the floor ({first / wall_off:.2f}x the collector-off floor; target <= 2x)")
            cpus = [r["cpu_first"] for r in runs]
            print(f"    CPU of the console and its children until then: median {statistics.median(cpus) * 1000:.0f} ms "
                  f"({', '.join(f'{c * 1000:.0f}' for c in cpus)}) = {statistics.median(cpus) / cpu_floor:.2f}x the floor's CPU "
                  f"(a measure the machine's load moves less)")
            rss_first = [sum(r["rss_first"]) for r in runs]
            rss_peak = [r["rss_peak"] for r in runs]
            rss_idle = [r["rss_idle"] for r in runs]
            print(f"    RSS at first screen: {statistics.median(rss_first):.0f} MB (console + children)")
            print(f"    RSS peak console {statistics.median(p[0] for p in rss_peak):.0f} MB + children "
                  f"{statistics.median(p[1] for p in rss_peak):.0f} MB = {statistics.median(sum(p) for p in rss_peak):.0f} MB "
                  f"= {statistics.median(sum(p) for p in rss_peak) / size_mb:.2f}x the file (target < 2.5x); "
                  f"console VmHWM {statistics.median(r['hwm_console'] for r in runs):.0f} MB")
            print(f"    RSS idle after the writer: console {statistics.median(r[0] for r in rss_idle):.0f} MB + children "
                  f"{statistics.median(r[1] for r in rss_idle):.0f} MB")
            if "writes_per_s" in runs[0]:
                print(f"    writer achieved {statistics.median(r['writes_per_s'] for r in runs):.1f} writes/s")
            print(f"    j -> next output: {_ms([d for r in runs for d in r['down_s']])}")
            print(f"    / filter to one run -> drawn: {_ms([d for r in runs for d in r['filter_s']])}; "
                  f"Escape -> rows back: {_ms([d for r in runs for d in r['escape_s']])}")
            idles = [r["idle_share"] for r in runs]
            print(f"    idle CPU ({args.idle:.0f} s, settled after {statistics.median(r['settled_after_s'] for r in runs):.0f} s): "
                  f"{statistics.median(idles) * 100:.2f} % of a core ({', '.join(f'{i * 100:.2f}' for i in idles)}; target < 2 %)")
            print(f"    q -> exited: {_ms([r['quit_s'] for r in runs])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
