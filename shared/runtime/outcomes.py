"""Outcome records, the idempotency layer: Pub/Sub delivers at least once, so each stage's outcome
for a message is kept under a deterministic key, and a redelivered message forwards it instead of
running the stage (the model, a paid generation call) again.

Like Powertools' idempotency, a delivery first takes an in-progress lease whose expiry is the
function's remaining time: a concurrent duplicate finds it and is retried later (InProgress, a
transient error), when the outcome is there to forward; a lease whose holder died expires and is
taken over. Lease and outcome are separate objects, each written about once. Once a delivery has
published the outcome, a marker says so, and later duplicates publish nothing: otherwise each
duplicate would double every later stage's messages.
"""

from __future__ import annotations

import json
import time

from shared.adapters.blobstore import BlobNotFound, BlobStore, PreconditionFailed
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.documents import ProgressEvent, ResultDocument
from shared.errors import InProgress
from shared.layout import work_key
from shared.messages import StageMessage
from shared.stages.context import StageOutcome

JSON = "application/json"


class OutcomeRecords:
    def __init__(self, store: BlobStore) -> None:
        self.store = store

    @staticmethod
    def key(stage: str, message: StageMessage, suffix: str = ".json") -> str:
        item = getattr(message, "item_index", None)
        return work_key(message.job.job_id, f"outcomes/{stage}{'' if item is None else f'-{item}'}{suffix}")

    def get(self, stage: str, message: StageMessage, emits: type[StageMessage] | None) -> StageOutcome | None:
        try:
            raw = json.loads(self.store.read(self.key(stage, message)).data)
        except BlobNotFound:
            return None
        return StageOutcome(
            next=tuple(emits.model_validate_json(m) for m in raw["next"]) if emits else (),
            progress=tuple(ProgressEvent.model_validate_json(p) for p in raw["progress"]),
            result=ResultDocument.model_validate_json(raw["result"]) if raw["result"] else None,
        )

    def begin(self, stage: str, message: StageMessage, lease_s: float) -> None:
        """Take the in-progress lease for this message, or raise InProgress while another holds it."""
        key = self.key(stage, message, ".lease.json")
        lease = json.dumps({"expiresAt": time.time() + lease_s}).encode()
        if self.store.create(key, lease, content_type=JSON, metadata=OUTPUT_MARKER):
            return
        try:
            current = self.store.read(key)
        except BlobNotFound:
            raise InProgress() from None
        if json.loads(current.data).get("expiresAt", 0) > time.time():
            raise InProgress()
        try:  # the holder ran out of time (or died): take over, once
            self.store.write(key, lease, content_type=JSON, metadata=OUTPUT_MARKER,
                             if_generation_match=current.generation)
        except PreconditionFailed:
            raise InProgress() from None

    def forwarded(self, stage: str, message: StageMessage) -> bool:
        """Whether the recorded outcome was published in full (by any delivery)."""
        return self.store.exists(self.key(stage, message, ".forwarded"))

    def mark_forwarded(self, stage: str, message: StageMessage) -> None:
        """After publishing: a crash before this leaves the next delivery to publish again (at least once)."""
        self.store.create(self.key(stage, message, ".forwarded"), b"", content_type="text/plain", metadata=OUTPUT_MARKER)

    def release(self, stage: str, message: StageMessage) -> None:
        """Give the lease back after a failed attempt, so its retry runs at once."""
        self.store.delete(self.key(stage, message, ".lease.json"))

    def put(self, stage: str, message: StageMessage, outcome: StageOutcome) -> None:
        body = {
            "next": [m.model_dump_json() for m in outcome.next],
            "progress": [p.model_dump_json() for p in outcome.progress],
            "result": outcome.result.model_dump_json() if outcome.result else None,
        }
        # Create-only: should two deliveries both get here, the first outcome recorded is the one that counts.
        self.store.create(self.key(stage, message), json.dumps(body).encode(), content_type=JSON,
                          metadata=OUTPUT_MARKER)
