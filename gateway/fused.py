"""The hot transitions as one PostgreSQL statement each: start a stage, complete a stage.

Each statement does what the portable path (`gateway.jobs`, `gateway.runs`) does in several
round trips, with the same guarantees:

- Lock order: the job row first (`SELECT ... FOR UPDATE`, conditional on its status), then its
  stage run. Every other writer of a job (cancel, fail, retry, the sweeps) locks the job first
  too, so one job's writers queue on that lock and never deadlock.
- All or nothing: nothing is written unless every condition holds. The run update is
  conditional on the job locked, the job update (which takes the next event number) on the run
  updated, the outbox rows on both. A refused transition (a cancelled job, a duplicate
  delivery of a finished stage) writes nothing and returns no row. A statement is atomic on its
  own, so it needs no transaction around it: in autocommit (`Database.transition`) a
  transition costs one round trip; in a caller's transaction it joins it.
- Concurrency (READ COMMITTED): a statement that waited for the job lock re-checks the job's
  status on its newest version, and its updates re-check theirs the same way; the rows it only
  reads (the document, the previous stage's output, the tenant) do not change once a stage may
  start.
- The outbox: the events are inserted by the same statement, numbered from the job's
  `event_seq`, and appended to the stream right after the commit (`outbox.note`).

PostgreSQL only (data-modifying WITH, `FOR UPDATE` in a CTE); `available` says whether a
session can use them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import (
    CursorResult,
    Executable,
    TextClause,
    text,
)
from sqlalchemy.orm import Session

from events import model as ev
from gateway.models import JobStatus, StageStatus, new_id, utcnow
from gateway.outbox import note

_PENDING, _STARTED = StageStatus.PENDING.value, StageStatus.STARTED.value
_PROCESSING, _COMPLETED = JobStatus.PROCESSING.value, JobStatus.COMPLETED.value


def available(session: Session) -> bool:
    """Whether the session's database runs these statements (PostgreSQL)."""
    return session.get_bind().dialect.name == "postgresql"


def _prepared(name: str, sql: str, types: dict[str, str]) -> TextClause:
    """`EXECUTE name(:param, ...)` of `sql` prepared as `name` on the server, with its
    parameters (named :param in `sql`) of these types.

    Prepared once per connection (`_execute`): a statement of this size takes longer to plan
    than to run, and a prepared one is planned once (then a generic plan is kept).
    """
    order = list(types)
    body = re.sub(r"(?<![\w:]):(\w+)", lambda m: f"${order.index(m.group(1)) + 1}", sql)
    _PREPARE[name] = f"PREPARE {name} ({', '.join(types.values())}) AS {body}"
    _DRIVER[name] = f"EXECUTE {name} ({', '.join(['%s'] * len(order))})"
    return text(f"EXECUTE {name} ({', '.join(':' + p for p in order)})")


_PREPARE: dict[str, str] = {}  # statement name -> its PREPARE
_DRIVER: dict[str, str] = {}  # statement name -> its EXECUTE in the driver's own placeholders


def _execute(
    session: Session, name: str, statement: Executable, params: dict[str, Any]
) -> CursorResult[Any]:
    """Run the `_prepared` statement `name`, preparing it first on a connection that has not.

    A prepared statement lives as long as its connection, whatever its transactions do.
    """
    connection = session.connection()
    prepared: set[str] = connection.info.setdefault("gateway_prepared", set())
    if name not in prepared:
        connection.exec_driver_sql(_PREPARE[name])
        prepared.add(name)
    return connection.execute(statement, params)


def _execute_plain(session: Session, name: str, params: tuple[Any, ...]) -> Any | None:
    """The first row of `_prepared` statement `name` run with `params` (in its order) as the
    driver passes them: no SQL compilation, no type processing (JSON comes back decoded by
    the driver, bytea as a memoryview). For the worker's two transitions, which run for every
    stage, where SQLAlchemy's handling of a `text()` cost more than the round trip. Errors are
    still SQLAlchemy's, and a broken connection still invalidates the pool.
    """
    connection = session.connection()
    prepared: set[str] = connection.info.setdefault("gateway_prepared", set())
    if name not in prepared:
        connection.exec_driver_sql(_PREPARE[name])
        prepared.add(name)
    return connection.exec_driver_sql(_DRIVER[name], params).first()


