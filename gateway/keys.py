"""API keys: create, list, revoke, and authenticate a presented key. Knows nothing of HTTP.

A key is `<prefix>_<secret>`: the prefix (`gw_` and 12 hex digits) is public, shown in
listings and used to revoke the key; the whole key is stored only as its HMAC-SHA-256 under
the server secret (API_KEY_SECRET). A keyed hash rather than a slow password hash: keys are
256 random bits, so guessing is hopeless without the secret, and every request checks one.
Authentication reads the one row of the key's prefix and compares digests in constant time,
also when there is no such row, so an unknown prefix costs what a wrong key does.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.errors import GatewayError, KeyNotFoundError
from gateway.models import API_KEYS, TENANTS, utcnow

PREFIX_START = "gw_"
PREFIX_LENGTH = len(PREFIX_START) + 12
TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Compared with when no key has the presented prefix, so the answer takes the same time.
_NO_DIGEST = "0" * 64


@dataclass(frozen=True)
class Caller:
    """Who a valid key belongs to, whether it may only read, and the key's public prefix."""

    tenant_id: str
    read_only: bool
    prefix: str


@dataclass(frozen=True)
class KeyInfo:
    """A stored key as listed: never the key itself."""

    prefix: str
    tenant_id: str
    read_only: bool
    created_at: datetime
    revoked_at: datetime | None


def digest(key: str, secret: str) -> str:
    """The stored form of `key`: hex HMAC-SHA-256 under the server secret."""
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def create_key(session: Session, tenant: str, secret: str, *, read_only: bool = False) -> str:
    """Make a key for `tenant` (created if new), store its digest, commit; return the key.

    The key is returned once: only its digest is kept.
    """
    if not secret:
        raise GatewayError("API_KEY_SECRET is not set: keys cannot be hashed without it.")
    if not TENANT_NAME.fullmatch(tenant):
        raise GatewayError(
            f"Invalid tenant name {tenant!r}: 1 to 64 letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit."
        )
    prefix = PREFIX_START + secrets.token_hex(6)
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    dialect = session.get_bind().dialect.name
    insert_tenant = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(TENANTS)
    session.execute(
        insert_tenant.values(id=tenant, created_at=utcnow()).on_conflict_do_nothing(
            index_elements=["id"]
        )
    )
    session.execute(
        insert(API_KEYS).values(
            prefix=prefix,
            tenant_id=tenant,
            digest=digest(key, secret),
            read_only=read_only,
            created_at=utcnow(),
        )
    )
    session.commit()
    return key


def list_keys(session: Session, tenant: str | None = None) -> list[KeyInfo]:
    """Every key (of `tenant` if given), oldest first, revoked ones included."""
    query = select(
        API_KEYS.c.prefix,
        API_KEYS.c.tenant_id,
        API_KEYS.c.read_only,
        API_KEYS.c.created_at,
        API_KEYS.c.revoked_at,
    ).order_by(API_KEYS.c.created_at, API_KEYS.c.prefix)
    if tenant is not None:
        query = query.where(API_KEYS.c.tenant_id == tenant)
    return [KeyInfo(**row._mapping) for row in session.execute(query)]


def revoke_key(session: Session, prefix: str) -> bool:
    """Revoke the key with this prefix, commit; False if it was revoked already.

    KeyNotFoundError if no key has it. Takes effect on the next request.
    """
    found = session.execute(
        select(API_KEYS.c.revoked_at).where(API_KEYS.c.prefix == prefix)
    ).first()
    if found is None:
        raise KeyNotFoundError(f"No API key has the prefix {prefix!r}.")
    applied = session.execute(
        update(API_KEYS)
        .where(API_KEYS.c.prefix == prefix, API_KEYS.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    return bool(applied)


def authenticate(session: Session | Connection, key: str, secret: str) -> Caller | None:
    """The caller `key` belongs to; None if it is unknown, wrong or revoked. Read only."""
    row = session.execute(
        select(
            API_KEYS.c.tenant_id, API_KEYS.c.digest, API_KEYS.c.read_only, API_KEYS.c.revoked_at
        ).where(API_KEYS.c.prefix == key[:PREFIX_LENGTH])
    ).first()
    expected = row.digest if row is not None else _NO_DIGEST
    matches = hmac.compare_digest(digest(key, secret), expected)
    if row is None or not matches or row.revoked_at is not None:
        return None
    return Caller(row.tenant_id, row.read_only, key[:PREFIX_LENGTH])
