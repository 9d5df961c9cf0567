"""The blob-store port. Keys are `<area>/<path>`; an adapter maps each area to a bucket or folder.

Generations make writes safe under at-least-once delivery: `if_generation_match=0` creates only if
absent (a redelivered message cannot double-write), and matching a read's generation gives a
compare-and-swap for the job-state object that joins parallel garments.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from shared.errors import BlobNotFound  # noqa: F401  (defined with every other code, in shared/errors.py)

# Marks everything the pipeline writes, so no output can ever be taken for an upload.
OUTPUT_MARKER = {"closet-pipeline-output": "true"}


class PreconditionFailed(Exception):
    """A conditional write lost: the object exists (create-only) or changed since it was read."""


@dataclass(frozen=True)
class Blob:
    """What one read returns. An object's custom metadata is not part of it (a GCS download does
    not carry it, and a second request per read would): `stat` reads it."""

    data: bytes
    generation: int
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class BlobInfo:
    """An object's metadata, without its bytes."""

    size: int
    generation: int
    content_type: str = "application/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)


class BlobStore(ABC):
    @abstractmethod
    def read(self, key: str, *, generation: int | None = None) -> Blob:
        """The object's bytes and generation; BlobNotFound if absent, or if `generation` is given
        and is not the object's (it was overwritten: GCS keeps no old generations without versioning)."""

    @abstractmethod
    def stat(self, key: str, *, generation: int | None = None) -> BlobInfo:
        """The object's size, generation and metadata, read without its bytes; BlobNotFound as read."""

    @abstractmethod
    def write(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        metadata: dict[str, str] | None = None,
        if_generation_match: int | None = None,
    ) -> int:
        """Store bytes and return the new generation. `if_generation_match=0`: only if absent."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under a prefix, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; absent is fine."""

    @abstractmethod
    def url(self, key: str) -> str:
        """Where a person or the app can fetch the object (a signed URL, a file URI)."""

    # -- conveniences built on the four operations above ------------------------------------
    def exists(self, key: str) -> bool:
        try:
            self.stat(key)  # metadata only: one request, no bytes
        except BlobNotFound:
            return False
        return True

    def create(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str] | None = None) -> bool:
        """Write once: True if this call created it, False if it was already there (a redelivery)."""
        try:
            self.write(key, data, content_type=content_type, metadata=metadata, if_generation_match=0)
        except PreconditionFailed:
            return False
        return True

    def copy(self, source: str, destination: str) -> None:
        info = self.stat(source)
        blob = self.read(source, generation=info.generation)
        self.write(destination, blob.data, content_type=blob.content_type, metadata=info.metadata)
