"""The API fuzzed against its own OpenAPI document (schemathesis): whatever the request, valid or
not, the answer is documented, matches its schema, and is never a server error.

Requests go through the app's WSGI interface, against the real PostgreSQL and Redis of the
suite. Examples are derandomized (the Hypothesis profile in conftest), so every run sends
the same requests. Schema-valid requests may still be refused (a well-formed cursor that
was never issued, a prefix rule the schema only partly states), so the one check left out
is that valid data is accepted.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateway import jobs, runs
from gateway.cursor import encode_cursor
from tests.factories import STATUSES, make_job, make_job_in

# Per operation and mode; the whole run stays well under a minute on a loaded machine.
EXAMPLES = 60

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# Operations without a body or query parameters have nothing that negative data can break.
FUZZED = {
    "GET /api/jobs/": (POSITIVE, NEGATIVE),
    "POST /api/jobs/": (POSITIVE, NEGATIVE),
    "GET /api/jobs/{job_id}/": (POSITIVE,),
    "GET /api/jobs/{job_id}/text/": (POSITIVE,),
    "POST /api/jobs/{job_id}/cancel/": (POSITIVE,),
    "POST /api/jobs/{job_id}/retry/": (POSITIVE,),
    "GET /api/jobs/{job_id}/events/": (POSITIVE,),
    "GET /api/providers/": (POSITIVE,),
    "GET /healthz": (POSITIVE,),
    "GET /readyz": (POSITIVE,),
}


@pytest.fixture
def app(make_app):
    # A live stream of an unfinished job ends after SSE_MAX_DURATION: at once, here. The rate
    # limiter counts every request but refuses none, so that each generated request reaches
    # its route (a real 429 is checked against the document in test_ratelimit).
    return make_app(
        sse_max_duration=0.01, rate_limit="10000/second", rate_limit_create="10000/second"
    )


def api_schema(app: object) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


@pytest.fixture
def stored_jobs(session) -> list[jobs.JobSnapshot]:
    """A stored job in each status, so that reads, lists and cancels meet real ones; of the
    completed ones, one shows its text inline and one refers to it."""
    stored = [make_job_in(session, status, ["extraction"]) for status in STATUSES]
    referenced = make_job(session, ["extraction"])
    runs.start_stage(session, referenced.id, "extraction")
    runs.complete_stage(
        session, referenced.id, "extraction", {"text": "Hi there"}, inline_text_limit=4
    )
    return [*stored, referenced]


def test_every_documented_operation_is_fuzzed(app):
    documented = set()
    for result in api_schema(app).get_all_operations():
        assert isinstance(result, Ok), result
        documented.add(result.ok().label)
    assert documented == set(FUZZED)


@pytest.mark.parametrize(
    ("label", "mode"), [(label, mode) for label, modes in FUZZED.items() for mode in modes]
)
def test_generated_requests_get_documented_answers_and_never_a_server_error(
    app, caplog, stored_jobs, label, mode
):
    method, path = label.split(" ")
    operation = api_schema(app)[path][method]
    cases = operation.as_strategy(generation_mode=mode)
    # Generated job ids are never found and generated cursors never valid: cases also use
    # the ids of the stored jobs, or cursors pointing after them.
    if "{job_id}" in path:
        ids = [job.id for job in stored_jobs]
        stored = st.sampled_from(ids).flatmap(
            lambda job_id: operation.as_strategy(mode, path_parameters={"job_id": job_id})
        )
        cases = st.one_of(stored, cases)
    elif label == "GET /api/jobs/":
        cursors = [encode_cursor(job.created_at, job.id) for job in stored_jobs]
        stored = st.sampled_from(cursors).flatmap(
            lambda cursor: operation.as_strategy(mode, query={"cursor": cursor})
        )
        cases = st.one_of(stored, cases)

    @settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
    @given(case=cases)
    def answers_as_documented(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    answers_as_documented()

    # No request made the app log an error (a traceback) either
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("label", list(FUZZED))
def test_boundary_requests_get_documented_answers_and_never_a_server_error(app, caplog, label):
    # schemathesis' coverage phase: values at and just past every documented bound (lengths,
    # ranges, enums, patterns), missing and duplicated parameters, undocumented methods
    schema = api_schema(app)
    method, path = label.split(" ")
    operation = schema[path][method]
    config = schema.config.generation_for(operation=operation, phase="coverage")
    cases = schema.iter_coverage_cases(
        operation, generation_modes=[POSITIVE, NEGATIVE], generation_config=config
    )
    for case in cases:
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
