"""The garment parser: a label for every pixel of a photo of a person, and the garments it shows.

Items are the connected regions of one garment class (top, bottom, shoes, accessory) in the parser's
label map. The rule that drops small or unsure regions (MODELS.md measures it):
- a region covering less than MIN_SHARE of the photo is dropped (a shoe covers about 0.5 %);
- a region whose mean probability of its class is below MIN_CONFIDENCE is dropped.
A garment's alpha is its region, brought up to the photo's resolution, times the cut-out's alpha:
the wearer's skin and hair and the other garments are outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from shared.categories import PARSER_CATEGORIES, PARSER_CLASSES
from shared.messages import Category
from shared.providers.garments.inputs import parser_pixels, to_batch
from shared.providers.garments.weights import MODELS_DIR, PARSER, session

MIN_SHARE = 0.002
MIN_CONFIDENCE = 0.5
# Whether a photo shows a person (auto image type): a logistic rule on the square roots of the parse's
# class shares, fitted by `python -m closet_pipeline.train.thresholds` on the train parts (clothing
# photos: no; CCP photos: yes). The parser alone sees some "body" on many flat garments, so one
# share is not enough.
PERSON_WEIGHTS = (2.210, 5.437, 4.439, -7.531, 4.042, 6.369, -2.063)
PERSON_BIAS = -1.054
WEARER = (PARSER_CLASSES.index("body"), PARSER_CLASSES.index("hair"))
GARMENT_CLASSES = tuple(PARSER_CLASSES.index(name) for name in PARSER_CATEGORIES)


@dataclass(frozen=True)
class Region:
    category: Category
    mask: np.ndarray  # bool, the parser's resolution
    share: float  # of the photo
    confidence: float  # mean probability of its class over the region


@dataclass(frozen=True)
class Parse:
    probabilities: np.ndarray  # classes x height x width, the parser's resolution

    @property
    def labels(self) -> np.ndarray:
        return self.probabilities.argmax(0)

    def shares(self) -> np.ndarray:
        """Each class's share of the photo."""
        return np.bincount(self.labels.ravel(), minlength=len(PARSER_CLASSES)) / self.labels.size

    def person_share(self) -> float:
        return float(self.shares()[list(WEARER)].sum())

    def shows_person(self) -> bool:
        return float(np.dot(PERSON_WEIGHTS, np.sqrt(self.shares())) + PERSON_BIAS) >= 0.0

    def regions(self, min_share: float = MIN_SHARE, min_confidence: float = MIN_CONFIDENCE) -> list[Region]:
        """Garment regions kept by the rule, largest first."""
        labels = self.labels
        found = []
        for cls in GARMENT_CLASSES:
            parts, count = ndimage.label(labels == cls, structure=np.ones((3, 3), bool))
            for index in range(1, count + 1):
                mask = parts == index
                share = float(mask.mean())
                confidence = float(self.probabilities[cls][mask].mean())
                if share >= min_share and confidence >= min_confidence:
                    found.append(Region(PARSER_CATEGORIES[PARSER_CLASSES[cls]], mask, share, round(confidence, 3)))
        return sorted(found, key=lambda region: region.share, reverse=True)


class GarmentParser:
    def __init__(self, directory: Path = MODELS_DIR, threads: int = 0) -> None:
        self.directory, self.threads = Path(directory), threads

    def warm_up(self) -> None:
        session(PARSER, self.directory, self.threads)

    def parse(self, photo: Image.Image) -> Parse:
        batch = to_batch([parser_pixels(photo)])
        return Parse(session(PARSER, self.directory, self.threads).run(None, {"image": batch})[0][0])


def full_size_mask(region: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A region of the parser's map at the photo's size (width, height): bilinear, then halfway."""
    small = Image.fromarray(region.astype(np.uint8) * 255, "L")
    return np.asarray(small.resize(size, Image.BILINEAR)) >= 128
