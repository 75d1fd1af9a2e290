"""Request parsing: validation errors are 400 (not webargs' 422), a non-JSON body is 415."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import UnsupportedMediaType


class RequestParser(FlaskParser):
    """webargs' Flask parser with the gateway's status codes."""

    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: flask.Request) -> Any:
        # webargs treats a non-JSON body as absent; the contract wants 415 for it.
        if not is_json_request(req):
            raise UnsupportedMediaType()
        return super()._raw_load_json(req)


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest blueprint that parses arguments with `RequestParser`."""

    ARGUMENTS_PARSER = RequestParser()
