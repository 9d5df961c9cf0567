"""The default segmenter: garments found and named in-process, by the photo's kind.

- SINGLE_ITEM: the cut-out's connected parts are the garments (mask components); the classifier names
  each from its box in the photo.
- FULL_BODY: the parser labels every pixel; each kept garment region is an item, its alpha the region
  times the cut-out's alpha. The classifier picks its finer label within the parser's category.
- Not said (auto): the parser looks first; a person in the photo means FULL_BODY.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from shared.messages import ImageType
from shared.providers.garments.classifier import GarmentClassifier
from shared.providers.garments.parser import GarmentParser, Parse, full_size_mask
from shared.providers.segmentation.base import Garment, Segmentation, Segmenter
from shared.providers.segmentation.mask_components import ALPHA_THRESHOLD, MaskComponentsSegmenter, crop_padding


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
        parse = None
        if image_type is None:
            parse = self.parser.parse(cutout.convert("RGB"))
            image_type = ImageType.FULL_BODY if parse.shows_person() else ImageType.SINGLE_ITEM
        if image_type is ImageType.FULL_BODY:
            return Segmentation(self.worn(cutout, parse or self.parser.parse(cutout.convert("RGB"))), image_type)
        return Segmentation(self.single(cutout), image_type)

    def single(self, cutout: Image.Image) -> list[Garment]:
        garments = self.components.segment(cutout)
        # The classifier sees each garment's box of the photo, as it was trained on whole photos.
        photo = cutout.convert("RGB")
        predictions = self.classifier.classify([photo.crop(g.bbox) for g in garments])
        return [Garment(g.crop, p.label, p.category, g.area_pixels, g.bbox, g.touches_border, p.confidence)
                for g, p in zip(garments, predictions)]

    def worn(self, cutout: Image.Image, parse: Parse) -> list[Garment]:
        alpha = np.asarray(cutout.getchannel("A"))
        height, width = alpha.shape
        photo = cutout.convert("RGB")
        found = []
        for region in parse.regions():
            own = np.where(full_size_mask(region.mask, (width, height)), alpha, 0).astype(np.uint8)
            solid = own >= ALPHA_THRESHOLD
            area = int(solid.sum())
            if area < self.min_pixels:
                continue
            rows, cols = np.nonzero(own)
            top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
            pad = crop_padding(max(bottom - top, right - left))
            box = (max(0, left - pad), max(0, top - pad), min(width, right + pad), min(height, bottom + pad))
            crop = cutout.crop(box).convert("RGBA")
            crop.putalpha(Image.fromarray(own[box[1]:box[3], box[0]:box[2]], "L"))
            touches = top == 0 or left == 0 or bottom == height or right == width
            found.append((crop, region, area, box, bool(touches)))
        labels = self.classifier.classify([photo.crop(box) for _, _, _, box, _ in found],
                                          [region.category for _, region, _, _, _ in found])
        garments = [Garment(crop, label.label, region.category, area, box, touches, region.confidence)
                    for (crop, region, area, box, touches), label in zip(found, labels)]
        return sorted(garments, key=lambda g: g.area_pixels, reverse=True)
