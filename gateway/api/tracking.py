"""Per request: the job it is about joins the log context (`gateway.logs`), and its duration
is observed by route template and status (`gateway.metrics`)."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from gateway import logs, metrics

# Any token is a method to Werkzeug; the label keeps a known few.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _start() -> None:
    g.started = time.perf_counter()
    g.log_token = logs.bind(job_id=(request.view_args or {}).get("job_id"))


def _observe(response: Response) -> Response:
    started = g.pop("started", None)
    if started is not None:
        # The template, never the path: a job id in a label would make a series per job.
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        route = rule if rule.endswith("/") or rule == "unmatched" else rule + "/"
        method = request.method if request.method in _METHODS else "other"
        duration = time.perf_counter() - started
        metrics.HTTP_DURATION.labels(method, route, str(response.status_code)).observe(duration)
    return response


def _unbind(_error: BaseException | None = None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        logs.reset(token)


def init_app(app: Flask) -> None:
    """Track every request of `app`."""
    app.before_request(_start)
    app.after_request(_observe)
    app.teardown_request(_unbind)
