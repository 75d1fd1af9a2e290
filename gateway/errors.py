"""Errors: a small tree under GatewayError.

The API's one handler maps the service layer's errors to HTTP by their `status`; the start-up
errors (ConfigError, LauncherError) stop a process before it serves anything.
"""


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose; `detail` is what the client sees."""

    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class JobNotFoundError(GatewayError):
    """No job has this id (or the id is malformed)."""

    status = 404

    def __init__(self) -> None:
        super().__init__("Not found.")


class InvalidTransitionError(GatewayError):
    """The job's current status does not allow the requested change."""

    status = 400


class InvalidPipelineError(GatewayError):
    """A stage list that is not one of the valid pipelines (gateway.stages.VALID_PIPELINES)."""

    status = 400


class InvalidCursorError(GatewayError):
    """A list cursor that this service did not issue."""

    status = 400


class OverloadedError(GatewayError):
    """More work is waiting than the workers are allowed to queue: the client should retry."""

    status = 503

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many jobs are waiting to be processed; try again later.")
        self.retry_after = retry_after


class StreamUnavailableError(OverloadedError):
    """A live event stream cannot be served now: all taken (SSE_MAX_STREAMS), or Redis is down."""

    def __init__(self, detail: str, retry_after: int) -> None:
        GatewayError.__init__(self, detail)
        self.retry_after = retry_after


class TextNotFoundError(GatewayError):
    """The job exists but has no extracted text (yet): its extraction has not completed."""

    status = 404

    def __init__(self) -> None:
        super().__init__("The job has no extracted text: its extraction has not completed.")


class ConfigError(GatewayError):
    """A configuration value is missing or invalid; the message names the variable."""

    status = 500


class LauncherError(GatewayError):
    """Something `make run` needs is missing; the message says what to do."""

    status = 500


class AuthenticationError(GatewayError):
    """No valid API key: missing, malformed, unknown or revoked (the same answer for each)."""

    status = 401

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(detail)
        self.error = error


class ForbiddenError(GatewayError):
    """A valid key that may not do this (a read-only key asking to write)."""

    status = 403
    error = "insufficient_scope"


class KeyNotFoundError(GatewayError):
    """No API key has this prefix."""

    status = 404


class IdempotencyInFlightError(GatewayError):
    """Another request under the same Idempotency-Key is being processed right now."""

    status = 409

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed; retry it shortly."
        )
        self.retry_after = retry_after


class IdempotencyMismatchError(GatewayError):
    """An Idempotency-Key already used, by the same tenant, with a different request body."""

    status = 422

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was already used with a different request body; "
            "use a new key for a new request."
        )


class RateLimitedError(GatewayError):
    """The caller spent its budget of requests (RATE_LIMIT, RATE_LIMIT_CREATE) for now."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests; retry after {retry_after} s.")
        self.retry_after = retry_after