_prepared(  # run by `_execute_plain`
    "gateway_start_stage",
    f"""
    WITH job AS MATERIALIZED (
        SELECT id FROM jobs
        WHERE id = :job AND status IN ('{JobStatus.PENDING.value}', '{_PROCESSING}')
        FOR UPDATE
    ), run AS (
        UPDATE stage_runs
        SET status = '{_STARTED}', attempts = attempts + 1, error = NULL, updated_at = :now
        WHERE job_id = (SELECT id FROM job) AND name = :stage
          AND status IN ('{_PENDING}', '{_STARTED}')
        RETURNING attempts, position
    ), touched AS (
        UPDATE jobs SET status = '{_PROCESSING}', updated_at = :now, event_seq = event_seq + 1
        FROM run WHERE jobs.id = :job
        RETURNING jobs.event_seq, jobs.tenant_id,
                  CASE WHEN run.position = 0 THEN jobs.document_content END AS document
    ), event AS (
        INSERT INTO outbox_events (event_id, event_type, job_id, seq, payload, tenant_id,
                                   created_at)
        SELECT :event_id, '{ev.STAGE_STARTED}', :job, touched.event_seq,
               json_build_object('stage', CAST(:stage AS text), 'attempt', run.attempts),
               touched.tenant_id, :now
        FROM touched, run
    )
    SELECT touched.event_seq, touched.tenant_id, touched.document, run.attempts, run.position,
           file.content AS file_content, file.content_type AS file_type,
           file.filename AS file_name,
           previous.result, previous_text.text,
           first.result AS first_result, first_text.text AS first_text
    FROM touched CROSS JOIN run
    LEFT JOIN job_files AS file ON file.job_id = :job AND run.position = 0
    LEFT JOIN stage_runs AS previous
           ON previous.job_id = :job AND previous.position = run.position - 1
    LEFT JOIN stage_texts AS previous_text
           ON previous_text.job_id = :job AND previous_text.stage = previous.name
    LEFT JOIN stage_runs AS first ON first.job_id = :job AND first.position = 0
                                 AND run.position > 1
    LEFT JOIN stage_texts AS first_text
           ON first_text.job_id = :job AND first_text.stage = first.name
    """,
    {"job": "text", "stage": "text", "now": "timestamptz", "event_id": "text"},
)


def start_stage(session: Session, job_id: str, stage: str) -> Any | None:
    """`runs.start_stage` in one statement: the row of the attempt begun, None if refused.

    The row carries the attempt number, the run's position, and what the stage's input is
    made of: the document and its uploaded file if any (first stage), or the previous stage's
    result and its text stored apart, and from the third stage on the first stage's, which
    holds the document's text.
    """
    event_id, now = new_id(), utcnow()
    row = _execute_plain(session, "gateway_start_stage", (job_id, stage, now, event_id))
    if row is not None:
        event = (row.event_seq, ev.STAGE_STARTED, {"stage": stage, "attempt": row.attempts},
                 event_id, now)  # fmt: skip
        note(session, job_id, row.tenant_id, event)
    return row


