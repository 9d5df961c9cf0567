"""The segmentation interface: garments found in a cut-out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from PIL import Image

from shared.messages import Category, ImageType


@dataclass(frozen=True)
class Garment:
    crop: Image.Image  # RGBA, transparent around the garment
    label: str
    category: Category | None  # None: the segmenter cannot tell
    area_pixels: int  # foreground pixels of the garment
    bbox: tuple[int, int, int, int]  # the crop's box in the cut-out: left, top, right, bottom
    touches_border: bool  # the garment reaches the photo's edge, so it is probably cut off
    confidence: float | None = None  # the model's probability of the category, 0..1; None: not given


@dataclass(frozen=True)
class Segmentation:
    garments: list[Garment]  # largest first
    image_type: ImageType | None  # the path used; None: the segmenter treats every photo alike


class Segmenter(ABC):
    name: str

    @classmethod
    @abstractmethod
    def from_settings(cls, settings) -> "Segmenter": ...

    @abstractmethod
    def segment(self, cutout: Image.Image) -> list[Garment]:
        """Garments of an RGBA cut-out, largest first. Raises ProviderFailed when a remote
        segmenter fails transiently."""

    def segment_photo(self, cutout: Image.Image, image_type: ImageType | None) -> Segmentation:
        """Garments of a photo of the given kind (None: not said). A segmenter that treats every photo
        alike says so by answering image_type None."""
        return Segmentation(self.segment(cutout), None)

    def warm_up(self) -> None:
        """Open connections or load models once per instance."""
