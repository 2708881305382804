"""The Textual app: one factory (:func:`make_app`) for the command line and the tests.

The console talks to a :class:`~tandem_tui.source.base.RunsSource` and to nothing else:
it never learns whether runs live in a file, a database or an engine's API. Live mode
iterates ``source.follow(stop)`` in an exclusive thread worker. For each snapshot the
worker also builds the dashboard's data (off the UI thread, while the source is not
touching its view) and leaves it for the UI, which takes the newest on a one-second
heartbeat (the first at once): intermediate snapshots are skipped, never queued up.
Static mode (``watch=False``) reads once (``source.load()``, which never raises), or
shows a given snapshot — what snapshot tests use.

Messages up, attributes down: screens post what the operator asks for
(``DashboardScreen.ActionRequested``/``OpenRun``/``OpenHistory``,
``RunDetailScreen.ActionRequested``, ``HistoryScreen.OpenRun``); the app handles them
here and sets state down (``DashboardScreen.show_state``, ``RunDetailScreen.update_run``).

Actions are previewed with :mod:`tandem_tui.domain.actions`, confirmed, then carried out
by ``source.perform`` in a thread worker; the change reaches the screen the same way
every other write does, through ``follow``.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen, Screen

from tandem_tui.domain.clock import SYSTEM_CLOCK, Clock
from tandem_tui.domain.gc_pause import gc_paused
from tandem_tui.domain.run_summary import RunSummary
from tandem_tui.domain.snapshot import Freshness, Snapshot
from tandem_tui.safe_text import sanitize
from tandem_tui.source.base import Route, RunsSource, SourceError
from tandem_tui.ui.commands import RunCommands
from tandem_tui.ui.screens.dashboard import DashboardScreen, DashboardState, build_state

if TYPE_CHECKING:
    from textual.timer import Timer

    from tandem_tui.domain.actions import ActionKind, DecisionState
    from tandem_tui.domain.models import Run
    from tandem_tui.ui.screens.history import HistoryScreen
    from tandem_tui.ui.screens.run_detail import RunDetailScreen

# The history and run detail screens (and the help panel, which brings a Markdown
# parser and pygments) are imported when first opened: ~60 ms of a first screen.
_RUN_DETAIL_MODULE = "tandem_tui.ui.screens.run_detail"

#: The app's own styles; pushed screens (detail, history, confirmation) load theirs.
STYLE_FILES = ("app.tcss", "dashboard.tcss")
#: How often (s) ages and countdowns move on in live mode.
#: Live mode redraws on a heartbeat: the newest waiting snapshot (if any) and the
#: moving ages and countdowns, together, once a second. Any change to the runs table
#: re-renders every visible cell (~0.1-0.2 s at 160x48), so a file rewritten several
#: times a second must not mean several redraws a second: the UI would be too busy to
#: answer keys. Snapshots that arrive between beats replace the waiting one.
TICK_SECONDS = 1.0
#: After each snapshot it hands over, the watch worker rests this many times the CPU it
#: spent on it (the source's reload and the dashboard's data), at most ``PACE_MAX_S``,
#: before it takes the next. On a big host each snapshot costs O(runs) of GIL time (at
#: 100k runs, ~1.5 s: the metrics walk every run's history), and a file saved every
#: second must not take the GIL from the keys for good. Changes that land meanwhile are
#: all in the next read.
PACE_FACTOR = 2.0
PACE_MAX_S = 5.0
#: Below this much CPU a snapshot costs nothing worth resting for.
PACE_FROM_S = 0.05
#: At most this long (s) the watch worker waits for the first state to be drawn.
FIRST_DRAW_WAIT_S = 2.0


def styles_dir() -> Path:
    """``tandem_tui/styles`` in a wheel (force-included there), else the repo's ``styles/``."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "styles"
    return installed if installed.is_dir() else package.parent / "styles"


def style_paths() -> list[Path]:
    directory = styles_dir()
    return [directory / name for name in STYLE_FILES if (directory / name).is_file()]


