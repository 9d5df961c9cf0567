"""Coarse maps brought up to a photo's resolution so their edges follow the photo's (fast guided filter).

The guided filter (He, Sun and Tang; the fast variant of He and Sun 2015) fits, in every window, the
map as a linear function of the photo's brightness, q = a I + b, and averages the fits. Where the
photo has an edge, the map gets one there; where the photo is flat, the map is smoothed. The
coefficients are worked out at a low resolution and brought up bilinearly, so the cost at full size
is one multiply-add per map and pixel.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

WORK_SIDE = 320  # the coefficients are fitted at this long side ...
RADIUS = 4  # ... over windows of (2 RADIUS + 1) pixels there (about 1/35 of the photo; docs/models/thresholds.md)
EPSILON = 1e-3  # how strong an edge of the photo must be to be followed (brightness variance, 0..1 scale)


def _resize(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float32 plane resized bilinearly to (width, height)."""
    return np.asarray(Image.fromarray(plane.astype(np.float32, copy=False), "F").resize(size, Image.BILINEAR))


def upsample(maps: np.ndarray, guide: Image.Image) -> np.ndarray:
    """K coarse maps (K, h, w) -> (K, H, W) at the guide photo's size, edges following the photo."""
    width, height = guide.size
    scale = min(1.0, WORK_SIDE / max(width, height))
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    grey = np.asarray(guide.convert("L"), np.float32) * (1.0 / 255.0)
    small_grey = _resize(grey, small_size)
    small_maps = np.stack([_resize(m, small_size) for m in maps])
    window = (1, 2 * RADIUS + 1, 2 * RADIUS + 1)

    def mean(x: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(x, size=window if x.ndim == 3 else window[1:], mode="nearest")

    mean_i = mean(small_grey)
    var_i = mean(small_grey * small_grey) - mean_i * mean_i
    mean_p = mean(small_maps)
    cov_ip = mean(small_maps * small_grey) - mean_i * mean_p
    a = cov_ip / (var_i + EPSILON)
    b = mean_p - a * mean_i
    a, b = mean(a), mean(b)
    return np.stack([_resize(ak, (width, height)) * grey + _resize(bk, (width, height)) for ak, bk in zip(a, b)])
