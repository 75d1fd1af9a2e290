"""Prometheus metrics: what the processes count, and the exposition of one scrape.

Counters and histograms live in the process that observes them. Under gunicorn (several
API processes) and prefork workers, set PROMETHEUS_MULTIPROC_DIR to a directory every
process shares (prometheus-client's multiprocess mode): each process writes its values there,
and a scrape sums them, dead processes included, so totals stay right. `make run` points
every process at one such directory, so the API's /metrics shows the whole system.

Labels are bounded: stages, providers, statuses, outcomes, route templates, never a job id.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client itself

JOBS_CREATED = Counter("gateway_jobs_created", "Jobs stored.")
JOBS_FINISHED = Counter(
    "gateway_jobs_finished", "Jobs that reached completed, failed or cancelled.", ["status"]
)
JOBS_RETRIED = Counter("gateway_jobs_retried", "Failed jobs resumed by a retry request.")
STAGE_ATTEMPTS = Counter(
    "gateway_stage_attempts",
    "Stage attempts by how they ended: completed, retried (a provider failure to be retried), "
    "failed (for good) or discarded (the job was no longer processing).",
    ["stage", "outcome"],
)
STAGE_DURATION = Histogram(
    "gateway_stage_duration_seconds",
    "Time a provider took for one stage attempt, failed ones included.",
    ["stage", "provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
HTTP_DURATION = Histogram(
    "gateway_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status code.",
    ["method", "route", "status"],
)


def registry(*collectors: Collector) -> CollectorRegistry:
    """What one scrape reads: this process's metrics, or every process's in multiprocess mode,
    plus `collectors` (read at scrape time)."""
    if os.environ.get(MULTIPROC_DIR):
        scraped = CollectorRegistry()
        MultiProcessCollector(scraped)  # type: ignore[no-untyped-call]
    else:
        scraped = CollectorRegistry(auto_describe=True)
        scraped.register(_Everything())
    for collector in collectors:
        scraped.register(collector)
    return scraped


def exposition(scraped: CollectorRegistry) -> tuple[bytes, str]:
    """The text format of a scrape, and its content type."""
    return generate_latest(scraped), CONTENT_TYPE_LATEST


def serve(port: int, address: str, *collectors: Collector) -> None:
    """Serve /metrics on `address:port` from a thread (a worker's or the relay's exporter)."""
    start_http_server(port, addr=address, registry=registry(*collectors))


class _Everything(Collector):
    """The process's default registry, as one collector of another registry."""

    def collect(self) -> Iterable:  # type: ignore[type-arg]
        return REGISTRY.collect()
