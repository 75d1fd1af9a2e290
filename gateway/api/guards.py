"""The answers every job route may give besides its own, documented once: 401 without a valid
API key, 403 for a read-only key that writes, 429 over the rate limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from gateway.api.errors import PROBLEM_JSON, ProblemSchema
from gateway.api.parsing import Blueprint

View = TypeVar("View", bound=Callable[..., Any])

_SECONDS = {"type": "integer", "minimum": 0}
RATE_LIMIT_HEADERS: dict[str, Any] = {
    "Retry-After": {"description": "Seconds until a request is allowed again", "schema": _SECONDS},
    "RateLimit-Limit": {
        "description": "Requests allowed in the binding window",
        "schema": _SECONDS,
    },
    "RateLimit-Remaining": {"description": "Requests left in it", "schema": _SECONDS},
    "RateLimit-Reset": {"description": "Seconds until the budget grows again", "schema": _SECONDS},
    "RateLimit-Policy": {
        "description": "Every limit counted: `amount;w=window seconds`, comma-separated",
        "schema": {"type": "string"},
    },
}
# What a counted success answer carries (the same headers, without Retry-After).
_STANDING = {name: spec for name, spec in RATE_LIMIT_HEADERS.items() if name != "Retry-After"}


def counted(headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """The headers of a success answer of a rate-limited route: `headers` and the RateLimit
    ones, which every counted answer carries (RATE_LIMIT_ENABLED)."""
    return {**(headers or {}), **_STANDING}


_CHALLENGE = {
    "WWW-Authenticate": {
        "description": 'Bearer realm="gateway", with error="invalid_token" for a bad key',
        "schema": {"type": "string"},
    }
}


def guarded(blp: Blueprint, *, writes: bool = False) -> Callable[[View], View]:
    """Document 401, 429 (and 403 for a route that writes) on a view of `blp`."""
    answers: list[tuple[int, str, dict[str, Any]]] = [
        (401, "No valid API key (AUTH_MODE=keys)", _CHALLENGE),
        (429, "Over the caller's rate limit (see Retry-After)", RATE_LIMIT_HEADERS),
    ]
    if writes:
        answers.append((403, "The API key is read-only", _CHALLENGE))

    def document(view: View) -> View:
        for status, description, headers in answers:
            view = blp.alt_response(
                status,
                schema=ProblemSchema,
                content_type=PROBLEM_JSON,
                description=description,
                headers=headers,
            )(view)
        return view

    return document
