"""Every lifecycle event name, declared once, and the marker of this console's actions.

The names are the Tandem server's own (its lifecycle history is the wire format we read
and write); the engine (``simulate``), the operator actions, the view's wait-time
derivation and the console's timeline all take them from here, so a renamed event can
only be renamed in one place.
"""

from __future__ import annotations

#: ``metadata.source`` of every event this console (or its CLI) writes, and the
#: ``source`` of every audit line. An event is an operator action only when its
#: metadata carries this marker: the engine pauses runs too (guardrails, spend caps).
OPERATOR_SOURCE = "tandem-tui"

# -- created and finished (the engine) ------------------------------------------------
RUN_CREATED = "run_created"
RUN_COMPLETED = "run_completed"
RUN_FAILED = "run_failed"
RUN_BLOCKED = "run_blocked"
RUN_CANCELLED = "run_cancelled"
RUN_AWAITING_APPROVAL = "run_awaiting_approval"
#: The cancel handler's event (with ``stop_kind: operator_stopped``).
RUN_STOPPED = "run_stopped"

# -- node progress (the simulate engine's own bookkeeping) -----------------------------
NODE_STARTED = "node_started"
NODE_COMPLETED = "node_completed"

# -- pause, resume, recover (engine handlers and operator actions) --------------------
RUN_PAUSE_REQUESTED = "run_pause_requested"
RUN_PAUSED = "run_paused"
RUN_RESUMED = "run_resumed"
RUN_RECOVERED = "run_recovered"
RUN_RECOVERED_FROM_PAUSE = "run_recovered_from_pause"
#: Every recover event starts with this (``run_recovered``, ``run_recovered_from_pause``):
#: each puts a run back in the queue.
RUN_RECOVERED_PREFIX = "run_recovered"
#: The server's cancel handler (stop kind ``operator_stopped``).
RUN_STOPPED = "run_stopped"
#: ``refresh_automation_runtime_state`` after a recover: a mission phase opened.
PHASE_OPENED = "phase_opened"

# -- offline-only operator actions (no engine handler does these) ---------------------
RUN_RETRY_BACKOFF_SKIPPED_BY_OPERATOR = "run_retry_backoff_skipped_by_operator"
RUN_LOCK_RELEASED_BY_OPERATOR = "run_lock_released_by_operator"

# -- claims (seed 003): bookkeeping, not activity --------------------------------------
RUN_EXECUTION_CLAIMED = "run_execution_claimed"
RUN_EXECUTION_CLAIM_EXPIRED_REQUEUED = "run_execution_claim_expired_requeued"

# -- startup recovery, stale reaping and shutdown (seed 004) --------------------------
RUN_FAILED_SERVER_RESTART = "run_failed_server_restart"
RUN_PAUSING_SETTLED_ON_RESTART = "run_pausing_settled_on_restart"
RUN_PAUSED_STALE_NO_PROVIDER_ACTIVITY = "run_paused_stale_no_provider_activity"
RUN_AUTO_RESUMED = "run_auto_resumed"
RUN_FAILED_SHUTDOWN = "run_failed_shutdown"

# -- the run store (seed 001) ---------------------------------------------------------
RUN_BLOCKED_CORRUPT_CHECKPOINT = "run_blocked_corrupt_checkpoint"

#: Claim bookkeeping: these do not count as lifecycle progress since a claim.
CLAIM_BOOKKEEPING_EVENTS = frozenset({RUN_EXECUTION_CLAIMED, RUN_EXECUTION_CLAIM_EXPIRED_REQUEUED})

#: Events after which a run waits in the queue again (besides creation and recovers).
REQUEUE_EVENTS = frozenset({RUN_RESUMED, RUN_AUTO_RESUMED, RUN_EXECUTION_CLAIM_EXPIRED_REQUEUED})


def is_operator_event(metadata: object) -> bool:
    """True when an event's metadata says this console wrote it."""
    return isinstance(metadata, dict) and metadata.get("source") == OPERATOR_SOURCE
