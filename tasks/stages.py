"""One Celery task per pipeline stage; each records its transitions through the service layer."""

from __future__ import annotations

import logging
import random
import time
from typing import NoReturn

from celery import shared_task
from celery.exceptions import Ignore, Reject
from sqlalchemy.exc import OperationalError

from gateway import logs, metrics, runs
from gateway.services import get_services
from gateway.stages import STAGES
from providers import ProviderError
from providers.base import DocumentError
from tasks.base import AppContextTask

log = logging.getLogger(__name__)


# 2**64 times any base worth configuring is past any cap; a larger power of two would not even
# convert to a float (OverflowError from retry 1024 on, which a long database outage reaches).
_MAX_EXPONENT = 64


def backoff(retries: int, base: float, maximum: float) -> float:
    """Seconds before retry number `retries + 1`: exponential, capped, with full jitter."""
    return random.uniform(0, min(maximum, base * 2.0 ** min(retries, _MAX_EXPONENT)))


class StageTask(AppContextTask):
    """Base of the stage tasks; a final failure is handled by the task_failure signal."""

    stage: str
    # Celery's count would mix the two kinds of retry, so neither bounds itself by it: provider
    # failures are bounded by the failures stored on the stage, database outages are waited out.
    max_retries = None
    # A document that cannot be extracted fails its stage at once, logged in one line: an
    # expected outcome, not a crash.
    throws = (DocumentError,)


def run_stage(task: StageTask, job_id: str, provider_name: str) -> None:
    """Run one attempt of `task.stage` for the job; Celery retries provider errors and database outages.

    Raises Ignore, which stops the chain, when the job was cancelled or failed, or when this
    delivery is a duplicate of a stage that already finished. A stage delivered again after it
    completed, whose next stage never began (its worker died in between), first sends the rest
    of the chain (runs.unsent_rest).
    """
    services = get_services()
    settings = services.settings
    try:
        with services.database.transition() as session:
            data = runs.start_stage(session, job_id, task.stage)
            unsent = runs.unsent_rest(session, job_id, task.stage) if data is None else None
        if unsent is not None:
            job, rest = unsent
            services.pipeline.start(job, rest)
            log.warning(
                "stage %s of job %s delivered again after it completed, its next stage unsent: "
                "sent the stages from %s",
                task.stage,
                job_id,
                rest[0].name,
            )
            raise Ignore()
        if data is None:
            log.info(
                "stage %s of job %s not started: job inactive or stage done", task.stage, job_id
            )
            raise Ignore()
        provider = services.provider(task.stage, provider_name)
        started = time.perf_counter()
        try:
            result = provider.process(data, timeout=settings.stage_time_limit)
        except ProviderError as exc:
            _observe(task.stage, provider_name, started)
            retry_provider_error(task, job_id, exc)
        _observe(task.stage, provider_name, started)
        with services.database.transition() as session:
            completed = runs.complete_stage(
                session, job_id, task.stage, result, inline_text_limit=settings.inline_text_limit
            )
            if not completed:
                log.info(
                    "result of stage %s discarded: job %s no longer processing", task.stage, job_id
                )
                raise Ignore()
    except OperationalError as exc:
        # Nothing can be recorded while the database is unreachable, not even a failure: wait
        # for it with the usual backoff, however long it takes. The stage runs again from the
        # start; start_stage accepts a stage left started.
        countdown = backoff(
            task.request.retries, settings.retry_backoff_base, settings.retry_backoff_max
        )
        log.warning(
            "stage %s of job %s: database unavailable, retry in %.1f s: %s",
            task.stage,
            job_id,
            countdown,
            exc.orig,
        )
        retry(task, exc, countdown)


def _observe(stage: str, provider: str, started: float) -> None:
    metrics.STAGE_DURATION.labels(stage, provider).observe(time.perf_counter() - started)


def retry_provider_error(task: StageTask, job_id: str, exc: ProviderError) -> NoReturn:
    """Retry after a provider failure, or re-raise it once the stage used up its retries.

    The provider failures stored on the stage bound the retries (runs.provider_failures):
    neither a redelivery, nor a duplicate, nor a retry for a database outage uses one up.
    """
    services = get_services()
    settings = services.settings
    with services.database.session() as session:
        failures = runs.provider_failures(session, job_id, task.stage)
    if failures >= settings.stage_max_retries:
        raise exc  # retries exhausted: the task_failure handler fails the stage and the job
    countdown = backoff(failures, settings.retry_backoff_base, settings.retry_backoff_max)
    # Recorded before the retry is published (the task_retry signal fires after): the next
    # attempt may start at once, and its job.stage_started must follow this event.
    with services.database.session() as session:
        if not runs.record_retry(session, job_id, task.stage, str(exc), round(countdown, 3)):
            log.info("stage %s of job %s not retried: job inactive", task.stage, job_id)
            raise Ignore() from exc
    retry(task, exc, countdown)


def retry(task: StageTask, exc: Exception, countdown: float) -> NoReturn:
    """Celery's retry, except that a retry the broker refuses requeues the message."""
    try:
        raise task.retry(exc=exc, countdown=countdown)
    except Reject as unsent:
        # Celery drops a message whose retry it could not publish (broker down). Requeue it
        # instead; if even that fails, the unacked message returns after the visibility timeout.
        raise Reject(unsent.reason, requeue=True) from exc


def task_name(stage: str) -> str:
    """The Celery task name of `stage` (what Flower shows), e.g. gateway.analysis."""
    return f"gateway.{stage}"


def _stage_task(stage: str) -> StageTask:
    @shared_task(bind=True, base=StageTask, name=task_name(stage), stage=stage)
    def run(self: StageTask, job_id: str, provider: str) -> None:
        with logs.job_context(job_id=job_id, stage=stage, task_id=self.request.id):
            run_stage(self, job_id, provider)

    run.__doc__ = f"Pipeline stage '{stage}' for one job."
    return run  # type: ignore[no-any-return]


STAGE_TASKS: dict[str, StageTask] = {stage: _stage_task(stage) for stage in STAGES}
