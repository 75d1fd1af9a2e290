"""Celery signal handlers: retry events, and fresh connections in forked worker processes."""

from __future__ import annotations

from typing import Any

from celery import signals

from gateway import jobs


@signals.task_retry.connect
def record_stage_retry(
    sender: Any = None, request: Any = None, reason: Any = None, **_: Any
) -> None:
    """Publish `job.stage_retrying` for a stage task that Celery is about to retry."""
    stage = getattr(sender, "stage", None)
    if stage is None or not request.args:
        return
    countdown = reason.when if isinstance(reason.when, (int, float)) else 0
    error = str(reason.exc) if reason.exc is not None else str(reason)
    with sender.app.flask_app.extensions["gateway"].database.session() as session:
        jobs.record_retry(session, request.args[0], stage, error, round(countdown, 3))


@signals.worker_process_init.connect
def reset_connections(**_: Any) -> None:
    """A forked pool process must not share the parent's database connections."""
    from celery import current_app as celery

    gateway = celery.flask_app.extensions["gateway"]
    gateway.database.dispose()
