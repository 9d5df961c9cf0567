"""The default segmenter: garments found and named in-process, by the photo's kind.

- The kind, when the job does not say it: the classifier's second head on the whole photo (a person
  wearing an outfit, or garments on their own: on a floor, a bed, a hanger, held up).
- SINGLE_ITEM: the cut-out's connected parts (mask components). Parts lying close are one item (a
  pair of shoes, a garment a fold splits): their boxes are less than NEAR_SHARE of the smaller one's
  longer side apart, so garments laid out apart stay apart. Each item is named by the classifier
  from its box of the photo, the whole pair as the classifier learnt shoes. A part under
  SINGLE_SLIVER_RATIO of the largest is a scrap (a tag, a hanger's end) and dropped.
- FULL_BODY: the parser's regions, one item per kind (parser.py); the classifier refines the name of
  kinds with finer labels (a top to a t-shirt, outerwear to a blazer).
Labels and categories come from the one vocabulary, `shared/categories.py`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import numpy as np
from PIL import Image

from shared.categories import category_of, labels_of_kind
from shared.messages import ImageType
from shared.providers.garments.classifier import GarmentClassifier, refine
from shared.providers.garments.parser import GarmentParser
from shared.providers.segmentation.base import Garment, Segmentation, Segmenter
from shared.providers.segmentation.items import cut, full_alpha
from shared.providers.segmentation.mask_components import MaskComponentsSegmenter

SINGLE_SLIVER_RATIO = 0.05
NEAR_SHARE = 0.15
CLASSIFY_MARGIN = 0.1  # the box is grown by this share each side: the classifier learnt framed photos, not tight boxes


class LocalGarmentSegmenter(Segmenter):
    name = "local"

    def __init__(self, min_pixels: int = 1000, threads: int = 0) -> None:
        self.components = MaskComponentsSegmenter(min_pixels)
        self.classifier = GarmentClassifier(threads=threads)
        self.parser = GarmentParser(threads=threads)
        self.min_pixels = min_pixels

    @classmethod
    def from_settings(cls, settings) -> "LocalGarmentSegmenter":
        return cls(settings.min_garment_pixels, settings.onnx_threads)

    def warm_up(self) -> None:
        self.classifier.warm_up()
        self.parser.warm_up()

    def segment(self, cutout: Image.Image) -> list[Garment]:
        return self.segment_photo(cutout, None).garments

    def segment_photo(self, cutout: Image.Image, image_type: ImageType | None) -> Segmentation:
        photo = cutout.convert("RGB")
        if image_type is None:
            image_type = ImageType.FULL_BODY if self.classifier.shows_outfit(photo) else ImageType.SINGLE_ITEM
        if image_type is ImageType.FULL_BODY:
            return Segmentation(self.worn(cutout, photo), image_type)
        return Segmentation(self.single(cutout, photo), image_type)

    def single(self, cutout: Image.Image, photo: Image.Image) -> list[Garment]:
        parts = self.components.segment(cutout)
        if not parts:
            return []
        parts = [p for p in parts if p.area_pixels >= SINGLE_SLIVER_RATIO * parts[0].area_pixels]
        groups = together(parts)
        boxes = [framed(union_box([parts[index].bbox for index in members]), photo.size) for members in groups]
        garments = []
        for members, prediction in zip(groups, self.classifier.classify([photo.crop(box) for box in boxes])):
            named = dict(label=prediction.label, category=prediction.category, confidence=prediction.confidence)
            if len(members) == 1:
                garments.append(replace(parts[members[0]], **named))
                continue
            own = np.maximum.reduce([full_alpha(parts[index], (cutout.height, cutout.width)) for index in members])
            garments.append(cut(cutout, own, min_pixels=0, **named))
        return sorted(garments, key=lambda g: g.area_pixels, reverse=True)

    def worn(self, cutout: Image.Image, photo: Image.Image) -> list[Garment]:
        alpha = np.asarray(cutout.getchannel("A"))
        found = []
        for region in self.parser.regions(photo, alpha):
            garment = cut(cutout, np.where(region.mask, alpha, 0).astype(np.uint8), region.kind,
                          category_of(region.kind), region.confidence, self.min_pixels)
            if garment is not None:
                found.append(garment)
        refinable = [i for i, g in enumerate(found) if len(labels_of_kind(g.label)) > 1]
        probabilities = self.classifier.run([photo.crop(found[i].bbox) for i in refinable])[0]
        for i, p in zip(refinable, probabilities):
            found[i] = replace(found[i], label=refine(p, found[i].label))
        return sorted(found, key=lambda g: g.area_pixels, reverse=True)


def near(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    gap = max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3], 0)
    return gap < NEAR_SHARE * min(max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1]))


def union_box(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def framed(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box grown by CLASSIFY_MARGIN each side, within the photo."""
    dx, dy = int(CLASSIFY_MARGIN * (box[2] - box[0])), int(CLASSIFY_MARGIN * (box[3] - box[1]))
    return max(0, box[0] - dx), max(0, box[1] - dy), min(size[0], box[2] + dx), min(size[1], box[3] + dy)


def together(parts: list[Garment]) -> list[list[int]]:
    """Groups of part indices, largest first: parts that lie near one another, transitively."""
    group = list(range(len(parts)))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i in range(len(parts)):
        for j in range(i):
            if near(parts[i].bbox, parts[j].bbox):
                group[root(i)] = root(j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(parts)):
        groups[root(i)].append(i)
    return list(groups.values())
