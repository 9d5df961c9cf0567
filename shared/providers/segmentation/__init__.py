"""Segmenters, chosen by name from CLOSET_SEGMENTER."""

from __future__ import annotations

from shared.providers import load_provider
from shared.providers.segmentation.base import Garment, Segmentation, Segmenter

REGISTRY = {
    "local": "shared.providers.segmentation.local_garments:LocalGarmentSegmenter",
    "segformer-http": "shared.providers.segmentation.segformer_http:SegformerHttpSegmenter",
}


def build_segmenter(settings) -> Segmenter:
    return load_provider(REGISTRY, settings.segmenter, Segmenter, settings)


__all__ = ["Garment", "Segmentation", "Segmenter", "build_segmenter", "REGISTRY"]
