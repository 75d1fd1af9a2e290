"""The shortest path through the system: a dispatched job runs every stage and says so."""

from gateway.services import get_services
from tests.factories import make_job
from tests.support import settled_events, wait_for_job


def test_a_dispatched_job_runs_every_stage(app, services, session, worker):
    job = make_job(session)
    assert get_services(app).pipeline.dispatch(job.id)

    wait_for_job(app, job.id, "completed")
    types = [event.event_type for event in settled_events(app, job.id)]
    assert types[0] == "job.created" and types[-1] == "job.completed"
