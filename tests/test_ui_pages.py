"""The page under /ui/ and the Swagger UI at /api/docs: served by the app itself, nothing from
another origin. (What the pages do in a browser is tests/test_ui_browser.py.)"""

from __future__ import annotations

import re

import pytest


def get(client, path):
    response = client.get(path)
    response.close()  # static files are streamed: close them, or they leak a file handle
    return response


@pytest.mark.parametrize("path", ["/ui/", "/ui", "/ui/jobs/", "/ui/jobs/4b1c-any-id/"])
def test_each_page_is_html_under_a_same_origin_content_security_policy(client, path):
    response = get(client, path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy


def test_the_pages_load_only_their_own_assets_and_those_are_served(client):
    for page in ["/ui/", "/ui/jobs/", "/ui/jobs/x/"]:
        html = client.get(page).get_data(as_text=True)
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets and not [a for a in assets if "//" in a]  # no other origin
        for asset in assets:
            if asset.startswith("/ui/static/"):
                assert get(client, asset).status_code == 200, asset


def test_the_job_page_carries_its_job_id_escaped(client):
    html = client.get('/ui/jobs/"><b>x<b>/').get_data(as_text=True)
    assert "<b>x<b>" not in html
    assert 'data-job-id="&#34;&gt;&lt;b&gt;x&lt;b&gt;"' in html


def test_the_key_field_shows_only_when_the_api_asks_for_keys(make_app):
    off = make_app().test_client().get("/ui/").get_data(as_text=True)
    keys = make_app(auth_mode="keys", api_key_secret="s" * 32).test_client().get("/ui/")
    assert 'id="api-key"' not in off
    assert 'id="api-key"' in keys.get_data(as_text=True)


def test_swagger_ui_is_served_locally(client):
    html = client.get("/api/docs").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    local = {"/api/docs/assets/swagger-ui-bundle.js", "/api/docs/assets/swagger-ui.css"}
    assert local <= set(assets)
    assert "cdn" not in html.lower() and "//" not in " ".join(assets)
    bundle = get(client, "/api/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and bundle.mimetype == "text/javascript"
    assert get(client, "/api/docs/assets/swagger-ui.css").mimetype == "text/css"
