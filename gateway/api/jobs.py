"""The job resource: create, list, read and cancel. Views stay thin; gateway.jobs does the work."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from gateway import jobs
from gateway.api.errors import PROBLEM_JSON, ProblemSchema
from gateway.api.parsing import Blueprint
from gateway.api.schemas import JobCreateSchema, JobListQuerySchema, JobPageSchema, JobSchema
from gateway.db import Database
from gateway.models import Job

blp = Blueprint("jobs", __name__, url_prefix="/api/jobs", description="Document processing jobs")


def _database() -> Database:
    return current_app.extensions["gateway"].database  # type: ignore[no-any-return]


def _problem(status: int, description: str) -> Any:
    return blp.alt_response(
        status, schema=ProblemSchema, content_type=PROBLEM_JSON, description=description
    )


@blp.route("/")
class Jobs(MethodView):
    """The collection of jobs."""

    @blp.arguments(JobListQuerySchema, location="query")
    @blp.response(200, JobPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List jobs, newest first, optionally filtered by status and document type."""
        with _database().session() as session:
            page = jobs.list_jobs(
                session,
                statuses=query["status"],
                document_type=query.get("document_type"),
                limit=query["limit"],
                cursor=query.get("cursor"),
            )
        return {"results": page.jobs, "next_cursor": page.next_cursor}

    @blp.arguments(JobCreateSchema)
    @blp.response(201, JobSchema, headers={"Location": {"schema": {"type": "string"}}})
    @_problem(413, "Body larger than MAX_CONTENT_LENGTH")
    @_problem(415, "Content-Type is not application/json")
    @_problem(503, "Database unreachable (see Retry-After)")
    def post(self, body: dict[str, Any]) -> tuple[Job, dict[str, str]]:
        """Create a job and hand its pipeline to the workers; returns before any stage runs."""
        with _database().session() as session:
            job = jobs.create_job(
                session,
                document_name=body["document_name"],
                document_type=body["document_type"],
                document_content=body["document_content"],
                stages=body["pipeline_config"]["stages"],
            )
        # If the broker is down this returns False: the job stays pending for the relay.
        current_app.extensions["pipeline"].dispatch(job.id)
        return job, {"Location": f"/api/jobs/{job.id}/"}


@blp.route("/<job_id>/")
class JobById(MethodView):
    """One job."""

    @blp.response(200, JobSchema)
    @_problem(404, "No job has this id")
    def get(self, job_id: str) -> Job:
        """The job with its status and the results of every stage so far."""
        with _database().session() as session:
            return jobs.get_job(session, job_id)


@blp.route("/<job_id>/cancel/", methods=["POST"])
@blp.response(200, JobSchema)
@_problem(400, "The job already finished")
@_problem(404, "No job has this id")
def cancel(job_id: str) -> Job:
    """Cancel a pending or processing job; stages not yet run are revoked."""
    with _database().session() as session:
        cancellation = jobs.cancel_job(session, job_id)
    current_app.extensions["pipeline"].revoke(cancellation.unfinished_task_ids)
    return cancellation.job
