"""Jobs: create, read, list and cancel, for the API. The service layer knows nothing of HTTP.

Transactions follow the service layer's commit rule (`gateway.transitions`).

Ownership: a job belongs to the tenant that created it. Reads and cancel take `tenant`: given,
they see that tenant's jobs only, and another tenant's job is not found, by the same indexed
lookup that finds no unknown id, so the two cannot be told apart, not even by their timing.
None (AUTH_MODE=off, and the workers) means every job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, insert, select, tuple_, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from events import model as ev
from gateway import fused, idempotency, metrics
from gateway.cursor import decode_cursor, encode_cursor
from gateway.errors import (
    IdempotencyInFlightError,
    IdempotencyMismatchError,
    InvalidPipelineError,
    InvalidTransitionError,
    JobNotFoundError,
)
from gateway.idempotency import IdempotentRequest
from gateway.models import (
    ACTIVE_JOB_STATUSES,
    FILES,
    JOBS,
    RUNS,
    Job,
    JobStatus,
    StageStatus,
    new_id,
    utcnow,
)
from gateway.outbox import record
from gateway.stages import VALID_PIPELINES
from gateway.transitions import SKIP_PENDING, execute, job_update, runs_update, take_seq
from providers import registry

log = logging.getLogger(__name__)

_INSERT_JOB = insert(JOBS)
_INSERT_RUNS = insert(RUNS)
_INSERT_FILE = insert(FILES)
_RUN_COLUMNS = [c.label(f"run_{c.name}") for c in RUNS.columns if c.name != "job_id"]
# Reads leave the document out: it may be megabytes, no representation shows it, and the
# extraction stage reads it itself.
_JOB_COLUMNS = [c for c in JOBS.columns if c.name != "document_content"]
_JOB_FIELDS = [c.name for c in _JOB_COLUMNS]
_RUN_FIELDS = [c.name[len("run_") :] for c in _RUN_COLUMNS]
_WITHOUT_DOCUMENT = defer(Job.document_content, raiseload=True)
# A job and its runs in one statement.
_JOB_WITH_RUNS = (
    select(*_JOB_COLUMNS, *_RUN_COLUMNS)
    .join_from(JOBS, RUNS, RUNS.c.job_id == JOBS.c.id)
    .where(JOBS.c.id == bindparam("job"))
    .order_by(RUNS.c.position)
)
_TENANT_JOB_WITH_RUNS = _JOB_WITH_RUNS.where(JOBS.c.tenant_id == bindparam("tenant"))
_CANCEL_RUNNING = runs_update(
    (StageStatus.STARTED,), one_stage=False, status=StageStatus.CANCELLED.value
)


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """A stage run as stored when it was read (same fields as StageRun)."""

    job_id: str
    position: int
    name: str
    status: str
    task_id: str
    attempts: int
    failures: int
    result: dict[str, Any] | None
    error: str | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """A job and its runs as stored when they were read (same fields as Job): cheap to build,
    nothing to track."""

    id: str
    document_name: str
    document_type: str
    document_content: str | None  # None when read back: reads leave the document out
    stages: list[str]
    providers: dict[str, str] | None  # the client's choice per stage; None: the configured ones
    status: str
    error_stage: str | None
    error_message: str | None
    dispatched_at: datetime | None
    event_seq: int
    created_at: datetime
    updated_at: datetime
    tenant_id: str | None
    runs: list[RunSnapshot]


@dataclass(frozen=True)
class DocumentFile:
    """An uploaded document: its bytes, and the type and name the client declared."""

    content: bytes
    content_type: str | None = None
    filename: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of jobs, newest first, and the cursor of the next page (None on the last)."""

    jobs: Sequence[Job]
    next_cursor: str | None


@dataclass(frozen=True)
class Creation:
    """A job as `create_job_once` answers it: new, or created earlier under the same key."""

    job: JobSnapshot
    replayed: bool


@dataclass(frozen=True)
class Cancellation:
    """A cancelled job and the Celery task ids of its stages that had not finished."""

    job: JobSnapshot
    unfinished_task_ids: list[str]


def create_job(
    session: Session,
    *,
    document_name: str,
    document_type: str,
    document_content: str = "",
    stages: list[str],
    tenant: str | None = None,
    providers: dict[str, str] | None = None,
    idempotent: IdempotentRequest | None = None,
    document_file: DocumentFile | None = None,
) -> JobSnapshot:
    """Store a pending job of `tenant`, its stage runs, `job.created` and the idempotency key
    it is created under (if any) in one transaction.

    The document is `document_content`, a text, or `document_file`, an upload stored with the
    job in the same transaction (its extraction reads the bytes; the job's text is then empty).

    `providers` names the provider of some of its stages (the others run the configured
    one); InvalidPipelineError for a stage the job does not run or a name not registered.
    The job is stored already claimed for dispatch: the caller sends its chain right after
    the commit, and calls `dispatch.release_dispatch` if the broker refused it.

    On PostgreSQL, without a key, all of it is one statement (`fused.create_job`).
    """
    job = _new_job(
        document_name=document_name,
        document_type=document_type,
        document_content=document_content,
        stages=stages,
        tenant=tenant,
        providers=providers,
    )
    if fused.available(session) and idempotent is None:
        _create_fused(session, job, document_file)
    else:
        _insert(session, job, document_file)
        if idempotent is not None:
            idempotency.remember(session, tenant, idempotent, job.id, job.created_at)
    session.commit()
    return _created(job)


