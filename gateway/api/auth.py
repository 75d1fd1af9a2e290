"""Who is calling: `Authorization: Bearer <key>` on every job route when AUTH_MODE=keys.

The caller's tenant scopes everything the request sees (`tenant()`); with AUTH_MODE=off there
is no caller and no scope. The probes and the OpenAPI document stay open: they show no job.
"""

from __future__ import annotations

from flask import g, request

from gateway import keys
from gateway.errors import AuthenticationError, ConfigError, ForbiddenError
from gateway.keys import Caller
from gateway.services import get_services

REALM = "gateway"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def authenticate() -> None:
    """before_request: find the caller of a key-protected route, or refuse the request."""
    settings = get_services().settings
    g.caller = None
    if settings.auth_mode == "off":
        return
    if not settings.api_key_secret:
        raise ConfigError("The server has no API_KEY_SECRET: keys cannot be checked.")
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if not scheme:
        raise AuthenticationError(
            "An API key is required: Authorization: Bearer <key>.", error=None
        )
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationError("The Authorization header must be: Bearer <key>.")
    with get_services().database.read() as connection:
        caller = keys.authenticate(connection, key.strip(), settings.api_key_secret)
    if caller is None:
        raise AuthenticationError("The API key is invalid or revoked.")
    if caller.read_only and request.method not in _READ_METHODS:
        raise ForbiddenError("This API key is read-only.")
    g.caller = caller


def caller() -> Caller | None:
    """The authenticated caller of this request; None with AUTH_MODE=off."""
    found: Caller | None = g.get("caller")
    return found


def tenant() -> str | None:
    """The tenant whose jobs this request may see; None (every job) with AUTH_MODE=off."""
    found = caller()
    return found.tenant_id if found is not None else None


def challenge(error: str | None) -> str:
    """The WWW-Authenticate value of a 401 or 403 (RFC 6750)."""
    return f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
