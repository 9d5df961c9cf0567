"""Background removal providers, chosen by name from CLOSET_BACKGROUND_PROVIDERS."""

from __future__ import annotations

from shared.providers import load_provider
from shared.providers.background.base import BackgroundChain, BackgroundRemover, MaskResult

REGISTRY = {
    "local": "shared.providers.background.local_isnet:LocalIsnetRemover",
    "removebg": "shared.providers.background.removebg:RemoveBgRemover",
    "hf-space": "shared.providers.background.hf_space:HfSpaceRemover",
}


def build_background_chain(settings) -> BackgroundChain:
    return BackgroundChain([load_provider(REGISTRY, name, BackgroundRemover, settings) for name in settings.background_providers])


__all__ = ["BackgroundChain", "BackgroundRemover", "MaskResult", "build_background_chain", "REGISTRY"]
