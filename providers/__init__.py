"""Document processing providers behind one abstraction; imports nothing else of the gateway."""

from providers import analysis, enrichment, extraction  # noqa: F401  (registers the variants)
from providers.base import ProviderError, ProviderTimeoutError
from providers.registry import available, create

__all__ = ["ProviderError", "ProviderTimeoutError", "available", "create"]
