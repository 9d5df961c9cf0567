"""The app's SegFormer API as a segmenter: POST {url}/segment with the cut-out, garments come back.

Answer: {"status": "success", "detected_items": [{"label", "bbox": [x1, y1, x2, y2], "image_base64",
"area_pixels"}]}. Transport failures, 5xx, 429, timeouts and undecodable answers are ProviderFailed
(transient: the job is retried); the service finding nothing is an empty list, not an error.
"""

from __future__ import annotations

import io

from PIL import Image

from shared.categories import category_of
from shared.providers.remote import HttpProvider
from shared.providers.segmentation.base import Garment, Segmenter

BORDER_PX = 2  # a box this close to the cut-out's edge means the garment is probably cut off
# SegFormer-clothes classes that are no garment: the background and the wearer's body.
NOT_GARMENTS = {"background", "hair", "face", "left-arm", "right-arm", "left-leg", "right-leg"}
# Its garment classes in the wardrobe's vocabulary (shared/categories.py); any other is an accessory.
VOCABULARY_LABEL = {"upper-clothes": "top", "dress": "dress", "pants": "pants", "skirt": "skirt", "left-shoe": "shoes",
                    "right-shoe": "shoes", "hat": "hat", "bag": "bag", "belt": "belt", "scarf": "scarf",
                    "sunglasses": "glasses"}


def _normal(label: str) -> str:
    return label.strip().lower().replace("_", "-").replace(" ", "-")


class SegformerHttpSegmenter(Segmenter, HttpProvider):
    name = "segformer-http"
    who = "the SegFormer API"

    def __init__(self, url: str, min_garment_pixels: int = 1000, timeout_s: float = 30.0) -> None:
        super().__init__(timeout_s)
        self.url = url.rstrip("/") + "/segment"
        self.min_garment_pixels = min_garment_pixels

    @classmethod
    def from_settings(cls, settings) -> "SegformerHttpSegmenter":
        if not settings.segformer_url:
            raise ValueError("CLOSET_SEGFORMER_URL is not set; the segformer-http segmenter needs it")
        return cls(settings.segformer_url, settings.min_garment_pixels, settings.provider_timeout_s)

    def segment(self, cutout: Image.Image) -> list[Garment]:
        png = io.BytesIO()
        cutout.convert("RGBA").save(png, "PNG")  # PNG keeps the alpha the service segments by
        files = {"file": ("cutout.png", png.getvalue(), "image/png")}
        response = self.call(lambda: self.send("POST", self.url, files=files))
        with self.reading():
            payload = response.json()
            items = payload.get("detected_items") or []
            kept = [item for item in items if self._keep(item)]
            garments = [self._garment(item, cutout.size) for item in kept]
        return sorted(garments, key=lambda garment: garment.area_pixels, reverse=True)

    def _keep(self, item: dict) -> bool:
        return _normal(str(item["label"])) not in NOT_GARMENTS and int(item["area_pixels"]) >= self.min_garment_pixels

    def _garment(self, item: dict, size: tuple[int, int]) -> Garment:
        width, height = size
        x1, y1, x2, y2 = (int(round(float(value))) for value in item["bbox"])
        box = (max(0, min(x1, width)), max(0, min(y1, height)), max(0, min(x2, width)), max(0, min(y2, height)))
        touches = min(box[0], box[1]) <= BORDER_PX or box[2] >= width - BORDER_PX or box[3] >= height - BORDER_PX
        label = VOCABULARY_LABEL.get(_normal(str(item["label"])), "accessory")
        return Garment(
            crop=self.image_b64(item["image_base64"], "garment image").convert("RGBA"),
            label=label,
            category=category_of(label),
            area_pixels=int(item["area_pixels"]),
            bbox=box,
            touches_border=touches,
        )
