"""One view over several engines' runs: per-engine schedulers, fleet totals.

Each engine has its own scheduler (its own capacity, its own workspace locks), so each
keeps its own :class:`RunsView`; :class:`FleetView` answers the questions the console
and the commands ask a view, dispatching each run to its engine's view and adding the
figures up. Runs are keyed ``<engine>/<run_id>`` (engine names are schema names, which
hold no ``/``), so ids from two engines never collide; a lock's workspace is shown as
``<engine>:<workspace>``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from tandem_tui.domain.models import Run, RunStatus
from tandem_tui.domain.scheduler import SchedulerMetrics, wait_time_stats
from tandem_tui.domain.view import LockInfo, QueueInfo, RunsView


def fleet_key(engine: str, run_id: str) -> str:
    return f"{engine}/{run_id}"


def split_key(key: str) -> tuple[str, str]:
    engine, _, run_id = key.partition("/")
    return engine, run_id


@dataclass(frozen=True)
class EngineInfo:
    """One engine of the fleet as last read: its schema, whether it is live (its session
    lock is held), and why it could not be read, if so."""

    name: str
    live: bool
    runs: int
    error: str | None = None
    schema_version: int | None = None


class FleetView:
    """A :class:`RunsView` look-alike over per-engine views (see the module docstring)."""

    def __init__(self, views: Mapping[str, RunsView], runs: Mapping[str, Run]) -> None:
        self.views = dict(views)
        # The runs the snapshot holds, by object, to find a run's engine.
        self._engine_of_obj = {id(run): split_key(key)[0] for key, run in runs.items()}
        self._runs = runs  # keeps the objects (and so their ids) alive

    def engine_of(self, run: Run) -> str | None:
        return self._engine_of_obj.get(id(run))

    @property
    def max_concurrent_runs(self) -> int:
        return sum(view.max_concurrent_runs for view in self.views.values())

    def _view_of(self, run: Run) -> RunsView | None:
        engine = self.engine_of(run)
        return self.views.get(engine) if engine is not None else None

    def queue_info(self, run: Run, now_ms: int) -> QueueInfo | None:
        view = self._view_of(run)
        return view.queue_info(run, now_ms) if view is not None else None

    def _by_engine(self, runs: Mapping[str, Run]) -> dict[str, dict[str, Run]]:
        out: dict[str, dict[str, Run]] = {engine: {} for engine in self.views}
        for key, run in runs.items():
            engine, run_id = split_key(key)
            out.setdefault(engine, {})[run_id] = run
        return out

    def locks(self, runs: Mapping[str, Run], now_ms: int) -> list[LockInfo]:
        out: list[LockInfo] = []
        for engine, engine_runs in sorted(self._by_engine(runs).items()):
            view = self.views.get(engine)
            if view is None:
                continue
            for lock in view.locks(engine_runs, now_ms):
                out.append(
                    replace(
                        lock,
                        workspace=f"{engine}:{lock.workspace}",
                        holder_run_id=fleet_key(engine, lock.holder_run_id),
                        queued_run_ids=tuple(fleet_key(engine, r) for r in lock.queued_run_ids),
                    )
                )
        return out

    def expired_claims(self, runs: Mapping[str, Run], now_ms: int) -> list[str]:
        found: list[tuple[int, str]] = []
        for engine, engine_runs in self._by_engine(runs).items():
            view = self.views.get(engine)
            for run_id in view.expired_claims(engine_runs, now_ms) if view is not None else ():
                claim = engine_runs[run_id].execution_claim
                found.append((claim.lease_expires_at_ms if claim else 0, fleet_key(engine, run_id)))
        return [key for _, key in sorted(found)]

    def metrics(self) -> SchedulerMetrics:
        parts = [view.metrics() for view in self.views.values()]
        queued: dict[str, int] = {}
        for part in parts:
            for reason, count in part.queued_runs_by_reason.items():
                queued[reason] = queued.get(reason, 0) + count
        waits = [w for view in self.views.values() for w in view.scheduler.wait_times]
        avg, p95 = wait_time_stats(waits)
        return SchedulerMetrics(
            active_runs=sum(p.active_runs for p in parts),
            queued_runs_by_reason=queued,
            admitted_total=sum(p.admitted_total for p in parts),
            completed_total=sum(p.completed_total for p in parts),
            avg_wait_ms=avg,
            p95_wait_ms=p95,
        )

    def status_report(self, runs: Mapping[str, Run]) -> dict[str, Any]:
        """Fleet totals in the ``status --json`` shape, plus ``engines``: each engine's own."""
        metrics = self.metrics().as_dict()
        metrics["queued_runs_by_reason"] = dict(sorted(metrics["queued_runs_by_reason"].items()))
        by_status = {status.value: 0 for status in RunStatus}
        for run in runs.values():
            by_status[RunStatus(run.status).value] += 1
        grouped = self._by_engine(runs)
        engines = {
            engine: view.status_report(grouped.get(engine, {})) for engine, view in sorted(self.views.items())
        }
        locked = {
            f"{engine}:{workspace}": fleet_key(engine, holder)
            for engine, view in sorted(self.views.items())
            for workspace, holder in sorted(view.scheduler.locked_workspaces.items())
        }
        return {
            **metrics,
            "max_concurrent_runs": self.max_concurrent_runs,
            "runs_by_status": by_status,
            "locked_workspaces": locked,
            "engines": engines,
        }
