"""The garment parser: a class for every pixel of a photo of a person, and one item per garment.

The network (DeepLabv3-MobileNetV2, MODELS.md) gives class probabilities at a quarter of its input's
resolution. They are brought up to the photo's size against the photo itself (a guided filter), so
an item's edge is the garment's edge, not a staircase, and only pixels inside the cut-out's alpha
count. Then, per kind (outerwear, top, dress, skirt, ..., glasses):
- every part of the kind is one item: a pair of shoes, or a skirt that an arm or a bag cuts in two;
- a part under SLIVER_SHARE of the photo is a sliver when the kind has a part at least SLIVER_RATIO
  times larger elsewhere: it is dropped, not made an item or a piece of one;
- the item is kept when it covers at least MIN_SHARE of the photo and the kind's mean probability
  over it is at least MIN_CONFIDENCE.
The thresholds were chosen on CCP's validation part (`python -m closet_pipeline.train.thresholds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from shared.categories import KINDS, PARSER_CLASSES
from shared.media.guided_filter import upsample
from shared.media.matting import SOLID_ALPHA
from shared.providers.garments.inputs import parser_pixels, to_batch
from shared.providers.garments.weights import MODELS_DIR, PARSER, session

MIN_SHARE = 0.0005
MIN_CONFIDENCE = 0.6
SLIVER_SHARE = 0.002
SLIVER_RATIO = 4.0
FIRST_KIND = len(PARSER_CLASSES) - len(KINDS)


@dataclass(frozen=True)
class Region:
    kind: str
    mask: np.ndarray  # bool, the photo's resolution
    share: float  # of the photo
    confidence: float  # mean probability of its kind over the region


def label_map(probabilities: np.ndarray, photo: Image.Image, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(class index per pixel at the photo's size, the refined probabilities of the classes that win
    anywhere, by class index). Outside the cut-out (alpha below half) is background."""
    coarse = probabilities.argmax(0)
    present = np.flatnonzero(np.bincount(coarse.ravel(), minlength=len(probabilities)))
    refined = upsample(probabilities[present], photo)
    labels = present[refined.argmax(0)]
    if alpha is not None:
        labels[alpha < SOLID_ALPHA] = 0
    return labels, dict(zip(present.tolist(), refined))


def regions(labels: np.ndarray, refined: dict, min_share: float = MIN_SHARE, min_confidence: float = MIN_CONFIDENCE,
            sliver_share: float = SLIVER_SHARE, sliver_ratio: float = SLIVER_RATIO) -> list[Region]:
    """One region per kind shown, slivers left out, largest first."""
    found = []
    for cls in range(FIRST_KIND, len(PARSER_CLASSES)):
        mask = labels == cls
        if not mask.any():
            continue
        parts, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
        sizes = np.bincount(parts.ravel(), minlength=count + 1)[1:] / labels.size
        slivers = (sizes < sliver_share) & (sizes * sliver_ratio <= sizes.max())
        if slivers.any():
            mask = mask & ~np.isin(parts, np.flatnonzero(slivers) + 1)
        share = float(mask.mean())
        if share < min_share:
            continue
        confidence = float(np.clip(refined[cls][mask], 0, 1).mean())
        if confidence >= min_confidence:
            found.append(Region(PARSER_CLASSES[cls], mask, share, round(confidence, 3)))
    return sorted(found, key=lambda region: region.share, reverse=True)


class GarmentParser:
    def __init__(self, directory: Path = MODELS_DIR, threads: int = 0) -> None:
        self.directory, self.threads = Path(directory), threads

    def warm_up(self) -> None:
        session(PARSER, self.directory, self.threads)

    def probabilities(self, photo: Image.Image) -> np.ndarray:
        """Classes x h x w at a quarter of the parser's input size."""
        batch = to_batch([parser_pixels(photo)])
        model = session(PARSER, self.directory, self.threads)
        return model.run(None, {"image": batch})[0][0]

    def regions(self, photo: Image.Image, alpha: np.ndarray | None) -> list[Region]:
        return regions(*label_map(self.probabilities(photo), photo, alpha))
