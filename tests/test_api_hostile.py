"""Hostile requests: each gets a small 4xx problem, never a 500, a traceback or a flood."""

from __future__ import annotations

import http.client
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.factories import job_payload
from tests.support import assert_problem, served


def post_raw(client: Any, data: str | bytes) -> Any:
    return client.post("/api/jobs/", data=data, content_type="application/json")


def no_error_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_body_nested_5000_levels_deep_is_a_400_without_a_traceback(client, caplog):
    response = post_raw(client, "[" * 5000 + "]" * 5000)

    problem = assert_problem(response, 400)
    assert problem["errors"] == {"body": ["Invalid JSON body: Nesting deeper than 32 levels."]}
    assert no_error_logged(caplog)


def test_nesting_is_refused_past_32_levels_only(client):
    def nested(depth: int) -> str:  # the body object is the first level
        return json.dumps(job_payload(document_name=None)).replace(
            "null", "[" * (depth - 1) + "]" * (depth - 1)
        )

    deep = assert_problem(post_raw(client, nested(33)), 400)
    assert deep["errors"] == {"body": ["Invalid JSON body: Nesting deeper than 32 levels."]}
    # 32 levels are parsed: the schema then says what is wrong with the field
    shallow = assert_problem(post_raw(client, nested(32)), 400)
    assert shallow["errors"] == {"document_name": ["Not a valid string."]}


@pytest.mark.parametrize("number", ["1" * 5000, "-" + "9" * 5000, "1." + "5" * 5000, "1" * 101])
def test_a_number_too_long_to_be_ours_is_a_400(client, caplog, number):
    body = json.dumps(job_payload()).replace('"My Document"', number)

    problem = assert_problem(post_raw(client, body), 400)
    assert problem["errors"] == {
        "body": ["Invalid JSON body: Numbers may have at most 100 characters."]
    }
    assert no_error_logged(caplog)


def test_a_number_of_100_digits_is_json_and_the_schema_judges_it(client):
    body = json.dumps(job_payload()).replace('"My Document"', "1" * 100)

    problem = assert_problem(post_raw(client, body), 400)
    assert problem["errors"] == {"document_name": ["Not a valid string."]}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(client, constant):
    body = json.dumps(job_payload()).replace('"My Document"', constant)

    problem = assert_problem(post_raw(client, body), 400)
    assert problem["errors"] == {"body": [f"Invalid JSON body: {constant} is not valid JSON."]}


def test_a_body_that_is_not_utf8_is_a_400(client):
    body = json.dumps(job_payload(document_name="Caf\u00e9"), ensure_ascii=False).encode("latin-1")

    problem = assert_problem(post_raw(client, body), 400)
    assert problem["errors"] == {"body": ["Invalid JSON body: not UTF-8."]}


def chunked_post(base_url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST `body` with Transfer-Encoding: chunked (no Content-Length), in 1 KiB chunks."""
    connection = http.client.HTTPConnection(urlsplit(base_url).netloc, timeout=10)
    try:
        chunks = (body[i : i + 1024] for i in range(0, len(body), 1024))
        headers = {"Content-Type": "application/json"}
        connection.request("POST", "/api/jobs/", body=chunks, headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_chunked_body_over_the_limit_is_a_413_and_one_within_it_is_read(make_app):
    # Given the API served over HTTP with a 4 KiB body limit
    app = make_app(max_content_length=4096)
    with served(app) as base_url:
        # When a chunked body (no Content-Length) goes over the limit, then it is a 413
        status, problem = chunked_post(
            base_url, json.dumps(job_payload(document_content="x" * 5000)).encode()
        )
        assert status == 413, problem
        assert "4096" in problem["detail"]

        # And one of exactly the limit is read whole and creates the job
        body = json.dumps(job_payload(document_content="x")).encode()
        padded = json.dumps(job_payload(document_content="x" * (4096 - len(body) + 1))).encode()
        assert len(padded) == 4096
        status, job = chunked_post(base_url, padded)
        assert status == 201, job
