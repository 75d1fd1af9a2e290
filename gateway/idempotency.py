"""Idempotency keys: a create retried under the same key replays the job it created first.

A key is scoped to its tenant ('' with AUTH_MODE=off) and remembered in the transaction that
stores its job, with the fingerprint of the request's body and an expiry (IDEMPOTENCY_TTL).
The primary key (tenant, key) lets one job at most be stored under it, across API processes
and restarts. On PostgreSQL a transaction-scoped advisory lock on the key tells a request
that arrives while another one under the same key is inside its transaction (409) from one
that arrives after it committed (a replay); on SQLite, where writers take turns anyway, the
loser of a race meets the primary key and reads the winner's row. On PostgreSQL the lock,
the look-up and the stored key are part of the create's single statement (`fused.create_job`,
with `statement_key`); `claim` and `remember` are the portable path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, insert, select
from sqlalchemy.orm import Session

from gateway.errors import IdempotencyInFlightError, IdempotencyMismatchError
from gateway.models import IDEMPOTENCY_KEYS, utcnow

_KEYS = IDEMPOTENCY_KEYS.c


@dataclass(frozen=True)
class IdempotentRequest:
    """A create under an Idempotency-Key: the key, its body's fingerprint, how long it holds."""

    key: str
    fingerprint: str
    ttl: float  # seconds

    @classmethod
    def of(cls, key: str, body: Mapping[str, Any], ttl: float) -> IdempotentRequest:
        """The request under `key` whose validated body is `body`."""
        return cls(key, fingerprint(body), ttl)


def fingerprint(body: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a validated body: key order and spacing do not count."""
    canonical = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def scope(tenant: str | None) -> str:
    """The key's scope: its tenant, or '' for requests without one (AUTH_MODE=off)."""
    return tenant or ""


def claim(session: Session, tenant: str | None, request: IdempotentRequest) -> str | None:
    """Hold the key for the caller's transaction; the id of the job created under it, if any.

    None: the key is free (never used, or expired: its row is deleted here) and the caller
    may store a job under it before it commits. IdempotencyInFlightError if another
    transaction holds it; IdempotencyMismatchError if it was used with another body.
    """
    owner = scope(tenant)
    if session.get_bind().dialect.name == "postgresql":
        lock = func.pg_try_advisory_xact_lock(_lock_id(owner, request.key))
        if not session.execute(select(lock)).scalar_one():
            raise IdempotencyInFlightError()
    row = session.execute(
        select(_KEYS.fingerprint, _KEYS.job_id, _KEYS.expires_at).where(
            _KEYS.tenant_id == owner, _KEYS.key == request.key
        )
    ).first()
    if row is None:
        return None
    if row.expires_at <= utcnow():
        session.execute(
            delete(IDEMPOTENCY_KEYS).where(_KEYS.tenant_id == owner, _KEYS.key == request.key)
        )
        return None
    if row.fingerprint != request.fingerprint:
        raise IdempotencyMismatchError()
    return str(row.job_id)


def remember(
    session: Session, tenant: str | None, request: IdempotentRequest, job_id: str, now: datetime
) -> None:
    """Store the key with the job it created, in the caller's (the job's) transaction."""
    session.execute(
        insert(IDEMPOTENCY_KEYS).values(
            tenant_id=scope(tenant),
            key=request.key,
            fingerprint=request.fingerprint,
            job_id=job_id,
            created_at=now,
            expires_at=now + timedelta(seconds=request.ttl),
        )
    )


def statement_key(tenant: str | None, request: IdempotentRequest, now: datetime) -> dict[str, Any]:
    """The parameters that create a job under the key in one statement (`fused.create_job`):
    the same lock, scope and row as `claim` and `remember`."""
    owner = scope(tenant)
    return {
        "lock": _lock_id(owner, request.key),
        "owner": owner,
        "key": request.key,
        "fingerprint": request.fingerprint,
        "expires": now + timedelta(seconds=request.ttl),
    }


def purge_expired(session: Session) -> int:
    """Delete the expired keys and commit; return how many. Their jobs stay."""
    result = session.execute(delete(IDEMPOTENCY_KEYS).where(_KEYS.expires_at <= utcnow()))
    session.commit()
    return cast(CursorResult[Any], result).rowcount


def _lock_id(owner: str, key: str) -> int:
    """A signed 64-bit advisory lock number for (tenant, key)."""
    digest = hashlib.sha256(f"idempotency\0{owner}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
