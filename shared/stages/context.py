"""What every stage is given (settings, storage, providers) and what it gives back."""

from __future__ import annotations

import io
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property

from PIL import Image

from shared.adapters.blobstore import BlobStore
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.config import Settings
from shared.documents import ProgressEvent, ResultDocument
from shared.image_io import encode
from shared.messages import StageMessage


class WorkImages(ABC):
    """Intermediate images between stages. In the cloud they are PNGs in the work bucket; in one
    process they stay decoded in memory, so the local run never encodes what it reads back."""

    @abstractmethod
    def put(self, key: str, image: Image.Image) -> None: ...

    @abstractmethod
    def get(self, key: str) -> Image.Image: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...


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

    def exists(self, key: str) -> bool:
        return self.store.exists(key)


class MemoryWorkImages(WorkImages):
    def __init__(self) -> None:
        self._images: dict[str, Image.Image] = {}
        self._lock = threading.Lock()

    def put(self, key: str, image: Image.Image) -> None:
        with self._lock:
            self._images.setdefault(key, image)

    def get(self, key: str) -> Image.Image:
        with self._lock:
            return self._images[key]

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self._images

    def discard_job(self, job_id: str) -> None:
        with self._lock:
            for key in [k for k in self._images if k.startswith(f"work/{job_id}/")]:
                del self._images[key]


@dataclass
class StageContext:
    """Built once per process (a function instance, the local run), shared by every event."""

    settings: Settings
    store: BlobStore
    images: WorkImages

    @cached_property
    def background_chain(self):
        from shared.providers.background import build_background_chain

        return build_background_chain(self.settings)

    @cached_property
    def segmenter(self):
        from shared.providers.segmentation import build_segmenter

        return build_segmenter(self.settings)

    @cached_property
    def generator(self):
        """None when expand cannot call a model (policy never, or no key configured)."""
        from shared.providers.generation import build_generator

        return build_generator(self.settings) if self.settings.expand_generation_enabled() else None


@dataclass(frozen=True)
class StageOutcome:
    """What a stage asks its transport to publish."""

    next: tuple[StageMessage, ...] = ()
    progress: tuple[ProgressEvent, ...] = ()
    result: ResultDocument | None = None
    notes: dict[str, str] = field(default_factory=dict)
