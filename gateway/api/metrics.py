"""GET /metrics: Prometheus' scrape of the API, and in multiprocess mode of every process.

Not public: with METRICS_TOKEN set it asks for `Authorization: Bearer <token>`; without one it
answers loopback clients only (a Prometheus on the same host, or a tunnel), 404 for others.
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, abort, request

from gateway import metrics
from gateway.gauges import SystemGauges
from gateway.services import get_services

blp = Blueprint("metrics", __name__)


def _allowed(token: str) -> bool:
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@blp.get("/metrics")
def scrape() -> Response:
    """The metrics in Prometheus' text format."""
    services = get_services()
    settings = services.settings
    if not _allowed(settings.metrics_token):
        abort(404)
    gauges = SystemGauges(
        services.database, services.redis, settings.events_stream, settings.dead_letter_stream
    )
    body, content_type = metrics.exposition(metrics.registry(gauges))
    return Response(body, content_type=content_type)
