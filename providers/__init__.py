"""Document processing providers behind one abstraction; imports nothing else of the gateway."""

from providers import analysis, enrichment, extraction  # noqa: F401  (registers the variants)
from providers.base import ProviderError, ProviderTimeoutError
from providers.registry import PluginError, available, create, discover

__all__ = [
    "PluginError",
    "ProviderError",
    "ProviderTimeoutError",
    "available",
    "create",
    "discover",
]
