"""What the models are fed: one definition, used by training and at run time alike."""

from __future__ import annotations

import numpy as np
from PIL import Image

CLASSIFIER_SIDE = 224  # MobileNetV2's own input: the classifier sees a box of the photo squashed to a square
PARSER_LONG_SIDE = 480  # the parser sees the whole photo at this long side, its aspect kept ...
PARSER_MULTIPLE = 16  # ... each side a multiple of the backbone's output stride


def classifier_pixels(rgb: Image.Image) -> np.ndarray:
    """HWC uint8 at the classifier's input size."""
    return np.asarray(rgb.convert("RGB").resize((CLASSIFIER_SIDE, CLASSIFIER_SIDE), Image.BILINEAR))


def parser_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) the parser sees a photo of this size at."""
    scale = PARSER_LONG_SIDE / max(width, height)
    return tuple(max(PARSER_MULTIPLE, round(side * scale / PARSER_MULTIPLE) * PARSER_MULTIPLE)
                 for side in (width, height))


def parser_pixels(rgb: Image.Image) -> np.ndarray:
    """HWC uint8 at the parser's input size: the whole photo, aspect kept (every pixel gets a label)."""
    return np.asarray(rgb.convert("RGB").resize(parser_size(*rgb.size), Image.BILINEAR))


def to_batch(pixels: list[np.ndarray]) -> np.ndarray:
    """NCHW float32 in [0, 1], as both networks take it."""
    return np.stack(pixels).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