_prepared(  # run by `_execute_plain`
    "gateway_complete_stage",
    f"""
    WITH job AS MATERIALIZED (
        SELECT id FROM jobs WHERE id = :job AND status = '{_PROCESSING}' FOR UPDATE
    ), run AS (
        UPDATE stage_runs
        SET status = '{StageStatus.COMPLETED.value}', result = :output, error = NULL,
            updated_at = :now
        WHERE job_id = (SELECT id FROM job) AND name = :stage AND status = '{_STARTED}'
        RETURNING attempts
    ), touched AS (
        UPDATE jobs
        SET updated_at = :now,
            event_seq = event_seq + CASE WHEN stages ->> -1 = :stage THEN 2 ELSE 1 END,
            status = CASE WHEN stages ->> -1 = :stage THEN '{_COMPLETED}' ELSE status END
        FROM run WHERE jobs.id = :job
        RETURNING jobs.event_seq, jobs.tenant_id, jobs.stages, jobs.status
    ), stored_text AS (
        INSERT INTO stage_texts (job_id, stage, text)
        SELECT :job, :stage, :text FROM run WHERE CAST(:text AS text) IS NOT NULL
    ), events AS (
        INSERT INTO outbox_events (event_id, event_type, job_id, seq, payload, tenant_id,
                                   created_at)
        SELECT :event_id, '{ev.STAGE_COMPLETED}', :job,
               event_seq - CASE WHEN status = '{_COMPLETED}' THEN 1 ELSE 0 END,
               CAST(:payload AS json), tenant_id, :now
        FROM touched
        UNION ALL
        SELECT :final_id, '{ev.JOB_COMPLETED}', :job, event_seq,
               json_build_object('stages', stages), tenant_id, :now
        FROM touched WHERE status = '{_COMPLETED}'
    )
    SELECT touched.event_seq, touched.tenant_id, touched.stages, touched.status, run.attempts
    FROM touched CROSS JOIN run
    """,
    {
        "job": "text",
        "stage": "text",
        "now": "timestamptz",
        "output": "json",
        "text": "text",
        "event_id": "text",
        "final_id": "text",
        "payload": "json",
    },
)


def complete_stage(
    session: Session, job_id: str, stage: str, recorded: dict[str, Any], text: str | None
) -> tuple[int, bool] | None:
    """`runs.complete_stage` in one statement: (attempt, whether the job completed), or None.

    `recorded` is the result to store and to report, `text` the text to store apart (or None).
    """
    event_id, final_id, now = new_id(), new_id(), utcnow()
    payload = {"stage": stage, "result": recorded}
    params = (job_id, stage, now, json.dumps(recorded), text, event_id, final_id,
              json.dumps(payload))  # fmt: skip
    row = _execute_plain(session, "gateway_complete_stage", params)
    if row is None:
        return None
    finished = row.status == _COMPLETED
    events = [(row.event_seq - finished, ev.STAGE_COMPLETED, payload, event_id, now)]
    if finished:
        events.append((row.event_seq, ev.JOB_COMPLETED, {"stages": row.stages}, final_id, now))
    note(session, job_id, row.tenant_id, *events)
    return int(row.attempts), finished


