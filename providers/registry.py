"""Registry of providers by stage and name; the configuration picks the name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from providers.base import Provider

_REGISTRY: dict[tuple[str, str], Callable[..., Provider]] = {}

T = TypeVar("T", bound=Callable[..., Provider])


def register(stage: str, name: str) -> Callable[[T], T]:
    """Class decorator: make `name` a provider choice for `stage`."""

    def add(factory: T) -> T:
        _REGISTRY[(stage, name)] = factory
        return factory

    return add


def available(stage: str) -> list[str]:
    """The provider names registered for `stage`."""
    return sorted(name for (s, name) in _REGISTRY if s == stage)


def create(stage: str, name: str, **options: Any) -> Provider:
    """A new provider instance; KeyError naming the choices when `name` is unknown."""
    try:
        factory = _REGISTRY[(stage, name)]
    except KeyError:
        raise KeyError(
            f"no {stage} provider named {name!r}; choices: {', '.join(available(stage))}"
        ) from None
    return factory(**options)
