"""The background-removal interface and the fallback chain over it."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass

from PIL import Image

from shared.errors import PipelineError, ProvidersExhausted

log = logging.getLogger(__name__)


class BackgroundRemover(ABC):
    """Turns an RGB photo into an alpha mask of its foreground."""

    name: str

    @classmethod
    @abstractmethod
    def from_settings(cls, settings) -> "BackgroundRemover": ...

    @abstractmethod
    def mask(self, image: Image.Image) -> Image.Image:
        """An "L" mask the size of `image` (255 = foreground). Raises ProviderFailed (the next
        provider may do better) or another PipelineError."""

    def warm_up(self) -> None:
        """Load models, open connections: called once per instance before the first photo."""


@dataclass(frozen=True)
class MaskResult:
    mask: Image.Image
    provider: str
    skipped: tuple[str, ...]  # "name: reason" for each provider that failed before this one


class BackgroundChain:
    """Tries providers in order; the first usable mask wins and records who served it."""

    def __init__(self, providers: list[BackgroundRemover],
                 unavailable: list[tuple[str, PipelineError]] | None = None) -> None:
        """`unavailable`: providers that could not be built, with why (reported with every photo)."""
        if not providers and not unavailable:
            raise ValueError("the background chain needs at least one provider")
        self.providers = providers
        self.unavailable = list(unavailable or [])

    def mask(self, image: Image.Image) -> MaskResult:
        failures: list[PipelineError] = [error for _, error in self.unavailable]
        skipped: list[str] = [f"{name}: {error.message}" for name, error in self.unavailable]
        for provider in self.providers:
            try:
                mask = provider.mask(image)
            except PipelineError as exc:
                log.warning("background provider %s failed: %s", provider.name, exc.message)
                failures.append(exc)
                skipped.append(f"{provider.name}: {exc.message}")
                continue
            if mask.mode != "L" or mask.size != image.size:
                mask = mask.convert("L").resize(image.size, Image.Resampling.BILINEAR)
            return MaskResult(mask, provider.name, tuple(skipped))
        if all(not error.retryable for error in failures):
            raise failures[-1]  # e.g. no model and no other provider: retrying cannot help
        raise ProvidersExhausted("Every background provider failed: " + "; ".join(skipped))

    def warm_up(self) -> None:
        if not self.providers:
            raise self.unavailable[0][1]  # nothing could load: say why now, not at the first photo
        for provider in self.providers:
            provider.warm_up()
