"""Retry: resume a failed job from the stage that failed, keeping the stages that completed.

Transactions follow the service layer's commit rule (`gateway.transitions`). The retry is one
conditional UPDATE of the job row from `failed` to `processing`: of two concurrent retries
(a double click) the second waits on the first's row lock, then finds the job processing and
is refused, so only one chain is ever sent. A cancel racing a retry queues on the same lock:
it either finds the job still failed and is refused, or finds it processing again and cancels
the runs the retry reset, with their new task ids, which it revokes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from events import model as ev
from gateway import metrics
from gateway.errors import InvalidTransitionError
from gateway.jobs import JobSnapshot, RunSnapshot, get_job
from gateway.models import JOBS, RUNS, JobStatus, StageStatus, new_id, utcnow
from gateway.outbox import record
from gateway.transitions import execute, job_update, take_seq

log = logging.getLogger(__name__)

# Locks the job row: what a retry reads stays true until it commits.
_LOCK_JOB = (
    select(JOBS.c.status, JOBS.c.error_stage, JOBS.c.error_message)
    .where(JOBS.c.id == bindparam("job"))
    .with_for_update()
)
_RETRY_JOB = job_update(
    (JobStatus.FAILED.value,),
    status=JobStatus.PROCESSING.value,
    error_stage=None,
    error_message=None,
)
# Each unfinished run starts afresh: a new task id (a cancel revokes the new chain, never an
# old message), and a new budget of provider retries. Attempts keep counting.
_RESET_RUN = (
    update(RUNS)
    .where(
        RUNS.c.job_id == bindparam("job"),
        RUNS.c.position == bindparam("run_position"),
        RUNS.c.status != StageStatus.COMPLETED.value,
    )
    .values(
        status=StageStatus.PENDING.value,
        task_id=bindparam("new_task_id"),
        failures=0,
        error=None,
        updated_at=bindparam("now"),
    )
)


@dataclass(frozen=True)
class Retry:
    """A failed job back in processing, and the runs to send again, first the one that failed."""

    job: JobSnapshot
    rest: list[RunSnapshot]


def retry_job(session: Session, job_id: str, tenant: str | None = None) -> Retry:
    """Put a failed job (of `tenant` if given) back to processing from its failed stage,
    record `job.retried`, commit.

    InvalidTransitionError from any other status, naming it. The caller sends `rest` after
    the commit; if the broker refuses, the stalled-job sweep sends it later.
    """
    # JobNotFoundError for an unknown or malformed id, and for another tenant's job
    get_job(session, job_id, tenant)
    failed = execute(session, _LOCK_JOB, job=job_id).one()
    seq = take_seq(session, _RETRY_JOB, job=job_id)
    if not seq:
        session.rollback()
        raise InvalidTransitionError(f"Cannot retry job from status {failed.status}")
    unfinished = [r for r in get_job(session, job_id).runs if r.status != StageStatus.COMPLETED]
    now = utcnow()
    session.connection().execute(
        _RESET_RUN,
        [
            {"job": job_id, "run_position": r.position, "new_task_id": new_id(), "now": now}
            for r in unfinished
        ],
    )
    payload = {"stage": failed.error_stage, "error": failed.error_message}
    record(session, job_id, (seq, ev.JOB_RETRIED, payload))
    session.commit()
    metrics.JOBS_RETRIED.inc()
    log.info("job retried from stage %s", failed.error_stage, extra={"job_id": job_id})
    job = get_job(session, job_id)
    rest = [run for run in job.runs if run.status == StageStatus.PENDING.value]
    return Retry(job, rest)
