"""GET /api/jobs/{id}/events/: a job's state, then its events live from the stream; resumable
from Last-Event-ID; bounded (streams per process, heartbeats, an end on close)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from gateway import runs
from gateway.api.live import live_streams
from tests.factories import job_payload
from tests.support import (
    PROJECT_DIR,
    assert_problem,
    free_port,
    job_events,
    served,
    settings_env,
    wait_until,
)


class Stream:
    """An open event stream over real HTTP; `next()` parses one message (None once closed)."""

    def __init__(self, url: str, last_event_id: str | None = None) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        try:
            self.connection.request("GET", parts.path, headers=headers)
            self.response = self.connection.getresponse()
        except OSError:
            self.connection.close()
            raise

    def next(self) -> Any:
        message: dict[str, Any] = {}
        while line := self.response.readline().decode():
            line = line.rstrip("\n")
            if not line:
                if message:
                    return message
                continue
            field, _, value = line.partition(":")
            message[field or "comment"] = value.removeprefix(" ")
        return None

    def events(self) -> list[dict[str, Any]]:
        """Every message with an event type, until the server ends the stream."""
        messages = []
        while (message := self.next()) is not None:
            if "event" in message:
                messages.append({**message, "data": json.loads(message["data"])})
        return messages

    def close(self) -> None:
        self.response.close()
        self.connection.close()


def create(client) -> str:
    response = client.post("/api/jobs/", json=job_payload())
    assert response.status_code == 201
    return response.get_json()["id"]


def run_stage(app, job_id: str, stage: str, result: dict[str, Any]) -> None:
    """Start and complete a stage as a worker would: two commits, two events on the stream."""
    with app.extensions["gateway"].database.session() as session:
        assert runs.start_stage(session, job_id, stage)
        assert runs.complete_stage(session, job_id, stage, result)


def test_a_stream_sends_the_job_then_each_event_as_it_happens_and_ends_after_the_last(app):
    client = app.test_client()
    job_id = create(client)  # no worker: the job waits, the test runs its stages
    with served(app) as base:
        stream = Stream(f"{base}/api/jobs/{job_id}/events/")
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type", "").startswith("text/event-stream")
        assert stream.next() == {"retry": "1000"}
        snapshot = stream.next()
        assert snapshot["event"] == "snapshot"
        assert json.loads(snapshot["data"])["status"] == "pending"
        run_stage(app, job_id, "extraction", {"text": "hello"})
        run_stage(app, job_id, "analysis", {"entities": {}})
        run_stage(app, job_id, "enrichment", {"tags": []})
        received = stream.events()
        stream.close()
    assert [m["event"] for m in received] == [
        "job.stage_started", "job.stage_completed",
        "job.stage_started", "job.stage_completed",
        "job.stage_started", "job.stage_completed", "job.completed",
    ]  # fmt: skip
    assert received[1]["data"]["payload"] == {"stage": "extraction", "result": {"text": "hello"}}
    # each message's id is its stream entry's, in stream order
    on_stream = job_events(app, job_id)
    assert [m["data"]["event_id"] for m in received] == [e.event_id for e in on_stream[1:]]
    assert snapshot["id"] < received[0]["id"]


def test_a_reconnect_with_last_event_id_continues_without_gap_or_repeat(app):
    client = app.test_client()
    job_id = create(client)
    run_stage(app, job_id, "extraction", {"text": "hello"})
    with served(app) as base:
        first = Stream(f"{base}/api/jobs/{job_id}/events/")
        first.next(), first.next()  # retry, snapshot
        run_stage(app, job_id, "analysis", {"entities": {}})
        started = first.next()
        assert started["event"] == "job.stage_started"
        first.close()  # the connection drops after one event
        # the job goes on while nobody listens
        run_stage(app, job_id, "enrichment", {"tags": []})
        resumed = Stream(f"{base}/api/jobs/{job_id}/events/", last_event_id=started["id"])
        received = resumed.events()
        resumed.close()
    assert [m["event"] for m in received] == [
        "job.stage_completed", "job.stage_started", "job.stage_completed", "job.completed",
    ]  # fmt: skip
    assert received[0]["data"]["payload"]["stage"] == "analysis"


def test_a_last_event_id_the_stream_no_longer_holds_gets_a_fresh_snapshot(app, services):
    client = app.test_client()
    job_id = create(client)
    run_stage(app, job_id, "extraction", {"text": "hello"})
    stream = services.settings.events_stream
    oldest = services.redis.xrange(stream, count=1)[0][0]
    services.redis.xtrim(stream, maxlen=1, approximate=False)  # the entries after it are gone
    with served(app) as base:
        resumed = Stream(f"{base}/api/jobs/{job_id}/events/", last_event_id=oldest)
        resumed.next()
        snapshot = resumed.next()
        resumed.close()
    assert snapshot["event"] == "snapshot"
    assert json.loads(snapshot["data"])["results"]["stages"]["extraction"]["status"] == "completed"


def test_a_finished_job_gets_its_snapshot_and_the_stream_ends(app, services):
    client = app.test_client()
    job_id = create(client)
    assert client.post(f"/api/jobs/{job_id}/cancel/").status_code == 200
    body = client.get(f"/api/jobs/{job_id}/events/").get_data(as_text=True)
    assert body.count("event: ") == 1
    assert "event: snapshot" in body and '"status":"cancelled"' in body


def test_an_unknown_job_is_a_404_problem(client):
    assert_problem(client.get("/api/jobs/nope/events/"), 404)


def test_streams_beyond_the_limit_get_503_until_one_closes(make_app):
    app = make_app(sse_max_streams=1, sse_heartbeat=0.1)
    job_id = create(app.test_client())
    with served(app) as base:
        first = Stream(f"{base}/api/jobs/{job_id}/events/")
        assert first.response.status == 200
        busy = app.test_client().get(f"/api/jobs/{job_id}/events/")
        assert_problem(busy, 503, "Too many live event streams are open; try again later.")
        assert busy.headers["Retry-After"] == "5"
        first.close()  # the server notices at a next write: a heartbeat
        wait_until(lambda: app.test_client().get(f"/api/jobs/{job_id}/events/").status_code == 200)


def test_a_quiet_stream_sends_heartbeats(make_app):
    app = make_app(sse_heartbeat=0.2)
    job_id = create(app.test_client())
    with served(app) as base:
        stream = Stream(f"{base}/api/jobs/{job_id}/events/")
        messages = [stream.next() for _ in range(4)]
        stream.close()
    assert messages[2:] == [{"comment": "heartbeat"}] * 2


def test_closing_ends_open_streams_and_refuses_new_ones(app):
    job_id = create(app.test_client())
    with served(app) as base:
        stream = Stream(f"{base}/api/jobs/{job_id}/events/")
        stream.next(), stream.next()
        live_streams(app).close()
        started = time.monotonic()
        assert stream.events() == []
        assert time.monotonic() - started < 3
        stream.close()
    assert_problem(app.test_client().get(f"/api/jobs/{job_id}/events/"), 503)


def test_gunicorn_stops_at_once_with_a_stream_open(app, settings):
    # Given the API under gunicorn, as `make run` starts it, with a long graceful timeout
    job_id = create(app.test_client())
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "wsgi:app", f"--bind=127.0.0.1:{port}",
               "--config=python:gateway.serving", "--workers=1", "--threads=2",
               "--graceful-timeout=30", "--no-control-socket"]  # fmt: skip
    server = subprocess.Popen(
        command,
        cwd=PROJECT_DIR,
        env={**os.environ, **settings_env(settings)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def connect() -> Stream | None:
            try:
                return Stream(f"http://127.0.0.1:{port}/api/jobs/{job_id}/events/")
            except OSError:
                return None

        stream = wait_until(connect, timeout=30, interval=0.2)
        assert stream.next() == {"retry": "1000"}
        # When it is told to stop
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        # Then the stream ends and gunicorn exits long before its graceful timeout
        assert stream.events()[0]["event"] == "snapshot"
        stream.close()
        assert server.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        server.kill()
        server.wait()