class KeySettled(Message):
    """Sent right behind a key, along the same path (focused widget, its parents, the
    screen, the app): when it reaches the app, the key has been handled everywhere it
    could be. ``rounds`` counts the passes made through the screen on top since, so
    that what the key asked for (a screen pushed in answer to a message) is in place
    before the next key goes out. ``screen`` is None when the key's screen came after a
    read in a thread (``_with_whole_runs``): the rounds then go through the new one."""

    def __init__(self, screen: Screen[Any] | None, generation: int, rounds: int) -> None:
        super().__init__()
        self.screen = screen
        self.generation = generation
        self.rounds = rounds


#: Signals that end the console as `q` does (HUP: the terminal or ssh session went away).
EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

#: Passes a settled key makes through the screen on top before the next key goes out
#: (1: the messages the key made; 2 more: a screen pushed in answer, until it is ready).
SETTLE_ROUNDS = 4
#: A key whose KeySettled was lost (its widget went away) holds the keys no longer than this.
SETTLE_TIMEOUT_S = 0.5
#: A run read whole for longer than this shows the runs table's loading spinner.
READING_SHOWN_AFTER_S = 0.2


class TandemApp(App[None]):
    """The operator console."""

    TITLE = "tandem-tui"
    CSS_PATH = style_paths()
    COMMANDS = App.COMMANDS | {RunCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "toggle_help", "Help"),
        Binding("R", "retry_refused", "Retry a refused action", show=False),
    ]

    class StateReady(Message):
        """The watch worker has a newer dashboard state (taken from ``_pending``)."""

    def __init__(
        self,
        source: RunsSource,
        *,
        clock: Clock,
        read_only: bool = False,
        watch: bool = True,
        snapshot: Snapshot | None = None,
        exit_on_signals: bool = False,
    ) -> None:
        super().__init__()
        #: SIGTERM/SIGHUP/SIGINT end the app the way `q` does (the console command).
        self.exit_on_signals = exit_on_signals
        #: The signal that ended the app, if one did.
        self.ended_by_signal: int | None = None
        #: Called once each, at once, when the app begins to exit: what the caller must
        #: stop anyway starts stopping while the app's own teardown runs (the demo's engine).
        self.exit_hooks: list[Callable[[], None]] = []
        self._previous_handlers: dict[int, Any] = {}
        self.source = source
        self.description = source.describe()
        self.clock = clock
        #: No action is offered when the operator asked so or the source can take none.
        self.read_only = read_only or self.description.route == Route.NONE
        self.live = watch and snapshot is None
        self.static = not self.live
        self._initial_snapshot = snapshot
        self._stop_watching = threading.Event()
        #: Set once the first state has been drawn (or the app is ending): until then the
        #: watch worker does not ask the source for more (see _watch_runs).
        self._first_drawn = threading.Event()
        #: Set while the watch worker's loop runs (it must end when the app exits).
        self.watching = threading.Event()
        self._pending: DashboardState | None = None
        self._pending_lock = threading.Lock()
        self._state: DashboardState | None = None
        self._shown_count = 0
        self._actor: str | None = None
        #: The last action refused because the run changed since the operator looked:
        #: ``R`` previews it again on the run as it is now (one key to look and retry).
        self._refused: tuple[str, list[str]] | None = None
        #: The runs the source keeps whole in its snapshots: those of open detail screens.
        self._kept_whole: set[str] = set()
        self.sub_title = self.description.location
        #: Keys typed while an earlier key is still being handled (see on_event).
        self._held_keys: list[events.Key] = []
        self._key_busy = False
        self._key_generation = 0
        #: Whole-record reads in flight (see _with_whole_runs): keys wait for them.
        self._whole_reads = 0
        self._reading_timer: Timer | None = None
        self._reading_shown = False
        #: Open details' runs being read whole again (_follow_open_runs).
        self._catching_up: set[str] = set()

    # -- start and stop -----------------------------------------------------------------

    async def on_mount(self) -> None:
        if self.exit_on_signals:
            self._handle_signals()
        if self.live:
            # Reading starts while the dashboard is composed and mounted: the file's
            # bytes come off the disk (no GIL held) meanwhile (~40 ms at 10k runs, ~0.4 s
            # at 100k). A state ready before the dashboard waits for it (_apply_pending).
            self._watch_runs()
        await self.push_screen(
            DashboardScreen(
                location=self.description.location,
                summary=self.description.summary,
                clock=self.clock,
                read_only=self.read_only,
                # A blinking cursor would make snapshots of a static app differ run to run.
                blink=self.live,
            )
        )
        if self.read_only and self.description.why_read_only:
            self.notify(sanitize(self.description.why_read_only), title="Read-only", severity="warning")
        if self._initial_snapshot is not None:
            self._show(build_state(self._initial_snapshot, None, now_ms=self.clock.now_ms()))
        elif not self.live:
            self._show(build_state(self._load_once(), None, now_ms=self.clock.now_ms()))
        else:
            self._apply_pending()
            self.set_interval(TICK_SECONDS, self._tick)

    def exit(self, *args: Any, **kwargs: Any) -> None:
        self._stop_watching.set()
        self._first_drawn.set()
        while self.exit_hooks:
            self.exit_hooks.pop(0)()
        super().exit(*args, **kwargs)

    def _handle_signals(self) -> None:
        """TERM, HUP and INT end the app through its event loop (``add_signal_handler``
        only wakes the loop; nothing runs inside the signal handler), so the terminal is
        restored and the caller's clean-up (the demo's engine and directory) runs."""
        import asyncio

        loop = asyncio.get_running_loop()
        for signum in EXIT_SIGNALS:
            self._previous_handlers[signum] = signal.getsignal(signum)
            loop.add_signal_handler(signum, self._end_by_signal, signum)

    def _end_by_signal(self, signum: int) -> None:
        if self.ended_by_signal is None:
            self.ended_by_signal = signum
        self.exit(return_code=128 + signum)

    def _restore_signals(self) -> None:
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for signum, previous in self._previous_handlers.items():
            loop.remove_signal_handler(signum)
            signal.signal(signum, previous)
        self._previous_handlers.clear()

    def on_unmount(self) -> None:
        self._restore_signals()
        self._stop_watching.set()
        self._first_drawn.set()
        # What this app froze (the first read) is the collector's again once it ends
        # (tests run many apps in one process; the console command freezes anew before
        # the interpreter's last collection, see commands.console.open_console).
        gc.unfreeze()

    def _load_once(self) -> Snapshot:
        """One read that never raises: ``source.load()`` if the source has it, else
        ``source.read()`` with a failure shown as a stale, empty snapshot."""
        load = getattr(self.source, "load", None)
        if callable(load):
            return load()
        try:
            return self.source.read()
        except SourceError as error:
            return _unreadable(self.description.location, str(error), self.clock.now_ms())

    # -- keys, one at a time -------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        """Keys from the terminal go out one at a time.

        A key is handled along a path of message queues (the focused widget, its
        parents, the screen, then the app's bindings), and what it asks for may be one
        more message (``OpenHistory``) before a screen is pushed. A key typed meanwhile
        used to reach the screen below (``h / q`` quit the app instead of searching the
        history). So a new key waits here until the previous one has settled and the
        screen it opened, if any, is in place, then goes to that screen.
        """
        if isinstance(event, events.Key) and not event.is_forwarded:
            if self._key_busy or self._whole_reads:
                self._held_keys.append(event)
                return
            await self._send_key(event)
            return
        await super().on_event(event)

    async def _send_key(self, event: events.Key) -> None:
        self._key_busy = True
        self._key_generation += 1
        generation = self._key_generation
        screen = self.screen
        target = self.focused or screen
        await super().on_event(event)
        target.post_message(KeySettled(screen, generation, 0))
        self.set_timer(SETTLE_TIMEOUT_S, lambda: self._key_settled(generation))

    def on_key_settled(self, message: KeySettled) -> None:
        message.stop()
        if message.generation != self._key_generation or not self._key_busy:
            return
        if not self.screen_stack:
            return  # the app is closing (its screens are gone): nothing left to settle on
        screen = self.screen
        if message.rounds < 1 or (screen is not message.screen and message.rounds < SETTLE_ROUNDS):
            # Once more through the screen on top: behind the messages the key made,
            # and behind a newly pushed screen's own start-up.
            screen.post_message(KeySettled(screen, message.generation, message.rounds + 1))
            return
        self._key_settled(message.generation)

    def _key_settled(self, generation: int) -> None:
        if generation != self._key_generation or not self._key_busy:
            return
        if self._whole_reads:
            return  # the key's screen comes after the read (_whole_read_done settles it)
        self._key_busy = False
        if self._held_keys and self.is_running:
            self.call_next(self._send_key, self._held_keys.pop(0))

    # -- quitting -------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Quit at once, unless marks or an open dialog would be lost: then ask."""
        from tandem_tui.ui.screens.quit import QuitScreen

        if isinstance(self.screen, QuitScreen):
            return
        losses = self.quit_would_lose()
        if not losses:
            self.exit()
            return

        def answered(quit_: bool | None) -> None:
            if quit_:
                self.exit()

        self.push_screen(QuitScreen(losses), answered)

    def quit_would_lose(self) -> list[str]:
        """What quitting now would throw away, in the operator's words."""
        from tandem_tui.ui.widgets.runs_table import RunsTable

        losses: list[str] = []
        for screen in self.screen_stack:
            if isinstance(screen, DashboardScreen) and screen.is_mounted:
                marked = len(screen.query_one(RunsTable).marked)
                if marked:
                    losses.append(f"{marked} marked run{'' if marked == 1 else 's'} will be unmarked")
        if any(isinstance(screen, ModalScreen) for screen in self.screen_stack):
            losses.append("the open dialog will be closed")
        return losses

    # -- snapshots in (worker thread) -> state out (UI thread) -----------------------------

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def _watch_runs(self) -> None:
        self.watching.set()
        snapshots: Iterator[Snapshot] = iter(())
        try:
            snapshots = iter(self.source.follow(self._stop_watching))
            # The first read builds every run at once (see domain.gc_pause); freezing
            # before the collector resumes spares it a pass over all of them. Only the
            # first: freezing after every snapshot (as before issue 13) froze each
            # reload's cyclic garbage (widgets' caches, replaced rows) out of the
            # collector's reach — the console grew ~28 MB/min on the demo, and the
            # interpreter's last collection walked it all at exit (q slowed with uptime).
            try:
                with gc_paused():
                    first = next(snapshots, None)
                    state = None if first is None else self._hand_over(first, None)
                    gc.freeze()
            finally:
                # On from here whatever the start-up did (the console command holds it
                # off until now, see commands.console.open_console).
                gc.enable()
            if state is not None:
                # The source's next step (a console's file source starts its parse
                # helper process and hands it the file's bytes) would take the GIL from
                # the first screen being laid out and drawn: it waits for that.
                self._first_drawn.wait(FIRST_DRAW_WAIT_S)
            spent_from = time.thread_time()
            for snapshot in snapshots:
                state = self._hand_over(snapshot, state)
                # Thread CPU: the time this worker spent blocked waiting for a change is free.
                spent = time.thread_time() - spent_from
                if spent > PACE_FROM_S:
                    self._stop_watching.wait(min(spent * PACE_FACTOR, PACE_MAX_S))
                spent_from = time.thread_time()
        except Exception as error:  # noqa: BLE001 - follow() should not raise; if it does, say so
            if not self._stop_watching.is_set():
                self.call_from_thread(
                    self.notify,
                    sanitize(" ".join(f"stopped following runs: {error}".split())),
                    title="Source",
                    severity="error",
                )
        finally:
            # Ends the source's watch (a generator's finally) in this thread, now.
            close = getattr(snapshots, "close", None)
            if callable(close):
                close()
            self.watching.clear()

    def _hand_over(self, snapshot: Snapshot, previous: DashboardState | None) -> DashboardState:
        """Build the dashboard's data here (worker thread); post it if the UI is idle."""
        state = build_state(snapshot, previous, now_ms=self.clock.now_ms())
        with self._pending_lock:
            idle = self._pending is None
            self._pending = state
        if idle:
            self.post_message(self.StateReady())
        return state

    def on_tandem_app_state_ready(self, _message: StateReady) -> None:
        # The first snapshot is shown at once; later ones wait for the heartbeat.
        if self.state is None:
            self._apply_pending()

    def _apply_pending(self) -> None:
        if self._live_dashboard() is None:
            return  # not mounted yet (or closing): the state stays pending
        with self._pending_lock:
            state, self._pending = self._pending, None
        if state is not None:
            self._show(state)

    def _show(self, state: DashboardState) -> None:
        dashboard = self._live_dashboard()
        if dashboard is not None:
            self._state = state
            dashboard.show_state(state)
            if not self._first_drawn.is_set():
                self.call_after_refresh(self._first_drawn.set)
            self._follow_open_runs(state)
            self._shown_count += 1

    def _follow_open_runs(self, state: DashboardState) -> None:
        """Run detail screens over the dashboard get the newest version of their run
        (the one way a detail screen learns of it). The source keeps their runs whole in
        its snapshots (``keep_full``); a run that changed while it was a summary is read
        whole again."""
        detail = sys.modules.get(_RUN_DETAIL_MODULE)
        if detail is None:
            return  # never imported: no run detail screen was ever opened
        RunDetailScreen = detail.RunDetailScreen
        open_ids: set[str] = set()
        for screen in self.screen_stack:
            if isinstance(screen, RunDetailScreen) and not screen.archived:
                open_ids.add(screen.run.run_id)
                latest = state.snapshot.runs.get(screen.run.run_id)
                if latest is None or latest is screen.run:
                    continue
                row = state.rows.get(screen.run.run_id)
                holder = row.holder if row is not None else None
                if isinstance(latest, RunSummary):
                    if (latest.updated_at_ms, latest.status) == (screen.run.updated_at_ms, screen.run.status):
                        continue
                    if latest.run_id in self._catching_up:
                        continue  # one read at a time: at 100k runs one takes longer than a tick
                    self._catching_up.add(latest.run_id)
                    self._with_whole_runs(
                        [latest], lambda whole, s=screen, h=holder: self._update_detail(s, whole, h), hold_keys=False
                    )
                    continue
                screen.update_run(latest, lock_holder=holder)
        self._keep_whole(open_ids)

    def _update_detail(self, screen: Any, whole: dict[str, Run], holder: str | None) -> None:
        """A detail screen's run, read whole, if the screen is still open."""
        self._catching_up.discard(screen.run.run_id)
        latest = whole.get(screen.run.run_id)
        if latest is not None and screen in self.screen_stack:
            screen.update_run(latest, lock_holder=holder)

    def _keep_whole(self, run_ids: set[str]) -> None:
        if run_ids != self._kept_whole:
            self._kept_whole = run_ids
            self.source.keep_full(run_ids)

    def _with_whole_runs(
        self,
        runs: list[Run | RunSummary],
        then: Callable[[dict[str, Run]], None],
        *,
        hold_keys: bool = True,
    ) -> None:
        """``then(whole)`` on the UI thread, with the whole records of ``runs`` by run id.

        Runs already whole go at once. Summaries are read again by the source in a
        thread (at 100k runs that is a 1.2 s scan of the file, which used to freeze the
        screen): meanwhile the screen keeps drawing, and ``hold_keys`` holds the keys
        typed after the one that asked, so that they reach the screen ``then`` opens, as
        when the read blocked. An unusable source is said in one line and gives none.
        """
        if not any(isinstance(run, RunSummary) for run in runs):
            then({run.run_id: run for run in runs})  # type: ignore[misc]
            return
        if hold_keys:
            self._whole_reads += 1
            if self._whole_reads == 1:
                self._reading_timer = self.set_timer(READING_SHOWN_AFTER_S, lambda: self._show_reading(True))
        self._read_whole_runs(runs, then, hold_keys)

    def _show_reading(self, reading: bool) -> None:
        """The runs table's loading spinner while a run is read whole (a long read only:
        a short one would only flash it)."""
        if reading == self._reading_shown or (reading and not self._whole_reads):
            return
        dashboard = self._live_dashboard()
        if dashboard is not None:
            dashboard.query_one("#runs").loading = reading
            self._reading_shown = reading

    @work(thread=True, group="whole-runs", exit_on_error=False)
    def _read_whole_runs(
        self, runs: list[Run | RunSummary], then: Callable[[dict[str, Run]], None], held: bool
    ) -> None:
        whole: dict[str, Run] = {}
        error_line: str | None = None
        try:
            whole = self.source.full_runs(runs)
        except SourceError as error:
            error_line = sanitize(" ".join(str(error).split()))
        except Exception as error:  # noqa: BLE001 - never a traceback in the console
            error_line = sanitize(" ".join(f"{type(error).__name__}: {error}".split()))
        try:
            self.call_from_thread(self._whole_read_done, whole, then, held, error_line)
        except RuntimeError:
            pass  # the app has ended meanwhile: nobody is waiting

    def _whole_read_done(
        self, whole: dict[str, Run], then: Callable[[dict[str, Run]], None], held: bool, error_line: str | None
    ) -> None:
        try:
            if error_line is not None:
                self.notify(error_line, title="Cannot read the run", severity="error")
            then(whole)
        finally:
            if held:
                self._whole_reads -= 1
                if not self._whole_reads:
                    if self._reading_timer is not None:
                        self._reading_timer.stop()
                        self._reading_timer = None
                    self._show_reading(False)
                    if (self._key_busy or self._held_keys) and self.screen_stack:
                        # Settle through the screen now on top (the one ``then`` pushed,
                        # if any), so the held keys go to it once it is ready.
                        self._key_busy = True
                        self.post_message(KeySettled(None, self._key_generation, 1))

    def _tick(self) -> None:
        """The heartbeat: the newest snapshot if one is waiting, and the clock moving on."""
        self._apply_pending()
        dashboard = self._live_dashboard()
        if dashboard is not None:
            dashboard.tick()
            # Where actions go changes when an engine starts or stops: ask again (a
            # thread: detection may probe the engine; the source caches it ~2 s).
            self.run_worker(self._refresh_description, thread=True, group="describe", exclusive=True)

    def _refresh_description(self) -> None:
        # A fresh detection each tick: the header must follow an engine within 2 s,
        # and the source's own cache (2 s) plus the tick would allow 3.
        detection = getattr(self.source, "detection", None)
        if callable(detection):
            detection(fresh=True)
        description = self.source.describe()
        if description.summary != self.description.summary:
            self.description = description
            self.call_from_thread(self._show_summary, description.summary)

    def _show_summary(self, summary: str) -> None:
        dashboard = self._live_dashboard()
        if dashboard is not None:
            dashboard.show_summary(summary)

    def _live_dashboard(self) -> DashboardScreen | None:
        """The dashboard, unless the app is closing and its widgets are going away."""
        if self._stop_watching.is_set() or not self.is_running:
            return None
        for screen in self.screen_stack:
            if isinstance(screen, DashboardScreen) and screen.is_mounted:
                return screen
        return None

    @property
    def dashboard(self) -> DashboardScreen:
        return self._dashboard()

    def _dashboard(self) -> DashboardScreen:
        for screen in self.screen_stack:
            if isinstance(screen, DashboardScreen):
                return screen
        raise LookupError("the dashboard is not on the screen stack")

    @property
    def state(self) -> DashboardState | None:
        """The latest data shown (``None`` before the first read)."""
        return self._state

    def run_ids(self) -> list[str]:
        state = self.state
        return sorted(state.snapshot.runs) if state is not None else []

    # -- what the screens ask for (messages up) ------------------------------------------

    def on_dashboard_screen_open_run(self, message: DashboardScreen.OpenRun) -> None:
        self.open_run(message.run_id)

    def on_dashboard_screen_open_history(self, _message: DashboardScreen.OpenHistory) -> None:
        from tandem_tui.ui.screens.history import HistoryScreen

        self.push_screen(HistoryScreen(self.source, clock=self.clock))

    def on_history_screen_open_run(self, message: HistoryScreen.OpenRun) -> None:
        from tandem_tui.ui.screens.run_detail import RunDetailScreen

        self.push_screen(RunDetailScreen(message.run, clock=self.clock, archived=True))

    def on_dashboard_screen_action_requested(self, message: DashboardScreen.ActionRequested) -> None:
        self.request_action(message.kind, message.run_ids)

    def on_run_detail_screen_action_requested(self, message: RunDetailScreen.ActionRequested) -> None:
        self.request_action(message.kind, message.run_ids)

    # -- navigation ---------------------------------------------------------------------

    def open_run(self, run_id: str) -> None:
        state = self.state
        run = state.snapshot.runs.get(run_id) if state is not None else None
        if run is None:
            self.notify(f"Run {sanitize(run_id)} is no longer among the hot runs.", severity="warning")
            return
        row = state.rows.get(run_id) if state is not None else None
        from tandem_tui.ui.screens.run_detail import RunDetailScreen

        self._keep_whole(self._kept_whole | {run_id})
        holder = row.holder if row is not None and row.holder else None

        def show(whole_runs: dict[str, Run]) -> None:
            whole = whole_runs.get(run_id)
            if whole is None:
                self.notify(f"Run {sanitize(run_id)} is no longer among the hot runs.", severity="warning")
                return
            self.push_screen(
                RunDetailScreen(whole, clock=self.clock, archived=False, actions=not self.read_only, lock_holder=holder)
            )

        self._with_whole_runs([run], show)

    def go_to_run(self, run_id: str) -> None:
        self.go_to_dashboard()
        self._dashboard().go_to_run(run_id)

    def find_run(self, query: str = "") -> None:
        """The run finder over the hot runs; the chosen run is selected on the dashboard."""
        from tandem_tui.ui.screens.run_finder import RunFinderScreen

        def chosen(run_id: str | None) -> None:
            if run_id is not None:
                self.go_to_run(run_id)

        self.go_to_dashboard()
        self.push_screen(RunFinderScreen(self.run_ids(), query), chosen)

    def run_action_on_selection(self, kind: str) -> None:
        """From the command palette: the action on the dashboard's marked or selected runs."""
        self.go_to_dashboard()
        self._dashboard().action_act(kind)

    def run_dashboard_action(self, action: str) -> None:
        self.go_to_dashboard()
        self.call_later(self._dashboard().run_action, action)

    def go_to_dashboard(self) -> None:
        while not isinstance(self.screen, DashboardScreen) and len(self.screen_stack) > 1:
            self.pop_screen()

    def action_toggle_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    # -- actions --------------------------------------------------------------------------

    @property
    def actor(self) -> str:
        if self._actor is None:
            from tandem_tui.source.actor import default_actor

            self._actor = default_actor(os.environ)
        return self._actor

    def request_action(self, kind: str, run_ids: list[str]) -> None:
        """Preview ``kind`` on the runs, ask for a reason, then perform it."""
        if self.read_only:
            self.notify("The console is read-only.", severity="warning")
            return
        state = self.state
        shown = [state.snapshot.runs[r] for r in run_ids if state and r in state.snapshot.runs]
        # A preview judges the whole record (a requeue reads node outputs and the
        # flow), as the store holds it now.
        self._with_whole_runs(shown, lambda whole: self._preview_action(kind, shown, whole))

    def _preview_action(self, kind: str, shown: list[Run | RunSummary], whole: dict[str, Run]) -> None:
        """Preview ``kind`` on the whole records of the runs shown, then ask for a reason."""
        from tandem_tui.domain.actions import ActionKind, DecisionState, Refusal, preview
        from tandem_tui.ui.screens.confirm import ConfirmActionScreen

        runs = [run if not isinstance(run, RunSummary) else whole[run.run_id] for run in shown
                if not isinstance(run, RunSummary) or run.run_id in whole]
        if not runs:
            self.notify("No run selected.", severity="warning")
            return
        action = ActionKind(kind)
        now_ms = self.clock.now_ms()
        previews = [(run, preview(action, run, now_ms)) for run in runs]
        allowed = [(run.run_id, DecisionState.of(run)) for run, p in previews if not isinstance(p, Refusal)]
        if not allowed:
            for run, refusal in previews:
                self.notify(_one_line(refusal, run.run_id), title="Refused", severity="error")
            return

        def on_reason(reason: str | None) -> None:
            if reason is not None:
                self._perform(action, allowed, reason)
                # Marks select runs for one action; a confirmed action consumes them.
                dashboard = self._live_dashboard()
                if dashboard is not None:
                    dashboard.clear_marks()

        self.push_screen(
            ConfirmActionScreen(action, [p for _, p in previews], actor=self.actor), on_reason
        )

    @work(thread=True, group="actions", exit_on_error=False)
    def _perform(self, action: ActionKind, targets: list[tuple[str, DecisionState]], reason: str) -> None:
        from tandem_tui.domain.actions import ActionRequest

        # Guarded on what the operator's decision rested on (status, claim), not on
        # updated_at_ms, which a running run moves several times a second.
        for run_id, seen in targets:
            request = ActionRequest(
                kind=action,
                run_id=run_id,
                reason=reason.strip() or None,
                actor=self.actor,
                expect_state=seen,
            )
            try:
                result = self.source.perform(request)
            except SourceError as error:  # the store is unusable: say so, in one line
                self.call_from_thread(
                    self.notify, _one_line(error, run_id), title="Failed", severity="error"
                )
                continue
            except Exception as error:  # noqa: BLE001 - never a traceback in the console
                self.call_from_thread(
                    self.notify,
                    _one_line(f"{type(error).__name__}: {error}", run_id),
                    title="Failed",
                    severity="error",
                )
                continue
            if result.ok:
                message = f"{run_id}: {result.previous_status} → {result.new_status}"
                self.call_from_thread(self.notify, sanitize(message), title=action.value.replace("_", " "))
            elif "changed since you looked" in result.message:
                self.call_from_thread(self._offer_retry, action.value, run_id, result.message)
            else:
                self.call_from_thread(
                    self.notify, _one_line(result.message, run_id), title="Refused", severity="error"
                )

    def _offer_retry(self, kind: str, run_id: str, message: str) -> None:
        if self._refused is not None and self._refused[0] == kind:
            self._refused[1].append(run_id)
        else:
            self._refused = (kind, [run_id])
        self.notify(
            _one_line(message, run_id) + " — R: see it now and retry",
            title="Refused",
            severity="error",
        )

    def action_retry_refused(self) -> None:
        """Preview the refused action again on the runs as they are now (the
        confirmation shows their new state)."""
        if self._refused is None:
            return
        kind, run_ids = self._refused
        self._refused = None
        self.request_action(kind, run_ids)


def _one_line(value: object, run_id: str) -> str:
    message = getattr(value, "message", None) or str(value)
    return sanitize(" ".join(f"{run_id}: {message}".split()))


def _unreadable(location: str, error: str, now_ms: int) -> Snapshot:
    """A stale snapshot with no runs, saying why the source could not be read."""
    from tandem_tui.domain.view import RunsView

    return Snapshot(
        location=location,
        runs={},
        view=RunsView.build({}, now_ms=now_ms),
        freshness=Freshness(read_at_ms=now_ms, stale=True, error=" ".join(error.split())),
    )


def make_app(
    source: RunsSource,
    *,
    clock: Clock | None = None,
    read_only: bool = False,
    watch: bool = True,
    snapshot: Snapshot | None = None,
    exit_on_signals: bool = False,
) -> TandemApp:
    """The console on ``source``: live (following it), or static with ``watch=False``
    (one ``load()``) or a given ``snapshot``. The caller owns ``source`` and closes it."""
    return TandemApp(
        source,
        clock=clock or SYSTEM_CLOCK,
        read_only=read_only,
        watch=watch,
        snapshot=snapshot,
        exit_on_signals=exit_on_signals,
    )
