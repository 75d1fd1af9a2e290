"""Helpers of bench.load: throwaway databases, the launched system, CPU and memory accounting."""

from __future__ import annotations

import http.client
import os
import resource
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import Engine, text

PROJECT_DIR = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Process roles of the per-process table, in the order it prints them.
ROLES = ("api", "worker", "relay", "consumer", "flower", "launcher", "redis", "postgres",
         "pg background", "bench db poll")  # fmt: skip


class ScenarioError(RuntimeError):
    """The system under test misbehaved; the scenario is abandoned."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def throwaway_database(admin: Engine, label: str) -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its URL, drop it (even if in use) after."""
    name = f"gateway_load_{uuid.uuid4().hex[:8]}_{label}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def http_status(port: int, path: str, timeout: float = 2.0) -> int | None:
    """The status of one GET on a fresh connection, None if nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


class Service:
    """A process of the system under test, in a session of its own, its output in a log file."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def wait(self, ready: Callable[[], bool], timeout: float = 120) -> float:
        """Wait until `ready()`; return the seconds it took."""
        started = time.monotonic()
        while not ready():
            if self.process.poll() is not None:
                raise ScenarioError(f"{self.log.name}: exited (rc={self.process.returncode})")
            if time.monotonic() - started > timeout:
                raise ScenarioError(f"{self.log.name}: not ready after {timeout:.0f} s")
            time.sleep(0.2)
        return time.monotonic() - started

    def tree(self) -> list[psutil.Process]:
        """This process and every process under it."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM to its process group, SIGKILL after `timeout`; kill any straggler left under it."""
        processes = self.tree()  # honcho runs each process in a session of its own
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        _, alive = psutil.wait_procs(processes, timeout=5)
        for process in alive:
            process.kill()
        psutil.wait_procs(alive, timeout=5)
        return self.process.returncode


def role_of(argv: list[str]) -> str:
    """Which part of the system a command line is, or the title it gave itself (setproctitle)."""
    title = " ".join(argv)
    if title.startswith("gunicorn:"):  # gunicorn: master [wsgi:app], gunicorn: worker [...]
        return "api"
    if title.startswith("[celeryd"):  # [celeryd: worker1@host:MainProcess] -active- (...)
        return "worker"
    words = [Path(arg).name for arg in argv]
    if "gunicorn" in words:
        return "api"
    if "redis-server" in words:
        return "redis"
    if "celery" in words:
        return "flower" if "flower" in words else "worker"
    if "bare-worker" in words:
        return "worker"
    if "gateway" in words:
        return {"relay": "relay", "consume": "consumer"}.get(words[-1], "launcher")
    return "launcher"


def _cpu_seconds(process: psutil.Process) -> float:
    t = process.cpu_times()  # with the reaped children's time: a pool child that was replaced
    return t.user + t.system + t.children_user + t.children_system


# (pid, create time) -> (role, CPU seconds so far)
Sample = dict[tuple[int, float], tuple[str, float]]


@dataclass
class Probe:
    """Which processes belong to the system under test, by role, and what they cost."""

    roots: Callable[[], list[psutil.Process]]  # the system's process trees
    redis_pid: int
    admin: Engine
    database: str
    poll_pid: int | None = None  # the bench's own connection to the database, if any

    def processes(self) -> list[tuple[psutil.Process, str]]:
        found = []
        for process in self.roots():
            try:
                found.append((process, role_of(process.cmdline())))
            except psutil.Error:
                continue
        found.append((psutil.Process(self.redis_pid), "redis"))
        query = text(
            "SELECT pid, datname, backend_type FROM pg_stat_activity WHERE pid IS NOT NULL"
        )
        with self.admin.connect() as conn:
            rows = conn.execute(query).all()
        for pid, datname, backend_type in rows:
            if pid == self.poll_pid:
                role = "bench db poll"
            elif datname == self.database:
                role = "postgres"  # this database's backends (and its autovacuum workers)
            elif datname is None and backend_type != "client backend":
                role = "pg background"  # WAL writer, checkpointer...: shared with other databases
            else:
                continue
            try:
                found.append((psutil.Process(pid), role))
            except psutil.NoSuchProcess:
                continue
        return found

    def sample(self) -> Sample:
        sample: Sample = {}
        for process, role in self.processes():
            try:
                sample[(process.pid, process.create_time())] = (role, _cpu_seconds(process))
            except psutil.Error:
                continue
        return sample

    def rss(self, role: str = "worker") -> int:
        """Resident memory of the processes with this role (the worker and its pool children)."""
        total = 0
        for process, found in self.processes():
            if found == role:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
        return total

    def worker_count(self) -> int:
        """Worker processes, not counting their pool children."""
        found = {process.pid: role for process, role in self.processes()}
        roots = 0
        for pid, role in found.items():
            try:
                parent = psutil.Process(pid).ppid()
            except psutil.Error:
                continue
            roots += role == "worker" and found.get(parent) != "worker"
        return roots

    def wait_idle(self, busy: float = 0.1, window: float = 1.0, timeout: float = 60) -> float:
        """Wait until the system's processes use less than `busy` of one core over `window`
        seconds (start-up done), at most `timeout`; return the seconds waited."""
        started = time.monotonic()
        before = sum(cpu for _, cpu in self.sample().values())
        while time.monotonic() - started < timeout:
            time.sleep(window)
            after = sum(cpu for _, cpu in self.sample().values())
            if after - before < busy * window:
                break
            before = after
        return time.monotonic() - started


def machine_busy_s() -> float:
    """Busy CPU-seconds of the whole machine since boot (/proc/stat, all cores)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def self_cpu_s() -> float:
    """CPU-seconds of this process (the load generator), all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuUse:
    """CPU spent over a phase: the machine's, the load generator's, and per role."""

    machine_s: float
    load_s: float
    by_role: dict[str, float] = field(default_factory=dict)

    @property
    def system_s(self) -> float:
        """The key number: the whole machine minus the load generator."""
        return self.machine_s - self.load_s


class CpuMeter:
    """Start at the first submitted job, stop when the last one is seen finished."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.before = probe.sample()
        self.machine = machine_busy_s()
        self.load = self_cpu_s()

    def stop(self) -> CpuUse:
        machine, load = machine_busy_s(), self_cpu_s()
        after = self.probe.sample()
        use = CpuUse(machine - self.machine, load - self.load)
        for key, (role, seconds) in after.items():
            spent = seconds - self.before.get(key, (role, 0.0))[1]
            use.by_role[role] = use.by_role.get(role, 0.0) + spent
        return use
