"""How a job ends when something went wrong, whichever stage (or the dead-letter handler) saw it:
the partial outputs go, a failed result document takes their place, and the app is told at 100 %."""

from __future__ import annotations

import json

from shared.adapters.blobstore import BlobStore
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.documents import ProgressStep, ResultDocument
from shared.errors import PipelineError
from shared.layout import results_prefix
from shared.messages import Job
from shared.runtime.progress import progress
from shared.stages.context import StageOutcome


def failed(job: Job, error: PipelineError, store: BlobStore, timings: dict[str, int] | None = None) -> StageOutcome:
    """Nothing partial is left for the app to read; both endings look alike to it."""
    prefix = results_prefix(job.user_id, job.cloth_id, job.job_id)
    for key in store.list(prefix):
        store.delete(key)
    document = ResultDocument(
        job_id=job.job_id, cloth_id=job.cloth_id, user_id=job.user_id, success=False,
        error_code=error.code, error_message=error.message, suggested_category=job.category_hint,
        timings=timings or {},
    )
    store.write(prefix + "result.json", document.to_json(), content_type="application/json", metadata=OUTPUT_MARKER)
    return StageOutcome(progress=(progress(job, ProgressStep.FAILED),), result=document)


def salvage_job(data: bytes) -> Job | None:
    """The job of a message that is otherwise unusable, so its user can still be told."""
    try:
        return Job.model_validate(json.loads(data)["job"])
    except Exception:
        return None
