"""Garments as the connected parts of the cut-out's alpha mask (the single-garment path's parts).

Thin attachments (a hanger's hook, strings, a strap of background) are cut off by a morphological
opening whose size grows with the photo, then each surviving part takes back its own pixels from
the original mask, so edges stay exactly as the background remover drew them. The opening uses
square min/max filters: separable, so their cost does not grow with the size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from shared.providers.segmentation.base import Garment, Segmenter
from shared.media.matting import SOLID_ALPHA
from shared.providers.segmentation.items import cut


class MaskComponentsSegmenter(Segmenter):
    name = "local"

    def __init__(self, min_pixels: int = 1000) -> None:
        self.min_pixels = min_pixels

    @classmethod
    def from_settings(cls, settings) -> "MaskComponentsSegmenter":
        return cls(settings.min_garment_pixels)

    def segment(self, cutout: Image.Image) -> list[Garment]:
        alpha = np.asarray(cutout.getchannel("A"))
        solid = alpha >= SOLID_ALPHA
        height, width = solid.shape
        # Radius ~1% of the photo: removes strings and hooks, keeps sleeves and straps of garments.
        radius = max(2, round(0.01 * max(height, width)))
        window = 2 * radius + 1
        opened = ndimage.maximum_filter(ndimage.minimum_filter(solid.view(np.uint8), size=window, mode="nearest"),
                                        size=window)
        labels, count = ndimage.label(opened, structure=np.ones((3, 3), bool))
        if count == 0:
            return []
        # Every foreground pixel near a kept part joins it (soft edges included); what was cut off
        # (the hook, the string) is near none and is dropped.
        grown = np.where(alpha > 0, ndimage.maximum_filter(labels, size=window + 2), 0)
        areas = np.bincount(grown[solid], minlength=count + 1)
        garments = [cut(cutout, np.where(grown == index, alpha, 0).astype(np.uint8), "garment", None, None, 0)
                    for index in np.flatnonzero(areas >= self.min_pixels) if index > 0]
        return sorted((g for g in garments if g is not None), key=lambda g: g.area_pixels, reverse=True)
