"""Domain errors: a small tree under GatewayError, mapped to HTTP by the API's one handler."""


class GatewayError(Exception):
    """Base of every error the service layer raises on purpose."""

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


class InvalidCursorError(GatewayError):
    """A list cursor that this service did not issue."""

    status = 400


class OverloadedError(GatewayError):
    """More work is waiting than the workers are allowed to queue: the client should retry."""

    status = 503

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many jobs are waiting to be processed; try again later.")
        self.retry_after = retry_after


class TextNotFoundError(GatewayError):
    """The job exists but has no extracted text (yet): its extraction has not completed."""

    status = 404

    def __init__(self) -> None:
        super().__init__("The job has no extracted text: its extraction has not completed.")
