"""Checks of a running compose stack, from outside: its published ports and docker-compose.

Run by deploy/test-compose.sh once `docker-compose up` returned:

    python3 deploy/compose_checks.py --api URL --flower URL --flower-auth USER:PASS -- COMPOSE...

Standard library only: it runs with the host's python3, not the project's virtualenv.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
CONSUMED = re.compile(r"(job\.[a-z_]+) job=([0-9a-f-]{36}) event=")
STAGES = ["extraction", "analysis", "enrichment"]
FINAL = {"completed", "failed", "cancelled"}


class Stack:
    """The stack under test: its API, Flower, and the compose command that runs it."""

    def __init__(self, api: str, flower: str, flower_auth: str, compose: list[str]) -> None:
        self.api = api
        self.flower = flower
        self.flower_auth = flower_auth
        self.compose_command = compose
        self.completed: list[str] = []
        self.api_key = ""

    def compose(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [*self.compose_command, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def exec(self, service: str, *command: str) -> str:
        return self.compose("exec", "-T", service, *command)

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service)

    def container_ids(self) -> list[str]:
        return sorted(self.compose("ps", "-q").split())

    def inspect(self, service: str, template: str) -> list[str]:
        ids = self.compose("ps", "-a", "-q", service).split()
        if not ids:
            return []
        done = subprocess.run(
            ["docker", "inspect", "-f", template, *ids],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return done.stdout.split()

    def exit_codes(self, service: str) -> list[int]:
        return [int(code) for code in self.inspect(service, "{{.State.ExitCode}}")]

    def unhealthy(self) -> list[str]:
        """Running containers whose healthcheck does not say healthy (yet)."""
        ids = self.compose("ps", "-q").split()
        done = subprocess.run(
            ["docker", "inspect", "-f",
             "{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
             *ids],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        lines = [line.split() for line in done.stdout.splitlines()]
        return [
            line[0] for line in lines if line[1] == "running" and line[2:] not in ([], ["healthy"])
        ]

    def wait_healthy(self, timeout: float = 180) -> None:
        unhealthy: list[str] = []

        def all_healthy() -> bool:
            unhealthy[:] = self.unhealthy()
            return not unhealthy

        try:
            wait(all_healthy, timeout, "every service to be healthy", pause=2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; not healthy: {unhealthy}") from None

    def schema_versions(self) -> list[str]:
        query = "SELECT version_num FROM alembic_version"
        out = self.exec(
            "postgres", "sh", "-c", f'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "{query}"'
        )
        return out.split()

    def consumed(self) -> dict[str, list[str]]:
        """Event types the compose consumer logged, by job id, in order."""
        events: dict[str, list[str]] = {}
        for event_type, job_id in CONSUMED.findall(self.logs("consumer")):
            events.setdefault(job_id, []).append(event_type)
        return events

    def assert_every_event_consumed(self, job_ids: list[str]) -> None:
        expected = {"job.created", "job.completed"}
        expected |= {f"job.stage_{verb}" for verb in ("started", "completed")}

        def all_there() -> bool:
            consumed = self.consumed()
            return all(expected <= set(consumed.get(j, [])) for j in job_ids)

        # At least once: an event can arrive twice after Redis restarts (same event_id).
        wait(all_there, 60, f"every event of {job_ids} consumed", pause=1)

    def flower_workers(self) -> dict[str, Any]:
        status, workers = self.request(
            f"{self.flower}/api/workers?refresh=1", auth=self.flower_auth
        )
        assert status == 200, (status, workers)
        return dict(workers)

    def io_tasks_by_worker(self) -> dict[str, int]:
        """Analysis and enrichment stages each io worker ran since it started."""
        return {
            name: sum(info.get("stats", {}).get("total", {}).values())
            for name, info in self.flower_workers().items()
            if name.startswith("io@")
        }

    def request(
        self, url: str, body: dict[str, Any] | None = None, auth: str | None = None
    ) -> tuple[int, Any]:
        """(status, parsed JSON body or text) of a GET, or a POST when there is a body."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        elif self.api_key and url.startswith(self.api):
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def create_job(self, name: str, slow: bool = False) -> str:
        """A job through the default (real) providers, or, `slow`, through the simulated ones,
        whose latency (PROVIDER_LATENCY_SCALE) keeps it in flight for seconds."""
        pipeline: dict[str, Any] = {"stages": STAGES}
        if slow:
            pipeline["providers"] = {
                "extraction": "slow", "analysis": "simulated", "enrichment": "simulated"
            }  # fmt: skip
        status, job = self.request(
            f"{self.api}/api/jobs/",
            {
                "document_name": name,
                "document_type": "compose-test",
                "document_content": f"Hi, my name is Gabriela, I want to cancel {name}. SubscriptionID 2342",
                "pipeline_config": pipeline,
            },
        )
        assert status == 201, (status, job)
        return str(job["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        status, job = self.request(f"{self.api}/api/jobs/{job_id}/")
        assert status == 200, (status, job)
        return dict(job)

    def wait_final(self, job_ids: list[str], timeout: float = 120) -> dict[str, str]:
        def finals() -> dict[str, str] | None:
            statuses = {job_id: self.job(job_id)["status"] for job_id in job_ids}
            return statuses if set(statuses.values()) <= FINAL else None

        return wait(finals, timeout, f"jobs {job_ids} to finish")


def wait(probe: Callable[[], T | None], timeout: float, what: str, pause: float = 0.5) -> T:
    """The first truthy answer of probe within timeout; errors count as "not yet"."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            answer = probe()
        except (OSError, AssertionError, KeyError) as exc:
            answer, last = None, exc
        if answer:
            return answer
        time.sleep(pause)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def ok(answer: tuple[int, Any]) -> tuple[int, Any] | None:
    return answer if answer[0] == 200 else None


def check_health(stack: Stack) -> None:
    _, body = wait(lambda: ok(stack.request(f"{stack.api}/readyz")), 120, "the API to be ready")
    assert body["checks"] == {"database": "ok", "redis": "ok"}, body
    assert stack.request(f"{stack.api}/healthz")[0] == 200
    assert stack.request(f"{stack.flower}/healthcheck")[0] == 200
    if not stack.api_key:  # AUTH_MODE=keys, compose's default: a tenant's key for the checks
        stack.api_key = stack.exec(
            "api", "gateway", "keys", "create", "--tenant", "compose"
        ).split()[0]
    # Every long-running service reports healthy (its compose or image healthcheck); a
    # worker's check is a Celery ping, slow to start on a loaded machine.
    stack.wait_healthy()


def check_image(stack: Stack) -> None:
    """Non-root, and neither build nor test tools in the runtime image."""
    assert stack.exec("api", "id", "-u").strip() != "0"
    found = stack.exec("api", "sh", "-c", "command -v gcc cc make git pip pip3 || true").split()
    assert not found, found
    modules = ["pytest", "mypy", "ruff", "hypothesis", "schemathesis", "pip", "setuptools"]
    probe = f"import importlib.util as u; print([m for m in {modules!r} if u.find_spec(m)])"
    assert stack.exec("api", "python", "-c", probe).strip() == "[]"


def check_migrations_ran_once(stack: Stack) -> None:
    assert stack.exit_codes("migrate") == [0]
    assert stack.logs("migrate").count("database schema is up to date") == 1
    assert len(stack.schema_versions()) == 1


def check_a_job_completes(stack: Stack) -> None:
    job_id = stack.create_job("one job")
    assert stack.wait_final([job_id]) == {job_id: "completed"}
    stages = stack.job(job_id)["results"]["stages"]
    assert [stages[name]["status"] for name in STAGES] == ["completed"] * 3, stages
    stack.completed.append(job_id)


def check_a_cancel(stack: Stack) -> None:
    job_id = stack.create_job("cancelled job", slow=True)
    status, job = stack.request(f"{stack.api}/api/jobs/{job_id}/cancel/", {})
    assert status == 200 and job["status"] == "cancelled", (status, job)
    time.sleep(3)  # what the workers were already doing does not undo it
    assert stack.job(job_id)["status"] == "cancelled"
    wait(lambda: "job.cancelled" in stack.consumed().get(job_id, []), 30, "job.cancelled consumed")


def check_events_reach_the_consumer(stack: Stack) -> None:
    stack.assert_every_event_consumed(stack.completed)


def check_flower_wants_its_credentials(stack: Stack) -> None:
    assert stack.request(f"{stack.flower}/api/workers")[0] == 401
    assert stack.request(f"{stack.flower}/api/workers", auth="ops:wrong")[0] == 401
    workers = stack.flower_workers()
    assert {name.split("@")[0] for name in workers} == {"extraction", "io"}, list(workers)


def check_a_second_up_is_a_no_op(stack: Stack) -> None:
    before = stack.container_ids()
    versions = stack.schema_versions()
    stack.compose("up", "--detach", "--no-build")
    assert stack.container_ids() == before  # nothing recreated
    assert stack.schema_versions() == versions
    assert stack.exit_codes("migrate") == [0]
    # The one-shot service may run again; it then finds the schema up to date and does nothing.
    assert "Running upgrade" not in stack.logs("migrate").split("database schema is up to date")[-1]
    check_health(stack)


def check_worker_restart_mid_job(stack: Stack) -> None:
    job_id = stack.create_job("worker restarted", slow=True)
    wait(lambda: stack.job(job_id)["status"] == "processing", 30, "the job to start")
    stack.compose("restart", "worker-extraction", "worker-io", timeout=120)
    assert stack.wait_final([job_id]) == {job_id: "completed"}
    stack.assert_every_event_consumed([job_id])


def check_redis_killed_and_started(stack: Stack) -> None:
    # Slow jobs, so that stages are running on both workers' pools when Redis dies
    job_ids = [stack.create_job(f"redis killed {n}", slow=True) for n in range(5)]
    wait(lambda: any(stack.job(j)["status"] == "processing" for j in job_ids), 30, "a job to start")
    stack.compose("kill", "-s", "KILL", "redis")
    time.sleep(2)
    stack.compose("start", "redis")
    started = time.monotonic()
    # Well within BROKER_VISIBILITY_TIMEOUT (300 s): a stage caught running is not redelivered
    assert stack.wait_final(job_ids, timeout=180) == dict.fromkeys(job_ids, "completed")
    took = time.monotonic() - started
    stack.assert_every_event_consumed(job_ids)
    attempts = [stack.job(j)["results"]["stages"]["extraction"].get("attempts") for j in job_ids]
    print(f"     5 jobs completed {took:.1f} s after Redis started; extraction attempts {attempts}")
    if any((a or 1) > 1 for a in attempts):  # a stage ran twice: what the workers saw
        for service in ("worker-extraction", "worker-io"):
            for line in stack.logs(service).splitlines():
                if re.search(r"lost|Restoring|Unrecoverable|Connected to|Terminating", line):
                    print(f"     {line}")


def check_scale_out(stack: Stack) -> None:
    stack.compose("up", "--detach", "--no-build", "--no-recreate", "--scale", "worker-io=3")
    wait(lambda: len(stack.flower_workers()) >= 4, 90, "three io workers in Flower", pause=2)
    before = stack.io_tasks_by_worker()
    job_ids = [stack.create_job(f"scaled {n}") for n in range(12)]
    assert stack.wait_final(job_ids, timeout=180) == dict.fromkeys(job_ids, "completed")
    after = stack.io_tasks_by_worker()
    took = {name for name, count in after.items() if count > before.get(name, 0)}
    assert len(took) > 1, after
    print(f"     io stages per worker: {after}")


def check_worker_pools(stack: Stack) -> None:
    # Extraction (CPU work) on processes, analysis and enrichment (waiting) on threads
    pools = {
        name.split("@")[0]: info["stats"]["pool"]["implementation"]
        for name, info in stack.flower_workers().items()
    }
    assert pools == {
        "extraction": "celery.concurrency.prefork:TaskPool",
        "io": "celery.concurrency.thread:TaskPool",
    }, pools


def check_services_stop_on_sigterm(stack: Stack) -> None:
    # `stop` sends SIGTERM, then SIGKILL after the timeout: every service must be gone before
    # that, on its own (an exit code of 137 is the SIGKILL).
    services = ["api", "worker-extraction", "worker-io", "relay", "consumer", "flower"]
    timeout = 30
    for service in services:
        started = time.monotonic()
        stack.compose("stop", "--timeout", str(timeout), service, timeout=timeout + 60)
        took = time.monotonic() - started
        codes = stack.exit_codes(service)
        assert 137 not in codes, f"{service} ignored SIGTERM: killed after {took:.0f} s ({codes})"
        print(f"     {service} stopped in {took:.1f} s (exit {codes})")


CHECKS: list[Callable[[Stack], None]] = [
    check_health,
    check_image,
    check_migrations_ran_once,
    check_a_job_completes,
    check_a_cancel,
    check_events_reach_the_consumer,
    check_flower_wants_its_credentials,
    check_worker_pools,
    check_a_second_up_is_a_no_op,
    check_worker_restart_mid_job,
    check_redis_killed_and_started,
    check_scale_out,
    check_services_stop_on_sigterm,
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", required=True)
    parser.add_argument("--flower", required=True)
    parser.add_argument("--flower-auth", required=True)
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    parser.add_argument("compose", nargs="+", help="the docker-compose command and its options")
    args = parser.parse_args(argv)
    stack = Stack(args.api, args.flower, args.flower_auth, args.compose)
    failed = 0
    for check in CHECKS:
        started = time.monotonic()
        try:
            check(stack)
        except AssertionError as exc:
            failed += 1
            print(f"FAIL {check.__name__}: {exc}", flush=True)
            if args.exitfirst:
                break
        else:
            print(f"ok   {check.__name__} ({time.monotonic() - started:.1f} s)", flush=True)
    print(f"compose: {len(CHECKS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
