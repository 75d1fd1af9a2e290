"""Request parsing: validation errors are 400 (not webargs' 422), a body neither JSON nor
multipart/form-data (an upload) is 415.

A JSON body is read and decoded within fixed bounds, so that no body, however built, costs
more than its size or reaches the schemas in a shape they cannot handle:

- a streamed (chunked) body over MAX_CONTENT_LENGTH is a 413, as one with a Content-Length is;
- an uploaded file (a multipart part) over MAX_DOCUMENT_BYTES is a 413 as soon as that many
  bytes of it were read, not after the whole body was;
- nesting deeper than MAX_JSON_DEPTH, a number longer than MAX_JSON_NUMBER_LENGTH characters
  and the non-standard constants NaN and Infinity are 400s, like any other invalid JSON.
"""

from __future__ import annotations

import json
from typing import IO, Any

import flask
import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

# Deepest nesting of arrays and objects accepted in a body; ours needs 3.
MAX_JSON_DEPTH = 32
# Longest number literal accepted, in characters: Python refuses to convert integers of more
# than 4300 digits, and no field of ours needs more than a few.
MAX_JSON_NUMBER_LENGTH = 100


class InvalidJsonError(ValueError):
    """A body that is JSON, but outside the bounds this API accepts."""


def _number(cast: type) -> Any:
    def parse(literal: str) -> Any:
        if len(literal) > MAX_JSON_NUMBER_LENGTH:
            raise InvalidJsonError(f"Numbers may have at most {MAX_JSON_NUMBER_LENGTH} characters.")
        return cast(literal)

    return parse


def _constant(name: str) -> Any:
    raise InvalidJsonError(f"{name} is not valid JSON.")


_DECODER = json.JSONDecoder(
    parse_int=_number(int), parse_float=_number(float), parse_constant=_constant
)


def nesting_depth(value: Any, stop_after: int = MAX_JSON_DEPTH) -> int:
    """How deeply arrays and objects nest in a decoded JSON value (a scalar is 0).

    Level by level, without recursion; stops once the depth exceeds `stop_after`.
    """
    depth, level = 0, [value]
    while level and depth <= stop_after:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            break
        depth += 1
        level = [
            c for item in containers for c in (item.values() if isinstance(item, dict) else item)
        ]
    return depth


def decode_json(text: str) -> Any:
    """Decode a JSON document within the bounds above; InvalidJsonError (a ValueError) if not."""
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        # The C decoder gives up at the interpreter's recursion limit (about 1000 levels).
        raise InvalidJsonError(f"Nesting deeper than {MAX_JSON_DEPTH} levels.") from None
    # Each level opens a bracket: a document with few brackets needs no walk.
    brackets = text.count("[") + text.count("{")
    if brackets > MAX_JSON_DEPTH and nesting_depth(value) > MAX_JSON_DEPTH:
        raise InvalidJsonError(f"Nesting deeper than {MAX_JSON_DEPTH} levels.")
    return value


def read_body(req: flask.Request) -> bytes:
    """The request body; RequestEntityTooLarge when it exceeds MAX_CONTENT_LENGTH, also streamed."""
    data = req.get_data(cache=True)
    limit = req.max_content_length
    # Werkzeug stops reading a body of unknown length at the limit and returns what it read,
    # cut short: whether more follows, only the raw stream can tell.
    at_limit = limit is not None and req.content_length is None and len(data) >= limit
    if at_limit and req.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return data


class DocumentTooLargeError(RequestEntityTooLarge):
    """An uploaded document over MAX_DOCUMENT_BYTES (`limit`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"The document exceeds the limit of {limit} bytes (MAX_DOCUMENT_BYTES).")
        self.limit = limit


class _BoundedFile:
    """A file part's buffer that refuses to hold more than `limit` bytes."""

    def __init__(self, buffer: IO[bytes], limit: int) -> None:
        self._buffer = buffer
        self._limit = limit
        self._written = 0

    def write(self, data: bytes) -> int:
        self._written += len(data)
        if self._written > self._limit:
            self._buffer.close()  # the parser drops it without closing it
            raise DocumentTooLargeError(self._limit)
        return self._buffer.write(data)

    def __getattr__(self, name: str) -> Any:  # read, seek, close...: the buffer's
        return getattr(self._buffer, name)


class Request(flask.Request):
    """Flask's request, whose file parts stop at MAX_DOCUMENT_BYTES (the app's config key).

    Werkzeug buffers each file part as it parses the body; the bound is checked on each
    chunk written, so a part that declares its length or runs past the limit is refused
    before the rest of it is read.
    """

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        limit = flask.current_app.config.get("MAX_DOCUMENT_BYTES")
        if limit is not None and content_length is not None and content_length > limit:
            raise DocumentTooLargeError(limit)
        buffer = super()._get_file_stream(
            total_content_length, content_type, filename, content_length
        )
        return buffer if limit is None else _BoundedFile(buffer, limit)  # type: ignore[return-value]


MULTIPART = "multipart/form-data"
# Form fields whose value is JSON text (a form field can only be a string).
JSON_FORM_FIELDS = ("pipeline_config",)


class RequestParser(FlaskParser):
    """webargs' Flask parser with the gateway's status codes and bounded JSON decoding.

    A `multipart/form-data` body stands in for a JSON one: its fields and file parts form the
    object the body's schema validates (one value per name: the first), JSON fields decoded.
    """

    DEFAULT_VALIDATION_STATUS = 400

    def load_json(self, req: flask.Request, schema: Any) -> Any:
        if req.mimetype == MULTIPART:
            return self._load_form(req)
        return super().load_json(req, schema)

    def _load_form(self, req: flask.Request) -> Any:
        data: dict[str, Any] = {key: req.form.get(key) for key in req.form}
        data.update({key: req.files.get(key) for key in req.files})
        for key in JSON_FORM_FIELDS:
            if isinstance(data.get(key), str):
                try:
                    data[key] = decode_json(data[key])
                except ValueError:
                    abort(400, messages={"json": {key: ["Invalid JSON in this form field."]}})
        return data

    def _raw_load_json(self, req: flask.Request) -> Any:
        # webargs treats a non-JSON body as absent; the contract wants 415 for it.
        if not is_json_request(req):
            raise UnsupportedMediaType()
        data = read_body(req)
        if not data:
            return core.missing
        try:
            return decode_json(data.decode("utf-8"))
        except UnicodeDecodeError:
            abort(400, messages={"json": ["Invalid JSON body: not UTF-8."]})
        except InvalidJsonError as exc:
            abort(400, messages={"json": [f"Invalid JSON body: {exc}"]})
        except ValueError:  # json.JSONDecodeError among others
            abort(400, messages={"json": ["Invalid JSON body."]})


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest blueprint that parses arguments with `RequestParser`."""

    ARGUMENTS_PARSER = RequestParser()
