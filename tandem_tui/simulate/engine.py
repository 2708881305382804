"""The simulate engine: drives realistic automation runs through the core, like a Tandem host.

It plays the engine side of a Tandem host for the demo, the tests and the benchmarks.
The automations of :mod:`~tandem_tui.simulate.catalogue` create runs; queued runs are
admitted through the scheduler's checks and claimed through the claim path; running
runs move through their flow's nodes, spend tokens, hit provider throttles and
transient failures (durable retry backoff), fail, block, wait at an approval gate, get
paused by a spend guardrail or reaped as stale (and auto-resumed), and complete. Old
terminal runs are archived into history shards so the hot file stays small.

Like the real engine (≤ 0.6.8; with ``store="sqlite"`` the ≥ 0.6.9 layout of
:mod:`~tandem_tui.simulate.sqlite_store`: the store authoritative, the file its copy of
the hot set, history as store rows) where the console meets it:

- the runs live **in memory**; the runs file is read **once**, at start-up (the first
  :meth:`Engine.step`), and never again;
- every change rewrites the runs file whole with a plain truncate-and-write (the
  server's ``fs::write``: no lock, no temp file, no fsync), so anything written to the
  file behind the engine's back is gone at its next save, and a reader can catch the
  file half-written;
- operator actions reach it only through :meth:`Engine.act` (its HTTP API,
  :mod:`tandem_tui.simulate.server`), which runs OUR domain rules on its in-memory runs.

The engine moves only what it owns: it never touches a run paused by anyone else, nor
a running run claimed by another claimant.

Deterministic: one ``random.Random(seed)``, sorted iteration, and time only from the
injected clock — the same seed and the same clock readings give the same file.
"""

from __future__ import annotations

import os
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from tandem_tui.domain.core_validation import ValidationError

from tandem_tui.domain import events
from tandem_tui.domain.actions import scheduler_from_entries
from tandem_tui.domain.claims import CLAIMANT_ID_ENV, claim_run
from tandem_tui.domain.clock import Clock, SystemClock
from tandem_tui.domain.lifecycle import apply_run_update, record_lifecycle_event
from tandem_tui.domain.models import (
    TERMINAL_STATUSES,
    FailureRecord,
    Run,
    RunStatus,
    SchedulerMetadata,
    StopKind,
    TenantContext,
    dump_run,
    parse_run,
)
from tandem_tui.domain.recovery import STALE_REAP_EVENT, auto_resume_stale_reaped_runs
from tandem_tui.domain.retry import RetryDecision, apply_retry_backoff, retry_backoff_is_due
from tandem_tui.domain.scheduler import AutomationScheduler, SchedulerMetrics
from tandem_tui.domain.view import RunsView, last_queue_entry_ms
from tandem_tui.simulate.catalogue import (
    AUTOMATIONS,
    AUTOMATIONS_BY_ID,
    MODELS,
    AutomationSpec,
    NodeSpec,
    build_run,
    digest,
    required_providers,
)
from tandem_tui.simulate.sqlite_store import SqliteRunsStore
from tandem_tui.source.file.shards import write_shard
from tandem_tui.source.file.store import (
    RunsFileError,
    default_runs_file_path,
    parse_run_entry,
    read_runs_document,
    serialize_runs_file,
)

#: Simulated time between ticks when the engine runs on its own.
TICK_MS = 250
#: Terminal runs older than this move from the hot file to history shards.
ARCHIVE_AFTER_MS = 30_000
#: Paused-by-guardrail runs nobody resumed are cancelled after this long.
GUARDRAIL_CANCEL_AFTER_MS = 120_000
#: A stale-reaped run stays paused at least this long before auto-resume is considered.
STALE_RESUME_DELAY_MS = 3_000
ENGINE_SOURCE = "tandem-tui-simulate"
#: Where the engine keeps its runs: the runs file (<= 0.6.8) or the SQLite store (>= 0.6.9).
STORE_FILE = "file"
STORE_SQLITE = "sqlite"
STORES = (STORE_FILE, STORE_SQLITE)

T = TypeVar("T")


# ── the engine ────────────────────────────────────────────────────────────────


