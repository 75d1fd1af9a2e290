"""Server-sent events: a job's lifecycle, pushed live from the events stream.

`GET /api/jobs/{id}/events/` answers `text/event-stream`. Without `Last-Event-ID` it first
sends a `snapshot` (the job as `GET /api/jobs/{id}/` shows it), then every event of the job as
it is appended; each message's `id` is its stream entry id. A browser that reconnects sends
the last id it saw and continues right after it (nothing missed, nothing repeated); if that
part of the stream was trimmed away meanwhile, it gets a fresh snapshot instead.

Bounds: at most SSE_MAX_STREAMS streams per process (503 beyond), a heartbeat comment after
SSE_HEARTBEAT seconds of quiet, an end after SSE_MAX_DURATION or the job's terminal event,
and every stream ends within a second of `LiveStreams.close()`, which the gunicorn worker
calls on SIGTERM (gateway/serving.py), so that open streams never hold a shutdown.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
from flask import Flask, Response, current_app, request

from events.model import TERMINAL_TYPES
from gateway import jobs
from gateway.api import auth, ratelimit
from gateway.api.errors import PROBLEM_JSON, ProblemSchema
from gateway.api.guards import counted, guarded
from gateway.api.parsing import Blueprint
from gateway.api.schemas import JobSchema
from gateway.config import Settings
from gateway.errors import StreamUnavailableError
from gateway.feed import JobFeed, is_entry_id
from gateway.services import get_services

EXTENSION = "gateway.live"
READ_BLOCK_MS = 1000  # a stream notices close() and its deadline within this
RECONNECT_MS = 1000  # what the browser waits before reconnecting (the `retry` field)
RETRY_AFTER = 5
FINISHED = ("completed", "failed", "cancelled")

blp = Blueprint("live", __name__, url_prefix="/api/jobs", description="Live job events (SSE)")
blp.before_request(auth.authenticate)
blp.before_request(ratelimit.check)
blp.after_request(ratelimit.add_headers)


class LiveStreams:
    """The open event streams of one process: a bounded number, all ended by `close()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots = threading.BoundedSemaphore(settings.sse_max_streams)
        self.closing = threading.Event()
        # Its own client: a blocking XREAD outlasts the shared client's short socket timeout.
        self.redis = redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_timeout=READ_BLOCK_MS / 1000 + settings.redis_timeout,
            socket_connect_timeout=settings.redis_timeout,
        )

    def acquire(self) -> Callable[[], None]:
        """Take a slot and return what gives it back (once, however often it is called);
        StreamUnavailableError if none is free or the process is closing."""
        if self.closing.is_set() or not self._slots.acquire(blocking=False):
            raise StreamUnavailableError(
                "Too many live event streams are open; try again later.", RETRY_AFTER
            )
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                self._slots.release()

        return release

    def close(self) -> None:
        """End every open stream at its next read and refuse new ones (the process is stopping)."""
        self.closing.set()


def init_app(app: Flask, settings: Settings) -> None:
    """Attach the process's LiveStreams to `app`."""
    app.extensions[EXTENSION] = LiveStreams(settings)


def live_streams(app: Flask | None = None) -> LiveStreams:
    """The LiveStreams of `app`, by default of the current app."""
    streams = (app or current_app).extensions[EXTENSION]
    assert isinstance(streams, LiveStreams)
    return streams


def message(event: str, data: Any, entry_id: str | None = None) -> str:
    """One server-sent event; `data` is sent as compact JSON on a single line."""
    lines = [f"id: {entry_id}"] if entry_id else []
    lines += [f"event: {event}", "data: " + json.dumps(data, separators=(",", ":"))]
    return "\n".join(lines) + "\n\n"


@blp.route("/<job_id>/events/")
@blp.response(
    200,
    # One server-sent event (what a client's EventSource hands over), not the body as a whole
    {
        "type": "object",
        "properties": {
            "event": {"type": "string"},
            "data": {"type": "string", "description": "JSON"},
            "id": {"type": "string", "description": "The stream entry id"},
            "retry": {"type": "integer"},
        },
        "required": ["event", "data"],
    },
    content_type="text/event-stream",
    headers=counted(),
    description="Server-sent events: `snapshot` (a job), then one message per lifecycle event "
    "(its `event:` is the event type, its `id` the stream entry id, its data the event's "
    "`event_id`, `event_type`, `timestamp` and `payload`); the stream ends after the job's "
    "terminal event. Send `Last-Event-ID` to resume after an id.",
)
@blp.alt_response(404, schema=ProblemSchema, content_type=PROBLEM_JSON, description="No such job")
@blp.alt_response(
    503,
    schema=ProblemSchema,
    content_type=PROBLEM_JSON,
    description="Too many streams open (SSE_MAX_STREAMS), or Redis unreachable (see Retry-After)",
)
@guarded(blp)
def events(job_id: str) -> Response:
    """Follow a job live: its state, then each of its events as it happens."""
    services = get_services()
    streams = live_streams()
    with services.database.reader() as session:
        jobs.get_job(session, job_id, auth.tenant())  # 404 before any slot is taken
    release = streams.acquire()
    try:
        feed, snapshot = _start(streams, services.settings.events_stream, job_id)
    except BaseException:
        release()
        raise
    response = current_app.response_class(
        _stream(streams, feed, snapshot),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    # The server closes the response however the stream ends (finished, or the client gone),
    # even if it never started iterating it.
    response.call_on_close(release)
    return response


def _start(streams: LiveStreams, stream: str, job_id: str) -> tuple[JobFeed, Any]:
    """Where the feed starts and, unless it resumes, the job's state to send first."""
    last_id = request.headers.get("Last-Event-ID", "")
    try:
        if is_entry_id(last_id):
            feed = JobFeed(streams.redis, stream, job_id, last_id)
            if feed.resumable():
                return feed, None
        feed = JobFeed.from_now(streams.redis, stream, job_id)
    except redis.RedisError:
        raise StreamUnavailableError(
            "The event stream is unavailable; try again later.", RETRY_AFTER
        ) from None
    with get_services().database.reader() as session:
        return feed, JobSchema().dump(jobs.get_job(session, job_id, auth.tenant()))


def _stream(streams: LiveStreams, feed: JobFeed, snapshot: Any) -> Iterator[str]:
    """The messages of one stream."""
    settings = streams.settings
    yield f"retry: {RECONNECT_MS}\n\n"
    if snapshot is not None:
        yield message("snapshot", snapshot, feed.after)
        if snapshot["status"] in FINISHED:
            return
    block_ms = min(READ_BLOCK_MS, max(1, int(settings.sse_heartbeat * 1000)))
    deadline = time.monotonic() + settings.sse_max_duration
    quiet_since = time.monotonic()
    while not streams.closing.is_set() and time.monotonic() < deadline:
        try:
            entries = list(feed.read(block_ms))
        except redis.RedisError:
            return  # the browser reconnects from the last id it got
        for entry in entries:
            data = {**entry.event.to_fields(), "payload": entry.event.payload}
            yield message(entry.event.event_type, data, entry.id)
            if entry.event.event_type in TERMINAL_TYPES:
                return
        if entries:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settings.sse_heartbeat:
            quiet_since = time.monotonic()
            yield ": heartbeat\n\n"
