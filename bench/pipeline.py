"""Pipeline throughput: three-stage jobs end to end against a bare chain of sleeping Celery tasks.

Starts a private redis-server and creates a PostgreSQL database of its own (migrated with
Alembic). Phase 1 runs the default worker, a real `celery -A worker worker` (threads pool,
concurrency 16, latency scale 1: extractor ~100 ms, analyzer and enricher 100-500 ms), creates
the jobs through the service layer and dispatches them as the API does, from 8 concurrent
submitters, and waits until every job is completed. Phase 2 runs, on a worker with the same
Celery configuration, pool and concurrency, a bare chain of three tasks that only sleep the
same simulated latencies. It prints wall time, jobs/s, job latency and worker CPU time for
both, and their ratio. Everything it started is stopped, and the database dropped, at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import redis
from celery import Celery, chain
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

import celeryconfig
from gateway import create_app, jobs
from gateway.config import Settings
from gateway.db import upgrade_schema
from gateway.models import Job
from gateway.services import get_services
from providers.analysis import SimulatedAnalyzer
from providers.enrichment import SimulatedEnricher
from providers.extraction import FastExtractor

PROJECT_DIR = Path(__file__).resolve().parent.parent
DOCUMENT = "Hi, my name is Gabriela, I want to cancel my subscription. SubscriptionID {n}"
SUBMITTERS = 8
# The simulated latency of each stage, the same in both phases.
LATENCIES = {
    "extraction": FastExtractor.latency,
    "analysis": SimulatedAnalyzer.latency,
    "enrichment": SimulatedEnricher.latency,
}
DONE_KEY = "bench:bare:done"


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    jobs: int
    submit_s: float
    wall_s: float
    latencies_s: list[float]
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.jobs / self.wall_s


def bare_app(settings: Settings) -> Celery:
    """A Celery app with the gateway's configuration and three tasks that only sleep."""
    app = Celery("bench_bare", set_as_current=False)
    config = celeryconfig.from_settings(settings)
    # The same queues as the gateway's stages, so the same worker setup consumes them.
    config["task_routes"] = {f"bench.bare.{stage}": {"queue": stage} for stage in LATENCIES}
    app.config_from_object(config)
    clients: list[redis.Redis] = []

    def sleeper(stage: str, last: bool) -> None:
        @app.task(name=f"bench.bare.{stage}")
        def sleep(submitted: float) -> None:
            time.sleep(random.uniform(*LATENCIES[stage]) * settings.provider_latency_scale)
            if last:
                if not clients:
                    clients.append(redis.Redis.from_url(settings.redis_url))
                clients[0].rpush(DONE_KEY, time.time() - submitted)

    for stage in LATENCIES:
        sleeper(stage, last=stage == "enrichment")
    return app


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes Settings.from_env() rebuild `settings` in the worker."""
    values = {
        f.metadata["env"]: str(getattr(settings, f.name)) for f in dataclasses.fields(settings)
    }
    return {**os.environ, **values}


class Worker:
    """A worker subprocess in its own process group; `stop` returns its CPU seconds."""

    def __init__(self, command: list[str], settings: Settings, log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT_DIR,
                env=settings_env(settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, app: Celery, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not app.control.ping(timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log.read_text()}")

    def stop(self) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_gateway(settings: Settings, count: int, log: Path) -> Phase:
    """Phase 1: real jobs through the service layer, the pipeline and the default worker."""
    app = create_app(settings)
    celery, pipeline = get_services(app).celery, get_services(app).pipeline
    database = get_services(app).database
    worker = Worker([sys.executable, "-m", "celery", "-A", "worker", "worker",
                     "-n", "bench-gateway@%h", "-l", "WARNING"], settings, log)  # fmt: skip
    try:
        worker.wait_ready(celery)

        def submit(n: int) -> None:
            with database.session() as session:
                job = jobs.create_job(
                    session,
                    document_name=f"Bench {n}",
                    document_type="bench",
                    document_content=DOCUMENT.format(n=n),
                    stages=list(LATENCIES),
                )
            if not pipeline.start(job):
                raise RuntimeError(f"job {job.id} was not sent")

        started = time.time()
        with ThreadPoolExecutor(SUBMITTERS) as pool:
            list(pool.map(submit, range(count)))
        submitted = time.time() - started
        finished = select(func.count()).where(Job.status.in_(("completed", "failed", "cancelled")))
        with database.session() as session:
            while session.scalar(finished) < count:
                time.sleep(0.05)
            rows = session.execute(select(Job.status, Job.created_at, Job.updated_at)).all()
    finally:
        cpu = worker.stop()
        database.dispose()
    if {row.status for row in rows} != {"completed"}:
        raise RuntimeError(f"not every job completed: {sorted({r.status for r in rows})}")
    wall = max(row.updated_at for row in rows).timestamp() - started
    latencies = [(row.updated_at - row.created_at).total_seconds() for row in rows]
    return Phase("gateway pipeline", count, submitted, wall, latencies, cpu)


def run_bare(settings: Settings, count: int, log: Path) -> Phase:
    """Phase 2: the same chain shape with tasks that only sleep, on the same worker settings."""
    app = bare_app(settings)
    worker = Worker([sys.executable, "-m", "bench.pipeline", "bare-worker"], settings, log)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        worker.wait_ready(app)

        def submit(_: int) -> None:
            now = time.time()
            chain(
                *(app.signature(f"bench.bare.{s}", (now,), immutable=True) for s in LATENCIES)
            ).apply_async()

        started = time.time()
        with ThreadPoolExecutor(SUBMITTERS) as pool:
            list(pool.map(submit, range(count)))
        submitted = time.time() - started
        while client.llen(DONE_KEY) < count:
            time.sleep(0.05)
        wall = time.time() - started
        latencies = [float(v) for v in client.lrange(DONE_KEY, 0, -1)]
    finally:
        cpu = worker.stop()
        client.close()
    return Phase("bare sleeping chain", count, submitted, wall, latencies, cpu)


def report(phases: list[Phase], settings: Settings) -> None:
    """Print each phase and the ratio of the gateway to the bare chain."""
    mean = sum(sum(span) / 2 for span in LATENCIES.values()) * settings.provider_latency_scale
    ideal = settings.worker_concurrency / mean
    print(f"\nworker: {settings.worker_pool} pool, concurrency {settings.worker_concurrency}; "
          f"mean simulated latency {mean:.2f} s/job, so at most {ideal:.1f} jobs/s")  # fmt: skip
    print(f"{'':22} {'jobs':>5} {'submit s':>9} {'wall s':>7} {'jobs/s':>7} "
          f"{'p50 s':>6} {'p95 s':>6} {'worker CPU s':>12}")  # fmt: skip
    for p in phases:
        p50 = statistics.median(p.latencies_s)
        p95 = statistics.quantiles(p.latencies_s, n=20)[-1]
        print(f"{p.name:22} {p.jobs:5} {p.submit_s:9.2f} {p.wall_s:7.2f} {p.rate:7.2f} "
              f"{p50:6.2f} {p95:6.2f} {p.cpu_s:12.2f}")  # fmt: skip
    gateway, bare = phases
    print(f"gateway / bare throughput: {gateway.rate / bare.rate:.2f}")


def run(admin_url: str, count: int, pool: str, concurrency: int) -> int:
    """Both phases on a throwaway database and a private Redis."""
    name = f"gateway_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    redis_server = start_redis(workdir)
    try:
        upgrade_schema(url)
        # Every knob at its default (the latencies, the worker unless asked) but where data goes.
        settings = Settings.from_env(
            {
                "DATABASE_URL": url,
                "REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0",
                "WORKER_POOL": pool,
                "WORKER_CONCURRENCY": str(concurrency),
                "LOG_LEVEL": "WARNING",
                # The simulated stages, whose latencies the bare chain sleeps as well.
                "ANALYZER_PROVIDER": "simulated",
                "ENRICHER_PROVIDER": "simulated",
            }
        )
        print(f"{count} three-stage jobs, then {count} bare chains", flush=True)
        phases = [
            run_gateway(settings, count, workdir / "gateway-worker.log"),
            run_bare(settings, count, workdir / "bare-worker.log"),
        ]
        report(phases, settings)
        return 0
    finally:
        redis_server.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, or (`bare-worker`) the worker of its bare chain."""
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["bare-worker"]:
        app = bare_app(Settings.from_env())
        app.worker_main(["worker", "-n", "bench-bare@%h", "-l", "WARNING"])
        return 0
    base = Settings.from_env()
    default_admin = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    if make_url(base.database_url).get_backend_name() == "postgresql":
        default_admin = make_url(base.database_url).set(database="postgres").render_as_string(False)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--admin-url", default=default_admin, help="PostgreSQL server to use")
    parser.add_argument("--jobs", type=int, default=200, help="jobs (and bare chains) to run")
    defaults = Settings()
    parser.add_argument("--pool", default=defaults.worker_pool, help="worker pool of both phases")
    parser.add_argument(
        "--concurrency", type=int, default=defaults.worker_concurrency, help="worker concurrency"
    )
    args = parser.parse_args(argv)
    return run(args.admin_url, args.jobs, args.pool, args.concurrency)


@dataclass
class RedisProcess:
    """A private redis-server without persistence."""

    process: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_redis(workdir: Path) -> RedisProcess:
    """Start redis-server on a free port and wait until it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    executable = shutil.which("redis-server") or "redis-server"
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    client.close()
    return RedisProcess(process, port)


if __name__ == "__main__":
    sys.exit(main())
