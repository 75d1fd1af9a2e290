"""Per request: the job it is about joins the log context (`gateway.logs`)."""

from __future__ import annotations

from flask import Flask, g, request

from gateway import logs


def _bind_job() -> None:
    g.log_token = logs.bind(job_id=(request.view_args or {}).get("job_id"))


def _unbind(_error: BaseException | None = None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        logs.reset(token)


def init_app(app: Flask) -> None:
    """Track every request of `app`."""
    app.before_request(_bind_job)
    app.teardown_request(_unbind)
