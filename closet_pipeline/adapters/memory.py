"""An in-memory blob store: the test double, with real generation semantics."""

from __future__ import annotations

import threading

from shared.adapters.blobstore.base import Blob, BlobNotFound, BlobStore, PreconditionFailed


class MemoryBlobStore(BlobStore):
    def __init__(self) -> None:
        self._objects: dict[str, Blob] = {}
        self._next_generation = 1
        self._lock = threading.Lock()

    def read(self, key: str) -> Blob:
        with self._lock:
            if key not in self._objects:
                raise BlobNotFound(f"No object at {key}.")
            return self._objects[key]

    def write(self, key, data, *, content_type, metadata=None, if_generation_match=None) -> int:
        with self._lock:
            current = self._objects.get(key)
            if if_generation_match is not None and (current.generation if current else 0) != if_generation_match:
                raise PreconditionFailed(key)
            generation = self._next_generation
            self._next_generation += 1
            self._objects[key] = Blob(bytes(data), generation, content_type, dict(metadata or {}))
            return generation

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(prefix))

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def url(self, key: str) -> str:
        return f"memory://{key}"
