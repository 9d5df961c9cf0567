"""The job-state object that joins a job's garments, and the latch that lets exactly one final
result out per job. Both are compare-and-swap writes on generation preconditions, so duplicated
or concurrent messages cannot double-count a garment or publish twice.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from shared.adapters.blobstore import BlobNotFound, BlobStore, PreconditionFailed
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.errors import StorageUnavailable
from shared.layout import work_key

MAX_SWAPS = 50
# Publishing a result takes well under a second; a claim older than this was abandoned.
CLAIM_LEASE_S = 8.0


@dataclass
class JoinState:
    item_count: int
    items: dict[int, str] = field(default_factory=dict)  # item index -> its GarmentDone JSON

    @property
    def complete(self) -> bool:
        return len(self.items) == self.item_count


def join_item(store: BlobStore, job_id: str, item_count: int, index: int, message_json: str) -> tuple[bool, JoinState]:
    """Record one garment. Returns (newly_added, state after); the call that adds the last garment
    is the one that sees newly_added and state.complete together, exactly once per job."""
    key = work_key(job_id, "state.json")
    for _ in range(MAX_SWAPS):
        try:
            blob = store.read(key)
            raw = json.loads(blob.data)
            state = JoinState(raw["itemCount"], {int(k): v for k, v in raw["items"].items()})
            generation = blob.generation
        except BlobNotFound:
            state, generation = JoinState(item_count), 0
        if index in state.items:
            return False, state
        state.items[index] = message_json
        body = json.dumps({"itemCount": state.item_count, "items": {str(k): v for k, v in state.items.items()}})
        try:
            store.write(key, body.encode(), content_type="application/json", metadata=OUTPUT_MARKER,
                        if_generation_match=generation)
            return True, state
        except PreconditionFailed:
            continue  # another garment got in first: read again
    raise StorageUnavailable("The job state kept changing under concurrent writers; will retry.")


def claim_final_result(store: BlobStore, job_id: str, claimer: str, *, lease_s: float = CLAIM_LEASE_S) -> bool:
    """True for the one caller allowed to publish the job's final result.

    The same claimer (the same message, redelivered) may claim again once its earlier claim's lease
    has run out without `mark_published`: its publish failed. Inside the lease the earlier delivery
    may still be publishing, so the duplicate is told to come back later (a transient error)."""
    key = work_key(job_id, "final.json")
    claim = {"claimer": claimer, "claimedAt": time.time()}
    if store.create(key, json.dumps(claim).encode(), content_type="application/json", metadata=OUTPUT_MARKER):
        return True
    blob = store.read(key)
    current = json.loads(blob.data)
    if current.get("published") or current.get("claimer") != claimer:
        return False
    if time.time() - current.get("claimedAt", 0) < lease_s:
        raise StorageUnavailable("Another delivery of this message is publishing the result; will check again.")
    try:
        store.write(key, json.dumps(claim).encode(), content_type="application/json", metadata=OUTPUT_MARKER,
                    if_generation_match=blob.generation)
    except PreconditionFailed:
        raise StorageUnavailable("Two deliveries re-claimed the result at once; will check again.") from None
    return True


def mark_published(store: BlobStore, job_id: str, claimer: str) -> None:
    key = work_key(job_id, "final.json")
    body = json.dumps({"claimer": claimer, "published": True}).encode()
    store.write(key, body, content_type="application/json", metadata=OUTPUT_MARKER)


def final_result_claimed(store: BlobStore, job_id: str) -> bool:
    return store.exists(work_key(job_id, "final.json"))
