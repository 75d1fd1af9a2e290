"""Stage runs: what the stage tasks record (start, retry, complete, fail), one transaction each.

A refused transition (the job was cancelled or failed, or a duplicate delivery finds its stage
finished) rolls back and says so; the caller then stops without recording anything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, and_, bindparam, select
from sqlalchemy.orm import Session

from events import model as ev
from gateway import texts
from gateway.config import DEFAULT_INLINE_TEXT_LIMIT
from gateway.models import (
    ACTIVE_JOB_STATUSES,
    JOBS,
    RUNS,
    TEXTS,
    JobStatus,
    StageStatus,
)
from gateway.outbox import record
from gateway.transitions import SKIP_PENDING, execute, job_update, runs_update, take_seq

_PROCESSING = (JobStatus.PROCESSING.value,)
_START_JOB = job_update(ACTIVE_JOB_STATUSES, status=JobStatus.PROCESSING.value)
_START_RUN = runs_update(
    (StageStatus.PENDING, StageStatus.STARTED),
    status=StageStatus.STARTED.value,
    attempts=RUNS.c.attempts + 1,
    error=None,
).returning(RUNS.c.attempts, RUNS.c.position)
# A stage's input: the document for the first stage, the previous stage's output for the
# others, with its text if that was stored apart (see gateway.texts).
_DOCUMENT = select(JOBS.c.document_content).where(JOBS.c.id == bindparam("job"))
_PREVIOUS_OUTPUT = (
    select(RUNS.c.result, TEXTS.c.text)
    .outerjoin(TEXTS, and_(TEXTS.c.job_id == RUNS.c.job_id, TEXTS.c.stage == RUNS.c.name))
    .where(RUNS.c.job_id == bindparam("job"), RUNS.c.position == bindparam("position") - 1)
)
_RETRY_JOB = job_update(_PROCESSING)
_RETRY_RUN = runs_update((StageStatus.STARTED,), error=bindparam("message")).returning(
    RUNS.c.attempts
)
_TOUCH_JOB = job_update(_PROCESSING).returning(JOBS.c.stages)
_COMPLETE_RUN = runs_update(
    (StageStatus.STARTED,),
    status=StageStatus.COMPLETED.value,
    result=bindparam("output", type_=JSON),
    error=None,
)
_COMPLETE_JOB = job_update(_PROCESSING, status=JobStatus.COMPLETED.value)
_FAIL_JOB = job_update(
    ACTIVE_JOB_STATUSES,
    status=JobStatus.FAILED.value,
    error_stage=bindparam("stage"),
    error_message=bindparam("message"),
)
_FAIL_RUN = runs_update(
    (StageStatus.PENDING, StageStatus.STARTED),
    status=StageStatus.FAILED.value,
    error=bindparam("message"),
)


def start_stage(session: Session, job_id: str, stage: str) -> Any | None:
    """Begin an attempt of `stage` and return its input; None if the job or stage refuses.

    Refused when the job is no longer active or the stage already finished (a duplicate
    delivery); a stage left started (a redelivery, a database outage) starts again.
    """
    seq = take_seq(session, _START_JOB, job=job_id)
    run = execute(session, _START_RUN, job=job_id, stage=stage).first() if seq else None
    if run is None:
        session.rollback()
        return None
    record(session, job_id, (seq, ev.STAGE_STARTED, {"stage": stage, "attempt": run.attempts}))
    if run.position:
        previous = execute(session, _PREVIOUS_OUTPUT, job=job_id, position=run.position).one()
        stage_input = previous.result
        if previous.text is not None:
            stage_input = texts.with_text(previous.result, previous.text)
    else:
        stage_input = execute(session, _DOCUMENT, job=job_id).scalar()
    session.commit()
    return stage_input


def record_retry(session: Session, job_id: str, stage: str, error: str, countdown: float) -> bool:
    """Note a failed attempt that will be retried after `countdown` seconds."""
    seq = take_seq(session, _RETRY_JOB, job=job_id)
    run = (
        execute(session, _RETRY_RUN, job=job_id, stage=stage, message=error).first()
        if seq
        else None
    )
    if run is None:
        session.rollback()
        return False
    payload = {"stage": stage, "attempt": run.attempts, "error": error, "countdown": countdown}
    record(session, job_id, (seq, ev.STAGE_RETRYING, payload))
    session.commit()
    return True


def complete_stage(
    session: Session,
    job_id: str,
    stage: str,
    result: dict[str, Any],
    *,
    inline_text_limit: int = DEFAULT_INLINE_TEXT_LIMIT,
) -> bool:
    """Store a stage's result; the last stage completes the job. False if the result is discarded.

    An extracted text over `inline_text_limit` bytes is stored once, apart, and the result and
    its event carry a reference instead (`gateway.texts`). Discarded when the job was
    cancelled or failed meanwhile, or when a duplicate delivery already completed the stage.
    """
    recorded, text = texts.reference(job_id, stage, result, inline_text_limit)
    job = execute(session, _TOUCH_JOB, job=job_id).first()
    if (
        not job
        or not execute(session, _COMPLETE_RUN, job=job_id, stage=stage, output=recorded).rowcount
    ):
        session.rollback()
        return False
    if text is not None:
        texts.store(session, job_id, stage, text)
    events = [(job.event_seq, ev.STAGE_COMPLETED, {"stage": stage, "result": recorded})]
    if job.stages[-1] == stage:
        seq = take_seq(session, _COMPLETE_JOB, job=job_id)
        events.append((seq, ev.JOB_COMPLETED, {"stages": list(job.stages)}))
    record(session, job_id, *events)
    session.commit()
    return True


def fail_stage(session: Session, job_id: str, stage: str, message: str) -> bool:
    """Fail `stage` and its job for good: later stages are skipped, earlier results kept."""
    seq = take_seq(session, _FAIL_JOB, job=job_id, stage=stage, message=message)
    if not seq:
        session.rollback()
        return False
    execute(session, _FAIL_RUN, job=job_id, stage=stage, message=message)
    execute(session, SKIP_PENDING, job=job_id)
    record(session, job_id, (seq, ev.JOB_FAILED, {"stage": stage, "error": message}))
    session.commit()
    return True
