"""The generative interface used by expand: a garment on a white canvas in, a cleaned-up product
shot out."""

from __future__ import annotations

from abc import ABC, abstractmethod

from PIL import Image


class Generator(ABC):
    name: str

    @classmethod
    @abstractmethod
    def from_settings(cls, settings) -> "Generator": ...

    @abstractmethod
    def expand(self, canvas: Image.Image, prompt: str) -> Image.Image:
        """The generated image. Raises ProviderFailed with a reason a person can read when the
        provider times out, refuses, or answers without an image."""

    def warm_up(self) -> None:
        """Create the client once per instance."""
