"""Test support: a private Redis server, free ports, polling until a condition holds, Celery
worker and gateway processes, task events, a TCP proxy that can be cut, reading a job and its
events, and the `gateway` command line and `make run` as a person runs them."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import psutil
import redis
from celery.worker import state as worker_state
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from events.consumer import Consumer
from events.model import TERMINAL_TYPES, Event
from gateway import jobs
from gateway.config import Settings
from gateway.jobs import JobSnapshot
from gateway.models import OutboxEvent
from gateway.services import get_services
from gateway.stages import STAGES

T = TypeVar("T")
PROJECT_DIR = Path(__file__).resolve().parent.parent
# The server the suite creates its test databases on (trust auth), and the tables it empties.
PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
TABLES = (
    "idempotency_keys", "outbox_events", "stage_texts", "job_files", "stage_runs", "jobs",
    "api_keys", "tenants",
)  # fmt: skip


def race(services: Any, *actions: Callable[..., Any], transitions: Sequence[int] = ()) -> list[Any]:
    """Run each action in its own thread and session, released together; return their outcomes
    (what each returned, or the exception it raised).

    The actions at the indexes `transitions` get a `Database.transition()` session (autocommit
    on PostgreSQL, as the workers use it), the others a transactional one.
    """
    barrier = threading.Barrier(len(actions))
    outcomes: list[Any] = [None] * len(actions)

    def run(index: int, action: Callable[..., Any]) -> None:
        database = services.database
        opened = database.transition() if index in transitions else database.session()
        with opened as session:
            barrier.wait()
            try:
                outcomes[index] = action(session)
            except Exception as exc:
                outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], T | Literal[False] | None],
    timeout: float = 15.0,
    interval: float = 0.05,
) -> T:
    """Poll `condition` until it returns something truthy; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition still false after {timeout} s: {condition}")
        time.sleep(interval)


@contextlib.contextmanager
def running_in_thread(loop: Any, join_timeout: float = 10.0) -> Iterator[threading.Thread]:
    """Run `loop.run()` (a relay or a consumer) in a thread; on exit set `loop.stop`, join the
    thread, and fail if it did not stop within `join_timeout` seconds."""
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        yield thread
    finally:
        loop.stop.set()
        thread.join(join_timeout)
    assert not thread.is_alive(), f"{type(loop).__name__} did not stop"


