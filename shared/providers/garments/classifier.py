"""The garment classifier: a box of a photo in, a vocabulary label out; the whole photo in, its kind.

One network (MobileNetV2, MODELS.md) with two heads: probabilities over the vocabulary's labels,
and the probability that the photo shows a person wearing an outfit (the image kind).

Naming a single garment: the category is the one whose labels hold the most probability, the label
the likeliest of that category, the confidence the category's probability. Naming a garment the
parser found: the likeliest label of the parser's kind (a top is refined to a t-shirt or a shirt).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from shared.categories import LABELS, VOCABULARY, labels_of_kind
from shared.messages import Category
from shared.providers.garments.inputs import classifier_pixels, to_batch
from shared.providers.garments.weights import CLASSIFIER, MODELS_DIR, session

CATEGORY_OF = np.array([list(Category).index(item.category) for item in VOCABULARY])
WORN_THRESHOLD = 0.5  # probability from which a photo is a worn outfit (MODELS.md measures both errors)


@dataclass(frozen=True)
class Prediction:
    label: str
    category: Category
    confidence: float  # probability of the category, 0..1


def decide(probabilities: np.ndarray) -> Prediction:
    """One box's label probabilities -> its prediction."""
    per_category = np.bincount(CATEGORY_OF, weights=probabilities, minlength=len(Category))
    index = int(per_category.argmax())
    within = np.where(CATEGORY_OF == index, probabilities, -1.0)
    return Prediction(LABELS[int(within.argmax())], list(Category)[index], round(float(per_category[index]), 3))


def refine(probabilities: np.ndarray, kind: str) -> str:
    """The likeliest label that names `kind`."""
    names = labels_of_kind(kind)
    return max(names, key=lambda name: probabilities[LABELS.index(name)])


class GarmentClassifier:
    def __init__(self, directory: Path = MODELS_DIR, threads: int = 0) -> None:
        self.directory, self.threads = Path(directory), threads

    def warm_up(self) -> None:
        session(CLASSIFIER, self.directory, self.threads)

    def run(self, boxes: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """(N x labels probabilities, N probabilities of a worn outfit) for RGB boxes of photos."""
        if not boxes:
            return np.zeros((0, len(LABELS)), np.float32), np.zeros(0, np.float32)
        batch = to_batch([classifier_pixels(box) for box in boxes])
        labels, worn = session(CLASSIFIER, self.directory, self.threads).run(None, {"image": batch})
        return labels, worn

    def shows_outfit(self, photo: Image.Image) -> bool:
        """Whether the whole photo shows a person wearing an outfit."""
        return bool(self.run([photo])[1][0] >= WORN_THRESHOLD)

    def classify(self, boxes: list[Image.Image]) -> list[Prediction]:
        return [decide(p) for p in self.run(boxes)[0]]
