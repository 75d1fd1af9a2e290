"""Checks of a running compose stack, from outside: its published ports and docker-compose.

Run by deploy/test-compose.sh once `docker-compose up` returned:

    python3 deploy/compose_checks.py --api URL --flower URL --flower-auth USER:PASS -- COMPOSE...

Standard library only: it runs with the host's python3, not the project's virtualenv.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
STAGES = ["extraction", "analysis", "enrichment"]
FINAL = {"completed", "failed", "cancelled"}


class Stack:
    """The stack under test: its API, Flower, and the compose command that runs it."""

    def __init__(self, api: str, flower: str, flower_auth: str, compose: list[str]) -> None:
        self.api = api
        self.flower = flower
        self.flower_auth = flower_auth
        self.compose_command = compose

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

    def request(
        self, url: str, body: dict[str, Any] | None = None, auth: str | None = None
    ) -> tuple[int, Any]:
        """(status, parsed JSON body or text) of a GET, or a POST when there is a body."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def create_job(self, name: str) -> str:
        status, job = self.request(
            f"{self.api}/api/jobs/",
            {
                "document_name": name,
                "document_type": "compose-test",
                "document_content": f"Hi, my name is Gabriela, I want to cancel {name}. SubscriptionID 2342",
                "pipeline_config": {"stages": STAGES},
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


CHECKS: list[Callable[[Stack], None]] = [check_health]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", required=True)
    parser.add_argument("--flower", required=True)
    parser.add_argument("--flower-auth", required=True)
    parser.add_argument("compose", nargs="+", help="the docker-compose command and its options")
    args = parser.parse_args(argv)
    stack = Stack(args.api, args.flower, args.flower_auth, args.compose)
    for check in CHECKS:
        started = time.monotonic()
        check(stack)
        print(f"ok   {check.__name__} ({time.monotonic() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
