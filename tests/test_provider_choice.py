"""Providers per job (pipeline_config.providers) and plug-ins installed as entry points."""

from __future__ import annotations

import importlib
import textwrap
import uuid
from typing import Any

import pytest

import providers
from gateway.errors import ConfigError
from providers.registry import accepted, register
from tests.factories import DOCUMENT, job_payload
from tests.support import assert_problem, wait_for_job


@register("extraction", "reversing")
class ReversingExtractor:
    """A provider a job can ask for by name."""

    def process(self, data: Any, *, timeout: float) -> dict[str, Any]:
        return {"text": str(data)[::-1]}


def test_a_job_runs_the_providers_it_chose_and_the_configured_ones_for_the_rest(
    app, client, worker
):
    # Given two jobs, one choosing its extractor, one not
    chosen = {"stages": ["extraction", "analysis"], "providers": {"extraction": "reversing"}}
    mine = client.post("/api/jobs/", json=job_payload(pipeline_config=chosen))
    plain = client.post("/api/jobs/", json=job_payload(pipeline_config={"stages": ["extraction"]}))
    assert mine.status_code == 201, mine.json
    assert mine.json["pipeline_config"] == chosen  # the choice is shown as given
    assert plain.json["pipeline_config"] == {"stages": ["extraction"]}

    # When they run
    done = wait_for_job(app, mine.json["id"], "completed")
    other = wait_for_job(app, plain.json["id"], "completed")

    # Then the first ran its own extractor, the configured analyzer, and the other the defaults
    extraction, analysis = (run.result for run in done.runs)
    assert extraction == {"text": DOCUMENT[::-1]}
    assert analysis is not None and "entities" in analysis
    assert other.runs[0].result is not None and other.runs[0].result["text"] == DOCUMENT
    listed = client.get("/api/jobs/").json["results"]
    assert {job["id"]: job["pipeline_config"] for job in listed}[mine.json["id"]] == chosen


def test_an_unknown_provider_name_gets_a_400_listing_the_valid_ones(client):
    config = {"stages": ["extraction", "analysis"], "providers": {"analysis": "gpt"}}

    response = client.post("/api/jobs/", json=job_payload(pipeline_config=config))

    body = assert_problem(response, 400)
    valid = ", ".join(providers.available("analysis"))
    assert body["errors"]["pipeline_config"] == [
        f"Unknown analysis provider 'gpt'. Valid analysis providers are: {valid}."
    ]
    assert client.get("/api/jobs/").json["results"] == []


def test_providers_for_a_stage_the_job_does_not_run_or_no_stage_at_all_get_a_400(client):
    not_run = {"stages": ["extraction"], "providers": {"enrichment": "default"}}
    no_stage = {"stages": ["extraction"], "providers": {"ocr": "fast"}}
    not_a_name = {"stages": ["extraction"], "providers": {"extraction": ""}}

    body = assert_problem(client.post("/api/jobs/", json=job_payload(pipeline_config=not_run)), 400)
    assert "which the job does not run" in body["errors"]["pipeline_config"][0]
    body = assert_problem(
        client.post("/api/jobs/", json=job_payload(pipeline_config=no_stage)), 400
    )
    assert "pipeline_config.providers.ocr.key" in body["errors"]
    for config in (not_a_name, {"stages": ["extraction"], "providers": ["fast"]}):
        assert_problem(client.post("/api/jobs/", json=job_payload(pipeline_config=config)), 400)


def test_a_factory_gets_only_the_options_its_signature_names():
    class Plain:
        def __init__(self, *, latency_scale: float) -> None: ...

    class Open:
        def __init__(self, **options: Any) -> None: ...

    options = {"latency_scale": 0.0, "failure_rate": 0.5}
    assert accepted(Plain, options) == {"latency_scale": 0.0}
    assert accepted(Open, options) == options
    assert accepted(ReversingExtractor, options) == {}


def _install_plugin(root, group_lines: str, module_source: str) -> str:
    """A distribution on sys.path as pip would lay it out: the module and its dist-info."""
    name = f"gw_plugin_{uuid.uuid4().hex[:8]}"
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(group_lines.format(module=name))
    return name


def test_a_provider_package_installed_with_an_entry_point_is_a_choice(
    make_app, worker_for, tmp_path, monkeypatch
):
    # Given a package, unknown to the gateway's code, that declares an extractor entry point
    _install_plugin(
        tmp_path,
        "[document_gateway.extraction]\nwordcount = {module}:WordCounter\n",
        """
        class WordCounter:
            def __init__(self, *, latency_scale=1.0):
                self.latency_scale = latency_scale

            def process(self, data, *, timeout):
                return {"text": str(data), "words": len(str(data).split())}
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()

    # When the gateway starts, configured to use it, and a job runs
    app = make_app(extractor_provider="wordcount")
    worker_for(app)
    assert "wordcount" in providers.available("extraction")
    client = app.test_client()
    created = client.post(
        "/api/jobs/", json=job_payload(pipeline_config={"stages": ["extraction"]})
    )
    job = wait_for_job(app, created.json["id"], "completed")

    # Then the plug-in served the stage
    assert job.runs[0].result == {"text": DOCUMENT, "words": len(DOCUMENT.split())}


def test_a_broken_plugin_stops_startup_naming_its_entry_point(make_app, tmp_path, monkeypatch):
    name = _install_plugin(
        tmp_path,
        "[document_gateway.analysis]\nbroken = {module}:Missing\n",
        "raise RuntimeError('cannot start')\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()

    with pytest.raises(ConfigError, match=f"broken = {name}:Missing .*cannot start"):
        make_app()
