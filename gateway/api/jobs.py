"""The job resource: create, list, read, cancel and retry, and a job's extracted text.

Views stay thin; gateway.jobs and gateway.texts do the work.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from gateway import jobs, logs, retries, texts
from gateway.api import auth, ratelimit
from gateway.api.errors import PROBLEM_JSON, ProblemSchema
from gateway.api.guards import counted, guarded
from gateway.api.parsing import MULTIPART, Blueprint
from gateway.api.schemas import (
    IdempotencyHeaderSchema,
    JobCreateSchema,
    JobListQuerySchema,
    JobPageSchema,
    JobSchema,
    JobUploadSchema,
)
from gateway.db import Database
from gateway.errors import OverloadedError
from gateway.idempotency import IdempotentRequest
from gateway.jobs import Creation, JobSnapshot
from gateway.services import get_services

BUSY_RETRY_AFTER = 2  # seconds a client is asked to wait while the queues are full

blp = Blueprint("jobs", __name__, url_prefix="/api/jobs", description="Document processing jobs")
blp.before_request(auth.authenticate)
blp.before_request(ratelimit.check)  # after authentication: the budget is the key's
blp.after_request(ratelimit.add_headers)


def _database() -> Database:
    return get_services().database


def _problem(status: int, description: str) -> Any:
    return blp.alt_response(
        status, schema=ProblemSchema, content_type=PROBLEM_JSON, description=description
    )


@blp.route("/")
class Jobs(MethodView):
    """The collection of jobs."""

    # Schemas as instances: webargs builds a schema given as a class anew for every request.
    @blp.arguments(JobListQuerySchema(), location="query")
    @blp.response(200, JobPageSchema, headers=counted())
    @guarded(blp)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List jobs, newest first, optionally filtered by status and document type."""
        with _database().reader() as session:
            page = jobs.list_jobs(
                session,
                statuses=query["status"],
                document_type=query.get("document_type"),
                limit=query["limit"],
                cursor=query.get("cursor"),
                tenant=auth.tenant(),
            )
        return {"results": page.jobs, "next_cursor": page.next_cursor}

    @blp.arguments(IdempotencyHeaderSchema(), location="headers")
    @blp.arguments(JobCreateSchema())
    @blp.doc(requestBody={"content": {MULTIPART: {"schema": JobUploadSchema}}})
    @blp.response(
        201,
        JobSchema,
        headers=counted(
            {
                "Location": {"schema": {"type": "string"}},
                "Idempotent-Replayed": {
                    "description": "`true` when the answer replays an earlier create under the "
                    "same Idempotency-Key (the job is shown as it is now)",
                    "schema": {"type": "string", "enum": ["true"]},
                },
            }
        ),
    )
    @_problem(409, "A request under the same Idempotency-Key is still in progress (Retry-After)")
    @_problem(413, "Body larger than MAX_CONTENT_LENGTH, or a file larger than MAX_DOCUMENT_BYTES")
    @_problem(415, "Content-Type is neither application/json nor multipart/form-data")
    @_problem(422, "The Idempotency-Key was already used with a different body")
    @_problem(503, "Too many jobs waiting, or the database unreachable (see Retry-After)")
    @guarded(blp, writes=True)
    def post(
        self, headers: dict[str, Any], body: dict[str, Any]
    ) -> tuple[JobSnapshot, dict[str, str]]:
        """Create a job and hand its pipeline to the workers; returns before any stage runs.

        The document comes as text (`document_content`), as base64 with its declared type
        (`document_base64`, `content_type`), or, in a multipart/form-data body, as a `file` part.
        With an `Idempotency-Key`, a retry with the same body answers with the job the first
        request created, and creates nothing.
        """
        pipeline = get_services().pipeline
        if not pipeline.has_room():
            raise OverloadedError(retry_after=BUSY_RETRY_AFTER)
        fields: dict[str, Any] = {
            "document_name": body["document_name"],
            "document_type": body["document_type"],
            "document_content": body.get("document_content", ""),
            "document_file": body.get("document_file"),
            "stages": body["pipeline_config"]["stages"],
            "providers": body["pipeline_config"].get("providers"),
            "tenant": auth.tenant(),
        }
        key = headers.get("idempotency_key")
        # One statement on PostgreSQL (gateway.fused): no BEGIN and COMMIT around it.
        with _database().transition() as session:
            if key is None:
                creation = Creation(jobs.create_job(session, **fields), replayed=False)
            else:
                ttl = get_services().settings.idempotency_ttl
                request = IdempotentRequest.of(key, _fingerprinted(body), ttl)
                creation = jobs.create_job_once(session, request, **fields)
        job = creation.job
        logs.bind(job_id=job.id)  # the request's lines from here on are about this job
        location = {"Location": f"/api/jobs/{job.id}/"}
        if creation.replayed:
            return job, {**location, "Idempotent-Replayed": "true"}
        # After the commit nothing may fail the request: if the broker refuses the chain, the
        # job waits pending and the relay sends it.
        pipeline.start(job)
        return job, location


