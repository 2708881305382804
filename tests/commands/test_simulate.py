"""`tandem-tui simulate` as a real process: runs for a while, stops on a signal, refuses bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tandem_tui.domain.clock import SYSTEM_CLOCK
from tandem_tui.domain.models import RunStatus
from tandem_tui.source.file.store import read_runs_file
from tandem_tui.domain.view import RunsView

REPO = Path(__file__).resolve().parents[2]


def simulate(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tandem_tui", "simulate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def assert_sound(runs_file: Path, max_concurrent: int) -> dict:
    runs = read_runs_file(runs_file, now_ms=SYSTEM_CLOCK.now_ms())
    assert runs
    running = [run for run in runs.values() if run.status == RunStatus.RUNNING]
    assert len(running) <= max_concurrent
    assert not any(run.status == RunStatus.QUEUED and run.execution_claim for run in runs.values())
    view = RunsView.build(runs, now_ms=SYSTEM_CLOCK.now_ms(), max_concurrent_runs=max_concurrent)
    assert view.metrics().active_runs == len(running)
    leftovers = [p.name for p in runs_file.parent.iterdir() if ".tmp-" in p.name]
    assert leftovers == []
    return runs


def test_simulate_for_a_duration_writes_a_sound_runs_file_and_exits_zero(tmp_path):
    process = simulate("--state-dir", str(tmp_path), "--duration", "2", "--rate", "4", "--max-concurrent", "3", "--seed", "9")
    out, err = process.communicate(timeout=30)

    assert process.returncode == 0, err
    assert "stopped after" in err
    assert_sound(tmp_path / "data" / "automation_v2_runs.json", 3)


def test_sigint_stops_the_simulation_between_ticks_with_a_sound_file(tmp_path):
    runs_file = tmp_path / "data" / "automation_v2_runs.json"
    process = simulate("--state-dir", str(tmp_path), "--rate", "4", "--max-concurrent", "2")
    deadline = time.monotonic() + 15
    while not runs_file.exists():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "no runs file written"
        time.sleep(0.05)
    time.sleep(0.6)  # a few ticks

    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)

    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert_sound(runs_file, 2)


@pytest.mark.parametrize(
    "args",
    [
        ["--rate", "-1"],
        ["--rate", "fast"],
        ["--max-concurrent", "0"],
        ["--runs", "-3"],
        ["--duration", "nan"],
    ],
)
def test_bad_options_are_a_usage_error_in_one_line(tmp_path, args):
    process = simulate("--state-dir", str(tmp_path), *args)
    out, err = process.communicate(timeout=30)

    assert process.returncode == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("tandem-tui simulate: error:")
    assert not (tmp_path / "data").exists()


def test_a_state_dir_that_is_a_file_is_refused_in_one_line(tmp_path):
    not_a_dir = tmp_path / "state"
    not_a_dir.write_text("")
    process = simulate("--state-dir", str(not_a_dir), "--duration", "1")
    out, err = process.communicate(timeout=30)

    assert process.returncode == 2
    assert err.strip() == f"tandem-tui: --state-dir {not_a_dir}: not a directory"


def read_whole(runs_file: Path) -> dict:
    """The runs, read again while the engine's plain rewrite is caught half-way."""
    from tandem_tui.source.file.store import RunsFileError

    for _ in range(100):
        try:
            return read_runs_file(runs_file, now_ms=SYSTEM_CLOCK.now_ms())
        except RunsFileError:
            time.sleep(0.01)
    raise AssertionError("the runs file never read whole")


