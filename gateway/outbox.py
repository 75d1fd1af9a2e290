"""Transactional outbox: events are stored with the change they report and appended after commit.

`record` adds an event to the caller's transaction, numbered in its job's order (`seq`, taken
from the job row the transaction has already locked). Right after the commit, the `Outbox`
appends the transaction's events to the stream, outside any transaction, in one round trip.

Redis itself keeps each job's events in order: a small script appends event `seq` only right
after event `seq - 1`, remembering the job's last number under a key of its own. An append that
lost a race or met an outage never lets a later event overtake an earlier one; whatever the
committing process could not append waits for the relay, which appends rows older than its
grace in id order (each job's in seq order), then marks them published in one UPDATE. The
script drops a number already appended, so in normal operation each event is appended exactly
once; after a lost key (Redis wiped) delivery falls back to at-least-once, `event_id` intact.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import redis
from sqlalchemy import CursorResult, bindparam, delete, func, insert, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

from events.model import JOB_FAILED, TERMINAL_TYPES, Event
from events.outage import Outage
from gateway.models import JOBS, OUTBOX, new_id, utcnow

log = logging.getLogger(__name__)

_RECORDED = "outbox_recorded"
_INSERT = insert(OUTBOX)
_TENANT = select(JOBS.c.tenant_id).where(JOBS.c.id == bindparam("job"))

# How long Redis remembers a job's last appended number: a day while the job may still emit,
# a minute once the relay has marked its terminal event (late duplicates die within it).
ORDER_TTL = 86_400
FINISHED_ORDER_TTL = 60
_FINAL_TYPES = tuple(t for t in TERMINAL_TYPES if t != JOB_FAILED)

# Appends one entry if it is the job's next; returns 1 if appended, 0 if already appended,
# -1 if an earlier event is missing. ARGV: seq, force, maxlen, key ttl, field/value pairs.
# With force (the relay, which appends a job's leftovers in order) a gap does not block.
APPEND_IN_ORDER = """
redis.replicate_commands()
local last = tonumber(redis.call('GET', KEYS[1]))
local seq = tonumber(ARGV[1])
if last and seq <= last then return 0 end
if ARGV[2] ~= '1' and seq ~= (last or 0) + 1 then return -1 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 5))
redis.call('SET', KEYS[1], seq, 'EX', ARGV[4])
return 1
"""


@dataclass(frozen=True)
class Recorded:
    """An event of a transaction, with its place in its job's order."""

    seq: int
    event: Event


def record(session: Session, job_id: str, *events: tuple[int, str, dict[str, Any]]) -> None:
    """Insert `job_id`'s events, each (seq, event_type, payload), in the caller's transaction.

    The caller holds the job row lock and took each seq from the job's `event_seq`. Each event
    carries the job's tenant, read from the row the transaction has locked.
    """
    tenant = session.connection().execute(_TENANT, {"job": job_id}).scalar()
    now = utcnow()
    numbered = [(seq, kind, payload, new_id(), now) for seq, kind, payload in events]
    rows = [
        {
            "event_id": event_id,
            "event_type": kind,
            "job_id": job_id,
            "seq": seq,
            "payload": payload,
            "tenant_id": tenant,
            "created_at": at,
        }
        for seq, kind, payload, event_id, at in numbered
    ]
    session.connection().execute(_INSERT, rows)
    note(session, job_id, tenant, *numbered)


def note(
    session: Session,
    job_id: str,
    tenant: str | None,
    *events: tuple[int, str, dict[str, Any], str, datetime],
) -> None:
    """Remember events the caller's statement inserted, each (seq, event_type, payload,
    event_id, timestamp), to append them to the stream once the session commits."""
    session.info.setdefault(_RECORDED, []).extend(
        Recorded(seq, Event(kind, job_id, payload, event_id, at, tenant))
        for seq, kind, payload, event_id, at in events
    )


def overdue(session: Session, older_than: timedelta) -> int:
    """Events recorded more than `older_than` ago and still not on the stream: the relay's backlog."""
    query = select(func.count()).where(
        OUTBOX.c.published_at.is_(None), OUTBOX.c.created_at < utcnow() - older_than
    )
    return int(session.scalar(query) or 0)


