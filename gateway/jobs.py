"""The service layer: every business rule about jobs and their stages, and nothing of HTTP or Celery.

Each function is one unit of work on the session it is given, in one transaction that it
commits. Every status change is a conditional UPDATE whose result says whether it applied, so
the lifecycle holds whatever the interleaving of workers, redeliveries and cancels. Every
transaction that records an event updates the job row first, taking the next number of the
job's events from it: the row lock orders one job's writers, so the numbers (and the outbox
ids) follow the lifecycle, and Redis appends them in that order. Writes are single Core
statements; the ORM only loads jobs for reading.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Select,
    Update,
    and_,
    insert,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.orm import Session, joinedload

from events import model as ev
from gateway.cursor import decode_cursor, encode_cursor
from gateway.errors import InvalidTransitionError, JobNotFoundError
from gateway.models import (
    ACTIVE_JOB_STATUSES,
    JOBS,
    RUNS,
    Job,
    JobStatus,
    StageRun,
    StageStatus,
    new_id,
    utcnow,
)
from gateway.outbox import record

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
    """Store a pending job, its stage runs and `job.created` in one transaction; return it.

    The job is stored already claimed for dispatch: the caller sends its chain right after
    the commit, and calls `release_dispatch` if the broker refused it.
    """
    if stages not in VALID_PIPELINES:
        raise ValueError(f"invalid pipeline {stages!r}")
    now = utcnow()
    job = Job(
        id=new_id(),
        document_name=document_name,
        document_type=document_type,
        document_content=document_content,
        stages=list(stages),
        status=JobStatus.PENDING.value,
        error_stage=None,
        error_message=None,
        dispatched_at=now,
        event_seq=1,
        created_at=now,
        updated_at=now,
    )
    job.runs = [
        StageRun(
            job_id=job.id,
            position=i,
            name=name,
            status=StageStatus.PENDING.value,
            task_id=new_id(),
            attempts=0,
            result=None,
            error=None,
            updated_at=None,
        )
        for i, name in enumerate(stages)
    ]
    # Plain inserts: the returned job is built here, so the ORM has nothing to track.
    session.execute(insert(JOBS).values({c.name: getattr(job, c.name) for c in JOBS.columns}))
    session.execute(
        insert(RUNS), [{c.name: getattr(r, c.name) for c in RUNS.columns} for r in job.runs]
    )
    payload = {"document_name": document_name, "document_type": document_type, "stages": stages}
    record(session, job.id, 1, ev.JOB_CREATED, payload)
    session.commit()
    return job


def get_job(session: Session, job_id: str) -> Job:
    """The job with this id; JobNotFoundError if none (a malformed id included)."""
    try:
        uuid.UUID(job_id)
    except (ValueError, TypeError, AttributeError):
        raise JobNotFoundError() from None
    job = session.get(Job, job_id, populate_existing=True, options=[joinedload(Job.runs)])
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
        seq = _set_job(session, job_id, (previous,), status=JobStatus.CANCELLED.value)
        if seq:
            break
        session.rollback()
    _set_runs(session, job_id, (StageStatus.STARTED,), status=StageStatus.CANCELLED.value)
    _set_runs(session, job_id, (StageStatus.PENDING,), status=StageStatus.SKIPPED.value)
    record(session, job_id, seq, ev.JOB_CANCELLED, {"previous_status": previous})
    session.commit()
    job = get_job(session, job_id)
    unfinished = [
        run.task_id
        for run in job.runs
        if run.status in (StageStatus.CANCELLED.value, StageStatus.SKIPPED.value)
    ]
    return Cancellation(job, unfinished)


def claim_dispatch(session: Session, job_id: str) -> Job | None:
    """Claim a pending job that no chain was sent for, and commit; None if already claimed.

    The caller sends the chain after the claim, and calls `release_dispatch` if the broker
    refused it; the claim stops a second relay from sending the same job.
    """
    claimed = _rowcount(
        session,
        update(JOBS)
        .where(
            JOBS.c.id == job_id,
            JOBS.c.dispatched_at.is_(None),
            JOBS.c.status == JobStatus.PENDING.value,
        )
        .values(dispatched_at=utcnow()),
    )
    session.commit()
    return session.get(Job, job_id, populate_existing=True) if claimed else None


def release_dispatch(session: Session, job_id: str) -> bool:
    """Hand a pending job whose chain the broker refused back to the relay (and commit)."""
    released = _rowcount(
        session,
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.status == JobStatus.PENDING.value)
        .values(dispatched_at=None),
    )
    session.commit()
    return bool(released)


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
    """Active jobs, sent to the broker, that no transition has touched since `updated_before`.

    Pending ones included: a process may have died between storing a job and sending it.
    """
    return list(
        session.scalars(
            select(Job.id)
            .where(_stallable(Job.status, Job.dispatched_at), Job.updated_at < updated_before)
            .order_by(Job.updated_at)
            .limit(limit)
        )
    )


def _stallable(status: Any, dispatched_at: Any) -> Any:
    """Processing, or pending with its chain claimed (the undispatched sweep has the others)."""
    return or_(
        status == JobStatus.PROCESSING.value,
        and_(status == JobStatus.PENDING.value, dispatched_at.is_not(None)),
    )


def claim_stalled(session: Session, job_id: str, *, updated_before: Any) -> Job | None:
    """Touch a stalled job and commit; None if it moved or another relay claimed it.

    The touch resets its idle clock, so a second relay's claim (blocked on the row lock, then
    re-checking the bound) finds nothing and resends nothing this period. The caller then
    sends the rest of the chain; if the broker refuses, the next period tries again.
    """
    claimed = _rowcount(
        session,
        update(JOBS)
        .where(
            JOBS.c.id == job_id,
            _stallable(JOBS.c.status, JOBS.c.dispatched_at),
            JOBS.c.updated_at < updated_before,
        )
        .values(updated_at=utcnow()),
    )
    session.commit()
    return session.get(Job, job_id, populate_existing=True) if claimed else None


def start_stage(session: Session, job_id: str, stage: str) -> Any | None:
    """Begin an attempt of `stage` and return its input; None if the job or stage refuses.

    Refused when the job is no longer active or the stage already finished (a duplicate
    delivery), so the caller stops without recording anything.
    """
    seq = _set_job(session, job_id, ACTIVE_JOB_STATUSES, status=JobStatus.PROCESSING.value)
    run = (
        seq
        and session.execute(
            _update_runs(job_id, (StageStatus.PENDING, StageStatus.STARTED), stage)
            .values(status=StageStatus.STARTED.value, attempts=RUNS.c.attempts + 1, error=None)
            .returning(RUNS.c.attempts, RUNS.c.position)
        ).first()
    )
    if not run:
        session.rollback()
        return None
    record(session, job_id, seq, ev.STAGE_STARTED, {"stage": stage, "attempt": run.attempts})
    stage_input = _stage_input(session, job_id, run.position)
    session.commit()
    return stage_input


def record_retry(session: Session, job_id: str, stage: str, error: str, countdown: float) -> bool:
    """Note a failed attempt that will be retried after `countdown` seconds."""
    seq = _set_job(session, job_id, (JobStatus.PROCESSING.value,))
    run = (
        seq
        and session.execute(
            _update_runs(job_id, (StageStatus.STARTED,), stage)
            .values(error=error)
            .returning(RUNS.c.attempts)
        ).first()
    )
    if not run:
        session.rollback()
        return False
    payload = {"stage": stage, "attempt": run.attempts, "error": error, "countdown": countdown}
    record(session, job_id, seq, ev.STAGE_RETRYING, payload)
    session.commit()
    return True


def complete_stage(session: Session, job_id: str, stage: str, result: dict[str, Any]) -> bool:
    """Store a stage's result; the last stage completes the job. False if the result is discarded."""
    job = session.execute(
        _update_job(job_id, (JobStatus.PROCESSING.value,)).returning(
            JOBS.c.event_seq, JOBS.c.stages
        )
    ).first()
    if job is None:
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
    record(session, job_id, job.event_seq, ev.STAGE_COMPLETED, {"stage": stage, "result": result})
    if job.stages[-1] == stage:
        seq = _set_job(session, job_id, (JobStatus.PROCESSING.value,), status="completed")
        record(session, job_id, seq, ev.JOB_COMPLETED, {"stages": list(job.stages)})
    session.commit()
    return True


