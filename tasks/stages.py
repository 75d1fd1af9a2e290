"""One Celery task per pipeline stage; each records its transitions through the service layer."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from celery.exceptions import Ignore, Reject
from flask import current_app

from gateway import jobs
from gateway.models import STAGES
from providers import ProviderError
from tasks.app import AppContextTask

log = logging.getLogger(__name__)


def backoff(retries: int, base: float, maximum: float) -> float:
    """Seconds before retry number `retries + 1`: exponential, capped, with full jitter."""
    return random.uniform(0, min(maximum, base * 2**retries))


class StageTask(AppContextTask):
    """Base of the stage tasks; a final failure is handled by the task_failure signal."""

    stage: str


def run_stage(task: StageTask, job_id: str, provider_name: str) -> None:
    """Run one attempt of `task.stage` for the job, with Celery retrying provider errors.

    Raises Ignore, which stops the chain, when the job was cancelled or failed, or when this
    delivery is a duplicate of a stage that already finished.
    """
    gateway = current_app.extensions["gateway"]
    settings = gateway.settings
    with gateway.database.session() as session:
        data = jobs.start_stage(session, job_id, task.stage)
    if data is None:
        log.info("stage %s of job %s not started: job inactive or stage done", task.stage, job_id)
        raise Ignore()
    provider = gateway.provider(task.stage, provider_name)
    try:
        result = provider.process(data, timeout=settings.stage_time_limit)
    except ProviderError as exc:
        if task.request.retries >= settings.stage_max_retries:
            raise  # retries exhausted: the task_failure handler fails the stage and the job
        countdown = backoff(
            task.request.retries, settings.retry_backoff_base, settings.retry_backoff_max
        )
        # Recorded before the retry is published (the task_retry signal fires after): the
        # next attempt may start at once, and its job.stage_started must follow this event.
        with gateway.database.session() as session:
            if not jobs.record_retry(session, job_id, task.stage, str(exc), round(countdown, 3)):
                log.info("stage %s of job %s not retried: job inactive", task.stage, job_id)
                raise Ignore() from exc
        try:
            raise task.retry(
                exc=exc, countdown=countdown, max_retries=settings.stage_max_retries
            ) from exc
        except Reject as unsent:
            # Celery drops a message whose retry it could not publish (broker down). Requeue it
            # instead; if even that fails, the unacked message returns after the visibility timeout.
            raise Reject(unsent.reason, requeue=True) from exc
    with gateway.database.session() as session:
        if not jobs.complete_stage(session, job_id, task.stage, result):
            log.info(
                "result of stage %s discarded: job %s no longer processing", task.stage, job_id
            )
            raise Ignore()


def task_name(stage: str) -> str:
    """The Celery task name of `stage` (what Flower shows), e.g. gateway.analysis."""
    return f"gateway.{stage}"


def _stage_task(stage: str) -> StageTask:
    @shared_task(bind=True, base=StageTask, name=task_name(stage), stage=stage)
    def run(self: StageTask, job_id: str, provider: str) -> None:
        run_stage(self, job_id, provider)

    run.__doc__ = f"Pipeline stage '{stage}' for one job."
    return run  # type: ignore[no-any-return]


STAGE_TASKS: dict[str, StageTask] = {stage: _stage_task(stage) for stage in STAGES}
