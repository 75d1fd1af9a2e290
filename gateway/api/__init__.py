"""HTTP layer: flask-smorest blueprints, schemas and the problem-details error handler."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api

from gateway.api.errors import PROBLEM_JSON, ProblemSchema, handle_error
from gateway.services import get_services
from gateway.ui import SWAGGER_UI_URL  # Swagger UI's files, served by this app: no CDN


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON with keys in the order the schemas give them (stages in pipeline order),
    and non-ASCII text as UTF-8: six-byte \\u escapes would multiply the size of a text in
    any other script. A value UTF-8 cannot encode (a lone surrogate) falls back to escapes,
    so that no stored value can make a response fail.
    """

    sort_keys = False
    ensure_ascii = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        text = super().dumps(obj, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return super().dumps(obj, **{**kwargs, "ensure_ascii": True})
        return text


class GatewayApi(Api):
    """flask-smorest's Api whose errors (served and documented) are problem details."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: Any) -> Any:
        """HTTP errors go through the same problem-details handler as every other error."""
        return handle_error(error)

    def _register_responses(self) -> None:
        # flask-smorest documents error bodies as application/json; ours are problem+json.
        for status in HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["content"] = {PROBLEM_JSON: {"schema": self.ERROR_SCHEMA}}
            self.spec.components.response(status.name, response, lazy=True)
        default = {
            "description": "Problem details",
            "content": {PROBLEM_JSON: {"schema": ProblemSchema}},
        }
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)


def init_app(app: Flask) -> None:
    """Register the API blueprints and error handling on `app`."""
    from gateway.api import health, jobs, live, metrics, parsing, providers, ratelimit, tracking

    app.config.update(
        API_TITLE="Document Processing Gateway",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_UI_URL,
    )
    if get_services(app).settings.auth_mode == "keys":
        # Every route asks for a bearer key but the probes, which say so (docs/security.md).
        app.config["API_SPEC_OPTIONS"] = {"security": [{"bearerAuth": []}]}
    app.json = JSONProvider(app)
    app.request_class = parsing.Request
    api = GatewayApi(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.register_blueprint(jobs.blp)
    api.register_blueprint(live.blp)
    api.register_blueprint(providers.blp)
    api.register_blueprint(health.blp)
    app.register_blueprint(metrics.blp)
    live.init_app(app, get_services(app).settings)
    ratelimit.init_app(app)
    app.register_error_handler(Exception, handle_error)
    tracking.init_app(app)
    _add_slash_twins(app)


def _add_slash_twins(app: Flask) -> None:
    """Serve each route also with its trailing slash flipped, as a rule of its own.

    Werkzeug's `strict_slashes=False` would avoid the redirect too, but then a wrong method
    on the other spelling answers 404 instead of 405.
    """
    for rule in list(app.url_map.iter_rules()):
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        twin = rule.rule[:-1] if rule.rule.endswith("/") else rule.rule + "/"
        methods = (rule.methods or set()) - {"OPTIONS", "HEAD"}
        app.add_url_rule(twin, endpoint=rule.endpoint, methods=sorted(methods))
