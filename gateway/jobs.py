"""The service layer: every business rule about jobs and their stages, and nothing of HTTP or Celery.

Each function is one unit of work on the session it is given and commits it. Every status
change is a conditional UPDATE whose row count says whether it applied, so the lifecycle
holds whatever the interleaving of workers, redeliveries and cancels. Every transaction that
records an event updates the job row first: the row lock orders one job's writers, which
keeps its outbox ids (hence its stream entries) in lifecycle order.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Select, Update, select, tuple_, union_all, update
from sqlalchemy.orm import Session, aliased

from events import model as ev
from events.publisher import record
from gateway.cursor import decode_cursor, encode_cursor
from gateway.errors import InvalidTransitionError, JobNotFoundError
from gateway.models import (
    ACTIVE_JOB_STATUSES,
    Job,
    JobStatus,
    StageRun,
    StageStatus,
    utcnow,
)

VALID_PIPELINES = (
    ["extraction"],
    ["extraction", "analysis"],
    ["extraction", "analysis", "enrichment"],
)


@dataclass(frozen=True)
class Page:
    """One page of jobs, newest first, and the cursor of the next page (None on the last)."""

    jobs: Sequence[Job]
    next_cursor: str | None


@dataclass(frozen=True)
class Cancellation:
    """A cancelled job and the Celery task ids of its stages that had not finished."""

    job: Job
    unfinished_task_ids: list[str]


def create_job(
    session: Session,
    *,
    document_name: str,
    document_type: str,
    document_content: str,
    stages: list[str],
) -> Job:
    """Store a pending job, one pending run per stage, and `job.created`, in one transaction."""
    if stages not in VALID_PIPELINES:
        raise ValueError(f"invalid pipeline {stages!r}")
    now = utcnow()
    job = Job(
        document_name=document_name,
        document_type=document_type,
        document_content=document_content,
        stages=list(stages),
        status=JobStatus.PENDING.value,
        created_at=now,
        updated_at=now,
    )
    job.runs = [StageRun(position=i, name=name) for i, name in enumerate(stages)]
    session.add(job)
    session.flush()
    record(
        session,
        ev.JOB_CREATED,
        job.id,
        {"document_name": document_name, "document_type": document_type, "stages": list(stages)},
    )
    session.commit()
    return job


def get_job(session: Session, job_id: str) -> Job:
    """The job with this id; JobNotFoundError if none (a malformed id included)."""
    try:
        uuid.UUID(job_id)
    except (ValueError, TypeError, AttributeError):
        raise JobNotFoundError() from None
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise JobNotFoundError()
    return job


def list_jobs(
    session: Session,
    *,
    statuses: Sequence[str] = (),
    document_type: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """A page of jobs, newest first; each status is read from its own index range, then merged."""
    order = (Job.created_at.desc(), Job.id.desc())

    def ranged(query: Select[Any]) -> Select[Any]:
        if document_type is not None:
            query = query.where(Job.document_type == document_type)
        if cursor is not None:
            query = query.where(tuple_(Job.created_at, Job.id) < tuple_(*decode_cursor(cursor)))
        return query.order_by(*order).limit(limit + 1)

    if len(set(statuses)) > 1:
        # One index range scan per status keeps the cost independent of the table size.
        parts = [ranged(select(Job.id).where(Job.status == s)) for s in sorted(set(statuses))]
        merged = union_all(*[part.subquery().select() for part in parts]).subquery()
        ids = select(merged.c.id)
        query = select(Job).where(Job.id.in_(ids)).order_by(*order).limit(limit + 1)
    else:
        query = ranged(select(Job).where(Job.status.in_(statuses)) if statuses else select(Job))
    jobs = session.scalars(query).all()
    if len(jobs) <= limit:
        return Page(jobs, None)
    last = jobs[limit - 1]
    return Page(jobs[:limit], encode_cursor(last.created_at, last.id))


def cancel_job(session: Session, job_id: str) -> Cancellation:
    """Cancel a pending or processing job; InvalidTransitionError from any other status."""
    while True:
        previous = get_job(session, job_id).status
        if previous not in ACTIVE_JOB_STATUSES:
            session.rollback()
            raise InvalidTransitionError(f"Cannot cancel job from status {previous}")
        # Conditional on the status we read: if a worker moved the job meanwhile, read again.
        if _set_job(session, job_id, (previous,), status=JobStatus.CANCELLED.value):
            break
        session.rollback()
    _set_runs(session, job_id, (StageStatus.STARTED,), status=StageStatus.CANCELLED.value)
    _set_runs(session, job_id, (StageStatus.PENDING,), status=StageStatus.SKIPPED.value)
    record(session, ev.JOB_CANCELLED, job_id, {"previous_status": previous})
    session.commit()
    job = get_job(session, job_id)
    unfinished = [
        run.task_id
        for run in job.runs
        if run.status in (StageStatus.CANCELLED.value, StageStatus.SKIPPED.value)
    ]
    return Cancellation(job, unfinished)


def claim_dispatch(session: Session, job_id: str) -> Job | None:
    """Mark a pending job dispatched, in the caller's open transaction; None if already claimed.

    The caller sends the chain and then commits, or rolls back if the broker refused it.
    """
    claimed = _rowcount(
        session,
        update(Job)
        .where(Job.id == job_id, Job.dispatched_at.is_(None), Job.status == JobStatus.PENDING.value)
        .values(dispatched_at=utcnow()),
    )
    return session.get(Job, job_id, populate_existing=True) if claimed else None


def undispatched_job_ids(session: Session, *, created_before: Any, limit: int = 100) -> list[str]:
    """Pending jobs that no chain was handed to the broker for, oldest first."""
    return list(
        session.scalars(
            select(Job.id)
            .where(Job.dispatched_at.is_(None), Job.created_at < created_before)
            .where(Job.status == JobStatus.PENDING.value)
            .order_by(Job.created_at)
            .limit(limit)
        )
    )


def stalled_job_ids(session: Session, *, updated_before: Any, limit: int = 100) -> list[str]:
    """Processing jobs no transition has touched since `updated_before`, longest idle first."""
    return list(
        session.scalars(
            select(Job.id)
            .where(Job.status == JobStatus.PROCESSING.value, Job.updated_at < updated_before)
            .order_by(Job.updated_at)
            .limit(limit)
        )
    )


def claim_stalled(session: Session, job_id: str, *, updated_before: Any) -> Job | None:
    """Touch a stalled job in the caller's open transaction; None if it moved or was claimed.

    The touch resets its idle clock, so a second relay's claim (blocked on the row lock, then
    re-checking the bound) finds nothing and resends nothing this period. The caller sends
    the rest of the chain and commits, or rolls back if the broker refused it.
    """
    claimed = _rowcount(
        session,
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.PROCESSING.value,
            Job.updated_at < updated_before,
        )
        .values(updated_at=utcnow()),
    )
    return session.get(Job, job_id, populate_existing=True) if claimed else None


def start_stage(session: Session, job_id: str, stage: str) -> Any | None:
    """Begin an attempt of `stage` and return its input; None if the job or stage refuses.

    Refused when the job is no longer active or the stage already finished (a duplicate
    delivery), so the caller stops without recording anything.
    """
    started = _set_job(session, job_id, ACTIVE_JOB_STATUSES, status=JobStatus.PROCESSING.value)
    run = _run(session, job_id, stage) if started else None
    if run is None or run.status not in (StageStatus.PENDING.value, StageStatus.STARTED.value):
        session.rollback()
        return None
    _set_runs(
        session,
        job_id,
        (StageStatus.PENDING, StageStatus.STARTED),
        stage=stage,
        status=StageStatus.STARTED.value,
        attempts=StageRun.attempts + 1,
        error=None,
    )
    attempt = run.attempts + 1
    record(session, ev.STAGE_STARTED, job_id, {"stage": stage, "attempt": attempt})
    stage_input = _stage_input(session, job_id, run.position)
    session.commit()
    return stage_input


def record_retry(session: Session, job_id: str, stage: str, error: str, countdown: float) -> bool:
    """Note a failed attempt that will be retried after `countdown` seconds."""
    if not _set_job(session, job_id, (JobStatus.PROCESSING.value,)):
        session.rollback()
        return False
    run = _run(session, job_id, stage)
    applied = _set_runs(session, job_id, (StageStatus.STARTED,), stage=stage, error=error)
    if not applied or run is None:
        session.rollback()
        return False
    payload = {"stage": stage, "attempt": run.attempts, "error": error, "countdown": countdown}
    record(session, ev.STAGE_RETRYING, job_id, payload)
    session.commit()
    return True


def complete_stage(session: Session, job_id: str, stage: str, result: dict[str, Any]) -> bool:
    """Store a stage's result; the last stage completes the job. False if the result is discarded."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        return False
    last = job.stages[-1] == stage
    done = {"status": JobStatus.COMPLETED.value} if last else {}
    if not _set_job(session, job_id, (JobStatus.PROCESSING.value,), **done):
        session.rollback()  # cancelled or failed meanwhile: the result is discarded
        return False
    if not _set_runs(
        session,
        job_id,
        (StageStatus.STARTED,),
        stage=stage,
        status=StageStatus.COMPLETED.value,
        result=result,
        error=None,
    ):
        session.rollback()  # a duplicate delivery already completed it
        return False
    record(session, ev.STAGE_COMPLETED, job_id, {"stage": stage, "result": result})
    if last:
        record(session, ev.JOB_COMPLETED, job_id, {"stages": list(job.stages)})
    session.commit()
    return True