def fail_stage(session: Session, job_id: str, stage: str, message: str) -> bool:
    """Fail `stage` and its job for good: later stages are skipped, earlier results kept."""
    seq = _set_job(
        session,
        job_id,
        ACTIVE_JOB_STATUSES,
        status=JobStatus.FAILED.value,
        error_stage=stage,
        error_message=message,
    )
    if not seq:
        session.rollback()
        return False
    active = (StageStatus.PENDING, StageStatus.STARTED)
    _set_runs(session, job_id, active, stage=stage, status=StageStatus.FAILED.value, error=message)
    _set_runs(session, job_id, (StageStatus.PENDING,), status=StageStatus.SKIPPED.value)
    record(session, job_id, seq, ev.JOB_FAILED, {"stage": stage, "error": message})
    session.commit()
    return True


def _update_job(job_id: str, when: Sequence[str], **values: Any) -> Update:
    """UPDATE the job if its status is in `when`, taking one more event number (and its lock)."""
    return (
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.status.in_(when))
        .values(updated_at=utcnow(), event_seq=JOBS.c.event_seq + 1, **values)
    )


def _set_job(session: Session, job_id: str, when: Sequence[str], **values: Any) -> int:
    """Run `_update_job`; the event number it took for the transaction's event, 0 if refused."""
    seq = session.scalar(_update_job(job_id, when, **values).returning(JOBS.c.event_seq))
    return seq or 0


def _update_runs(job_id: str, when: Sequence[StageStatus], stage: str | None = None) -> Update:
    """UPDATE the job's runs (or one stage's) whose status is in `when`."""
    query = update(RUNS).where(RUNS.c.job_id == job_id, RUNS.c.status.in_([s.value for s in when]))
    if stage is not None:
        query = query.where(RUNS.c.name == stage)
    return query.values(updated_at=utcnow())


def _set_runs(
    session: Session,
    job_id: str,
    when: Sequence[StageStatus],
    stage: str | None = None,
    **values: Any,
) -> bool:
    """Run `_update_runs` with `values`; True if any run changed."""
    return bool(_rowcount(session, _update_runs(job_id, when, stage).values(**values)))


def _rowcount(session: Session, statement: Update) -> int:
    """Run an UPDATE and return how many rows it changed."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def _stage_input(session: Session, job_id: str, position: int) -> Any:
    """The document for the first stage, else the stored output of the previous one."""
    if position == 0:
        return session.scalar(select(JOBS.c.document_content).where(JOBS.c.id == job_id))
    return session.scalar(
        select(RUNS.c.result).where(RUNS.c.job_id == job_id, RUNS.c.position == position - 1)
    )
