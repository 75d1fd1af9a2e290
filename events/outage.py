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
        self._lock = threading.Lock()

    @property
    def is_down(self) -> bool:
        """True between a failure and the next success."""
        return self._since is not None

    def worth_trying(self, pause: float = 1.0) -> bool:
        """False during an outage until `pause` seconds passed since the last failure."""
        return self._since is None or time.monotonic() - self._last_failure >= pause

    def down(self, exc: BaseException) -> None:
        """Record a failed call; logs the first one of an outage."""
        with self._lock:
            self._last_failure = time.monotonic()
            if self._since is None:
                self._since = time.monotonic()
                self.log.warning("%s unavailable, will retry: %s", self.what, exc)

    def up(self) -> None:
        """Record a successful call; logs the end of an outage."""
        with self._lock:
            if self._since is not None:
                lasted = time.monotonic() - self._since
                self._since = None
                self.log.warning("%s available again after %.1f s", self.what, lasted)