@dataclass
class _State:
    """What the engine remembers between ticks."""

    created: int = 0
    credit: float = 0.0
    last_tick_ms: int | None = None
    #: (tenant scope, provider) -> (tenant, throttled until)
    throttles: dict[tuple[Any, str], tuple[TenantContext, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class TickReport:
    """What one tick did: created, claimed, archived runs and status changes."""

    at_ms: int
    created: tuple[str, ...] = ()
    claimed: tuple[str, ...] = ()
    archived: tuple[str, ...] = ()
    transitions: tuple[tuple[str, str, str], ...] = ()
    written: bool = False


def runs_file_for_state_dir(state_dir: Path | str) -> Path:
    """Where the server would keep its runs file with ``TANDEM_STATE_DIR=state_dir``."""
    return default_runs_file_path({"TANDEM_STATE_DIR": str(state_dir)})


class Engine:
    """Drives runs kept in memory, saved to ``<state_dir>/data/automation_v2_runs.json``.

    See the module doc. Thread-safe: ticks (:meth:`step`) and API actions (:meth:`act`)
    take one lock, so an action lands between two ticks and is in the next save.
    """

    def __init__(
        self,
        state_dir: Path | str,
        *,
        seed: int = 0,
        rate: float = 1.0,
        pace: float = 1.0,
        max_concurrent: int = 8,
        clock: Clock | None = None,
        runs_limit: int | None = None,
        archive_after_ms: int = ARCHIVE_AFTER_MS,
        store: str = STORE_FILE,
        keep_history: int | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.runs_file = runs_file_for_state_dir(self.state_dir)
        if store not in STORES:
            raise ValueError(f"store must be one of {', '.join(STORES)}, not {store!r}")
        #: ``sqlite``: the >= 0.6.9 layout (:mod:`tandem_tui.simulate.sqlite_store`).
        self.store: SqliteRunsStore | None = SqliteRunsStore(self.runs_file.parent) if store == STORE_SQLITE else None
        #: Runs archived since the last save (the SQLite store marks them history then).
        self._archived: list[str] = []
        self.seed = seed
        self.rate = max(float(rate), 0.0)
        #: How fast runs move through their nodes: 1 finishes a node in ~2 s of clock
        #: time, 0.25 four times slower (the demo's pace, so a person can act on a run).
        self.pace = max(float(pace), 0.0)
        self.max_concurrent = max(int(max_concurrent), 1)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.runs_limit = runs_limit
        self.archive_after_ms = archive_after_ms
        #: At most this many of the shards this engine wrote (file store) are kept, the oldest removed
        #: first (None: all, as the real engine does). The demo sets it, so a demo left
        #: open all day reaches a steady state on disk and in the console's shard index.
        self.keep_history = None if keep_history is None else max(int(keep_history), 0)
        self._shards: deque[Path] = deque()
        self.max_backlog = 2 * self.max_concurrent + 6
        self.claimant_id = f"{ENGINE_SOURCE}:seed-{seed}"
        #: The claim path reads claimant and lease from the environment, as the server does.
        self.claim_env = {**os.environ, CLAIMANT_ID_ENV: self.claimant_id}
        self._rng = random.Random(seed)
        self._state = _State()
        self._lock = threading.RLock()
        self._started = False
        #: Every hot entry as it will be saved (raw JSON values; unknown fields kept).
        self._entries: dict[str, Any] = {}
        #: The parsed runs, by entry key (corrupt entries parsed as the store recovers them).
        self._runs: dict[str, Run] = {}
        #: Entries that did not validate: they count for admission but are never rewritten.
        self._corrupt: set[str] = set()
        #: How many times the runs file was written (the tests count saves).
        self.saves = 0

    @property
    def created(self) -> int:
        """How many runs this engine has created so far."""
        return self._state.created

    # ── start-up: the only read of the runs file ──────────────────────────────

    def start(self) -> None:
        """Load the runs file into memory, once (a missing file is an empty host).

        Raises :class:`~tandem_tui.source.file.store.RunsFileError` for a file it cannot
        use (unreadable, invalid, of a newer schema): the engine refuses to start rather
        than overwrite it.
        """
        with self._lock:
            if self._started:
                return
            entries: dict[str, Any] | None = None
            if self.store is not None:
                # >= 0.6.9: the store is authoritative; the runs file is read only for
                # the one-time legacy import.
                entries = self.store.open(now_ms=self.clock.now_ms(), legacy_entries=self._legacy_entries)
            elif self.runs_file.exists():
                entries = dict(read_runs_document(self.runs_file).entries)
            if entries is not None:
                now_ms = self.clock.now_ms()
                for key in sorted(entries):
                    value = entries[key]
                    try:
                        run = parse_run(value)
                    except ValidationError:
                        try:
                            run = parse_run_entry(key, value, now_ms=now_ms)
                        except RunsFileError:
                            continue
                        self._corrupt.add(key)
                    self._runs[key] = run
                self._entries = dict(entries)
            self._started = True

    def _legacy_entries(self) -> dict[str, Any]:
        """The runs file's entries, for the store's one-time import (none: an empty host)."""
        if not self.runs_file.exists():
            return {}
        return dict(read_runs_document(self.runs_file).entries)

    def close(self) -> None:
        """Release what the engine holds while it runs (the SQLite store and its engine lock)."""
        with self._lock:
            if self.store is not None:
                self.store.close()

    # ── one tick ─────────────────────────────────────────────────────────────

    def step(self) -> TickReport:
        """One tick at the clock's current time: archive, move runs, save if anything changed."""
        with self._lock:
            first = not self._started
            self.start()
            now_ms = self.clock.now_ms()
            archived = self._archive(now_ms)
            report = _Tick(self, now_ms).run(archived)
            changed = first or bool(report.archived or report.created or report.claimed or report.transitions)
            changed = changed or bool(report.written)
            if changed:
                self.save()
            return replace(report, written=changed)

    def run(
        self,
        stop_event: threading.Event | None = None,
        *,
        duration_ms: int | None = None,
        tick_ms: int = TICK_MS,
        sleep: Callable[[float], bool] | None = None,
    ) -> int:
        """Tick until ``stop_event`` is set (or ``duration_ms`` of clock time has passed).

        Returns the number of ticks. Between ticks it waits on the stop event, so a
        stop takes effect within one tick and never in the middle of a write.
        """
        stop = stop_event or threading.Event()
        wait = sleep or stop.wait
        started = self.clock.now_ms()
        ticks = 0
        while not stop.is_set():
            self.step()
            ticks += 1
            if duration_ms is not None and self.clock.now_ms() - started >= duration_ms:
                break
            if wait(tick_ms / 1000):
                break
        return ticks

    # ── saving: the server's plain rewrite ─────────────────────────────────────

    def save(self) -> None:
        """Rewrite the runs file whole from memory, as the server does (``fs::write``).

        Deliberately not atomic and not locked: truncate, then write. A reader may see
        a half-written file; a writer behind our back is overwritten.
        """
        with self._lock:
            if self.store is not None:
                # The store first: it is what the engine loads; the file is its copy.
                self.store.save(self._entries, self._runs, self._archived)
                self._archived = []
            payload = serialize_runs_file(self._entries).encode("utf-8")
            self.runs_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.runs_file, "wb") as handle:  # truncate-and-write, like fs::write
                handle.write(payload)
            self.saves += 1

    # ── the API's view of the runs ─────────────────────────────────────────────

    def runs(self) -> list[Run]:
        """Deep copies of the hot runs (what the API lists), under the lock."""
        with self._lock:
            self.start()
            return [run.model_copy(deep=True) for run in self._runs.values()]

    def metrics(self) -> SchedulerMetrics:
        """The scheduler metrics of the in-memory runs (``GET /scheduler/metrics``)."""
        with self._lock:
            self.start()
            now_ms = self.clock.now_ms()
            runs = {run.run_id: run for run in self._runs.values()}
            return RunsView.build(runs, now_ms=now_ms, max_concurrent_runs=self.max_concurrent).metrics()

    def act(self, run_id: str, handler: Callable[[Run, int, AutomationScheduler], tuple[T, bool]]) -> T | None:
        """Run ``handler(run, now_ms, scheduler)`` on the in-memory run ``run_id``.

        ``handler`` returns ``(answer, changed)``; a change is written back and saved at
        once (the server's ``update_automation_v2_run`` persists every update). Returns
        None when no hot run has that id (nothing is changed then).
        """
        with self._lock:
            self.start()
            key = run_id if run_id in self._runs else next(
                (k for k, run in self._runs.items() if run.run_id == run_id), None
            )
            if key is None:
                return None
            now_ms = self.clock.now_ms()
            scheduler = scheduler_from_entries(self._entries, max_concurrent_runs=self.max_concurrent, clock=self.clock)
            run = self._runs[key]
            before = run.model_copy(deep=True)
            try:
                answer, changed = handler(run, now_ms, scheduler)
            except BaseException:
                self._runs[key] = before  # a failed handler leaves no half-made change
                raise
            if changed:
                self._entries[key] = dump_run(run)
                self._corrupt.discard(key)
                self.save()
            else:
                self._runs[key] = before  # a refusal leaves the run exactly as it was
            return answer

    # ── archiving: shards first, then the hot set forgets the run ───────────────

    def _archive(self, now_ms: int) -> tuple[str, ...]:
        """Write shards for old terminal runs and drop them from memory.

        The shard is written before the run leaves the hot set, so a crash in between
        leaves the run in both places, never in neither.
        """
        cutoff = now_ms - self.archive_after_ms
        out: list[str] = []
        for key in sorted(self._entries):
            if key in self._corrupt:
                continue  # a corrupt entry stays where it is, byte for byte
            value = self._entries[key]
            if not isinstance(value, dict) or value.get("status") not in _TERMINAL_VALUES:
                continue
            finished = value.get("finished_at_ms") or value.get("updated_at_ms") or 0
            if not isinstance(finished, int) or finished > cutoff:
                continue
            run = self._runs.get(key)
            if run is None:
                continue
            if self.store is None:
                self._shards.append(write_shard(self.runs_file, run))
            else:
                self._archived.append(key)  # history is the store's (is_hot = 0), no shard
            del self._entries[key]
            del self._runs[key]
            out.append(key)
        self._forget_history()
        return tuple(out)

    def _forget_history(self) -> None:
        """Remove the oldest shards this engine wrote beyond ``keep_history``."""
        if self.keep_history is None:
            return
        while len(self._shards) > self.keep_history:
            self._shards.popleft().unlink(missing_ok=True)


_TERMINAL_VALUES = frozenset(status.value for status in TERMINAL_STATUSES)


class _Tick:
    """One tick applied to the engine's in-memory runs."""

    def __init__(self, engine: Engine, now_ms: int) -> None:
        self.engine = engine
        self.rng = engine._rng
        self.state = engine._state
        self.entries = engine._entries
        self.now_ms = now_ms
        last = engine._state.last_tick_ms
        elapsed = TICK_MS if last is None or now_ms <= last else now_ms - last
        #: How much simulated time this tick stands for, in TICK_MS units (odds scale by it).
        self.tick_scale = min(elapsed / TICK_MS, 8.0)
        self.touched: set[str] = set()
        self.transitions: list[tuple[str, str, str]] = []
        self.runs: dict[str, Run] = engine._runs
        self.corrupt: set[str] = engine._corrupt
        view = RunsView.build(
            {run.run_id: run for run in self.runs.values()},
            now_ms=now_ms,
            max_concurrent_runs=engine.max_concurrent,
            clock=engine.clock,
        )
        self.scheduler: AutomationScheduler = view.scheduler
        self._install_throttles()

    def run(self, archived: tuple[str, ...]) -> TickReport:
        self._advance_runs()
        created = self._create_runs()
        claimed = self._admit_queued()
        self._write_back()
        self.state.last_tick_ms = self.now_ms
        return TickReport(
            at_ms=self.now_ms,
            created=tuple(created),
            claimed=tuple(claimed),
            archived=archived,
            transitions=tuple(self.transitions),
            written=bool(self.touched),
        )

    # ── bookkeeping ──────────────────────────────────────────────────────────

    def _install_throttles(self) -> None:
        for key in sorted(self.state.throttles, key=repr):
            tenant, until = self.state.throttles[key]
            if until <= self.now_ms:
                del self.state.throttles[key]
                continue
            self.scheduler.rate_limits.record_throttle_until_for_tenant(tenant, key[1], until)

    def _write_back(self) -> None:
        for key in sorted(self.touched):
            run = self.runs[key]
            self.entries[key] = dump_run(run)

    def _update(self, key: str, mutate: Callable[[Run], None]) -> None:
        run = self.runs[key]
        before = run.status
        apply_run_update(run, mutate, now_ms=self.now_ms, scheduler=self.scheduler)
        self.touched.add(key)
        if run.status != before:
            self.transitions.append((run.run_id, before.value, run.status.value))

    def _event(
        self,
        run: Run,
        event: str,
        reason: str | None = None,
        stop_kind: StopKind | None = None,
        **metadata: Any,
    ) -> None:
        """Record an event signed as ours (how later ticks tell our pauses from an operator's)."""
        record_lifecycle_event(
            run, event, reason, stop_kind, {"source": ENGINE_SOURCE, **metadata}, now_ms=self.now_ms
        )

    def _chance(self, odds: float) -> bool:
        """True with ``odds`` per TICK_MS of simulated time."""
        return self.rng.random() < self._per_tick(odds)

    def _per_tick(self, odds: float) -> float:
        return min(odds * self.tick_scale, 1.0)

    # ── creating runs ────────────────────────────────────────────────────────

    def _create_runs(self) -> list[str]:
        engine, state = self.engine, self.state
        elapsed = 0 if state.last_tick_ms is None else max(self.now_ms - state.last_tick_ms, 0)
        if state.last_tick_ms is None:
            # A backlog at start-up, so every kind of contention shows right away.
            state.credit += engine.max_concurrent + 4
        state.credit += engine.rate * elapsed / 1000
        created: list[str] = []
        # A bounded backlog keeps the hot file (and every tick) small however high the rate.
        backlog = sum(1 for run in self.runs.values() if run.status == RunStatus.QUEUED)
        while state.credit >= 1:
            if engine.runs_limit is not None and state.created >= engine.runs_limit:
                state.credit = 0
                break
            if backlog >= engine.max_backlog:
                state.credit = min(state.credit, 1.0)
                break
            backlog += 1
            state.credit -= 1
            created.append(self._create_one())
        return created

    def _create_one(self) -> str:
        spec = self.rng.choices(AUTOMATIONS, weights=[s.weight for s in AUTOMATIONS])[0]
        workspace = self.rng.choice(spec.workspaces)
        self.state.created += 1
        suffix = digest(self.engine.seed, self.now_ms, self.state.created)[:8]
        run_id = f"{spec.automation_id}-{suffix}"
        while run_id in self.entries:
            run_id += "x"
        run = build_run(spec, run_id=run_id, workspace_root=workspace, now_ms=self.now_ms)
        self._event(run, events.RUN_CREATED, "run created by schedule tick", trigger_type="scheduled")
        run.scheduler = _fresh_queue_metadata(run, self.now_ms)
        self.runs[run_id] = run
        self.touched.add(run_id)
        return run_id

    # ── admitting queued runs ────────────────────────────────────────────────

    def _admit_queued(self) -> list[str]:
        """Claim every admissible queued run, oldest first; persist why the others wait."""
        queued = sorted(
            # Runs of automations we do not simulate are someone else's to start.
            (
                key
                for key, run in self.runs.items()
                if run.status == RunStatus.QUEUED
                and run.automation_id in AUTOMATIONS_BY_ID
                and key not in self.corrupt
            ),
            key=lambda key: (self.runs[key].created_at_ms, self.runs[key].run_id),
        )
        claimed: list[str] = []
        for key in queued:
            run = self.runs[key]
            if not retry_backoff_is_due(run, self.now_ms):
                continue  # keeps its retry_backoff metadata until due
            queued_at = run.scheduler.queued_at_ms if run.scheduler is not None else last_queue_entry_ms(run)
            self.scheduler.track_queue_state(run.run_id, _fresh_queue_metadata(run, queued_at))
            verdict = self.scheduler.can_admit_for_tenant(
                run.run_id, run.workspace_root, required_providers(run), run.tenant_context
            )
            if verdict is None:
                self._claim(key)
                claimed.append(run.run_id)
                continue
            self._persist_queue_reason(key, verdict)
        return claimed

    def _persist_queue_reason(self, key: str, verdict: SchedulerMetadata) -> None:
        run = self.runs[key]
        if run.scheduler is not None and _as_json(run.scheduler) == _as_json(verdict):
            return
        run.scheduler = verdict
        self.touched.add(key)

    def _claim(self, key: str) -> None:
        run = self.runs[key]

        before = run.status
        claim = claim_run(
            run,
            now_ms=self.now_ms,
            scheduler=self.scheduler,
            env=self.engine.claim_env,
            claim_id=f"run-claim-{digest(run.run_id, self.now_ms, run.execution_claim_epoch)[:12]}",
        )
        if claim is None:
            return
        self.touched.add(key)
        self.transitions.append((run.run_id, before.value, run.status.value))

    # ── moving runs along ────────────────────────────────────────────────────

    def _advance_runs(self) -> None:
        for key in sorted(self.runs):
            run = self.runs[key]
            if key in self.corrupt or run.automation_id not in AUTOMATIONS_BY_ID:
                continue  # not ours to move
            if run.status == RunStatus.RUNNING:
                claim = run.execution_claim
                if claim is None or claim.claimant_id != self.engine.claimant_id:
                    continue  # someone else's work
                self._advance_running(key)
            elif run.status == RunStatus.PAUSING and self._last_event_is_ours(run, events.RUN_PAUSE_REQUESTED):
                if self._chance(0.5):  # the agent takes a moment to wind down
                    self._settle_pause(key)
            elif run.status == RunStatus.PAUSED:
                self._maybe_resume(key)
            elif run.status == RunStatus.AWAITING_APPROVAL and self._last_event_is_ours(run, events.RUN_AWAITING_APPROVAL):
                self._decide_gate(key)
            elif run.status == RunStatus.QUEUED and run.created_at_ms < self.now_ms and self._chance(0.001):
                self._update(key, lambda r: self._cancel(r, "trigger superseded by a newer schedule tick"))

    def _last_event_is_ours(self, run: Run, event: str) -> bool:
        history = run.checkpoint.lifecycle_history
        if not history:
            return False
        last = history[-1]
        metadata = last.metadata if isinstance(last.metadata, dict) else {}
        return last.event == event and metadata.get("source") == ENGINE_SOURCE

    def _current_node(self, run: Run) -> str | None:
        checkpoint = run.checkpoint
        for node_id in checkpoint.pending_nodes:
            if node_id not in checkpoint.completed_nodes and node_id not in checkpoint.blocked_nodes:
                return node_id
        return None

    def _advance_running(self, key: str) -> None:
        run = self.runs[key]
        spec = AUTOMATIONS_BY_ID.get(run.automation_id)
        node_id = self._current_node(run)
        if spec is None or node_id is None:
            self._update(key, lambda r: self._complete_run(r))
            return
        node = next((n for n in spec.nodes if n.node_id == node_id), None)
        if node is None:
            self._update(key, lambda r: self._complete_run(r))
            return
        if node.gate:
            self._update(key, lambda r: self._await_gate(r, node))
            return
        if not run.active_session_ids:
            self._update(key, lambda r: self._start_node(r, node))
            return
        # Odds per TICK_MS of simulated time, scaled to this tick's length: most of the
        # time a node just works (and spends tokens).
        outcomes: tuple[tuple[float, Callable[[], None]], ...] = (
            (0.12, lambda: self._update(key, lambda r: self._complete_node(r, spec, node))),
            (0.02, lambda: self._transient_failure(key, spec, node)),
            (0.0035, lambda: self._update(key, lambda r: self._block(r, node))),
            (0.003, lambda: self._update(
                key, lambda r: self._fail(r, node, "tool call returned a non-retryable error", "tool_error")
            )),
            (0.003, lambda: self._update(key, self._stale_reap)),
            (0.002, lambda: self._update(key, self._request_guardrail_pause)),
        )
        roll = self.rng.random()
        for odds, outcome in outcomes:
            roll -= self._per_tick(odds * self.engine.pace)
            if roll < 0:
                outcome()
                return
        self._update(key, lambda r: self._spend(r, spec, node, fraction=0.2))

    def _start_node(self, run: Run, node: NodeSpec) -> None:
        attempts = run.checkpoint.node_attempts.get(node.node_id, 0) + 1
        run.checkpoint.node_attempts[node.node_id] = attempts
        session = f"session-{digest(run.run_id, node.node_id, attempts)[:10]}"
        run.active_session_ids = [session]
        run.latest_session_id = session
        run.active_instance_ids = [f"instance-{node.agent_id}-{digest(session)[:6]}"]
        run.detail = f"running node `{node.node_id}` attempt {attempts}"
        self._event(
            run,
            events.NODE_STARTED,
            f"node `{node.node_id}` attempt {attempts} started",
            node_id=node.node_id,
            attempt=attempts,
            agent_id=node.agent_id,
        )

    def _spend(self, run: Run, spec: AutomationSpec, node: NodeSpec, *, fraction: float = 1.0) -> None:
        provider = spec.agents[node.agent_id]
        _, prompt_price, completion_price = MODELS[provider]
        prompt = int(self.rng.randint(800, 6_000) * fraction)
        completion = int(self.rng.randint(200, 2_000) * fraction)
        run.prompt_tokens += prompt
        run.completion_tokens += completion
        run.total_tokens += prompt + completion
        cost = prompt / 1000 * prompt_price + completion / 1000 * completion_price
        run.estimated_cost_usd = round(run.estimated_cost_usd + cost, 6)

    def _complete_node(self, run: Run, spec: AutomationSpec, node: NodeSpec) -> None:
        self._spend(run, spec, node)
        checkpoint = run.checkpoint
        attempts = checkpoint.node_attempts.get(node.node_id, 1)
        path = f"artifacts/{run.run_id}/{node.node_id}.md"
        checkpoint.completed_nodes.append(node.node_id)
        checkpoint.pending_nodes = [n for n in checkpoint.pending_nodes if n != node.node_id]
        checkpoint.node_outputs[node.node_id] = {
            "status": "completed",
            "summary": f"{node.objective}: done",
            "attempt_evidence": {
                "attempt": attempts,
                "artifact": {
                    "status": "written",
                    "path": path,
                    "content_digest": f"sha256:{digest(run.run_id, node.node_id, attempts)}",
                    "bytes": self.rng.randint(400, 40_000),
                },
            },
        }
        # The server's verdicts are a list per node (``HashMap<String, Vec<Value>>``).
        checkpoint.node_attempt_verdicts.setdefault(node.node_id, []).append(
            {"verdict": "accepted", "attempt": attempts}
        )
        run.active_session_ids = []
        run.active_instance_ids = []
        run.detail = f"completed node `{node.node_id}`; continuing"
        self._event(
            run,
            events.NODE_COMPLETED,
            f"node `{node.node_id}` completed",
            node_id=node.node_id,
            attempt=attempts,
            artifact_path=path,
        )
        if self._current_node(run) is None:
            self._complete_run(run)

    def _complete_run(self, run: Run) -> None:
        run.status = RunStatus.COMPLETED
        run.execution_claim = None
        run.active_session_ids = []
        run.active_instance_ids = []
        run.detail = "automation run completed"
        self._event(run, events.RUN_COMPLETED, "all nodes completed", total_tokens=run.total_tokens)

    def _transient_failure(self, key: str, spec: AutomationSpec, node: NodeSpec) -> None:
        run = self.runs[key]
        attempts = run.checkpoint.node_attempts.get(node.node_id, 1)
        provider = spec.agents[node.agent_id]
        throttled = self.rng.random() < 0.25  # per failure, not per tick
        detail = f"{provider} returned 429 Too Many Requests" if throttled else "provider timeout"
        if throttled:
            duration = self.rng.randint(2_000, 6_000)
            tenant = run.tenant_context
            until = self.now_ms + duration
            self.state.throttles[(tenant.scope_key(), provider)] = (tenant.model_copy(deep=True), until)
            self.scheduler.rate_limits.record_throttle_until_for_tenant(tenant, provider, until)
        if attempts >= node.max_attempts:
            reason = f"{detail}; attempts exhausted ({attempts}/{node.max_attempts})"
            self._update(key, lambda r: self._fail(r, node, reason, "provider_transient"))
            return
        backoff = self.rng.choice((1_500, 2_000, 3_000, 5_000))
        decision = RetryDecision(
            version=1,
            policy_version_id=f"{spec.automation_id}/retry-v1",
            decision="retry_scheduled",
            failure_class="provider_rate_limited" if throttled else "provider_transient",
            reason=detail,
            attempt=attempts,
            max_attempts=node.max_attempts,
            retryable=True,
            terminal=False,
            next_retry_at_ms=self.now_ms + backoff,
            backoff_ms=backoff,
            manual_override_allowed=True,
        )
        self.touched.add(key)
        before = run.status
        apply_retry_backoff(
            run, node.node_id, attempts, node.max_attempts, decision, detail,
            run.execution_claim_epoch, now_ms=self.now_ms, scheduler=self.scheduler,
        )
        if run.status == RunStatus.QUEUED:
            run.execution_claim = None  # a queued run holds no claim
        if run.status != before:
            self.transitions.append((run.run_id, before.value, run.status.value))

    def _stop(self, run: Run, status: RunStatus, stop_kind: StopKind | None, reason: str, event: str) -> None:
        run.status = status
        run.stop_kind = stop_kind
        run.stop_reason = reason
        run.detail = reason
        run.execution_claim = None
        run.active_session_ids = []
        run.active_instance_ids = []
        self._event(run, event, reason, stop_kind)

    def _cancel(self, run: Run, reason: str) -> None:
        self._stop(run, RunStatus.CANCELLED, StopKind.CANCELLED, reason, events.RUN_CANCELLED)

    def _fail(self, run: Run, node: NodeSpec, reason: str, kind: str) -> None:
        run.checkpoint.last_failure = FailureRecord(
            node_id=node.node_id, reason=reason, failed_at_ms=self.now_ms, failure_kind=kind
        )
        self._stop(run, RunStatus.FAILED, None, f"node `{node.node_id}` failed: {reason}", events.RUN_FAILED)

    def _block(self, run: Run, node: NodeSpec) -> None:
        run.checkpoint.blocked_nodes.append(node.node_id)
        reason = f"node `{node.node_id}` blocked: output failed validation against the strict profile"
        self._stop(run, RunStatus.BLOCKED, None, reason, events.RUN_BLOCKED)

    def _stale_reap(self, run: Run) -> None:
        node_id = self._current_node(run)
        if node_id is not None:
            # The half-done node asks for repair: what makes the server auto-resume a run.
            attempts = run.checkpoint.node_attempts.get(node_id, 1)
            run.checkpoint.node_outputs[node_id] = {
                "status": "needs_repair",
                "summary": "agent went quiet before finishing; partial output kept",
                "attempt_evidence": {"attempt": attempts},
            }
        run.pause_reason = "no provider activity within the stale window"
        self._stop(run, RunStatus.PAUSED, StopKind.STALE_REAPED, run.pause_reason, STALE_REAP_EVENT)

    def _request_guardrail_pause(self, run: Run) -> None:
        run.status = RunStatus.PAUSING
        run.detail = "pausing: agent weekly spend cap reached"
        self._event(run, events.RUN_PAUSE_REQUESTED, "agent weekly spend cap reached", StopKind.GUARDRAIL_STOPPED)

    def _settle_pause(self, key: str) -> None:
        def mutate(run: Run) -> None:
            run.pause_reason = "agent weekly spend cap reached"
            self._stop(run, RunStatus.PAUSED, StopKind.GUARDRAIL_STOPPED, run.pause_reason, events.RUN_PAUSED)

        self._update(key, mutate)

    def _maybe_resume(self, key: str) -> None:
        """Auto-resume our stale-reaped runs; cancel our guardrail holds nobody resumed."""
        run = self.runs[key]
        history = run.checkpoint.lifecycle_history
        if not history:
            return
        paused_at = history[-1].recorded_at_ms
        if self._last_event_is_ours(run, STALE_REAP_EVENT):
            # Visible for a moment, then the core's rule decides (window, limit, repairable).
            if self.now_ms - paused_at >= STALE_RESUME_DELAY_MS:
                before = run.status
                resumed = auto_resume_stale_reaped_runs(
                    {run.run_id: run}, now_ms=self.now_ms, env=os.environ, scheduler=self.scheduler
                )
                if resumed:
                    self.touched.add(key)
                    self.transitions.append((run.run_id, before.value, run.status.value))
        elif self._last_event_is_ours(run, events.RUN_PAUSED):
            if self.now_ms - paused_at >= GUARDRAIL_CANCEL_AFTER_MS:
                self._update(key, lambda r: self._cancel(r, "spend hold expired without a resume"))

    def _await_gate(self, run: Run, node: NodeSpec) -> None:
        run.status = RunStatus.AWAITING_APPROVAL
        run.execution_claim = None
        run.active_session_ids = []
        run.active_instance_ids = []
        run.checkpoint.awaiting_gate = {
            "node_id": node.node_id,
            "title": node.objective,
            "requested_at_ms": self.now_ms,
            "decisions": ["approve", "rework", "cancel"],
        }
        run.detail = f"awaiting approval at node `{node.node_id}`"
        self._event(run, events.RUN_AWAITING_APPROVAL, f"gate `{node.node_id}` awaits a decision", node_id=node.node_id)

    def _decide_gate(self, key: str) -> None:
        run = self.runs[key]
        gate = run.checkpoint.awaiting_gate if isinstance(run.checkpoint.awaiting_gate, dict) else {}
        node_id = gate.get("node_id") or self._current_node(run) or "approve"
        roll = self.rng.random()
        approve, reject = self._per_tick(0.08), self._per_tick(0.02)
        if roll < approve:
            self._update(key, lambda r: self._gate_decision(r, node_id, approved=True))
        elif roll < approve + reject:
            self._update(key, lambda r: self._gate_decision(r, node_id, approved=False))

    def _gate_decision(self, run: Run, node_id: str, *, approved: bool) -> None:
        checkpoint = run.checkpoint
        checkpoint.gate_history.append(
            {
                "node_id": node_id,
                "decision": "approve" if approved else "cancel",
                "decided_at_ms": self.now_ms,
                # A ``GovernanceActorRef`` on the server, not a bare name.
                "decided_by": {"kind": "human", "actor_id": "maintainer@example.com"},
            }
        )
        checkpoint.awaiting_gate = None
        if not approved:
            checkpoint.blocked_nodes.append(node_id)
            self._stop(run, RunStatus.BLOCKED, None, f"gate `{node_id}` was rejected", events.RUN_BLOCKED)
            return
        checkpoint.completed_nodes.append(node_id)
        checkpoint.pending_nodes = [n for n in checkpoint.pending_nodes if n != node_id]
        run.status = RunStatus.QUEUED
        run.resume_reason = f"gate `{node_id}` approved"
        run.detail = f"gate `{node_id}` approved; queued to continue"
        self._event(run, events.RUN_RESUMED, f"gate `{node_id}` approved", node_id=node_id)
        run.scheduler = _fresh_queue_metadata(run, self.now_ms)


def _fresh_queue_metadata(run: Run, queued_at_ms: int) -> SchedulerMetadata:
    """Queue metadata with no reason yet: admission fills the reason in."""
    return SchedulerMetadata(tenant_context=run.tenant_context.model_copy(deep=True), queued_at_ms=queued_at_ms)


def _as_json(metadata: SchedulerMetadata) -> dict[str, Any]:
    return metadata.model_dump(mode="json")
