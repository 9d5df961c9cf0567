"""The garment classifier: a crop of one garment in, its fine label, category and confidence out.

The category is the one whose labels hold the most probability; the label is the likeliest label of
that category; the confidence is the category's probability. A caller that already knows the
category (the parser found a top) asks for the likeliest label within it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from shared.categories import CLOTHING_CATEGORIES, CLOTHING_LABELS
from shared.messages import Category
from shared.providers.garments.inputs import classifier_pixels, to_batch
from shared.providers.garments.weights import CLASSIFIER, MODELS_DIR, session

CATEGORY_OF = np.array([list(Category).index(CLOTHING_CATEGORIES[label]) for label in CLOTHING_LABELS])


@dataclass(frozen=True)
class Prediction:
    label: str
    category: Category
    confidence: float  # probability of the category, 0..1


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def decide(probabilities: np.ndarray, category: Category | None = None) -> Prediction:
    """One photo's label probabilities -> its prediction (within `category` when given)."""
    per_category = np.bincount(CATEGORY_OF, weights=probabilities, minlength=len(Category))
    chosen = list(Category)[int(per_category.argmax())] if category is None else category
    index = list(Category).index(chosen)
    within = np.where(CATEGORY_OF == index, probabilities, -1.0)
    return Prediction(CLOTHING_LABELS[int(within.argmax())], chosen, round(float(per_category[index]), 3))


class GarmentClassifier:
    def __init__(self, directory: Path = MODELS_DIR, threads: int = 0) -> None:
        self.directory, self.threads = Path(directory), threads

    def warm_up(self) -> None:
        session(CLASSIFIER, self.directory, self.threads)

    def probabilities(self, crops: list[Image.Image]) -> np.ndarray:
        """N x labels, for RGB crops (alpha is ignored: the model was trained on whole photos)."""
        if not crops:
            return np.zeros((0, len(CLOTHING_LABELS)), np.float32)
        batch = to_batch([classifier_pixels(crop) for crop in crops])
        return softmax(session(CLASSIFIER, self.directory, self.threads).run(None, {"image": batch})[0])

    def classify(self, crops: list[Image.Image], categories: list[Category | None] | None = None) -> list[Prediction]:
        categories = categories or [None] * len(crops)
        return [decide(p, c) for p, c in zip(self.probabilities(crops), categories)]
