"""Claims on sending a job's chain: what the pipeline and the relay's sweeps record.

Transactions follow the service layer's commit rule (`gateway.transitions`): a claim commits
before anything is sent, so no transaction is open during a broker call. A job is stored
already claimed (`jobs.create_job`); a send the broker refused hands it back to the
relay with `release_dispatch`. A process that dies between a claim and its send leaves the job
to the stalled-job sweep, which resends from the first unfinished stage; a duplicate chain is
harmless, since a stage that finished refuses to start again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from gateway.jobs import JobSnapshot, get_job
from gateway.models import JOBS, RUNS, JobStatus, StageStatus, utcnow
from gateway.transitions import execute

_PENDING = JobStatus.PENDING.value


def claim_dispatch(session: Session, job_id: str) -> JobSnapshot | None:
    """Claim a pending job that no chain was sent for, and commit; None if already claimed."""
    claimed = execute(
        session,
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.dispatched_at.is_(None), JOBS.c.status == _PENDING)
        .values(dispatched_at=utcnow()),
    ).rowcount
    session.commit()
    return get_job(session, job_id) if claimed else None


def release_dispatch(session: Session, job_id: str) -> bool:
    """Hand a pending job whose chain the broker refused back to the relay, and commit."""
    released = execute(
        session,
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.status == _PENDING)
        .values(dispatched_at=None),
    ).rowcount
    session.commit()
    return bool(released)


def undispatched_job_ids(session: Session, *, created_before: Any, limit: int = 100) -> list[str]:
    """Pending jobs that no chain was handed to the broker for, oldest first."""
    return list(
        session.scalars(
            select(JOBS.c.id)
            .where(JOBS.c.dispatched_at.is_(None), JOBS.c.created_at < created_before)
            .where(JOBS.c.status == _PENDING)
            .order_by(JOBS.c.created_at)
            .limit(limit)
        )
    )


def stalled_job_ids(session: Session, *, updated_before: Any, limit: int = 100) -> list[str]:
    """Jobs that should be moving but that no transition touched since `updated_before`.

    Processing ones, and pending ones whose chain was claimed: a process may have died
    between storing a job and sending it.
    """
    return list(
        session.scalars(
            select(JOBS.c.id)
            .where(_stallable(), JOBS.c.updated_at < updated_before)
            .order_by(JOBS.c.updated_at)
            .limit(limit)
        )
    )


def awaited_messages(session: Session, *, updated_before: Any, limit: int = 500) -> dict[str, str]:
    """Active jobs idle since `updated_before`, each with the task id of the stage it waits for.

    The stage is the job's first one not finished (pending or started): its message is the one
    the broker must hold, queued or delivered to a worker, for the job to move again.
    """
    job_ids = stalled_job_ids(session, updated_before=updated_before, limit=limit)
    unfinished = (StageStatus.PENDING.value, StageStatus.STARTED.value)
    rows = session.execute(
        select(RUNS.c.job_id, RUNS.c.task_id)
        .where(RUNS.c.job_id.in_(job_ids), RUNS.c.status.in_(unfinished))
        .order_by(RUNS.c.job_id, RUNS.c.position.desc())
    )
    return {job_id: task_id for job_id, task_id in rows}  # the last kept: the first position


def claim_stalled(session: Session, job_id: str, *, updated_before: Any) -> JobSnapshot | None:
    """Touch a stalled job and commit; None if it moved or another relay claimed it.

    The touch resets its idle clock, so a second relay's claim (blocked on the row lock, then
    re-checking the bound) finds nothing and resends nothing this period. The caller then
    sends the rest of the chain; if the broker refuses, the next period tries again.
    """
    claimed = execute(
        session,
        update(JOBS)
        .where(JOBS.c.id == job_id, _stallable(), JOBS.c.updated_at < updated_before)
        .values(updated_at=utcnow()),
    ).rowcount
    session.commit()
    return get_job(session, job_id) if claimed else None


def _stallable() -> Any:
    processing = JOBS.c.status == JobStatus.PROCESSING.value
    return or_(processing, and_(JOBS.c.status == _PENDING, JOBS.c.dispatched_at.is_not(None)))
