"""An in-memory blob store: the test double, as strict as GCS where GCS is stricter than a dict.

- Generations and preconditions behave as GCS's (create-only, compare-and-swap).
- One object takes about one write a second: a faster write fails with a 429, as GCS rate-limits it
  (StorageUnavailable, so the message is retried).
- Links are signed like V4 URLs: each carries the time it was signed and its lifetime, so two calls
  give different links, and `open_url` refuses one that has expired or was tampered with.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from shared.adapters.blobstore.base import Blob, BlobInfo, BlobNotFound, BlobStore, PreconditionFailed
from shared.errors import StorageUnavailable
from shared.topology import declaration

WRITE_INTERVAL_S = 1.0  # GCS: "a limit on writes to the same object name ... once per second"


class LinkRefused(Exception):
    """What GCS answers 400/403 for: an expired or altered signed link."""


@dataclass(frozen=True)
class _Stored:
    data: bytes
    generation: int
    content_type: str
    metadata: dict[str, str]


class MemoryBlobStore(BlobStore):
    def __init__(self, *, signed_url_ttl_s: int | None = None, write_interval_s: float = WRITE_INTERVAL_S,
                 clock: Callable[[], float] = time.time) -> None:
        self._objects: dict[str, _Stored] = {}
        self._last_write: dict[str, float] = {}
        self._next_generation = 1
        self._lock = threading.Lock()
        self.signed_url_ttl_s = signed_url_ttl_s or declaration().links.result_s  # as GcsBlobStore
        self.write_interval_s = write_interval_s
        self.clock = clock
        self._secret = hashlib.sha256(str(id(self)).encode()).digest()
        self.rate_limited: list[str] = []  # keys whose writes were refused, for tests to inspect

    def _get(self, key: str, generation: int | None) -> _Stored:
        with self._lock:
            stored = self._objects.get(key)
        if stored is None or generation not in (None, stored.generation):
            raise BlobNotFound(f"No object at {key}" + ("." if generation is None else f" generation {generation}."))
        return stored

    def read(self, key: str, *, generation: int | None = None) -> Blob:
        stored = self._get(key, generation)  # metadata stays behind, as a GCS download leaves it
        return Blob(stored.data, stored.generation, stored.content_type)

    def stat(self, key: str, *, generation: int | None = None) -> BlobInfo:
        stored = self._get(key, generation)
        return BlobInfo(len(stored.data), stored.generation, stored.content_type, dict(stored.metadata))

    def write(self, key, data, *, content_type, metadata=None, if_generation_match=None) -> int:
        with self._lock:
            current = self._objects.get(key)
            if if_generation_match is not None and (current.generation if current else 0) != if_generation_match:
                raise PreconditionFailed(key)
            now = time.monotonic()
            if now - self._last_write.get(key, float("-inf")) < self.write_interval_s:
                self.rate_limited.append(key)
                raise StorageUnavailable(f"Writing {key} failed: 429 Too Many Requests (the object's write rate)")
            self._last_write[key] = now
            generation = self._next_generation
            self._next_generation += 1
            self._objects[key] = _Stored(bytes(data), generation, content_type, dict(metadata or {}))
            return generation

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(prefix))

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def url(self, key: str) -> str:
        signed_at = f"{self.clock():.6f}"
        query = {"signedAt": signed_at, "expires": str(self.signed_url_ttl_s)}
        query["signature"] = self._sign(key, query)
        return f"memory://{key}?{urlencode(query)}"

    def _sign(self, key: str, query: dict[str, str]) -> str:
        message = f"{key}\n{query['signedAt']}\n{query['expires']}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def key_of(self, url: str) -> str:
        """The object a link points at, if the link is still good (else LinkRefused)."""
        parts = urlsplit(url)
        key = f"{parts.netloc}{parts.path}"
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.scheme != "memory" or not hmac.compare_digest(query.get("signature", ""), self._sign(key, {
                "signedAt": query.get("signedAt", ""), "expires": query.get("expires", "")})):
            raise LinkRefused(f"not a link this store signed: {url}")
        if self.clock() > float(query["signedAt"]) + int(query["expires"]):
            raise LinkRefused(f"the link expired: {url}")
        return key

    def open_url(self, url: str) -> bytes:
        return self.read(self.key_of(url)).data