class RedisServer:
    """A redis-server of the test session's own, on a free port; stop() and start() simulate outages.

    With `persistent=True` it keeps an append-only file, so a restart keeps streams and
    Celery's queued messages, as docker-compose's Redis does.
    """

    def __init__(self, *, persistent: bool = False) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
        self.executable = executable
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="gateway-redis-"))
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start (or restart) on the same port and wait until it answers."""
        appendonly = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else []
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir), *appendonly],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        wait_until(lambda: _answers(client), timeout=10)
        client.close()

    def stop(self) -> None:
        """Stop the server; its data is gone unless it is persistent, as with a crashed Redis."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def kill(self) -> None:
        """SIGKILL the server, as `docker-compose kill -s KILL redis` does: no final write, no
        goodbye to its clients; what it kept is what its append-only file holds."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def freeze(self) -> None:
        """Stop the server's process without closing its port: it accepts, but never answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None:
            self.thaw()
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class TcpProxy:
    """A TCP proxy to a real server (e.g. PostgreSQL) that can be cut to simulate an outage.

    While cut it breaks the open connections and drops every new one at once, as a database
    restarting does; `connections` counts the connections clients attempted.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.up = True
        self.connections = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        with self._lock:
            self.up = False
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                if not self.up:
                    client.close()
                    continue
                server = socket.create_connection(self.target)
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)


class CollectedOutput:
    """A started process whose standard output (text) is read into `lines` by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def join(self, timeout: float = 10) -> None:
        """Wait until the whole output was read (the process has exited)."""
        self._reader.join(timeout)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that make Settings.from_env() rebuild `settings` in a subprocess."""
    return {f.metadata["env"]: str(getattr(settings, f.name)) for f in dataclasses.fields(Settings)}


class TaskEvents:
    """Records the Celery task events (task-sent, task-started, task-revoked, ...) on a broker."""

    def __init__(self, celery: Any) -> None:
        self.celery = celery
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __enter__(self) -> TaskEvents:
        self._connection = self.celery.connection_for_read()
        self._receiver = self.celery.events.Receiver(self._connection, handlers={"*": self._record})
        consume = self._receiver.consume(safety_interval=0.1, wakeup=False)
        self._thread = threading.Thread(target=lambda: [None for _ in consume], daemon=True)
        self._thread.start()
        # Events travel over Redis pub/sub, which drops what is sent before we subscribed.
        with self.celery.events.default_dispatcher() as dispatcher:
            wait_until(lambda: dispatcher.send("probe-events") or self.of_type("probe-events"))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._receiver.should_stop = True
        self._thread.join(timeout=5)
        self._connection.release()

    def _record(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)

    def of_type(self, event_type: str, task_id: str | None = None) -> list[dict[str, Any]]:
        """The events of this type so far (optionally of one task id), in arrival order."""
        with self._lock:
            return [
                e
                for e in self.events
                if e["type"] == event_type and (task_id is None or e.get("uuid") == task_id)
            ]


class GatewayProcess:
    """`gateway <command>` as its own process with the test's settings, logging to a file."""

    def __init__(self, settings: Settings, log_path: Path, *args: str) -> None:
        self.env = {**os.environ, **settings_env(settings.replace(log_level="INFO"))}
        self.args = args
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [str(Path(sys.executable).with_name("gateway")), *self.args],
                cwd=PROJECT_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crashed machine would: no clean-up of any kind."""
        self.process.kill()
        self.process.wait(10)

    def restart(self) -> None:
        """Start the same command again (after `kill` or `stop`), appending to the same log."""
        self.process = self._spawn()

    def stop(self) -> int:
        """SIGTERM, then its exit code."""
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(15)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)


class WorkerProcess:
    """A real `celery -A worker worker` in its own process group, configured by environment."""

    def __init__(self, settings: Settings, name: str, log_path: Path) -> None:
        self.env = {**os.environ, **settings_env(settings)}
        self.name = name
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the worker (it connects and consumes in the background)."""
        command = [sys.executable, "-m", "celery", "-A", "worker", "worker",
                   "-n", f"{self.name}@%h", "-l", "INFO"]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a kill takes all of it
            )

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crashed machine would."""
        if self.process is not None:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it has not exited within 20 s."""
        if self.process is None:
            return
        _signal_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        """What the worker wrote so far (for failure messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def load_job(app: Flask, job_id: str) -> JobSnapshot:
    """The job as stored right now, with its stage runs (read in a fresh session)."""
    with get_services(app).database.session() as session:
        return jobs.get_job(session, job_id)


def wait_for_job(app: Flask, job_id: str, *statuses: str, timeout: float = 15.0) -> JobSnapshot:
    """Poll until the job's status is one of `statuses`; return it."""
    return wait_until(
        lambda: (job := load_job(app, job_id)).status in statuses and job, timeout=timeout
    )


