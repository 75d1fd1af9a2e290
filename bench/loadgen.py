"""Load generators of bench.load: HTTP clients of the API, and the bare Celery chain."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time

import redis
from celery import Celery, chain
from sqlalchemy import Engine, create_engine, text

import celeryconfig
from gateway.config import Settings

STAGES = ("extraction", "analysis", "enrichment")
TERMINAL = frozenset({"completed", "failed", "cancelled"})
DOCUMENT = "Hi, my name is Gabriela, I want to cancel my subscription. SubscriptionID {n}"
POLL_S = 0.05  # between two GETs of one job, and of /healthz
JOB_TIMEOUT_S = 120.0  # a polled job not finished by then is an error
BARE_DONE = "bench:load:bare:done"
BARE_EVENTS = "bench:events"


class Tally:
    """Shared by the client threads of one phase: the job numbers to take, what they saw."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.lock = threading.Lock()
        self.taken = 0
        self.post_s: list[float] = []  # latency of each accepted POST
        self.e2e_s: list[float] = []  # first POST sent -> finished status seen
        self.polls: list[int] = []  # GETs per polled job
        self.seen_at: list[float] = []  # perf_counter when each polled job was seen finished
        self.healthz_s: list[float] = []
        self.last_post_at = 0.0
        self.rejected = 0  # 503 answers, retried
        self.reconnects = 0  # keep-alive connections the server had closed
        self.errors = 0
        self.first_error = ""
        self.aborted = False

    def take(self) -> int | None:
        """The next job number, None when all are taken or the phase is aborted."""
        with self.lock:
            if self.taken >= self.jobs or self.aborted:
                return None
            self.taken += 1
            return self.taken - 1

    def error(self, what: str) -> None:
        """Count an error; past 1% of the jobs the phase is aborted."""
        with self.lock:
            self.errors += 1
            self.first_error = self.first_error or what
            self.aborted = self.errors > 0.01 * self.jobs

    def posted(self, latency: float) -> None:
        with self.lock:
            self.post_s.append(latency)
            self.last_post_at = time.perf_counter()

    def finished(self, e2e: float, polls: int) -> None:
        with self.lock:
            self.e2e_s.append(e2e)
            self.polls.append(polls)
            self.seen_at.append(time.perf_counter())


class Api:
    """One keep-alive connection to the API, as one client thread holds it."""

    def __init__(self, port: int, tally: Tally) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.tally = tally

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str, bytes]:
        """Status, Retry-After and body; status 0 (an error counted) if the connection failed."""
        headers = {"Content-Type": "application/json"} if body else {}
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.getheader("Retry-After") or "1", response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.conn.close()  # the next request opens a new connection
                if attempt:
                    self.tally.error(f"{method} {path}: {exc!r}")
                    break
                with self.tally.lock:  # the server closed an idle keep-alive connection
                    self.tally.reconnects += 1
            except (OSError, http.client.HTTPException) as exc:
                self.conn.close()
                self.tally.error(f"{method} {path}: {exc!r}")
                break
        return 0, "", b""

    def submit(self, n: int) -> tuple[str, float] | None:
        """POST job `n`, sleeping off 503s; its id and when its first POST was sent."""
        body = json.dumps(
            {
                "document_name": f"Bench {n}",
                "document_type": "bench",
                "document_content": DOCUMENT.format(n=n),
                "pipeline_config": {"stages": list(STAGES)},
            }
        ).encode()
        first = time.perf_counter()
        while not self.tally.aborted:
            sent = time.perf_counter()
            status, retry_after, data = self.call("POST", "/api/jobs/", body)
            if status == 503:
                with self.tally.lock:
                    self.tally.rejected += 1
                time.sleep(min(float(retry_after) if retry_after.isdigit() else 1.0, 1.0))
            elif 200 <= status < 300:
                self.tally.posted(time.perf_counter() - sent)
                return str(json.loads(data)["id"]), first
            else:
                if status:
                    self.tally.error(f"POST answered {status}: {data[:300]!r}")
                return None
        return None

    def follow(self, job_id: str, first: float) -> None:
        """GET the job every 50 ms until it is finished."""
        polls = 0
        while not self.tally.aborted:
            time.sleep(POLL_S)
            status, _, data = self.call("GET", f"/api/jobs/{job_id}/")
            polls += 1
            if status != 200:
                if status:
                    self.tally.error(f"GET job answered {status}: {data[:300]!r}")
                return
            state = json.loads(data)["status"]
            if state in TERMINAL:
                self.tally.finished(time.perf_counter() - first, polls)
                return
            if time.perf_counter() - first > JOB_TIMEOUT_S:
                self.tally.error(f"job {job_id} still {state} after {JOB_TIMEOUT_S:.0f} s")
                return