def _fingerprinted(body: dict[str, Any]) -> dict[str, Any]:
    """The body as its Idempotency-Key fingerprint sees it: an upload by its digest."""
    upload = body.get("document_file")
    if upload is None:
        return body
    digest = hashlib.sha256(upload.content).hexdigest()
    return {**body, "document_file": [digest, upload.content_type, upload.filename]}


@blp.route("/<job_id>/")
class JobById(MethodView):
    """One job."""

    @blp.response(200, JobSchema, headers=counted())
    @_problem(404, "No job has this id")
    @guarded(blp)
    def get(self, job_id: str) -> JobSnapshot:
        """The job with its status and the results of every stage so far."""
        with _database().read() as connection:
            return jobs.get_job(connection, job_id, auth.tenant())


@blp.route("/<job_id>/text/")
class JobText(MethodView):
    """A job's extracted text, whole."""

    @blp.response(
        200,
        {"type": "string"},
        content_type="text/plain",
        description="The text, UTF-8 (`text/plain; charset=utf-8`)",
        headers=counted(),
    )
    @_problem(404, "No job has this id, or its extraction has not completed")
    @guarded(blp)
    def get(self, job_id: str) -> Response:
        """The whole text the extraction stage produced; 404 until that stage completed.

        Served whether the job shows it inline (`text`) or refers to it (`text_ref`).
        """
        with _database().reader() as session:
            text = texts.read_text(session, job_id, auth.tenant())
        # A lone surrogate (a plug-in's text on SQLite) has no UTF-8 form: it becomes "?"
        # rather than a failed response.
        body = text.encode("utf-8", "replace")
        return current_app.response_class(body, mimetype="text/plain")


@blp.route("/<job_id>/cancel/", methods=["POST"])
@blp.response(200, JobSchema, headers=counted())
@_problem(400, "The job already finished")
@_problem(404, "No job has this id")
@guarded(blp, writes=True)
def cancel(job_id: str) -> JobSnapshot:
    """Cancel a pending or processing job; stages not yet run are revoked."""
    with _database().session() as session:
        cancellation = jobs.cancel_job(session, job_id, auth.tenant())
    get_services().pipeline.revoke(cancellation.unfinished_task_ids)
    return cancellation.job


@blp.route("/<job_id>/retry/", methods=["POST"])
@blp.response(200, JobSchema, headers=counted())
@_problem(400, "The job is not failed")
@_problem(404, "No job has this id")
@guarded(blp, writes=True)
def retry(job_id: str) -> JobSnapshot:
    """Resume a failed job from the stage that failed; the stages that completed are kept."""
    with _database().session() as session:
        resumed = retries.retry_job(session, job_id, auth.tenant())
    get_services().pipeline.start(resumed.job, resumed.rest)
    return resumed.job