def fail_stage(session: Session, job_id: str, stage: str, message: str) -> bool:
    """Fail `stage` and its job for good: later stages are skipped, earlier results kept."""
    if not _set_job(
        session,
        job_id,
        ACTIVE_JOB_STATUSES,
        status=JobStatus.FAILED.value,
        error_stage=stage,
        error_message=message,
    ):
        session.rollback()
        return False
    active = (StageStatus.PENDING, StageStatus.STARTED)
    _set_runs(session, job_id, active, stage=stage, status=StageStatus.FAILED.value, error=message)
    _set_runs(session, job_id, (StageStatus.PENDING,), status=StageStatus.SKIPPED.value)
    record(session, ev.JOB_FAILED, job_id, {"stage": stage, "error": message})
    session.commit()
    return True


def _set_job(session: Session, job_id: str, when: Sequence[str], **values: Any) -> bool:
    """UPDATE the job if its status is in `when`; True if it applied. Takes the job row lock."""
    statement = update(Job).where(Job.id == job_id, Job.status.in_(when))
    return bool(_rowcount(session, statement.values(updated_at=utcnow(), **values)))


def _set_runs(
    session: Session,
    job_id: str,
    when: Sequence[StageStatus],
    stage: str | None = None,
    **values: Any,
) -> bool:
    """UPDATE the job's runs (or one stage's) whose status is in `when`; True if any applied."""
    query = update(StageRun).where(
        StageRun.job_id == job_id, StageRun.status.in_([s.value for s in when])
    )
    if stage is not None:
        query = query.where(StageRun.name == stage)
    return bool(_rowcount(session, query.values(updated_at=utcnow(), **values)))


def _rowcount(session: Session, statement: Update) -> int:
    """Run a bulk UPDATE and return how many rows it changed."""
    options = {"synchronize_session": False}
    return cast(CursorResult[Any], session.execute(statement, execution_options=options)).rowcount


def _run(session: Session, job_id: str, stage: str) -> StageRun | None:
    return session.scalars(
        select(StageRun)
        .where(StageRun.job_id == job_id, StageRun.name == stage)
        .execution_options(populate_existing=True)
    ).one_or_none()


def _stage_input(session: Session, job_id: str, position: int) -> Any:
    """The document for the first stage, else the stored output of the previous one."""
    if position == 0:
        return session.scalar(select(Job.document_content).where(Job.id == job_id))
    previous = aliased(StageRun)
    return session.scalar(
        select(previous.result).where(previous.job_id == job_id, previous.position == position - 1)
    )
