"""Outcome records: Pub/Sub delivers at least once, so each stage's outcome for a message is kept
under a deterministic key. A redelivered message finds it and is forwarded again without
recomputing (the 2-second model run included)."""

from __future__ import annotations

import json

from shared.adapters.blobstore import BlobNotFound, BlobStore
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.documents import ProgressEvent, ResultDocument
from shared.layout import work_key
from shared.messages import StageMessage
from shared.stages.context import StageOutcome


class OutcomeRecords:
    def __init__(self, store: BlobStore) -> None:
        self.store = store

    @staticmethod
    def key(stage: str, message: StageMessage) -> str:
        item = getattr(message, "item_index", None)
        return work_key(message.job.job_id, f"outcomes/{stage}{'' if item is None else f'-{item}'}.json")

    def get(self, stage: str, message: StageMessage, next_type: type[StageMessage] | None) -> StageOutcome | None:
        try:
            raw = json.loads(self.store.read(self.key(stage, message)).data)
        except BlobNotFound:
            return None
        return StageOutcome(
            next=tuple(next_type.model_validate_json(m) for m in raw["next"]) if next_type else (),
            progress=tuple(ProgressEvent.model_validate_json(p) for p in raw["progress"]),
            result=ResultDocument.model_validate_json(raw["result"]) if raw["result"] else None,
        )

    def put(self, stage: str, message: StageMessage, outcome: StageOutcome) -> None:
        body = {
            "next": [m.model_dump_json() for m in outcome.next],
            "progress": [p.model_dump_json() for p in outcome.progress],
            "result": outcome.result.model_dump_json() if outcome.result else None,
        }
        # Create-only: when two deliveries race, the first outcome recorded is the one that counts.
        self.store.create(self.key(stage, message), json.dumps(body).encode(), content_type="application/json",
                          metadata=OUTPUT_MARKER)
