"""Every row of the contract's error table, as RFC 9457 problem details, and never a 500 for bad input."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from gateway import jobs
from tests.factories import job_payload
from tests.support import assert_problem, free_port

INVALID_COMBINATION = (
    "Invalid stage combination. Valid combinations are: ['extraction'], "
    "['extraction', 'analysis'], ['extraction', 'analysis', 'enrichment']."
)


def post(client: Any, body: Any) -> Any:
    return client.post("/api/jobs/", data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    "field", ["document_name", "document_type", "document_content", "pipeline_config"]
)
def test_a_missing_field_is_named_in_errors(client, field):
    body = job_payload()
    del body[field]
    problem = assert_problem(post(client, body), 400)
    assert problem["errors"] == {field: ["Missing data for required field."]}


def test_an_unknown_field_is_refused(client):
    problem = assert_problem(post(client, job_payload(priority="high")), 400)
    assert problem["errors"] == {"priority": ["Unknown field."]}


def test_an_unknown_field_inside_pipeline_config_is_refused(client):
    body = job_payload(pipeline_config={"stages": ["extraction"], "retries": 3})
    problem = assert_problem(post(client, body), 400)
    assert problem["errors"] == {"pipeline_config.retries": ["Unknown field."]}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("document_name", 5, "Not a valid string."),
        ("document_type", ["important"], "Not a valid string."),
        ("document_content", None, "Field may not be null."),
        ("pipeline_config", ["extraction"], "Invalid input type."),
        ("document_name", "", "Length must be between 1 and 255."),
        ("document_name", "x" * 256, "Length must be between 1 and 255."),
        ("document_type", "t" * 101, "Length must be between 1 and 100."),
    ],
)
def test_a_field_of_the_wrong_type_or_size_is_refused(client, field, value, message):
    problem = assert_problem(post(client, job_payload(**{field: value})), 400)
    assert problem["errors"] == {field: [message]}


@pytest.mark.parametrize(
    ("text", "message"),
    [("a\x00b", "Must not contain NUL characters."), ("\ud800", "Must be valid Unicode text.")],
)
def test_text_the_database_cannot_store_is_a_400_not_a_500(client, text, message):
    problem = assert_problem(post(client, job_payload(document_content=text)), 400)
    assert problem["errors"] == {"document_content": [message]}


def test_a_body_that_is_not_json_is_refused(client):
    response = client.post("/api/jobs/", data="{not json", content_type="application/json")
    problem = assert_problem(response, 400)
    assert problem["errors"] == {"body": ["Invalid JSON body."]}


@pytest.mark.parametrize("body", [[], "a job", 42, None])
def test_a_json_body_that_is_not_an_object_is_refused(client, body):
    problem = assert_problem(post(client, body), 400)
    assert problem["errors"] == {"body": ["Invalid input type."]}


def test_an_empty_json_body_lists_every_missing_field(client):
    response = client.post("/api/jobs/", data="", content_type="application/json")
    problem = assert_problem(response, 400)
    assert set(problem["errors"]) == {
        "document_name",
        "document_type",
        "document_content",
        "pipeline_config",
    }


@pytest.mark.parametrize(
    "stages",
    [
        [],
        ["analysis"],
        ["analysis", "extraction"],
        ["extraction", "enrichment"],
        ["extraction", "enrichment", "analysis"],
        ["enrichment"],
    ],
)
def test_a_stage_list_that_is_not_a_valid_prefix_gets_the_seed_message(client, stages):
    problem = assert_problem(post(client, job_payload(pipeline_config={"stages": stages})), 400)
    assert problem["errors"] == {"pipeline_config": [INVALID_COMBINATION]}


def test_the_seed_example_reports_the_combination_and_the_missing_fields(client):
    problem = assert_problem(post(client, {"pipeline_config": {"stages": ["analysis"]}}), 400)
    assert problem["errors"]["pipeline_config"] == [INVALID_COMBINATION]
    assert problem["errors"]["document_name"] == ["Missing data for required field."]


def test_an_unknown_stage_is_named(client):
    body = job_payload(pipeline_config={"stages": ["extraction", "ocr"]})
    problem = assert_problem(post(client, body), 400)
    assert problem["errors"] == {
        "pipeline_config": [
            "Unknown stage 'ocr'. Valid stages are: extraction, analysis, enrichment."
        ]
    }


def test_a_duplicated_stage_is_named(client):
    body = job_payload(pipeline_config={"stages": ["extraction", "extraction"]})
    problem = assert_problem(post(client, body), 400)
    assert problem["errors"] == {"pipeline_config": ["Duplicated stage 'extraction'."]}


@pytest.mark.parametrize(
    ("pipeline_config", "errors"),
    [
        ({"stages": "extraction"}, {"pipeline_config.stages": ["Not a valid list."]}),
        ({"stages": [1]}, {"pipeline_config.stages.0": ["Not a valid string."]}),
        ({}, {"pipeline_config.stages": ["Missing data for required field."]}),
        ({"stages": None}, {"pipeline_config.stages": ["Field may not be null."]}),
    ],
)
def test_a_stage_list_of_the_wrong_shape_is_refused(client, pipeline_config, errors):
    problem = assert_problem(post(client, job_payload(pipeline_config=pipeline_config)), 400)
    assert problem["errors"] == errors


def test_a_refused_job_is_not_stored(client, session):
    # Given a request that fails validation
    assert_problem(post(client, job_payload(pipeline_config={"stages": ["analysis"]})), 400)
    # Then nothing was written
    assert jobs.list_jobs(session).jobs == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs/0b5f4c1e-8c1d-4a52-9d53-1c6f1a1b2c3d/",
        "/api/jobs/not-a-uuid/",
        "/api/jobs/1/",
        "/api/jobs/%00/",
    ],
)
def test_an_unknown_or_malformed_job_id_is_not_found(client, path):
    assert_problem(client.get(path), 404, "Not found.")
    assert_problem(client.post(path + "cancel/"), 404, "Not found.")


def test_an_unknown_route_is_a_404_problem(client):
    assert_problem(client.get("/api/nothing-here"), 404, "Not found.")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/jobs/", {"GET", "POST"}),
        ("PUT", "/api/jobs", {"GET", "POST"}),
        ("DELETE", "/api/jobs/0b5f4c1e-8c1d-4a52-9d53-1c6f1a1b2c3d", {"GET"}),
        ("GET", "/api/jobs/0b5f4c1e-8c1d-4a52-9d53-1c6f1a1b2c3d/cancel/", {"POST"}),
    ],
)
def test_a_wrong_method_is_a_405_problem_with_allow(client, method, path, allowed):
    response = client.open(path, method=method)
    assert_problem(response, 405)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_a_body_over_the_limit_is_a_413_problem(make_app):
    client = make_app(max_content_length=1024).test_client()
    response = post(client, job_payload(document_content="x" * 2048))
    problem = assert_problem(response, 413)
    assert "1024" in problem["detail"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "document_name=x", "content_type": "application/x-www-form-urlencoded"},
        {"data": '{"document_name": "x"}', "content_type": "text/plain"},
        {"data": '{"document_name": "x"}'},
    ],
)
def test_a_body_that_is_not_declared_json_is_a_415_problem(client, kwargs):
    assert_problem(client.post("/api/jobs/", **kwargs), 415)


def test_an_unreachable_database_is_a_503_with_retry_after(make_app, caplog):
    # Given an app whose database listens nowhere
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/x"
    client = make_app(database_url=url).test_client()
    caplog.set_level(logging.WARNING, logger="gateway.api.errors")
    # Then every request that needs it is a 503 problem telling the client when to retry
    for response in (
        post(client, job_payload()),
        client.get("/api/jobs/"),
        client.get("/api/jobs/0b5f4c1e-8c1d-4a52-9d53-1c6f1a1b2c3d/"),
        client.post("/api/jobs/0b5f4c1e-8c1d-4a52-9d53-1c6f1a1b2c3d/cancel/"),
    ):
        assert_problem(response, 503)
        assert int(response.headers["Retry-After"]) > 0
    assert "database unavailable" in caplog.text


def test_an_unexpected_error_is_a_logged_500_problem(app, caplog):
    # Given a route whose code fails in a way nobody planned for
    def broken() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/api/broken", view_func=broken)
    # When it is called
    response = app.test_client().get("/api/broken")
    # Then the client gets a problem without internals, and the log has the traceback
    problem = assert_problem(response, 500, "An unexpected error occurred.")
    assert "boom" not in str(problem)
    assert "RuntimeError: boom" in caplog.text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("status=done", "status.0"),
        ("status=pending&status=bogus", "status.1"),
        ("cursor=not-a-cursor", "cursor"),
        ("document_type=a%00b", "document_type"),
    ],
)
def test_bad_list_arguments_are_a_400_naming_the_argument(client, query, field):
    problem = assert_problem(client.get(f"/api/jobs/?{query}"), 400)
    assert list(problem["errors"]) == [field]
