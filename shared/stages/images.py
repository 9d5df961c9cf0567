"""Intermediate images between stages: PNGs in the work bucket in the cloud, decoded in memory in one
process. Apart from the stage context so that the functions that handle no image (the failure
handler, the webhook) never load Pillow."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod

from PIL import Image

from shared.adapters.blobstore import BlobStore
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.media.image_io import encode


class WorkImages(ABC):
    """Intermediate images between stages. In the cloud they are PNGs in the work bucket; in one
    process they stay decoded in memory, so the local run never encodes what it reads back."""

    @abstractmethod
    def put(self, key: str, image: Image.Image) -> None: ...

    @abstractmethod
    def get(self, key: str) -> Image.Image: ...


class StoredWorkImages(WorkImages):
    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def put(self, key: str, image: Image.Image) -> None:
        # Create-only: a redelivered message cannot overwrite what another attempt wrote.
        self.store.create(key, encode(image, "png", fast=True), content_type="image/png", metadata=OUTPUT_MARKER)

    def get(self, key: str) -> Image.Image:
        image = Image.open(io.BytesIO(self.store.read(key).data))
        image.load()
        return image
