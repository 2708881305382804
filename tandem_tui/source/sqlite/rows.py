"""Rows of the engine's ``automation_runs`` table (SQLite and PostgreSQL alike), as runs.

Ported from upstream ``stateful_runtime/orchestration_store.rs`` (v0.7.2) and its
``protected_records.rs``: ``run_json`` holds the bound record
``{"tenant_context", "kind": "run", "id", "payload": <AutomationV2RunRecord>}`` as
compact JSON, or a ciphertext (``tgs1:`` and the other prefixes of
``encrypted_file_store::is_encrypted_payload``) when the engine encrypts records, or,
from before records were bound, the bare record. ``is_hot = 1`` rows are the hot set
the engine loads at start; the rest are history.

A row we cannot read (encrypted, or not JSON) is still listed, by its plain columns,
as a stand-in run that says why; it is never written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tandem_tui.domain.models import Run, RunStatus, TenantContext, TenantSource, dump_run
from tandem_tui.source.file.store import RunsFileError, parse_run_entry

#: The store's file name, beside the runs file (``OrchestrationStorePaths``).
DATABASE_FILE_NAME = "stateful_runtime.sqlite3"
#: The engine's lock file, beside the database.
ENGINE_LOCK_FILE_NAME = "stateful_runtime.engine.lock"
#: ``orchestration_store::SCHEMA_VERSION``, kept in ``schema_metadata.schema_version``.
SCHEMA_VERSION = 5
#: Prefixes of the engine's encrypted payloads (``is_encrypted_payload``).
ENCRYPTED_PREFIXES = ("tce1:", "tgs1:", "tgsc1:", "tgsc2:", "tgj2:")

RUN_COLUMNS = (
    "run_id, automation_id, org_id, workspace_id, deployment_id, status, is_hot, "
    "run_json, created_at_ms, updated_at_ms"
)


class StoreError(RunsFileError):
    """A store that cannot be used (schema version, not a Tandem store), in one line."""


@dataclass(frozen=True)
class RunRow:
    """One ``automation_runs`` row, as stored."""

    run_id: str
    automation_id: str
    org_id: str
    workspace_id: str
    deployment_id: str | None
    status: str
    is_hot: bool
    run_json: str
    created_at_ms: int
    updated_at_ms: int

    @classmethod
    def of(cls, values: tuple[Any, ...]) -> RunRow:
        """From a ``SELECT {RUN_COLUMNS}`` tuple."""
        (run_id, automation_id, org, workspace, deployment, status, hot, run_json, created, updated) = values
        return cls(
            run_id=str(run_id),
            automation_id=str(automation_id),
            org_id=str(org),
            workspace_id=str(workspace),
            deployment_id=deployment,
            status=str(status),
            is_hot=bool(hot),
            run_json=run_json if isinstance(run_json, str) else bytes(run_json).decode("utf-8", "replace"),
            created_at_ms=int(created),
            updated_at_ms=int(updated),
        )

    @property
    def encrypted(self) -> bool:
        return self.run_json.lstrip().startswith(ENCRYPTED_PREFIXES)


@dataclass(frozen=True)
class DecodedRow:
    """A row as a run. ``opaque`` says why the record itself could not be read (the run
    then stands in for it, from the plain columns); ``envelope`` is the bound record
    around the payload, kept to write it back (``None`` for a bare legacy record)."""

    row: RunRow
    run: Run
    opaque: str | None = None
    envelope: Mapping[str, Any] | None = None

    @property
    def encrypted(self) -> bool:
        return self.row.encrypted


def tenant_from_scope(org_id: str, workspace_id: str, deployment_id: str | None) -> TenantContext:
    """``protected_records::tenant_from_scope``: the tenant the trusted columns name."""
    deployment = deployment_id or None
    if org_id == "local" and workspace_id == "local" and deployment is None:
        return TenantContext.local_implicit()
    return TenantContext(
        org_id=org_id, workspace_id=workspace_id, deployment_id=deployment, source=TenantSource.EXPLICIT
    )


def decode_row(row: RunRow, *, now_ms: int) -> DecodedRow:
    """The run a row holds; never raises (an unreadable row becomes a stand-in)."""
    if row.encrypted:
        prefix = row.run_json.lstrip().split(":", 1)[0]
        return DecodedRow(row, stand_in(row, f"encrypted record ({prefix}:): only its columns can be read"), opaque="encrypted")
    try:
        value = _loads(row.run_json)
    except (ValueError, RecursionError) as error:
        why = f"run_json is not JSON ({' '.join(str(error).split())})"
        return DecodedRow(row, stand_in(row, why), opaque=why)
    envelope: dict[str, Any] | None = None
    payload = value
    if isinstance(value, dict) and "payload" in value and value.get("kind") == "run":
        envelope = {key: item for key, item in value.items() if key != "payload"}
        payload = value["payload"]
    try:
        run = parse_run_entry(row.run_id, payload, now_ms=now_ms)
    except RunsFileError as error:
        why = " ".join(str(error).split())
        return DecodedRow(row, stand_in(row, why), opaque=why)
    return DecodedRow(row, run, envelope=envelope)


def _loads(text: str) -> Any:
    """Strict JSON (no NaN/Infinity), with the stdlib: orjson would turn an integer
    beyond 64 bits into a float, and a record must survive a read and write unchanged."""
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def stand_in(row: RunRow, why: str) -> Run:
    """A run built from the row's plain columns alone, saying why in ``detail``."""
    try:
        status = RunStatus(row.status)
    except ValueError:
        status = RunStatus.BLOCKED
        why = f"{why}; unknown status {row.status!r}"
    return Run(
        run_id=row.run_id,
        automation_id=row.automation_id,
        tenant_context=tenant_from_scope(row.org_id, row.workspace_id, row.deployment_id),
        status=status,
        created_at_ms=max(row.created_at_ms, 0),
        updated_at_ms=max(row.updated_at_ms, 0),
        detail=why,
    )


def encode_run_json(decoded: DecodedRow, run: Run) -> str:
    """``run_json`` for ``run`` written back in the form the row had (bound envelope or bare
    record), as the engine writes it: compact ``serde_json::to_string``."""
    payload = dump_run(run)
    value: Any = payload if decoded.envelope is None else {**decoded.envelope, "payload": payload}
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def bound_run_json(run: Run | Mapping[str, Any]) -> str:
    """A new bound ``run_json`` for a record, as ``protected_records::encode`` writes it
    in plaintext (tests and the simulator build stores with it)."""
    record = dump_run(run) if isinstance(run, Run) else dict(run)
    tenant = record.get("tenant_context") or TenantContext.local_implicit().model_dump(mode="json")
    return json.dumps(
        {"tenant_context": tenant, "kind": "run", "id": record["run_id"], "payload": record},
        ensure_ascii=False,
        separators=(",", ":"),
    )
