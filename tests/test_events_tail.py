"""`gateway events tail`: the events stream followed live as readable lines, one job's or one
tenant's, with Redis found in the run file of `make run`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import uuid
from typing import Any

import redis

from events.model import Event
from gateway import runfile
from tests.support import GATEWAY_SCRIPT, CollectedOutput, client_environ, wait_until


def tail(*args: str, env: dict[str, str]) -> CollectedOutput:
    """`gateway events tail ARGS…` running, its output read line by line."""
    process = subprocess.Popen(
        [GATEWAY_SCRIPT, "events", "tail", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return CollectedOutput(process)


def interrupt(follower: CollectedOutput) -> int:
    """Ctrl-C, then its exit status."""
    follower.process.send_signal(signal.SIGINT)
    status = follower.process.wait(timeout=20)
    follower.join()
    return status


def test_events_tail_follows_one_jobs_or_one_tenants_events_as_lines(redis_server, tmp_path):
    stream = f"job_events:tail:{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_server.url(db=6), decode_responses=True)
    ours, theirs = str(uuid.uuid4()), str(uuid.uuid4())

    def add(event_type: str, job_id: str, payload: dict[str, Any], tenant: str) -> None:
        event = Event(event_type, job_id, payload, tenant_id=tenant)
        client.xadd(stream, event.to_fields())  # type: ignore[arg-type]

    # Given events of two jobs of two tenants on the stream
    add("job.created", ours, {"document_name": "My Document", "stages": ["extraction"]}, "acme")
    add("job.created", theirs, {"document_name": "Other", "stages": ["extraction"]}, "globex")
    add("job.stage_started", ours, {"stage": "extraction", "attempt": 1}, "acme")
    path = tmp_path / "run.json"
    followers: list[CollectedOutput] = []
    try:
        # When events tail follows, with Redis and the stream taken from make run's run file
        with runfile.published(
            path, {"REDIS_URL": redis_server.url(db=6), "EVENTS_STREAM": stream}
        ):
            env = client_environ(path)
            by_job = tail("--job", ours, "--from-start", env=env)
            by_tenant = tail("--tenant", "globex", "--from-start", "--json", env=env)
            followers += [by_job, by_tenant]
            wait_until(lambda: len(by_job.lines) == 2, timeout=30)
            # and more events come while it follows
            add("job.failed", ours, {"stage": "extraction", "error": "Provider timeout"}, "acme")
            add("job.cancelled", theirs, {"previous_status": "processing"}, "globex")
            wait_until(lambda: len(by_job.lines) == 3 and len(by_tenant.lines) == 2, timeout=30)
            # Then Ctrl-C ends them, with status 0
            assert interrupt(by_job) == 0, by_job.output
            assert interrupt(by_tenant) == 0, by_tenant.output
    finally:
        for follower in followers:
            if follower.process.poll() is None:
                follower.process.kill()
        client.delete(stream)
        client.close()

    # One readable line per event of the job, old and new, in stream order, nothing else
    time = r"\d\d:\d\d:\d\d\.\d{3}"
    expected = [
        rf'{time} job\.created job={ours} tenant=acme document_name="My Document" stages=extraction',
        rf"{time} job\.stage_started job={ours} tenant=acme attempt=1 stage=extraction",
        rf'{time} job\.failed job={ours} tenant=acme error="Provider timeout" stage=extraction',
    ]
    assert len(by_job.lines) == 3, by_job.output
    for line, pattern in zip(by_job.lines, expected, strict=True):
        assert re.fullmatch(pattern, line), line
    # --tenant keeps that tenant's events; --json prints each entry's fields as stored
    entries = [json.loads(line) for line in by_tenant.lines]
    assert [(e["event_type"], e["job_id"], e["tenant_id"]) for e in entries] == [
        ("job.created", theirs, "globex"),
        ("job.cancelled", theirs, "globex"),
    ]
    assert json.loads(entries[1]["payload"]) == {"previous_status": "processing"}
