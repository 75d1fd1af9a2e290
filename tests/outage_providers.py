"""Providers for the tests; worker processes load them through EXTRA_PROVIDER_MODULES."""

from __future__ import annotations

import threading
from typing import Any

from providers.analysis import SimulatedAnalyzer
from providers.base import ProviderError
from providers.registry import register


@register("analysis", "flaky-once")
class FlakyOnceAnalyzer(SimulatedAnalyzer):
    """A real analyzer whose first call for each text fails, as a remote service that hiccups."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def compute(self, data: Any) -> dict[str, Any]:
        text = str((data or {}).get("text", ""))
        with self.lock:
            first_call = text not in self.seen
            self.seen.add(text)
        if first_call:
            raise ProviderError(f"{type(self).__name__} failed: first call refused")
        return super().compute(data)


@register("analysis", "hiccup")
class HiccupAnalyzer(FlakyOnceAnalyzer):
    """FlakyOnceAnalyzer a second late: the steady second (at latency scale 1) leaves a test
    time to break something mid-call."""

    latency = (1.0, 1.0)
