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

from events.display import printable
from gateway.api.auth import challenge
from gateway.api.messages import MAX_MESSAGES, clip, field_errors
from gateway.errors import AuthenticationError, ForbiddenError, GatewayError

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

_DETAILS = {
    400: "The request is invalid.",
    404: "Not found.",
    415: "Content-Type must be application/json (or multipart/form-data to upload a file).",
}


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details (documentation only; `problem` builds the body).

    Extension members (e.g. readiness `checks`) may be added: clients ignore those they do
    not know, as RFC 9457 asks.
    """

    class Meta:
        unknown = ma.INCLUDE

    type = ma.fields.String(metadata={"example": "about:blank"})
    title = ma.fields.String(metadata={"example": "Bad Request"})
    status = ma.fields.Integer(metadata={"example": 400})
    detail = ma.fields.String(metadata={"example": "The request body is invalid."})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={
            "description": f"Validation errors: field -> messages (400 only), at most {MAX_MESSAGES}."
        },
    )
    errors_omitted = ma.fields.Integer(
        metadata={"description": "How many validation messages were left out of `errors`."}
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
    if isinstance(error, AuthenticationError | ForbiddenError):
        return problem(
            error.status, error.detail, headers={"WWW-Authenticate": challenge(error.error)}
        )
    if isinstance(error, GatewayError):
        # Overload (503) and a request in flight under the same Idempotency-Key (409) say
        # when to try again.
        retry_after = getattr(error, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return problem(error.status, error.detail, headers=headers)
    if isinstance(error, DATABASE_UNAVAILABLE) or (
        isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated
    ):
        log.warning("database unavailable during %s: %s", _request_line(), error)
        return problem(
            503,
            "The database is unavailable; try again later.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    log.error("unexpected error on %s", _request_line(), exc_info=error)
    return problem(500, "An unexpected error occurred.")


def _request_line() -> str:
    """Method and path for a log line: the client chose both, so they are cut and escaped."""
    return printable(f"{clip(request.method, 20)} {clip(request.path, 200)}")


def _http_problem(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        log.error("%s on %s", status, _request_line(), exc_info=error)
    data = getattr(error, "data", None) or {}  # webargs' abort() attaches its messages here
    headers = {k: v for k, v in error.get_headers() if k.lower() not in ("content-type",)}
    headers.update(data.get("headers") or {})
    if "messages" in data:
        report = field_errors(data["messages"])
        detail = _validation_detail(data["messages"], report.omitted)
        extensions = {"errors_omitted": report.omitted} if report.omitted else {}
        return problem(status, detail, errors=report.errors, headers=headers, **extensions)
    if status == 405:
        allowed = headers.get("Allow", "")
        detail = f"Method {clip(request.method, 20)} is not allowed here; allowed: {allowed}."
    elif status == 413 and getattr(error, "limit", None) is not None:
        detail = str(error.description)  # a document over MAX_DOCUMENT_BYTES
    elif status == 413:
        detail = f"The request body exceeds the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes."
    else:
        detail = _DETAILS.get(status) or error.description or HTTPStatus(status).phrase
    return problem(status, detail, headers=headers)


def _validation_detail(messages: Any, omitted: int) -> str:
    if isinstance(messages, Mapping) and set(messages) <= {"query", "querystring"}:
        detail = "The query string is invalid."
    elif isinstance(messages, Mapping) and set(messages) <= {"headers"}:
        detail = "A request header is invalid."
    else:
        detail = "The request body is invalid."
    if omitted:
        detail += f" {omitted} more messages were left out; the first {MAX_MESSAGES} are shown."
    return detail
