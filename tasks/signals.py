"""Celery signal handlers: a stage's final failure fails its job; forked workers reconnect."""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from gateway import logs, metrics, runs
from gateway.services import get_services
from providers import ProviderError

log = logging.getLogger(__name__)


@signals.task_failure.connect
def fail_job_after_final_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    **_: Any,
) -> None:
    """Publish `job.failed` for a stage task that failed for good (retries exhausted or a crash).

    Celery sends this signal once, after the last attempt; nothing of the job runs after it,
    so its event is the job's last. A stage that completed meanwhile (this was a stale copy of
    it) is not failed: fail_stage refuses, and its job goes on.
    """
    stage = getattr(sender, "stage", None)
    if stage is None or not args:
        return
    job_id = args[0]
    with logs.job_context(job_id=job_id, stage=stage, task_id=task_id):
        if isinstance(exception, ProviderError):
            message = str(exception)
        else:
            log.error("stage %s of job %s crashed", stage, job_id, exc_info=exception)
            message = f"Internal error: {type(exception).__name__}"
        with get_services(sender.app.flask_app).database.session() as session:
            runs.fail_stage(session, job_id, stage, message)


@signals.worker_init.connect
def serve_metrics(sender: Any = None, **_: Any) -> None:
    """Serve the worker's metrics on METRICS_PORT, if set (prefork: with PROMETHEUS_MULTIPROC_DIR,
    so that the pool processes' counts are included)."""
    settings = get_services(sender.app.flask_app).settings
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings.metrics_bind_address)


@signals.worker_process_init.connect
def reset_connections(**_: Any) -> None:
    """A forked pool process must not share the parent's database connections."""
    from celery import current_app as celery

    get_services(celery.flask_app).database.dispose()
