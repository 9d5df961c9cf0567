"""Outcome records, the idempotency layer: Pub/Sub delivers at least once, so each stage's outcome
for a message is kept under a deterministic key, and a redelivered message forwards it instead of
running the stage (the model, a paid generation call) again.

Like Powertools' idempotency, a delivery first takes an in-progress lease whose expiry is the
function's remaining time: a concurrent duplicate finds it and is retried later (InProgress, a
transient error), when the outcome is there to forward; a lease whose holder died expires and is
taken over. Lease and outcome are separate objects, each written about once. Once a delivery has
published the outcome, a marker says so, and later duplicates publish nothing: otherwise each
duplicate would double every later stage's messages.

The records also answer how far a job is (`progress`, `stages_done`) for the status endpoint, which
knows neither their keys nor the stages' names.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from shared.adapters.blobstore import BlobNotFound, BlobStore, PreconditionFailed
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.documents import ProgressEvent, ProgressStep, ResultDocument
from shared.errors import InProgress
from shared.layout import work_key
from shared.messages import StageMessage
from shared.topology import load as load_topology

JSON = "application/json"
_STEPS = list(ProgressStep)


@dataclass(frozen=True)
class StageOutcome:
    """What one delivery recorded and publishes: the stage's messages and progress events and, when
    the delivery ended the job (shared/runtime/job_end.py), its result document."""

    next: tuple[StageMessage, ...] = ()
    progress: tuple[ProgressEvent, ...] = ()
    result: ResultDocument | None = None


@dataclass(frozen=True)
class JobProgress:
    """How far a job's recorded outcomes say it is."""

    started: bool  # anything is under the job's work folder (ingest may still be writing)
    latest: ProgressEvent | None  # the furthest event recorded (None: no event yet)
    owners: frozenset[tuple[str, str]]  # the (user, cloth) of every event read


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

    # -- queries ----------------------------------------------------------------------------------
    def stages_done(self, job_id: str) -> list[str]:
        """The stages with an outcome recorded for this job (per garment once each), in stage order."""
        names = load_topology().stage_names
        return sorted({_stage_of(k) for k in self._outcome_keys(job_id)} & set(names), key=names.index)

    def progress(self, job_id: str) -> JobProgress:
        """The furthest progress event the recorded outcomes carry. A stage that publishes no event of
        its own (expand), once it is the furthest, shows as the step after the last event's."""
        names = load_topology().stage_names
        keys = self.store.list(work_key(job_id, ""))
        outcomes = self._outcome_keys(job_id, keys)
        rank = {k: names.index(_stage_of(k)) if _stage_of(k) in names else -1 for k in outcomes}
        furthest = max(rank.values(), default=-1)
        events: list[tuple[int, ProgressEvent]] = []
        for key in outcomes:
            if rank[key] < furthest - 1:
                continue  # earlier stages' events cannot be the furthest
            try:
                record = json.loads(self.store.read(key).data)
                events.extend((rank[key], ProgressEvent.model_validate_json(p)) for p in record.get("progress", []))
            except (BlobNotFound, ValueError):
                continue
        if not events:
            return JobProgress(bool(keys), None, frozenset())
        owners = frozenset((e.user_id, e.cloth_id) for _, e in events)
        best_rank, best = max(events, key=lambda ranked: ranked[1].progress_percentage)
        if best_rank < furthest and best.status == "PROCESSING" and furthest not in {r for r, _ in events}:
            best = best.model_copy(update={"current_step": _STEPS[_STEPS.index(best.current_step) + 1]})
        return JobProgress(True, best, owners)

    def _outcome_keys(self, job_id: str, keys: list[str] | None = None) -> list[str]:
        keys = self.store.list(work_key(job_id, "outcomes/")) if keys is None else keys
        return [k for k in keys if k.startswith(work_key(job_id, "outcomes/")) and k.endswith(".json")
                and not k.endswith(".lease.json")]

    def upload_generation(self, key: str) -> int | None:
        """The upload's current generation, from its metadata only (never the photo's bytes): the
        generation that names the upload's job (shared/layout.py job_id_for)."""
        try:
            return self.store.stat(key).generation
        except BlobNotFound:
            return None


def _stage_of(key: str) -> str:
    """The stage an outcome key names: `.../outcomes/{stage}[-{item}].json`."""
    return key.rsplit("/", 1)[-1].removesuffix(".json").split("-", 1)[0]
