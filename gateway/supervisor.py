"""The supervisor of `make run`: honcho's Manager, restarting what dies unless it crash-loops.

Every process's output is prefixed with its name (honcho). A process that exits on its own is
started again after a delay that doubles with each recent death (0.5 s, 1 s, 2 s, ...; at most
30 s), as compose's restart policy does: a consumer or a worker that dies does not take the API
down with it. A process that dies `max_deaths` times within `window` seconds is crash-looping
(a taken port, a bad setting, a dependency that is gone): restarting it again would only hide
the fault, so everything is stopped, loudly, and `make run` exits 1. Ctrl-C or SIGTERM stops
every process.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from honcho.manager import KILL_WAIT, SIGNALS, SYSTEM_PRINTER_NAME, Manager
from honcho.printer import Message, Printer

FIRST_DELAY = 0.5  # seconds before the first restart; doubled for each further recent death
MAX_DELAY = 30.0
CRASH_LOOP_DEATHS = 5  # deaths of one process within CRASH_LOOP_WINDOW that stop everything
CRASH_LOOP_WINDOW = 60.0


class ConsolePrinter(Printer):
    """honcho's prefixed printer, plus lines of our own under any name."""

    def say(self, text: str, name: str = SYSTEM_PRINTER_NAME) -> None:
        """Print `text` under `name`, like a line of that process."""
        self.write(Message("line", text, datetime.now(), name, None))


class Supervisor(Manager):
    """A honcho Manager that restarts a process that exits on its own, with backoff.

    `crash_looped` names the process whose deaths stopped everything (None after a requested
    stop).
    """

    def __init__(
        self,
        printer: ConsolePrinter,
        *,
        max_deaths: int = CRASH_LOOP_DEATHS,
        window: float = CRASH_LOOP_WINDOW,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(printer=printer)
        self.printer = printer
        self.max_deaths = max_deaths
        self.window = window
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.clock = clock
        self.crash_looped: str | None = None
        self._deaths: dict[str, deque[float]] = {}
        self._restart_at: dict[str, float] = {}
        self._stopping_since: float | None = None

    def loop(self) -> None:
        """Start every process; restart the ones that die; return once all stopped."""

        def stop(signum: int, _frame: Any) -> None:
            self._system_print(f"{SIGNALS[signum]['name']} received\n")
            self.returncode = SIGNALS[signum]["rc"]
            self._stop_all()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self._start()
        while True:
            try:
                message = self.events.get(timeout=0.1)
            except queue.Empty:
                message = None
            if message is not None:
                self._handle(message)
            now = self.clock()
            if self._stopping_since is None:
                for name in [n for n, due in self._restart_at.items() if due <= now]:
                    self._restart(name)
                continue
            if all("returncode" in p for p in self._processes.values()):
                return
            if now - self._stopping_since > KILL_WAIT:
                self.kill()

    def _handle(self, message: Message) -> None:
        name, process = message.name, self._processes.get(message.name)
        if message.type == "line":
            self.printer.write(message)
        elif message.type == "start":
            process["pid"] = message.data["pid"]
            self._system_print(f"{name} started (pid={process['pid']})\n")
            if self._stopping_since is not None:  # it started while everything was stopping
                self._procmgr.terminate(process["pid"])
        elif message.type == "stop":
            process["returncode"] = message.data["returncode"]
            process["process"].join(5)  # honcho's forwarder exits right after this message
            self._system_print(f"{name} stopped (rc={process['returncode']})\n")
            if self._stopping_since is None:
                self._died(name, process["returncode"])

    def _died(self, name: str, returncode: int) -> None:
        """Schedule the restart of a process that exited on its own, or stop all if it loops."""
        now = self.clock()
        deaths = self._deaths.setdefault(name, deque())
        deaths.append(now)
        while deaths and deaths[0] < now - self.window:
            deaths.popleft()
        if len(deaths) >= self.max_deaths:
            self.crash_looped = name
            banner = "*" * 72
            self.printer.say(
                f"{banner}\n*** {name} died {len(deaths)} times within {self.window:g} s "
                f"(last rc={returncode}): it is crash-looping; stopping every process.\n"
                f"*** Its last lines above say why.\n{banner}\n"
            )
            self._stop_all()
            return
        delay = min(self.max_delay, self.first_delay * 2 ** (len(deaths) - 1))
        self._restart_at[name] = now + delay
        self.printer.say(
            f"{name} exited on its own (rc={returncode}); restarting it in {delay:g} s "
            f"(death {len(deaths)} of {self.max_deaths} allowed within {self.window:g} s)\n"
        )

    def _restart(self, name: str) -> None:
        del self._restart_at[name]
        process = self._processes[name]
        process.pop("pid", None)
        process.pop("returncode", None)
        process["process"] = multiprocessing.Process(
            name=name, target=process["obj"].run, args=(self.events, True)
        )
        process["process"].start()

    def _stop_all(self) -> None:
        """SIGTERM every running process (SIGKILL after KILL_WAIT); cancel pending restarts."""
        if self._stopping_since is not None:
            return
        self._stopping_since = self.clock()
        self._restart_at.clear()
        self.terminate()

    def _killall(self, force: bool = False) -> None:
        # honcho's, except that a process still starting (no pid yet) is signalled once its
        # start message comes, and one waiting for its restart is not running at all.
        for name, process in self._processes.items():
            if "returncode" in process or "pid" not in process:
                continue
            signame = "SIGKILL" if force else "SIGTERM"
            self._system_print(f"sending {signame} to {name} (pid {process['pid']})\n")
            if force:
                self._procmgr.kill(process["pid"])
            else:
                self._procmgr.terminate(process["pid"])
