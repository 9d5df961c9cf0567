"""A blob store in a local folder: the in-process run's storage. One file per object, plus a small
sidecar holding its generation, content type and metadata.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from shared.adapters.blobstore.base import Blob, BlobInfo, BlobNotFound, BlobStore, PreconditionFailed
from shared.errors import InvalidObjectPath

_SIDECAR = ".meta.json"


class LocalFolderBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # makes conditional writes atomic within the process

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not key or self.root not in path.parents or key.endswith(_SIDECAR):
            raise InvalidObjectPath(f"Refused object key {key!r}.")
        return path

    @staticmethod
    def _sidecar(path: Path) -> Path:
        return path.with_name(path.name + _SIDECAR)

    def _meta(self, path: Path) -> dict:
        try:
            return json.loads(self._sidecar(path).read_text())
        except FileNotFoundError:
            return {"generation": 1}

    def _read(self, key: str, generation: int | None) -> tuple[bytes, dict]:
        path = self._path(key)
        with self._lock:
            try:
                data = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                raise BlobNotFound(f"No object at {key}.") from None
            meta = self._meta(path)
        if generation not in (None, meta["generation"]):
            raise BlobNotFound(f"No object at {key} generation {generation}.")
        return data, meta

    def read(self, key: str, *, generation: int | None = None) -> Blob:
        data, meta = self._read(key, generation)
        return Blob(data, meta["generation"], meta.get("contentType", "application/octet-stream"))

    def stat(self, key: str, *, generation: int | None = None) -> BlobInfo:
        data, meta = self._read(key, generation)
        return BlobInfo(len(data), meta["generation"], meta.get("contentType", "application/octet-stream"),
                        meta.get("metadata", {}))

    def write(self, key, data, *, content_type, metadata=None, if_generation_match=None) -> int:
        path = self._path(key)
        with self._lock:
            current = self._meta(path)["generation"] if path.is_file() else 0
            if if_generation_match is not None and current != if_generation_match:
                raise PreconditionFailed(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            generation = current + 1
            _atomic_write(path, data)
            meta = {"generation": generation, "contentType": content_type, "metadata": dict(metadata or {})}
            _atomic_write(self._sidecar(path), json.dumps(meta).encode())
            return generation

    def list(self, prefix: str) -> list[str]:
        keys = []
        for path in self.root.rglob("*"):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and not key.endswith(_SIDECAR) and key.startswith(prefix):
                keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._lock:
            path.unlink(missing_ok=True)
            self._sidecar(path).unlink(missing_ok=True)

    def url(self, key: str) -> str:
        return self._path(key).as_uri()


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
