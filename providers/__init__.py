"""Document processing providers behind one abstraction; imports nothing else of the gateway.

The built-in providers register when the registry is first asked (`providers.registry`), not
when this package is imported: the document sandbox's child imports a parser module of this
package, and should not pay for every rule set on each document.
"""

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
