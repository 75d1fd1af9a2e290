"""Celery configuration: delivery guarantees, JSON only, no result backend, the default worker."""

from __future__ import annotations

import uuid
from pathlib import Path

from gateway.config import Settings
from gateway.services import get_services
from tests.factories import make_job
from tests.support import WorkerProcess, broker_is_idle, load_job, wait_for_job, wait_until


def test_the_app_acks_late_requeues_lost_work_and_takes_one_message_at_a_time(app, settings):
    conf = get_services(app).celery.conf

    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    transport = conf.broker_transport_options
    assert transport["visibility_timeout"] == settings.broker_visibility_timeout
    assert (transport["unacked_restore_interval"], transport["unacked_restore_throttle"]) == (1, 1)


def test_the_app_speaks_json_only_stores_no_results_and_sends_task_events(app):
    conf = get_services(app).celery.conf

    assert (conf.task_serializer, conf.accept_content, conf.event_serializer) == (
        "json",
        ["json"],
        "json",
    )
    assert conf.result_backend is None and conf.task_ignore_result is True
    assert conf.worker_send_task_events is True and conf.task_send_sent_event is True


def test_each_stage_is_a_task_named_after_it(app):
    tasks = get_services(app).celery.tasks

    for stage in ("extraction", "analysis", "enrichment"):
        task = tasks[f"gateway.{stage}"]
        assert task.stage == stage
        assert task.acks_late and task.reject_on_worker_lost and task.ignore_result


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
