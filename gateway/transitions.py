"""Conditional updates: the only way a job or its stage runs change, each saying whether it applied.

The commit rule of the service layer (`jobs`, `runs`, `dispatch`): each function takes the
caller's session and is one unit of work on it. A function that writes commits before it
returns, its changes made of these statements; when a change is refused (a conditional update
that did not apply) it rolls back and says so (False or None) or raises a GatewayError, and
nothing is half-written. A function that only reads does not commit. So a caller never
commits a service function's work, and holds no transaction open across a broker or Redis
call. Helpers that add to the caller's transaction (`outbox.record`, `texts.store`) never
commit.

Lock order: a transaction that records an event updates its job row first (`job_update`), which
takes the job's row lock and its next event number; one job's writers queue on that lock, so
the numbers, the outbox ids and the stream all follow the lifecycle, and no two writers of a
job can deadlock. Statements are built once with bind parameters (:job, :stage, :now, ...)
and run on the session's connection: compiled once per process, and clear of the ORM, which
writes do not need.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, Update, bindparam, update
from sqlalchemy.orm import Session

from gateway.models import JOBS, RUNS, StageStatus, utcnow


# These two run at import, building the service modules' statements: mutation testing changes
# what they build by hand (tests/mutation.py), not their code.
# pragma: no mutate start
def job_update(when: Sequence[str], **values: Any) -> Update:
    """UPDATE job :job if its status is in `when`, returning the event number it took."""
    return (
        update(JOBS)
        .where(JOBS.c.id == bindparam("job"), JOBS.c.status.in_(when))
        .values(updated_at=bindparam("now"), event_seq=JOBS.c.event_seq + 1, **values)
        .returning(JOBS.c.event_seq)
    )


def runs_update(when: Sequence[StageStatus], *, one_stage: bool = True, **values: Any) -> Update:
    """UPDATE the runs of job :job (only stage :stage's if `one_stage`) whose status is in `when`."""
    statement = update(RUNS).where(
        RUNS.c.job_id == bindparam("job"), RUNS.c.status.in_([s.value for s in when])
    )
    if one_stage:
        statement = statement.where(RUNS.c.name == bindparam("stage"))
    return statement.values(updated_at=bindparam("now"), **values)


# pragma: no mutate end


def execute(session: Session, statement: Executable, **params: Any) -> CursorResult[Any]:
    """Run a prebuilt statement on the session's connection (in its transaction), at :now."""
    result = session.connection().execute(statement, {"now": utcnow(), **params})
    return cast(CursorResult[Any], result)


def take_seq(session: Session, statement: Update, **params: Any) -> int:
    """Run a `job_update`: the event number it took, or 0 if the job's status refused it."""
    return int(execute(session, statement, **params).scalar() or 0)


# Every run still pending when its job ends for good (failed, cancelled) is skipped.
SKIP_PENDING = runs_update(
    (StageStatus.PENDING,), one_stage=False, status=StageStatus.SKIPPED.value
)
