"""Background removal providers, chosen by name from CLOSET_BACKGROUND_PROVIDERS."""

from __future__ import annotations

from shared.errors import PipelineError
from shared.providers import load_provider
from shared.providers.background.base import BackgroundChain, BackgroundRemover, MaskResult

REGISTRY = {
    "local": "shared.providers.background.local_isnet:LocalIsnetRemover",
    "removebg": "shared.providers.background.removebg:RemoveBgRemover",
    "hf-space": "shared.providers.background.hf_space:HfSpaceRemover",
}


def build_background_chain(settings) -> BackgroundChain:
    """The configured providers in order. One that cannot even load (a missing model file) is passed
    over with its reason, so `local,removebg` still serves through remove.bg."""
    providers, unavailable = [], []
    for name in settings.background_providers:
        try:
            providers.append(load_provider(REGISTRY, name, BackgroundRemover, settings))
        except PipelineError as exc:
            unavailable.append((name, exc))
    return BackgroundChain(providers, unavailable)


__all__ = ["BackgroundChain", "BackgroundRemover", "MaskResult", "build_background_chain", "REGISTRY"]