def _new_job(
    *,
    document_name: str,
    document_type: str,
    document_content: str = "",
    stages: list[str],
    tenant: str | None = None,
    providers: dict[str, str] | None = None,
) -> JobSnapshot:
    """A new pending job and its runs, checked, not stored yet."""
    if stages not in VALID_PIPELINES:
        raise InvalidPipelineError(f"Invalid stage combination {stages!r}.")
    problems = provider_problems(stages, providers or {})
    if problems:
        raise InvalidPipelineError(" ".join(problems))
    now = utcnow()
    job_id = new_id()
    runs = [
        RunSnapshot(
            job_id=job_id,
            position=i,
            name=name,
            status=StageStatus.PENDING.value,
            task_id=new_id(),
            attempts=0,
            failures=0,
            result=None,
            error=None,
            updated_at=None,
        )
        for i, name in enumerate(stages)
    ]
    return JobSnapshot(
        id=job_id,
        document_name=document_name,
        document_type=document_type,
        document_content=document_content,
        stages=list(stages),
        providers=dict(providers) if providers else None,
        status=JobStatus.PENDING.value,
        error_stage=None,
        error_message=None,
        dispatched_at=now,
        event_seq=1,
        created_at=now,
        updated_at=now,
        tenant_id=tenant,
        runs=runs,
    )


def _columns(job: JobSnapshot) -> dict[str, Any]:
    return {c.name: getattr(job, c.name) for c in JOBS.columns}


def _task_ids(job: JobSnapshot) -> list[str]:
    return [run.task_id for run in job.runs]


def _payload(job: JobSnapshot) -> dict[str, Any]:
    """The payload of the job's `job.created`."""
    return {
        "document_name": job.document_name,
        "document_type": job.document_type,
        "stages": job.stages,
    }


def _create_fused(
    session: Session,
    job: JobSnapshot,
    document_file: DocumentFile | None,
    key: dict[str, Any] | None = None,
) -> Any:
    """`fused.create_job` for a new job: its row, runs, file and event in one statement."""
    upload = None
    if document_file is not None:
        upload = document_file.content, document_file.content_type, document_file.filename
    return fused.create_job(session, _columns(job), _task_ids(job), _payload(job), upload, key)


def _insert(session: Session, job: JobSnapshot, document_file: DocumentFile | None) -> None:
    """The portable create: the job, its runs, its file and `job.created`, one statement each."""
    connection = session.connection()
    connection.execute(_INSERT_JOB, _columns(job))
    connection.execute(
        _INSERT_RUNS, [{c.name: getattr(r, c.name) for c in RUNS.columns} for r in job.runs]
    )
    if document_file is not None:
        connection.execute(
            _INSERT_FILE,
            {
                "job_id": job.id,
                "content": document_file.content,
                "content_type": document_file.content_type,
                "filename": document_file.filename,
                "size": len(document_file.content),
            },
        )
    record(session, job.id, (1, ev.JOB_CREATED, _payload(job)))


def _created(job: JobSnapshot) -> JobSnapshot:
    """Count and log a job whose create committed."""
    metrics.JOBS_CREATED.inc()
    log.info("job created, stages %s", ",".join(job.stages), extra={"job_id": job.id})
    return job


def provider_problems(stages: Sequence[str], chosen: dict[str, str]) -> list[str]:
    """What is wrong with a job's choice of providers: one message per bad stage or name.

    Each message lists the valid choices, so that a client can correct its request.
    """
    problems = []
    for stage, name in chosen.items():
        if stage not in stages:
            problems.append(
                f"Providers given for stage {stage!r}, which the job does not run; "
                f"its stages are: {', '.join(stages)}."
            )
            continue
        choices = registry.available(stage)
        if name not in choices:
            problems.append(
                f"Unknown {stage} provider {name!r}. Valid {stage} providers are: "
                f"{', '.join(choices)}."
            )
    return problems


def create_job_once(
    session: Session,
    request: IdempotentRequest,
    *,
    tenant: str | None = None,
    **fields: Any,
) -> Creation:
    """`create_job` under an idempotency key: the job created under it before, if it is live.

    IdempotencyMismatchError if the key was used with another body, IdempotencyInFlightError
    while another request under it is in its transaction (gateway.idempotency).
    """
    for _ in range(2):
        try:
            if fused.available(session):
                replay = _create_once_fused(session, request, tenant, **fields)
                if isinstance(replay, JobSnapshot):
                    return Creation(replay, replayed=False)
                if replay is not None:
                    return Creation(get_job(session, replay, tenant), replayed=True)
                continue
            job_id = idempotency.claim(session, tenant, request)
            if job_id is not None:
                session.rollback()
                return Creation(get_job(session, job_id, tenant), replayed=True)
            job = create_job(session, tenant=tenant, idempotent=request, **fields)
            return Creation(job, replayed=False)
        except IntegrityError:
            # A request under the same key committed its job between our look and our
            # insert (SQLite; or a race for a key that had just expired): read it again.
            session.rollback()
    raise IdempotencyInFlightError()