class Outbox:
    """Appends committed events to the stream, in per-job order, and relays what was left."""

    def __init__(
        self, sessions: sessionmaker[Session], client: redis.Redis, stream: str, maxlen: int
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.stream = stream
        self.maxlen = maxlen
        # Shared with the pipeline's broker calls: the same Redis serves both.
        self.outage = Outage(log, "Redis")
        self._script = client.register_script(APPEND_IN_ORDER)

    def order_key(self, job_id: str) -> str:
        """The key holding the number of the job's last appended event."""
        return f"{self.stream}:order:{job_id}"

    def publish_after_commit(self, *more: sessionmaker[Session]) -> None:
        """Append each committed transaction's events right after its commit, for the sessions
        of this outbox and of `more` (those of `Database.transition`)."""
        for sessions in (self.sessions, *more):
            sa_event.listen(sessions, "after_commit", self._after_commit)
            sa_event.listen(sessions, "after_rollback", _forget)

    def append(self, events: Sequence[Recorded], *, force: bool = False) -> list[int]:
        """Append `events` (each job's in seq order) in one round trip; the script's answer for each."""
        if not events:
            return []
        pipe = self.client.pipeline(transaction=False)
        for recorded in events:
            fields = [item for pair in recorded.event.to_fields().items() for item in pair]
            keys = (self.order_key(recorded.event.job_id), self.stream)
            args = (recorded.seq, int(force), self.maxlen, ORDER_TTL, *fields)
            pipe.evalsha(self._script.sha, len(keys), *keys, *args)  # type: ignore[arg-type]
        replies = pipe.execute(raise_on_error=False)
        if any(isinstance(r, redis.exceptions.NoScriptError) for r in replies):
            self.client.script_load(APPEND_IN_ORDER)  # Redis restarted empty: load, then again
            return self.append(events, force=force)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return [int(reply) for reply in replies]

    def publish_pending(self, grace: float, batch: int = 500) -> int:
        """Relay pass: append unpublished events older than `grace` seconds; return how many.

        Rows are read and marked in two short transactions with the appends between them,
        so no row lock is held across a network call. A row the stream already has is only
        marked; a failed mark leaves the rows to the next pass, which finds them appended.
        """
        unpublished = OUTBOX.c.published_at.is_(None)
        # Bounded by id, not by age: a job's ids grow in commit order, so a row is never taken
        # without its job's earlier ones, whatever the clocks of the hosts that stamped them.
        bound = (
            select(OUTBOX.c.id)
            .where(unpublished, OUTBOX.c.created_at < utcnow() - timedelta(seconds=grace))
            .order_by(OUTBOX.c.id)
            .limit(batch)
            .subquery()
        )
        with self.sessions() as session:
            rows = session.execute(
                select(OUTBOX)
                .where(unpublished, OUTBOX.c.id <= select(func.max(bound.c.id)).scalar_subquery())
                .order_by(OUTBOX.c.id)
                .limit(batch)
            ).all()
        if not rows:
            return 0
        events = [
            Recorded(
                row.seq,
                Event(
                    row.event_type,
                    row.job_id,
                    row.payload,
                    row.event_id,
                    row.created_at,
                    row.tenant_id,
                ),
            )
            for row in rows
        ]
        started = time.monotonic()
        try:
            appended = sum(r == 1 for r in self.append(self._not_appended(events), force=True))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.outage.down(exc, started)
            return 0
        self.outage.up(started)
        with self.sessions() as session, session.begin():
            session.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_([row.id for row in rows]))
                .values(published_at=utcnow())
            )
        # A failed job may be retried: its key keeps its day, so the retry's events append
        # at once rather than waiting for the relay.
        finished = {r.event.job_id for r in events if r.event.event_type in _FINAL_TYPES}
        self._forget_order(finished)
        return appended

    def _not_appended(self, events: Sequence[Recorded]) -> list[Recorded]:
        """`events` less those numbered up to their job's last appended one, which the script
        would drop: the committing process appends nearly every event itself, so the relay
        reads one key per job (pipelined) instead of sending each event again to find that
        out. A job whose key is gone has all its events sent, as before."""
        job_ids = list(dict.fromkeys(recorded.event.job_id for recorded in events))
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.get(self.order_key(job_id))
        last = {job: int(seq or 0) for job, seq in zip(job_ids, pipe.execute(), strict=True)}
        return [recorded for recorded in events if recorded.seq > last[recorded.event.job_id]]

    def purge_published(self, older_than: timedelta) -> int:
        """Delete rows marked published more than `older_than` ago; return how many."""
        with self.sessions() as session, session.begin():
            result = session.execute(
                delete(OUTBOX).where(OUTBOX.c.published_at < utcnow() - older_than)
            )
        return cast(CursorResult[Any], result).rowcount

    def _after_commit(self, session: Session) -> None:
        # Runs after the commit, so nothing here may raise: the change is stored whatever
        # happens to its events, and the relay appends what this could not.
        recorded = session.info.pop(_RECORDED, ())
        if not recorded or not self.outage.worth_trying():
            return
        started = time.monotonic()
        try:
            self.append(recorded)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.outage.down(exc, started)
        except Exception:  # Redis refused the command, or a bug: the relay retries, loudly
            log.exception("appending %d committed events failed; the relay will", len(recorded))
        else:
            self.outage.up(started)

    def _forget_order(self, job_ids: set[str]) -> None:
        """Let the order keys of finished jobs expire soon: nothing follows a terminal event."""
        if not job_ids:
            return
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.expire(self.order_key(job_id), FINISHED_ORDER_TTL)
        with contextlib.suppress(redis.RedisError):  # else they expire after ORDER_TTL
            pipe.execute()


def _forget(session: Session, *_: Any) -> None:
    session.info.pop(_RECORDED, None)
