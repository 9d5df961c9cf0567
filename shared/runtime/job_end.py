"""How a job ends, whichever way it ends: the one place that claims the job's end, writes
`result.json` and publishes the result. Stages only return outcomes; an outcome that would end the
job (`Outcome.ending`) is finished here, after the claim.

The claim (`work/{jobId}/final.json`): whoever creates it may end the job, once. A job ends with a
success or a failure, never both, and never twice; `work/{jobId}/published.json` records that its
result went out (a separate object: GCS allows about one write a second to one object). A stage, a
refused message or the dead-letter handler that does not win the claim does nothing, so a late
failure can never overwrite or delete a success.
"""

from __future__ import annotations

import json
import logging
import time

from shared.adapters.blobstore import BlobNotFound, BlobStore, PreconditionFailed
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.adapters.bus import Bus
from shared.documents import ProgressStep, ResultDocument
from shared.errors import PipelineError, StorageUnavailable
from shared.layout import results_prefix, work_key
from shared.messages import Job
from shared.runtime.outcomes import StageOutcome
from shared.stages.context import Outcome
from shared.stages.progress import progress
from shared.topology import Topology

log = logging.getLogger("closet.job_end")
JSON = "application/json"


# -- the claim ----------------------------------------------------------------------------------
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


def holds(store: BlobStore, job_id: str, claimer: str) -> bool:
    """Whether `claimer` still holds the job's end and its result is not out yet (a dead-letter
    take-over may have happened since it claimed). Reads only: the claim was made by `finish` or
    `failed` before the result existed."""
    try:
        current = json.loads(store.read(_claim_key(job_id)).data)
    except BlobNotFound:
        return False
    return current.get("claimer") == claimer and not store.exists(_published_key(job_id))


def ended(store: BlobStore, job_id: str) -> bool:
    """Whether the job's end has been claimed (so stale deliveries must not report progress)."""
    return store.exists(_claim_key(job_id))


# -- the endings --------------------------------------------------------------------------------
def finish(outcome: Outcome, job: Job, store: BlobStore, claimer: str) -> StageOutcome:
    """What a stage returned, as this delivery records and publishes it: with an ending, only if this
    delivery wins the job's end, claimed before the ending writes any output, so a job another
    delivery ended is left alone."""
    if outcome.ending is None:
        return StageOutcome(next=outcome.next, progress=outcome.progress)
    if not claim(store, job.job_id, claimer):
        log.info("job already ended; %s's ending dropped", claimer, extra={"jobId": job.job_id})
        return StageOutcome()
    return StageOutcome(next=outcome.next, progress=outcome.progress, result=outcome.ending())


def failed(job: Job, error: PipelineError, store: BlobStore, claimer: str, timings: dict[str, int] | None = None,
           *, take_over_after_s: float | None = None) -> StageOutcome:
    """The job's failure, if this caller wins its end; else nothing (it already ended, or is ending)."""
    if not claim(store, job.job_id, claimer, take_over_after_s=take_over_after_s):
        log.info("job already ended; %s from %s ignored", error.code, claimer, extra={"jobId": job.job_id})
        return StageOutcome()
    prefix = results_prefix(job.user_id, job.cloth_id, job.job_id)
    for key in store.list(prefix):  # nothing partial is left for the app to read
        store.delete(key)
    document = ResultDocument(
        job_id=job.job_id, cloth_id=job.cloth_id, user_id=job.user_id, success=False,
        error_code=error.code, error_message=error.message, suggested_category=job.category_hint,
        upload_generation=job.upload_generation, uploaded_at=job.uploaded_at, timings=timings or {},
    )
    return StageOutcome(progress=(progress(job, ProgressStep.FAILED),), result=document)


def publish(document: ResultDocument, store: BlobStore, bus: Bus, topology: Topology, claimer: str) -> ResultDocument | None:
    """Write result.json and publish the result, if this claimer still holds the job's end and has not
    published it yet (a redelivery forwarding a recorded result checks here too); returns what was
    published. Both name the job's files (relative to
    its results folder), never links: links are signed when the result is handed out
    (shared/runtime/links.py: each status answer, each webhook delivery), so none expires while
    Pub/Sub is still retrying."""
    if not holds(store, document.job_id, claimer):
        return None
    prefix = results_prefix(document.user_id, document.cloth_id, document.job_id)
    store.write(prefix + "result.json", document.to_json(), content_type="application/json", metadata=OUTPUT_MARKER)
    bus.publish(topology.results_topic, document.to_json(), {"jobId": document.job_id, "success": str(document.success).lower()})
    try:
        mark_published(store, document.job_id, claimer)
    except StorageUnavailable:  # the result is out: failing the message now would publish it twice
        log.warning("result published but not marked so", extra={"jobId": document.job_id})
    return document


def salvage_job(data: bytes) -> Job | None:
    """The job of a message that is otherwise unusable, so its user can still be told."""
    try:
        return Job.model_validate(json.loads(data)["job"])
    except Exception:
        return None
