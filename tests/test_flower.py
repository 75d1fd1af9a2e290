"""Flower shows each stage of a job as its own task, under basic auth."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway.config import Settings
from tests.factories import make_job
from tests.support import free_port, wait_until

CELERY = str(Path(sys.executable).parent / "celery")


def settings_environ(settings: Settings) -> dict[str, str]:
    """The environment variables that make another process read these same settings."""
    return {f.metadata["env"]: str(getattr(settings, f.name)) for f in dataclasses.fields(Settings)}


def numpat(settings: Settings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return int(client.execute_command("PUBSUB", "NUMPAT"))
    finally:
        client.close()


class Flower:
    """A `celery -A worker flower` subprocess on a free port, with basic auth."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.credentials = f"ops:{secrets.token_hex(8)}"
        env = dict(os.environ, **settings_environ(settings))
        env["FLOWER_BASIC_AUTH"] = self.credentials
        self.patterns_before = numpat(settings)
        self.process = subprocess.Popen(
            [CELERY, "-A", "worker", "flower", "--address=127.0.0.1", f"--port={self.port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Flower serves HTTP before its event receiver subscribes; events sent in between
        # are lost to it. Its subscription is one more Redis pattern (the worker has its own).
        wait_until(lambda: numpat(settings) > self.patterns_before, timeout=30)

    def get(self, path: str, auth: str | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if auth is not None:
            token = base64.b64encode(auth.encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                body = response.read()
                is_json = response.headers.get_content_type() == "application/json"
                return response.status, json.loads(body) if is_json else body
        except urllib.error.HTTPError as error:
            return error.code, None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


@pytest.fixture
def flower(settings: Settings, worker: Any) -> Iterator[Flower]:
    """Flower watching the test broker, started after the worker."""
    flower = Flower(settings)
    yield flower
    flower.stop()


def test_flower_lists_each_stage_task_with_the_job_id(flower, app, session):
    # Given Flower and a worker on the test broker
    # When a job runs the full pipeline
    job = make_job(session)
    assert app.extensions["pipeline"].dispatch(job.id)

    # Then Flower's API lists one succeeded task per stage, named after it, with the job id
    def stage_tasks() -> dict[str, dict[str, Any]]:
        status, tasks = flower.get("/api/tasks", auth=flower.credentials)
        assert status == 200
        mine = {t["name"]: t for t in tasks.values() if job.id in (t.get("args") or "")}
        done = all(t["state"] == "SUCCESS" for t in mine.values())
        return mine if len(mine) == 3 and done else {}

    tasks = wait_until(stage_tasks, timeout=20)
    assert set(tasks) == {"gateway.extraction", "gateway.analysis", "gateway.enrichment"}
    stored = {run.name: run.task_id for run in job.runs}
    for name, task in tasks.items():
        assert task["uuid"] == stored[name.removeprefix("gateway.")]


def test_flower_api_and_ui_need_the_basic_auth_credentials(flower):
    assert flower.get("/api/tasks")[0] == 401
    assert flower.get("/api/tasks", auth="ops:wrong")[0] == 401
    assert flower.get("/", auth=flower.credentials)[0] == 200
    # Health probes stay open, so compose can check Flower without the password.
    assert flower.get("/healthcheck")[0] == 200
