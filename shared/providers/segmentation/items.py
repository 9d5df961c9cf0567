"""One garment's crop from the cut-out and its own alpha: the one way every segmenter makes an item."""

from __future__ import annotations

import numpy as np
from PIL import Image

from shared.media.matting import SOLID_ALPHA
from shared.messages import Category
from shared.providers.segmentation.base import Garment

def crop_padding(longer_side: int) -> int:
    """max(5, min(20, 2% of the garment's longer side))."""
    return max(5, min(20, round(0.02 * longer_side)))


def garment_box(own: np.ndarray) -> tuple[int, int, int, int, bool]:
    """(left, top, right, bottom) of the padded crop around a full-size alpha's non-zero pixels, and
    whether the garment reaches the photo's edge."""
    height, width = own.shape
    rows, cols = np.nonzero(own.any(axis=1))[0], np.nonzero(own.any(axis=0))[0]
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    pad = crop_padding(max(bottom - top, right - left))
    box = (max(0, left - pad), max(0, top - pad), min(width, right + pad), min(height, bottom + pad))
    return (*box, bool(top == 0 or left == 0 or bottom == height or right == width))


def full_alpha(garment: Garment, shape: tuple[int, int]) -> np.ndarray:
    """The garment's alpha over the whole cut-out (height, width), from its crop and box."""
    alpha = np.zeros(shape, np.uint8)
    left, top, right, bottom = garment.bbox
    alpha[top:bottom, left:right] = np.asarray(garment.crop.getchannel("A"))
    return alpha


def cut(cutout: Image.Image, own: np.ndarray, label: str, category: Category | None, confidence: float | None,
        min_pixels: int) -> Garment | None:
    """The garment whose alpha over the whole cut-out is `own` (uint8); None when under min_pixels."""
    area = int((own >= SOLID_ALPHA).sum())
    if area < min_pixels:
        return None
    *box, touches = garment_box(own)
    crop = cutout.crop(tuple(box)).convert("RGBA")
    crop.putalpha(Image.fromarray(np.ascontiguousarray(own[box[1]:box[3], box[0]:box[2]]), "L"))
    return Garment(crop, label, category, area, tuple(int(v) for v in box), touches, confidence)
