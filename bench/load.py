"""End-to-end load benchmark: the whole system as `make run` starts it, driven over HTTP.

Each scenario starts `python -m gateway.launcher` (API, worker, relay, consumer, Flower) on a
fresh PostgreSQL database (migrated by the launcher) and a private redis-server (flushed
between scenarios), waits for GET /readyz, then runs client threads in this process, one
keep-alive connection each. Polling clients POST /api/jobs/ and GET /api/jobs/{id}/ every
50 ms until the job is finished, then take the next job; submit-only clients POST as fast as
they can while the bench counts finished jobs in the database every 0.2 s (one connection;
its backend is the "bench db poll" row). A 503 is slept off (min(Retry-After, 1 s)) and
retried; any other non-2xx answer is an error, and past 1% the scenario is aborted.

CPU ms/job, the key number: busy CPU-seconds of the whole machine (/proc/stat) from the first
submitted job to the last one seen finished, minus this process's own CPU (getrusage), per
job. On a shared machine that includes other people's load, so the per-process table also
shows what each process of the system (PostgreSQL backends included) spent, and what is left
unattributed. Scenario 1 also runs a bare chain on the same servers: three Celery tasks, each
one UPDATE and one XADD, on a real worker with the gateway's Celery configuration, pool and
concurrency, fed by as many threads calling apply_async. Scenario 5 compares the worker's RSS
after 1,000 and after 20,000 jobs. Everything is stopped and every database dropped at the end.

    python -m bench.load [--scenarios 1,2,3,4,5] [--jobs-scale 0.1] [--admin-url URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil
import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from bench import loadgen
from bench.loadkit import (
    PROJECT_DIR,
    CpuMeter,
    CpuUse,
    Probe,
    ScenarioError,
    Service,
    free_port,
    http_status,
    role_of,
    throwaway_database,
)
from bench.loadreport import report
from bench.pipeline import RedisProcess, start_redis
from gateway.config import Settings

FINISHED = text("SELECT count(*) FROM jobs WHERE status IN ('completed', 'failed', 'cancelled')")
STALL_S = 120.0  # a phase in which no job finishes for this long is aborted


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    jobs: int
    clients: int
    polling: bool  # submit and poll each job; else submit without waiting
    latency_scale: float = 0.0
    healthz: bool = False  # one more thread GETs /healthz every 50 ms
    rss_at: int = 0  # worker RSS after this many finished jobs, and at the end


SCENARIOS = {
    "1": Scenario("1", "zero latency, polling", 2000, 16, polling=True),
    "2": Scenario("2", "zero latency, polling", 1000, 4, polling=True),
    "3": Scenario("3", "zero latency, submit-only", 1000, 4, polling=False),
    "4": Scenario("4", "latency x1, polling", 1000, 64, True, 1.0, healthz=True),
    "5": Scenario("5", "memory, submit-only", 20_000, 16, False, rss_at=1000),
}


@dataclass
class Result:
    """What one measured phase saw."""

    key: str
    name: str
    jobs: int
    clients: int
    wall_s: float
    cpu: CpuUse
    tally: loadgen.Tally
    statuses: dict[str, int]
    accept_s: float = 0.0  # first job submitted -> last POST accepted
    rss: list[tuple[int, int]] = field(default_factory=list)  # (finished jobs, bytes)

    @property
    def rate(self) -> float:
        """Completed jobs per second."""
        return self.statuses.get("completed", 0) / self.wall_s

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu.system_s / self.jobs


@dataclass
class Bench:
    """What the scenarios share: the PostgreSQL server, the private Redis, a work directory."""

    admin: Engine
    redis_server: RedisProcess
    workdir: Path
    scale: float

    def env(self, database_url: str, **extra: str) -> dict[str, str]:
        redis_url = f"redis://127.0.0.1:{self.redis_server.port}/0"
        # The simulated analyzer and enricher: their latencies are what the scenarios scale.
        # Every client thread calls from one address: rate limits would cap the load itself.
        return {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                "LOG_LEVEL": "WARNING", "ANALYZER_PROVIDER": "simulated",
                "ENRICHER_PROVIDER": "simulated", "RATE_LIMIT_ENABLED": "false",
                **extra}  # fmt: skip

    def redis(self) -> redis.Redis:
        """A client of the private Redis, emptied: each scenario starts from a clean state."""
        client = redis.Redis(port=self.redis_server.port)
        client.flushall()
        return client

    def probe(self, services: list[Service], database_url: str, poll_pid: int = 0) -> Probe:
        def roots() -> list[psutil.Process]:
            return [process for service in services for process in service.tree()]

        database = make_url(database_url).database or ""
        return Probe(roots, self.redis_server.process.pid, self.admin, database, poll_pid)


def wait_until(
    count: Callable[[], int], target: Callable[[], int], check: Callable[[int], None]
) -> float:
    """Poll `count()` every 0.2 s until it reaches `target()`; return when (perf_counter)."""
    last, changed = -1, time.monotonic()
    while (seen := count()) < target():
        check(seen)
        if seen != last:
            last, changed = seen, time.monotonic()
        elif time.monotonic() - changed > STALL_S:
            raise ScenarioError(f"no job finished for {STALL_S:.0f} s: {seen} of {target()}")
        time.sleep(0.2)
    ended = time.perf_counter()
    check(seen)
    return ended


def run_gateway(bench: Bench, sc: Scenario) -> Result:
    """Start the system on a fresh database, run the scenario's clients, stop the system."""
    bench.redis().close()
    with throwaway_database(bench.admin, f"s{sc.key}") as url:
        port = free_port()
        env = bench.env(url, PORT=str(port), FLOWER_PORT=str(free_port()),
                        PROVIDER_LATENCY_SCALE=str(sc.latency_scale))  # fmt: skip
        command = [sys.executable, "-m", "gateway.launcher"]
        launcher = Service(command, env, bench.workdir / f"launcher-{sc.key}.log")
        db = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
        try:
            with db.connect() as conn:
                probe = bench.probe([launcher], url, conn.scalar(text("SELECT pg_backend_pid()")))
                wait_started(launcher, probe, Settings.from_env(env))
                return drive(bench, sc, port, probe, lambda: int(conn.scalar(FINISHED) or 0))
        except ScenarioError:
            print(f"  the launcher's last lines:\n{launcher.tail()}", flush=True)
            raise
        finally:
            db.dispose()
            if (rc := launcher.stop()) != 0:
                print(f"  launcher exited with status {rc}; its last lines:\n{launcher.tail()}")


