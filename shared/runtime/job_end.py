"""How a job ends, whichever way it ends: the one place that claims the job's end, writes
`result.json` and publishes the result.

The claim comes first (shared/runtime/job_state.py): a stage, a refused message or the dead-letter
handler that does not win it does nothing, so a late failure can never overwrite or delete a
success, and a job never ends twice.
"""

from __future__ import annotations

import json
import logging

from shared.adapters.blobstore import BlobStore
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.adapters.bus import Bus
from shared.documents import ProgressStep, ResultDocument
from shared.errors import PipelineError, StorageUnavailable
from shared.layout import results_prefix
from shared.messages import Job
from shared.runtime.job_state import claim, mark_published
from shared.runtime.progress import progress
from shared.stages.context import StageOutcome
from shared.topology import Topology

log = logging.getLogger("closet.job_end")


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
    """Write result.json and publish the result, if this claimer holds the job's end and has not
    published it yet; returns what was published. Both name the job's files (relative to its results
    folder), never links: links are signed when the result is handed out (shared/runtime/links.py:
    each status answer, each webhook delivery), so none expires while Pub/Sub is still retrying."""
    if not claim(store, document.job_id, claimer):
        return None
    prefix = results_prefix(document.user_id, document.cloth_id, document.job_id)
    store.write(prefix + "result.json", document.to_json(), content_type="application/json", metadata=OUTPUT_MARKER)
    out = document
    bus.publish(topology.results_topic, out.to_json(), {"jobId": document.job_id, "success": str(document.success).lower()})
    try:
        mark_published(store, document.job_id, claimer)
    except StorageUnavailable:  # the result is out: failing the message now would publish it twice
        log.warning("result published but not marked so", extra={"jobId": document.job_id})
    return out


def salvage_job(data: bytes) -> Job | None:
    """The job of a message that is otherwise unusable, so its user can still be told."""
    try:
        return Job.model_validate(json.loads(data)["job"])
    except Exception:
        return None
