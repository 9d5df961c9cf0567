"""The default segmenter: garments are the connected parts of the cut-out's alpha mask.

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

ALPHA_THRESHOLD = 128


def crop_padding(longer_side: int) -> int:
    """max(5, min(20, 2% of the garment's longer side))."""
    return max(5, min(20, round(0.02 * longer_side)))


class MaskComponentsSegmenter(Segmenter):
    name = "local"

    def __init__(self, min_pixels: int = 1000) -> None:
        self.min_pixels = min_pixels

    @classmethod
    def from_settings(cls, settings) -> "MaskComponentsSegmenter":
        return cls(settings.min_garment_pixels)

    def segment(self, cutout: Image.Image) -> list[Garment]:
        alpha = np.asarray(cutout.getchannel("A"))
        solid = alpha >= ALPHA_THRESHOLD
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
        garments = []
        for index, slices in enumerate(ndimage.find_objects(grown), start=1):
            if slices is None:
                continue
            area = int(((grown[slices] == index) & solid[slices]).sum())
            if area < self.min_pixels:
                continue
            top, bottom = slices[0].start, slices[0].stop
            left, right = slices[1].start, slices[1].stop
            pad = crop_padding(max(bottom - top, right - left))
            box = (max(0, left - pad), max(0, top - pad), min(width, right + pad), min(height, bottom + pad))
            part_mask = np.zeros((box[3] - box[1], box[2] - box[0]), np.uint8)
            own = grown[box[1]:box[3], box[0]:box[2]] == index
            part_mask[own] = alpha[box[1]:box[3], box[0]:box[2]][own]
            crop = cutout.crop(box).convert("RGBA")
            crop.putalpha(Image.fromarray(part_mask, "L"))
            touches = top == 0 or left == 0 or bottom == height or right == width
            garments.append(Garment(crop, "garment", None, area, box, bool(touches)))
        garments.sort(key=lambda g: g.area_pixels, reverse=True)
        return garments