def wait_started(launcher: Service, probe: Probe, settings: Settings) -> None:
    """Until /readyz says 200, every worker answers a ping and the processes are idle."""
    took = launcher.wait(lambda: http_status(settings.port, "/readyz") == 200)
    with loadgen.gateway_celery(settings) as celery:

        def workers_answer() -> bool:
            return len(celery.control.ping(timeout=0.5)) >= probe.worker_count()

        took += launcher.wait(workers_answer)
    idle = probe.wait_idle()
    print(f"  /readyz 200, workers up in {took:.1f} s, idle {idle:.1f} s later", flush=True)


def drive(
    bench: Bench, sc: Scenario, port: int, probe: Probe, finished: Callable[[], int]
) -> Result:
    """The measured phase: from the first job submitted to the last one seen finished."""
    jobs = max(1, round(sc.jobs * bench.scale))
    tally, stop = loadgen.Tally(jobs), threading.Event()
    rss: list[tuple[int, int]] = []
    rss_at = max(1, round(sc.rss_at * bench.scale)) if sc.rss_at else 0
    clients: list[Future[None]] = []

    def check(seen: int) -> None:
        if rss_at and not rss and seen >= rss_at:
            rss.append((seen, probe.rss()))
        if tally.aborted or any(f.done() and f.exception() for f in clients):
            raise ScenarioError(f"{tally.errors} errors, the first: {tally.first_error}")

    client = loadgen.poll_client if sc.polling else loadgen.submit_client
    with ThreadPoolExecutor(sc.clients + 1) as pool:
        meter, started = CpuMeter(probe), time.perf_counter()
        clients = [pool.submit(client, port, tally) for _ in range(sc.clients)]
        if sc.healthz:
            pool.submit(loadgen.healthz_client, port, tally, stop)
        try:
            if sc.polling:
                for future in clients:
                    future.result()
                check(0)
                ended = max(tally.seen_at, default=time.perf_counter())
            else:
                ended = wait_until(finished, lambda: jobs - tally.errors, check)
        except BaseException:
            tally.aborted = True  # the clients stop at their next request
            raise
        finally:
            stop.set()
        cpu = meter.stop()
    if rss_at:
        rss.append((finished(), probe.rss()))
    statuses = job_statuses(bench.admin, probe.database)
    return Result(sc.key, f"gateway, {sc.title}", jobs, sc.clients, ended - started, cpu, tally,
                  statuses, tally.last_post_at - started, rss)  # fmt: skip


def job_statuses(admin: Engine, database: str) -> dict[str, int]:
    engine = create_engine(admin.url.set(database=database))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM jobs GROUP BY status")).all()
    engine.dispose()
    return {status: count for status, count in rows}


