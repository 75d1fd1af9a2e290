"""A stage message the broker lost: kombu's Redis transport pops it (BRPOP) before it records it
as unacknowledged, so a worker that dies in between leaves it held nowhere. The relay resends
it within seconds, not after STALLED_JOB_TIMEOUT; a message that is held is never resent."""

from __future__ import annotations

import json
import time
from typing import Any

from gateway import runs
from gateway.relay import Relay
from gateway.services import get_services
from tasks.broker import held_task_ids
from tests.factories import make_job
from tests.support import load_job, running_in_thread, wait_for_job, wait_until

# The stalled-job sweep at its default (ten minutes): whatever comes back sooner, this did.
LOST = {"lost_stage_timeout": 1.0, "relay_interval": 0.1, "stalled_job_timeout": 600.0}


def lose(client: Any, queue: str) -> str:
    """Pop the next message of `queue` as a worker does, and drop it, as a worker killed between
    its pop and its record would; return its task id."""
    popped = client.brpop([queue], timeout=5)
    assert popped is not None, f"nothing to pop in {queue}"
    return str(json.loads(popped[1])["headers"]["id"])


def held(app: Any) -> set[str]:
    return held_task_ids(get_services(app).redis, ["extraction", "analysis", "enrichment"])


def test_a_first_stage_popped_by_a_worker_that_died_before_recording_it_is_resent_in_seconds(
    make_app, worker_for, caplog
):
    # Given a job sent to the broker, and no worker yet
    app = make_app(**LOST)
    services = get_services(app)
    with services.database.session() as session:
        job = make_job(session)
    assert services.pipeline.dispatch(job.id)
    first = job.runs[0].task_id

    # When a worker pops its message and dies before recording it: the broker holds it nowhere
    assert lose(services.redis, "extraction") == first
    lost_at = time.monotonic()
    assert held(app) == set()

    # Then the relay sends the stage again, with its task id, within seconds
    with running_in_thread(Relay.from_app(app)):
        wait_until(lambda: held(app) == {first}, timeout=10)
        resent_after = time.monotonic() - lost_at

        # And a worker completes the job, each stage once
        worker_for(app)
        done = wait_for_job(app, job.id, "completed")
    assert [run.attempts for run in done.runs] == [1, 1, 1]
    assert resent_after < 5.0
    assert [r.getMessage() for r in caplog.records if "held nowhere" in r.getMessage()] == [
        f"job {job.id} pending but idle for over 1 s, its stage message held nowhere by the "
        "broker: resent its stages from extraction"
    ]
    print(f"\nlost first stage resent {resent_after:.1f} s after it was popped")


def test_a_next_stage_popped_by_a_worker_that_died_before_recording_it_is_resent_in_seconds(
    make_app, worker_for
):
    # Given a job whose first stage completed and whose next stage was sent, as a worker does
    app = make_app(**LOST)
    services = get_services(app)
    with services.database.session() as session:
        job = make_job(session)
    with services.database.session() as session:
        assert runs.start_stage(session, job.id, "extraction") is not None
    with services.database.session() as session:
        assert runs.complete_stage(session, job.id, "extraction", {"text": "extracted"})
    assert services.pipeline.start(job, job.runs[1:])
    analysis = job.runs[1].task_id

    # When a worker pops the next stage's message and dies before recording it
    assert lose(services.redis, "analysis") == analysis
    lost_at = time.monotonic()

    # Then the relay sends the rest of the chain again within seconds, and the job completes
    with running_in_thread(Relay.from_app(app)):
        wait_until(lambda: held(app) == {analysis}, timeout=10)
        resent_after = time.monotonic() - lost_at
        worker_for(app)
        done = wait_for_job(app, job.id, "completed")
    assert [run.attempts for run in done.runs] == [1, 1, 1]
    assert resent_after < 5.0


def test_a_stage_message_held_by_a_worker_or_waiting_in_its_queue_is_never_resent(
    make_app, worker_for, caplog
):
    # Given a worker of the first stage only, whose (slow) extraction runs for longer than the
    # lost-stage timeout, and a relay
    app = make_app(**LOST, extractor_provider="slow", provider_latency_scale=1.5)
    services = get_services(app)
    worker_for(app, queues=["extraction"])
    with services.database.session() as session:
        job = make_job(session, ["extraction", "analysis"])
    with running_in_thread(Relay.from_app(app)):
        assert services.pipeline.dispatch(job.id)

        # When the extraction runs (its message held unacknowledged), then the next stage's
        # message waits in its queue with no worker to take it, each for over the timeout
        wait_until(lambda: load_job(app, job.id).runs[0].status == "started")
        wait_until(lambda: load_job(app, job.id).runs[0].status == "completed", timeout=10)
        time.sleep(3.0)

        # Then nothing was resent: one message waits, the one the job awaits
        assert held(app) == {job.runs[1].task_id}
        assert services.redis.llen("analysis") == 1
    assert [run.attempts for run in load_job(app, job.id).runs] == [1, 0]
    assert not [r for r in caplog.records if "idle for over" in r.getMessage()]
