"""Celery signal handlers: a stage's final failure fails its job; forked workers reconnect."""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

from celery import signals

from gateway import logs, metrics, runs
from gateway.services import get_services
from providers import ProviderError
from providers.base import DocumentError

log = logging.getLogger(__name__)

# On the prefork pool a hard time limit reports one failure twice: the pool's error callback
# and its timeout callback each send task_failure, a tenth of a second apart. Handling both
# would send the rest of a completed stage's chain twice; a task's failure is handled once.
REPEAT_WINDOW = 60.0  # seconds a task id's failure is remembered in this process
_handled: dict[str, float] = {}
_handled_lock = threading.Lock()


def first_report(task_id: str) -> bool:
    """Whether this process has not handled a failure of `task_id` within REPEAT_WINDOW."""
    now = time.monotonic()
    with _handled_lock:
        for seen, at in list(_handled.items()):  # failures are rare: a scan costs nothing
            if now - at > REPEAT_WINDOW:
                del _handled[seen]
        if task_id in _handled:
            return False
        _handled[task_id] = now
        return True


@signals.task_failure.connect
def fail_job_after_final_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    **_: Any,
) -> None:
    """Publish `job.failed` for a stage task that failed for good (retries exhausted or a crash).

    Celery sends this signal after the last attempt (twice for a prefork hard time limit: the
    second is dropped); nothing of the job runs after it, so its event is the job's last. A completed stage is not failed: fail_stage refuses. If its
    next stage never began (the task failed after its commit, publishing that stage while Redis
    was down for longer than the publish retries, or killed there by the prefork hard time
    limit), the rest of the chain is sent now; if Redis still refuses, the message, never
    acknowledged, comes back after the visibility timeout and its redelivery sends it.
    """
    stage = getattr(sender, "stage", None)
    if stage is None or not args or (task_id is not None and not first_report(task_id)):
        return
    job_id = args[0]
    with logs.job_context(job_id=job_id, stage=stage, task_id=task_id):
        if isinstance(exception, ProviderError | DocumentError):
            message = str(exception)
        else:
            log.error("stage %s of job %s crashed", stage, job_id, exc_info=exception)
            message = f"Internal error: {type(exception).__name__}"
        services = get_services(sender.app.flask_app)
        with services.database.session() as session:
            if runs.fail_stage(session, job_id, stage, message):
                return
            unsent = runs.unsent_rest(session, job_id, stage)
        if unsent is not None:
            job, rest = unsent
            sent = services.pipeline.start(job, rest)
            log.warning(
                "stage %s of job %s completed, then its task failed (%s): %s the stages from %s",
                stage,
                job_id,
                message,
                "sent" if sent else "could not send yet",
                rest[0].name,
            )


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


@signals.worker_ready.connect
def freeze_startup_objects(**_: Any) -> None:
    """Keep what start-up made (modules, the app, providers) out of every garbage collection.

    They live until exit anyway; frozen, the full collection at interpreter exit no longer
    takes seconds, which on a loaded host outlasted a container's stop timeout after SIGTERM.
    """
    gc.freeze()
