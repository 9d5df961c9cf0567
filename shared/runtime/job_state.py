"""The job-level state that duplicated and concurrent messages share, kept so that no object is
written more than about once a second (GCS's limit for one object):

- the garment join: one create-only marker per garment (`work/{jobId}/garments/{n}.json`); the
  garments in are whatever a (strongly consistent) listing shows, so parallel garments never
  contend for one object;
- the final claim (`work/{jobId}/final.json`): whoever creates it may end the job, once. A job
  ends with a success or a failure, never both, and never twice; `work/{jobId}/published.json`
  records that its result went out (a separate object: neither is written twice in a second).
"""

from __future__ import annotations

import json
import time

from shared.adapters.blobstore import BlobNotFound, BlobStore, PreconditionFailed
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.errors import StorageUnavailable
from shared.layout import work_key

JSON = "application/json"


# -- the garment join ---------------------------------------------------------------------------
def join_garment(store: BlobStore, job_id: str, index: int, message_json: str) -> tuple[bool, int]:
    """Record one garment; returns (newly added, how many garments are in now)."""
    added = store.create(work_key(job_id, f"garments/{index}.json"), message_json.encode(), content_type=JSON,
                         metadata=OUTPUT_MARKER)
    return added, len(store.list(work_key(job_id, "garments/")))


def joined_garments(store: BlobStore, job_id: str) -> list[str]:
    """Every garment's recorded message, in index order."""
    keys = store.list(work_key(job_id, "garments/"))
    return [store.read(key).data.decode() for key in sorted(keys, key=lambda k: int(k.rsplit("/", 1)[1].split(".")[0]))]


# -- the final claim ----------------------------------------------------------------------------
def _claim_key(job_id: str) -> str:
    return work_key(job_id, "final.json")


def _published_key(job_id: str) -> str:
    return work_key(job_id, "published.json")


def claim(store: BlobStore, job_id: str, claimer: str, *, take_over_after_s: float | None = None) -> bool:
    """True for the one caller allowed to end the job.

    The same claimer (a redelivery of the message that claimed; outcome leases keep two deliveries of
    one message from running at once) may claim again until the result is published. With
    `take_over_after_s`, a claim left unpublished for that long (its holder kept crashing) is taken over."""
    body = json.dumps({"claimer": claimer, "claimedAt": time.time()}).encode()
    if store.create(_claim_key(job_id), body, content_type=JSON, metadata=OUTPUT_MARKER):
        return True
    try:
        blob = store.read(_claim_key(job_id))
    except BlobNotFound:
        raise StorageUnavailable("The job's claim vanished while being read; will retry.") from None
    current = json.loads(blob.data)
    if store.exists(_published_key(job_id)):
        return False
    if current.get("claimer") == claimer:
        return True
    if take_over_after_s is None or time.time() - current.get("claimedAt", 0) < take_over_after_s:
        return False
    try:
        store.write(_claim_key(job_id), body, content_type=JSON, metadata=OUTPUT_MARKER,
                    if_generation_match=blob.generation)
    except PreconditionFailed:
        return False
    return True


def mark_published(store: BlobStore, job_id: str, claimer: str) -> None:
    body = json.dumps({"claimer": claimer, "publishedAt": time.time()}).encode()
    store.create(_published_key(job_id), body, content_type=JSON, metadata=OUTPUT_MARKER)


def ended(store: BlobStore, job_id: str) -> bool:
    """Whether the job's end has been claimed (so stale deliveries must not report progress)."""
    return store.exists(_claim_key(job_id))
