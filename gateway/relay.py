"""The relay: every few moments, append leftover events, dispatch stranded jobs, resume stalled ones.

Requests and workers publish their events right after they commit; the relay is the safety net
for what they could not hand over (Redis down, a process killed between commit and append), for
jobs whose chain the API could not send to the broker, for jobs whose awaited stage message
the broker lost (after LOST_STAGE_TIMEOUT seconds), and for active jobs that nothing moved for
STALLED_JOB_TIMEOUT seconds. It survives Redis and database outages: each one is
logged once, and the loop keeps its pace until the dependency returns.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from events.outage import Outage
from gateway import idempotency
from gateway.outbox import Outbox
from gateway.services import get_services

log = logging.getLogger(__name__)

# Seconds between clean-ups of published outbox rows and expired idempotency keys; rows pile
# up slowly, a scan is not free.
PURGE_EVERY = 60.0
RESUME_EVERY = 30.0  # seconds between stalled-job sweeps at most (a quarter of the timeout if less)


class Dispatcher(Protocol):
    """What the relay needs of the pipeline: send the chains the API could not send, resume stalls."""

    def dispatch_undispatched(self, grace: float) -> int: ...

    def resume_stalled(self, bound_seconds: float) -> int: ...

    def resend_lost(self, bound_seconds: float) -> int: ...


@dataclass(frozen=True)
class RelayPass:
    """What one pass did."""

    published: int = 0
    dispatched: int = 0
    purged: int = 0
    resumed: int = 0
    lost: int = 0


class Relay:
    """Publishes leftover outbox rows and dispatches stranded jobs every `interval` seconds."""

    def __init__(
        self,
        outbox: Outbox,
        dispatcher: Dispatcher,
        *,
        interval: float,
        dispatch_grace: float,
        retention: float = 0.0,
        stalled_timeout: float = 0.0,
        lost_timeout: float = 0.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.outbox = outbox
        self.dispatcher = dispatcher
        self.interval = interval
        self.dispatch_grace = dispatch_grace
        self.retention = retention
        self.stalled_timeout = stalled_timeout
        self.lost_timeout = lost_timeout
        self.stop = stop or threading.Event()
        self.database = Outage(log, "database")
        self._failing = False
        self._next_purge = 0.0
        self._next_resume = 0.0
        self._next_lost_check = 0.0

    @classmethod
    def from_app(cls, app: Flask, stop: threading.Event | None = None) -> Relay:
        """A relay over the app's outbox and pipeline, paced by its settings."""
        services = get_services(app)
        settings = services.settings
        return cls(
            services.outbox,
            services.pipeline,
            interval=settings.relay_interval,
            dispatch_grace=settings.dispatch_grace,
            retention=settings.outbox_retention,
            stalled_timeout=settings.stalled_job_timeout,
            lost_timeout=settings.lost_stage_timeout,
            stop=stop,
        )

    def run_once(self) -> RelayPass:
        """One pass: append pending events, dispatch stranded jobs; resume stalls, purge published
        events and expired idempotency keys when due.

        Redis failures are absorbed (and logged once) by the outbox and the pipeline;
        database failures propagate.
        """
        # The committing process appends its own events and sends its own chains; the relay
        # leaves it `dispatch_grace` seconds before taking over.
        published = self.outbox.publish_pending(self.dispatch_grace)
        dispatched = self.dispatcher.dispatch_undispatched(self.dispatch_grace)
        purged = 0
        if time.monotonic() >= self._next_purge:
            if self.retention > 0:
                purged = self.outbox.purge_published(timedelta(seconds=self.retention))
            with self.outbox.sessions() as session:
                idempotency.purge_expired(session)
            self._next_purge = time.monotonic() + PURGE_EVERY
        resumed = 0
        if self.stalled_timeout > 0 and time.monotonic() >= self._next_resume:
            resumed = self.dispatcher.resume_stalled(self.stalled_timeout)
            # A job can only stall once per timeout, so a sweep a few times per timeout is enough.
            self._next_resume = time.monotonic() + min(RESUME_EVERY, self.stalled_timeout / 4)
        lost = 0
        if self.lost_timeout > 0 and time.monotonic() >= self._next_lost_check:
            lost = self.dispatcher.resend_lost(self.lost_timeout)
            # A lost message is resent after two passes that missed it: about a third of the
            # timeout apart, it is back within twice the timeout of the job's last move.
            self._next_lost_check = time.monotonic() + self.lost_timeout / 3
        return RelayPass(published, dispatched, purged, resumed, lost)

    def run(self) -> None:
        """Run passes until `stop` is set; never raises, never spins."""
        log.info("relay started (every %.2f s)", self.interval)
        while not self.stop.is_set():
            try:
                done = self.run_once()
            except SQLAlchemyError as exc:
                self.database.down(exc)
            except Exception:  # a bug in one pass must not stop publishing for good
                if not self._failing:
                    log.exception("relay pass failed; retrying every %.2f s", self.interval)
                self._failing = True
            else:
                self.database.up()
                self._failing = False
                if done.published or done.dispatched or done.purged or done.resumed or done.lost:
                    log.debug("relay pass: %s", done)
            self.stop.wait(self.interval)
        log.info("relay stopped")
