"""The provider abstraction: one `process(...)` per stage, and the errors it may raise."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Protocol


class ProviderError(Exception):
    """A provider call failed in a way worth retrying (outage, overload, bad gateway)."""


class ProviderTimeoutError(ProviderError):
    """A provider call did not answer within its time limit."""


class DocumentError(Exception):
    """The document itself cannot be extracted: an unsupported type, a limit exceeded, a file
    that is corrupt or hostile. Final: unlike a ProviderError, retrying cannot help."""


@dataclass(frozen=True)
class Upload:
    """An uploaded file: the extraction stage's input in place of a text.

    `content_type` is what the client declared; extractors detect the real type from the
    bytes and may use the declared one as a hint only (a charset, say).
    """

    content: bytes
    content_type: str | None = None
    filename: str | None = None


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
        **_other: Any,  # options for other kinds of provider (document limits, languages)
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


class Deadline:
    """The moment a provider call must be done by; `check` raises once it has passed."""

    def __init__(self, timeout: float) -> None:
        self.at = time.monotonic() + timeout

    def check(self) -> None:
        """Raise ProviderTimeoutError if the deadline has passed."""
        if time.monotonic() > self.at:
            raise ProviderTimeoutError("Provider timeout")


class LocalProvider:
    """A provider that computes on the worker itself, offline: no latency, no injected failures.

    It takes the simulation knobs every provider is built with and ignores them. `compute`
    checks its deadline between steps, so a call ends with ProviderTimeoutError soon after
    `timeout` seconds.
    """

    def __init__(self, **_options: Any) -> None:
        pass

    def process(self, data: Any, *, timeout: float) -> dict[str, Any]:
        """`compute(data)` within `timeout` seconds."""
        return self.compute(data, Deadline(timeout))

    def compute(self, data: Any, deadline: Deadline) -> dict[str, Any]:
        """The provider's answer for `data`."""
        raise NotImplementedError
