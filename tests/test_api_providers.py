"""GET /api/providers/: what pipeline_config.providers may name, per stage."""

from __future__ import annotations

from tests.factories import job_payload


def test_each_stage_lists_its_providers_and_the_one_it_runs_by_default(make_app):
    app = make_app(extractor_provider="slow")
    response = app.test_client().get("/api/providers/")
    assert response.status_code == 200
    body = response.json
    assert list(body) == ["extraction", "analysis", "enrichment"]
    assert body["extraction"]["default"] == "slow"
    assert {"fast", "slow"} <= set(body["extraction"]["available"])
    assert body["analysis"]["default"] in body["analysis"]["available"]


def test_every_listed_name_is_accepted_by_a_job(client):
    choices = client.get("/api/providers/").json
    for stage in choices:
        for name in choices[stage]["available"]:
            payload = job_payload()
            payload["pipeline_config"]["providers"] = {stage: name}
            assert client.post("/api/jobs/", json=payload).status_code == 201, (stage, name)