def _create_once_fused(
    session: Session,
    request: IdempotentRequest,
    tenant: str | None,
    *,
    document_file: DocumentFile | None = None,
    **fields: Any,
) -> JobSnapshot | str | None:
    """`create_job_once` in one statement: the job created, or the id of the one created
    before under the key, or None if that one committed while the statement ran (look again).

    The errors are `idempotency.claim`'s.
    """
    job = _new_job(tenant=tenant, **fields)
    key = idempotency.statement_key(tenant, request, job.created_at)
    row = _create_fused(session, job, document_file, key)
    if row.created is not None:
        session.commit()
        return _created(job)
    session.rollback()
    if not row.held:
        raise IdempotencyInFlightError()
    if row.prior_job is None:
        return None
    if row.fingerprint != request.fingerprint:
        raise IdempotencyMismatchError()
    return str(row.prior_job)


def provider_choices(configured: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per stage, the provider a job runs unless it names one (`configured`), and every name
    it may name."""
    return {
        stage: {"default": configured[stage], "available": registry.available(stage)}
        for stage in configured
    }


def get_job(session: Session | Connection, job_id: str, tenant: str | None = None) -> JobSnapshot:
    """The job with this id (of `tenant` if given) and its runs, as stored now, in one statement.

    JobNotFoundError if there is none, a malformed id and another tenant's job included. Its
    document is not read (None here).
    """
    try:
        uuid.UUID(job_id)
    except (ValueError, TypeError, AttributeError):
        raise JobNotFoundError() from None
    connection = session.connection() if isinstance(session, Session) else session
    if tenant is None:
        rows = connection.execute(_JOB_WITH_RUNS, {"job": job_id}).all()
    else:
        statement = _TENANT_JOB_WITH_RUNS
        rows = connection.execute(statement, {"job": job_id, "tenant": tenant}).all()
    if not rows:
        raise JobNotFoundError()
    # By position: the job's columns, then the run's (the statement's order)
    width = len(_JOB_FIELDS)
    runs = [
        RunSnapshot(job_id=job_id, **dict(zip(_RUN_FIELDS, row[width:], strict=True)))
        for row in rows
    ]
    columns = dict(zip(_JOB_FIELDS, rows[0][:width], strict=True))
    return JobSnapshot(**columns, document_content=None, runs=runs)


def list_jobs(
    session: Session,
    *,
    statuses: Sequence[str] = (),
    document_type: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    tenant: str | None = None,
) -> Page:
    """A page of jobs (of `tenant` if given), newest first; each status is read from its own
    index range, then merged.

    The jobs' documents are not read: touching one raises.
    """
    order = (Job.created_at.desc(), Job.id.desc())

    def ranged(query: Select[Any]) -> Select[Any]:
        if tenant is not None:
            query = query.where(Job.tenant_id == tenant)
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
    jobs = session.scalars(query.options(_WITHOUT_DOCUMENT)).all()
    if len(jobs) <= limit:
        return Page(jobs, None)
    last = jobs[limit - 1]
    return Page(jobs[:limit], encode_cursor(last.created_at, last.id))


def cancel_job(session: Session, job_id: str, tenant: str | None = None) -> Cancellation:
    """Cancel a pending or processing job (of `tenant` if given); InvalidTransitionError from
    any other status."""
    while True:
        previous = get_job(session, job_id, tenant).status
        if previous not in ACTIVE_JOB_STATUSES:
            session.rollback()
            raise InvalidTransitionError(f"Cannot cancel job from status {previous}")
        # Conditional on the status we read: if a worker moved the job meanwhile, read again.
        cancel = job_update((previous,), status=JobStatus.CANCELLED.value)
        seq = take_seq(session, cancel, job=job_id)
        if seq:
            break
        session.rollback()
    execute(session, _CANCEL_RUNNING, job=job_id)
    execute(session, SKIP_PENDING, job=job_id)
    record(session, job_id, (seq, ev.JOB_CANCELLED, {"previous_status": previous}))
    session.commit()
    metrics.JOBS_FINISHED.labels(JobStatus.CANCELLED.value).inc()
    log.info("job cancelled (was %s)", previous, extra={"job_id": job_id})
    job = get_job(session, job_id)
    unfinished = [
        run.task_id
        for run in job.runs
        if run.status in (StageStatus.CANCELLED.value, StageStatus.SKIPPED.value)
    ]
    return Cancellation(job, unfinished)