def run_bare(bench: Bench, jobs: int, clients: int, processes: int) -> Result:
    """Bare chains on `processes` workers with the gateway's Celery configuration, pool and
    concurrency (Settings as the code under test has them now), fed without HTTP."""
    done = bench.redis()
    with throwaway_database(bench.admin, "bare") as url:
        loadgen.create_bare_table(url, jobs)
        settings = Settings.from_env(bench.env(url))
        app = loadgen.bare_app(settings)
        logs = [bench.workdir / f"bare-worker-{i}.log" for i in range(processes)]
        flags = gateway_worker_flags(settings)
        command = [sys.executable, "-m", "bench.load", "bare-worker"]
        workers = [Service([*command, log.stem, *flags], bench.env(url), log) for log in logs]
        try:
            for worker in workers:
                worker.wait(lambda: len(app.control.ping(timeout=0.5)) >= processes)
            probe, tally = bench.probe(workers, url), loadgen.Tally(jobs)
            with ThreadPoolExecutor(clients) as pool:
                meter, started = CpuMeter(probe), time.perf_counter()
                futures = [pool.submit(loadgen.chain_client, app, tally) for _ in range(clients)]
                finished = wait_until(
                    lambda: int(done.llen(loadgen.BARE_DONE)), lambda: jobs, lambda _: None
                )
                cpu = meter.stop()
                for future in futures:
                    future.result()
        except ScenarioError:
            print(f"  the bare worker's last lines:\n{workers[0].tail()}", flush=True)
            raise
        finally:
            for worker in workers:
                worker.stop()
            done.close()
    name = f"bare chain, {processes} x {settings.worker_pool} x{settings.worker_concurrency}"
    return Result("1", name, jobs, clients, finished - started, cpu, tally, {"completed": jobs})


def gateway_worker_flags(settings: Settings) -> list[str]:
    """The options `make run` gives its worker, but its name and log level."""
    from gateway.launcher import commands

    argv = next(argv for argv in commands(settings).values() if role_of(argv) == "worker")
    options = argv[argv.index("-A") + 3 :]  # after `celery -A worker worker`
    return [arg for arg in options if not arg.startswith(("--hostname", "--loglevel"))]


def header(scale: float) -> str:
    """Machine, cores, date, code under test and its default worker."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1] for ln in cpuinfo if ln.startswith("model name")), "?")

    def git(*args: str) -> str:
        run = subprocess.run(["git", "-C", str(PROJECT_DIR), *args], capture_output=True, text=True)
        return run.stdout.strip()

    commit = git("log", "-1", "--format=%h %s")
    if changed := git("status", "--porcelain", "--untracked-files=no"):
        commit += f"\n  plus uncommitted changes to {len(changed.splitlines())} tracked files"
    s = Settings()  # the defaults of the code under test, as they are now
    processes = getattr(s, "worker_process_count", 1)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"bench.load, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, host {platform.node()}\n"
        f"machine: {model.strip()}, nproc {len(os.sched_getaffinity(0))}, load average {load}\n"
        f"commit: {commit}\n"
        f"defaults: {processes} worker process(es), {s.worker_pool} pool x{s.worker_concurrency},"
        f" API {s.api_workers} x {s.api_threads} threads; job counts x {scale:g}"
    )


def run(args: argparse.Namespace) -> int:
    """Every scenario asked for, then the report; 1 if one of them failed."""
    print(header(args.jobs_scale), flush=True)
    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    workdir = Path(tempfile.mkdtemp(prefix="gateway-load-"))
    results: list[Result] = []
    failures: list[str] = []
    try:
        bench = Bench(admin, start_redis(workdir), workdir, args.jobs_scale)
        try:
            for key in args.scenarios:
                sc = SCENARIOS[key]
                print(f"scenario {key}: {sc.title}, {sc.clients} clients", flush=True)
                try:
                    results.append(run_gateway(bench, sc))
                    if key == "1":
                        bare = run_bare(bench, results[-1].jobs, sc.clients, args.bare_workers)
                        results.append(bare)
                except ScenarioError as exc:
                    failures.append(f"scenario {key}: {exc}")
                    print(f"  FAILED {exc}", flush=True)
        finally:
            bench.redis_server.stop()
        report(results)
    finally:
        admin.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    for failure in failures:
        print(f"FAILED {failure}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, or (`bare-worker NAME [OPTIONS]`) a worker of the bare chain."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bare-worker"]:
        app = loadgen.bare_app(Settings.from_env())
        name, flags = argv[1], argv[2:]  # the options of the gateway's worker
        app.worker_main(["worker", "-n", f"bench-load-{name}@%h", "-l", "WARNING", *flags])
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="e.g. 1,4 (default: all)")
    parser.add_argument("--jobs-scale", type=float, default=1.0, help="multiplies every job count")
    parser.add_argument(
        "--admin-url",
        default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
        help="a database of the PostgreSQL server to use, where the bench may CREATE DATABASE",
    )
    parser.add_argument(
        "--bare-workers", type=int, default=1, help="worker processes of the bare chain"
    )
    args = parser.parse_args(argv)
    args.scenarios = [key.strip() for key in args.scenarios.split(",") if key.strip()]
    if unknown := sorted(set(args.scenarios) - set(SCENARIOS)):
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
