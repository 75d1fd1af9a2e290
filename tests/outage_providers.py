"""Plug-in providers for the outage tests, loaded by worker processes via EXTRA_PROVIDER_MODULES."""

from __future__ import annotations

import threading
from typing import Any

from providers.analysis import DefaultAnalyzer
from providers.base import ProviderError
from providers.registry import register


@register("analysis", "hiccup")
class HiccupAnalyzer(DefaultAnalyzer):
    """The default analyzer behind a service whose first answer per text is a failure, a second late.

    The steady second (at latency scale 1) leaves a test time to break something mid-call.
    """

    latency = (1.0, 1.0)

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
            raise ProviderError("HiccupAnalyzer failed: first call refused")
        return super().compute(data)