def test_cli_pauses_issued_while_the_engine_serves_hold_and_are_never_undone(serving_engine):
    """Real processes: the engine ticks every 250 ms while `tandem-tui pause` runs race it
    through its API (it keeps its runs in memory: the API is the only way in)."""
    engine = serving_engine("--rate", "6", "--max-concurrent", "4", "--seed", "2")
    runs_file = engine.runs_file
    # Until the engine has four runs to race on (0.5 s of sleep was not always enough
    # on a loaded machine: a CI run found none), up to 20 s.
    deadline = time.monotonic() + 20
    while True:
        runs = read_whole(runs_file)
        targets = sorted(
            run.run_id for run in runs.values() if run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
        )[:4]
        if len(targets) == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(targets) == 4
    env = {**engine.env(), "PYTHONPATH": str(REPO)}
    actions = [
        subprocess.Popen(
            [sys.executable, "-m", "tandem_tui", "pause", run_id, "--state-dir", str(engine.state_dir),
             "--actor", "ops@test", "--reason", "race"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        for run_id in targets
    ]
    results = [(action.wait(timeout=30), action.stderr.read()) for action in actions]
    for action in actions:
        action.stdout.close()
        action.stderr.close()
    time.sleep(1.5)  # several more engine ticks
    engine.stop()

    assert engine.process.returncode == 0
    runs = assert_sound(runs_file, 4)
    for run_id, (code, err) in zip(targets, results, strict=True):
        run = runs.get(run_id)
        if code == 0:
            assert run is not None and run.status == RunStatus.PAUSED, f"{run_id}: pause undone"
            assert run.checkpoint.lifecycle_history[-1].event == "run_paused"
        else:
            # Refused: the run had moved on (e.g. finished) before the action reached it.
            assert code == 1 and err.strip(), err
    assert any(code == 0 for code, _ in results)


def test_a_newer_schema_runs_file_is_refused_and_left_byte_for_byte(tmp_path, fixtures_dir):
    runs_file = tmp_path / "data" / "automation_v2_runs.json"
    runs_file.parent.mkdir()
    original = (fixtures_dir / "runs_newer_schema.json").read_bytes()
    runs_file.write_bytes(original)

    process = simulate("--state-dir", str(tmp_path), "--duration", "1")
    out, err = process.communicate(timeout=30)

    assert process.returncode == 2
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("tandem-tui: ") and "newer than supported" in last
    assert runs_file.read_bytes() == original


#: A child that takes 20 000 SIGTERMs while its main thread waits on the stop in a tight
#: loop. With a handler that called ``threading.Event.set()`` this deadlocked (the
#: handler ran while ``Event.wait`` held the event's lock) within a few thousand signals.
SIGNAL_STORM = """
import os, signal, threading
from tandem_tui.commands.simulate import stop_on_signals

with stop_on_signals() as stop:
    pid = os.getpid()
    def storm():
        for _ in range(20000):
            os.kill(pid, signal.SIGTERM)
    killer = threading.Thread(target=storm)
    killer.start()
    waits = 0
    while killer.is_alive() or waits < 1000:
        stop.wait(0)
        stop.flag = False
        waits += 1
    killer.join()
    os.kill(pid, signal.SIGTERM)
    print("stopped" if stop.wait(5) else "missed")
"""


def test_the_signal_handler_only_sets_a_flag_so_a_storm_of_sigterms_never_deadlocks_the_wait():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        done = subprocess.run([sys.executable, "-c", SIGNAL_STORM], capture_output=True, text=True,
                              env=env, cwd=REPO, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the process hung under a storm of SIGTERMs (a deadlock in the handler)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_serving_engine_stops_at_once_on_term_hup_or_int_and_removes_engine_json(tmp_path, signum):
    process = simulate("--state-dir", str(tmp_path), "--serve", "0", "--pace", "0.25")
    engine_json = tmp_path / "engine.json"
    deadline = time.monotonic() + 20
    while not engine_json.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine_json.exists(), process.stderr.read() if process.poll() is not None else "no engine.json"
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"simulate did not stop on {signal.Signals(signum).name}")
    assert process.returncode == 0
    assert time.monotonic() - sent < 5
    assert not engine_json.exists()
    process.stdout.close()
    process.stderr.close()


# An owner that starts the engine as its child, says the engine's pid, and waits.
OWNER = """
import subprocess, sys, os, time
engine = subprocess.Popen([sys.executable, "-m", "tandem_tui", "simulate", "--state-dir", sys.argv[1],
                           "--serve", "0", "--pace", "0.25", "--owner-pid", str(os.getpid())],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
print(engine.pid, flush=True)
if sys.argv[2] == "stop":
    sys.stdin.readline()
    engine.terminate()
    engine.wait()
    print(engine.returncode, flush=True)
else:
    time.sleep(600)
"""


def owned_engine(state_dir: Path, mode: str) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(state_dir), mode], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    engine = int(owner.stdout.readline())
    deadline = time.monotonic() + 20
    while not (state_dir / "engine.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (state_dir / "engine.json").exists(), "the owned engine did not start serving"
    return owner, engine


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_engine_whose_owner_is_killed_stops_and_removes_its_state_dir(tmp_path):
    state_dir = tmp_path / "demo"
    owner, engine = owned_engine(state_dir, "sleep")
    try:
        owner.kill()  # SIGKILL: no clean-up of the owner's runs
        owner.wait()
        assert wait_until(lambda: gone(engine), 5), "the engine outlived its owner"
        assert wait_until(lambda: not state_dir.exists(), 5), "the orphaned engine left its state dir"
    finally:
        if not gone(engine):
            os.kill(engine, signal.SIGKILL)
        owner.stdout.close()
        owner.stdin.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_engine_stopped_by_its_living_owner_leaves_the_state_dir_to_the_owner(tmp_path):
    state_dir = tmp_path / "demo"
    owner, engine = owned_engine(state_dir, "stop")
    try:
        owner.stdin.write("\n")
        owner.stdin.flush()
        assert owner.stdout.readline().strip() == "0"
        assert (state_dir / "data" / "automation_v2_runs.json").exists()
        assert not (state_dir / "engine.json").exists()
    finally:
        owner.wait(timeout=10)
        owner.stdout.close()
        owner.stdin.close()
