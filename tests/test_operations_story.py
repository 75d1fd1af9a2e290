"""The operator's story under `make run`, end to end: a file submitted and watched with the
command line, the job seen on /metrics and in the JSON logs by its id, made to fail by the
failure-rate setting, retried from its failed stage once the provider is healthy, completed."""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway import runfile
from tests.factories import DOCUMENT
from tests.support import (
    Launch,
    Terminal,
    client_environ,
    gateway,
    http,
    launcher_environ,
    wait_until,
)


def start(launches: list[Launch], env: dict[str, str]) -> str:
    """`make run` (the launcher) with `env`; the API URL once it is ready, from its run file
    (bounds for a loaded machine, where migrating alone can take half a minute)."""
    launch = Launch(env, argv=[sys.executable, "-m", "gateway.launcher"])
    launches.append(launch)
    path = Path(env["RUN_FILE"])
    url = launch.wait_for(lambda: runfile.read(path).get("GATEWAY_URL"), timeout=120)
    assert url == f"http://127.0.0.1:{launch.port}"
    launch.wait_for(lambda: http("GET", f"{url}/readyz")[0] == 200, timeout=120)
    return str(url)


def json_logs(launch: Launch, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(process name, record) of every JSON log line about `job_id`."""
    found = []
    for line in list(launch.lines):
        match = re.match(r"^\d\d:\d\d:\d\d (\S+) +\| (\{.*\})$", line)
        if match:
            record = json.loads(match[2])
            if record.get("job_id") == job_id:
                found.append((match[1], record))
    return found


@pytest.mark.slow
def test_submit_watch_see_it_fail_retry_it_and_see_it_complete_under_make_run(launches, tmp_path):
    # Given make run with JSON logs, its (simulated) enrichment provider failing every call
    letter = tmp_path / "letter.txt"
    letter.write_text(DOCUMENT)
    base = launcher_environ(
        DATABASE_URL=f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
        EMBEDDED_REDIS_DIR=str(tmp_path / "redis"),
        RUN_FILE=str(tmp_path / "run.json"),
        LOG_FORMAT="json",
        WORKER_PROCESSES="1",
        ANALYZER_PROVIDER="simulated",  # the simulated enricher reads its output
        ENRICHER_PROVIDER="simulated",
        STAGE_MAX_RETRIES="1",
        RETRY_BACKOFF_BASE="0",
    )
    url = start(launches, dict(base, ENRICHMENT_FAILURE_RATE="1"))
    failing = launches[-1]
    # The commands of another shell find the API and Redis in make run's run file
    cli = client_environ(tmp_path / "run.json")

    # When a person submits a file and watches it in a terminal
    submitted = gateway("submit", str(letter), env=cli)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    terminal = Terminal("watch", job_id, env=cli)
    try:
        status = terminal.wait(timeout=120)
    finally:
        terminal.close()

    # Then it shows the first stages completed, enrichment failed, and exits 3
    screen = terminal.text
    assert status == 3, screen
    assert re.search(r"extraction +━+ .*completed", screen), screen
    assert re.search(r"enrichment +━+ .*failed after 2 attempts: SimulatedEnricher", screen), screen
    assert f"job {job_id} failed at enrichment" in screen

    # And /metrics counts the failed job and the enrichment attempts
    scraped = http("GET", f"{url}/metrics")[1].decode()
    assert 'gateway_jobs_finished_total{status="failed"} 1.0' in scraped, scraped
    failed = 'gateway_stage_attempts_total{outcome="failed",stage="enrichment"} 1.0'
    assert failed in scraped and 'outcome="retried",stage="enrichment"} 1.0' in scraped

    # And its id finds its story in the JSON logs of the API, the worker and the consumer
    story = failing.wait_for(
        lambda: (
            (found := json_logs(failing, job_id))
            and {"api", "worker", "consumer"} <= {name for name, _ in found}
            and found
        ),
        timeout=20,
    )
    assert any(r.get("stage") == "enrichment" and r["level"] == "WARNING" for _, r in story)

    # And events tail shows the job's events, down to job.failed
    follower = Terminal("events", "tail", "--job", job_id, "--from-start", env=cli)
    try:
        wait_until(lambda: "job.failed" in follower.text, timeout=30)
        follower.process.send_signal(signal.SIGINT)
        assert follower.wait(timeout=20) == 0
    finally:
        follower.close()
    assert follower.text.index("job.created") < follower.text.index("job.stage_completed")

    # When make run is stopped, its run file goes with it
    failing.signal_group(signal.SIGINT)
    assert not (tmp_path / "run.json").exists()

    # And it is started again with a healthy provider, and the job retried from the CLI
    start(launches, base)
    retried = gateway("retry", job_id, "--wait", env=cli, timeout=120)

    # Then it resumes from enrichment and completes; the completed stages were not redone
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert retried.stdout.splitlines()[-1] == f"job {job_id} completed"
    shown = gateway("status", job_id, "--json", env=cli)
    stages = json.loads(shown.stdout)["results"]["stages"]
    assert [(s["status"], s["attempts"]) for s in stages.values()] == [
        ("completed", 1), ("completed", 1), ("completed", 3)
    ]  # fmt: skip
    launches[-1].signal_group(signal.SIGINT)
