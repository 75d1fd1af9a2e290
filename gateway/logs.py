"""Log lines: readable by default, JSON with LOG_FORMAT=json; each line about a job names it.

A line about a job carries `job_id`, and where they apply `stage`, `task_id` and `attempt`:
from `extra=` at the call, or from the context a request or a stage task bound
(`job_context`, `bind`). So grepping one job id shows its story in every process. The
context lives in a ContextVar: one per thread, so the API's and the worker's threads do not
mix their jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from pythonjsonlogger.json import JsonFormatter

JOB_FIELDS = ("job_id", "stage", "task_id", "attempt")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_context: ContextVar[dict[str, Any]] = ContextVar("gateway_log_context", default={})  # noqa: B039


def bind(**fields: Any) -> Token[dict[str, Any]]:
    """Add `fields` (None ones left out) to every later line of this thread; a token to reset."""
    added = {key: value for key, value in fields.items() if value is not None}
    return _context.set({**_context.get(), **added})


def reset(token: Token[dict[str, Any]]) -> None:
    """Forget what `bind` added, back to the context before it."""
    _context.reset(token)


@contextmanager
def job_context(**fields: Any) -> Iterator[None]:
    """Within the block, every line of this thread carries `fields` (job_id, stage, ...)."""
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)


class JobContextFilter(logging.Filter):
    """Copies the bound job fields onto each record that does not set them itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class QuietFilter(logging.Filter):
    """Turns the libraries' warnings about normal events into DEBUG lines.

    - Celery's worker warns, for every task id a cancel revokes, that it could not mark it
      revoked in a result backend: there is none, on purpose (reads use the database).
    - Flower warns for each inspect method no worker answered, as happens while it starts
      before the workers; it inspects each worker again when the worker comes online.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not _expected(record):
            return True
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def _expected(record: logging.LogRecord) -> bool:
    args = record.args if isinstance(record.args, tuple) else ()
    if record.name == "celery.worker.control":
        revoke = str(record.msg).startswith("Failed to mark task")
        return revoke and any(isinstance(arg, NotImplementedError) for arg in args)
    return record.name == "flower.inspector" and record.msg == "Inspect method %s failed"


class TextFormatter(logging.Formatter):
    """`TEXT_FORMAT`, then the line's job fields as key=value pairs."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        pairs = [f"{key}={getattr(record, key)}" for key in JOB_FIELDS if hasattr(record, key)]
        return " ".join([line, *pairs])


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of LOG_FORMAT `log_format` ('text' or 'json')."""
    if log_format == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return TextFormatter(TEXT_FORMAT)


def configure(level: str, log_format: str) -> None:
    """Send every logger's lines to stderr in `log_format`, unless the process configured
    logging itself (the test runner's capture, an embedding application).

    Gunicorn's own loggers go through the same handler, so its lines match the others.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    handler.addFilter(JobContextFilter())
    handler.addFilter(QuietFilter())
    root.addHandler(handler)
    root.setLevel(level)
    if log_format == "json":
        for name in ("gunicorn.error", "gunicorn.access"):
            gunicorn = logging.getLogger(name)
            gunicorn.handlers.clear()
            gunicorn.propagate = True
