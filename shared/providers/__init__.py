"""Providers: interchangeable ways to do the heavy work of a stage (local model, remote APIs).

Each kind has a base class (the interface) and a name-keyed factory; the configuration names the
providers, and a provider's module is imported only when it is chosen, so a function loads only
what it uses.
"""

from __future__ import annotations

import importlib
from typing import TypeVar

T = TypeVar("T")


def load_provider(registry: dict[str, str], name: str, base: type[T], settings) -> T:
    """Instantiate the provider registered as `name` ("module:Class") from the settings."""
    try:
        module_name, class_name = registry[name].split(":")
    except KeyError:
        raise ValueError(f"Unknown provider {name!r}; choose one of {', '.join(registry)}") from None
    cls = getattr(importlib.import_module(module_name), class_name)
    provider = cls.from_settings(settings)
    assert isinstance(provider, base)
    return provider
