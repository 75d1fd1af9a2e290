"""The one error handler: every error leaves the API as RFC 9457 problem details."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask import Response, current_app, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from gateway.errors import GatewayError, OverloadedError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5

# Raised when no connection to the database can be had (or it broke): the client should retry.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)

# webargs namespaces validation messages by request location; clients see field names only.
_LOCATION_ROOT = {"json": "body", "query": "query", "querystring": "query", "view_args": "path"}

_DETAILS = {
    400: "The request is invalid.",
    404: "Not found.",
    415: "Content-Type must be application/json.",
}


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details (documentation only; `problem` builds the body)."""

    type = ma.fields.String(metadata={"example": "about:blank"})
    title = ma.fields.String(metadata={"example": "Bad Request"})
    status = ma.fields.Integer(metadata={"example": 400})
    detail = ma.fields.String(metadata={"example": "The request body is invalid."})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={"description": "Validation errors: field -> messages (400 only)."},
    )


def problem(
    status: int,
    detail: str,
    *,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A problem-details response with the status's standard phrase as title."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = dict(errors)
    body.update(extensions)
    return current_app.response_class(
        current_app.json.dumps(body, separators=(",", ":")),
        status=status,
        headers=headers,
        mimetype=PROBLEM_JSON,
    )


def handle_error(error: Exception) -> Response:
    """Map any exception raised while serving a request to problem details."""
    if isinstance(error, HTTPException):
        return _http_problem(error)
    if isinstance(error, OverloadedError):
        return problem(503, error.detail, headers={"Retry-After": str(error.retry_after)})
    if isinstance(error, GatewayError):
        return problem(error.status, error.detail)
    if isinstance(error, DATABASE_UNAVAILABLE) or (
        isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated
    ):
        log.warning("database unavailable during %s %s: %s", request.method, request.path, error)
        return problem(
            503,
            "The database is unavailable; try again later.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    log.error("unexpected error on %s %s", request.method, request.path, exc_info=error)
    return problem(500, "An unexpected error occurred.")


def _http_problem(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        log.error("%s on %s %s", status, request.method, request.path, exc_info=error)
    data = getattr(error, "data", None) or {}  # webargs' abort() attaches its messages here
    headers = {k: v for k, v in error.get_headers() if k.lower() not in ("content-type",)}
    headers.update(data.get("headers") or {})
    if "messages" in data:
        errors = field_errors(data["messages"])
        return problem(status, _validation_detail(data["messages"]), errors=errors, headers=headers)
    if status == 405:
        allowed = headers.get("Allow", "")
        detail = f"Method {request.method} is not allowed here; allowed: {allowed}."
    elif status == 413:
        detail = f"The request body exceeds the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes."
    else:
        detail = _DETAILS.get(status) or error.description or HTTPStatus(status).phrase
    return problem(status, detail, headers=headers)


def _validation_detail(messages: Any) -> str:
    if isinstance(messages, Mapping) and set(messages) <= {"query", "querystring"}:
        return "The query string is invalid."
    return "The request body is invalid."


def field_errors(messages: Any) -> dict[str, list[str]]:
    """Flatten webargs/marshmallow messages into field -> messages, nested fields dotted.

    `{"json": {"pipeline_config": {"_schema": [m]}}}` becomes `{"pipeline_config": [m]}`;
    errors about the body as a whole (not JSON, not an object) are under `body`.
    """
    out: dict[str, list[str]] = {}
    if isinstance(messages, Mapping) and len(messages) == 1:
        (location, inner), *_ = messages.items()
        if location in _LOCATION_ROOT:
            _flatten(inner, "", _LOCATION_ROOT[location], out)
            return out
    _flatten(messages, "", "body", out)
    return out


def _flatten(messages: Any, prefix: str, root: str, out: dict[str, list[str]]) -> None:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if key == ma.exceptions.SCHEMA:
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            _flatten(value, name, root, out)
    elif isinstance(messages, list | tuple):
        for message in messages:
            _flatten(message, prefix, root, out)
    else:
        out.setdefault(prefix or root, []).append(str(messages))
