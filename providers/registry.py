"""Registry of providers by stage and name; the configuration, or a job, picks the name.

Providers come from three places, all registered under (stage, name):

- the built-in modules of this package, with the `register` decorator;
- modules named in EXTRA_PROVIDER_MODULES, with the same decorator;
- installed distributions, through the entry point group `document_gateway.<stage>`
  (e.g. `document_gateway.extraction`), each entry point's name being the provider's name
  and its object the factory: a package adds a provider without touching this code.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from providers.base import Provider

log = logging.getLogger(__name__)

STAGES = ("extraction", "analysis", "enrichment")
ENTRY_POINT_PREFIX = "document_gateway."

# The modules whose `@register` calls make the built-in providers, imported on first use.
BUILT_IN_MODULES = ("providers.extraction", "providers.analysis", "providers.enrichment")

_REGISTRY: dict[tuple[str, str], Callable[..., Provider]] = {}
_built_ins_loaded = False

T = TypeVar("T", bound=Callable[..., Provider])


class PluginError(ImportError):
    """An installed provider's entry point could not be loaded; the message names it."""


def register(stage: str, name: str) -> Callable[[T], T]:
    """Class decorator: make `name` a provider choice for `stage`."""

    def add(factory: T) -> T:
        _REGISTRY[(stage, name)] = factory
        return factory

    return add


def _load_built_ins() -> None:
    global _built_ins_loaded
    if not _built_ins_loaded:
        for module in BUILT_IN_MODULES:
            importlib.import_module(module)
        _built_ins_loaded = True


def entry_point_group(stage: str) -> str:
    """The entry point group installed providers of `stage` register in."""
    return ENTRY_POINT_PREFIX + stage


def discover() -> list[tuple[str, str]]:
    """Register the providers installed distributions declare; returns the (stage, name) added.

    Idempotent, and cheap enough to call at each process start. A name already registered
    (a built-in, or one seen before) is kept: a plug-in adds choices, it never replaces one.
    PluginError when an entry point cannot be loaded.
    """
    from importlib.metadata import entry_points  # slow to import; only start-up needs it

    _load_built_ins()  # built-ins first: their names are taken before any plug-in's
    added = []
    for stage in STAGES:
        for point in entry_points(group=entry_point_group(stage)):
            if (stage, point.name) in _REGISTRY:
                if _REGISTRY[(stage, point.name)] is not _loaded(point):
                    log.warning(
                        "provider %s/%s from %s ignored: the name is taken",
                        stage,
                        point.name,
                        point.value,
                    )
                continue
            _REGISTRY[(stage, point.name)] = _loaded(point)
            added.append((stage, point.name))
    return added


def _loaded(point: Any) -> Callable[..., Provider]:
    try:
        factory = point.load()
    except Exception as exc:  # an installed plug-in may fail in any way while importing
        raise PluginError(
            f"entry point {point.name} = {point.value} of group {point.group} "
            f"cannot be loaded: {exc}"
        ) from exc
    if not callable(factory):
        raise PluginError(f"entry point {point.name} = {point.value} is not callable")
    return factory  # type: ignore[no-any-return]


def available(stage: str) -> list[str]:
    """The provider names registered for `stage`, sorted."""
    _load_built_ins()
    return sorted(name for (s, name) in _REGISTRY if s == stage)


def create(stage: str, name: str, **options: Any) -> Provider:
    """A new provider instance; KeyError naming the choices when `name` is unknown.

    The factory gets the `options` its signature names (all of them if it takes `**kwargs`):
    a provider asks for the settings it uses, and ignores the others.
    """
    _load_built_ins()
    try:
        factory = _REGISTRY[(stage, name)]
    except KeyError:
        raise KeyError(
            f"no {stage} provider named {name!r}; choices: {', '.join(available(stage))}"
        ) from None
    return factory(**accepted(factory, options))


def accepted(factory: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """The part of `options` that `factory` takes as keyword arguments."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): pass everything
        return options
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return options
    names = {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return {key: value for key, value in options.items() if key in names}
