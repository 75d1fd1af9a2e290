"""HTTP layer: flask-smorest blueprints, schemas and the problem-details error handler."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the API blueprints and error handling on `app`."""
