"""Celery configuration, by what it does: JSON only, no stored results, the default worker.

Late acknowledgement and redelivery after a worker dies are exercised by the worker-kill tests
(test_pipeline_faults, test_chaos), the queue per stage by test_queues."""

from __future__ import annotations

import uuid
from pathlib import Path

from gateway.config import Settings
from gateway.services import get_services
from tests.factories import make_job
from tests.support import WorkerProcess, broker_is_idle, load_job, wait_for_job, wait_until


def test_a_pickled_stage_message_is_refused_and_never_runs(app, session, worker):
    job = make_job(session)
    extraction = get_services(app).celery.tasks["gateway.extraction"]

    extraction.apply_async((job.id, "fast"), task_id=job.runs[0].task_id, serializer="pickle")

    # The worker drops what it may not deserialize, and acknowledges it: nothing is left
    wait_until(lambda: broker_is_idle(app))
    assert load_job(app, job.id).status == "pending"
    # Had the pickled extraction run, the JSON chain's extraction would be refused as a duplicate
    assert get_services(app).pipeline.dispatch(job.id)
    stored = wait_for_job(app, job.id, "completed")
    assert [(r.status, r.attempts) for r in stored.runs] == [("completed", 1)] * 3
    wait_until(lambda: broker_is_idle(app))
    # And no task left a result behind: the database is the only record of a job
    assert get_services(app).redis.keys("celery-task-meta-*") == []


def test_the_default_worker_process_runs_a_threads_pool_of_thirty_two(
    app, settings, tmp_path: Path
):
    # Given a real `celery -A worker worker` with the default pool settings
    defaults = Settings.from_env({})
    assert (defaults.worker_pool, defaults.worker_concurrency) == ("threads", 32)
    name = f"pool-{uuid.uuid4().hex[:6]}"
    process = WorkerProcess(
        settings.replace(
            worker_pool=defaults.worker_pool, worker_concurrency=defaults.worker_concurrency
        ),
        name,
        tmp_path / "worker.log",
    )
    try:
        process.start()

        # When we ask it for its statistics over the broker
        inspect = get_services(app).celery.control.inspect(timeout=0.5)
        stats = wait_until(lambda: inspect.stats(), timeout=30)
    except BaseException:
        print(process.log())
        raise
    finally:
        process.stop()

    # Then it runs the threads pool with 32 threads
    (hostname, worker_stats), *_ = stats.items()
    assert hostname.startswith(name + "@")
    assert worker_stats["pool"]["implementation"] == "celery.concurrency.thread:TaskPool"
    assert worker_stats["pool"]["max-concurrency"] == 32
    assert worker_stats["prefetch_count"] == 32  # prefetch multiplier 1 x 32 threads
