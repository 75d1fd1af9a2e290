"""Stage runs: what the stage tasks record (start, retry, complete, fail).

Transactions follow the service layer's commit rule (`gateway.transitions`): a refused
transition (the job was cancelled or failed, or a duplicate delivery finds its stage finished)
rolls back and says so, and the task then stops without recording anything.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import JSON, and_, bindparam, select
from sqlalchemy.orm import Session

from events import model as ev
from gateway import fused, metrics, texts
from gateway.config import DEFAULT_INLINE_TEXT_LIMIT
from gateway.errors import JobNotFoundError
from gateway.jobs import JobSnapshot, RunSnapshot, get_job
from gateway.models import (
    ACTIVE_JOB_STATUSES,
    FILES,
    JOBS,
    RUNS,
    TEXTS,
    JobStatus,
    StageStatus,
)
from gateway.outbox import record
from gateway.transitions import SKIP_PENDING, execute, job_update, runs_update, take_seq
from providers.base import Upload

log = logging.getLogger(__name__)

_PROCESSING = (JobStatus.PROCESSING.value,)
_START_JOB = job_update(ACTIVE_JOB_STATUSES, status=JobStatus.PROCESSING.value)
_START_RUN = runs_update(
    (StageStatus.PENDING, StageStatus.STARTED),
    status=StageStatus.STARTED.value,
    attempts=RUNS.c.attempts + 1,
    error=None,
).returning(RUNS.c.attempts, RUNS.c.position)
# A stage's input: the document for the first stage (its text, or its uploaded file), the
# previous stage's output for the others, with its text if that was stored apart (gateway.texts).
_DOCUMENT = (
    select(JOBS.c.document_content, FILES.c.content, FILES.c.content_type, FILES.c.filename)
    .outerjoin(FILES, FILES.c.job_id == JOBS.c.id)
    .where(JOBS.c.id == bindparam("job"))
)
_PREVIOUS_OUTPUT = (
    select(RUNS.c.result, TEXTS.c.text)
    .outerjoin(TEXTS, and_(TEXTS.c.job_id == RUNS.c.job_id, TEXTS.c.stage == RUNS.c.name))
    .where(RUNS.c.job_id == bindparam("job"), RUNS.c.position == bindparam("position") - 1)
)
# The document's text (the first stage's output), which the stages after the second also get.
_DOCUMENT_TEXT = (
    select(RUNS.c.result, TEXTS.c.text)
    .outerjoin(TEXTS, and_(TEXTS.c.job_id == RUNS.c.job_id, TEXTS.c.stage == RUNS.c.name))
    .where(RUNS.c.job_id == bindparam("job"), RUNS.c.position == 0)
)
_RETRY_JOB = job_update(_PROCESSING)
_RETRY_RUN = runs_update(
    (StageStatus.STARTED,), error=bindparam("message"), failures=RUNS.c.failures + 1
).returning(RUNS.c.attempts)
_FAILURES = select(RUNS.c.failures).where(
    RUNS.c.job_id == bindparam("job"), RUNS.c.name == bindparam("stage")
)
_TOUCH_JOB = job_update(_PROCESSING).returning(JOBS.c.stages)
_COMPLETE_RUN = runs_update(
    (StageStatus.STARTED,),
    status=StageStatus.COMPLETED.value,
    result=bindparam("output", type_=JSON),
    error=None,
).returning(RUNS.c.attempts)
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
).returning(RUNS.c.attempts)


def start_stage(session: Session, job_id: str, stage: str) -> Any | None:
    """Begin an attempt of `stage` and return its input; None if the job or stage refuses.

    The input is the document for the first stage and the previous stage's result for the
    others; from the third stage on, that result also carries the document's extracted
    `text` (enrichment redacts and summarises the text the analysis read).

    Refused when the job is no longer active or the stage already finished (a duplicate
    delivery); a stage left started (a redelivery, a database outage) starts again.
    """
    if fused.available(session):
        row = fused.start_stage(session, job_id, stage)
        if row is None:
            session.rollback()
            return None
        stage_input = row.document
        if row.file_content is not None:  # an upload: the extractor gets its bytes
            stage_input = Upload(bytes(row.file_content), row.file_type, row.file_name)
        if row.position:
            stage_input = _output(row.result, row.text)
        if row.position > 1 and isinstance(stage_input, dict) and "text" not in stage_input:
            stage_input = {**stage_input, "text": _text_of(row.first_result, row.first_text)}
        session.commit()
        log.info("stage started", extra=_fields(job_id, stage, row.attempts))
        return stage_input
    seq = take_seq(session, _START_JOB, job=job_id)
    run = execute(session, _START_RUN, job=job_id, stage=stage).first() if seq else None
    if run is None:
        session.rollback()
        return None
    record(session, job_id, (seq, ev.STAGE_STARTED, {"stage": stage, "attempt": run.attempts}))
    if run.position:
        previous = execute(session, _PREVIOUS_OUTPUT, job=job_id, position=run.position).one()
        stage_input = _output(previous.result, previous.text)
        if run.position > 1 and isinstance(stage_input, dict) and "text" not in stage_input:
            stage_input = {**stage_input, "text": _document_text(session, job_id)}
    else:
        document = execute(session, _DOCUMENT, job=job_id).one()
        stage_input = document.document_content
        if document.content is not None:  # an upload: the extractor gets its bytes
            stage_input = Upload(bytes(document.content), document.content_type, document.filename)
    session.commit()
    log.info("stage started", extra=_fields(job_id, stage, run.attempts))
    return stage_input


def _document_text(session: Session, job_id: str) -> str:
    """The text the first stage extracted, stored apart or inline ("" if it has none)."""
    row = execute(session, _DOCUMENT_TEXT, job=job_id).one()
    return _text_of(row.result, row.text)


def _output(result: Any, stored_text: str | None) -> Any:
    """A stage's output as it returned it: its result, with its text stored apart put back."""
    return result if stored_text is None else texts.with_text(result, stored_text)


