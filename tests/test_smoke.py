from tests.factories import make_job
from tests.support import wait_until


def test_a_dispatched_job_runs_every_stage(app, services, session, worker):
    job = make_job(session)
    assert app.extensions["pipeline"].dispatch(job.id)

    def finished():
        session.expire_all()
        return session.get(type(job), job.id).status == "completed"

    wait_until(finished)
    stream = services.redis.xrange(services.settings.events_stream)
    types = [fields["event_type"] for _, fields in stream]
    assert types[0] == "job.created" and types[-1] == "job.completed"
