"""One queue per stage, and backpressure when the queues are full."""

from __future__ import annotations

import time

from celery.contrib.testing.worker import start_worker
from sqlalchemy import func, select

from gateway.models import Job
from gateway.services import get_services
from tasks.pipeline import QUEUE_CHECK_INTERVAL
from tests.factories import job_payload
from tests.support import load_job, wait_for_job, wait_until


def test_each_stage_waits_in_its_own_queue_for_a_worker_that_serves_it(make_app, worker_for):
    # Given a worker that serves the extraction queue only
    app = make_app()
    client = get_services(app).redis
    extractor = start_worker(
        get_services(app).celery, pool="threads", concurrency=2, perform_ping_check=False,
        loglevel="WARNING", queues=["extraction"],
    )  # fmt: skip
    with extractor:
        # When a job is posted
        job_id = app.test_client().post("/api/jobs/", json=job_payload()).get_json()["id"]

        # Then extraction runs, and analysis waits in its own queue
        wait_until(lambda: client.llen("analysis") == 1)
    job = load_job(app, job_id)
    assert [run.status for run in job.runs] == ["completed", "pending", "pending"]
    assert (client.llen("extraction"), client.llen("enrichment")) == (0, 0)

    # When a worker for the other stages joins, the job completes
    worker_for(app, queues=["analysis", "enrichment"])
    wait_for_job(app, job_id, "completed")


def test_posts_get_503_with_retry_after_while_the_queues_are_full(make_app):
    # Given no worker, and room for three stage messages
    app = make_app(max_queued_stages=3)
    client = app.test_client()
    for _ in range(3):
        assert client.post("/api/jobs/", json=job_payload()).status_code == 201

    # When one more job is posted once the queues' length is read again
    time.sleep(QUEUE_CHECK_INTERVAL)
    refused = client.post("/api/jobs/", json=job_payload())

    # Then it is refused, with a hint of when to try again, and nothing is stored for it
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "2"
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["detail"].startswith("Too many jobs are waiting")
    with get_services(app).database.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 3

    # And once the queues drain below the bound, posts are accepted again
    get_services(app).redis.delete("extraction")
    time.sleep(QUEUE_CHECK_INTERVAL)
    assert client.post("/api/jobs/", json=job_payload()).status_code == 201