def _text_of(result: Any, stored_text: str | None) -> str:
    """The text of the first stage's output, stored apart or inline ("" if it has none)."""
    if stored_text is not None:
        return str(stored_text)
    text = result.get("text") if isinstance(result, dict) else None
    return text if isinstance(text, str) else ""


def unsent_rest(
    session: Session, job_id: str, stage: str
) -> tuple[JobSnapshot, list[RunSnapshot]] | None:
    """The job and its runs after `stage` if a delivery of completed `stage` must send them again.

    A worker that dies (or loses the broker) after complete_stage commits, before it publishes
    the next stage, leaves its job processing with the next stage pending, and its message
    unacknowledged: the broker delivers the completed stage again. That delivery sends the rest
    of the chain, with the runs' task ids, as the stalled-job sweep would, but at once. None
    unless the job is processing, `stage` completed and the next stage has not begun: once it
    has, the chain went on, and sending it again would only run stages twice. A copy sent in
    the moment between a live worker's commit and its publish is harmless too: of two copies
    of a stage only one complete_stage records, and a copy that comes later is refused.
    """
    try:
        job = get_job(session, job_id)
    except JobNotFoundError:
        return None
    names = [run.name for run in job.runs]
    if job.status != JobStatus.PROCESSING.value or stage not in names:
        return None
    index = names.index(stage)
    finished, rest = job.runs[index], job.runs[index + 1 :]
    if finished.status != StageStatus.COMPLETED.value or not rest:
        return None
    if rest[0].status != StageStatus.PENDING.value:
        return None
    return job, rest


def provider_failures(session: Session, job_id: str, stage: str) -> int:
    """How many provider failures of `stage` were retried so far: what bounds its retries.

    Only record_retry counts one. A rerun that no provider failure caused (a redelivery after
    a worker died, a duplicate delivery, a retry after a database outage) starts an attempt
    but uses up no retry.
    """
    return int(execute(session, _FAILURES, job=job_id, stage=stage).scalar() or 0)


def record_retry(session: Session, job_id: str, stage: str, error: str, countdown: float) -> bool:
    """Note a provider failure that will be retried after `countdown` seconds, and count it."""
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
    metrics.STAGE_ATTEMPTS.labels(stage, "retried").inc()
    log.info(
        "stage retrying in %.3f s: %s", countdown, error, extra=_fields(job_id, stage, run.attempts)
    )
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
    if fused.available(session):
        outcome = fused.complete_stage(session, job_id, stage, recorded, text)
        if outcome is None:
            session.rollback()
            metrics.STAGE_ATTEMPTS.labels(stage, "discarded").inc()
            return False
        session.commit()
        _completed(job_id, stage, *outcome)
        return True
    job = execute(session, _TOUCH_JOB, job=job_id).first()
    run = (
        execute(session, _COMPLETE_RUN, job=job_id, stage=stage, output=recorded).first()
        if job
        else None
    )
    if job is None or run is None:
        session.rollback()
        metrics.STAGE_ATTEMPTS.labels(stage, "discarded").inc()
        return False
    if text is not None:
        texts.store(session, job_id, stage, text)
    events = [(job.event_seq, ev.STAGE_COMPLETED, {"stage": stage, "result": recorded})]
    if job.stages[-1] == stage:
        seq = take_seq(session, _COMPLETE_JOB, job=job_id)
        events.append((seq, ev.JOB_COMPLETED, {"stages": list(job.stages)}))
    record(session, job_id, *events)
    session.commit()
    _completed(job_id, stage, run.attempts, len(events) > 1)
    return True


def _completed(job_id: str, stage: str, attempt: int, job_completed: bool) -> None:
    """Count and log a recorded completion."""
    metrics.STAGE_ATTEMPTS.labels(stage, "completed").inc()
    log.info("stage completed", extra=_fields(job_id, stage, attempt))
    if job_completed:
        metrics.JOBS_FINISHED.labels(JobStatus.COMPLETED.value).inc()
        log.info("job completed", extra=_fields(job_id))


def fail_stage(session: Session, job_id: str, stage: str, message: str) -> bool:
    """Fail `stage` and its job for good: later stages are skipped, earlier results kept.

    Refused (False, nothing recorded) unless the job is active and the stage pending or
    started: a completed stage keeps its result and its job goes on, whatever a stale copy of
    it that ran out of attempts, or a chain whose next stage could not be published, reports.
    """
    seq = take_seq(session, _FAIL_JOB, job=job_id, stage=stage, message=message)
    run = (
        execute(session, _FAIL_RUN, job=job_id, stage=stage, message=message).first()
        if seq
        else None
    )
    if run is None:
        session.rollback()
        return False
    execute(session, SKIP_PENDING, job=job_id)
    record(session, job_id, (seq, ev.JOB_FAILED, {"stage": stage, "error": message}))
    session.commit()
    metrics.STAGE_ATTEMPTS.labels(stage, "failed").inc()
    metrics.JOBS_FINISHED.labels(JobStatus.FAILED.value).inc()
    log.warning(
        "job failed in stage %s: %s", stage, message, extra=_fields(job_id, stage, run.attempts)
    )
    return True


def _fields(job_id: str, stage: str | None = None, attempt: int | None = None) -> dict[str, Any]:
    """A log line's job fields (`gateway.logs`); those not given come from the context."""
    given = {"job_id": job_id, "stage": stage, "attempt": attempt}
    return {key: value for key, value in given.items() if value is not None}
