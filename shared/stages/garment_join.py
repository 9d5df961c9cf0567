"""The garment join deliver waits on: one create-only marker per garment
(`work/{jobId}/garments/{n}.json`); the garments in are whatever a (strongly consistent) listing
shows, so parallel garments never contend for one object (GCS allows about one write a second to one).
"""

from __future__ import annotations

from shared.adapters.blobstore import BlobStore
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.layout import work_key


def join_garment(store: BlobStore, job_id: str, index: int, message_json: str) -> tuple[bool, int]:
    """Record one garment; returns (newly added, how many garments are in now)."""
    added = store.create(work_key(job_id, f"garments/{index}.json"), message_json.encode(),
                         content_type="application/json", metadata=OUTPUT_MARKER)
    return added, len(store.list(work_key(job_id, "garments/")))


def joined_garments(store: BlobStore, job_id: str) -> list[str]:
    """Every garment's recorded message, in index order."""
    keys = store.list(work_key(job_id, "garments/"))
    return [store.read(key).data.decode() for key in sorted(keys, key=lambda k: int(k.rsplit("/", 1)[1].split(".")[0]))]
