"""Probes (/healthz, /readyz) and the OpenAPI document with its interactive docs."""

from __future__ import annotations

import pytest

from tests.support import free_port


def test_healthz_answers_while_the_process_lives(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_healthz_answers_even_when_database_and_redis_are_down(make_app):
    app = make_app(
        database_url=f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/x",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    assert app.test_client().get("/healthz").status_code == 200


def test_readyz_is_200_when_database_and_redis_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.parametrize(
    ("down", "detail"),
    [
        (("redis",), "Not ready: redis unreachable."),
        (("database",), "Not ready: database unreachable."),
        (("database", "redis"), "Not ready: database and redis unreachable."),
    ],
)
def test_readyz_is_503_naming_what_is_unreachable(make_app, down, detail):
    # Given an app whose named dependencies listen nowhere
    changes = {}
    if "database" in down:
        changes["database_url"] = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/x"
    if "redis" in down:
        changes["redis_url"] = f"redis://127.0.0.1:{free_port()}/0"
    response = make_app(**changes).test_client().get("/readyz/")
    # Then readiness is a 503 problem that says which one failed
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["detail"] == detail
    for name in ("database", "redis"):
        assert (body["checks"][name] == "ok") is (name not in down)


def test_openapi_document_describes_the_job_routes(client):
    # When the OpenAPI document is fetched
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    # Then it is OpenAPI 3 and documents every route, validation as 400 problem details
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert set(paths["/api/jobs/"]) >= {"get", "post"}
    assert "get" in paths["/api/jobs/{job_id}/"]
    assert "post" in paths["/api/jobs/{job_id}/cancel/"]
    assert {"/healthz", "/readyz"} <= set(paths)
    create = paths["/api/jobs/"]["post"]
    assert "201" in create["responses"]
    # Validation is a 400, never webargs' 422: a 422 is only an Idempotency-Key reused
    assert "Idempotency-Key" in create["responses"]["422"]["description"]
    assert "400" in create["responses"] and "415" in create["responses"]
    bad_request = spec["components"]["responses"]["BAD_REQUEST"]
    assert list(bad_request["content"]) == ["application/problem+json"]
    job = spec["components"]["schemas"]["Job"]["properties"]
    assert "document_content" not in job and {"results", "errors"} <= set(job)


def test_interactive_docs_load_the_openapi_document(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "/api/openapi.json" in response.get_data(as_text=True)
