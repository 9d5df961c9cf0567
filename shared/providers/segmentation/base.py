"""The segmentation interface: garments found in a cut-out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from PIL import Image

from shared.messages import Category

# SegFormer clothes labels (and the like) to the app's categories; anything else is ACC.
LABEL_CATEGORIES = {
    "upper-clothes": Category.TOP,
    "dress": Category.TOP,
    "pants": Category.BOTTOM,
    "skirt": Category.BOTTOM,
    "left-shoe": Category.SHOES,
    "right-shoe": Category.SHOES,
}


def category_for_label(label: str) -> Category:
    return LABEL_CATEGORIES.get(label.strip().lower().replace("_", "-").replace(" ", "-"), Category.ACC)


@dataclass(frozen=True)
class Garment:
    crop: Image.Image  # RGBA, transparent around the garment
    label: str
    category: Category | None  # None: the segmenter cannot tell
    area_pixels: int  # foreground pixels of the garment
    bbox: tuple[int, int, int, int]  # the crop's box in the cut-out: left, top, right, bottom
    touches_border: bool  # the garment reaches the photo's edge, so it is probably cut off


class Segmenter(ABC):
    name: str

    @classmethod
    @abstractmethod
    def from_settings(cls, settings) -> "Segmenter": ...

    @abstractmethod
    def segment(self, cutout: Image.Image) -> list[Garment]:
        """Garments of an RGBA cut-out, largest first. Raises ProviderFailed when a remote
        segmenter fails transiently."""

    def warm_up(self) -> None:
        """Open connections or load models once per instance."""