def stream_entries(client: redis.Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    """XRANGE of the whole stream, typed as the decoding clients of the suite return it."""
    return cast(list[tuple[str, dict[str, str]]], client.xrange(stream))


def job_events(app: Flask, job_id: str) -> list[Event]:
    """The job's entries on the app's events stream, in stream order."""
    services = get_services(app)
    entries = stream_entries(services.redis, services.settings.events_stream)
    events = [Event.from_fields(fields) for _, fields in entries]
    return [event for event in events if event.job_id == job_id]


def broker_is_idle(app: Flask) -> bool:
    """No stage message queued or held unacknowledged by a worker (ETA retries included)."""
    client = get_services(app).redis
    return queued_stages(client) == 0 and client.hlen("unacked") == 0


def pipeline_is_idle(app: Flask) -> bool:
    """Nothing in flight: no stage message queued or unacknowledged on the broker, and none
    reserved or running in this process's embedded workers."""
    busy = worker_state.reserved_requests or worker_state.active_requests
    return broker_is_idle(app) and not busy


def join(app: Flask, timeout: float = 15.0) -> None:
    """Wait until the pipeline is idle on three checks in a row, as Dramatiq's `join()` waits
    for a broker: after it, whatever the stages sent has run and their events are on the stream.

    Three, because a message a worker has just popped from its queue shows neither queued nor
    unacknowledged for an instant.
    """
    quiet = 0

    def settled() -> bool:
        nonlocal quiet
        quiet = quiet + 1 if pipeline_is_idle(app) else 0
        return quiet >= 3

    wait_until(settled, timeout=timeout)


def queued_stages(client: redis.Redis) -> int:
    """Stage messages waiting in the stage queues (a chain is one message: its first stage)."""
    return sum(int(client.llen(stage)) for stage in STAGES)


def settled_events(app: Flask, job_id: str, timeout: float = 15.0) -> list[Event]:
    """The job's stream entries once its terminal event is there (appended just after commit)."""
    return wait_until(
        lambda: (
            (events := job_events(app, job_id))
            and events[-1].event_type in TERMINAL_TYPES
            and events
        ),
        timeout=timeout,
    )


def assert_problem(response: Any, status: int, detail: str | None = None) -> dict[str, Any]:
    """The response is a problem-details document with this status (and detail)."""
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["title"] and body["detail"]
    if detail is not None:
        assert body["detail"] == detail
    return body


@contextlib.contextmanager
def served(app: Flask) -> Iterator[str]:
    """Serve `app` over real HTTP (Werkzeug's threaded server) on a free port; yield its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(10)


# --- Events, as a test reads them --------------------------------------------------------------

# A line `gateway consume` prints per handled event; the group is the event id.
HANDLED = re.compile(r"job\.\w+ job=\S+ event=([0-9a-f-]{36})")


def history(client: redis.Redis, stream: str) -> dict[str, list[dict[str, Any]]]:
    """Each job's events in stream order, payload decoded, duplicates (same event_id) dropped."""
    seen: set[str] = set()
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry_id, fields in stream_entries(client, stream):
        if fields["event_id"] in seen:
            continue
        seen.add(fields["event_id"])
        by_job[fields["job_id"]].append(
            {**fields, "payload": json.loads(fields["payload"]), "entry_id": entry_id}
        )
    return by_job


Step = tuple[str | int, ...]


def steps(events: list[dict[str, Any]]) -> list[Step]:
    """(event_type, stage) pairs, with the attempt for starts: a compact, exact sequence."""
    out: list[Step] = []
    for e in events:
        p = e["payload"]
        if e["event_type"] in ("job.stage_started", "job.stage_retrying"):
            out.append((e["event_type"], p["stage"], p["attempt"]))
        elif "stage" in p:
            out.append((e["event_type"], p["stage"]))
        else:
            out.append((e["event_type"],))
    return out


def successful_steps(stages: list[str]) -> list[Step]:
    """The events of a job whose stages all succeed at the first attempt."""
    out: list[Step] = [("job.created",)]
    for stage in stages:
        out += [("job.stage_started", stage, 1), ("job.stage_completed", stage)]
    return [*out, ("job.completed",)]


def stage_event_counts(app: Flask, job_id: str) -> dict[tuple[str, str | None], int]:
    """How many of each (event type, stage) the job has on the stream: duplicates show as 2."""
    return dict(Counter((e.event_type, e.payload.get("stage")) for e in job_events(app, job_id)))


def outbox_event_types(session: Session, job_id: str) -> list[str]:
    """The job's event types as stored in the outbox (in the caller's transaction), in order."""
    query = select(OutboxEvent.event_type).where(OutboxEvent.job_id == job_id)
    return list(session.scalars(query.order_by(OutboxEvent.id)))


def outbox_events(session: Session, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The job's (event type, payload) pairs as stored in the outbox, in order."""
    query = select(OutboxEvent.event_type, OutboxEvent.payload).where(OutboxEvent.job_id == job_id)
    return [
        (row.event_type, row.payload) for row in session.execute(query.order_by(OutboxEvent.id))
    ]


def drain(consumer: Consumer, rounds: int = 3) -> None:
    """Poll until `rounds` polls in a row found nothing."""
    quiet = 0
    while quiet < rounds:
        quiet = 0 if consumer.poll() else quiet + 1


SECRET = "test-key-secret"


def keyed_settings() -> dict[str, Any]:
    """The settings changes that turn API keys on (make_app(**keyed_settings()))."""
    return {"auth_mode": "keys", "api_key_secret": SECRET}


def api_key(app: Flask, tenant: str, *, read_only: bool = False) -> dict[str, str]:
    """A new key of `tenant`, as the headers that present it."""
    from gateway import keys

    services = get_services(app)
    with services.database.session() as session:
        key = keys.create_key(
            session, tenant, services.settings.api_key_secret, read_only=read_only
        )
    return {"Authorization": f"Bearer {key}"}


# --- The `gateway` command line, as a person runs it -------------------------------------------

GATEWAY_SCRIPT = str(Path(sys.executable).with_name("gateway"))
CLIENT_VARIABLES = ("GATEWAY_URL", "GATEWAY_API_KEY")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def client_environ(run_file: Path, **values: str) -> dict[str, str]:
    """This environment without any gateway setting or client variable, its run file `run_file`
    (absent unless the test writes it), plus `values`."""
    names = {f.metadata["env"] for f in dataclasses.fields(Settings)} | set(CLIENT_VARIABLES)
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(RUN_FILE=str(run_file), **values)
    return env


def gateway(
    *args: str, env: dict[str, str], input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `gateway ARGS…` to its end; its exit status, stdout and stderr."""
    return subprocess.run(
        [GATEWAY_SCRIPT, *args],
        env=env,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Terminal:
    """`gateway ARGS…` on a pseudo-terminal, as a person's shell runs it; its screen output is
    read by a thread."""

    def __init__(self, *args: str, env: dict[str, str], columns: int = 120) -> None:
        import pty

        master, slave = pty.openpty()
        terminal_env = dict(env, TERM="xterm-256color", COLUMNS=str(columns), LINES="40")
        self.process = subprocess.Popen(
            [GATEWAY_SCRIPT, *args], stdin=slave, stdout=slave, stderr=slave, env=terminal_env
        )
        os.close(slave)
        self._master = master
        self._raw = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            self._raw += chunk
        os.close(self._master)

    @property
    def raw(self) -> str:
        """Everything written so far, escape sequences included."""
        return bytes(self._raw).decode(errors="replace")

    @property
    def text(self) -> str:
        """What was written so far, without escape sequences."""
        return ANSI_ESCAPE.sub("", self.raw)

    def wait(self, timeout: float = 30) -> int:
        """Its exit status, once it exited and its output was read."""
        status = self.process.wait(timeout=timeout)
        self._reader.join(10)
        return status

    def close(self) -> None:
        """Stop it if it still runs (a failed test)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# --- A real browser: Debian's Chromium, driven by Playwright ------------------------------------

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Headless, and nothing that reaches for the network beyond the page's own server.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def chromium_missing() -> str | None:
    """Why no browser test can run here, or None: Chromium and Playwright are both needed."""
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (make install)"
    return None


# --- make run, as a person starts it --------------------------------------------------------------


class Launch(CollectedOutput):
    """`make run` (or another command) in a process group of its own, its output kept by line."""

    def __init__(self, env: dict[str, str], argv: list[str] | None = None) -> None:
        self.port = int(env["PORT"])
        self.flower_port = int(env["FLOWER_PORT"])
        super().__init__(
            subprocess.Popen(
                argv or [shutil.which("make") or "make", "--no-print-directory", "run"],
                cwd=PROJECT_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # its own group, as a terminal gives a foreground job
            )
        )
        self.seen: list[psutil.Process] = []

    def find(self, pattern: str) -> re.Match[str] | None:
        """The first output line matching `pattern`."""
        for line in list(self.lines):
            if match := re.search(pattern, line):
                return match
        return None

    def wait_for(self, condition: Any, timeout: float) -> Any:
        """wait_until, failing at once (with the output) if the launcher exits meanwhile."""

        def check() -> Any:
            if self.process.poll() is not None:
                raise AssertionError(f"launcher exited ({self.process.returncode}):\n{self.output}")
            return condition()

        try:
            return wait_until(check, timeout=timeout, interval=0.1)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- output ---\n{self.output}") from None

    def remember_processes(self) -> list[psutil.Process]:
        """Every process started under the launcher, so we can check later that all are gone."""
        self.seen = psutil.Process(self.process.pid).children(recursive=True)
        return self.seen

    def signal_group(self, signum: int) -> int:
        """Send `signum` to the whole group, as a terminal's Ctrl-C does; return make's status."""
        os.killpg(self.process.pid, signum)
        status = self.process.wait(timeout=40)
        self.join()
        return status

    def kill_everything(self) -> None:
        """Cleanup after a failed test: nothing may outlive it."""
        if self.process.poll() is None:
            self.seen += psutil.Process(self.process.pid).children(recursive=True)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for process in self.seen:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def http(
    method: str, url: str, body: dict[str, Any] | None = None, auth: str | None = None
) -> tuple[int, Any, Any]:
    """A curl-like request: status, decoded JSON body (or None), headers; `auth` is user:password."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            payload = response.read()
            if response.headers.get_content_type() == "application/json":
                return response.status, json.loads(payload), response.headers
            return response.status, payload, response.headers
    except urllib.error.HTTPError as error:
        return error.code, None, error.headers
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        # TimeoutError: gunicorn listens before its worker has booted (seconds on a loaded
        # machine); a request read meanwhile times out, which is "not answering yet".
        return 0, None, None


def launcher_environ(**values: str) -> dict[str, str]:
    """This environment without any gateway setting, plus `values` and quick test knobs."""
    names = {f.metadata["env"] for f in dataclasses.fields(Settings)}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(
        # Not the checkout's instance/run.json, which a developer's own make run may be using
        RUN_FILE=str(Path(tempfile.gettempdir()) / f"gateway-run-{uuid.uuid4().hex}.json"),
        PORT=str(free_port()),
        FLOWER_PORT=str(free_port()),
        PROVIDER_LATENCY_SCALE="0",
        API_WORKERS="1",
        WORKER_CONCURRENCY="4",
        WORKER_PROCESSES="2",
        LOG_LEVEL="INFO",
    )
    env.update(values)
    return env
