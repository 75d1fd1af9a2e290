"""The stalled-job sweep: a processing job nothing moved for STALLED_JOB_TIMEOUT is resumed once."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from events.model import TERMINAL_TYPES
from gateway import jobs, runs
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.relay import Relay
from gateway.services import get_services
from tests.factories import make_job
from tests.support import load_job, queued_stages, settled_events, wait_for_job

TWO_STAGES = ["extraction", "analysis"]


def queued(app: Any) -> int:
    """Stage messages waiting on the broker's queue (a chain is one message: its first stage)."""
    return queued_stages(get_services(app).redis)


def first_stage_done_next_never_sent(services: Any, stages: list[str] = TWO_STAGES) -> str:
    """A processing job whose first stage completed but whose next stage was never sent.

    This is what a worker leaves when its complete_stage commit succeeded but the connection
    dropped before it heard back: its retry finds the stage completed and stops the chain.
    """
    with services.database.session() as s:
        job_id = make_job(s, stages).id
    with services.database.session() as s:
        assert runs.start_stage(s, job_id, stages[0]) is not None
    with services.database.session() as s:
        assert runs.complete_stage(s, job_id, stages[0], {"text": "extracted"})
    return job_id


def attempts(app: Any, job_id: str) -> dict[str, int]:
    return {run.name: run.attempts for run in load_job(app, job_id).runs}


def test_a_job_whose_next_stage_was_never_sent_is_resumed_by_a_relay_pass(
    make_app, worker_for, caplog
):
    # Given a processing job whose next stage was never sent, idle for longer than the timeout
    app = make_app()
    services = get_services(app)
    worker_for(app)  # started first: on a loaded machine a start can outlast the timeout
    job_id = first_stage_done_next_never_sent(services)
    relay = Relay(
        services.outbox, get_services(app).pipeline, interval=0.1, dispatch_grace=5.0,
        stalled_timeout=1.0,
    )  # fmt: skip
    assert relay.run_once().resumed == 0  # not idle long enough yet
    time.sleep(1.1)

    # When the relay runs a pass
    done = relay.run_once()

    # Then the job is resumed once and completes, without running its first stage again
    assert done.resumed == 1
    job = wait_for_job(app, job_id, "completed")
    assert attempts(app, job_id) == {"extraction": 1, "analysis": 1}
    assert [run.status for run in job.runs] == ["completed", "completed"]
    events = settled_events(app, job_id)
    assert [e.event_type for e in events].count("job.completed") == 1
    assert sum(e.event_type in TERMINAL_TYPES for e in events) == 1
    resent = [r for r in caplog.records if "resent its stages" in r.getMessage()]
    assert [(r.levelname, job_id in r.getMessage()) for r in resent] == [("WARNING", True)]


def test_a_stage_that_failed_for_good_unrecorded_is_resumed_and_completes(make_app, worker_for):
    # Given a stage left started after one attempt, with no message for it anywhere (its final
    # failure could not be recorded: the database was unreachable)
    app = make_app()
    services = get_services(app)
    with services.database.session() as s:
        job_id = make_job(s, TWO_STAGES).id
    with services.database.session() as s:
        assert runs.start_stage(s, job_id, "extraction") is not None
    worker_for(app)
    time.sleep(0.3)

    # When the stalled jobs are resumed
    assert get_services(app).pipeline.resume_stalled(0.2) == 1

    # Then the stage runs again from the start and the job completes
    wait_for_job(app, job_id, "completed")
    assert attempts(app, job_id) == {"extraction": 2, "analysis": 1}
    events = settled_events(app, job_id)
    assert sum(e.event_type in TERMINAL_TYPES for e in events) == 1


def test_a_processing_job_touched_recently_is_not_resumed(app):
    # Given a job whose first stage completed a moment ago
    job_id = first_stage_done_next_never_sent(get_services(app))

    # When the sweep looks for jobs idle for a minute
    resumed = get_services(app).pipeline.resume_stalled(60)

    # Then nothing is resent
    assert resumed == 0
    assert queued(app) == 0
    assert load_job(app, job_id).status == "processing"


def test_two_concurrent_sweeps_send_one_chain(app):
    # Given a stalled job and no worker (so what is sent stays on the queue)
    job_id = first_stage_done_next_never_sent(get_services(app))
    time.sleep(1.1)  # idle past the timeout, which a loaded machine's sweep stays within
    pipeline = get_services(app).pipeline
    start = threading.Barrier(2)
    results: list[int] = []

    def sweep() -> None:
        start.wait()
        results.append(pipeline.resume_stalled(1.0))

    # When two relays sweep at the same moment
    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    # Then only one claims it, and one message (the analysis stage) is on the queue
    assert sorted(results) == [0, 1]
    assert queued(app) == 1
    assert load_job(app, job_id).status == "processing"
    # And a sweep right after finds it touched: nothing more is sent
    assert pipeline.resume_stalled(1.0) == 0
    assert queued(app) == 1


def test_cancelled_and_failed_jobs_are_never_resumed(app):
    # Given a cancelled job and a failed job, both idle for longer than the timeout
    services = get_services(app)
    cancelled = first_stage_done_next_never_sent(services)
    with services.database.session() as s:
        jobs.cancel_job(s, cancelled)
    failed = first_stage_done_next_never_sent(services)
    with services.database.session() as s:
        assert runs.start_stage(s, failed, "analysis") is not None
    with services.database.session() as s:
        assert runs.fail_stage(s, failed, "analysis", "provider down")
    time.sleep(0.3)

    # When the sweep runs
    resumed = get_services(app).pipeline.resume_stalled(0.2)

    # Then neither is resent, nor changed
    assert resumed == 0
    assert queued(app) == 0
    assert load_job(app, cancelled).status == "cancelled"
    assert load_job(app, failed).status == "failed"


def test_the_relay_takes_the_stalled_job_timeout_from_the_settings(app):
    relay = Relay.from_app(app)
    assert relay.stalled_timeout == get_services(app).settings.stalled_job_timeout == 600


@pytest.mark.parametrize("value", ["300", "330"])
def test_a_stalled_job_timeout_within_visibility_and_stage_limit_is_refused(value):
    with pytest.raises(ConfigError, match="STALLED_JOB_TIMEOUT"):
        Settings.from_env({"STALLED_JOB_TIMEOUT": value})


def test_the_stalled_job_timeout_reads_from_the_environment():
    assert Settings.from_env({"STALLED_JOB_TIMEOUT": "331"}).stalled_job_timeout == 331
