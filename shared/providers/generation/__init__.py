"""Generative providers for expand, chosen by name from CLOSET_GENERATOR."""

from __future__ import annotations

from shared.providers import load_provider
from shared.providers.generation.base import Generator

REGISTRY = {
    "gemini": "shared.providers.generation.gemini:GeminiGenerator",
    "openai": "shared.providers.generation.openai_images:OpenAIImageEditGenerator",
}


def build_generator(settings) -> Generator:
    return load_provider(REGISTRY, settings.generator, Generator, settings)


__all__ = ["Generator", "build_generator", "REGISTRY"]
