"""Outage: log a dependency going down once, and its return once, instead of every failed call."""

from __future__ import annotations

import logging
import threading
import time


class Outage:
    """Tracks whether a dependency is reachable; thread-safe, logs only on state changes."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self._since: float | None = None
        self._last_failure = 0.0
        self._last_success = 0.0
        self._lock = threading.Lock()

    @property
    def is_down(self) -> bool:
        """True between a failure and the next success."""
        return self._since is not None

    def worth_trying(self, pause: float = 1.0) -> bool:
        """False during an outage until `pause` seconds passed since the last failure."""
        return self._since is None or time.monotonic() - self._last_failure >= pause

    def down(self, exc: BaseException, started: float | None = None) -> None:
        """Record a failed call begun at `started`; logs the first one of an outage.

        A call begun before the latest success may have failed on a connection the outage
        already broke; it does not start a new outage (the next call will, if need be).
        """
        with self._lock:
            if started is not None and started < self._last_success:
                return
            self._last_failure = time.monotonic()
            if self._since is None:
                self._since = time.monotonic()
                self.log.warning("%s unavailable, will retry: %s", self.what, exc)

    def up(self, started: float | None = None) -> None:
        """Record a successful call begun at `started` (time.monotonic()); logs the end of an outage.

        Concurrent callers: a call begun before the latest failure may still succeed on an old
        connection; it proves nothing about now, so it does not end the outage.
        """
        with self._lock:
            if started is not None and started < self._last_failure:
                return
            self._last_success = time.monotonic()
            if self._since is not None:
                lasted = time.monotonic() - self._since
                self._since = None
                self.log.warning("%s available again after %.1f s", self.what, lasted)
