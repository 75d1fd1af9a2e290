"""Log lines: JSON on request, each line about a job naming it; no warnings for normal events."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gateway import logs
from tests.factories import job_payload
from tests.support import WorkerProcess, wait_for_job, wait_until


def capture(log_format: str) -> tuple[logging.Logger, io.StringIO]:
    """A logger writing through the handler `logs.configure` would install, into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.formatter(log_format))
    handler.addFilter(logs.JobContextFilter())
    handler.addFilter(logs.QuietFilter())
    logger = logging.getLogger(f"test.logs.{log_format}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, buffer


def test_a_json_line_carries_the_bound_job_fields_and_its_own():
    logger, buffer = capture("json")
    with logs.job_context(job_id="j-1", stage="analysis", task_id="t-1"):
        logger.info("stage started", extra={"attempt": 2})
    logger.info("not about a job")
    first, second = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert first["message"] == "stage started" and first["level"] == "INFO"
    assert (first["job_id"], first["stage"], first["task_id"], first["attempt"]) == (
        "j-1",
        "analysis",
        "t-1",
        2,
    )
    assert "job_id" not in second and second["logger"] == "test.logs.json"


def test_a_text_line_ends_with_its_job_fields():
    logger, buffer = capture("text")
    with logs.job_context(job_id="j-2", stage="extraction"):
        logger.info("stage completed")
    assert buffer.getvalue().rstrip().endswith("stage completed job_id=j-2 stage=extraction")


def test_normal_events_libraries_warn_about_are_dropped_and_other_warnings_kept():
    logger, buffer = capture("text")
    celery, flower = (
        logging.getLogger("celery.worker.control"),
        logging.getLogger("flower.inspector"),
    )
    for library in (celery, flower):
        library.handlers, library.propagate = logger.handlers, False
    try:
        missing = NotImplementedError("No result backend is configured.")
        celery.warning("Failed to mark task %s as revoked in backend: %s", "t-1", missing)
        celery.warning("Failed to mark task %s as revoked in backend: %s", "t-2", OSError("x"))
        flower.warning("Inspect method %s failed", "stats")
        flower.warning("Inspect method %s failed: %s", "conf", ConnectionError("refused"))
    finally:
        for library in (celery, flower):
            library.handlers, library.propagate = [], True
    text = buffer.getvalue()
    assert "t-1" not in text and "t-2" in text
    assert "stats" not in text and "Inspect method conf failed: refused" in text


@pytest.mark.slow
def test_a_workers_json_lines_tell_a_jobs_story_and_a_cancel_warns_nothing(
    make_app, settings, tmp_path
):
    # Given a worker process logging JSON
    app = make_app()
    worker = WorkerProcess(
        settings.replace(log_format="json", log_level="INFO"), "logs", tmp_path / "worker.log"
    )
    worker.start()
    client = app.test_client()
    try:
        # When a job runs through it, and another is cancelled at once
        job_id = client.post("/api/jobs/", json=job_payload()).get_json()["id"]
        wait_for_job(app, job_id, "completed", timeout=60)
        cancelled = client.post("/api/jobs/", json=job_payload()).get_json()["id"]
        client.post(f"/api/jobs/{cancelled}/cancel/")
        wait_until(lambda: "Tasks flagged as revoked" in worker.log())
    finally:
        worker.stop()
    # Then every line about the job is JSON naming it, its stages, tasks and attempts
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    story = [line for line in lines if line.get("job_id") == job_id]
    started = [line for line in story if line["message"] == "stage started"]
    assert [line["stage"] for line in started] == ["extraction", "analysis", "enrichment"]
    assert all(line["attempt"] == 1 and line["task_id"] for line in started)
    assert story[-1]["message"] == "job completed"
    # And nothing normal warns: neither the run nor the revokes of the cancelled job
    assert [line for line in lines if line["level"] in ("WARNING", "ERROR")] == []
    assert "Failed to mark task" not in worker.log()


def test_the_apis_lines_about_a_job_carry_its_id(client, caplog):
    caplog.handler.addFilter(logs.JobContextFilter())
    caplog.set_level(logging.INFO)
    job_id = client.post("/api/jobs/", json=job_payload()).get_json()["id"]
    client.post(f"/api/jobs/{job_id}/cancel/")
    about = [r.getMessage() for r in caplog.records if getattr(r, "job_id", None) == job_id]
    assert about == [
        "job created, stages extraction,analysis,enrichment",
        "job cancelled (was pending)",
    ]
