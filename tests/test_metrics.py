"""Prometheus metrics: a job's life in counters and histograms, the system's state in gauges,
/metrics not public, and correct totals across gunicorn's processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.services import get_services
from tests.factories import job_payload, make_job
from tests.support import PROJECT_DIR, free_port, settings_env, wait_for_job, wait_until


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Each sample of a scrape by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return samples(response.get_data(as_text=True))


def value(scraped: dict[Any, float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def test_a_jobs_life_shows_in_counters_and_histograms_without_its_id(app, client, worker):
    before = scrape(client)
    # When a job runs the whole pipeline
    job_id = client.post("/api/jobs/", json=job_payload()).get_json()["id"]
    wait_for_job(app, job_id, "completed")
    client.get(f"/api/jobs/{job_id}/")
    after = scrape(client)

    # Then each stage's attempt, its duration and the job's end are counted once
    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("gateway_jobs_created_total") == 1
    assert delta("gateway_jobs_finished_total", status="completed") == 1
    providers = get_services(app).settings.providers
    for stage, provider in providers.items():
        assert delta("gateway_stage_attempts_total", stage=stage, outcome="completed") == 1
        assert delta("gateway_stage_duration_seconds_count", stage=stage, provider=provider) == 1
    # And requests by route template and status, never by path
    route = {"method": "GET", "route": "/api/jobs/<job_id>/", "status": "200"}
    assert delta("gateway_http_request_duration_seconds_count", **route) == 1
    created = {"method": "POST", "route": "/api/jobs/", "status": "201"}
    assert delta("gateway_http_request_duration_seconds_count", **created) == 1
    assert all(job_id not in str(key) for key in after)


def test_a_failed_then_retried_job_counts_its_retries_and_failure(make_app, worker_for):
    app = make_app(analysis_failure_rate=1.0, stage_max_retries=1)
    worker_for(app)
    client = app.test_client()
    before = scrape(client)
    job_id = client.post("/api/jobs/", json=job_payload()).get_json()["id"]
    wait_for_job(app, job_id, "failed")
    assert client.post(f"/api/jobs/{job_id}/retry/").status_code == 200
    wait_for_job(app, job_id, "failed")
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("gateway_stage_attempts_total", stage="analysis", outcome="retried") == 2
    assert delta("gateway_stage_attempts_total", stage="analysis", outcome="failed") == 2
    assert delta("gateway_jobs_finished_total", status="failed") == 2
    assert delta("gateway_jobs_retried_total") == 1
    assert delta("gateway_stage_attempts_total", stage="extraction", outcome="completed") == 1


def test_gauges_show_the_backlog_queues_groups_and_dead_letters(app, client, session, services):
    # Given a job sent to no worker, an event never relayed, a group behind, a dead letter
    job = make_job(session)
    assert services.pipeline.dispatch(job.id)
    settings = services.settings
    services.redis.xgroup_create(settings.events_stream, "reporting", id="0", mkstream=True)
    services.redis.xadd(settings.dead_letter_stream, {"reason": "handler failed"})
    stream_length = services.redis.xlen(settings.events_stream)
    # When Prometheus scrapes
    scraped = scrape(client)
    # Then each is there
    assert value(scraped, "gateway_broker_queue_depth", queue="extraction") == 1
    assert value(scraped, "gateway_broker_queue_depth", queue="analysis") == 0
    assert value(scraped, "gateway_outbox_unpublished_events") >= 1
    assert value(scraped, "gateway_outbox_oldest_unpublished_age_seconds") > 0
    assert value(scraped, "gateway_jobs_active", status="pending") == 1
    assert value(scraped, "gateway_events_stream_length") == stream_length > 0
    assert value(scraped, "gateway_consumer_group_lag", group="reporting") == stream_length
    assert value(scraped, "gateway_consumer_group_pending", group="reporting") == 0
    assert value(scraped, "gateway_dead_letter_entries") == 1
    assert value(scraped, "gateway_metrics_source_up", source="redis") == 1
    assert value(scraped, "gateway_metrics_source_up", source="database") == 1


def test_metrics_answer_loopback_only_unless_a_token_is_set(make_app):
    open_app = make_app().test_client()
    assert open_app.get("/metrics").status_code == 200
    assert open_app.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 404

    guarded = make_app(metrics_token="s3cret").test_client()
    assert guarded.get("/metrics").status_code == 404
    assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    bearer = {"Authorization": "Bearer s3cret"}
    assert guarded.get("/metrics", headers=bearer, environ_base=remote).status_code == 200


def test_an_unknown_path_or_method_adds_no_series_of_its_own(client):
    client.get("/api/3f1e1a4e-0000-4000-8000-000000000000/nowhere")
    client.open("/api/jobs/", method="BREW")
    keys = [dict(labels) for name, labels in scrape(client) if name.startswith("gateway_http")]
    assert {"method": "GET", "route": "unmatched", "status": "404"} in [
        {k: v for k, v in key.items() if k != "le"} for key in keys
    ]
    assert all("3f1e1a4e" not in key["route"] and key["method"] != "BREW" for key in keys)


@pytest.mark.slow
def test_gunicorns_processes_add_up_in_multiprocess_mode(settings, make_app, tmp_path: Path):
    # Given the API under gunicorn with 3 processes sharing a metrics directory
    make_app()  # cleans the database after the test
    port = free_port()
    env = {**os.environ, **settings_env(settings), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    server = subprocess.Popen(
        [gunicorn, "wsgi:app", f"--bind=127.0.0.1:{port}", "--workers=3", "--threads=1"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def request(path: str, body: dict[str, Any] | None = None) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        call = urllib.request.Request(base + path, data=data)
        if data is not None:
            call.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(call, timeout=10) as response:
            return bytes(response.read())

    try:
        wait_until(lambda: _answers(request), timeout=60, interval=0.2)
        # When jobs are created at the same moment, so that several processes answer
        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(lambda _: request("/api/jobs/", job_payload()), range(12)))
        # Then one scrape, from any process, counts them all
        scraped = samples(request("/metrics").decode())
        assert value(scraped, "gateway_jobs_created_total") == 12
        writers = {path.name.rsplit("_", 1)[-1] for path in tmp_path.glob("counter_*.db")}
        assert len(writers) >= 2, "every request went to one process: nothing was summed"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(request: Any) -> bool:
    try:
        return bool(request("/healthz"))
    except OSError:
        return False
