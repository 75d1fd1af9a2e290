"""The provider abstraction: one `process(...)` per stage, and the errors it may raise."""

from __future__ import annotations

import random
import time
from typing import Any, Protocol


class ProviderError(Exception):
    """A provider call failed in a way worth retrying (outage, overload, bad gateway)."""


class ProviderTimeoutError(ProviderError):
    """A provider call did not answer within its time limit."""


class Provider(Protocol):
    """Turns one stage's input into its output; `timeout` bounds the call in seconds."""

    def process(self, data: Any, *, timeout: float) -> dict[str, Any]: ...


class SimulatedProvider:
    """A stand-in for a remote service: waits a latency, may fail, then computes a real answer.

    `latency_scale` multiplies the simulated latency (0 = no wait); `failure_rate` is the
    share of calls that fail. Both exist so tests and benchmarks can drive the real code.
    """

    latency: tuple[float, float] = (0.1, 0.1)

    def __init__(
        self,
        *,
        latency_scale: float = 1.0,
        failure_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.latency_scale = latency_scale
        self.failure_rate = failure_rate
        self.rng = rng or random.Random()

    def process(self, data: Any, *, timeout: float) -> dict[str, Any]:
        """Simulate the remote call, then return `compute(data)`."""
        delay = self.rng.uniform(*self.latency) * self.latency_scale
        if delay > timeout:
            time.sleep(timeout)
            raise ProviderTimeoutError("Provider timeout")
        time.sleep(delay)
        if self.failure_rate and self.rng.random() < self.failure_rate:
            raise ProviderError(f"{type(self).__name__} failed: provider unavailable")
        return self.compute(data)

    def compute(self, data: Any) -> dict[str, Any]:
        """The provider's answer for `data`."""
        raise NotImplementedError
