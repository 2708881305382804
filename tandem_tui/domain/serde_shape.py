"""serde's verdict on the nested structs the server types but this port keeps as raw JSON.

The run models keep some nested structs (the pending gate, gate decisions, the learning
summary) as the JSON they were read from, so that nothing in them is reordered or lost.
The server deserializes them into typed structs, and a malformed one fails the whole run
entry (which is then recovered as a corrupt, blocked run). :func:`check` gives the same
verdict, with serde_json's wording, without converting anything.

A spec is one of: ``"str"``, ``"u64"``, ``"u32"``, ``"f64"``, ``"value"`` (any JSON),
``("opt", spec)``, ``("vec", spec)``, ``("enum", (variants...))`` or
``("struct", name, {field: (spec, required)})``. A field that is not required may be
missing; present, it must match (serde's ``default`` does not accept ``null`` unless
the field is an ``Option``). Unknown keys are ignored, as serde does.
"""

from __future__ import annotations

import json
from typing import Any

_U64_MAX = 2**64 - 1
_U32_MAX = 2**32 - 1

#: Rust's ``char::is_whitespace`` (Unicode White_Space), which ``str::trim`` strips.
#: Python's ``str.strip()`` also strips U+001C..U+001F; Rust does not.
RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def rust_trim(text: str) -> str:
    """``text`` trimmed as Rust's ``str::trim`` trims it."""
    return text.strip(RUST_WHITESPACE)


def _unexpected(value: Any) -> str:
    """serde's ``Unexpected`` display of a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def _expected(spec: Any) -> str:
    if spec == "str":
        return "a string"
    if spec in ("u64", "u32", "f64"):
        return spec
    if isinstance(spec, tuple) and spec[0] == "vec":
        return "a sequence"
    if isinstance(spec, tuple) and spec[0] == "struct":
        return f"struct {spec[1]}"
    if isinstance(spec, tuple) and spec[0] == "enum":
        return "variant identifier"
    return "a value"


def _invalid_type(value: Any, spec: Any) -> ValueError:
    return ValueError(f"invalid type: {_unexpected(value)}, expected {_expected(spec)}")


def check(value: Any, spec: Any) -> None:
    """Raise ``ValueError`` (serde's message) unless ``value`` deserializes as ``spec``."""
    if spec == "value":
        return
    if spec == "str":
        if not isinstance(value, str):
            raise _invalid_type(value, spec)
        return
    if spec in ("u64", "u32"):
        limit = _U64_MAX if spec == "u64" else _U32_MAX
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid_type(value, spec)
        if not 0 <= value <= limit:
            raise ValueError(f"invalid value: integer `{value}`, expected {spec}")
        return
    if spec == "f64":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _invalid_type(value, spec)
        return
    kind = spec[0]
    if kind == "opt":
        if value is not None:
            check(value, spec[1])
        return
    if kind == "vec":
        if not isinstance(value, list):
            raise _invalid_type(value, spec)
        for item in value:
            check(item, spec[1])
        return
    if kind == "enum":
        if not isinstance(value, str):
            raise _invalid_type(value, spec)
        if value not in spec[1]:
            expected = ", ".join(f"`{variant}`" for variant in spec[1])
            raise ValueError(f"unknown variant `{value}`, expected one of {expected}")
        return
    if kind == "struct":
        if not isinstance(value, dict):
            raise _invalid_type(value, spec)
        for name, (field_spec, required) in spec[2].items():
            if name not in value:
                if required:
                    raise ValueError(f"missing field `{name}`")
                continue
            check(value[name], field_spec)
        return
    raise AssertionError(f"unknown spec {spec!r}")


def _struct(name: str, **fields: tuple[Any, bool]) -> tuple[str, str, dict[str, tuple[Any, bool]]]:
    return ("struct", name, fields)


REQ, DEF = True, False

#: ``AutomationGateExpiryPolicy`` (every field optional).
GATE_EXPIRY_POLICY = _struct(
    "AutomationGateExpiryPolicy",
    expires_after_ms=(("opt", "u64"), DEF),
    on_expiry=(("opt", ("enum", ("cancel", "escalate", "remind", "resume"))), DEF),
    escalate_to=(("opt", "str"), DEF),
    remind_every_ms=(("opt", "u64"), DEF),
)

#: ``AutomationPendingGate`` (``checkpoint.awaiting_gate``).
PENDING_GATE = _struct(
    "AutomationPendingGate",
    node_id=("str", REQ),
    title=("str", REQ),
    instructions=(("opt", "str"), DEF),
    decisions=(("vec", "str"), DEF),
    rework_targets=(("vec", "str"), DEF),
    requested_at_ms=("u64", REQ),
    upstream_node_ids=(("vec", "str"), DEF),
    metadata=(("opt", "value"), DEF),
    expiry_policy=(("opt", GATE_EXPIRY_POLICY), DEF),
)
OPTIONAL_PENDING_GATE = ("opt", PENDING_GATE)

#: ``GovernanceActorRef`` (a gate decision's ``decided_by``).
GOVERNANCE_ACTOR = _struct(
    "GovernanceActorRef",
    kind=(("enum", ("human", "agent", "system")), REQ),
    actor_id=(("opt", "str"), DEF),
    source=(("opt", "str"), DEF),
)

#: ``AutomationGateDecisionRecord`` (each of ``checkpoint.gate_history``).
GATE_DECISION = _struct(
    "AutomationGateDecisionRecord",
    node_id=("str", REQ),
    decision=("str", REQ),
    reason=(("opt", "str"), DEF),
    decided_at_ms=("u64", REQ),
    decided_by=(("opt", GOVERNANCE_ACTOR), DEF),
    metadata=(("opt", "value"), DEF),
)

#: ``WorkflowLearningMetricsSnapshot`` (every field defaults; ``usize`` read as u64).
LEARNING_METRICS = _struct(
    "WorkflowLearningMetricsSnapshot",
    sample_size=("u64", DEF),
    completion_rate=("f64", DEF),
    validation_pass_rate=("f64", DEF),
    mean_attempts_per_node=("f64", DEF),
    repairable_failure_rate=("f64", DEF),
    median_wall_clock_ms=("u64", DEF),
    human_intervention_count=("u64", DEF),
    computed_at_ms=("u64", DEF),
)

#: ``WorkflowLearningRunSummary`` (``learning_summary``).
LEARNING_SUMMARY = _struct(
    "WorkflowLearningRunSummary",
    generated_candidate_ids=(("vec", "str"), DEF),
    injected_learning_ids=(("vec", "str"), DEF),
    approved_learning_ids_considered=(("vec", "str"), DEF),
    post_run_metrics=(("opt", LEARNING_METRICS), DEF),
)
OPTIONAL_LEARNING_SUMMARY = ("opt", LEARNING_SUMMARY)
