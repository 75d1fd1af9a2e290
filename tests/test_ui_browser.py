"""The web page in a real browser: Debian's Chromium, driven by Playwright, against the API
served over HTTP and a live Celery worker.

GATEWAY_SCREENSHOTS=docs/images saves the job page (finished, mid-run, at phone width) there:
the pictures of the README and docs/ui.md.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import job_payload, make_pdf
from tests.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    api_key,
    chromium_missing,
    keyed_settings,
    load_job,
    served,
    wait_for_job,
)

pytestmark = pytest.mark.skipif(bool(chromium_missing()), reason=chromium_missing() or "")

SCREENSHOTS = os.environ.get("GATEWAY_SCREENSHOTS")
EXAMPLE = "Hi, my name is Gabriela, I want to cancel my subscription. SubscriptionID 2342."
JOB_PAGE = re.compile(r"/ui/jobs/([0-9a-f-]{36})/$")
STAGES = ("extraction", "analysis", "enrichment")
# Streams end at each terminal event, and dead ones are noticed at the next heartbeat.
LIVE = {"sse_heartbeat": 0.5, "sse_max_streams": 8}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage); fails the test on any uncaught script error."""
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect

    return expect(locator)


def snap(page, name: str, **options: Any) -> None:
    """Save a screenshot for the docs, when asked to (GATEWAY_SCREENSHOTS=dir)."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), **options)


def badge(page, stage: str) -> Any:
    return page.locator(f'li[data-stage="{stage}"] .badge')


def create(app, **overrides: Any) -> str:
    response = app.test_client().post("/api/jobs/", json=job_payload(**overrides))
    assert response.status_code == 201
    return str(response.json["id"])


def test_a_submitted_text_runs_every_stage_to_completed_with_its_entities_marked(
    make_app, worker_for, page
):
    # Given the API and a worker; the simulated analyzer and enricher are configured
    app = make_app(provider_latency_scale=0.3, **LIVE)
    worker_for(app)
    with served(app) as base:
        # When the example text is submitted with every stage,
        page.goto(f"{base}/ui/")
        page.get_by_role("button", name="Fill in an example").click()
        page.get_by_label("Name", exact=True).fill("Cancellation request")
        page.get_by_label("Extraction → analysis → enrichment").check()
        # and the real analyzer and enricher chosen for this job
        page.get_by_label("Analysis provider").select_option("default")
        page.get_by_label("Enrichment provider").select_option("default")
        page.get_by_role("button", name="Submit").click()
        page.wait_for_url(JOB_PAGE)
        match = JOB_PAGE.search(page.url)
        assert match
        job_id = match.group(1)
        # Then the job page follows it to the end: every stage completed
        expect(page.locator("#job-status")).to_have_text("completed")
        for stage in STAGES:
            expect(badge(page, stage)).to_have_text("completed")
        expect(page.locator("#live-state")).to_have_text("finished")
        expect(page.locator('li[data-stage="analysis"]')).to_contain_text("provider default")
        # the entities the analysis found are marked in the extracted text
        marks = page.locator("#doc-text mark")
        expect(marks.and_(page.locator('[data-kind="PERSON"]'))).to_have_text(
            ["Gabriela Souza"] * 2
        )
        expect(marks.and_(page.locator('[data-kind="IDENTIFIER"]'))).to_have_text("2342")
        expect(marks.and_(page.locator('[data-kind="EMAIL"]'))).to_have_text("gabriela@example.com")
        # enrichment reads as a table
        enrichment = page.locator("#enrichment-result table")
        expect(enrichment.locator("tr", has_text="Category")).to_contain_text("cancellation")
        expect(page.get_by_role("button", name="Cancel job")).to_be_disabled()
        snap(page, "job-finished", clip={"x": 0, "y": 0, "width": 1000, "height": 1180})
        # and the raw JSON behind its toggle is the job as the API gives it
        raw = page.locator("#raw-json")
        expect(raw).to_be_hidden()
        page.get_by_text("Raw JSON").click()
        expect(raw).to_be_visible()
        assert (
            json.loads(raw.text_content() or "")
            == app.test_client().get(f"/api/jobs/{job_id}/").json
        )
        page.set_viewport_size({"width": 390, "height": 844})
        page.evaluate("window.scrollTo(0, 0)")
        snap(page, "job-finished-phone")


def test_a_chosen_pdf_is_uploaded_and_its_text_extracted(make_app, worker_for, page):
    # Given the real extractor
    app = make_app(extractor_provider="default", **LIVE)
    worker_for(app)
    pdf = make_pdf(["Invoice INV-2024-0042", "Total due: 120.00 EUR"])
    with served(app) as base:
        # When a PDF is chosen (its name becomes the job's) and sent for extraction only
        page.goto(f"{base}/ui/")
        page.get_by_label("Document file").set_input_files(
            files=[{"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": pdf}]
        )
        expect(page.get_by_role("status").filter(has_text="invoice.pdf")).to_be_visible()
        expect(page.get_by_label("Text", exact=True)).to_be_disabled()
        page.get_by_label("Extraction", exact=True).check()
        page.get_by_role("button", name="Submit").click()
        # Then the page shows the text the extractor read from it
        page.wait_for_url(JOB_PAGE)
        expect(page.locator("#job-title")).to_have_text("invoice.pdf")
        expect(badge(page, "extraction")).to_have_text("completed")
        expect(page.locator("#doc-text")).to_contain_text("Invoice INV-2024-0042")
        expect(page.locator("#doc-text")).to_contain_text("Total due: 120.00 EUR")


def test_a_slow_job_is_cancelled_from_its_page(make_app, worker_for, page):
    # Given a job whose extraction takes about three seconds, followed from its page before
    # the worker starts (so that a slow page load cannot miss it running)
    app = make_app(extractor_provider="slow", provider_latency_scale=1.5, **LIVE)
    job_id = create(app)
    with served(app) as base:
        page.goto(f"{base}/ui/jobs/{job_id}/")
        expect(page.locator("#live-state")).to_have_text("live")
        worker_for(app)
        expect(badge(page, "extraction")).to_have_text("started")
        snap(page, "job-running", clip={"x": 0, "y": 0, "width": 1000, "height": 470})
        # When it is cancelled while extraction runs
        page.get_by_role("button", name="Cancel job").click()
        # Then the page shows it cancelled: the stage that was running cancelled, the rest
        # skipped (as the API says: under load the cancel may land between two stages)
        expect(page.locator("#job-status")).to_have_text("cancelled")
        stages = app.test_client().get(f"/api/jobs/{job_id}/").json["results"]["stages"]
        for stage in STAGES:
            expect(badge(page, stage)).to_have_text(stages[stage]["status"])
        assert stages["enrichment"]["status"] == "skipped"
        expect(page.get_by_role("button", name="Cancel job")).to_be_disabled()
        expect(page.locator("#live-state")).to_have_text("finished")
    assert wait_for_job(app, job_id, "cancelled")


def test_a_reload_mid_job_and_a_dropped_stream_both_resume_it(make_app, worker_for, page):
    # Given a job whose extraction takes about four seconds, and streams the server ends
    # after half a second
    app = make_app(
        extractor_provider="slow", provider_latency_scale=2.0, **{**LIVE, "sse_max_duration": 0.5}
    )
    job_id = create(app)
    requests: list[dict[str, str]] = []
    page.on("request", lambda r: requests.append(r.headers) if r.url.endswith("/events/") else None)
    with served(app) as base:
        page.goto(f"{base}/ui/jobs/{job_id}/")
        expect(page.locator("#job-status")).to_have_text("pending")
        worker_for(app)
        expect(badge(page, "extraction")).to_have_text("started")
        # When the page is reloaded mid-job
        assert load_job(app, job_id).status == "processing"
        page.reload()
        # Then it picks the job up where it is, and follows it to the end
        expect(page.locator("#job-status")).to_have_text("completed")
        for stage in STAGES:
            expect(badge(page, stage)).to_have_text("completed")
    # Each page load starts afresh (a snapshot); each reconnection after a dropped stream sends
    # the last id it saw, and the server continues right after it.
    fresh = [headers for headers in requests if "last-event-id" not in headers]
    assert len(fresh) == 2 and len(requests) > 2


def test_a_failed_job_shows_its_error_and_is_retried_from_its_page(make_app, worker_for, page):
    # Given an analysis that always fails, with no retries
    app = make_app(analysis_failure_rate=1.0, stage_max_retries=0, **LIVE)
    worker_for(app)
    job_id = create(app)
    with served(app) as base:
        page.goto(f"{base}/ui/jobs/{job_id}/")
        expect(page.locator("#job-status")).to_have_text("failed")
        expect(page.locator("#job-error")).to_have_text(
            "Failed in analysis: SimulatedAnalyzer failed: provider unavailable"
        )
        expect(badge(page, "enrichment")).to_have_text("skipped")
        # When it is retried
        page.get_by_role("button", name="Retry job").click()
        # Then the page follows the second attempt, which fails again
        expect(page.locator('li[data-stage="analysis"]')).to_contain_text("attempt 2")
        expect(page.locator("#job-status")).to_have_text("failed")
        expect(badge(page, "extraction")).to_have_text("completed")
    assert wait_for_job(app, job_id, "failed")


def test_the_jobs_list_filters_and_pages_through_jobs(app, page):
    # Given five jobs, the second cancelled
    ids = [create(app, document_name=f"Doc {n}") for n in range(1, 6)]
    assert app.test_client().post(f"/api/jobs/{ids[1]}/cancel/").status_code == 200
    rows = page.locator("#jobs tbody tr td:first-child")
    with served(app) as base:
        # When the list is paged two at a time
        page.goto(f"{base}/ui/jobs/?limit=2")
        expect(rows).to_have_text(["Doc 5", "Doc 4"])
        page.get_by_role("link", name="Next page »").click()
        expect(rows).to_have_text(["Doc 3", "Doc 2"])
        page.get_by_role("link", name="Next page »").click()
        expect(rows).to_have_text(["Doc 1"])
        expect(page.get_by_role("link", name="Next page »")).to_be_hidden()
        page.get_by_role("link", name="« Newest").click()
        expect(rows).to_have_text(["Doc 5", "Doc 4"])
        # and filtered by status
        page.get_by_label("Status").select_option("cancelled")
        page.get_by_role("button", name="Filter").click()
        expect(rows).to_have_text(["Doc 2"])
        # Then each row leads to its job's page
        page.get_by_role("link", name="Doc 2").click()
        expect(page.locator("#job-title")).to_have_text("Doc 2")
        expect(page.locator("#job-status")).to_have_text("cancelled")
        assert page.url == f"{base}/ui/jobs/{ids[1]}/"


def test_a_refused_submission_shows_the_apis_problem_details(app, page):
    refused = app.test_client().post("/api/jobs/", json=job_payload(document_type=""))
    assert refused.status_code == 400
    problem = refused.json
    with served(app) as base:
        page.goto(f"{base}/ui/")
        page.get_by_label("Text", exact=True).fill(EXAMPLE)
        page.get_by_label("Type", exact=True).fill("")
        page.get_by_role("button", name="Submit").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text(f"{problem['title']} (400)")
        expect(alert).to_contain_text(problem["detail"])
        for field, messages in problem["errors"].items():
            for message in messages:
                expect(alert).to_contain_text(f"{field}: {message}")
    assert page.url.endswith("/ui/")


def test_with_keys_the_page_asks_for_one_and_sends_it(make_app, page):
    app = make_app(**keyed_settings())
    headers = api_key(app, "acme")
    response = app.test_client().post(
        "/api/jobs/", json=job_payload(document_name="Acme's"), headers=headers
    )
    assert response.status_code == 201
    with served(app) as base:
        page.goto(f"{base}/ui/jobs/")
        expect(page.get_by_role("alert")).to_contain_text("An API key is required")
        page.get_by_label("API key").fill(headers["Authorization"].removeprefix("Bearer "))
        page.get_by_role("button", name="Use key").click()
        expect(page.locator("#jobs tbody tr td:first-child")).to_have_text(["Acme's"])
        # the key stays for the tab's next pages
        page.get_by_role("link", name="Acme's").click()
        expect(page.locator("#job-status")).to_have_text("pending")
