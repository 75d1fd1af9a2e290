"""Flower shows each stage of a job as its own task, under basic auth."""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from gateway.config import Settings
from gateway.launcher import commands, flower_environment
from gateway.services import get_services
from tests.factories import make_job
from tests.support import (
    TaskEvents,
    WorkerProcess,
    free_port,
    settings_env,
    wait_for_job,
    wait_until,
)

CELERY = str(Path(sys.executable).parent / "celery")


def numpat(settings: Settings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return int(client.execute_command("PUBSUB", "NUMPAT"))
    finally:
        client.close()


class Flower:
    """A `celery -A worker flower` subprocess on a free port, with basic auth.

    By default it gets a login of the test's own; `argv` and `env` (with FLOWER_BASIC_AUTH)
    start it some other way, e.g. as `make run` does.
    """

    def __init__(
        self, settings: Settings, argv: list[str] | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.port = settings.flower_port if argv else free_port()
        if env is None:
            env = dict(os.environ, **settings_env(settings))
            env["FLOWER_BASIC_AUTH"] = f"ops:{secrets.token_hex(8)}"
        self.credentials = env["FLOWER_BASIC_AUTH"]
        self.patterns_before = numpat(settings)
        self.process = subprocess.Popen(
            argv
            or [CELERY, "-A", "worker", "flower", "--address=127.0.0.1", f"--port={self.port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Flower serves HTTP before its event receiver subscribes; events sent in between
        # are lost to it. Its subscription is one more Redis pattern (the worker has its own).
        wait_until(lambda: numpat(settings) > self.patterns_before, timeout=30)
        wait_until(self._listening, timeout=30)  # on a loaded machine, HTTP may come last

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def get(self, path: str, auth: str | None = None) -> tuple[int, Any]:
        status, body, _headers = self.request("GET", path, auth)
        return status, body

    def request(
        self, method: str, path: str, auth: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        """Status, body (decoded if JSON) and headers of a request to Flower."""
        data = b"" if method == "POST" else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method, headers=headers or {}
        )
        if auth is not None:
            token = base64.b64encode(auth.encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                body = response.read()
                is_json = response.headers.get_content_type() == "application/json"
                return response.status, json.loads(body) if is_json else body, response.headers
        except urllib.error.HTTPError as error:
            return error.code, None, error.headers

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


@pytest.fixture
def flower(settings: Settings, worker: Any) -> Iterator[Flower]:
    """Flower watching the test broker, started after the worker; its task views need the
    workers' task events, which the test settings turn on (TASK_EVENTS)."""
    flower = Flower(settings)
    yield flower
    flower.stop()


def test_flower_lists_each_stage_task_with_the_job_id(flower, app, session):
    # Given Flower and a worker on the test broker
    # When a job runs the full pipeline
    job = make_job(session)
    assert get_services(app).pipeline.dispatch(job.id)

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


def test_flower_as_make_run_starts_it_has_a_login_and_refuses_cross_site_requests(settings):
    # Given Flower started by the launcher's command and environment, without FLOWER_BASIC_AUTH,
    # with the API on every interface, from a shell that even asks for an open Flower API
    settings = settings.replace(
        flower_port=free_port(), flower_basic_auth="", bind_address="0.0.0.0", auth_mode="keys"
    )
    shell = dict(os.environ, **settings_env(settings), FLOWER_UNAUTHENTICATED_API="true")
    env, url = flower_environment(settings, shell)
    flower = Flower(settings, argv=commands(settings)["flower"], env=env)
    try:
        # Then it listens on loopback only, and the printed URL carries the login of this run
        listening = [
            c.laddr.ip
            for c in psutil.Process(flower.process.pid).net_connections()
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening == ["127.0.0.1"]
        assert url == f"http://{flower.credentials}@127.0.0.1:{flower.port}/"
        assert flower.credentials.startswith("admin:") and len(flower.credentials) > 20
        # Its API needs that login, and grants no other web page access to its answers
        assert flower.get("/api/tasks")[0] == 401
        status, _body, headers = flower.request("GET", "/api/tasks", auth=flower.credentials)
        assert status == 200
        assert headers.get("Access-Control-Allow-Origin") is None
        # A request sent from another site is refused even with the login (a browser that
        # remembers it would send it along): nothing can be started or stopped that way
        revoke = f"/api/task/revoke/{uuid.uuid4()}"
        for site in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://attacker.example"}):
            assert flower.request("POST", revoke, auth=flower.credentials, headers=site)[0] == 403
        assert flower.request("POST", revoke, auth=flower.credentials)[0] == 200
    finally:
        flower.stop()


# Flower asks the workers to send task events every 5 s (its events_enable_interval).
FLOWER_ENABLE_INTERVAL = 5.0


@pytest.mark.slow
@pytest.mark.parametrize("flower_events", [False, True])
def test_by_default_no_task_events_are_sent_and_flower_does_not_ask_for_them(
    make_app, settings, tmp_path, flower_events
):
    # Given the default settings: workers send no task events, and neither do senders
    default = Settings.from_env({})
    assert (default.task_events, default.task_sent_events) == (False, False)
    settings = settings.replace(task_events=False, task_sent_events=False)
    app = make_app(task_events=False, task_sent_events=False)
    # a real worker, with heartbeats as under `make run` (Flower could turn its events on)
    worker = WorkerProcess(settings, f"events-{uuid.uuid4().hex[:6]}", tmp_path / "worker.log")
    worker.start()
    # and Flower as `make run` starts it, with TASK_EVENTS off (or on: the counterpart, which
    # shows that this test sees events when Flower turns them on in the running worker)
    flower_settings = settings.replace(flower_port=free_port(), task_events=flower_events)
    shell = dict(os.environ, **settings_env(flower_settings))
    env, _url = flower_environment(flower_settings, shell)
    flower = Flower(flower_settings, argv=commands(flower_settings)["flower"], env=env)
    try:
        with TaskEvents(get_services(app).celery) as task_events:
            if not flower_events:
                time.sleep(FLOWER_ENABLE_INTERVAL + 2)  # past the first time it would ask

            # When a job runs the whole pipeline
            def run_a_job() -> bool:
                with get_services(app).database.session() as session:
                    job = make_job(session)
                assert get_services(app).pipeline.dispatch(job.id)
                wait_for_job(app, job.id, "completed", timeout=30)
                return bool(task_events.of_type("task-succeeded"))

            # Then no task event reached the broker (with Flower asking, they soon do)
            if flower_events:
                wait_until(run_a_job, timeout=60, interval=0.5)
            else:
                run_a_job()
                tasks = [e for e in task_events.events if e["type"].startswith("task-")]
                assert tasks == [], worker.log()

        # and Flower still lists the worker
        def workers() -> Any:
            status, body = flower.get("/api/workers?refresh=1", auth=flower.credentials)
            return body if status == 200 and body else None

        assert list(wait_until(workers, timeout=30)) == [f"{worker.name}@{socket.gethostname()}"]
    finally:
        flower.stop()
        worker.stop()
