"""The advisory-lock keys a Tandem engine uses on its PostgreSQL schema.

Upstream ``stateful_runtime/backend/postgres.rs`` (v0.7.2): the engine holds a
*session* lock ``pg_try_advisory_lock(advisory_lock_key(schema))`` while it runs, and
every immediate write transaction takes ``pg_advisory_xact_lock(write_transaction_lock_key
(schema))``. Each key is the first 8 bytes of a SHA-256, big-endian, as a signed i64.
``pg_locks`` shows a bigint advisory key as ``classid`` (high half), ``objid`` (low half)
and ``objsubid = 1``.
"""

from __future__ import annotations

import hashlib
import re

#: What the engine accepts as a schema name (``validate_schema_name``).
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def engine_lock_key(schema: str) -> int:
    """The session lock a live engine holds (``advisory_lock_key``)."""
    return _key(f"tandem-stateful-engine-lock:{schema}")


def write_lock_key(schema: str) -> int:
    """The transaction lock every engine write takes (``write_transaction_lock_key``)."""
    return _key(f"tandem-stateful-write-txn:{schema}")


def pg_locks_ids(key: int) -> tuple[int, int]:
    """``(classid, objid)`` under which ``pg_locks`` lists this bigint key."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF
