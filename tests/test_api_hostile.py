"""Hostile requests: each gets a small 4xx problem, never a 500, a traceback or a flood."""

from __future__ import annotations

import base64
import http.client
import json
import logging
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.factories import job_payload
from tests.support import assert_problem, served

SMALL = 8 * 1024  # bytes: what a report of any bad body must stay under


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


def test_100000_integers_as_stages_get_a_small_400(client):
    body = json.dumps(job_payload(pipeline_config={"stages": list(range(100_000))}))

    response = post_raw(client, body)

    problem = assert_problem(response, 400)
    assert problem["errors"] == {"pipeline_config.stages": ["At most 10 items are allowed."]}
    assert len(response.get_data()) < SMALL


def test_20000_unknown_stage_names_get_a_small_400(client):
    stages = [f"stage-{i}" for i in range(20_000)]

    response = post_raw(client, json.dumps(job_payload(pipeline_config={"stages": stages})))

    assert_problem(response, 400)
    assert len(response.get_data()) < SMALL


def test_a_report_keeps_20_messages_and_says_how_many_more_there_were(client):
    # Given a body with 5000 unknown fields, each of them an error
    body = job_payload(**{f"field_{i}": i for i in range(5000)})

    response = post_raw(client, json.dumps(body))

    # Then the first 20 are reported, and the rest counted
    problem = assert_problem(response, 400)
    assert sum(len(messages) for messages in problem["errors"].values()) == 20
    assert problem["errors_omitted"] == 4980
    assert "4980 more messages were left out" in problem["detail"]
    assert len(response.get_data()) < SMALL


def test_long_names_and_values_are_cut_in_the_report(client):
    # Given an unknown field with a 100,000-character name and an unknown stage as long
    body = job_payload(pipeline_config={"stages": ["extraction", "s" * 100_000]})
    body["f" * 100_000] = 1

    response = post_raw(client, json.dumps(body))

    # Then both are named, cut short
    problem = assert_problem(response, 400)
    [name] = [name for name in problem["errors"] if name.startswith("f")]
    assert len(name) == 100 and name.endswith("…")
    [message] = problem["errors"]["pipeline_config"]
    assert message.startswith("Unknown stage 'sss") and len(message) < 120
    assert len(response.get_data()) < SMALL


def test_a_report_of_non_ascii_input_stays_bounded(client):
    # Given 50 unknown fields whose long names are emoji (four bytes each in UTF-8)
    body = job_payload(**{f"{i}" + "\U0001f600" * 1000: 1 for i in range(50)})

    response = post_raw(client, json.dumps(body))

    # Then the report is bounded in bytes too
    problem = assert_problem(response, 400)
    assert len(problem["errors"]) == 20
    assert len(response.get_data()) < 4 * SMALL


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        b64("[" * 5000 + "]" * 5000),
        b64("[" * 100 + "]" * 100),
        b64('[[["2026-01-01T00:00:00+00:00"]], "0b5f4c1e-8c1d-4a52-9d53-1c6f1a1b2c3d"]'),
        b64('{"2026-01-01T00:00:00+00:00": 1, "0b5f4c1e-8c1d-4a52-9d53-1c6f1a1b2c3d": 2}'),
        b64('["2026-01-01T00:00:00+00:00", "0b5f4c1e-8c1d-4a52-9d53-1c6f1a1b2c3d", 1]'),
        b64("[1" + "0" * 5000 + ', "x"]'),
        "A" * 10_000,
        b64('["2026-01-01T00:00:00+00:00", "0b5f4c1e-8c1d-4a52-9d53-1c6f1a1b2c3d"]') + "!!",
    ],
)
def test_a_cursor_that_is_not_ours_is_a_400(client, caplog, cursor):
    problem = assert_problem(client.get(f"/api/jobs/?cursor={quote(cursor)}"), 400)
    assert problem["errors"] == {"cursor": ["Invalid cursor."]}
    assert no_error_logged(caplog)


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("&".join(["status=pending"] * 6), {"status": ["At most 5 items are allowed."]}),
        ("&".join(["status=bogus"] * 100_000), {"status": ["At most 5 items are allowed."]}),
        ("document_type=" + "t" * 101, {"document_type": ["Longer than maximum length 100."]}),
    ],
)
def test_oversized_list_arguments_are_a_400(client, query, errors):
    response = client.get(f"/api/jobs/?{query}")

    assert assert_problem(response, 400)["errors"] == errors
    assert len(response.get_data()) < SMALL


def test_control_characters_in_a_path_do_not_reach_the_log(app, caplog):
    # Given a route that fails unexpectedly, so that the request's path is logged
    def broken(rest: str) -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/api/broken/<rest>", view_func=broken)

    # When its path holds a terminal escape sequence and a line break
    assert_problem(app.test_client().get("/api/broken/%1b%5b2J%0afake%20line"), 500)

    # Then the log line shows them escaped
    [record] = [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert record.getMessage() == "unexpected error on GET /api/broken/\\x1b[2J\\x0afake line"


def test_responses_carry_non_ascii_text_as_utf8(client):
    response = client.post("/api/jobs/", json=job_payload(document_name="Caf\u00e9 \u65e5\u672c"))

    assert response.status_code == 201
    assert '"document_name":"Caf\u00e9 \u65e5\u672c"'.encode() in response.get_data()


def test_a_lone_surrogate_in_a_stored_value_cannot_break_a_response(app):
    # PostgreSQL refuses them, but a plug-in provider's result on SQLite could hold one
    with app.test_request_context():
        response = app.json.response({"text": "a\ud800b"})

    assert json.loads(response.get_data()) == {"text": "a\ud800b"}
