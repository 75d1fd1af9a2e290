"""Liveness (/healthz) and readiness (/readyz: the database and Redis both answer)."""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
import redis
from flask import Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gateway.api.errors import PROBLEM_JSON, ProblemSchema, problem
from gateway.api.parsing import Blueprint
from gateway.db import Database
from gateway.services import get_services

log = logging.getLogger(__name__)

blp = Blueprint("health", __name__, description="Liveness and readiness probes")


class HealthSchema(ma.Schema):
    """A probe's answer: overall status and the state of each dependency checked."""

    status = ma.fields.String(metadata={"example": "ok"})
    checks = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"example": {"database": "ok", "redis": "ok"}},
    )


@blp.route("/healthz")
@blp.doc(security=[])  # open whatever AUTH_MODE: probes show no job
@blp.response(200, HealthSchema)
def healthz() -> dict[str, Any]:
    """200 while the process serves requests; checks nothing else."""
    return {"status": "ok", "checks": {}}


@blp.route("/readyz")
@blp.doc(security=[])
@blp.response(200, HealthSchema)
@blp.alt_response(
    503, schema=ProblemSchema, content_type=PROBLEM_JSON, description="A dependency is down"
)
def readyz() -> dict[str, Any] | Response:
    """200 when the database (SELECT 1) and Redis (PING) both answer, else 503 naming the failure."""
    services = get_services()
    checks = {"database": _check_database(services.database), "redis": _check_redis(services.redis)}
    failed = sorted(name for name, state in checks.items() if state != "ok")
    if failed:
        return problem(503, f"Not ready: {' and '.join(failed)} unreachable.", checks=checks)
    return {"status": "ok", "checks": checks}


def _check_database(database: Database) -> str:
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("readiness: database unreachable: %s", exc)
        return f"unreachable: {type(getattr(exc, 'orig', None) or exc).__name__}"
    return "ok"


def _check_redis(client: redis.Redis) -> str:
    try:
        client.ping()
    except redis.RedisError as exc:
        log.warning("readiness: redis unreachable: %s", exc)
        return f"unreachable: {type(exc).__name__}"
    return "ok"