# Creating a job: the job, its runs, its uploaded file if any and `job.created`, inserted by one
# statement; under an Idempotency-Key (`_CREATE_ONCE`), with the key's lock, look-up and row.
_CREATE_COLUMNS = """
    (id, document_name, document_type, document_content, stages, providers, status,
     error_stage, error_message, dispatched_at, event_seq, created_at, updated_at, tenant_id)
"""
_CREATE_VALUES = f"""
    :job, :name, :type, :content, :stages, :providers, '{JobStatus.PENDING.value}',
    NULL, NULL, :now, 1, :now, :now, :tenant
"""
_CREATE_REST = f"""
    runs AS (
        INSERT INTO stage_runs (job_id, position, name, status, task_id, attempts, failures,
                                result, error, updated_at)
        SELECT job.id, run.position - 1, run.name, '{_PENDING}', run.task_id, 0, 0,
               CAST('null' AS json), NULL, NULL
        FROM job, unnest(:names, :task_ids) WITH ORDINALITY AS run(name, task_id, position)
    ), file AS (
        INSERT INTO job_files (job_id, content, content_type, filename, size)
        SELECT job.id, :file, :file_type, :file_name, octet_length(:file)
        FROM job WHERE :file IS NOT NULL
    ), event AS (
        INSERT INTO outbox_events (event_id, event_type, job_id, seq, payload, tenant_id,
                                   created_at)
        SELECT :event_id, '{ev.JOB_CREATED}', job.id, 1, :payload, :tenant, :now FROM job
    )
"""
_CREATE_TYPES = {
    "job": "text", "name": "text", "type": "text", "content": "text", "stages": "json",
    "providers": "json", "now": "timestamptz", "tenant": "text", "names": "text[]",
    "task_ids": "text[]", "event_id": "text", "payload": "json", "file": "bytea",
    "file_type": "text", "file_name": "text",
}  # fmt: skip
_CREATE = _prepared(
    "gateway_create_job",
    f"""
    WITH job AS (
        INSERT INTO jobs {_CREATE_COLUMNS} VALUES ({_CREATE_VALUES}) RETURNING id
    ), {_CREATE_REST}
    SELECT true AS held, id AS created, NULL AS fingerprint, NULL AS prior_job FROM job
    """,
    _CREATE_TYPES,
)
_KEY_TYPES = {
    "lock": "bigint", "owner": "text", "key": "text", "fingerprint": "text",
    "expires": "timestamptz",
}  # fmt: skip
# The key's advisory lock (held until the statement's transaction ends) tells a request under
# it that is still being stored (`held` false: 409) from one already committed (`prior_job`).
# An expired row is replaced; a row committed after this statement's snapshot was taken
# (invisible to `prior`) makes the insert do nothing: `created` is then NULL, and the caller
# looks again.
_CREATE_ONCE = _prepared(
    "gateway_create_job_once",
    f"""
    WITH lock AS MATERIALIZED (
        SELECT pg_try_advisory_xact_lock(:lock) AS held
    ), prior AS MATERIALIZED (
        SELECT fingerprint, job_id FROM idempotency_keys, lock
        WHERE lock.held AND tenant_id = :owner AND key = :key AND expires_at > :now
    ), remembered AS (
        INSERT INTO idempotency_keys AS k (tenant_id, key, fingerprint, job_id, created_at,
                                           expires_at)
        SELECT :owner, :key, :fingerprint, :job, :now, :expires FROM lock
        WHERE lock.held AND NOT EXISTS (SELECT FROM prior)
        ON CONFLICT (tenant_id, key) DO UPDATE
        SET fingerprint = excluded.fingerprint, job_id = excluded.job_id,
            created_at = excluded.created_at, expires_at = excluded.expires_at
        WHERE k.expires_at <= excluded.created_at
        RETURNING job_id
    ), job AS (
        INSERT INTO jobs {_CREATE_COLUMNS} SELECT {_CREATE_VALUES} FROM remembered
        RETURNING id
    ), {_CREATE_REST}
    SELECT lock.held, (SELECT id FROM job) AS created, prior.fingerprint,
           prior.job_id AS prior_job
    FROM lock LEFT JOIN prior ON true
    """,
    _CREATE_TYPES | _KEY_TYPES,
)


def create_job(
    session: Session,
    columns: dict[str, Any],
    task_ids: list[str],
    payload: dict[str, Any],
    upload: tuple[bytes, str | None, str | None] | None,
    key: dict[str, Any] | None = None,
) -> Any:
    """Insert a job (`columns`, as `gateway.jobs.create_job` built them) with its runs, their
    `task_ids` in stage order, its `upload` (content, type, name) and its `job.created` event
    carrying `payload`; noted for the stream once the session commits.

    With `key` (lock, owner, key, fingerprint, expires: `gateway.idempotency`), only if the
    key is free: the row says whether the lock was `held`, the id `created` (NULL if nothing
    was), and the `fingerprint` and `prior_job` of the live key found instead.
    """
    event_id, now = new_id(), columns["created_at"]
    content, file_type, file_name = upload or (None, None, None)
    params = {
        "job": columns["id"], "name": columns["document_name"],
        "type": columns["document_type"], "content": columns["document_content"],
        "stages": json.dumps(columns["stages"]), "providers": json.dumps(columns["providers"]),
        "now": now, "tenant": columns["tenant_id"], "names": list(columns["stages"]),
        "task_ids": task_ids, "event_id": event_id, "payload": json.dumps(payload),
        "file": content, "file_type": file_type, "file_name": file_name,
    }  # fmt: skip
    if key is None:
        row = _execute(session, "gateway_create_job", _CREATE, params).one()
    else:
        row = _execute(session, "gateway_create_job_once", _CREATE_ONCE, params | key).one()
    if row.created is not None:
        event = (1, ev.JOB_CREATED, payload, event_id, now)
        note(session, str(columns["id"]), columns["tenant_id"], event)
    return row
