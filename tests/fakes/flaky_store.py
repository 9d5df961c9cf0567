"""A blob store that answers "503" for a while: it raises StorageUnavailable (what GcsBlobStore
raises when GCS answers 503/429/5xx or the connection drops) for the first N calls of the chosen
operations, then behaves like the store it wraps.

    store = FlakyStore(MemoryBlobStore())
    store.fail("read", 2)                                     # the next 2 reads, whatever the key
    store.fail("write", 1, where=lambda key: key.endswith("/final.json"))
    store.fail("*", 4)                                        # the next 4 calls of any operation

Operations: read, write, create, exists, list, delete, copy ("*" = any of them). `create` is the
create-only write (if_generation_match=0) the pipeline uses for outcome records, claims and work
images. Every injected failure is recorded in `injected` as (operation, key).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from shared.adapters.blobstore.base import Blob, BlobStore
from shared.errors import StorageUnavailable

OPERATIONS = ("read", "write", "create", "exists", "list", "delete", "copy")


@dataclass
class _Rule:
    operation: str
    remaining: int
    where: Callable[[str], bool] | None


class FlakyStore(BlobStore):
    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.rules: list[_Rule] = []
        self.injected: list[tuple[str, str]] = []
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def fail(self, operation: str, times: int, where: Callable[[str], bool] | None = None) -> "FlakyStore":
        if operation != "*" and operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; one of {OPERATIONS} or '*'")
        with self._lock:
            self.rules.append(_Rule(operation, times, where))
        return self

    @property
    def pending(self) -> int:
        """Failures armed but not injected yet (a test that expects them all used checks this is 0)."""
        with self._lock:
            return sum(rule.remaining for rule in self.rules)

    def _gate(self, operation: str, key: str) -> None:
        with self._lock:
            self.calls[operation] += 1
            for rule in self.rules:
                if rule.remaining > 0 and rule.operation in ("*", operation) and (rule.where is None or rule.where(key)):
                    rule.remaining -= 1
                    self.injected.append((operation, key))
                    break
            else:
                return
        raise StorageUnavailable(f"{operation} {key} failed: 503 Service Unavailable (injected)")

    # -- the BlobStore port ------------------------------------------------------------------
    def read(self, key: str, *, generation: int | None = None) -> Blob:
        self._gate("read", key)
        return self.inner.read(key, generation=generation)

    def stat(self, key: str, *, generation: int | None = None):
        self._gate("read", key)
        return self.inner.stat(key, generation=generation)

    def write(self, key, data, *, content_type, metadata=None, if_generation_match=None) -> int:
        self._gate("create" if if_generation_match == 0 else "write", key)
        return self.inner.write(key, data, content_type=content_type, metadata=metadata,
                                if_generation_match=if_generation_match)

    def create(self, key, data, *, content_type, metadata=None) -> bool:
        self._gate("create", key)
        return self.inner.create(key, data, content_type=content_type, metadata=metadata)

    def exists(self, key: str) -> bool:
        self._gate("exists", key)
        return self.inner.exists(key)

    def list(self, prefix: str) -> list[str]:
        self._gate("list", prefix)
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self._gate("delete", key)
        self.inner.delete(key)

    def copy(self, source: str, destination: str) -> None:
        self._gate("copy", destination)
        self.inner.copy(source, destination)

    def url(self, key: str) -> str:
        return self.inner.url(key)  # no request to storage: never fails
