"""What the models are fed: one definition, used by training and at run time alike."""

from __future__ import annotations

import numpy as np
from PIL import Image

CLASSIFIER_SIDE = 96  # the classifier sees the garment's box squashed to a square
PARSER_SIZE = (192, 288)  # width, height: CCP's portrait photos are about 2:3


def classifier_pixels(rgb: Image.Image) -> np.ndarray:
    """HWC uint8 at the classifier's input size."""
    return np.asarray(rgb.convert("RGB").resize((CLASSIFIER_SIDE, CLASSIFIER_SIDE), Image.BILINEAR))


def parser_pixels(rgb: Image.Image) -> np.ndarray:
    """HWC uint8 at the parser's input size (the photo is squashed, not cropped: every pixel gets a label)."""
    return np.asarray(rgb.convert("RGB").resize(PARSER_SIZE, Image.BILINEAR))


def to_batch(pixels: list[np.ndarray]) -> np.ndarray:
    """NCHW float32 in [0, 1], as both networks take it."""
    return np.stack(pixels).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
