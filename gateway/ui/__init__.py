"""The web page under /ui/: submit a document, follow its job live, browse the jobs.

The pages are static shells: the browser does everything through the JSON API and its
live events route, as any client would, so the page shows exactly what the API says.
Swagger UI's files are served here too (`/api/docs` loads them from this server, not a CDN).
"""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Flask, Response, current_app, render_template

# Everything the pages load comes from this server: no inline script, no other origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
SWAGGER_UI_URL = "/api/docs/assets/"
NEEDS_KEY = "UI_NEEDS_KEY"  # app.config: show the API key field (AUTH_MODE=keys)

blp = Blueprint(
    "ui",
    __name__,
    url_prefix="/ui",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
swagger_assets = Blueprint(
    "swagger_ui",
    __name__,
    static_folder=str(SWAGGER_UI_DIST),
    static_url_path=SWAGGER_UI_URL.rstrip("/"),
)


@blp.after_request
def protect(response: Response) -> Response:
    """A strict content security policy: the pages run only their own scripts."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _page(template: str, **context: object) -> str:
    return render_template(template, needs_key=current_app.config[NEEDS_KEY], **context)


@blp.get("/")
def submit() -> str:
    """The submit form."""
    return _page("submit.html", page="submit")


@blp.get("/jobs/")
def job_list() -> str:
    """The jobs list, filtered and paged in the browser from the query string."""
    return _page("jobs.html", page="jobs")


@blp.get("/jobs/<job_id>/")
def job_page(job_id: str) -> str:
    """One job, followed live; an unknown id is reported by the API, in the page."""
    return _page("job.html", page="job", job_id=job_id)


def init_app(app: Flask, *, needs_key: bool) -> None:
    """Register the page and Swagger UI's assets on `app`; `needs_key` when the API asks for
    keys (the page then has a key field)."""
    app.config[NEEDS_KEY] = needs_key
    app.register_blueprint(blp)
    app.register_blueprint(swagger_assets)