def poll_client(port: int, tally: Tally) -> None:
    """Submit a job, poll it until finished, next one."""
    api = Api(port, tally)
    while (n := tally.take()) is not None:
        if job := api.submit(n):
            api.follow(*job)
    api.conn.close()


def submit_client(port: int, tally: Tally) -> None:
    """Submit jobs as fast as the API takes them."""
    api = Api(port, tally)
    while (n := tally.take()) is not None:
        api.submit(n)
    api.conn.close()


def healthz_client(port: int, tally: Tally, stop: threading.Event) -> None:
    """GET /healthz every 50 ms until `stop`."""
    api = Api(port, tally)
    while not stop.wait(POLL_S):
        sent = time.perf_counter()
        status, _, data = api.call("GET", "/healthz")
        if status == 200:
            tally.healthz_s.append(time.perf_counter() - sent)
        elif status:
            tally.error(f"/healthz answered {status}: {data[:300]!r}")
    api.conn.close()


def gateway_celery(settings: Settings) -> Celery:
    """A Celery app with the gateway's configuration and no tasks (to ping its workers)."""
    app = Celery("bench_load", set_as_current=False)
    app.config_from_object(celeryconfig.from_settings(settings))
    return app


def bare_app(settings: Settings) -> Celery:
    """Three chained tasks with the gateway's Celery configuration: one UPDATE and one XADD each."""
    app = gateway_celery(settings)
    # Each stage goes to the queue the gateway routes that stage to, if it routes them.
    if isinstance(routes := app.conf.task_routes, dict):
        own = {
            f"bench.load.{s}": routes[f"gateway.{s}"] for s in STAGES if f"gateway.{s}" in routes
        }
        app.conf.task_routes = own
    clients: dict[int, tuple[Engine, redis.Redis]] = {}  # per worker process, made on first use
    lock = threading.Lock()
    update = text("UPDATE bench_jobs SET stage = :s, updated_at = now() WHERE id = :id")

    def connections() -> tuple[Engine, redis.Redis]:
        with lock:
            if os.getpid() not in clients:
                engine = create_engine(settings.database_url, pool_size=settings.worker_concurrency)
                clients[os.getpid()] = engine, redis.Redis.from_url(settings.redis_url)
            return clients[os.getpid()]

    def define(stage: str) -> None:
        @app.task(name=f"bench.load.{stage}")
        def run(job_id: int) -> None:
            engine, client = connections()
            with engine.begin() as conn:
                conn.execute(update, {"s": stage, "id": job_id})
            event = {"job_id": job_id, "stage": stage, "at": time.time()}
            client.xadd(BARE_EVENTS, event, maxlen=settings.events_stream_maxlen)  # type: ignore[arg-type]
            if stage == STAGES[-1]:
                client.rpush(BARE_DONE, job_id)

    for stage in STAGES:
        define(stage)
    return app


def create_bare_table(url: str, jobs: int) -> None:
    """bench_jobs with rows 0 .. jobs-1, before the phase."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_jobs (id integer PRIMARY KEY, stage text NOT NULL,"
                          " updated_at timestamptz NOT NULL DEFAULT now())"))  # fmt: skip
        conn.execute(text("INSERT INTO bench_jobs (id, stage) "
                          "SELECT i, 'pending' FROM generate_series(0, :n - 1) AS i"), {"n": jobs})  # fmt: skip
    engine.dispose()


def chain_client(app: Celery, tally: Tally) -> None:
    """Submit bare chains, no HTTP, as fast as the broker takes them."""
    while (n := tally.take()) is not None:
        signatures = [app.signature(f"bench.load.{s}", (n,), immutable=True) for s in STAGES]
        chain(*signatures).apply_async()
